//! Proxy failures, classified by where they came from (as pingora does):
//! the upstream (502/504), the configuration (503: no server), the client
//! (400) or escale itself (500).

use http::StatusCode;

use super::body::{Body, text_response};
use super::pool::ConnectError;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no router matches the request")]
    NoRoute,
    #[error("service has no available server")]
    NoServer,
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("backend did not send response headers within {0:?}")]
    ResponseTimeout(std::time::Duration),
    #[error("backend exchange failed: {0}")]
    Upstream(#[source] super::body::BoxError),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::NoServer => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect(ConnectError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Connect(ConnectError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::TimedOut =>
            {
                StatusCode::GATEWAY_TIMEOUT
            }
            ProxyError::Connect(_) => StatusCode::BAD_GATEWAY,
            ProxyError::ResponseTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream(e) if is_timeout(e.as_ref()) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The short body Traefik answers with, so clients see the same text.
    pub fn response(&self) -> http::Response<Body> {
        let status = self.status();
        let body: &'static str = match status {
            StatusCode::NOT_FOUND => "404 page not found\n",
            StatusCode::SERVICE_UNAVAILABLE => "Service Unavailable",
            StatusCode::GATEWAY_TIMEOUT => "Gateway Timeout",
            StatusCode::BAD_GATEWAY => "Bad Gateway",
            StatusCode::BAD_REQUEST => "Bad Request",
            _ => "Internal Server Error",
        };
        text_response(status, body)
    }
}

fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>()
            && h.is_timeout()
        {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_origin() {
        assert_eq!(ProxyError::NoRoute.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ProxyError::NoServer.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let refused = ConnectError::Io {
            addr: "a".into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(ProxyError::from(refused).status(), StatusCode::BAD_GATEWAY);
        let timeout = ConnectError::Timeout { addr: "a".into() };
        assert_eq!(
            ProxyError::from(timeout).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            ProxyError::ResponseTimeout(std::time::Duration::from_secs(1)).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
    }
}
