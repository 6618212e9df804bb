//! A route in plain words → Traefik v3 labels that escale (or Traefik) reads
//! from the service.

use std::collections::BTreeMap;
use std::time::Duration;

use super::file::RouteDef;
use crate::rules::{self, RuleSyntax};

/// The labels of one route and the rule they carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub rule: String,
    pub labels: BTreeMap<String, String>,
}

/// A router, service and middleware name made from a swarm service name.
pub fn router_name(service: &str) -> String {
    service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The rule a route stands for: its own `rule`, or `Host` and `PathPrefix`.
pub fn rule_of(r: &RouteDef) -> Result<String, String> {
    if let Some(rule) = &r.rule {
        if r.host.is_some() || r.path_prefix.is_some() {
            return Err("set either `rule` or `host`/`path_prefix`, not both".into());
        }
        return Ok(rule.value.clone());
    }
    let mut parts = Vec::new();
    if let Some(h) = &r.host {
        if h.value.is_empty() || h.value.contains('`') {
            return Err(format!("invalid host {:?}", h.value));
        }
        parts.push(format!("Host(`{}`)", h.value));
    }
    if let Some(p) = &r.path_prefix {
        if !p.value.starts_with('/') || p.value.contains('`') {
            return Err(format!(
                "invalid path_prefix {:?}: it must start with `/`",
                p.value
            ));
        }
        parts.push(format!("PathPrefix(`{}`)", p.value));
    }
    if parts.is_empty() {
        return Err("a route needs `host`, `path_prefix` or `rule`".into());
    }
    Ok(parts.join(" && "))
}

/// Compiles a route for the swarm service `service`. `network` is the
/// network the proxy reaches it on. Every problem is returned.
pub fn compile(
    service: &str,
    r: &RouteDef,
    network: Option<&str>,
) -> Result<Compiled, Vec<String>> {
    let mut errors = Vec::new();
    let name = router_name(service);
    let rule = match rule_of(r) {
        Ok(rule) => {
            if let Err(e) = rules::parse(&rule, RuleSyntax::V3) {
                errors.push(rule_error(&e));
            }
            rule
        }
        Err(e) => {
            errors.push(e);
            String::new()
        }
    };
    let port = match &r.port {
        Some(p) => p.value,
        None => {
            errors.push(
                "the route has no `port`: set the container port the proxy sends traffic to".into(),
            );
            0
        }
    };
    if r.strip && r.path_prefix.is_none() {
        errors.push("`strip = true` needs a `path_prefix` to strip".into());
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let router = format!("traefik.http.routers.{name}");
    let lb = format!("traefik.http.services.{name}.loadbalancer");
    let mut l = BTreeMap::new();
    l.insert("traefik.enable".to_string(), "true".to_string());
    l.insert(format!("{router}.rule"), rule.clone());
    l.insert(format!("{router}.service"), name.clone());
    if !r.entrypoints.is_empty() {
        l.insert(format!("{router}.entrypoints"), r.entrypoints.join(","));
    }
    if let Some(p) = r.priority {
        l.insert(format!("{router}.priority"), p.to_string());
    }
    let mut middlewares = Vec::new();
    if r.strip
        && let Some(p) = &r.path_prefix
    {
        let m = format!("{name}-strip");
        l.insert(
            format!("traefik.http.middlewares.{m}.stripprefix.prefixes"),
            p.value.clone(),
        );
        middlewares.push(m);
    }
    middlewares.extend(r.middlewares.iter().cloned());
    if !middlewares.is_empty() {
        l.insert(format!("{router}.middlewares"), middlewares.join(","));
    }
    l.insert(format!("{lb}.server.port"), port.to_string());
    match &r.sticky {
        Some(Some(cookie)) => {
            l.insert(format!("{lb}.sticky.cookie.name"), cookie.clone());
        }
        Some(None) => {
            l.insert(format!("{lb}.sticky.cookie"), "true".into());
        }
        None => {}
    }
    if let Some(h) = &r.healthcheck {
        l.insert(format!("{lb}.healthcheck.path"), h.path.clone());
        if let Some(i) = h.interval {
            l.insert(format!("{lb}.healthcheck.interval"), go_duration(i));
        }
        if let Some(t) = h.timeout {
            l.insert(format!("{lb}.healthcheck.timeout"), go_duration(t));
        }
    }
    if let Some(n) = network {
        l.insert("traefik.swarm.network".into(), n.to_string());
    }
    Ok(Compiled { rule, labels: l })
}

/// Checks the rules found in raw `traefik.http.routers.*.rule` labels.
pub fn check_raw_rules<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in labels {
        if k.starts_with("traefik.http.routers.")
            && k.ends_with(".rule")
            && let Err(e) = rules::parse(v, RuleSyntax::V3)
        {
            out.push((k.to_string(), rule_error(&e)));
        }
    }
    out
}

fn rule_error(e: &rules::RuleError) -> String {
    format!(
        "rule `{}` does not parse: {} (at character {})",
        e.rule,
        e.message,
        e.position + 1
    )
}

/// `10s`, `1m30s`, `250ms`: the form Traefik's labels take.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::decode::At;
    use crate::stack::file::RouteHealth;

    fn at(s: &str) -> Option<At<String>> {
        Some(At::new(s.to_string(), 1))
    }

    #[test]
    fn plain_route_to_v3_labels() {
        let r = RouteDef {
            host: at("alderaan"),
            path_prefix: at("/ludotm/ludotheque"),
            strip: true,
            port: Some(At::new(80, 1)),
            sticky: Some(None),
            healthcheck: Some(RouteHealth {
                path: "/health".into(),
                interval: Some(Duration::from_secs(10)),
                timeout: None,
            }),
            middlewares: vec!["auth@file".into()],
            ..RouteDef::default()
        };
        let c = compile("ludotm_ludotheque", &r, Some("esc-net")).unwrap();
        let got: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            got,
            [
                "traefik.enable=true",
                "traefik.http.middlewares.ludotm_ludotheque-strip.stripprefix.prefixes=/ludotm/ludotheque",
                "traefik.http.routers.ludotm_ludotheque.middlewares=ludotm_ludotheque-strip,auth@file",
                "traefik.http.routers.ludotm_ludotheque.rule=Host(`alderaan`) && PathPrefix(`/ludotm/ludotheque`)",
                "traefik.http.routers.ludotm_ludotheque.service=ludotm_ludotheque",
                "traefik.http.services.ludotm_ludotheque.loadbalancer.healthcheck.interval=10s",
                "traefik.http.services.ludotm_ludotheque.loadbalancer.healthcheck.path=/health",
                "traefik.http.services.ludotm_ludotheque.loadbalancer.server.port=80",
                "traefik.http.services.ludotm_ludotheque.loadbalancer.sticky.cookie=true",
                "traefik.swarm.network=esc-net",
            ]
        );
        // The labels are what escale's own label reader accepts.
        for (k, v) in &c.labels {
            if k.ends_with(".rule") {
                rules::parse(v, RuleSyntax::V3).unwrap();
            }
        }
    }

    #[test]
    fn named_sticky_cookie_and_raw_rule() {
        let r = RouteDef {
            rule: at("Host(`a`) || Host(`b`)"),
            port: Some(At::new(8080, 1)),
            sticky: Some(Some("sid".into())),
            ..RouteDef::default()
        };
        let c = compile("saas", &r, None).unwrap();
        assert_eq!(c.rule, "Host(`a`) || Host(`b`)");
        assert_eq!(
            c.labels["traefik.http.services.saas.loadbalancer.sticky.cookie.name"],
            "sid"
        );
        assert!(!c.labels.contains_key("traefik.swarm.network"));
    }

    #[test]
    fn every_route_problem_is_reported() {
        let r = RouteDef {
            rule: at("Host(`a`"),
            strip: true,
            ..RouteDef::default()
        };
        let errs = compile("x", &r, None).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with("rule `Host(`a`` does not parse"));
        assert!(errs[1].contains("no `port`"));
        assert!(errs[2].contains("strip"));
    }

    #[test]
    fn route_needs_a_matcher() {
        let r = RouteDef {
            port: Some(At::new(80, 1)),
            ..RouteDef::default()
        };
        assert_eq!(
            compile("x", &r, None).unwrap_err(),
            ["a route needs `host`, `path_prefix` or `rule`"]
        );
        let r = RouteDef {
            path_prefix: at("cdn"),
            port: Some(At::new(80, 1)),
            ..RouteDef::default()
        };
        assert!(compile("x", &r, None).unwrap_err()[0].contains("must start with `/`"));
    }

    #[test]
    fn raw_rules_are_checked() {
        let bad = check_raw_rules([
            ("traefik.http.routers.a.rule", "Host(`ok`)"),
            ("traefik.http.routers.b.rule", "Hots(`x`)"),
            ("other", "Hots"),
        ]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, "traefik.http.routers.b.rule");
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }
}
