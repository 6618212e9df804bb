//! Proxy failures, classified by where they came from (as pingora does):
//! the upstream (502/504), the configuration (503: no server), the client
//! (400, 417, 501) or escale itself (500).

use http::StatusCode;

use super::body::{Body, go_error_response, text_response, untyped_text_response};
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
    /// The client's request body failed on its way (malformed chunked
    /// framing, the client went away): not the backend's fault.
    #[error("client request body: {}", causes(.0.as_ref()))]
    ClientBody(super::body::BoxError),
    #[error("{0} is not supported")]
    NotImplemented(&'static str),
    #[error("the request expects what HTTP does not define")]
    ExpectationFailed,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::NoServer => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect(ConnectError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Connect(
                ConnectError::Io { source, .. } | ConnectError::Tls { source, .. },
            ) if source.kind() == std::io::ErrorKind::TimedOut => StatusCode::GATEWAY_TIMEOUT,
            // escale refused the server's certificate: a matter of
            // configuration, which Traefik answers with a 500 (Go's TLS
            // errors are no network errors; an alert from the server is
            // one, a 502).
            ProxyError::Connect(ConnectError::Tls { source, .. }) if is_tls_refusal(source) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ProxyError::Connect(_) => StatusCode::BAD_GATEWAY,
            ProxyError::ResponseTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream(e) if is_timeout(e.as_ref()) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::BadRequest(_) | ProxyError::ClientBody(_) => StatusCode::BAD_REQUEST,
            ProxyError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ProxyError::ExpectationFailed => StatusCode::EXPECTATION_FAILED,
            ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The short body Traefik answers with, so clients see the same text.
    pub fn response(&self) -> http::Response<Body> {
        let status = self.status();
        // As Go's server: the reason, for the client to fix its request.
        match self {
            ProxyError::BadRequest(why) => {
                return text_response(status, format!("400 Bad Request: {why}\n"));
            }
            ProxyError::ClientBody(_) => {
                return text_response(status, format!("400 Bad Request: {self}\n"));
            }
            _ => {}
        }
        // As Traefik: Go's `http.Error` for a missing route or server; the
        // bare status text, with no type, for a failed forward.
        match status {
            StatusCode::NOT_FOUND => go_error_response(status, "404 page not found\n"),
            StatusCode::SERVICE_UNAVAILABLE => go_error_response(status, "no available server\n"),
            StatusCode::BAD_REQUEST => text_response(status, "Bad Request"),
            StatusCode::NOT_IMPLEMENTED => text_response(status, "Not Implemented"),
            StatusCode::EXPECTATION_FAILED => text_response(status, "Expectation Failed"),
            StatusCode::GATEWAY_TIMEOUT => untyped_text_response(status, "Gateway Timeout"),
            StatusCode::BAD_GATEWAY => untyped_text_response(status, "Bad Gateway"),
            _ => untyped_text_response(status, "Internal Server Error"),
        }
    }
}

/// Whether a TLS handshake failed on escale's side (rustls refused what
/// the server sent) rather than on the network or by the server's alert.
fn is_tls_refusal(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| !matches!(e, rustls::Error::AlertReceived(_)))
}

/// An error and its sources, as one line: hyper's own message ("error
/// reading a body from connection") leaves the cause to its source.
pub fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !line.ends_with(&more) {
            line.push_str(": ");
            line.push_str(&more);
        }
        source = s.source();
    }
    line
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

    fn tls_failure(source: std::io::Error) -> ProxyError {
        ProxyError::Connect(ConnectError::Tls {
            addr: "10.0.0.1:443".into(),
            source,
        })
    }

    #[test]
    fn tls_failures_are_classified_as_traefik_does() {
        let refused = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(
            tls_failure(refused).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let alert = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
        );
        assert_eq!(tls_failure(alert).status(), StatusCode::BAD_GATEWAY);
        let slow = std::io::Error::new(std::io::ErrorKind::TimedOut, "no handshake");
        assert_eq!(tls_failure(slow).status(), StatusCode::GATEWAY_TIMEOUT);
        let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(tls_failure(eof).status(), StatusCode::BAD_GATEWAY);
        // Traefik's own answers: Go's http.Error for 404 and 503, untyped
        // status text for a failed forward.
        let res = ProxyError::NoServer.response();
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let res = tls_failure(std::io::Error::from(std::io::ErrorKind::ConnectionReset)).response();
        assert!(res.headers().get("content-type").is_none());
    }
}
