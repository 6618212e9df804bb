//! The relay: HTTP/1.1 exchanges that need nothing but routing and
//! forwarding, passed through as bytes.
//!
//! Most requests at an edge are a `GET` or a `HEAD` without a body, routed
//! by host and path to a plain service: no middleware, no sticky cookie, no
//! body to buffer. For those, building a `Request` with its header map,
//! running it through hyper's server and the middleware pipeline, and
//! encoding hyper's response again costs about three times what proxying
//! needs (docs/benchmarks.md, "The relay"). Here the connection's task reads
//! the request head, writes the backend's head straight from its bytes with
//! the forwarded headers added, and relays the response head and body back
//! with the hop-by-hop headers removed, as `proxy::handler` and
//! `proxy::forward` would.
//!
//! Anything else is handed over, before a byte of it is answered: the
//! connection then goes to hyper and the full pipeline, unread bytes first,
//! for the rest of its life. That includes any request the relay cannot
//! answer exactly as the pipeline would: one with a body, an upgrade, a
//! forwarded header to weigh, a rule that reads headers, no route (404), no
//! server up (503), a server over HTTP/2 or TLS, and every failure before
//! the response head arrives (the request, idempotent and bodiless, is then
//! sent again by the pipeline, which retries, counts the failure and
//! answers 502 or 504 as it always does).

use std::future::poll_fn;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::{Buf, Bytes};
use http::{HeaderValue, Method, StatusCode, Uri, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use super::forward;
use super::h1::{self, Chunk, Decoded};
use super::handler::{Connection, EntrypointInfo, Proxy, lowercase};
use super::headers;
use super::observe::{Exchange, Protocol};
use super::pool::{Sender, Wire};
use super::target;
use super::watchdog::{Activity, Phase};
use crate::balance::passive::FailureKind;
use crate::balance::{InFlight, Picked, ServerState};
use crate::routing::{Route, ServiceRuntime, Target};
use crate::rules::{self, RequestInfo};

/// Room for a request head; a longer one goes to hyper.
const HEAD_BUFFER: usize = 8 * 1024;
/// Most headers a relayed request or response may carry; more go to hyper
/// (a response with more fails, and the pipeline answers it).
const MAX_HEADERS: usize = 64;

/// How the relay left a connection.
pub enum Ended {
    /// Closed, or to be closed.
    Closed,
    /// A request the relay does not take: hyper serves the connection from
    /// here, these bytes first.
    Handover(Vec<u8>),
}

/// Everything the relay needs from the connection's entrypoint.
pub struct Relay<'a> {
    pub proxy: &'a Proxy,
    pub ep: &'a EntrypointInfo,
    pub conn: &'a Connection,
    pub activity: &'a Activity,
    pub shutdown: &'a watch::Receiver<bool>,
}

/// What the relay takes from a request head, borrowed from its bytes.
struct Head<'b> {
    method: Method,
    fields: &'b [httparse::Header<'b>],
    /// The Host header as the client sent it.
    host: &'b str,
    close: bool,
    user_agent: Option<&'b [u8]>,
    referer: Option<&'b [u8]>,
}

/// A request on its way: where it goes and what it came with.
struct Plan<'b, 'r> {
    head: Head<'b>,
    uri: Uri,
    route: &'r Route,
    service: &'r ServiceRuntime,
}

/// How an exchange ended, when its answer went out.
enum Relayed {
    /// The connection may carry the next request.
    KeepAlive,
    Close,
}

