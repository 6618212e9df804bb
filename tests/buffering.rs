//! Black-box tests of the `buffering` middleware: the real escale binary
//! with a file provider, in front of real HTTP servers on 127.0.0.1 that
//! note every request they receive.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a backend received.
#[derive(Debug, Clone)]
struct Received {
    content_length: Option<String>,
    chunked: bool,
    body: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct Seen(Arc<Mutex<Vec<Received>>>);

impl Seen {
    fn push(&self, r: Received) {
        self.0.lock().unwrap().push(r);
    }

    fn all(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A keep-alive HTTP/1.1 backend that reads each request in full, notes
/// it, and answers `status` with `body` (chunked when `chunked`).
async fn backend(status: u16, body: Vec<u8>, chunked: bool) -> (String, Seen) {
    let seen = Seen::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Bytes::from(body);
    let noted = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let noted = noted.clone();
            let body = body.clone();
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let noted = noted.clone();
                    let body = body.clone();
                    async move {
                        let (parts, incoming) = req.into_parts();
                        let received = incoming.collect().await?.to_bytes().to_vec();
                        noted.push(Received {
                            content_length: parts
                                .headers
                                .get("content-length")
                                .map(|v| v.to_str().unwrap().to_string()),
                            chunked: parts.headers.get("transfer-encoding").is_some(),
                            body: received,
                        });
                        let out: BoxBody<Bytes, Infallible> = if chunked {
                            let frames: Vec<Result<Frame<Bytes>, Infallible>> = body
                                .chunks(16 * 1024)
                                .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
                                .collect();
                            BodyExt::boxed(StreamBody::new(futures_util::stream::iter(frames)))
                        } else {
                            BodyExt::boxed(Full::new(body))
                        };
                        let mut res = http::Response::new(out);
                        *res.status_mut() = http::StatusCode::from_u16(status).unwrap();
                        Ok::<_, hyper::Error>(res)
                    }
                });
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

/// A backend that reads each request (head and `Content-Length` body) in
/// full, notes it, then hangs up without answering: a network error after
/// the request was delivered.
async fn hang_up_backend() -> (String, Seen) {
    let seen = Seen::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let noted = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let noted = noted.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16 * 1024];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let length: Option<usize> = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok());
                let want = head_end + length.unwrap_or(0);
                while buf.len() < want {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                noted.push(Received {
                    content_length: length.map(|n| n.to_string()),
                    chunked: head.contains("transfer-encoding"),
                    body: buf[head_end..].to_vec(),
                });
                // Dropped: the connection closes with no answer.
            });
        }
    });
    (format!("http://{addr}"), seen)
}

/// A body whose bytes depend on their position and on `seed`, so that a
/// lost, repeated or reordered part shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(31))
        .collect()
}

/// POSTs `body` over a raw connection, chunked or with `Content-Length`,
/// and returns the status and the whole answer (head and body).
async fn raw_post(addr: SocketAddr, host: &str, body: &[u8], chunked: bool) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {}", body.len())
    };
    let head =
        format!("POST /up HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{framing}\r\n\r\n");
    let write = async {
        s.write_all(head.as_bytes()).await?;
        for part in body.chunks(32 * 1024) {
            if chunked {
                s.write_all(format!("{:x}\r\n", part.len()).as_bytes())
                    .await?;
                s.write_all(part).await?;
                s.write_all(b"\r\n").await?;
            } else {
                s.write_all(part).await?;
            }
        }
        if chunked {
            s.write_all(b"0\r\n\r\n").await?;
        }
        s.flush().await?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), write)
        .await
        .expect("exchange in time")
        .expect("exchange");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

/// POSTs `body` with the hyper client (`Content-Length`), returns the
/// status and the body.
async fn post(url: &str, host: &str, body: Vec<u8>) -> (u16, Bytes) {
    let req = http::Request::post(url)
        .header("host", host)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(30), client().request(req))
        .await
        .expect("answer in time")
        .expect("answer");
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

