//! Snapshots in, `RouteTable` out. A pure function of its inputs, apart from
//! reusing live server state and connection pools from the previous table.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::composite::{self, Node};
use super::model::{self, Entry, Index, Model};
use super::{
    EntrypointRoutes, HostIndex, MiddlewareView, Route, RouteTable, RouterView, ServiceRuntime,
    ServiceView, Status, Target,
};
use crate::balance::passive::PassivePolicy;
use crate::balance::sticky::StickyCookie;
use crate::balance::{Balancer, ServerState, Strategy};
use crate::config::dynamic::{
    LoadBalancer, Middleware, Router, RuleSyntax, ServersTransport, Service, TlsConfig,
};
use crate::health::ActiveCheck;
use crate::health::config::ProbeTls;
use crate::middleware::{self, Layer, Lookup};
use crate::provider::{ConfigIssue, Snapshot};
use crate::proxy::transport::{Transport, TransportConfig};
use crate::rules;
use crate::tls::client::ClientSettings;

/// Routes of one entrypoint before indexing: plain, then TLS.
type PlainAndTls = (Vec<Arc<Route>>, Vec<Arc<Route>>);

pub struct CompileInput<'a> {
    pub snapshots: &'a [(String, Arc<Snapshot>)],
    /// Every entrypoint routers may attach to.
    pub entrypoints: &'a [String],
    /// Where routers that name no entrypoint attach.
    pub default_entrypoints: &'a [String],
    /// Entrypoints whose every router is a TLS router (`http.tls`).
    pub tls_entrypoints: &'a [String],
    pub default_transport: TransportConfig,
    pub previous: Option<&'a RouteTable>,
    pub generation: u64,
}

/// Internal services answered by escale itself.
const INTERNAL_SERVICES: &[&str] = &[
    "api@internal",
    "dashboard@internal",
    "ping@internal",
    "prometheus@internal",
    "noop@internal",
];

