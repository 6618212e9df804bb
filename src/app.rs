//! Assembles a running proxy: providers, the config pipeline, entrypoints,
//! signals and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::HeaderValue;
use tokio::net::TcpSocket;
use tokio::sync::watch;

use crate::admin::{self, Admin, AdminConfig, AdminContext, AdminObserver};
use crate::config::dynamic::{DynamicConfig, Middleware, RedirectScheme, Router};
use crate::config::static_config::{RedirectTarget, RespondingTimeouts, StaticConfig};
use crate::provider::{Hub, ProviderStatus, file, swarm};
use crate::proxy::accept::Acceptor;
use crate::proxy::handler::{BasicInternal, EntrypointInfo, InternalServices, Proxy};
use crate::proxy::headers::ForwardedPolicy;
use crate::proxy::observe::{Observer, Observers};
use crate::proxy::server::{self, ServerTimeouts};
use crate::proxy::transport::TransportConfig;
use crate::proxy::{spread, threads};
use crate::routing::{self, CompileInput, RouteTable};
use crate::tls::{self, CertStore, TlsSetup};

/// One listening entrypoint.
#[derive(Debug, Clone)]
pub struct EntrypointSpec {
    pub name: String,
    pub address: SocketAddr,
    pub forwarded: ForwardedPolicy,
    pub timeouts: ServerTimeouts,
    /// Keep accepting (with `/ping` at 503) this long after SIGTERM, so load
    /// balancers notice before connections are refused.
    pub accept_grace: Duration,
    /// Whether routers with no `entryPoints` attach here.
    pub as_default: bool,
    /// `http.tls`: every router on this entrypoint is a TLS router.
    pub tls: bool,
}

/// Everything needed to run, already validated.
#[derive(Debug, Clone, Default)]
pub struct AppConfig {
    pub entrypoints: Vec<EntrypointSpec>,
    pub file: Option<(file::FileSource, bool)>,
    /// `providers.swarm` (or Traefik 1's `--docker.swarmmode`).
    pub swarm: Option<swarm::SwarmConfig>,
    pub transport: TransportConfig,
    /// Routers escale itself defines (`@internal`): entrypoint redirections.
    pub internal: DynamicConfig,
    /// API, dashboard, ping and metrics (`…@internal` services).
    pub admin: AdminConfig,
}

impl AppConfig {
    /// Translates the validated static configuration.
    pub fn from_static(config: &StaticConfig) -> AppConfig {
        let defaults = config.default_entry_points();
        let entrypoints = config
            .entry_points
            .iter()
            .map(|(name, ep)| EntrypointSpec {
                name: name.clone(),
                address: ep.address,
                forwarded: ForwardedPolicy {
                    insecure: ep.forwarded_headers.insecure,
                    trusted: ep.forwarded_headers.trusted_ips.clone(),
                },
                timeouts: server_timeouts(&ep.timeouts, ep.life_cycle.grace),
                accept_grace: ep.life_cycle.request_accept_grace,
                as_default: defaults.contains(name),
                tls: ep.tls.is_some(),
            })
            .collect();
        let file = config
            .providers
            .file
            .as_ref()
            .map(|f| (f.source.clone(), f.watch));
        let st = &config.servers_transport;
        let mut transport = TransportConfig::default();
        if let Some(d) = st.dial_timeout {
            transport.dial_timeout = d;
        }
        transport.response_header_timeout = st.response_header_timeout;
        if let Some(d) = st.idle_conn_timeout {
            transport.idle_conn_timeout = d;
        }
        transport.max_idle_conns_per_host = st.max_idle_conns_per_host;
        transport.tls.insecure_skip_verify = st.insecure_skip_verify;
        transport.tls.root_cas = st.root_cas.clone();
        AppConfig {
            entrypoints,
            file,
            swarm: config.providers.swarm.as_ref().map(swarm_config),
            transport,
            internal: redirections(config),
            admin: admin_config(config),
        }
    }
}

