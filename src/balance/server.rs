//! One backend server as the proxy sees it: where it is and how it is doing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use http::uri::{Authority, Scheme};

use super::latency::Latency;
use super::passive::{Ejection, FailureKind, PassivePolicy, PassiveState};
use super::stats::LatencyWindow;
use crate::config::dynamic::ServerOrigin;
use crate::proxy::pool::ServerPool;

/// The parsed form of a server URL (`http://10.0.1.5:8080/base`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub scheme: Scheme,
    pub authority: Authority,
    /// Path prefix from the server URL, without trailing slash ("" for none).
    pub base_path: String,
}

/// Why a server URL cannot be used; `reason` reads after the URL.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("server url `{url}` {reason}")]
pub struct UpstreamError {
    pub url: String,
    pub reason: &'static str,
}

impl UpstreamError {
    fn new(url: &str, reason: &'static str) -> Self {
        UpstreamError {
            url: url.to_string(),
            reason,
        }
    }
}

impl Upstream {
    pub fn parse(url: &str) -> Result<Self, UpstreamError> {
        if url.trim().is_empty() {
            return Err(UpstreamError::new(url, "is empty"));
        }
        let uri: http::Uri = url
            .parse()
            .map_err(|_| UpstreamError::new(url, "does not parse as a URL"))?;
        let scheme = match uri.scheme_str() {
            Some("http") | Some("h2c") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            Some(_) => return Err(UpstreamError::new(url, "must use http, https or h2c")),
            None => {
                return Err(UpstreamError::new(
                    url,
                    "needs a scheme, as in http://host:port",
                ));
            }
        };
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .cloned()
            .ok_or_else(|| UpstreamError::new(url, "has no host"))?;
        let authority = if authority.port().is_none() {
            let port = if scheme == Scheme::HTTPS { 443 } else { 80 };
            format!("{}:{port}", authority.host())
                .parse()
                .map_err(|_| UpstreamError::new(url, "does not parse as a URL"))?
        } else {
            authority
        };
        let base_path = uri.path().trim_end_matches('/').to_string();
        Ok(Upstream {
            scheme,
            authority,
            base_path,
        })
    }
}

/// Live state of one server. Shared by the balancer, the forwarder, the health
/// checker and the admin API; all counters are atomics so the request path
/// never takes a lock.
#[derive(Debug)]
pub struct ServerState {
    pub url: String,
    pub upstream: Upstream,
    pub weight: u32,
    /// `h2c://` servers speak HTTP/2 with prior knowledge.
    pub h2c: bool,
    /// `https://` servers are spoken to over TLS.
    pub tls: bool,
    pub origin: Option<ServerOrigin>,
    in_flight: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
    /// Result of the active health check (true when none is configured).
    healthy: AtomicBool,
    /// Ejection on live-traffic failures.
    passive: PassiveState,
    /// Set once the server has left the configuration.
    retired: AtomicBool,
    /// Wakes connects in progress when the server is ejected or retired:
    /// nothing was sent yet, so they can go elsewhere at once instead of
    /// waiting for a dial timeout.
    leaving: tokio::sync::Notify,
    /// Response-time estimates for the latency-aware strategies.
    pub latency: Latency,
    /// Keep-alive connections to this server.
    pub pool: ServerPool,
    /// Recent rate and latency, for the admin API and dashboard.
    pub stats: LatencyWindow,
}

/// Why a server is or is not in the pool, for logs and the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Up,
    /// The active health check fails.
    Down,
    /// Ejected after failures on live traffic, until a probe succeeds.
    Ejected,
}

impl Health {
    /// Traefik's `serverStatus` words: anything not in the pool is DOWN.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "UP",
            Health::Down | Health::Ejected => "DOWN",
        }
    }
}

impl ServerState {
    pub fn new(
        url: &str,
        weight: u32,
        origin: Option<ServerOrigin>,
    ) -> Result<Self, UpstreamError> {
        let upstream = Upstream::parse(url)?;
        let tls = upstream.scheme == Scheme::HTTPS;
        Ok(ServerState {
            url: url.to_string(),
            upstream,
            weight,
            h2c: url.starts_with("h2c://"),
            tls,
            origin,
            in_flight: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            passive: PassiveState::default(),
            retired: AtomicBool::new(false),
            leaving: tokio::sync::Notify::new(),
            latency: Latency::default(),
            pool: ServerPool::default(),
            stats: LatencyWindow::default(),
        })
    }

    /// In the pool: passes its active health check (if any) and is not
    /// ejected.
    pub fn is_available(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
            && !self.passive.is_ejected()
            && !self.retired.load(Ordering::Relaxed)
    }

    pub fn health(&self) -> Health {
        if !self.healthy.load(Ordering::Relaxed) {
            Health::Down
        } else if self.passive.is_ejected() {
            Health::Ejected
        } else {
            Health::Up
        }
    }

