//! Traefik 1.x labels, translated into the v3 model.
//!
//! A v1 frontend becomes a router named after the swarm service; a v1 backend
//! becomes a service named after `traefik.backend` (or the swarm service), so
//! swarm services sharing a backend name share one service, as in Traefik 1.
//! The rule stays in v1 syntax (`Host:a;PathPrefixStrip:/x`): the core parses
//! it and turns its modifiers into middlewares. Frontend features (auth,
//! headers, redirect, rate limit) and backend ones (max connections, circuit
//! breaker) become explicit middlewares named `<router>-<feature>`.
//!
//! Segments (`traefik.<segment>.frontend.rule`, `traefik.<segment>.port`)
//! give one router and service per segment, with the service-level labels as
//! their defaults.
//!
//! A label escale cannot honour disables what it belongs to: a broken
//! `frontend.*` label disables that frontend's router, a broken `backend.*`
//! label every router of the service. Security features that escale does not
//! implement (forward auth over TLS, a whitelist read from
//! `X-Forwarded-For`) disable the router too, rather than expose the backend
//! without them.

use std::collections::BTreeMap;

use super::{
    LabelDefaults, LabelsOutcome, Reporter, ServerTemplate, normalize, parse_bool, shared_key,
    traefik_suffix,
};
use crate::config::duration::GoDuration;
use crate::config::dynamic::{
    BasicAuth, Buffering, CircuitBreaker, ClientTls, DigestAuth, DynamicConfig, ErrorPages,
    ForwardAuth, Headers, HealthCheck, InFlightReq, IpAllowList, LoadBalancer, Middleware,
    RateLimit, RedirectRegex, RedirectScheme, Router, RuleSyntax, Service, SourceCriterion, Sticky,
    StickyCookie,
};
use crate::rules;

/// First key segments of a v1 label, directly after `traefik.` or after `traefik.<segment>.`.
const SEGMENT_HEADS: &[&str] = &[
    "port",
    "portname",
    "portindex",
    "protocol",
    "weight",
    "backend",
    "frontend",
    "domain",
];

/// Every v1 key escale honours (lowercase, after `traefik.` and any segment).
const KNOWN: &[&str] = &[
    "port",
    "protocol",
    "weight",
    "domain",
    "tags",
    "backend",
    "backend.loadbalancer.method",
    "backend.loadbalancer.sticky",
    "backend.loadbalancer.stickiness",
    "backend.loadbalancer.stickiness.cookiename",
    "backend.loadbalancer.swarm",
    "backend.healthcheck.scheme",
    "backend.healthcheck.path",
    "backend.healthcheck.port",
    "backend.healthcheck.interval",
    "backend.healthcheck.timeout",
    "backend.healthcheck.hostname",
    "backend.healthcheck.headers",
    "backend.circuitbreaker",
    "backend.circuitbreaker.expression",
    "backend.buffering.maxrequestbodybytes",
    "backend.buffering.memrequestbodybytes",
    "backend.buffering.maxresponsebodybytes",
    "backend.buffering.memresponsebodybytes",
    "backend.buffering.retryexpression",
    "backend.maxconn.amount",
    "backend.maxconn.extractorfunc",
    "frontend.rule",
    "frontend.priority",
    "frontend.entrypoints",
    "frontend.passhostheader",
    "frontend.whitelist.sourcerange",
    "frontend.whitelist.usexforwardedfor",
    "frontend.whitelistsourcerange",
    "frontend.auth.forward.address",
    "frontend.auth.forward.authresponseheaders",
    "frontend.auth.forward.trustforwardheader",
    "frontend.auth.forward.tls.ca",
    "frontend.auth.forward.tls.cert",
    "frontend.auth.forward.tls.key",
    "frontend.auth.forward.tls.insecureskipverify",
    "frontend.auth.basic",
    "frontend.auth.basic.users",
    "frontend.auth.basic.usersfile",
    "frontend.auth.basic.removeheader",
    "frontend.auth.digest.users",
    "frontend.auth.digest.usersfile",
    "frontend.auth.digest.removeheader",
    "frontend.auth.headerfield",
    "frontend.redirect.entrypoint",
    "frontend.redirect.regex",
    "frontend.redirect.replacement",
    "frontend.redirect.permanent",
    "frontend.ratelimit.extractorfunc",
    "frontend.headers.customrequestheaders",
    "frontend.headers.customresponseheaders",
    "frontend.headers.stsseconds",
    "frontend.headers.stsincludesubdomains",
    "frontend.headers.stspreload",
    "frontend.headers.framedeny",
    "frontend.headers.customframeoptionsvalue",
    "frontend.headers.contenttypenosniff",
    "frontend.headers.browserxssfilter",
    "frontend.headers.contentsecuritypolicy",
    "frontend.headers.referrerpolicy",
];

/// Keys shared with the v2/v3 labels, read before the v1 ones.
const SHARED: &[&str] = &["enable", "docker.network"];

/// Whether a key (after `traefik.`) belongs to the v1 syntax.
pub fn is_v1_key(rest: &str) -> bool {
    split(rest).is_some()
}

/// `(segment, key within the segment, lowercased)`; `None` for keys that are
/// not v1 at all.
fn split(rest: &str) -> Option<(Option<&str>, String)> {
    let head = super::head(rest);
    // `tags` is service-wide only: it cannot follow a segment name.
    if head == "tags" || SEGMENT_HEADS.contains(&head.as_str()) {
        return Some((None, rest.to_ascii_lowercase()));
    }
    let (segment, sub) = rest.split_once('.')?;
    SEGMENT_HEADS
        .contains(&super::head(sub).as_str())
        .then(|| (Some(segment), sub.to_ascii_lowercase()))
}

/// One label: its full key as written and its value.
#[derive(Debug, Clone, Copy)]
struct Label<'a> {
    key: &'a str,
    value: &'a str,
}

type Keys<'a> = BTreeMap<String, Label<'a>>;

/// Labels of one frontend/backend pair, with the service-level ones as fallback.
struct Segment<'a> {
    name: Option<&'a str>,
    own: &'a Keys<'a>,
    fallback: Option<&'a Keys<'a>>,
}

impl<'a> Segment<'a> {
    fn get(&self, key: &str) -> Option<Label<'a>> {
        self.own
            .get(key)
            .copied()
            .or_else(|| self.fallback.and_then(|f| f.get(key).copied()))
    }

    /// Every label under `prefix.` (own first, then fallback ones not overridden).
    fn under(&self, prefix: &str) -> Vec<(String, Label<'a>)> {
        let mut out: BTreeMap<String, Label<'a>> = BTreeMap::new();
        if let Some(f) = self.fallback {
            collect_under(f, prefix, &mut out);
        }
        collect_under(self.own, prefix, &mut out);
        out.into_iter().collect()
    }

    /// The key a missing label would have, for messages.
    fn key_for(&self, sub: &str) -> String {
        match self.name {
            Some(seg) => format!("traefik.{seg}.{sub}"),
            None => format!("traefik.{sub}"),
        }
    }
}

