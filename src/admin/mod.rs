//! The admin side: Traefik's API, the dashboard, Prometheus metrics and
//! `/ping`, all answered as `…@internal` services.
//!
//! As in Traefik, these services are reached through routers. The
//! [`AdminConfig::internal_snapshot`] routers attach them to the `traefik`
//! entrypoint (`api.insecure`, `ping`, `metrics.prometheus`); otherwise a
//! user's router to `api@internal` (with its own auth middleware) exposes
//! them. When escale creates the `traefik` entrypoint itself and nobody asked
//! for an insecure API, it listens on loopback only.
//!
//! # Layout
//! - [`api`]: the read-only JSON API in Traefik v3's shapes, plus escale's extras.
//! - [`query`]: pagination, filters and sorting of list endpoints.
//! - [`metrics`]: Prometheus exposition with Traefik's names; the request-path recorder.
//! - [`events`]: configuration change events and the SSE stream.
//! - [`dashboard`]: the embedded web dashboard.
//! - [`healthcheck`]: the `/ping` probe behind `escale healthcheck`.

pub mod api;
pub mod dashboard;
pub mod events;
pub mod healthcheck;
pub mod metrics;
pub mod query;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use http::{Response, StatusCode};

use crate::config::dynamic::{DynamicConfig, Router, RuleSyntax};
use crate::provider::{ProviderStatus, Snapshot};
use crate::proxy::body::{Body, text_response};
use crate::proxy::handler::{BoxFuture, InternalRequest, InternalServices};
use crate::proxy::observe::{Exchange, Observer};
use crate::proxy::server::ServerTimeouts;
use crate::routing::RouteTable;

/// The entrypoint Traefik creates for its internal services.
pub const INTERNAL_ENTRYPOINT: &str = "traefik";
/// The provider name of routers escale declares itself.
pub const INTERNAL_PROVIDER: &str = "internal";
/// Traefik's default port for the `traefik` entrypoint.
pub const DEFAULT_PORT: u16 = 8080;

/// `api.*` static options.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Serve API and dashboard on the `traefik` entrypoint without auth.
    pub insecure: bool,
    pub dashboard: bool,
}

impl Default for ApiConfig {
    /// Traefik enables the dashboard whenever the API is on.
    fn default() -> Self {
        ApiConfig {
            insecure: false,
            dashboard: true,
        }
    }
}

/// `ping.*` static options.
#[derive(Debug, Clone)]
pub struct PingConfig {
    pub entry_point: String,
    /// No automatic router: the user routes to `ping@internal`.
    pub manual_routing: bool,
    /// Status answered while draining.
    pub terminating_status_code: u16,
}

impl Default for PingConfig {
    fn default() -> Self {
        PingConfig {
            entry_point: INTERNAL_ENTRYPOINT.to_string(),
            manual_routing: false,
            terminating_status_code: 503,
        }
    }
}

/// `metrics.prometheus.*` static options.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    pub entry_point: String,
    pub manual_routing: bool,
    pub add_entry_points_labels: bool,
    pub add_routers_labels: bool,
    pub add_services_labels: bool,
    /// Histogram bucket bounds, in seconds.
    pub buckets: Vec<f64>,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            entry_point: INTERNAL_ENTRYPOINT.to_string(),
            manual_routing: false,
            add_entry_points_labels: true,
            add_routers_labels: false,
            add_services_labels: true,
            buckets: vec![0.1, 0.3, 1.2, 5.0],
        }
    }
}

/// What the admin side serves; `None` parts are off.
#[derive(Debug, Clone, Default)]
pub struct AdminConfig {
    pub api: Option<ApiConfig>,
    pub ping: Option<PingConfig>,
    pub prometheus: Option<PrometheusConfig>,
    /// Shown in `/api/overview` features.
    pub access_log: bool,
}

impl AdminConfig {
    pub fn is_enabled(&self) -> bool {
        self.api.is_some() || self.ping.is_some() || self.prometheus.is_some()
    }

    pub fn insecure(&self) -> bool {
        self.api.as_ref().is_some_and(|a| a.insecure)
    }

    /// Whether the `traefik` entrypoint must exist (Traefik's
    /// `SetEffectiveConfiguration` rule).
    pub fn needs_internal_entrypoint(&self) -> bool {
        self.insecure()
            || self
                .ping
                .as_ref()
                .is_some_and(|p| !p.manual_routing && p.entry_point == INTERNAL_ENTRYPOINT)
            || self
                .prometheus
                .as_ref()
                .is_some_and(|p| !p.manual_routing && p.entry_point == INTERNAL_ENTRYPOINT)
    }

