//! Traefik 2.x/3.x labels (`traefik.http.routers.<r>.rule`, ...).
//!
//! The labels decode into the dynamic model through the same case-insensitive
//! tree decoder as files and flags. On top of it come the swarm provider's
//! rules, as Traefik applies them:
//!
//! - `loadbalancer.server.port` (mandatory in swarm) and `.scheme` say how to
//!   reach the tasks; escale adds one server per task;
//! - no service defined: a service named after the swarm service;
//! - no router defined: a router named after the swarm service, with the
//!   provider's default rule; a router without a rule gets it too;
//! - a router without a service uses the only service, and is an error when
//!   there are several.
//!
//! A bad key disables the router, service or middleware it belongs to.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::template::TemplateData;
use super::{
    LabelDefaults, LabelGeneration, LabelsOutcome, Reporter, ServerTemplate, normalize, shared_key,
    traefik_suffix,
};
use crate::config::dynamic::{DynamicConfig, LoadBalancer, RuleSyntax, Service};
use crate::config::tree::{self, KeyIssue, Node};
use crate::rules;

/// The swarm-only `loadbalancer.server` label block.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct LabelServer {
    port: Option<String>,
    scheme: Option<String>,
    weight: Option<u32>,
    preserve_path: Option<bool>,
}

/// Which object of the model a key path belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Object {
    Router(String),
    Service(String),
    Middleware(String),
    Transport(String),
}

fn object_of(keys: &[String]) -> Option<Object> {
    let [http, kind, name, ..] = keys else {
        return None;
    };
    if !http.eq_ignore_ascii_case("http") {
        return None;
    }
    let name = name.clone();
    match kind.to_ascii_lowercase().as_str() {
        "routers" => Some(Object::Router(name)),
        "services" => Some(Object::Service(name)),
        "middlewares" => Some(Object::Middleware(name)),
        "serverstransports" => Some(Object::Transport(name)),
        _ => None,
    }
}

fn object_name(o: &Object) -> &str {
    match o {
        Object::Router(n) | Object::Service(n) | Object::Middleware(n) | Object::Transport(n) => n,
    }
}

fn label_key(keys: &[String]) -> String {
    format!("traefik.{}", tree::render_path(keys))
}

/// The decoder's message, with paths spelled as the labels are.
fn label_message(issue: &KeyIssue) -> String {
    issue.message.replacen(
        &format!("`{}", issue.path),
        &format!("`traefik.{}", issue.path),
        1,
    )
}

