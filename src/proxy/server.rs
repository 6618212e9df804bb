//! Entrypoint listeners: accept connections, terminate TLS when the client
//! starts a handshake, serve HTTP/1.1 and HTTP/2 on each connection, and
//! drain gracefully on shutdown.
//!
//! On plain TCP the protocol is told by the first bytes (the HTTP/2
//! prior-knowledge preface or not); on TLS, ALPN tells. The first read is
//! large enough for a whole request head (or a ClientHello), and its bytes are
//! handed to hyper before the socket (`Prefixed`), so the parser seldom needs
//! a second read and its buffer does not grow.

use std::convert::Infallible;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Poll, ready};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::LazyConfigAcceptor;

use crate::tls::TlsSetup;
use rustls_pki_types::CertificateDer;

use super::accept::Acceptor;
use super::body::Body;
use super::gate::Gated;
use super::handler::{Connection, EntrypointInfo, Proxy};
use super::linger::{self, RequestBody};
use super::prefixed::Prefixed;
use super::relay::{Ended, Relay};
use super::spread::Seat;
use super::watchdog::{self, Activity, Answering, Limits, Phase, Watched};

/// Connection-level timeouts of an entrypoint.
#[derive(Debug, Clone)]
pub struct ServerTimeouts {
    /// Time allowed to receive a request's headers once they have begun, and
    /// a new connection's first request (Traefik's `readTimeout` bounds the
    /// whole request; escale bounds the headers so bodies can stream).
    /// `None`: no limit.
    pub header_read: Option<Duration>,
    /// How long a request's body may go without a byte arriving (Traefik's
    /// `readTimeout` bounds the whole request; escale bounds the pauses so
    /// long uploads can stream). `None`: no limit.
    pub body_read: Option<Duration>,
    /// How long a keep-alive connection may wait for its next request.
    /// `None`: no limit.
    pub idle: Option<Duration>,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub grace: Duration,
}

impl Default for ServerTimeouts {
    fn default() -> Self {
        ServerTimeouts {
            header_read: Some(Duration::from_secs(60)),
            body_read: Some(Duration::from_secs(60)),
            idle: Some(Duration::from_secs(180)),
            grace: Duration::from_secs(10),
        }
    }
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// The client preface of HTTP/2 with prior knowledge (h2c).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Everything a connection task needs, shared by all connections of an entrypoint.
struct Shared {
    /// The protocol is told by the first bytes (plain TCP) or by ALPN (TLS).
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    ep: Arc<EntrypointInfo>,
    proxy: Arc<Proxy>,
    tls: Option<Arc<ArcSwap<TlsSetup>>>,
    /// Idle and header-read limits of HTTP/1 connections.
    limits: Limits,
    handshake_timeout: Duration,
    /// Turns true when the entrypoint starts draining.
    shutdown: watch::Receiver<bool>,
}

/// Serves one entrypoint until `shutdown` turns true, then drains: the
/// connections this thread accepts on `listener`, or that other serving
/// threads of the entrypoint hand to its `seat`.
pub async fn serve(
    listener: Acceptor,
    mut seat: Seat,
    ep: EntrypointInfo,
    timeouts: ServerTimeouts,
    proxy: Arc<Proxy>,
    tls: Option<Arc<ArcSwap<TlsSetup>>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut http1 = http1::Builder::new();
    // `proxy::watchdog` bounds idle waits and header reads, without a timer
    // per request.
    http1.header_read_timeout(None).keep_alive(true);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(timeouts.idle.unwrap_or(Duration::from_secs(180)) / 2))
        .keep_alive_timeout(Duration::from_secs(20));
    let shared = Arc::new(Shared {
        http1,
        http2,
        ep: Arc::new(ep),
        proxy,
        tls,
        limits: Limits {
            idle: timeouts.idle,
            head: timeouts.header_read,
            body: timeouts.body_read,
        },
        handshake_timeout: timeouts.header_read.unwrap_or(Duration::from_secs(60)),
        shutdown: shutdown.clone(),
    });
    let graceful = GracefulShutdown::new();

