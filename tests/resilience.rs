//! Black-box resilience tests: the real escale binary in front of real
//! whoami processes on 127.0.0.1. Backends are killed, restarted, made
//! unhealthy, slow or rude, and the proxy must hide it from clients.
//! Every load loop is bounded in count and time.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::AsyncReadExt;

/// One router `r` on every host to service `svc`, with `lb_extra` lines
/// (already indented for the `loadBalancer` level) and optional middlewares.
fn config(urls: &[String], lb_extra: &str, middlewares: &str, router_mws: &[&str]) -> String {
    let mut s = String::from(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: svc\n",
    );
    if !router_mws.is_empty() {
        s.push_str("      middlewares:\n");
        for m in router_mws {
            s.push_str(&format!("        - {m}\n"));
        }
    }
    s.push_str("  services:\n    svc:\n      loadBalancer:\n");
    s.push_str(lb_extra);
    s.push_str("        servers:\n");
    for u in urls {
        s.push_str(&format!("          - url: \"{u}\"\n"));
    }
    if !middlewares.is_empty() {
        s.push_str("  middlewares:\n");
        s.push_str(middlewares);
    }
    s
}

async fn ready(esc: &Escale) {
    let url = esc.url("/");
    eventually("config applied", Duration::from_secs(10), || async {
        request("GET", &url, &[], "")
            .await
            .map(|r| r.status != 404)
            .unwrap_or(false)
    })
    .await;
}

/// `n` GETs with `concurrency` workers, bounded by `limit`; names of the
/// answering backends (or the failure).
async fn load(
    url: String,
    n: usize,
    concurrency: usize,
    limit: Duration,
) -> Vec<Result<String, String>> {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + limit;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n && Instant::now() < deadline {
                out.push(match request("GET", &url, &[], "").await {
                    Ok(a) if a.status == 200 => Ok(a.echo("Name").unwrap_or_default()),
                    Ok(a) => Err(format!("status {} {}", a.status, a.body.trim())),
                    Err(e) => Err(e),
                });
            }
            out
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("worker"));
    }
    all
}

fn share(results: &[Result<String, String>], name: &str) -> f64 {
    let n = results.iter().filter(|r| r.as_deref() == Ok(name)).count();
    n as f64 / results.len().max(1) as f64
}

fn cookie_pair(a: &Answer) -> Option<String> {
    a.headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

/// Acceptance 1: one of three backends dies under load; no request fails.
/// Restarted on the same port, it is re-admitted and gets traffic again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_backend_loses_no_request_and_is_readmitted() {
    let a = Whoami::start("a");
    let b = Whoami::start("b");
    let mut c = Some(Whoami::start("c"));
    let c_port = c.as_ref().unwrap().addr.port();
    let urls = vec![a.url(), b.url(), c.as_ref().unwrap().url()];
    let lb =
        "        passiveHealthCheck:\n          failureWindow: 500ms\n          maxEjection: 1s\n";
    let esc = Escale::start(&config(&urls, lb, "", &[]), &[]);
    ready(&esc).await;

    let stop = Arc::new(AtomicBool::new(false));
    let url = esc.url("/");
    let loader = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut results = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && results.len() < 5000
            {
                let batch = load(url.clone(), 8, 4, Duration::from_secs(5)).await;
                results.extend(batch);
            }
            results
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    // SIGKILL: open connections are reset, new ones refused.
    drop(c.take());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let results = loader.await.unwrap();
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(results.len() > 50, "the loop ran: {}", results.len());
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}\n{}",
        failed.len(),
        results.len(),
        &failed[..failed.len().min(5)],
        esc.log_text()
    );
    assert!(esc.log_text().contains("ejected"), "{}", esc.log_text());

    let c2 = Whoami::start_with("c", c_port, &[]);
    let url = esc.url("/");
    eventually(
        "restarted backend gets traffic",
        Duration::from_secs(10),
        || async {
            let r = load(url.clone(), 12, 2, Duration::from_secs(3)).await;
            r.iter().all(|r| r.is_ok()) && share(&r, "c") > 0.0
        },
    )
    .await;
    assert!(esc.log_text().contains("re-admitted"));
    drop(c2);
}

