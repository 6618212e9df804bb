//! Serving Traefik's services over services (`routing::composite`): the
//! request goes down the tree to one pool, and is forwarded there.
//!
//! - `weighted`: the child chosen by weight (or the sticky cookie), whose
//!   cookie goes with the answer;
//! - `highestRandomWeight`: the child the client's address hashes to;
//! - `failover`: the main service while it is up; else, or when its answer
//!   has a status of `errors.status` (the body kept to send again), the
//!   fallback;
//! - `mirroring`: the main service answers; the mirrors due for this
//!   request get a copy each, in the background, their answers dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use http::header;
use http::{StatusCode, request};
use http_body_util::BodyExt;

use super::body::{Body, BoxError, go_error_response};
use super::error::ProxyError;
use super::forward::{self, ClientSide, Forwarded};
use crate::middleware::{NoXForwardedFor, RetryPolicy};
use crate::routing::composite::{Failover, MAX_MIRRORING, Mirroring, Node, Weighted};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Forwards a request to the pool `node` leads to.
pub fn serve<'a>(
    node: &'a Node,
    parts: request::Parts,
    body: Body,
    client: &'a ClientSide<'a>,
) -> BoxFuture<'a, Forwarded> {
    Box::pin(async move {
        match node {
            Node::Pool(service) => forward::forward(service, parts, body, client).await,
            Node::Weighted(w) => weighted(w, parts, body, client).await,
            Node::Hrw(h) => match h.choose(client.client_ip) {
                Some(node) => serve(node, parts, body, client).await,
                None => answer(StatusCode::SERVICE_UNAVAILABLE, "no available server\n"),
            },
            Node::Failover(f) => failover(f, parts, body, client).await,
            Node::Mirroring(m) => mirroring(m, parts, body, client).await,
        }
    })
}

/// An answer of the composite service itself, not of a server.
fn answer(status: StatusCode, text: &'static str) -> Forwarded {
    Forwarded::local(Ok(go_error_response(status, text)))
}

