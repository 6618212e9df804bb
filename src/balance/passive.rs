//! Passive health: failures seen on live traffic eject a server for a while.
//!
//! Connect errors, resets and timeouts always count; with an explicit
//! `passiveHealthCheck`, answers of 500 and above count too, as in Traefik.
//! `maxFailedAttempts` consecutive failures within `failureWindow` eject the
//! server.
//!
//! Without a `passiveHealthCheck`, escale still ejects, more carefully: a
//! refused or timed-out connect ejects at once (it is conclusive), while
//! resets and response timeouts need 3 in a row, because a backend that
//! closes an idle keep-alive connection just as a request goes out looks
//! like a reset, and must not cost its place in the pool.
//! The first ejection lasts `failureWindow`; each time the server fails
//! again (a failed probe, or failures soon after it came back) the period
//! doubles, up to `maxEjection` (an escale extension). An ejected server
//! comes back only after a successful probe.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::clock;
use crate::config::dynamic::PassiveHealthCheck;

/// Traefik's default `failureWindow`.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// Longest ejection when `maxEjection` is not set.
pub const DEFAULT_MAX_EJECTION: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Connect,
    Reset,
    Timeout,
    /// The server answered with a status of 500 or more.
    ServerError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassivePolicy {
    pub max_failed_attempts: u32,
    pub failure_window: Duration,
    pub max_ejection: Duration,
    /// Whether answers >= 500 count as failures (Traefik's rule).
    pub count_server_errors: bool,
    /// Whether one connect failure is enough to eject.
    pub connect_ejects: bool,
}

impl Default for PassivePolicy {
    /// The built-in policy when nothing is configured (fail-open keeps a
    /// lone server in use whatever happens).
    fn default() -> Self {
        PassivePolicy {
            max_failed_attempts: 3,
            failure_window: DEFAULT_WINDOW,
            max_ejection: DEFAULT_MAX_EJECTION,
            count_server_errors: false,
            connect_ejects: true,
        }
    }
}

impl PassivePolicy {
    /// The policy of a service, with the problems found in its settings.
    pub fn from_config(config: Option<&PassiveHealthCheck>) -> (PassivePolicy, Vec<String>) {
        let mut policy = PassivePolicy::default();
        let mut errors = Vec::new();
        let Some(c) = config else {
            return (policy, errors);
        };
        policy.count_server_errors = true;
        policy.connect_ejects = false;
        // Traefik's default.
        policy.max_failed_attempts = c.max_failed_attempts.unwrap_or(1).max(1);
        if let Some(w) = c.failure_window
            && !w.0.is_zero()
        {
            policy.failure_window = w.0;
        }
        policy.max_ejection = match c.max_ejection {
            Some(m) if !m.0.is_zero() => m.0,
            _ => DEFAULT_MAX_EJECTION.max(policy.failure_window),
        };
        if policy.max_ejection < policy.failure_window {
            errors.push(format!(
                "passiveHealthCheck: maxEjection ({:?}) is shorter than failureWindow ({:?}); using failureWindow",
                policy.max_ejection, policy.failure_window
            ));
            policy.max_ejection = policy.failure_window;
        }
        (policy, errors)
    }

    pub fn counts(&self, kind: FailureKind) -> bool {
        kind != FailureKind::ServerError || self.count_server_errors
    }

    /// How long the `streak`-th ejection in a row lasts (0-based).
    pub fn ejection(&self, streak: u32) -> Duration {
        let factor = 1u32.checked_shl(streak.min(31)).unwrap_or(u32::MAX);
        self.failure_window
            .checked_mul(factor)
            .unwrap_or(self.max_ejection)
            .min(self.max_ejection)
    }
}

/// An ejection that just started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    pub period: Duration,
    pub streak: u32,
}

/// Per-server passive-health bookkeeping, all atomics.
#[derive(Debug, Default)]
pub struct PassiveState {
    failures: AtomicU32,
    /// When the current failure window opened (µs), 0 for none.
    window_start: AtomicU64,
    ejected: AtomicBool,
    /// Ejections in a row without a lasting recovery.
    streak: AtomicU32,
    /// When a probe last brought the server back (µs), 0 for never.
    readmitted_at: AtomicU64,
}

impl PassiveState {
    pub fn is_ejected(&self) -> bool {
        self.ejected.load(Ordering::Relaxed)
    }

