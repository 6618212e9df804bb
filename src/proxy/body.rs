//! The body type the proxy answers with: a backend's streamed body, a small
//! in-memory body (errors, redirects, internal pages) or anything boxed.
//! An enum rather than a box so that the common cases allocate nothing.

use std::any::Any;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;

use super::h1;
use super::linger::RequestBody;
use crate::balance::server::InFlight;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub enum Body {
    Empty,
    Full(Option<Bytes>),
    /// A client's request body.
    Request(RequestBody),
    /// A backend's response body, with what must live until it ends.
    Upstream(Upstream, ExchangeGuard),
    Boxed(BoxBody<Bytes, BoxError>),
}

/// A frame already read from a body, then the rest of it.
struct Replayed {
    first: Option<Result<Frame<Bytes>, BoxError>>,
    rest: Body,
}

impl http_body::Body for Replayed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(first));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let first = match &self.first {
            Some(Ok(frame)) => frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => 0,
        };
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + first);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}

/// A backend's response body: HTTP/1.1 read by the request's own task (its
/// connection goes back to the pool when the body has ended), or HTTP/2.
pub enum Upstream {
    H1(h1::ResponseBody),
    H2(Incoming),
}

/// Held by a backend response body until it has been fully relayed: the
/// server's in-flight count and middleware guards.
#[derive(Default)]
pub struct ExchangeGuard {
    pub in_flight: Option<InFlight>,
    /// The server's limit of idle connections.
    pub max_idle: usize,
    pub extra: Vec<Box<dyn Any + Send + Sync>>,
}

impl ExchangeGuard {
    /// The exchange completed: its connection may carry another request.
    pub fn release(&self, conn: Box<h1::Conn>) {
        if let Some(in_flight) = &self.in_flight {
            in_flight.server().pool.checkin(conn, self.max_idle);
        }
    }
}

impl Body {
    pub fn empty() -> Self {
        Body::Empty
    }

    pub fn full(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        if data.is_empty() {
            Body::Empty
        } else {
            Body::Full(Some(data))
        }
    }

    /// `prefix`, already read from `rest`, then what `rest` still holds.
    pub fn prefixed(prefix: Bytes, rest: Body) -> Self {
        if prefix.is_empty() {
            return rest;
        }
        Body::replayed(Ok(Frame::data(prefix)), rest)
    }

    /// `first`, a frame (or error) already read from `rest`, then the rest.
    pub fn replayed(first: Result<Frame<Bytes>, BoxError>, rest: Body) -> Self {
        Body::boxed(Replayed {
            first: Some(first),
            rest,
        })
    }

    pub fn boxed<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        Body::Boxed(body.map_err(Into::into).boxed())
    }
}

impl From<RequestBody> for Body {
    fn from(b: RequestBody) -> Self {
        Body::Request(b)
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Full(b) => write!(f, "Body::Full({:?})", b.as_ref().map(|b| b.len())),
            Body::Request(_) => f.write_str("Body::Request"),
            Body::Upstream(..) => f.write_str("Body::Upstream"),
            Body::Boxed(_) => f.write_str("Body::Boxed"),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Body::Request(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Body::Upstream(Upstream::H1(b), guard) => {
                let polled = b.poll_frame(cx);
                if b.is_end_stream()
                    && let Some(conn) = b.take_reusable()
                {
                    guard.release(conn);
                }
                polled.map_err(Into::into)
            }
            Body::Upstream(Upstream::H2(b), _) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Body::Boxed(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(data) => data.is_none(),
            Body::Request(b) => b.is_end_stream(),
            Body::Upstream(Upstream::H1(b), _) => b.is_end_stream(),
            Body::Upstream(Upstream::H2(b), _) => b.is_end_stream(),
            Body::Boxed(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Body::Request(b) => b.size_hint(),
            Body::Upstream(Upstream::H1(b), _) => b.size_hint(),
            Body::Upstream(Upstream::H2(b), _) => b.size_hint(),
            Body::Boxed(b) => b.size_hint(),
        }
    }
}

/// A response with a short plain-text body, for errors and internal answers.
pub fn text_response(status: http::StatusCode, text: impl Into<Bytes>) -> http::Response<Body> {
    let mut res = http::Response::new(Body::full(text));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// A response as Go's `http.Error` writes it (Traefik's 404 and its
/// load balancer's 503): plain text, not to be sniffed.
pub fn go_error_response(status: http::StatusCode, text: &'static str) -> http::Response<Body> {
    let mut res = text_response(status, text);
    res.headers_mut().insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    res
}

/// A response with the short text Go handlers write after `WriteHeader`
/// (the status text, mostly), without `Content-Type`: Traefik 3 turns Go's
/// guess off, so its middlewares' own answers carry none.
pub fn untyped_text_response(
    status: http::StatusCode,
    text: impl Into<Bytes>,
) -> http::Response<Body> {
    let mut res = http::Response::new(Body::full(text));
    *res.status_mut() = status;
    res
}