pub fn compile(input: CompileInput) -> RouteTable {
    let mut issues: Vec<ConfigIssue> = Vec::new();
    for (_, snap) in input.snapshots {
        issues.extend(snap.issues.iter().cloned());
    }
    // A view over the snapshots: the model is shared, never copied.
    let model = Model::new(
        input
            .snapshots
            .iter()
            .map(|(provider, snap)| (provider.clone(), snap.config.clone()))
            .collect(),
    );
    let service_index = model.services();
    let middleware_index = model.middlewares();
    let router_index = model.routers();
    let transports = build_transports(&model, &input);

    let mut service_views: BTreeMap<String, ServiceView> = BTreeMap::new();
    let mut services: BTreeMap<String, Arc<ServiceRuntime>> = BTreeMap::new();
    for (name, entry) in &service_index {
        if composite::is_composite(entry.object) && composite::types_error(entry.object).is_none() {
            continue; // Built below, over the pools.
        }
        let provider = provider_of(name);
        let service = model::qualified_service(*entry);
        let (runtime, errors) = build_service(name, &service, &transports, input.previous);
        for e in &errors {
            issues.push(
                ConfigIssue::error(provider, format!("service {name}"), e.clone())
                    .with_object(name),
            );
        }
        let status = match (&runtime, errors.is_empty()) {
            (None, _) => Status::Disabled,
            (Some(_), true) => Status::Enabled,
            (Some(_), false) => Status::Warning,
        };
        if let Some(rt) = runtime {
            services.insert(name.clone(), Arc::new(rt));
        }
        service_views.insert(
            name.clone(),
            ServiceView {
                name: name.clone(),
                provider: provider.to_string(),
                status,
                error: errors,
                used_by: Vec::new(),
            },
        );
    }

    // Services over services, once every pool is built.
    let mut composites: BTreeMap<String, Node> = BTreeMap::new();
    let mut builder = composite::Builder::new(&service_index, &services);
    for (name, entry) in &service_index {
        if !composite::is_composite(entry.object) || service_views.contains_key(name) {
            continue;
        }
        let (status, error) = match builder.node(name) {
            Ok(node) => {
                composites.insert(name.clone(), node);
                (Status::Enabled, Vec::new())
            }
            Err(e) => {
                issues.push(
                    ConfigIssue::error(provider_of(name), format!("service {name}"), e.clone())
                        .with_object(name),
                );
                (Status::Disabled, vec![e])
            }
        };
        service_views.insert(
            name.clone(),
            ServiceView {
                name: name.clone(),
                provider: provider_of(name).to_string(),
                status,
                error,
                used_by: Vec::new(),
            },
        );
    }
    drop(builder);

    let mut middleware_views: BTreeMap<String, MiddlewareView> = middleware_index
        .iter()
        .map(|(name, Entry { object: mw, .. })| {
            let view = MiddlewareView {
                name: name.clone(),
                provider: provider_of(name).to_string(),
                kind: mw.kind().unwrap_or("unknown").to_string(),
                status: Status::Enabled,
                error: Vec::new(),
                used_by: Vec::new(),
            };
            (name.clone(), view)
        })
        .collect();

    let lookup = MiddlewareLookup::new(&middleware_index, &services, &composites, &service_views);
    let mut layer_cache: HashMap<String, Result<Vec<Arc<dyn Layer>>, String>> = HashMap::new();
    // Enabled routes, each with the position of its view in `router_views`
    // (whose entrypoints it attaches to) and whether it is a TLS route.
    let mut routes: Vec<(usize, bool, Route)> = Vec::with_capacity(router_index.len());
    // In name order, as `router_index` yields them: the map is bulk-built from
    // it below, cheaper than 10k inserts that each search the tree.
    let mut router_views: Vec<(String, RouterView)> = Vec::with_capacity(router_index.len());

    // (SNI name, TLS options, router) for every enabled TLS router's hosts.
    let mut tls_claims: Vec<(String, String, String)> = Vec::new();
    // By value: the index's key becomes the `routers` key, without a copy.
    for (name, entry) in router_index {
        let provider = provider_of(&name);
        let router = entry.object;
        let router_service = middleware::qualify(&router.service, entry.provider);
        let router_middlewares = qualify_all(&router.middlewares, entry.provider);
        let mut errors: Vec<String> = Vec::new();
        let syntax = router.rule_syntax.unwrap_or_default();
        let priority = router
            .priority
            .filter(|p| *p != 0)
            .unwrap_or_else(|| rules::default_priority(&router.rule));

        let entry_points = resolve_entrypoints(router, &input, &mut errors);
        let tls = router.tls.is_some()
            || (!entry_points.is_empty()
                && entry_points
                    .iter()
                    .all(|e| input.tls_entrypoints.contains(e)));
        let parsed = match rules::parse(&router.rule, syntax) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        };
        let tls_options = tls
            .then(|| tls_options_of(router, model.tls.as_ref()))
            .and_then(|o| o.map_err(|e| errors.push(e)).ok());

        let mut layers: Vec<Arc<dyn Layer>> = Vec::new();
        for mw_name in &router_middlewares {
            if let Some(view) = middleware_views.get_mut(mw_name) {
                view.used_by.push(name.clone());
            }
            let built =
                layer_cache
                    .entry(mw_name.clone())
                    .or_insert_with(|| match lookup.get(mw_name) {
                        None => Err(format!("middleware \"{mw_name}\" does not exist")),
                        Some(mw) => {
                            middleware::build(mw_name, mw, &lookup).map_err(|e| e.to_string())
                        }
                    });
            match built {
                Ok(l) => layers.extend(l.iter().cloned()),
                Err(e) => {
                    if let Some(view) = middleware_views.get_mut(mw_name)
                        && view.error.is_empty()
                    {
                        view.status = Status::Disabled;
                        view.error.push(e.clone());
                    }
                    errors.push(e.clone());
                }
            }
        }
        // v1 modifiers act closest to the backend, after explicit middlewares.
        if let Some(parsed) = &parsed {
            for (i, modifier) in parsed.modifiers.iter().enumerate() {
                let mw = modifier.to_middleware();
                let mw_name = format!("{name}-rule-modifier-{i}");
                match middleware::build(&mw_name, &mw, &lookup) {
                    Ok(l) => layers.extend(l),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }

        let target = resolve_target(&router_service, &services, &composites, &service_views)
            .map_err(|e| errors.push(e))
            .ok();

        let enabled = errors.is_empty();
        let status = if enabled {
            Status::Enabled
        } else {
            Status::Disabled
        };
        for e in &errors {
            issues.push(
                ConfigIssue::error(provider, format!("router {name}"), e.clone())
                    .with_object(name.as_str())
                    .with_key(router_error_key(e)),
            );
        }
        if let (true, Some(parsed), Some(options)) = (enabled, &parsed, &tls_options) {
            for host in exact_hosts(&parsed.expr) {
                tls_claims.push((host, options.clone(), name.clone()));
            }
        }
        if let (true, Some(parsed), Some(target)) = (enabled, parsed, target) {
            routes.push((
                router_views.len(),
                tls,
                Route {
                    name: name.as_str().into(),
                    priority,
                    rank: 0,
                    expr: parsed.expr,
                    buffering: middleware::buffering::Plan::of(&layers),
                    layers,
                    target,
                },
            ));
        }
        let view = RouterView {
            name: name.clone(),
            provider: provider.to_string(),
            entry_points,
            middlewares: router_middlewares,
            service: router_service,
            rule: router.rule.clone(),
            rule_syntax: syntax_name(syntax).to_string(),
            tls: (tls || router.tls.is_some()).then(|| router.tls.clone().unwrap_or_default()),
            priority,
            status,
            error: errors,
        };
        router_views.push((name, view));
    }

    let tls_options_by_host = tls_options_by_host(tls_claims, &mut issues);
    // The lookup borrows the services; their views now learn their users.
    drop(lookup);
    for (name, view) in &router_views {
        if let Some(service) = service_views.get_mut(&view.service) {
            service.used_by.push(name.clone());
        }
    }

    // Global order: priority descending, then name (`Route::precedence`).
    // Routes were pushed in name order (the keys of `router_index`, unique),
    // so a stable sort on priority alone gives that order without comparing
    // names; the cached key sorts (priority, position) pairs rather than
    // moving routes around.
    routes.sort_by_cached_key(|(_, _, route)| std::cmp::Reverse(route.priority));
    debug_assert!(routes.is_sorted_by(|(_, _, a), (_, _, b)| Route::precedence(a, b).is_lt()));
    // Per entrypoint: routes for plain connections and for TLS ones.
    let mut per_entrypoint: HashMap<&str, PlainAndTls> = input
        .entrypoints
        .iter()
        .map(|e| (e.as_str(), (Vec::new(), Vec::new())))
        .collect();
    for (rank, (view, tls, mut route)) in routes.into_iter().enumerate() {
        route.rank = u32::try_from(rank).unwrap_or(u32::MAX);
        let route = Arc::new(route);
        for ep in &router_views[view].1.entry_points {
            let (plain, secure) = per_entrypoint.entry(ep.as_str()).or_default();
            if tls || input.tls_entrypoints.contains(ep) {
                secure.push(route.clone());
            } else {
                plain.push(route.clone());
            }
        }
    }
    let entrypoints = per_entrypoint
        .into_iter()
        .map(|(ep, (plain, secure))| {
            let reads_headers = plain.iter().chain(&secure).any(|r| r.expr.reads_headers());
            let routes = EntrypointRoutes {
                index: HostIndex::build(&plain),
                tls_index: HostIndex::build(&secure),
                reads_headers,
            };
            (ep.to_string(), routes)
        })
        .collect();
    // Sorted and unique: `from_iter` builds the tree in one pass.
    let routers: BTreeMap<String, RouterView> = router_views.into_iter().collect();

    for view in service_views.values_mut() {
        view.used_by.sort();
    }
    issues.sort_by(|a, b| {
        a.source
            .cmp(&b.source)
            .then_with(|| a.message.cmp(&b.message))
    });
    issues.dedup();

    // The indexes borrow the model, which the table keeps.
    drop((middleware_index, service_index));
    RouteTable {
        generation: input.generation,
        entrypoints,
        services,
        routers,
        service_views,
        middlewares: middleware_views,
        issues,
        model,
        transports,
        tls_options_by_host,
    }
}

fn router_error_key(error: &str) -> &'static str {
    if error.starts_with("invalid rule") {
        "rule"
    } else if error.contains("middleware") {
        "middlewares"
    } else if error.contains("entryPoint") {
        "entryPoints"
    } else {
        "service"
    }
}