    /// Counts a failure; returns the ejection when this one ejects the server.
    pub fn record_failure(
        &self,
        policy: &PassivePolicy,
        kind: FailureKind,
        now: u64,
    ) -> Option<Ejection> {
        if self.is_ejected() {
            return None;
        }
        let start = self.window_start.load(Ordering::Relaxed);
        let count = if start == 0 || now.saturating_sub(start) > clock::us(policy.failure_window) {
            self.window_start.store(now, Ordering::Relaxed);
            self.failures.store(1, Ordering::Relaxed);
            1
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed) + 1
        };
        let conclusive = policy.connect_ejects && kind == FailureKind::Connect;
        if count < policy.max_failed_attempts && !conclusive {
            return None;
        }
        if self
            .ejected
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        self.failures.store(0, Ordering::Relaxed);
        self.window_start.store(0, Ordering::Relaxed);
        let readmitted = self.readmitted_at.load(Ordering::Relaxed);
        let relapse =
            readmitted != 0 && now.saturating_sub(readmitted) < clock::us(policy.max_ejection);
        let streak = if relapse {
            self.streak.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.streak.store(0, Ordering::Relaxed);
            0
        };
        Some(Ejection {
            period: policy.ejection(streak),
            streak,
        })
    }

    /// A successful exchange: failures must be consecutive to count.
    pub fn record_success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
            self.window_start.store(0, Ordering::Relaxed);
        }
    }

    /// A probe of the ejected server failed: the next wait, longer.
    pub fn probe_failed(&self, policy: &PassivePolicy) -> Duration {
        let streak = self.streak.fetch_add(1, Ordering::Relaxed) + 1;
        policy.ejection(streak)
    }

    /// A probe succeeded: the server is back in the pool.
    pub fn readmit(&self, now: u64) {
        self.failures.store(0, Ordering::Relaxed);
        self.window_start.store(0, Ordering::Relaxed);
        self.readmitted_at.store(now, Ordering::Relaxed);
        self.ejected.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::duration::GoDuration;

    const S: u64 = 1_000_000;

    fn policy(max: u32, window: u64, max_ejection: u64) -> PassivePolicy {
        PassivePolicy {
            max_failed_attempts: max,
            failure_window: Duration::from_secs(window),
            max_ejection: Duration::from_secs(max_ejection),
            count_server_errors: true,
            connect_ejects: false,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy(1, 2, 20);
        let periods: Vec<u64> = (0..6).map(|n| p.ejection(n).as_secs()).collect();
        assert_eq!(periods, vec![2, 4, 8, 16, 20, 20]);
        assert_eq!(p.ejection(u32::MAX), Duration::from_secs(20));
    }

    #[test]
    fn ejects_after_max_failures_within_the_window() {
        let p = policy(3, 10, 60);
        let s = PassiveState::default();
        assert_eq!(s.record_failure(&p, FailureKind::Reset, S), None);
        assert_eq!(s.record_failure(&p, FailureKind::Reset, 2 * S), None);
        // A success in between: failures must be consecutive.
        s.record_success();
        assert_eq!(s.record_failure(&p, FailureKind::Reset, 3 * S), None);
        assert_eq!(s.record_failure(&p, FailureKind::Reset, 4 * S), None);
        let e = s
            .record_failure(&p, FailureKind::Reset, 5 * S)
            .expect("third failure ejects");
        assert_eq!(e.period, Duration::from_secs(10));
        assert!(s.is_ejected());
        assert_eq!(
            s.record_failure(&p, FailureKind::Reset, 6 * S),
            None,
            "already ejected"
        );
    }

    #[test]
    fn failures_outside_the_window_start_over() {
        let p = policy(2, 10, 60);
        let s = PassiveState::default();
        assert_eq!(s.record_failure(&p, FailureKind::Reset, S), None);
        assert_eq!(
            s.record_failure(&p, FailureKind::Reset, 20 * S),
            None,
            "window expired"
        );
        assert!(s.record_failure(&p, FailureKind::Reset, 21 * S).is_some());
    }

    #[test]
    fn relapse_after_readmission_grows_the_ejection() {
        let p = policy(1, 2, 30);
        let s = PassiveState::default();
        assert_eq!(
            s.record_failure(&p, FailureKind::Reset, S)
                .unwrap()
                .period
                .as_secs(),
            2
        );
        assert_eq!(s.probe_failed(&p).as_secs(), 4);
        s.readmit(10 * S);
        assert!(!s.is_ejected());
        let e = s.record_failure(&p, FailureKind::Reset, 11 * S).unwrap();
        assert_eq!(
            (e.streak, e.period.as_secs()),
            (2, 8),
            "relapse keeps growing"
        );
        s.readmit(20 * S);
        let e = s.record_failure(&p, FailureKind::Reset, 200 * S).unwrap();
        assert_eq!(
            (e.streak, e.period.as_secs()),
            (0, 2),
            "long healthy: start over"
        );
    }

    #[test]
    fn policy_from_traefik_keys() {
        let (p, errors) = PassivePolicy::from_config(None);
        assert_eq!(p, PassivePolicy::default());
        assert!(errors.is_empty() && !p.counts(FailureKind::ServerError));
        assert!(p.counts(FailureKind::Connect));
        // Built in: a refused connect ejects at once, resets need three.
        let s = PassiveState::default();
        assert!(s.record_failure(&p, FailureKind::Connect, S).is_some());
        let s = PassiveState::default();
        assert!(s.record_failure(&p, FailureKind::Reset, S).is_none());
        s.record_success();
        assert!(s.record_failure(&p, FailureKind::Reset, 2 * S).is_none());
        assert!(s.record_failure(&p, FailureKind::Timeout, 3 * S).is_none());
        assert!(s.record_failure(&p, FailureKind::Reset, 4 * S).is_some());
        let cfg = PassiveHealthCheck {
            max_failed_attempts: Some(3),
            failure_window: Some(GoDuration::from_secs(3)),
            max_ejection: None,
        };
        let (p, errors) = PassivePolicy::from_config(Some(&cfg));
        assert!(errors.is_empty());
        assert_eq!(p.max_failed_attempts, 3);
        assert!(!p.connect_ejects, "Traefik counts every failure alike");
        assert_eq!(p.failure_window, Duration::from_secs(3));
        assert_eq!(p.max_ejection, DEFAULT_MAX_EJECTION);
        assert!(p.counts(FailureKind::ServerError), "Traefik counts 5xx");
        let cfg = PassiveHealthCheck {
            max_failed_attempts: Some(0),
            failure_window: Some(GoDuration::from_secs(30)),
            max_ejection: Some(GoDuration::from_secs(5)),
        };
        let (p, errors) = PassivePolicy::from_config(Some(&cfg));
        assert_eq!(p.max_failed_attempts, 1);
        assert_eq!(p.max_ejection, Duration::from_secs(30));
        assert_eq!(errors.len(), 1, "{errors:?}");
    }
}
