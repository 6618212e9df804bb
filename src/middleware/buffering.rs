//! `buffering`: the whole request is read before it is forwarded, and each
//! whole answer before it is relayed, with Traefik's limits and retries
//! (oxy's `buffer`).
//!
//! - The request body is read to its end first: `memRequestBodyBytes`
//!   (1 MiB) in memory, the rest in a temporary file ([`spool`]). Over
//!   `maxRequestBodyBytes`, by its `Content-Length` before anything is
//!   read or by counting a chunked body, the client gets a 413 and the
//!   backend nothing. The backend gets the body with a `Content-Length`.
//! - Each answer is read to its end the same way (`memResponseBodyBytes`);
//!   over `maxResponseBodyBytes` the client gets a 500 instead. Answers
//!   without a body (HEAD, 1xx, 204, 304, `Content-Length: 0`, a gRPC
//!   error) pass as they are.
//! - `retryExpression` ([`expr`]) is asked after each attempt; when it
//!   holds, the buffered request goes again, at most 10 times.
//!
//! Where it runs: the layer's request step does nothing. When the route's
//! layers are built, [`Plan::of`] gathers what its buffering layers ask
//! for, and the handler hands that route's exchange to [`Plan::forward`]
//! instead of `forward::forward` (or `composite::serve`). A route without buffering pays one
//! `None` check per request.
//!
//! Unlike Traefik, where the layer sits in the chain makes no difference:
//! every layer's request step runs before the body is read (a 401 or a
//! rate limit answers without reading it), every response step sees the
//! buffered answer, and a retry does not run the layers again. Several
//! buffering layers on one route keep the tightest limits, and their
//! expressions nest as Traefik's nested middlewares do. Requests to
//! internal services (`api@internal`, ...) are not buffered. A request
//! body that fails while it is read is the client's fault, a 400 as
//! elsewhere in escale (oxy answers 500, or 499 when the client left),
//! and an answer that fails while it is read is a 502 the expression can
//! retry (Traefik aborts the connection).
//!
//! [`spool`]: crate::proxy::spool

mod expr;

pub use expr::{Attempt, Expr, ExprError};

use std::future::Future;
use std::pin::Pin;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, request};
use smallvec::SmallVec;

use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;
use crate::proxy::body::{Body, text_response};
use crate::proxy::composite;
use crate::proxy::error::ProxyError;
use crate::proxy::forward::{ClientSide, Forwarded};
use crate::proxy::spool::{self, Limits, SpoolError, Spooled};
use crate::routing::composite::Node;

/// Bytes kept in memory when `mem…BodyBytes` is unset or 0 (oxy's default).
pub const DEFAULT_MEM_BYTES: u64 = 1 << 20;

/// After this many attempts the expression is no longer asked (oxy's
/// `DefaultMaxRetryAttempts`): 11 attempts at most.
pub const MAX_ASKED_ATTEMPTS: u32 = 10;

/// One `buffering` middleware, validated.
#[derive(Debug)]
pub struct Buffering {
    request: Limits,
    response: Limits,
    retry: Option<Expr>,
}

impl Buffering {
    /// Every problem of the configuration, in one error.
    pub fn new(name: &str, config: &dynamic::Buffering) -> Result<Self, MiddlewareError> {
        let mut problems: Vec<String> = Vec::new();
        let mut size = |key: &str, value: Option<i64>| -> u64 {
            match value.map(u64::try_from) {
                None => 0,
                Some(Ok(n)) => n,
                Some(Err(_)) => {
                    problems.push(format!(
                        "`{key}` must not be negative, got {}",
                        value.unwrap_or_default()
                    ));
                    0
                }
            }
        };
        let limits = |max: u64, mem: u64| Limits {
            // 0: no limit, and Traefik's default for the memory threshold.
            max: (max > 0).then_some(max),
            mem: if mem == 0 { DEFAULT_MEM_BYTES } else { mem },
        };
        let request = limits(
            size("maxRequestBodyBytes", config.max_request_body_bytes),
            size("memRequestBodyBytes", config.mem_request_body_bytes),
        );
        let response = limits(
            size("maxResponseBodyBytes", config.max_response_body_bytes),
            size("memResponseBodyBytes", config.mem_response_body_bytes),
        );
        // Empty: no retries, as Traefik (`oxybuffer.Cond`).
        let retry = match config.retry_expression.as_str() {
            "" => None,
            text => match Expr::parse(text) {
                Ok(e) => Some(e),
                Err(e) => {
                    problems.push(format!("`retryExpression` {text:?}: {e}"));
                    None
                }
            },
        };
        if !problems.is_empty() {
            return Err(MiddlewareError::new(name, problems.join("; ")));
        }
        Ok(Buffering {
            request,
            response,
            retry,
        })
    }
}

