//! Helpers shared by the admin black-box tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// escale with the given dynamic file, `web` on a free port and the
/// `traefik` entrypoint on another free loopback port.
pub struct AdminProxy {
    pub esc: Escale,
    pub admin: SocketAddr,
}

impl AdminProxy {
    pub fn start(yaml: &str, flags: &[&str]) -> AdminProxy {
        let port = free_port();
        let ep = format!("--entrypoints.traefik.address=127.0.0.1:{port}");
        let mut args = vec![ep.as_str()];
        args.extend_from_slice(flags);
        let esc = Escale::start(yaml, &args);
        let admin = SocketAddr::from(([127, 0, 0, 1], port));
        esc.wait_listening(admin);
        AdminProxy { esc, admin }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// Waits until the web entrypoint answers 200 for `host`: the routes are applied.
    pub async fn routed(&self, host: &str) {
        self.esc.routed(host, Duration::from_secs(10)).await;
    }

    pub async fn get(&self, path: &str) -> Answer {
        request("GET", &self.url(path), &[], "")
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}\nlog:\n{}", self.esc.log_text()))
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        let a = self.get(path).await;
        assert_eq!(a.status, 200, "GET {path}: {}", a.body);
        serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", a.body))
    }
}

/// Opens `/api/events` and reads until `want` returns true on the text
/// received so far; returns that text. Bounded by `within`.
pub struct EventStream {
    stream: tokio::net::TcpStream,
    pub seen: String,
}

impl EventStream {
    pub async fn open(addr: SocketAddr) -> EventStream {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(
                b"GET /api/events HTTP/1.1\r\nHost: admin\r\nAccept: text/event-stream\r\n\r\n",
            )
            .await
            .expect("write");
        EventStream {
            stream,
            seen: String::new(),
        }
    }

    pub async fn until(&mut self, what: &str, within: Duration, want: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 8192];
        while !want(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "timed out waiting for {what}; stream so far:\n{}",
                    self.seen
                );
            }
            match tokio::time::timeout(left, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) => panic!("stream closed waiting for {what}:\n{}", self.seen),
                Ok(Ok(n)) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Ok(Err(e)) => panic!("read error waiting for {what}: {e}"),
                Err(_) => {}
            }
        }
    }
}
