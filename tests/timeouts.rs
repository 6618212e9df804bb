//! Black-box tests of an entrypoint's responding timeouts on HTTP/1
//! connections, as Go's server (and so Traefik) applies them: `idleTimeout`
//! between requests, `readTimeout` once a request's head has begun, and no
//! limit while a request is being answered. Raw sockets, so that what the
//! client sends and when is exact. Also HTTP/2 pings to servers
//! (`readIdleTimeout`, `pingTimeout`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: t.test\r\n\r\n";

fn start(read: &str, idle: &str) -> (Whoami, Escale) {
    let backend = Whoami::start("timed");
    let yaml = routes_yaml(
        "    r:\n      rule: \"Host(`t.test`)\"\n      service: s",
        &lb("s", &[backend.url()]),
        "    {}",
    );
    let esc = Escale::start(
        &yaml,
        &[
            &format!("--entrypoints.web.transport.respondingTimeouts.readTimeout={read}"),
            &format!("--entrypoints.web.transport.respondingTimeouts.idleTimeout={idle}"),
        ],
    );
    (backend, esc)
}

/// Reads one response off `s` (whoami's answers carry a Content-Length).
async fn response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .expect("an answer within 20 s")
            .expect("read");
        assert!(
            n > 0,
            "closed before the answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("a content-length");
            if got.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// Sends a request on `s` and checks that it is answered.
async fn served(s: &mut TcpStream) {
    s.write_all(REQUEST).await.unwrap();
    let answer = response(s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// How long until the server closes `s`, reading (and dropping) what comes.
async fn closed_after(s: &mut TcpStream, within: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("still open after {within:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_waits_idle_for_idle_timeout_not_read_timeout() {
    let (_backend, esc) = start("1s", "3s");
    esc.routed("t.test", Duration::from_secs(10)).await;

    let mut s = TcpStream::connect(esc.web).await.unwrap();
    served(&mut s).await;
    // Idle for twice the read limit: still served.
    tokio::time::sleep(Duration::from_secs(2)).await;
    served(&mut s).await;
    // Then closed once idle past the idle limit (never before it).
    let closed = closed_after(&mut s, Duration::from_secs(15)).await;
    assert!(closed >= Duration::from_secs(3), "closed after {closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_stalls_or_trickles_is_cut_at_read_timeout() {
    let (_backend, esc) = start("1s", "30s");
    esc.routed("t.test", Duration::from_secs(10)).await;

    // A head begun after a first request, then stalled: the read limit
    // applies, not the idle one.
    let mut s = TcpStream::connect(esc.web).await.unwrap();
    served(&mut s).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t.te").await.unwrap();
    let closed = closed_after(&mut s, Duration::from_secs(15)).await;
    assert!(closed >= Duration::from_secs(1), "closed after {closed:?}");
    assert!(closed < Duration::from_secs(10), "closed after {closed:?}");

    // A head sent a byte every 200 ms: each byte is no progress.
    let mut s = TcpStream::connect(esc.web).await.unwrap();
    let start = Instant::now();
    let mut cut = false;
    for b in b"GET / HTTP/1.1\r\nHost: t.test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
        if s.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !cut {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        cut = matches!(n, Ok(Ok(0)) | Ok(Err(_)));
    }
    let elapsed = start.elapsed();
    assert!(cut, "a trickled head was served after {elapsed:?}");
    assert!(elapsed >= Duration::from_secs(1), "cut after {elapsed:?}");

    // A new connection that sends nothing: the read limit too.
    let mut s = TcpStream::connect(esc.web).await.unwrap();
    let closed = closed_after(&mut s, Duration::from_secs(15)).await;
    assert!(closed >= Duration::from_secs(1), "closed after {closed:?}");
    assert!(closed < Duration::from_secs(10), "closed after {closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_being_answered_has_no_read_or_idle_limit() {
    let (_backend, esc) = start("1s", "1s");
    esc.routed("t.test", Duration::from_secs(10)).await;

    // The backend takes three times the limits to answer.
    let mut s = TcpStream::connect(esc.web).await.unwrap();
    s.write_all(b"GET /?wait=3000 HTTP/1.1\r\nHost: t.test\r\n\r\n")
        .await
        .unwrap();
    let answer = response(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // And the connection carries the next request.
    served(&mut s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_stalls_is_cut_at_read_timeout_one_that_flows_is_not() {
    let (_backend, esc) = start("1s", "30s");
    esc.routed("t.test", Duration::from_secs(10)).await;

    // A body that flows slowly, a byte every 300 ms for 3.6 s: each byte
    // is progress, so the whole upload is served.
    let mut s = TcpStream::connect(esc.web).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: t.test\r\nContent-Length: 12\r\n\r\n")
        .await
        .unwrap();
    for b in b"abcdefghijkl" {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.write_all(&[*b]).await.unwrap();
    }
    let answer = response(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with("12"),
        "the backend got the whole body: {answer}"
    );

    // A body that stops arriving: the connection is closed at the read
    // limit, and the backend, which did nothing wrong, keeps serving.
    let mut s = TcpStream::connect(esc.web).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: t.test\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    let closed = closed_after(&mut s, Duration::from_secs(15)).await;
    assert!(closed >= Duration::from_secs(1), "closed after {closed:?}");
    assert!(closed < Duration::from_secs(10), "closed after {closed:?}");
    let mut s = TcpStream::connect(esc.web).await.unwrap();
    served(&mut s).await;
    let log = esc.log_text();
    assert!(!log.contains("ejected"), "{log}");
}

/// `readIdleTimeout` and `pingTimeout`: an HTTP/2 connection to a server
/// that stops answering is pinged and closed, so the next request gets a
/// new one; without them the connection is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_pings_replace_connections_whose_server_went_silent() {
    let pinged = Whoami::start("pinged");
    let quiet = Whoami::start("quiet");
    let routers = "    pinged:\n      rule: \"Host(`pinged.test`)\"\n      service: pinged\n\
                   \x20   quiet:\n      rule: \"Host(`quiet.test`)\"\n      service: quiet\n";
    let mut services = lb("pinged", &[pinged.url().replace("http://", "h2c://")]);
    services.push_str("        serversTransport: pings\n");
    services.push_str(&lb("quiet", &[quiet.url().replace("http://", "h2c://")]));
    let config = format!(
        "{}  serversTransports:\n    pings:\n      forwardingTimeouts:\n        readIdleTimeout: 200ms\n        pingTimeout: 300ms\n",
        routes_yaml(routers, &services, "")
    );
    let escale = Escale::start(&config, &[]);
    escale.routed("quiet.test", Duration::from_secs(10)).await;
    escale.routed("pinged.test", Duration::from_secs(10)).await;
    let before = |host: &'static str| {
        let url = escale.url("/");
        async move { get(&url, host).await.echo("RemoteAddr") }
    };
    let (pinged_first, quiet_first) = (before("pinged.test").await, before("quiet.test").await);
    assert!(pinged_first.is_some() && quiet_first.is_some());

    // Both servers freeze for 2 s: the kernel still acknowledges, but no
    // HTTP/2 frame comes back, so a ping after 200 ms goes unanswered.
    let signal = |sig: &str, pid: u32| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP", pinged.proc.pid());
    signal("-STOP", quiet.proc.pid());
    tokio::time::sleep(Duration::from_secs(2)).await;
    signal("-CONT", pinged.proc.pid());
    signal("-CONT", quiet.proc.pid());

    let (pinged_then, quiet_then) = (before("pinged.test").await, before("quiet.test").await);
    assert!(pinged_then.is_some(), "{}", escale.log_text());
    assert_ne!(
        pinged_first, pinged_then,
        "a new connection after the unanswered ping"
    );
    assert_eq!(
        quiet_first, quiet_then,
        "without pings the connection is kept"
    );
}
