//! Entrypoint listeners: accept connections, terminate TLS when the client
//! starts a handshake, serve HTTP/1.1 and HTTP/2 on each connection, and
//! drain gracefully on shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::handler::{Connection, EntrypointInfo, Proxy};

/// Connection-level timeouts of an entrypoint.
#[derive(Debug, Clone)]
pub struct ServerTimeouts {
    /// Time allowed to receive a request's headers, idle keep-alive time
    /// included (Traefik's `readTimeout` bounds the whole request; escale
    /// bounds the headers so bodies can stream). `None`: no limit.
    pub header_read: Option<Duration>,
    /// How long a keep-alive connection may wait for its next request.
    pub idle: Duration,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub grace: Duration,
}

impl Default for ServerTimeouts {
    fn default() -> Self {
        ServerTimeouts {
            header_read: Some(Duration::from_secs(60)),
            idle: Duration::from_secs(180),
            grace: Duration::from_secs(10),
        }
    }
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Everything a connection task needs, shared by all connections of an entrypoint.
struct Shared {
    builder: auto::Builder<TokioExecutor>,
    ep: Arc<EntrypointInfo>,
    proxy: Arc<Proxy>,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
}

/// Serves one entrypoint until `shutdown` turns true, then drains.
pub async fn serve(
    listener: TcpListener,
    ep: EntrypointInfo,
    timeouts: ServerTimeouts,
    proxy: Arc<Proxy>,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(timeouts.idle / 2))
        .keep_alive_timeout(Duration::from_secs(20));
    let shared = Arc::new(Shared {
        builder,
        ep: Arc::new(ep),
        proxy,
        tls: tls.map(TlsAcceptor::from),
        handshake_timeout: timeouts.header_read.unwrap_or(Duration::from_secs(60)),
    });
    let graceful = GracefulShutdown::new();

    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(entrypoint = %shared.ep.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let observer = shared.proxy.observer.clone();
            observer.connection_opened(&shared.ep.name);
            handle_connection(&shared, stream, remote, watcher).await;
            observer.connection_closed(&shared.ep.name);
        });
    }
    drop(listener);
    tracing::info!(entrypoint = %shared.ep.name, "stopped accepting; draining in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => {
            tracing::info!(entrypoint = %shared.ep.name, "all connections drained");
        }
        _ = tokio::time::sleep(timeouts.grace) => {
            tracing::warn!(entrypoint = %shared.ep.name, grace = ?timeouts.grace, "grace period over; closing remaining connections");
        }
    }
}

/// Sniffs TLS, then serves the connection until it ends.
async fn handle_connection(
    shared: &Shared,
    stream: TcpStream,
    remote: std::net::SocketAddr,
    watcher: Watcher,
) {
    if let Some(acceptor) = &shared.tls {
        let mut first = [0u8; 1];
        let peeked = tokio::time::timeout(shared.handshake_timeout, stream.peek(&mut first)).await;
        if matches!(peeked, Ok(Ok(1))) && first[0] == TLS_HANDSHAKE {
            let accepted =
                tokio::time::timeout(shared.handshake_timeout, acceptor.accept(stream)).await;
            match accepted {
                Ok(Ok(tls_stream)) => serve_io(shared, tls_stream, remote, true, watcher).await,
                Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
            }
            return;
        }
        if !matches!(peeked, Ok(Ok(_))) {
            return;
        }
    }
    serve_io(shared, stream, remote, false, watcher).await;
}

async fn serve_io<I>(
    shared: &Shared,
    io: I,
    remote: std::net::SocketAddr,
    tls: bool,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // One shared handle per connection: a request clones one Arc.
    let state = Arc::new((
        shared.proxy.clone(),
        shared.ep.clone(),
        Connection::new(remote, tls),
    ));
    let service = service_fn(move |req| {
        let state = state.clone();
        async move {
            let (proxy, ep, conn) = &*state;
            Ok::<_, Infallible>(proxy.handle(ep, conn, req).await)
        }
    });
    let conn = shared
        .builder
        .serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