    /// Where escale puts the `traefik` entrypoint when the user did not
    /// configure one: Traefik's `:8080`, but on loopback unless the user
    /// asked for an insecure API, so nothing admin is public by accident.
    pub fn implicit_entrypoint_address(&self) -> SocketAddr {
        if self.insecure() {
            SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))
        } else {
            SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))
        }
    }

    /// The routers Traefik's internal provider declares, with the same
    /// names, rules and priorities.
    pub fn internal_snapshot(&self) -> Snapshot {
        let mut config = DynamicConfig::default();
        let routers = &mut config.http.routers;
        let router = |ep: &str, rule: &str, service: &str, priority: i64| Router {
            entry_points: vec![ep.to_string()],
            service: service.to_string(),
            rule: rule.to_string(),
            rule_syntax: Some(RuleSyntax::V3),
            priority: Some(priority),
            ..Router::default()
        };
        if let Some(api) = self.api.as_ref().filter(|a| a.insecure) {
            routers.insert(
                "api".into(),
                router(
                    INTERNAL_ENTRYPOINT,
                    "PathPrefix(`/api`)",
                    "api@internal",
                    i64::MAX - 1,
                ),
            );
            if api.dashboard {
                // Traefik adds redirect and strip-prefix middlewares here;
                // the dashboard service handles `/` and `/dashboard` itself.
                routers.insert(
                    "dashboard".into(),
                    router(
                        INTERNAL_ENTRYPOINT,
                        "PathPrefix(`/`)",
                        "dashboard@internal",
                        i64::MAX - 2,
                    ),
                );
            }
        }
        if let Some(ping) = self.ping.as_ref().filter(|p| !p.manual_routing) {
            routers.insert(
                "ping".into(),
                router(
                    &ping.entry_point,
                    "PathPrefix(`/ping`)",
                    "ping@internal",
                    i64::MAX,
                ),
            );
        }
        if let Some(prom) = self.prometheus.as_ref().filter(|p| !p.manual_routing) {
            routers.insert(
                "prometheus".into(),
                router(
                    &prom.entry_point,
                    "PathPrefix(`/metrics`)",
                    "prometheus@internal",
                    i64::MAX,
                ),
            );
        }
        Snapshot {
            config: Arc::new(config),
            issues: Vec::new(),
        }
    }

    /// The internal services that exist under this configuration.
    pub fn internal_services(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if let Some(api) = &self.api {
            out.push("api@internal");
            if api.dashboard {
                out.push("dashboard@internal");
            }
        }
        out.push("noop@internal");
        if self.ping.is_some() {
            out.push("ping@internal");
        }
        if self.prometheus.is_some() {
            out.push("prometheus@internal");
        }
        out
    }
}

/// An entrypoint as the API describes it.
#[derive(Debug, Clone)]
pub struct EntrypointInfo {
    pub name: String,
    pub address: SocketAddr,
    pub timeouts: ServerTimeouts,
    pub forwarded_insecure: bool,
    pub trusted_ips: Vec<String>,
    pub as_default: bool,
}

/// What the admin side reads from the running proxy.
pub struct AdminContext {
    pub table: Arc<ArcSwap<RouteTable>>,
    pub draining: Arc<AtomicBool>,
    pub providers: Vec<Arc<ProviderStatus>>,
    pub entrypoints: Vec<EntrypointInfo>,
}

/// The admin side of a running proxy: internal services, the request-path
/// recorder and the reload hook.
pub struct Admin {
    pub config: AdminConfig,
    pub ctx: AdminContext,
    pub metrics: metrics::Metrics,
    pub events: events::Events,
    pub started: SystemTime,
}

impl Admin {
    pub fn new(config: AdminConfig, ctx: AdminContext) -> Arc<Admin> {
        let metrics = metrics::Metrics::new(config.prometheus.clone(), &ctx);
        Arc::new(Admin {
            config,
            ctx,
            metrics,
            events: events::Events::new(),
            started: SystemTime::now(),
        })
    }

    pub fn table(&self) -> Arc<RouteTable> {
        self.ctx.table.load_full()
    }

    pub fn is_draining(&self) -> bool {
        self.ctx.draining.load(Ordering::Relaxed)
    }

