//! `redirectScheme` and `redirectRegex`: both rebuild the URL the client
//! used (`scheme://host[:port]/path?query`, as Traefik builds it), rewrite
//! it with a regex, and redirect when the result differs.
//!
//! The status follows Traefik: 302 for GET and 307 otherwise, or 301 and
//! 308 when permanent. The body is the status text; the `Location` is the
//! rewritten URL as Go's `url.Parse(...).String()` writes it, and a URL Go
//! cannot parse answers 502 as Traefik's error handler does.

use http::header::LOCATION;
use http::{HeaderName, HeaderValue, Method, Response, StatusCode, request};
use regex::Regex;

use super::gourl::{normalize_url, split_host_port};
use super::reqhead::{BadRequest, host, request_uri};
use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;
use crate::goregex;
use crate::proxy::body::{Body, untyped_text_response};

static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Traefik's `uriRegexp`, which splits an absolute request target.
const URI_PATTERN: &str = r"^(https?):\/\/(\[[\w:.]+\]|[\w\._-]+)?(:\d+)?(.*)$";

fn uri_regexp(name: &str) -> Result<Regex, MiddlewareError> {
    goregex::compile(URI_PATTERN).map_err(|e| MiddlewareError::new(name, e.to_string()))
}

/// The parts of the client URL that Traefik reads from the target itself.
struct Target<'a> {
    scheme: &'a str,
    host: Option<&'a str>,
    port: Option<&'a str>,
    uri: &'a str,
}

fn split_target<'a>(uri_regexp: &Regex, request_uri: &'a str) -> Option<Target<'a>> {
    let caps = uri_regexp.captures(request_uri)?;
    let non_empty = |i| caps.get(i).map(|m| m.as_str()).filter(|s| !s.is_empty());
    Some(Target {
        scheme: caps.get(1)?.as_str(),
        host: non_empty(2),
        port: non_empty(3),
        uri: caps.get(4).map_or("", |m| m.as_str()),
    })
}

/// What both redirects share once the regex and the URL builder are known.
#[derive(Debug)]
struct Redirect {
    uri_regexp: Regex,
    regex: Regex,
    replacement: String,
    permanent: bool,
}

impl Redirect {
    fn run(&self, old_url: &str, method: &Method) -> Flow {
        if !self.regex.is_match(old_url) {
            return Flow::Continue;
        }
        let new_url = goregex::replace_all(&self.regex, old_url, &self.replacement);
        let location = match normalize_url(&new_url) {
            Ok(l) => l,
            Err(_) => return Flow::Respond(status_text_response(StatusCode::BAD_GATEWAY)),
        };
        if new_url == old_url {
            // Traefik then sets the request URL to the parsed one, which
            // changes nothing that is forwarded.
            return Flow::Continue;
        }
        let Ok(location) = HeaderValue::from_str(&location) else {
            return Flow::Respond(status_text_response(StatusCode::BAD_GATEWAY));
        };
        let status = match (self.permanent, method == Method::GET) {
            (false, true) => StatusCode::FOUND,
            (false, false) => StatusCode::TEMPORARY_REDIRECT,
            (true, true) => StatusCode::MOVED_PERMANENTLY,
            (true, false) => StatusCode::PERMANENT_REDIRECT,
        };
        let mut res = status_text_response(status);
        res.headers_mut().insert(LOCATION, location);
        Flow::Respond(res)
    }
}

/// A response whose body is the status text, as Go writes it.
fn status_text_response(status: StatusCode) -> Response<Body> {
    untyped_text_response(status, status.canonical_reason().unwrap_or(""))
}

#[derive(Debug)]
pub struct RedirectScheme {
    name: String,
    redirect: Redirect,
}

impl RedirectScheme {
    /// The qualified name this layer was built for.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn new(name: &str, cfg: &dynamic::RedirectScheme) -> Result<Self, MiddlewareError> {
        if cfg.scheme.is_empty() {
            return Err(MiddlewareError::new(
                name,
                "redirectScheme.scheme: you must provide a target scheme",
            ));
        }
        let port = cfg.port.as_deref().unwrap_or("");
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MiddlewareError::new(
                name,
                format!("redirectScheme.port: `{port}` is not a port number"),
            ));
        }
        let default_port = matches!(
            (cfg.scheme.as_str(), port),
            ("http", "80") | ("https", "443")
        );
        let port = if port.is_empty() || default_port {
            String::new()
        } else {
            format!(":{port}")
        };
        let replacement = format!("{}://${{2}}{port}${{4}}", cfg.scheme);
        let regex = goregex::compile(r"^(https?:\/\/)?(\[[\w:.]+\]|[\w\._-]+)?(:\d+)?(.*)$")
            .map_err(|e| MiddlewareError::new(name, format!("redirectScheme: {e}")))?;
        Ok(RedirectScheme {
            name: name.to_owned(),
            redirect: Redirect {
                uri_regexp: uri_regexp(name)?,
                regex,
                replacement,
                permanent: cfg.permanent,
            },
        })
    }
}

