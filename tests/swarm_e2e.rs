//! End-to-end tests of the swarm provider on a real local swarm.
//!
//! Setup (engine, swarm with the pinned pool and blackhole route, images) is
//! done by `scripts/e2e-swarm.sh`, which then runs this target with
//! `--test-threads=1`. Without a swarm these tests fail; they never skip.
//! The proxy runs as a swarm service with a host-mode published port and the
//! Docker socket bind-mounted; tests talk only to 127.0.0.1.

#[path = "swarm/support.rs"]
mod support;

use std::time::{Duration, Instant};

use support::*;

const STRIP_CASES: &[(&str, &str, &str)] = &[
    // (request path, whoami name, path the backend must see)
    ("/cdn/index.html", "running_cdn", "/index.html"),
    ("/saas/login", "running_saas", "/login"),
    ("/ludotm/ludotheque/jeux", "ludotm_ludotheque", "/jeux"),
];

fn v1_labels(backend: &str, rule: &str) -> Vec<(String, String)> {
    vec![
        ("traefik.backend".into(), backend.into()),
        ("traefik.frontend.rule".into(), rule.into()),
        ("traefik.port".into(), "80".into()),
    ]
}

/// v3 labels for a router `r` on `rule` with a stripprefix middleware.
fn v3_strip_labels(r: &str, rule: &str, prefix: &str) -> Vec<(String, String)> {
    vec![
        (format!("traefik.http.routers.{r}.rule"), rule.into()),
        (
            format!("traefik.http.routers.{r}.middlewares"),
            format!("{r}-strip"),
        ),
        (
            format!("traefik.http.middlewares.{r}-strip.stripprefix.prefixes"),
            prefix.into(),
        ),
        (
            format!("traefik.http.services.{r}.loadbalancer.server.port"),
            "80".into(),
        ),
    ]
}

fn v3_host_labels(r: &str, host: &str) -> Vec<(String, String)> {
    vec![
        (
            format!("traefik.http.routers.{r}.rule"),
            format!("Host(`{host}`)"),
        ),
        (
            format!("traefik.http.services.{r}.loadbalancer.server.port"),
            "80".into(),
        ),
    ]
}

/// Checks the three seed services answer on `Host: alderaan` with their
/// prefix stripped, then that every replica of each is reached.
fn check_platform(env: &Env, services: &[(String, usize)]) {
    for (path, name, seen_path) in STRIP_CASES {
        let took = env.wait_status("alderaan", path, 200, Duration::from_secs(5));
        assert!(
            took.is_some(),
            "{path} never answered 200; logs:\n{}",
            env.proxy_logs()
        );
        let r = env.get("alderaan", path).expect("request");
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.name(), Some(*name), "{path} reached {:?}", r.name());
        let want = format!("GET {seen_path} HTTP/1.1");
        assert_eq!(r.request_line(), Some(want.as_str()), "{path}: {}", r.body);
    }
    for ((path, _, _), (service, replicas)) in STRIP_CASES.iter().zip(services) {
        let ips = env.wait_running(service, *replicas);
        // A task seen running may take the provider a poll (100 ms) to route.
        let reached = wait_for(Duration::from_secs(2), Duration::from_millis(50), || {
            let seen = env.sample_ips("alderaan", path, &ips, 10 * replicas);
            (seen == ips).then_some(())
        });
        assert!(
            reached.is_some(),
            "{service}: balancing must reach every task IP of {ips:?}; logs:\n{}",
            env.proxy_logs()
        );
    }
}

