//! Entrypoint listeners: accept connections, serve HTTP/1.1 and h2c on each,
//! and drain gracefully on shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::handler::{EntrypointInfo, Proxy};

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

/// Serves one entrypoint until `shutdown` turns true, then drains.
pub async fn serve(
    listener: TcpListener,
    ep: EntrypointInfo,
    timeouts: ServerTimeouts,
    proxy: Arc<Proxy>,
    mut shutdown: watch::Receiver<bool>,
) {
    let ep = Arc::new(ep);
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
    // Connections borrow their builder; an entrypoint lives as long as the
    // process, so its one builder is leaked once rather than cloned per
    // connection.
    let builder: &'static auto::Builder<TokioExecutor> = Box::leak(Box::new(builder));
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
                tracing::warn!(entrypoint = %ep.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = {
            let proxy = proxy.clone();
            let ep = ep.clone();
            service_fn(move |req| {
                let proxy = proxy.clone();
                let ep = ep.clone();
                async move { Ok::<_, Infallible>(proxy.handle(&ep, remote, req).await) }
            })
        };
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let watched = graceful.watch(conn);
        let observer = proxy.observer.clone();
        let name = ep.name.clone();
        observer.connection_opened(&name);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            observer.connection_closed(&name);
        });
    }
    drop(listener);
    tracing::info!(entrypoint = %ep.name, "stopped accepting; draining in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => {
            tracing::info!(entrypoint = %ep.name, "all connections drained");
        }
        _ = tokio::time::sleep(timeouts.grace) => {
            tracing::warn!(entrypoint = %ep.name, grace = ?timeouts.grace, "grace period over; closing remaining connections");
        }
    }
}
