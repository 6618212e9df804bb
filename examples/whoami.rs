//! whoami: a tiny HTTP backend that tells who answered and echoes what it received, in the
//! spirit of traefik/whoami. escale's tests, demos and the `escale-whoami` image use it.
//!
//! ```text
//! cargo run --example whoami -- --port 8081 [--bind 0.0.0.0] [--name NAME] [--env-prefix TENANT_]
//! ```
//!
//! The first stdout line is always `listening on ADDR:PORT` (flushed), so a test can bind
//! port 0 and read the real port.
//!
//! Endpoints (HTTP/1.1 and h2c prior knowledge on the same port):
//! - any path: plain text `Name:`, `Hostname:`, `IP:` lines, `RemoteAddr:`, the request
//!   line, `Host:`, every header, then `Env: KEY=VALUE` for the env prefix;
//! - `/api`: the same as JSON;
//! - `/health`: `GET` answers the current health status (200 `ok` at start); `POST` with a
//!   status code as body (`500`, `200`, ...) changes it;
//! - `/bench`: body `1`, nothing else;
//! - `/data?size=N`: N bytes of `abc...xyzabc...` generated on the fly, chunked;
//! - `POST|PUT /upload`: reads the body as a stream and answers its byte count;
//! - `/ws`: WebSocket echo (HTTP/1.1 upgrade, RFC 6455 frames);
//! - `?wait=MS` on any path delays the answer, `?status=CODE` sets its status;
//! - `--delay-ms MS` (`WHOAMI_DELAY_MS`) delays every answer but `/health` by default, so
//!   that backends of different speeds can be compared; `?wait=` overrides it.
//!
//! With `--tls-cert`/`--tls-key` (or `--tls-self-signed`) every connection is TLS, with HTTP/2
//! or HTTP/1.1 by ALPN (`--tls-alpn`); `--tls-client-ca` requires a client certificate that
//! CA signed. Answers then add `TLS-Sni:` and `TLS-Client-Cert:` lines.
//!
//! SIGTERM/SIGINT close the listener at once (new connections are refused), let in-flight
//! requests finish (bounded by `--grace`), close WebSocket sessions with 1001, and exit 0.
//!
//! Header names are printed in Go's canonical form (`X-Forwarded-For`), as traefik/whoami
//! prints them, because hyper keeps only lowercase names.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use http_body::{Body as HttpBody, Frame};
use http_body_util::{BodyExt as _, Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use sha1::Digest as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

#[derive(Parser, Debug)]
#[command(
    name = "whoami",
    about = "Tiny HTTP backend that echoes what it received"
)]
struct Args {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, env = "WHOAMI_PORT", default_value_t = 8081)]
    port: u16,
    /// Address to bind.
    #[arg(long, env = "WHOAMI_BIND", default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Name shown as `Name:` in every answer.
    #[arg(long, env = "WHOAMI_NAME", default_value = "")]
    name: String,
    /// Environment variables whose name starts with this prefix are shown as `Env:` lines.
    #[arg(long, env = "WHOAMI_ENV_PREFIX")]
    env_prefix: Option<String>,
    /// Seconds to wait for in-flight requests after SIGTERM before exiting anyway.
    #[arg(long, env = "WHOAMI_GRACE", default_value_t = 30)]
    grace: u64,
    /// Milliseconds every answer but `/health` waits when the request has no `?wait=`.
    #[arg(long, env = "WHOAMI_DELAY_MS", default_value_t = 0)]
    delay_ms: u64,
    /// Serve TLS with this certificate chain (PEM file)...
    #[arg(long, env = "WHOAMI_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// ...and this private key (PEM file).
    #[arg(long, env = "WHOAMI_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Serve TLS with a generated self-signed certificate for `localhost`, `whoami`, the
    /// hostname and 127.0.0.1.
    #[arg(long, env = "WHOAMI_TLS_SELF_SIGNED", conflicts_with = "tls_cert")]
    tls_self_signed: bool,
    /// Require client certificates signed by this CA (PEM file).
    #[arg(long, env = "WHOAMI_TLS_CLIENT_CA")]
    tls_client_ca: Option<std::path::PathBuf>,
    /// ALPN protocols offered, comma-separated.
    #[arg(long, env = "WHOAMI_TLS_ALPN", default_value = "h2,http/1.1")]
    tls_alpn: String,
}

