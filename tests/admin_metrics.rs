//! `/metrics` after real traffic, read with a Prometheus text parser:
//! Traefik's metric names and labels, counters and histograms.

mod admin_support;
mod common;

use std::time::Duration;

use admin_support::*;
use common::*;
use prometheus_parse::{Scrape, Value};

fn find<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<&'a Value> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == metric
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
                && s.labels.len() == labels.len()
        })
        .map(|s| &s.value)
}

fn number(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, metric, labels) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!("{metric}{labels:?}: {other:?}"),
    }
}

/// `(le, cumulative count)` pairs.
fn histogram(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
    match find(scrape, metric, labels) {
        Some(Value::Histogram(h)) => h.iter().map(|b| (b.less_than, b.count)).collect(),
        other => panic!("{metric}{labels:?}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_metrics_after_traffic() {
    let a = Whoami::start("alpha");
    let b = Whoami::start("beta");
    let yaml = routes_yaml(
        "    web:\n      rule: \"Host(`a.test`)\"\n      service: app",
        &lb("app", &[a.url(), b.url()]),
        "    {}",
    );
    let p = AdminProxy::start(
        &yaml,
        &[
            "--metrics.prometheus=true",
            "--metrics.prometheus.addRoutersLabels=true",
            "--metrics.prometheus.buckets=0.1,0.3,1.2,5",
        ],
    );
    p.routed("a.test").await;
    let before = Scrape::parse(
        p.get("/metrics")
            .await
            .body
            .lines()
            .map(|l| Ok(l.to_string())),
    )
    .expect("parse");
    let base = number(
        &before,
        "traefik_service_requests_total",
        &[
            ("service", "app@file"),
            ("code", "200"),
            ("method", "GET"),
            ("protocol", "http"),
        ],
    );

    for _ in 0..20 {
        assert_eq!(get(&p.esc.url("/"), "a.test").await.status, 200);
    }
    for _ in 0..3 {
        let r = request(
            "POST",
            &p.esc.url("/?status=418"),
            &[("host", "a.test")],
            "x",
        )
        .await
        .unwrap();
        assert_eq!(r.status, 418);
    }
    // One slow request lands above the first bucket.
    let slow = request("GET", &p.esc.url("/?wait=150"), &[("host", "a.test")], "")
        .await
        .unwrap();
    assert_eq!(slow.status, 200);
    for _ in 0..2 {
        assert_eq!(get(&p.esc.url("/"), "nobody.test").await.status, 404);
    }

    let res = p.get("/metrics").await;
    assert_eq!(res.status, 200);
    assert!(
        res.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "Prometheus text format"
    );
    let m = Scrape::parse(res.body.lines().map(|l| Ok(l.to_string()))).expect("parse");

    let svc = |code: &'static str, method: &'static str| {
        [
            ("service", "app@file"),
            ("code", code),
            ("method", method),
            ("protocol", "http"),
        ]
    };
    assert_eq!(
        number(&m, "traefik_service_requests_total", &svc("200", "GET")) - base,
        21.0
    );
    assert_eq!(
        number(&m, "traefik_service_requests_total", &svc("418", "POST")),
        3.0
    );
    let h = histogram(
        &m,
        "traefik_service_request_duration_seconds",
        &svc("200", "GET"),
    );
    let les: Vec<f64> = h.iter().map(|(le, _)| *le).collect();
    assert_eq!(les, vec![0.1, 0.3, 1.2, 5.0, f64::INFINITY]);
    let total = base + 21.0;
    assert_eq!(
        h.last().unwrap().1,
        total,
        "+Inf bucket counts every request"
    );
    assert!(
        h[0].1 <= total - 1.0,
        "the 150 ms request is above 0.1 s: {h:?}"
    );
    assert_eq!(h[1].1, total, "everything under 0.3 s");
    assert_eq!(
        number(
            &m,
            "traefik_service_request_duration_seconds_count",
            &svc("200", "GET")
        ),
        total
    );
    assert!(
        number(
            &m,
            "traefik_service_request_duration_seconds_sum",
            &svc("200", "GET")
        ) >= 0.15
    );

    let ep = |code: &'static str, method: &'static str| {
        [
            ("entrypoint", "web"),
            ("code", code),
            ("method", method),
            ("protocol", "http"),
        ]
    };
    assert!(number(&m, "traefik_entrypoint_requests_total", &ep("200", "GET")) >= 21.0);
    assert_eq!(
        number(&m, "traefik_entrypoint_requests_total", &ep("404", "GET")),
        2.0
    );
    assert_eq!(
        number(&m, "traefik_entrypoint_requests_total", &ep("418", "POST")),
        3.0
    );
    let h = histogram(
        &m,
        "traefik_entrypoint_request_duration_seconds",
        &ep("404", "GET"),
    );
    assert_eq!(h.last().unwrap().1, 2.0);

    let router = [
        ("router", "web@file"),
        ("service", "app@file"),
        ("code", "418"),
        ("method", "POST"),
        ("protocol", "http"),
    ];
    assert_eq!(number(&m, "traefik_router_requests_total", &router), 3.0);
    assert_eq!(
        histogram(&m, "traefik_router_request_duration_seconds", &router)
            .last()
            .unwrap()
            .1,
        3.0
    );

    for server in [a.url(), b.url()] {
        assert_eq!(
            number(
                &m,
                "traefik_service_server_up",
                &[("service", "app@file"), ("url", &server)]
            ),
            1.0
        );
    }
    assert_eq!(
        number(
            &m,
            "traefik_service_retries_total",
            &[("service", "app@file")]
        ),
        0.0
    );
    assert!(number(&m, "traefik_config_reloads_total", &[]) >= 1.0);
    assert!(number(&m, "traefik_config_last_reload_success", &[]) > 1.7e9);
    assert!(
        number(
            &m,
            "traefik_open_connections",
            &[("entrypoint", "traefik"), ("protocol", "TCP")]
        ) >= 1.0,
        "the scrape's own connection is open"
    );
    assert!(
        number(
            &m,
            "traefik_open_connections",
            &[("entrypoint", "web"), ("protocol", "TCP")]
        ) >= 0.0
    );
    // Internal services stay out of the request metrics, as in Traefik.
    assert!(
        m.samples.iter().all(|s| s
            .labels
            .get("service")
            .is_none_or(|v| !v.ends_with("@internal"))),
        "no @internal series"
    );

    // escale extras.
    assert_eq!(
        number(&m, "escale_route_table_size", &[("kind", "routers")]),
        2.0
    );
    assert_eq!(
        number(&m, "escale_route_table_size", &[("kind", "servers")]),
        2.0
    );
    assert!(number(&m, "escale_provider_syncs_total", &[("provider", "file")]) >= 1.0);
    assert!(number(&m, "escale_config_compile_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(number(&m, "escale_draining", &[]), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_services_leave_the_metrics() {
    let a = Whoami::start("alpha");
    let yaml = |svc: &str| {
        routes_yaml(
            &format!("    web:\n      rule: \"Host(`a.test`)\"\n      service: {svc}"),
            &lb(svc, &[a.url()]),
            "    {}",
        )
    };
    let p = AdminProxy::start(&yaml("one"), &["--metrics.prometheus=true"]);
    p.routed("a.test").await;
    assert!(
        p.get("/metrics")
            .await
            .body
            .contains("service=\"one@file\"")
    );
    p.esc.write_dynamic(&yaml("two"));
    eventually(
        "service two in metrics",
        Duration::from_secs(10),
        || async {
            let _ = request("GET", &p.esc.url("/"), &[("host", "a.test")], "").await;
            let body = p.get("/metrics").await.body;
            body.contains("service=\"two@file\"") && !body.contains("service=\"one@file\"")
        },
    )
    .await;
}
