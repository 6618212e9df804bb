//! Middlewares: small request/response transforms run between routing and
//! forwarding (strip prefix, headers, redirects, basic auth, ...).
//!
//! A middleware sees the request head before it is forwarded and may answer
//! in place (a redirect, a 401). It may then adjust the response head on the
//! way back. Most never touch bodies, so streaming stays intact; those that
//! do are `compress`, `contentType` and `errors` on the way back, and
//! `buffering` around forwarding, for the routes that have it.
//!
//! [`build`] turns a named `dynamic::Middleware` into layers (a chain into
//! its members' layers). The layers follow Traefik v3 to the byte where
//! clients can see it, which means following Go: `gourl` mirrors how
//! `net/url` keeps, cleans and re-encodes paths and `Location`s, and
//! `goregex` gives regexes and `$1` replacements Go's meaning.

use std::any::Any;
use std::fmt::Debug;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::{request, response};

use crate::proxy::body::Body;

/// What the proxy knows about a request besides its head.
#[derive(Debug)]
pub struct RequestCtx {
    pub client_ip: IpAddr,
    /// `http` or `https`: how the client reached the entrypoint.
    pub scheme: &'static str,
    /// Values that must live as long as the exchange (in-flight permits, ...).
    pub guards: Vec<Box<dyn Any + Send + Sync>>,
    /// The response encoding `compress` chose from the request.
    pub compress: compress::Negotiated,
    /// `Set-Cookie` values `forwardAuth` passes from the auth server to the
    /// response.
    pub auth_cookies: Vec<http::HeaderValue>,
    /// The request as each `errors` middleware saw it, innermost last.
    pub seen_by_error_pages: Vec<error_pages::SeenRequest>,
    /// The certificates the TLS client sent, leaf first (`passTLSClientCert`).
    pub client_certs: Option<Arc<[rustls_pki_types::CertificateDer<'static>]>>,
}

impl RequestCtx {
    pub fn new(client_ip: IpAddr, scheme: &'static str) -> Self {
        RequestCtx {
            client_ip,
            scheme,
            guards: Vec::new(),
            compress: compress::Negotiated(None),
            auth_cookies: Vec::new(),
            seen_by_error_pages: Vec::new(),
            client_certs: None,
        }
    }
}

/// The outcome of a middleware's request step. Not boxed: `Continue` is the
/// hot path and returns without allocating.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Flow {
    Continue,
    Respond(http::Response<Body>),
    /// The step needs slow work first (a bcrypt hash): the request waits for
    /// it without holding up the other connections of its thread.
    Wait(Deferred),
}

/// A request step finished after slow work: the work runs, then its
/// outcome is applied to the request.
pub struct Deferred(Pin<Box<dyn Future<Output = Finish> + Send>>);

/// Applies a deferred step's outcome to the request (and what the
/// response step will need to the context).
pub type Finish = Box<dyn FnOnce(&mut request::Parts, &mut RequestCtx) -> Flow + Send>;

impl Deferred {
    pub fn new(work: impl Future<Output = Finish> + Send + 'static) -> Self {
        Deferred(Box::pin(work))
    }

    /// Waits for the work, then applies its outcome (until a step does not wait).
    pub async fn resolve(self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        let mut flow = (self.0.await)(req, ctx);
        while let Flow::Wait(next) = flow {
            flow = (next.0.await)(req, ctx);
        }
        flow
    }
}

impl Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deferred")
    }
}

pub trait Layer: Send + Sync + Debug {
    /// Runs before forwarding, in chain order.
    fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow;

    /// Runs on the backend's (or an earlier middleware's) response, in reverse
    /// chain order.
    fn on_response(&self, _res: &mut response::Parts, _ctx: &RequestCtx) {}

    /// For `contentType`: a response without `Content-Type` gets one
    /// guessed from its first bytes.
    fn detects_content_type(&self) -> bool {
        false
    }

    /// For `errors`: the page to fetch in place of a response with this
    /// status. Runs in reverse chain order, before `on_response`; the
    /// handler fetches the page, and outer layers see the page's response.
    fn error_page(
        &self,
        _status: http::StatusCode,
        _ctx: &mut RequestCtx,
    ) -> Option<error_pages::PageRequest> {
        None
    }