/// Largest WebSocket frame payload accepted; bigger frames close the session with 1009.
const WS_MAX_PAYLOAD: u64 = 16 << 20;
/// Largest `?wait=` honoured, so a typo cannot hang a test for hours.
const MAX_WAIT_MS: u64 = 600_000;

struct State {
    name: String,
    hostname: String,
    env: BTreeMap<String, String>,
    health: AtomicU16,
    delay: Duration,
    sessions: Arc<Sessions>,
    stop: watch::Receiver<bool>,
}

/// Counts live WebSocket sessions: hyper's graceful shutdown stops tracking a connection
/// once it is upgraded, so shutdown waits for these separately.
#[derive(Default)]
struct Sessions {
    live: AtomicUsize,
    idle: Notify,
}

struct SessionGuard(Arc<Sessions>);

impl Sessions {
    fn enter(self: &Arc<Self>) -> SessionGuard {
        self.live.fetch_add(1, Ordering::SeqCst);
        SessionGuard(self.clone())
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[derive(Clone)]
struct Conn {
    remote: SocketAddr,
    local: SocketAddr,
    tls: Option<Arc<TlsSeen>>,
}

/// What a TLS handshake told.
struct TlsSeen {
    sni: Option<String>,
    client_cert: bool,
}

type Out = Either<Full<Bytes>, PatternBody>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(SocketAddr::new(args.bind, args.port)).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let state = Arc::new(State {
        name: args.name.clone(),
        hostname: hostname(),
        env: env_with_prefix(args.env_prefix.as_deref()),
        health: AtomicU16::new(200),
        delay: Duration::from_millis(args.delay_ms.min(MAX_WAIT_MS)),
        sessions: Arc::default(),
        stop: stop_rx,
    });

    let tls = tls_acceptor(&args)?;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();

    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Usually EMFILE: back off instead of spinning.
                        eprintln!("whoami: accept: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().unwrap_or(addr);
                let state = state.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let acceptor = tls.clone();
                tokio::spawn(async move {
                    let Some(acceptor) = acceptor else {
                        let conn = Conn { remote, local, tls: None };
                        serve(&builder, watcher, stream, conn, state).await;
                        return;
                    };
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let session = stream.get_ref().1;
                    let seen = TlsSeen {
                        sni: session.server_name().map(str::to_string),
                        client_cert: session.peer_certificates().is_some_and(|c| !c.is_empty()),
                    };
                    let conn = Conn { remote, local, tls: Some(Arc::new(seen)) };
                    serve(&builder, watcher, stream, conn, state).await;
                });
            }
            () = &mut shutdown => break,
        }
    }

    // Closing the listener first makes new connections fail fast while old ones drain.
    drop(listener);
    eprintln!("whoami: shutting down, draining in-flight requests");
    let _ = stop_tx.send(true);
    let drained = async {
        graceful.shutdown().await;
        state.sessions.wait_idle().await;
    };
    if tokio::time::timeout(Duration::from_secs(args.grace), drained)
        .await
        .is_err()
    {
        eprintln!("whoami: grace period elapsed, exiting with requests in flight");
    }
    Ok(())
}

/// Serves one connection until it ends or the shutdown drains it.
async fn serve<I>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
    conn: Conn,
    state: Arc<State>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(req, conn.clone(), state.clone()));
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    // Client resets are routine for a test backend; nothing to report.
    let _ = watcher.watch(connection).await;
}