fn collect_under<'a>(keys: &Keys<'a>, prefix: &str, out: &mut BTreeMap<String, Label<'a>>) {
    let dotted = format!("{prefix}.");
    for (k, l) in keys {
        if let Some(rest) = k.strip_prefix(&dotted) {
            out.insert(rest.to_string(), *l);
        }
    }
}

/// Collects problems for one router; any error disables it.
struct Errors<'r> {
    report: &'r mut Reporter,
    object: String,
    failed: bool,
}

impl Errors<'_> {
    fn error(&mut self, key: &str, message: impl Into<String>) {
        self.failed = true;
        self.report.error(key, Some(&self.object), message);
    }

    fn warning(&mut self, key: &str, message: impl Into<String>) {
        self.report.warning(key, Some(&self.object), message);
    }
}

/// Reads a v1-labelled swarm service.
pub fn parse(
    service: &str,
    labels: &BTreeMap<String, String>,
    defaults: &LabelDefaults,
) -> LabelsOutcome {
    let mut report = Reporter::new(&defaults.provider, service);
    let mut base: Keys = BTreeMap::new();
    let mut segments: BTreeMap<&str, Keys> = BTreeMap::new();
    let mut unknown_frontend = false;
    for (key, value) in labels {
        let Some(rest) = traefik_suffix(key) else {
            continue;
        };
        if shared_key(rest).is_some() {
            continue;
        }
        let label = Label { key, value };
        match split(rest) {
            Some((None, sub)) => {
                base.insert(sub, label);
            }
            Some((Some(seg), sub)) => {
                segments.entry(seg).or_default().insert(sub, label);
            }
            None => {
                report.error(key, None, unknown_label(rest));
            }
        }
    }

    // Unknown keys inside a known group break what the group configures.
    let mut backend_broken = false;
    for (sub, label) in &base {
        match classify(sub) {
            Kind::Known => {}
            Kind::Unsupported => report.warning(
                label.key,
                None,
                "not supported by escale; the label is ignored",
            ),
            Kind::Unknown => {
                report.error(label.key, None, unknown_label(sub));
                if sub.starts_with("backend.") {
                    backend_broken = true;
                } else if sub.starts_with("frontend.") {
                    unknown_frontend = true;
                }
            }
            Kind::Refused(why) => {
                report.error(label.key, None, why);
                unknown_frontend = true;
            }
        }
    }
    let mut unknown_in_segment: BTreeMap<&str, bool> = BTreeMap::new();
    for (seg, keys) in &segments {
        for (sub, label) in keys {
            let bad = match classify(sub) {
                Kind::Known if !sub.starts_with("backend.") => false,
                Kind::Unsupported if !sub.starts_with("backend.") => {
                    report.warning(
                        label.key,
                        None,
                        "not supported by escale; the label is ignored",
                    );
                    false
                }
                Kind::Refused(why) => {
                    report.error(label.key, None, why);
                    true
                }
                _ => {
                    report.error(label.key, None, "unknown segment label");
                    true
                }
            };
            if bad {
                unknown_in_segment.insert(seg, true);
            }
        }
    }

    let mut config = DynamicConfig::default();
    let mut servers = BTreeMap::new();
    let parts: Vec<Segment> = if segments.is_empty() {
        vec![Segment {
            name: None,
            own: &base,
            fallback: None,
        }]
    } else {
        segments
            .iter()
            .map(|(name, own)| Segment {
                name: Some(name),
                own,
                fallback: Some(&base),
            })
            .collect()
    };

    let backend_label = base.get("backend").map(|l| l.value.trim().to_string());
    for seg in &parts {
        let router_name = match seg.name {
            None => normalize(service),
            Some(s) => format!("{}-{}", normalize(service), normalize(s)),
        };
        let service_name = match (seg.name, seg.own.get("backend"), &backend_label) {
            (_, Some(l), _) if seg.name.is_some() => normalize(l.value),
            (None, _, Some(b)) if !b.is_empty() => normalize(b),
            (None, _, _) => normalize(service),
            (Some(s), _, _) => format!(
                "{}-{}",
                normalize(backend_label.as_deref().unwrap_or(service)),
                normalize(s)
            ),
        };
        let mut errors = Errors {
            report: &mut report,
            object: router_name.clone(),
            failed: backend_broken
                || (seg.name.is_none() && unknown_frontend)
                || seg.name.is_some_and(|s| unknown_in_segment.contains_key(s))
                || (seg.name.is_some() && unknown_frontend),
        };
        if service_name.is_empty() {
            let key = seg.key_for("backend");
            errors.error(&key, "the backend name is empty");
            continue;
        }

        let template = server_template(seg, &mut errors);
        let lb = load_balancer(seg, &mut errors);
        let router = router(service, seg, defaults, &service_name, &mut errors);
        let middlewares = middlewares(seg, &router_name, &mut errors);

        let (Some(template), Some(lb), Some(mut router), Some(middlewares)) =
            (template, lb, router, middlewares)
        else {
            continue;
        };
        if errors.failed {
            continue;
        }
        let svc = Service {
            load_balancer: Some(lb),
            ..Service::default()
        };
        if let Some(existing) = config.http.services.get(&service_name)
            && (existing != &svc || servers.get(&service_name) != Some(&template))
        {
            let key = seg.key_for("backend");
            report.error(
                &key,
                Some(&router_name),
                format!("segments define backend `{service_name}` twice, differently"),
            );
            continue;
        }
        for (name, mw) in middlewares {
            router.middlewares.push(name.clone());
            config.http.middlewares.insert(name, mw);
        }
        config.http.services.insert(service_name.clone(), svc);
        servers.insert(service_name, template);
        config.http.routers.insert(router_name, router);
    }

    LabelsOutcome {
        enabled: true,
        generation: Some(super::LabelGeneration::V1),
        config,
        servers,
        network: None,
        lb_swarm: false,
        issues: report.issues,
    }
}