/// An entrypoint's connection limits, as Go's server (and so Traefik) reads
/// them: the header limit is `readTimeout` unless `readHeaderTimeout` is set,
/// and the idle limit falls back to `readTimeout` when `idleTimeout` is 0.
fn server_timeouts(t: &RespondingTimeouts, grace: Duration) -> ServerTimeouts {
    ServerTimeouts {
        header_read: t.read_header.or(t.read),
        body_read: t.read,
        idle: t.idle.or(t.read),
        grace,
    }
}

fn swarm_config(p: &crate::config::static_config::DockerProvider) -> swarm::SwarmConfig {
    swarm::SwarmConfig {
        endpoint: p.endpoint.clone(),
        network: p.network.clone(),
        exposed_by_default: p.exposed_by_default,
        constraints: p.constraints.clone(),
        default_rule: p.default_rule.clone(),
        refresh: p.refresh,
        watch: p.watch,
        generation: if p.v1.is_some() {
            crate::labels::LabelGeneration::V1
        } else {
            crate::labels::LabelGeneration::V3
        },
        domain: p.v1.as_ref().and_then(|v| v.domain.clone()),
    }
}

/// Traefik's entrypoint redirections (`http.redirections.entryPoint`): a
/// catch-all router on the source entrypoint with a redirectScheme middleware,
/// named as Traefik names them (`web-to-websecure@internal`).
fn redirections(config: &StaticConfig) -> DynamicConfig {
    let mut dc = DynamicConfig::default();
    for (name, ep) in &config.entry_points {
        let Some(r) = &ep.redirect else { continue };
        let (target, port) = match &r.to {
            RedirectTarget::EntryPoint(t) => (
                t.clone(),
                config
                    .entry_points
                    .get(t)
                    .map(|e| e.address.port())
                    .unwrap_or(443),
            ),
            RedirectTarget::Port(p) => (format!("port-{p}"), *p),
        };
        let router = format!("{name}-to-{target}");
        let middleware = format!("redirect-{router}");
        dc.http.middlewares.insert(
            middleware.clone(),
            Middleware {
                redirect_scheme: Some(RedirectScheme {
                    scheme: r.scheme.clone(),
                    port: Some(port.to_string()),
                    permanent: r.permanent,
                }),
                ..Middleware::default()
            },
        );
        dc.http.routers.insert(
            router,
            Router {
                entry_points: vec![name.clone()],
                middlewares: vec![middleware],
                service: "noop@internal".to_string(),
                rule: "HostRegexp(`^.+$`)".to_string(),
                priority: Some(r.priority),
                ..Router::default()
            },
        );
    }
    dc
}

/// The admin side's settings from the static configuration.
fn admin_config(config: &StaticConfig) -> AdminConfig {
    AdminConfig {
        api: config.api.as_ref().map(|a| admin::ApiConfig {
            insecure: a.insecure,
            dashboard: a.dashboard,
        }),
        ping: config.ping.as_ref().map(|p| admin::PingConfig {
            entry_point: p.entry_point.clone(),
            manual_routing: p.manual_routing,
            terminating_status_code: p.terminating_status_code,
        }),
        prometheus: config.metrics.as_ref().map(|m| admin::PrometheusConfig {
            entry_point: m.entry_point.clone(),
            manual_routing: m.manual_routing,
            add_entry_points_labels: m.add_entry_points_labels,
            add_routers_labels: m.add_routers_labels,
            add_services_labels: m.add_services_labels,
            buckets: m.buckets.clone(),
        }),
        access_log: config.access_log.is_some(),
    }
}

