//! Forwarding one request to a service: pick a server, rewrite the head,
//! send over a pooled connection, relay the response (or the upgraded
//! connection) back.
//!
//! Failures are retried where it is safe:
//! - a failed connect, whatever the method, on another server (nothing was
//!   sent); so is a request the pooled connection gave back unsent;
//! - a reset before the response headers, for idempotent methods whose
//!   body can be sent again: an empty body, or one small enough to keep in
//!   memory ([`REPLAY_LIMIT`], decided from its size hint before sending);
//! - with the `retry` middleware, up to its number of attempts, timeouts
//!   included, with its backoff between attempts.
//!
//! A body that started streaming to a backend is never sent again. Each
//! failure also counts towards the server's passive health.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version, request};
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use smallvec::SmallVec;
use tokio::io::AsyncWriteExt;

use super::body::{Body, ExchangeGuard, Upstream};
use super::error::ProxyError;
use super::h1;
use super::headers;
use super::pool::{ConnectError, Sender, Wire};
use crate::balance::passive::FailureKind;
use crate::balance::sticky::{StickyCookie, Stuck};
use crate::balance::{PickError, Picked, ServerState, clock};
use crate::health::{self, EjectionProbe};
use crate::middleware::{NoXForwardedFor, RetryPolicy};
use crate::routing::ServiceRuntime;

/// Request bodies up to this size (by their size hint) are kept in memory
/// so that an idempotent request can be sent again.
pub const REPLAY_LIMIT: u64 = 64 * 1024;

/// Why a connect was abandoned: the server was ejected or removed while
/// the request waited for it.
const LEFT_THE_POOL: &str = "the server left the pool during the connect";

/// A pooled connection may close just as a request is handed to it; the
/// request then comes back unsent and goes out on another connection.
const MAX_UNSENT: u32 = 3;

/// Facts about the client side the forwarder needs.
pub struct ClientSide<'a> {
    pub client_ip: IpAddr,
    /// `client_ip` as a header value.
    pub client_ip_value: &'a HeaderValue,
}

/// The outcome of a forward attempt, with the server it went to (if any),
/// for logs and metrics.
pub struct Forwarded {
    pub result: Result<Response<Body>, ProxyError>,
    pub server: Option<Arc<ServerState>>,
    /// Attempts after the first one.
    pub retries: u32,
}

impl Forwarded {
    /// An outcome decided before any server was tried (a refused body, a
    /// service with nothing to send to).
    pub fn local(result: Result<Response<Body>, ProxyError>) -> Self {
        Forwarded {
            result,
            server: None,
            retries: 0,
        }
    }
}

/// The request body, kept so that it can be sent again when possible.
enum ReqBody {
    /// Sent at most once: streamed straight to the backend.
    Stream(Option<Body>),
    /// Small enough to keep: every attempt gets a copy.
    Replayable(Bytes),
}

impl ReqBody {
    fn take(&mut self) -> Option<Body> {
        match self {
            ReqBody::Stream(b) => b.take(),
            ReqBody::Replayable(bytes) => Some(Body::full(bytes.clone())),
        }
    }

    /// The body for an HTTP/1.1 attempt.
    fn take_out(&mut self) -> Option<h1::OutBody> {
        match self {
            ReqBody::Stream(b) => b.take().map(h1::OutBody::Stream),
            ReqBody::Replayable(bytes) => Some(h1::OutBody::Full(bytes.clone())),
        }
    }

    fn put_back(&mut self, body: Body) {
        if let ReqBody::Stream(slot) = self {
            *slot = Some(body);
        }
    }

    fn can_send_again(&self) -> bool {
        matches!(self, ReqBody::Replayable(_) | ReqBody::Stream(Some(_)))
    }
}

/// Methods that may be sent twice (RFC 9110 9.2.2, minus none).
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try a server not tried yet.
    OtherServer,
    /// Try again, preferably elsewhere, possibly on a server already tried.
    AnyServer,
    Stop,
}

