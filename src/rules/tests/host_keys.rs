//! Host keys: what they report for many shapes, and that they are sound.

use super::super::HostKeys::{self, Any, Exact, Mixed, Wildcard};
use super::super::RuleSyntax::{self, V1, V2, V3};
use super::{expr, req};

fn keys(rule: &str, syntax: RuleSyntax) -> HostKeys<'static> {
    // The keys borrow the rule; a test can afford to keep it.
    Box::leak(Box::new(expr(rule, syntax))).host_keys()
}

fn strings(items: &[&'static str]) -> Vec<&'static str> {
    items.to_vec()
}

#[test]
fn single_hosts() {
    assert_eq!(keys("Host(`A.com.`)", V3), Exact(strings(&["a.com"])));
    assert_eq!(
        keys("Host(`*.Example.com`)", V3),
        Wildcard(strings(&[".example.com"]))
    );
    assert_eq!(keys("Host(`*`)", V3), Any);
}

#[test]
fn host_less_and_regex_rules_are_any() {
    assert_eq!(keys("PathPrefix(`/`)", V3), Any);
    assert_eq!(keys("HostRegexp(`^a\\.com$`)", V3), Any);
    assert_eq!(keys("HostRegexp(`{sub:[a-z]+}.a.com`)", V2), Any);
    assert_eq!(keys("AddPrefix:/x", V1), Any);
}

#[test]
fn not_is_any() {
    assert_eq!(keys("!Host(`a`)", V3), Any);
    assert_eq!(keys("!!Host(`a`)", V3), Any);
    assert_eq!(keys("!Host(`a`) && Host(`b`)", V3), Exact(strings(&["b"])));
}

#[test]
fn and_keeps_the_constrained_side() {
    assert_eq!(
        keys("Host(`a`) && PathPrefix(`/x`)", V3),
        Exact(strings(&["a"]))
    );
    assert_eq!(
        keys("Method(`GET`) && Host(`*.a.com`)", V3),
        Wildcard(strings(&[".a.com"]))
    );
}

#[test]
fn and_intersects_exact_hosts() {
    assert_eq!(
        keys("Host(`a`) && (Host(`a`) || Host(`b`))", V3),
        Exact(strings(&["a"]))
    );
    // Nothing can be both: an empty key list.
    assert_eq!(keys("Host(`a`) && Host(`b`)", V3), Exact(vec![]));
}

#[test]
fn and_filters_exact_hosts_through_wildcards() {
    assert_eq!(
        keys("Host(`*.e.com`) && Host(`x.e.com`)", V3),
        Exact(strings(&["x.e.com"]))
    );
    assert_eq!(
        keys(
            "(Host(`x.e.com`) || Host(`y.f.com`)) && Host(`*.e.com`)",
            V3
        ),
        Exact(strings(&["x.e.com"]))
    );
    assert_eq!(
        keys("Host(`*.e.com`) && Host(`a.b.e.com`)", V3),
        Exact(vec![])
    );
    assert_eq!(
        keys("Host(`*.e.com`) && Host(`*.b.e.com`)", V3),
        Exact(vec![])
    );
    assert_eq!(
        keys("Host(`*.e.com`) && Host(`*.e.com`)", V3),
        Wildcard(strings(&[".e.com"]))
    );
}

#[test]
fn or_unites_only_when_both_sides_are_constrained() {
    assert_eq!(
        keys("Host(`a`) || Host(`b`) || Host(`a`)", V3),
        Exact(strings(&["a", "b"]))
    );
    assert_eq!(keys("Host(`a`) || PathPrefix(`/x`)", V3), Any);
    assert_eq!(keys("Host(`a`) || !Host(`b`)", V3), Any);
    assert_eq!(
        keys("(Host(`a`) && Path(`/x`)) || Host(`b`)", V3),
        Exact(strings(&["a", "b"]))
    );
    assert_eq!(
        keys("Host(`a.com`) || Host(`*.a.com`)", V3),
        Mixed {
            exact: strings(&["a.com"]),
            wildcard: strings(&[".a.com"])
        }
    );
}

#[test]
fn v2_and_v1_hosts() {
    assert_eq!(
        keys("Host(`a`, `b`) && Path(`/`)", V2),
        Exact(strings(&["a", "b"]))
    );
    assert_eq!(
        keys("Host:a.com,B.com;PathPrefixStrip:/x", V1),
        Exact(strings(&["a.com", "b.com"]))
    );
    assert_eq!(
        keys("HostRegexp:a.com,{x}.b.com", V1),
        Any,
        "a template alternative leaves the host open"
    );
    assert_eq!(keys("HostRegexp:a.com", V1), Exact(strings(&["a.com"])));
}

/// Every request a rule matches has a host the keys allow.
#[test]
fn keys_are_sound() {
    let rules = [
        "Host(`a.com`)",
        "Host(`a.com`) && PathPrefix(`/x`)",
        "Host(`a.com`) || Host(`*.b.com`)",
        "Host(`*.b.com`) && Host(`x.b.com`)",
        "Host(`*.b.com`) && !Host(`x.b.com`)",
        "(Host(`a.com`) || Host(`c.com`)) && (Host(`c.com`) || Host(`*.b.com`))",
        "!(Host(`a.com`) && Path(`/x`)) && Host(`c.com`)",
        "Host(`a.com`) && Host(`c.com`)",
        "PathPrefix(`/x`) || Host(`a.com`)",
        "HostRegexp(`b\\.com$`)",
    ];
    let hosts = [
        "a.com",
        "a.com.",
        "b.com",
        "x.b.com",
        "y.b.com",
        "z.y.b.com",
        "c.com",
        "other.org",
        "",
    ];
    for rule in rules {
        let e = expr(rule, V3);
        let keys = e.host_keys();
        for host in hosts {
            for path in ["/", "/x"] {
                let request = req(host, path);
                if !e.matches(&request.info()) {
                    continue;
                }
                let h = super::super::trim_host_dot(host);
                let allowed = match &keys {
                    Any => true,
                    Exact(exact) => exact.contains(&h),
                    Wildcard(w) => w.iter().any(|s| {
                        h.len() > s.len()
                            && h.ends_with(*s)
                            && !h[..h.len() - s.len()].contains('.')
                    }),
                    Mixed { exact, wildcard } => {
                        exact.contains(&h)
                            || wildcard.iter().any(|s| {
                                h.len() > s.len()
                                    && h.ends_with(*s)
                                    && !h[..h.len() - s.len()].contains('.')
                            })
                    }
                };
                assert!(allowed, "`{rule}` matches host `{host}` outside {keys:?}");
            }
        }
    }
}
