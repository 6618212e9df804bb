//! A service's `healthCheck` settings, validated once per compile.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use std::sync::Arc;

use crate::balance::ServerState;
use crate::config::dynamic::HealthCheck;
use crate::tls::client::TlsClient;

/// Traefik's defaults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Go's http.Client stops after 10 redirects.
pub const MAX_REDIRECTS: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct ActiveCheck {
    pub method: Method,
    /// The configured path (a relative URL), resolved per server.
    pub path: String,
    /// `scheme`, in place of the server URL's; `None`: as the server.
    pub scheme: Option<ProbeScheme>,
    /// For probes over TLS: the service transport's client (set by the
    /// compile step, which knows the transport).
    pub tls: ProbeTls,
    pub port: Option<u16>,
    pub hostname: Option<HeaderValue>,
    pub headers: HeaderMap,
    /// The exact status expected; otherwise 2xx and 3xx are healthy.
    pub status: Option<u16>,
    pub interval: Duration,
    pub unhealthy_interval: Duration,
    pub timeout: Duration,
    pub follow_redirects: bool,
}

/// How a probe speaks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeScheme {
    Http,
    H2c,
    Https,
}

/// The TLS client probes over `https` use; equal when it is the same one.
#[derive(Debug, Clone, Default)]
pub struct ProbeTls(pub Option<Arc<TlsClient>>);

impl PartialEq for ProbeTls {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }
}

/// Where a probe goes for one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    pub authority: String,
    pub path_and_query: String,
    pub scheme: ProbeScheme,
}

impl ActiveCheck {
    /// Whether some probe of these servers goes over TLS.
    pub fn uses_tls(&self, servers: &[Arc<ServerState>]) -> bool {
        match self.scheme {
            Some(scheme) => scheme == ProbeScheme::Https,
            None => servers.iter().any(|s| s.tls),
        }
    }

    /// Validates the settings; every problem is reported.
    pub fn from_config(hc: &HealthCheck) -> Result<ActiveCheck, Vec<String>> {
        let mut errors = Vec::new();
        match hc.mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("http") => {}
            Some("grpc") => {
                errors.push("healthCheck mode `grpc` is not supported by escale".into())
            }
            Some(other) => errors.push(format!("healthCheck mode `{other}` is unknown")),
        }
        let scheme = match hc.scheme.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("") => None,
            Some("http") => Some(ProbeScheme::Http),
            Some("h2c") => Some(ProbeScheme::H2c),
            Some("https") => Some(ProbeScheme::Https),
            Some(other) => {
                errors.push(format!(
                    "healthCheck scheme `{other}` is not one of http, https, h2c"
                ));
                None
            }
        };
        let path = hc.path.clone().unwrap_or_default();
        if path.contains("://") || path.starts_with("//") {
            errors.push(format!(
                "health check path must be a relative URL, got: {path:?}"
            ));
        }
        let method = match hc.method.as_deref().filter(|m| !m.is_empty()) {
            None => Method::GET,
            Some(m) => Method::from_bytes(m.as_bytes()).unwrap_or_else(|_| {
                errors.push(format!("healthCheck method {m:?} is invalid"));
                Method::GET
            }),
        };
        let hostname = hc
            .hostname
            .as_deref()
            .filter(|h| !h.is_empty())
            .and_then(|h| match HeaderValue::from_str(h) {
                Ok(v) => Some(v),
                Err(_) => {
                    errors.push(format!("healthCheck hostname {h:?} is invalid"));
                    None
                }
            });
        let mut headers = HeaderMap::new();
        for (k, v) in &hc.headers {
            match (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
                (Ok(k), Ok(v)) => {
                    headers.insert(k, v);
                }
                _ => errors.push(format!("healthCheck header {k:?} is invalid")),
            }
        }
        let positive = |d: Option<crate::config::duration::GoDuration>, default: Duration| {
            d.map(|d| d.0).filter(|d| !d.is_zero()).unwrap_or(default)
        };
        let interval = positive(hc.interval, DEFAULT_INTERVAL);
        let unhealthy_interval = match hc.unhealthy_interval {
            None => interval,
            Some(d) => positive(Some(d), DEFAULT_INTERVAL),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ActiveCheck {
            method,
            path,
            scheme,
            tls: ProbeTls::default(),
            port: hc.port.filter(|p| *p != 0),
            hostname,
            headers,
            status: hc.status.filter(|s| *s != 0),
            interval,
            unhealthy_interval,
            timeout: positive(hc.timeout, DEFAULT_TIMEOUT),
            follow_redirects: hc.follow_redirects.unwrap_or(true),
        })
    }

    pub fn target(&self, server: &ServerState) -> ProbeTarget {
        let host = server.upstream.authority.host();
        let port = self
            .port
            .or_else(|| server.upstream.authority.port_u16())
            .unwrap_or(80);
        let authority = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let base = server
            .url
            .parse::<http::Uri>()
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        ProbeTarget {
            authority,
            path_and_query: resolve(&base, &self.path),
            scheme: self.scheme.unwrap_or(if server.h2c {
                ProbeScheme::H2c
            } else if server.tls {
                ProbeScheme::Https
            } else {
                ProbeScheme::Http
            }),
        }
    }

    /// Whether an answer with `status` is healthy.
    pub fn healthy_status(&self, status: u16) -> bool {
        match self.status {
            Some(expected) => status == expected,
            None => (200..400).contains(&status),
        }
    }
}

