//! Definitions → the desired swarm objects, after every check that can be made
//! before touching anything. Checks that need the engine or the host (images,
//! mount sources, secrets, ports of other services) read [`Facts`] gathered
//! beforehand, so this step stays pure.

use std::collections::{BTreeMap, BTreeSet};

use super::decode::At;
use super::file::{MountDef, Origin, PROXY_ENTRYPOINTS, ProxyDef, ServiceDef, StackDef};
use super::labels;
use super::source::Problems;
use super::spec::{self, Extras};
use bollard::models::ServiceSpec;

/// Label naming the stack that owns an object; `down` and `--prune` only
/// ever touch objects that carry it with this stack's value.
pub const OWNER_LABEL: &str = "escale.stack";
/// Label holding the service's name in the file (without prefix).
pub const LOGICAL_LABEL: &str = "escale.stack.service";
const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// What the engine and the host hold, gathered before validation.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Images present in the local engine.
    pub images: BTreeSet<String>,
    /// When false, missing images are not errors (the nodes can pull).
    pub require_local_images: bool,
    /// Bind mount sources that exist on this host.
    pub paths: BTreeSet<String>,
    pub secrets: BTreeMap<String, String>,
    pub configs: BTreeMap<String, String>,
    /// Published port → a service outside this stack that publishes it.
    pub foreign_ports: BTreeMap<(u16, String), String>,
    /// TCP ports that something on this host already listens on (not a
    /// service of this stack): a host-mode task could not bind them.
    pub busy_ports: BTreeSet<u16>,
}

/// What [`Facts`] must cover for a stack.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wants {
    pub images: BTreeSet<String>,
    pub paths: BTreeSet<String>,
    /// TCP ports published in host mode.
    pub host_ports: BTreeSet<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredNetwork {
    pub logical: String,
    pub name: String,
    pub attachable: bool,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredService {
    pub logical: String,
    pub name: String,
    pub line: usize,
    pub spec: ServiceSpec,
}

/// A route to check through the proxy once the stack is up.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteProbe {
    pub service: String,
    pub rule: String,
    pub host: Option<String>,
    pub path: String,
    /// The proxy's published port for the route's entrypoint.
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// The owner label value: prefix + stack name.
    pub owner: String,
    pub networks: Vec<DesiredNetwork>,
    pub services: Vec<DesiredService>,
    pub probes: Vec<RouteProbe>,
    /// The proxy's service name, if the stack has one.
    pub proxy: Option<String>,
}

impl Desired {
    pub fn service(&self, name: &str) -> Option<&DesiredService> {
        self.services
            .iter()
            .find(|s| s.name == name || s.logical == name)
    }
}

/// The images and bind sources a stack uses, for gathering [`Facts`].
pub fn wants(def: &StackDef) -> Wants {
    let mut w = Wants::default();
    for s in all_services(def) {
        if let Some(i) = &s.image {
            w.images.insert(i.value.clone());
        }
        for m in &s.mounts {
            if m.value.kind == "bind" {
                w.paths.insert(m.value.source.clone());
            }
        }
        for p in &s.publish {
            if p.value.mode == "host" && p.value.protocol == "tcp" {
                w.host_ports.insert(p.value.published);
            }
        }
    }
    if let Some(px) = &def.proxy {
        w.host_ports.extend(px.ports.iter().map(|(_, p)| p.value));
    }
    if def.proxy.is_some() {
        w.paths.insert(DOCKER_SOCKET.into());
    }
    w
}

fn all_services(def: &StackDef) -> impl Iterator<Item = &ServiceDef> {
    def.proxy
        .iter()
        .map(|p| &p.service)
        .chain(def.services.iter())
}

/// Docker's rule for service and network names.
fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && n.len() <= 63
}

fn describe(s: &ServiceDef) -> String {
    match &s.origin {
        Origin::Service => format!("service `{}`", s.name.value),
        Origin::Proxy => format!("proxy `{}`", s.name.value),
        Origin::Tenant { template, tenant } => format!(
            "service `{}` (template `{template}`, tenant `{tenant}`)",
            s.name.value
        ),
    }
}