/// The TLS acceptor the flags ask for, if any.
fn tls_acceptor(args: &Args) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (chain, key) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => (
            CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?,
            PrivateKeyDer::from_pem_file(key)?,
        ),
        _ if args.tls_self_signed => {
            let names = vec![
                "localhost".to_string(),
                "whoami".to_string(),
                hostname(),
                "127.0.0.1".to_string(),
            ];
            let generated = rcgen::generate_simple_self_signed(names)?;
            (
                vec![generated.cert.der().clone()],
                PrivateKeyDer::try_from(generated.signing_key.serialize_der())
                    .map_err(anyhow::Error::msg)?,
            )
        }
        _ => return Ok(None),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &args.tls_client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)? {
                roots.add(cert?)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = args
        .tls_alpn
        .split(',')
        .map(|p| p.trim().as_bytes().to_vec())
        .filter(|p| !p.is_empty())
        .collect();
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

async fn handle(
    req: Request<Incoming>,
    conn: Conn,
    state: Arc<State>,
) -> Result<Response<Out>, Infallible> {
    let query = Query::parse(req.uri().query());
    if !state.delay.is_zero() && query.get("wait").is_none() && req.uri().path() != "/health" {
        tokio::time::sleep(state.delay).await;
    }
    if req.uri().path() == "/bench" && req.uri().query().is_none() {
        return Ok(Response::new(Either::Left(Full::new(Bytes::from_static(
            b"1",
        )))));
    }

    if let Some(wait) = query.get("wait") {
        match wait.parse::<u64>() {
            Ok(ms) => tokio::time::sleep(Duration::from_millis(ms.min(MAX_WAIT_MS))).await,
            Err(_) => return Ok(text(StatusCode::BAD_REQUEST, "invalid wait\n")),
        }
    }
    let forced = match query.get("status") {
        None => None,
        Some(code) => match code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(code) => Some(code),
            None => return Ok(text(StatusCode::BAD_REQUEST, "invalid status\n")),
        },
    };

    let mut resp = route(req, conn, &state, &query).await;
    if let Some(code) = forced {
        *resp.status_mut() = code;
    }
    Ok(resp)
}

async fn route(req: Request<Incoming>, conn: Conn, state: &State, query: &Query) -> Response<Out> {
    match req.uri().path() {
        "/bench" => text(StatusCode::OK, "1"),
        "/health" => health(req, state).await,
        "/api" => {
            let info = Info::new(&req, conn, state);
            let mut resp = Response::new(Either::Left(Full::new(Bytes::from(info.json()))));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        "/data" => match query.get("size").map(str::parse::<u64>) {
            Some(Ok(size)) => {
                let mut resp = Response::new(Either::Right(PatternBody { remaining: size }));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                resp
            }
            _ => text(StatusCode::BAD_REQUEST, "usage: /data?size=BYTES\n"),
        },
        "/upload" => upload(req).await,
        "/ws" => websocket(req, state),
        _ => {
            let info = Info::new(&req, conn, state);
            text(StatusCode::OK, info.text())
        }
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Out> {
    let mut resp = Response::new(Either::Left(Full::new(body.into())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

async fn health(req: Request<Incoming>, state: &State) -> Response<Out> {
    match *req.method() {
        Method::GET | Method::HEAD => {
            let code = state.health.load(Ordering::Relaxed);
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = if status.is_success() {
                "ok"
            } else {
                "unhealthy"
            };
            text(status, body)
        }
        Method::POST | Method::PUT => {
            let Some(body) = read_small(req.into_body(), 64).await else {
                return text(StatusCode::BAD_REQUEST, "body too large or broken\n");
            };
            let code = std::str::from_utf8(&body)
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
                .and_then(|c| StatusCode::from_u16(c).ok());
            match code {
                Some(code) => {
                    state.health.store(code.as_u16(), Ordering::Relaxed);
                    text(StatusCode::OK, format!("health set to {}\n", code.as_u16()))
                }
                None => text(StatusCode::BAD_REQUEST, "body must be a status code\n"),
            }
        }
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST\n"),
    }
}

/// Reads a small body whole; `None` if it is longer than `max` bytes or breaks off.
async fn read_small(mut body: Incoming, max: usize) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.ok()?.data_ref() {
            if buf.len() + data.len() > max {
                return None;
            }
            buf.extend_from_slice(data);
        }
    }
    Some(buf)
}

async fn upload(req: Request<Incoming>) -> Response<Out> {
    if !matches!(*req.method(), Method::POST | Method::PUT) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use POST or PUT\n");
    }
    let mut body = req.into_body();
    let mut count: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    count += data.len() as u64;
                }
            }
            Err(err) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("body error after {count} bytes: {err}\n"),
                );
            }
        }
    }
    text(StatusCode::OK, count.to_string())
}