/// Reads a v2/v3-labelled swarm service.
pub fn parse(
    service: &str,
    labels: &BTreeMap<String, String>,
    defaults: &LabelDefaults,
) -> LabelsOutcome {
    let mut report = Reporter::new(&defaults.provider, service);
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut has_http = false;
    let mut has_other = false;
    for (key, value) in labels {
        let Some(rest) = traefik_suffix(key) else {
            continue;
        };
        if shared_key(rest).is_some() {
            continue;
        }
        match super::head(rest).as_str() {
            "http" => has_http = true,
            "tcp" | "udp" | "tls" => has_other = true,
            _ => {
                report.error(
                    key,
                    None,
                    "unknown label: v2/v3 keys start with traefik.http., traefik.tcp., \
                     traefik.udp. or traefik.tls.",
                );
                continue;
            }
        }
        pairs.push((rest.to_string(), value.clone()));
    }

    let (mut root, flat_issues) = Node::from_flat(pairs);
    let mut broken: BTreeSet<Object> = BTreeSet::new();
    for issue in flat_issues {
        if let Some(o) = object_of(&issue.keys) {
            broken.insert(o);
        }
        report.error(&label_key(&issue.keys), None, label_message(&issue));
    }

    let servers_blocks = take_server_blocks(&mut root);
    let decoded = tree::decode::<DynamicConfig>(&root);
    for issue in &decoded.errors {
        let object = object_of(&issue.keys);
        report.error(
            &label_key(&issue.keys),
            object.as_ref().map(object_name),
            label_message(issue),
        );
        if let Some(o) = object {
            broken.insert(o);
        }
    }
    for issue in &decoded.warnings {
        report.warning(
            &label_key(&issue.keys),
            object_of(&issue.keys).as_ref().map(object_name),
            label_message(issue),
        );
    }
    let mut config = decoded.value.unwrap_or_default();

    // Only HTTP is routed by escale: TCP/UDP labels were reported above.
    let http_wanted = has_http || !has_other;
    let default_name = normalize(service);
    let mut servers = BTreeMap::new();

    if http_wanted && config.http.services.is_empty() && !broken_kind(&broken, Kind::Service) {
        config.http.services.insert(
            default_name.clone(),
            Service {
                load_balancer: Some(LoadBalancer::default()),
                ..Service::default()
            },
        );
    }
    for (name, svc) in config.http.services.iter() {
        let Some(lb) = &svc.load_balancer else {
            continue;
        };
        let base = format!("traefik.http.services.{name}.loadbalancer");
        if !lb.servers.is_empty() {
            report.error(
                &format!("{base}.servers"),
                Some(name),
                "servers come from the swarm tasks: set loadbalancer.server.port instead",
            );
            broken.insert(Object::Service(name.clone()));
            continue;
        }
        let block = servers_blocks.get(name);
        match server_template(&base, block, &mut report, name) {
            Some(t) => {
                servers.insert(name.clone(), t);
            }
            None => {
                broken.insert(Object::Service(name.clone()));
            }
        }
    }

    if http_wanted && config.http.routers.is_empty() && !broken_kind(&broken, Kind::Router) {
        config
            .http
            .routers
            .insert(default_name.clone(), Default::default());
    }
    let only_service = (config.http.services.len() == 1)
        .then(|| config.http.services.keys().next().cloned())
        .flatten();
    let data = TemplateData {
        name: service,
        container_name: service,
        labels,
    };
    for (name, router) in config.http.routers.iter_mut() {
        let key = |field: &str| format!("traefik.http.routers.{name}.{field}");
        if router.rule.trim().is_empty() {
            match defaults.default_rule.render(&data) {
                Ok(rule) => router.rule = rule,
                Err(e) => {
                    report.error(&key("rule"), Some(name), format!("default rule: {e}"));
                    broken.insert(Object::Router(name.clone()));
                    continue;
                }
            }
        }
        let syntax = router.rule_syntax.unwrap_or(RuleSyntax::V3);
        if let Err(e) = rules::parse(&router.rule, syntax) {
            report.error(&key("rule"), Some(name), e.to_string());
            broken.insert(Object::Router(name.clone()));
        }
        if router.service.trim().is_empty() {
            match &only_service {
                Some(s) => router.service = s.clone(),
                None => {
                    report.error(
                        &key("service"),
                        Some(name),
                        "the router has no service and the labels define several: \
                         set its service",
                    );
                    broken.insert(Object::Router(name.clone()));
                }
            }
        }
    }

    for o in &broken {
        match o {
            Object::Router(n) => {
                config.http.routers.remove(n);
            }
            Object::Service(n) => {
                config.http.services.remove(n);
                servers.remove(n);
            }
            Object::Middleware(n) => {
                config.http.middlewares.remove(n);
            }
            Object::Transport(n) => {
                config.http.servers_transports.remove(n);
            }
        }
    }

    LabelsOutcome {
        enabled: true,
        generation: Some(LabelGeneration::V3),
        config,
        servers,
        network: None,
        lb_swarm: false,
        issues: report.issues,
    }
}

#[derive(PartialEq)]
enum Kind {
    Router,
    Service,
}

/// Whether a broken object of this kind exists: then no default one is made,
/// since the user did define one.
fn broken_kind(broken: &BTreeSet<Object>, kind: Kind) -> bool {
    broken.iter().any(|o| match o {
        Object::Router(_) => kind == Kind::Router,
        Object::Service(_) => kind == Kind::Service,
        _ => false,
    })
}

/// Removes every `http.services.<s>.loadbalancer.server` block, by service name.
fn take_server_blocks(root: &mut Node) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let Some(Node::Map(services)) =
        child_ci_mut(root, "http").and_then(|http| child_ci_mut(http, "services"))
    else {
        return out;
    };
    for (name, svc) in services.iter_mut() {
        if let Some(lb) = child_ci_mut(svc, "loadbalancer")
            && let Some((_, block)) = lb.take_ci("server")
        {
            out.insert(name.clone(), block);
        }
    }
    out
}

