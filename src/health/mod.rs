//! Health checking: active checks on a timer, and the probes that bring
//! passively ejected servers back.
//!
//! One task per checked server. The [`Supervisor`] follows route-table
//! reloads: it starts tasks for new servers, stops those of removed ones,
//! and leaves the others running, so their state carries over. It also
//! retires every server that left the table, which frees requests still
//! connecting to it. All probes share one semaphore, which bounds how many
//! run at once.

pub mod config;
pub mod probe;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

pub use config::ActiveCheck;

use crate::balance::passive::{Ejection, PassivePolicy};
use crate::balance::{ServerState, clock};
use crate::routing::RouteTable;

/// Probes in flight at once, over all services.
pub const MAX_CONCURRENT_PROBES: usize = 64;

fn permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| Semaphore::new(MAX_CONCURRENT_PROBES))
}

/// A server to check: its service (for logs), itself, and the check.
type Wanted = (Arc<str>, Arc<ServerState>, Arc<ActiveCheck>);

struct Checked {
    server: Weak<ServerState>,
    check: Arc<ActiveCheck>,
    task: JoinHandle<()>,
}

/// The active health-check tasks, keyed by server.
#[derive(Default)]
pub struct Supervisor {
    checks: HashMap<usize, Checked>,
    /// Every server of the last table, to retire those that leave.
    known: HashMap<usize, Weak<ServerState>>,
}

impl Supervisor {
    pub fn new() -> Self {
        Supervisor::default()
    }