/// Point 1: The seed, verbatim: `<image> --docker.swarmmode` and its v1 labels.
#[test]
fn seed_v1_labels_verbatim() {
    let _serial = serial();
    let mut env = Env::new("seed");
    env.start_proxy(&["--docker.swarmmode"]);
    let cdn = env.create_service(
        "running_cdn",
        2,
        &labels_of(&v1_labels("cdn", "Host:alderaan;PathPrefixStrip:/cdn/")),
        &[],
    );
    let saas = env.create_service(
        "running_saas",
        1,
        &labels_of(&v1_labels("saas", "Host:alderaan;PathPrefixStrip:/saas")),
        &[],
    );
    let ludo = env.create_service(
        "ludotm_ludotheque",
        2,
        &labels_of(&v1_labels(
            "ludotm_ludotheque",
            "Host:alderaan;PathPrefixStrip:/ludotm/ludotheque",
        )),
        &[],
    );
    check_platform(&env, &[(cdn, 2), (saas.clone(), 1), (ludo.clone(), 2)]);

    // `docker service scale ludotm_ludotheque=3`, as in the seed.
    docker_ok(&["service", "scale", "--detach", &format!("{ludo}=3")]);
    let ips = env.wait_running(&ludo, 3);
    let seen = wait_for(Duration::from_secs(3), Duration::from_millis(50), || {
        let seen = env.sample_ips("alderaan", "/ludotm/ludotheque/", &ips, 30);
        (seen == ips).then_some(seen)
    });
    assert!(
        seen.is_some(),
        "the third ludotheque replica is not reached"
    );
    // And `docker service scale running_saas=2`.
    docker_ok(&["service", "scale", "--detach", &format!("{saas}=2")]);
    let ips = env.wait_running(&saas, 2);
    let seen = wait_for(Duration::from_secs(3), Duration::from_millis(50), || {
        let seen = env.sample_ips("alderaan", "/saas/", &ips, 20);
        (seen == ips).then_some(seen)
    });
    assert!(seen.is_some(), "the second saas replica is not reached");
}

/// Point 2: The same platform in v3 labels: routers, stripprefix, loadbalancer port.
#[test]
fn seed_platform_in_v3_labels() {
    let _serial = serial();
    let mut env = Env::new("v3");
    env.start_proxy(&["--providers.swarm=true"]);
    let cdn = env.create_service(
        "running_cdn",
        2,
        &labels_of(&v3_strip_labels(
            "cdn",
            "Host(`alderaan`) && PathPrefix(`/cdn/`)",
            "/cdn/",
        )),
        &[],
    );
    let saas = env.create_service(
        "running_saas",
        1,
        &labels_of(&v3_strip_labels(
            "saas",
            "Host(`alderaan`) && PathPrefix(`/saas`)",
            "/saas",
        )),
        &[],
    );
    let ludo = env.create_service(
        "ludotm_ludotheque",
        3,
        &labels_of(&v3_strip_labels(
            "ludo",
            "Host(`alderaan`) && PathPrefix(`/ludotm/ludotheque`)",
            "/ludotm/ludotheque",
        )),
        &[],
    );
    check_platform(&env, &[(cdn, 2), (saas, 1), (ludo, 3)]);
}

/// Point 3: `docker service scale` 2 -> 3 -> 1: traffic reaches exactly the live
/// replicas, and no request fails meanwhile.
#[test]
fn scale_reaches_exactly_the_live_replicas() {
    let _serial = serial();
    let mut env = Env::new("scale");
    env.start_proxy(&["--providers.swarm=true"]);
    let svc = env.create_service(
        "web",
        2,
        &labels_of(&v3_host_labels("web", "web.test")),
        &[],
    );
    let ips = env.wait_running(&svc, 2);
    env.wait_status("web.test", "/", 200, Duration::from_secs(5))
        .expect("web answers");
    let load = Load::start(env.port, "web.test", "/", 2, Duration::from_secs(120));
    for n in [3usize, 1] {
        docker_ok(&["service", "scale", "--detach", &format!("{svc}={n}")]);
        let live = env.wait_running(&svc, n);
        let exact = wait_for(Duration::from_secs(5), Duration::from_millis(100), || {
            let seen = env.sample_ips("web.test", "/", &live, 12 * n);
            (seen == live).then_some(())
        });
        assert!(
            exact.is_some(),
            "scaled to {n}: traffic does not reach exactly {live:?} (first set {ips:?})"
        );
    }
    // Requests that were in flight during the scale-down must have finished.
    std::thread::sleep(Duration::from_secs(3));
    let result = load.stop();
    assert!(result.ok > 50, "the load did not run: {result:?}");
    assert_eq!(
        result.failed, 0,
        "failed requests during scaling: {result:?}"
    );
}