impl Layer for Buffering {
    /// The work happens around forwarding ([`Plan::forward`]).
    fn on_request(&self, _req: &mut request::Parts, _ctx: &mut RequestCtx) -> Flow {
        Flow::Continue
    }

    fn buffering(&self) -> Option<&Buffering> {
        Some(self)
    }
}

/// What a route's buffering layers ask for together, built with the route.
#[derive(Debug)]
pub struct Plan {
    request: Limits,
    response: Limits,
    /// The retry expressions, outermost layer first.
    retry: SmallVec<[Expr; 1]>,
}

fn tighter(a: Limits, b: Limits) -> Limits {
    Limits {
        mem: a.mem.min(b.mem),
        max: match (a.max, b.max) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        },
    }
}

impl Plan {
    /// `None` when no layer buffers, the common case.
    pub fn of(layers: &[std::sync::Arc<dyn Layer>]) -> Option<Box<Plan>> {
        let mut found = layers.iter().filter_map(|l| l.buffering());
        let first = found.next()?;
        let mut plan = Plan {
            request: first.request,
            response: first.response,
            retry: first.retry.iter().cloned().collect(),
        };
        for b in found {
            plan.request = tighter(plan.request, b.request);
            plan.response = tighter(plan.response, b.response);
            plan.retry.extend(b.retry.iter().cloned());
        }
        Some(Box::new(plan))
    }