// ---------------------------------------------------------------------------------------
// Request description

struct Info {
    name: String,
    hostname: String,
    ips: Vec<IpAddr>,
    remote: SocketAddr,
    local: SocketAddr,
    method: String,
    path: String,
    query: String,
    proto: &'static str,
    host: String,
    headers: Vec<(String, Vec<String>)>,
    env: BTreeMap<String, String>,
    tls: Option<Arc<TlsSeen>>,
}

impl Info {
    fn new<B>(req: &Request<B>, conn: Conn, state: &State) -> Info {
        let local_ip = conn.local.ip().to_canonical();
        let mut ips = interface_ips();
        // The address the request arrived on is what swarm tests match on, so it must be
        // listed even where /proc cannot be read.
        if !ips.contains(&local_ip) {
            ips.push(local_ip);
        }
        let host = req
            .headers()
            .get(header::HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .unwrap_or_default();
        Info {
            name: state.name.clone(),
            hostname: state.hostname.clone(),
            ips,
            remote: SocketAddr::new(conn.remote.ip().to_canonical(), conn.remote.port()),
            local: SocketAddr::new(local_ip, conn.local.port()),
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
            query: req.uri().query().unwrap_or("").to_owned(),
            proto: proto(req.version()),
            host,
            headers: canonical_headers(req.headers()),
            env: state.env.clone(),
            tls: conn.tls.clone(),
        }
    }

    fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::with_capacity(512);
        if !self.name.is_empty() {
            let _ = writeln!(s, "Name: {}", self.name);
        }
        let _ = writeln!(s, "Hostname: {}", self.hostname);
        for ip in &self.ips {
            let _ = writeln!(s, "IP: {ip}");
        }
        let _ = writeln!(s, "RemoteAddr: {}", self.remote);
        if let Some(tls) = &self.tls {
            let _ = writeln!(s, "TLS-Sni: {}", tls.sni.as_deref().unwrap_or("-"));
            let _ = writeln!(s, "TLS-Client-Cert: {}", tls.client_cert);
        }
        let target = if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        };
        let _ = writeln!(s, "{} {} {}", self.method, target, self.proto);
        let _ = writeln!(s, "Host: {}", self.host);
        for (name, values) in &self.headers {
            for value in values {
                let _ = writeln!(s, "{name}: {value}");
            }
        }
        for (key, value) in &self.env {
            let _ = writeln!(s, "Env: {key}={value}");
        }
        s
    }

    fn json(&self) -> String {
        let headers: serde_json::Map<String, serde_json::Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
            .collect();
        let url = if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        };
        serde_json::json!({
            "hostname": self.hostname,
            "name": self.name,
            "ip": self.ips.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(),
            "remoteAddr": self.remote.to_string(),
            "localAddr": self.local.to_string(),
            "method": self.method,
            "url": url,
            "path": self.path,
            "query": self.query,
            "host": self.host,
            "proto": self.proto,
            "headers": headers,
            "env": self.env,
        })
        .to_string()
    }
}