/// The retry rules, as a pure function. `policy_left` is how many retries
/// the `retry` middleware still allows (0 without it).
pub fn next_step(kind: FailureKind, idempotent: bool, resendable: bool, policy_left: u32) -> Next {
    let policy = if policy_left > 0 {
        Next::AnyServer
    } else {
        Next::Stop
    };
    match kind {
        // Nothing reached the backend: always safe, always elsewhere.
        FailureKind::Connect => {
            if policy_left > 0 {
                Next::AnyServer
            } else {
                Next::OtherServer
            }
        }
        _ if !(idempotent && resendable) => Next::Stop,
        FailureKind::Reset => {
            if policy_left > 0 {
                Next::AnyServer
            } else {
                Next::OtherServer
            }
        }
        FailureKind::Timeout => policy,
        FailureKind::ServerError => Next::Stop,
    }
}

fn failure_kind(e: &ProxyError) -> FailureKind {
    match e {
        ProxyError::Connect(_) => FailureKind::Connect,
        ProxyError::ResponseTimeout(_) => FailureKind::Timeout,
        e if e.status() == StatusCode::GATEWAY_TIMEOUT => FailureKind::Timeout,
        _ => FailureKind::Reset,
    }
}

fn key_of(s: &ServerState) -> usize {
    s as *const ServerState as usize
}