    /// Runs after every layer's `on_response`, for the middlewares that change the body
    /// (`compress`): returns the body to send instead.
    fn on_response_body(
        &self,
        _res: &mut response::Parts,
        body: crate::proxy::body::Body,
        _ctx: &RequestCtx,
    ) -> crate::proxy::body::Body {
        body
    }

    /// The buffering this layer asks for: only the `buffering` layer has
    /// one. Read when the route is built (`buffering::Plan::of`), never per
    /// request.
    fn buffering(&self) -> Option<&buffering::Buffering> {
        None
    }
}

mod add_prefix;
mod basic_auth;
pub mod buffering;
mod build;
pub mod circuit_breaker;
pub mod compress;
pub mod content_type;
mod digest_auth;
pub mod error_pages;
mod forward_auth;
mod gourl;
mod headers;
mod htpasswd;
pub mod in_flight;
mod ip_allow_list;
mod pass_tls_client_cert;
mod persist;
pub mod rate_limit;
mod redirect;
mod replace_path;
mod replace_path_regex;
mod reqhead;
pub mod retry;
pub mod source;
mod strip_prefix;
mod strip_prefix_regex;

pub use add_prefix::AddPrefix;
pub use basic_auth::BasicAuth;
pub use buffering::Buffering;
pub use build::{Lookup, build, build_list};
pub use circuit_breaker::CircuitBreaker;
pub use compress::Compress;
pub use content_type::ContentType;
pub use digest_auth::DigestAuth;
pub use error_pages::ErrorPages;
pub use forward_auth::ForwardAuth;
pub use headers::{Headers, NoXForwardedFor};
pub use in_flight::InFlightReq;
pub use ip_allow_list::IpAllowList;
pub use pass_tls_client_cert::PassTlsClientCert;
pub use rate_limit::RateLimit;
pub use redirect::{RedirectRegex, RedirectScheme};
pub use replace_path::ReplacePath;
pub use replace_path_regex::ReplacePathRegex;
pub use retry::{Retry, RetryPolicy};
pub use strip_prefix::StripPrefix;
pub use strip_prefix_regex::StripPrefixRegex;

/// A middleware that cannot be built, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("middleware `{middleware}`: {message}")]
pub struct MiddlewareError {
    /// The qualified name (`auth@file`) of the middleware at fault.
    pub middleware: String,
    pub message: String,
}

impl MiddlewareError {
    pub fn new(middleware: &str, message: impl Into<String>) -> Self {
        MiddlewareError {
            middleware: middleware.to_owned(),
            message: message.into(),
        }
    }
}

/// Qualifies a reference the way Traefik does: `name@provider` is kept, a
/// bare `name` belongs to the provider of the object that references it.
pub fn qualify(name: &str, provider: &str) -> String {
    if name.contains('@') || provider.is_empty() {
        name.to_owned()
    } else {
        // Not `format!`: this runs for every router and reference of a
        // reload, and the formatting machinery costs several times a copy.
        let mut out = String::with_capacity(name.len() + 1 + provider.len());
        out.push_str(name);
        out.push('@');
        out.push_str(provider);
        out
    }
}

/// The provider part of a qualified name (`file` in `auth@file`).
pub fn provider_of(qualified_name: &str) -> Option<&str> {
    // Traefik takes the second `@`-separated part, even if more follow.
    qualified_name.split('@').nth(1)
}

#[cfg(test)]
mod names_tests {
    use super::*;

    #[test]
    fn qualify_keeps_qualified_names() {
        assert_eq!(qualify("auth", "file"), "auth@file");
        assert_eq!(qualify("auth@docker", "file"), "auth@docker");
        assert_eq!(qualify("auth", ""), "auth");
        assert_eq!(provider_of("auth@file"), Some("file"));
        assert_eq!(provider_of("auth"), None);
        assert_eq!(provider_of("a@b@c"), Some("b"));
    }
}
