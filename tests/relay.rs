//! The relay (`proxy::relay`): plain GET and HEAD exchanges passed through
//! as bytes, and the hand-over to the full pipeline for anything else, on
//! the same connection. The real escale binary, real whoami backends, and
//! raw sockets on 127.0.0.1 where the bytes on the wire are the point.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Reads more of the connection into `pending`; `place` says where a
/// close would have come too early.
async fn read_more(s: &mut TcpStream, pending: &mut Vec<u8>, place: &str) {
    let mut buf = [0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    assert!(
        n > 0,
        "closed {place}: {}",
        String::from_utf8_lossy(pending)
    );
    pending.extend_from_slice(&buf[..n]);
}

/// Reads one answer's head off `s`, leaving what follows it in `pending`.
async fn read_head(s: &mut TcpStream, pending: &mut Vec<u8>) -> String {
    let head_end = loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_more(s, pending, "before the head's end").await;
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
    pending.drain(..head_end);
    head
}

/// Reads one HTTP/1.1 answer with a `Content-Length` (or chunked) body off
/// `s`, leaving what follows it unread in `pending`.
async fn read_answer(s: &mut TcpStream, pending: &mut Vec<u8>) -> (String, Vec<u8>) {
    let head = read_head(s, pending).await;
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if let Some(len) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse::<usize>().unwrap())
    {
        while pending.len() < len {
            read_more(s, pending, "in the body").await;
        }
        body = pending.drain(..len).collect();
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let line_end = loop {
                if let Some(i) = pending.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                read_more(s, pending, "in a chunk size").await;
            };
            let size = usize::from_str_radix(
                std::str::from_utf8(&pending[..line_end]).unwrap().trim(),
                16,
            )
            .unwrap();
            pending.drain(..line_end + 2);
            while pending.len() < size + 2 {
                read_more(s, pending, "in a chunk").await;
            }
            body.extend(pending.drain(..size));
            pending.drain(..2);
            if size == 0 {
                break;
            }
        }
    }
    (head, body)
}

/// Pipelined GETs are answered in order on one connection; a request the
/// relay does not take (a POST with a body) hands the connection to the
/// pipeline without losing a byte, and what follows is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_and_a_hand_over_share_one_connection() {
    let w = Whoami::start("w");
    let yaml = routes_yaml(
        "    r:\n      rule: \"Host(`p.test`)\"\n      service: w",
        &lb("w", &[w.url()]),
        "    {}",
    );
    let esc = Escale::start(&yaml, &[]);
    esc.routed("p.test", Duration::from_secs(5)).await;

    let mut s = TcpStream::connect(esc.web).await.unwrap();
    s.write_all(
        b"GET /one HTTP/1.1\r\nHost: p.test\r\n\r\nGET /two HTTP/1.1\r\nHost: p.test\r\n\r\n\
          POST /three HTTP/1.1\r\nHost: p.test\r\nContent-Length: 5\r\n\r\nhello\
          GET /four HTTP/1.1\r\nHost: p.test\r\n\r\n",
    )
    .await
    .unwrap();
    let mut pending = Vec::new();
    for (path, method) in [
        ("/one", "GET"),
        ("/two", "GET"),
        ("/three", "POST"),
        ("/four", "GET"),
    ] {
        let (head, body) = read_answer(&mut s, &mut pending).await;
        let body = String::from_utf8_lossy(&body);
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        assert!(
            body.contains(&format!("{method} {path} HTTP/1.1")),
            "{path}: {body}"
        );
    }
    // The connection is still good for one more.
    s.write_all(b"GET /five HTTP/1.1\r\nHost: p.test\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = read_answer(&mut s, &mut pending).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("GET /five HTTP/1.1"));
}

