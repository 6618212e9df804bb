//! The read-only JSON API: Traefik v3's paths and shapes (so scripts written
//! for Traefik keep working), plus escale's extras under the same prefix:
//! `/api/providers`, `/api/issues`, `/api/events` and live per-server figures.
//!
//! Objects are built the way Traefik builds them: the dynamic configuration
//! object, with the runtime fields (`status`, `error`, `usedBy`, ...) added
//! beside its keys.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::query::{Criterion, Query, SortKey, paginate, percent_decode, sort_by};
use super::{Admin, EntrypointInfo, INTERNAL_PROVIDER};
use crate::balance::ServerState;
use crate::provider::{ConfigIssue, Severity, rfc3339};
use crate::proxy::body::Body;
use crate::routing::compile::provider_of;
use crate::routing::{RouteTable, RouterView, Status};

pub async fn handle(admin: &Arc<Admin>, req: Request<Body>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    let Some(rest) = path.strip_prefix("/api/") else {
        return not_found();
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let table = admin.table();
    let id = |raw: &str| percent_decode(raw);
    match segments.as_slice() {
        ["overview"] => json_ok(&overview(admin, &table)),
        ["version"] => json_ok(&version(admin)),
        ["rawdata"] => json_ok(&rawdata(admin, &table)),
        ["entrypoints"] => list(&query, entrypoints(admin)),
        ["entrypoints", name] => match id(name) {
            Some(name) => entrypoints(admin)
                .into_iter()
                .find(|e| e["name"] == name.as_str())
                .map(|e| json_ok(&e))
                .unwrap_or_else(|| {
                    error(
                        StatusCode::NOT_FOUND,
                        &format!("entry point not found: {name}"),
                    )
                }),
            None => bad_id("entryPointID", name),
        },
        ["http", "routers"] => {
            let mut items = routers(&table, Criterion::from_query(&query).as_ref());
            sort_by(&query, &mut items, name_of, router_key);
            list(&query, items)
        }
        ["http", "routers", name] => match id(name) {
            Some(name) => match table.routers.get(&name) {
                Some(view) => json_ok(&router(&table, view, true)),
                None => error(StatusCode::NOT_FOUND, &format!("router not found: {name}")),
            },
            None => bad_id("routerID", name),
        },
        ["http", "services"] => {
            let mut items = services(admin, &table, Criterion::from_query(&query).as_ref());
            sort_by(&query, &mut items, name_of, service_key);
            list(&query, items)
        }
        ["http", "services", name] => match id(name) {
            Some(name) => match services(admin, &table, None)
                .into_iter()
                .find(|s| s["name"] == name.as_str())
            {
                Some(s) => json_ok(&s),
                None => error(StatusCode::NOT_FOUND, &format!("service not found: {name}")),
            },
            None => bad_id("serviceID", name),
        },
        ["http", "middlewares"] => {
            let mut items = middlewares(&table, Criterion::from_query(&query).as_ref());
            sort_by(&query, &mut items, name_of, middleware_key);
            list(&query, items)
        }
        ["http", "middlewares", name] => match id(name) {
            Some(name) => match table.middlewares.contains_key(&name) {
                true => json_ok(&middleware(&table, &name, true)),
                false => error(
                    StatusCode::NOT_FOUND,
                    &format!("middleware not found: {name}"),
                ),
            },
            None => bad_id("middlewareID", name),
        },
        // escale has no TCP or UDP routing: empty lists, as Traefik without any.
        ["tcp", "routers" | "services" | "middlewares"] | ["udp", "routers" | "services"] => {
            list(&query, Vec::new())
        }
        ["tcp", kind @ ("routers" | "services" | "middlewares"), name]
        | ["udp", kind @ ("routers" | "services"), name] => {
            let what = kind.trim_end_matches('s');
            let name = id(name).unwrap_or_default();
            error(StatusCode::NOT_FOUND, &format!("{what} not found: {name}"))
        }
        ["providers"] => json_ok(&providers(admin, &table)),
        ["providers", name] => match providers(admin, &table)
            .into_iter()
            .find(|p| Some(p["name"].as_str().unwrap_or("")) == id(name).as_deref())
        {
            Some(p) => json_ok(&p),
            None => error(
                StatusCode::NOT_FOUND,
                &format!("provider not found: {name}"),
            ),
        },
        ["issues"] => {
            let items = issues(&table, &query);
            list(&query, items)
        }
        ["events"] => super::events::stream(admin.clone()),
        _ => not_found(),
    }
}

fn name_of(v: &Value) -> &str {
    v["name"].as_str().unwrap_or("")
}

fn str_key(v: &Value, field: &str) -> Option<SortKey> {
    Some(SortKey::Str(v[field].as_str().unwrap_or("").to_string()))
}

fn router_key(v: &Value, by: &str) -> Option<SortKey> {
    match by {
        "provider" | "status" | "rule" | "service" => str_key(v, by),
        "priority" => Some(SortKey::Int(v["priority"].as_i64().unwrap_or(0))),
        "entryPoints" => Some(SortKey::Int(
            v["entryPoints"].as_array().map_or(0, |a| a.len() as i64),
        )),
        _ => None,
    }
}

fn service_key(v: &Value, by: &str) -> Option<SortKey> {
    match by {
        "type" | "provider" | "status" => str_key(v, by),
        "servers" => Some(SortKey::Int(
            v["loadBalancer"]["servers"]
                .as_array()
                .map_or(0, |a| a.len() as i64),
        )),
        _ => None,
    }
}

fn middleware_key(v: &Value, by: &str) -> Option<SortKey> {
    match by {
        "type" | "provider" | "status" => str_key(v, by),
        _ => None,
    }
}

fn json_ok(v: &impl Serialize) -> Response<Body> {
    let mut body = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
    // Go's json.Encoder ends with a newline; keep byte-level parity.
    body.push(b'\n');
    let mut res = Response::new(Body::full(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Traefik's `writeError`: a JSON message sent through Go's `http.Error`,
/// which labels it as plain text.
fn error(status: StatusCode, message: &str) -> Response<Body> {
    let mut body = serde_json::to_vec(&json!({ "message": message })).unwrap_or_default();
    body.push(b'\n');
    let mut res = Response::new(Body::full(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    res
}

fn bad_id(what: &str, raw: &str) -> Response<Body> {
    error(
        StatusCode::BAD_REQUEST,
        &format!("unable to decode {what} {raw:?}"),
    )
}

fn not_found() -> Response<Body> {
    crate::proxy::body::text_response(StatusCode::NOT_FOUND, "404 page not found\n")
}

/// One page of `items`, with `X-Next-Page`.
fn list(query: &Query, items: Vec<Value>) -> Response<Body> {
    match paginate(query, items.len()) {
        Ok(page) => {
            let mut res = json_ok(&&items[page.start..page.end]);
            if let Ok(v) = HeaderValue::from_str(&page.next.to_string()) {
                res.headers_mut().insert("x-next-page", v);
            }
            res
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

fn object(v: impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn status_str(s: Status) -> &'static str {
    match s {
        Status::Enabled => "enabled",
        Status::Disabled => "disabled",
        Status::Warning => "warning",
    }
}

fn put_errors(obj: &mut Map<String, Value>, errors: &[String], status: Status) {
    if !errors.is_empty() {
        obj.insert("error".into(), json!(errors));
    }
    obj.insert("status".into(), json!(status_str(status)));
}

/// A router as Traefik's `routerRepresentation` (`named`) or as in
/// `/api/rawdata` (not named).
fn router(table: &RouteTable, view: &RouterView, named: bool) -> Value {
    let mut obj = match table.model.router(&view.name) {
        Some(model) => object(model),
        None => object(json!({ "rule": view.rule, "service": view.service })),
    };
    // Traefik fills in the default entrypoints of routers that name none.
    if !obj.contains_key("entryPoints") && !view.entry_points.is_empty() {
        obj.insert("entryPoints".into(), json!(view.entry_points));
    }
    put_errors(&mut obj, &view.error, view.status);
    if !view.entry_points.is_empty() {
        obj.insert("using".into(), json!(view.entry_points));
    }
    if named {
        let configured = obj.get("priority").and_then(Value::as_i64).unwrap_or(0);
        obj.insert("name".into(), json!(view.name));
        obj.insert("provider".into(), json!(view.provider));
        obj.insert("priorityStr".into(), json!(configured.to_string()));
        // escale extra: the priority routing really uses (rule length when
        // none is configured).
        obj.insert("effectivePriority".into(), json!(view.priority));
    }
    Value::Object(obj)
}

fn routers(table: &RouteTable, c: Option<&Criterion>) -> Vec<Value> {
    table
        .routers
        .values()
        .filter(|r| {
            c.is_none_or(|c| {
                c.with_status(status_str(r.status))
                    && c.search_in(&[&r.rule, &r.name])
                    && c.filter_service(&r.service)
                    && c.filter_middleware(&r.middlewares)
            })
        })
        .map(|r| router(table, r, true))
        .collect()
}

/// Live figures of one server (escale extra).
pub fn server(s: &ServerState) -> Value {
    let live = s.stats.summary();
    let mut obj = json!({
        "url": s.url,
        "address": s.upstream.authority.as_str(),
        "weight": s.weight,
        "status": if s.is_available() { "UP" } else { "DOWN" },
        "inFlight": s.in_flight(),
        "requests": s.requests(),
        "failures": s.failures(),
        "rate": (live.rate * 100.0).round() / 100.0,
        "p50": live.p50,
        "p99": live.p99,
    });
    if let (Some(origin), Some(o)) = (&s.origin, obj.as_object_mut()) {
        o.insert("task".into(), json!(origin.task_id));
        o.insert("node".into(), json!(origin.node_id));
        if let Some(slot) = origin.slot {
            o.insert("slot".into(), json!(slot));
        }
        if let Some(svc) = &origin.swarm_service {
            o.insert("swarmService".into(), json!(svc));
        }
    }
    obj
}

/// `service -> [server figures]`, for the event stream.
pub fn live_stats(table: &RouteTable) -> Value {
    let servers: BTreeMap<&str, Vec<Value>> = table
        .services
        .iter()
        .map(|(name, rt)| {
            (
                name.as_str(),
                rt.balancer.servers().iter().map(|s| server(s)).collect(),
            )
        })
        .collect();
    json!({ "generation": table.generation, "servers": servers })
}

fn service(table: &RouteTable, name: &str, named: bool) -> Option<Value> {
    let view = table.service_views.get(name)?;
    let mut obj = object(table.model.service(name));
    if let Some(Value::Object(lb)) = obj.get_mut("loadBalancer") {
        // Traefik reports its defaults.
        lb.entry("passHostHeader").or_insert(json!(true));
    }
    put_errors(&mut obj, &view.error, view.status);
    if !view.used_by.is_empty() {
        obj.insert("usedBy".into(), json!(view.used_by));
    }
    let runtime = table.services.get(name);
    let mut server_status = Map::new();
    if let Some(rt) = runtime {
        for s in rt.balancer.servers() {
            let up = if s.is_available() { "UP" } else { "DOWN" };
            server_status.insert(s.url.clone(), json!(up));
        }
    }
    if named {
        if !server_status.is_empty() {
            obj.insert("serverStatus".into(), Value::Object(server_status));
        }
        obj.insert("name".into(), json!(name));
        obj.insert("provider".into(), json!(provider_of(name)));
        let kind = [
            "loadBalancer",
            "weighted",
            "highestRandomWeight",
            "mirroring",
            "failover",
        ]
        .into_iter()
        .find(|k| obj.contains_key(*k))
        .map(str::to_lowercase);
        if let Some(kind) = kind {
            obj.insert("type".into(), json!(kind));
        }
        let servers: Vec<Value> = runtime
            .map(|rt| rt.balancer.servers().iter().map(|s| server(s)).collect())
            .unwrap_or_default();
        obj.insert("servers".into(), json!(servers));
    } else if !server_status.is_empty() {
        obj.insert("serverStatus".into(), Value::Object(server_status));
    }
    Some(Value::Object(obj))
}

/// Internal services exist without configuration; Traefik lists them.
fn internal_service(table: &RouteTable, name: &str, named: bool) -> Value {
    let used_by: Vec<&str> = table
        .routers
        .values()
        .filter(|r| r.service == name)
        .map(|r| r.name.as_str())
        .collect();
    let mut obj = Map::new();
    obj.insert("status".into(), json!("enabled"));
    if !used_by.is_empty() {
        obj.insert("usedBy".into(), json!(used_by));
    }
    if named {
        obj.insert("name".into(), json!(name));
        obj.insert("provider".into(), json!(INTERNAL_PROVIDER));
    }
    Value::Object(obj)
}

fn all_services(admin: &Admin, table: &RouteTable, named: bool) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = table
        .service_views
        .keys()
        .filter_map(|n| service(table, n, named).map(|v| (n.clone(), v)))
        .collect();
    for name in admin.config.internal_services() {
        if !table.service_views.contains_key(name) {
            out.push((name.to_string(), internal_service(table, name, named)));
        }
    }
    out
}

fn services(admin: &Admin, table: &RouteTable, c: Option<&Criterion>) -> Vec<Value> {
    all_services(admin, table, true)
        .into_iter()
        .filter(|(name, v)| {
            c.is_none_or(|c| {
                c.with_status(v["status"].as_str().unwrap_or("")) && c.search_in(&[name])
            })
        })
        .map(|(_, v)| v)
        .collect()
}

fn middleware(table: &RouteTable, name: &str, named: bool) -> Value {
    let Some(view) = table.middlewares.get(name) else {
        return Value::Null;
    };
    let mut obj = object(table.model.middleware(name));
    put_errors(&mut obj, &view.error, view.status);
    if !view.used_by.is_empty() {
        obj.insert("usedBy".into(), json!(view.used_by));
    }
    if named {
        obj.insert("name".into(), json!(name));
        obj.insert("provider".into(), json!(view.provider));
        obj.insert("type".into(), json!(view.kind.to_lowercase()));
    }
    Value::Object(obj)
}

fn middlewares(table: &RouteTable, c: Option<&Criterion>) -> Vec<Value> {
    table
        .middlewares
        .values()
        .filter(|m| {
            c.is_none_or(|c| c.with_status(status_str(m.status)) && c.search_in(&[&m.name]))
        })
        .map(|m| middleware(table, &m.name, true))
        .collect()
}

fn section<'a>(statuses: impl Iterator<Item = &'a str>) -> Value {
    let (mut total, mut warnings, mut errors) = (0, 0, 0);
    for s in statuses {
        total += 1;
        match s {
            "disabled" => errors += 1,
            "warning" => warnings += 1,
            _ => {}
        }
    }
    json!({ "total": total, "warnings": warnings, "errors": errors })
}

fn provider_title(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn overview(admin: &Admin, table: &RouteTable) -> Value {
    let services = all_services(admin, table, false);
    let zero = json!({ "total": 0, "warnings": 0, "errors": 0 });
    let errors = table
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .count();
    let (mut up, mut down) = (0, 0);
    for rt in table.services.values() {
        for s in rt.balancer.servers() {
            if s.is_available() {
                up += 1;
            } else {
                down += 1;
            }
        }
    }
    json!({
        "http": {
            "routers": section(table.routers.values().map(|r| status_str(r.status))),
            "services": section(services.iter().map(|(_, v)| v["status"].as_str().unwrap_or(""))),
            "middlewares": section(table.middlewares.values().map(|m| status_str(m.status))),
        },
        "tcp": { "routers": zero, "services": zero, "middlewares": zero },
        "udp": { "routers": zero, "services": zero },
        "features": {
            "tracing": "",
            "metrics": if admin.config.prometheus.is_some() { "Prometheus" } else { "" },
            "accessLog": admin.config.access_log,
        },
        "providers": admin
            .ctx
            .providers
            .iter()
            .filter(|p| p.name != INTERNAL_PROVIDER)
            .map(|p| provider_title(&p.name))
            .collect::<Vec<_>>(),
        // escale extras.
        "issues": { "total": table.issues.len(), "errors": errors, "warnings": table.issues.len() - errors },
        "servers": { "total": up + down, "up": up, "down": down },
        "generation": table.generation,
        "draining": admin.is_draining(),
    })
}

fn version(admin: &Admin) -> Value {
    json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "Codename": "escale",
        "startDate": rfc3339(admin.started),
    })
}

fn rawdata(admin: &Admin, table: &RouteTable) -> Value {
    let routers: Map<String, Value> = table
        .routers
        .iter()
        .map(|(n, v)| (n.clone(), router(table, v, false)))
        .collect();
    let services: Map<String, Value> = all_services(admin, table, false).into_iter().collect();
    let middlewares: Map<String, Value> = table
        .middlewares
        .keys()
        .map(|n| (n.clone(), middleware(table, n, false)))
        .collect();
    let mut obj = Map::new();
    for (key, map) in [
        ("routers", routers),
        ("middlewares", middlewares),
        ("services", services),
    ] {
        if !map.is_empty() {
            obj.insert(key.into(), Value::Object(map));
        }
    }
    Value::Object(obj)
}

/// Go's `time.Duration.String()` for whole seconds (`10s`, `3m0s`, `1h0m0s`).
fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        return crate::config::duration::GoDuration::from(d).to_string();
    }
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

fn entrypoint(e: &EntrypointInfo) -> Value {
    let address = if e.address.ip().is_unspecified() {
        format!(":{}", e.address.port())
    } else {
        e.address.to_string()
    };
    let mut forwarded = Map::new();
    if e.forwarded_insecure {
        forwarded.insert("insecure".into(), json!(true));
    }
    if !e.trusted_ips.is_empty() {
        forwarded.insert("trustedIPs".into(), json!(e.trusted_ips));
    }
    let mut obj = json!({
        "address": address,
        "transport": {
            "lifeCycle": { "graceTimeOut": go_duration(e.timeouts.grace) },
            "respondingTimeouts": {
                "readTimeout": e.timeouts.header_read.map_or_else(|| "0s".to_string(), go_duration),
                "idleTimeout": e.timeouts.idle.map_or_else(|| "0s".to_string(), go_duration),
            },
        },
        "forwardedHeaders": forwarded,
        "http": {},
        "name": e.name,
    });
    if e.as_default
        && let Some(o) = obj.as_object_mut()
    {
        o.insert("asDefault".into(), json!(true));
    }
    obj
}

fn entrypoints(admin: &Admin) -> Vec<Value> {
    let mut eps: Vec<&EntrypointInfo> = admin.ctx.entrypoints.iter().collect();
    eps.sort_by(|a, b| a.name.cmp(&b.name));
    eps.into_iter().map(entrypoint).collect()
}

fn providers(admin: &Admin, table: &RouteTable) -> Vec<Value> {
    admin
        .ctx
        .providers
        .iter()
        .filter(|p| p.name != INTERNAL_PROVIDER)
        .map(|p| {
            let name = p.name.as_str();
            let issues: Vec<&ConfigIssue> =
                table.issues.iter().filter(|i| i.provider == name).collect();
            let errors = issues
                .iter()
                .filter(|i| i.severity == Severity::Error)
                .count();
            let servers: usize = table
                .services
                .iter()
                .filter(|(n, _)| provider_of(n) == name)
                .map(|(_, s)| s.balancer.servers().len())
                .sum();
            let mut obj = object(p.view());
            obj.insert(
                "routers".into(),
                json!(
                    table
                        .routers
                        .values()
                        .filter(|r| r.provider == name)
                        .count()
                ),
            );
            obj.insert(
                "services".into(),
                json!(
                    table
                        .service_views
                        .values()
                        .filter(|s| s.provider == name)
                        .count()
                ),
            );
            obj.insert(
                "middlewares".into(),
                json!(
                    table
                        .middlewares
                        .values()
                        .filter(|m| m.provider == name)
                        .count()
                ),
            );
            obj.insert("servers".into(), json!(servers));
            obj.insert("errors".into(), json!(errors));
            obj.insert("warnings".into(), json!(issues.len() - errors));
            obj.insert("issues".into(), json!(issues));
            Value::Object(obj)
        })
        .collect()
}

/// Every configuration problem, filterable by `provider`, `severity` and
/// `search` (over source, object, key and message).
fn issues(table: &RouteTable, q: &Query) -> Vec<Value> {
    let search = q.get("search").to_lowercase();
    table
        .issues
        .iter()
        .filter(|i| q.get("provider").is_empty() || i.provider == q.get("provider"))
        .filter(|i| {
            let sev = q.get("severity");
            sev.is_empty()
                || matches!(
                    (i.severity, sev),
                    (Severity::Error, "error") | (Severity::Warning, "warning")
                )
        })
        .filter(|i| {
            search.is_empty()
                || [
                    i.source.as_str(),
                    i.object.as_deref().unwrap_or(""),
                    i.key.as_deref().unwrap_or(""),
                    i.message.as_str(),
                ]
                .iter()
                .any(|f| f.to_lowercase().contains(&search))
        })
        .map(|i| serde_json::to_value(i).unwrap_or_default())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{AdminConfig, AdminContext, ApiConfig};
    use crate::config::dynamic::{
        DynamicConfig, LoadBalancer, Router, Server, ServerOrigin, Service,
    };
    use crate::provider::{ConfigIssue, Snapshot};
    use crate::routing::{CompileInput, compile};
    use http_body_util::BodyExt;

    /// What the swarm provider publishes: task-backed servers and label
    /// errors naming their label.
    fn swarm_admin() -> Arc<Admin> {
        let mut config = DynamicConfig::default();
        config.http.routers.insert(
            "ludo".into(),
            Router {
                rule: "Host(`alderaan`) && PathPrefix(`/ludotm/ludotheque`)".into(),
                service: "ludo".into(),
                ..Router::default()
            },
        );
        let server = |ip: &str, task: &str, slot| Server {
            url: format!("http://{ip}:80"),
            origin: Some(ServerOrigin {
                task_id: task.into(),
                node_id: "node-1".into(),
                slot: Some(slot),
                swarm_service: Some("saas_ludo".into()),
            }),
            ..Server::default()
        };
        config.http.services.insert(
            "ludo".into(),
            Service {
                load_balancer: Some(LoadBalancer {
                    servers: vec![
                        server("10.201.0.5", "task-a", 1),
                        server("10.201.0.6", "task-b", 2),
                    ],
                    ..LoadBalancer::default()
                }),
                ..Service::default()
            },
        );
        let snapshot = Snapshot {
            config: Arc::new(config),
            issues: vec![
                ConfigIssue::error("swarm", "swarm service saas_shop", "unknown matcher `Hots`")
                    .with_key("traefik.http.routers.shop.rule")
                    .with_object("shop@swarm"),
            ],
        };
        let eps = vec!["web".to_string()];
        let table = compile(CompileInput {
            snapshots: &[("swarm".to_string(), Arc::new(snapshot))],
            entrypoints: &eps,
            default_entrypoints: &eps,
            tls_entrypoints: &[],
            default_transport: Default::default(),
            previous: None,
            generation: 3,
        });
        let (_, providers) = {
            let mut hub = crate::provider::Hub::new();
            let h = hub.register("swarm");
            h.status.synced();
            (h, hub.statuses())
        };
        Admin::new(
            AdminConfig {
                api: Some(ApiConfig::default()),
                ..AdminConfig::default()
            },
            AdminContext {
                table: Arc::new(arc_swap::ArcSwap::from_pointee(table)),
                draining: Default::default(),
                providers,
                entrypoints: Vec::new(),
            },
        )
    }

    async fn get(admin: &Arc<Admin>, path: &str) -> (StatusCode, Value) {
        let req = Request::get(path).body(Body::empty()).unwrap();
        let res = handle(admin, req).await;
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn swarm_servers_carry_task_node_and_slot() {
        let admin = swarm_admin();
        let (status, s) = get(&admin, "/api/http/services/ludo@swarm").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(s["provider"], "swarm");
        assert_eq!(s["serverStatus"]["http://10.201.0.5:80"], "UP");
        let servers = s["servers"].as_array().unwrap();
        assert_eq!(servers[0]["task"], "task-a");
        assert_eq!(servers[0]["node"], "node-1");
        assert_eq!(servers[0]["slot"], 1);
        assert_eq!(servers[1]["slot"], 2);
        assert_eq!(servers[0]["swarmService"], "saas_ludo");
        assert_eq!(servers[0]["address"], "10.201.0.5:80");
        assert_eq!(s["usedBy"], json!(["ludo@swarm"]));
        let (_, r) = get(&admin, "/api/http/routers/ludo@swarm").await;
        assert_eq!(r["status"], "enabled");
        assert_eq!(r["using"], json!(["web"]));
    }

    #[tokio::test]
    async fn label_errors_show_their_label() {
        let admin = swarm_admin();
        let (_, issues) = get(&admin, "/api/issues?search=hots").await;
        assert_eq!(issues[0]["key"], "traefik.http.routers.shop.rule");
        assert_eq!(issues[0]["source"], "swarm service saas_shop");
        assert_eq!(issues[0]["object"], "shop@swarm");
        let (_, providers) = get(&admin, "/api/providers").await;
        assert_eq!(providers[0]["name"], "swarm");
        assert_eq!(providers[0]["errors"], 1);
        assert_eq!(providers[0]["servers"], 2);
        assert_eq!(
            providers[0]["issues"][0]["key"],
            "traefik.http.routers.shop.rule"
        );
        let (_, overview) = get(&admin, "/api/overview").await;
        assert_eq!(overview["providers"], json!(["Swarm"]));
        assert_eq!(overview["issues"]["errors"], 1);
        assert_eq!(overview["generation"], 3);
    }

    #[tokio::test]
    async fn ping_follows_draining() {
        let admin = swarm_admin();
        assert_eq!(admin.ping().status(), StatusCode::OK);
        admin
            .ctx
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(admin.ping().status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(180)), "3m0s");
        assert_eq!(go_duration(Duration::from_secs(3725)), "1h2m5s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn sections_count_like_traefik() {
        let s = section(["enabled", "disabled", "warning", "enabled"].into_iter());
        assert_eq!(s, json!({"total": 4, "warnings": 1, "errors": 1}));
    }
}
