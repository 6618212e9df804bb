//! The swarm provider: event-driven discovery from the Docker socket.
//!
//! Docker emits no task events, so every relevant event (service, node, or a
//! swarm task's container) triggers a debounced re-list of services, tasks
//! and networks, turned into a complete snapshot by [`build`]. While a
//! service converges (update, scale, a task dying) its tasks are re-listed
//! every [`CONVERGE_POLL`] until they settle, so a task leaves the pool as
//! soon as its desired state leaves `running`, well before swarm stops its
//! container. A full re-list every `refresh` is only a safety net.
//!
//! When the daemon goes away, the last snapshot stays published (the proxy
//! keeps serving it) and the provider reconnects with backoff.

pub mod build;
pub mod diff;

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::{Instant, sleep, sleep_until};

use self::build::{BuildSettings, ClusterState};
use super::docker::{DockerClient, DockerError, Endpoint, OwnContainer};
use super::{ConfigIssue, ProviderHandle, Snapshot};
use crate::labels::{Constraint, LabelDefaults, LabelGeneration, Template};

/// Events within this window make one re-list.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// Re-list period while some service converges.
pub const CONVERGE_POLL: Duration = Duration::from_millis(100);
/// A convergence polled longer than this (a task that never starts) falls
/// back to events and the periodic resync.
pub const CONVERGE_LIMIT: Duration = Duration::from_secs(120);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The provider's settings, Traefik-compatible
/// (`--providers.swarm.*`, or `--docker.*` with `--docker.swarmmode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmConfig {
    pub endpoint: String,
    pub network: Option<String>,
    pub exposed_by_default: bool,
    pub constraints: Option<String>,
    /// A Go template (`Host(`{{ normalize .Name }}`)`).
    pub default_rule: String,
    /// Safety-net resync period (`refreshSeconds`).
    pub refresh: Duration,
    /// Follow events; without it only the periodic resync runs.
    pub watch: bool,
    /// The syntax of services whose labels do not tell, and the naming:
    /// `V1` is Traefik 1's `docker` provider (`--docker.swarmmode`).
    pub generation: LabelGeneration,
    /// Traefik 1's `--docker.domain`: the default rule is `Host:{service}.{domain}`.
    pub domain: Option<String>,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            endpoint: super::docker::DEFAULT_ENDPOINT.into(),
            network: None,
            exposed_by_default: true,
            constraints: None,
            default_rule: crate::labels::DEFAULT_RULE.into(),
            refresh: Duration::from_secs(15),
            watch: true,
            generation: LabelGeneration::V3,
            domain: None,
        }
    }
}

impl SwarmConfig {
    /// Traefik 1's docker provider in swarm mode.
    pub fn v1() -> Self {
        SwarmConfig {
            generation: LabelGeneration::V1,
            ..SwarmConfig::default()
        }
    }

    /// The provider name qualified names end with: `swarm` (v3) or `docker` (v1).
    pub fn provider_name(&self) -> &'static str {
        match self.generation {
            LabelGeneration::V1 => "docker",
            LabelGeneration::V3 => "swarm",
        }
    }

    /// Validates the settings; every problem is listed.
    pub fn label_defaults(&self) -> Result<LabelDefaults, Vec<String>> {
        let mut errors = Vec::new();
        let mut d = LabelDefaults::new(self.provider_name(), self.generation);
        d.exposed_by_default = self.exposed_by_default;
        d.domain = self.domain.clone().filter(|s| !s.is_empty());
        match Template::parse(&self.default_rule) {
            Ok(t) => d.default_rule = t,
            Err(e) => errors.push(format!("defaultRule: {e}")),
        }
        if let Some(c) = self.constraints.as_deref().filter(|c| !c.trim().is_empty()) {
            match Constraint::parse(c) {
                Ok(c) => d.constraints = Some(c),
                Err(e) => errors.push(format!("constraints: {e}")),
            }
        }
        if let Err(e) = Endpoint::parse(&self.endpoint) {
            errors.push(format!("endpoint: {e}"));
        }
        if errors.is_empty() {
            Ok(d)
        } else {
            Err(errors)
        }
    }
}

/// Lists the cluster once and returns what the provider would publish now:
/// for `escale check`, which validates live labels without serving.
pub async fn snapshot_once(config: &SwarmConfig) -> Result<Snapshot, String> {
    let defaults = config.label_defaults().map_err(|e| e.join("; "))?;
    let endpoint = Endpoint::parse(&config.endpoint).map_err(|e| e.to_string())?;
    let client = DockerClient::connect(&endpoint)
        .await
        .map_err(|e| e.to_string())?;
    let own = client.own_container().await.map_err(|e| e.to_string())?;
    let (services, tasks, networks) =
        tokio::join!(client.services(), client.tasks(), client.networks());
    let state = ClusterState {
        services: services.map_err(|e| e.to_string())?,
        tasks: tasks.map_err(|e| e.to_string())?,
        networks: networks.map_err(|e| e.to_string())?,
        own,
        excluded: BTreeSet::new(),
    };
    let settings = BuildSettings {
        labels: &defaults,
        network: config.network.as_deref(),
    };
    Ok(build::build(&state, &settings).snapshot)
}

