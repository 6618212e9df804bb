//! The v3 grammar: every matcher, quoting, spellings and operator precedence.

use super::super::RuleSyntax::V3;
use super::{expr, hits, req, show};

fn v3(rule: &str, request: &super::Req) -> bool {
    hits(rule, V3, request)
}

fn shape(rule: &str) -> String {
    show(&expr(rule, V3))
}

#[test]
fn host_is_case_insensitive_and_exact() {
    let rule = "Host(`Example.COM`)";
    assert_eq!(shape(rule), "Host(example.com)");
    assert!(v3(rule, &req("example.com", "/")));
    assert!(!v3(rule, &req("www.example.com", "/")));
    assert!(!v3(rule, &req("example.co", "/")));
    assert!(!v3(rule, &req("", "/")));
    // Defensive: the caller lowercases, but an uppercase host still matches.
    assert!(v3(rule, &req("EXAMPLE.com", "/")));
}

#[test]
fn host_ignores_one_trailing_dot() {
    assert!(v3("Host(`example.com.`)", &req("example.com", "/")));
    assert!(v3("Host(`example.com`)", &req("example.com.", "/")));
    assert!(v3("Host(`example.com.`)", &req("example.com.", "/")));
}

#[test]
fn host_wildcard_matches_exactly_one_label() {
    let rule = "Host(`*.example.com`)";
    assert_eq!(shape(rule), "HostWildcard(.example.com)");
    assert!(v3(rule, &req("foo.example.com", "/")));
    assert!(v3(rule, &req("foo.example.com.", "/")));
    assert!(v3(rule, &req("FOO.Example.com", "/")));
    assert!(!v3(rule, &req("example.com", "/")));
    assert!(!v3(rule, &req("foo.bar.example.com", "/")));
    assert!(!v3(rule, &req(".example.com", "/")));
    assert!(!v3(rule, &req("fooexample.com", "/")));
}

#[test]
fn host_star_matches_everything() {
    let rule = "Host(`*`)";
    assert_eq!(shape(rule), "Any");
    assert!(v3(rule, &req("anything.test", "/x")));
    assert!(v3(rule, &req("", "/")));
}

#[test]
fn host_regexp_is_unanchored() {
    let rule = r"HostRegexp(`example\.com`)";
    assert!(v3(rule, &req("example.com", "/")));
    assert!(v3(rule, &req("www.example.com.evil", "/")));
    let anchored = r"HostRegexp(`^[a-z]+\.example\.com$`)";
    assert!(v3(anchored, &req("foo.example.com", "/")));
    assert!(!v3(anchored, &req("foo.bar.example.com", "/")));
    assert!(!v3(anchored, &req("example.com", "/")));
}

#[test]
fn path_is_exact() {
    let rule = "Path(`/products`)";
    assert!(v3(rule, &req("a", "/products")));
    assert!(!v3(rule, &req("a", "/products/")));
    assert!(!v3(rule, &req("a", "/products/shoes")));
    assert!(!v3(rule, &req("a", "/Products")));
}

#[test]
fn path_prefix_is_a_plain_string_prefix() {
    let rule = "PathPrefix(`/products`)";
    assert!(v3(rule, &req("a", "/products")));
    assert!(v3(rule, &req("a", "/products/shoes")));
    assert!(v3(rule, &req("a", "/products-for-sale")));
    assert!(!v3(rule, &req("a", "/product")));
    assert!(!v3(rule, &req("a", "/api/products")));
}

#[test]
fn path_regexp_is_unanchored() {
    let rule = r"PathRegexp(`\.(jpeg|jpg|png)$`)";
    assert!(v3(rule, &req("a", "/img/cat.png")));
    assert!(!v3(rule, &req("a", "/img/cat.png.txt")));
    let anchored = "PathRegexp(`^/products/(shoes|socks)/[0-9]+$`)";
    assert!(v3(anchored, &req("a", "/products/shoes/31")));
    assert!(!v3(anchored, &req("a", "/x/products/shoes/31")));
    assert!(v3("PathRegexp(`shoes`)", &req("a", "/x/shoes/y")));
}

#[test]
fn method_is_uppercased_then_exact() {
    assert_eq!(shape("Method(`get`)"), "Method(GET)");
    assert!(v3("Method(`get`)", &req("a", "/")));
    assert!(!v3("Method(`GET`)", &req("a", "/").method("POST")));
    assert!(v3("Method(`PURGE`)", &req("a", "/").method("PURGE")));
}

#[test]
fn header_matches_any_value() {
    let rule = "Header(`content-type`, `application/yaml`)";
    assert!(v3(
        rule,
        &req("a", "/").header("Content-Type", "application/yaml")
    ));
    assert!(v3(
        rule,
        &req("a", "/")
            .header("Content-Type", "text/plain")
            .header("Content-Type", "application/yaml")
    ));
    assert!(!v3(
        rule,
        &req("a", "/").header("Content-Type", "application/yaml; charset=utf-8")
    ));
    assert!(!v3(rule, &req("a", "/")));
}

