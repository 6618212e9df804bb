//! The dynamic configuration model: routers, services and middlewares.
//!
//! It mirrors Traefik v3's dynamic configuration (same keys, camelCase), so a
//! Traefik file decodes into it unchanged and `/api/rawdata` serializes it back
//! in Traefik's shape. Plain data, no I/O: providers fill it, `routing` compiles it.
//!
//! Fields Traefik has but escale does not implement are typed [`Unsupported`]:
//! they decode (so the file is accepted) and produce a warning naming the key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::duration::GoDuration;
use super::tree::Unsupported;

/// A whole dynamic configuration, as one provider sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DynamicConfig {
    #[serde(skip_serializing_if = "HttpConfig::is_empty")]
    pub http: HttpConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Unsupported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp: Option<Unsupported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// `tls`: certificates, stores and options (file provider only, as in Traefik).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<TlsCertificate>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, TlsOptions>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stores: BTreeMap<String, TlsStore>,
}

/// A certificate and its key: file paths, or the PEM content inline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsCertificate {
    pub cert_file: String,
    pub key_file: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsOptions {
    /// `VersionTLS12` (default) or `VersionTLS13`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
    pub sni_strict: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn_protocols: Vec<String>,
    /// TLS 1.2 suites by Go's names (TLS 1.3 suites are not configurable,
    /// as in Go).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub curve_preferences: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    /// Deprecated in Go and Traefik: no effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefer_server_cipher_suites: Option<bool>,
    pub disable_session_tickets: bool,
}

/// Client certificates: who must send one, and the CAs that sign them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientAuth {
    /// Paths, or the PEM text itself.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ca_files: Vec<String>,
    /// `NoClientCert` (default), `RequestClientCert`, `RequireAnyClientCert`,
    /// `VerifyClientCertIfGiven` or `RequireAndVerifyClientCert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsStore {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_certificate: Option<TlsCertificate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_generated_cert: Option<Unsupported>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpConfig {
    pub routers: BTreeMap<String, Router>,
    pub services: BTreeMap<String, Service>,
    pub middlewares: BTreeMap<String, Middleware>,
    pub servers_transports: BTreeMap<String, ServersTransport>,
}

impl HttpConfig {
    pub fn is_empty(&self) -> bool {
        self.routers.is_empty()
            && self.services.is_empty()
            && self.middlewares.is_empty()
            && self.servers_transports.is_empty()
    }
}

/// Which grammar a router's rule is written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSyntax {
    /// Traefik v1 `Matcher:a,b;Matcher2:c`, as v1 labels write it. Its
    /// modifiers (PathPrefixStrip, AddPrefix, ...) become implicit middlewares.
    V1,
    /// Traefik v2 expressions: multi-value matchers and gorilla/mux templates.
    V2,
    #[default]
    V3,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Router {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entry_points: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub middlewares: Vec<String>,
    pub service: String,
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_syntax: Option<RuleSyntax>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<RouterTls>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observability: Option<Unsupported>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouterTls {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_resolver: Option<Unsupported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domains: Option<Unsupported>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub highest_random_weight: Option<HighestRandomWeight>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weighted: Option<Weighted>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirroring: Option<Mirroring>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
}

/// Traefik's `healthCheck: {}` of services over services: take the
/// children's health into account (and report it to a parent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthPropagation {}

/// Weighted round robin over services.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Weighted {
    pub services: Vec<WeightedService>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Sticky>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthPropagation>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WeightedService {
    pub name: String,
    /// `None`: 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
}

/// Rendezvous hashing of the client's address over services.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HighestRandomWeight {
    pub services: Vec<WeightedService>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthPropagation>,
}

/// A main service, and a fallback while it is down.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Failover {
    pub service: String,
    pub fallback: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthPropagation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<FailoverErrors>,
}

/// Answers of the main service that send the request to the fallback.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FailoverErrors {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<String>,
    /// The most body kept to send again; `None` or negative: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_body_bytes: Option<i64>,
}

/// A main service, with copies of requests sent to mirrors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Mirroring {
    pub service: String,
    /// `None`: true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror_body: Option<bool>,
    /// `None` or negative: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<MirrorService>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthPropagation>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MirrorService {
    pub name: String,
    pub percent: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadBalancer {
    pub servers: Vec<Server>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Sticky>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Traefik's default is `true`: the client's Host goes to the backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_host_header: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub servers_transport: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_forwarding: Option<Unsupported>,
    /// escale extension: passive health (ejection on live-traffic failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passive_health_check: Option<PassiveHealthCheck>,
    /// escale extension: most in-flight requests per server (0 = unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_conns_per_server: Option<u32>,
}

