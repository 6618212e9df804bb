//! Black-box tests of the `whoami` example backend, run as a real process on 127.0.0.1.
//!
//! Cargo gives integration tests no path to example binaries (`CARGO_BIN_EXE_*` covers
//! `[[bin]]` only), and `cargo test --test whoami` does not build examples. So the first
//! test to need it runs `$CARGO build --example whoami` with the same profile (a no-op when
//! it is fresh; cargo has released its build lock while tests run) and takes the
//! executable path from cargo's JSON messages.

mod common;

use common::ws::{client_frame, server_frame, ws_connect};
use common::{spawn_listening, whoami_bin};
use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

type Body = BoxBody<Bytes, std::io::Error>;

/// A running whoami process, killed on drop.
struct Whoami {
    child: Child,
    addr: SocketAddr,
}

impl Whoami {
    fn start(envs: &[(&str, &str)]) -> Whoami {
        let mut cmd = Command::new(whoami_bin());
        cmd.args(["--port", "0", "--bind", "127.0.0.1", "--grace", "10"])
            .env_remove("WHOAMI_PORT")
            .env_remove("WHOAMI_NAME")
            .env_remove("WHOAMI_ENV_PREFIX")
            .envs(envs.iter().copied());
        let (child, addr) = spawn_listening(cmd);
        Whoami { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("whoami did not exit within {limit:?}");
    }
}

impl Drop for Whoami {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(h2: bool) -> Client<HttpConnector, Body> {
    let mut builder = Client::builder(TokioExecutor::new());
    builder.http2_only(h2);
    builder.build_http()
}

fn empty() -> Body {
    Full::new(Bytes::new()).map_err(|e| match e {}).boxed()
}

fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).map_err(|e| match e {}).boxed()
}

async fn send(req: Request<Body>) -> (StatusCode, http::HeaderMap, Bytes) {
    send_with(&client(false), req).await
}

async fn send_with(
    client: &Client<HttpConnector, Body>,
    req: Request<Body>,
) -> (StatusCode, http::HeaderMap, Bytes) {
    let resp = tokio::time::timeout(Duration::from_secs(20), client.request(req))
        .await
        .expect("response in time")
        .expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, body)
}

async fn get(url: &str) -> (StatusCode, String) {
    let req = Request::get(url).body(empty()).expect("request");
    let (status, _, body) = send(req).await;
    (
        status,
        String::from_utf8(body.to_vec()).expect("utf-8 body"),
    )
}