#[test]
fn header_regexp_matches_any_value_unanchored() {
    let rule = "HeaderRegexp(`Content-Type`, `^application/(json|yaml)$`)";
    assert!(v3(
        rule,
        &req("a", "/").header("content-type", "application/json")
    ));
    assert!(!v3(
        rule,
        &req("a", "/").header("content-type", "text/json")
    ));
    let loose = "HeaderRegexp(`X-Env`, `prod`)";
    assert!(v3(loose, &req("a", "/").header("X-Env", "preprod-2")));
    assert!(!v3(loose, &req("a", "/").header("X-Other", "prod")));
}

/// Traefik's own table for `Query(`q`, `traefik`)` (matcher_test.go).
#[test]
fn query_key_value() {
    let rule = "Query(`q`, `traefik`)";
    for (url, expected) in [
        ("/", false),
        ("/?q=traefik", true),
        ("/?rel=ddg&q=traefik", true),
        ("/?q=traefik&q=proxy", true),
        ("/?q=awesome&q=traefik", true),
        ("/?q=nginx", false),
        ("/?rel=ddg", false),
        ("/?q=TRAEFIK", false),
        ("/?Q=traefik", false),
        ("/?rel=traefik", false),
    ] {
        assert_eq!(v3(rule, &req("a", url)), expected, "{url}");
    }
}

#[test]
fn query_values_are_decoded() {
    let rule = "Query(`q`, `hello world`)";
    assert!(v3(rule, &req("a", "/?q=hello%20world")));
    assert!(v3(rule, &req("a", "/?q=hello+world")));
    assert!(v3("Query(`a b`, `c`)", &req("a", "/?a%20b=c")));
    assert!(v3("Query(`q`, `é`)", &req("a", "/?q=%C3%A9")));
    // Go skips pairs with a malformed escape or a semicolon.
    assert!(!v3(rule, &req("a", "/?q=hello%2world")));
    assert!(!v3("Query(`q`, `x`)", &req("a", "/?q=x;y=z")));
    assert!(v3("Query(`q`, `x`)", &req("a", "/?a=%zz&q=x")));
}

/// `Query(`mobile`)` matches the parameter with an empty value only, as documented by Traefik.
#[test]
fn query_key_only_means_empty_value() {
    let rule = "Query(`mobile`)";
    assert_eq!(shape(rule), "Query(mobile, )");
    assert!(!v3(rule, &req("a", "/")));
    assert!(v3(rule, &req("a", "/?mobile")));
    assert!(v3(rule, &req("a", "/?mobile=")));
    assert!(v3(rule, &req("a", "/?mobile=true&mobile")));
    assert!(!v3(rule, &req("a", "/?mobile=true")));
    assert_eq!(shape("QueryRegexp(`mobile`)"), "Query(mobile, )");
}

/// Traefik's own table for `QueryRegexp(`q`, `^(traefik|nginx)$`)`.
#[test]
fn query_regexp() {
    let rule = "QueryRegexp(`q`, `^(traefik|nginx)$`)";
    for (url, expected) in [
        ("/", false),
        ("/?q=traefik", true),
        ("/?rel=ddg&q=traefik", true),
        ("/?q=traefik&q=proxy", true),
        ("/?q=awesome&q=traefik", true),
        ("/?q=TRAEFIK", false),
        ("/?Q=traefik", false),
        ("/?rel=traefik", false),
        ("/?q=nginx", true),
        ("/?q=haproxy", false),
    ] {
        assert_eq!(v3(rule, &req("a", url)), expected, "{url}");
    }
    let any = "QueryRegexp(`q`, `^.*$`)";
    assert!(v3(any, &req("a", "/?q")));
    assert!(v3(any, &req("a", "/?q=TRAEFIK")));
    assert!(!v3(any, &req("a", "/?Q=x")));
    // v2 templates are plain regex text in v3.
    let v2ish = "QueryRegexp(`q`, `{value:(traefik|nginx)}`)";
    assert!(!v3(v2ish, &req("a", "/?q=traefik")));
    assert!(v3(v2ish, &req("a", "/?q={value:traefik}")));
}

#[test]
fn client_ip() {
    let rule = "ClientIP(`127.0.0.1`)";
    assert!(v3(rule, &req("a", "/").ip("127.0.0.1")));
    assert!(!v3(rule, &req("a", "/").ip("192.168.1.1")));
    // An IPv4-mapped peer address is its IPv4 address.
    assert!(v3(rule, &req("a", "/").ip("::ffff:127.0.0.1")));

    let cidr = "ClientIP(`192.168.1.0/24`)";
    assert!(v3(cidr, &req("a", "/").ip("192.168.1.1")));
    assert!(v3(cidr, &req("a", "/").ip("192.168.1.100")));
    assert!(!v3(cidr, &req("a", "/").ip("192.168.2.1")));
    assert!(!v3(cidr, &req("a", "/").ip("::1")));

    // Host bits in the CIDR are ignored, as Go's ParseCIDR does.
    assert_eq!(shape("ClientIP(`10.1.2.3/8`)"), "ClientIP(10.0.0.0/8)");
    assert!(v3("ClientIP(`fe80::/10`)", &req("a", "/").ip("fe80::1")));
    assert!(v3("ClientIP(`::1`)", &req("a", "/").ip("::1")));
    assert!(!v3("ClientIP(`::1`)", &req("a", "/").ip("::2")));
}