/// Handles to a running proxy, for `main` and for in-process tests.
pub struct Running {
    pub table: Arc<ArcSwap<RouteTable>>,
    pub draining: Arc<AtomicBool>,
    pub addresses: Vec<(String, SocketAddr)>,
    pub providers: Vec<Arc<ProviderStatus>>,
    pub admin: Option<Arc<Admin>>,
    shutdown: watch::Sender<bool>,
    /// Serving threads: each ends once its connections are drained.
    servers: Vec<tokio::sync::oneshot::Receiver<()>>,
    /// Providers and the config pipeline: they run until aborted.
    background: Vec<tokio::task::JoinHandle<()>>,
    accept_grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(tls::TlsError),
    #[error("cannot start the serving threads: {0}")]
    Threads(std::io::Error),
    #[error("cannot listen on {address} for entrypoint {name}: {source}")]
    Bind {
        name: String,
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Hooks other subsystems (admin, metrics, access log) plug in.
#[derive(Default)]
pub struct Extensions {
    pub internal: Option<Arc<dyn InternalServices>>,
    pub observers: Vec<Arc<dyn Observer>>,
    pub table_hooks: Vec<Arc<dyn TableHook>>,
}

/// Told about every route table the pipeline publishes (off the request path).
pub trait TableHook: Send + Sync {
    fn published(&self, table: &Arc<RouteTable>, compile_time: Duration);
}

impl TableHook for Admin {
    fn published(&self, table: &Arc<RouteTable>, compile_time: Duration) {
        Admin::published(self, table, compile_time);
    }
}

pub async fn start(mut config: AppConfig, mut ext: Extensions) -> Result<Running, StartError> {
    // Traefik creates the `traefik` entrypoint for its internal services.
    if config.admin.needs_internal_entrypoint()
        && !config
            .entrypoints
            .iter()
            .any(|e| e.name == admin::INTERNAL_ENTRYPOINT)
    {
        config.entrypoints.push(EntrypointSpec {
            name: admin::INTERNAL_ENTRYPOINT.to_string(),
            address: config.admin.implicit_entrypoint_address(),
            forwarded: ForwardedPolicy::default(),
            timeouts: ServerTimeouts::default(),
            accept_grace: Duration::ZERO,
            as_default: false,
            tls: false,
        });
    }
    let table = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
    let draining = Arc::new(AtomicBool::new(false));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let mut hub = Hub::new();
    let mut background = Vec::new();
    if let Some((source, watch)) = config.file.clone() {
        let handle = hub.register(file::PROVIDER);
        background.push(tokio::spawn(file::run(source, watch, handle)));
    }
    if let Some(sc) = config.swarm.clone() {
        let handle = hub.register(sc.provider_name());
        background.push(tokio::spawn(swarm::run(sc, handle)));
    }
    // Routers escale defines itself: admin (api, dashboard, ping, metrics)
    // and entrypoint redirections, under the `internal` provider.
    let mut internal = config.admin.internal_snapshot();
    let internal_http = &mut Arc::make_mut(&mut internal.config).http;
    internal_http
        .routers
        .extend(config.internal.http.routers.clone());
    internal_http
        .middlewares
        .extend(config.internal.http.middlewares.clone());
    if !internal.config.http.is_empty() {
        let handle = hub.register(admin::INTERNAL_PROVIDER);
        // Published once: these never change while running.
        handle.publish(internal);
    }
    let providers = hub.statuses();

    let default_cert = tls::generate_default().map_err(StartError::Tls)?;
    let certs = Arc::new(CertStore::build(None, default_cert.clone()).0);
    let tls_setup = Arc::new(ArcSwap::from_pointee(
        TlsSetup::build(None, certs, Default::default()).0,
    ));

    let entrypoint_names: Vec<String> = config.entrypoints.iter().map(|e| e.name.clone()).collect();
    let default_entrypoints: Vec<String> = config
        .entrypoints
        .iter()
        .filter(|e| e.as_default)
        .map(|e| e.name.clone())
        .collect();
    let tls_entrypoints: Vec<String> = config
        .entrypoints
        .iter()
        .filter(|e| e.tls)
        .map(|e| e.name.clone())
        .collect();
    let admin = config.admin.is_enabled().then(|| {
        Admin::new(
            config.admin.clone(),
            AdminContext {
                table: table.clone(),
                draining: draining.clone(),
                providers: providers.clone(),
                entrypoints: config
                    .entrypoints
                    .iter()
                    .map(|e| admin::EntrypointInfo {
                        name: e.name.clone(),
                        address: e.address,
                        timeouts: e.timeouts.clone(),
                        forwarded_insecure: e.forwarded.insecure,
                        trusted_ips: e.forwarded.trusted.iter().map(|n| n.to_string()).collect(),
                        as_default: e.as_default,
                    })
                    .collect(),
            },
        )
    });
    if let Some(admin) = &admin {
        ext.observers.push(Arc::new(AdminObserver(admin.clone())));
        ext.table_hooks.push(admin.clone());
        if ext.internal.is_none() {
            ext.internal = Some(Arc::new(admin.clone()));
        }
    }
    background.push(tokio::spawn(pipeline(
        hub,
        table.clone(),
        Entrypoints {
            all: entrypoint_names,
            default: default_entrypoints,
            tls: tls_entrypoints,
        },
        config.transport.clone(),
        (tls_setup.clone(), default_cert),
        ext.table_hooks,
    )));

    let internal = ext.internal.unwrap_or_else(|| {
        Arc::new(BasicInternal {
            draining: draining.clone(),
        })
    });
    let proxy = Arc::new(Proxy {
        table: table.clone(),
        draining: draining.clone(),
        internal,
        observer: Arc::new(Observers(ext.observers)),
        server_name: server_name(),
    });

    let mut listeners = Vec::new();
    let mut addresses = Vec::new();
    let mut accept_grace = Duration::ZERO;
    for spec in &config.entrypoints {
        // Bound here, then handed to the serving threads.
        let group = listen(spec.address, threads::count()).map_err(|source| StartError::Bind {
            name: spec.name.clone(),
            address: spec.address,
            source,
        })?;
        let local = group[0].local_addr().unwrap_or(spec.address);
        addresses.push((spec.name.clone(), local));
        accept_grace = accept_grace.max(spec.accept_grace);
        tracing::info!(entrypoint = %spec.name, address = %local, "listening");
        let info = EntrypointInfo {
            name: spec.name.as_str().into(),
            forwarded: spec.forwarded.clone(),
        };
        listeners.push((group, info, spec.timeouts.clone()));
    }
    let servers = serve_on_threads(listeners, &proxy, &tls_setup, &shutdown_rx)
        .map_err(StartError::Threads)?;

    Ok(Running {
        table,
        draining,
        addresses,
        providers,
        admin,
        shutdown: shutdown_tx,
        servers,
        background,
        accept_grace,
    })
}

/// Binds an entrypoint: one listening socket per serving thread. On Linux
/// they form one `SO_REUSEPORT` group, so the kernel spreads new connections
/// over the threads by a hash of their addresses (`proxy::spread` evens out
/// what the hash leaves uneven) and wakes only the one it chose. (With one shared
/// socket every thread woke for each connection, and the first awake took
/// what was queued: now and then one thread held all 64 keep-alive
/// connections of a benchmark while the other idled.)
fn listen(address: SocketAddr, threads: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    #[cfg(target_os = "linux")]
    {
        // Another process already listening here must still be an error,
        // even one that would let us join its group.
        if address.port() != 0 {
            drop(bind(address, false)?);
        }
        let first = bind(address, true)?;
        // With port 0 the first socket chose the port the others join.
        let bound = first.local_addr()?;
        let mut group = vec![listening(first)?];
        for _ in 1..threads {
            group.push(listening(bind(bound, true)?)?);
        }
        Ok(group)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let listener = bind(address, false)?.listen(LISTEN_BACKLOG)?.into_std()?;
        (0..threads).map(|_| listener.try_clone()).collect()
    }
}

/// A TCP socket bound to `address`, not yet listening. Accepted connections
/// inherit TCP_NODELAY from it on Linux, which saves a syscall per connection.
fn bind(address: SocketAddr, reuse_port: bool) -> std::io::Result<TcpSocket> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // Restarting escale must not wait for the old connections' TIME_WAIT.
    socket.set_reuseaddr(true)?;
    #[cfg(target_os = "linux")]
    socket.set_reuseport(reuse_port)?;
    #[cfg(not(target_os = "linux"))]
    let _ = reuse_port;
    socket.set_nodelay(true)?;
    socket.bind(address)?;
    Ok(socket)
}

/// Starts listening, then turns TCP_QUICKACK off (`listen` would reset
/// it); the connections it accepts inherit that. A new connection otherwise
/// acknowledges the request it receives at once, in a segment of its own,
/// though the response follows within microseconds and can carry the
/// acknowledgement. Saves one segment per connection, 12 to 11 for one
/// request on loopback, as HAProxy does by default in HTTP mode
/// (`tcp-smart-accept`). The kernel still acknowledges at once what it must
/// (every second full segment of a large body), and a request left
/// unanswered is acknowledged by its delayed-ACK timer (40 ms).
#[cfg(target_os = "linux")]
fn listening(socket: TcpSocket) -> std::io::Result<std::net::TcpListener> {
    let listener = socket.listen(LISTEN_BACKLOG)?;
    socket2::SockRef::from(&listener).set_tcp_quickack(false)?;
    listener.into_std()
}

/// Connections the kernel may queue before escale accepts them (capped by
/// `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 1024;

/// An entrypoint's listening sockets (one per serving thread) and what its
/// connections need.
type Listener = (Vec<std::net::TcpListener>, EntrypointInfo, ServerTimeouts);

/// Starts the serving threads (`proxy::threads`). Each accepts on its own
/// socket of every entrypoint and closes it as it starts draining, so the
/// port refuses new connections once every thread has stopped accepting.
fn serve_on_threads(
    listeners: Vec<Listener>,
    proxy: &Arc<Proxy>,
    tls_setup: &Arc<ArcSwap<TlsSetup>>,
    shutdown: &watch::Receiver<bool>,
) -> std::io::Result<Vec<tokio::sync::oneshot::Receiver<()>>> {
    // As many as the backend pools keep idle lists for (`threads::count`),
    // and as each entrypoint has sockets.
    let mut per_thread: Vec<Vec<_>> = (0..threads::count()).map(|_| Vec::new()).collect();
    for (group, info, timeouts) in listeners {
        let seats = spread::seats(group.len());
        for (own, (socket, seat)) in per_thread.iter_mut().zip(group.into_iter().zip(seats)) {
            own.push((socket, seat, info.clone(), timeouts.clone()));
        }
    }
    let mut jobs = Vec::new();
    for own in per_thread {
        let (proxy, tls_setup, shutdown) = (proxy.clone(), tls_setup.clone(), shutdown.clone());
        jobs.push(move || async move {
            let mut entrypoints = tokio::task::JoinSet::new();
            for (listener, seat, info, timeouts) in own {
                let listener = match Acceptor::new(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(entrypoint = %info.name, error = %e, "cannot accept on this thread");
                        continue;
                    }
                };
                // Every entrypoint can terminate TLS: a connection that
                // starts with a handshake reaches the TLS routers, as in Traefik.
                entrypoints.spawn(server::serve(
                    listener,
                    seat,
                    info,
                    timeouts,
                    proxy.clone(),
                    Some(tls_setup.clone()),
                    shutdown.clone(),
                ));
            }
            while entrypoints.join_next().await.is_some() {}
        });
    }
    threads::spawn(jobs)
}

