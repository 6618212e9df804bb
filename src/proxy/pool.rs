//! Keep-alive connections to one backend server.
//!
//! Each server owns its pool, so the request path contends only on the lock
//! of the server it talks to, and a reload that keeps a server keeps its
//! connections. Checking out a connection is separate from sending on it: a
//! failed connect leaves the request untouched, so it can go to another server.
//! HTTP/1.1 connections are idle sockets here (`proxy::h1`), with no task of
//! their own, kept in one list per serving thread (`proxy::threads`): a
//! socket is registered with the runtime that opened it, so it serves
//! requests of that thread only. An HTTP/2 connection (h2c, or HTTPS where
//! ALPN chose HTTP/2) is shared and runs as a task.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use http::uri::Authority;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::body::Body;
use super::h1;
use super::threads;
use super::transport::TransportConfig;
use crate::tls::client::TlsClient;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect to {addr} timed out")]
    Timeout { addr: String },
    #[error("connect to {addr} failed: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("handshake with {addr} failed: {source}")]
    Handshake {
        addr: String,
        #[source]
        source: hyper::Error,
    },
}

struct Idle {
    conn: Box<h1::Conn>,
    since: Instant,
}

/// Idle HTTP/1.1 connections, oldest first; checked out from the back, so
/// the warmest connections serve and the oldest expire at the front.
type IdleList = Mutex<VecDeque<Idle>>;

#[derive(Default)]
pub struct ServerPool {
    /// One list per serving thread (see [`threads::slot`]), made on first
    /// use: most servers of a large configuration never get a request.
    idle: OnceLock<Box<[IdleList]>>,
    h2: Mutex<Option<http2::SendRequest<Body>>>,
}

impl std::fmt::Debug for ServerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle: usize = self.idle.get().map_or(0, |lists| {
            lists
                .iter()
                .map(|l| l.lock().map(|v| v.len()).unwrap_or(0))
                .sum()
        });
        write!(f, "ServerPool {{ idle: {idle} }}")
    }
}

/// A connection ready to carry one request.
pub enum Sender {
    Http1(Box<h1::Conn>),
    Http2(http2::SendRequest<Body>),
}

/// How a server is spoken to.
#[derive(Clone, Copy)]
pub enum Wire<'a> {
    /// `http://`: HTTP/1.1.
    Http1,
    /// `h2c://`: HTTP/2 with prior knowledge.
    H2c,
    /// `https://`: HTTP/2 or HTTP/1.1 as ALPN decides; only HTTP/1.1 when
    /// `http1_only` (an upgrade).
    Tls {
        client: &'a TlsClient,
        http1_only: bool,
    },
}

impl ServerPool {
    /// A ready connection: a pooled one if any is alive, else a new one.
    pub async fn checkout(
        &self,
        addr: &Authority,
        wire: Wire<'_>,
        config: &TransportConfig,
    ) -> Result<Sender, ConnectError> {
        match wire {
            Wire::Http1 => {}
            Wire::H2c => return self.checkout_h2c(addr, config).await.map(Sender::Http2),
            // Boxed: a TLS handshake's future is large, and the plain
            // path's future would carry its size (and copies) on every
            // request.
            Wire::Tls { client, http1_only } => {
                return Box::pin(self.checkout_tls(addr, client, http1_only, config)).await;
            }
        }
        if let Some(conn) = self.pop_usable(config) {
            return Ok(Sender::Http1(conn));
        }
        let stream = connect(addr, config).await?;
        Ok(Sender::Http1(h1::Conn::new(stream)))
    }

    /// The most recent idle HTTP/1.1 connection still fit to use.
    fn pop_usable(&self, config: &TransportConfig) -> Option<Box<h1::Conn>> {
        while let Some(mut idle) = self.pop_idle(config.idle_conn_timeout) {
            if idle.conn.is_usable() {
                return Some(idle.conn);
            }
        }
        None
    }