pub async fn forward(
    service: &ServiceRuntime,
    mut parts: request::Parts,
    body: Body,
    client: &ClientSide<'_>,
) -> Forwarded {
    let upgrade = headers::upgrade_protocol(&parts.headers).cloned();
    let client_upgrade = upgrade
        .as_ref()
        .and_then(|_| parts.extensions.remove::<OnUpgrade>());
    let original_host = request_host(&parts);
    let policy = parts.extensions.remove::<RetryPolicy>();
    let idempotent = is_idempotent(&parts.method);

    let key = service.balancer.hash_key(&parts.headers, client.client_ip);
    let key = key.as_deref().map(str::as_bytes);
    let sticky = service.sticky.as_ref();
    let stuck = sticky.and_then(|s| s.find(&parts.headers, service.balancer.servers()));

    headers::remove_hop_by_hop(&mut parts.headers);
    // A headers middleware may ask for no X-Forwarded-For at all.
    if parts.extensions.get::<NoXForwardedFor>().is_none() {
        headers::append_forwarded_for(&mut parts.headers, client.client_ip_value);
    }
    if let Some(proto) = &upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, proto.clone());
    }

    let mut body = match prepare_body(body, idempotent && upgrade.is_none()).await {
        Ok(b) => b,
        Err(e) => {
            return Forwarded::local(Err(e));
        }
    };

    // Servers already attempted, by address (raw pointers are not Send).
    // Inline: most requests try one server, and this spares an allocation.
    let mut tried: SmallVec<[usize; 4]> = SmallVec::new();
    let mut retries: u32 = 0;
    let mut policy_used: u32 = 0;
    let mut may_repeat = false;
    let mut last: Option<(ProxyError, Arc<ServerState>)> = None;
    loop {
        let picked = match pick(service, key, &stuck, &tried, may_repeat) {
            Ok(p) => p,
            Err(e) => {
                let (result, server) = match last {
                    Some((err, server)) => (Err(err), Some(server)),
                    None => {
                        if e == PickError::AtCapacity {
                            tracing::warn!(service = %service.name, "every available server is at maxConnsPerServer");
                        }
                        (Err(ProxyError::NoServer), None)
                    }
                };
                return Forwarded {
                    result,
                    server,
                    retries,
                };
            }
        };
        let Picked { server, in_flight } = picked;
        if !tried.is_empty() {
            retries += 1;
            service.retries.fetch_add(1, Ordering::Relaxed);
            if let Some(p) = policy.filter(|_| may_repeat) {
                let wait = p.backoff(policy_used, service.balancer.random_unit());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        if !tried.contains(&key_of(&server)) {
            tried.push(key_of(&server));
        }

        let config = &service.transport.config;
        let mut unsent = 0;
        let mut abandoned = false;
        let outcome = loop {
            // Ejected or removed meanwhile: nothing was sent, go elsewhere
            // rather than wait for the dial timeout.
            let leaving = server.leaving();
            let wire = match wire_for(&server, service, upgrade.is_some()) {
                Ok(w) => w,
                Err(e) => break Err(e),
            };
            let checkout = server
                .pool
                .checkout(&server.upstream.authority, wire, config);
            let sender = tokio::select! {
                biased;
                r = checkout => match r {
                    Ok(s) => s,
                    Err(e) => break Err(ProxyError::Connect(e)),
                },
                () = leaving => {
                    abandoned = true;
                    break Err(ProxyError::Connect(ConnectError::Io {
                        addr: server.upstream.authority.to_string(),
                        source: std::io::Error::other(LEFT_THE_POOL),
                    }));
                }
            };
            let host = upstream_host(&server, service, original_host.as_ref());
            let started = Instant::now();
            let sent = match sender {
                Sender::Http1(conn) => {
                    let Some(out) = body.take_out() else {
                        break Err(ProxyError::Internal("request body already consumed".into()));
                    };
                    let head = h1::RequestHead {
                        method: &parts.method,
                        base_path: server.upstream.base_path.as_str(),
                        path_and_query: parts
                            .uri
                            .path_and_query()
                            .map(|p| p.as_str())
                            .unwrap_or("/"),
                        host: host.as_ref(),
                        headers: &parts.headers,
                    };
                    send_h1(conn, &head, out, config.response_header_timeout).await
                }
                Sender::Http2(mut sender) => {
                    let Some(b) = body.take() else {
                        break Err(ProxyError::Internal("request body already consumed".into()));
                    };
                    let req = match build_h2_request(&parts, &server, host, b) {
                        Ok(r) => r,
                        Err(e) => {
                            return Forwarded {
                                result: Err(e),
                                server: Some(server),
                                retries,
                            };
                        }
                    };
                    send_h2(&mut sender, req, config.response_header_timeout).await
                }
            };
            match sent {
                SendOutcome::Answer(answer) => {
                    observe_latency(&server, started);
                    break Ok(answer);
                }
                SendOutcome::NotSent(returned) => {
                    if let Some(b) = returned {
                        body.put_back(b);
                    }
                    unsent += 1;
                    if unsent < MAX_UNSENT {
                        continue;
                    }
                    break Err(ProxyError::Connect(ConnectError::Io {
                        addr: server.upstream.authority.to_string(),
                        source: std::io::Error::other(
                            "connections keep closing before the request is sent",
                        ),
                    }));
                }
                SendOutcome::Stale(e) => {
                    // The pooled connection was closed by the server as the
                    // request went out: the application never saw it. Send
                    // it again on a fresh connection when that is safe.
                    unsent += 1;
                    if idempotent && body.can_send_again() && unsent < MAX_UNSENT {
                        continue;
                    }
                    observe_latency(&server, started);
                    break Err(e);
                }
                SendOutcome::Failed(e) => {
                    observe_latency(&server, started);
                    break Err(e);
                }
            }
        };

        let answer = match outcome {
            Ok(answer) => answer,
            // Neither the backend's fault nor worth another try.
            Err(e @ (ProxyError::Internal(_) | ProxyError::ClientBody(_))) => {
                return Forwarded {
                    result: Err(e),
                    server: Some(server),
                    retries,
                };
            }
            Err(e) => {
                drop(in_flight);
                let kind = failure_kind(&e);
                if !abandoned {
                    passive_failure(service, &server, kind);
                }
                let left = policy.map_or(0, |p| p.attempts.saturating_sub(1 + policy_used));
                let step = next_step(kind, idempotent, body.can_send_again(), left);
                tracing::warn!(
                    service = %service.name, server = %server.url, error = %e,
                    retry = ?step, "backend attempt failed"
                );
                match step {
                    Next::Stop => {
                        return Forwarded {
                            result: Err(e),
                            server: Some(server),
                            retries,
                        };
                    }
                    Next::OtherServer => may_repeat = false,
                    Next::AnyServer => {
                        may_repeat = true;
                        policy_used += 1;
                    }
                }
                last = Some((e, server));
                continue;
            }
        };

        let status = answer.status();
        if status.is_server_error() {
            passive_failure(service, &server, FailureKind::ServerError);
        } else {
            server.passive_success();
        }

        let guard = |in_flight| ExchangeGuard {
            in_flight: Some(in_flight),
            max_idle: config.max_idle_conns_per_host,
            extra: Vec::new(),
        };
        let res = match answer {
            Answer::Upgraded(res, upstream) => {
                let Some(client_upgrade) = client_upgrade else {
                    // A switch nobody asked for: the client would be left
                    // with a connection neither side can speak on.
                    return Forwarded {
                        result: Err(ProxyError::Upstream(
                            "101 Switching Protocols to a request that asked no upgrade".into(),
                        )),
                        server: Some(server),
                        retries,
                    };
                };
                spawn_tunnel(client_upgrade, Tunnel::H1(upstream), in_flight);
                Response::from_parts(res.into_parts().0, Body::empty())
            }
            Answer::H1(res) => {
                let (mut res_parts, mut res_body) = res.into_parts();
                headers::remove_hop_by_hop(&mut res_parts.headers);
                let body = if res_body.is_end_stream() {
                    let done = guard(in_flight);
                    if let Some(conn) = res_body.take_reusable() {
                        done.release(conn);
                    }
                    Body::empty()
                } else {
                    Body::Upstream(Upstream::H1(res_body), guard(in_flight))
                };
                Response::from_parts(res_parts, body)
            }
            Answer::H2(res) => {
                let (mut res_parts, res_body) = res.into_parts();
                let switching = res_parts.status == StatusCode::SWITCHING_PROTOCOLS;
                if switching && let Some(client_upgrade) = client_upgrade {
                    let upstream = res_parts.extensions.remove::<OnUpgrade>();
                    spawn_tunnel(client_upgrade, Tunnel::Hyper(upstream), in_flight);
                    Response::from_parts(res_parts, Body::empty())
                } else {
                    headers::remove_hop_by_hop(&mut res_parts.headers);
                    let body = if http_body::Body::is_end_stream(&res_body) {
                        Body::Upstream(Upstream::H2(res_body), ExchangeGuard::default())
                    } else {
                        Body::Upstream(Upstream::H2(res_body), guard(in_flight))
                    };
                    Response::from_parts(res_parts, body)
                }
            }
        };
        return finish(res, sticky, &server, stuck.as_ref(), retries);
    }
}

/// Keeps the body in memory when it is small and may need sending again.
async fn prepare_body(body: Body, may_resend: bool) -> Result<ReqBody, ProxyError> {
    if !may_resend {
        return Ok(ReqBody::Stream(Some(body)));
    }
    if http_body::Body::is_end_stream(&body) {
        return Ok(ReqBody::Replayable(Bytes::new()));
    }
    match http_body::Body::size_hint(&body).exact() {
        Some(n) if n <= REPLAY_LIMIT => match body.collect().await {
            Ok(collected) => Ok(ReqBody::Replayable(collected.to_bytes())),
            Err(e) => Err(ProxyError::BadRequest(format!(
                "cannot read the request body: {e}"
            ))),
        },
        _ => Ok(ReqBody::Stream(Some(body))),
    }
}

/// The sticky server on the first attempt when it is available, otherwise
/// the balancer's choice.
fn pick(
    service: &ServiceRuntime,
    key: Option<&[u8]>,
    stuck: &Option<Stuck>,
    tried: &[usize],
    may_repeat: bool,
) -> Result<Picked, PickError> {
    if tried.is_empty()
        && let Some(stuck) = stuck
        && stuck.server.is_available()
    {
        return Ok(Picked {
            server: stuck.server.clone(),
            in_flight: stuck.server.start_request(),
        });
    }
    match service.balancer.pick(key, |s| tried.contains(&key_of(s))) {
        Err(PickError::NoServer) if may_repeat => service.balancer.pick(key, |_| false),
        other => other,
    }
}

pub(super) fn observe_latency(server: &ServerState, started: Instant) {
    observe_latency_at(server, started, Instant::now());
}

/// The server's latency of an exchange that `started` and answered `now`.
pub(super) fn observe_latency_at(server: &ServerState, started: Instant, now: Instant) {
    let elapsed = now.duration_since(started).as_secs_f64() * 1e6;
    server.latency.observe(elapsed, clock::us_at(now));
}

pub(super) fn passive_failure(
    service: &ServiceRuntime,
    server: &Arc<ServerState>,
    kind: FailureKind,
) {
    if kind == FailureKind::Connect {
        server.record_failure();
    }
    let Some(ejection) = server.passive_failure(&service.passive, kind) else {
        return;
    };
    tracing::warn!(
        service = %service.name, server = %server.url, reason = ?kind,
        period = ?ejection.period, "server ejected after failures on live traffic"
    );
    health::watch_ejected(
        server,
        ejection,
        EjectionProbe {
            service: service.name.clone(),
            policy: service.passive.clone(),
            check: service.health_check.clone(),
            connect_timeout: service
                .transport
                .config
                .dial_timeout
                .min(health::config::DEFAULT_TIMEOUT),
        },
    );
}

fn finish(
    mut res: Response<Body>,
    sticky: Option<&StickyCookie>,
    server: &Arc<ServerState>,
    stuck: Option<&Stuck>,
    retries: u32,
) -> Forwarded {
    if let Some(sticky) = sticky
        && stuck.is_none_or(|s| s.rewrite || !Arc::ptr_eq(&s.server, server))
        && let Some(cookie) = sticky.set_cookie(server)
    {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Forwarded {
        result: Ok(res),
        server: Some(server.clone()),
        retries,
    }
}

/// The Host the client asked for: the Host header, or the HTTP/2 authority.
pub fn request_host(parts: &request::Parts) -> Option<HeaderValue> {
    if let Some(h) = parts.headers.get(header::HOST) {
        return Some(h.clone());
    }
    parts
        .uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
}

/// The `Host` to send: the client's, or the server's own with
/// `passHostHeader: false`.
fn upstream_host(
    server: &ServerState,
    service: &ServiceRuntime,
    original_host: Option<&HeaderValue>,
) -> Option<HeaderValue> {
    if service.pass_host_header {
        original_host.cloned()
    } else {
        HeaderValue::from_str(server.upstream.authority.as_str()).ok()
    }
}

/// How to speak to `server`; upgrades go over HTTP/1.1, which alone
/// carries them, as in Traefik.
fn wire_for<'a>(
    server: &ServerState,
    service: &'a ServiceRuntime,
    upgrade: bool,
) -> Result<Wire<'a>, ProxyError> {
    if server.h2c {
        return Ok(Wire::H2c);
    }
    if !server.tls {
        return Ok(Wire::Http1);
    }
    match service.transport.tls() {
        Ok(client) => Ok(Wire::Tls {
            client,
            http1_only: upgrade,
        }),
        // The compile step disables such services; a table built otherwise
        // still gets an answer rather than a plain-text connection.
        Err(e) => Err(ProxyError::Connect(ConnectError::Tls {
            addr: server.upstream.authority.to_string(),
            source: std::io::Error::other(format!("serversTransport TLS settings: {e}")),
        })),
    }
}