/// Resolves a relative reference against the server URL's path, as Go's
/// `URL.Parse` does for the cases that matter: an absolute path replaces
/// the base path, a relative one replaces its last segment, an empty one
/// keeps it.
pub fn resolve(base: &str, reference: &str) -> String {
    let reference = reference.split('#').next().unwrap_or("");
    let (path, query) = match reference.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (reference, None),
    };
    let mut out = if path.starts_with('/') {
        path.to_string()
    } else if path.is_empty() {
        if base.is_empty() {
            "/".to_string()
        } else {
            base.to_string()
        }
    } else {
        let dir = match base.rfind('/') {
            Some(i) => &base[..=i],
            None => "/",
        };
        format!("{dir}{path}")
    };
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::duration::GoDuration;

    fn server(url: &str) -> ServerState {
        ServerState::new(url, 1, None).unwrap()
    }

    #[test]
    fn defaults_are_traefiks() {
        let c = ActiveCheck::from_config(&HealthCheck {
            path: Some("/health".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.method, Method::GET);
        assert_eq!(c.interval, Duration::from_secs(30));
        assert_eq!(c.unhealthy_interval, Duration::from_secs(30));
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(c.follow_redirects);
        assert!(c.healthy_status(200) && c.healthy_status(302));
        assert!(!c.healthy_status(404) && !c.healthy_status(500) && !c.healthy_status(101));
    }

    #[test]
    fn every_key_is_honoured() {
        let c = ActiveCheck::from_config(&HealthCheck {
            path: Some("/ready?full=1".into()),
            method: Some("HEAD".into()),
            status: Some(204),
            port: Some(9000),
            scheme: Some("h2c".into()),
            hostname: Some("check.local".into()),
            interval: Some(GoDuration::from_millis(500)),
            unhealthy_interval: Some(GoDuration::from_millis(100)),
            timeout: Some(GoDuration::from_millis(200)),
            follow_redirects: Some(false),
            headers: [("X-Probe".to_string(), "1".to_string())].into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.method, Method::HEAD);
        assert!(c.healthy_status(204) && !c.healthy_status(200));
        assert_eq!(c.unhealthy_interval, Duration::from_millis(100));
        assert_eq!(c.hostname.as_ref().unwrap(), "check.local");
        assert_eq!(c.headers["x-probe"], "1");
        let t = c.target(&server("http://10.0.0.5:8080/app"));
        assert_eq!(
            t,
            ProbeTarget {
                authority: "10.0.0.5:9000".into(),
                path_and_query: "/ready?full=1".into(),
                scheme: ProbeScheme::H2c,
            }
        );
    }

    #[test]
    fn bad_settings_are_all_reported() {
        let errors = ActiveCheck::from_config(&HealthCheck {
            path: Some("http://elsewhere/health".into()),
            mode: Some("grpc".into()),
            scheme: Some("ftp".into()),
            method: Some("BAD METHOD".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("relative URL")));
    }

    #[test]
    fn paths_resolve_like_go() {
        assert_eq!(resolve("/base/", "health"), "/base/health");
        assert_eq!(resolve("/base", "health"), "/health");
        assert_eq!(resolve("/base/", "/health"), "/health");
        assert_eq!(resolve("", "health?x=1#frag"), "/health?x=1");
        assert_eq!(resolve("/app", ""), "/app");
        assert_eq!(resolve("", ""), "/");
        let c = ActiveCheck::from_config(&HealthCheck {
            path: Some("ping".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            c.target(&server("http://h:81/base/")).path_and_query,
            "/base/ping"
        );
        assert_eq!(c.target(&server("http://h")).authority, "h:80");
    }
}