    loop {
        let placed = tokio::select! {
            accepted = listener.accept() => accepted.map(|(stream, remote)| seat.place(stream, remote)),
            Some(handed) = seat.handed() => Ok(Some(handed)),
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (stream, remote, tenancy) = match placed {
            Ok(Some(placed)) => placed,
            // Handed to a less busy thread.
            Ok(None) => continue,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(entrypoint = %shared.ep.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // On Linux accepted sockets inherit it from the listener (`app::bind`).
        #[cfg(not(target_os = "linux"))]
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let observer = shared.proxy.observer.clone();
            observer.connection_opened(&shared.ep.name);
            handle_connection(&shared, stream, remote, watcher).await;
            observer.connection_closed(&shared.ep.name);
            drop(tenancy);
        });
    }
    drop(listener);
    // Other threads serve what they accept from now on.
    drop(seat);
    // Every serving thread drains its own connections and says so.
    let thread = super::threads::slot();
    tracing::info!(entrypoint = %shared.ep.name, thread, "stopped accepting; draining in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => {
            tracing::info!(entrypoint = %shared.ep.name, thread, "all connections drained");
        }
        _ = tokio::time::sleep(timeouts.grace) => {
            tracing::warn!(entrypoint = %shared.ep.name, thread, grace = ?timeouts.grace, "grace period over; closing remaining connections");
        }
    }
}

/// Sniffs TLS, then serves the connection until it ends.
async fn handle_connection(
    shared: &Shared,
    mut stream: TcpStream,
    remote: std::net::SocketAddr,
    watcher: Watcher,
) {
    // The TLS and HTTP/2 paths are boxed: their state (handshake, TLS
    // session, HTTP/2 connection) would otherwise size every connection's
    // task, and a task's future is copied whole as it is spawned.
    let opening = tokio::time::timeout(
        shared.handshake_timeout,
        sniff(&mut stream, shared.tls.is_some()),
    )
    .await;
    match opening {
        Ok(Ok((Opening::Tls, first))) => {
            if let Some(setup) = &shared.tls {
                let io = Prefixed::new(first, stream);
                Box::pin(serve_tls(shared, setup, io, remote, watcher)).await;
            }
        }
        Ok(Ok((opening, first))) => {
            let io = Prefixed::new(first, stream);
            serve_http(shared, io, remote, None, opening == Opening::H2, watcher).await
        }
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "connection failed before its first request")
        }
        Err(_) => tracing::debug!(%remote, "no request before the header timeout"),
    }
}

/// What a connection opens with.
#[derive(Debug, PartialEq)]
enum Opening {
    Tls,
    H2,
    H1,
}

/// How much the first read of a connection takes: room for a usual request
/// head, or a ClientHello with post-quantum key shares.
const FIRST_READ: usize = 4096;

thread_local! {
    /// Where a serving thread reads connections' first bytes: each
    /// connection keeps only what came, in an allocation of its size.
    static FIRST_READ_BUFFER: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; FIRST_READ].into_boxed_slice());
}

/// Tells a connection's protocol by reading its first bytes, returned for
/// the server to read again: a TLS handshake (when the entrypoint has TLS),
/// the HTTP/2 preface, or else HTTP/1. A client that closes at once is
/// served as HTTP/1, which ends quietly.
async fn sniff(stream: &mut TcpStream, tls: bool) -> std::io::Result<(Opening, Vec<u8>)> {
    let mut first = Vec::new();
    loop {
        // Reads again only while the bytes are a strict beginning of the
        // HTTP/2 preface (split across segments: rare).
        let n = std::future::poll_fn(|cx| {
            FIRST_READ_BUFFER.with_borrow_mut(|buffer| {
                // `poll_read`, unlike `try_read`, notes a short read as the
                // socket drained, so hyper's next read waits instead of
                // failing with EAGAIN.
                let mut read = ReadBuf::new(buffer);
                ready!(Pin::new(&mut *stream).poll_read(cx, &mut read))?;
                first.extend_from_slice(read.filled());
                Poll::Ready(Ok::<_, std::io::Error>(read.filled().len()))
            })
        })
        .await?;
        if n == 0 {
            return Ok((Opening::H1, first));
        }
        if let Some(opening) = opening_of(&first, tls) {
            return Ok((opening, first));
        }
    }
}

