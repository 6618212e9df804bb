//! The static configuration as written: Traefik v3 keys, loosely typed.
//! [`super::validate`] turns it into the checked [`super::StaticConfig`].
//!
//! Sections Traefik has and escale does not implement are [`Unsupported`]:
//! they are accepted with a warning naming them. Real Traefik keys missing
//! here are found in [`crate::config::traefik_keys`] and warned about too.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::duration::GoDuration;
use crate::config::tree::Unsupported;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawStatic {
    pub global: Option<RawGlobal>,
    pub servers_transport: Option<RawServersTransport>,
    pub tcp_servers_transport: Option<Unsupported>,
    pub entry_points: BTreeMap<String, RawEntryPoint>,
    pub providers: Option<RawProviders>,
    pub api: Option<RawApi>,
    pub metrics: Option<RawMetrics>,
    pub ping: Option<RawPing>,
    pub log: Option<RawLog>,
    pub access_log: Option<RawAccessLog>,
    pub tracing: Option<Unsupported>,
    pub host_resolver: Option<Unsupported>,
    pub certificates_resolvers: Option<Unsupported>,
    pub experimental: Option<Unsupported>,
    pub core: Option<Unsupported>,
    pub spiffe: Option<Unsupported>,
    pub ocsp: Option<Unsupported>,
    /// Traefik v2 only (v3 refuses to start with it).
    pub pilot: Option<Unsupported>,
    /// Traefik v2 only.
    pub hub: Option<Unsupported>,
}