/// One router per `(host, service, middleware)`, a service per
/// `(name, urls)`, and the middlewares' YAML (indented for their section).
fn config(routers: &[(&str, &str, &str)], services: &[(&str, &[String])], mws: &str) -> String {
    let mut r = String::new();
    for (host, service, mw) in routers {
        let name = host.replace('.', "-");
        r.push_str(&format!(
            "    {name}:\n      rule: \"Host(`{host}`)\"\n      service: {service}\n"
        ));
        if !mw.is_empty() {
            r.push_str(&format!("      middlewares: [{mw}]\n"));
        }
    }
    let s: String = services.iter().map(|(n, urls)| lb(n, urls)).collect();
    routes_yaml(&r, &s, mws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_uploads_get_413_and_never_reach_the_backend() {
    let (url, seen) = backend(200, b"ok".to_vec(), false).await;
    let yaml = config(
        &[("up.test", "svc", "limit")],
        &[("svc", &[url])],
        "    limit:\n      buffering:\n        maxRequestBodyBytes: 1000\n",
    );
    let esc = Escale::start(&yaml, &[]);
    esc.routed("up.test", Duration::from_secs(10)).await;
    let before = seen.count();

    let (status, text) = raw_post(esc.web, "up.test", &pattern(5000, 1), false).await;
    assert_eq!(status, 413, "declared too large: {text}");
    assert!(text.ends_with("Request Entity Too Large"), "{text}");
    let (status, text) = raw_post(esc.web, "up.test", &pattern(5000, 2), true).await;
    assert_eq!(status, 413, "chunked, counted while read: {text}");
    let (status, _) = post(&esc.url("/"), "up.test", pattern(1001, 3)).await;
    assert_eq!(status, 413, "one byte over");
    assert_eq!(seen.count(), before, "the backend saw none of them");

    // At the limit and under it: the body arrives whole, with its length,
    // even when the client sent it chunked.
    let body = pattern(1000, 4);
    let (status, text) = raw_post(esc.web, "up.test", &body, true).await;
    assert_eq!(status, 200, "{text}");
    let got = seen.all().pop().unwrap();
    assert_eq!(got.content_length.as_deref(), Some("1000"));
    assert!(!got.chunked, "sent with a Content-Length, not chunked");
    assert!(got.body == body, "the body arrives intact");
    let body = pattern(999, 5);
    let (status, answer) = post(&esc.url("/"), "up.test", body.clone()).await;
    assert_eq!((status, answer.as_ref()), (200, &b"ok"[..]));
    let got = seen.all().pop().unwrap();
    assert_eq!(got.content_length.as_deref(), Some("999"));
    assert!(got.body == body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_max_response_body_bytes_is_a_500() {
    let (big, _) = backend(200, pattern(10_000, 1), false).await;
    let (big_chunked, _) = backend(200, pattern(10_000, 2), true).await;
    let (at_limit, _) = backend(200, pattern(5_000, 3), true).await;
    let yaml = config(
        &[
            ("big.test", "big", "limit"),
            ("chunked.test", "chunked", "limit"),
            ("fits.test", "fits", "limit"),
        ],
        &[
            ("big", &[big]),
            ("chunked", &[big_chunked]),
            ("fits", &[at_limit]),
        ],
        "    limit:\n      buffering:\n        maxResponseBodyBytes: 5000\n        memResponseBodyBytes: 1000\n",
    );
    let esc = Escale::start(&yaml, &[]);
    esc.routed("fits.test", Duration::from_secs(10)).await;

    for host in ["big.test", "chunked.test"] {
        let a = get(&esc.url("/"), host).await;
        assert_eq!(a.status, 500, "{host}");
        assert_eq!(a.body, "Internal Server Error", "{host}");
    }
    let req = http::Request::get(esc.url("/"))
        .header("host", "fits.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = client().request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()
            .get("content-length")
            .map(|v| v.to_str().unwrap()),
        Some("5000"),
        "a buffered answer goes with its length"
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(body == pattern(5_000, 3), "the answer arrives intact");
    let log = esc.log_text();
    assert!(log.contains("maxResponseBodyBytes"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_memory_threshold_spill_to_disk_and_arrive_whole() {
    let (url, seen) = backend(200, pattern(300_000, 7), true).await;
    let yaml = config(
        &[("up.test", "svc", "spill")],
        &[("svc", &[url])],
        "    spill:\n      buffering:\n        memRequestBodyBytes: 4096\n        memResponseBodyBytes: 4096\n",
    );
    let tmp = tempfile::tempdir().unwrap();
    let tmp_path = tmp.path().display().to_string();
    let esc = Escale::start_with_env("dynamic.yml", &yaml, &[], &[("TMPDIR", &tmp_path)]);
    esc.routed("up.test", Duration::from_secs(10)).await;

    let body = pattern(3 << 20, 8);
    let (status, text) = raw_post(esc.web, "up.test", &body, true).await;
    assert_eq!(status, 200, "{}", &text[..text.len().min(300)]);
    let got = seen.all().pop().unwrap();
    assert_eq!(got.content_length.as_deref(), Some("3145728"));
    assert!(got.body.len() == body.len() && got.body == body, "intact");
    let (status, answer) = post(&esc.url("/"), "up.test", pattern(100_000, 9)).await;
    assert_eq!(status, 200);
    assert!(
        answer == pattern(300_000, 7),
        "the spilled answer arrives intact"
    );

    // The same with no usable temporary directory: what fits in memory
    // passes, what goes beyond has nowhere to go. So beyond the threshold
    // the body really was on disk.
    let esc = Escale::start_with_env(
        "dynamic.yml",
        &yaml,
        &[],
        &[("TMPDIR", "/nonexistent/escale-buffering-test")],
    );
    wait_status(
        "route",
        &esc.url("/"),
        "up.test",
        500,
        Duration::from_secs(10),
    )
    .await;
    let (url_small, _) = backend(200, b"small".to_vec(), false).await;
    let small = config(
        &[("up.test", "svc", "spill")],
        &[("svc", &[url_small])],
        "    spill:\n      buffering:\n        memRequestBodyBytes: 4096\n        memResponseBodyBytes: 4096\n",
    );
    esc.write_dynamic(&small);
    wait_status(
        "new backend",
        &esc.url("/"),
        "up.test",
        200,
        Duration::from_secs(10),
    )
    .await;
    let (status, _) = post(&esc.url("/"), "up.test", pattern(4096, 1)).await;
    assert_eq!(status, 200, "within the memory threshold");
    let (status, _) = post(&esc.url("/"), "up.test", pattern(4097, 1)).await;
    assert_eq!(status, 500, "one byte beyond it needs the disk");
    let log = esc.log_text();
    assert!(
        log.contains("temporary file in /nonexistent/escale-buffering-test"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_while_large_bodies_are_buffered() {
    const LEN: usize = 48 << 20;
    let (url, seen) = backend(200, pattern(LEN, 1), true).await;
    let yaml = config(
        &[("up.test", "svc", "big")],
        &[("svc", &[url])],
        "    big:\n      buffering: {}\n",
    );
    let esc = Escale::start(&yaml, &[]);
    // The first GET downloads the 48 MiB answer: the route works, and
    // the allocator has seen a large body once, as it will below.
    esc.routed("up.test", Duration::from_secs(30)).await;
    let baseline = esc.proc.rss_kib();

    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak, pid) = (done.clone(), peak.clone(), esc.proc.pid());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let rss: u64 = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or(0);
                peak.fetch_max(rss, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let body = pattern(LEN, 2);
    let (status, answer) = post(&esc.url("/"), "up.test", body.clone()).await;
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(status, 200);
    assert!(
        answer.len() == LEN && answer == pattern(LEN, 1),
        "answer intact"
    );
    let got = seen.all().pop().unwrap();
    assert!(got.body == body, "upload intact");
    let grew = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    // 1 MiB in memory per body by default; holding either body would
    // take 48 MiB.
    assert!(
        grew < 16 * 1024,
        "RSS grew by {grew} KiB over {baseline} KiB while buffering 48 MiB each way"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_expression_sends_the_whole_body_again() {
    let (hang_up, hung_up) = hang_up_backend().await;
    let (busy, busy_seen) = backend(503, b"busy".to_vec(), false).await;
    let (good, good_seen) = backend(200, b"done".to_vec(), false).await;
    let mws = "    on-network-error:
      buffering:
        memRequestBodyBytes: 16384
        retryExpression: \"IsNetworkError() && Attempts() < 3\"
    on-503:
      buffering:
        memRequestBodyBytes: 16384
        retryExpression: \"ResponseCode() == 503 && Attempts() < 3\"
    no-retry:
      buffering:
        memRequestBodyBytes: 16384
";
    let yaml = config(
        &[
            ("net.test", "flaky", "on-network-error"),
            ("busy.test", "busy", "on-503"),
            ("plain.test", "busy", "no-retry"),
        ],
        &[("flaky", &[hang_up, good.clone()]), ("busy", &[busy, good])],
        mws,
    );
    let esc = Escale::start(&yaml, &[]);
    let url = esc.url("/");
    eventually("routes applied", Duration::from_secs(10), || async {
        request("GET", &url, &[("host", "busy.test")], "")
            .await
            .is_ok_and(|a| a.status == 200)
    })
    .await;

    // Without an expression the 503 reaches the client: each server gets
    // its turn.
    let mut statuses = Vec::new();
    for seed in 0..4 {
        statuses.push(post(&url, "plain.test", pattern(1000, seed)).await.0);
    }
    assert!(statuses.contains(&503), "{statuses:?}");

    for (host, failing) in [("busy.test", &busy_seen), ("net.test", &hung_up)] {
        let failed_before = failing.count();
        for seed in 10..14 {
            // Past forward's own replay limit (64 KiB) and the memory
            // threshold: only the buffered copy on disk can be sent again.
            let body = pattern(200_000, seed);
            let (status, answer) = post(&url, host, body.clone()).await;
            assert_eq!((status, answer.as_ref()), (200, &b"done"[..]), "{host}");
            let got = good_seen.all().pop().unwrap();
            assert_eq!(got.content_length.as_deref(), Some("200000"), "{host}");
            assert!(got.body == body, "{host}: the retried body arrives whole");
        }
        let failed: Vec<Received> = failing.all().split_off(failed_before);
        assert!(
            !failed.is_empty(),
            "{host}: the failing server had its turns"
        );
        assert!(
            failed.iter().all(|r| r.body.len() == 200_000),
            "{host}: each attempt carried the whole body"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_buffering_configuration_disables_only_its_router() {
    let (url, _) = backend(200, b"ok".to_vec(), false).await;
    let yaml = config(
        &[("good.test", "svc", "fine"), ("bad.test", "svc", "broken")],
        &[("svc", &[url])],
        "    fine:
      buffering:
        retryExpression: \"IsNetworkError() && Attempts() < 2\"
    broken:
      buffering:
        maxRequestBodyBytes: -5
        retryExpression: \"IsNetworkError() &&\"
",
    );
    let esc = Escale::start(&yaml, &[]);
    wait_status(
        "good route",
        &esc.url("/"),
        "good.test",
        200,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(get(&esc.url("/"), "bad.test").await.status, 404);
    let log = esc.log_text();
    assert!(
        log.contains("broken@file")
            && log.contains("`maxRequestBodyBytes` must not be negative, got -5")
            && log.contains("`retryExpression`")
            && log.contains("the expression ends too early"),
        "{log}"
    );
}