fn child_ci_mut<'a>(node: &'a mut Node, key: &str) -> Option<&'a mut Node> {
    match node {
        Node::Map(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn server_template(
    base: &str,
    block: Option<&Node>,
    report: &mut Reporter,
    service: &str,
) -> Option<ServerTemplate> {
    let server = match block {
        None => LabelServer::default(),
        Some(node) => {
            let d = tree::decode::<LabelServer>(node);
            for issue in &d.errors {
                let key = format!("{base}.server.{}", tree::render_path(&issue.keys));
                let msg =
                    issue
                        .message
                        .replacen(&format!("`{}", issue.path), &format!("`{key}"), 1);
                report.error(&key, Some(service), msg);
            }
            if !d.errors.is_empty() {
                return None;
            }
            d.value.unwrap_or_default()
        }
    };
    let port_key = format!("{base}.server.port");
    let port = match server.port.as_deref().map(str::trim) {
        None | Some("") => {
            report.error(
                &port_key,
                Some(service),
                format!("port is missing: swarm services need `{port_key}`"),
            );
            return None;
        }
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => {
                report.error(
                    &port_key,
                    Some(service),
                    format!("`{p}` is not a port number"),
                );
                return None;
            }
        },
    };
    let scheme = match server.scheme.as_deref().map(str::trim) {
        None | Some("") => "http".to_string(),
        Some(s) => match s.to_ascii_lowercase().as_str() {
            s @ ("http" | "https" | "h2c") => s.to_string(),
            other => {
                report.error(
                    &format!("{base}.server.scheme"),
                    Some(service),
                    format!("scheme `{other}` is not one of http, https, h2c"),
                );
                return None;
            }
        },
    };
    Some(ServerTemplate {
        scheme,
        port,
        weight: server.weight,
        preserve_path: server.preserve_path,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{errors_of, labels};
    use super::super::{LabelDefaults, parse as parse_any};
    use super::*;
    use crate::provider::Severity;

    fn defaults() -> LabelDefaults {
        LabelDefaults::new("swarm", LabelGeneration::V3)
    }

    #[test]
    fn seed_platform_in_v3_labels() {
        let out = parse_any(
            "running_cdn",
            &labels(&[
                (
                    "traefik.http.routers.cdn.rule",
                    "Host(`alderaan`) && PathPrefix(`/cdn/`)",
                ),
                ("traefik.http.routers.cdn.middlewares", "cdn-strip"),
                (
                    "traefik.http.middlewares.cdn-strip.stripprefix.prefixes",
                    "/cdn/,/cdn",
                ),
                ("traefik.http.services.cdn.loadbalancer.server.port", "80"),
            ]),
            &defaults(),
        );
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        let r = &out.config.http.routers["cdn"];
        assert_eq!(r.service, "cdn", "the only service is attached");
        assert_eq!(r.middlewares, vec!["cdn-strip"]);
        assert_eq!(
            out.config.http.middlewares["cdn-strip"]
                .strip_prefix
                .as_ref()
                .unwrap()
                .prefixes,
            vec!["/cdn/", "/cdn"]
        );
        assert_eq!(out.servers["cdn"].port, 80);
        assert!(!out.config.http.services.contains_key("running-cdn"));
    }

    #[test]
    fn default_router_and_service() {
        let out = parse_any(
            "my_web",
            &labels(&[(
                "traefik.http.services.my-web.loadbalancer.server.port",
                "8080",
            )]),
            &defaults(),
        );
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        let r = &out.config.http.routers["my-web"];
        assert_eq!(r.rule, "Host(`my-web`)");
        assert_eq!(r.service, "my-web");

        // Only a router: the default service is created and needs a port.
        let out = parse_any(
            "api",
            &labels(&[("traefik.http.routers.a.rule", "Host(`api`)")]),
            &defaults(),
        );
        let errs = errors_of(&out);
        assert_eq!(
            errs[0].0,
            "traefik.http.services.api.loadbalancer.server.port"
        );
        assert!(errs[0].1.contains("port is missing"));
        assert!(out.config.http.services.is_empty());
    }

    #[test]
    fn custom_default_rule_template() {
        let mut d = defaults();
        d.default_rule =
            super::super::Template::parse("Host(`{{ normalize .Name }}.example.com`)").unwrap();
        let out = parse_any(
            "shop_front",
            &labels(&[
                ("traefik.enable", "true"),
                ("traefik.http.services.x.loadbalancer.server.port", "80"),
            ]),
            &d,
        );
        assert_eq!(
            out.config.http.routers["shop-front"].rule,
            "Host(`shop-front.example.com`)"
        );
        assert_eq!(out.config.http.routers["shop-front"].service, "x");
    }

    #[test]
    fn several_services_need_explicit_router_services() {
        let out = parse_any(
            "two",
            &labels(&[
                ("traefik.http.routers.r.rule", "Host(`a`)"),
                ("traefik.http.routers.ok.rule", "Host(`b`)"),
                ("traefik.http.routers.ok.service", "s2"),
                ("traefik.http.services.s1.loadbalancer.server.port", "80"),
                ("traefik.http.services.s2.loadbalancer.server.port", "81"),
            ]),
            &defaults(),
        );
        let errs = errors_of(&out);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "traefik.http.routers.r.service");
        assert!(!out.config.http.routers.contains_key("r"));
        assert_eq!(out.config.http.routers["ok"].service, "s2");
    }

    #[test]
    fn loadbalancer_options_and_case_insensitive_keys() {
        let out = parse_any(
            "app",
            &labels(&[
                ("traefik.http.routers.app.rule", "Host(`app`)"),
                ("traefik.http.routers.app.entryPoints", "web,websecure"),
                ("traefik.http.routers.app.priority", "10"),
                ("traefik.http.services.app.loadBalancer.server.port", "3000"),
                (
                    "traefik.http.services.app.loadBalancer.server.scheme",
                    "h2c",
                ),
                (
                    "traefik.http.services.app.loadbalancer.passHostHeader",
                    "false",
                ),
                (
                    "traefik.http.services.app.loadbalancer.sticky.cookie.name",
                    "s",
                ),
                (
                    "traefik.http.services.app.loadbalancer.healthcheck.path",
                    "/health",
                ),
                (
                    "traefik.http.services.app.loadbalancer.healthcheck.interval",
                    "2s",
                ),
                (
                    "traefik.http.middlewares.auth.basicauth.users",
                    "u:$apr1$x$y,v:$apr1$z$w",
                ),
                (
                    "traefik.http.middlewares.hdr.headers.customrequestheaders.X-Tenant",
                    "t1",
                ),
            ]),
            &defaults(),
        );
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        let r = &out.config.http.routers["app"];
        assert_eq!(r.entry_points, vec!["web", "websecure"]);
        assert_eq!(r.priority, Some(10));
        let lb = out.config.http.services["app"]
            .load_balancer
            .as_ref()
            .unwrap();
        assert_eq!(lb.pass_host_header, Some(false));
        assert_eq!(
            lb.sticky
                .as_ref()
                .unwrap()
                .cookie
                .as_ref()
                .unwrap()
                .name
                .as_deref(),
            Some("s")
        );
        assert_eq!(
            lb.health_check.as_ref().unwrap().path.as_deref(),
            Some("/health")
        );
        assert_eq!(out.servers["app"].scheme, "h2c");
        let m = &out.config.http.middlewares;
        assert_eq!(m["auth"].basic_auth.as_ref().unwrap().users.len(), 2);
        assert_eq!(
            m["hdr"].headers.as_ref().unwrap().custom_request_headers["X-Tenant"],
            "t1"
        );
    }

    #[test]
    fn compress_and_forward_auth_in_labels() {
        let out = parse_any(
            "app",
            &labels(&[
                ("traefik.http.routers.app.rule", "Host(`a.test`)"),
                ("traefik.http.services.app.loadbalancer.server.port", "80"),
                ("traefik.http.middlewares.zip.compress", "true"),
                (
                    "traefik.http.middlewares.sso.forwardauth.address",
                    "http://authelia:9091/api/verify?rd=https://login.test/",
                ),
                (
                    "traefik.http.middlewares.sso.forwardauth.trustForwardHeader",
                    "true",
                ),
                (
                    "traefik.http.middlewares.sso.forwardauth.authResponseHeaders",
                    "Remote-User,Remote-Groups",
                ),
                (
                    "traefik.http.middlewares.zip2.compress.encodings",
                    "br, gzip",
                ),
                (
                    "traefik.http.middlewares.zip2.compress.minresponsebodybytes",
                    "2048",
                ),
            ]),
            &defaults(),
        );
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        let m = &out.config.http.middlewares;
        assert_eq!(m["zip"].compress, Some(Default::default()));
        let zip2 = m["zip2"].compress.as_ref().unwrap();
        assert_eq!(zip2.encodings, vec!["br", "gzip"]);
        assert_eq!(zip2.min_response_body_bytes, Some(2048));
        let sso = m["sso"].forward_auth.as_ref().unwrap();
        assert_eq!(
            sso.address,
            "http://authelia:9091/api/verify?rd=https://login.test/"
        );
        assert_eq!(sso.trust_forward_header, Some(true));
        assert_eq!(
            sso.auth_response_headers,
            vec!["Remote-User", "Remote-Groups"]
        );
    }

    #[test]
    fn error_pages_in_labels() {
        let out = parse_any(
            "app",
            &labels(&[
                ("traefik.http.routers.app.rule", "Host(`a.test`)"),
                ("traefik.http.services.app.loadbalancer.server.port", "80"),
                (
                    "traefik.http.middlewares.oops.errors.status",
                    "500,501,503,505-599",
                ),
                (
                    "traefik.http.middlewares.oops.errors.statusRewrites.418",
                    "404",
                ),
                (
                    "traefik.http.middlewares.oops.errors.statusrewrites.502-504",
                    "500",
                ),
                ("traefik.http.middlewares.oops.errors.service", "pages"),
                (
                    "traefik.http.middlewares.oops.errors.query",
                    "/{status}.html",
                ),
            ]),
            &defaults(),
        );
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        let e = out.config.http.middlewares["oops"].errors.as_ref().unwrap();
        assert_eq!(e.status, vec!["500", "501", "503", "505-599"]);
        assert_eq!(e.status_rewrites.get("418"), Some(&404));
        assert_eq!(e.status_rewrites.get("502-504"), Some(&500));
        assert_eq!(
            (e.service.as_str(), e.query.as_str()),
            ("pages", "/{status}.html")
        );
        assert_eq!(e.error_request_headers, None);
    }

    #[test]
    fn buffering_in_labels() {
        let out = parse_any(
            "app",
            &labels(&[
                ("traefik.http.routers.app.rule", "Host(`a.test`)"),
                ("traefik.http.routers.app.middlewares", "limit"),
                ("traefik.http.services.app.loadbalancer.server.port", "80"),
                (
                    "traefik.http.middlewares.limit.buffering.maxRequestBodyBytes",
                    "2000000",
                ),
                (
                    "traefik.http.middlewares.limit.buffering.memrequestbodybytes",
                    "4096",
                ),
                (
                    "traefik.http.middlewares.limit.buffering.maxresponsebodybytes",
                    "-1",
                ),
                (
                    "traefik.http.middlewares.limit.buffering.retryexpression",
                    "IsNetworkError() && Attempts() < 2",
                ),
            ]),
            &defaults(),
        );
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        let b = out.config.http.middlewares["limit"]
            .buffering
            .as_ref()
            .unwrap();
        assert_eq!(b.max_request_body_bytes, Some(2_000_000));
        assert_eq!(b.mem_request_body_bytes, Some(4096));
        assert_eq!(b.mem_response_body_bytes, None);
        assert_eq!(b.retry_expression, "IsNetworkError() && Attempts() < 2");
        // Decoded as written; the middleware refuses it, naming the key.
        assert_eq!(b.max_response_body_bytes, Some(-1));
        let err = crate::middleware::Buffering::new("limit@swarm", b).unwrap_err();
        assert!(
            err.message
                .contains("`maxResponseBodyBytes` must not be negative"),
            "{err}"
        );
    }

    #[test]
    fn ip_allow_lists_in_v3_and_v2_labels() {
        let out = parse_any(
            "app",
            &labels(&[
                ("traefik.http.routers.app.rule", "Host(`a.test`)"),
                ("traefik.http.services.app.loadbalancer.server.port", "80"),
                (
                    "traefik.http.middlewares.office.ipallowlist.sourcerange",
                    "127.0.0.1/32, 192.168.1.7",
                ),
                (
                    "traefik.http.middlewares.office.ipallowlist.ipstrategy.depth",
                    "2",
                ),
                (
                    "traefik.http.middlewares.office.ipallowlist.rejectstatuscode",
                    "404",
                ),
                (
                    "traefik.http.middlewares.old.ipwhitelist.sourcerange",
                    "10.0.0.0/8",
                ),
            ]),
            &defaults(),
        );
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        let m = &out.config.http.middlewares;
        let office = m["office"].ip_allow_list.as_ref().unwrap();
        assert_eq!(office.source_range, vec!["127.0.0.1/32", "192.168.1.7"]);
        assert_eq!(office.ip_strategy.as_ref().unwrap().depth, 2);
        assert_eq!(office.reject_status_code, 404);
        let old = m["old"].ip_white_list.as_ref().unwrap();
        assert_eq!(old.source_range, vec!["10.0.0.0/8"]);
    }

    #[test]
    fn bad_keys_disable_only_their_object() {
        let out = parse_any(
            "svc",
            &labels(&[
                ("traefik.http.routers.good.rule", "Host(`good`)"),
                ("traefik.http.routers.good.service", "svc"),
                ("traefik.http.routers.bad.rul", "Host(`bad`)"),
                ("traefik.http.routers.bad.service", "svc"),
                ("traefik.http.routers.prio.rule", "Host(`p`)"),
                ("traefik.http.routers.prio.priority", "high"),
                ("traefik.http.middlewares.mw.stripprefix.prefixs", "/x"),
                ("traefik.http.services.svc.loadbalancer.server.port", "80"),
            ]),
            &defaults(),
        );
        let errs = errors_of(&out);
        let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"traefik.http.routers.bad.rul"), "{errs:?}");
        assert!(
            keys.contains(&"traefik.http.routers.prio.priority"),
            "{errs:?}"
        );
        assert!(
            keys.contains(&"traefik.http.middlewares.mw.stripprefix.prefixs"),
            "{errs:?}"
        );
        let bad = errs
            .iter()
            .find(|(k, _)| k == "traefik.http.routers.bad.rul")
            .unwrap();
        assert!(
            bad.1.contains("`traefik.http.routers.bad.rul`"),
            "{}",
            bad.1
        );
        assert!(bad.1.contains("rule"), "suggests the right key: {}", bad.1);
        assert!(out.config.http.routers.contains_key("good"));
        assert!(!out.config.http.routers.contains_key("bad"));
        assert!(!out.config.http.routers.contains_key("prio"));
        assert!(!out.config.http.middlewares.contains_key("mw"));
        assert!(out.config.http.services.contains_key("svc"));
        let issue = out
            .issues
            .iter()
            .find(|i| i.key.as_deref() == Some("traefik.http.routers.bad.rul"))
            .unwrap();
        assert_eq!(issue.object.as_deref(), Some("bad@swarm"));
    }

    #[test]
    fn bad_port_scheme_rule_and_unknown_prefix() {
        let out = parse_any(
            "svc",
            &labels(&[
                ("traefik.http.services.a.loadbalancer.server.port", "eighty"),
                ("traefik.http.services.b.loadbalancer.server.port", "80"),
                (
                    "traefik.http.services.b.loadbalancer.server.scheme",
                    "gopher",
                ),
                ("traefik.http.services.c.loadbalancer.server.prot", "80"),
                ("traefik.http.routers.r.rule", "Host(`x`"),
                ("traefik.http.routers.r.service", "b"),
                ("traefik.htp.routers.r.rule", "Host(`x`)"),
            ]),
            &defaults(),
        );
        let errs = errors_of(&out);
        let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
        for want in [
            "traefik.http.services.a.loadbalancer.server.port",
            "traefik.http.services.b.loadbalancer.server.scheme",
            "traefik.http.services.c.loadbalancer.server.prot",
            "traefik.http.routers.r.rule",
            "traefik.htp.routers.r.rule",
        ] {
            assert!(keys.contains(&want), "{want} missing from {errs:?}");
        }
        assert!(out.config.http.services.is_empty());
        assert!(out.config.http.routers.is_empty());
    }

    #[test]
    fn tcp_only_labels_make_no_http_router() {
        let out = parse_any(
            "db",
            &labels(&[
                ("traefik.tcp.routers.db.rule", "HostSNI(`*`)"),
                ("traefik.tcp.services.db.loadbalancer.server.port", "5432"),
            ]),
            &defaults(),
        );
        assert!(out.config.http.routers.is_empty());
        assert!(out.config.http.services.is_empty());
        assert!(
            out.issues.iter().all(|i| i.severity == Severity::Warning),
            "{:?}",
            out.issues
        );
        assert!(!out.issues.is_empty(), "tcp is reported as unsupported");
    }
}
