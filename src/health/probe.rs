//! One probe of one server: an HTTP request as the active health check
//! describes it, or a plain TCP connect when the service has none.
//!
//! Each probe uses a fresh connection, closed afterwards, so it tells
//! whether the server accepts new connections, and never disturbs the
//! request pool.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, StatusCode, Version};
use http_body_util::Empty;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::config::{ActiveCheck, MAX_REDIRECTS, ProbeScheme, ProbeTarget};
use crate::balance::ServerState;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("connect to {addr} failed: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("http exchange failed: {0}")]
    Http(#[source] hyper::Error),
    #[error("cannot build the request: {0}")]
    Request(String),
    #[error("received status code {got}{}", expected.map(|e| format!(", expected {e}")).unwrap_or_default())]
    Status { got: u16, expected: Option<u16> },
    #[error("stopped after {0} redirects")]
    Redirects(usize),
}

/// Runs the active health check against `server`, bounded by its timeout.
pub async fn http(check: &ActiveCheck, server: &ServerState) -> Result<(), ProbeError> {
    let target = check.target(server);
    match tokio::time::timeout(check.timeout, follow(check, target)).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout(check.timeout)),
    }
}

/// Checks that the server accepts a TCP connection.
pub async fn tcp(server: &ServerState, timeout: Duration) -> Result<(), ProbeError> {
    let addr = server.upstream.authority.as_str();
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(ProbeError::Connect {
            addr: addr.to_string(),
            source,
        }),
        Err(_) => Err(ProbeError::Timeout(timeout)),
    }
}

async fn follow(check: &ActiveCheck, mut target: ProbeTarget) -> Result<(), ProbeError> {
    for _ in 0..=MAX_REDIRECTS {
        let (status, location) = once(check, &target).await?;
        let redirect = matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308);
        if check.follow_redirects
            && redirect
            && let Some(next) = location.and_then(|l| same_server(&target, &l))
        {
            target.path_and_query = next;
            continue;
        }
        return if check.healthy_status(status.as_u16()) {
            Ok(())
        } else {
            Err(ProbeError::Status {
                got: status.as_u16(),
                expected: check.status,
            })
        };
    }
    Err(ProbeError::Redirects(MAX_REDIRECTS))
}

/// The path a redirect leads to when it stays on the probed server;
/// `None` when it leaves it (escale does not probe other hosts).
fn same_server(target: &ProbeTarget, location: &str) -> Option<String> {
    if location.starts_with('/') && !location.starts_with("//") {
        return Some(location.to_string());
    }
    let uri: http::Uri = location.parse().ok()?;
    let authority = uri.authority()?;
    let default_port = if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    let port = authority.port_u16().unwrap_or(default_port);
    let same = format!("{}:{port}", authority.host()) == target.authority;
    same.then(|| {
        uri.path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".to_string())
    })
}

async fn once(
    check: &ActiveCheck,
    target: &ProbeTarget,
) -> Result<(StatusCode, Option<String>), ProbeError> {
    let stream = TcpStream::connect(target.authority.as_str())
        .await
        .map_err(|source| ProbeError::Connect {
            addr: target.authority.clone(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let host = check
        .hostname
        .clone()
        .or_else(|| HeaderValue::from_str(&target.authority).ok());
    match target.scheme {
        ProbeScheme::Http => exchange(check, target, host, stream, false).await,
        ProbeScheme::H2c => exchange(check, target, host, stream, true).await,
        ProbeScheme::Https => {
            let client =
                check.tls.0.as_ref().ok_or_else(|| {
                    ProbeError::Request("no TLS settings for an https probe".into())
                })?;
            let server_host = target
                .authority
                .rsplit_once(':')
                .map_or(target.authority.as_str(), |(h, _)| h);
            let stream = client
                .connect(server_host, stream, false)
                .await
                .map_err(|source| ProbeError::Tls {
                    addr: target.authority.clone(),
                    source,
                })?;
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            exchange(check, target, host, stream, h2).await
        }
    }
}

/// One request and its answer's head, over HTTP/2 or HTTP/1.1.
async fn exchange<I>(
    check: &ActiveCheck,
    target: &ProbeTarget,
    host: Option<HeaderValue>,
    io: I,
    h2: bool,
) -> Result<(StatusCode, Option<String>), ProbeError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let mut builder = Request::builder().method(check.method.clone());
    if h2 {
        let authority = check
            .hostname
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .unwrap_or(&target.authority);
        let scheme = if target.scheme == ProbeScheme::Https {
            "https"
        } else {
            "http"
        };
        builder = builder
            .uri(format!("{scheme}://{authority}{}", target.path_and_query))
            .version(Version::HTTP_2);
    } else {
        builder = builder.uri(target.path_and_query.as_str());
    }
    if let Some(headers) = builder.headers_mut() {
        *headers = check.headers.clone();
        if !h2 {
            if let Some(host) = host {
                headers.insert(header::HOST, host);
            }
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    let req = builder
        .body(Empty::<Bytes>::new())
        .map_err(|e| ProbeError::Request(e.to_string()))?;
    let res = if h2 {
        let (mut sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(ProbeError::Http)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sender.send_request(req).await.map_err(ProbeError::Http)?
    } else {
        let (mut sender, conn) = http1::handshake(io).await.map_err(ProbeError::Http)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sender.send_request(req).await.map_err(ProbeError::Http)?
    };
    let location = res
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    Ok((res.status(), location))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_followed_only_on_the_same_server() {
        let t = ProbeTarget {
            authority: "10.0.0.1:8080".into(),
            path_and_query: "/health".into(),
            scheme: ProbeScheme::Http,
        };
        assert_eq!(same_server(&t, "/login").as_deref(), Some("/login"));
        assert_eq!(
            same_server(&t, "http://10.0.0.1:8080/x?y").as_deref(),
            Some("/x?y")
        );
        assert_eq!(same_server(&t, "http://other:8080/x"), None);
        assert_eq!(same_server(&t, "//other/x"), None);
        let t80 = ProbeTarget {
            authority: "h:80".into(),
            ..t
        };
        assert_eq!(same_server(&t80, "http://h/ok").as_deref(), Some("/ok"));
    }

    #[test]
    fn status_errors_read_well() {
        let e = ProbeError::Status {
            got: 500,
            expected: None,
        };
        assert_eq!(e.to_string(), "received status code 500");
        let e = ProbeError::Status {
            got: 200,
            expected: Some(204),
        };
        assert_eq!(e.to_string(), "received status code 200, expected 204");
    }
}
