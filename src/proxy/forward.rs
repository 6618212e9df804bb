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

use super::body::{Body, ExchangeGuard};
use super::error::ProxyError;
use super::headers;
use super::pool::{ConnectError, Sender};
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
            return Forwarded {
                result: Err(e),
                server: None,
                retries: 0,
            };
        }
    };

    // Servers already attempted, by address (raw pointers are not Send).
    let mut tried: Vec<usize> = Vec::new();
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
            let checkout = server
                .pool
                .checkout(&server.upstream.authority, server.h2c, config);
            let mut sender = tokio::select! {
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
            let Some(b) = body.take() else {
                break Err(ProxyError::Internal("request body already consumed".into()));
            };
            let req =
                match build_upstream_request(&parts, &server, service, original_host.as_ref(), b) {
                    Ok(r) => r,
                    Err(e) => {
                        return Forwarded {
                            result: Err(e),
                            server: Some(server),
                            retries,
                        };
                    }
                };
            let started = Instant::now();
            match send(&mut sender, req, config.response_header_timeout).await {
                SendOutcome::Response(r) => {
                    observe_latency(&server, started);
                    break Ok((r, sender));
                }
                SendOutcome::NotSent(req) => {
                    body.put_back(req.into_body());
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
                SendOutcome::Failed(e) => {
                    observe_latency(&server, started);
                    break Err(e);
                }
            }
        };

        let (response, sender) = match outcome {
            Ok(pair) => pair,
            Err(ProxyError::Internal(m)) => {
                return Forwarded {
                    result: Err(ProxyError::Internal(m)),
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

        let status = response.status();
        if status.is_server_error() {
            passive_failure(service, &server, FailureKind::ServerError);
        } else {
            server.passive_success();
        }

        let (mut res_parts, res_body) = response.into_parts();
        let switching = res_parts.status == StatusCode::SWITCHING_PROTOCOLS;
        if switching && let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = res_parts.extensions.remove::<OnUpgrade>();
            spawn_tunnel(client_upgrade, upstream_upgrade, in_flight);
            let res = Response::from_parts(res_parts, Body::empty());
            return finish(res, sticky, &server, stuck.as_ref(), retries);
        }
        headers::remove_hop_by_hop(&mut res_parts.headers);

        let mut guard = ExchangeGuard {
            in_flight: Some(in_flight),
            conn: None,
            extra: Vec::new(),
        };
        if let Sender::Http1(s) = sender {
            guard.conn = Some((s, config.max_idle_conns_per_host));
        }
        let body = if http_body::Body::is_end_stream(&res_body) {
            guard.complete();
            Body::Upstream(res_body, ExchangeGuard::default())
        } else {
            Body::Upstream(res_body, guard)
        };
        let res = Response::from_parts(res_parts, body);
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

fn observe_latency(server: &ServerState, started: Instant) {
    let elapsed = started.elapsed().as_secs_f64() * 1e6;
    server.latency.observe(elapsed, clock::now_us());
}

fn passive_failure(service: &ServiceRuntime, server: &Arc<ServerState>, kind: FailureKind) {
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

fn build_upstream_request(
    parts: &request::Parts,
    server: &ServerState,
    service: &ServiceRuntime,
    original_host: Option<&HeaderValue>,
    body: Body,
) -> Result<Request<Body>, ProxyError> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let base = server.upstream.base_path.as_str();
    let host = if service.pass_host_header {
        original_host.cloned()
    } else {
        HeaderValue::from_str(server.upstream.authority.as_str()).ok()
    };
    let uri = if server.h2c {
        // HTTP/2 carries the host in :authority, taken from the URI; the
        // connection itself is already open to the server.
        let authority = host
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .unwrap_or(server.upstream.authority.as_str());
        format!("http://{authority}{base}{path_and_query}")
    } else if base.is_empty() {
        path_and_query.to_string()
    } else {
        format!("{base}{path_and_query}")
    };
    let mut builder = Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .version(if server.h2c {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        });
    if let Some(headers) = builder.headers_mut() {
        *headers = parts.headers.clone();
        match host {
            Some(_) if server.h2c => {
                headers.remove(header::HOST);
            }
            Some(h) => {
                headers.insert(header::HOST, h);
            }
            None => {}
        }
    }
    builder
        .body(body)
        .map_err(|e| ProxyError::BadRequest(format!("cannot rewrite request: {e}")))
}

enum SendOutcome {
    Response(Response<hyper::body::Incoming>),
    NotSent(Request<Body>),
    Failed(ProxyError),
}

async fn send(
    sender: &mut Sender,
    req: Request<Body>,
    header_timeout: Option<std::time::Duration>,
) -> SendOutcome {
    let exchange = async {
        match sender {
            Sender::Http1(s) => s.try_send_request(req).await,
            Sender::Http2(s) => s.try_send_request(req).await,
        }
    };
    let result = match header_timeout {
        Some(t) => match tokio::time::timeout(t, exchange).await {
            Ok(r) => r,
            Err(_) => return SendOutcome::Failed(ProxyError::ResponseTimeout(t)),
        },
        None => exchange.await,
    };
    match result {
        Ok(res) => SendOutcome::Response(res),
        Err(mut e) => match e.take_message() {
            Some(req) => SendOutcome::NotSent(req),
            None => SendOutcome::Failed(ProxyError::Upstream(e.into_error())),
        },
    }
}

/// Relays bytes both ways once client and backend both switched protocols.
fn spawn_tunnel(
    client: OnUpgrade,
    upstream: Option<OnUpgrade>,
    in_flight: crate::balance::server::InFlight,
) {
    tokio::spawn(async move {
        let _in_flight = in_flight;
        let Some(upstream) = upstream else { return };
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
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
