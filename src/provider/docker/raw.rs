//! Plain HTTP/1.1 GETs to the Docker API, over its unix socket or TCP.
//!
//! One connection per request: requests are rare (a re-list), and a fresh
//! connection never trips over a daemon that restarted in between.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use super::Endpoint;

/// Responses larger than this are refused (a task list is a few KiB per task).
const MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[from] http::Error),
    #[error("response body: {0}")]
    Body(String),
    #[error("status {status}: {body}")]
    Status { status: u16, body: String },
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

#[derive(Debug, Clone)]
pub struct RawClient {
    endpoint: Endpoint,
    timeout: Duration,
}

impl RawClient {
    pub fn new(endpoint: Endpoint, timeout: Duration) -> Self {
        RawClient { endpoint, timeout }
    }

    /// GETs `path` (with its query) and returns the body of a 2xx response.
    pub async fn get(&self, path: &str) -> Result<Bytes, RawError> {
        tokio::time::timeout(self.timeout, self.get_inner(path))
            .await
            .map_err(|_| RawError::Timeout(self.timeout))?
    }

    async fn get_inner(&self, path: &str) -> Result<Bytes, RawError> {
        match &self.endpoint {
            Endpoint::Unix(p) => {
                let stream = UnixStream::connect(p).await.map_err(RawError::Connect)?;
                send(stream, "localhost", path).await
            }
            Endpoint::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await.map_err(RawError::Connect)?;
                send(stream, addr, path).await
            }
        }
    }
}

async fn send<S>(stream: S, host: &str, path: &str) -> Result<Bytes, RawError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = http::Request::get(path)
        .header(http::header::HOST, host)
        .body(Empty::<Bytes>::new())?;
    let result = async {
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| RawError::Body(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(RawError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).trim().to_string(),
            });
        }
        Ok(body)
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server on a unix socket answering `reply`.
    async fn serve_once(dir: &tempfile::TempDir, reply: &'static str) -> Endpoint {
        let path = dir.path().join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(req.starts_with("GET /v1.41/tasks HTTP/1.1\r\n"), "{req}");
            s.write_all(reply.as_bytes()).await.unwrap();
        });
        Endpoint::Unix(path)
    }

    #[tokio::test]
    async fn gets_over_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let ep = serve_once(
            &dir,
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n[]",
        )
        .await;
        let body = RawClient::new(ep, Duration::from_secs(5))
            .get("/v1.41/tasks")
            .await
            .unwrap();
        assert_eq!(&body[..], b"[]");
    }

    #[tokio::test]
    async fn reports_http_errors_and_missing_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let ep = serve_once(
            &dir,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\noops",
        )
        .await;
        let err = RawClient::new(ep, Duration::from_secs(5))
            .get("/v1.41/tasks")
            .await
            .unwrap_err();
        assert!(matches!(err, RawError::Status { status: 503, .. }), "{err}");
        let missing = Endpoint::Unix(dir.path().join("nope.sock"));
        let err = RawClient::new(missing, Duration::from_secs(5))
            .get("/v1.41/tasks")
            .await
            .unwrap_err();
        assert!(matches!(err, RawError::Connect(_)), "{err}");
    }
}