/// Tasks that serve TLS (`scheme=https` in v3 labels, `traefik.protocol=https`
/// in v1 ones) are reached over TLS at their task IPs, HTTP/2 by ALPN for
/// the v3 one; the static `serversTransport.insecureSkipVerify` takes their
/// self-signed certificates, as Traefik users set it for such backends.
#[test]
fn https_tasks_are_reached_over_tls() {
    let _serial = serial();
    let mut env = Env::new("https");
    env.start_proxy(&[
        "--providers.swarm=true",
        "--serversTransport.insecureSkipVerify=true",
    ]);
    let mut v3 = v3_host_labels("secure", "secure.test");
    v3.push((
        "traefik.http.services.secure.loadbalancer.server.scheme".into(),
        "https".into(),
    ));
    let tls_env = ["--env", "WHOAMI_TLS_SELF_SIGNED=true"];
    let secure = env.create_service("secure", 2, &labels_of(&v3), &tls_env);
    let mut v1 = v1_labels("legacy", "Host:legacy.test");
    v1.push(("traefik.protocol".into(), "https".into()));
    let legacy = env.create_service("legacy", 1, &labels_of(&v1), &tls_env);
    let plain = env.create_service(
        "plain",
        1,
        &labels_of(&v3_host_labels("plain", "plain.test")),
        &[],
    );
    for (svc, n) in [(&secure, 2), (&legacy, 1), (&plain, 1)] {
        env.wait_running(svc, n);
    }
    for host in ["secure.test", "legacy.test", "plain.test"] {
        assert!(
            env.wait_status(host, "/", 200, Duration::from_secs(5))
                .is_some(),
            "{host} never answered 200; logs:\n{}",
            env.proxy_logs()
        );
    }
    let r = env.get("secure.test", "/v3").expect("request");
    assert_eq!(r.name(), Some("secure"), "{}", r.body);
    assert_eq!(r.request_line(), Some("GET /v3 HTTP/2.0"), "{}", r.body);
    // Task IPs carry no SNI, as Go's client sends none for an address.
    assert_eq!(r.line("TLS-Sni: "), Some("-"), "{}", r.body);
    let ips = env.wait_running(&secure, 2);
    let reached = wait_for(Duration::from_secs(2), Duration::from_millis(50), || {
        (env.sample_ips("secure.test", "/", &ips, 20) == ips).then_some(())
    });
    assert!(reached.is_some(), "every TLS task is reached: {ips:?}");

    let r = env.get("legacy.test", "/v1").expect("request");
    assert_eq!(r.name(), Some("legacy"), "{}", r.body);
    assert_eq!(r.line("TLS-Client-Cert: "), Some("false"), "{}", r.body);
    let r = env.get("plain.test", "/").expect("request");
    assert_eq!(
        r.line("TLS-Sni: "),
        None,
        "a plain task is reached in plain text"
    );
}