impl Running {
    /// Drains and stops: `/ping` turns 503, listeners stay open for the
    /// accept grace, then close; in-flight requests get each entrypoint's
    /// grace period.
    pub async fn shutdown(self) {
        self.draining.store(true, Ordering::Relaxed);
        if !self.accept_grace.is_zero() {
            tokio::time::sleep(self.accept_grace).await;
        }
        let _ = self.shutdown.send(true);
        // Each server bounds its own drain by its grace period.
        for finished in self.servers {
            let _ = finished.await;
        }
        for task in self.background {
            task.abort();
        }
    }

    /// Waits for the first configuration to be compiled (bounded).
    pub async fn ready(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.table.load().generation > 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }
}

/// The entrypoint names the compiler needs.
struct Entrypoints {
    all: Vec<String>,
    default: Vec<String>,
    tls: Vec<String>,
}

async fn pipeline(
    mut hub: Hub,
    table: Arc<ArcSwap<RouteTable>>,
    entrypoints: Entrypoints,
    transport: TransportConfig,
    (tls, default_cert): (Arc<ArcSwap<TlsSetup>>, Arc<rustls::sign::CertifiedKey>),
    hooks: Vec<Arc<dyn TableHook>>,
) {
    let apply = Arc::new(Apply {
        table,
        entrypoints,
        transport,
        tls,
        default_cert,
        hooks,
    });
    let mut generation = 0u64;
    // Health-check tasks follow the table; dropping this stops them.
    let mut health = crate::health::Supervisor::new();
    loop {
        let snapshots = hub.current();
        generation += 1;
        // Compiling 10k routes takes tens of milliseconds: on a blocking
        // thread, so the workers keep serving (with one core too: the
        // scheduler lets a woken worker in).
        let job = apply.clone();
        health = match tokio::task::spawn_blocking(move || {
            job.run(&snapshots, generation, &mut health);
            health
        })
        .await
        {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, generation, "applying the configuration failed");
                crate::health::Supervisor::new()
            }
        };
        if !hub.changed().await {
            // No provider left (or none configured): the table is final.
            std::future::pending::<()>().await;
        }
    }
}

