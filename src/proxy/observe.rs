//! Hooks through which metrics and the access log see each exchange.
//! Observers run on the request path: they must not block or take a global
//! lock.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Method;

use crate::balance::ServerState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Websocket,
    Grpc,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Websocket => "websocket",
            Protocol::Grpc => "grpc",
        }
    }
}

/// One finished exchange (measured when the response head is ready).
#[derive(Debug)]
pub struct Exchange<'a> {
    pub entrypoint: &'a str,
    pub router: Option<&'a str>,
    pub service: Option<&'a str>,
    pub server: Option<&'a Arc<ServerState>>,
    pub method: &'a Method,
    pub host: &'a str,
    pub uri: &'a http::Uri,
    pub version: http::Version,
    pub user_agent: Option<&'a http::HeaderValue>,
    pub referer: Option<&'a http::HeaderValue>,
    pub status: u16,
    /// The response's declared length, when it has one.
    pub content_length: Option<u64>,
    pub protocol: Protocol,
    pub client_ip: IpAddr,
    pub duration: Duration,
    pub retries: u32,
}

pub trait Observer: Send + Sync {
    fn exchange(&self, ex: &Exchange);
    fn connection_opened(&self, _entrypoint: &str) {}
    fn connection_closed(&self, _entrypoint: &str) {}
}

/// Fans out to several observers.
#[derive(Default, Clone)]
pub struct Observers(pub Vec<Arc<dyn Observer>>);

impl Observer for Observers {
    fn exchange(&self, ex: &Exchange) {
        for o in &self.0 {
            o.exchange(ex);
        }
    }

    fn connection_opened(&self, entrypoint: &str) {
        for o in &self.0 {
            o.connection_opened(entrypoint);
        }
    }

    fn connection_closed(&self, entrypoint: &str) {
        for o in &self.0 {
            o.connection_closed(entrypoint);
        }
    }
}