/// Point 4: A new service answers within 1 s of its tasks running; a removed one
/// answers 404 within 1 s; a label change applies within 1 s.
#[test]
fn changes_apply_within_a_second() {
    let _serial = serial();
    let mut env = Env::new("live");
    env.start_proxy(&["--providers.swarm=true"]);
    let mut latencies = Vec::new();
    let mut names = Vec::new();
    for i in 0..5 {
        let host = format!("live{i}.test");
        let svc = env.create_service(
            &format!("live{i}"),
            1,
            &labels_of(&v3_host_labels(&format!("live{i}"), &host)),
            &[],
        );
        latencies.push(route_live_latency(&env, &svc, &host));
        names.push((svc, host));
    }
    let max = latencies.iter().max().copied().unwrap_or_default();
    eprintln!(
        "route-live latency over {} creations: median {}, max {}",
        latencies.len(),
        fmt_ms(median(latencies.clone())),
        fmt_ms(max)
    );
    assert!(
        max <= Duration::from_secs(1),
        "route-live latency over 1 s: {latencies:?}"
    );

    // Removal: 404 within 1 s of `docker service rm` returning.
    let (svc, host) = names[0].clone();
    env.remove_service(&svc);
    let took = env
        .wait_status(&host, "/", 404, Duration::from_secs(5))
        .expect("removed service still answers after 5 s");
    eprintln!("removed service answers 404 after {}", fmt_ms(took));
    assert!(took <= Duration::from_secs(1), "404 after {took:?}");

    // Label change: the new rule applies within 1 s of the update returning.
    let (svc, old_host) = names[1].clone();
    let rule = "traefik.http.routers.live1.rule=Host(`renamed.test`)";
    docker_ok(&["service", "update", "--detach", "--label-add", rule, &svc]);
    let took = env
        .wait_status("renamed.test", "/", 200, Duration::from_secs(5))
        .expect("label change not applied after 5 s");
    eprintln!("label change applied after {}", fmt_ms(took));
    assert!(
        took <= Duration::from_secs(1),
        "label change after {took:?}"
    );
    assert_eq!(env.get(&old_host, "/").expect("old host").status, 404);
}