fn syntax_name(s: RuleSyntax) -> &'static str {
    match s {
        RuleSyntax::V1 => "v1",
        RuleSyntax::V2 => "v2",
        RuleSyntax::V3 => "v3",
    }
}

/// `name@provider` -> `provider`.
pub fn provider_of(qualified: &str) -> &str {
    // A byte search: cheaper than `rsplit_once`'s char searcher, per router.
    match qualified.bytes().rposition(|b| b == b'@') {
        Some(at) => &qualified[at + 1..],
        None => "",
    }
}

fn qualify_all(names: &[String], provider: &str) -> Vec<String> {
    names
        .iter()
        .map(|m| middleware::qualify(m, provider))
        .collect()
}

/// Middlewares by qualified name; chains get their members qualified with
/// their own provider, as the merged model has them.
struct MiddlewareLookup<'a> {
    index: &'a Index<'a, Middleware>,
    chains: HashMap<&'a str, Middleware>,
    /// For the middlewares that send to a service (`errors`).
    services: &'a BTreeMap<String, Arc<ServiceRuntime>>,
    composites: &'a BTreeMap<String, Node>,
    service_views: &'a BTreeMap<String, ServiceView>,
}

impl<'a> MiddlewareLookup<'a> {
    fn new(
        index: &'a Index<'a, Middleware>,
        services: &'a BTreeMap<String, Arc<ServiceRuntime>>,
        composites: &'a BTreeMap<String, Node>,
        service_views: &'a BTreeMap<String, ServiceView>,
    ) -> Self {
        let chains = index
            .iter()
            .filter_map(|(name, entry)| match model::qualified_middleware(*entry) {
                Cow::Owned(m) => Some((name.as_str(), m)),
                Cow::Borrowed(_) => None,
            })
            .collect();
        MiddlewareLookup {
            index,
            chains,
            services,
            composites,
            service_views,
        }
    }
}