/// Acceptance 2: a failing health path takes the server out within one
/// interval plus the timeout, and it returns once the path passes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_health_check_leaves_and_returns() {
    let a = Whoami::start("a");
    let b = Whoami::start("b");
    let lb = "        healthCheck:\n          path: /health\n          interval: 400ms\n          timeout: 200ms\n";
    let esc = Escale::start(&config(&[a.url(), b.url()], lb, "", &[]), &[]);
    ready(&esc).await;
    let url = esc.url("/");
    let both = load(url.clone(), 20, 1, Duration::from_secs(5)).await;
    assert!(share(&both, "a") > 0.3 && share(&both, "b") > 0.3);

    let set = request("POST", &format!("{}/health", a.url()), &[], "500")
        .await
        .unwrap();
    assert_eq!(set.status, 200);
    let started = Instant::now();
    let mut left = None;
    while started.elapsed() < Duration::from_secs(3) {
        let r = load(url.clone(), 6, 1, Duration::from_secs(2)).await;
        if share(&r, "b") == 1.0 {
            left = Some(started.elapsed());
            break;
        }
    }
    let left = left.expect("a left the pool");
    // One interval plus the timeout, and the six requests of the last probe.
    assert!(left < Duration::from_millis(400 + 200 + 400), "{left:?}");
    let only_b = load(url.clone(), 20, 2, Duration::from_secs(5)).await;
    assert_eq!(share(&only_b, "b"), 1.0, "{only_b:?}");
    assert!(esc.log_text().contains("server DOWN"));

    request("POST", &format!("{}/health", a.url()), &[], "200")
        .await
        .unwrap();
    let started = Instant::now();
    eventually("a is back", Duration::from_secs(3), || async {
        share(&load(url.clone(), 6, 1, Duration::from_secs(2)).await, "a") > 0.0
    })
    .await;
    assert!(started.elapsed() < Duration::from_millis(1500));
}

/// Every server down: requests still go to them (fail open), and the log
/// says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_servers_down_fails_open() {
    let a = Whoami::start("a");
    let lb = "        healthCheck:\n          path: /health\n          interval: 200ms\n          timeout: 200ms\n";
    let esc = Escale::start(&config(&[a.url()], lb, "", &[]), &[]);
    ready(&esc).await;
    request("POST", &format!("{}/health", a.url()), &[], "503")
        .await
        .unwrap();
    let esc_ref = &esc;
    eventually(
        "health check marks it down",
        Duration::from_secs(3),
        || async move { esc_ref.log_text().contains("server DOWN") },
    )
    .await;
    let r = get(&esc.url("/"), "any.test").await;
    assert_eq!((r.status, r.echo("Name").as_deref()), (200, Some("a")));
    assert!(esc.log_text().contains("fail open"), "{}", esc.log_text());
}

/// Acceptance 3: with a backend 20 times slower than the other, p2c sends
/// it under 15% of the requests; wrr sends it half.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2c_avoids_the_slow_backend_and_wrr_does_not() {
    let fast = Whoami::start_with("fast", 0, &["--delay-ms", "5"]);
    let slow = Whoami::start_with("slow", 0, &["--delay-ms", "100"]);
    let urls = [fast.url(), slow.url()];
    let mut shares = BTreeMap::new();
    for strategy in ["p2c", "wrr"] {
        let lb = format!("        strategy: {strategy}\n");
        let esc = Escale::start(&config(&urls, &lb, "", &[]), &[]);
        ready(&esc).await;
        let results = load(esc.url("/"), 200, 4, Duration::from_secs(30)).await;
        assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
        assert!(results.len() >= 150, "{}", results.len());
        shares.insert(strategy, share(&results, "slow"));
    }
    eprintln!("slow backend share: {shares:?}");
    assert!(shares["p2c"] < 0.15, "{shares:?}");
    assert!((0.45..=0.55).contains(&shares["wrr"]), "{shares:?}");
}