    /// Forwards with buffering. Boxed: the handler's future, which every
    /// request builds, keeps its size whatever this one's is.
    pub fn forward<'a>(
        &'a self,
        service: &'a Node,
        parts: request::Parts,
        body: Body,
        client: &'a ClientSide<'a>,
    ) -> Pin<Box<dyn Future<Output = Forwarded> + Send + 'a>> {
        Box::pin(self.exchange(service, parts, body, client))
    }

    async fn exchange(
        &self,
        service: &Node,
        mut parts: request::Parts,
        body: Body,
        client: &ClientSide<'_>,
    ) -> Forwarded {
        let request = match self.read_request(&mut parts, body).await {
            Ok(r) => r,
            Err(answer) => return answer,
        };
        if self.retry.is_empty() {
            return self.attempt(service, parts, &request, client).await.0;
        }
        // Each attempt is a whole `forward::forward`: the balancer picks a
        // server again (as Traefik's retry goes through its load balancer),
        // with its pooled connections, passive health, sticky cookie and
        // its own safe retries (a failed connect goes elsewhere) unchanged.
        // Only the decision to send again after an answer is made here,
        // since only a buffered request can be sent again whatever its
        // method and size.
        let method = parts.method.clone();
        let mut attempts: SmallVec<[u32; 1]> = self.retry.iter().map(|_| 1).collect();
        let mut retries: u32 = 0;
        loop {
            let (mut out, settled) = self.attempt(service, parts.clone(), &request, client).await;
            retries += out.retries;
            out.retries = retries;
            let status = match &out.result {
                Ok(res) => res.status(),
                Err(e) => e.status(),
            };
            if settled {
                return out;
            }
            if retry_level(&self.retry, &mut attempts, status.as_u16(), &method).is_none() {
                return out;
            }
            tracing::debug!(
                service = %service.name(), status = status.as_u16(), retry = retries + 1,
                "retryExpression holds: sending the buffered request again"
            );
            retries += 1;
            if let Node::Pool(pool) = service {
                pool.retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// The whole request body, or the answer that ends the exchange.
    async fn read_request(
        &self,
        parts: &mut request::Parts,
        body: Body,
    ) -> Result<Spooled, Forwarded> {
        let answer = Forwarded::local;
        let too_large = || {
            tracing::debug!(
                max = self.request.max,
                "request body over maxRequestBodyBytes: 413"
            );
            answer(Ok(text_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request Entity Too Large",
            )))
        };
        if let (Some(max), Some(declared)) = (self.request.max, declared_length(&parts.headers))
            && declared > max
        {
            return Err(too_large());
        }
        match spool::spool(body, self.request).await {
            Ok(spooled) => {
                set_length(parts, spooled.len());
                Ok(spooled)
            }
            Err(SpoolError::TooLarge(_)) => Err(too_large()),
            Err(SpoolError::Body(e)) => Err(answer(Err(ProxyError::ClientBody(e)))),
            Err(e @ SpoolError::Disk { .. }) => Err(answer(Err(ProxyError::Internal(format!(
                "buffering the request: {e}"
            ))))),
        }
    }

    /// One attempt, its answer read in full. `true`: the answer is final
    /// whatever the expression says (over `maxResponseBodyBytes`, as oxy).
    async fn attempt(
        &self,
        service: &Node,
        parts: request::Parts,
        request: &Spooled,
        client: &ClientSide<'_>,
    ) -> (Forwarded, bool) {
        let head = parts.method == Method::HEAD;
        let mut out = composite::serve(service, parts, request.body(), client).await;
        let res = match out.result {
            Ok(res) if expects_body(head, &res) => res,
            other => {
                out.result = other;
                return (out, false);
            }
        };
        let (mut res_parts, body) = res.into_parts();
        let (result, settled) = match spool::spool(body, self.response).await {
            Ok(spooled) => {
                // Known now, even when the backend chunked it (the access
                // log reads it too).
                res_parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(spooled.len()));
                (Ok(Response::from_parts(res_parts, spooled.body())), false)
            }
            Err(SpoolError::TooLarge(max)) => (
                Err(ProxyError::Internal(format!(
                    "the response body is larger than maxResponseBodyBytes ({max})"
                ))),
                true,
            ),
            // The backend failed mid-body: nothing was sent to the client
            // yet, so it can still hear a 502 (and the expression, a
            // network error).
            Err(SpoolError::Body(e)) => (Err(ProxyError::Upstream(e)), false),
            Err(e @ SpoolError::Disk { .. }) => (
                Err(ProxyError::Internal(format!("buffering the response: {e}"))),
                true,
            ),
        };
        out.result = result;
        (out, settled)
    }
}

/// After an answer with `status`: which buffering layer sends the request
/// again (its index in `exprs`, outermost first), counting the attempt in
/// `attempts`; `None`: the answer stands.
///
/// As Traefik's nested middlewares: the innermost layer asks first; when
/// it stops retrying, the next one out decides on the same answer, and its
/// retry goes through the inner layers afresh (their counts start again).
fn retry_level(
    exprs: &[Expr],
    attempts: &mut [u32],
    status: u16,
    method: &Method,
) -> Option<usize> {
    let level = (0..attempts.len().min(exprs.len())).rev().find(|&level| {
        attempts[level] <= MAX_ASKED_ATTEMPTS
            && exprs[level].holds(&Attempt {
                attempts: attempts[level],
                response_code: status,
                method,
            })
    })?;
    attempts[level] += 1;
    for inner in &mut attempts[level + 1..] {
        *inner = 1;
    }
    Some(level)
}

