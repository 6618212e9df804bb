//! Traefik 1.7 rules: matchers, `;` / `,`, and modifiers in their order.

use super::super::Modifier;
use super::super::RuleSyntax::V1;
use super::{expr, hits, parsed, req, show};

fn v1(rule: &str, request: &super::Req) -> bool {
    hits(rule, V1, request)
}

fn shape(rule: &str) -> String {
    show(&expr(rule, V1))
}

fn modifiers(rule: &str) -> Vec<Modifier> {
    parsed(rule, V1).modifiers
}

#[test]
fn host_values_are_alternatives() {
    let rule = "Host:a.com,B.com";
    assert_eq!(shape(rule), "(Host(a.com) || Host(b.com))");
    assert!(v1(rule, &req("a.com", "/")));
    assert!(v1(rule, &req("b.com", "/")));
    assert!(!v1(rule, &req("c.com", "/")));
    assert!(modifiers(rule).is_empty());
}

#[test]
fn semicolon_is_and() {
    let rule = "Host:a.com;Path:/x;Method:GET";
    assert_eq!(
        shape(rule),
        "((Host(a.com) && PathOptionalSlash(/x)) && Method(GET))"
    );
    assert!(v1(rule, &req("a.com", "/x")));
    assert!(!v1(rule, &req("a.com", "/y")));
    assert!(!v1(rule, &req("b.com", "/x")));
    assert!(!v1(rule, &req("a.com", "/x").method("POST")));
}

#[test]
fn whitespace_and_empty_segments() {
    let rule = " Host : a.com , b.com ;; PathPrefix: /x ;";
    assert_eq!(
        shape(rule),
        "((Host(a.com) || Host(b.com)) && PathPrefix(/x))"
    );
    // Traefik drops empty values.
    assert_eq!(shape("Host:a.com,,b.com,"), "(Host(a.com) || Host(b.com))");
}

#[test]
fn host_regexp_templates() {
    let rule = "HostRegexp:{subdomain:[a-z]+}.example.com,{sub}.example.org";
    assert!(v1(rule, &req("foo.example.com", "/")));
    assert!(v1(rule, &req("x-1.example.org", "/")));
    assert!(!v1(rule, &req("foo.bar.example.com", "/")));
    assert!(!v1(rule, &req("example.com", "/")));
    assert_eq!(shape("HostRegexp:example.com"), "Host(example.com)");
}

/// Traefik 1.7 routes with gorilla/mux's StrictSlash on: `/foo` and `/foo/` both match.
#[test]
fn path_has_an_optional_trailing_slash() {
    let rule = "Path:/foo";
    assert!(v1(rule, &req("h", "/foo")));
    assert!(v1(rule, &req("h", "/foo/")));
    assert!(!v1(rule, &req("h", "/foo//")));
    assert!(!v1(rule, &req("h", "/foo/bar")));
    assert!(!v1(rule, &req("h", "/foobar")));
    let slash = "Path:/foo/";
    assert_eq!(shape(slash), "PathOptionalSlash(/foo)");
    assert!(v1(slash, &req("h", "/foo")));
    assert!(v1(slash, &req("h", "/foo/")));
    assert!(v1("Path:/", &req("h", "/")));
    assert!(!v1("Path:/", &req("h", "/a")));
}

#[test]
fn path_templates() {
    let rule = "Path:/users/{id:[0-9]+}";
    assert_eq!(shape(rule), "PathRegexp(^/users/(?:[0-9]+)/?$)");
    assert!(v1(rule, &req("h", "/users/42")));
    assert!(v1(rule, &req("h", "/users/42/")));
    assert!(!v1(rule, &req("h", "/users/abc")));
    assert!(!v1(rule, &req("h", "/users/42/x")));
}

#[test]
fn path_prefix() {
    let rule = "PathPrefix:/api,/ws";
    assert!(v1(rule, &req("h", "/api")));
    assert!(v1(rule, &req("h", "/apiary")));
    assert!(v1(rule, &req("h", "/ws/x")));
    assert!(!v1(rule, &req("h", "/static")));
    let tpl = "PathPrefix:/api/{version:v[0-9]+}";
    assert!(v1(tpl, &req("h", "/api/v1/users")));
    assert!(!v1(tpl, &req("h", "/api/latest/users")));
}

#[test]
fn path_strip_matches_like_path_and_strips() {
    let rule = "PathStrip:/api";
    assert!(v1(rule, &req("h", "/api")));
    assert!(v1(rule, &req("h", "/api/")));
    assert!(!v1(rule, &req("h", "/api/users")));
    assert_eq!(
        modifiers(rule),
        vec![Modifier::StripPrefix(vec!["/api".into()])]
    );
}

#[test]
fn path_prefix_strip_sorts_longest_first() {
    let rule = "PathPrefixStrip:/a,/abc,/ab";
    assert!(v1(rule, &req("h", "/a/x")));
    assert!(v1(rule, &req("h", "/abc")));
    assert!(!v1(rule, &req("h", "/b")));
    assert_eq!(
        modifiers(rule),
        vec![Modifier::StripPrefix(vec![
            "/abc".into(),
            "/ab".into(),
            "/a".into()
        ])]
    );
}