/// Acceptance 4 (black-box part): hrw on a header keeps each key on one
/// server, and removing a server moves only its keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hrw_keeps_keys_and_moves_only_the_removed_servers() {
    let ws: Vec<Whoami> = (0..3).map(|i| Whoami::start(&format!("w{i}"))).collect();
    let urls: Vec<String> = ws.iter().map(|w| w.url()).collect();
    let lb = "        strategy: \"hrw:header:X-Key\"\n";
    let esc = Escale::start(&config(&urls, lb, "", &[]), &[]);
    ready(&esc).await;
    let url = esc.url("/");
    let assign = |url: String| async move {
        let mut out = BTreeMap::new();
        for k in 0..40 {
            let key = format!("tenant-{k}");
            let mut names = BTreeSet::new();
            for _ in 0..3 {
                let r = request("GET", &url, &[("x-key", &key)], "").await.unwrap();
                assert_eq!(r.status, 200);
                names.insert(r.echo("Name").unwrap());
            }
            assert_eq!(names.len(), 1, "{key} moved between requests: {names:?}");
            out.insert(key, names.into_iter().next().unwrap());
        }
        out
    };
    let before = assign(url.clone()).await;
    let used: BTreeSet<_> = before.values().cloned().collect();
    assert_eq!(used.len(), 3, "40 keys spread over 3 servers: {before:?}");

    esc.write_dynamic(&config(&urls[..2], lb, "", &[]));
    let on_w2 = before
        .iter()
        .find(|(_, n)| n.as_str() == "w2")
        .map(|(k, _)| k.clone())
        .unwrap();
    let (u, k) = (url.clone(), on_w2.clone());
    eventually("w2 removed", Duration::from_secs(5), || {
        let (u, k) = (u.clone(), k.clone());
        async move {
            request("GET", &u, &[("x-key", &k)], "")
                .await
                .map(|r| r.echo("Name").as_deref() != Some("w2"))
                .unwrap_or(false)
        }
    })
    .await;
    let after = assign(url).await;
    for (key, name) in &before {
        if name != "w2" {
            assert_eq!(&after[key], name, "{key} moved though its server stayed");
        } else {
            assert_ne!(after[key], "w2");
        }
    }
}

/// Acceptance 5: sticky cookies pin a client to one server; when it goes
/// away the next request still succeeds and the cookie is rewritten. The
/// value never shows the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_cookie_pins_and_moves_when_the_server_goes() {
    let ws: Vec<Whoami> = (0..3).map(|i| Whoami::start(&format!("s{i}"))).collect();
    let urls: Vec<String> = ws.iter().map(|w| w.url()).collect();
    let lb = "        sticky:\n          cookie:\n            httpOnly: true\n            sameSite: lax\n";
    let esc = Escale::start(&config(&urls, lb, "", &[]), &[]);
    ready(&esc).await;
    let first = get(&esc.url("/"), "app.test").await;
    let set = first.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let cookie = cookie_pair(&first).unwrap();
    let (name, value) = cookie.split_once('=').unwrap();
    assert!(
        name.starts_with('_') && name.len() == 6,
        "Traefik's default name: {name}"
    );
    assert_eq!(value.len(), 16);
    for w in &ws {
        assert!(
            !set.contains(&w.addr.to_string()) && !set.contains("127.0.0.1"),
            "{set}"
        );
    }
    let pinned = first.echo("Name").unwrap();
    for _ in 0..100 {
        let r = request("GET", &esc.url("/"), &[("cookie", &cookie)], "")
            .await
            .unwrap();
        assert_eq!(r.echo("Name").as_deref(), Some(pinned.as_str()));
        assert!(
            r.headers.get("set-cookie").is_none(),
            "no rewrite while it stays"
        );
    }

    let remaining: Vec<String> = ws
        .iter()
        .filter(|w| w.name != pinned)
        .map(|w| w.url())
        .collect();
    esc.write_dynamic(&config(&remaining, lb, "", &[]));
    let url = esc.url("/");
    let pinned_ref = pinned.as_str();
    eventually("pinned server removed", Duration::from_secs(5), || async {
        load(url.clone(), 6, 1, Duration::from_secs(2))
            .await
            .iter()
            .all(|r| r.as_deref() != Ok(pinned_ref))
    })
    .await;
    let moved = request("GET", &esc.url("/"), &[("cookie", &cookie)], "")
        .await
        .unwrap();
    assert_eq!(moved.status, 200);
    assert_ne!(moved.echo("Name").as_deref(), Some(pinned.as_str()));
    let new_cookie = cookie_pair(&moved).expect("cookie rewritten");
    assert_ne!(new_cookie, cookie);
    let new_home = moved.echo("Name").unwrap();

    // The new home dies: the request goes elsewhere, never to the dead one.
    let dead = ws.iter().find(|w| w.name == new_home).unwrap();
    let _ = Command::new("kill")
        .args(["-KILL", &dead.proc.pid().to_string()])
        .status();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = request("GET", &esc.url("/"), &[("cookie", &new_cookie)], "")
        .await
        .unwrap();
    assert_eq!(again.status, 200);
    assert_ne!(again.echo("Name").unwrap(), new_home);
    assert_ne!(cookie_pair(&again).expect("rewritten again"), new_cookie);
}