/// From the moment the service's task is seen running (polling the Docker
/// API) to the first 200 through the proxy. Zero when the route was live
/// before the poll saw the task running.
fn route_live_latency(env: &Env, service: &str, host: &str) -> Duration {
    let start = Instant::now();
    let mut running_at: Option<Instant> = None;
    let mut live_at: Option<Instant> = None;
    while start.elapsed() < Duration::from_secs(90) {
        if running_at.is_none()
            && running_task_ips(service, &env.network).is_ok_and(|ips| !ips.is_empty())
        {
            running_at = Some(Instant::now());
        }
        if live_at.is_none() && env.get(host, "/").is_ok_and(|r| r.status == 200) {
            live_at = Some(Instant::now());
        }
        if let (Some(r), Some(l)) = (running_at, live_at) {
            return l.saturating_duration_since(r);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "{service}: running at {running_at:?}, live at {live_at:?} after 90 s; logs:\n{}",
        env.proxy_logs()
    );
}

/// Point 5: Rolling updates under continuous load: `--force` with start-first,
/// then stop-first, on 3 replicas. Zero failed requests.
#[test]
fn rolling_updates_lose_no_request() {
    let _serial = serial();
    let mut env = Env::new("roll");
    env.start_proxy(&["--providers.swarm=true"]);
    let svc = env.create_service(
        "roll",
        3,
        &labels_of(&v3_host_labels("roll", "roll.test")),
        &["--update-parallelism", "1", "--update-delay", "0s"],
    );
    env.wait_running(&svc, 3);
    env.wait_status("roll.test", "/", 200, Duration::from_secs(5))
        .expect("roll answers");
    for order in ["start-first", "stop-first"] {
        let load = Load::start(env.port, "roll.test", "/", 3, Duration::from_secs(240));
        docker_ok(&[
            "service",
            "update",
            "--detach",
            "--force",
            "--update-order",
            order,
            &svc,
        ]);
        assert!(
            wait_update_completed(&svc, Duration::from_secs(180)),
            "{order} update did not complete"
        );
        env.wait_running(&svc, 3);
        // Old tasks stop after the update completes: keep loading through it.
        std::thread::sleep(Duration::from_secs(4));
        let result = load.stop();
        eprintln!(
            "rolling update {order}: {} ok, {} failed",
            result.ok, result.failed
        );
        assert!(result.ok > 100, "{order}: the load did not run: {result:?}");
        assert_eq!(result.failed, 0, "{order}: failed requests: {result:?}");
    }
}

/// Killing a task's container under load: the core retries failed connects
/// and idempotent requests reset before their answer on another server, and
/// the provider drops the task.
#[test]
fn killed_container_loses_no_request() {
    let _serial = serial();
    let mut env = Env::new("kill");
    env.start_proxy(&["--providers.swarm=true"]);
    let svc = env.create_service(
        "kill",
        3,
        &labels_of(&v3_host_labels("kill", "kill.test")),
        &[],
    );
    env.wait_running(&svc, 3);
    env.wait_status("kill.test", "/", 200, Duration::from_secs(5))
        .expect("kill answers");
    let load = Load::start(env.port, "kill.test", "/", 2, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let container = docker_ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={svc}"),
    ]);
    let victim = container
        .lines()
        .next()
        .expect("a task container")
        .to_string();
    docker_ok(&["kill", &victim]);
    // Swarm replaces the task; traffic goes on meanwhile.
    env.wait_running(&svc, 3);
    std::thread::sleep(Duration::from_secs(2));
    let result = load.stop();
    eprintln!(
        "docker kill under load: {} ok, {} failed",
        result.ok, result.failed
    );
    assert!(result.ok > 50, "the load did not run: {result:?}");
    assert_eq!(
        result.failed,
        0,
        "failed requests: {result:?}; proxy warnings:\n{}",
        env.proxy_logs()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("servers"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Point 7: Broken labels on one service: the error names the service, the label
/// key and the reason; every other service, of either generation, serves.
#[test]
fn broken_labels_are_reported_and_contained() {
    let _serial = serial();
    let mut env = Env::new("broken");
    let api_port = free_port();
    let publish_api = format!("mode=host,published={api_port},target=8080");
    env.start_proxy_with(
        &["--publish", &publish_api],
        &["--providers.swarm=true", "--api.insecure=true"],
    );
    let good = env.create_service(
        "good",
        1,
        &labels_of(&v3_host_labels("good", "good.test")),
        &[],
    );
    // v1 labels on a v3 proxy: the generations coexist.
    let old = env.create_service(
        "oldstyle",
        1,
        &labels_of(&v1_labels("oldstyle", "Host:old.test")),
        &[],
    );
    env.wait_running(&good, 1);
    env.wait_running(&old, 1);
    env.wait_status("good.test", "/", 200, Duration::from_secs(5))
        .expect("good answers");
    env.wait_status("old.test", "/", 200, Duration::from_secs(5))
        .expect("v1 service answers on a v3 proxy");

    let load = Load::start(env.port, "good.test", "/", 1, Duration::from_secs(120));
    let typo = env.create_service(
        "typo",
        1,
        &[
            ("traefik.http.routers.typo.rul", "Host(`typo.test`)"),
            ("traefik.http.services.typo.loadbalancer.server.port", "80"),
        ],
        &[],
    );
    let noport = env.create_service(
        "noport",
        1,
        &[("traefik.http.routers.noport.rule", "Host(`noport.test`)")],
        &[],
    );
    let badv1 = env.create_service(
        "badv1",
        1,
        &labels_of(&[
            (
                "traefik.frontend.rule".to_string(),
                "Host:badv1.test".to_string(),
            ),
            ("traefik.port".to_string(), "eighty".to_string()),
        ]),
        &[],
    );
    for (svc, key) in [
        (&typo, "traefik.http.routers.typo.rul"),
        (&noport, "traefik.http.services"),
        (&badv1, "traefik.port"),
    ] {
        env.wait_running(svc, 1);
        let line = env.wait_log(
            &[&format!("swarm service {svc}"), key],
            Duration::from_secs(10),
        );
        assert!(
            line.is_some(),
            "no error naming {svc} and {key}; logs:\n{}",
            env.proxy_logs()
        );
        eprintln!("reported: {}", line.unwrap_or_default());
    }
    // The same errors, kept for the admin API.
    let noport_key = format!(
        "traefik.http.services.{}.loadbalancer.server.port",
        escale::labels::normalize(&noport)
    );
    let issues = wait_for(Duration::from_secs(5), Duration::from_millis(200), || {
        let r = get(api_port, "localhost", "/api/issues").ok()?;
        let v: serde_json::Value = serde_json::from_str(&r.body).ok()?;
        let found = [
            (&typo, "traefik.http.routers.typo.rul"),
            (&noport, noport_key.as_str()),
            (&badv1, "traefik.port"),
        ]
        .iter()
        .all(|(svc, key)| has_issue(&v, &format!("swarm service {svc}"), key));
        found.then_some(v)
    });
    assert!(
        issues.is_some(),
        "/api/issues lacks the label errors: {:?}",
        get(api_port, "localhost", "/api/issues").map(|r| r.body)
    );
    let noport_line = env
        .wait_log(
            &[&format!("swarm service {noport}"), "port is missing"],
            Duration::from_secs(2),
        )
        .is_some();
    assert!(noport_line, "the missing port is not explained");
    for host in ["noport.test", "badv1.test"] {
        assert_eq!(env.get(host, "/").expect(host).status, 404, "{host}");
    }
    // The typo'd router is disabled; its service's default router (none:
    // a router was defined) does not exist either.
    assert_eq!(env.get("typo.test", "/").expect("typo").status, 404);
    let result = load.stop();
    assert!(result.ok > 20, "the load did not run: {result:?}");
    assert_eq!(result.failed, 0, "good service disturbed: {result:?}");
    assert_eq!(env.get("old.test", "/").expect("old").status, 200);

    // The API shows swarm routes in Traefik's shapes, with each server's task.
    // Router and service are named by the labels (`traefik.http.routers.good`).
    let router = get(api_port, "localhost", "/api/http/routers/good@swarm").expect("router API");
    assert_eq!(router.status, 200, "{}", router.body);
    let router: serde_json::Value = serde_json::from_str(&router.body).expect("router JSON");
    assert_eq!(router["provider"], "swarm");
    assert_eq!(router["status"], "enabled");
    assert_eq!(router["rule"], "Host(`good.test`)");
    let service = get(api_port, "localhost", "/api/http/services/good@swarm").expect("service API");
    let service: serde_json::Value = serde_json::from_str(&service.body).expect("service JSON");
    let ips = running_task_ips(&good, &env.network).expect("task ips");
    let status = service["serverStatus"].as_object().expect("serverStatus");
    for ip in &ips {
        assert_eq!(status[&format!("http://{ip}:80")], "UP", "{service}");
    }
    let server = &service["servers"][0];
    assert!(
        server["task"].as_str().is_some_and(|t| !t.is_empty()),
        "{service}"
    );
    assert!(
        server["node"].as_str().is_some_and(|n| !n.is_empty()),
        "{service}"
    );
    assert_eq!(server["slot"], 1, "{service}");
    let broken =
        get(api_port, "localhost", "/api/http/routers?status=disabled").expect("filtered routers");
    assert_eq!(broken.status, 200);

    // `escale check` with the swarm provider reads the same live labels.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_escale"))
        .args(["check", "--providers.swarm=true"])
        .output()
        .expect("run escale check");
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "check must fail:\n{report}");
    for (svc, key) in [
        (&typo, "traefik.http.routers.typo.rul"),
        (&badv1, "traefik.port"),
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.contains(&format!("swarm service {svc}")) && l.contains(key)),
            "check does not report {svc} {key}:\n{report}"
        );
    }
}

