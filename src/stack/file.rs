//! The stack file schema: spanned tree → definitions, with templates
//! instantiated once per tenant. Only the shape of the file is checked here;
//! cross-references and the environment are checked in `model`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::decode::{At, Cx};
use super::source::{Entry, Kind, Problems, Val};

const TOP_KEYS: &[&str] = &[
    "stack",
    "networks",
    "proxy",
    "services",
    "templates",
    "tenants",
];
const STACK_KEYS: &[&str] = &["name", "prefix"];
const NETWORK_KEYS: &[&str] = &["driver", "attachable", "internal", "labels"];
pub const SERVICE_KEYS: &[&str] = &[
    "image",
    "replicas",
    "mode",
    "command",
    "args",
    "env",
    "labels",
    "hostname",
    "user",
    "workdir",
    "networks",
    "publish",
    "secrets",
    "configs",
    "mounts",
    "constraints",
    "resources",
    "update",
    "rollback",
    "healthcheck",
    "endpoint_mode",
    "stop_grace_period",
    "restart",
    "route",
];
const ROUTE_KEYS: &[&str] = &[
    "host",
    "path_prefix",
    "rule",
    "strip",
    "port",
    "sticky",
    "healthcheck",
    "middlewares",
    "entrypoints",
    "priority",
];
const ROUTE_HEALTH_KEYS: &[&str] = &["path", "interval", "timeout"];
const RESOURCE_KEYS: &[&str] = &["cpus", "memory", "reserve_cpus", "reserve_memory"];
const UPDATE_KEYS: &[&str] = &[
    "parallelism",
    "delay",
    "failure_action",
    "monitor",
    "max_failure_ratio",
    "order",
];
const HEALTH_KEYS: &[&str] = &["test", "interval", "timeout", "retries", "start_period"];
const MOUNT_KEYS: &[&str] = &["type", "source", "target", "readonly"];
const PUBLISH_KEYS: &[&str] = &["published", "target", "protocol", "mode"];
const FILE_REF_KEYS: &[&str] = &["source", "target"];
const RESTART_KEYS: &[&str] = &["condition", "delay", "max_attempts"];
const TENANT_KEYS: &[&str] = &["apps", "params", "env"];
/// The proxy's entrypoints and the container port each listens on.
pub const PROXY_ENTRYPOINTS: &[(&str, u16)] = &[("web", 80), ("websecure", 443), ("traefik", 8080)];

/// The default proxy image; a local build is tagged `escale:dev`.
pub const DEFAULT_PROXY_IMAGE: &str = "escale:latest";

