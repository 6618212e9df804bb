//! The compiled routing table: what the proxy consults for every request.
//!
//! [`compile`](compile::compile) turns the providers' snapshots into an
//! immutable [`RouteTable`]: names qualified, rules parsed once, middleware
//! chains built, balancers created, routes indexed by host. The proxy reads
//! the current table through an `ArcSwap` without locking.

pub mod compile;
pub mod composite;
pub mod host_index;
pub mod model;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::balance::Balancer;
use crate::balance::passive::PassivePolicy;
use crate::balance::sticky::StickyCookie;
use crate::health::ActiveCheck;
use crate::middleware::Layer;
use crate::provider::ConfigIssue;
use crate::proxy::transport::Transport;
use crate::rules::{Expr, RequestInfo};

pub use compile::{CompileInput, compile};
pub use host_index::HostIndex;
pub use model::Model;

/// One enabled router, ready to serve.
#[derive(Debug)]
pub struct Route {
    pub name: Arc<str>,
    pub priority: i64,
    /// Position in the global priority order (lower wins).
    pub rank: u32,
    pub expr: Expr,
    pub layers: Vec<Arc<dyn Layer>>,
    /// What the route's `buffering` layers ask for, gathered once here so
    /// that other routes pay nothing for it.
    pub buffering: Option<Box<crate::middleware::buffering::Plan>>,
    pub target: Target,
}

impl Route {
    /// The order routes are tried in: priority descending, then name, a
    /// stable tie-break.
    pub fn precedence(a: &Route, b: &Route) -> std::cmp::Ordering {
        b.priority
            .cmp(&a.priority)
            .then_with(|| a.name.cmp(&b.name))
    }
}

/// Routes sorted in precedence order, each numbered with its rank.
pub fn ranked(mut routes: Vec<Route>) -> Vec<Arc<Route>> {
    routes.sort_by(Route::precedence);
    routes
        .into_iter()
        .enumerate()
        .map(|(rank, mut route)| {
            route.rank = u32::try_from(rank).unwrap_or(u32::MAX);
            Arc::new(route)
        })
        .collect()
}

/// Where a route sends its requests.
#[derive(Debug, Clone)]
pub enum Target {
    Service(Arc<ServiceRuntime>),
    /// `weighted`, `highestRandomWeight`, `failover` or `mirroring`:
    /// services over services.
    Composite(composite::Node),
    /// `api@internal`, `dashboard@internal`, `ping@internal`,
    /// `prometheus@internal`, `noop@internal`: answered by escale itself.
    Internal(Arc<str>),
}

/// A load-balanced service.
#[derive(Debug)]
pub struct ServiceRuntime {
    pub name: Arc<str>,
    pub balancer: Balancer,
    pub pass_host_header: bool,
    /// Every server speaks plain HTTP/1.1 (no `https://`, no h2c): what
    /// the relay (`proxy::relay`) forwards to, decided before a server is
    /// picked so that the balancer's turn is not spent on a request the
    /// pipeline then takes.
    pub plain_http1: bool,
    pub sticky: Option<StickyCookie>,
    pub transport: Arc<Transport>,
    /// The active health check, when configured and valid.
    pub health_check: Option<Arc<ActiveCheck>>,
    /// When live-traffic failures eject a server.
    pub passive: PassivePolicy,
    /// Requests sent again after a failed attempt, since the service first
    /// appeared (carried over reloads).
    pub retries: AtomicU64,
}

impl ServiceRuntime {
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

/// The routes of one entrypoint: TLS routers answer only connections that
/// came in over TLS, the others only plain ones, as in Traefik.
#[derive(Debug, Default)]
pub struct EntrypointRoutes {
    pub index: HostIndex,
    pub tls_index: HostIndex,
    /// Some rule reads request headers: the relay (`proxy::relay`), which
    /// routes without a header map, leaves such entrypoints to the pipeline.
    pub reads_headers: bool,
}

impl EntrypointRoutes {
    pub fn find(&self, req: &RequestInfo, tls: bool) -> Option<&Arc<Route>> {
        if tls {
            self.tls_index.find(req)
        } else {
            self.index.find(req)
        }
    }

    pub fn has_tls_routes(&self) -> bool {
        !self.tls_index.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Enabled,
    Disabled,
    Warning,
}

/// A router as the admin API shows it, including broken ones.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterView {
    pub name: String,
    pub provider: String,
    pub entry_points: Vec<String>,
    pub middlewares: Vec<String>,
    pub service: String,
    pub rule: String,
    pub rule_syntax: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::config::dynamic::RouterTls>,
    pub priority: i64,
    pub status: Status,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceView {
    pub name: String,
    pub provider: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
    pub used_by: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MiddlewareView {
    pub name: String,
    pub provider: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
    pub used_by: Vec<String>,
}

/// Everything compiled from one set of snapshots.
#[derive(Debug, Default)]
pub struct RouteTable {
    pub generation: u64,
    /// Looked up per request: foldhash rather than SipHash.
    pub entrypoints: foldhash::HashMap<String, EntrypointRoutes>,
    pub services: BTreeMap<String, Arc<ServiceRuntime>>,
    pub routers: BTreeMap<String, RouterView>,
    pub service_views: BTreeMap<String, ServiceView>,
    pub middlewares: BTreeMap<String, MiddlewareView>,
    /// Every problem: providers' own plus those found while compiling.
    pub issues: Vec<ConfigIssue>,
    /// The merged model with qualified names, for the API: a view over the
    /// providers' snapshots, shared with them.
    pub model: Model,
    /// Backend clients by `serversTransport` name; reused across reloads.
    pub transports: HashMap<String, Arc<Transport>>,
    /// The TLS options (`tls.options` key) each SNI name gets, from the
    /// `Host` rules of TLS routers; names not here get `default`.
    pub tls_options_by_host: HashMap<String, String>,
}

impl RouteTable {
    pub fn entrypoint(&self, name: &str) -> Option<&EntrypointRoutes> {
        self.entrypoints.get(name)
    }

    /// Number of enabled routes over all entrypoints (a route on two
    /// entrypoints counts twice).
    pub fn route_count(&self) -> usize {
        self.entrypoints
            .values()
            .map(|e| e.index.len() + e.tls_index.len())
            .sum()
    }
}