impl Lookup for MiddlewareLookup<'_> {
    fn get(&self, qualified_name: &str) -> Option<&Middleware> {
        self.chains
            .get(qualified_name)
            .or_else(|| self.index.get(qualified_name).map(|e| e.object))
    }

    fn qualify(&self, name: &str, current_provider: &str) -> String {
        middleware::qualify(name, current_provider)
    }

    fn service(&self, qualified_name: &str) -> Result<Target, String> {
        resolve_target(
            qualified_name,
            self.services,
            self.composites,
            self.service_views,
        )
    }
}

/// The TLS options a TLS router asks for, as their key in `tls.options`
/// (only the file provider defines them, so `@file` may be written).
fn tls_options_of(router: &Router, tls: Option<&TlsConfig>) -> Result<String, String> {
    let Some(name) = router
        .tls
        .as_ref()
        .and_then(|t| t.options.as_deref())
        .filter(|n| !n.is_empty())
    else {
        return Ok("default".to_string());
    };
    let key = name.strip_suffix("@file").unwrap_or(name);
    if key == "default" || tls.is_some_and(|t| t.options.contains_key(key)) {
        Ok(key.to_string())
    } else {
        Err(format!("unknown TLS options: {name}"))
    }
}

/// The hosts a rule names exactly (lowercase), as Traefik reads domains
/// from `Host` for TLS options.
fn exact_hosts(expr: &rules::Expr) -> Vec<String> {
    match expr.host_keys() {
        rules::HostKeys::Exact(hosts) | rules::HostKeys::Mixed { exact: hosts, .. } => {
            hosts.into_iter().map(str::to_ascii_lowercase).collect()
        }
        _ => Vec::new(),
    }
}

/// Which TLS options each SNI name gets. Routers that ask for different
/// options on one host get the default ones there, as in Traefik, with an
/// issue naming them.
fn tls_options_by_host(
    claims: Vec<(String, String, String)>,
    issues: &mut Vec<ConfigIssue>,
) -> HashMap<String, String> {
    let mut by_host: HashMap<String, (String, String)> = HashMap::new();
    let mut conflicted: BTreeSet<String> = BTreeSet::new();
    for (host, options, router) in claims {
        match by_host.get(&host) {
            None => {
                by_host.insert(host, (options, router));
            }
            Some((other, first)) if *other != options && conflicted.insert(host.clone()) => {
                issues.push(
                    ConfigIssue::warning(
                        provider_of(&router),
                        format!("router {router}"),
                        format!(
                            "routers {first} and {router} ask for different TLS options on host {host} \
                             ({other}, {options}): the default TLS options apply there, as in Traefik"
                        ),
                    )
                    .with_object(router.as_str()),
                );
            }
            Some(_) => {}
        }
    }
    by_host
        .into_iter()
        .filter(|(host, (options, _))| options != "default" && !conflicted.contains(host))
        .map(|(host, (options, _))| (host, options))
        .collect()
}