impl Relay<'_> {
    /// Serves the connection's requests until one is not for the relay, or
    /// the connection ends.
    pub async fn serve<C: AsyncRead + AsyncWrite + Unpin>(&self, io: &mut C) -> Ended {
        let mut buf = vec![0u8; HEAD_BUFFER];
        let mut filled = 0;
        loop {
            // The head is read from the front; what the client sends while
            // its answer is awaited lands after it.
            let (front, spare) = buf.split_at_mut(filled);
            let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut []);
            let len = match httparse::ParserConfig::default()
                .parse_request_with_uninit_headers(&mut req, front, &mut raw)
            {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if filled < buf.len() => {
                    match io.read(&mut buf[filled..]).await {
                        Ok(0) | Err(_) => return Ended::Closed,
                        Ok(n) => filled += n,
                    }
                    continue;
                }
                // Too long, or malformed: hyper answers it.
                _ => return Ended::Handover(handover(buf, filled)),
            };
            self.activity.enter(Phase::Busy);
            let table = self.proxy.table.load();
            let Some(plan) = self.plan(&req, &table) else {
                return Ended::Handover(handover(buf, filled));
            };
            let mut extra = 0;
            let relayed = self.exchange(io, plan, spare, &mut extra).await;
            filled += extra;
            match relayed {
                Ok(Relayed::KeepAlive) => {}
                Ok(Relayed::Close) => {
                    let _ = io.shutdown().await;
                    return Ended::Closed;
                }
                Err(Failed::BeforeAnswer) => return Ended::Handover(handover(buf, filled)),
                Err(Failed::Answering) => return Ended::Closed,
            }
            buf.copy_within(len..filled, 0);
            filled -= len;
            self.activity.enter(Phase::Idle);
            // A drain that began while the answer was on its way: no
            // further request on this connection (hyper closes idle ones).
            if *self.shutdown.borrow() {
                return Ended::Closed;
            }
        }
    }

    /// Where a request goes, if the relay can take it.
    fn plan<'b, 'r>(
        &self,
        req: &'b httparse::Request<'b, 'b>,
        table: &'r crate::routing::RouteTable,
    ) -> Option<Plan<'b, 'r>> {
        if req.version != Some(1) {
            return None;
        }
        let method = match req.method? {
            "GET" => Method::GET,
            "HEAD" => Method::HEAD,
            _ => return None,
        };
        let head = scan(req.headers, method)?;
        let target = req.path?;
        if !target.starts_with('/') {
            return None;
        }
        // hyper's own parse of the target, so that what it refuses (400)
        // is refused the same way.
        let uri = if target == "/" {
            Uri::from_static("/")
        } else {
            Uri::from_maybe_shared(Bytes::copy_from_slice(target.as_bytes())).ok()?
        };
        let host = lowercase(rules::trim_host_dot(headers::strip_port(head.host)));
        let path = rules::routing_path(uri.path())?;
        let routes = table.entrypoint(&self.ep.name)?;
        if routes.reads_headers {
            return None;
        }
        let tls = self.conn.tls;
        let route = routes.find(
            &RequestInfo {
                host: &host,
                path: &path,
                query: uri.query(),
                method: &head.method,
                headers: no_headers(),
                client_ip: self.conn.remote.ip(),
            },
            tls,
        )?;
        if !route.layers.is_empty() || route.buffering.is_some() {
            return None;
        }
        let Target::Service(service) = &route.target else {
            return None;
        };
        if !service.plain_http1
            || service.sticky.is_some()
            || service.balancer.reads_request()
            || service.transport.config.response_header_timeout.is_some()
        {
            return None;
        }
        Some(Plan {
            head,
            uri,
            route,
            service,
        })
    }

    /// Forwards one planned request and relays its answer. What the client
    /// sends meanwhile is read into `spare` (`extra` bytes), so that its
    /// leaving is noticed, as the pipeline notices it.
    async fn exchange<C: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut C,
        plan: Plan<'_, '_>,
        spare: &mut [u8],
        extra: &mut usize,
    ) -> Result<Relayed, Failed> {
        let started = Instant::now();
        let Plan {
            head,
            uri,
            route,
            service,
        } = plan;
        let client_ip = self.conn.remote.ip();
        let key = service.balancer.hash_key(no_headers(), client_ip);
        let Picked { server, in_flight } = service
            .balancer
            .pick(key.as_deref().map(str::as_bytes), |_| false)
            .map_err(|_| Failed::BeforeAnswer)?;
        let server = &server;
        let config = &service.transport.config;
        let leaving = server.leaving();
        let checkout = server
            .pool
            .checkout(&server.upstream.authority, Wire::Http1, config);
        let sender = tokio::select! {
            biased;
            sender = checkout => match sender {
                Ok(s) => s,
                Err(_) => {
                    // Counted as `forward` counts it; the pipeline then
                    // tries again, elsewhere if the server was ejected.
                    forward::passive_failure(service, server, FailureKind::Connect);
                    return Err(Failed::BeforeAnswer);
                }
            },
            () = leaving => return Err(Failed::BeforeAnswer),
        };
        let Sender::Http1(mut backend) = sender else {
            return Err(Failed::BeforeAnswer);
        };

        self.encode_request(&mut backend.head, &head, &uri, server, service);
        let reused = backend.reused;
        // A pooled connection comes at once, so the exchange's start
        // stands for the send (they differ by the head's encoding): one
        // clock read fewer.
        let sent_at = if reused { started } else { Instant::now() };
        if let Err((_, any)) =
            h1::write_all(&mut backend.io, &mut [IoSlice::new(&backend.head)]).await
        {
            // A pooled connection the server had closed: not its failure.
            if any || !reused {
                failed(server, service, sent_at);
            }
            return Err(Failed::BeforeAnswer);
        }
        let close = head.close || *self.shutdown.borrow();
        let mut out = std::mem::take(&mut backend.head);
        let mut seen = false;
        let answer = poll_fn(|cx| {
            let waiting = Waiting {
                client: &mut *io,
                spare: &mut *spare,
                extra: &mut *extra,
                seen: &mut seen,
            };
            poll_answer(&mut backend, waiting, cx, &head.method, close, &mut out)
        })
        .await;
        let answer = match answer {
            Ok(a) => a,
            Err(Unanswered::ClientGone) => {
                // As the pipeline's record: no server was answering yet.
                self.report(
                    &head,
                    &uri,
                    route,
                    service,
                    None,
                    499,
                    None,
                    started.elapsed(),
                );
                return Err(Failed::Answering);
            }
            Err(Unanswered::Backend(e)) => {
                tracing::debug!(server = %server.url, error = %e, "no answer to a relayed request; the pipeline sends it again");
                if seen || !reused {
                    failed(server, service, sent_at);
                }
                return Err(Failed::BeforeAnswer);
            }
        };

        // One clock read serves the server's latency and the exchange's.
        let answered = Instant::now();
        observe(server, service, answer.status, sent_at, answered);
        self.report(
            &head,
            &uri,
            route,
            service,
            Some(server),
            answer.status,
            answer.content_length,
            answered - started,
        );

        // The server's slot (`maxConnsPerServer`) is freed once its answer
        // is read, before the client has the last of it: the client's next
        // request may find it free.
        let mut in_flight = Some(in_flight);
        let relayed = relay_body(io, &mut backend, answer.framing, &mut out, &mut in_flight).await;
        // The buffer serves the connection's next request head.
        backend.head = out;
        let keep_backend = answer.keep_alive && relayed.is_ok();
        if keep_backend && backend.buf.is_empty() {
            server
                .pool
                .checkin(backend.recycle(), config.max_idle_conns_per_host);
        }
        relayed.map_err(|_| Failed::Answering)?;
        Ok(if close {
            Relayed::Close
        } else {
            Relayed::KeepAlive
        })
    }

    /// Tells the observers (metrics, access log) of an exchange, as the
    /// pipeline's record does.
    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        head: &Head<'_>,
        uri: &Uri,
        route: &Route,
        service: &ServiceRuntime,
        server: Option<&Arc<ServerState>>,
        status: u16,
        content_length: Option<u64>,
        duration: std::time::Duration,
    ) {
        let user_agent = head
            .user_agent
            .and_then(|v| HeaderValue::from_bytes(v).ok());
        let referer = head.referer.and_then(|v| HeaderValue::from_bytes(v).ok());
        self.proxy.observer.exchange(&Exchange {
            entrypoint: &self.ep.name,
            router: Some(&route.name),
            service: Some(&service.name),
            server,
            method: &head.method,
            host: head.host,
            uri,
            version: Version::HTTP_11,
            user_agent: user_agent.as_ref(),
            referer: referer.as_ref(),
            status,
            content_length,
            protocol: Protocol::Http,
            client_ip: self.conn.remote.ip(),
            duration,
            retries: 0,
        });
    }

    /// The backend's request head: the client's, with its Host (or the
    /// server's with `passHostHeader: false`) first and the forwarded
    /// headers last, as `headers::apply_forwarded` and `forward` write
    /// them.
    fn encode_request(
        &self,
        out: &mut Vec<u8>,
        head: &Head<'_>,
        uri: &Uri,
        server: &ServerState,
        service: &ServiceRuntime,
    ) {
        out.clear();
        out.extend_from_slice(head.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(server.upstream.base_path.as_bytes());
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        if service.pass_host_header {
            out.extend_from_slice(head.host.as_bytes());
        } else {
            out.extend_from_slice(server.upstream.authority.as_str().as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        // The request's other headers, checked by `scan`: none is
        // hop-by-hop or forwarded but Connection, left out.
        for field in head.fields {
            let name = field.name.as_bytes();
            if name.len() == 4 && name.eq_ignore_ascii_case(b"host")
                || name.len() == 10 && name.eq_ignore_ascii_case(b"connection")
            {
                continue;
            }
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(field.value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"x-forwarded-proto: ");
        out.extend_from_slice(if self.conn.tls { b"https" } else { b"http" });
        out.extend_from_slice(b"\r\nx-forwarded-host: ");
        out.extend_from_slice(head.host.as_bytes());
        out.extend_from_slice(b"\r\nx-forwarded-port: ");
        let default_port = if self.conn.tls { 443 } else { 80 };
        h1::push_decimal(
            out,
            u64::from(headers::port_of(head.host).unwrap_or(default_port)),
        );
        out.extend_from_slice(b"\r\nx-forwarded-server: ");
        out.extend_from_slice(self.proxy.server_name.as_bytes());
        out.extend_from_slice(b"\r\nx-real-ip: ");
        out.extend_from_slice(self.conn.client_ip_value.as_bytes());
        out.extend_from_slice(b"\r\nx-forwarded-for: ");
        out.extend_from_slice(self.conn.client_ip_value.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
    }
}

/// Why an exchange stopped.
enum Failed {
    /// Nothing was answered yet: the pipeline takes the request again.
    BeforeAnswer,
    /// The answer had begun: the connection can only be closed.
    Answering,
}

/// The header map the relay's requests show to rules and balancers: none
/// of their headers is one these read (see `plan`). One map for all, so
/// that no request builds and drops its own.
fn no_headers() -> &'static http::HeaderMap {
    static EMPTY: std::sync::LazyLock<http::HeaderMap> =
        std::sync::LazyLock::new(http::HeaderMap::new);
    &EMPTY
}

/// The connection's unread bytes, for hyper to read first.
fn handover(mut buf: Vec<u8>, filled: usize) -> Vec<u8> {
    buf.truncate(filled);
    buf
}

/// Checks a request's headers for the relay: `None` if any of them needs
/// the pipeline (a body, an upgrade, hop-by-hop or forwarded headers, an
/// expectation, gRPC, a Host other than exactly one valid one).
fn scan<'b>(fields: &'b [httparse::Header<'b>], method: Method) -> Option<Head<'b>> {
    let mut host = None;
    let mut close = false;
    let mut user_agent = None;
    let mut referer = None;
    for field in fields {
        let name = field.name.as_bytes();
        let value = field.value;
        let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
        match name.len() {
            2 if is(b"te") => return None,
            4 if is(b"host") => {
                if host.is_some() {
                    return None;
                }
                host = Some(value);
            }
            6 if is(b"expect") => return None,
            7 if is(b"upgrade") || is(b"trailer") => return None,
            7 if is(b"referer") => referer = Some(value),
            10 if is(b"connection") => {
                for token in value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if !token.eq_ignore_ascii_case(b"keep-alive") {
                        return None;
                    }
                }
            }
            10 if is(b"keep-alive") => return None,
            10 if is(b"user-agent") => user_agent = Some(value),
            12 if is(b"content-type") && value.starts_with(b"application/grpc") => return None,
            14 if is(b"content-length") => return None,
            16 if is(b"proxy-connection") => return None,
            17 if is(b"transfer-encoding") => return None,
            18 if is(b"proxy-authenticate") => return None,
            19 if is(b"proxy-authorization") => return None,
            9 if is(b"x-real-ip") => return None,
            n if n > 12 && name[..12].eq_ignore_ascii_case(b"x-forwarded-") => return None,
            _ => {}
        }
    }
    let host = host?;
    if host.is_empty() || !target::valid_host(host) {
        return None;
    }
    Some(Head {
        method,
        fields,
        host: std::str::from_utf8(host).ok()?,
        close,
        user_agent,
        referer,
    })
}

/// A failed attempt, counted towards the server's passive health as
/// `forward` counts it.
fn failed(server: &Arc<ServerState>, service: &ServiceRuntime, sent_at: Instant) {
    forward::observe_latency(server, sent_at);
    forward::passive_failure(service, server, FailureKind::Reset);
}

/// The server's latency and passive health, as `forward` records them.
fn observe(
    server: &Arc<ServerState>,
    service: &ServiceRuntime,
    status: u16,
    sent_at: Instant,
    answered: Instant,
) {
    forward::observe_latency_at(server, sent_at, answered);
    if status >= 500 {
        forward::passive_failure(service, server, FailureKind::ServerError);
    } else {
        server.passive_success();
    }
}

/// A response head relayed to the client, and how its body follows.
struct Answer {
    status: u16,
    content_length: Option<u64>,
    framing: h1::Framing,
    keep_alive: bool,
}

/// Relays the response body, after the head in `out`, framed for the
/// client: as it came when its length is known, else chunked. `in_flight`
/// is dropped as soon as the backend's answer is read in full.
async fn relay_body<C: AsyncWrite + Unpin>(
    io: &mut C,
    backend: &mut h1::Conn,
    framing: h1::Framing,
    out: &mut Vec<u8>,
    in_flight: &mut Option<InFlight>,
) -> std::io::Result<()> {
    use h1::Framing;
    let result = match framing {
        Framing::Done => {
            in_flight.take();
            write_out(io, out, &[]).await
        }
        Framing::Length(mut left) => {
            loop {
                let n = backend
                    .buf
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                if n as u64 == left {
                    in_flight.take();
                }
                write_out(io, out, &backend.buf[..n]).await?;
                out.clear();
                backend.buf.advance(n);
                left -= n as u64;
                if left == 0 {
                    break;
                }
                let want = usize::try_from(left)
                    .unwrap_or(h1::MAX_READ)
                    .min(h1::MAX_READ);
                fill(backend, want).await?;
            }
            Ok(())
        }
        Framing::Chunked(mut state) => {
            write_out(io, out, &[]).await?;
            loop {
                match h1::decode_chunked(&mut state, &mut backend.buf) {
                    Err(e) => return Err(std::io::Error::other(e)),
                    Ok(Decoded::Data(data)) => write_chunk(io, out, &data).await?,
                    // Trailers are not sent to an HTTP/1 client that did
                    // not ask for them (it sent no TE, see `scan`).
                    Ok(Decoded::Trailers(_)) | Ok(Decoded::End) => {
                        in_flight.take();
                        break;
                    }
                    Ok(Decoded::More) => fill(backend, h1::READ_SIZE * 2).await?,
                }
                if state == Chunk::Size && backend.buf.is_empty() {
                    continue;
                }
            }
            write_out(io, b"0\r\n\r\n", &[]).await
        }
        Framing::Eof => {
            write_out(io, out, &[]).await?;
            loop {
                if !backend.buf.is_empty() {
                    let data = backend.buf.split().freeze();
                    write_chunk(io, out, &data).await?;
                }
                if fill_or_end(backend).await? == 0 {
                    in_flight.take();
                    break;
                }
            }
            write_out(io, b"0\r\n\r\n", &[]).await
        }
    };
    io.flush().await?;
    result
}

/// Writes a head (or a chunk line) and what follows it.
async fn write_out<C: AsyncWrite + Unpin>(
    io: &mut C,
    first: &[u8],
    then: &[u8],
) -> std::io::Result<()> {
    if then.is_empty() {
        return io.write_all(first).await;
    }
    if first.is_empty() {
        return io.write_all(then).await;
    }
    let mut slices = [IoSlice::new(first), IoSlice::new(then)];
    let mut bufs = &mut slices[..];
    while !bufs.is_empty() {
        let n = io.write_vectored(bufs).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

async fn write_chunk<C: AsyncWrite + Unpin>(
    io: &mut C,
    line: &mut Vec<u8>,
    data: &[u8],
) -> std::io::Result<()> {
    line.clear();
    h1::push_hex(line, data.len() as u64);
    line.extend_from_slice(b"\r\n");
    write_out(io, line, data).await?;
    io.write_all(b"\r\n").await
}

/// Reads more of the response; its end is an error.
async fn fill(backend: &mut h1::Conn, want: usize) -> std::io::Result<()> {
    match poll_fn(|cx| backend.poll_fill(cx, want)).await? {
        0 => Err(std::io::Error::other(h1::Error::Closed)),
        _ => Ok(()),
    }
}

/// Reads more of a body that lasts until the connection closes.
async fn fill_or_end(backend: &mut h1::Conn) -> std::io::Result<usize> {
    poll_fn(|cx| backend.poll_fill(cx, h1::READ_SIZE * 2)).await
}

/// The client's side while its answer is awaited.
struct Waiting<'a, C> {
    client: &'a mut C,
    /// Room for what the client sends meanwhile (a pipelined request).
    spare: &'a mut [u8],
    /// How much of `spare` is filled.
    extra: &'a mut usize,
    /// Whether the backend sent anything.
    seen: &'a mut bool,
}

/// Why no answer came.
enum Unanswered {
    Backend(h1::Error),
    /// The client closed its connection first (logged as 499).
    ClientGone,
}

/// Reads until the final response head is complete, and writes the
/// client's head into `out` (1xx answers other than 101 are skipped, as
/// `h1` does). Meanwhile watches the client, whose reads cost no syscall
/// while it sends nothing (tokio knows the socket is drained).
fn poll_answer<C: AsyncRead + Unpin>(
    backend: &mut h1::Conn,
    waiting: Waiting<'_, C>,
    cx: &mut Context<'_>,
    method: &Method,
    close: bool,
    out: &mut Vec<u8>,
) -> Poll<Result<Answer, Unanswered>> {
    loop {
        while !backend.buf.is_empty() {
            *waiting.seen = true;
            match relay_head(&backend.buf, method, close, out) {
                Err(e) => return Poll::Ready(Err(Unanswered::Backend(e))),
                Ok(None) if backend.buf.len() > h1::MAX_HEAD => {
                    return Poll::Ready(Err(Unanswered::Backend(h1::Error::HeadTooLarge)));
                }
                Ok(None) => break,
                Ok(Some((len, None))) => backend.buf.advance(len),
                Ok(Some((len, Some(answer)))) => {
                    backend.buf.advance(len);
                    return Poll::Ready(Ok(answer));
                }
            }
        }
        match backend.poll_fill(cx, h1::READ_SIZE) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(Unanswered::Backend(h1::Error::Closed))),
            Poll::Ready(Ok(_)) => continue,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(Unanswered::Backend(h1::Error::Io(e)))),
            Poll::Pending => {}
        }
        // A full buffer stops watching: the client is pipelining, not gone.
        while *waiting.extra < waiting.spare.len() {
            let mut read = ReadBuf::new(&mut waiting.spare[*waiting.extra..]);
            match ready!(Pin::new(&mut *waiting.client).poll_read(cx, &mut read)) {
                Ok(()) if read.filled().is_empty() => {
                    return Poll::Ready(Err(Unanswered::ClientGone));
                }
                Ok(()) => *waiting.extra += read.filled().len(),
                Err(_) => return Poll::Ready(Err(Unanswered::ClientGone)),
            }
        }
        return Poll::Pending;
    }
}

/// Parses the response head at the front of `bytes`. `None`: incomplete;
/// `Some((len, None))`: an interim (1xx) answer to skip; else the final
/// head, written for the client into `out`: HTTP/1.1, hop-by-hop headers
/// removed, chunked when the length is not known, a `Date` if it had none,
/// and `Connection: close` when the connection ends after it.
fn relay_head(
    bytes: &[u8],
    method: &Method,
    close: bool,
    out: &mut Vec<u8>,
) -> Result<Option<(usize, Option<Answer>)>, h1::Error> {
    use h1::{Error, Framing};
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .allow_obsolete_multiline_headers_in_responses(true)
        .parse_response_with_uninit_headers(&mut res, bytes, &mut raw)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Error::Invalid("too many headers")),
        Err(e) => return Err(Error::Parse(e)),
    };
    let code = res.code.unwrap_or(0);
    if (100..200).contains(&code) && code != 101 {
        return Ok(Some((len, None)));
    }
    if code == 101 {
        return Err(Error::Invalid(
            "101 Switching Protocols to a request that asked no upgrade",
        ));
    }
    if !(100..1000).contains(&code) {
        return Err(Error::Invalid("status code"));
    }
    let http11 = res.version == Some(1);

    // What the head says of the connection and the body's framing, and
    // which of its lines are dropped: each name is looked at once.
    let mut dropped = [false; MAX_HEADERS];
    let mut keep_alive = http11;
    let mut backend_close = false;
    let mut listed: [&[u8]; 8] = [&[]; 8];
    let mut listed_count = 0;
    let mut chunked: Option<bool> = None;
    let mut length: Option<u64> = None;
    let mut length_broken = false;
    let mut has_date = false;
    for (field, dropped) in res.headers.iter().zip(&mut dropped) {
        let name = field.name.as_bytes();
        match headers::hop_by_hop(name) {
            Some(hop) if *hop == http::header::CONNECTION => {
                for token in field.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        backend_close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = true;
                    } else if !headers::is_connection_option(token) && !token.is_empty() {
                        if listed_count == listed.len() {
                            return Err(Error::Invalid("too many names in Connection"));
                        }
                        listed[listed_count] = token;
                        listed_count += 1;
                    }
                }
            }
            Some(hop) if *hop == http::header::TRANSFER_ENCODING => {
                let last = field.value.rsplit(|&b| b == b',').next().unwrap_or(&[]);
                chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
            Some(_) => {}
            None if name.len() == 14 && name.eq_ignore_ascii_case(b"content-length") => {
                length_broken |= h1::add_content_length(&mut length, field.value).is_err();
                continue;
            }
            None => {
                has_date |= name.len() == 4 && name.eq_ignore_ascii_case(b"date");
                continue;
            }
        }
        *dropped = true;
    }
    let framing = if matches!(code, 204 | 304) || *method == Method::HEAD {
        Framing::Done
    } else if let Some(chunked) = chunked {
        if !http11 {
            return Err(Error::Invalid("transfer-encoding in an HTTP/1.0 response"));
        }
        if chunked {
            Framing::Chunked(Chunk::Size)
        } else {
            Framing::Eof
        }
    } else {
        match length {
            _ if length_broken => return Err(Error::Invalid("content-length")),
            Some(0) => Framing::Done,
            Some(n) => Framing::Length(n),
            None => Framing::Eof,
        }
    };

    out.clear();
    match res.reason.filter(|r| !r.is_empty()) {
        // An HTTP/1.1 status line with a reason is copied as it came.
        Some(reason) if http11 && let Some(end) = line_end(bytes, reason.as_bytes()) => {
            out.extend_from_slice(&bytes[..end]);
        }
        reason => {
            out.extend_from_slice(b"HTTP/1.1 ");
            h1::push_decimal(out, u64::from(code));
            out.push(b' ');
            let canonical = || {
                StatusCode::from_u16(code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("")
            };
            out.extend_from_slice(reason.unwrap_or_else(canonical).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    let listed = &listed[..listed_count];
    // Kept lines that follow each other in the backend's head are copied
    // as one run of bytes; a line is rewritten only when it must be (a
    // folded value, trailing whitespace, a bare LF).
    let base = bytes.as_ptr() as usize;
    let mut run = 0..0;
    for (field, &dropped) in res.headers.iter().zip(&dropped) {
        let name = field.name.as_bytes();
        if dropped
            || (!listed.is_empty() && listed.iter().any(|l| l.eq_ignore_ascii_case(name)))
            // A Transfer-Encoding overrides any Content-Length (RFC 9112,
            // 6.3), which is then dropped.
            || (chunked.is_some() && name.eq_ignore_ascii_case(b"content-length"))
        {
            continue;
        }
        let start = name.as_ptr() as usize - base;
        // An empty value's slice need not point into the head.
        let verbatim = line_end(bytes, field.value)
            .filter(|_| !field.value.is_empty() && !field.value.contains(&b'\n'));
        if let Some(line_end) = verbatim {
            if run.end != start {
                out.extend_from_slice(&bytes[run]);
                run = start..start;
            }
            run.end = line_end;
            continue;
        }
        out.extend_from_slice(&bytes[run]);
        run = 0..0;
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        push_unfolded(out, field.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&bytes[run]);
    if matches!(framing, Framing::Chunked(_) | Framing::Eof) {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        push_date(out);
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let content_length = length.filter(|_| chunked.is_none() && !length_broken);
    Ok(Some((
        len,
        Some(Answer {
            status: code,
            content_length,
            framing,
            keep_alive: keep_alive && !backend_close && framing != Framing::Eof,
        }),
    )))
}

/// Where the line that `part` (a slice of `head`) ends ends, past its
/// CRLF; `None` if no CRLF follows it there.
fn line_end(head: &[u8], part: &[u8]) -> Option<usize> {
    let end = (part.as_ptr() as usize).checked_sub(head.as_ptr() as usize)? + part.len();
    (head.get(end..end + 2) == Some(b"\r\n")).then_some(end + 2)
}

/// A header value, an obsolete multi-line one made one line as `h1` does.
fn push_unfolded(out: &mut Vec<u8>, value: &[u8]) {
    if value.iter().any(|&b| b == b'\r' || b == b'\n') {
        h1::push_unfolded(out, value);
    } else {
        out.extend_from_slice(value);
    }
}

thread_local! {
    /// The current second as an HTTP date, formatted once per second.
    static DATE: std::cell::RefCell<(u64, [u8; 29])> = const { std::cell::RefCell::new((0, [0; 29])) };
}

/// Appends the current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn push_date(out: &mut Vec<u8>) {
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            let formatted = httpdate::fmt_http_date(now);
            if formatted.len() == text.len() {
                text.copy_from_slice(formatted.as_bytes());
                *at = secs;
            } else {
                out.extend_from_slice(formatted.as_bytes());
                return;
            }
        }
        out.extend_from_slice(&text[..]);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(raw: &[u8], method: Method, close: bool) -> (String, Answer) {
        let mut out = Vec::new();
        let (len, answer) = relay_head(raw, &method, close, &mut out)
            .expect("valid head")
            .expect("complete head");
        assert!(len <= raw.len());
        (
            String::from_utf8(out).unwrap(),
            answer.expect("a final answer"),
        )
    }

    #[test]
    fn response_heads_lose_hop_by_hop_headers_and_keep_the_rest() {
        let (head, answer) = head_of(
            b"HTTP/1.1 201 Made\r\nConnection: x-a, keep-alive\r\nX-A: 1\r\nKeep-Alive: t=1\r\nProxy-Authenticate: x\r\nX-B: 2\r\nDate: d\r\nContent-Length: 3\r\n\r\nabc",
            Method::GET,
            false,
        );
        assert_eq!(
            head,
            "HTTP/1.1 201 Made\r\nX-B: 2\r\nDate: d\r\nContent-Length: 3\r\n\r\n"
        );
        assert_eq!(answer.status, 201);
        assert_eq!(answer.content_length, Some(3));
        assert_eq!(answer.framing, h1::Framing::Length(3));
        assert!(answer.keep_alive);
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let cases: [(&[u8], Method, h1::Framing); 7] = [
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                Method::GET,
                h1::Framing::Done,
            ),
            (
                b"HTTP/1.1 204 No Content\r\n\r\n",
                Method::GET,
                h1::Framing::Done,
            ),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                Method::GET,
                h1::Framing::Done,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
                Method::HEAD,
                h1::Framing::Done,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n",
                Method::GET,
                h1::Framing::Chunked(Chunk::Size),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                Method::GET,
                h1::Framing::Eof,
            ),
            (b"HTTP/1.0 200 OK\r\n\r\n", Method::GET, h1::Framing::Eof),
        ];
        for (raw, method, framing) in cases {
            let (head, answer) = head_of(raw, method, false);
            assert_eq!(answer.framing, framing, "{head}");
            let chunked = head.contains("transfer-encoding: chunked\r\n");
            assert_eq!(
                chunked,
                matches!(framing, h1::Framing::Chunked(_) | h1::Framing::Eof),
                "{head}"
            );
            if chunked {
                assert!(!head.contains("Content-Length"), "{head}");
                assert!(!answer.keep_alive || matches!(framing, h1::Framing::Chunked(_)));
            }
            assert!(head.starts_with("HTTP/1.1 "), "{head}");
            assert!(head.contains("date: "), "{head}");
        }
    }

    #[test]
    fn closing_and_interim_answers() {
        let (head, answer) = head_of(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
            Method::GET,
            true,
        );
        assert!(head.ends_with("connection: close\r\n\r\n"), "{head}");
        assert!(!answer.keep_alive);
        let mut out = Vec::new();
        let interim = relay_head(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n",
            &Method::GET,
            false,
            &mut out,
        )
        .unwrap();
        assert!(matches!(interim, Some((25, None))));
        assert!(
            relay_head(
                b"HTTP/1.1 200 OK\r\nContent-Le",
                &Method::GET,
                false,
                &mut out
            )
            .unwrap()
            .is_none()
        );
    }

    #[test]
    fn broken_answers_are_errors() {
        let mut out = Vec::new();
        for raw in [
            &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
        ] {
            assert!(
                relay_head(raw, &Method::GET, false, &mut out).is_err(),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn kept_lines_are_copied_or_rewritten_as_needed() {
        let (head, _) = head_of(
            b"HTTP/1.1 200 OK\r\nA: 1\r\nB:2 \r\nC:\r\nConnection: close\r\nD:\t4\r\nE: 5\r\nContent-Length: 0\r\n\r\n",
            Method::GET,
            false,
        );
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: \r\nD:\t4\r\nE: 5\r\nContent-Length: 0\r\ndate: "
                .to_string() + &head[head.len() - 33..]
        );
        assert!(head.ends_with(" GMT\r\n\r\n"), "{head}");
        let (head, _) = head_of(
            b"HTTP/1.1 200 OK\nA: 1\nDate: d\nContent-Length: 0\n\n",
            Method::GET,
            false,
        );
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nA: 1\r\nDate: d\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn status_lines_are_http_1_1_with_a_reason() {
        let cases: [(&[u8], &str); 5] = [
            (b"HTTP/1.1 200 Fine\r\n", "HTTP/1.1 200 Fine\r\n"),
            (b"HTTP/1.1 200 Fine\n", "HTTP/1.1 200 Fine\r\n"),
            (b"HTTP/1.0 404 Nope\r\n", "HTTP/1.1 404 Nope\r\n"),
            (b"HTTP/1.1 503 \r\n", "HTTP/1.1 503 Service Unavailable\r\n"),
            (b"HTTP/1.1 599 \r\n", "HTTP/1.1 599 \r\n"),
        ];
        for (status_line, want) in cases {
            let raw = [status_line, b"Date: d\r\nContent-Length: 0\r\n\r\n"].concat();
            let (head, answer) = head_of(&raw, Method::GET, false);
            assert!(head.starts_with(want), "{head:?}");
            assert_eq!(answer.status.to_string(), want[9..12]);
        }
    }

    #[test]
    fn folded_values_become_one_line() {
        let (head, _) = head_of(
            b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n",
            Method::GET,
            false,
        );
        assert!(head.contains("X-A: one two\r\n"), "{head}");
    }

    fn scanned(raw: &str) -> Option<(String, bool)> {
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut fields);
        req.parse(raw.as_bytes()).unwrap();
        scan(req.headers, Method::GET).map(|h| (h.host.to_string(), h.close))
    }

    #[test]
    fn requests_with_anything_to_weigh_go_to_the_pipeline() {
        let base = "GET / HTTP/1.1\r\nHost: a.test\r\n";
        assert_eq!(
            scanned(&format!("{base}Accept: */*\r\n\r\n")),
            Some(("a.test".into(), false))
        );
        assert_eq!(
            scanned(&format!("{base}Connection: Keep-Alive, close\r\n\r\n")),
            Some(("a.test".into(), true))
        );
        for extra in [
            "Content-Length: 0",
            "Transfer-Encoding: chunked",
            "Expect: 100-continue",
            "Upgrade: websocket",
            "Connection: upgrade",
            "Connection: x-secret",
            "TE: trailers",
            "Keep-Alive: timeout=5",
            "Proxy-Connection: keep-alive",
            "Proxy-Authorization: x",
            "X-Forwarded-For: 1.2.3.4",
            "x-forwarded-proto: https",
            "X-Real-Ip: 1.2.3.4",
            "Content-Type: application/grpc",
            "Host: b.test",
        ] {
            assert_eq!(scanned(&format!("{base}{extra}\r\n\r\n")), None, "{extra}");
        }
        assert_eq!(scanned("GET / HTTP/1.1\r\n\r\n"), None, "no Host");
        assert_eq!(scanned("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), None);
        assert_eq!(scanned("GET / HTTP/1.1\r\nHost: \r\n\r\n"), None);
    }
}
