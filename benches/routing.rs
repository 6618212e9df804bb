//! Route lookup (per request) at 1, 1k, 10k and 100k routes, and the cost of
//! applying a dynamic file (parse + compile, per reload).
//!
//! Lookup shapes:
//! - `host`: one `Host(`hN.bench.test`)` rule per route, the request hits the
//!   last one; this is what the side-by-side scenarios b and c load.
//! - `miss`: an unknown host (answered 404), same tables.
//! - `wildcard`: `Host(`*.tN.bench.test`)` rules, hit the last one.
//! - `same_host_paths`: the seed's shape, many tenants on one host told apart
//!   by path (`Host(`alderaan`) && PathPrefix(`/tN`)`), hit the last one.
//! - `fallback`: 10k host routes plus 10 non-host rules (`PathPrefix`), which
//!   every lookup must also walk.
//!
//! Before timing, checks that a host lookup allocates nothing.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use escale::config::file_format::parse_dynamic_file;
use escale::provider::Snapshot;
use escale::proxy::transport::TransportConfig;
use escale::routing::{CompileInput, HostIndex, Route, Target, compile, ranked};
use escale::rules::{RequestInfo, RuleSyntax, parse};
use http::{HeaderMap, HeaderValue, Method};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocations_during, assert_counting};

const SIZES: &[usize] = &[1, 1_000, 10_000, 100_000];

/// Routes from rules, ranked as the compiler ranks them.
fn routes(rules: &[String]) -> Vec<Arc<Route>> {
    ranked(
        rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let expr = match parse(rule, RuleSyntax::V3) {
                    Ok(p) => p.expr,
                    Err(e) => panic!("{rule}: {e}"),
                };
                Route {
                    name: format!("r{i}").into(),
                    priority: rule.len() as i64,
                    rank: 0,
                    expr,
                    layers: Vec::new(),
                    buffering: None,
                    target: Target::Internal("noop@internal".into()),
                }
            })
            .collect(),
    )
}

fn host_rules(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("Host(`h{i}.bench.test`)")).collect()
}

struct Req {
    headers: HeaderMap,
    method: Method,
}

impl Req {
    fn new() -> Self {
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("*/*"));
        headers.insert("user-agent", HeaderValue::from_static("bench/1.0"));
        Req {
            headers,
            method: Method::GET,
        }
    }

    fn info<'a>(&'a self, host: &'a str, path: &'a str) -> RequestInfo<'a> {
        RequestInfo {
            host,
            path,
            query: None,
            method: &self.method,
            headers: &self.headers,
            client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        }
    }
}

fn expect_route(index: &HostIndex, req: &RequestInfo, want: bool) {
    let found = index.find(req).is_some();
    assert_eq!(found, want, "lookup of {}{}", req.host, req.path);
}