/// Traefik's phone-home switches (update check, anonymous usage report).
/// escale never calls home, so they are accepted and ignored silently.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawGlobal {
    pub check_new_version: Option<bool>,
    pub send_anonymous_usage: Option<bool>,
    pub not_append_x_forwarded_for: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawServersTransport {
    pub max_idle_conns_per_host: Option<i64>,
    pub forwarding_timeouts: Option<RawForwardingTimeouts>,
    pub insecure_skip_verify: Option<bool>,
    #[serde(rename = "rootCAs")]
    pub root_cas: Option<Vec<String>>,
    pub spiffe: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawForwardingTimeouts {
    pub dial_timeout: Option<GoDuration>,
    pub response_header_timeout: Option<GoDuration>,
    pub idle_conn_timeout: Option<GoDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawEntryPoint {
    pub address: Option<String>,
    pub as_default: Option<bool>,
    pub forwarded_headers: Option<RawForwardedHeaders>,
    pub transport: Option<RawEntryPointTransport>,
    pub http: Option<RawEntryPointHttp>,
    pub proxy_protocol: Option<Unsupported>,
    pub http2: Option<Unsupported>,
    pub http3: Option<Unsupported>,
    pub udp: Option<Unsupported>,
    pub observability: Option<Unsupported>,
    pub reuse_port: Option<Unsupported>,
    #[serde(rename = "allowACMEByPass")]
    pub allow_acme_by_pass: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawForwardedHeaders {
    pub insecure: Option<bool>,
    #[serde(rename = "trustedIPs")]
    pub trusted_ips: Option<Vec<String>>,
    pub connection: Option<Unsupported>,
    pub not_append_x_forwarded_for: Option<Unsupported>,
    pub add_x_forwarded_scheme_headers: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawEntryPointTransport {
    pub life_cycle: Option<RawLifeCycle>,
    pub responding_timeouts: Option<RawRespondingTimeouts>,
    pub keep_alive_max_time: Option<Unsupported>,
    pub keep_alive_max_requests: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawLifeCycle {
    pub request_accept_grace_timeout: Option<GoDuration>,
    pub grace_time_out: Option<GoDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawRespondingTimeouts {
    pub read_timeout: Option<GoDuration>,
    pub write_timeout: Option<GoDuration>,
    pub idle_timeout: Option<GoDuration>,
    /// escale extension: how long a client may take to send the request
    /// headers (Traefik only bounds the whole request with `readTimeout`).
    pub read_header_timeout: Option<GoDuration>,
}

/// `entryPoints.<n>.http.tls`: every router on the entrypoint is a TLS router.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawEntryPointTls {
    pub options: Option<String>,
    pub cert_resolver: Option<Unsupported>,
    pub domains: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawEntryPointHttp {
    pub redirections: Option<RawRedirections>,
    pub middlewares: Option<Unsupported>,
    pub tls: Option<RawEntryPointTls>,
    pub encoded_characters: Option<Unsupported>,
    pub encode_query_semicolons: Option<Unsupported>,
    pub sanitize_path: Option<Unsupported>,
    pub max_header_bytes: Option<Unsupported>,
    pub underscore_headers_strategy: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawRedirections {
    pub entry_point: Option<RawRedirectEntryPoint>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawRedirectEntryPoint {
    pub to: Option<String>,
    pub scheme: Option<String>,
    pub permanent: Option<bool>,
    pub priority: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawProviders {
    pub providers_throttle_duration: Option<GoDuration>,
    pub precedence: Option<Unsupported>,
    pub docker: Option<RawDocker>,
    pub swarm: Option<RawSwarm>,
    pub file: Option<RawFile>,
    pub kubernetes_ingress: Option<Unsupported>,
    #[serde(rename = "kubernetesIngressNGINX")]
    pub kubernetes_ingress_nginx: Option<Unsupported>,
    #[serde(rename = "kubernetesCRD")]
    pub kubernetes_crd: Option<Unsupported>,
    pub kubernetes_gateway: Option<Unsupported>,
    pub knative: Option<Unsupported>,
    pub rest: Option<Unsupported>,
    pub consul_catalog: Option<Unsupported>,
    pub nomad: Option<Unsupported>,
    pub ecs: Option<Unsupported>,
    pub consul: Option<Unsupported>,
    pub etcd: Option<Unsupported>,
    pub zoo_keeper: Option<Unsupported>,
    pub redis: Option<Unsupported>,
    pub http: Option<Unsupported>,
    pub plugin: Option<Unsupported>,
}

/// `providers.docker`: standalone containers.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawDocker {
    pub endpoint: Option<String>,
    pub network: Option<String>,
    pub exposed_by_default: Option<bool>,
    pub constraints: Option<String>,
    pub default_rule: Option<String>,
    pub watch: Option<bool>,
    #[serde(rename = "useBindPortIP")]
    pub use_bind_port_ip: Option<bool>,
    pub allow_empty_services: Option<bool>,
    pub http_client_timeout: Option<Unsupported>,
    pub tls: Option<Unsupported>,
    pub username: Option<Unsupported>,
    pub password: Option<Unsupported>,
}

/// `providers.swarm`: the same settings plus the polling period.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawSwarm {
    pub endpoint: Option<String>,
    pub network: Option<String>,
    pub exposed_by_default: Option<bool>,
    pub constraints: Option<String>,
    pub default_rule: Option<String>,
    pub refresh_seconds: Option<GoDuration>,
    pub watch: Option<bool>,
    #[serde(rename = "useBindPortIP")]
    pub use_bind_port_ip: Option<bool>,
    pub allow_empty_services: Option<bool>,
    pub http_client_timeout: Option<Unsupported>,
    pub tls: Option<Unsupported>,
    pub username: Option<Unsupported>,
    pub password: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawFile {
    pub filename: Option<String>,
    pub directory: Option<String>,
    pub watch: Option<bool>,
    pub debug_log_generated_template: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawApi {
    pub insecure: Option<bool>,
    pub dashboard: Option<bool>,
    pub debug: Option<bool>,
    pub base_path: Option<String>,
    pub dashboard_name: Option<Unsupported>,
    /// Hides the Traefik dashboard's ads; escale's dashboard has none, so it
    /// is accepted and ignored silently.
    pub disable_dashboard_ad: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawPing {
    pub entry_point: Option<String>,
    pub manual_routing: Option<bool>,
    pub terminating_status_code: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawMetrics {
    pub prometheus: Option<RawPrometheus>,
    pub add_internals: Option<Unsupported>,
    pub datadog: Option<Unsupported>,
    #[serde(rename = "influxDB2")]
    pub influx_db2: Option<Unsupported>,
    pub otlp: Option<Unsupported>,
    #[serde(rename = "statsD")]
    pub stats_d: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawPrometheus {
    pub buckets: Option<Vec<f64>>,
    pub add_entry_points_labels: Option<bool>,
    pub add_routers_labels: Option<bool>,
    pub add_services_labels: Option<bool>,
    pub entry_point: Option<String>,
    pub manual_routing: Option<bool>,
    pub header_labels: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawLog {
    pub level: Option<String>,
    pub format: Option<String>,
    pub file_path: Option<String>,
    pub no_color: Option<Unsupported>,
    pub max_size: Option<Unsupported>,
    pub max_age: Option<Unsupported>,
    pub max_backups: Option<Unsupported>,
    pub compress: Option<Unsupported>,
    pub otlp: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawAccessLog {
    pub file_path: Option<String>,
    pub format: Option<String>,
    pub buffering_size: Option<i64>,
    pub fields: Option<RawAccessLogFields>,
    pub filters: Option<Unsupported>,
    pub add_internals: Option<Unsupported>,
    pub otlp: Option<Unsupported>,
    pub dual_output: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawAccessLogFields {
    pub default_mode: Option<String>,
    pub names: BTreeMap<String, String>,
    pub headers: Option<RawAccessLogHeaders>,
    pub query_parameters: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RawAccessLogHeaders {
    pub default_mode: Option<String>,
    pub names: BTreeMap<String, String>,
}
