//! `forwardAuth`: each request is first asked of an authentication server
//! (Authelia, authentik, oauth2-proxy...), as Traefik does it. A 2xx answer
//! lets the request through, with the headers named in
//! `authResponseHeaders` (or matching `authResponseHeadersRegex`) copied
//! onto it; any other answer goes back to the client as the auth server
//! gave it (status, headers, body; `Location` made absolute against the
//! auth address unless `preserveLocationHeader`).
//!
//! The auth request is a GET (the request's own method with
//! `preserveRequestMethod`) to `address` carrying the client's headers
//! (all, or `authRequestHeaders`) without hop-by-hop ones, plus
//! `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri` and `-For`, handled as
//! `trustForwardHeader` says (unset, false and true differ, as in Traefik).
//! An `https` auth server is checked as Go's client would, with `tls`
//! (`ca`, `cert`/`key`, `insecureSkipVerify`). Not supported, and refused
//! rather than ignored: `forwardBody`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, request, response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use regex::Regex;

use super::{Deferred, Finish, Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;
use crate::goregex;
use crate::proxy::body::{Body, text_response};
use crate::proxy::headers::{
    self, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_METHOD, X_FORWARDED_PORT,
    X_FORWARDED_PROTO, X_FORWARDED_URI,
};
use crate::tls::client::{ClientSettings, TlsClient};
use crate::tls::connector::TlsConnector;

/// Traefik's client timeout for the auth request.
const AUTH_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct ForwardAuth {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    address: Uri,
    client: Client<TlsConnector, Full<Bytes>>,
    /// `None`: unset, Traefik's legacy behaviour.
    trust_forward_header: Option<bool>,
    response_headers: Vec<HeaderName>,
    response_headers_regex: Option<Regex>,
    request_headers: Vec<HeaderName>,
    cookies_to_response: Vec<String>,
    preserve_location: bool,
    preserve_method: bool,
    max_response_body: Option<usize>,
    signin_url: Option<HeaderValue>,
}

/// Traefik's `ClientTLS` as a transport's TLS settings.
fn tls_settings(tls: Option<&dynamic::ClientTls>) -> ClientSettings {
    let Some(tls) = tls else {
        return ClientSettings::default();
    };
    ClientSettings {
        insecure_skip_verify: tls.insecure_skip_verify,
        root_cas: (!tls.ca.is_empty())
            .then(|| tls.ca.clone())
            .into_iter()
            .collect(),
        certificates: (!tls.cert.is_empty() || !tls.key.is_empty())
            .then(|| dynamic::TlsCertificate {
                cert_file: tls.cert.clone(),
                key_file: tls.key.clone(),
                stores: Vec::new(),
            })
            .into_iter()
            .collect(),
        ..ClientSettings::default()
    }
}

impl ForwardAuth {
    pub fn new(name: &str, config: &dynamic::ForwardAuth) -> Result<Self, MiddlewareError> {
        let error = |why: String| MiddlewareError::new(name, why);
        let address: Uri = config
            .address
            .trim()
            .parse()
            .map_err(|_| error(format!("invalid address {:?}", config.address)))?;
        match address.scheme_str() {
            Some("http" | "https") => {}
            _ => {
                return Err(error(format!(
                    "address {:?} is not an http URL",
                    config.address
                )));
            }
        }
        if address.host().is_none() {
            return Err(error(format!("address {:?} has no host", config.address)));
        }
        if config.forward_body {
            return Err(error(
                "forwardBody is not supported by escale: refused rather than ask the auth \
                 server without the body it expects"
                    .into(),
            ));
        }
        let tls = match address.scheme_str() {
            Some("https") => Some(Arc::new(
                TlsClient::build(&tls_settings(config.tls.as_ref()))
                    .map_err(|e| error(format!("tls: {e}")))?,
            )),
            _ => None,
        };
        let names = |list: &[String], what: &str| {
            list.iter()
                .map(|h| {
                    HeaderName::from_bytes(h.trim().as_bytes())
                        .map_err(|_| error(format!("invalid header name {h:?} in {what}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let response_headers_regex = match config.auth_response_headers_regex.as_str() {
            "" => None,
            re => Some(
                goregex::compile(re)
                    .map_err(|e| error(format!("invalid authResponseHeadersRegex {re:?}: {e}")))?,
            ),
        };
        let signin_url = match config.auth_signin_url.trim() {
            "" => None,
            url => Some(
                HeaderValue::from_str(url)
                    .map_err(|_| error(format!("invalid authSigninURL {url:?}")))?,
            ),
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(AUTH_TIMEOUT));
        Ok(ForwardAuth {
            shared: Arc::new(Shared {
                address,
                client: Client::builder(TokioExecutor::new())
                    .build(TlsConnector::new(connector, tls)),
                trust_forward_header: config.trust_forward_header,
                response_headers: names(&config.auth_response_headers, "authResponseHeaders")?,
                response_headers_regex,
                request_headers: names(&config.auth_request_headers, "authRequestHeaders")?,
                cookies_to_response: config.add_auth_cookies_to_response.clone(),
                preserve_location: config.preserve_location_header,
                preserve_method: config.preserve_request_method,
                max_response_body: config
                    .max_response_body_size
                    .and_then(|n| usize::try_from(n).ok()),
                signin_url,
            }),
        })
    }
}

impl Layer for ForwardAuth {
    fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        let auth = self.shared.auth_request(req, ctx);
        let shared = self.shared.clone();
        Flow::Wait(Deferred::new(async move {
            let outcome = shared.ask(auth).await;
            Box::new(move |req: &mut request::Parts, ctx: &mut RequestCtx| {
                shared.apply(outcome, req, ctx)
            }) as Finish
        }))
    }

    fn on_response(&self, res: &mut response::Parts, ctx: &RequestCtx) {
        if self.shared.cookies_to_response.is_empty() {
            return;
        }
        // The auth server's cookies of the listed names replace the
        // backend's of the same names.
        let listed = |v: &HeaderValue| {
            cookie_name(v).is_some_and(|n| self.shared.cookies_to_response.iter().any(|c| c == n))
        };
        let kept: Vec<HeaderValue> = res
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter(|v| !listed(v))
            .cloned()
            .collect();
        res.headers.remove(header::SET_COOKIE);
        for v in kept.into_iter().chain(ctx.auth_cookies.iter().cloned()) {
            res.headers.append(header::SET_COOKIE, v);
        }
    }
}

/// What the auth server said.
enum Outcome {
    Allowed(HeaderMap),
    Refused(Response<Body>),
    /// No answer: a 500 without a body, as Traefik.
    Failed,
}

impl Shared {
    fn auth_request(&self, req: &request::Parts, ctx: &RequestCtx) -> Request<Full<Bytes>> {
        let mut headers = req.headers.clone();
        let proxy_authorization = headers.get(header::PROXY_AUTHORIZATION).cloned();
        headers::remove_hop_by_hop(&mut headers);
        // Meant for the auth server (RFC 7235 4.4).
        if let Some(v) = proxy_authorization {
            headers.insert(header::PROXY_AUTHORIZATION, v);
        }
        // The request's own Host is for the backend; the client's host goes
        // in X-Forwarded-Host. Its body is not sent (as Go's `ContentLength`,
        // the length is not a header there).
        headers.remove(header::HOST);
        headers.remove(header::CONTENT_LENGTH);
        let trust = self.trust_forward_header;
        if trust == Some(false) {
            headers::remove_forwarded_family(&mut headers);
        }
        if !self.request_headers.is_empty() {
            let mut kept = HeaderMap::new();
            let mut wanted = self.request_headers.clone();
            // When trusted, Traefik adds the whole forwarded family.
            if trust == Some(true) {
                wanted.extend(headers::FORWARDED_FAMILY.iter().map(|n| (*n).clone()));
            }
            for name in &wanted {
                for v in headers.get_all(name) {
                    kept.append(name.clone(), v.clone());
                }
            }
            headers = kept;
        }
        let client_ip = HeaderValue::from_str(&ctx.client_ip.to_string()).ok();
        let method = HeaderValue::from_str(req.method.as_str()).ok();
        let host = req.headers.get(header::HOST).cloned().or_else(|| {
            req.uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let uri = req
            .uri
            .path_and_query()
            .and_then(|p| HeaderValue::from_str(p.as_str()).ok());
        let proto = HeaderValue::from_static(ctx.scheme);
        let set = |headers: &mut HeaderMap, name: &HeaderName, value: Option<HeaderValue>| {
            if let Some(v) = value {
                headers.insert(name.clone(), v);
            }
        };
        match trust {
            // Legacy: every value set from the request, X-Forwarded-For
            // replaced by the client alone.
            None => {
                set(&mut headers, &X_FORWARDED_FOR, client_ip);
                set(&mut headers, &X_FORWARDED_PROTO, Some(proto));
                set(&mut headers, &X_FORWARDED_METHOD, method);
                set(&mut headers, &X_FORWARDED_HOST, host);
                set(&mut headers, &X_FORWARDED_URI, uri);
            }
            // Set when absent (all are, after `false` removed them); the
            // client appended to X-Forwarded-For.
            Some(_) => {
                if let Some(ip) = client_ip {
                    headers::append_forwarded_for(&mut headers, &ip);
                }
                let port = self.forwarded_port(req, &headers, ctx);
                for (name, value) in [
                    (&X_FORWARDED_METHOD, method),
                    (&X_FORWARDED_PROTO, Some(proto)),
                    (&X_FORWARDED_PORT, port),
                    (&X_FORWARDED_HOST, host),
                    (&X_FORWARDED_URI, uri),
                ] {
                    if !headers.contains_key(name) {
                        set(&mut headers, name, value);
                    }
                }
            }
        }
        if !req.headers.contains_key(header::USER_AGENT) {
            headers.remove(header::USER_AGENT);
        }
        let method = if self.preserve_method {
            req.method.clone()
        } else {
            Method::GET
        };
        let mut auth = Request::new(Full::new(Bytes::new()));
        *auth.method_mut() = method;
        *auth.uri_mut() = self.address.clone();
        *auth.headers_mut() = headers;
        auth
    }

    /// Go's `forwardedPort`: the Host's port, else 443 for https, else 80.
    fn forwarded_port(
        &self,
        req: &request::Parts,
        headers: &HeaderMap,
        ctx: &RequestCtx,
    ) -> Option<HeaderValue> {
        let host = req.headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if let Some(port) = host
            .and_then(|h| h.rsplit_once(':'))
            .map(|(_, p)| p)
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return HeaderValue::from_str(port).ok();
        }
        let proto = headers
            .get(&X_FORWARDED_PROTO)
            .and_then(|v| v.to_str().ok());
        let secure = matches!(proto, Some("https" | "wss")) || ctx.scheme == "https";
        Some(HeaderValue::from_static(if secure { "443" } else { "80" }))
    }

    async fn ask(&self, auth: Request<Full<Bytes>>) -> Outcome {
        let answer = tokio::time::timeout(AUTH_TIMEOUT, self.client.request(auth)).await;
        let res = match answer {
            Ok(Ok(res)) => res,
            Ok(Err(e)) => {
                // hyper-util's error says only "client error (Connect)"; the
                // cause (a refused certificate, a refused connection) is in
                // its sources.
                let error = crate::proxy::error::causes(&e);
                tracing::error!(address = %self.address, %error, "forwardAuth: error calling the auth server");
                return Outcome::Failed;
            }
            Err(_) => {
                tracing::error!(address = %self.address, "forwardAuth: the auth server did not answer in 30 s");
                return Outcome::Failed;
            }
        };
        let (parts, body) = res.into_parts();
        let body = match self.max_response_body {
            Some(max) => Limited::new(body, max)
                .collect()
                .await
                .map(|b| b.to_bytes()),
            None => body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(Into::into),
        };
        let body = match body {
            Ok(b) => b,
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                // As Traefik: an oversized answer counts as a refusal.
                return Outcome::Refused(text_response(StatusCode::UNAUTHORIZED, ""));
            }
            Err(e) => {
                tracing::debug!(address = %self.address, error = %e, "forwardAuth: error reading the auth server's answer");
                return Outcome::Failed;
            }
        };
        if parts.status.is_success() {
            return Outcome::Allowed(parts.headers);
        }
        if parts.status == StatusCode::UNAUTHORIZED
            && let Some(url) = &self.signin_url
        {
            let mut res = text_response(StatusCode::FOUND, "");
            res.headers_mut().insert(header::LOCATION, url.clone());
            return Outcome::Refused(res);
        }
        let mut headers = parts.headers;
        headers::remove_hop_by_hop(&mut headers);
        headers.remove(header::CONTENT_LENGTH);
        if !self.preserve_location
            && let Some(location) = headers.get(header::LOCATION)
            && let Some(absolute) = self.absolute(location)
        {
            headers.insert(header::LOCATION, absolute);
        }
        let mut res = Response::new(Body::full(body));
        *res.status_mut() = parts.status;
        *res.headers_mut() = headers;
        Outcome::Refused(res)
    }

    /// A `Location` made absolute against the auth server's address, as
    /// Go's `Response.Location` does.
    fn absolute(&self, location: &HeaderValue) -> Option<HeaderValue> {
        let location = location.to_str().ok()?;
        if location.contains("://") {
            return None;
        }
        let authority = self.address.authority()?;
        let scheme = self.address.scheme_str().unwrap_or("http");
        let path = if location.starts_with("//") {
            return HeaderValue::from_str(&format!("{scheme}:{location}")).ok();
        } else if location.starts_with('/') {
            location.to_string()
        } else {
            let base = self.address.path();
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            format!("{}{location}", if dir.is_empty() { "/" } else { dir })
        };
        HeaderValue::from_str(&format!("{scheme}://{authority}{path}")).ok()
    }

    fn apply(&self, outcome: Outcome, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        let auth_headers = match outcome {
            Outcome::Allowed(h) => h,
            Outcome::Refused(res) => return Flow::Respond(res),
            Outcome::Failed => {
                return Flow::Respond(text_response(StatusCode::INTERNAL_SERVER_ERROR, ""));
            }
        };
        for name in &self.response_headers {
            req.headers.remove(name);
            for v in auth_headers.get_all(name) {
                req.headers.append(name.clone(), v.clone());
            }
        }
        if let Some(re) = &self.response_headers_regex {
            let matching = |name: &HeaderName| re.is_match(&canonical(name.as_str()));
            let stale: Vec<HeaderName> = req
                .headers
                .keys()
                .filter(|n| matching(n))
                .cloned()
                .collect();
            for name in stale {
                req.headers.remove(&name);
            }
            for (name, v) in auth_headers.iter().filter(|(n, _)| matching(n)) {
                req.headers.append(name.clone(), v.clone());
            }
        }
        if !self.cookies_to_response.is_empty() {
            ctx.auth_cookies = auth_headers
                .get_all(header::SET_COOKIE)
                .iter()
                .filter(|v| {
                    cookie_name(v).is_some_and(|n| self.cookies_to_response.iter().any(|c| c == n))
                })
                .cloned()
                .collect();
        }
        Flow::Continue
    }
}

/// A cookie's name in a `Set-Cookie` value.
fn cookie_name(v: &HeaderValue) -> Option<&str> {
    let v = v.to_str().ok()?;
    let (name, _) = v.split_once('=')?;
    Some(name.trim())
}

/// Go's canonical form of a header name (`x-auth-user` → `X-Auth-User`),
/// which Traefik's regex is written against.
fn canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let c = if upper { c.to_ascii_uppercase() } else { c };
            upper = c == '-';
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(config: dynamic::ForwardAuth) -> Result<ForwardAuth, String> {
        ForwardAuth::new("fa@file", &config).map_err(|e| e.to_string())
    }

    fn config(address: &str) -> dynamic::ForwardAuth {
        dynamic::ForwardAuth {
            address: address.into(),
            ..Default::default()
        }
    }

    fn incoming() -> (request::Parts, RequestCtx) {
        let parts = http::Request::builder()
            .method("POST")
            .uri("/app/x?y=1")
            .header("host", "app.test:8443")
            .header("cookie", "a=1")
            .header("connection", "keep-alive, x-drop")
            .header("x-drop", "hop")
            .header("x-forwarded-for", "203.0.113.9")
            .header("x-forwarded-prefix", "/app")
            .header("content-length", "12")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        (
            parts,
            RequestCtx::new("192.0.2.7".parse().unwrap(), "https"),
        )
    }

    fn sent(trust: Option<bool>, allowed: &[&str]) -> HeaderMap {
        let mut c = config("http://auth:9091/api/verify");
        c.trust_forward_header = trust;
        c.auth_request_headers = allowed.iter().map(|s| s.to_string()).collect();
        let fa = layer(c).unwrap();
        let (req, ctx) = incoming();
        let auth = fa.shared.auth_request(&req, &ctx);
        assert_eq!(auth.method(), Method::GET);
        assert_eq!(auth.uri(), "http://auth:9091/api/verify");
        auth.headers().clone()
    }

    #[test]
    fn the_auth_request_carries_the_request_as_trust_forward_header_says() {
        // Unset (Traefik's legacy): X-Forwarded-For is the client alone,
        // the others set, and other X-Forwarded-* headers left as sent.
        let h = sent(None, &[]);
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h["x-forwarded-method"], "POST");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "app.test:8443");
        assert_eq!(h["x-forwarded-uri"], "/app/x?y=1");
        assert_eq!(h["x-forwarded-prefix"], "/app");
        assert_eq!(h["cookie"], "a=1");
        for dropped in ["x-drop", "connection", "host", "content-length"] {
            assert!(!h.contains_key(dropped), "{dropped}");
        }
        // false: every forwarded header the request had is dropped first.
        let h = sent(Some(false), &[]);
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h["x-forwarded-port"], "8443");
        assert!(!h.contains_key("x-forwarded-prefix"));
        // true: kept, the client appended to X-Forwarded-For.
        let h = sent(Some(true), &[]);
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 192.0.2.7");
        assert_eq!(h["x-forwarded-prefix"], "/app");
        // authRequestHeaders: only those (and, when trusted, the forwarded ones).
        let h = sent(None, &["Cookie"]);
        assert_eq!(h["cookie"], "a=1");
        assert!(!h.contains_key("x-forwarded-prefix"));
        assert_eq!(h["x-forwarded-uri"], "/app/x?y=1");
    }

    #[test]
    fn a_relative_location_is_made_absolute_against_the_auth_address() {
        let fa = layer(config("http://auth:9091/api/verify")).unwrap();
        let abs = |l: &str| fa.shared.absolute(&HeaderValue::from_str(l).unwrap());
        assert_eq!(abs("/login?rd=1").unwrap(), "http://auth:9091/login?rd=1");
        assert_eq!(abs("login").unwrap(), "http://auth:9091/api/login");
        assert_eq!(
            abs("//sso.test/x").unwrap(),
            "http:sso.test/x".replace(':', "://")
        );
        assert_eq!(abs("https://sso.test/x"), None);
    }

    #[test]
    fn unsupported_or_bad_configurations_are_refused_with_the_reason() {
        assert!(layer(config("https://auth/verify")).is_ok());
        let mut c = config("https://auth/verify");
        c.tls = Some(dynamic::ClientTls {
            ca: "/nonexistent/ca.pem".into(),
            ..Default::default()
        });
        let e = layer(c).unwrap_err();
        assert!(
            e.contains("tls: rootCAs: cannot read CA file `/nonexistent/ca.pem`"),
            "{e}"
        );
        let e = layer(config("auth:9091")).unwrap_err();
        assert!(e.contains("not an http URL"), "{e}");
        let mut c = config("http://auth/verify");
        c.forward_body = true;
        assert!(layer(c).unwrap_err().contains("forwardBody"));
        let mut c = config("http://auth/verify");
        c.auth_response_headers_regex = "(".into();
        assert!(layer(c).unwrap_err().contains("authResponseHeadersRegex"));
        assert_eq!(canonical("x-auth-user"), "X-Auth-User");
    }
}
