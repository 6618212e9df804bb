//! The per-request pipeline: find the route, run its middlewares, forward
//! (or answer internally), run the middlewares' response steps, observe.

use std::borrow::Cow;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};

use super::body::Body;
use super::composite;
use super::error::ProxyError;
use super::forward::{self, ClientSide};
use super::headers::{self, ForwardedFacts, ForwardedPolicy};
use super::linger::RequestBody;
use super::observe::{Exchange, Observer, Protocol};
use super::target;
use crate::middleware::error_pages::PageRequest;
use crate::middleware::{Flow, RequestCtx};
use crate::routing::composite::Node;
use crate::routing::{RouteTable, Target};
use crate::rules::{self, RequestInfo};

/// Settings of one entrypoint that the request path needs.
#[derive(Debug, Clone)]
pub struct EntrypointInfo {
    pub name: Arc<str>,
    pub forwarded: ForwardedPolicy,
}

/// The connection a request arrived on, known once per connection.
pub struct Connection {
    pub remote: SocketAddr,
    pub tls: bool,
    /// The client's address as a header value (`X-Real-Ip`,
    /// `X-Forwarded-For`), formatted once rather than per request.
    pub client_ip_value: HeaderValue,
    /// The certificates a TLS client sent (`clientAuth`), leaf first.
    pub client_certs: Option<Arc<[rustls_pki_types::CertificateDer<'static>]>>,
}

impl Connection {
    pub fn new(remote: SocketAddr, tls: bool) -> Self {
        Connection {
            remote,
            tls,
            client_ip_value: headers::ip_header_value(remote.ip()),
            client_certs: None,
        }
    }
}

/// What an internal service (`api@internal`, `ping@internal`, ...) needs.
pub struct InternalRequest {
    pub service: Arc<str>,
    pub request: Request<Body>,
    pub entrypoint: Arc<str>,
    pub client_ip: IpAddr,
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Answers requests routed to `…@internal` services.
pub trait InternalServices: Send + Sync {
    fn serve(&self, req: InternalRequest) -> BoxFuture<Response<Body>>;
}

/// State shared by every entrypoint.
pub struct Proxy {
    pub table: Arc<ArcSwap<RouteTable>>,
    pub draining: Arc<AtomicBool>,
    pub internal: Arc<dyn InternalServices>,
    pub observer: Arc<dyn Observer>,
    /// Our hostname, sent as `X-Forwarded-Server`.
    pub server_name: HeaderValue,
}

impl Proxy {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    #[inline]
    pub async fn handle(
        &self,
        ep: &EntrypointInfo,
        conn: &Connection,
        req: Request<RequestBody>,
    ) -> Response<Body> {
        let tls = conn.tls;
        let remote = conn.remote;
        let started = Instant::now();
        let scheme = if tls { "https" } else { "http" };
        let client_ip = remote.ip();
        let table = self.table.load();

        let (mut parts, body) = req.into_parts();
        if let Err(e) = target::check(&mut parts) {
            tracing::debug!(%remote, method = %parts.method, uri = %parts.uri, error = %e, "request refused");
            return e.response();
        }
        let raw_host = forward::request_host(&parts);
        let host_str = raw_host
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let host = lowercase(rules::trim_host_dot(headers::strip_port(host_str)));
        let protocol = protocol_of(&parts);
        headers::apply_forwarded(
            &mut parts.headers,
            &ep.forwarded,
            &ForwardedFacts {
                client_ip,
                client_ip_value: &conn.client_ip_value,
                scheme,
                websocket: protocol == Protocol::Websocket,
                host: raw_host.as_ref().filter(|h| !h.is_empty()),
                default_port: if tls { 443 } else { 80 },
                server_name: &self.server_name,
            },
        );

        // Traefik routes on the path with unreserved escapes decoded; a
        // malformed escape is the client's error.
        let Some(path) = rules::routing_path(parts.uri.path()) else {
            return ProxyError::BadRequest("malformed percent-encoding in path".into()).response();
        };
        let route = table.entrypoint(&ep.name).and_then(|routes| {
            routes.find(
                &RequestInfo {
                    host: &host,
                    path: &path,
                    query: parts.uri.query(),
                    method: &parts.method,
                    headers: &parts.headers,
                    client_ip,
                },
                tls,
            )
        });
        drop(path);

        // Reported once the response is ready, or as a 499 if the client
        // goes away first (this future is then dropped).
        let mut record = Record {
            observer: &*self.observer,
            entrypoint: &ep.name,
            host: host_str,
            // Cheap clones (shared bytes).
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            user_agent: parts.headers.get(header::USER_AGENT).cloned(),
            referer: parts.headers.get(header::REFERER).cloned(),
            protocol,
            client_ip,
            started,
            router: None,
            service: None,
            server: None,
            retries: 0,
            reported: false,
        };

        let response = match route {
            None => ProxyError::NoRoute.response(),
            Some(route) => {
                record.router = Some(route.name.clone());
                let mut parts = parts;
                let mut ctx = RequestCtx::new(client_ip, scheme);
                ctx.client_certs = conn.client_certs.clone();
                let mut early: Option<(usize, Response<Body>)> = None;
                for (i, layer) in route.layers.iter().enumerate() {
                    let mut flow = layer.on_request(&mut parts, &mut ctx);
                    if let Flow::Wait(deferred) = flow {
                        flow = deferred.resolve(&mut parts, &mut ctx).await;
                    }
                    if let Flow::Respond(res) = flow {
                        early = Some((i, res));
                        break;
                    }
                }
                let (ran, res) = match early {
                    Some((i, res)) => (i, res),
                    None => {
                        let res = match &route.target {
                            Target::Internal(service) => {
                                record.service = Some(service.clone());
                                self.internal
                                    .serve(InternalRequest {
                                        service: service.clone(),
                                        request: Request::from_parts(parts, Body::from(body)),
                                        entrypoint: ep.name.clone(),
                                        client_ip,
                                    })
                                    .await
                            }
                            Target::Service(service) => {
                                record.service = Some(service.name.clone());
                                let client = ClientSide {
                                    client_ip,
                                    client_ip_value: &conn.client_ip_value,
                                };
                                let body = Body::from(body);
                                let out = match &route.buffering {
                                    None => forward::forward(service, parts, body, &client).await,
                                    Some(plan) => {
                                        let node = Node::Pool(service.clone());
                                        plan.forward(&node, parts, body, &client).await
                                    }
                                };
                                record.forwarded(out, &route.name)
                            }
                            Target::Composite(node) => {
                                record.service = Some(node.name().clone());
                                let client = ClientSide {
                                    client_ip,
                                    client_ip_value: &conn.client_ip_value,
                                };
                                let body = Body::from(body);
                                let out = match &route.buffering {
                                    None => composite::serve(node, parts, body, &client).await,
                                    Some(plan) => plan.forward(node, parts, body, &client).await,
                                };
                                record.forwarded(out, &route.name)
                            }
                        };
                        (route.layers.len(), res)
                    }
                };
                let (mut res_parts, mut res_body) = res.into_parts();
                // The layers whose body step applies: an error page replaces
                // the body the inner layers shaped.
                let mut body_layers = ran;
                // Some response steps read the guards their request step
                // left (the circuit breaker's start time).
                for (i, layer) in route.layers[..ran].iter().enumerate().rev() {
                    if let Some(page) = layer.error_page(res_parts.status, &mut ctx) {
                        let client = ClientSide {
                            client_ip,
                            client_ip_value: &conn.client_ip_value,
                        };
                        // Boxed: the page's forward would otherwise widen every
                        // request's future, caught or not.
                        let page = Box::pin(self.error_page(page, ep, &route.name, &client)).await;
                        (res_parts, res_body) = page.into_parts();
                        body_layers = i;
                    }
                    layer.on_response(&mut res_parts, &ctx);
                }
                // Middleware guards (in-flight permits, ...) live as long as
                // the response body streams, whatever wraps it below.
                if let Body::Upstream(_, guard) = &mut res_body {
                    guard.extra.append(&mut ctx.guards);
                }
                if route.layers[..body_layers]
                    .iter()
                    .any(|l| l.detects_content_type())
                {
                    res_body = super::sniff::guess_content_type(&mut res_parts, res_body).await;
                }
                for layer in route.layers[..body_layers].iter().rev() {
                    res_body = layer.on_response_body(&mut res_parts, res_body, &ctx);
                }
                Response::from_parts(res_parts, res_body)
            }
        };

        let content_length = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        record.report(response.status().as_u16(), content_length);
        response
    }
}

impl Proxy {
    /// Fetches an `errors` middleware's page, and gives it the status the
    /// middleware chose. A failed fetch still answers with that status.
    async fn error_page(
        &self,
        page: PageRequest,
        ep: &EntrypointInfo,
        router: &str,
        client: &ClientSide<'_>,
    ) -> Response<Body> {
        let status = page.status;
        let mut res = match page.request {
            Err(e) => {
                tracing::warn!(status = status.as_u16(), error = %e, "error page request not made");
                let reason = status.canonical_reason().unwrap_or("");
                super::body::text_response(status, format!("{reason}\n"))
            }
            Ok(request) => match &page.service {
                Target::Service(service) => {
                    let out = forward::forward(service, request, Body::empty(), client).await;
                    page_answer(out, router, &service.name)
                }
                Target::Composite(node) => {
                    let out = composite::serve(node, request, Body::empty(), client).await;
                    page_answer(out, router, node.name())
                }
                Target::Internal(service) => {
                    self.internal
                        .serve(InternalRequest {
                            service: service.clone(),
                            request: Request::from_parts(request, Body::empty()),
                            entrypoint: ep.name.clone(),
                            client_ip: client.client_ip,
                        })
                        .await
                }
            },
        };
        *res.status_mut() = status;
        res
    }
}

/// An error page's answer, or the answer to its failure.
fn page_answer(out: forward::Forwarded, router: &str, service: &str) -> Response<Body> {
    out.result.unwrap_or_else(|e| {
        let server = out.server.as_ref().map_or("-", |s| s.url.as_str());
        log_proxy_error(router, service, server, &e);
        e.response()
    })
}

/// A failed exchange: a warning, unless the client's own request body
/// failed (malformed, or the client went away), which is common on the
/// internet and no fault of the proxy's: then at debug, as Traefik does.
fn log_proxy_error(router: &str, service: &str, server: &str, e: &ProxyError) {
    let status = e.status().as_u16();
    if matches!(e, ProxyError::ClientBody(_)) {
        tracing::debug!(router, service, server, status, error = %e, "client request failed");
    } else {
        tracing::warn!(router, service, server, status, error = %e, "proxy error");
    }
}

/// What the observers (access log, metrics) hear of one exchange, filled
/// in as the request goes.
struct Record<'a> {
    observer: &'a dyn Observer,
    entrypoint: &'a str,
    host: &'a str,
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    user_agent: Option<HeaderValue>,
    referer: Option<HeaderValue>,
    protocol: Protocol,
    client_ip: IpAddr,
    started: Instant,
    router: Option<Arc<str>>,
    service: Option<Arc<str>>,
    server: Option<Arc<crate::balance::ServerState>>,
    retries: u32,
    reported: bool,
}

/// Traefik's code for a request whose client went away before its answer.
const CLIENT_CLOSED_REQUEST: u16 = 499;

impl Record<'_> {
    /// Notes where a forwarded request went, and makes the answer of a
    /// failed one.
    #[inline]
    fn forwarded(&mut self, out: forward::Forwarded, router: &str) -> Response<Body> {
        self.server = out.server;
        self.retries = out.retries;
        out.result.unwrap_or_else(|e| {
            let server = self.server.as_ref().map_or("-", |s| s.url.as_str());
            let service = self.service.as_deref().unwrap_or("-");
            log_proxy_error(router, service, server, &e);
            e.response()
        })
    }