/// The whole file, with templates already instantiated.
#[derive(Debug, Clone, Default)]
pub struct StackDef {
    pub name: Option<At<String>>,
    pub prefix: String,
    pub networks: Vec<NetworkDef>,
    pub proxy: Option<ProxyDef>,
    pub services: Vec<ServiceDef>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NetworkDef {
    pub name: At<String>,
    pub attachable: bool,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProxyDef {
    pub service: ServiceDef,
    /// Entrypoint → published host port, for the entrypoints that are published.
    pub ports: Vec<(String, At<u16>)>,
    pub network: Option<At<String>>,
}

/// Where a service came from, for messages.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Origin {
    #[default]
    Service,
    Proxy,
    Tenant {
        template: String,
        tenant: String,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceDef {
    pub name: At<String>,
    pub origin: Origin,
    pub image: Option<At<String>>,
    /// `None` means global mode.
    pub replicas: Option<u64>,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub env: Vec<(String, At<String>)>,
    pub labels: Vec<(String, At<String>)>,
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub networks: Option<Vec<At<String>>>,
    pub publish: Vec<At<Publish>>,
    pub secrets: Vec<At<FileRef>>,
    pub configs: Vec<At<FileRef>>,
    pub mounts: Vec<At<MountDef>>,
    pub constraints: Vec<String>,
    pub resources: Resources,
    pub update: Option<UpdatePolicy>,
    pub rollback: Option<UpdatePolicy>,
    pub healthcheck: Option<Health>,
    pub endpoint_mode: Option<String>,
    pub stop_grace_period: Option<Duration>,
    pub restart: Option<Restart>,
    pub route: Option<RouteDef>,
}

impl Default for At<String> {
    fn default() -> Self {
        At::new(String::new(), 0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub published: u16,
    pub target: u16,
    pub protocol: String,
    /// `host` (the default: there is no routing mesh without IPVS) or `ingress`.
    pub mode: String,
}

/// A secret or config reference: an existing object name and the file name in
/// the container.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MountDef {
    /// `bind` or `volume`.
    pub kind: String,
    pub source: String,
    pub target: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resources {
    pub cpus: Option<f64>,
    pub memory: Option<i64>,
    pub reserve_cpus: Option<f64>,
    pub reserve_memory: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdatePolicy {
    pub parallelism: Option<i64>,
    pub delay: Option<Duration>,
    pub failure_action: Option<String>,
    pub monitor: Option<Duration>,
    pub max_failure_ratio: Option<f64>,
    pub order: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Health {
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<i64>,
    pub start_period: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Restart {
    pub condition: Option<String>,
    pub delay: Option<Duration>,
    pub max_attempts: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteDef {
    pub line: usize,
    pub host: Option<At<String>>,
    pub path_prefix: Option<At<String>>,
    pub rule: Option<At<String>>,
    pub strip: bool,
    pub port: Option<At<u16>>,
    /// `Some(None)`: a sticky cookie with Traefik's default name.
    pub sticky: Option<Option<String>>,
    pub healthcheck: Option<RouteHealth>,
    pub middlewares: Vec<String>,
    pub entrypoints: Vec<String>,
    pub priority: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteHealth {
    pub path: String,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
}

/// Reads a whole stack file. Problems are added to `problems`; the result
/// holds everything that could be read.
pub fn read(root: &Val, base_dir: &std::path::Path, problems: &mut Problems) -> StackDef {
    let mut cx = Cx {
        problems,
        base_dir: base_dir.to_path_buf(),
    };
    let mut def = StackDef::default();
    let Some(top) = root.table() else {
        return def;
    };
    cx.check_keys(top, "", TOP_KEYS);
    let get = |k: &str| top.iter().find(|e| e.key == k);

    if let Some(e) = get("stack")
        && let Some(t) = cx.table(e, "stack", STACK_KEYS)
    {
        for f in t {
            match f.key.as_str() {
                "name" => def.name = cx.string(f, "stack.name"),
                "prefix" => {
                    if let Some(s) = cx.string(f, "stack.prefix") {
                        def.prefix = s.value;
                    }
                }
                _ => {}
            }
        }
    }

    if let Some(e) = get("networks") {
        match &e.value.kind {
            Kind::Table(nets) => {
                for n in nets {
                    if let Some(nd) = network(&mut cx, n) {
                        def.networks.push(nd);
                    }
                }
            }
            _ => cx.err(e, "`networks` must be a table of networks"),
        }
    }

    if let Some(e) = get("proxy") {
        def.proxy = proxy(&mut cx, e);
    }

    if let Some(e) = get("services")
        && let Kind::Table(list) = &e.value.kind
    {
        for s in list {
            let path = format!("services.{}", s.key);
            let name = At::new(s.key.clone(), cx.line(s));
            if let Some(t) = cx.table(s, &path, SERVICE_KEYS) {
                def.services
                    .push(service(&mut cx, t, &path, name, Origin::Service));
            }
        }
    } else if let Some(e) = get("services") {
        cx.err(e, "`services` must be a table of services");
    }

    let templates = get("templates");
    let tenants = get("tenants");
    instantiate(&mut cx, templates, tenants, &mut def.services);
    def
}

fn network(cx: &mut Cx, e: &Entry) -> Option<NetworkDef> {
    let path = format!("networks.{}", e.key);
    let t = cx.table(e, &path, NETWORK_KEYS)?;
    let mut nd = NetworkDef {
        name: At::new(e.key.clone(), cx.line(e)),
        attachable: true,
        internal: false,
        labels: BTreeMap::new(),
    };
    for f in t {
        let p = format!("{path}.{}", f.key);
        match f.key.as_str() {
            "driver" => {
                cx.choice(f, &p, &["overlay"]);
            }
            "attachable" => nd.attachable = cx.boolean(f, &p).unwrap_or(true),
            "internal" => nd.internal = cx.boolean(f, &p).unwrap_or(false),
            "labels" => {
                for (k, v) in cx.str_map(f, &p).unwrap_or_default() {
                    nd.labels.insert(k, v.value);
                }
            }
            _ => {}
        }
    }
    Some(nd)
}

fn proxy(cx: &mut Cx, e: &Entry) -> Option<ProxyDef> {
    let mut known: Vec<&str> = SERVICE_KEYS
        .iter()
        .copied()
        .filter(|k| *k != "route")
        .collect();
    known.extend(["name", "ports", "network"]);
    let t = cx.table(e, "proxy", &known)?;
    let name = match t.iter().find(|f| f.key == "name") {
        Some(f) => cx.string(f, "proxy.name")?,
        None => At::new("proxy".to_string(), cx.line(e)),
    };
    let rest: Vec<Entry> = t
        .iter()
        .filter(|f| !matches!(f.key.as_str(), "name" | "ports" | "network"))
        .cloned()
        .collect();
    let mut service = service(cx, &rest, "proxy", name, Origin::Proxy);
    if service.image.is_none() {
        service.image = Some(At::new(DEFAULT_PROXY_IMAGE.to_string(), cx.line(e)));
    }
    let mut ports: Vec<(String, At<u16>)> = PROXY_ENTRYPOINTS
        .iter()
        .map(|(ep, p)| (ep.to_string(), At::new(*p, cx.line(e))))
        .collect();
    let mut network = None;
    for f in t {
        match f.key.as_str() {
            "ports" => {
                let known: Vec<&str> = PROXY_ENTRYPOINTS.iter().map(|(k, _)| *k).collect();
                let Some(pt) = cx.table(f, "proxy.ports", &known) else {
                    continue;
                };
                for pe in pt {
                    let p = format!("proxy.ports.{}", pe.key);
                    if let Some(port) = cx.int(pe, &p, 0, 65535)
                        && let Some(slot) = ports.iter_mut().find(|(k, _)| *k == pe.key)
                    {
                        slot.1 = At::new(port.value as u16, port.line);
                    }
                }
            }
            "network" => network = cx.string(f, "proxy.network"),
            _ => {}
        }
    }
    // Port 0 leaves an entrypoint unpublished.
    ports.retain(|(_, p)| p.value != 0);
    Some(ProxyDef {
        service,
        ports,
        network,
    })
}

/// Reads one service definition from an already key-checked table.
pub fn service(
    cx: &mut Cx,
    t: &[Entry],
    path: &str,
    name: At<String>,
    origin: Origin,
) -> ServiceDef {
    let mut s = ServiceDef {
        name,
        origin,
        replicas: Some(1),
        ..ServiceDef::default()
    };
    let mut global = false;
    let mut replicas_line = None;
    for f in t {
        let p = format!("{path}.{}", f.key);
        match f.key.as_str() {
            "image" => s.image = cx.string(f, &p),
            "replicas" => {
                if let Some(n) = cx.int(f, &p, 0, 10_000) {
                    s.replicas = Some(n.value as u64);
                    replicas_line = Some(n.line);
                }
            }
            "mode" => {
                if let Some(m) = cx.choice(f, &p, &["replicated", "global"]) {
                    global = m.value == "global";
                }
            }
            "command" => s.command = cx.str_list(f, &p).map(strings),
            "args" => s.args = cx.str_list(f, &p).map(strings),
            "env" => s.env = cx.str_map(f, &p).unwrap_or_default(),
            "labels" => s.labels = cx.str_map(f, &p).unwrap_or_default(),
            "hostname" => s.hostname = cx.string(f, &p).map(|a| a.value),
            "user" => s.user = cx.string(f, &p).map(|a| a.value),
            "workdir" => s.workdir = cx.string(f, &p).map(|a| a.value),
            "networks" => s.networks = cx.str_list(f, &p),
            "publish" => s.publish = list_of(cx, f, &p, publish),
            "secrets" => s.secrets = list_of(cx, f, &p, file_ref),
            "configs" => s.configs = list_of(cx, f, &p, file_ref),
            "mounts" => s.mounts = list_of(cx, f, &p, mount),
            "constraints" => {
                s.constraints = cx.str_list(f, &p).map(strings).unwrap_or_default();
            }
            "resources" => s.resources = resources(cx, f, &p),
            "update" => s.update = update_policy(cx, f, &p, false),
            "rollback" => s.rollback = update_policy(cx, f, &p, true),
            "healthcheck" => s.healthcheck = health(cx, f, &p),
            "endpoint_mode" => {
                s.endpoint_mode = cx.choice(f, &p, &["vip", "dnsrr"]).map(|a| a.value);
            }
            "stop_grace_period" => s.stop_grace_period = cx.duration(f, &p).map(|a| a.value),
            "restart" => s.restart = restart(cx, f, &p),
            "route" => s.route = route(cx, f, &p),
            _ => {}
        }
    }
    if global {
        if let Some(line) = replicas_line {
            cx.problems.at_line(
                Some(line),
                format!("`{path}.replicas` cannot be set on a global service"),
            );
        }
        s.replicas = None;
    }
    s
}

fn strings(v: Vec<At<String>>) -> Vec<String> {
    v.into_iter().map(|a| a.value).collect()
}

/// A list whose items are read by `item`; each item keeps its own line.
fn list_of<T>(
    cx: &mut Cx,
    e: &Entry,
    path: &str,
    item: fn(&mut Cx, &Val, &str) -> Option<T>,
) -> Vec<At<T>> {
    let Kind::Array(items) = &e.value.kind else {
        let found = e.value.kind.type_name();
        cx.err(e, format!("`{path}` must be a list, found {found}"));
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let line = cx.val_line(v);
            item(cx, v, &format!("{path}[{i}]")).map(|x| At::new(x, line))
        })
        .collect()
}

/// Reads the fields of an inline table item, checking its keys.
fn item_table<'a>(cx: &mut Cx, v: &'a Val, path: &str, known: &[&str]) -> Option<&'a [Entry]> {
    let Kind::Table(t) = &v.kind else {
        let found = v.kind.type_name();
        cx.err_val(
            v,
            format!("`{path}` must be a string or a table, found {found}"),
        );
        return None;
    };
    cx.check_keys(t, path, known);
    Some(t)
}

fn port_number(cx: &mut Cx, e: &Entry, path: &str) -> Option<u16> {
    cx.int(e, path, 1, 65535).map(|a| a.value as u16)
}

/// `"8080:80"`, `"8080:80/udp"` or `{ published, target, protocol, mode }`.
fn publish(cx: &mut Cx, v: &Val, path: &str) -> Option<Publish> {
    if let Kind::Str(s) = &v.kind {
        let (ports, proto) = s.split_once('/').unwrap_or((s, "tcp"));
        let parsed = ports
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
            .filter(|(a, b)| *a > 0 && *b > 0);
        return match (parsed, proto) {
            (Some((published, target)), "tcp" | "udp") => Some(Publish {
                published,
                target,
                protocol: proto.to_string(),
                mode: "host".to_string(),
            }),
            _ => {
                cx.err_val(
                    v,
                    format!("`{path}`: invalid port mapping {s:?} (expected \"PUBLISHED:TARGET[/tcp|udp]\")"),
                );
                None
            }
        };
    }
    let t = item_table(cx, v, path, PUBLISH_KEYS)?;
    let mut p = Publish {
        published: 0,
        target: 0,
        protocol: "tcp".into(),
        mode: "host".into(),
    };
    let mut ok = true;
    for f in t {
        let fp = format!("{path}.{}", f.key);
        match f.key.as_str() {
            "published" => {
                p.published = port_number(cx, f, &fp).unwrap_or_else(|| {
                    ok = false;
                    0
                })
            }
            "target" => {
                p.target = port_number(cx, f, &fp).unwrap_or_else(|| {
                    ok = false;
                    0
                })
            }
            "protocol" => match cx.choice(f, &fp, &["tcp", "udp"]) {
                Some(s) => p.protocol = s.value,
                None => ok = false,
            },
            "mode" => match cx.choice(f, &fp, &["host", "ingress"]) {
                Some(s) => p.mode = s.value,
                None => ok = false,
            },
            _ => {}
        }
    }
    if ok && (p.published == 0 || p.target == 0) {
        cx.err_val(v, format!("`{path}` needs both `published` and `target`"));
        ok = false;
    }
    ok.then_some(p)
}

/// `"name"` (mounted as /run/secrets/name) or `{ source, target }`.
fn file_ref(cx: &mut Cx, v: &Val, path: &str) -> Option<FileRef> {
    if let Kind::Str(s) = &v.kind {
        return Some(FileRef {
            source: s.clone(),
            target: s.clone(),
        });
    }
    let t = item_table(cx, v, path, FILE_REF_KEYS)?;
    let mut source = None;
    let mut target = None;
    for f in t {
        let fp = format!("{path}.{}", f.key);
        match f.key.as_str() {
            "source" => source = cx.string(f, &fp).map(|a| a.value),
            "target" => target = cx.string(f, &fp).map(|a| a.value),
            _ => {}
        }
    }
    let Some(source) = source else {
        cx.err_val(v, format!("`{path}` needs a `source`"));
        return None;
    };
    Some(FileRef {
        target: target.unwrap_or_else(|| source.clone()),
        source,
    })
}

/// `"SOURCE:TARGET[:ro]"` or `{ type, source, target, readonly }`. A source
/// that is a path makes a bind mount, a name makes a volume.
fn mount(cx: &mut Cx, v: &Val, path: &str) -> Option<MountDef> {
    let kind_of = |source: &str| {
        if source.starts_with('/') || source.starts_with('.') {
            "bind"
        } else {
            "volume"
        }
    };
    if let Kind::Str(s) = &v.kind {
        let parts: Vec<&str> = s.split(':').collect();
        let (source, target, ro) = match parts.as_slice() {
            [s, t] => (*s, *t, false),
            [s, t, "ro"] => (*s, *t, true),
            [s, t, "rw"] => (*s, *t, false),
            _ => {
                cx.err_val(
                    v,
                    format!("`{path}`: invalid mount {s:?} (expected \"SOURCE:TARGET[:ro]\")"),
                );
                return None;
            }
        };
        if !target.starts_with('/') || source.is_empty() {
            cx.err_val(
                v,
                format!("`{path}`: invalid mount {s:?} (the target must be an absolute path)"),
            );
            return None;
        }
        let kind = kind_of(source).to_string();
        return Some(MountDef {
            source: resolve(cx, &kind, source),
            kind,
            target: target.to_string(),
            readonly: ro,
        });
    }
    let t = item_table(cx, v, path, MOUNT_KEYS)?;
    let mut m = MountDef {
        kind: String::new(),
        source: String::new(),
        target: String::new(),
        readonly: false,
    };
    for f in t {
        let fp = format!("{path}.{}", f.key);
        match f.key.as_str() {
            "type" => {
                if let Some(k) = cx.choice(f, &fp, &["bind", "volume"]) {
                    m.kind = k.value;
                }
            }
            "source" => m.source = cx.string(f, &fp).map(|a| a.value).unwrap_or_default(),
            "target" => m.target = cx.string(f, &fp).map(|a| a.value).unwrap_or_default(),
            "readonly" => m.readonly = cx.boolean(f, &fp).unwrap_or(false),
            _ => {}
        }
    }
    if m.source.is_empty() || !m.target.starts_with('/') {
        cx.err_val(
            v,
            format!("`{path}` needs a `source` and an absolute `target`"),
        );
        return None;
    }
    if m.kind.is_empty() {
        m.kind = kind_of(&m.source).to_string();
    }
    m.source = resolve(cx, &m.kind, &m.source);
    Some(m)
}

/// A relative bind source, resolved against the stack file's directory.
fn resolve(cx: &Cx, kind: &str, source: &str) -> String {
    use std::path::Component;
    if kind != "bind" || source.starts_with('/') {
        return source.to_string();
    }
    let mut out = cx.base_dir.clone();
    for c in std::path::Path::new(source).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.to_string_lossy().into_owned()
}

fn resources(cx: &mut Cx, e: &Entry, path: &str) -> Resources {
    let mut r = Resources::default();
    let Some(t) = cx.table(e, path, RESOURCE_KEYS) else {
        return r;
    };
    for f in t {
        let fp = format!("{path}.{}", f.key);
        match f.key.as_str() {
            "cpus" => r.cpus = cx.float(f, &fp).map(|a| a.value),
            "reserve_cpus" => r.reserve_cpus = cx.float(f, &fp).map(|a| a.value),
            "memory" => r.memory = cx.bytes(f, &fp).map(|a| a.value),
            "reserve_memory" => r.reserve_memory = cx.bytes(f, &fp).map(|a| a.value),
            _ => {}
        }
    }
    r
}

fn update_policy(cx: &mut Cx, e: &Entry, path: &str, rollback: bool) -> Option<UpdatePolicy> {
    // A rollback cannot itself roll back.
    let actions: &[&str] = if rollback {
        &["pause", "continue"]
    } else {
        &["pause", "continue", "rollback"]
    };
    let t = cx.table(e, path, UPDATE_KEYS)?;
    let mut u = UpdatePolicy::default();
    for f in t {
        let fp = format!("{path}.{}", f.key);
        match f.key.as_str() {
            "parallelism" => u.parallelism = cx.int(f, &fp, 0, 10_000).map(|a| a.value),
            "delay" => u.delay = cx.duration(f, &fp).map(|a| a.value),
            "monitor" => u.monitor = cx.duration(f, &fp).map(|a| a.value),
            "failure_action" => {
                u.failure_action = cx.choice(f, &fp, actions).map(|a| a.value);
            }
            "max_failure_ratio" => {
                u.max_failure_ratio = cx.float(f, &fp).map(|a| a.value);
                if u.max_failure_ratio.is_some_and(|r| r > 1.0) {
                    cx.err(f, format!("`{fp}` must be between 0 and 1"));
                }
            }
            "order" => {
                u.order = cx
                    .choice(f, &fp, &["stop-first", "start-first"])
                    .map(|a| a.value);
            }
            _ => {}
        }
    }
    Some(u)
}

fn health(cx: &mut Cx, e: &Entry, path: &str) -> Option<Health> {
    let t = cx.table(e, path, HEALTH_KEYS)?;
    let mut h = Health::default();
    for f in t {
        let fp = format!("{path}.{}", f.key);
        match f.key.as_str() {
            // A string runs in the image's shell, as Dockerfile's HEALTHCHECK does.
            "test" => match &f.value.kind {
                Kind::Str(s) => h.test = vec!["CMD-SHELL".into(), s.clone()],
                _ => {
                    if let Some(list) = cx.str_list(f, &fp) {
                        h.test = strings(list);
                        if !matches!(
                            h.test.first().map(String::as_str),
                            Some("CMD" | "CMD-SHELL" | "NONE")
                        ) {
                            h.test.insert(0, "CMD".into());
                        }
                    }
                }
            },
            "interval" => h.interval = cx.duration(f, &fp).map(|a| a.value),
            "timeout" => h.timeout = cx.duration(f, &fp).map(|a| a.value),
            "start_period" => h.start_period = cx.duration(f, &fp).map(|a| a.value),
            "retries" => h.retries = cx.int(f, &fp, 0, 1000).map(|a| a.value),
            _ => {}
        }
    }
    if h.test.is_empty() {
        cx.err(e, format!("`{path}` needs a `test`"));
        return None;
    }
    Some(h)
}

fn restart(cx: &mut Cx, e: &Entry, path: &str) -> Option<Restart> {
    let t = cx.table(e, path, RESTART_KEYS)?;
    let mut r = Restart::default();
    for f in t {
        let fp = format!("{path}.{}", f.key);
        match f.key.as_str() {
            "condition" => {
                r.condition = cx
                    .choice(f, &fp, &["none", "on-failure", "any"])
                    .map(|a| a.value);
            }
            "delay" => r.delay = cx.duration(f, &fp).map(|a| a.value),
            "max_attempts" => r.max_attempts = cx.int(f, &fp, 0, 1_000_000).map(|a| a.value),
            _ => {}
        }
    }
    Some(r)
}

fn route(cx: &mut Cx, e: &Entry, path: &str) -> Option<RouteDef> {
    let t = cx.table(e, path, ROUTE_KEYS)?;
    let mut r = RouteDef {
        line: cx.line(e),
        ..RouteDef::default()
    };
    for f in t {
        let fp = format!("{path}.{}", f.key);
        match f.key.as_str() {
            "host" => r.host = cx.string(f, &fp),
            "path_prefix" => r.path_prefix = cx.string(f, &fp),
            "rule" => r.rule = cx.string(f, &fp),
            "strip" => r.strip = cx.boolean(f, &fp).unwrap_or(false),
            "port" => {
                r.port = cx
                    .int(f, &fp, 1, 65535)
                    .map(|a| At::new(a.value as u16, a.line));
            }
            "sticky" => match &f.value.kind {
                Kind::Bool(true) => r.sticky = Some(None),
                Kind::Bool(false) => {}
                Kind::Str(s) => r.sticky = Some(Some(s.clone())),
                _ => cx.err(
                    f,
                    format!(
                        "`{fp}` must be true or a cookie name, found {}",
                        f.value.kind.type_name()
                    ),
                ),
            },
            "healthcheck" => match &f.value.kind {
                Kind::Str(s) => {
                    r.healthcheck = Some(RouteHealth {
                        path: s.clone(),
                        ..RouteHealth::default()
                    })
                }
                _ => {
                    let Some(ht) = cx.table(f, &fp, ROUTE_HEALTH_KEYS) else {
                        continue;
                    };
                    let mut h = RouteHealth::default();
                    for g in ht {
                        let gp = format!("{fp}.{}", g.key);
                        match g.key.as_str() {
                            "path" => {
                                h.path = cx.string(g, &gp).map(|a| a.value).unwrap_or_default()
                            }
                            "interval" => h.interval = cx.duration(g, &gp).map(|a| a.value),
                            "timeout" => h.timeout = cx.duration(g, &gp).map(|a| a.value),
                            _ => {}
                        }
                    }
                    if h.path.is_empty() {
                        cx.err(f, format!("`{fp}` needs a `path`"));
                    } else {
                        r.healthcheck = Some(h);
                    }
                }
            },
            "middlewares" => r.middlewares = cx.str_list(f, &fp).map(strings).unwrap_or_default(),
            "entrypoints" => r.entrypoints = cx.str_list(f, &fp).map(strings).unwrap_or_default(),
            "priority" => r.priority = cx.int(f, &fp, i64::MIN, i64::MAX).map(|a| a.value),
            _ => {}
        }
    }
    Some(r)
}

/// Instantiates each template once per tenant that lists it. The template is
/// merged with the tenant's overrides, placeholders are replaced, and the
/// result is read as an ordinary service.
fn instantiate(
    cx: &mut Cx,
    templates: Option<&Entry>,
    tenants: Option<&Entry>,
    out: &mut Vec<ServiceDef>,
) {
    let mut known_template_keys: Vec<&str> = SERVICE_KEYS.to_vec();
    known_template_keys.push("name");
    let mut tpls: Vec<&Entry> = Vec::new();
    if let Some(e) = templates {
        match &e.value.kind {
            Kind::Table(t) => {
                for tpl in t {
                    let path = format!("templates.{}", tpl.key);
                    if cx.table(tpl, &path, &known_template_keys).is_some() {
                        tpls.push(tpl);
                    }
                }
            }
            _ => cx.err(e, "`templates` must be a table of service templates"),
        }
    }
    let Some(tenants) = tenants else {
        return;
    };
    let Kind::Table(tenant_list) = &tenants.value.kind else {
        cx.err(tenants, "`tenants` must be a table of tenants");
        return;
    };
    for tenant in tenant_list {
        let tpath = format!("tenants.{}", tenant.key);
        let Some(tt) = cx.table(tenant, &tpath, TENANT_KEYS) else {
            continue;
        };
        let mut params: Vec<(String, String)> = vec![("tenant".into(), tenant.key.clone())];
        let mut tenant_env: Option<&Entry> = None;
        let mut apps: Vec<(String, Option<&Entry>, usize, std::ops::Range<usize>)> = Vec::new();
        for f in tt {
            let fp = format!("{tpath}.{}", f.key);
            match f.key.as_str() {
                "params" => {
                    for (k, v) in cx.str_map(f, &fp).unwrap_or_default() {
                        if k == "tenant" || k == "app" {
                            cx.problems.at_line(
                                Some(v.line),
                                format!("`{fp}.{k}` is reserved: `${{{k}}}` is set by escale"),
                            );
                            continue;
                        }
                        params.push((k, v.value));
                    }
                }
                "env" => tenant_env = Some(f),
                "apps" => match &f.value.kind {
                    Kind::Array(items) => {
                        for v in items {
                            match &v.kind {
                                Kind::Str(s) => {
                                    apps.push((s.clone(), None, cx.val_line(v), v.span.clone()))
                                }
                                other => {
                                    let found = other.type_name();
                                    cx.err_val(
                                        v,
                                        format!(
                                            "`{fp}` items must be template names, found {found}"
                                        ),
                                    );
                                }
                            }
                        }
                    }
                    Kind::Table(t) => {
                        for a in t {
                            if !matches!(a.value.kind, Kind::Table(_)) {
                                let found = a.value.kind.type_name();
                                cx.err(
                                    a,
                                    format!(
                                        "`{fp}.{}` must be a table of overrides, found {found}",
                                        a.key
                                    ),
                                );
                                continue;
                            }
                            apps.push((a.key.clone(), Some(a), cx.line(a), a.key_span.clone()));
                        }
                    }
                    _ => cx.err(
                        f,
                        format!("`{fp}` must be a list of template names or a table of overrides"),
                    ),
                },
                _ => {}
            }
        }
        if apps.is_empty() {
            cx.err(tenant, format!("tenant `{}` has no `apps`", tenant.key));
        }
        for (app, overrides, line, span) in apps {
            let Some(tpl) = tpls.iter().find(|t| t.key == app) else {
                let names: Vec<&str> = tpls.iter().map(|t| t.key.as_str()).collect();
                let hint = match crate::config::tree::nearest(&app, names.iter().copied()) {
                    Some(n) => format!("; did you mean `{n}`?"),
                    None if names.is_empty() => "; no [templates] are defined".to_string(),
                    None => format!("; templates: {}", names.join(", ")),
                };
                cx.problems.at(
                    &span,
                    format!("tenant `{}`: unknown template `{app}`{hint}", tenant.key),
                );
                continue;
            };
            let mut merged = tpl.value.clone();
            if let Some(env) = tenant_env {
                let wrapper = Val {
                    kind: Kind::Table(vec![Entry {
                        key: "env".into(),
                        key_span: env.key_span.clone(),
                        value: env.value.clone(),
                    }]),
                    span: env.value.span.clone(),
                };
                merge(&mut merged, &wrapper);
            }
            if let Some(o) = overrides {
                let opath = format!("{tpath}.apps.{app}");
                cx.check_keys(o.value.table().unwrap_or(&[]), &opath, &known_template_keys);
                merge(&mut merged, &o.value);
            }
            let mut vars = params.clone();
            vars.push(("app".into(), app.clone()));
            substitute(cx, &mut merged, &vars, &tenant.key);
            let Some(t) = merged.table() else {
                continue;
            };
            let name_entry = t.iter().find(|f| f.key == "name");
            let name = match name_entry {
                Some(f) => match cx.string(f, &format!("templates.{app}.name")) {
                    Some(n) => n,
                    None => continue,
                },
                None => At::new(format!("{}_{}", tenant.key, app), line),
            };
            let rest: Vec<Entry> = t.iter().filter(|f| f.key != "name").cloned().collect();
            let origin = Origin::Tenant {
                template: app.clone(),
                tenant: tenant.key.clone(),
            };
            let path = format!("templates.{app}");
            // Shape problems were reported once for the template; a tenant
            // repeats them only through its overrides, already checked above.
            let before = cx.problems.list.len();
            let svc = service(cx, &rest, &path, name, origin);
            dedupe_tail(cx.problems, before);
            out.push(svc);
        }
    }
}

/// Drops problems added since `from` that are already in the list.
fn dedupe_tail(p: &mut Problems, from: usize) {
    let (old, new) = p.list.split_at(from);
    let fresh: Vec<_> = new.iter().filter(|x| !old.contains(x)).cloned().collect();
    let mut seen = Vec::new();
    for x in fresh {
        if !seen.contains(&x) {
            seen.push(x);
        }
    }
    p.list.truncate(from);
    p.list.extend(seen);
}

/// Deep merge: tables merge key by key, anything else is replaced.
pub fn merge(base: &mut Val, over: &Val) {
    match (&mut base.kind, &over.kind) {
        (Kind::Table(b), Kind::Table(o)) => {
            for oe in o {
                match b.iter_mut().find(|be| be.key == oe.key) {
                    Some(be)
                        if matches!(be.value.kind, Kind::Table(_))
                            && matches!(oe.value.kind, Kind::Table(_)) =>
                    {
                        merge(&mut be.value, &oe.value)
                    }
                    Some(be) => {
                        be.value = oe.value.clone();
                        be.key_span = oe.key_span.clone();
                    }
                    None => b.push(oe.clone()),
                }
            }
        }
        _ => *base = over.clone(),
    }
}

/// Replaces `${name}` in every string of `v`; `$${` stays a literal `${`.
fn substitute(cx: &mut Cx, v: &mut Val, vars: &[(String, String)], tenant: &str) {
    match &mut v.kind {
        Kind::Str(s) => match interpolate(s, vars) {
            Ok(out) => *s = out,
            Err(unknown) => {
                let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
                let hint = match crate::config::tree::nearest(&unknown, names.iter().copied()) {
                    Some(n) => format!("; did you mean `${{{n}}}`?"),
                    None => format!(
                        "; known: {}",
                        names
                            .iter()
                            .map(|n| format!("${{{n}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                cx.err_val(
                    v,
                    format!("tenant `{tenant}`: unknown parameter `${{{unknown}}}`{hint}"),
                );
            }
        },
        Kind::Array(items) => items
            .iter_mut()
            .for_each(|i| substitute(cx, i, vars, tenant)),
        Kind::Table(t) => t
            .iter_mut()
            .for_each(|e| substitute(cx, &mut e.value, vars, tenant)),
        _ => {}
    }
}

/// `${tenant}_db` with tenant=ludotm → `ludotm_db`. Errors with the first
/// unknown name.
pub fn interpolate(s: &str, vars: &[(String, String)]) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix("${") {
            out.push_str("${");
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let Some(end) = r.find('}') else {
                return Err(r.to_string());
            };
            let name = &r[..end];
            match vars.iter().find(|(k, _)| k == name) {
                Some((_, val)) => out.push_str(val),
                None => return Err(name.to_string()),
            }
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::source::parse;

    fn read_text(text: &str) -> (StackDef, Problems) {
        let mut p = Problems::for_text(text);
        let v = parse(text, &mut p).expect("toml");
        let d = read(&v, std::path::Path::new("/stacks"), &mut p);
        (d, p)
    }

    #[test]
    fn interpolation() {
        let vars = vec![("tenant".to_string(), "ludotm".to_string())];
        assert_eq!(interpolate("/${tenant}/x", &vars).unwrap(), "/ludotm/x");
        assert_eq!(
            interpolate("$${tenant} $HOME", &vars).unwrap(),
            "${tenant} $HOME"
        );
        assert_eq!(interpolate("${nope}", &vars).unwrap_err(), "nope");
    }

    #[test]
    fn reads_a_service() {
        let (d, p) = read_text(
            r#"
[services.cdn]
image = "nginx:1.27"
replicas = 2
command = ["nginx", "-g", "daemon off;"]
env = { A = "1", B = 2 }
mounts = ["/srv/data:/data:ro", { source = "vol", target = "/v" }, "./db/../mysql:/var/lib/mysql"]
publish = ["19150:80", { published = 19151, target = 81, protocol = "udp", mode = "ingress" }]
resources = { cpus = 0.5, memory = "256M" }
update = { parallelism = 1, delay = "10s", order = "start-first" }
healthcheck = { test = "wget -q -O- localhost", interval = "5s", retries = 3 }
route = { host = "alderaan", path_prefix = "/cdn", strip = true, port = 80, sticky = true }
"#,
        );
        assert!(p.is_empty(), "{:?}", p.list);
        let s = &d.services[0];
        assert_eq!(s.name.value, "cdn");
        assert_eq!(s.name.line, 2);
        assert_eq!(s.replicas, Some(2));
        assert_eq!(s.command.as_deref().unwrap()[2], "daemon off;");
        assert_eq!(s.env[1].1.value, "2");
        assert_eq!(s.mounts[0].value.kind, "bind");
        assert!(s.mounts[0].value.readonly);
        assert_eq!(s.mounts[1].value.kind, "volume");
        assert_eq!(s.mounts[2].value.source, "/stacks/mysql");
        assert_eq!(s.mounts[2].value.kind, "bind");
        assert_eq!(s.publish[1].value.mode, "ingress");
        assert_eq!(s.resources.memory, Some(256 << 20));
        assert_eq!(
            s.update.as_ref().unwrap().delay,
            Some(Duration::from_secs(10))
        );
        assert_eq!(s.healthcheck.as_ref().unwrap().test[0], "CMD-SHELL");
        let r = s.route.as_ref().unwrap();
        assert_eq!(r.port.as_ref().unwrap().value, 80);
        assert_eq!(r.sticky, Some(None));
        assert!(r.strip);
    }

    #[test]
    fn every_unknown_key_is_reported_with_a_suggestion() {
        let (_, p) = read_text(
            "[stack]\nnme = \"x\"\n[services.a]\nimage = \"i\"\nreplica = 2\n[services.a.route]\nhots = \"h\"\nport = 80\n[servces]\n",
        );
        let msgs: Vec<String> = p
            .sorted()
            .iter()
            .map(|x| format!("{}: {}", x.line.unwrap(), x.message))
            .collect();
        assert_eq!(
            msgs,
            [
                "2: unknown key `nme` in [stack]; did you mean `name`?",
                "5: unknown key `replica` in [services.a]; did you mean `replicas`?",
                "7: unknown key `hots` in [services.a.route]; did you mean `host`?",
                "9: unknown key `servces` at the top level; did you mean `services`?",
            ]
        );
    }

    #[test]
    fn proxy_defaults_and_ports() {
        let (d, p) = read_text(
            "[proxy]\nports = { web = 19101, websecure = 0 }\nargs = [\"--log.level=DEBUG\"]\n",
        );
        assert!(p.is_empty(), "{:?}", p.list);
        let px = d.proxy.unwrap();
        assert_eq!(px.service.name.value, "proxy");
        assert_eq!(px.service.image.unwrap().value, DEFAULT_PROXY_IMAGE);
        let ports: Vec<_> = px
            .ports
            .iter()
            .map(|(k, v)| (k.as_str(), v.value))
            .collect();
        assert_eq!(ports, [("web", 19101), ("traefik", 8080)]);
    }

    #[test]
    fn proxy_refuses_route() {
        let (_, p) = read_text("[proxy]\nroute = { port = 80 }\n");
        assert_eq!(p.list.len(), 1);
        assert!(
            p.list[0]
                .message
                .starts_with("unknown key `route` in [proxy]")
        );
    }

    #[test]
    fn templates_are_instantiated_per_tenant() {
        let (d, p) = read_text(
            r#"
[templates.ludotheque]
image = "ludo:1"
env = { DB_NAME = "${tenant}", TITLE = "${title}" }
route = { host = "alderaan", path_prefix = "/${tenant}/${app}", strip = true, port = 80 }

[tenants.ludotm]
apps = ["ludotheque"]
params = { title = "TM" }

[tenants.ludoparis]
params = { title = "Paris" }
env = { THEME = "blue" }
[tenants.ludoparis.apps.ludotheque]
replicas = 2
env = { TITLE = "Paris!" }
"#,
        );
        assert!(p.is_empty(), "{:?}", p.list);
        let names: Vec<_> = d.services.iter().map(|s| s.name.value.as_str()).collect();
        assert_eq!(names, ["ludotm_ludotheque", "ludoparis_ludotheque"]);
        let tm = &d.services[0];
        let env: Vec<_> = tm
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", v.value))
            .collect();
        assert_eq!(env, ["DB_NAME=ludotm", "TITLE=TM"]);
        assert_eq!(
            tm.route
                .as_ref()
                .unwrap()
                .path_prefix
                .as_ref()
                .unwrap()
                .value,
            "/ludotm/ludotheque"
        );
        let paris = &d.services[1];
        assert_eq!(paris.replicas, Some(2));
        let env: Vec<_> = paris
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", v.value))
            .collect();
        assert_eq!(env, ["DB_NAME=ludoparis", "TITLE=Paris!", "THEME=blue"]);
        assert_eq!(
            paris.origin,
            Origin::Tenant {
                template: "ludotheque".into(),
                tenant: "ludoparis".into()
            }
        );
    }

    #[test]
    fn template_errors() {
        let (_, p) = read_text(
            r#"
[templates.ludotheque]
image = "ludo:1"
imgae = "x"
env = { DB = "${tenat}" }

[tenants.a]
apps = ["ludotheque", "ludothek"]
[tenants.b]
apps = ["ludotheque"]
"#,
        );
        let msgs: Vec<String> = p
            .sorted()
            .iter()
            .map(|x| format!("{}: {}", x.line.unwrap(), x.message))
            .collect();
        assert_eq!(
            msgs,
            [
                "4: unknown key `imgae` in [templates.ludotheque]; did you mean `image`?",
                "5: tenant `a`: unknown parameter `${tenat}`; did you mean `${tenant}`?",
                "5: tenant `b`: unknown parameter `${tenat}`; did you mean `${tenant}`?",
                "8: tenant `a`: unknown template `ludothek`; did you mean `ludotheque`?",
            ]
        );
    }

    #[test]
    fn global_mode_refuses_replicas() {
        let (d, p) = read_text("[services.a]\nimage = \"x\"\nmode = \"global\"\nreplicas = 2\n");
        assert_eq!(d.services[0].replicas, None);
        assert_eq!(p.list.len(), 1);
        assert_eq!(p.list[0].line, Some(4));
    }
}
