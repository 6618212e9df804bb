//! Rule parsing (done once per route table) and matching (done per request). Before timing,
//! checks that matching Host/Path/PathPrefix/Method rules allocates nothing.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use escale::rules::{RequestInfo, RuleSyntax, parse};
use http::{HeaderMap, HeaderValue, Method};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocations_during, assert_counting};

const V3_RULES: &[(&str, &str)] = &[
    ("v3_host", "Host(`app.example.com`)"),
    (
        "v3_host_path",
        "Host(`app.example.com`) && PathPrefix(`/api`)",
    ),
    (
        "v3_complex",
        "(Host(`app.example.com`) || Host(`*.apps.example.com`)) && PathRegexp(`^/api/v[0-9]+/`) && !ClientIP(`10.0.0.0/8`)",
    ),
];

const V1_RULES: &[(&str, &str)] = &[
    ("v1_host", "Host:app.example.com"),
    (
        "v1_seed",
        "Host:alderaan;PathPrefixStrip:/ludotm/ludotheque",
    ),
];

fn parsing(c: &mut Criterion) {
    for (name, rule) in V3_RULES {
        c.bench_function(&format!("parse/{name}"), |b| {
            b.iter(|| parse(black_box(rule), RuleSyntax::V3))
        });
    }
    for (name, rule) in V1_RULES {
        c.bench_function(&format!("parse/{name}"), |b| {
            b.iter(|| parse(black_box(rule), RuleSyntax::V1))
        });
    }
}

fn matching(c: &mut Criterion) {
    let mut headers = HeaderMap::new();
    headers.insert("accept", HeaderValue::from_static("application/json"));
    headers.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    let method = Method::GET;
    let request = RequestInfo {
        host: "app.example.com",
        path: "/api/v2/users/42",
        query: Some("page=2&sort=name"),
        method: &method,
        headers: &headers,
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
    };
    let rules = [
        (
            "v3_host_path",
            "Host(`app.example.com`) && PathPrefix(`/api`)",
            RuleSyntax::V3,
        ),
        (
            "v3_complex",
            "(Host(`app.example.com`) || Host(`*.apps.example.com`)) && PathRegexp(`^/api/v[0-9]+/`) && !ClientIP(`10.0.0.0/8`)",
            RuleSyntax::V3,
        ),
        (
            "v3_query",
            "Host(`app.example.com`) && Query(`sort`, `name`) && Method(`GET`)",
            RuleSyntax::V3,
        ),
        (
            "v1_seed",
            "Host:app.example.com;PathPrefixStrip:/api",
            RuleSyntax::V1,
        ),
    ];
    let plain = [
        "Host(`app.example.com`) && PathPrefix(`/api`) && Method(`GET`)",
        "Host(`*.example.com`) || Path(`/api/v2/users/42`)",
        "!Host(`other.example.com`) && !Path(`/x`)",
    ];
    for rule in plain {
        let expr = match parse(rule, RuleSyntax::V3) {
            Ok(parsed) => parsed.expr,
            Err(e) => panic!("{e}"),
        };
        assert_counting();
        let allocations = allocations_during(|| {
            for _ in 0..1000 {
                black_box(black_box(&expr).matches(black_box(&request)));
            }
        });
        assert_eq!(allocations, 0, "`{rule}` allocated while matching");
    }

    for (name, rule, syntax) in rules {
        let expr = match parse(rule, syntax) {
            Ok(parsed) => parsed.expr,
            Err(e) => panic!("{e}"),
        };
        assert!(
            expr.matches(&request),
            "{name} must match the bench request"
        );
        c.bench_function(&format!("matches/{name}"), |b| {
            b.iter(|| black_box(&expr).matches(black_box(&request)))
        });
    }
}

criterion_group!(benches, parsing, matching);
criterion_main!(benches);