    /// The active health check's verdict.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn is_ejected(&self) -> bool {
        self.passive.is_ejected()
    }

    /// Sets the active health check's verdict; returns the previous one.
    pub fn set_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Ordering::Relaxed)
    }

    /// Counts a live-traffic failure; returns the ejection it caused, if any.
    pub fn passive_failure(&self, policy: &PassivePolicy, kind: FailureKind) -> Option<Ejection> {
        if !policy.counts(kind) {
            return None;
        }
        let ejection = self
            .passive
            .record_failure(policy, kind, super::clock::now_us());
        if ejection.is_some() {
            self.leaving.notify_waiters();
        }
        ejection
    }

    /// The server left the configuration (the table no longer has it).
    pub fn retire(&self) {
        if !self.retired.swap(true, Ordering::Relaxed) {
            self.leaving.notify_waiters();
        }
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }

    /// Resolves when the server is ejected or retired after this call.
    /// Create it before a connect, and race the connect against it.
    pub fn leaving(&self) -> tokio::sync::futures::Notified<'_> {
        self.leaving.notified()
    }

    pub fn passive_success(&self) {
        self.passive.record_success();
    }

    pub fn passive_state(&self) -> &PassiveState {
        &self.passive
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub fn record_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request as in flight until the guard drops.
    pub fn start_request(self: &std::sync::Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Like [`start_request`](Self::start_request), unless `limit` requests
    /// are already in flight.
    pub fn try_start_request(self: &std::sync::Arc<Self>, limit: Option<u64>) -> Option<InFlight> {
        let Some(limit) = limit else {
            return Some(self.start_request());
        };
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        Some(InFlight(self.clone()))
    }
}

/// Decrements the server's in-flight count when the exchange ends.
#[derive(Debug)]
pub struct InFlight(std::sync::Arc<ServerState>);

impl InFlight {
    pub fn server(&self) -> &std::sync::Arc<ServerState> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_urls() {
        let u = Upstream::parse("http://10.0.1.5:8080").unwrap();
        assert_eq!(u.authority.as_str(), "10.0.1.5:8080");
        assert_eq!(u.base_path, "");
        let u = Upstream::parse("http://backend/base/").unwrap();
        assert_eq!(u.authority.as_str(), "backend:80");
        assert_eq!(u.base_path, "/base");
        assert_eq!(
            Upstream::parse("ftp://x").unwrap_err().reason,
            "must use http, https or h2c"
        );
        let u = Upstream::parse("https://backend").unwrap();
        assert_eq!(
            (u.scheme, u.authority.as_str()),
            (Scheme::HTTPS, "backend:443")
        );
        assert!(ServerState::new("https://10.0.0.1", 1, None).unwrap().tls);
        assert!(!ServerState::new("h2c://10.0.0.1", 1, None).unwrap().tls);
        assert!(Upstream::parse("h2c://10.0.0.1:80").is_ok());
        assert!(Upstream::parse("not a url").is_err());
    }

    #[test]
    fn in_flight_guard_counts() {
        let s = std::sync::Arc::new(ServerState::new("http://127.0.0.1:1", 1, None).unwrap());
        let g = s.start_request();
        assert_eq!(s.in_flight(), 1);
        drop(g);
        assert_eq!(s.in_flight(), 0);
        assert_eq!(s.requests(), 1);
    }

    #[test]
    fn connection_limit_is_exact() {
        let s = std::sync::Arc::new(ServerState::new("http://127.0.0.1:1", 1, None).unwrap());
        let a = s.try_start_request(Some(2)).unwrap();
        let _b = s.try_start_request(Some(2)).unwrap();
        assert!(s.try_start_request(Some(2)).is_none());
        drop(a);
        assert!(s.try_start_request(Some(2)).is_some());
        assert!(s.try_start_request(None).is_some());
    }

    #[tokio::test]
    async fn leaving_wakes_on_ejection_and_retirement_only() {
        let s = ServerState::new("http://127.0.0.1:1", 1, None).unwrap();
        let quick = |f| tokio::time::timeout(std::time::Duration::from_millis(50), f);
        assert!(quick(s.leaving()).await.is_err(), "nothing happened");
        let waiting = s.leaving();
        let policy = PassivePolicy::default();
        assert!(s.passive_failure(&policy, FailureKind::Connect).is_some());
        assert!(quick(waiting).await.is_ok(), "ejection wakes");
        let waiting = s.leaving();
        s.retire();
        assert!(quick(waiting).await.is_ok(), "retirement wakes");
        assert!(s.is_retired() && !s.is_available());
    }

    #[test]
    fn health_combines_active_and_passive() {
        let s = ServerState::new("http://127.0.0.1:1", 1, None).unwrap();
        assert_eq!(s.health(), Health::Up);
        let policy = PassivePolicy::default();
        assert!(
            s.passive_failure(&policy, FailureKind::ServerError)
                .is_none()
        );
        assert!(
            s.is_available(),
            "5xx do not count without a passive config"
        );
        assert!(s.passive_failure(&policy, FailureKind::Connect).is_some());
        assert_eq!((s.health(), s.is_available()), (Health::Ejected, false));
        s.passive_state().readmit(super::super::clock::now_us());
        assert!(s.is_available());
        assert!(s.set_healthy(false));
        assert_eq!((s.health().as_str(), s.is_available()), ("DOWN", false));
    }
}