enum Kind {
    Known,
    /// Traefik has it; escale ignores it with a warning.
    Unsupported,
    /// Traefik has it; escale cannot honour it safely, so the router is off.
    Refused(&'static str),
    Unknown,
}

fn classify(sub: &str) -> Kind {
    const UNSUPPORTED: &[&str] = &[
        "portname",
        "portindex",
        "backend.id",
        "frontend.passtlscert",
        "frontend.headers.allowedhosts",
        "frontend.headers.hostsproxyheaders",
        "frontend.headers.sslforcehost",
        "frontend.headers.sslredirect",
        "frontend.headers.ssltemporaryredirect",
        "frontend.headers.sslhost",
        "frontend.headers.sslproxyheaders",
        "frontend.headers.forcestsheader",
        "frontend.headers.custombrowserxssvalue",
        "frontend.headers.publickey",
        "frontend.headers.isdevelopment",
    ];
    if KNOWN.contains(&sub) {
        return Kind::Known;
    }
    if let Some(rest) = sub.strip_prefix("frontend.errors.") {
        let parts: Vec<&str> = rest.split('.').collect();
        if parts.len() == 2 && matches!(parts[1], "status" | "backend" | "query") {
            return Kind::Known;
        }
    }
    if UNSUPPORTED.contains(&sub) || sub.starts_with("frontend.passsslclientcert") {
        return Kind::Unsupported;
    }
    if sub.starts_with("frontend.auth.forward.tls") {
        return Kind::Refused(
            "this forward auth TLS setting is not supported by escale (ca, cert, key, \
             insecureSkipVerify are); the frontend is disabled rather than exposed without it",
        );
    }
    if let Some(rest) = sub.strip_prefix("frontend.ratelimit.rateset.") {
        let parts: Vec<&str> = rest.split('.').collect();
        if parts.len() == 2 && matches!(parts[1], "period" | "average" | "burst") {
            return Kind::Known;
        }
    }
    Kind::Unknown
}

/// `frontend.auth.forward.tls.*`, Traefik 1's client TLS for the auth server.
fn forward_auth_tls(seg: &Segment, errors: &mut Errors) -> Option<ClientTls> {
    let key = |k: &str| get_str(seg, &format!("frontend.auth.forward.tls.{k}"));
    let insecure = get_bool(seg, "frontend.auth.forward.tls.insecureskipverify", errors);
    let tls = ClientTls {
        ca: key("ca").unwrap_or_default(),
        cert: key("cert").unwrap_or_default(),
        key: key("key").unwrap_or_default(),
        insecure_skip_verify: insecure.unwrap_or(false),
        ca_optional: None,
    };
    (tls != ClientTls::default()).then_some(tls)
}

/// The message for an unknown key, with the closest known one when there is one.
fn unknown_label(sub: &str) -> String {
    match suggest(sub) {
        Some(s) => format!("unknown label; did you mean `traefik.{s}`?"),
        None => "unknown label".to_string(),
    }
}

fn suggest(sub: &str) -> Option<&'static str> {
    let lower = sub.to_ascii_lowercase();
    SHARED
        .iter()
        .chain(KNOWN)
        .map(|k| (*k, strsim::jaro_winkler(k, &lower)))
        .filter(|(_, score)| *score > 0.85)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

fn server_template(seg: &Segment, errors: &mut Errors) -> Option<ServerTemplate> {
    let port = match seg.get("port") {
        None => {
            let key = seg.key_for("port");
            errors.error(
                &key,
                format!("port is missing: swarm services need the `{key}` label"),
            );
            return None;
        }
        Some(l) => match l.value.trim().parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => {
                errors.error(l.key, format!("`{}` is not a port number", l.value));
                return None;
            }
        },
    };
    let scheme = match seg.get("protocol") {
        None => "http".to_string(),
        Some(l) => match l.value.trim().to_ascii_lowercase().as_str() {
            s @ ("http" | "https" | "h2c") => s.to_string(),
            other => {
                errors.error(
                    l.key,
                    format!("protocol `{other}` is not one of http, https, h2c"),
                );
                return None;
            }
        },
    };
    let weight = match seg.get("weight") {
        None => None,
        Some(l) => match l.value.trim().parse::<u32>() {
            Ok(w) => Some(w),
            Err(_) => {
                errors.error(l.key, format!("`{}` is not a weight", l.value));
                return None;
            }
        },
    };
    Some(ServerTemplate {
        scheme,
        port,
        weight,
        preserve_path: None,
    })
}

fn get_bool(seg: &Segment, key: &str, errors: &mut Errors) -> Option<bool> {
    let l = seg.get(key)?;
    match parse_bool(l.value) {
        Ok(b) => Some(b),
        Err(e) => {
            errors.error(l.key, e);
            None
        }
    }
}

fn get_int<T: std::str::FromStr>(seg: &Segment, key: &str, errors: &mut Errors) -> Option<T> {
    let l = seg.get(key)?;
    match l.value.trim().parse::<T>() {
        Ok(v) => Some(v),
        Err(_) => {
            errors.error(l.key, format!("`{}` is not a valid number", l.value));
            None
        }
    }
}

fn get_duration(seg: &Segment, key: &str, errors: &mut Errors) -> Option<GoDuration> {
    let l = seg.get(key)?;
    match GoDuration::parse(l.value) {
        Ok(d) => Some(d),
        Err(e) => {
            errors.error(l.key, e.to_string());
            None
        }
    }
}

