//! The admin API against a running proxy with file routes: Traefik's paths
//! and shapes, pagination and filters, errors with their keys, escale's
//! extras, and the event stream.

mod admin_support;
mod common;

use std::time::Duration;

use admin_support::*;
use common::*;
use serde_json::Value;

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|o| o["name"].as_str().unwrap_or("").to_string())
        .collect()
}

fn yaml(a: &Whoami, b: &Whoami) -> String {
    routes_yaml(
        r#"    web:
      rule: "Host(`a.test`)"
      service: app
    api:
      rule: "Host(`b.test`) && PathPrefix(`/v1`)"
      priority: 50
      entryPoints: [web]
      middlewares: [strip]
      service: app
    broken:
      rule: "Hots(`x.test`)"
      service: app
    orphan:
      rule: "Host(`orphan.test`)"
      service: missing"#,
        &lb("app", &[a.url(), b.url()]),
        r#"    strip:
      stripPrefix:
        prefixes: ["/v1"]
    unused:
      addPrefix:
        prefix: "/x""#,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_shapes_pagination_and_filters() {
    let a = Whoami::start("alpha");
    let b = Whoami::start("beta");
    let p = AdminProxy::start(&yaml(&a, &b), &["--api.insecure=true", "--ping"]);
    p.routed("a.test").await;

    // Overview: Traefik's sections and features.
    let o = p.json("/api/overview").await;
    assert_eq!(o["http"]["routers"]["errors"], 2, "{o}");
    assert_eq!(o["http"]["middlewares"]["total"], 2);
    assert_eq!(o["tcp"]["routers"]["total"], 0);
    assert_eq!(o["udp"]["services"]["total"], 0);
    assert_eq!(o["features"]["metrics"], "");
    assert_eq!(o["providers"], serde_json::json!(["File"]));
    assert_eq!(o["servers"]["up"], 2);

    // Routers: qualified names, provider, status, error, using, priorityStr.
    let all = p.get("/api/http/routers").await;
    assert_eq!(all.status, 200);
    assert_eq!(all.headers["content-type"], "application/json");
    assert_eq!(all.headers["x-next-page"], "1");
    let routers: Value = serde_json::from_str(&all.body).unwrap();
    assert_eq!(
        names(&routers),
        vec![
            "api@file",
            "api@internal",
            "broken@file",
            "dashboard@internal",
            "orphan@file",
            "ping@internal",
            "web@file"
        ]
    );
    let web = &routers[6];
    assert_eq!(web["provider"], "file");
    assert_eq!(web["status"], "enabled");
    assert_eq!(web["rule"], "Host(`a.test`)");
    assert_eq!(web["service"], "app@file");
    assert_eq!(web["entryPoints"], serde_json::json!(["web"]));
    assert_eq!(web["using"], serde_json::json!(["web"]));
    assert_eq!(web["priorityStr"], "0");
    assert!(web.get("error").is_none());
    let api = &routers[0];
    assert_eq!(api["priority"], 50);
    assert_eq!(api["priorityStr"], "50");
    let internal = &routers[1];
    assert_eq!(internal["provider"], "internal");
    assert_eq!(internal["entryPoints"], serde_json::json!(["traefik"]));
    assert_eq!(internal["service"], "api@internal");
    let broken = &routers[2];
    assert_eq!(broken["status"], "disabled");
    assert!(
        broken["error"][0].as_str().unwrap().contains("Hots"),
        "{broken}"
    );
    assert_eq!(routers[4]["status"], "disabled");

    // Pagination, as Traefik: X-Next-Page, 400 past the end.
    let page1 = p.get("/api/http/routers?per_page=3").await;
    assert_eq!(page1.headers["x-next-page"], "2");
    assert_eq!(
        names(&serde_json::from_str(&page1.body).unwrap()),
        vec!["api@file", "api@internal", "broken@file"]
    );
    let page3 = p.get("/api/http/routers?per_page=3&page=3").await;
    assert_eq!(page3.headers["x-next-page"], "1");
    assert_eq!(
        names(&serde_json::from_str(&page3.body).unwrap()),
        vec!["web@file"]
    );
    let past = p.get("/api/http/routers?per_page=3&page=4").await;
    assert_eq!(past.status, 400);
    assert_eq!(
        past.body.trim(),
        r#"{"message":"invalid request: page: 4, per_page: 3"}"#
    );
    assert_eq!(p.get("/api/http/routers?page=0").await.status, 400);

    // Filters.
    let f = p.json("/api/http/routers?status=disabled").await;
    assert_eq!(names(&f), vec!["broken@file", "orphan@file"]);
    let f = p.json("/api/http/routers?search=B.TEST").await;
    assert_eq!(
        names(&f),
        vec!["api@file"],
        "search is case-insensitive, on rule and name"
    );
    let f = p.json("/api/http/routers?search=orphan").await;
    assert_eq!(names(&f), vec!["orphan@file"]);
    let f = p.json("/api/http/routers?serviceName=app@file").await;
    assert_eq!(names(&f), vec!["api@file", "broken@file", "web@file"]);
    let f = p.json("/api/http/routers?middlewareName=strip@file").await;
    assert_eq!(names(&f), vec!["api@file"]);
    let f = p
        .json("/api/http/routers?sortBy=priority&direction=desc&search=file")
        .await;
    assert_eq!(names(&f)[0], "api@file", "{f}");

    // One router; unknown names are 404 with Traefik's message.
    let one = p.json("/api/http/routers/web@file").await;
    assert_eq!(one["name"], "web@file");
    let missing = p.get("/api/http/routers/nope@file").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body.trim(),
        r#"{"message":"router not found: nope@file"}"#
    );

    // Services: serverStatus, usedBy, type, and escale's live figures.
    for _ in 0..10 {
        get(&p.esc.url("/"), "a.test").await;
    }
    let s = p.json("/api/http/services/app@file").await;
    assert_eq!(s["type"], "loadbalancer");
    assert_eq!(s["status"], "enabled");
    assert_eq!(s["provider"], "file");
    assert_eq!(
        s["usedBy"],
        serde_json::json!(["api@file", "broken@file", "web@file"])
    );
    assert_eq!(s["serverStatus"][a.url()], "UP");
    assert_eq!(s["serverStatus"][b.url()], "UP");
    assert_eq!(s["loadBalancer"]["passHostHeader"], true);
    let servers = s["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2);
    let total: u64 = servers
        .iter()
        .map(|x| x["requests"].as_u64().unwrap())
        .sum();
    assert!(total >= 10, "{s}");
    assert_eq!(servers[0]["status"], "UP");
    assert!(servers[0].get("inFlight").is_some());
    let list = p.json("/api/http/services?search=internal").await;
    assert_eq!(
        names(&list),
        vec![
            "api@internal",
            "dashboard@internal",
            "noop@internal",
            "ping@internal"
        ]
    );
    assert_eq!(p.get("/api/http/services/none@file").await.status, 404);

    // Rate and latency need a complete second in the window.
    let svc_url = "/api/http/services/app@file";
    eventually("live rate and p50", Duration::from_secs(5), || async {
        let s = p.json(svc_url).await;
        s["servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["rate"].as_f64().unwrap_or(0.0) > 0.0 && x["p50"].as_f64().is_some())
    })
    .await;

    // Middlewares.
    let m = p.json("/api/http/middlewares").await;
    assert_eq!(names(&m), vec!["strip@file", "unused@file"]);
    assert_eq!(m[0]["type"], "stripprefix");
    assert_eq!(m[0]["usedBy"], serde_json::json!(["api@file"]));
    assert_eq!(m[0]["stripPrefix"]["prefixes"], serde_json::json!(["/v1"]));
    let m = p.json("/api/http/middlewares/unused@file").await;
    assert_eq!(m["type"], "addprefix");
    assert!(m.get("usedBy").is_none());

    // Entrypoints.
    let eps = p.json("/api/entrypoints").await;
    assert_eq!(names(&eps), vec!["traefik", "web"]);
    let web_ep = p.json("/api/entrypoints/web").await;
    assert_eq!(web_ep["address"], p.esc.web.to_string());
    assert!(web_ep["transport"]["lifeCycle"]["graceTimeOut"].is_string());
    assert_eq!(p.get("/api/entrypoints/nope").await.status, 404);

    // Rawdata: maps keyed by qualified names, without representation fields.
    let raw = p.json("/api/rawdata").await;
    assert_eq!(raw["routers"]["web@file"]["status"], "enabled");
    assert!(raw["routers"]["web@file"].get("name").is_none());
    assert_eq!(raw["services"]["app@file"]["serverStatus"][a.url()], "UP");
    assert_eq!(raw["middlewares"]["strip@file"]["status"], "enabled");

    let v = p.json("/api/version").await;
    assert!(v["Version"].is_string() && v["startDate"].is_string());

    // TCP and UDP: nothing, in Traefik's shape.
    assert_eq!(p.json("/api/tcp/routers").await, serde_json::json!([]));
    assert_eq!(p.get("/api/udp/services/x@file").await.status, 404);

    // Read-only.
    assert_eq!(
        request("POST", &p.url("/api/http/routers"), &[], "{}")
            .await
            .unwrap()
            .status,
        405
    );
    assert_eq!(
        request("DELETE", &p.url("/api/http/routers/web@file"), &[], "")
            .await
            .unwrap()
            .status,
        405
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_with_keys_providers_and_ping() {
    let a = Whoami::start("alpha");
    let b = Whoami::start("beta");
    let p = AdminProxy::start(&yaml(&a, &b), &["--api.insecure=true", "--ping"]);
    p.routed("a.test").await;

    let issues = p.json("/api/issues").await;
    let list = issues.as_array().unwrap();
    let rule = list
        .iter()
        .find(|i| i["object"] == "broken@file")
        .unwrap_or_else(|| panic!("{issues}"));
    assert_eq!(rule["severity"], "error");
    assert_eq!(rule["key"], "rule");
    assert_eq!(rule["provider"], "file");
    let svc = list
        .iter()
        .find(|i| i["object"] == "orphan@file")
        .unwrap_or_else(|| panic!("{issues}"));
    assert_eq!(svc["key"], "service");
    assert!(svc["message"].as_str().unwrap().contains("missing@file"));
    let filtered = p.json("/api/issues?search=orphan&severity=error").await;
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    assert_eq!(
        p.json("/api/issues?severity=warning")
            .await
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["object"] == "orphan@file")
            .count(),
        0
    );

    let providers = p.json("/api/providers").await;
    let file = &providers[0];
    assert_eq!(file["name"], "file");
    assert_eq!(file["connected"], true);
    assert!(file["syncs"].as_u64().unwrap() >= 1);
    assert!(file["lastSync"].is_string());
    assert_eq!(file["routers"], 4);
    assert_eq!(file["servers"], 2);
    assert_eq!(file["errors"], 2);
    assert_eq!(file["issues"].as_array().unwrap().len(), 2);
    assert_eq!(providers.as_array().unwrap().len(), 1, "internal is hidden");
    assert_eq!(p.json("/api/providers/file").await["name"], "file");

    let ping = p.get("/ping").await;
    assert_eq!((ping.status, ping.body.as_str()), (200, "OK"));
    // /ping lives on the traefik entrypoint only: on web, it is the app's.
    assert!(
        get(&p.esc.url("/ping"), "a.test")
            .await
            .echo("Name")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_reports_added_routes() {
    let a = Whoami::start("alpha");
    let b = Whoami::start("beta");
    let p = AdminProxy::start(&yaml(&a, &b), &["--api.insecure=true"]);
    p.routed("a.test").await;

    let mut events = EventStream::open(p.admin).await;
    events
        .until("hello", Duration::from_secs(5), |s| {
            s.contains("event: hello")
        })
        .await;
    assert!(events.seen.contains("text/event-stream"), "{}", events.seen);

    let routers = "    web:\n      rule: \"Host(`a.test`)\"\n      service: app\n    fresh:\n      rule: \"Host(`fresh.test`)\"\n      service: app";
    p.esc.write_dynamic(&routes_yaml(
        routers,
        &lb("app", &[a.url(), b.url()]),
        "    {}",
    ));
    events
        .until("config event", Duration::from_secs(10), |s| {
            s.contains("event: config") && s.contains("fresh@file")
        })
        .await;
    let line = events
        .seen
        .lines()
        .find(|l| l.starts_with("data: ") && l.contains("fresh@file"))
        .unwrap();
    let ev: Value = serde_json::from_str(&line[6..]).unwrap();
    let changes = ev["changes"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c["kind"] == "router" && c["name"] == "fresh@file" && c["action"] == "added")
    );
    assert!(
        changes.iter().any(|c| c["kind"] == "router"
            && c["name"] == "broken@file"
            && c["action"] == "removed")
    );
    assert_eq!(ev["errors"], 0);

    // Live figures follow every few seconds.
    events
        .until("stats event", Duration::from_secs(6), |s| {
            s.contains("event: stats")
        })
        .await;
}

/// Reading the files raises watch events too: a change must cost one
/// reload, not a reload loop that burns a core forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_change_is_read_a_few_times_not_forever() {
    let a = Whoami::start("alpha");
    let yaml = |host: &str| {
        routes_yaml(
            &format!("    r:\n      rule: \"Host(`{host}`)\"\n      service: a"),
            &lb("a", &[a.url()]),
            "    {}",
        )
    };
    let p = AdminProxy::start(&yaml("one.test"), &["--api.insecure=true"]);
    let url = p.esc.url("/");
    wait_status(
        "first config",
        &url,
        "one.test",
        200,
        Duration::from_secs(5),
    )
    .await;
    p.esc.write_dynamic(&yaml("two.test"));
    wait_status(
        "changed config",
        &url,
        "two.test",
        200,
        Duration::from_secs(5),
    )
    .await;
    let events = |v: Value| v["events"].as_u64().unwrap_or(u64::MAX);
    let settled = events(p.json("/api/providers/file").await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = events(p.json("/api/providers/file").await);
    assert!(
        settled <= 6 && later == settled,
        "the file provider keeps reacting: {settled} events, then {later}"
    );
}
