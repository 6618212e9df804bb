//! Request-head helpers shared by the middlewares: Go's view of a request
//! (`RequestURI`, `Host`), a path change that keeps the query, and the short
//! plain-text answers Go's `http.Error` writes.

use std::borrow::Cow;

use http::header::{HOST, X_CONTENT_TYPE_OPTIONS};
use http::uri::PathAndQuery;
use http::{HeaderValue, Response, StatusCode, Uri, Version, request};

use super::Flow;
use super::gourl::GoPath;
use crate::proxy::body::{Body, text_response};

/// What Go's `http.Error` writes: the message, a newline, `nosniff`.
pub fn go_error(status: StatusCode, message: &str) -> Response<Body> {
    let mut res = text_response(status, format!("{message}\n"));
    res.headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

pub fn bad_request() -> Response<Body> {
    go_error(StatusCode::BAD_REQUEST, "Bad Request")
}

/// A request the middleware cannot rewrite: answered with a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRequest;

impl From<BadRequest> for Flow {
    fn from(_: BadRequest) -> Flow {
        Flow::Respond(bad_request())
    }
}

/// The request path as Go parses it. Go's server refuses a target with a
/// bad `%` escape before any middleware runs, hence the 400.
pub fn parse_path(parts: &request::Parts) -> Result<GoPath, BadRequest> {
    GoPath::parse(parts.uri.path()).map_err(|_| BadRequest)
}

/// Replaces the path of the request URI, keeping scheme, authority and
/// query. The path always gets a leading `/`, as an origin-form target needs.
pub fn set_path(parts: &mut request::Parts, path: &str) -> Result<(), BadRequest> {
    let mut pq = String::with_capacity(path.len() + 1 + parts.uri.query().map_or(0, str::len));
    if !path.starts_with('/') {
        pq.push('/');
    }
    pq.push_str(path);
    if let Some(q) = parts.uri.query() {
        pq.push('?');
        pq.push_str(q);
    }
    let pq = PathAndQuery::try_from(pq).map_err(|_| BadRequest)?;
    let mut uri_parts = parts.uri.clone().into_parts();
    uri_parts.path_and_query = Some(pq);
    parts.uri = Uri::from_parts(uri_parts).map_err(|_| BadRequest)?;
    Ok(())
}

/// Go's `Request.RequestURI`: the target as the client sent it, which for
/// HTTP/2 is the `:path` only.
pub fn request_uri(parts: &request::Parts) -> Cow<'_, str> {
    let uri = &parts.uri;
    if parts.version == Version::HTTP_2 || uri.scheme().is_none() {
        match uri.path_and_query() {
            Some(pq) => Cow::Borrowed(pq.as_str()),
            None => Cow::Owned(uri.to_string()),
        }
    } else {
        Cow::Owned(uri.to_string())
    }
}

/// Go's `Request.Host`: the authority of an absolute target (or HTTP/2
/// `:authority`), else the `Host` header. A host that is not text is refused
/// as Go's server refuses it.
pub fn host(parts: &request::Parts) -> Result<&str, BadRequest> {
    if let Some(a) = parts.uri.authority() {
        return Ok(a.as_str());
    }
    match parts.headers.get(HOST) {
        None => Ok(""),
        Some(v) => v.to_str().map_err(|_| BadRequest),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn parts(uri: &str) -> request::Parts {
        http::Request::builder()
            .uri(uri)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    /// Runs `layer` on a request for `uri` from 127.0.0.1 over http: the status it answered
    /// with (200 when it let the request through) and the request as it left the layer.
    pub fn run_layer(layer: &dyn super::super::Layer, uri: &str) -> (u16, request::Parts) {
        let mut req = parts(uri);
        let mut ctx = super::super::RequestCtx::new(std::net::Ipv4Addr::LOCALHOST.into(), "http");
        let status = match layer.on_request(&mut req, &mut ctx) {
            Flow::Continue => 200,
            Flow::Respond(res) => res.status().as_u16(),
            Flow::Wait(_) => panic!("a request head layer never waits"),
        };
        (status, req)
    }

    #[test]
    fn set_path_keeps_query_and_authority() {
        let mut p = parts("/a/b?x=1&y");
        set_path(&mut p, "/c").unwrap();
        assert_eq!(p.uri, "/c?x=1&y");
        let mut p = parts("/a?");
        set_path(&mut p, "/c").unwrap();
        assert_eq!(p.uri.to_string(), "/c?");
        let mut p = parts("http://example.com:8080/a?q");
        set_path(&mut p, "").unwrap();
        assert_eq!(p.uri, "http://example.com:8080/?q");
        let mut p = parts("/a");
        set_path(&mut p, "rel").unwrap();
        assert_eq!(p.uri, "/rel");
    }

    #[test]
    fn set_path_refuses_bad_paths_without_panicking() {
        let mut p = parts("/a");
        assert_eq!(set_path(&mut p, "/a b"), Err(BadRequest));
        assert_eq!(p.uri, "/a");
        let long = "/x".repeat(40_000);
        assert!(set_path(&mut p, &long).is_err());
        // An authority-form target cannot take a path.
        let mut p = parts("example.com:443");
        assert!(set_path(&mut p, "/x").is_err());
    }

    #[test]
    fn request_uri_and_host_follow_go() {
        let mut p = parts("/a?b");
        p.headers.insert(HOST, HeaderValue::from_static("foo:8080"));
        assert_eq!(request_uri(&p), "/a?b");
        assert_eq!(host(&p).unwrap(), "foo:8080");
        let mut p = parts("http://bar/a");
        p.headers.insert(HOST, HeaderValue::from_static("foo"));
        assert_eq!(request_uri(&p), "http://bar/a");
        assert_eq!(host(&p).unwrap(), "bar");
        p.version = Version::HTTP_2;
        assert_eq!(request_uri(&p), "/a");
        let mut p = parts("/");
        p.headers
            .insert(HOST, HeaderValue::from_bytes(b"h\xffst").unwrap());
        assert!(host(&p).is_err());
        let p = parts("/");
        assert_eq!(host(&p).unwrap(), "");
    }
}