impl LoadBalancer {
    pub fn pass_host_header(&self) -> bool {
        self.pass_host_header.unwrap_or(true)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Server {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preserve_path: Option<bool>,
    /// Label form only (`loadbalancer.server.port`): the task port the
    /// provider turns into `url`, as Traefik's own `Server` has it.
    #[serde(skip_serializing)]
    pub port: Option<String>,
    /// Label form only (`loadbalancer.server.scheme`), `http` by default.
    #[serde(skip_serializing)]
    pub scheme: Option<String>,
    /// Where the server comes from (swarm task, node, slot). Filled by
    /// providers, never read from a file.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub origin: Option<ServerOrigin>,
}

/// The swarm task behind a server, for the API and dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerOrigin {
    pub task_id: String,
    pub node_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm_service: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Sticky {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie: Option<StickyCookie>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StickyCookie {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub secure: bool,
    pub http_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_site: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HealthCheck {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unhealthy_interval: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// escale extension: eject a server after live-traffic failures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PassiveHealthCheck {
    /// Consecutive failures before ejection (default 1 for connect errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_failed_attempts: Option<u32>,
    /// First ejection period; it doubles while the server keeps failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_window: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ejection: Option<GoDuration>,
}

/// A middleware: exactly one of its fields is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Middleware {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_prefix: Option<AddPrefix>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<StripPrefix>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strip_prefix_regex: Option<StripPrefixRegex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace_path: Option<ReplacePath>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace_path_regex: Option<ReplacePathRegex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_scheme: Option<RedirectScheme>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_regex: Option<RedirectRegex>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<Chain>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight_req: Option<InFlightReq>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compress: Option<Compress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_auth: Option<ForwardAuth>,
    #[serde(rename = "ipAllowList", skip_serializing_if = "Option::is_none")]
    pub ip_allow_list: Option<IpAllowList>,
    /// Traefik 2's name for `ipAllowList` (without `rejectStatusCode`),
    /// still found in v2 labels.
    #[serde(rename = "ipWhiteList", skip_serializing_if = "Option::is_none")]
    pub ip_white_list: Option<IpAllowList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffering: Option<Buffering>,
    // Traefik middlewares escale does not implement: accepted with a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<ContentType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_auth: Option<DigestAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorPages>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_web: Option<Unsupported>,
    #[serde(rename = "passTLSClientCert", skip_serializing_if = "Option::is_none")]
    pub pass_tls_client_cert: Option<PassTlsClientCert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<Unsupported>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AddPrefix {
    pub prefix: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StripPrefix {
    pub prefixes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_slash: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StripPrefixRegex {
    pub regex: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReplacePath {
    pub path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReplacePathRegex {
    pub regex: String,
    pub replacement: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RedirectScheme {
    pub scheme: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    pub permanent: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RedirectRegex {
    pub regex: String,
    pub replacement: String,
    pub permanent: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Headers {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_request_headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_response_headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access_control_allow_origin_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access_control_allow_methods: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access_control_allow_headers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_control_allow_credentials: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_control_max_age: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_vary_header: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_deny: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_frame_options_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type_nosniff: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_xss_filter: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sts_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sts_include_subdomains: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sts_preload: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_security_policy: Option<String>,
    // Security headers escale does not implement yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_control_expose_headers: Option<Unsupported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Unsupported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts_proxy_headers: Option<Unsupported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_proxy_headers: Option<Unsupported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_sts_header: Option<Unsupported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_browser_xss_value: Option<Unsupported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_security_policy_report_only: Option<Unsupported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<Unsupported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions_policy: Option<Unsupported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_development: Option<Unsupported>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BasicAuth {
    pub users: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    pub remove_header: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_field: Option<String>,
}

/// The client's TLS certificate, passed to the backend in headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PassTlsClientCert {
    pub pem: bool,
    /// Subject, issuer, dates and names of the certificate: not in escale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<Unsupported>,
}

/// HTTP Digest authentication; users are `user:realm:HA1` (htdigest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DigestAuth {
    pub users: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    pub remove_header: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_field: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Chain {
    pub middlewares: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Retry {
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_interval: Option<GoDuration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SourceCriterion {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_strategy: Option<IpStrategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_header_name: Option<String>,
    pub request_host: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IpStrategy {
    pub depth: u32,
    #[serde(rename = "excludedIPs", skip_serializing_if = "Vec::is_empty")]
    pub excluded_ips: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IpAllowList {
    pub source_range: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_strategy: Option<IpStrategy>,
    /// 0: Traefik's default, 403.
    #[serde(skip_serializing_if = "is_zero")]
    pub reject_status_code: u16,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InFlightReq {
    pub amount: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_criterion: Option<SourceCriterion>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RateLimit {
    pub average: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<GoDuration>,
    pub burst: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_criterion: Option<SourceCriterion>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ForwardAuth {
    pub address: String,
    /// `None` (unset) is Traefik's legacy behaviour, unlike `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_forward_header: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auth_response_headers: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_response_headers_regex: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auth_request_headers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_auth_cookies_to_response: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub preserve_location_header: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub preserve_request_method: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_response_body_size: Option<i64>,
    #[serde(rename = "authSigninURL", skip_serializing_if = "String::is_empty")]
    pub auth_signin_url: String,
    /// Refused when true: the auth server would not get the body.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forward_body: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<i64>,
    /// For an `https` auth server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTls>,
    /// Names the user in Traefik's access log; not in escale's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_field: Option<Unsupported>,
}

/// Traefik's `ClientTLS`: how a side request (`forwardAuth`) checks and
/// presents certificates. Files or PEM text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientTls {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
    /// Deprecated in Traefik, where it does nothing for a client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_optional: Option<Unsupported>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Compress {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excluded_content_types: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub included_content_types: Vec<String>,
    /// `None`: Traefik's default, 1024.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_response_body_bytes: Option<u64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub default_encoding: String,
    /// In order of preference; empty: Traefik's default (gzip, br, zstd).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub encodings: Vec<String>,
}

/// Traefik's `contentType` middleware: guess a missing `Content-Type`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContentType {
    /// Deprecated in Traefik 3: `false` turns the middleware off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_detect: Option<bool>,
}

/// Traefik's `errors` middleware: a page from another service in place of
/// a response whose status is caught.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorPages {
    /// Codes and inclusive ranges (`500`, `505-599`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<String>,
    /// A code or range, and the status sent with the page instead.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub status_rewrites: BTreeMap<String, i64>,
    pub service: String,
    /// The page's path and query on `service`, with `{status}`,
    /// `{originalStatus}` and `{url}` filled in.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// The request headers sent on to the page's service; `None`: all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_request_headers: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CircuitBreaker {
    pub expression: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_period: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_duration: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_duration: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_code: Option<u16>,
}

/// Sizes are signed, as Traefik's `int64`, so that a negative value is
/// reported as such, naming its key, rather than as a type error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Buffering {
    /// `None` or 0: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_body_bytes: Option<i64>,
    /// `None` or 0: Traefik's default, 1 MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_request_body_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_response_body_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_response_body_bytes: Option<i64>,
    /// Empty: never retry.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub retry_expression: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServersTransport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_idle_conns_per_host: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarding_timeouts: Option<ForwardingTimeouts>,
    /// `https://` servers: offer only HTTP/1.1 by ALPN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_http2: Option<bool>,
    /// The name sent by SNI and checked in the server's certificate, instead
    /// of the server URL's host.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
    /// CAs (paths or PEM text) trusted instead of the system's.
    #[serde(rename = "rootCAs", skip_serializing_if = "Vec::is_empty")]
    pub root_cas: Vec<String>,
    /// Client certificates, for servers that ask for one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<TlsCertificate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
    #[serde(rename = "peerCertURI", skip_serializing_if = "Option::is_none")]
    pub peer_cert_uri: Option<Unsupported>,
    #[serde(rename = "peerCertSANs", skip_serializing_if = "Option::is_none")]
    pub peer_cert_sans: Option<Unsupported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spiffe: Option<Unsupported>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ForwardingTimeouts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dial_timeout: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_header_timeout: Option<GoDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_conn_timeout: Option<GoDuration>,
    /// HTTP/2 connections to servers: a ping after this long without a
    /// frame read (0 or unset: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_idle_timeout: Option<GoDuration>,
    /// ...and the connection closed when its answer takes longer (15 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_timeout: Option<GoDuration>,
}

impl Middleware {
    /// The Traefik type name of the middleware that is set (`stripPrefix`, ...),
    /// or `None` when no field is set.
    pub fn kind(&self) -> Option<&'static str> {
        macro_rules! first_set {
            ($($field:ident => $name:literal),* $(,)?) => {
                $( if self.$field.is_some() { return Some($name); } )*
            };
        }
        first_set!(
            add_prefix => "addPrefix",
            strip_prefix => "stripPrefix",
            strip_prefix_regex => "stripPrefixRegex",
            replace_path => "replacePath",
            replace_path_regex => "replacePathRegex",
            redirect_scheme => "redirectScheme",
            redirect_regex => "redirectRegex",
            headers => "headers",
            basic_auth => "basicAuth",
            chain => "chain",
            retry => "retry",
            in_flight_req => "inFlightReq",
            rate_limit => "rateLimit",
            circuit_breaker => "circuitBreaker",
            buffering => "buffering",
            compress => "compress",
            content_type => "contentType",
            digest_auth => "digestAuth",
            errors => "errors",
            forward_auth => "forwardAuth",
            grpc_web => "grpcWeb",
            ip_allow_list => "ipAllowList",
            ip_white_list => "ipWhiteList",
            pass_tls_client_cert => "passTLSClientCert",
            plugin => "plugin",
        );
        None
    }

    /// How many middleware types are set; a valid middleware has exactly one.
    pub fn kinds_set(&self) -> usize {
        let v = serde_json::to_value(self).unwrap_or_default();
        v.as_object().map(|o| o.len()).unwrap_or(0)
    }
}
