//! `headers`: custom request and response headers, the simple security
//! headers and CORS, in Traefik's order.
//!
//! Traefik runs the custom/CORS handler outside the security handler, so on
//! the way in a CORS preflight is answered before anything else, then custom
//! request headers apply; on the way back the security headers are set first
//! and the custom response headers and CORS headers after them (so a custom
//! header can override or remove a security one). Response headers replace
//! what the backend sent.

use std::sync::atomic::{AtomicUsize, Ordering};

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, HOST, ORIGIN,
    REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, VARY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
    X_XSS_PROTECTION,
};
use http::uri::Authority;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, Uri, request, response};

use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;
use crate::proxy::body::Body;

/// Set on a request whose `X-Forwarded-For` a `headers` middleware emptied:
/// as in Traefik, the proxy must then not add one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoXForwardedFor;

/// Marks the preflight answer of one `headers` layer, so that the layer
/// does not decorate its own answer if the proxy hands it back.
#[derive(Debug, Clone, Copy)]
struct PreflightBy(usize);

/// The request `Origin` a layer needs on the way back (kept in the
/// exchange's guards, the only per-request store `on_response` can see).
struct CorsOrigin {
    layer: usize,
    origin: Vec<u8>,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// A header to set, or to remove when the configured value is empty.
#[derive(Debug)]
struct Custom {
    name: HeaderName,
    value: Option<HeaderValue>,
}

#[derive(Debug, Default)]
struct Cors {
    origin_list: Vec<(String, HeaderValue)>,
    allow_credentials: bool,
    allow_headers_any: bool,
    allow_headers: Option<HeaderValue>,
    allow_methods_any: bool,
    allow_methods: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    add_vary: bool,
}

#[derive(Debug)]
pub struct Headers {
    name: String,
    id: usize,
    custom_request: Vec<Custom>,
    custom_response: Vec<Custom>,
    cors: Option<Cors>,
    /// `Strict-Transport-Security`, sent on HTTPS only.
    sts: Option<HeaderValue>,
    /// The other security headers, always sent.
    secure: Vec<(HeaderName, HeaderValue)>,
}

fn header_value(name: &str, field: &str, value: &str) -> Result<HeaderValue, MiddlewareError> {
    HeaderValue::from_str(value).map_err(|_| {
        MiddlewareError::new(
            name,
            format!("headers.{field}: invalid header value `{value}`"),
        )
    })
}

fn custom_headers(
    name: &str,
    field: &str,
    map: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<Custom>, MiddlewareError> {
    map.iter()
        .map(|(k, v)| {
            let header = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                MiddlewareError::new(name, format!("headers.{field}: invalid header name `{k}`"))
            })?;
            let value = if v.is_empty() {
                None
            } else {
                Some(header_value(name, &format!("{field}.{k}"), v)?)
            };
            Ok(Custom {
                name: header,
                value,
            })
        })
        .collect()
}

/// Joins a list with `,`, as Traefik does, into one header value.
fn joined(
    name: &str,
    field: &str,
    list: &[String],
) -> Result<Option<HeaderValue>, MiddlewareError> {
    if list.is_empty() {
        return Ok(None);
    }
    header_value(name, field, &list.join(",")).map(Some)
}