/// Point 8: `exposedByDefault=false` with `traefik.enable=true`, and constraints.
#[test]
fn exposed_by_default_and_constraints() {
    let _serial = serial();
    let mut env = Env::new("expose");
    env.start_proxy(&[
        "--providers.swarm=true",
        "--providers.swarm.exposedByDefault=false",
        "--providers.swarm.constraints=Label(`team`, `a`) && !LabelRegex(`tier`, `^test-`)",
    ]);
    let mut services = Vec::new();
    for (name, extra) in [
        ("enabled", vec![("traefik.enable", "true"), ("team", "a")]),
        ("notenabled", vec![("team", "a")]),
        ("otherteam", vec![("traefik.enable", "true"), ("team", "b")]),
        (
            "testtier",
            vec![
                ("traefik.enable", "true"),
                ("team", "a"),
                ("tier", "test-1"),
            ],
        ),
    ] {
        let mut labels = v3_host_labels(name, &format!("{name}.test"));
        labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        services.push(env.create_service(name, 1, &labels_of(&labels), &[]));
    }
    for svc in &services {
        env.wait_running(svc, 1);
    }
    env.wait_status("enabled.test", "/", 200, Duration::from_secs(5))
        .expect("enabled service answers");
    for host in ["notenabled.test", "otherteam.test", "testtier.test"] {
        assert_eq!(env.get(host, "/").expect(host).status, 404, "{host}");
    }
}