    /// Number of servers under active check.
    pub fn len(&self) -> usize {
        self.checks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// Makes the running checks match `table`, and retires the servers
    /// that left it.
    pub fn sync(&mut self, table: &RouteTable) {
        let current: HashMap<usize, Weak<ServerState>> = table
            .services
            .values()
            .flat_map(|rt| rt.balancer.servers())
            .map(|s| (Arc::as_ptr(s) as usize, Arc::downgrade(s)))
            .collect();
        for (key, server) in &self.known {
            if !current.contains_key(key)
                && let Some(s) = server.upgrade()
            {
                s.retire();
            }
        }
        self.known = current;

        let mut wanted: HashMap<usize, Wanted> = HashMap::new();
        for rt in table.services.values() {
            let Some(check) = &rt.health_check else {
                continue;
            };
            for s in rt.balancer.servers() {
                wanted.insert(
                    Arc::as_ptr(s) as usize,
                    (rt.name.clone(), s.clone(), check.clone()),
                );
            }
        }
        self.checks.retain(|key, c| {
            let keep = wanted
                .get(key)
                .is_some_and(|(_, _, check)| *c.check == **check);
            if !keep {
                c.task.abort();
                // A server that stays without a check is no longer judged.
                if !wanted.contains_key(key)
                    && let Some(s) = c.server.upgrade()
                {
                    s.set_healthy(true);
                }
            }
            keep
        });
        for (key, (service, server, check)) in wanted {
            if self.checks.contains_key(&key) {
                continue;
            }
            let weak = Arc::downgrade(&server);
            let task = tokio::spawn(run_check(service, weak.clone(), check.clone()));
            self.checks.insert(
                key,
                Checked {
                    server: weak,
                    check,
                    task,
                },
            );
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        for c in self.checks.values() {
            c.task.abort();
        }
    }
}

async fn run_check(service: Arc<str>, server: Weak<ServerState>, check: Arc<ActiveCheck>) {
    loop {
        let Some(s) = server.upgrade() else { return };
        let result = {
            let _permit = permits().acquire().await;
            probe::http(&check, &s).await
        };
        let up = result.is_ok();
        let was_up = s.set_healthy(up);
        match (&result, was_up) {
            (Err(e), true) => tracing::warn!(
                service = %service, server = %s.url, error = %e,
                "health check failed; server DOWN"
            ),
            (Ok(()), false) => {
                tracing::info!(service = %service, server = %s.url, "health check passed; server UP")
            }
            (Err(e), false) => {
                tracing::debug!(service = %service, server = %s.url, error = %e, "still DOWN")
            }
            (Ok(()), true) => {}
        }
        drop(s);
        let wait = if up {
            check.interval
        } else {
            check.unhealthy_interval
        };
        tokio::time::sleep(wait).await;
    }
}

/// What a probe of an ejected server needs.
pub struct EjectionProbe {
    pub service: Arc<str>,
    pub policy: PassivePolicy,
    pub check: Option<Arc<ActiveCheck>>,
    /// For the TCP probe of services without an active check.
    pub connect_timeout: Duration,
}

/// Probes `server` once its ejection ends, and again with a growing wait
/// until a probe passes; the server is re-admitted then.
pub fn watch_ejected(server: &Arc<ServerState>, ejection: Ejection, probe: EjectionProbe) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        // Nothing could bring it back: do not eject at all.
        server.passive_state().readmit(clock::now_us());
        return;
    };
    let weak = Arc::downgrade(server);
    runtime.spawn(async move {
        let mut wait = ejection.period;
        loop {
            tokio::time::sleep(wait).await;
            let Some(s) = weak.upgrade() else { return };
            let result = {
                let _permit = permits().acquire().await;
                match &probe.check {
                    Some(check) => probe::http(check, &s).await,
                    None => probe::tcp(&s, probe.connect_timeout).await,
                }
            };
            match result {
                Ok(()) => {
                    s.passive_state().readmit(clock::now_us());
                    tracing::info!(service = %probe.service, server = %s.url, "probe passed; ejected server re-admitted");
                    return;
                }
                Err(e) => {
                    wait = s.passive_state().probe_failed(&probe.policy);
                    tracing::debug!(
                        service = %probe.service, server = %s.url, error = %e,
                        next = ?wait, "probe of ejected server failed"
                    );
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::compile::compile_yaml;
    use std::time::Instant;

    fn yaml(check: bool, servers: &[&str]) -> String {
        let mut s = String::from("http:\n  services:\n    svc:\n      loadBalancer:\n");
        if check {
            s.push_str("        healthCheck:\n          path: /health\n          interval: 50ms\n          timeout: 100ms\n");
        }
        s.push_str("        servers:\n");
        for u in servers {
            s.push_str(&format!("          - url: \"{u}\"\n"));
        }
        s
    }

    async fn until(what: &str, check: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(3);
        while !check() {
            assert!(Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn supervisor_follows_reloads_and_keeps_state() {
        let (a, b) = ("http://127.0.0.1:1", "http://127.0.0.1:2");
        let mut sup = Supervisor::new();
        let t1 = compile_yaml(&yaml(true, &[a, b]), None);
        sup.sync(&t1);
        assert_eq!(sup.len(), 2);
        let s = t1.services["svc@file"].balancer.servers()[0].clone();
        until("refused server goes down", || !s.is_healthy()).await;
        assert_eq!(s.health().as_str(), "DOWN");

        // Same settings: same server state, same task, still down.
        let t2 = compile_yaml(&yaml(true, &[a, b]), Some(&t1));
        sup.sync(&t2);
        assert_eq!(sup.len(), 2);
        assert!(Arc::ptr_eq(
            &t2.services["svc@file"].balancer.servers()[0],
            &s
        ));
        assert!(!s.is_healthy());

        // A removed server loses its check and is retired.
        let removed = t2.services["svc@file"].balancer.servers()[1].clone();
        let t3 = compile_yaml(&yaml(true, &[a]), Some(&t2));
        sup.sync(&t3);
        assert_eq!(sup.len(), 1);
        assert!(removed.is_retired() && !s.is_retired());

        // No check any more: nobody judges the server, it is up.
        let t4 = compile_yaml(&yaml(false, &[a]), Some(&t3));
        sup.sync(&t4);
        assert!(sup.is_empty());
        assert!(s.is_healthy());
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(s.is_healthy(), "the old task is stopped");
    }

    #[tokio::test]
    async fn ejected_server_returns_after_a_successful_probe() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let s = Arc::new(ServerState::new(&format!("http://127.0.0.1:{port}"), 1, None).unwrap());
        let policy = PassivePolicy {
            failure_window: Duration::from_millis(30),
            max_ejection: Duration::from_millis(60),
            ..PassivePolicy::default()
        };
        let ejection = s
            .passive_failure(&policy, crate::balance::passive::FailureKind::Connect)
            .unwrap();
        let probe = || EjectionProbe {
            service: "svc@file".into(),
            policy: policy.clone(),
            check: None,
            connect_timeout: Duration::from_millis(200),
        };
        watch_ejected(&s, ejection, probe());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(s.is_ejected(), "probes fail while nothing listens");
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        until("re-admitted", || !s.is_ejected()).await;
        assert!(s.is_available());
        drop(listener);
    }
}
