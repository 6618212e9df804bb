//! `errors`: when the response from the rest of the chain has a status in
//! the configured ranges, its body is dropped and a page fetched from
//! another service is sent instead, with that status (or its rewrite).
//!
//! The request step keeps what the page request needs (the request as this
//! middleware sees it, before inner middlewares change it); the response
//! step decides whether the status is caught. The fetch itself is async and
//! needs the proxy's forwarder, so the handler runs it
//! (`proxy::handler`), as Traefik's middleware calls the service's handler.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version, request};

use super::gourl::{GoPath, query_escape};
use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;
use crate::proxy::forward::request_host;
use crate::routing::Target;

/// Inclusive ranges of status codes (Traefik's `HTTPCodeRanges`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRanges(Vec<(u16, u16)>);

impl StatusRanges {
    /// Parses `500` or `500-599` items; `what` names the setting in errors.
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>, what: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for item in items {
            let bad = || format!("{what}: {item:?} is not a status code or a range like 500-599");
            let (low, high) = match item.trim().split_once('-') {
                Some((l, h)) => (l.trim(), h.trim()),
                None => (item.trim(), item.trim()),
            };
            let low: u16 = low.parse().map_err(|_| bad())?;
            let high: u16 = high.parse().map_err(|_| bad())?;
            if low > high {
                return Err(format!(
                    "{what}: the range {item:?} is empty ({low} is above {high})"
                ));
            }
            ranges.push((low, high));
        }
        Ok(StatusRanges(ranges))
    }

    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|&(l, h)| (l..=h).contains(&status))
    }
}

/// The built `errors` middleware.
#[derive(Debug)]
pub struct ErrorPages {
    caught: StatusRanges,
    /// Checked in order; the first that contains the status gives the code sent.
    rewrites: Vec<(StatusRanges, StatusCode)>,
    service: Target,
    /// `query` with a leading `/`, placeholders not yet filled.
    query: String,
    /// `None`: every request header goes to the page's service.
    request_headers: Option<Vec<HeaderName>>,
}

/// What a page request is made of, kept by the request step.
#[derive(Debug)]
pub struct SeenRequest {
    host: Option<HeaderValue>,
    uri: Uri,
    scheme: &'static str,
    headers: HeaderMap,
}

/// A page to fetch in place of a caught response.
#[derive(Debug)]
pub struct PageRequest {
    pub service: Target,
    /// The page request's head; `Err` with the reason when the configured
    /// query does not make a valid request target.
    pub request: Result<request::Parts, String>,
    /// The status sent with the page.
    pub status: StatusCode,
}