/// What the pipeline needs to compile and publish a table.
struct Apply {
    table: Arc<ArcSwap<RouteTable>>,
    entrypoints: Entrypoints,
    transport: TransportConfig,
    tls: Arc<ArcSwap<TlsSetup>>,
    default_cert: Arc<rustls::sign::CertifiedKey>,
    hooks: Vec<Arc<dyn TableHook>>,
}

impl Apply {
    /// Compiles, publishes, then does what can wait: hooks, health checks,
    /// and dropping the previous table (a quarter of a compile at 10k
    /// routes), all after the new table serves.
    fn run(
        &self,
        snapshots: &[(String, Arc<crate::provider::Snapshot>)],
        generation: u64,
        health: &mut crate::health::Supervisor,
    ) {
        let previous = self.table.load_full();
        let compile_started = Instant::now();
        let mut compiled = routing::compile(CompileInput {
            snapshots,
            entrypoints: &self.entrypoints.all,
            default_entrypoints: &self.entrypoints.default,
            tls_entrypoints: &self.entrypoints.tls,
            default_transport: self.transport.clone(),
            previous: Some(&previous),
            generation,
        });
        let tls_changed = compiled.model.tls != previous.model.tls || generation == 1;
        if tls_changed || compiled.tls_options_by_host != previous.tls_options_by_host {
            // Certificates are read again only when the `tls` section changed.
            let certs = if tls_changed {
                let (store, issues) =
                    CertStore::build(compiled.model.tls.as_ref(), self.default_cert.clone());
                compiled.issues.extend(issues);
                Arc::new(store)
            } else {
                self.tls.load().certs().clone()
            };
            let (setup, issues) = TlsSetup::build(
                compiled.model.tls.as_ref(),
                certs,
                compiled.tls_options_by_host.clone(),
            );
            compiled.issues.extend(issues);
            self.tls.store(Arc::new(setup));
        }
        if !tls_changed {
            // The certificates' issues, kept from when they were read.
            let kept: Vec<_> = previous
                .issues
                .iter()
                .filter(|i| i.source.starts_with("tls ") && !compiled.issues.contains(i))
                .cloned()
                .collect();
            compiled.issues.extend(kept);
        }
        let compiled = Arc::new(compiled);
        self.table.store(compiled.clone());
        let compile_time = compile_started.elapsed();
        for issue in &compiled.issues {
            if previous.issues.contains(issue) {
                continue;
            }
            match issue.severity {
                crate::provider::Severity::Error => tracing::error!("{issue}"),
                crate::provider::Severity::Warning => tracing::warn!("{issue}"),
            }
        }
        tracing::info!(
            generation,
            routes = compiled.route_count(),
            services = compiled.services.len(),
            compile_ms = compile_time.as_secs_f64() * 1000.0,
            "configuration applied"
        );
        for hook in &self.hooks {
            hook.published(&compiled, compile_time);
        }
        health.sync(&compiled);
        drop(previous);
        release_freed_memory(generation);
    }
}