/// Traefik's `clientRequestURL`: the URL as the client saw it, trusting
/// `X-Forwarded-Proto` and leaving out the scheme's default port.
fn client_request_url(
    uri_regexp: &Regex,
    req: &request::Parts,
    ctx: &RequestCtx,
) -> Result<String, BadRequest> {
    let req_host = host(req)?;
    let (mut host_part, mut port) = match split_host_port(req_host) {
        Some((h, p)) => (h, format!(":{p}")),
        None => (req_host, String::new()),
    };
    let target = request_uri(req);
    let mut scheme = "http";
    let mut uri: &str = &target;
    if let Some(t) = split_target(uri_regexp, &target) {
        scheme = t.scheme;
        if let Some(h) = t.host {
            host_part = h;
        }
        if let Some(p) = t.port {
            port = p.to_owned();
        }
        uri = t.uri;
    }
    if ctx.scheme == "https" {
        scheme = "https";
    }
    if let Some(proto) = req.headers.get(&X_FORWARDED_PROTO)
        && let Ok(proto) = proto.to_str()
    {
        // An upgrade may have set ws/wss: this middleware only sees HTTP(S).
        if proto.eq_ignore_ascii_case("http") || proto.eq_ignore_ascii_case("ws") {
            scheme = "http";
        } else if proto.eq_ignore_ascii_case("https") || proto.eq_ignore_ascii_case("wss") {
            scheme = "https";
        }
    }
    if (scheme == "http" && port == ":80") || (scheme == "https" && port == ":443") {
        port.clear();
    }
    Ok(format!("{scheme}://{host_part}{port}{uri}"))
}

impl Layer for RedirectScheme {
    fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        match client_request_url(&self.redirect.uri_regexp, req, ctx) {
            Ok(url) => self.redirect.run(&url, &req.method),
            Err(e) => e.into(),
        }
    }
}

#[derive(Debug)]
pub struct RedirectRegex {
    name: String,
    redirect: Redirect,
}

impl RedirectRegex {
    /// The qualified name this layer was built for.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn new(name: &str, cfg: &dynamic::RedirectRegex) -> Result<Self, MiddlewareError> {
        let regex = goregex::compile(&cfg.regex).map_err(|e| {
            MiddlewareError::new(
                name,
                format!("redirectRegex.regex: invalid regex `{}`: {e}", cfg.regex),
            )
        })?;
        Ok(RedirectRegex {
            name: name.to_owned(),
            redirect: Redirect {
                uri_regexp: uri_regexp(name)?,
                regex,
                replacement: cfg.replacement.clone(),
                permanent: cfg.permanent,
            },
        })
    }
}

/// Traefik's `rawURL`: like the scheme redirect's URL, but the port is kept
/// as given and `X-Forwarded-Proto` is not read.
fn raw_url(
    uri_regexp: &Regex,
    req: &request::Parts,
    ctx: &RequestCtx,
) -> Result<String, BadRequest> {
    let mut host_part = host(req)?;
    let target = request_uri(req);
    let mut scheme = "http";
    let mut port = "";
    let mut uri: &str = &target;
    if let Some(t) = split_target(uri_regexp, &target) {
        scheme = t.scheme;
        if let Some(h) = t.host {
            host_part = h;
        }
        if let Some(p) = t.port {
            port = p;
        }
        uri = t.uri;
    }
    if ctx.scheme == "https" {
        scheme = "https";
    }
    Ok(format!("{scheme}://{host_part}{port}{uri}"))
}