fn get_str(seg: &Segment, key: &str) -> Option<String> {
    seg.get(key)
        .map(|l| l.value.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `Name:value||Name2:value2`, Traefik 1's map syntax.
fn parse_header_map(label: Label, errors: &mut Errors) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in label.value.split("||") {
        if item.trim().is_empty() {
            continue;
        }
        match item.split_once(':') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => errors.error(
                label.key,
                format!("`{item}` is not `Name:value` (items are separated by `||`)"),
            ),
        }
    }
    out
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn load_balancer(seg: &Segment, errors: &mut Errors) -> Option<LoadBalancer> {
    let before = errors.failed;
    let mut lb = LoadBalancer::default();
    if let Some(l) = seg.get("backend.loadbalancer.method") {
        match l.value.trim().to_ascii_lowercase().as_str() {
            "wrr" => {}
            "drr" => {
                errors.warning(
                    l.key,
                    "drr (dynamic round robin) is served by escale's p2c balancer",
                );
                lb.strategy = Some("p2c".to_string());
            }
            other => errors.error(
                l.key,
                format!("load-balancing method `{other}` is not one of wrr, drr"),
            ),
        }
    }
    let sticky = get_bool(seg, "backend.loadbalancer.sticky", errors).unwrap_or(false);
    let stickiness = get_bool(seg, "backend.loadbalancer.stickiness", errors).unwrap_or(false);
    let cookie_name = get_str(seg, "backend.loadbalancer.stickiness.cookiename");
    if sticky || stickiness || cookie_name.is_some() {
        lb.sticky = Some(Sticky {
            cookie: Some(StickyCookie {
                name: cookie_name,
                ..StickyCookie::default()
            }),
        });
    }
    if let Some(path) = get_str(seg, "backend.healthcheck.path") {
        let mut hc = HealthCheck {
            path: Some(path),
            scheme: get_str(seg, "backend.healthcheck.scheme"),
            hostname: get_str(seg, "backend.healthcheck.hostname"),
            port: get_int(seg, "backend.healthcheck.port", errors),
            interval: get_duration(seg, "backend.healthcheck.interval", errors),
            timeout: get_duration(seg, "backend.healthcheck.timeout", errors),
            ..HealthCheck::default()
        };
        if let Some(l) = seg.get("backend.healthcheck.headers") {
            hc.headers = parse_header_map(l, errors);
        }
        lb.health_check = Some(hc);
    } else {
        for (sub, l) in seg.under("backend.healthcheck") {
            errors.warning(
                l.key,
                format!(
                    "ignored: the health check is off without `backend.healthcheck.path` ({sub})"
                ),
            );
        }
    }
    lb.pass_host_header = get_bool(seg, "frontend.passhostheader", errors);
    (errors.failed == before).then_some(lb)
}

fn router(
    service: &str,
    seg: &Segment,
    defaults: &LabelDefaults,
    service_name: &str,
    errors: &mut Errors,
) -> Option<Router> {
    let before = errors.failed;
    let rule = match seg.get("frontend.rule") {
        Some(l) => {
            let rule = l.value.trim().to_string();
            if let Err(e) = rules::parse(&rule, RuleSyntax::V1) {
                errors.error(l.key, e.to_string());
            }
            rule
        }
        None => {
            let domain = get_str(seg, "domain").or_else(|| defaults.domain.clone());
            match domain {
                Some(d) => format!("Host:{}.{}", sub_domain(service), d.trim_start_matches('.')),
                None => {
                    let key = seg.key_for("frontend.rule");
                    errors.error(
                        &key,
                        format!("no rule: set `{key}`, or a domain (--docker.domain)"),
                    );
                    String::new()
                }
            }
        }
    };
    let priority = get_int::<i64>(seg, "frontend.priority", errors);
    let entry_points = seg
        .get("frontend.entrypoints")
        .map(|l| split_list(l.value))
        .unwrap_or_default();
    (errors.failed == before).then(|| Router {
        entry_points,
        middlewares: Vec::new(),
        service: service_name.to_string(),
        rule,
        rule_syntax: Some(RuleSyntax::V1),
        priority,
        ..Router::default()
    })
}

/// Traefik 1's `getSubDomain`: the service name with `_` and spaces as `-`.
fn sub_domain(service: &str) -> String {
    service.trim_start_matches('/').replace(['_', ' '], "-")
}

fn middlewares(
    seg: &Segment,
    router: &str,
    errors: &mut Errors,
) -> Option<Vec<(String, Middleware)>> {
    let before = errors.failed;
    let mut out = Vec::new();

    // Error pages first, so that they also replace the answers of the
    // middlewares below.
    let pages = seg.under("frontend.errors");
    let mut names: Vec<String> = pages
        .iter()
        .filter_map(|(k, _)| k.split_once('.').map(|(n, _)| n.to_string()))
        .collect();
    names.dedup();
    for page in names {
        let key = |field: &str| format!("frontend.errors.{page}.{field}");
        let Some(backend) = seg.get(&key("backend")) else {
            let k = seg.key_for(&key("backend"));
            errors.error(&k, "an error page needs the backend that serves it");
            continue;
        };
        out.push((
            format!("{router}-errors-{}", normalize(&page)),
            Middleware {
                errors: Some(ErrorPages {
                    status: seg
                        .get(&key("status"))
                        .map(|l| split_list(l.value))
                        .unwrap_or_default(),
                    // The backend as its own `traefik.backend` label names it.
                    service: normalize(backend.value.trim()),
                    query: get_str(seg, &key("query")).unwrap_or_default(),
                    ..ErrorPages::default()
                }),
                ..Middleware::default()
            },
        ));
    }

    // Order as Traefik 1 chains them: redirect, rate limit, auth, headers,
    // then the backend's max connections and circuit breaker.
    let permanent = get_bool(seg, "frontend.redirect.permanent", errors).unwrap_or(false);
    if let Some(l) = seg.get("frontend.redirect.entrypoint") {
        let scheme = match l.value.trim().to_ascii_lowercase().as_str() {
            "https" | "websecure" => Some("https"),
            "http" | "web" => Some("http"),
            _ => None,
        };
        match scheme {
            Some(scheme) => out.push((
                format!("{router}-redirect"),
                Middleware {
                    redirect_scheme: Some(RedirectScheme {
                        scheme: scheme.to_string(),
                        port: None,
                        permanent,
                    }),
                    ..Middleware::default()
                },
            )),
            None => errors.error(
                l.key,
                format!(
                    "redirect to entrypoint `{}` is not supported: escale redirects to \
                     `http`/`https` (or use frontend.redirect.regex)",
                    l.value
                ),
            ),
        }
    } else if let Some(regex) = seg.get("frontend.redirect.regex") {
        match seg.get("frontend.redirect.replacement") {
            Some(rep) => {
                if let Err(e) = regex::Regex::new(regex.value) {
                    errors.error(regex.key, format!("bad regex: {e}"));
                }
                out.push((
                    format!("{router}-redirect"),
                    Middleware {
                        redirect_regex: Some(RedirectRegex {
                            regex: regex.value.to_string(),
                            replacement: rep.value.to_string(),
                            permanent,
                        }),
                        ..Middleware::default()
                    },
                ))
            }
            None => errors.error(
                regex.key,
                "a redirect regex needs `frontend.redirect.replacement`",
            ),
        }
    } else if let Some(rep) = seg.get("frontend.redirect.replacement") {
        errors.error(
            rep.key,
            "a redirect replacement needs `frontend.redirect.regex`",
        );
    }

    let rate_sets = seg.under("frontend.ratelimit.rateset");
    if !rate_sets.is_empty() {
        let criterion = match seg.get("frontend.ratelimit.extractorfunc") {
            Some(l) => extractor(l, errors),
            None => None,
        };
        let mut names: Vec<String> = rate_sets
            .iter()
            .filter_map(|(k, _)| k.split_once('.').map(|(n, _)| n.to_string()))
            .collect();
        names.dedup();
        for set in names {
            let key = |field: &str| format!("frontend.ratelimit.rateset.{set}.{field}");
            let average = get_int::<u64>(seg, &key("average"), errors);
            let burst = get_int::<u64>(seg, &key("burst"), errors);
            let period = get_duration(seg, &key("period"), errors);
            let Some(average) = average else {
                let k = seg.key_for(&key("average"));
                errors.error(&k, "a rate set needs an average");
                continue;
            };
            out.push((
                format!("{router}-ratelimit-{}", normalize(&set)),
                Middleware {
                    rate_limit: Some(RateLimit {
                        average,
                        period,
                        burst: burst.unwrap_or(1),
                        source_criterion: criterion.clone(),
                    }),
                    ..Middleware::default()
                },
            ));
        }
    }

    // Before authentication: a client from elsewhere gets 403, not 401.
    let from_xff = get_bool(seg, "frontend.whitelist.usexforwardedfor", errors) == Some(true);
    if from_xff && let Some(l) = seg.get("frontend.whitelist.usexforwardedfor") {
        errors.error(
            l.key,
            "useXForwardedFor is not supported by escale: it lets through any \
             address a client writes in X-Forwarded-For; the frontend is disabled \
             rather than exposed (v3 labels: ipAllowList with ipStrategy)",
        );
    }
    let ranges = seg
        .get("frontend.whitelist.sourcerange")
        .or_else(|| seg.get("frontend.whitelistsourcerange"));
    if let Some(ranges) = ranges.filter(|_| !from_xff) {
        out.push((
            format!("{router}-whitelist"),
            Middleware {
                ip_allow_list: Some(IpAllowList {
                    source_range: split_list(ranges.value),
                    ..IpAllowList::default()
                }),
                ..Middleware::default()
            },
        ));
    }

    if let Some(address) = get_str(seg, "frontend.auth.forward.address") {
        // Traefik 1's `false` is the behaviour Traefik 3 keeps for an unset
        // trustForwardHeader.
        let trust =
            get_bool(seg, "frontend.auth.forward.trustforwardheader", errors).filter(|t| *t);
        out.push((
            format!("{router}-forwardauth"),
            Middleware {
                forward_auth: Some(ForwardAuth {
                    address,
                    trust_forward_header: trust,
                    auth_response_headers: seg
                        .get("frontend.auth.forward.authresponseheaders")
                        .map(|l| split_list(l.value))
                        .unwrap_or_default(),
                    tls: forward_auth_tls(seg, errors),
                    ..ForwardAuth::default()
                }),
                ..Middleware::default()
            },
        ));
    }

    let users = seg
        .get("frontend.auth.basic.users")
        .or_else(|| seg.get("frontend.auth.basic"));
    let users_file = get_str(seg, "frontend.auth.basic.usersfile");
    if users.is_some() || users_file.is_some() {
        let users = users.map(|l| split_list(l.value)).unwrap_or_default();
        if let Some(l) = seg.get("frontend.auth.basic.users")
            && let Some(bad) = users.iter().find(|u| !u.contains(':'))
        {
            errors.error(l.key, format!("`{bad}` is not `user:hash`"));
        }
        out.push((
            format!("{router}-auth"),
            Middleware {
                basic_auth: Some(BasicAuth {
                    users,
                    users_file,
                    realm: None,
                    remove_header: get_bool(seg, "frontend.auth.basic.removeheader", errors)
                        .unwrap_or(false),
                    header_field: get_str(seg, "frontend.auth.headerfield"),
                }),
                ..Middleware::default()
            },
        ));
    }

    let digest_users = seg.get("frontend.auth.digest.users");
    let digest_file = get_str(seg, "frontend.auth.digest.usersfile");
    if digest_users.is_some() || digest_file.is_some() {
        let users = digest_users
            .map(|l| split_list(l.value))
            .unwrap_or_default();
        if let Some(l) = digest_users
            && let Some(bad) = users.iter().find(|u| u.split(':').count() != 3)
        {
            errors.error(l.key, format!("`{bad}` is not `user:realm:HA1`"));
        }
        out.push((
            format!("{router}-digest"),
            Middleware {
                digest_auth: Some(DigestAuth {
                    users,
                    users_file: digest_file,
                    realm: None,
                    remove_header: get_bool(seg, "frontend.auth.digest.removeheader", errors)
                        .unwrap_or(false),
                    header_field: get_str(seg, "frontend.auth.headerfield"),
                }),
                ..Middleware::default()
            },
        ));
    }

    if let Some(headers) = headers(seg, errors) {
        out.push((
            format!("{router}-headers"),
            Middleware {
                headers: Some(headers),
                ..Middleware::default()
            },
        ));
    }

    if let Some(amount) = get_int::<u64>(seg, "backend.maxconn.amount", errors) {
        let criterion = match seg.get("backend.maxconn.extractorfunc") {
            Some(l) => extractor(l, errors),
            None => None,
        };
        out.push((
            format!("{router}-maxconn"),
            Middleware {
                in_flight_req: Some(InFlightReq {
                    amount,
                    source_criterion: criterion,
                }),
                ..Middleware::default()
            },
        ));
    }
    if let Some(expr) = get_str(seg, "backend.circuitbreaker.expression")
        .or_else(|| get_str(seg, "backend.circuitbreaker"))
    {
        out.push((
            format!("{router}-circuitbreaker"),
            Middleware {
                circuit_breaker: Some(CircuitBreaker {
                    expression: expr,
                    ..CircuitBreaker::default()
                }),
                ..Middleware::default()
            },
        ));
    }
    // Traefik 1 buffers a backend as soon as one of its keys is there.
    if BUFFERING_KEYS.iter().any(|k| seg.get(k).is_some()) {
        let size = |key: &str, errors: &mut Errors| get_int::<i64>(seg, key, errors);
        out.push((
            format!("{router}-buffering"),
            Middleware {
                buffering: Some(Buffering {
                    max_request_body_bytes: size(BUFFERING_KEYS[0], errors),
                    mem_request_body_bytes: size(BUFFERING_KEYS[1], errors),
                    max_response_body_bytes: size(BUFFERING_KEYS[2], errors),
                    mem_response_body_bytes: size(BUFFERING_KEYS[3], errors),
                    retry_expression: get_str(seg, BUFFERING_KEYS[4]).unwrap_or_default(),
                }),
                ..Middleware::default()
            },
        ));
    }
    (errors.failed == before).then_some(out)
}

const BUFFERING_KEYS: [&str; 5] = [
    "backend.buffering.maxrequestbodybytes",
    "backend.buffering.memrequestbodybytes",
    "backend.buffering.maxresponsebodybytes",
    "backend.buffering.memresponsebodybytes",
    "backend.buffering.retryexpression",
];

/// Traefik 1's extractor functions: `client.ip`, `request.host`,
/// `request.header.<name>`.
fn extractor(label: Label, errors: &mut Errors) -> Option<SourceCriterion> {
    let v = label.value.trim();
    if v.eq_ignore_ascii_case("client.ip") {
        return None;
    }
    if v.eq_ignore_ascii_case("request.host") {
        return Some(SourceCriterion {
            request_host: true,
            ..SourceCriterion::default()
        });
    }
    if let Some(name) = v
        .get(..15)
        .filter(|p| p.eq_ignore_ascii_case("request.header."))
        .map(|_| &v[15..])
        .filter(|n| !n.is_empty())
    {
        return Some(SourceCriterion {
            request_header_name: Some(name.to_string()),
            ..SourceCriterion::default()
        });
    }
    errors.error(
        label.key,
        format!("`{v}` is not one of client.ip, request.host, request.header.<name>"),
    );
    None
}

fn headers(seg: &Segment, errors: &mut Errors) -> Option<Headers> {
    let mut h = Headers::default();
    let mut any = false;
    if let Some(l) = seg.get("frontend.headers.customrequestheaders") {
        h.custom_request_headers = parse_header_map(l, errors);
        any = true;
    }
    if let Some(l) = seg.get("frontend.headers.customresponseheaders") {
        h.custom_response_headers = parse_header_map(l, errors);
        any = true;
    }
    macro_rules! set {
        ($field:ident, $key:literal, bool) => {
            if let Some(v) = get_bool(seg, $key, errors) {
                h.$field = Some(v);
                any = true;
            }
        };
        ($field:ident, $key:literal, int) => {
            if let Some(v) = get_int::<i64>(seg, $key, errors) {
                h.$field = Some(v);
                any = true;
            }
        };
        ($field:ident, $key:literal, str) => {
            if let Some(v) = get_str(seg, $key) {
                h.$field = Some(v);
                any = true;
            }
        };
    }
    set!(sts_seconds, "frontend.headers.stsseconds", int);
    set!(
        sts_include_subdomains,
        "frontend.headers.stsincludesubdomains",
        bool
    );
    set!(sts_preload, "frontend.headers.stspreload", bool);
    set!(frame_deny, "frontend.headers.framedeny", bool);
    set!(
        custom_frame_options_value,
        "frontend.headers.customframeoptionsvalue",
        str
    );
    set!(
        content_type_nosniff,
        "frontend.headers.contenttypenosniff",
        bool
    );
    set!(
        browser_xss_filter,
        "frontend.headers.browserxssfilter",
        bool
    );
    set!(
        content_security_policy,
        "frontend.headers.contentsecuritypolicy",
        str
    );
    set!(referrer_policy, "frontend.headers.referrerpolicy", str);
    any.then_some(h)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{errors_of, labels};
    use super::super::{LabelGeneration, parse as parse_any};
    use super::*;
    use crate::provider::Severity;

    fn v1_defaults() -> LabelDefaults {
        LabelDefaults::new("docker", LabelGeneration::V1)
    }

    /// The seed's services, verbatim.
    #[test]
    fn seed_labels() {
        let d = v1_defaults();
        let cdn = parse_any(
            "running_cdn",
            &labels(&[
                ("traefik.backend", "cdn"),
                (
                    "traefik.frontend.rule",
                    "Host:alderaan;PathPrefixStrip:/cdn/",
                ),
                ("traefik.port", "80"),
            ]),
            &d,
        );
        assert!(cdn.issues.is_empty(), "{:?}", cdn.issues);
        let r = &cdn.config.http.routers["running-cdn"];
        assert_eq!(r.rule, "Host:alderaan;PathPrefixStrip:/cdn/");
        assert_eq!(r.rule_syntax, Some(RuleSyntax::V1));
        assert_eq!(r.service, "cdn");
        assert!(r.middlewares.is_empty());
        assert!(cdn.config.http.services.contains_key("cdn"));
        assert_eq!(cdn.servers["cdn"].port, 80);
        assert_eq!(cdn.servers["cdn"].scheme, "http");

        let ludo = parse_any(
            "ludotm_ludotheque",
            &labels(&[
                ("traefik.backend", "ludotm_ludotheque"),
                (
                    "traefik.frontend.rule",
                    "Host:alderaan;PathPrefixStrip:/ludotm/ludotheque",
                ),
                ("traefik.port", "80"),
            ]),
            &d,
        );
        assert!(ludo.issues.is_empty(), "{:?}", ludo.issues);
        assert_eq!(
            ludo.config.http.routers["ludotm-ludotheque"].service,
            "ludotm-ludotheque"
        );
    }

    #[test]
    fn default_rule_from_domain() {
        let mut d = v1_defaults();
        d.domain = Some("example.org".into());
        let out = parse_any("my_app", &labels(&[("traefik.port", "8080")]), &d);
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        assert_eq!(
            out.config.http.routers["my-app"].rule,
            "Host:my-app.example.org"
        );
        assert_eq!(out.config.http.routers["my-app"].service, "my-app");
        let out = parse_any(
            "my_app",
            &labels(&[("traefik.port", "8080"), ("traefik.domain", "other.net")]),
            &d,
        );
        assert_eq!(
            out.config.http.routers["my-app"].rule,
            "Host:my-app.other.net"
        );
        // Without a domain and a rule there is nothing to route on.
        let out = parse_any(
            "my_app",
            &labels(&[("traefik.port", "8080")]),
            &v1_defaults(),
        );
        assert!(out.config.http.routers.is_empty());
        assert_eq!(errors_of(&out)[0].0, "traefik.frontend.rule");
    }

    #[test]
    fn missing_and_bad_port() {
        let d = v1_defaults();
        let out = parse_any("web", &labels(&[("traefik.frontend.rule", "Host:a")]), &d);
        assert!(out.config.http.routers.is_empty());
        let errs = errors_of(&out);
        assert_eq!(errs[0].0, "traefik.port");
        assert!(errs[0].1.contains("port is missing"), "{errs:?}");
        let out = parse_any(
            "web",
            &labels(&[
                ("traefik.frontend.rule", "Host:a"),
                ("traefik.port", "http"),
            ]),
            &d,
        );
        assert!(out.config.http.routers.is_empty());
        assert_eq!(errors_of(&out)[0].0, "traefik.port");
    }

    #[test]
    fn frontend_and_backend_options() {
        let d = v1_defaults();
        let out = parse_any(
            "api",
            &labels(&[
                ("traefik.port", "9000"),
                ("traefik.protocol", "https"),
                ("traefik.weight", "3"),
                ("traefik.frontend.rule", "Host:api.example.com"),
                ("traefik.frontend.priority", "42"),
                ("traefik.frontend.entryPoints", "http, https"),
                ("traefik.frontend.passHostHeader", "false"),
                ("traefik.backend.loadbalancer.method", "drr"),
                ("traefik.backend.loadbalancer.stickiness", "true"),
                ("traefik.backend.loadbalancer.stickiness.cookieName", "sess"),
                ("traefik.backend.healthcheck.path", "/health"),
                ("traefik.backend.healthcheck.interval", "5s"),
                ("traefik.backend.healthcheck.headers", "X-A:1||X-B: two"),
            ]),
            &d,
        );
        assert!(errors_of(&out).is_empty(), "{:?}", out.issues);
        let r = &out.config.http.routers["api"];
        assert_eq!(r.priority, Some(42));
        assert_eq!(r.entry_points, vec!["http", "https"]);
        let lb = out.config.http.services["api"]
            .load_balancer
            .as_ref()
            .unwrap();
        assert_eq!(lb.pass_host_header, Some(false));
        assert_eq!(lb.strategy.as_deref(), Some("p2c"));
        assert_eq!(
            lb.sticky
                .as_ref()
                .unwrap()
                .cookie
                .as_ref()
                .unwrap()
                .name
                .as_deref(),
            Some("sess")
        );
        let hc = lb.health_check.as_ref().unwrap();
        assert_eq!(hc.path.as_deref(), Some("/health"));
        assert_eq!(hc.interval, Some(GoDuration::from_secs(5)));
        assert_eq!(hc.headers["X-B"], "two");
        assert_eq!(out.servers["api"].scheme, "https");
        assert_eq!(out.servers["api"].weight, Some(3));
        // drr is honoured approximately: a warning says how.
        assert!(out.issues.iter().any(|i| i.severity == Severity::Warning));

        let sticky = parse_any(
            "s",
            &labels(&[
                ("traefik.port", "80"),
                ("traefik.frontend.rule", "Host:s"),
                ("traefik.backend.loadbalancer.sticky", "true"),
            ]),
            &d,
        );
        let lb = sticky.config.http.services["s"]
            .load_balancer
            .as_ref()
            .unwrap();
        assert!(lb.sticky.is_some());
    }

    #[test]
    fn error_page_labels() {
        let out = parse_any(
            "app",
            &labels(&[
                ("traefik.port", "3000"),
                ("traefik.frontend.rule", "Host:supercoolapp.com"),
                ("traefik.frontend.errors.network.backend", "error"),
                ("traefik.frontend.errors.network.query", "/{status}.html"),
                ("traefik.frontend.errors.network.status", "500-511,404"),
            ]),
            &v1_defaults(),
        );
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        let r = &out.config.http.routers["app"];
        assert_eq!(r.middlewares, vec!["app-errors-network"]);
        let e = out.config.http.middlewares["app-errors-network"]
            .errors
            .as_ref()
            .unwrap();
        assert_eq!(e.status, vec!["500-511", "404"]);
        assert_eq!(
            (e.service.as_str(), e.query.as_str()),
            ("error", "/{status}.html")
        );

        let no_backend = parse_any(
            "app",
            &labels(&[
                ("traefik.port", "3000"),
                ("traefik.frontend.errors.network.status", "500"),
            ]),
            &v1_defaults(),
        );
        assert!(no_backend.config.http.routers.is_empty());
        assert!(
            errors_of(&no_backend)
                .iter()
                .any(|e| e.1.contains("needs the backend")),
            "{:?}",
            no_backend.issues
        );
    }

    #[test]
    fn digest_auth_labels() {
        let out = parse_any(
            "vault",
            &labels(&[
                ("traefik.port", "80"),
                ("traefik.frontend.rule", "Host:vault"),
                (
                    "traefik.frontend.auth.digest.users",
                    "alice:traefik:a2d3d41b3b0b2b4f4bd4f1e0b6b9f1c2,bob:traefik:0f1e",
                ),
                ("traefik.frontend.auth.digest.removeHeader", "true"),
                ("traefik.frontend.auth.headerField", "X-WebAuth-User"),
            ]),
            &v1_defaults(),
        );
        assert!(errors_of(&out).is_empty(), "{:?}", out.issues);
        let r = &out.config.http.routers["vault"];
        assert_eq!(r.middlewares, vec!["vault-digest"]);
        let d = out.config.http.middlewares["vault-digest"]
            .digest_auth
            .as_ref()
            .unwrap();
        assert_eq!(d.users.len(), 2);
        assert!(d.remove_header);
        assert_eq!(d.header_field.as_deref(), Some("X-WebAuth-User"));

        let bad = parse_any(
            "vault",
            &labels(&[
                ("traefik.port", "80"),
                ("traefik.frontend.auth.digest.users", "alice:nohash"),
            ]),
            &v1_defaults(),
        );
        assert!(
            errors_of(&bad)
                .iter()
                .any(|e| e.1.contains("`alice:nohash` is not `user:realm:HA1`")),
            "{:?}",
            bad.issues
        );
        assert!(bad.config.http.routers.is_empty());
    }

    #[test]
    fn frontend_middlewares() {
        let d = v1_defaults();
        let out = parse_any(
            "admin",
            &labels(&[
                ("traefik.port", "80"),
                ("traefik.frontend.rule", "Host:admin"),
                (
                    "traefik.frontend.auth.basic.users",
                    "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/,test2:$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0",
                ),
                (
                    "traefik.frontend.headers.customRequestHeaders",
                    "X-Tenant:ludo||X-Env:prod",
                ),
                (
                    "traefik.frontend.headers.customResponseHeaders",
                    "X-Served-By:escale",
                ),
                ("traefik.frontend.headers.frameDeny", "true"),
                ("traefik.frontend.redirect.entryPoint", "https"),
                ("traefik.frontend.redirect.permanent", "true"),
                ("traefik.backend.maxconn.amount", "10"),
                ("traefik.backend.maxconn.extractorfunc", "request.host"),
                ("traefik.frontend.rateLimit.rateSet.r1.average", "100"),
                ("traefik.frontend.rateLimit.rateSet.r1.burst", "200"),
                ("traefik.frontend.rateLimit.rateSet.r1.period", "10s"),
                (
                    "traefik.frontend.whiteList.sourceRange",
                    "10.0.0.0/8, 192.168.1.7",
                ),
                ("traefik.frontend.whiteList.useXForwardedFor", "false"),
            ]),
            &d,
        );
        assert!(errors_of(&out).is_empty(), "{:?}", out.issues);
        let r = &out.config.http.routers["admin"];
        assert_eq!(
            r.middlewares,
            vec![
                "admin-redirect",
                "admin-ratelimit-r1",
                "admin-whitelist",
                "admin-auth",
                "admin-headers",
                "admin-maxconn"
            ]
        );
        let m = &out.config.http.middlewares;
        assert_eq!(m["admin-auth"].basic_auth.as_ref().unwrap().users.len(), 2);
        let h = m["admin-headers"].headers.as_ref().unwrap();
        assert_eq!(h.custom_request_headers["X-Tenant"], "ludo");
        assert_eq!(h.custom_response_headers["X-Served-By"], "escale");
        assert_eq!(h.frame_deny, Some(true));
        let rs = m["admin-redirect"].redirect_scheme.as_ref().unwrap();
        assert_eq!(rs.scheme, "https");
        assert!(rs.permanent);
        assert!(
            m["admin-maxconn"]
                .in_flight_req
                .as_ref()
                .unwrap()
                .source_criterion
                .as_ref()
                .unwrap()
                .request_host
        );
        let allowed = m["admin-whitelist"].ip_allow_list.as_ref().unwrap();
        assert_eq!(allowed.source_range, vec!["10.0.0.0/8", "192.168.1.7"]);
        assert!(allowed.ip_strategy.is_none());
        let rl = m["admin-ratelimit-r1"].rate_limit.as_ref().unwrap();
        assert_eq!((rl.average, rl.burst), (100, 200));
        assert_eq!(rl.period, Some(GoDuration::from_secs(10)));

        let out = parse_any(
            "r",
            &labels(&[
                ("traefik.port", "80"),
                ("traefik.frontend.rule", "Host:r"),
                ("traefik.frontend.redirect.regex", "^http://r/(.*)"),
                ("traefik.frontend.redirect.replacement", "https://r/$1"),
            ]),
            &d,
        );
        let rr = out.config.http.middlewares["r-redirect"]
            .redirect_regex
            .as_ref()
            .unwrap();
        assert_eq!(rr.replacement, "https://r/$1");
    }

    #[test]
    fn backend_buffering_labels() {
        let out = parse_any(
            "up",
            &labels(&[
                ("traefik.port", "80"),
                ("traefik.frontend.rule", "Host:up"),
                ("traefik.backend.buffering.maxRequestBodyBytes", "2000000"),
                (
                    "traefik.backend.buffering.retryExpression",
                    "IsNetworkError() && Attempts() <= 2",
                ),
            ]),
            &v1_defaults(),
        );
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        assert_eq!(
            out.config.http.routers["up"].middlewares,
            vec!["up-buffering"]
        );
        let b = out.config.http.middlewares["up-buffering"]
            .buffering
            .as_ref()
            .unwrap();
        assert_eq!(b.max_request_body_bytes, Some(2_000_000));
        assert_eq!(b.mem_request_body_bytes, None);
        assert_eq!(b.retry_expression, "IsNetworkError() && Attempts() <= 2");

        let out = parse_any(
            "up",
            &labels(&[
                ("traefik.port", "80"),
                ("traefik.frontend.rule", "Host:up"),
                ("traefik.backend.buffering.memResponseBodyBytes", "lots"),
            ]),
            &v1_defaults(),
        );
        let errors = errors_of(&out);
        assert!(
            errors.iter().any(|(key, message)| key
                == "traefik.backend.buffering.memResponseBodyBytes"
                && message.contains("`lots` is not a valid number")),
            "{errors:?}"
        );
    }

    #[test]
    fn forward_auth_labels() {
        let d = v1_defaults();
        let out = parse_any(
            "app",
            &labels(&[
                ("traefik.port", "80"),
                ("traefik.frontend.rule", "Host:app"),
                (
                    "traefik.frontend.auth.forward.address",
                    "http://authelia:9091/api/verify",
                ),
                (
                    "traefik.frontend.auth.forward.authResponseHeaders",
                    "Remote-User, Remote-Groups",
                ),
                ("traefik.frontend.auth.forward.trustForwardHeader", "true"),
            ]),
            &d,
        );
        assert!(errors_of(&out).is_empty(), "{:?}", out.issues);
        assert_eq!(
            out.config.http.routers["app"].middlewares,
            vec!["app-forwardauth"]
        );
        let fa = out.config.http.middlewares["app-forwardauth"]
            .forward_auth
            .as_ref()
            .unwrap();
        assert_eq!(fa.address, "http://authelia:9091/api/verify");
        assert_eq!(
            fa.auth_response_headers,
            vec!["Remote-User", "Remote-Groups"]
        );
        assert_eq!(fa.trust_forward_header, Some(true));

        let out = parse_any(
            "app",
            &labels(&[
                ("traefik.port", "80"),
                (
                    "traefik.frontend.auth.forward.address",
                    "https://sso/verify",
                ),
                ("traefik.frontend.auth.forward.tls.ca", "/ca.pem"),
                (
                    "traefik.frontend.auth.forward.tls.insecureSkipVerify",
                    "true",
                ),
                ("traefik.frontend.auth.forward.tls.caOptional", "true"),
            ]),
            &d,
        );
        let errs = errors_of(&out);
        assert!(
            errs.iter()
                .any(|(k, m)| k == "traefik.frontend.auth.forward.tls.caOptional"
                    && m.contains("forward auth TLS setting is not supported")),
            "{errs:?}"
        );
        assert!(out.config.http.routers.is_empty());
        let ok = parse_any(
            "app",
            &labels(&[
                ("traefik.port", "80"),
                ("traefik.frontend.rule", "Host:app.test"),
                (
                    "traefik.frontend.auth.forward.address",
                    "https://sso/verify",
                ),
                ("traefik.frontend.auth.forward.tls.ca", "/ca.pem"),
                (
                    "traefik.frontend.auth.forward.tls.insecureSkipVerify",
                    "true",
                ),
            ]),
            &d,
        );
        let tls = ok
            .config
            .http
            .middlewares
            .values()
            .find_map(|m| m.forward_auth.as_ref().and_then(|f| f.tls.clone()));
        assert_eq!(
            tls,
            Some(ClientTls {
                ca: "/ca.pem".into(),
                insecure_skip_verify: true,
                ..ClientTls::default()
            })
        );
        assert!(out.config.http.routers.is_empty());
    }

    #[test]
    fn bad_labels_name_the_key_and_disable_only_their_router() {
        let d = v1_defaults();
        for (key, value, want) in [
            ("traefik.frontend.priority", "high", "not a valid number"),
            ("traefik.frontend.passHostHeader", "maybe", "not a boolean"),
            ("traefik.frontend.auth.basic.users", "nohash", "user:hash"),
            (
                "traefik.frontend.headers.customRequestHeaders",
                "X-A",
                "Name:value",
            ),
            (
                "traefik.backend.healthcheck.interval",
                "soon",
                "invalid duration",
            ),
            ("traefik.backend.loadbalancer.method", "random", "wrr, drr"),
            ("traefik.frontend.rule", "Hots:alderaan", ""),
            ("traefik.frontend.auth.basic.userz", "a:b", "unknown label"),
            (
                "traefik.frontend.whiteList.useXForwardedFor",
                "true",
                "useXForwardedFor",
            ),
            ("traefik.protocol", "ftp", "protocol"),
        ] {
            let mut l = labels(&[
                ("traefik.port", "80"),
                ("traefik.backend.healthcheck.path", "/health"),
            ]);
            l.insert(key.to_string(), value.to_string());
            l.entry("traefik.frontend.rule".into())
                .or_insert_with(|| "Host:a".into());
            let out = parse_any("svc", &l, &d);
            let errs = errors_of(&out);
            assert!(
                errs.iter()
                    .any(|(k, m)| k == key && m.to_lowercase().contains(&want.to_lowercase())),
                "{key}={value}: {errs:?}"
            );
            assert!(
                out.config.http.routers.is_empty(),
                "{key}={value} must disable the router"
            );
            let issue = out
                .issues
                .iter()
                .find(|i| i.key.as_deref() == Some(key))
                .unwrap();
            assert_eq!(issue.source, "swarm service svc");
        }
    }

    #[test]
    fn unknown_top_level_key_is_reported_with_a_suggestion() {
        let d = v1_defaults();
        let out = parse_any(
            "svc",
            &labels(&[
                ("traefik.port", "80"),
                ("traefik.frontend.rule", "Host:a"),
                ("traefik.frontend.rul", "Host:b"),
            ]),
            &d,
        );
        let errs = errors_of(&out);
        assert_eq!(errs[0].0, "traefik.frontend.rul");
        assert!(errs[0].1.contains("traefik.frontend.rule"), "{errs:?}");
    }

    #[test]
    fn unsupported_keys_warn_and_keep_serving() {
        let d = v1_defaults();
        let out = parse_any(
            "svc",
            &labels(&[
                ("traefik.port", "80"),
                ("traefik.frontend.rule", "Host:a"),
                ("traefik.frontend.headers.SSLRedirect", "true"),
            ]),
            &d,
        );
        assert!(errors_of(&out).is_empty());
        assert_eq!(out.issues.len(), 1);
        assert_eq!(out.issues[0].severity, Severity::Warning);
        assert!(out.config.http.routers.contains_key("svc"));
    }

    #[test]
    fn segments() {
        let d = v1_defaults();
        let out = parse_any(
            "multi",
            &labels(&[
                ("traefik.frontend.entryPoints", "http"),
                ("traefik.web.port", "80"),
                ("traefik.web.frontend.rule", "Host:web"),
                ("traefik.admin.port", "8080"),
                ("traefik.admin.frontend.rule", "Host:admin"),
                ("traefik.admin.backend", "adm"),
            ]),
            &d,
        );
        assert!(out.issues.is_empty(), "{:?}", out.issues);
        let r = &out.config.http.routers;
        assert_eq!(r["multi-web"].service, "multi-web");
        assert_eq!(r["multi-admin"].service, "adm");
        assert_eq!(r["multi-web"].entry_points, vec!["http"]);
        assert_eq!(out.servers["adm"].port, 8080);
        assert_eq!(out.servers["multi-web"].port, 80);
    }
}