/// An HTTP/2 request for an h2c or https server. HTTP/2 carries the host in
/// `:authority`, taken from the URI; the connection is already open to the
/// server.
fn build_h2_request(
    parts: &request::Parts,
    server: &ServerState,
    host: Option<HeaderValue>,
    body: Body,
) -> Result<Request<Body>, ProxyError> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let base = server.upstream.base_path.as_str();
    let authority = host
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .unwrap_or(server.upstream.authority.as_str());
    let mut builder = Request::builder()
        .method(parts.method.clone())
        .uri(format!(
            "{}://{authority}{base}{path_and_query}",
            server.upstream.scheme
        ))
        .version(Version::HTTP_2);
    if let Some(headers) = builder.headers_mut() {
        *headers = parts.headers.clone();
        headers.remove(header::HOST);
    }
    builder
        .body(body)
        .map_err(|e| ProxyError::BadRequest(format!("cannot rewrite request: {e}")))
}

/// A backend's answer.
enum Answer {
    H1(Response<h1::ResponseBody>),
    Upgraded(Response<()>, h1::Upgraded),
    H2(Response<hyper::body::Incoming>),
}

impl Answer {
    fn status(&self) -> StatusCode {
        match self {
            Answer::H1(r) => r.status(),
            Answer::Upgraded(r, _) => r.status(),
            Answer::H2(r) => r.status(),
        }
    }
}