impl Layer for RedirectRegex {
    fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        match raw_url(&self.redirect.uri_regexp, req, ctx) {
            Ok(url) => self.redirect.run(&url, &req.method),
            Err(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::reqhead::tests::parts;
    use http::header::HOST;
    use http_body_util::BodyExt;
    use std::net::Ipv4Addr;

    struct Case<'a> {
        method: Method,
        uri: &'a str,
        host: Option<&'a str>,
        tls: bool,
        headers: &'a [(&'a str, &'a str)],
    }

    impl<'a> Case<'a> {
        fn get(uri: &'a str) -> Self {
            Case {
                method: Method::GET,
                uri,
                host: None,
                tls: false,
                headers: &[],
            }
        }
    }

    /// Runs a layer; returns the status (200 when it lets the request go)
    /// and the Location.
    fn run(layer: &dyn Layer, case: Case<'_>) -> (u16, Option<String>) {
        let mut req = parts(case.uri);
        req.method = case.method;
        if let Some(h) = case.host {
            req.headers.insert(HOST, HeaderValue::from_str(h).unwrap());
        }
        for (k, v) in case.headers {
            req.headers.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let scheme = if case.tls { "https" } else { "http" };
        let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), scheme);
        match layer.on_request(&mut req, &mut ctx) {
            Flow::Continue => (200, None),
            Flow::Wait(_) => panic!("a redirect never waits"),
            Flow::Respond(res) => (
                res.status().as_u16(),
                res.headers()
                    .get(LOCATION)
                    .map(|l| l.to_str().unwrap().to_owned()),
            ),
        }
    }

    fn scheme(scheme: &str, port: Option<&str>, permanent: bool) -> RedirectScheme {
        RedirectScheme::new(
            "rs@file",
            &dynamic::RedirectScheme {
                scheme: scheme.into(),
                port: port.map(Into::into),
                permanent,
            },
        )
        .unwrap()
    }