fn transport_config(t: &ServersTransport, default: &TransportConfig) -> TransportConfig {
    let mut c = default.clone();
    if let Some(ft) = &t.forwarding_timeouts {
        if let Some(d) = ft.dial_timeout {
            c.dial_timeout = d.0;
        }
        if let Some(d) = ft.response_header_timeout {
            c.response_header_timeout = (!d.0.is_zero()).then_some(d.0);
        }
        if let Some(d) = ft.idle_conn_timeout {
            c.idle_conn_timeout = d.0;
        }
        // Go's defaults: no pings, and 15 s for an answer when pinging.
        let ping_timeout = ft
            .ping_timeout
            .map(|d| d.0)
            .filter(|d| !d.is_zero())
            .unwrap_or(std::time::Duration::from_secs(15));
        c.h2_ping = ft
            .read_idle_timeout
            .map(|d| d.0)
            .filter(|d| !d.is_zero())
            .map(|idle| (idle, ping_timeout));
    }
    if let Some(n) = t.max_idle_conns_per_host {
        c.max_idle_conns_per_host = usize::try_from(n).unwrap_or(0);
    }
    // A named transport's TLS settings replace the static ones, as in
    // Traefik, where it is a transport of its own.
    c.tls = ClientSettings {
        server_name: t.server_name.clone(),
        insecure_skip_verify: t.insecure_skip_verify,
        root_cas: t.root_cas.clone(),
        certificates: t.certificates.clone(),
        cipher_suites: t.cipher_suites.clone(),
        min_version: t.min_version.clone(),
        max_version: t.max_version.clone(),
        disable_http2: t.disable_http2.unwrap_or(false),
        unsupported: [
            ("peerCertURI", t.peer_cert_uri.is_some()),
            ("peerCertSANs", t.peer_cert_sans.is_some()),
            ("spiffe", t.spiffe.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect(),
    };
    c
}

/// Key of the static default transport in the transports map.
pub const DEFAULT_TRANSPORT: &str = "default@internal";

/// Builds transports, reusing the previous table's when their settings are
/// unchanged so pooled connections survive a reload.
fn build_transports(model: &Model, input: &CompileInput) -> HashMap<String, Arc<Transport>> {
    let mut configs: Vec<(String, TransportConfig)> = vec![(
        DEFAULT_TRANSPORT.to_string(),
        input.default_transport.clone(),
    )];
    let mut named = BTreeMap::new();
    for (provider, config) in model.sources() {
        for (name, t) in &config.http.servers_transports {
            named.insert(middleware::qualify(name, provider), t);
        }
    }
    for (name, t) in named {
        configs.push((name, transport_config(t, &input.default_transport)));
    }
    configs
        .into_iter()
        .map(|(name, config)| {
            let reused = input
                .previous
                .and_then(|p| p.transports.get(&name))
                .filter(|t| t.config == config)
                .cloned();
            let transport = reused.unwrap_or_else(|| Arc::new(Transport::new(config)));
            (name, transport)
        })
        .collect()
}

fn build_service(
    name: &str,
    service: &Service,
    transports: &HashMap<String, Arc<Transport>>,
    previous: Option<&RouteTable>,
) -> (Option<ServiceRuntime>, Vec<String>) {
    let mut errors = Vec::new();
    if let Some(e) = composite::types_error(service) {
        errors.push(e);
        return (None, errors);
    }
    let Some(lb) = &service.load_balancer else {
        if errors.is_empty() {
            errors.push("the service has no loadBalancer".to_string());
        }
        return (None, errors);
    };
    let servers = build_servers(name, lb, previous, &mut errors);
    let transport_name = lb
        .servers_transport
        .clone()
        .unwrap_or_else(|| DEFAULT_TRANSPORT.to_string());
    let transport = match transports.get(&transport_name) {
        Some(t) => t.clone(),
        None => {
            errors.push(format!(
                "serversTransport \"{transport_name}\" does not exist"
            ));
            return (None, errors);
        }
    };
    if servers.iter().any(|s| s.tls) {
        if let Err(e) = transport.tls() {
            errors.push(format!(
                "serversTransport \"{transport_name}\" cannot make TLS connections to its https servers: {e}"
            ));
            return (None, errors);
        }
        // Pooled TLS connections were made with the settings of the
        // transport they were opened by.
        let before = previous
            .and_then(|p| p.services.get(name))
            .map(|s| &s.transport);
        if before.is_some_and(|b| !Arc::ptr_eq(b, &transport)) {
            for server in servers.iter().filter(|s| s.tls) {
                server.pool.clear();
            }
        }
    }
    let strategy = match Strategy::parse(lb.strategy.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            errors.push(e);
            return (None, errors);
        }
    };
    let health_check = lb
        .health_check
        .as_ref()
        .and_then(|hc| match ActiveCheck::from_config(hc) {
            Ok(mut c) if c.uses_tls(&servers) => match transport.tls() {
                Ok(client) => {
                    c.tls = ProbeTls(Some(client.clone()));
                    Some(Arc::new(c))
                }
                Err(e) => {
                    errors.push(format!(
                        "healthCheck over https: serversTransport \"{transport_name}\": {e}"
                    ));
                    None
                }
            },
            Ok(c) => Some(Arc::new(c)),
            Err(es) => {
                // The service still serves, without the broken check.
                errors.extend(es);
                None
            }
        });
    let (passive, passive_errors) = PassivePolicy::from_config(lb.passive_health_check.as_ref());
    errors.extend(passive_errors);
    let retries = previous
        .and_then(|p| p.services.get(name))
        .map(|s| s.retries())
        .unwrap_or(0);
    let name: Arc<str> = name.into();
    let plain_http1 = servers.iter().all(|s| !s.tls && !s.h2c);
    let runtime = ServiceRuntime {
        plain_http1,
        balancer: Balancer::new(
            name.clone(),
            servers,
            strategy,
            lb.max_conns_per_server.map(u64::from),
        ),
        sticky: lb
            .sticky
            .as_ref()
            .and_then(|s| s.cookie.as_ref())
            .map(|c| StickyCookie::new(&name, c)),
        name,
        pass_host_header: lb.pass_host_header(),
        transport,
        health_check,
        passive,
        retries: AtomicU64::new(retries),
    };
    (Some(runtime), errors)
}

fn build_servers(
    service: &str,
    lb: &LoadBalancer,
    previous: Option<&RouteTable>,
    errors: &mut Vec<String>,
) -> Vec<Arc<ServerState>> {
    let old: Vec<Arc<ServerState>> = previous
        .and_then(|p| p.services.get(service))
        .map(|s| s.balancer.servers().to_vec())
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for server in &lb.servers {
        if !seen.insert(server.url.clone()) {
            continue;
        }
        let weight = server.weight.unwrap_or(1);
        if let Some(existing) = old
            .iter()
            .find(|s| s.url == server.url && s.weight == weight && s.origin == server.origin)
        {
            out.push(existing.clone());
            continue;
        }
        match ServerState::new(&server.url, weight, server.origin.clone()) {
            Ok(state) => out.push(Arc::new(state)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    out
}

fn resolve_entrypoints(
    router: &Router,
    input: &CompileInput,
    errors: &mut Vec<String>,
) -> Vec<String> {
    if router.entry_points.is_empty() {
        return input.default_entrypoints.to_vec();
    }
    let mut out = Vec::with_capacity(router.entry_points.len());
    for ep in &router.entry_points {
        if input.entrypoints.contains(ep) {
            out.push(ep.clone());
        } else {
            errors.push(format!("entryPoint \"{ep}\" doesn't exist"));
        }
    }
    out
}

fn resolve_target(
    service: &str,
    services: &BTreeMap<String, Arc<ServiceRuntime>>,
    composites: &BTreeMap<String, Node>,
    views: &BTreeMap<String, ServiceView>,
) -> Result<Target, String> {
    if INTERNAL_SERVICES.contains(&service) {
        return Ok(Target::Internal(service.into()));
    }
    if let Some(node) = composites.get(service) {
        return Ok(Target::Composite(node.clone()));
    }
    match services.get(service) {
        Some(s) => Ok(Target::Service(s.clone())),
        None if views.contains_key(service) => Err(format!(
            "service \"{service}\" is disabled by its own errors"
        )),
        None if service.starts_with('@') || service.is_empty() => {
            Err("the router has no service".to_string())
        }
        None => Err(format!("the service \"{service}\" does not exist")),
    }
}

/// The route a plain `GET /` for `host` takes on the `web` entrypoint.
#[cfg(test)]
pub(crate) fn route_for<'t>(table: &'t RouteTable, host: &str) -> Option<&'t Arc<super::Route>> {
    let headers = http::HeaderMap::new();
    let req = rules::RequestInfo {
        host,
        path: "/",
        query: None,
        method: &http::Method::GET,
        headers: &headers,
        client_ip: std::net::Ipv4Addr::LOCALHOST.into(),
    };
    table.entrypoint("web")?.find(&req, false)
}

/// Compiles a YAML dynamic configuration from the file provider, on one `web` entrypoint.
#[cfg(test)]
pub(crate) fn compile_yaml(yaml: &str, previous: Option<&RouteTable>) -> RouteTable {
    let config: crate::config::dynamic::DynamicConfig =
        crate::config::file_format::parse_dynamic_file(std::path::Path::new("test.yml"), yaml)
            .unwrap()
            .0;
    let snaps = vec![(
        "file".to_string(),
        Arc::new(Snapshot {
            config: Arc::new(config),
            issues: vec![],
        }),
    )];
    let eps = vec!["web".to_string()];
    compile(CompileInput {
        snapshots: &snaps,
        entrypoints: &eps,
        default_entrypoints: &eps,
        tls_entrypoints: &[],
        default_transport: TransportConfig::default(),
        previous,
        generation: 1,
    })
}

#[cfg(test)]
mod lb_tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn service(lb: &str) -> String {
        format!(
            "http:\n  services:\n    svc:\n      loadBalancer:\n{lb}        servers:\n          - url: \"http://10.0.0.1:80\"\n          - url: \"http://10.0.0.2:80\"\n"
        )
    }

    #[test]
    fn strategies_and_their_errors() {
        let t = compile_yaml(&service("        strategy: p2c\n"), None);
        assert_eq!(t.services["svc@file"].balancer.strategy(), &Strategy::P2c);
        let t = compile_yaml(&service("        strategy: random\n"), None);
        assert!(!t.services.contains_key("svc@file"));
        let view = &t.service_views["svc@file"];
        assert_eq!(view.status, Status::Disabled);
        assert_eq!(
            view.error,
            vec!["unsupported load-balancer strategy \"random\""]
        );
    }

    #[test]
    fn broken_health_check_warns_but_serves() {
        let t = compile_yaml(
            &service("        healthCheck:\n          path: \"http://x/health\"\n"),
            None,
        );
        let rt = &t.services["svc@file"];
        assert!(rt.health_check.is_none());
        assert_eq!(t.service_views["svc@file"].status, Status::Warning);
        let t = compile_yaml(
            &service("        healthCheck:\n          path: /health\n"),
            None,
        );
        assert!(t.services["svc@file"].health_check.is_some());
    }

    #[test]
    fn reload_keeps_server_state_retries_and_passive_settings() {
        let lb = "        passiveHealthCheck:\n          failureWindow: 3s\n          maxFailedAttempts: 2\n        maxConnsPerServer: 7\n        sticky:\n          cookie: {}\n";
        let t1 = compile_yaml(&service(lb), None);
        let rt1 = &t1.services["svc@file"];
        assert_eq!(rt1.passive.max_failed_attempts, 2);
        assert_eq!(rt1.balancer.max_conns(), Some(7));
        assert!(rt1.sticky.as_ref().unwrap().name().starts_with('_'));
        rt1.retries.fetch_add(5, Ordering::Relaxed);
        rt1.balancer.servers()[0].set_healthy(false);
        let t2 = compile_yaml(&service(lb), Some(&t1));
        let rt2 = &t2.services["svc@file"];
        assert_eq!(rt2.retries(), 5);
        assert!(Arc::ptr_eq(
            &rt1.balancer.servers()[0],
            &rt2.balancer.servers()[0]
        ));
        assert!(!rt2.balancer.servers()[0].is_available());
    }
}

#[cfg(test)]
mod order_tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::config::dynamic::DynamicConfig;
    use crate::rules::RequestInfo;

    /// `compile` sorts routes on priority alone, relying on `router_index`
    /// yielding them in name order. Names whose raw order differs from their
    /// qualified order (`r1` < `r10`, but `r10@file` < `r1@file`), equal
    /// priorities, and a second provider: the ranks still follow
    /// `Route::precedence`.
    #[test]
    fn ranks_follow_priority_then_qualified_name() {
        let routers = |provider: &str, names: &[(&str, i64)]| {
            let mut c = DynamicConfig::default();
            for (name, priority) in names {
                let host = format!("{}.{provider}", name.replace('@', "-at-"));
                c.http.routers.insert(
                    name.to_string(),
                    Router {
                        rule: format!("Host(`{host}.test`)"),
                        service: "noop@internal".into(),
                        priority: Some(*priority),
                        ..Router::default()
                    },
                );
            }
            Arc::new(Snapshot {
                config: Arc::new(c),
                issues: Vec::new(),
            })
        };
        let file = [
            ("r1", 5),
            ("r10", 5),
            ("r1-b", 5),
            ("r1_b", 5),
            ("a", 7),
            ("B", 5),
            ("z", 9),
            ("y", 0),
        ];
        let docker = [("r1", 5), ("r2@file", 5), ("a", 7), ("zz", 1)];
        let snaps = vec![
            ("file".to_string(), routers("file", &file)),
            ("docker".to_string(), routers("docker", &docker)),
        ];
        let eps = vec!["web".to_string()];
        let table = compile(CompileInput {
            snapshots: &snaps,
            entrypoints: &eps,
            default_entrypoints: &eps,
            tls_entrypoints: &[],
            default_transport: TransportConfig::default(),
            previous: None,
            generation: 1,
        });
        let headers = http::HeaderMap::new();
        let mut ranked: Vec<(u32, String, i64)> = table
            .routers
            .iter()
            .map(|(name, view)| {
                let rule = view.rule.to_ascii_lowercase();
                let host = &rule["host(`".len()..rule.len() - "`)".len()];
                let req = RequestInfo {
                    host,
                    path: "/",
                    query: None,
                    method: &http::Method::GET,
                    headers: &headers,
                    client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                };
                let web = table.entrypoint("web").unwrap();
                let found = web.index.find(&req);
                let route = found.filter(|r| &*r.name == name.as_str());
                let route = route.unwrap_or_else(|| panic!("{name} not found by {host}"));
                (route.rank, name.clone(), route.priority)
            })
            .collect();
        assert_eq!(ranked.len(), 12);
        ranked.sort();
        let ranks: Vec<u32> = ranked.iter().map(|(rank, _, _)| *rank).collect();
        assert_eq!(ranks, (0..12).collect::<Vec<u32>>());
        let by_rank: Vec<&str> = ranked.iter().map(|(_, name, _)| name.as_str()).collect();
        let mut by_precedence = ranked.clone();
        by_precedence.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
        let by_precedence: Vec<&str> = by_precedence.iter().map(|(_, n, _)| n.as_str()).collect();
        assert_eq!(by_rank, by_precedence);
        // Spelled out, so a change of `Route::precedence` shows here too.
        assert_eq!(
            by_rank,
            [
                "y@file", // no priority: the rule's length, 19
                "z@file",
                "a@docker",
                "a@file",
                "B@file",
                "r1-b@file",
                "r10@file",
                "r1@docker",
                "r1@file",
                "r1_b@file",
                "r2@file",
                "zz@docker",
            ]
        );
    }
}