/// The protocol told by a connection's first bytes; `None` while they are
/// a strict beginning of the HTTP/2 preface.
fn opening_of(first: &[u8], tls: bool) -> Option<Opening> {
    let compared = first.len().min(H2_PREFACE.len());
    match first {
        [] => Some(Opening::H1),
        [TLS_HANDSHAKE, ..] if tls => Some(Opening::Tls),
        _ if first[..compared] != H2_PREFACE[..compared] => Some(Opening::H1),
        _ if first.len() >= H2_PREFACE.len() => Some(Opening::H2),
        _ => None,
    }
}

/// Completes the TLS handshake, with the TLS options the client's SNI
/// name gets, then serves the connection.
async fn serve_tls(
    shared: &Shared,
    setup: &ArcSwap<TlsSetup>,
    stream: Prefixed<TcpStream>,
    remote: std::net::SocketAddr,
    watcher: Watcher,
) {
    let handshake = async {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
        let config = setup
            .load()
            .config_for(start.client_hello().server_name())
            .ok_or_else(|| {
                std::io::Error::other("the TLS options of this name are broken (see the issues)")
            })?;
        start.into_stream(config).await
    };
    let accepted = tokio::time::timeout(shared.handshake_timeout, handshake).await;
    match accepted {
        Ok(Ok(tls_stream)) => {
            // As Go's server (and so Traefik): HTTP/2 over TLS only when ALPN
            // chose it.
            let session = tls_stream.get_ref().1;
            let h2 = session.alpn_protocol() == Some(b"h2");
            let client_certs: ClientCerts = session.peer_certificates().map(|c| c.to_vec().into());
            serve_http(shared, tls_stream, remote, Some(client_certs), h2, watcher).await
        }
        Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
    }
}

