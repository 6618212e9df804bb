//! Checks a route through the proxy's published port on 127.0.0.1, as a
//! browser would: the request carries the route's host and path.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the proxy answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub elapsed: Duration,
}

impl Answer {
    /// The proxy found a route and a server behind it. Its own answers when it
    /// has neither are 404 (no router) and 502/503/504 (no healthy server).
    pub fn routed(&self) -> bool {
        !matches!(self.status, 404 | 502 | 503 | 504)
    }
}

/// Largest body kept; enough to show what answered.
const MAX_BODY: usize = 64 * 1024;

/// One GET through `127.0.0.1:port`, bounded by `timeout`.
pub async fn get(
    port: u16,
    host: Option<&str>,
    path: &str,
    timeout: Duration,
) -> Result<Answer, String> {
    let start = Instant::now();
    let fut = async {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
        let host = host.unwrap_or("127.0.0.1");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: escale-stack\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 || buf.len() > MAX_BODY {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        parse(&buf)
            .ok_or_else(|| "the proxy closed the connection without an HTTP answer".to_string())
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok((status, body))) => Ok(Answer {
            status,
            body,
            elapsed: start.elapsed(),
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

fn parse(buf: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(buf);
    let status_line = text.lines().next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn parses_status_and_body() {
        let (s, b) = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi").unwrap();
        assert_eq!((s, b.as_str()), (200, "hi"));
        assert!(parse(b"garbage").is_none());
    }

    #[tokio::test]
    async fn sends_host_and_path() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            req
        });
        let a = get(port, Some("alderaan"), "/cdn/", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(a.status, 404);
        assert!(!a.routed());
        let req = server.await.unwrap();
        assert!(
            req.starts_with("GET /cdn/ HTTP/1.1\r\nHost: alderaan\r\n"),
            "{req}"
        );
    }
}