#[tokio::test]
async fn echo_text_lists_identity_request_headers_and_env() {
    let w = Whoami::start(&[
        ("WHOAMI_NAME", "alpha"),
        ("WHOAMI_ENV_PREFIX", "TENANT_"),
        ("TENANT_DB", "mysql://db/ludo"),
        ("OTHER_VAR", "hidden"),
    ]);
    let req = Request::get(w.url("/some/path?x=1&y=2"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-multi", "a")
        .header("x-multi", "b")
        .body(empty())
        .expect("request");
    let (status, headers, body) = send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    let body = String::from_utf8(body.to_vec()).expect("utf-8");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "Name: alpha");
    assert!(lines[1].starts_with("Hostname: ") && lines[1].len() > "Hostname: ".len());
    assert!(lines.contains(&"IP: 127.0.0.1"), "{body}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("RemoteAddr: 127.0.0.1:")),
        "{body}"
    );
    assert!(lines.contains(&"GET /some/path?x=1&y=2 HTTP/1.1"), "{body}");
    assert!(
        lines.contains(&format!("Host: {}", w.addr).as_str()),
        "{body}"
    );
    assert!(lines.contains(&"X-Forwarded-For: 203.0.113.9"), "{body}");
    assert!(
        lines.contains(&"X-Multi: a") && lines.contains(&"X-Multi: b"),
        "{body}"
    );
    assert!(lines.contains(&"Env: TENANT_DB=mysql://db/ludo"), "{body}");
    assert!(!body.contains("OTHER_VAR"), "{body}");
    // The request line comes after the identity block, env lines come last.
    let req_line = lines.iter().position(|l| l.starts_with("GET ")).unwrap();
    let remote = lines
        .iter()
        .position(|l| l.starts_with("RemoteAddr"))
        .unwrap();
    assert!(remote < req_line);
    assert!(lines.last().unwrap().starts_with("Env: "));
}

#[tokio::test]
async fn api_answers_json() {
    let w = Whoami::start(&[
        ("WHOAMI_NAME", "beta"),
        ("WHOAMI_ENV_PREFIX", "APP_"),
        ("APP_MODE", "test"),
    ]);
    let req = Request::post(w.url("/api?q=1"))
        .header("x-test", "yes")
        .body(empty())
        .expect("request");
    let (status, headers, body) = send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["name"], "beta");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/api");
    assert_eq!(v["query"], "q=1");
    assert_eq!(v["proto"], "HTTP/1.1");
    assert_eq!(v["host"], w.addr.to_string());
    assert_eq!(v["headers"]["X-Test"], serde_json::json!(["yes"]));
    assert_eq!(v["env"], serde_json::json!({"APP_MODE": "test"}));
    assert!(
        v["ip"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("127.0.0.1"))
    );
    assert!(v["remoteAddr"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(!v["hostname"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let w = Whoami::start(&[]);
    let req = Request::get(w.url("/h2")).body(empty()).expect("request");
    let (status, _, body) = send_with(&client(true), req).await;
    assert_eq!(status, StatusCode::OK);
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert!(body.lines().any(|l| l == "GET /h2 HTTP/2.0"), "{body}");
    // No --name: no Name line.
    assert!(!body.contains("Name:"), "{body}");
}

#[tokio::test]
async fn health_can_be_toggled() {
    let w = Whoami::start(&[]);
    assert_eq!(get(&w.url("/health")).await, (StatusCode::OK, "ok".into()));

    let set = |code: &'static str| {
        Request::post(w.url("/health"))
            .body(full(code))
            .expect("request")
    };
    let (status, _, _) = send(set("500")).await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..2 {
        let (status, _) = get(&w.url("/health")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    // Other paths are unaffected.
    assert_eq!(get(&w.url("/")).await.0, StatusCode::OK);

    let (status, _, _) = send(set("200")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(get(&w.url("/health")).await.0, StatusCode::OK);

    let (status, _, _) = send(set("not a code")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(get(&w.url("/health")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn wait_delays_and_status_overrides() {
    let w = Whoami::start(&[]);
    let start = Instant::now();
    let (status, body) = get(&w.url("/x?wait=300&status=418")).await;
    let took = start.elapsed();
    assert_eq!(status, StatusCode::IM_A_TEAPOT);
    assert!(took >= Duration::from_millis(300), "took {took:?}");
    assert!(
        body.contains("GET /x?wait=300&status=418 HTTP/1.1"),
        "{body}"
    );

    let start = Instant::now();
    assert_eq!(get(&w.url("/x")).await.0, StatusCode::OK);
    assert!(start.elapsed() < Duration::from_millis(300));

    assert_eq!(
        get(&w.url("/?status=503")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get(&w.url("/?status=abc")).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(get(&w.url("/?wait=abc")).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bench_is_tiny() {
    let w = Whoami::start(&[]);
    let req = Request::get(w.url("/bench"))
        .body(empty())
        .expect("request");
    let (status, headers, body) = send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"1");
    assert_eq!(headers["content-length"], "1");
    assert!(headers.get("content-type").is_none());
}

#[tokio::test]
async fn data_streams_exact_size_with_pattern() {
    let w = Whoami::start(&[]);
    for size in [0usize, 1, 65_519, 65_520, 65_521, 3_000_001] {
        let req = Request::get(w.url(&format!("/data?size={size}")))
            .body(empty())
            .expect("request");
        let (status, headers, body) = send(req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.len(), size, "size {size}");
        if size > 0 {
            assert_eq!(headers["transfer-encoding"], "chunked");
        }
        assert!(
            body.iter()
                .enumerate()
                .all(|(i, b)| *b == b'a' + (i % 26) as u8),
            "pattern broken for size {size}"
        );
    }
    assert_eq!(get(&w.url("/data")).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn upload_counts_streamed_body() {
    let w = Whoami::start(&[]);
    // 40 MiB in 64 KiB chunks, chunked transfer encoding (no content-length).
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
    let frames = (0..640).map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone())));
    let body = BoxBody::new(StreamBody::new(futures_util::stream::iter(frames)));
    let req = Request::post(w.url("/upload")).body(body).expect("request");
    let (status, _, body) = send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], (640u64 * 64 * 1024).to_string().as_bytes());

    let req = Request::put(w.url("/upload"))
        .body(full("hello"))
        .expect("request");
    assert_eq!(&send(req).await.2[..], b"5");

    assert_eq!(
        get(&w.url("/upload")).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn websocket_echoes_frames() {
    let w = Whoami::start(&[]);
    let mut s = ws_connect(w.addr, &w.addr.to_string()).await;

    s.write_all(&client_frame(0x1, b"hello whoami"))
        .await
        .unwrap();
    assert_eq!(
        server_frame(&mut s).await,
        (true, 0x1, b"hello whoami".to_vec())
    );

    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    s.write_all(&client_frame(0x2, &big)).await.unwrap();
    assert_eq!(server_frame(&mut s).await, (true, 0x2, big));

    s.write_all(&client_frame(0x9, b"p")).await.unwrap();
    assert_eq!(server_frame(&mut s).await, (true, 0xA, b"p".to_vec()));

    s.write_all(&client_frame(0x8, &1000u16.to_be_bytes()))
        .await
        .unwrap();
    assert_eq!(
        server_frame(&mut s).await,
        (true, 0x8, 1000u16.to_be_bytes().to_vec())
    );
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("server closes")
        .unwrap_or(0);
    assert_eq!(n, 0);

    // A plain GET on /ws is refused.
    assert_eq!(get(&w.url("/ws")).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sigterm_drains_in_flight_and_refuses_new_connections() {
    let mut w = Whoami::start(&[]);
    let url = w.url("/slow?wait=2000");
    let in_flight = tokio::spawn(async move { get(&url).await });
    let mut ws = ws_connect(w.addr, &w.addr.to_string()).await;
    // Let the slow request reach the server before the signal.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    w.signal("-TERM");

    let mut refused = false;
    while signalled.elapsed() < Duration::from_millis(1000) {
        match TcpStream::connect(w.addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(refused, "new connections still accepted after SIGTERM");
    assert!(
        !in_flight.is_finished(),
        "slow request ended before refusal check"
    );

    // Open WebSocket sessions are told the server is going away.
    let (fin, opcode, payload) =
        tokio::time::timeout(Duration::from_secs(5), server_frame(&mut ws))
            .await
            .expect("close frame");
    assert_eq!(
        (fin, opcode, payload),
        (true, 0x8, 1001u16.to_be_bytes().to_vec())
    );

    let (status, body) = in_flight.await.expect("join");
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("GET /slow?wait=2000 HTTP/1.1"), "{body}");
    assert_eq!(w.wait_exit(Duration::from_secs(10)), Some(0));
}