enum SendOutcome {
    Answer(Answer),
    /// Nothing was sent; a streamed body comes back.
    NotSent(Option<Body>),
    /// Nothing came back on a reused connection (see [`h1::Outcome`]).
    Stale(ProxyError),
    Failed(ProxyError),
}

async fn send_h1(
    conn: Box<h1::Conn>,
    head: &h1::RequestHead<'_>,
    body: h1::OutBody,
    header_timeout: Option<std::time::Duration>,
) -> SendOutcome {
    let exchange = conn.send(head, body);
    let outcome = match header_timeout {
        Some(t) => match tokio::time::timeout(t, exchange).await {
            Ok(o) => o,
            Err(_) => return SendOutcome::Failed(ProxyError::ResponseTimeout(t)),
        },
        None => exchange.await,
    };
    match outcome {
        h1::Outcome::Response(res) => SendOutcome::Answer(Answer::H1(res)),
        h1::Outcome::Upgraded(res, up) => SendOutcome::Answer(Answer::Upgraded(res, up)),
        h1::Outcome::NotSent(body) => SendOutcome::NotSent(body),
        h1::Outcome::Failed {
            error: h1::Error::RequestBody(e),
            ..
        } => SendOutcome::Failed(ProxyError::ClientBody(e)),
        h1::Outcome::Failed {
            error: e @ h1::Error::RequestLength,
            ..
        } => SendOutcome::Failed(ProxyError::ClientBody(Box::new(e))),
        h1::Outcome::Failed { error, stale } => {
            let e = ProxyError::Upstream(Box::new(error));
            if stale {
                SendOutcome::Stale(e)
            } else {
                SendOutcome::Failed(e)
            }
        }
    }
}