    #[test]
    fn uri_regexp_splits_absolute_targets() {
        let re = uri_regexp("x").unwrap();
        let t = split_target(&re, "http://foo:80/x?y").unwrap();
        assert_eq!(
            (t.scheme, t.host, t.port, t.uri),
            ("http", Some("foo"), Some(":80"), "/x?y")
        );
        let t = split_target(&re, "https://[::1]/").unwrap();
        assert_eq!((t.host, t.port), (Some("[::1]"), None));
        assert!(split_target(&re, "/x").is_none());
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn scheme_traefik_cases() {
        // (scheme, port, permanent, request URL, X-Forwarded-Proto, status, Location)
        let cases: &[(
            &str,
            Option<&str>,
            bool,
            &str,
            Option<&str>,
            u16,
            Option<&str>,
        )] = &[
            (
                "https",
                None,
                false,
                "http://foo",
                None,
                302,
                Some("https://foo"),
            ),
            (
                "https",
                None,
                false,
                "http://foo",
                Some("http"),
                302,
                Some("https://foo"),
            ),
            ("https", None, false, "http://foo", Some("https"), 200, None),
            (
                "https",
                None,
                false,
                "http://foo",
                Some("bar"),
                302,
                Some("https://foo"),
            ),
            (
                "https",
                None,
                false,
                "http://foo",
                Some("ws"),
                302,
                Some("https://foo"),
            ),
            ("https", None, false, "http://foo", Some("wss"), 200, None),
            (
                "https",
                None,
                false,
                "http://foo:8080",
                None,
                302,
                Some("https://foo"),
            ),
            (
                "https",
                Some("8443"),
                false,
                "http://foo",
                None,
                302,
                Some("https://foo:8443"),
            ),
            (
                "https",
                Some("8443"),
                false,
                "http://foo:8000",
                None,
                302,
                Some("https://foo:8443"),
            ),
            (
                "https",
                Some("8443"),
                false,
                "https://foo:8000",
                None,
                302,
                Some("https://foo:8443"),
            ),
            (
                "https",
                None,
                false,
                "https://foo:8000",
                None,
                302,
                Some("https://foo"),
            ),
            (
                "https",
                None,
                false,
                "https://foo:8000/theother",
                None,
                302,
                Some("https://foo/theother"),
            ),
            (
                "https",
                Some("8443"),
                true,
                "http://foo",
                None,
                301,
                Some("https://foo:8443"),
            ),
            ("http", Some("80"), false, "http://foo:80", None, 200, None),
            (
                "https",
                Some("443"),
                false,
                "https://foo:443",
                None,
                200,
                None,
            ),
            (
                "wss",
                Some("9443"),
                false,
                "http://foo",
                None,
                302,
                Some("wss://foo:9443"),
            ),
            (
                "wss",
                None,
                false,
                "http://foo",
                None,
                302,
                Some("wss://foo"),
            ),
            (
                "wss",
                None,
                false,
                "http://foo:5678",
                None,
                302,
                Some("wss://foo"),
            ),
            (
                "https",
                None,
                false,
                "http://foo:443",
                None,
                302,
                Some("https://foo"),
            ),
            (
                "http",
                Some("8181"),
                false,
                "http://foo:8080",
                None,
                302,
                Some("http://foo:8181"),
            ),
            (
                "https",
                None,
                false,
                "https://foo:80",
                None,
                302,
                Some("https://foo"),
            ),
            (
                "https",
                None,
                false,
                "http://[::1]",
                None,
                302,
                Some("https://[::1]"),
            ),
            (
                "https",
                Some("8443"),
                false,
                "http://[::1]",
                None,
                302,
                Some("https://[::1]:8443"),
            ),
            (
                "https",
                None,
                false,
                "http://[::1]:80",
                None,
                302,
                Some("https://[::1]"),
            ),
            (
                "https",
                Some("8443"),
                false,
                "http://[::1]:80",
                None,
                302,
                Some("https://[::1]:8443"),
            ),
        ];
        for (sch, port, permanent, url, proto, status, location) in cases {
            let layer = scheme(sch, *port, *permanent);
            let headers: Vec<(&str, &str)> =
                proto.iter().map(|p| ("x-forwarded-proto", *p)).collect();
            let mut case = Case::get(url);
            case.headers = &headers;
            let (got_status, got_location) = run(&layer, case);
            assert_eq!(got_status, *status, "{sch} {port:?} {url} {proto:?}");
            // Traefik's tests send absolute URLs without a path; `http::Uri`
            // gives them the path `/`, which then shows in the `Location`.
            let want = location.map(|l| {
                if url.matches('/').count() == 2 {
                    format!("{l}/")
                } else {
                    l.to_string()
                }
            });
            assert_eq!(got_location, want, "{sch} {port:?} {url} {proto:?}");
        }
    }

    #[test]
    fn scheme_origin_form_uses_host_header_and_tls() {
        let layer = scheme("https", None, false);
        let mut case = Case::get("/path?q=1");
        case.host = Some("example.com:8080");
        assert_eq!(
            run(&layer, case),
            (302, Some("https://example.com/path?q=1".into()))
        );

        // Already on https (TLS): no redirect.
        let mut case = Case::get("/path");
        case.host = Some("example.com");
        case.tls = true;
        assert_eq!(run(&layer, case), (200, None));

        // IPv6 Host header keeps its brackets.
        let mut case = Case::get("/");
        case.host = Some("[::1]:8080");
        assert_eq!(run(&layer, case), (302, Some("https://[::1]/".into())));

        let mut case = Case::get("/submit");
        case.method = Method::POST;
        case.host = Some("example.com");
        assert_eq!(
            run(&layer, case),
            (307, Some("https://example.com/submit".into()))
        );
        let permanent = scheme("https", None, true);
        let mut case = Case::get("/submit");
        case.method = Method::PUT;
        case.host = Some("example.com");
        assert_eq!(
            run(&permanent, case),
            (308, Some("https://example.com/submit".into()))
        );
    }

    #[test]
    fn scheme_build_errors() {
        let err = RedirectScheme::new("rs@file", &dynamic::RedirectScheme::default()).unwrap_err();
        assert!(err.message.contains("redirectScheme.scheme"), "{err}");
        let err = RedirectScheme::new(
            "rs@file",
            &dynamic::RedirectScheme {
                scheme: "https".into(),
                port: Some("44x".into()),
                permanent: false,
            },
        )
        .unwrap_err();
        assert!(err.message.contains("redirectScheme.port"), "{err}");
    }

    fn regex(regex: &str, replacement: &str, permanent: bool) -> RedirectRegex {
        RedirectRegex::new(
            "rr@file",
            &dynamic::RedirectRegex {
                regex: regex.into(),
                replacement: replacement.into(),
                permanent,
            },
        )
        .unwrap()
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn regex_traefik_cases() {
        // (regex, replacement, permanent, method, tls, URL, status, Location)
        let cases: &[(&str, &str, bool, Method, bool, &str, u16, Option<&str>)] = &[
            (
                r"^(?:http?:\/\/)(foo)(\.com)(:\d+)(.*)$",
                "https://${1}bar$2:443$4",
                false,
                Method::GET,
                false,
                "http://foo.com:80",
                302,
                Some("https://foobar.com:443/"),
            ),
            (
                r"^(?:http?:\/\/)(foo)(\.com)(:\d+)(.*)$",
                "https://${1}bar$2:443$4",
                false,
                Method::GET,
                false,
                "http://bar.com:80",
                200,
                None,
            ),
            (
                r"^(.*)$",
                "http://192.168.0.%31/",
                false,
                Method::GET,
                false,
                "http://foo.com:80",
                502,
                None,
            ),
            (
                r"^http://",
                "https://$1",
                true,
                Method::GET,
                false,
                "http://foo",
                301,
                Some("https://foo/"),
            ),
            (
                r"https://foo",
                "http://foo",
                true,
                Method::GET,
                true,
                "https://foo",
                301,
                Some("http://foo/"),
            ),
            (
                r"http://foo:80",
                "https://foo:443",
                false,
                Method::GET,
                false,
                "http://foo:80",
                302,
                Some("https://foo:443/"),
            ),
            (
                r"https://foo:443",
                "http://foo:80",
                false,
                Method::GET,
                true,
                "https://foo:443",
                302,
                Some("http://foo:80/"),
            ),
            (
                r"^http://",
                "https://$1",
                false,
                Method::POST,
                false,
                "http://foo",
                307,
                Some("https://foo/"),
            ),
            (
                r"(https?)://[^/:]+(:[0-9]+)?/(.*)",
                "$1://example.com$2/$3",
                true,
                Method::GET,
                false,
                "http://www.example.com/path",
                301,
                Some("http://example.com/path"),
            ),
            (
                r"(https?)://[^/:]+(:[0-9]+)?/(.*)",
                "$1://example.com$2/$3",
                true,
                Method::GET,
                false,
                "http://www.example.com:8080/path",
                301,
                Some("http://example.com:8080/path"),
            ),
            (
                r"(https?)://[^/:]+(:[0-9]+)?/(.*)",
                "$1://example.com$2/$3",
                true,
                Method::GET,
                false,
                "http://www.example.com/",
                301,
                Some("http://example.com/"),
            ),
            (
                r"(https?)://[^/:]+(:[0-9]+)?/(.*)",
                "$1://example.com$2/$3",
                true,
                Method::GET,
                true,
                "https://www.example.com/path",
                301,
                Some("https://example.com/path"),
            ),
            (
                r"^http://",
                "https://$1",
                true,
                Method::POST,
                false,
                "http://foo",
                308,
                Some("https://foo/"),
            ),
        ];
        for (re, replacement, permanent, method, tls, url, status, location) in cases {
            let layer = regex(re, replacement, *permanent);
            let mut case = Case::get(url);
            case.method = method.clone();
            case.tls = *tls;
            let (got_status, got_location) = run(&layer, case);
            assert_eq!(got_status, *status, "{re} {url}");
            assert_eq!(got_location.as_deref(), *location, "{re} {url}");
        }
    }

    #[test]
    fn regex_sees_host_header_path_and_query() {
        let layer = regex(
            r"^http://old\.example\.com/(.*)",
            "https://new.example.com/${1}",
            true,
        );
        let mut case = Case::get("/a/b?c=d");
        case.host = Some("old.example.com");
        assert_eq!(
            run(&layer, case),
            (301, Some("https://new.example.com/a/b?c=d".into()))
        );
        // The port stays in the URL the regex sees.
        let layer = regex(r"^http://h:8080/", "http://h/", false);
        let mut case = Case::get("/x");
        case.host = Some("h:8080");
        assert_eq!(run(&layer, case), (302, Some("http://h/x".into())));
    }

    #[tokio::test]
    async fn redirect_body_is_the_status_text() {
        let layer = scheme("https", None, false);
        let mut req = parts("/");
        req.headers.insert(HOST, HeaderValue::from_static("foo"));
        let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), "http");
        let Flow::Respond(res) = layer.on_request(&mut req, &mut ctx) else {
            panic!("expected a redirect");
        };
        assert_eq!(res.status(), StatusCode::FOUND);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"Found");
    }

    #[test]
    fn non_text_host_is_refused() {
        let layer = scheme("https", None, false);
        let mut req = parts("/");
        req.headers
            .insert(HOST, HeaderValue::from_bytes(b"\xfe\xff").unwrap());
        let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), "http");
        assert!(matches!(
            layer.on_request(&mut req, &mut ctx),
            Flow::Respond(r) if r.status() == StatusCode::BAD_REQUEST
        ));
    }

    #[test]
    fn invalid_regex_is_a_build_error() {
        let err = RedirectRegex::new(
            "rr@file",
            &dynamic::RedirectRegex {
                regex: "^(.*".into(),
                replacement: "$1".into(),
                permanent: false,
            },
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("redirectRegex.regex: invalid regex"),
            "{err}"
        );
    }
}
