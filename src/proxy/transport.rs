//! Settings for connections to backends, one set per `serversTransport`.
//! The connections themselves live in each server's pool (`proxy::pool`).

use std::time::Duration;

/// Traefik's `serversTransport` settings escale honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    pub dial_timeout: Duration,
    /// `None`: wait for response headers as long as it takes (Traefik's 0).
    pub response_header_timeout: Option<Duration>,
    pub idle_conn_timeout: Duration,
    pub max_idle_conns_per_host: usize,
}

impl Default for TransportConfig {
    /// Traefik's defaults.
    fn default() -> Self {
        TransportConfig {
            dial_timeout: Duration::from_secs(30),
            response_header_timeout: None,
            idle_conn_timeout: Duration::from_secs(90),
            max_idle_conns_per_host: 200,
        }
    }
}

#[derive(Debug)]
pub struct Transport {
    pub config: TransportConfig,
}

impl Transport {
    pub fn new(config: TransportConfig) -> Self {
        Transport { config }
    }
}