    fn report(&mut self, status: u16, content_length: Option<u64>) {
        self.reported = true;
        self.observer.exchange(&Exchange {
            entrypoint: self.entrypoint,
            router: self.router.as_deref(),
            service: self.service.as_deref(),
            server: self.server.as_ref(),
            method: &self.method,
            host: self.host,
            uri: &self.uri,
            version: self.version,
            user_agent: self.user_agent.as_ref(),
            referer: self.referer.as_ref(),
            status,
            content_length,
            protocol: self.protocol,
            client_ip: self.client_ip,
            duration: self.started.elapsed(),
            retries: self.retries,
        });
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.report(CLIENT_CLOSED_REQUEST, None);
        }
    }
}

fn protocol_of(parts: &http::request::Parts) -> Protocol {
    if headers::upgrade_protocol(&parts.headers)
        .is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(b"websocket"))
    {
        Protocol::Websocket
    } else if parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
    {
        Protocol::Grpc
    } else {
        Protocol::Http
    }
}

/// Lowercases only when needed: most hosts already are.
pub(super) fn lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// The minimal internal services: ping and noop. The admin module provides
/// the full set (API, dashboard, metrics) on top of this.
pub struct BasicInternal {
    pub draining: Arc<AtomicBool>,
}

impl InternalServices for BasicInternal {
    fn serve(&self, req: InternalRequest) -> BoxFuture<Response<Body>> {
        let draining = self.draining.load(Ordering::Relaxed);
        Box::pin(async move {
            match &*req.service {
                "ping@internal" => ping_response(draining),
                _ => super::body::text_response(StatusCode::NOT_FOUND, "404 page not found\n"),
            }
        })
    }
}

/// `/ping`: 200 `OK`, or 503 while draining so load balancers stop sending.
pub fn ping_response(draining: bool) -> Response<Body> {
    if draining {
        super::body::text_response(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
    } else {
        super::body::text_response(StatusCode::OK, "OK")
    }
}

/// How long after SIGTERM the proxy keeps serving in-flight requests.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
