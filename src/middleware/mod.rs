//! Middlewares: small request/response transforms run between routing and
//! forwarding (strip prefix, headers, redirects, basic auth, ...).
//!
//! A middleware sees the request head before it is forwarded and may answer
//! in place (a redirect, a 401). It may then adjust the response head on the
//! way back. Middlewares never touch bodies, so streaming stays intact.

use std::any::Any;
use std::fmt::Debug;
use std::net::IpAddr;

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
}

impl RequestCtx {
    pub fn new(client_ip: IpAddr, scheme: &'static str) -> Self {
        RequestCtx {
            client_ip,
            scheme,
            guards: Vec::new(),
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
}

pub trait Layer: Send + Sync + Debug {
    /// Runs before forwarding, in chain order.
    fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow;

    /// Runs on the backend's (or an earlier middleware's) response, in reverse
    /// chain order.
    fn on_response(&self, _res: &mut response::Parts, _ctx: &RequestCtx) {}
}

// TEMPORARY stubs until the middleware module lands.
use std::sync::Arc;

use crate::config::dynamic::Middleware;

#[derive(Debug, thiserror::Error)]
#[error("middleware {middleware}: {message}")]
pub struct MiddlewareError {
    pub middleware: String,
    pub message: String,
}

pub trait Lookup {
    fn get(&self, qualified_name: &str) -> Option<&Middleware>;
    fn qualify(&self, name: &str, current_provider: &str) -> String;
}

pub fn qualify(name: &str, provider: &str) -> String {
    if name.contains('@') {
        name.to_string()
    } else {
        format!("{name}@{provider}")
    }
}

pub fn build(
    qualified_name: &str,
    _mw: &Middleware,
    _lookup: &dyn Lookup,
) -> Result<Vec<Arc<dyn Layer>>, MiddlewareError> {
    Err(MiddlewareError {
        middleware: qualified_name.to_string(),
        message: "not built yet".into(),
    })
}