/// A backend that reads the request head and resets the connection.
async fn resetter() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
                let _ = s.set_zero_linger();
            });
        }
    });
    (addr, task)
}

/// Resets before the response headers: idempotent requests go elsewhere
/// (small bodies are replayed), a POST is never sent twice. A refused
/// connect is retried whatever the method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_are_retried_only_when_safe() {
    let good = Whoami::start("good");
    let (bad, _task) = resetter().await;
    let urls = [format!("http://{bad}"), good.url()];
    // Keep the resetter in the pool: this test is about retries, not ejection.
    let lb = "        passiveHealthCheck:\n          maxFailedAttempts: 100000\n";
    let esc = Escale::start(&config(&urls, lb, "", &[]), &[]);
    ready(&esc).await;
    let url = esc.url("/upload");
    for _ in 0..10 {
        let r = request("GET", &esc.url("/"), &[], "").await.unwrap();
        assert_eq!(r.status, 200, "GET is retried");
        let r = request("PUT", &url, &[], "small body").await.unwrap();
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "10"),
            "small PUT is replayed"
        );
    }
    let mut post_failures = 0;
    let mut big_put_failures = 0;
    let big = "x".repeat(100 * 1024);
    // Separate loops: round robin would send every other request to the
    // same server.
    for _ in 0..6 {
        if request("POST", &url, &[], "once").await.unwrap().status == 502 {
            post_failures += 1;
        }
    }
    for _ in 0..6 {
        if request("PUT", &url, &[], &big).await.unwrap().status == 502 {
            big_put_failures += 1;
        }
    }
    assert!(
        post_failures > 0,
        "a POST that reached the resetter is not retried"
    );
    assert!(
        big_put_failures > 0,
        "a large streamed body is not replayed"
    );

    let dead = free_port();
    let urls = [format!("http://127.0.0.1:{dead}"), good.url()];
    esc.write_dynamic(&config(&urls, lb, "", &[]));
    let u = esc.url("/upload");
    eventually("new servers", Duration::from_secs(5), || async {
        request("POST", &u, &[], "abc")
            .await
            .map(|r| r.status == 200)
            .unwrap_or(false)
    })
    .await;
    for _ in 0..10 {
        let r = request("POST", &u, &[], "abc").await.unwrap();
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "3"),
            "refused connect: POST goes elsewhere"
        );
    }
}

/// The retry middleware makes more attempts, with its backoff, on a
/// service whose only server keeps resetting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_middleware_attempts_with_backoff() {
    let (bad, _task) = resetter().await;
    let mws = "    retry:\n      retry:\n        attempts: 4\n        initialInterval: 100ms\n";
    let esc = Escale::start(
        &config(&[format!("http://{bad}")], "", mws, &["retry"]),
        &[],
    );
    let url = esc.url("/");
    eventually("config applied", Duration::from_secs(10), || async {
        request("GET", &url, &[], "")
            .await
            .map(|r| r.status == 502)
            .unwrap_or(false)
    })
    .await;
    let started = Instant::now();
    let r = request("GET", &url, &[], "").await.unwrap();
    let took = started.elapsed();
    assert_eq!(r.status, 502);
    // Three waits around 100, 126 and 159 ms, each ±50%.
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