    async fn checkout_tls(
        &self,
        addr: &Authority,
        client: &TlsClient,
        http1_only: bool,
        config: &TransportConfig,
    ) -> Result<Sender, ConnectError> {
        if !http1_only && let Some(sender) = self.ready_h2().await {
            return Ok(Sender::Http2(sender));
        }
        if let Some(conn) = self.pop_usable(config) {
            return Ok(Sender::Http1(conn));
        }
        let stream = connect(addr, config).await?;
        let stream = client
            .connect(addr.host(), stream, http1_only)
            .await
            .map_err(|source| ConnectError::Tls {
                addr: addr.to_string(),
                source,
            })?;
        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
            return self
                .handshake_h2(addr, stream, config)
                .await
                .map(Sender::Http2);
        }
        Ok(Sender::Http1(h1::Conn::new(stream)))
    }

    /// This thread's idle list.
    fn idle_here(&self) -> &IdleList {
        let lists = self
            .idle
            .get_or_init(|| (0..threads::slots()).map(|_| Mutex::default()).collect());
        &lists[threads::slot()]
    }

    /// The most recently used idle connection that has not expired; drops
    /// the expired ones.
    fn pop_idle(&self, timeout: Duration) -> Option<Idle> {
        let mut idle = self.idle_here().lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while idle
            .front()
            .is_some_and(|i| now.duration_since(i.since) > timeout)
        {
            idle.pop_front();
        }
        idle.pop_back()
    }

    /// Returns a connection whose exchange is complete. `max_idle` bounds
    /// the server's idle connections, shared evenly by the serving threads.
    pub fn checkin(&self, conn: Box<h1::Conn>, max_idle: usize) {
        let per_thread = max_idle.div_ceil(threads::count());
        let mut idle = self.idle_here().lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < per_thread {
            idle.push_back(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// Drops every idle connection (the server left the pool).
    pub fn clear(&self) {
        for list in self.idle.get().into_iter().flatten() {
            list.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        *self.h2.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The shared HTTP/2 connection, if it is open and can take a stream.
    async fn ready_h2(&self) -> Option<http2::SendRequest<Body>> {
        let mut sender = self.h2.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        (!sender.is_closed() && sender.ready().await.is_ok()).then_some(sender)
    }

    async fn checkout_h2c(
        &self,
        addr: &Authority,
        config: &TransportConfig,
    ) -> Result<http2::SendRequest<Body>, ConnectError> {
        if let Some(sender) = self.ready_h2().await {
            return Ok(sender);
        }
        let stream = connect(addr, config).await?;
        self.handshake_h2(addr, stream, config).await
    }

    /// Starts HTTP/2 on a new connection and makes it the shared one.
    async fn handshake_h2<I>(
        &self,
        addr: &Authority,
        io: I,
        config: &TransportConfig,
    ) -> Result<http2::SendRequest<Body>, ConnectError>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        if let Some((idle, answer_within)) = config.h2_ping {
            // hyper pings once nothing was read for `idle`, as Go's
            // ReadIdleTimeout, and closes the connection without an answer.
            builder
                .keep_alive_interval(idle)
                .keep_alive_timeout(answer_within)
                .keep_alive_while_idle(true);
        }
        let (sender, conn) = builder
            .handshake(TokioIo::new(io))
            .await
            .map_err(|source| ConnectError::Handshake {
                addr: addr.to_string(),
                source,
            })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        *self.h2.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender.clone());
        Ok(sender)
    }
}

async fn connect(addr: &Authority, config: &TransportConfig) -> Result<TcpStream, ConnectError> {
    let target = addr.as_str();
    let stream = tokio::time::timeout(config.dial_timeout, TcpStream::connect(target))
        .await
        .map_err(|_| ConnectError::Timeout {
            addr: target.to_string(),
        })?
        .map_err(|source| ConnectError::Io {
            addr: target.to_string(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn checkout_h1(pool: &ServerPool, addr: &Authority) -> Box<h1::Conn> {
        match pool
            .checkout(addr, Wire::Http1, &TransportConfig::default())
            .await
        {
            Ok(Sender::Http1(conn)) => conn,
            Ok(Sender::Http2(_)) => panic!("asked for HTTP/1.1"),
            Err(e) => panic!("{e}"),
        }
    }

    async fn settles_at(accepted: &AtomicUsize, expected: usize) -> bool {
        for _ in 0..200 {
            if accepted.load(Ordering::SeqCst) == expected {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn each_serving_thread_reuses_only_its_own_connections() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let acceptor = tokio::spawn({
            let accepted = accepted.clone();
            async move {
                let mut held = Vec::new();
                while let Ok((socket, _)) = listener.accept().await {
                    held.push(socket);
                    accepted.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        let pool = ServerPool::default();

        let first = checkout_h1(&pool, &addr).await;
        assert!(settles_at(&accepted, 1).await);
        pool.checkin(first, 10);

        // Serving thread 1 does not get the connection opened elsewhere: its
        // socket belongs to another thread's runtime.
        threads::pretend_serving(1);
        let own = checkout_h1(&pool, &addr).await;
        assert!(settles_at(&accepted, 2).await, "a new connection");
        pool.checkin(own, 10);
        let again = checkout_h1(&pool, &addr).await;
        pool.checkin(again, 10);

        threads::pretend_serving(0);
        let back = checkout_h1(&pool, &addr).await;
        pool.checkin(back, 10);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "both reused their own");
        assert_eq!(format!("{pool:?}"), "ServerPool { idle: 2 }");
        acceptor.abort();
    }
}