fn proto(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Headers sorted by Go-canonical name, values in arrival order; `Host` is reported apart.
fn canonical_headers(headers: &HeaderMap) -> Vec<(String, Vec<String>)> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if name == header::HOST {
            continue;
        }
        out.entry(canonical_name(name.as_str()))
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    out.into_iter().collect()
}

fn canonical_name(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c };
            upper = c == '-';
            out
        })
        .collect()
}

fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn env_with_prefix(prefix: Option<&str>) -> BTreeMap<String, String> {
    match prefix {
        None | Some("") => BTreeMap::new(),
        Some(prefix) => std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with(prefix))
            .collect(),
    }
}

/// Addresses of this network namespace's interfaces, read from /proc so the image needs no
/// libc: IPv4 from the `LOCAL` entries of fib_trie, IPv6 from if_inet6.
fn interface_ips() -> Vec<IpAddr> {
    let mut ips = Vec::new();
    if let Ok(trie) = std::fs::read_to_string("/proc/net/fib_trie") {
        let mut last: Option<IpAddr> = None;
        for line in trie.lines() {
            let line = line.trim();
            if let Some(addr) = line.strip_prefix("|-- ") {
                last = addr.parse().ok();
            } else if line.starts_with("/32 host LOCAL")
                && let Some(ip) = last
                && !ips.contains(&ip)
            {
                ips.push(ip);
            }
        }
    }
    if let Ok(inet6) = std::fs::read_to_string("/proc/net/if_inet6") {
        for line in inet6.lines() {
            let Some(hex) = line.split_whitespace().next() else {
                continue;
            };
            if let Ok(bits) = u128::from_str_radix(hex, 16) {
                let ip = IpAddr::V6(Ipv6Addr::from(bits));
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
        }
    }
    ips
}

/// Query parameters as raw `key=value` pairs; whoami only needs numbers, so no decoding.
/// Owned, because the request is moved into the handler while the values are still needed.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        Query(
            query
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').unwrap_or((p, "")))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

// ---------------------------------------------------------------------------------------
// /data body

const PATTERN_LEN: usize = 26 * 2520;
/// Every chunk starts at a multiple of 26, so the stream reads `abc...z` repeated and a
/// client can check any byte: `body[i] == b'a' + i % 26`.
static PATTERN: [u8; PATTERN_LEN] = pattern();

const fn pattern() -> [u8; PATTERN_LEN] {
    let mut buf = [0u8; PATTERN_LEN];
    let mut i = 0;
    while i < PATTERN_LEN {
        buf[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    buf
}

/// Streams `remaining` bytes from the static pattern; the length is deliberately not
/// announced so HTTP/1.1 answers are chunked.
struct PatternBody {
    remaining: u64,
}

impl HttpBody for PatternBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(PATTERN_LEN as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&PATTERN[..n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }
}

// ---------------------------------------------------------------------------------------
// WebSocket echo (RFC 6455, server side, no extensions)

const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn websocket(mut req: Request<Incoming>, state: &State) -> Response<Out> {
    let headers = req.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    let upgrade = req.version() == Version::HTTP_11
        && req.method() == Method::GET
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket");
    if !upgrade {
        return text(
            StatusCode::BAD_REQUEST,
            "websocket upgrade over HTTP/1.1 expected\n",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        let mut resp = text(
            StatusCode::UPGRADE_REQUIRED,
            "websocket version 13 expected\n",
        );
        resp.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return resp;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return text(StatusCode::BAD_REQUEST, "missing sec-websocket-key\n");
    };
    let accept = ws_accept(key.as_bytes());
    let Ok(accept) = HeaderValue::from_str(&accept) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "bad accept value\n");
    };

    let on_upgrade = hyper::upgrade::on(&mut req);
    let stop = state.stop.clone();
    // The session must be counted before the 101 leaves, or a shutdown could miss it.
    let live = state.sessions.enter();
    tokio::spawn(async move {
        let _live = live;
        if let Ok(upgraded) = on_upgrade.await {
            let _ = ws_echo(TokioIo::new(upgraded), stop).await;
        }
    });

    let mut resp = Response::new(Either::Left(Full::new(Bytes::new())));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    resp
}

fn ws_accept(key: &[u8]) -> String {
    let mut sha = sha1::Sha1::new();
    sha.update(key);
    sha.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

struct WsFrame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

enum WsError {
    Io,
    /// Close the session with this status code.
    Close(u16),
}

impl From<std::io::Error> for WsError {
    fn from(_: std::io::Error) -> WsError {
        WsError::Io
    }
}

async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R) -> Result<WsFrame, WsError> {
    let mut head = [0u8; 2];
    rd.read_exact(&mut head).await?;
    let fin = head[0] & 0x80 != 0;
    let opcode = head[0] & 0x0f;
    if head[0] & 0x70 != 0 {
        return Err(WsError::Close(1002));
    }
    // Clients must mask (RFC 6455 5.1); a proxy that strips masks should be caught.
    if head[1] & 0x80 == 0 {
        return Err(WsError::Close(1002));
    }
    let len = match head[1] & 0x7f {
        126 => u64::from(rd.read_u16().await?),
        127 => rd.read_u64().await?,
        n => u64::from(n),
    };
    let control = opcode & 0x08 != 0;
    if control && (!fin || len > 125) {
        return Err(WsError::Close(1002));
    }
    if len > WS_MAX_PAYLOAD {
        return Err(WsError::Close(1009));
    }
    let mut mask = [0u8; 4];
    rd.read_exact(&mut mask).await?;
    let mut payload = vec![0u8; len as usize];
    rd.read_exact(&mut payload).await?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Ok(WsFrame {
        fin,
        opcode,
        payload,
    })
}

async fn write_frame<W: AsyncWrite + Unpin>(
    wr: &mut W,
    fin: bool,
    opcode: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(payload.len() + 10);
    buf.push(if fin { 0x80 } else { 0 } | opcode);
    match payload.len() {
        n @ 0..=125 => buf.push(n as u8),
        n @ 126..=0xffff => {
            buf.push(126);
            buf.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            buf.push(127);
            buf.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    buf.extend_from_slice(payload);
    wr.write_all(&buf).await?;
    wr.flush().await
}

async fn ws_echo<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (rd, mut wr) = tokio::io::split(io);
    let mut rd = tokio::io::BufReader::new(rd);
    loop {
        let frame = tokio::select! {
            frame = read_frame(&mut rd) => frame,
            // The watch guard must not live across the await below (it is not Send).
            () = async { let _ = stop.wait_for(|stopping| *stopping).await; } => {
                write_frame(&mut wr, true, 0x8, &1001u16.to_be_bytes()).await?;
                return wr.shutdown().await;
            }
        };
        match frame {
            Ok(f) => match f.opcode {
                0x0..=0x2 => write_frame(&mut wr, f.fin, f.opcode, &f.payload).await?,
                0x8 => {
                    // Echo the status code only: the reason is optional and may be cut.
                    let code = f.payload.get(..2).unwrap_or(&[]);
                    write_frame(&mut wr, true, 0x8, code).await?;
                    return wr.shutdown().await;
                }
                0x9 => write_frame(&mut wr, true, 0xA, &f.payload).await?,
                0xA => {}
                _ => {
                    write_frame(&mut wr, true, 0x8, &1002u16.to_be_bytes()).await?;
                    return wr.shutdown().await;
                }
            },
            Err(WsError::Close(code)) => {
                write_frame(&mut wr, true, 0x8, &code.to_be_bytes()).await?;
                return wr.shutdown().await;
            }
            Err(WsError::Io) => return Ok(()),
        }
    }
}