/// Acceptance 6: the circuit breaker opens on errors, answers with its
/// fallback, recovers progressively and closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_trips_and_recovers() {
    let w = Whoami::start("w");
    let mws = "    cb:\n      circuitBreaker:\n        expression: \"ResponseCodeRatio(500, 600, 0, 600) > 0.5\"\n        checkPeriod: 50ms\n        fallbackDuration: 1s\n        recoveryDuration: 1s\n        responseCode: 418\n";
    let esc = Escale::start(&config(&[w.url()], "", mws, &["cb"]), &[]);
    ready(&esc).await;
    assert_eq!(get(&esc.url("/"), "x").await.status, 200);
    let mut opened = None;
    for _ in 0..40 {
        let r = get(&esc.url("/?status=500"), "x").await;
        if r.status == 418 {
            opened = Some(Instant::now());
            break;
        }
        assert_eq!(r.status, 500);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let opened = opened.expect("breaker opened");
    let r = get(&esc.url("/"), "x").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (418, "I'm a teapot"),
        "healthy requests get the fallback too"
    );
    // Open for the fallback period, then recovering, then closed.
    let mut statuses = Vec::new();
    while opened.elapsed() < Duration::from_millis(3500) {
        let r = get(&esc.url("/"), "x").await;
        statuses.push((opened.elapsed().as_millis(), r.status));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let early: Vec<_> = statuses.iter().filter(|(t, _)| *t < 900).collect();
    assert!(
        early.iter().all(|(_, s)| *s == 418),
        "open during fallback: {early:?}"
    );
    let ramp: Vec<_> = statuses
        .iter()
        .filter(|(t, _)| (1100..1900).contains(t))
        .collect();
    assert!(
        ramp.iter().any(|(_, s)| *s == 200) && ramp.iter().any(|(_, s)| *s == 418),
        "progressive: {ramp:?}"
    );
    let late: Vec<_> = statuses.iter().filter(|(t, _)| *t > 2300).collect();
    assert!(
        !late.is_empty() && late.iter().all(|(_, s)| *s == 200),
        "closed after recovery: {late:?}"
    );
    assert!(esc.log_text().contains("circuit breaker open"));
}

/// Acceptance 6: the rate limit refuses bursts with 429 per source and
/// lets the source in again once tokens are back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_trips_and_recovers() {
    let w = Whoami::start("w");
    let mws = "    rl:\n      rateLimit:\n        average: 5\n        period: 1s\n        burst: 5\n        sourceCriterion:\n          requestHeaderName: X-Client\n";
    let esc = Escale::start(&config(&[w.url()], "", mws, &["rl"]), &[]);
    ready(&esc).await;
    let url = esc.url("/");
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = request("GET", &url, &[("x-client", "alice")], "")
            .await
            .unwrap();
        if r.status == 429 {
            assert!(r.headers.contains_key("retry-after") && r.headers.contains_key("x-retry-in"));
        }
        statuses.push(r.status);
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        (5..=7).contains(&ok),
        "burst of 5 then refused: {statuses:?}"
    );
    assert_eq!(*statuses.last().unwrap(), 429);
    let bob = request("GET", &url, &[("x-client", "bob")], "")
        .await
        .unwrap();
    assert_eq!(bob.status, 200, "another source has its own bucket");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = request("GET", &url, &[("x-client", "alice")], "")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "tokens came back");
}

/// inFlightReq: a second concurrent request from the same source is
/// refused while the first is in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_limit_holds_until_the_response_ends() {
    let w = Whoami::start("w");
    let mws = "    one:\n      inFlightReq:\n        amount: 1\n";
    let esc = Escale::start(&config(&[w.url()], "", mws, &["one"]), &[]);
    ready(&esc).await;
    let slow_url = esc.url("/?wait=800");
    let slow =
        tokio::spawn(async move { request("GET", &slow_url, &[("host", "a.test")], "").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = get(&esc.url("/"), "a.test").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (429, "max connections reached: 1")
    );
    assert_eq!(
        get(&esc.url("/"), "b.test").await.status,
        200,
        "per host by default"
    );
    assert_eq!(slow.await.unwrap().unwrap().status, 200);
    assert_eq!(get(&esc.url("/"), "a.test").await.status, 200);
}