/// Gives the kernel back the free pages malloc keeps after a parse and a
/// compile: their peak is several times what stays (at 10k routes, idle RSS
/// 40 MiB without this, 31 with it). Runs after the new table serves.
fn release_freed_memory(generation: u64) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = Instant::now();
        // SAFETY: malloc_trim only walks glibc's own arenas, under their locks.
        unsafe { libc::malloc_trim(0) };
        tracing::debug!(
            generation,
            trim_ms = started.elapsed().as_secs_f64() * 1000.0,
            "freed memory returned"
        );
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = generation;
}

fn server_name() -> HeaderValue {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    HeaderValue::from_str(&name).unwrap_or_else(|_| HeaderValue::from_static("escale"))
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_runtime<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn idle_and_header_limits_are_read_as_go_reads_them() {
        let s = Duration::from_secs;
        let limits = |read, idle, read_header| {
            let t = RespondingTimeouts {
                read,
                write: None,
                idle,
                read_header,
            };
            let st = server_timeouts(&t, s(10));
            (st.header_read, st.idle)
        };
        // Traefik's defaults: each limit stands on its own.
        assert_eq!(
            limits(Some(s(60)), Some(s(180)), None),
            (Some(s(60)), Some(s(180)))
        );
        // `readHeaderTimeout` takes over the header limit.
        assert_eq!(
            limits(Some(s(60)), Some(s(180)), Some(s(5))),
            (Some(s(5)), Some(s(180)))
        );
        // `idleTimeout: 0` falls back to `readTimeout`; both 0: no limit.
        assert_eq!(limits(Some(s(30)), None, None), (Some(s(30)), Some(s(30))));
        assert_eq!(limits(None, None, None), (None, None));
    }

    /// The socket's TCP_QUICKACK as the kernel reports it.
    #[cfg(target_os = "linux")]
    fn quickack(socket: &tokio::net::TcpStream) -> bool {
        socket2::SockRef::from(socket).tcp_quickack().unwrap()
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn accepted_connections_inherit_nodelay_and_delayed_first_ack() {
        on_runtime(async {
            let group = listen("127.0.0.1:0".parse().unwrap(), 1).unwrap();
            let listener =
                tokio::net::TcpListener::from_std(group.into_iter().next().unwrap()).unwrap();
            let address = listener.local_addr().unwrap();
            let _client = tokio::net::TcpStream::connect(address).await.unwrap();
            let (accepted, _) = listener.accept().await.unwrap();
            // What the accept loop relies on to skip setting it (Linux).
            assert!(accepted.nodelay().unwrap());
            // And the first acknowledgement waits for the response.
            assert!(
                !quickack(&accepted),
                "accepted connections inherit TCP_QUICKACK off"
            );
            let client = tokio::net::TcpStream::connect(address).await.unwrap();
            assert!(
                quickack(&client),
                "a socket that did not ask acknowledges at once"
            );
        });
    }

    #[test]
    fn new_connections_are_spread_over_the_threads_sockets() {
        on_runtime(async {
            let group = listen("127.0.0.1:0".parse().unwrap(), 2).unwrap();
            let address = group[0].local_addr().unwrap();
            assert_eq!(group[1].local_addr().unwrap(), address);
            let mut clients = Vec::new();
            for _ in 0..64 {
                clients.push(tokio::net::TcpStream::connect(address).await.unwrap());
            }
            // Each socket accepts what the kernel queued on it. All 64 on one
            // socket would be a 1 in 2^63 draw for an even hash.
            let mut accepted = [0, 0];
            for (count, socket) in accepted.iter_mut().zip(&group) {
                socket.set_nonblocking(true).unwrap();
                while socket.accept().is_ok() {
                    *count += 1;
                }
            }
            assert_eq!(accepted[0] + accepted[1], 64, "{accepted:?}");
            if cfg!(target_os = "linux") {
                assert!(accepted.iter().all(|&n| n > 0), "{accepted:?}");
            }
        });
    }

    #[test]
    fn a_port_in_use_is_an_error_even_for_a_reuse_port_group() {
        on_runtime(async {
            let group = listen("127.0.0.1:0".parse().unwrap(), 2).unwrap();
            let address = group[0].local_addr().unwrap();
            let again = listen(address, 2).unwrap_err();
            assert_eq!(again.kind(), std::io::ErrorKind::AddrInUse, "{again}");
        });
    }
}
