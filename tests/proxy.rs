//! Black-box tests of the proxy: the real escale binary, real whoami
//! backends, a file provider, all on 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::AsyncWriteExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_host_path_and_priority() {
    let a = Whoami::start("alpha");
    let b = Whoami::start("beta");
    let yaml = routes_yaml(
        r#"    byhost:
      rule: "Host(`a.test`)"
      service: a
    api:
      rule: "Host(`b.test`) && PathPrefix(`/api`)"
      service: b
    bhost:
      rule: "Host(`b.test`)"
      service: a
    catchall:
      rule: "PathPrefix(`/`)"
      priority: 1
      service: b
    pinned:
      rule: "PathPrefix(`/pinned`)"
      priority: 1000
      service: a"#,
        &format!("{}{}", lb("a", &[a.url()]), lb("b", &[b.url()])),
        "    {}",
    );
    let esc = Escale::start(&yaml, &[]);
    esc.routed("a.test", Duration::from_secs(5)).await;

    let expectations = [
        ("/", "a.test", "alpha", "exact host"),
        (
            "/",
            "A.TEST:8080",
            "alpha",
            "host is case- and port-insensitive",
        ),
        ("/api/x", "b.test", "beta", "longer rule wins"),
        ("/other", "b.test", "alpha", "host rule without path"),
        ("/zzz", "unknown.test", "beta", "catch-all"),
        (
            "/pinned",
            "b.test",
            "alpha",
            "explicit priority wins over length",
        ),
    ];
    for (path, host, backend, why) in expectations {
        let answer = get(&esc.url(path), host).await;
        assert_eq!(
            answer.echo("Name").as_deref(),
            Some(backend),
            "{why}: {host}{path}"
        );
    }
    // The backend sees the client's Host (passHostHeader defaults to true).
    assert_eq!(
        get(&esc.url("/"), "a.test").await.echo("Host").as_deref(),
        Some("a.test")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_codes_are_classified() {
    let slow = Whoami::start("slow");
    let dead_port = free_port();
    let yaml = format!(
        r#"http:
  routers:
    refused:
      rule: "Host(`refused.test`)"
      service: refused
    empty:
      rule: "Host(`empty.test`)"
      service: empty
    slow:
      rule: "Host(`slow.test`)"
      service: slow
  services:
    refused:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:{dead_port}"
    empty:
      loadBalancer:
        servers: []
    slow:
      loadBalancer:
        serversTransport: quick
        servers:
          - url: "{}"
  serversTransports:
    quick:
      forwardingTimeouts:
        responseHeaderTimeout: 300ms
"#,
        slow.url()
    );
    let esc = Escale::start(&yaml, &[]);
    let url = esc.url("/");
    eventually("config applied", Duration::from_secs(5), || async {
        request("GET", &url, &[("host", "refused.test")], "")
            .await
            .map(|r| r.status != 404)
            .unwrap_or(false)
    })
    .await;
    let r = get(&esc.url("/"), "nothing.test").await;
    assert_eq!((r.status, r.body.as_str()), (404, "404 page not found\n"));
    assert_eq!(get(&esc.url("/"), "refused.test").await.status, 502);
    assert_eq!(get(&esc.url("/"), "empty.test").await.status, 503);
    let started = Instant::now();
    assert_eq!(get(&esc.url("/?wait=3000"), "slow.test").await.status, 504);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "504 comes from the 300ms timeout"
    );
    assert_eq!(
        get(&esc.url("/"), "slow.test").await.status,
        200,
        "fast requests still pass"
    );
    let log = esc.log_text();
    assert!(
        log.contains("refused@file") && log.contains(&format!("127.0.0.1:{dead_port}")),
        "failure log names service and server:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_and_forwarded_headers() {
    let w = Whoami::start("w");
    let yaml = routes_yaml(
        "    r:\n      rule: \"PathPrefix(`/`)\"\n      service: w",
        &lb("w", &[w.url()]),
        "    {}",
    );
    let untrusted = Escale::start(&yaml, &[]);
    let trusted = Escale::start(
        &yaml,
        &["--entrypoints.web.forwardedHeaders.trustedIPs=127.0.0.1/32"],
    );
    for esc in [&untrusted, &trusted] {
        let url = esc.url("/");
        wait_status("config applied", &url, "", 200, Duration::from_secs(5)).await;
    }
    let forged = [
        ("host", "site.test"),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-real-ip", "203.0.113.7"),
        ("x-forwarded-proto", "https"),
        ("connection", "keep-alive, x-secret"),
        ("x-secret", "must-not-pass"),
        ("keep-alive", "timeout=5"),
        ("x-normal", "passes"),
    ];
    let r = request("GET", &untrusted.url("/"), &forged, "")
        .await
        .unwrap();
    assert_eq!(
        r.echo("X-Forwarded-For").as_deref(),
        Some("127.0.0.1"),
        "{}",
        r.body
    );
    assert_eq!(r.echo("X-Real-Ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(r.echo("X-Forwarded-Proto").as_deref(), Some("http"));
    assert_eq!(r.echo("X-Forwarded-Host").as_deref(), Some("site.test"));
    // As Traefik: the Host's port, else the scheme's default port.
    assert_eq!(r.echo("X-Forwarded-Port").as_deref(), Some("80"));
    assert!(r.echo("X-Forwarded-Server").is_some());
    assert_eq!(r.echo("X-Secret"), None, "Connection-named header removed");
    assert_eq!(r.echo("Keep-Alive"), None);
    assert_eq!(r.echo("X-Normal").as_deref(), Some("passes"));

    let r = request("GET", &trusted.url("/"), &forged, "")
        .await
        .unwrap();
    assert_eq!(
        r.echo("X-Forwarded-For").as_deref(),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(r.echo("X-Real-Ip").as_deref(), Some("203.0.113.7"));
    assert_eq!(r.echo("X-Forwarded-Proto").as_deref(), Some("https"));
    assert_eq!(r.echo("X-Secret"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_client_is_served() {
    let w = Whoami::start("w");
    let yaml = routes_yaml(
        "    r:\n      rule: \"Host(`h2.test`)\"\n      service: w",
        &lb("w", &[w.url()]),
        "    {}",
    );
    let esc = Escale::start(&yaml, &[]);
    let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build_http();
    let uri: http::Uri = format!("http://h2.test:{}/h2path", esc.web.port())
        .parse()
        .unwrap();
    // Connect to escale while asking for the h2.test authority.
    let mut ok = false;
    for _ in 0..100 {
        let req = http::Request::builder()
            .uri(esc.url("/h2path"))
            .header("host", "h2.test")
            .version(http::Version::HTTP_2)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let _ = &uri;
        if let Ok(res) = client.request(req).await {
            assert_eq!(res.version(), http::Version::HTTP_2);
            if res.status() == 200 {
                use http_body_util::BodyExt;
                let body = res.into_body().collect().await.unwrap().to_bytes();
                let body = String::from_utf8_lossy(&body);
                assert!(body.contains("GET /h2path HTTP/1.1"), "{body}");
                ok = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(ok, "h2c request through escale");
}

/// The protocol of a plain connection is told from its first bytes; a
/// request or an HTTP/2 preface split across TCP segments still lands on the
/// right protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_told_from_first_bytes_even_when_split() {
    use tokio::io::AsyncReadExt as _;
    let (_w, esc) = one_host_route("split.test").await;

    // HTTP/1.1 whose first segment ("P") is also the preface's first byte.
    let mut s = tokio::net::TcpStream::connect(esc.web).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(b"P").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(b"OST /split HTTP/1.1\r\nHost: split.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        .await
        .unwrap();
    let answer = answer_until_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("POST /split HTTP/1.1"), "{answer}");

    // The HTTP/2 preface in two segments, then an empty SETTINGS frame: the
    // server answers with its own SETTINGS frame (type 4), not HTTP/1.
    let mut s = tokio::net::TcpStream::connect(esc.web).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(b"\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut frame_head = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut frame_head))
        .await
        .expect("answer in time")
        .unwrap();
    assert_eq!(frame_head[3], 4, "a SETTINGS frame: {frame_head:?}");
}

/// A whoami behind escale, routed by `Host(host)`, once the route answers.
async fn one_host_route(host: &str) -> (Whoami, Escale) {
    let w = Whoami::start("w");
    let rule = format!("    r:\n      rule: \"Host(`{host}`)\"\n      service: w");
    let yaml = routes_yaml(&rule, &lb("w", &[w.url()]), "    {}");
    let esc = Escale::start(&yaml, &[]);
    esc.routed(host, Duration::from_secs(5)).await;
    (w, esc)
}

/// Everything the server sends until it closes, within 5 s.
async fn answer_until_close(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer))
        .await
        .expect("answer in time")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// escale's listening sockets delay a new connection's first ACK, so that
/// the response carries it (`app::listening`). A client with Nagle's
/// algorithm on that writes a request's head and body apart holds the body
/// until that ACK: the kernel's delayed-ACK timer (40 ms) bounds the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nagle_client_writing_head_and_body_apart_is_answered() {
    let (_w, esc) = one_host_route("nagle.test").await;

    let mut s = tokio::net::TcpStream::connect(esc.web).await.unwrap();
    s.set_nodelay(false).unwrap();
    let started = std::time::Instant::now();
    s.write_all(b"POST /nagle HTTP/1.1\r\nHost: nagle.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    s.write_all(b"hi").await.unwrap();
    let answer = answer_until_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("POST /nagle HTTP/1.1"), "{answer}");
    // Generous: the ACK timer is 40 ms; a stuck body would take the 5 s.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered after {:?}",
        started.elapsed()
    );
}

/// Requests answered before their body was read: the client still sending
/// the body must be able to finish it and read the answer. Closing at once
/// would make the kernel answer the rest of the body with a reset, and the
/// client's writes fail before it reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_answered_before_their_body_is_read_get_their_answer() {
    let w = Whoami::start("w");
    let yaml = routes_yaml(
        "    auth:\n      rule: \"Host(`auth.test`)\"\n      service: w\n      middlewares: [auth]
    early:\n      rule: \"Host(`early.test`)\"\n      service: w",
        &lb("w", &[w.url()]),
        "    auth:\n      basicAuth:\n        users: [\"sha:{SHA}0DPiKuNIrrVmD8IUCuw1hQxNqZc=\"]",
    );
    let esc = Escale::start(&yaml, &[]);
    esc.routed("early.test", Duration::from_secs(5)).await;

    // escale answers (basic auth) without reading the body.
    let mut s = tokio::net::TcpStream::connect(esc.web).await.unwrap();
    let answer = upload_until_close(&mut s, "auth.test", "/upload", 32 << 20).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // The backend answers without reading the body, then closes its
    // connection, which resets what escale still sends it.
    let mut s = tokio::net::TcpStream::connect(esc.web).await.unwrap();
    let answer = upload_until_close(&mut s, "early.test", "/early?status=413", 32 << 20).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

/// Everything escale answers to `request`, sent raw on a new connection.
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    answer_until_close(&mut s).await
}

/// As RFC 9112 and Go's server (so Traefik): one valid Host, the target's
/// authority when the target is a URL, and targets a reverse proxy serves;
/// anything else gets a 400 naming the fault (501 for CONNECT, 417 for an
/// unknown expectation), unrouted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_addressed_wrongly_are_refused_with_the_reason() {
    let (_w, esc) = one_host_route("a.test").await;
    let refused = [
        (
            "GET / HTTP/1.1\r\n",
            "400 Bad Request: missing required Host header",
        ),
        (
            "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n",
            "400 Bad Request: too many Host headers",
        ),
        (
            "PUT / HTTP/1.1\r\nHost: a.test\r\nExpect: something\r\nContent-Length: 0\r\n",
            "417 Expectation Failed",
        ),
        (
            "GET / HTTP/1.1\r\nHost: a test\r\n",
            "400 Bad Request: malformed Host header",
        ),
        (
            "GET x HTTP/1.1\r\nHost: a.test\r\n",
            "400 Bad Request: invalid request target",
        ),
        (
            "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n",
            "501 Not Implemented",
        ),
    ];
    for (head, expected) in refused {
        let answer = raw_exchange(
            esc.web,
            format!("{head}Connection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {}", &expected[..3])),
            "{head:?}: {answer}"
        );
        assert!(answer.contains(expected), "{head:?}: {answer}");
    }
    // A URL as target: its host wins over the Host header, and is the
    // Host the backend sees.
    let answer = raw_exchange(
        esc.web,
        b"GET http://a.test/abs HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("GET /abs HTTP/1.1"), "{answer}");
    assert!(answer.contains("Host: a.test"), "{answer}");
    // HTTP/1.0 had no Host: no route matches, as with Traefik.
    let answer = raw_exchange(esc.web, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.0 404"), "{answer}");
}

/// A client's malformed request body is the client's fault: a 400, and the
/// backend, HTTP/1.1 or h2c, is neither blamed (ejected by passive health)
/// nor retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_body_is_the_clients_fault() {
    let w = Whoami::start("w");
    let services = format!(
        "{}\n{}",
        lb("h1", &[w.url()]),
        lb("h2", &[w.url().replace("http://", "h2c://")])
    );
    let yaml = routes_yaml(
        "    h1:\n      rule: \"Host(`h1.test`)\"\n      service: h1
    h2:\n      rule: \"Host(`h2.test`)\"\n      service: h2",
        &services,
        "    {}",
    );
    let esc = Escale::start(&yaml, &[]);
    for (host, cause) in [("h1.test", "chunk size"), ("h2.test", "HTTP/2 backend")] {
        esc.routed(host, Duration::from_secs(5)).await;
        for _ in 0..5 {
            let request = format!(
                "POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
            );
            let answer = raw_exchange(esc.web, request.as_bytes()).await;
            assert!(answer.starts_with("HTTP/1.1 400"), "{host}: {answer}");
            assert!(answer.contains("client request body"), "{host}: {answer}");
            assert!(
                answer.contains(cause),
                "{host}: the cause is named: {answer}"
            );
        }
    }
    let log = esc.log_text();
    assert!(!log.contains("ejected"), "{log}");
    assert!(!log.contains("backend attempt failed"), "{log}");
}

/// A backend on 127.0.0.1 that answers each connection's request with the
/// bytes `answer` gives for its path, then closes.
async fn raw_backend(answer: fn(&str) -> &'static [u8]) -> std::net::SocketAddr {
    raw_server(move |head| answer(head.split(' ').nth(1).unwrap_or("/")).to_vec()).await
}

/// What a backend answers is put in the form the client's HTTP/1.1 expects,
/// or refused when no client could use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_answers_are_normalized_or_refused() {
    let backend = raw_backend(|path| match path {
        // HTTP/1.0, the body until the close.
        "/http10" => b"HTTP/1.0 200 OK\r\n\r\nuntil close",
        // A value folded over two lines (obsolete, still sent by old servers).
        "/folded" => b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 2\r\n\r\nok",
        // A protocol switch the client did not ask for.
        "/switch" => {
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"
        }
        _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    })
    .await;
    let rule = "    r:\n      rule: \"Host(`raw.test`)\"\n      service: raw";
    let yaml = routes_yaml(rule, &lb("raw", &[format!("http://{backend}")]), "    {}");
    let esc = Escale::start(&yaml, &[]);
    esc.routed("raw.test", Duration::from_secs(5)).await;

    // The client speaks HTTP/1.1 and keeps its connection: escale answers
    // in HTTP/1.1 and chunks the body whose end was the backend's close.
    let mut s = tokio::net::TcpStream::connect(esc.web).await.unwrap();
    s.write_all(b"GET /http10 HTTP/1.1\r\nHost: raw.test\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.ends_with(b"0\r\n\r\n") {
        use tokio::io::AsyncReadExt as _;
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("answer in time")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("transfer-encoding: chunked"), "{answer}");
    assert!(answer.contains("until close"), "{answer}");

    let r = get(&esc.url("/folded"), "raw.test").await;
    assert_eq!(
        (r.status, r.headers["x-a"].as_bytes()),
        (200, &b"one two"[..])
    );

    let answer = raw_exchange(
        esc.web,
        b"GET /switch HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_drain_completes_in_flight_and_refuses_new() {
    let w = Whoami::start("w");
    let yaml = routes_yaml(
        "    r:\n      rule: \"PathPrefix(`/`)\"\n      service: w",
        &lb("w", &[w.url()]),
        "    {}",
    );
    let mut esc = Escale::start(&yaml, &[]);
    let url = esc.url("/");
    wait_status("config applied", &url, "", 200, Duration::from_secs(5)).await;
    let slow_url = esc.url("/?wait=1500");
    let in_flight = tokio::spawn(async move { request("GET", &slow_url, &[], "").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    esc.proc.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = tokio::net::TcpStream::connect(esc.web).await;
    assert!(
        refused.is_err(),
        "new connections are refused while draining"
    );
    let answer = in_flight
        .await
        .unwrap()
        .expect("in-flight request completes");
    assert_eq!(answer.status, 200);
    let status = esc
        .proc
        .wait_exit(Duration::from_secs(5))
        .expect("escale exits after draining");
    assert!(status.success(), "clean exit: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_and_removes_routes_without_failing_requests() {
    let a = Whoami::start("a");
    let b = Whoami::start("b");
    let base = |extra: &str| {
        routes_yaml(
            &format!("    stable:\n      rule: \"Host(`stable.test`)\"\n      service: a\n{extra}"),
            &format!("{}{}", lb("a", &[a.url()]), lb("b", &[b.url()])),
            "    {}",
        )
    };
    let esc = Escale::start(&base(""), &[]);
    esc.routed("stable.test", Duration::from_secs(5)).await;

    // Bounded load on the stable route while the file changes underneath.
    let load_url = esc.url("/");
    let load = tokio::spawn(async move {
        let (mut ok, mut failed) = (0u32, 0u32);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && ok + failed < 20_000 {
            match request("GET", &load_url, &[("host", "stable.test")], "").await {
                Ok(r) if r.status == 200 => ok += 1,
                _ => failed += 1,
            }
        }
        (ok, failed)
    });
    for i in 0..10 {
        let extra =
            format!("    added{i}:\n      rule: \"Host(`added{i}.test`)\"\n      service: b\n");
        esc.write_dynamic(&base(&extra));
        let added = esc.url("/");
        let host = format!("added{i}.test");
        wait_status(
            "new route answers",
            &added,
            &host,
            200,
            Duration::from_secs(2),
        )
        .await;
        if i > 0 {
            let old = format!("added{}.test", i - 1);
            let r = get(&esc.url("/"), &old).await;
            assert_eq!(r.status, 404, "removed route no longer answers");
        }
    }
    let (ok, failed) = load.await.unwrap();
    assert!(ok > 50, "load loop ran ({ok} ok)");
    assert_eq!(failed, 0, "zero failed requests during reloads ({ok} ok)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_file_keeps_last_good_configuration() {
    let a = Whoami::start("a");
    let good = routes_yaml(
        "    r:\n      rule: \"Host(`keep.test`)\"\n      service: a",
        &lb("a", &[a.url()]),
        "    {}",
    );
    let esc = Escale::start(&good, &[]);
    esc.routed("keep.test", Duration::from_secs(5)).await;
    esc.write_dynamic(
        "http:\n  routers:\n    r:\n      rule: \"Host(`keep.test`)\"\n     service: [broken\n",
    );
    let path = esc.dynamic_path().display().to_string();
    eventually("error is logged", Duration::from_secs(3), || {
        let log = esc.log_text();
        let path = path.clone();
        async move { log.contains(&path) && log.contains("line") }
    })
    .await;
    assert_eq!(
        get(&esc.url("/"), "keep.test").await.status,
        200,
        "last good config still serves"
    );
    // Fixing the file applies again.
    esc.write_dynamic(&good.replace("keep.test", "fixed.test"));
    esc.routed("fixed.test", Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_through_the_proxy() {
    use common::ws::{client_frame, server_frame, ws_connect};
    let w = Whoami::start("ws");
    let yaml = routes_yaml(
        "    r:\n      rule: \"Host(`ws.test`)\"\n      service: w",
        &lb("w", &[w.url()]),
        "    {}",
    );
    let esc = Escale::start(&yaml, &[]);
    esc.routed("ws.test", Duration::from_secs(5)).await;
    let mut s = ws_connect(esc.web, "ws.test").await;
    for msg in [&b"hello through escale"[..], &[7u8; 70_000][..]] {
        s.write_all(&client_frame(0x2, msg)).await.unwrap();
        let (fin, opcode, payload) =
            tokio::time::timeout(Duration::from_secs(5), server_frame(&mut s))
                .await
                .expect("echo arrives");
        assert_eq!((fin, opcode), (true, 0x2));
        assert_eq!(payload, msg);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middlewares_rewrite_as_configured() {
    let w = Whoami::start("mw");
    let yaml = routes_yaml(
        r#"    strip:
      rule: "Host(`mw.test`) && PathPrefix(`/api`)"
      service: w
      middlewares: [strip-api, add-headers]
    redirect:
      rule: "Host(`mw.test`) && PathPrefix(`/old`)"
      service: w
      middlewares: [to-new]
    secret:
      rule: "Host(`mw.test`) && PathPrefix(`/secret`)"
      service: w
      middlewares: [auth]"#,
        &lb("w", &[w.url()]),
        r#"    strip-api:
      stripPrefix:
        prefixes: ["/api"]
    add-headers:
      headers:
        customRequestHeaders:
          X-From-Proxy: "escale"
        customResponseHeaders:
          X-Served-By: "escale"
    to-new:
      redirectRegex:
        regex: "^http://([^/]+)/old/(.*)"
        replacement: "http://${1}/new/${2}"
        permanent: true
    auth:
      basicAuth:
        users: ["sha:{SHA}0DPiKuNIrrVmD8IUCuw1hQxNqZc="]
        headerField: X-Auth-User"#,
    );
    let esc = Escale::start(&yaml, &[]);
    let url = esc.url("/api/users?x=1");
    wait_status(
        "config applied",
        &url,
        "mw.test",
        200,
        Duration::from_secs(5),
    )
    .await;
    let r = get(&esc.url("/api/users?x=1"), "mw.test").await;
    assert_eq!(r.request_line().as_deref(), Some("GET /users?x=1 HTTP/1.1"));
    assert_eq!(r.echo("X-Forwarded-Prefix").as_deref(), Some("/api"));
    assert_eq!(r.echo("X-From-Proxy").as_deref(), Some("escale"));
    assert_eq!(r.headers["x-served-by"], "escale");

    let r = get(&esc.url("/old/page?q=2"), "mw.test").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "http://mw.test/new/page?q=2");

    assert_eq!(get(&esc.url("/secret"), "mw.test").await.status, 401);
    let r = request(
        "GET",
        &esc.url("/secret"),
        &[("host", "mw.test"), ("authorization", "Basic c2hhOmFkbWlu")],
        "",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.echo("X-Auth-User").as_deref(), Some("sha"));
}

/// A client that goes away before its answer is logged with Traefik's 499,
/// not forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_before_its_answer_is_logged_as_499() {
    let w = Whoami::start("w");
    let yaml = routes_yaml(
        "    r:\n      rule: \"Host(`gone.test`)\"\n      service: w",
        &lb("w", &[w.url()]),
        "    {}",
    );
    let esc = Escale::start(&yaml, &["--accesslog=true"]);
    esc.routed("gone.test", Duration::from_secs(5)).await;
    let mut s = tokio::net::TcpStream::connect(esc.web).await.unwrap();
    s.write_all(b"GET /slow?wait=3000 HTTP/1.1\r\nHost: gone.test\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(s);
    eventually(
        "a 499 line in the access log",
        Duration::from_secs(2),
        || {
            let log = esc.log_text();
            async move {
                log.lines().any(|l| {
                    l.contains("\"GET /slow?wait=3000 HTTP/1.1\" 499") && l.contains("\"r@file\"")
                })
            }
        },
    )
    .await;
}

/// compress: a large streamed answer arrives encoded as the client asked,
/// over HTTP/1.1 and HTTP/2, and decodes to exactly what the backend sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_answers_decode_to_the_backends_bytes() {
    use http_body_util::BodyExt as _;
    use std::io::Read as _;
    let w = Whoami::start("w");
    let yaml = routes_yaml(
        "    r:\n      rule: \"Host(`zip.test`)\"\n      service: w\n      middlewares: [zip]",
        &lb("w", &[w.url()]),
        "    zip:\n      compress: {}",
    );
    let esc = Escale::start(&yaml, &[]);
    esc.routed("zip.test", Duration::from_secs(5)).await;
    const SIZE: usize = 3 << 20;
    let expected: Vec<u8> = (b'a'..=b'z').cycle().take(SIZE).collect();
    let h1 = client();
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    for (accept, encoding) in [("gzip", "gzip"), ("br;q=1, gzip;q=0.5", "br")] {
        for (protocol, client) in [("HTTP/1.1", &h1), ("HTTP/2", &h2)] {
            let req = http::Request::get(esc.url(&format!("/data?size={SIZE}")))
                .header("host", "zip.test")
                .header("accept-encoding", accept)
                .body(Default::default())
                .unwrap();
            let res = client.request(req).await.unwrap();
            assert_eq!(res.status(), 200, "{protocol} {accept}");
            assert_eq!(
                res.headers()["content-encoding"],
                encoding,
                "{protocol} {accept}"
            );
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert!(
                body.len() < SIZE / 50,
                "{protocol} {accept}: {} bytes",
                body.len()
            );
            let mut decoded = Vec::new();
            if encoding == "gzip" {
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut decoded)
                    .unwrap();
            } else {
                brotli::Decompressor::new(&body[..], 4096)
                    .read_to_end(&mut decoded)
                    .unwrap();
            }
            assert!(
                decoded == expected,
                "{protocol} {accept}: {} bytes decoded",
                decoded.len()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_backend_and_access_log() {
    let w = Whoami::start("h2c-backend");
    let yaml = routes_yaml(
        "    r:\n      rule: \"Host(`h2c.test`)\"\n      service: w",
        &lb("w", &[w.url().replace("http://", "h2c://")]),
        "    {}",
    );
    let esc = Escale::start(&yaml, &["--accesslog=true"]);
    let url = esc.url("/over-h2c?x=1");
    wait_status(
        "h2c backend route",
        &url,
        "h2c.test",
        200,
        Duration::from_secs(5),
    )
    .await;
    let r = get(&url, "h2c.test").await;
    assert_eq!(
        r.request_line().as_deref(),
        Some("GET /over-h2c?x=1 HTTP/2.0"),
        "the backend was reached over HTTP/2: {}",
        r.body
    );
    assert_eq!(r.echo("Host").as_deref(), Some("h2c.test"));
    // The access log, in Traefik's common format, names router and server.
    let server = w.url().replace("http://", "h2c://");
    eventually("access log line", Duration::from_secs(3), || {
        let log = esc.log_text();
        let server = server.clone();
        async move {
            log.lines().any(|l| {
                l.contains("\"GET /over-h2c?x=1 HTTP/1.1\" 200")
                    && l.contains("\"r@file\"")
                    && l.contains(&format!("\"{server}\""))
            })
        }
    })
    .await;
}

/// `errors`: a caught status gets the page service's answer with that
/// status (or its rewrite); other answers pass untouched; a middleware
/// naming a missing service disables only its router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_pages_replace_caught_answers() {
    let app = Whoami::start("app");
    let pages = Whoami::start("pages");
    let dead_port = free_port();
    let routers = r#"    app:
      rule: "Host(`e.test`)"
      middlewares: [oops, hdr]
      service: app
    down:
      rule: "Host(`down.test`)"
      middlewares: [oops]
      service: dead
    broken:
      rule: "Host(`broken.test`)"
      middlewares: [ghostly]
      service: app"#;
    let services = format!(
        "{}{}{}",
        lb("app", &[app.url()]),
        lb("pages", &[pages.url()]),
        lb("dead", &[format!("http://127.0.0.1:{dead_port}")])
    );
    let middlewares = r#"    oops:
      errors:
        status: ["404", "418", "500-599"]
        statusRewrites:
          "418": 404
        service: pages
        query: "/{status}.html?was={originalStatus}&from={url}"
    hdr:
      headers:
        customResponseHeaders:
          X-Inner: "set"
    ghostly:
      errors:
        status: ["500-599"]
        service: ghost"#;
    let esc = Escale::start(&routes_yaml(routers, &services, middlewares), &[]);
    esc.routed("e.test", Duration::from_secs(5)).await;

    let ok = get(&esc.url("/fine"), "e.test").await;
    assert_eq!((ok.status, ok.echo("Name")), (200, Some("app".into())));
    assert_eq!(ok.headers["x-inner"], "set");
    let passed = get(&esc.url("/?status=400"), "e.test").await;
    assert_eq!(
        (passed.status, passed.echo("Name")),
        (400, Some("app".into()))
    );

    let caught = request(
        "POST",
        &esc.url("/x?status=503"),
        &[("host", "e.test"), ("x-custom", "kept")],
        "a body the page request does not carry",
    )
    .await
    .unwrap();
    assert_eq!(caught.status, 503, "{}", caught.body);
    assert_eq!(caught.echo("Name").as_deref(), Some("pages"));
    assert_eq!(
        caught.request_line().as_deref(),
        Some("GET /503.html?was=503&from=http%3A%2F%2Fe.test%2Fx%3Fstatus%3D503 HTTP/1.1")
    );
    assert_eq!(caught.echo("Host").as_deref(), Some("e.test"));
    assert_eq!(caught.echo("X-Custom").as_deref(), Some("kept"));
    assert_eq!(caught.echo("Content-Length"), None);
    // The inner headers middleware shaped the answer the page replaced.
    assert!(caught.headers.get("x-inner").is_none());

    let rewritten = get(&esc.url("/?status=418"), "e.test").await;
    assert_eq!(rewritten.status, 404);
    assert!(
        rewritten
            .request_line()
            .is_some_and(|l| l.starts_with("GET /404.html?was=418&")),
        "{}",
        rewritten.body
    );

    // escale's own 502 for a backend that refuses is caught too.
    let down = get(&esc.url("/"), "down.test").await;
    assert_eq!(
        (down.status, down.echo("Name")),
        (502, Some("pages".into()))
    );
    assert!(
        down.request_line()
            .is_some_and(|l| l.starts_with("GET /502.html?was=502&"))
    );

    // The router whose middleware names no service is disabled, with the
    // reason; the others serve.
    let broken = get(&esc.url("/"), "broken.test").await;
    assert_eq!(broken.status, 404);
    let log = esc.log_text();
    assert!(
        log.contains("errors: the service") && log.contains("ghost@file"),
        "{log}"
    );
}