/// maxConnsPerServer: a full server is skipped; when all are full, 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_conns_per_server_spreads_then_refuses() {
    let a = Whoami::start("a");
    let b = Whoami::start("b");
    let lb = "        maxConnsPerServer: 1\n";
    let esc = Escale::start(&config(&[a.url(), b.url()], lb, "", &[]), &[]);
    ready(&esc).await;
    let slow = |url: String| tokio::spawn(async move { request("GET", &url, &[], "").await });
    let first = slow(esc.url("/?wait=1000"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        assert_eq!(
            get(&esc.url("/"), "x").await.status,
            200,
            "the free server answers"
        );
    }
    let second = slow(esc.url("/?wait=1000"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = get(&esc.url("/"), "x").await;
    assert_eq!(r.status, 503, "both servers are at their limit");
    let names: BTreeSet<_> = [first.await, second.await]
        .into_iter()
        .map(|r| r.unwrap().unwrap().echo("Name").unwrap())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "the slow requests went to different servers"
    );
    assert_eq!(get(&esc.url("/"), "x").await.status, 200);
}

/// A loopback port whose accept queue is full: connects to it hang, as
/// connects to a killed swarm task's address do.
struct BlackHole {
    addr: SocketAddr,
    _listener: tokio::net::TcpListener,
    _fill: Vec<std::net::TcpStream>,
}

async fn black_hole() -> BlackHole {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fill = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            fill.push(s);
        }
    }
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err(),
        "the accept queue is full"
    );
    BlackHole {
        addr,
        _listener: listener,
        _fill: fill,
    }
}

