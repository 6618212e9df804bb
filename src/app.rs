//! Assembles a running proxy: providers, the config pipeline, entrypoints,
//! signals and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::HeaderValue;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::provider::{Hub, ProviderStatus, file, swarm};
use crate::proxy::handler::{BasicInternal, EntrypointInfo, InternalServices, Proxy};
use crate::proxy::headers::ForwardedPolicy;
use crate::proxy::observe::{Observer, Observers};
use crate::proxy::server::{self, ServerTimeouts};
use crate::proxy::transport::TransportConfig;
use crate::routing::{self, CompileInput, RouteTable};

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
}

/// Everything needed to run, already validated.
#[derive(Debug, Clone, Default)]
pub struct AppConfig {
    pub entrypoints: Vec<EntrypointSpec>,
    pub file: Option<(file::FileSource, bool)>,
    pub swarm: Option<swarm::SwarmConfig>,
    pub transport: TransportConfig,
}

/// Handles to a running proxy, for `main` and for in-process tests.
pub struct Running {
    pub table: Arc<ArcSwap<RouteTable>>,
    pub draining: Arc<AtomicBool>,
    pub addresses: Vec<(String, SocketAddr)>,
    pub providers: Vec<Arc<ProviderStatus>>,
    shutdown: watch::Sender<bool>,
    /// Entrypoint servers: they end once drained.
    servers: Vec<tokio::task::JoinHandle<()>>,
    /// Providers and the config pipeline: they run until aborted.
    background: Vec<tokio::task::JoinHandle<()>>,
    accept_grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
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
}

pub async fn start(config: AppConfig, ext: Extensions) -> Result<Running, StartError> {
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
    let providers = hub.statuses();

    let entrypoint_names: Vec<String> = config.entrypoints.iter().map(|e| e.name.clone()).collect();
    let mut default_entrypoints: Vec<String> = config
        .entrypoints
        .iter()
        .filter(|e| e.as_default)
        .map(|e| e.name.clone())
        .collect();
    if default_entrypoints.is_empty() {
        default_entrypoints = entrypoint_names.clone();
    }
    background.push(tokio::spawn(pipeline(
        hub,
        table.clone(),
        entrypoint_names,
        default_entrypoints,
        config.transport.clone(),
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

    let mut servers = Vec::new();
    let mut addresses = Vec::new();
    let mut accept_grace = Duration::ZERO;
    for spec in &config.entrypoints {
        let listener =
            TcpListener::bind(spec.address)
                .await
                .map_err(|source| StartError::Bind {
                    name: spec.name.clone(),
                    address: spec.address,
                    source,
                })?;
        let local = listener.local_addr().unwrap_or(spec.address);
        addresses.push((spec.name.clone(), local));
        accept_grace = accept_grace.max(spec.accept_grace);
        let info = EntrypointInfo {
            name: spec.name.as_str().into(),
            forwarded: spec.forwarded.clone(),
            scheme: "http",
            // Traefik reports the scheme's port when the Host names none.
            default_port: 80,
        };
        tracing::info!(entrypoint = %spec.name, address = %local, "listening");
        servers.push(tokio::spawn(server::serve(
            listener,
            info,
            spec.timeouts.clone(),
            proxy.clone(),
            shutdown_rx.clone(),
        )));
    }

    Ok(Running {
        table,
        draining,
        addresses,
        providers,
        shutdown: shutdown_tx,
        servers,
        background,
        accept_grace,
    })
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
        for task in self.servers {
            let _ = task.await;
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

async fn pipeline(
    mut hub: Hub,
    table: Arc<ArcSwap<RouteTable>>,
    entrypoints: Vec<String>,
    default_entrypoints: Vec<String>,
    transport: TransportConfig,
) {
    let mut generation = 0u64;
    loop {
        let snapshots = hub.current();
        generation += 1;
        let previous = table.load_full();
        let compiled = routing::compile(CompileInput {
            snapshots: &snapshots,
            entrypoints: &entrypoints,
            default_entrypoints: &default_entrypoints,
            default_transport: transport.clone(),
            previous: Some(&previous),
            generation,
        });
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
            "configuration applied"
        );
        table.store(Arc::new(compiled));
        if !hub.changed().await {
            // No provider left (or none configured): the table is final.
            std::future::pending::<()>().await;
        }
    }
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
