//! Who can reach the admin side, with Traefik's semantics: `api.insecure`
//! serves it on the `traefik` entrypoint; otherwise only a user's router to
//! `api@internal` (with its own auth) exposes it. Also `/ping` and the
//! healthcheck command.
//!
//! "Another address" is 127.0.0.2: still loopback (the tests send nothing
//! off the machine), but a socket bound to 127.0.0.1 does not answer there,
//! while one bound to all interfaces does.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::*;

fn on_other_address(port: u16, path: &str) -> String {
    format!("http://127.0.0.2:{port}{path}")
}

fn simple_routes(a: &Whoami) -> String {
    routes_yaml(
        "    web:\n      rule: \"Host(`a.test`)\"\n      service: app",
        &lb("app", &[a.url()]),
        "    {}",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_api_is_served_on_the_traefik_entrypoint() {
    let a = Whoami::start("alpha");
    let port = free_port();
    let ep = format!("--entrypoints.traefik.address=:{port}");
    let esc = Escale::start(&simple_routes(&a), &[&ep, "--api.insecure=true"]);
    esc.wait_listening(SocketAddr::from(([127, 0, 0, 1], port)));

    let r = request("GET", &on_other_address(port, "/api/overview"), &[], "")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "insecure: the user asked for it");
    let r = request("GET", &on_other_address(port, "/dashboard/"), &[], "")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<title>escale dashboard</title>"));
    let r = request("GET", &on_other_address(port, "/"), &[], "")
        .await
        .unwrap();
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "/dashboard/");
    // The API is not on the web entrypoint.
    assert_eq!(
        get(&esc.url("/api/overview"), "a.test")
            .await
            .echo("Name")
            .as_deref(),
        Some("alpha")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_insecure_nor_router_the_api_answers_nowhere() {
    let a = Whoami::start("alpha");
    let port = free_port();
    let ep = format!("--entrypoints.traefik.address=:{port}");
    let esc = Escale::start(
        &simple_routes(&a),
        &[&ep, "--api=true", "--api.dashboard=true", "--ping"],
    );
    esc.wait_listening(SocketAddr::from(([127, 0, 0, 1], port)));
    for host in ["127.0.0.1", "127.0.0.2"] {
        for path in [
            "/api/overview",
            "/api/rawdata",
            "/api/http/routers",
            "/dashboard/",
            "/",
        ] {
            let r = request("GET", &format!("http://{host}:{port}{path}"), &[], "")
                .await
                .unwrap();
            assert_eq!(r.status, 404, "{host}{path} must not answer: {}", r.body);
        }
    }
    // What the user did ask for (ping on an explicitly public entrypoint) works.
    let r = request("GET", &on_other_address(port, "/ping"), &[], "")
        .await
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "OK"));
}

/// escale creates the `traefik` entrypoint itself for ping/metrics: without
/// `api.insecure` it must listen on loopback only. Traefik's default is
/// `:8080`, so this needs the port free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_traefik_entrypoint_is_loopback_only() {
    let a = Whoami::start("alpha");
    assert!(
        std::net::TcpListener::bind("127.0.0.1:8080").is_ok(),
        "port 8080 must be free for this test"
    );
    let esc = Escale::start(&simple_routes(&a), &["--ping", "--api=true"]);
    esc.wait_listening(SocketAddr::from(([127, 0, 0, 1], 8080)));
    let r = request("GET", "http://127.0.0.1:8080/ping", &[], "")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let other = request("GET", "http://127.0.0.2:8080/ping", &[], "").await;
    assert!(
        other.is_err(),
        "nothing listens on other addresses: {other:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_router_to_api_internal() {
    // test:test, as an htpasswd SHA1 entry.
    let routes = routes_yaml(
        r#"    admin-api:
      rule: "Host(`admin.test`) && (PathPrefix(`/api`) || PathPrefix(`/dashboard`))"
      service: api@internal
      middlewares: [auth]
    admin-dash:
      rule: "Host(`admin.test`) && PathPrefix(`/dashboard`)"
      service: dashboard@internal
      middlewares: [auth]"#,
        "    {}",
        r#"    auth:
      basicAuth:
        users: ["test:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="]"#,
    );
    let esc = Escale::start(&routes, &["--api=true"]);
    let url = esc.url("/api/overview");
    wait_status(
        "admin router",
        &url,
        "admin.test",
        401,
        Duration::from_secs(10),
    )
    .await;
    let denied = request("GET", &url, &[("host", "admin.test")], "")
        .await
        .unwrap();
    assert_eq!(denied.status, 401);
    assert!(denied.headers.contains_key("www-authenticate"));
    let wrong = request(
        "GET",
        &url,
        &[
            ("host", "admin.test"),
            ("authorization", "Basic dGVzdDp3cm9uZw=="),
        ],
        "",
    )
    .await
    .unwrap();
    assert_eq!(wrong.status, 401);
    let ok = request(
        "GET",
        &url,
        &[
            ("host", "admin.test"),
            ("authorization", "Basic dGVzdDp0ZXN0"),
        ],
        "",
    )
    .await
    .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);
    let overview: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(overview["http"]["routers"]["total"], 2);
    let dash = request(
        "GET",
        &esc.url("/dashboard/"),
        &[
            ("host", "admin.test"),
            ("authorization", "Basic dGVzdDp0ZXN0"),
        ],
        "",
    )
    .await
    .unwrap();
    assert_eq!(dash.status, 200);
    assert!(dash.body.contains("escale dashboard"));
    let dash = request(
        "GET",
        &esc.url("/dashboard/"),
        &[("host", "admin.test")],
        "",
    )
    .await
    .unwrap();
    assert_eq!(dash.status, 401);
    // Not insecure: no traefik entrypoint was created at all.
    let eps = request(
        "GET",
        &esc.url("/api/entrypoints"),
        &[
            ("host", "admin.test"),
            ("authorization", "Basic dGVzdDp0ZXN0"),
        ],
        "",
    )
    .await
    .unwrap();
    assert!(!eps.body.contains("\"traefik\""), "{}", eps.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_turns_503_while_draining_and_healthcheck_follows() {
    let a = Whoami::start("alpha");
    let port = free_port();
    let ep = format!("--entrypoints.traefik.address=127.0.0.1:{port}");
    let grace = "--entrypoints.traefik.transport.lifeCycle.requestAcceptGraceTimeout=3s";
    let mut esc = Escale::start(&simple_routes(&a), &[&ep, grace, "--ping"]);
    let admin = SocketAddr::from(([127, 0, 0, 1], port));
    esc.wait_listening(admin);

    let healthcheck = |ep: &str| {
        Command::new(env!("CARGO_BIN_EXE_escale"))
            .args(["healthcheck", "--ping", ep])
            .output()
            .expect("run escale healthcheck")
    };
    let ok = healthcheck(&ep);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let ping = format!("http://{admin}/ping");
    assert_eq!(request("GET", &ping, &[], "").await.unwrap().status, 200);
    esc.proc.terminate();
    eventually(
        "ping 503 while draining",
        Duration::from_secs(3),
        || async {
            request("GET", &ping, &[], "")
                .await
                .map(|r| r.status == 503)
                .unwrap_or(false)
        },
    )
    .await;
    let draining = healthcheck(&ep);
    assert_eq!(draining.status.code(), Some(1), "unhealthy while draining");
    assert!(esc.proc.wait_exit(Duration::from_secs(15)).is_some());
    let gone = healthcheck(&ep);
    assert_eq!(gone.status.code(), Some(1), "nothing listening");
}