impl ErrorPages {
    /// `service` is the middleware's service, already resolved by the caller
    /// (it needs the compiled services).
    pub fn new(
        name: &str,
        config: &dynamic::ErrorPages,
        service: Target,
    ) -> Result<Self, MiddlewareError> {
        let err = |m: String| MiddlewareError::new(name, m);
        let caught =
            StatusRanges::parse(config.status.iter().map(String::as_str), "status").map_err(err)?;
        let mut rewrites = Vec::with_capacity(config.status_rewrites.len());
        for (from, to) in &config.status_rewrites {
            let ranges = StatusRanges::parse([from.as_str()], "statusRewrites").map_err(err)?;
            let to = u16::try_from(*to)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| err(format!("statusRewrites: {to} is not a status code")))?;
            rewrites.push((ranges, to));
        }
        let request_headers = match &config.error_request_headers {
            None => None,
            Some(names) => Some(
                names
                    .iter()
                    .map(|n| {
                        HeaderName::from_bytes(n.trim().as_bytes()).map_err(|_| {
                            err(format!("errorRequestHeaders: {n:?} is not a header name"))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let query = if config.query.is_empty() {
            String::new()
        } else {
            format!("/{}", config.query.trim_start_matches('/'))
        };
        Ok(ErrorPages {
            caught,
            rewrites,
            service,
            query,
            request_headers,
        })
    }

    /// The page request for a caught status, built from what the request
    /// step saw.
    fn page_request(&self, seen: SeenRequest, original: StatusCode) -> PageRequest {
        let status = self
            .rewrites
            .iter()
            .find(|(from, _)| from.contains(original.as_u16()))
            .map_or(original, |(_, to)| *to);
        PageRequest {
            service: self.service.clone(),
            request: self.page_head(seen, status, original),
            status,
        }
    }

    fn page_head(
        &self,
        seen: SeenRequest,
        status: StatusCode,
        original: StatusCode,
    ) -> Result<request::Parts, String> {
        let host = seen
            .host
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let target = if self.query.is_empty() {
            "/".to_owned()
        } else {
            let url = original_url(seen.scheme, host, &seen.uri);
            self.query
                .replace("{status}", status.as_str())
                .replace("{originalStatus}", original.as_str())
                .replace("{url}", &query_escape(&url))
        };
        let uri = request_target(&target)?;
        let mut headers = match &self.request_headers {
            None => seen.headers,
            Some(names) => {
                let mut kept = HeaderMap::with_capacity(names.len());
                for name in names {
                    for v in seen.headers.get_all(name) {
                        kept.append(name.clone(), v.clone());
                    }
                }
                kept
            }
        };
        // The page request has no body, and is no upgrade: what described
        // the client's own body or upgrade does not go with it (Go's request
        // writer leaves out the body's headers too).
        for h in [
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::TRAILER,
            header::EXPECT,
            header::CONNECTION,
            header::UPGRADE,
        ] {
            headers.remove(h);
        }
        if let Some(host) = seen.host {
            headers.insert(header::HOST, host);
        }
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.method = Method::GET;
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        parts.headers = headers;
        Ok(parts)
    }
}

/// The client's URL as Go prints it (`scheme://host/path?query`), for `{url}`.
fn original_url(scheme: &str, host: &str, uri: &Uri) -> String {
    let path = uri.path();
    let path = GoPath::parse(path).map_or_else(|_| path.to_owned(), |p| p.escaped().into_owned());
    let mut url = format!("{scheme}://{host}{path}");
    if let Some(q) = uri.query().filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// The request target for a page path: Go's `RequestURI` of the parsed URL
/// (the path re-encoded where Go would, the query kept, no fragment).
fn request_target(target: &str) -> Result<Uri, String> {
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let path = GoPath::parse(path).map_err(|e| format!("the page path {path:?}: {e}"))?;
    let mut out = path.request_uri_path().into_owned();
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out.parse::<Uri>()
        .map_err(|e| format!("the page target {out:?}: {e}"))
}

impl Layer for ErrorPages {
    fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        ctx.seen_by_error_pages.push(SeenRequest {
            host: request_host(req),
            uri: req.uri.clone(),
            scheme: ctx.scheme,
            headers: req.headers.clone(),
        });
        Flow::Continue
    }

    fn error_page(&self, status: StatusCode, ctx: &mut RequestCtx) -> Option<PageRequest> {
        // Response steps run in reverse, so the last request kept is this one's.
        let seen = ctx.seen_by_error_pages.pop()?;
        self.caught
            .contains(status.as_u16())
            .then(|| self.page_request(seen, status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    fn config(status: &[&str], query: &str) -> dynamic::ErrorPages {
        dynamic::ErrorPages {
            status: status.iter().map(|s| s.to_string()).collect(),
            service: "pages".into(),
            query: query.into(),
            ..Default::default()
        }
    }

    fn build(c: &dynamic::ErrorPages) -> Result<ErrorPages, MiddlewareError> {
        ErrorPages::new("e@file", c, Target::Internal("noop@internal".into()))
    }

    fn request(uri: &str, headers: &[(&str, &str)]) -> request::Parts {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    /// Runs the request step, then the response step with `status`.
    fn run(mw: &ErrorPages, req: &mut request::Parts, status: u16) -> Option<PageRequest> {
        let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), "https");
        assert!(matches!(mw.on_request(req, &mut ctx), Flow::Continue));
        let page = mw.error_page(StatusCode::from_u16(status).unwrap(), &mut ctx);
        assert!(
            ctx.seen_by_error_pages.is_empty(),
            "the kept request is taken back"
        );
        page
    }

    #[test]
    fn ranges_parse_and_match_inclusively() {
        let r = StatusRanges::parse(["404", "500-502", " 505 - 599 "], "status").unwrap();
        for (code, caught) in [
            (404, true),
            (405, false),
            (500, true),
            (502, true),
            (503, false),
        ] {
            assert_eq!(r.contains(code), caught, "{code}");
        }
        assert!(r.contains(599) && r.contains(505) && !r.contains(600));
        for bad in ["abc", "500-", "-500", "5OO", "1-2-3", ""] {
            let e = StatusRanges::parse([bad], "status").unwrap_err();
            assert!(e.starts_with("status: "), "{e}");
        }
        let e = StatusRanges::parse(["599-500"], "status").unwrap_err();
        assert!(e.contains("is empty"), "{e}");
    }

    #[test]
    fn bad_settings_name_the_key() {
        let mut c = config(&["50x"], "/{status}.html");
        assert!(
            build(&c)
                .unwrap_err()
                .message
                .starts_with("status: \"50x\"")
        );
        c.status = vec!["500".into()];
        c.status_rewrites = BTreeMap::from([("5xx".to_string(), 500)]);
        assert!(
            build(&c)
                .unwrap_err()
                .message
                .starts_with("statusRewrites: \"5xx\"")
        );
        c.status_rewrites = BTreeMap::from([("502".to_string(), 70000)]);
        assert_eq!(
            build(&c).unwrap_err().message,
            "statusRewrites: 70000 is not a status code"
        );
        c.status_rewrites.clear();
        c.error_request_headers = Some(vec!["bad header".into()]);
        assert!(
            build(&c)
                .unwrap_err()
                .message
                .starts_with("errorRequestHeaders:")
        );
    }

    #[test]
    fn caught_status_gives_a_get_for_the_page_with_the_client_headers() {
        let mw = build(&config(&["500-599"], "{status}.html")).unwrap();
        let mut req = request(
            "/app/x?y=1",
            &[
                ("host", "shop.example:8443"),
                ("accept", "text/html"),
                ("content-length", "5"),
                ("x-custom", "a"),
                ("x-custom", "b"),
            ],
        );
        req.method = Method::POST;
        let page = run(&mw, &mut req, 503).expect("503 is caught");
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
        let head = page.request.unwrap();
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.uri, "/503.html");
        assert_eq!(head.headers["host"], "shop.example:8443");
        assert_eq!(head.headers["accept"], "text/html");
        assert_eq!(head.headers.get_all("x-custom").iter().count(), 2);
        assert!(head.headers.get("content-length").is_none(), "no body goes");
    }

    #[test]
    fn other_statuses_pass() {
        let mw = build(&config(&["500-599"], "/{status}.html")).unwrap();
        assert!(run(&mw, &mut request("/", &[("host", "a")]), 404).is_none());
        assert!(run(&mw, &mut request("/", &[("host", "a")]), 200).is_none());
        let none = build(&config(&[], "/x")).unwrap();
        assert!(run(&none, &mut request("/", &[("host", "a")]), 500).is_none());
    }

    #[test]
    fn rewrites_change_the_status_sent_and_fill_the_placeholders() {
        let mut c = config(
            &["400-599"],
            "/e?code={status}&was={originalStatus}&from={url}",
        );
        c.status_rewrites =
            BTreeMap::from([("418".to_string(), 404), ("502-504".to_string(), 500)]);
        let mw = build(&c).unwrap();
        let page = run(
            &mw,
            &mut request("/a%20b%2F?q=1&r=%C3%A9", &[("host", "h.test")]),
            503,
        )
        .expect("caught");
        assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            page.request.unwrap().uri,
            "/e?code=500&was=503&from=https%3A%2F%2Fh.test%2Fa%2520b%252F%3Fq%3D1%26r%3D%25C3%25A9"
        );
        let page = run(&mw, &mut request("/", &[("host", "h")]), 418).unwrap();
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        let page = run(&mw, &mut request("/", &[("host", "h")]), 501).unwrap();
        assert_eq!(page.status, StatusCode::NOT_IMPLEMENTED);
    }

    #[test]
    fn listed_request_headers_only_and_an_empty_query_asks_for_the_root() {
        let mut c = config(&["404"], "");
        c.error_request_headers = Some(vec!["Accept".into(), "X-Missing".into()]);
        let mw = build(&c).unwrap();
        let head = run(
            &mw,
            &mut request("/x", &[("host", "h"), ("accept", "a"), ("cookie", "c")]),
            404,
        )
        .unwrap()
        .request
        .unwrap();
        assert_eq!(head.uri, "/");
        assert_eq!(head.headers.len(), 2, "{:?}", head.headers);
        assert_eq!(head.headers["accept"], "a");
        assert_eq!(
            head.headers["host"], "h",
            "the page is asked of the client's host"
        );
    }

    #[test]
    fn a_target_the_uri_type_refuses_is_an_error_not_a_panic() {
        let mw = build(&config(&["500"], "/%zz")).unwrap();
        let page = run(&mw, &mut request("/", &[("host", "h")]), 500).unwrap();
        assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
        let e = page.request.unwrap_err();
        assert!(e.contains("%zz"), "{e}");
    }
}