async fn weighted(
    w: &Weighted,
    parts: request::Parts,
    body: Body,
    client: &ClientSide<'_>,
) -> Forwarded {
    let Some(choice) = w.choose(&parts.headers) else {
        return answer(StatusCode::SERVICE_UNAVAILABLE, "no available server\n");
    };
    let mut out = serve(choice.node, parts, body, client).await;
    if let (Some(cookie), Ok(res)) = (choice.set_cookie, &mut out.result) {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    out
}

async fn failover(
    f: &Failover,
    mut parts: request::Parts,
    mut body: Body,
    client: &ClientSide<'_>,
) -> Forwarded {
    if f.main.is_up() {
        let Some((caught, limit)) = &f.errors else {
            return serve(&f.main, parts, body, client).await;
        };
        let bytes = match read_up_to(&mut body, *limit).await {
            Ok((bytes, true)) => bytes,
            Ok((_, false)) => {
                return answer(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large\n");
            }
            Err(e) => return Forwarded::local(Err(ProxyError::ClientBody(e))),
        };
        let again = copy_head(&parts);
        let out = serve(&f.main, parts, Body::full(bytes.clone()), client).await;
        let status = match &out.result {
            Ok(res) => res.status(),
            Err(e) => e.status(),
        };
        if !caught.contains(status.as_u16()) {
            return out;
        }
        (parts, body) = (again, Body::full(bytes));
    }
    if f.fallback_usable() {
        return serve(&f.fallback, parts, body, client).await;
    }
    answer(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n")
}

async fn mirroring(
    m: &Arc<Mirroring>,
    parts: request::Parts,
    mut body: Body,
    client: &ClientSide<'_>,
) -> Forwarded {
    let mirrors: Vec<Node> = m.active().into_iter().cloned().collect();
    if mirrors.is_empty() {
        return serve(&m.main, parts, body, client).await;
    }
    let Some(slot) = MirrorSlot::take(m) else {
        tracing::debug!(service = %m.name, "no mirroring: too many copies on their way");
        return serve(&m.main, parts, body, client).await;
    };
    let copied = if m.mirror_body {
        match read_up_to(&mut body, m.max_body_size).await {
            Ok((bytes, true)) => Some(bytes),
            Ok((prefix, false)) => {
                tracing::debug!(service = %m.name, "no mirroring: the request body is larger than maxBodySize");
                return serve(&m.main, parts, Body::prefixed(prefix, body), client).await;
            }
            Err(e) => return Forwarded::local(Err(ProxyError::ClientBody(e))),
        }
    } else {
        None
    };
    let mut head = copy_head(&parts);
    if copied.is_none() {
        // The copies go without the body: nothing may announce one.
        head.headers.remove(header::CONTENT_LENGTH);
        head.headers.remove(header::TRANSFER_ENCODING);
    }
    let main_body = match &copied {
        Some(bytes) => Body::full(bytes.clone()),
        None => body,
    };
    let out = serve(&m.main, parts, main_body, client).await;

    let client_ip = client.client_ip;
    let client_ip_value = client.client_ip_value.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let client = ClientSide {
            client_ip,
            client_ip_value: &client_ip_value,
        };
        for node in &mirrors {
            let body = copied.clone().map_or_else(Body::empty, Body::full);
            let copy = serve(node, copy_head(&head), body, &client).await;
            // Read to the end, so that the connection can serve again.
            if let Ok(res) = copy.result {
                let mut body = res.into_body();
                while let Some(Ok(_)) = body.frame().await {}
            }
        }
    });
    out
}

/// One request's copies counted against [`MAX_MIRRORING`] until dropped.
struct MirrorSlot(Arc<Mirroring>);

impl MirrorSlot {
    fn take(m: &Arc<Mirroring>) -> Option<Self> {
        let before = m.in_flight.fetch_add(1, Ordering::Relaxed);
        let slot = MirrorSlot(m.clone());
        (before < MAX_MIRRORING).then_some(slot)
    }
}

impl Drop for MirrorSlot {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reads `body` to its end, or until it has given more than `limit` bytes:
/// then `false`, and the rest is still in `body`. Trailers are dropped.
async fn read_up_to(body: &mut Body, limit: Option<u64>) -> Result<(Bytes, bool), BoxError> {
    let mut read = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            read.extend_from_slice(&data);
            if limit.is_some_and(|l| read.len() as u64 > l) {
                return Ok((read.freeze(), false));
            }
        }
    }
    Ok((read.freeze(), true))
}

/// A request head to send again. Not `Parts::clone`: that clones every
/// extension, the client's connection upgrade among them, which a copy sent
/// elsewhere must not carry; only the forwarder's own extensions go.
fn copy_head(parts: &request::Parts) -> request::Parts {
    let (mut head, ()) = http::Request::new(()).into_parts();
    head.method = parts.method.clone();
    head.uri = parts.uri.clone();
    head.version = parts.version;
    head.headers = parts.headers.clone();
    if let Some(p) = parts.extensions.get::<RetryPolicy>() {
        head.extensions.insert(*p);
    }
    if parts.extensions.get::<NoXForwardedFor>().is_some() {
        head.extensions.insert(NoXForwardedFor);
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::Target;
    use crate::routing::compile::{compile_yaml, route_for};

    #[test]
    fn mirror_copies_on_their_way_are_bounded() {
        let yaml = "http:\n  routers:\n    r:\n      rule: Host(`a`)\n      service: m\n  services:\n    m:\n      mirroring:\n        service: a\n        mirrors: [{name: a, percent: 100}]\n    a:\n      loadBalancer:\n        servers: [{url: http://127.0.0.1:9}]\n";
        let table = compile_yaml(yaml, None);
        let route = route_for(&table, "a").unwrap();
        let Target::Composite(Node::Mirroring(m)) = &route.target else {
            panic!("{:?}", route.target)
        };
        let slots: Vec<MirrorSlot> = (0..MAX_MIRRORING)
            .map(|_| MirrorSlot::take(m).expect("room"))
            .collect();
        assert!(MirrorSlot::take(m).is_none(), "full");
        drop(slots);
        assert_eq!(m.in_flight.load(Ordering::Relaxed), 0);
        assert!(MirrorSlot::take(m).is_some());
    }
}