#[test]
fn matcher_name_spellings() {
    // Traefik registers Name, name, NAME and Title-case forms.
    for rule in [
        "PathPrefix(`/a`)",
        "pathprefix(`/a`)",
        "PATHPREFIX(`/a`)",
        "Pathprefix(`/a`)",
    ] {
        assert_eq!(shape(rule), "PathPrefix(/a)", "{rule}");
    }
    assert_eq!(shape("clientip(`::1`)"), "ClientIP(::1/128)");
}

#[test]
fn double_quoted_values_and_escapes() {
    assert_eq!(shape("Host(\"a.com\")"), "Host(a.com)");
    assert_eq!(shape(r#"Path("/a\tb")"#), "Path(/a\tb)");
    assert_eq!(shape(r#"Path("/caf\u00e9")"#), "Path(/café)");
    assert_eq!(shape(r#"Path("/\x41\101\U0001F600")"#), "Path(/AA😀)");
    assert_eq!(shape(r#"Path("/q\"\\")"#), "Path(/q\"\\)");
    // Backslashes are literal in backticks, which is why regexes are written there.
    assert_eq!(shape(r"PathRegexp(`^/a\.b$`)"), r"PathRegexp(^/a\.b$)");
    assert_eq!(shape(r#"PathRegexp("^/a\\.b$")"#), r"PathRegexp(^/a\.b$)");
    // Go drops carriage returns inside raw strings.
    assert_eq!(shape("Path(`/a\r`)"), "Path(/a)");
}

#[test]
fn whitespace_anywhere_and_trailing_comma() {
    let rule = "  Host ( `a.com` , )\n&&\t( PathPrefix(`/x`)||Method(\"GET\") )  ";
    assert_eq!(
        shape(rule),
        "(Host(a.com) && (PathPrefix(/x) || Method(GET)))"
    );
}

#[test]
fn and_binds_tighter_than_or() {
    assert_eq!(
        shape("Host(`a`) || Path(`/b`) && Method(`GET`)"),
        "(Host(a) || (Path(/b) && Method(GET)))"
    );
    assert_eq!(
        shape("Host(`a`) && Path(`/b`) || Method(`GET`)"),
        "((Host(a) && Path(/b)) || Method(GET))"
    );
    // Behaviour, not just shape: A || (B && C) with A true and B false.
    let rule = "Host(`a`) || Path(`/b`) && Method(`POST`)";
    assert!(v3(rule, &req("a", "/x")));
    assert!(!v3(rule, &req("z", "/b")));
    assert!(v3(rule, &req("z", "/b").method("POST")));
}

#[test]
fn not_binds_tightest() {
    assert_eq!(shape("!Host(`a`) && Path(`/b`)"), "(!Host(a) && Path(/b))");
    assert_eq!(shape("!Host(`a`) || Path(`/b`)"), "(!Host(a) || Path(/b))");
    assert_eq!(shape("!!Host(`a`)"), "!!Host(a)");
    let rule = "!Host(`a`) && Path(`/b`)";
    assert!(v3(rule, &req("z", "/b")));
    assert!(!v3(rule, &req("a", "/b")));
    assert!(!v3(rule, &req("z", "/c")));
}

#[test]
fn parentheses_override_precedence() {
    assert_eq!(
        shape("(Host(`a`) || Path(`/b`)) && Method(`GET`)"),
        "((Host(a) || Path(/b)) && Method(GET))"
    );
    assert_eq!(
        shape("!(Host(`a`) || ((Path(`/b`))))"),
        "!(Host(a) || Path(/b))"
    );
    let rule = "!(Host(`a`) || Path(`/b`)) && (Method(`GET`) || Method(`HEAD`))";
    assert!(v3(rule, &req("z", "/c")));
    assert!(v3(rule, &req("z", "/c").method("HEAD")));
    assert!(!v3(rule, &req("a", "/c")));
    assert!(!v3(rule, &req("z", "/b")));
    assert!(!v3(rule, &req("z", "/c").method("POST")));
}

#[test]
fn operators_are_left_associative() {
    assert_eq!(
        shape("Host(`a`) || Host(`b`) || Host(`c`)"),
        "((Host(a) || Host(b)) || Host(c))"
    );
    assert_eq!(
        shape("Path(`/a`) && Method(`GET`) && Header(`X`, `1`)"),
        "((Path(/a) && Method(GET)) && Header(x, 1))"
    );
}

#[test]
fn typical_rule() {
    let rule = "Host(`app.example.com`) && (PathPrefix(`/api`) || PathPrefix(`/ws`)) && !ClientIP(`10.0.0.0/8`)";
    assert!(v3(rule, &req("app.example.com", "/api/users")));
    assert!(v3(rule, &req("app.example.com", "/ws")));
    assert!(!v3(rule, &req("app.example.com", "/static")));
    assert!(!v3(rule, &req("app.example.com", "/api").ip("10.1.2.3")));
    assert!(!v3(rule, &req("other.example.com", "/api")));
}
