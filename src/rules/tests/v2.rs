//! `ruleSyntax: v2`: several values per matcher and gorilla/mux templates.

use super::super::RuleSyntax::V2;
use super::{expr, hits, req, show};

fn v2(rule: &str, request: &super::Req) -> bool {
    hits(rule, V2, request)
}

fn shape(rule: &str) -> String {
    show(&expr(rule, V2))
}

#[test]
fn host_values_are_alternatives() {
    let rule = "Host(`a.com`, `B.com`)";
    assert_eq!(shape(rule), "(Host(a.com) || Host(b.com))");
    assert!(v2(rule, &req("a.com", "/")));
    assert!(v2(rule, &req("b.com", "/")));
    assert!(!v2(rule, &req("c.com", "/")));
    assert!(v2("HostHeader(`a.com`)", &req("a.com", "/")));
    assert!(!v2("HostHeader(`a.com`)", &req("b.com", "/")));
}

#[test]
fn host_regexp_templates() {
    let rule = "HostRegexp(`{subdomain:[a-z]+}.traefik.com`)";
    assert_eq!(shape(rule), r"HostRegexp((?i)^(?:[a-z]+)\.traefik\.com$)");
    assert!(v2(rule, &req("foo.traefik.com", "/")));
    assert!(v2(rule, &req("FOO.traefik.com", "/")));
    assert!(!v2(rule, &req("foo.bar.traefik.com", "/")));
    assert!(!v2(rule, &req("foo1.traefik.com", "/")));
    assert!(!v2(rule, &req("traefik.com", "/")));
    assert!(!v2(rule, &req("foo.traefik.com.evil", "/")));

    // `{name}` alone is one label.
    let any_label = "HostRegexp(`{sub}.example.com`, `example.org`)";
    assert!(v2(any_label, &req("x-1.example.com", "/")));
    assert!(!v2(any_label, &req("a.b.example.com", "/")));
    assert!(v2(any_label, &req("example.org", "/")));
}

#[test]
fn host_regexp_without_variables_is_a_host() {
    assert_eq!(shape("HostRegexp(`Example.com`)"), "Host(example.com)");
}

#[test]
fn path_templates_are_anchored() {
    let rule = "Path(`/users/{id:[0-9]+}`)";
    assert!(v2(rule, &req("a", "/users/42")));
    assert!(!v2(rule, &req("a", "/users/42/")));
    assert!(!v2(rule, &req("a", "/users/x")));
    assert!(!v2(rule, &req("a", "/v1/users/42")));
    assert!(v2("Path(`/a/{name}`)", &req("a", "/a/anything")));
    assert!(!v2("Path(`/a/{name}`)", &req("a", "/a/b/c")));
    // Literal text around variables is escaped.
    assert!(!v2("Path(`/a.b/{x}`)", &req("a", "/aXb/1")));
}

#[test]
fn literal_paths_and_alternatives() {
    let rule = "Path(`/a`, `/b`)";
    assert_eq!(shape(rule), "(Path(/a) || Path(/b))");
    assert!(v2(rule, &req("h", "/b")));
    assert!(!v2(rule, &req("h", "/a/")));
    let prefix = "PathPrefix(`/api`, `/ws`)";
    assert_eq!(shape(prefix), "(PathPrefix(/api) || PathPrefix(/ws))");
    assert!(v2(prefix, &req("h", "/ws/chat")));
}

#[test]
fn path_prefix_templates() {
    let rule = "PathPrefix(`/api/{version:v[0-9]+}`)";
    assert!(v2(rule, &req("a", "/api/v2/users")));
    assert!(v2(rule, &req("a", "/api/v2")));
    assert!(!v2(rule, &req("a", "/api/beta/users")));
}

#[test]
fn method_values_are_alternatives() {
    let rule = "Method(`GET`, `post`)";
    assert!(v2(rule, &req("a", "/")));
    assert!(v2(rule, &req("a", "/").method("POST")));
    assert!(!v2(rule, &req("a", "/").method("PUT")));
}

#[test]
fn header_pairs_are_all_required() {
    let rule = "Headers(`X-A`, `1`, `X-B`, `2`)";
    assert_eq!(shape(rule), "(Header(x-a, 1) && Header(x-b, 2))");
    assert!(v2(
        rule,
        &req("h", "/").header("x-a", "1").header("x-b", "2")
    ));
    assert!(!v2(rule, &req("h", "/").header("x-a", "1")));
    let regex = "HeadersRegexp(`Content-Type`, `application/(json|yaml)`)";
    assert!(v2(
        regex,
        &req("h", "/").header("content-type", "application/json; charset=utf-8")
    ));
    assert!(!v2(
        regex,
        &req("h", "/").header("content-type", "text/html")
    ));
}

#[test]
fn query_uses_the_first_value() {
    let rule = "Query(`k=v`)";
    assert!(v2(rule, &req("h", "/?k=v")));
    assert!(v2(rule, &req("h", "/?k=v&k=x")));
    // gorilla/mux only looks at the first value of a parameter.
    assert!(!v2(rule, &req("h", "/?k=x&k=v")));
    assert!(!v2(rule, &req("h", "/?k=vv")));
    assert!(!v2(rule, &req("h", "/")));
}

#[test]
fn query_with_empty_value_is_presence() {
    let rule = "Query(`mobile=`)";
    assert!(v2(rule, &req("h", "/?mobile=true")));
    assert!(v2(rule, &req("h", "/?mobile")));
    assert!(!v2(rule, &req("h", "/?other=1")));
}

#[test]
fn query_templates_and_pairs() {
    let rule = "Query(`id={id:[0-9]+}`, `lang=fr`)";
    assert!(v2(rule, &req("h", "/?lang=fr&id=42")));
    assert!(!v2(rule, &req("h", "/?lang=fr&id=x")));
    assert!(!v2(rule, &req("h", "/?id=42")));
}

#[test]
fn client_ip_values_are_alternatives() {
    let rule = "ClientIP(`10.0.0.0/8`, `::1`)";
    assert!(v2(rule, &req("h", "/").ip("10.2.3.4")));
    assert!(v2(rule, &req("h", "/").ip("::1")));
    assert!(!v2(rule, &req("h", "/").ip("192.0.2.1")));
}

#[test]
fn v2_operators_like_v3() {
    let rule = "Host(`a`, `b`) && !PathPrefix(`/admin`) || Method(`OPTIONS`)";
    assert_eq!(
        shape(rule),
        "(((Host(a) || Host(b)) && !PathPrefix(/admin)) || Method(OPTIONS))"
    );
    assert!(v2(rule, &req("b", "/x")));
    assert!(!v2(rule, &req("b", "/admin")));
    assert!(v2(rule, &req("z", "/admin").method("OPTIONS")));
}