/// Whether an answer has a body to read (oxy's `expectBody`).
fn expects_body(head: bool, res: &Response<Body>) -> bool {
    let status = res.status();
    if head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return false;
    }
    let headers = res.headers();
    if headers
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0")
    {
        return false;
    }
    // A gRPC error carries no message.
    headers
        .get("grpc-status")
        .is_none_or(|v| v.as_bytes() == b"0")
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The buffered request goes with its exact length, never chunked. An
/// empty body gets `Content-Length: 0` where a body is expected, as Go's
/// client sends it for Traefik.
fn set_length(parts: &mut request::Parts, len: u64) {
    parts.headers.remove(header::TRANSFER_ENCODING);
    let expected = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH);
    if len > 0 || expected {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    } else {
        parts.headers.remove(header::CONTENT_LENGTH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn config(f: impl FnOnce(&mut dynamic::Buffering)) -> dynamic::Buffering {
        let mut c = dynamic::Buffering::default();
        f(&mut c);
        c
    }

    #[test]
    fn defaults_follow_traefik() {
        let b = Buffering::new("b@file", &dynamic::Buffering::default()).unwrap();
        let unlimited = Limits {
            mem: DEFAULT_MEM_BYTES,
            max: None,
        };
        assert_eq!(b.request, unlimited);
        assert_eq!(b.response, unlimited);
        assert!(b.retry.is_none());
        let b = Buffering::new(
            "b@file",
            &config(|c| {
                c.max_request_body_bytes = Some(2_000_000);
                c.mem_request_body_bytes = Some(0);
                c.max_response_body_bytes = Some(0);
                c.mem_response_body_bytes = Some(4096);
                c.retry_expression = "IsNetworkError() && Attempts() < 2".into();
            }),
        )
        .unwrap();
        assert_eq!(
            b.request,
            Limits {
                mem: DEFAULT_MEM_BYTES,
                max: Some(2_000_000)
            }
        );
        assert_eq!(
            b.response,
            Limits {
                mem: 4096,
                max: None
            }
        );
        assert!(b.retry.is_some());
    }

    #[test]
    fn every_bad_value_is_named() {
        let err = Buffering::new(
            "limit@file",
            &config(|c| {
                c.max_request_body_bytes = Some(-1);
                c.mem_response_body_bytes = Some(-42);
                c.retry_expression = "Attempts() <".into();
            }),
        )
        .unwrap_err();
        assert_eq!(err.middleware, "limit@file");
        assert_eq!(
            err.message,
            "`maxRequestBodyBytes` must not be negative, got -1; \
             `memResponseBodyBytes` must not be negative, got -42; \
             `retryExpression` \"Attempts() <\": the expression ends too early"
        );
        let err =
            Buffering::new("r@docker", &config(|c| c.retry_expression = " ".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "middleware `r@docker`: `retryExpression` \" \": the expression is empty"
        );
    }

    #[test]
    fn a_route_plan_exists_only_with_a_buffering_layer_and_keeps_the_tightest_limits() {
        let strip: Arc<dyn Layer> = Arc::new(
            crate::middleware::StripPrefix::new(
                "s@file",
                &dynamic::StripPrefix {
                    prefixes: vec!["/a".into()],
                    force_slash: None,
                },
            )
            .unwrap(),
        );
        assert!(Plan::of(&[]).is_none());
        assert!(Plan::of(std::slice::from_ref(&strip)).is_none());
        let outer: Arc<dyn Layer> = Arc::new(
            Buffering::new(
                "o@file",
                &config(|c| {
                    c.max_request_body_bytes = Some(100);
                    c.retry_expression = "ResponseCode() == 503".into();
                }),
            )
            .unwrap(),
        );
        let inner: Arc<dyn Layer> = Arc::new(
            Buffering::new(
                "i@file",
                &config(|c| {
                    c.max_request_body_bytes = Some(1000);
                    c.mem_request_body_bytes = Some(10);
                    c.max_response_body_bytes = Some(5);
                    c.retry_expression = "IsNetworkError()".into();
                }),
            )
            .unwrap(),
        );
        let plan = Plan::of(&[outer, strip, inner]).unwrap();
        assert_eq!(
            plan.request,
            Limits {
                mem: 10,
                max: Some(100)
            }
        );
        assert_eq!(
            plan.response,
            Limits {
                mem: DEFAULT_MEM_BYTES,
                max: Some(5)
            }
        );
        assert_eq!(plan.retry.len(), 2);
        assert_eq!(plan.retry[1], Expr::IsNetworkError);
    }

    /// How many attempts a request gets when every one answers `status`.
    fn attempts_made(exprs: &[&str], status: u16) -> u32 {
        let exprs: Vec<Expr> = exprs.iter().map(|e| Expr::parse(e).unwrap()).collect();
        let mut attempts = vec![1; exprs.len()];
        let mut made = 1;
        while retry_level(&exprs, &mut attempts, status, &Method::POST).is_some() {
            made += 1;
            assert!(made < 1000, "retries must end");
        }
        made
    }

    #[test]
    fn retries_stop_where_the_expression_and_oxy_stop_them() {
        assert_eq!(
            attempts_made(&["IsNetworkError() && Attempts() < 3"], 502),
            3
        );
        assert_eq!(
            attempts_made(&["IsNetworkError() && Attempts() < 3"], 503),
            1
        );
        assert_eq!(attempts_made(&["Attempts() <= 2"], 200), 3);
        // Asked after the first 10 attempts only: 11 at most.
        assert_eq!(attempts_made(&["ResponseCode() == 503"], 503), 11);
        assert_eq!(attempts_made(&[], 502), 1);
        // Nested layers: 2 rounds of the outer one, 3 attempts each inside.
        assert_eq!(
            attempts_made(
                &["Attempts() < 2", "IsNetworkError() && Attempts() < 3"],
                504
            ),
            6
        );
        // The inner layer does not retry this answer; the outer one does.
        assert_eq!(
            attempts_made(
                &[
                    "ResponseCode() == 503 && Attempts() < 4",
                    "IsNetworkError()"
                ],
                503
            ),
            4
        );
    }

    #[test]
    fn which_answers_have_a_body() {
        let res = |status: u16, headers: &[(&str, &str)]| {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::from_u16(status).unwrap();
            for (k, v) in headers {
                r.headers_mut().insert(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            r
        };
        assert!(expects_body(false, &res(200, &[])));
        assert!(expects_body(false, &res(500, &[("content-length", "10")])));
        assert!(expects_body(false, &res(200, &[("grpc-status", "0")])));
        assert!(!expects_body(true, &res(200, &[])));
        for status in [101, 204, 304] {
            assert!(!expects_body(false, &res(status, &[])), "{status}");
        }
        assert!(!expects_body(false, &res(200, &[("content-length", "0")])));
        assert!(!expects_body(false, &res(200, &[("grpc-status", "14")])));
    }

    #[test]
    fn the_forwarded_request_has_its_exact_length() {
        let parts = |method: Method, headers: &[(&str, &str)]| {
            let mut b = http::Request::builder().method(method).uri("/");
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            b.body(()).unwrap().into_parts().0
        };
        let mut p = parts(Method::POST, &[("transfer-encoding", "chunked")]);
        set_length(&mut p, 12);
        assert_eq!(p.headers["content-length"], "12");
        assert!(p.headers.get("transfer-encoding").is_none());
        let mut p = parts(Method::POST, &[]);
        set_length(&mut p, 0);
        assert_eq!(p.headers["content-length"], "0");
        let mut p = parts(Method::GET, &[("content-length", "0")]);
        set_length(&mut p, 0);
        assert!(p.headers.get("content-length").is_none());
        assert_eq!(
            declared_length(&parts(Method::PUT, &[("content-length", "77")]).headers),
            Some(77)
        );
    }
}