/// Runs the provider until the task is aborted.
pub async fn run(config: SwarmConfig, handle: ProviderHandle) {
    let (defaults, endpoint) = match (config.label_defaults(), Endpoint::parse(&config.endpoint)) {
        (Ok(d), Ok(e)) => (d, e),
        (d, _) => {
            let errors = d.err().unwrap_or_default();
            let issues = errors
                .iter()
                .map(|e| ConfigIssue::error(&handle.name, "provider settings", e.clone()))
                .collect();
            handle.status.failed(errors.join("; "));
            handle.publish(Snapshot {
                config: Default::default(),
                issues,
            });
            return;
        }
    };
    let mut provider = Provider {
        config,
        defaults,
        endpoint,
        handle,
        last: None,
        state: None,
        unhealthy: BTreeSet::new(),
        stopping: BTreeSet::new(),
        outage_since: None,
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = Instant::now();
        let error = provider.session().await;
        provider.lost(&error);
        // A session that ran a while earned a fresh, short backoff.
        if started.elapsed() > BACKOFF_MAX * 2 {
            backoff = BACKOFF_MIN;
        }
        sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
        provider.handle.status.reconnect();
    }
}

struct Provider {
    config: SwarmConfig,
    defaults: LabelDefaults,
    endpoint: Endpoint,
    handle: ProviderHandle,
    last: Option<Snapshot>,
    /// The last listing, to rebuild at once when a container stops.
    state: Option<ClusterState>,
    unhealthy: BTreeSet<String>,
    /// Containers killed, stopped or dead, from events.
    stopping: BTreeSet<String>,
    outage_since: Option<Instant>,
}

/// When the next re-lists are due.
struct Schedule {
    debounced: Option<Instant>,
    converge_until: Option<Instant>,
    resync: Instant,
}

impl Provider {
    /// One connection to the daemon: returns why it ended.
    async fn session(&mut self) -> DockerError {
        let client = match DockerClient::connect(&self.endpoint).await {
            Ok(c) => c,
            Err(e) => return e,
        };
        let own = match client.own_container().await {
            Ok(o) => o,
            Err(e) => return e,
        };
        if self.outage_since.is_none() && self.last.is_none() {
            tracing::info!(
                endpoint = %self.endpoint,
                api = client.api_version(),
                container = own.as_ref().map(|o| o.id.get(..12).unwrap_or(&o.id)).unwrap_or("none"),
                "swarm provider connected"
            );
        }
        // Subscribe before the first list, so no change falls in between.
        let mut events = self.config.watch.then(|| Box::pin(client.events()));
        let mut schedule = Schedule {
            debounced: None,
            converge_until: None,
            resync: Instant::now() + self.config.refresh,
        };
        if let Err(e) = self.sync(&client, &own, &mut schedule).await {
            return e;
        }
        loop {
            let next_poll = match (schedule.debounced, schedule.converge_until) {
                (Some(d), _) => Some(d),
                (None, Some(_)) => Some(Instant::now() + CONVERGE_POLL),
                (None, None) => None,
            };
            let wake = next_poll.map_or(schedule.resync, |p| p.min(schedule.resync));
            tokio::select! {
                event = async {
                    match events.as_mut() {
                        Some(s) => s.next().await,
                        None => std::future::pending().await,
                    }
                } => {
                    match event {
                        None => return DockerError::StreamEnded,
                        Some(Err(e)) => return e,
                        Some(Ok(ev)) => {
                            if !ev.is_relevant() {
                                continue;
                            }
                            self.handle.status.event();
                            tracing::debug!(kind = ?ev.kind, action = %ev.action, id = %ev.id, "docker event");
                            if let Some(healthy) = ev.health() {
                                if healthy {
                                    self.unhealthy.remove(&ev.id);
                                } else {
                                    self.unhealthy.insert(ev.id.clone());
                                }
                            }
                            if ev.container_stopping() && self.stopping.insert(ev.id.clone()) {
                                // Drop its task now, from the last listing:
                                // swarm reports the task state only later.
                                self.rebuild_and_publish();
                            }
                            if ev.starts_convergence() {
                                schedule.converge_until = Some(Instant::now() + CONVERGE_LIMIT);
                            }
                            schedule.debounced.get_or_insert(Instant::now() + DEBOUNCE);
                        }
                    }
                }
                _ = sleep_until(wake) => {
                    if let Err(e) = self.sync(&client, &own, &mut schedule).await {
                        return e;
                    }
                }
            }
        }
    }