#[cfg(test)]
mod tls_options_tests {
    use super::*;

    #[test]
    fn tls_options_by_host_and_their_conflicts() {
        let yaml = "
http:
  routers:
    a:
      rule: Host(`a.test`) || Host(`A2.test`)
      service: s
      tls: {options: strict}
    b:
      rule: Host(`b.test`)
      service: s
      tls: {options: strict@file}
    b-again:
      rule: Host(`b.test`) && Path(`/x`)
      service: s
      tls: {}
    plain:
      rule: Host(`c.test`)
      service: s
    unknown:
      rule: Host(`d.test`)
      service: s
      tls: {options: nowhere}
  services:
    s:
      loadBalancer:
        servers: [{url: http://127.0.0.1:9}]
tls:
  options:
    strict:
      minVersion: VersionTLS13
";
        let t = compile_yaml(yaml, None);
        let mut hosts: Vec<(&str, &str)> = t
            .tls_options_by_host
            .iter()
            .map(|(h, o)| (h.as_str(), o.as_str()))
            .collect();
        hosts.sort();
        assert_eq!(hosts, vec![("a.test", "strict"), ("a2.test", "strict")]);
        let conflict = t
            .issues
            .iter()
            .find(|i| i.message.contains("different TLS options on host b.test"))
            .expect("the conflict is reported");
        assert!(conflict.message.contains("default TLS options apply"));
        assert_eq!(
            t.routers["unknown@file"].error,
            vec!["unknown TLS options: nowhere"]
        );
    }
}

#[cfg(test)]
mod transport_tests {
    use super::*;

    #[test]
    fn h2_pings_follow_go_defaults() {
        use crate::config::duration::GoDuration;
        let ping = |idle: Option<u64>, answer: Option<u64>| {
            let t = ServersTransport {
                forwarding_timeouts: Some(crate::config::dynamic::ForwardingTimeouts {
                    read_idle_timeout: idle.map(GoDuration::from_millis),
                    ping_timeout: answer.map(GoDuration::from_millis),
                    ..Default::default()
                }),
                ..Default::default()
            };
            transport_config(&t, &TransportConfig::default()).h2_ping
        };
        let ms = std::time::Duration::from_millis;
        assert_eq!(ping(None, Some(300)), None);
        assert_eq!(ping(Some(0), None), None);
        assert_eq!(ping(Some(200), None), Some((ms(200), ms(15_000))));
        assert_eq!(ping(Some(200), Some(300)), Some((ms(200), ms(300))));
    }
}