fn lookup(c: &mut Criterion) {
    let req = Req::new();
    let mut group = c.benchmark_group("lookup");
    for &n in SIZES {
        let index = HostIndex::build(&routes(&host_rules(n)));
        let last = format!("h{}.bench.test", n - 1);
        let hit = req.info(&last, "/");
        expect_route(&index, &hit, true);
        assert_counting();
        let allocations = allocations_during(|| {
            for _ in 0..1000 {
                black_box(index.find(black_box(&hit)));
            }
        });
        assert_eq!(allocations, 0, "host lookup allocated");
        group.bench_with_input(BenchmarkId::new("host", n), &hit, |b, r| {
            b.iter(|| index.find(black_box(r)).is_some())
        });
        let miss = req.info("unknown.bench.test", "/");
        expect_route(&index, &miss, false);
        group.bench_with_input(BenchmarkId::new("miss", n), &miss, |b, r| {
            b.iter(|| index.find(black_box(r)).is_some())
        });

        let wild: Vec<String> = (0..n)
            .map(|i| format!("Host(`*.t{i}.bench.test`)"))
            .collect();
        let index = HostIndex::build(&routes(&wild));
        let host = format!("app.t{}.bench.test", n - 1);
        let hit = req.info(&host, "/");
        expect_route(&index, &hit, true);
        group.bench_with_input(BenchmarkId::new("wildcard", n), &hit, |b, r| {
            b.iter(|| index.find(black_box(r)).is_some())
        });
    }
    // Linear by design of the index (one host, many rules): kept small.
    for n in [10usize, 100, 1_000] {
        let rules: Vec<String> = (0..n)
            .map(|i| format!("Host(`alderaan`) && PathPrefix(`/t{i}/ludotheque`)"))
            .collect();
        let index = HostIndex::build(&routes(&rules));
        // Shortest rule ranks last.
        let path = "/t0/ludotheque/index.php";
        let hit = req.info("alderaan", path);
        expect_route(&index, &hit, true);
        group.bench_with_input(BenchmarkId::new("same_host_paths", n), &hit, |b, r| {
            b.iter(|| index.find(black_box(r)).is_some())
        });
    }
    let mut rules = host_rules(10_000);
    rules.extend((0..10).map(|i| format!("PathPrefix(`/static{i}`)")));
    let index = HostIndex::build(&routes(&rules));
    let hit = req.info("h9999.bench.test", "/");
    expect_route(&index, &hit, true);
    group.bench_function("fallback/10000+10", |b| {
        b.iter(|| index.find(black_box(&hit)).is_some())
    });
    group.finish();
}

/// The dynamic file the side-by-side bench feeds escale and Traefik.
fn dynamic_yaml(n: usize) -> String {
    let mut s = String::from("http:\n  routers:\n");
    for i in 0..n {
        s.push_str(&format!(
            "    r{i}:\n      rule: Host(`h{i}.bench.test`)\n      service: app\n      entryPoints: [web]\n"
        ));
    }
    s.push_str(
        "  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:18081\n",
    );
    s
}

fn reload(c: &mut Criterion) {
    let mut group = c.benchmark_group("reload");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    let entrypoints = vec!["web".to_string()];
    for n in [1_000usize, 10_000] {
        let text = dynamic_yaml(n);
        let path = Path::new("dyn.yml");
        group.bench_with_input(BenchmarkId::new("parse_file", n), &text, |b, t| {
            b.iter(|| parse_dynamic_file(path, black_box(t)).is_ok())
        });
        let config = match parse_dynamic_file(path, &text) {
            Ok((config, _)) => config,
            Err(e) => panic!("{e:?}"),
        };
        let snapshots = vec![(
            "file".to_string(),
            Arc::new(Snapshot {
                config: Arc::new(config),
                issues: Vec::new(),
            }),
        )];
        let table = compile(CompileInput {
            snapshots: &snapshots,
            entrypoints: &entrypoints,
            default_entrypoints: &entrypoints,
            tls_entrypoints: &[],
            default_transport: TransportConfig::default(),
            previous: None,
            generation: 1,
        });
        assert_eq!(table.route_count(), n);
        group.bench_with_input(BenchmarkId::new("compile", n), &snapshots, |b, s| {
            b.iter(|| {
                compile(CompileInput {
                    snapshots: s,
                    entrypoints: &entrypoints,
                    default_entrypoints: &entrypoints,
                    tls_entrypoints: &[],
                    default_transport: TransportConfig::default(),
                    previous: Some(&table),
                    generation: 2,
                })
                .route_count()
            })
        });
        let rules = host_rules(n);
        group.bench_with_input(BenchmarkId::new("parse_rules", n), &rules, |b, r| {
            b.iter(|| {
                r.iter()
                    .filter(|rule| parse(rule, RuleSyntax::V3).is_ok())
                    .count()
            })
        });
        let built = routes(&rules);
        group.bench_with_input(BenchmarkId::new("index", n), &built, |b, r| {
            b.iter(|| HostIndex::build(r).len())
        });
    }
    group.finish();
}

criterion_group!(benches, lookup, reload);
criterion_main!(benches);