/// Requests stuck connecting to a server are sent elsewhere as soon as the
/// server leaves the configuration, or is ejected by another request's
/// failure, instead of waiting for the dial timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_connects_move_when_the_server_leaves() {
    let good = Whoami::start("good");
    let hole = black_hole().await;
    let with = |servers: &[String], transport: &str| {
        // The app answers only on app.test, so that a probe host answers
        // only once its own router exists.
        let mut s =
            config(servers, transport, "", &[]).replace("PathPrefix(`/`)", "Host(`app.test`)");
        s = s.replace(
            "  services:\n",
            "    probe:\n      rule: \"Host(`probe.test`)\"\n      service: probe\n  services:\n",
        );
        s.push_str(&format!(
            "    probe:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n",
            good.url()
        ));
        s
    };
    let both = [format!("http://{}", hole.addr), good.url()];
    let esc = Escale::start(&with(&both, ""), &[]);
    let probe = esc.url("/");
    eventually("config applied", Duration::from_secs(10), || async {
        request("GET", &probe, &[("host", "probe.test")], "")
            .await
            .map(|r| r.status == 200)
            .unwrap_or(false)
    })
    .await;

    let burst = |n: usize| {
        let url = esc.url("/");
        (0..n)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let r = request("GET", &url, &[("host", "app.test")], "").await;
                    (r.map(|a| a.status), started.elapsed())
                })
            })
            .collect::<Vec<_>>()
    };
    // Half of these go to the black hole and hang in connect.
    let stuck = burst(4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    esc.write_dynamic(&with(&[good.url()], ""));
    for h in stuck {
        let (status, took) = h.await.unwrap();
        assert_eq!(status, Ok(200));
        assert!(
            took < Duration::from_secs(4),
            "{took:?}: not the 30s dial timeout"
        );
    }

    // Ejection: the first connect to time out (1s) ejects the server, and
    // a connect that started later leaves with it rather than wait its
    // own second.
    let transport = "        serversTransport: quick\n";
    let mut cfg = with(&both, transport).replace("probe.test", "probe2.test");
    cfg.push_str(
        "  serversTransports:\n    quick:\n      forwardingTimeouts:\n        dialTimeout: 1s\n",
    );
    esc.write_dynamic(&cfg);
    eventually("config applied", Duration::from_secs(10), || async {
        request("GET", &probe, &[("host", "probe2.test")], "")
            .await
            .map(|r| r.status == 200)
            .unwrap_or(false)
    })
    .await;
    let first = burst(2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = burst(2);
    for h in first {
        assert_eq!(h.await.unwrap().0, Ok(200));
    }
    let mut slowest = Duration::ZERO;
    for h in second {
        let (status, took) = h.await.unwrap();
        assert_eq!(status, Ok(200));
        slowest = slowest.max(took);
    }
    assert!(
        slowest < Duration::from_millis(850),
        "{slowest:?}: the later connect left when the server was ejected\n{}",
        esc.log_text()
    );
    assert!(esc.log_text().contains("ejected"));
}

/// The `weighted`, `failover` and `mirroring` services through the proxy:
/// shares by weight; the fallback once the main service's health check
/// fails, and the main one again once it passes; copies of requests,
/// body included, at the mirror.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_over_services() {
    let blue = Whoami::start("blue");
    let green = Whoami::start("green");
    let spare = Whoami::start("spare");
    let (mirror, mirrored) = recording_server().await;
    let health = "        healthCheck:\n          path: /health\n          interval: 200ms\n          timeout: 200ms\n";
    let yaml = format!(
        r#"http:
  routers:
    canary:
      rule: "Host(`canary.test`)"
      service: canary
    failover:
      rule: "Host(`fo.test`)"
      service: blue-or-spare
    mirrored:
      rule: "Host(`mirror.test`)"
      service: shadowed
  services:
    canary:
      weighted:
        services:
          - name: blue
            weight: 3
          - name: green
            weight: 1
    blue-or-spare:
      failover:
        service: blue-checked
        fallback: spare
    shadowed:
      mirroring:
        service: green
        mirrors:
          - name: recorder
            percent: 100
    blue:
      loadBalancer:
        servers:
          - url: "{blue}"
    blue-checked:
      loadBalancer:
        servers:
          - url: "{blue}"
{health}    green:
      loadBalancer:
        servers:
          - url: "{green}"
    spare:
      loadBalancer:
        servers:
          - url: "{spare}"
    recorder:
      loadBalancer:
        servers:
          - url: "http://{mirror}"
"#,
        blue = blue.url(),
        green = green.url(),
        spare = spare.url(),
    );
    let esc = Escale::start(&yaml, &[]);
    esc.routed("canary.test", Duration::from_secs(5)).await;

    let mut blues = 0;
    for _ in 0..40 {
        let r = get(&esc.url("/"), "canary.test").await;
        assert_eq!(r.status, 200);
        blues += usize::from(r.echo("Name").as_deref() == Some("blue"));
    }
    assert_eq!(blues, 30, "3 in 4 requests go to blue");

    assert_eq!(
        get(&esc.url("/"), "fo.test").await.echo("Name").as_deref(),
        Some("blue")
    );
    request("POST", &format!("{}/health", blue.url()), &[], "500")
        .await
        .unwrap();
    let url = esc.url("/");
    eventually("the fallback answers", Duration::from_secs(5), || async {
        get(&url, "fo.test").await.echo("Name").as_deref() == Some("spare")
    })
    .await;
    request("POST", &format!("{}/health", blue.url()), &[], "200")
        .await
        .unwrap();
    eventually(
        "the main service is back",
        Duration::from_secs(5),
        || async { get(&url, "fo.test").await.echo("Name").as_deref() == Some("blue") },
    )
    .await;

    let answer = request(
        "POST",
        &esc.url("/orders?id=7"),
        &[("host", "mirror.test"), ("content-type", "text/plain")],
        "the order body",
    )
    .await
    .unwrap();
    assert_eq!(answer.echo("Name").as_deref(), Some("green"));
    let seen = mirrored.clone();
    eventually("the mirror got a copy", Duration::from_secs(5), || {
        let seen = seen.clone();
        async move { !seen.lock().unwrap().is_empty() }
    })
    .await;
    let copy = mirrored.lock().unwrap()[0].clone();
    assert!(copy.starts_with("POST /orders?id=7 HTTP/1.1\r\n"), "{copy}");
    assert!(
        copy.to_ascii_lowercase().contains("host: mirror.test\r\n"),
        "{copy}"
    );
    assert!(copy.ends_with("\r\n\r\nthe order body"), "{copy}");
}

/// A backend that records each request (head and `Content-Length` body)
/// and answers 204.
async fn recording_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let text = String::from_utf8_lossy(&got).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if got.len() >= end + 4 + length {
                            record.lock().unwrap().push(text);
                            let _ = s
                                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                                .await;
                            return;
                        }
                    }
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
            });
        }
    });
    (addr, seen)
}