async fn send_h2(
    sender: &mut hyper::client::conn::http2::SendRequest<Body>,
    req: Request<Body>,
    header_timeout: Option<std::time::Duration>,
) -> SendOutcome {
    let exchange = sender.try_send_request(req);
    let result = match header_timeout {
        Some(t) => match tokio::time::timeout(t, exchange).await {
            Ok(r) => r,
            Err(_) => return SendOutcome::Failed(ProxyError::ResponseTimeout(t)),
        },
        None => exchange.await,
    };
    match result {
        Ok(res) => SendOutcome::Answer(Answer::H2(res)),
        Err(mut e) => match e.take_message() {
            Some(req) => SendOutcome::NotSent(Some(req.into_body())),
            None => {
                let e = e.into_error();
                if reset_by_us(&e) {
                    // hyper logs the body's own error at debug only.
                    let why = "failed on its way to the HTTP/2 backend, so escale reset the stream";
                    SendOutcome::Failed(ProxyError::ClientBody(why.into()))
                } else {
                    SendOutcome::Failed(ProxyError::Upstream(Box::new(e)))
                }
            }
        },
    }
}

/// Whether the stream to an HTTP/2 backend was reset by hyper on escale's
/// side rather than by the backend or the h2 library: hyper does that when
/// the request body it was sending failed, that is when the client's body
/// did (malformed, or the client went away).
fn reset_by_us(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h2) = s.downcast_ref::<h2::Error>() {
            return h2.is_reset() && !h2.is_remote() && !h2.is_library();
        }
        source = s.source();
    }
    false
}