#[test]
fn strip_regex_variants() {
    let rule = "PathPrefixStripRegex:/api/{version:v[0-9]+},/x/{id}";
    assert!(v1(rule, &req("h", "/api/v2/users")));
    assert!(v1(rule, &req("h", "/x/1/2")));
    assert!(!v1(rule, &req("h", "/api/latest")));
    assert_eq!(
        modifiers(rule),
        vec![Modifier::StripPrefixRegex(vec![
            "^/api/(?:v[0-9]+)".into(),
            "^/x/(?:[^/]+)".into()
        ])]
    );

    let exact = "PathStripRegex:/user/{id:[0-9]+}";
    assert!(v1(exact, &req("h", "/user/7")));
    assert!(v1(exact, &req("h", "/user/7/")));
    assert!(!v1(exact, &req("h", "/user/7/x")));
    // The strip regex is a prefix: the StripPrefixRegex middleware of 1.7 used PathPrefix.
    assert_eq!(
        modifiers(exact),
        vec![Modifier::StripPrefixRegex(vec!["^/user/(?:[0-9]+)".into()])]
    );
}

#[test]
fn method_values_are_alternatives() {
    let rule = "Method:GET,post";
    assert!(v1(rule, &req("h", "/")));
    assert!(v1(rule, &req("h", "/").method("POST")));
    assert!(!v1(rule, &req("h", "/").method("DELETE")));
}

#[test]
fn headers_pairs_are_all_required() {
    let rule = "Headers:X-A,1,X-B,2";
    assert!(v1(
        rule,
        &req("h", "/").header("X-A", "1").header("X-B", "2")
    ));
    assert!(!v1(rule, &req("h", "/").header("X-A", "1")));
    let regex = "HeadersRegexp:Content-Type,^application/(json|yaml)$";
    assert!(v1(
        regex,
        &req("h", "/").header("content-type", "application/yaml")
    ));
    assert!(!v1(
        regex,
        &req("h", "/").header("content-type", "text/yaml")
    ));
}

#[test]
fn query_pairs_follow_gorilla() {
    let rule = "Query:lang=fr,debug=";
    assert!(v1(rule, &req("h", "/?lang=fr&debug=1")));
    assert!(v1(rule, &req("h", "/?debug&lang=fr")));
    assert!(!v1(rule, &req("h", "/?lang=fr")));
    assert!(!v1(rule, &req("h", "/?lang=en&debug=1")));
    assert!(!v1(rule, &req("h", "/?lang=en&lang=fr&debug=1")));
    let tpl = "Query:id={id:[0-9]+}";
    assert!(v1(tpl, &req("h", "/?id=12")));
    assert!(!v1(tpl, &req("h", "/?id=12a")));
}

#[test]
fn modifiers_alone_restrict_nothing() {
    let rule = "AddPrefix:/api";
    assert_eq!(shape(rule), "Any");
    assert!(v1(rule, &req("any.host", "/whatever")));
    assert_eq!(modifiers(rule), vec![Modifier::AddPrefix("/api".into())]);
    assert_eq!(
        modifiers("ReplacePath:/health"),
        vec![Modifier::ReplacePath("/health".into())]
    );
    assert_eq!(
        modifiers("ReplacePathRegex: ^/api/(.*) /v2/$1"),
        vec![Modifier::ReplacePathRegex {
            regex: "^/api/(.*)".into(),
            replacement: "/v2/$1".into()
        }]
    );
}

/// Traefik 1.7 `server/server_configuration.go`, `buildMatcherMiddlewares`: the handler is
/// wrapped ReplacePath, ReplacePathRegex, AddPrefix, StripPrefix, StripPrefixRegex (innermost
/// first), so requests see StripPrefixRegex, StripPrefix, AddPrefix, ReplacePathRegex,
/// ReplacePath — whatever order the rule lists them in.
#[test]
fn modifiers_come_in_the_order_v1_applies_them() {
    let rule = "ReplacePath:/final;ReplacePathRegex:^/(.*) /re/$1;AddPrefix:/pre;\
                PathPrefixStrip:/strip;PathPrefixStripRegex:/{tenant:[a-z]+}";
    assert_eq!(
        modifiers(rule),
        vec![
            Modifier::StripPrefixRegex(vec!["^/(?:[a-z]+)".into()]),
            Modifier::StripPrefix(vec!["/strip".into()]),
            Modifier::AddPrefix("/pre".into()),
            Modifier::ReplacePathRegex {
                regex: "^/(.*)".into(),
                replacement: "/re/$1".into()
            },
            Modifier::ReplacePath("/final".into()),
        ]
    );
    // Only the strip matchers restrict the match.
    assert_eq!(
        shape(rule),
        r"(PathPrefix(/strip) && PathRegexp(^/(?:[a-z]+)))"
    );
}

#[test]
fn later_modifiers_replace_earlier_ones() {
    // Traefik keeps one value per modifier kind: the last one set.
    assert_eq!(
        modifiers("AddPrefix:/a,/b"),
        vec![Modifier::AddPrefix("/b".into())]
    );
    let rule = "PathPrefixStrip:/a;PathStrip:/a/b";
    assert_eq!(
        modifiers(rule),
        vec![Modifier::StripPrefix(vec!["/a/b".into()])]
    );
    // Both still match.
    assert!(v1(rule, &req("h", "/a/b")));
    assert!(!v1(rule, &req("h", "/a/c")));
}

/// The rule from the user story.
#[test]
fn seed_rule() {
    let rule = "Host:alderaan;PathPrefixStrip:/ludotm/ludotheque";
    assert!(v1(rule, &req("alderaan", "/ludotm/ludotheque/index.php")));
    assert!(v1(rule, &req("alderaan", "/ludotm/ludotheque")));
    assert!(!v1(rule, &req("alderaan", "/ludotm/other")));
    assert!(!v1(rule, &req("tatooine", "/ludotm/ludotheque")));
    assert_eq!(
        modifiers(rule),
        vec![Modifier::StripPrefix(vec!["/ludotm/ludotheque".into()])]
    );
}