    /// Called by the config pipeline after each table is published.
    pub fn published(&self, table: &Arc<RouteTable>, compile_time: Duration) {
        self.metrics.reloaded(table, compile_time);
        self.events.published(table);
    }

    fn dashboard_enabled(&self) -> bool {
        self.config.api.as_ref().is_some_and(|a| a.dashboard)
    }

    fn ping(&self) -> Response<Body> {
        if self.is_draining() {
            let code = self
                .config
                .ping
                .as_ref()
                .map(|p| p.terminating_status_code)
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            text_response(
                code,
                code.canonical_reason().unwrap_or("Service Unavailable"),
            )
        } else {
            text_response(StatusCode::OK, "OK")
        }
    }
}

fn not_found() -> Response<Body> {
    text_response(StatusCode::NOT_FOUND, "404 page not found\n")
}

impl InternalServices for Arc<Admin> {
    fn serve(&self, req: InternalRequest) -> BoxFuture<Response<Body>> {
        let admin = self.clone();
        Box::pin(async move {
            match &*req.service {
                "ping@internal" if admin.config.ping.is_some() => admin.ping(),
                "prometheus@internal" if admin.config.prometheus.is_some() => {
                    admin.metrics.response(&admin.table())
                }
                // As in Traefik, `api@internal` also serves the dashboard,
                // so one router (`/api` or `/dashboard`) exposes both.
                "api@internal"
                    if admin.dashboard_enabled()
                        && (req.request.uri().path() == "/dashboard"
                            || req.request.uri().path().starts_with("/dashboard/")) =>
                {
                    dashboard::handle(&req.request)
                }
                "api@internal" if admin.config.api.is_some() => {
                    api::handle(&admin, req.request).await
                }
                "dashboard@internal" if admin.dashboard_enabled() => {
                    dashboard::handle(&req.request)
                }
                "noop@internal" => text_response(StatusCode::OK, ""),
                _ => not_found(),
            }
        })
    }
}

/// Records every exchange: live per-server figures always, Prometheus
/// series when metrics are on.
pub struct AdminObserver(pub Arc<Admin>);

impl Observer for AdminObserver {
    fn exchange(&self, ex: &Exchange) {
        if let Some(server) = ex.server {
            server.stats.record(ex.duration);
        }
        self.0.metrics.exchange(ex);
    }

    fn connection_opened(&self, entrypoint: &str) {
        self.0.metrics.connection(entrypoint, 1);
    }

    fn connection_closed(&self, entrypoint: &str) {
        self.0.metrics.connection(entrypoint, -1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_entrypoint_follows_traefik_rules() {
        let none = AdminConfig::default();
        assert!(!none.needs_internal_entrypoint());
        let secure_api = AdminConfig {
            api: Some(ApiConfig::default()),
            ..AdminConfig::default()
        };
        assert!(!secure_api.needs_internal_entrypoint());
        assert!(
            secure_api
                .internal_snapshot()
                .config
                .http
                .routers
                .is_empty()
        );
        let ping = AdminConfig {
            ping: Some(PingConfig::default()),
            ..AdminConfig::default()
        };
        assert!(ping.needs_internal_entrypoint());
        assert!(ping.implicit_entrypoint_address().ip().is_loopback());
        let insecure = AdminConfig {
            api: Some(ApiConfig {
                insecure: true,
                dashboard: true,
            }),
            ..AdminConfig::default()
        };
        assert!(insecure.needs_internal_entrypoint());
        assert!(insecure.implicit_entrypoint_address().ip().is_unspecified());
        let routers = insecure.internal_snapshot().config.http.routers.clone();
        assert_eq!(routers.keys().collect::<Vec<_>>(), vec!["api", "dashboard"]);
        assert_eq!(routers["api"].rule, "PathPrefix(`/api`)");
        assert_eq!(routers["api"].entry_points, vec!["traefik"]);
    }

    #[test]
    fn manual_routing_declares_no_router() {
        let c = AdminConfig {
            ping: Some(PingConfig {
                manual_routing: true,
                ..PingConfig::default()
            }),
            prometheus: Some(PrometheusConfig {
                entry_point: "web".into(),
                ..PrometheusConfig::default()
            }),
            ..AdminConfig::default()
        };
        assert!(!c.needs_internal_entrypoint());
        let routers = c.internal_snapshot().config.http.routers.clone();
        assert_eq!(routers.keys().collect::<Vec<_>>(), vec!["prometheus"]);
        assert_eq!(routers["prometheus"].entry_points, vec!["web"]);
    }
}