/// Point 6: Docker unreachable while serving, then back: routes keep
/// answering throughout, the outage and the recovery are logged, and changes
/// made while it was away are picked up when it returns.
///
/// A real dockerd restart cannot be survived by any proxy on a swarm node:
/// dockerd stops every container when it stops (live-restore is refused in
/// swarm mode: "--live-restore daemon configuration is incompatible with
/// swarm mode"), and the host-mode published port goes through its
/// userland proxy. So the proxy reaches the daemon through a socket relay,
/// and the relay is what goes away and comes back: to the provider that is
/// exactly a daemon restart (calls fail, the event stream drops).
#[test]
fn docker_outage_keeps_serving() {
    let _serial = serial();
    let mut env = Env::new("outage");
    let dir = std::env::temp_dir().join(format!("{}-relay", env.prefix));
    let mut relay = SocketRelay::start(dir.clone());
    let mount = format!("type=bind,src={},dst=/var/run/relay", dir.display());
    env.start_proxy_with(
        &["--mount", &mount],
        &[
            "--providers.swarm=true",
            "--providers.swarm.endpoint=unix:///var/run/relay/docker.sock",
        ],
    );
    let svc = env.create_service(
        "stay",
        2,
        &labels_of(&v3_host_labels("stay", "stay.test")),
        &[],
    );
    env.wait_running(&svc, 2);
    env.wait_status("stay.test", "/", 200, Duration::from_secs(5))
        .expect("stay answers");
    let load = Load::start(env.port, "stay.test", "/", 1, Duration::from_secs(120));

    relay.stop();
    let down = env.wait_log(&["docker unreachable"], Duration::from_secs(10));
    assert!(
        down.is_some(),
        "the outage is not logged:\n{}",
        env.proxy_logs()
    );
    // A change made while the daemon is away from the proxy.
    let after = env.create_service(
        "after",
        1,
        &labels_of(&v3_host_labels("after", "after.test")),
        &[],
    );
    env.wait_running(&after, 1);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        env.get("after.test", "/").expect("after").status,
        404,
        "the proxy cannot know of it yet"
    );

    let mut relay = SocketRelay::start(dir.clone());
    let took = env.wait_status("after.test", "/", 200, Duration::from_secs(15));
    let result = load.stop();
    relay.stop();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        took.is_some(),
        "a service created during the outage is not routed after it; logs:\n{}",
        env.proxy_logs()
    );
    eprintln!(
        "picked up {} after the daemon came back",
        fmt_ms(took.unwrap_or_default())
    );
    let up = env.wait_log(&["docker reachable again"], Duration::from_secs(20));
    assert!(
        up.is_some(),
        "the recovery is not logged; logs:\n{}",
        env.proxy_logs()
    );
    assert!(result.ok > 20, "the load did not run: {result:?}");
    assert_eq!(
        result.failed, 0,
        "requests failed during the outage: {result:?}"
    );
}

/// Whether the JSON holds an object with this `source` and `key`.
fn has_issue(v: &serde_json::Value, source: &str, key: &str) -> bool {
    match v {
        serde_json::Value::Object(o) => {
            (o.get("source").and_then(|s| s.as_str()) == Some(source)
                && o.get("key").and_then(|k| k.as_str()) == Some(key))
                || o.values().any(|c| has_issue(c, source, key))
        }
        serde_json::Value::Array(a) => a.iter().any(|c| has_issue(c, source, key)),
        _ => false,
    }
}