/// The certificates a TLS client sent (with `clientAuth`), if any.
type ClientCerts = Option<Arc<[CertificateDer<'static>]>>;

/// Serves a connection whose protocol is known, until it ends. `tls`: the
/// client's certificates for a TLS connection, `None` for a plain one.
async fn serve_http<I>(
    shared: &Shared,
    io: I,
    remote: std::net::SocketAddr,
    tls: Option<ClientCerts>,
    h2: bool,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ended = if h2 {
        let service = connection_service(ConnectionState::new(shared, remote, tls, None));
        Box::pin(watcher.watch(shared.http2.serve_connection(TokioIo::new(io), service))).await
    } else {
        // A new connection begins with its first request's head.
        let activity = Activity::new(Phase::Head);
        let state = ConnectionState::new(shared, remote, tls, Some(activity.clone()));
        let mut io = Watched::new(io, activity.clone());
        let mut shutdown = shared.shutdown.clone();
        // Gated: the connection's task wakes several times per request, and
        // neither of these needs a poll unless its own waker fired.
        let mut interrupted = pin!(Gated::new(async {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => Interruption::Shutdown,
                () = watchdog::expired(&activity, shared.limits) => Interruption::Expired,
            }
        }));
        // The relay takes the plain exchanges; the first request it does not
        // take hands the connection over to hyper.
        let relay = Relay {
            proxy: &state.proxy,
            ep: &state.ep,
            conn: &state.conn,
            activity: &activity,
            shutdown: &shared.shutdown,
        };
        let mut draining = false;
        let relayed = {
            let mut relaying = pin!(relay.serve(&mut io));
            let first = tokio::select! {
                biased;
                ended = relaying.as_mut() => Ok(ended),
                interruption = interrupted.as_mut() => Err(interruption),
            };
            match first {
                Ok(ended) => ended,
                Err(Interruption::Expired) => {
                    tracing::debug!(%remote, phase = ?activity.phase(), "connection closed: idle or header read timeout");
                    return;
                }
                // An answer under way is finished, with `Connection: close`.
                Err(Interruption::Shutdown) if activity.phase() == Phase::Busy => {
                    draining = true;
                    relaying.await
                }
                Err(Interruption::Shutdown) => Ended::Closed,
            }
        };
        let Ended::Handover(unread) = relayed else {
            return;
        };
        activity.enter(Phase::Head);
        let service = connection_service(state.clone());
        let io = TokioIo::new(Prefixed::new(unread, io));
        // hyper-util's watcher does not take HTTP/1 connections with
        // upgrades: the same drain by hand, the watcher held until the end so
        // the entrypoint's shutdown waits for this connection.
        // Boxed: the connection state is several KiB, and the task's future
        // would otherwise be copied whole each time it moves (spawn, first poll).
        let mut conn = Box::pin(shared.http1.serve_connection(io, service).with_upgrades());
        let finished = if draining {
            Err(Interruption::Shutdown)
        } else {
            tokio::select! {
                biased;
                ended = conn.as_mut() => Ok(ended),
                interruption = interrupted.as_mut() => Err(interruption),
            }
        };
        let ended = match finished {
            Ok(ended) => ended,
            Err(Interruption::Expired) => {
                // As hyper's own header timeout, and Go's server: the
                // connection is closed without an answer.
                tracing::debug!(%remote, phase = ?activity.phase(), "connection closed: idle or header read timeout");
                return;
            }
            Err(Interruption::Shutdown) => {
                conn.as_mut().graceful_shutdown();
                conn.as_mut().await
            }
        };
        drop(watcher);
        // The client may still be sending a body left unread: read it
        // away before closing, so that no reset destroys the answer. Not
        // after an upgrade, whose connection is no longer hyper's.
        if activity.body_unread()
            && let Some(parts) = Pin::into_inner(conn).into_parts()
        {
            Box::pin(linger::linger(parts.io.into_inner())).await;
        }
        ended
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Why an HTTP/1 connection stops before its client ends it.
enum Interruption {
    Shutdown,
    /// Idle, or in a request's head, past its limit.
    Expired,
}

/// What every request of a connection shares.
struct ConnectionState {
    proxy: Arc<Proxy>,
    ep: Arc<EntrypointInfo>,
    conn: Connection,
    /// An HTTP/1 connection's phase, for the watchdog.
    activity: Option<Arc<Activity>>,
}

impl ConnectionState {
    /// `tls`: the client's certificates for a TLS connection, `None` for a
    /// plain one.
    fn new(
        shared: &Shared,
        remote: std::net::SocketAddr,
        tls: Option<ClientCerts>,
        activity: Option<Arc<Activity>>,
    ) -> Arc<Self> {
        let mut conn = Connection::new(remote, tls.is_some());
        conn.client_certs = tls.flatten();
        Arc::new(ConnectionState {
            proxy: shared.proxy.clone(),
            ep: shared.ep.clone(),
            conn,
            activity,
        })
    }
}

/// The per-connection request handler.
fn connection_service(
    state: Arc<ConnectionState>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = hyper::Response<Answering<Body>>,
    Error = Infallible,
    Future = impl Future<Output = Result<hyper::Response<Answering<Body>>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    // One shared handle per connection: a request clones one Arc.
    service_fn(move |req| {
        let state = state.clone();
        async move {
            let ConnectionState {
                proxy,
                ep,
                conn,
                activity,
            } = &*state;
            if let Some(activity) = activity {
                activity.enter(Phase::Busy);
            }
            let req = req.map(|incoming| RequestBody::new(incoming, activity.as_ref()));
            let response = proxy.handle(ep, conn, req).await;
            Ok::<_, Infallible>(response.map(|body| Answering::new(body, activity.clone())))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openings_are_told_from_first_bytes() {
        assert_eq!(opening_of(b"", false), Some(Opening::H1));
        assert_eq!(opening_of(b"GET / HTTP/1.1", false), Some(Opening::H1));
        assert_eq!(opening_of(b"POST", true), Some(Opening::H1));
        assert_eq!(opening_of(b"PRI * HTTP/1.1", false), Some(Opening::H1));
        assert_eq!(opening_of(b"P", false), None);
        assert_eq!(opening_of(b"PRI * HTTP/2.0\r\n", false), None);
        assert_eq!(opening_of(H2_PREFACE, false), Some(Opening::H2));
        // A read takes what came after the preface too.
        let preface_and_settings = [&H2_PREFACE[..], &[0, 0, 0, 4, 0, 0, 0, 0, 0]].concat();
        assert_eq!(opening_of(&preface_and_settings, false), Some(Opening::H2));
        assert_eq!(
            opening_of(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", false),
            Some(Opening::H1)
        );
        assert_eq!(opening_of(&[TLS_HANDSHAKE, 3, 1], true), Some(Opening::Tls));
        // Without TLS on the entrypoint, a handshake is just bad HTTP/1.
        assert_eq!(opening_of(&[TLS_HANDSHAKE, 3, 1], false), Some(Opening::H1));
    }
}
