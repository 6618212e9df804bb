//! Priorities, error rendering, routing paths and modifier middlewares.

use std::borrow::Cow;

use super::super::RuleSyntax::{V1, V3};
use super::super::{Modifier, compile_go_regex, default_priority, routing_path};
use super::error;
use crate::config::dynamic::{
    AddPrefix, Middleware, ReplacePath, ReplacePathRegex, StripPrefix, StripPrefixRegex,
};

#[test]
fn default_priority_is_the_rule_length_in_bytes() {
    assert_eq!(default_priority("Host(`a`)"), 9);
    // Traefik's documented example.
    assert_eq!(default_priority(r"HostRegexp(`[a-z]+\.traefik\.com`)"), 34);
    assert_eq!(default_priority("Host(`foobar.traefik.com`)"), 26);
    assert_eq!(default_priority("Host(`é`)"), 10);
    assert_eq!(default_priority("Host:a;PathPrefixStrip:/b"), 25);
    assert_eq!(default_priority(""), 0);
}

#[test]
fn error_display_quotes_the_rule() {
    let e = error("Host(`a`) && Hots(`b`)", V3);
    assert_eq!(
        e.to_string(),
        "invalid rule `Host(`a`) && Hots(`b`)`: unknown matcher `Hots`, did you mean `Host`? at position 13"
    );
}

#[test]
fn caret_points_at_the_position() {
    let e = error("Host(`a`) &&", V3);
    assert_eq!(e.caret(), "Host(`a`) &&\n            ^");
    let e = error("Host:a.com;Pth:/x", V1);
    assert_eq!(e.caret(), "Host:a.com;Pth:/x\n           ^");
}

#[test]
fn caret_counts_characters_and_hides_control_characters() {
    let e = error("Path(`/é`) &&\tFoo(`x`)", V3);
    assert_eq!(e.position, 15);
    assert_eq!(e.caret(), "Path(`/é`) && Foo(`x`)\n              ^");
}

#[test]
fn routing_path_decodes_unreserved_characters_only() {
    assert!(matches!(
        routing_path("/plain/path"),
        Some(Cow::Borrowed("/plain/path"))
    ));
    assert_eq!(routing_path("/foo%20bar").as_deref(), Some("/foo bar"));
    assert_eq!(routing_path("/caf%C3%A9").as_deref(), Some("/café"));
    assert_eq!(routing_path("/a%2Fb%2fc").as_deref(), Some("/a%2Fb%2fc"));
    assert_eq!(routing_path("/%41%3F%25").as_deref(), Some("/A%3F%25"));
    assert_eq!(routing_path("/bad%"), None);
    assert_eq!(routing_path("/bad%4"), None);
    assert_eq!(routing_path("/bad%zz"), None);
}

#[test]
fn modifiers_map_to_v3_middlewares() {
    assert_eq!(
        Modifier::StripPrefix(vec!["/a".into()]).to_middleware(),
        Middleware {
            strip_prefix: Some(StripPrefix {
                prefixes: vec!["/a".into()],
                force_slash: None
            }),
            ..Middleware::default()
        }
    );
    assert_eq!(
        Modifier::StripPrefixRegex(vec!["^/x".into()]).to_middleware(),
        Middleware {
            strip_prefix_regex: Some(StripPrefixRegex {
                regex: vec!["^/x".into()]
            }),
            ..Middleware::default()
        }
    );
    assert_eq!(
        Modifier::AddPrefix("/p".into()).to_middleware(),
        Middleware {
            add_prefix: Some(AddPrefix {
                prefix: "/p".into()
            }),
            ..Middleware::default()
        }
    );
    assert_eq!(
        Modifier::ReplacePath("/r".into()).to_middleware(),
        Middleware {
            replace_path: Some(ReplacePath { path: "/r".into() }),
            ..Middleware::default()
        }
    );
    assert_eq!(
        Modifier::ReplacePathRegex {
            regex: "^/a/(.*)".into(),
            replacement: "/b/$1".into()
        }
        .to_middleware(),
        Middleware {
            replace_path_regex: Some(ReplacePathRegex {
                regex: "^/a/(.*)".into(),
                replacement: "/b/$1".into()
            }),
            ..Middleware::default()
        }
    );
}

#[test]
fn strip_regex_from_v1_works_as_a_regex() {
    let parsed = super::parsed("PathPrefixStripRegex:/t/{tenant:[a-z]+}-{n}", V1);
    let Some(Modifier::StripPrefixRegex(regexes)) = parsed.modifiers.first() else {
        panic!("expected a strip regex, got {:?}", parsed.modifiers);
    };
    let re = compile_go_regex(&regexes[0]).expect("valid regex");
    assert_eq!(
        re.find("/t/acme-42/app/x").map(|m| m.as_str()),
        Some("/t/acme-42")
    );
    assert!(re.find("/x/t/acme-42").is_none());
}

#[test]
fn go_regex_braces_that_are_not_repetitions_are_literal() {
    let re = compile_go_regex("^{value:(traefik|nginx)}$").expect("go accepts it");
    assert!(re.is_match("{value:traefik}"));
    assert!(!re.is_match("traefik"));
    let re = compile_go_regex("^/api/{id}/x{,3}y{2}z{1,}$").expect("go accepts it");
    assert!(re.is_match("/api/{id}/x{,3}yyzz"));
    assert!(!re.is_match("/api/42/x{,3}yyz"));
}

#[test]
fn go_regex_classes_and_escapes() {
    // `[` is a literal inside a Go class; `&&` is no set operation.
    let re = compile_go_regex("^[a[&]+$").expect("go accepts it");
    assert!(re.is_match("a[&a"));
    let re = compile_go_regex(r"^[[:alpha:]\d]+$").expect("go accepts it");
    assert!(re.is_match("ab12"));
    // A `]` first in a class is a literal.
    assert!(
        compile_go_regex("^[]a]$")
            .expect("go accepts it")
            .is_match("]")
    );
    // `\Q...\E` quotes literal text.
    let re = compile_go_regex(r"^\Qa.b{1}\E$").expect("go accepts it");
    assert!(re.is_match("a.b{1}"));
    assert!(!re.is_match("axb"));
    // Unicode escapes keep their braces.
    assert!(
        compile_go_regex(r"^\p{Greek}\x{41}$")
            .expect("valid")
            .is_match("λA")
    );
}

#[test]
fn go_regex_perl_classes_are_ascii() {
    let digits = compile_go_regex(r"^\d+$").expect("valid");
    assert!(digits.is_match("0123"));
    assert!(!digits.is_match("٣"), "Arabic-Indic digit is not \\d in Go");
    let word = compile_go_regex(r"^[\w-]+$").expect("valid");
    assert!(word.is_match("a_b-9"));
    assert!(!word.is_match("é"));
    assert!(!compile_go_regex(r"^\s$").expect("valid").is_match("\u{a0}"));
    assert!(
        compile_go_regex(r"\bfoo\b")
            .expect("valid")
            .is_match("a foo b")
    );
    assert!(
        !compile_go_regex(r"\bfoo\b")
            .expect("valid")
            .is_match("afoo")
    );
}

#[test]
fn go_regex_errors_stay_errors() {
    for bad in ["(a", "[a", "a{2,1}", "\\"] {
        assert!(compile_go_regex(bad).is_err(), "{bad}");
    }
}
