//! One backend server as the proxy sees it: where it is and how it is doing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use http::uri::{Authority, Scheme};

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

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpstreamError {
    #[error("server url `{0}` is not a valid url")]
    Invalid(String),
    #[error("server url `{0}` must use http or h2c")]
    Scheme(String),
    #[error("server url `{0}` has no host")]
    NoHost(String),
}

impl Upstream {
    pub fn parse(url: &str) -> Result<Self, UpstreamError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| UpstreamError::Invalid(url.to_string()))?;
        let scheme = match uri.scheme_str() {
            Some("http") | Some("h2c") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            _ => return Err(UpstreamError::Scheme(url.to_string())),
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| UpstreamError::NoHost(url.to_string()))?;
        let authority = if authority.port().is_none() {
            let port = if scheme == Scheme::HTTPS { 443 } else { 80 };
            format!("{}:{port}", authority.host())
                .parse()
                .map_err(|_| UpstreamError::Invalid(url.to_string()))?
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
    pub origin: Option<ServerOrigin>,
    in_flight: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
    /// Result of the active health check (true when none is configured).
    healthy: AtomicBool,
    /// Keep-alive connections to this server.
    pub pool: ServerPool,
    /// Recent rate and latency, for the admin API and dashboard.
    pub stats: LatencyWindow,
}

impl ServerState {
    pub fn new(
        url: &str,
        weight: u32,
        origin: Option<ServerOrigin>,
    ) -> Result<Self, UpstreamError> {
        Ok(ServerState {
            url: url.to_string(),
            upstream: Upstream::parse(url)?,
            weight,
            h2c: url.starts_with("h2c://"),
            origin,
            in_flight: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            pool: ServerPool::default(),
            stats: LatencyWindow::default(),
        })
    }

    pub fn is_available(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
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
        assert!(matches!(
            Upstream::parse("ftp://x"),
            Err(UpstreamError::Scheme(_))
        ));
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
}