    /// Re-lists the cluster and publishes what it found.
    async fn sync(
        &mut self,
        client: &DockerClient,
        own: &Option<OwnContainer>,
        schedule: &mut Schedule,
    ) -> Result<(), DockerError> {
        let (services, tasks, networks) =
            tokio::join!(client.services(), client.tasks(), client.networks());
        let mut state = ClusterState {
            services: services?,
            tasks: tasks?,
            networks: networks?,
            own: own.clone(),
            excluded: BTreeSet::new(),
        };
        // Forget containers no task refers to any more.
        let live: BTreeSet<&str> = state
            .tasks
            .iter()
            .filter_map(|t| t.container_id.as_deref())
            .collect();
        let referenced = |id: &String| {
            live.iter()
                .any(|c| id.starts_with(c) || c.starts_with(id.as_str()))
        };
        self.stopping.retain(|id| referenced(id));
        self.unhealthy.retain(|id| referenced(id));
        state.excluded = self.excluded();
        let built = self.build(&state);
        self.state = Some(state);
        let now = Instant::now();
        schedule.debounced = None;
        schedule.resync = now + self.config.refresh;
        schedule.converge_until = match schedule.converge_until {
            _ if built.converging.is_empty() => None,
            Some(until) if until <= now => {
                tracing::warn!(
                    services = ?built.converging,
                    "services still converging after {CONVERGE_LIMIT:?}; polling stops until the next event"
                );
                None
            }
            Some(until) => Some(until),
            None => Some(now + CONVERGE_LIMIT),
        };
        if let Some(since) = self.outage_since.take() {
            tracing::info!(
                "docker reachable again after {:.1}s; configuration re-listed",
                since.elapsed().as_secs_f64()
            );
        }
        self.publish(built.snapshot);
        Ok(())
    }

    fn excluded(&self) -> BTreeSet<String> {
        self.unhealthy.union(&self.stopping).cloned().collect()
    }

    fn build(&self, state: &ClusterState) -> build::Built {
        build::build(
            state,
            &BuildSettings {
                labels: &self.defaults,
                network: self.config.network.as_deref(),
            },
        )
    }

    /// Rebuilds from the last listing with the current exclusions.
    fn rebuild_and_publish(&mut self) {
        let Some(mut state) = self.state.take() else {
            return;
        };
        state.excluded = self.excluded();
        let built = self.build(&state);
        self.state = Some(state);
        self.publish(built.snapshot);
    }

    fn publish(&mut self, snapshot: Snapshot) {
        let empty = Snapshot::default();
        let changes = diff::diff(self.last.as_ref().unwrap_or(&empty), &snapshot);
        for change in &changes {
            tracing::info!(provider = %self.handle.name, "{change}");
        }
        for issue in &snapshot.issues {
            let old = self.last.as_ref().is_some_and(|l| l.issues.contains(issue));
            if !old {
                tracing::warn!("{issue}");
            }
        }
        self.handle.publish(snapshot.clone());
        self.last = Some(snapshot);
    }

    fn lost(&mut self, error: &DockerError) {
        self.handle.status.failed(error.to_string());
        if self.outage_since.is_none() {
            self.outage_since = Some(Instant::now());
            if self.last.is_some() {
                tracing::error!(
                    "docker unreachable ({error}); serving the last known configuration and reconnecting"
                );
            } else {
                tracing::error!("docker unreachable ({error}); reconnecting");
            }
        } else {
            tracing::debug!("docker still unreachable: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_validated() {
        let ok = SwarmConfig::default();
        let d = ok.label_defaults().unwrap();
        assert_eq!(d.provider, "swarm");
        assert_eq!(SwarmConfig::v1().provider_name(), "docker");
        let bad = SwarmConfig {
            default_rule: "Host(`{{ sha1 .Name }}`)".into(),
            constraints: Some("Label(`a`)".into()),
            endpoint: "ssh://x".into(),
            ..SwarmConfig::default()
        };
        let errors = bad.label_defaults().unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[tokio::test]
    async fn unreachable_docker_is_reported_and_retried() {
        let mut hub = crate::provider::Hub::new();
        let handle = hub.register("swarm");
        let status = handle.status.clone();
        let dir = tempfile::tempdir().unwrap();
        let config = SwarmConfig {
            endpoint: format!("unix://{}/docker.sock", dir.path().display()),
            ..SwarmConfig::default()
        };
        let task = tokio::spawn(run(config, handle));
        let mut waited = 0;
        while status.view().reconnects < 2 && waited < 100 {
            sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        task.abort();
        let view = status.view();
        assert!(view.reconnects >= 2, "{view:?}");
        assert!(!view.connected);
        assert!(view.last_error.is_some());
    }

    #[tokio::test]
    async fn bad_settings_publish_an_issue() {
        let mut hub = crate::provider::Hub::new();
        let handle = hub.register("swarm");
        let config = SwarmConfig {
            constraints: Some("Nope(`a`,`b`)".into()),
            ..SwarmConfig::default()
        };
        run(config, handle).await;
        let snaps = hub.current();
        assert_eq!(snaps[0].1.issues.len(), 1);
        assert!(snaps[0].1.issues[0].message.contains("constraints"));
    }
}