/// The backend side of an upgraded connection.
enum Tunnel {
    H1(h1::Upgraded),
    Hyper(Option<OnUpgrade>),
}

/// Relays bytes both ways once client and backend both switched protocols.
fn spawn_tunnel(client: OnUpgrade, upstream: Tunnel, in_flight: crate::balance::server::InFlight) {
    tokio::spawn(async move {
        let _in_flight = in_flight;
        let client = match client.await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let relayed = match upstream {
            Tunnel::H1(mut up) => {
                if !up.leftover.is_empty()
                    && let Err(e) = client.write_all(&up.leftover).await
                {
                    tracing::debug!(error = %e, "upgraded connection ended with an error");
                    return;
                }
                tokio::io::copy_bidirectional(&mut client, &mut up.io).await
            }
            Tunnel::Hyper(Some(up)) => match up.await {
                Ok(up) => tokio::io::copy_bidirectional(&mut client, &mut TokioIo::new(up)).await,
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade failed");
                    return;
                }
            },
            Tunnel::Hyper(None) => return,
        };
        if let Err(e) = relayed {
            tracing::debug!(error = %e, "upgraded connection ended with an error");
        }
    });
}

/// Where the sticky-cookie code used to live; kept for callers.
pub use crate::balance::sticky;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_rules() {
        use FailureKind::*;
        // Nothing was sent: any method goes elsewhere.
        assert_eq!(next_step(Connect, false, false, 0), Next::OtherServer);
        assert_eq!(next_step(Connect, false, false, 2), Next::AnyServer);
        // Reset before headers: only idempotent requests that can be resent.
        assert_eq!(next_step(Reset, true, true, 0), Next::OtherServer);
        assert_eq!(next_step(Reset, true, true, 1), Next::AnyServer);
        assert_eq!(next_step(Reset, false, true, 3), Next::Stop);
        assert_eq!(next_step(Reset, true, false, 3), Next::Stop);
        // Timeouts only with the retry middleware.
        assert_eq!(next_step(Timeout, true, true, 0), Next::Stop);
        assert_eq!(next_step(Timeout, true, true, 1), Next::AnyServer);
        assert_eq!(next_step(ServerError, true, true, 3), Next::Stop);
        assert!(is_idempotent(&Method::PUT) && is_idempotent(&Method::TRACE));
        assert!(!is_idempotent(&Method::POST) && !is_idempotent(&Method::PATCH));
    }

    #[tokio::test]
    async fn small_known_bodies_are_kept_for_resending() {
        let small = prepare_body(Body::full("hello"), true).await.unwrap();
        assert!(matches!(&small, ReqBody::Replayable(b) if b.as_ref() == b"hello"));
        let mut small = small;
        assert!(small.take().is_some() && small.take().is_some() && small.can_send_again());

        let big = Body::full(vec![b'x'; REPLAY_LIMIT as usize + 1]);
        let mut big = prepare_body(big, true).await.unwrap();
        assert!(matches!(big, ReqBody::Stream(Some(_))));
        assert!(big.take().is_some());
        assert!(
            big.take().is_none() && !big.can_send_again(),
            "streamed once only"
        );

        let post = prepare_body(Body::full("x"), false).await.unwrap();
        assert!(matches!(post, ReqBody::Stream(Some(_))));
        let empty = prepare_body(Body::empty(), true).await.unwrap();
        assert!(matches!(empty, ReqBody::Replayable(b) if b.is_empty()));
    }
}