/// What the backend hears from a relayed request: the client's headers, the
/// Host, and the forwarded family set by escale, each once; no hop-by-hop
/// header. What the client hears: the backend's headers but the hop-by-hop
/// ones (and those its Connection names), and `Connection: close` when it
/// asked to close, after which the connection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_heads_are_rewritten_as_the_pipeline_rewrites_them() {
    let backend = raw_server(|head| {
        let body = head.to_string();
        format!(
            "HTTP/1.1 200 OK\r\nConnection: x-hop, keep-alive\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nX-Kept: 2\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
    .await;
    let yaml = routes_yaml(
        "    r:\n      rule: \"Host(`h.test`)\"\n      service: raw",
        &lb("raw", &[format!("http://{backend}")]),
        "    {}",
    );
    let esc = Escale::start(&yaml, &[]);
    esc.routed("h.test", Duration::from_secs(5)).await;

    let mut s = TcpStream::connect(esc.web).await.unwrap();
    s.write_all(
        b"GET /x?y=1 HTTP/1.1\r\nHost: h.test:80\r\nUser-Agent: t/1\r\nAccept: */*\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer))
        .await
        .expect("the connection closes after a Connection: close")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, sent) = answer.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(head.contains("\r\nx-kept: 2"), "{head}");
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert!(head.contains("\r\ndate: "), "a Date is added: {head}");
    for hop in ["x-hop:", "keep-alive:", "connection: x-hop"] {
        assert!(!head.contains(hop), "{hop} is not passed on: {head}");
    }

    let sent = sent.to_ascii_lowercase();
    assert!(sent.starts_with("get /x?y=1 http/1.1\r\n"), "{sent}");
    let once = |line: &str| {
        assert_eq!(
            sent.lines().filter(|l| *l == line).count(),
            1,
            "{line} once: {sent}"
        )
    };
    once("host: h.test:80");
    once("user-agent: t/1");
    once("accept: */*");
    once("x-forwarded-proto: http");
    once("x-forwarded-host: h.test:80");
    once("x-forwarded-port: 80");
    once("x-real-ip: 127.0.0.1");
    once("x-forwarded-for: 127.0.0.1");
    assert_eq!(
        sent.lines()
            .filter(|l| l.starts_with("x-forwarded-server: "))
            .count(),
        1,
        "{sent}"
    );
    assert!(!sent.contains("connection:"), "{sent}");
}

/// Bodies whose length the backend does not give (chunked, or until it
/// closes) reach the client chunked and whole; a HEAD gets the head alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsized_bodies_are_relayed_chunked() {
    let backend = raw_server(|head| {
        if head.starts_with("HEAD ") {
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec()
        } else if head.contains("/chunked") {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
                .to_vec()
        } else {
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the close".to_vec()
        }
    })
    .await;
    let yaml = routes_yaml(
        "    r:\n      rule: \"Host(`u.test`)\"\n      service: raw",
        &lb("raw", &[format!("http://{backend}")]),
        "    {}",
    );
    let esc = Escale::start(&yaml, &[]);
    esc.routed("u.test", Duration::from_secs(5)).await;

    let mut s = TcpStream::connect(esc.web).await.unwrap();
    let mut pending = Vec::new();
    for (path, expected) in [("/chunked", "hello world"), ("/eof", "until the close")] {
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: u.test\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let (head, body) = read_answer(&mut s, &mut pending).await;
        let head = head.to_ascii_lowercase();
        assert!(
            head.contains("transfer-encoding: chunked"),
            "{path}: {head}"
        );
        assert!(!head.contains("content-length"), "{path}: {head}");
        assert_eq!(String::from_utf8_lossy(&body), expected, "{path}");
    }
    s.write_all(
        b"HEAD / HTTP/1.1\r\nHost: u.test\r\n\r\nGET /chunked HTTP/1.1\r\nHost: u.test\r\n\r\n",
    )
    .await
    .unwrap();
    // The HEAD answer has its Content-Length and no body: the next answer
    // follows its head directly.
    let head = read_head(&mut s, &mut pending).await.to_ascii_lowercase();
    assert!(head.contains("content-length: 1000"), "{head}");
    let (head, body) = read_answer(&mut s, &mut pending).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(String::from_utf8_lossy(&body), "hello world");
}

/// Requests the relay leaves to the pipeline get the pipeline's answers:
/// forwarded headers from an untrusted client are replaced, a rule on a
/// header still routes, and a request with no route gets Traefik's 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_relay_leaves_is_answered_by_the_pipeline() {
    let a = Whoami::start("a");
    let b = Whoami::start("b");
    let yaml = routes_yaml(
        "    plain:\n      rule: \"Host(`r.test`)\"\n      service: a\n    \
         byheader:\n      rule: \"Host(`r.test`) && Header(`X-Pick`, `b`)\"\n      service: b",
        &format!("{}{}", lb("a", &[a.url()]), lb("b", &[b.url()])),
        "    {}",
    );
    let esc = Escale::start(&yaml, &[]);
    esc.routed("r.test", Duration::from_secs(5)).await;

    let r = request(
        "GET",
        &esc.url("/"),
        &[("host", "r.test"), ("x-forwarded-for", "6.6.6.6")],
        "",
    )
    .await
    .unwrap();
    assert_eq!(r.echo("Name").as_deref(), Some("a"));
    assert_eq!(
        r.echo_all("X-Forwarded-For"),
        vec!["127.0.0.1".to_string()],
        "{}",
        r.body
    );
    let r = request(
        "GET",
        &esc.url("/"),
        &[("host", "r.test"), ("x-pick", "b")],
        "",
    )
    .await
    .unwrap();
    assert_eq!(r.echo("Name").as_deref(), Some("b"));
    let r = get(&esc.url("/"), "nowhere.test").await;
    assert_eq!(r.status, 404);
}

/// A service the relay does not forward to (HTTPS servers) is balanced by
/// the pipeline alone: the relay decides before it takes a server's turn.
/// (Found by the swarm tests: the relay picked a server, saw it was HTTPS
/// and handed over, and the pipeline's pick then always fell on the
/// other one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_left_to_the_pipeline_keep_their_balance() {
    let one = Whoami::start_with("one", 0, &["--tls-self-signed"]);
    let two = Whoami::start_with("two", 0, &["--tls-self-signed"]);
    let urls: Vec<String> = [&one, &two]
        .iter()
        .map(|w| w.url().replace("http://", "https://"))
        .collect();
    let yaml = routes_yaml(
        "    r:\n      rule: \"Host(`tls.test`)\"\n      service: s",
        &lb("s", &urls),
        "    {}",
    );
    let esc = Escale::start(&yaml, &["--serversTransport.insecureSkipVerify=true"]);
    esc.routed("tls.test", Duration::from_secs(5)).await;
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..20 {
        let r = get(&esc.url("/"), "tls.test").await;
        assert_eq!(r.status, 200, "{}", r.body);
        *seen.entry(r.echo("Name").unwrap_or_default()).or_insert(0) += 1;
    }
    assert_eq!(seen.get("one"), Some(&10), "{seen:?}");
    assert_eq!(seen.get("two"), Some(&10), "{seen:?}");
}