/// Checks the whole stack and builds the desired objects. `prefix`, when
/// given, replaces the file's prefix. Returns `None` when any problem was found.
pub fn compile(
    def: &StackDef,
    prefix: Option<&str>,
    facts: &Facts,
    p: &mut Problems,
) -> Option<Desired> {
    let prefix = prefix.unwrap_or(&def.prefix).to_string();
    let before = p.len();
    let stack_name = match &def.name {
        Some(n) if valid_name(&n.value) => n.value.clone(),
        Some(n) => {
            p.at_line(
                Some(n.line),
                format!("stack name `{}` is not a valid name", n.value),
            );
            String::new()
        }
        None => {
            p.at_line(
                Some(1),
                "the stack has no name: add `[stack]` with `name = \"...\"`",
            );
            String::new()
        }
    };
    let owner = format!("{prefix}{stack_name}");

    // Networks.
    let mut networks = Vec::new();
    for n in &def.networks {
        let name = format!("{prefix}{}", n.name.value);
        if !valid_name(&name) {
            p.at_line(
                Some(n.name.line),
                format!("network name `{name}` is not valid"),
            );
        }
        let mut labels = n.labels.clone();
        labels.insert(OWNER_LABEL.into(), owner.clone());
        networks.push(DesiredNetwork {
            logical: n.name.value.clone(),
            name,
            attachable: n.attachable,
            internal: n.internal,
            labels,
        });
    }
    let net_names: Vec<&str> = def.networks.iter().map(|n| n.name.value.as_str()).collect();
    let check_net = |p: &mut Problems, n: &At<String>, whose: &str| -> bool {
        if net_names.contains(&n.value.as_str()) {
            return true;
        }
        let hint = match crate::config::tree::nearest(&n.value, net_names.iter().copied()) {
            Some(s) => format!("; did you mean `{s}`?"),
            None if net_names.is_empty() => "; no [networks] are defined".into(),
            None => format!("; networks: {}", net_names.join(", ")),
        };
        p.at_line(
            Some(n.line),
            format!("{whose} uses unknown network `{}`{hint}", n.value),
        );
        false
    };

    // The network the proxy reaches services on, and the default for services.
    let main_net: Option<String> = match def.proxy.as_ref().and_then(|px| px.network.as_ref()) {
        Some(n) => check_net(p, n, "the proxy").then(|| n.value.clone()),
        None => net_names.first().map(|s| s.to_string()),
    };
    if def.proxy.is_some() && main_net.is_none() && def.networks.is_empty() {
        p.at_line(
            def.proxy.as_ref().map(|px| px.service.name.line),
            "the proxy needs a network: add one under [networks]",
        );
    } else if def.proxy.is_some()
        && def.networks.len() > 1
        && def
            .proxy
            .as_ref()
            .and_then(|px| px.network.as_ref())
            .is_none()
    {
        p.at_line(
            def.proxy.as_ref().map(|px| px.service.name.line),
            "the stack has several networks: choose the proxy's with `network = \"...\"`",
        );
    }

    // Names and published ports, across the proxy and every service.
    let mut seen_names: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut seen_ports: BTreeMap<(u16, String), (String, usize)> = BTreeMap::new();
    let mut check_port = |p: &mut Problems,
                          port: u16,
                          proto: &str,
                          who: &ServiceDef,
                          line: usize| {
        let key = (port, proto.to_string());
        if let Some((other, other_line)) = seen_ports.get(&key) {
            p.at_line(
                    Some(line),
                    format!(
                        "published port {port}/{proto} is used twice: by `{other}` (line {other_line}) and by `{}`",
                        who.name.value
                    ),
                );
        } else if let Some(foreign) = facts.foreign_ports.get(&key) {
            p.at_line(
                    Some(line),
                    format!(
                        "published port {port}/{proto} of `{}` is already published by service `{foreign}`, outside this stack",
                        who.name.value
                    ),
                );
        } else {
            if proto == "tcp" && facts.busy_ports.contains(&port) {
                p.at_line(
                    Some(line),
                    format!(
                        "published port {port}/tcp of `{}` is already in use on this host",
                        who.name.value
                    ),
                );
            }
            seen_ports.insert(key, (who.name.value.clone(), line));
        }
    };
    // The proxy's ports first, so that a clash is reported on the service's line.
    if let Some(px) = &def.proxy {
        for (_, port) in &px.ports {
            check_port(p, port.value, "tcp", &px.service, port.line);
        }
    }
    for s in all_services(def) {
        let full = format!("{prefix}{}", s.name.value);
        if !valid_name(&full) {
            p.at_line(
                Some(s.name.line),
                format!(
                    "{}: `{full}` is not a valid service name (letters, digits, `_`, `.`, `-`; at most 63)",
                    describe(s)
                ),
            );
        }
        if let Some((line, who)) = seen_names.get(&full) {
            p.at_line(
                Some(s.name.line),
                format!(
                    "service name `{}` is used twice: by {who} (line {line}) and by {}",
                    s.name.value,
                    describe(s)
                ),
            );
        } else {
            seen_names.insert(full, (s.name.line, describe(s)));
        }
        for pb in &s.publish {
            check_port(p, pb.value.published, &pb.value.protocol, s, pb.line);
        }
    }

    // Per-service checks and specs.
    let mut services = Vec::new();
    let mut probes = Vec::new();
    let web_port = def.proxy.as_ref().and_then(|px| {
        px.ports
            .iter()
            .find(|(ep, _)| ep == "web")
            .map(|(_, port)| port.value)
    });
    for s in all_services(def) {
        let who = describe(s);
        let full = format!("{prefix}{}", s.name.value);
        let s = match (&s.origin, def.proxy.as_ref()) {
            (Origin::Proxy, Some(px)) => proxy_service(
                px,
                &owner,
                main_net.as_deref().map(|n| format!("{prefix}{n}")),
            ),
            _ => s.clone(),
        };
        match &s.image {
            None => p.at_line(Some(s.name.line), format!("{who} has no `image`")),
            Some(i) if facts.require_local_images && !facts.images.contains(&i.value) => {
                p.at_line(
                    Some(i.line),
                    format!(
                        "{who}: image `{}` is not present locally and no registry is reachable: build or load it first (or pass --pull if the nodes can pull it)",
                        i.value
                    ),
                )
            }
            Some(_) => {}
        }
        check_mounts(p, &who, &s.mounts, facts);
        // Docker would refuse these at create time, after other objects were made.
        if s.endpoint_mode.as_deref() == Some("dnsrr") {
            for pb in s.publish.iter().filter(|pb| pb.value.mode == "ingress") {
                p.at_line(
                    Some(pb.line),
                    format!(
                        "{who}: port {} is published in ingress mode, which needs endpoint_mode = \"vip\"",
                        pb.value.published
                    ),
                );
            }
        }
        for c in &s.constraints {
            let ok = ["==", "!="].iter().any(|op| {
                c.split_once(op)
                    .is_some_and(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
            });
            if !ok {
                p.at_line(
                    Some(s.name.line),
                    format!("{who}: constraint `{c}` must read `key == value` or `key != value`"),
                );
            }
        }
        let mut secret_ids = BTreeMap::new();
        resolve_refs(
            p,
            &who,
            "secret",
            &s.secrets,
            &facts.secrets,
            &mut secret_ids,
        );
        let mut config_ids = BTreeMap::new();
        resolve_refs(
            p,
            &who,
            "config",
            &s.configs,
            &facts.configs,
            &mut config_ids,
        );

        // Networks, each with the file's name as an alias so that services
        // reach each other by it whatever the prefix (`mysql_master`).
        let mut nets_known = true;
        let nets: Vec<String> = match &s.networks {
            Some(list) => list
                .iter()
                .filter(|n| {
                    let ok = check_net(p, n, &who);
                    nets_known &= ok;
                    ok
                })
                .map(|n| n.value.clone())
                .collect(),
            None => main_net.iter().cloned().collect(),
        };
        let alias = s.name.value.clone();
        let attach: Vec<(String, Vec<String>)> = nets
            .iter()
            .map(|n| {
                let aliases = if alias != full {
                    vec![alias.clone()]
                } else {
                    Vec::new()
                };
                (format!("{prefix}{n}"), aliases)
            })
            .collect();

        let mut all_labels: BTreeMap<String, String> = BTreeMap::new();
        if let Some(r) = &s.route {
            let reach = match &main_net {
                Some(mn) if nets.contains(mn) => Some(format!("{prefix}{mn}")),
                // A misspelt network was reported already; this would only echo it.
                Some(_) if !nets_known => None,
                Some(mn) => {
                    p.at_line(
                        Some(r.line),
                        format!("{who}: the route needs the service on the proxy's network `{mn}`"),
                    );
                    None
                }
                None => nets.first().map(|n| format!("{prefix}{n}")),
            };
            match labels::compile(&full, r, reach.as_deref()) {
                Ok(c) => {
                    let path = r
                        .path_prefix
                        .as_ref()
                        .map(|x| x.value.clone())
                        .unwrap_or_else(|| "/".into());
                    let entry_ok =
                        r.entrypoints.is_empty() || r.entrypoints.iter().any(|e| e == "web");
                    if let (Some(port), true) = (web_port, entry_ok) {
                        probes.push(RouteProbe {
                            service: full.clone(),
                            rule: c.rule.clone(),
                            host: r.host.as_ref().map(|h| h.value.clone()),
                            path,
                            port,
                        });
                    }
                    all_labels.extend(c.labels);
                }
                Err(errs) => {
                    for e in errs {
                        let line = match e.as_str() {
                            m if m.starts_with("rule") => r.rule.as_ref().map(|x| x.line),
                            _ => None,
                        };
                        p.at_line(Some(line.unwrap_or(r.line)), format!("{who}: {e}"));
                    }
                }
            }
            if let Some(proxy) = &def.proxy {
                for ep in &r.entrypoints {
                    if !proxy.ports.iter().any(|(k, _)| k == ep)
                        && !PROXY_ENTRYPOINTS.iter().any(|(k, _)| k == ep)
                    {
                        p.at_line(Some(r.line), format!("{who}: unknown entrypoint `{ep}`"));
                    }
                }
            }
        }
        for (k, v) in &s.labels {
            if k == OWNER_LABEL || k == LOGICAL_LABEL {
                p.at_line(
                    Some(v.line),
                    format!("{who}: label `{k}` is reserved for escale"),
                );
            } else if all_labels.contains_key(k) && s.route.is_some() {
                p.at_line(
                    Some(v.line),
                    format!("{who}: label `{k}` is also set by the route; drop one of them"),
                );
            }
        }
        for (k, msg) in
            labels::check_raw_rules(s.labels.iter().map(|(k, v)| (k.as_str(), v.value.as_str())))
        {
            let line = s
                .labels
                .iter()
                .find(|(lk, _)| *lk == k)
                .map(|(_, v)| v.line);
            p.at_line(line, format!("{who}: label `{k}`: {msg}"));
        }
        all_labels.extend(s.labels.iter().map(|(k, v)| (k.clone(), v.value.clone())));
        all_labels.insert(OWNER_LABEL.into(), owner.clone());
        all_labels.insert(LOGICAL_LABEL.into(), s.name.value.clone());

        let extras = Extras {
            name: full.clone(),
            labels: all_labels,
            networks: attach,
            secret_ids,
            config_ids,
        };
        services.push(DesiredService {
            logical: s.name.value.clone(),
            name: full,
            line: s.name.line,
            spec: spec::service_spec(&s, &extras),
        });
    }

    if p.len() > before {
        return None;
    }
    Some(Desired {
        owner,
        networks,
        services,
        probes,
        proxy: def
            .proxy
            .as_ref()
            .map(|px| format!("{prefix}{}", px.service.name.value)),
    })
}

/// The proxy with its defaults: socket mount, manager constraint, host-mode
/// ports, and the flags that point it at this stack.
fn proxy_service(px: &ProxyDef, owner: &str, network: Option<String>) -> ServiceDef {
    let mut s = px.service.clone();
    let line = s.name.line;
    let mut flags = Vec::new();
    for (ep, published) in &px.ports {
        let Some((_, target)) = PROXY_ENTRYPOINTS.iter().find(|(k, _)| k == ep) else {
            continue;
        };
        flags.push(format!("--entrypoints.{ep}.address=:{target}"));
        s.publish.push(At::new(
            super::file::Publish {
                published: published.value,
                target: *target,
                protocol: "tcp".into(),
                mode: "host".into(),
            },
            published.line,
        ));
    }
    if px.ports.iter().any(|(ep, _)| ep == "traefik") {
        flags.push("--api.insecure=true".into());
        flags.push("--ping=true".into());
    }
    flags.push("--providers.swarm=true".into());
    flags.push(format!("--providers.swarm.endpoint=unix://{DOCKER_SOCKET}"));
    flags.push("--providers.swarm.exposedByDefault=false".into());
    if let Some(n) = network {
        flags.push(format!("--providers.swarm.network={n}"));
    }
    // Only this stack's services: another stack on the same swarm has its own proxy.
    flags.push(format!(
        "--providers.swarm.constraints=Label(`{OWNER_LABEL}`,`{owner}`)"
    ));
    flags.extend(s.args.take().unwrap_or_default());
    s.args = Some(flags);
    s.mounts.insert(
        0,
        At::new(
            MountDef {
                kind: "bind".into(),
                source: DOCKER_SOCKET.into(),
                target: DOCKER_SOCKET.into(),
                readonly: false,
            },
            line,
        ),
    );
    if s.constraints.is_empty() {
        s.constraints.push("node.role == manager".into());
    }
    s
}

fn check_mounts(p: &mut Problems, who: &str, mounts: &[At<MountDef>], facts: &Facts) {
    let mut targets = BTreeSet::new();
    for m in mounts {
        if !targets.insert(m.value.target.clone()) {
            p.at_line(
                Some(m.line),
                format!("{who}: mount target `{}` is used twice", m.value.target),
            );
        }
        if m.value.kind != "bind" {
            continue;
        }
        if !m.value.source.starts_with('/') {
            p.at_line(
                Some(m.line),
                format!(
                    "{who}: bind mount source `{}` must be an absolute path",
                    m.value.source
                ),
            );
        } else if !facts.paths.contains(&m.value.source) {
            p.at_line(
                Some(m.line),
                format!(
                    "{who}: bind mount source `{}` does not exist on this host",
                    m.value.source
                ),
            );
        }
    }
}

fn resolve_refs(
    p: &mut Problems,
    who: &str,
    kind: &str,
    refs: &[At<super::file::FileRef>],
    known: &BTreeMap<String, String>,
    ids: &mut BTreeMap<String, String>,
) {
    for r in refs {
        match known.get(&r.value.source) {
            Some(id) => {
                ids.insert(r.value.source.clone(), id.clone());
            }
            None => {
                let hint =
                    crate::config::tree::nearest(&r.value.source, known.keys().map(String::as_str))
                        .map(|n| format!("; did you mean `{n}`?"))
                        .unwrap_or_default();
                p.at_line(
                    Some(r.line),
                    format!(
                        "{who}: {kind} `{}` does not exist (create it with `docker {kind} create`){hint}",
                        r.value.source
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
