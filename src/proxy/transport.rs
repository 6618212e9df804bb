//! Settings for connections to backends, one set per `serversTransport`.
//! The connections themselves live in each server's pool (`proxy::pool`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::tls::client::{ClientSettings, ClientSettingsError, TlsClient};

/// Traefik's `serversTransport` settings escale honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    pub dial_timeout: Duration,
    /// `None`: wait for response headers as long as it takes (Traefik's 0).
    pub response_header_timeout: Option<Duration>,
    pub idle_conn_timeout: Duration,
    pub max_idle_conns_per_host: usize,
    /// HTTP/2 connections: a ping after this long without reading a frame,
    /// and how long its answer may take (`readIdleTimeout`, `pingTimeout`).
    pub h2_ping: Option<(Duration, Duration)>,
    /// For `https://` servers.
    pub tls: ClientSettings,
}

impl Default for TransportConfig {
    /// Traefik's defaults.
    fn default() -> Self {
        TransportConfig {
            dial_timeout: Duration::from_secs(30),
            response_header_timeout: None,
            idle_conn_timeout: Duration::from_secs(90),
            max_idle_conns_per_host: 200,
            h2_ping: None,
            tls: ClientSettings::default(),
        }
    }
}

#[derive(Debug)]
pub struct Transport {
    pub config: TransportConfig,
    /// Built when a service with `https://` servers first uses the
    /// transport: most never need it, and the system's CAs take memory.
    tls: OnceLock<Result<Arc<TlsClient>, ClientSettingsError>>,
}

impl Transport {
    pub fn new(config: TransportConfig) -> Self {
        Transport {
            config,
            tls: OnceLock::new(),
        }
    }

    /// The TLS client for `https://` servers, or why the settings cannot
    /// make one.
    pub fn tls(&self) -> Result<&Arc<TlsClient>, &ClientSettingsError> {
        self.tls
            .get_or_init(|| TlsClient::build(&self.config.tls).map(Arc::new))
            .as_ref()
    }
}
