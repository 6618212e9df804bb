//! Providers: the sources of dynamic configuration.
//!
//! Each provider publishes complete, owned [`Snapshot`]s of what it knows on a
//! `watch` channel: never partial patches, so a slow consumer only ever skips
//! to the newest state. The [`Hub`] gathers every provider's latest snapshot.

pub mod docker;
pub mod file;
pub mod swarm;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::watch;

use crate::config::dynamic::DynamicConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A problem found in some configuration input: a file, a label, a rule.
/// It names what is wrong precisely enough for an operator to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigIssue {
    pub severity: Severity,
    pub provider: String,
    /// Where the input came from: `file /etc/escale/dyn.yml:12`,
    /// `swarm service web`.
    pub source: String,
    /// The qualified router/service/middleware it affects, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The configuration key or label at fault, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub message: String,
}

impl ConfigIssue {
    pub fn error(provider: &str, source: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigIssue {
            severity: Severity::Error,
            provider: provider.to_string(),
            source: source.into(),
            object: None,
            key: None,
            message: message.into(),
        }
    }

    pub fn warning(provider: &str, source: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigIssue {
            severity: Severity::Warning,
            ..ConfigIssue::error(provider, source, message)
        }
    }

    pub fn with_object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.source)?;
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        if let Some(object) = &self.object {
            write!(f, " ({object})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Everything one provider knows, at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Names are local to the provider; the hub qualifies them as `name@provider`.
    /// Shared, never copied, by the provider, the hub and the compiled table.
    pub config: Arc<DynamicConfig>,
    pub issues: Vec<ConfigIssue>,
}

/// Live facts about a provider, for `/api/providers` and the dashboard.
#[derive(Debug)]
pub struct ProviderStatus {
    pub name: String,
    events: AtomicU64,
    reconnects: AtomicU64,
    syncs: AtomicU64,
    connected: AtomicBool,
    last_sync: Mutex<Option<SystemTime>>,
    last_error: Mutex<Option<String>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatusView {
    pub name: String,
    pub connected: bool,
    pub events: u64,
    pub reconnects: u64,
    pub syncs: u64,
    pub last_sync: Option<String>,
    pub last_error: Option<String>,
}

impl ProviderStatus {
    pub fn new(name: &str) -> Self {
        ProviderStatus {
            name: name.to_string(),
            events: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            last_sync: Mutex::new(None),
            last_error: Mutex::new(None),
        }
    }

    pub fn event(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub fn synced(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.connected.store(true, Ordering::Relaxed);
        *self.last_sync.lock().unwrap_or_else(|e| e.into_inner()) = Some(SystemTime::now());
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub fn failed(&self, error: impl Into<String>) {
        self.connected.store(false, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.into());
    }

    pub fn view(&self) -> ProviderStatusView {
        let last_sync = *self.last_sync.lock().unwrap_or_else(|e| e.into_inner());
        ProviderStatusView {
            name: self.name.clone(),
            connected: self.connected.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            last_sync: last_sync.map(rfc3339),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// Formats a time as RFC 3339 UTC without pulling in a date crate.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The publishing end a provider holds.
#[derive(Debug, Clone)]
pub struct ProviderHandle {
    pub name: String,
    pub status: Arc<ProviderStatus>,
    tx: Arc<watch::Sender<Arc<Snapshot>>>,
}

impl ProviderHandle {
    /// Publishes a new snapshot; consumers skip it if it equals the last one.
    pub fn publish(&self, snapshot: Snapshot) {
        self.status.synced();
        self.tx.send_if_modified(|current| {
            let same_config =
                Arc::ptr_eq(&current.config, &snapshot.config) || current.config == snapshot.config;
            let changed = !same_config || current.issues != snapshot.issues;
            if changed {
                *current = Arc::new(snapshot);
            }
            changed
        });
    }
}

/// Collects the providers' channels; the config pipeline watches them all.
#[derive(Debug, Default)]
pub struct Hub {
    providers: Vec<(String, Arc<ProviderStatus>, watch::Receiver<Arc<Snapshot>>)>,
}

impl Hub {
    pub fn new() -> Self {
        Hub::default()
    }

    /// Registers a provider and returns the handle it publishes through.
    pub fn register(&mut self, name: &str) -> ProviderHandle {
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        let status = Arc::new(ProviderStatus::new(name));
        self.providers.push((name.to_string(), status.clone(), rx));
        ProviderHandle {
            name: name.to_string(),
            status,
            tx: Arc::new(tx),
        }
    }

    pub fn statuses(&self) -> Vec<Arc<ProviderStatus>> {
        self.providers.iter().map(|(_, s, _)| s.clone()).collect()
    }

    /// The latest snapshot of every provider, in registration order.
    pub fn current(&mut self) -> Vec<(String, Arc<Snapshot>)> {
        self.providers
            .iter_mut()
            .map(|(name, _, rx)| (name.clone(), rx.borrow_and_update().clone()))
            .collect()
    }

    /// Waits until any provider publishes. A provider that is done (its
    /// handle dropped, e.g. a one-shot internal snapshot) keeps its last
    /// snapshot and is no longer waited on. Returns false once every
    /// provider is done.
    pub async fn changed(&mut self) -> bool {
        loop {
            let waits: Vec<_> = self
                .providers
                .iter_mut()
                .enumerate()
                .filter(|(_, (_, _, rx))| rx.has_changed().is_ok())
                .map(|(i, (_, _, rx))| Box::pin(async move { (i, rx.changed().await.is_ok()) }))
                .collect();
            if waits.is_empty() {
                return false;
            }
            let ((_, open), _, _) = futures_util::future::select_all(waits).await;
            if open {
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[tokio::test]
    async fn hub_sees_only_real_changes() {
        let mut hub = Hub::new();
        let file = hub.register("file");
        let _ = hub.current();
        file.publish(Snapshot::default());
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), hub.changed()).await;
        assert!(waited.is_err(), "identical snapshot must not wake the hub");
        let mut snap = Snapshot::default();
        snap.issues.push(ConfigIssue::error("file", "x", "boom"));
        file.publish(snap);
        assert!(hub.changed().await);
        assert_eq!(hub.current()[0].1.issues.len(), 1);
    }

    #[tokio::test]
    async fn a_finished_provider_does_not_stop_the_others() {
        let mut hub = Hub::new();
        let once = hub.register("internal");
        let mut snap = Snapshot::default();
        snap.issues
            .push(ConfigIssue::warning("internal", "x", "kept"));
        once.publish(snap);
        drop(once);
        let file = hub.register("file");
        let _ = hub.current();
        let waiter = tokio::spawn(async move {
            let changed = hub.changed().await;
            (changed, hub.current())
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut snap = Snapshot::default();
        snap.issues.push(ConfigIssue::error("file", "y", "new"));
        file.publish(snap);
        let (changed, current) = waiter.await.unwrap();
        assert!(changed);
        assert_eq!(current[0].1.issues[0].message, "kept");
        assert_eq!(current[1].1.issues[0].message, "new");
    }
}