fn is_set(b: Option<bool>) -> bool {
    b.unwrap_or(false)
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

impl Headers {
    /// The qualified name this layer was built for.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn new(name: &str, cfg: &dynamic::Headers) -> Result<Self, MiddlewareError> {
        let has_custom =
            !cfg.custom_request_headers.is_empty() || !cfg.custom_response_headers.is_empty();
        let has_cors = is_set(cfg.access_control_allow_credentials)
            || !cfg.access_control_allow_headers.is_empty()
            || !cfg.access_control_allow_methods.is_empty()
            || !cfg.access_control_allow_origin_list.is_empty()
            || cfg.access_control_max_age.is_some()
            || is_set(cfg.add_vary_header);
        let has_secure = cfg.sts_seconds.is_some()
            || is_set(cfg.sts_include_subdomains)
            || is_set(cfg.sts_preload)
            || is_set(cfg.frame_deny)
            || non_empty(&cfg.custom_frame_options_value).is_some()
            || is_set(cfg.content_type_nosniff)
            || is_set(cfg.browser_xss_filter)
            || non_empty(&cfg.content_security_policy).is_some()
            || non_empty(&cfg.referrer_policy).is_some();
        // Fields escale does not implement still count as "something set":
        // they are reported elsewhere as unsupported, not as an empty config.
        let has_unsupported = cfg.access_control_expose_headers.is_some()
            || cfg.allowed_hosts.is_some()
            || cfg.hosts_proxy_headers.is_some()
            || cfg.ssl_proxy_headers.is_some()
            || cfg.force_sts_header.is_some()
            || cfg.custom_browser_xss_value.is_some()
            || cfg.content_security_policy_report_only.is_some()
            || cfg.public_key.is_some()
            || cfg.permissions_policy.is_some()
            || cfg.is_development.is_some();
        if !has_custom && !has_cors && !has_secure && !has_unsupported {
            return Err(MiddlewareError::new(
                name,
                "headers: configuration not valid: no header option is set",
            ));
        }

        let cors = if has_cors {
            let origin_list = cfg
                .access_control_allow_origin_list
                .iter()
                .map(|o| {
                    header_value(name, "accessControlAllowOriginList", o).map(|v| (o.clone(), v))
                })
                .collect::<Result<_, _>>()?;
            let max_age = cfg
                .access_control_max_age
                .map(|age| header_value(name, "accessControlMaxAge", &age.to_string()))
                .transpose()?;
            Some(Cors {
                origin_list,
                allow_credentials: is_set(cfg.access_control_allow_credentials),
                allow_headers_any: cfg.access_control_allow_headers.iter().any(|h| h == "*"),
                allow_headers: joined(
                    name,
                    "accessControlAllowHeaders",
                    &cfg.access_control_allow_headers,
                )?,
                allow_methods_any: cfg.access_control_allow_methods.iter().any(|m| m == "*"),
                allow_methods: joined(
                    name,
                    "accessControlAllowMethods",
                    &cfg.access_control_allow_methods,
                )?,
                max_age,
                add_vary: is_set(cfg.add_vary_header),
            })
        } else {
            None
        };

        let sts = match cfg.sts_seconds {
            Some(secs) if secs != 0 => {
                let mut v = format!("max-age={secs}");
                if is_set(cfg.sts_include_subdomains) {
                    v.push_str("; includeSubDomains");
                }
                if is_set(cfg.sts_preload) {
                    v.push_str("; preload");
                }
                Some(header_value(name, "stsSeconds", &v)?)
            }
            _ => None,
        };
        let mut secure = Vec::new();
        if let Some(v) = non_empty(&cfg.custom_frame_options_value) {
            secure.push((
                X_FRAME_OPTIONS,
                header_value(name, "customFrameOptionsValue", v)?,
            ));
        } else if is_set(cfg.frame_deny) {
            secure.push((X_FRAME_OPTIONS, HeaderValue::from_static("DENY")));
        }
        if is_set(cfg.content_type_nosniff) {
            secure.push((X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")));
        }
        if is_set(cfg.browser_xss_filter) {
            secure.push((X_XSS_PROTECTION, HeaderValue::from_static("1; mode=block")));
        }
        if let Some(v) = non_empty(&cfg.content_security_policy) {
            secure.push((
                CONTENT_SECURITY_POLICY,
                header_value(name, "contentSecurityPolicy", v)?,
            ));
        }
        if let Some(v) = non_empty(&cfg.referrer_policy) {
            secure.push((REFERRER_POLICY, header_value(name, "referrerPolicy", v)?));
        }

        Ok(Headers {
            name: name.to_owned(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            custom_request: custom_headers(
                name,
                "customRequestHeaders",
                &cfg.custom_request_headers,
            )?,
            custom_response: custom_headers(
                name,
                "customResponseHeaders",
                &cfg.custom_response_headers,
            )?,
            cors,
            sts,
            secure,
        })
    }

    fn apply_custom_request(&self, req: &mut request::Parts) {
        for Custom { name, value } in &self.custom_request {
            match value {
                None if name == HeaderName::from_static("x-forwarded-for") => {
                    req.headers.remove(name);
                    req.extensions.insert(NoXForwardedFor);
                }
                // Go keeps the host out of the header map: deleting it is a no-op.
                None if name == HOST => {}
                None => {
                    req.headers.remove(name);
                }
                Some(v) if name == HOST => set_host(req, v),
                Some(v) => {
                    req.headers.insert(name.clone(), v.clone());
                }
            }
        }
    }
}

/// Traefik sets `Request.Host`; here the host lives in the `Host` header
/// and, for HTTP/2 or absolute targets, in the URI authority too.
fn set_host(req: &mut request::Parts, value: &HeaderValue) {
    req.headers.insert(HOST, value.clone());
    if req.uri.authority().is_none() {
        return;
    }
    let Ok(authority) = Authority::try_from(value.as_bytes()) else {
        return;
    };
    let mut parts = req.uri.clone().into_parts();
    parts.authority = Some(authority);
    if let Ok(uri) = Uri::from_parts(parts) {
        req.uri = uri;
    }
}

/// The first value of a header, as Go's `Header.Get` reads it.
fn first<'a>(headers: &'a HeaderMap, name: &HeaderName) -> &'a [u8] {
    headers.get(name).map_or(b"", HeaderValue::as_bytes)
}

impl Cors {
    /// Traefik's `matchOrigin`.
    fn match_origin(&self, origin: &[u8]) -> Option<HeaderValue> {
        for (item, value) in &self.origin_list {
            if item.as_bytes() == origin {
                return Some(value.clone());
            }
            if item == "*" {
                // A wildcard cannot be used with credentials: echo the origin.
                return if self.allow_credentials {
                    HeaderValue::from_bytes(origin).ok()
                } else {
                    Some(value.clone())
                };
            }
        }
        None
    }

    fn preflight(
        &self,
        req: &request::Parts,
        origin: &[u8],
        method: &HeaderValue,
    ) -> Response<Body> {
        let mut res = Response::new(Body::empty());
        let h = res.headers_mut();
        if self.allow_credentials {
            h.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if self.allow_headers_any && self.allow_credentials {
            if let Some(requested) = req
                .headers
                .get(ACCESS_CONTROL_REQUEST_HEADERS)
                .filter(|v| !v.is_empty())
            {
                h.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
            }
        } else if let Some(v) = &self.allow_headers {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
        }
        if self.allow_methods_any && self.allow_credentials {
            h.insert(ACCESS_CONTROL_ALLOW_METHODS, method.clone());
        } else if let Some(v) = &self.allow_methods {
            h.insert(ACCESS_CONTROL_ALLOW_METHODS, v.clone());
        }
        if let Some(v) = self.match_origin(origin) {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        if let Some(v) = &self.max_age {
            h.insert(ACCESS_CONTROL_MAX_AGE, v.clone());
        }
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        res
    }
}

impl Layer for Headers {
    fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        if let Some(cors) = &self.cors {
            let origin = first(&req.headers, &ORIGIN);
            let method = req
                .headers
                .get(ACCESS_CONTROL_REQUEST_METHOD)
                .filter(|v| !v.is_empty());
            if let Some(method) = method
                && !origin.is_empty()
                && req.method == Method::OPTIONS
            {
                let mut res = cors.preflight(req, origin, method);
                res.extensions_mut().insert(PreflightBy(self.id));
                return Flow::Respond(res);
            }
        }
        self.apply_custom_request(req);
        if let Some(cors) = &self.cors
            && !cors.origin_list.is_empty()
        {
            // Read after the custom headers, as Traefik reads the forwarded request.
            let origin = first(&req.headers, &ORIGIN).to_vec();
            ctx.guards.push(Box::new(CorsOrigin {
                layer: self.id,
                origin,
            }));
        }
        Flow::Continue
    }

    fn on_response(&self, res: &mut response::Parts, ctx: &RequestCtx) {
        if res
            .extensions
            .get::<PreflightBy>()
            .is_some_and(|p| p.0 == self.id)
        {
            return;
        }
        if ctx.scheme == "https"
            && let Some(sts) = &self.sts
        {
            res.headers.insert(STRICT_TRANSPORT_SECURITY, sts.clone());
        }
        for (name, value) in &self.secure {
            res.headers.insert(name.clone(), value.clone());
        }
        for Custom { name, value } in &self.custom_response {
            match value {
                None => {
                    res.headers.remove(name);
                }
                Some(v) => {
                    res.headers.insert(name.clone(), v.clone());
                }
            }
        }
        let Some(cors) = &self.cors else {
            return;
        };
        let origin = ctx.guards.iter().find_map(|g| {
            (**g)
                .downcast_ref::<CorsOrigin>()
                .filter(|c| c.layer == self.id)
        });
        if let Some(origin) = origin
            && let Some(v) = cors.match_origin(&origin.origin)
        {
            res.headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        if cors.allow_credentials {
            res.headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if cors.add_vary {
            let vary = first(&res.headers, &VARY);
            if vary == b"Origin" {
                return;
            }
            let mut value = vary.to_vec();
            if !value.is_empty() {
                value.push(b',');
            }
            value.extend_from_slice(b"Origin");
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                res.headers.insert(VARY, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::reqhead::tests::parts;
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    fn ctx(scheme: &'static str) -> RequestCtx {
        RequestCtx::new(Ipv4Addr::LOCALHOST.into(), scheme)
    }

    fn response(headers: &[(&str, &str)]) -> response::Parts {
        let mut b = http::Response::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn headers(cfg: dynamic::Headers) -> Headers {
        Headers::new("h@file", &cfg).unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn get<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
        h.get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn custom_request_headers_set_remove_and_host() {
        let mw = headers(dynamic::Headers {
            custom_request_headers: map(&[
                ("X-Custom", "value"),
                ("X-Remove", ""),
                ("Host", "backend.internal"),
                ("X-Forwarded-For", ""),
            ]),
            ..Default::default()
        });
        let mut req = parts("/");
        req.headers
            .append("x-custom", HeaderValue::from_static("old1"));
        req.headers
            .append("x-custom", HeaderValue::from_static("old2"));
        req.headers
            .insert("x-remove", HeaderValue::from_static("gone"));
        req.headers
            .insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        req.headers
            .insert(HOST, HeaderValue::from_static("public.example"));
        let mut c = ctx("http");
        assert!(matches!(mw.on_request(&mut req, &mut c), Flow::Continue));
        let all: Vec<_> = req.headers.get_all("x-custom").iter().collect();
        assert_eq!(all, ["value"]);
        assert!(req.headers.get("x-remove").is_none());
        assert!(req.headers.get("x-forwarded-for").is_none());
        assert_eq!(
            req.extensions.get::<NoXForwardedFor>(),
            Some(&NoXForwardedFor)
        );
        assert_eq!(get(&req.headers, "host"), Some("backend.internal"));
    }

    #[test]
    fn host_rewrite_updates_an_absolute_target() {
        let mw = headers(dynamic::Headers {
            custom_request_headers: map(&[("host", "b.internal:81")]),
            ..Default::default()
        });
        let mut req = parts("http://a.example/x?y");
        mw.on_request(&mut req, &mut ctx("http"));
        assert_eq!(req.uri, "http://b.internal:81/x?y");
        // An empty Host is a no-op, as in Go.
        let mw = headers(dynamic::Headers {
            custom_request_headers: map(&[("Host", "")]),
            ..Default::default()
        });
        let mut req = parts("/");
        req.headers.insert(HOST, HeaderValue::from_static("keep"));
        mw.on_request(&mut req, &mut ctx("http"));
        assert_eq!(get(&req.headers, "host"), Some("keep"));
    }

    #[test]
    fn security_headers_and_custom_override() {
        let mw = headers(dynamic::Headers {
            frame_deny: Some(true),
            content_type_nosniff: Some(true),
            browser_xss_filter: Some(true),
            referrer_policy: Some("no-referrer".into()),
            content_security_policy: Some("default-src 'self'".into()),
            sts_seconds: Some(31536000),
            sts_include_subdomains: Some(true),
            sts_preload: Some(true),
            custom_response_headers: map(&[("X-Powered-By", ""), ("X-XSS-Protection", "0")]),
            ..Default::default()
        });
        let mut res = response(&[("x-powered-by", "php"), ("x-frame-options", "SAMEORIGIN")]);
        let mut c = ctx("https");
        let mut req = parts("/");
        mw.on_request(&mut req, &mut c);
        mw.on_response(&mut res, &c);
        let h = &res.headers;
        assert_eq!(get(h, "x-frame-options"), Some("DENY"));
        assert_eq!(get(h, "x-content-type-options"), Some("nosniff"));
        assert_eq!(get(h, "x-xss-protection"), Some("0"));
        assert_eq!(get(h, "referrer-policy"), Some("no-referrer"));
        assert_eq!(
            get(h, "content-security-policy"),
            Some("default-src 'self'")
        );
        assert_eq!(
            get(h, "strict-transport-security"),
            Some("max-age=31536000; includeSubDomains; preload")
        );
        assert!(h.get("x-powered-by").is_none());

        // No HSTS over plain HTTP.
        let mut res = response(&[]);
        mw.on_response(&mut res, &ctx("http"));
        assert!(res.headers.get("strict-transport-security").is_none());
    }

    #[test]
    fn custom_frame_options_wins_and_zero_sts_is_off() {
        let mw = headers(dynamic::Headers {
            frame_deny: Some(true),
            custom_frame_options_value: Some("SAMEORIGIN".into()),
            sts_seconds: Some(0),
            ..Default::default()
        });
        let mut res = response(&[]);
        mw.on_response(&mut res, &ctx("https"));
        assert_eq!(get(&res.headers, "x-frame-options"), Some("SAMEORIGIN"));
        assert!(res.headers.get("strict-transport-security").is_none());
    }

    fn cors(cfg: dynamic::Headers) -> Headers {
        Headers::new("cors@file", &cfg).unwrap()
    }

    fn preflight(mw: &Headers, origin: &str, extra: &[(&str, &str)]) -> Flow {
        let mut req = parts("/api");
        req.method = Method::OPTIONS;
        req.headers
            .insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        req.headers.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("PUT"),
        );
        for (k, v) in extra {
            req.headers.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        mw.on_request(&mut req, &mut ctx("http"))
    }

    #[test]
    fn cors_preflight_answer() {
        let mw = cors(dynamic::Headers {
            access_control_allow_origin_list: vec!["https://a.example".into()],
            access_control_allow_methods: vec!["GET".into(), "PUT".into()],
            access_control_allow_headers: vec!["X-One".into(), "X-Two".into()],
            access_control_max_age: Some(600),
            custom_response_headers: map(&[("X-Not-On-Preflight", "1")]),
            ..Default::default()
        });
        let Flow::Respond(res) = preflight(&mw, "https://a.example", &[]) else {
            panic!("expected a preflight answer");
        };
        assert_eq!(res.status(), 200);
        let h = res.headers();
        assert_eq!(
            get(h, "access-control-allow-origin"),
            Some("https://a.example")
        );
        assert_eq!(get(h, "access-control-allow-methods"), Some("GET,PUT"));
        assert_eq!(get(h, "access-control-allow-headers"), Some("X-One,X-Two"));
        assert_eq!(get(h, "access-control-max-age"), Some("600"));
        assert_eq!(get(h, "content-length"), Some("0"));
        assert!(h.get("access-control-allow-credentials").is_none());

        // Handing the answer back to the same layer changes nothing.
        let (mut parts, _) = res.into_parts();
        let before = parts.headers.clone();
        mw.on_response(&mut parts, &ctx("http"));
        assert_eq!(parts.headers, before);

        // Unknown origin: answered, without Allow-Origin.
        let Flow::Respond(res) = preflight(&mw, "https://evil.example", &[]) else {
            panic!("expected a preflight answer");
        };
        assert!(res.headers().get("access-control-allow-origin").is_none());
    }

    #[test]
    fn cors_preflight_wildcards_with_credentials_echo_the_request() {
        let mw = cors(dynamic::Headers {
            access_control_allow_origin_list: vec!["*".into()],
            access_control_allow_methods: vec!["*".into()],
            access_control_allow_headers: vec!["*".into()],
            access_control_allow_credentials: Some(true),
            ..Default::default()
        });
        let Flow::Respond(res) = preflight(
            &mw,
            "https://b.example",
            &[("access-control-request-headers", "X-A, X-B")],
        ) else {
            panic!("expected a preflight answer");
        };
        let h = res.headers();
        assert_eq!(
            get(h, "access-control-allow-origin"),
            Some("https://b.example")
        );
        assert_eq!(get(h, "access-control-allow-methods"), Some("PUT"));
        assert_eq!(get(h, "access-control-allow-headers"), Some("X-A, X-B"));
        assert_eq!(get(h, "access-control-allow-credentials"), Some("true"));
    }

    #[test]
    fn not_a_preflight_without_origin_or_method() {
        let mw = cors(dynamic::Headers {
            access_control_allow_origin_list: vec!["*".into()],
            ..Default::default()
        });
        let mut req = parts("/");
        req.method = Method::OPTIONS;
        req.headers.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("GET"),
        );
        assert!(matches!(
            mw.on_request(&mut req, &mut ctx("http")),
            Flow::Continue
        ));
        let mut req = parts("/");
        req.headers
            .insert(ORIGIN, HeaderValue::from_static("https://x"));
        req.headers.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("GET"),
        );
        assert!(matches!(
            mw.on_request(&mut req, &mut ctx("http")),
            Flow::Continue
        ));
    }

    #[test]
    fn cors_simple_response_and_vary() {
        let mw = cors(dynamic::Headers {
            access_control_allow_origin_list: vec![
                "https://a.example".into(),
                "https://b.example".into(),
            ],
            access_control_allow_credentials: Some(true),
            add_vary_header: Some(true),
            ..Default::default()
        });
        let mut req = parts("/");
        req.headers
            .insert(ORIGIN, HeaderValue::from_static("https://b.example"));
        let mut c = ctx("http");
        assert!(matches!(mw.on_request(&mut req, &mut c), Flow::Continue));
        let mut res = response(&[("vary", "Accept-Encoding"), ("vary", "Cookie")]);
        mw.on_response(&mut res, &c);
        let h = &res.headers;
        assert_eq!(
            get(h, "access-control-allow-origin"),
            Some("https://b.example")
        );
        assert_eq!(get(h, "access-control-allow-credentials"), Some("true"));
        // Traefik keeps only the first Vary value, then appends Origin.
        let vary: Vec<_> = h.get_all("vary").iter().collect();
        assert_eq!(vary, ["Accept-Encoding,Origin"]);

        let mut res = response(&[("vary", "Origin")]);
        mw.on_response(&mut res, &c);
        assert_eq!(get(&res.headers, "vary"), Some("Origin"));
    }

    #[test]
    fn wildcard_origin_without_request_origin() {
        let mw = cors(dynamic::Headers {
            access_control_allow_origin_list: vec!["*".into()],
            ..Default::default()
        });
        let mut req = parts("/");
        let mut c = ctx("http");
        mw.on_request(&mut req, &mut c);
        let mut res = response(&[]);
        mw.on_response(&mut res, &c);
        assert_eq!(get(&res.headers, "access-control-allow-origin"), Some("*"));
    }

    #[test]
    fn origin_of_another_layer_is_not_used() {
        let a = cors(dynamic::Headers {
            access_control_allow_origin_list: vec!["https://a.example".into()],
            ..Default::default()
        });
        let b = cors(dynamic::Headers {
            access_control_allow_origin_list: vec!["https://a.example".into()],
            ..Default::default()
        });
        let mut req = parts("/");
        req.headers
            .insert(ORIGIN, HeaderValue::from_static("https://a.example"));
        let mut c = ctx("http");
        a.on_request(&mut req, &mut c);
        let mut res = response(&[]);
        b.on_response(&mut res, &c);
        assert!(res.headers.get("access-control-allow-origin").is_none());
        a.on_response(&mut res, &c);
        assert!(res.headers.get("access-control-allow-origin").is_some());
    }

    #[test]
    fn build_errors_name_the_field() {
        let err = Headers::new("h@file", &dynamic::Headers::default()).unwrap_err();
        assert!(err.message.contains("configuration not valid"), "{err}");
        let err = Headers::new(
            "h@file",
            &dynamic::Headers {
                custom_request_headers: map(&[("Bad Name", "x")]),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "headers.customRequestHeaders: invalid header name `Bad Name`"
        );
        let err = Headers::new(
            "h@file",
            &dynamic::Headers {
                custom_response_headers: map(&[("X-A", "line\nbreak")]),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("headers.customResponseHeaders.X-A: invalid header value"),
            "{err}"
        );
        // Only unsupported options: accepted (warned about elsewhere).
        assert!(
            Headers::new(
                "h@file",
                &dynamic::Headers {
                    allowed_hosts: Some(crate::config::tree::Unsupported(serde_json::json!(["a"]))),
                    ..Default::default()
                },
            )
            .is_ok()
        );
    }
}
