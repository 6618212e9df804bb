//! `escale check` and `escale healthcheck`: validate a configuration the way
//! the proxy would load it, and probe a running proxy's `/ping`.

use std::sync::Arc;
use std::time::Duration;

use crate::config::static_config::StaticConfig;
use crate::provider::{ConfigIssue, Snapshot, file, swarm};
use crate::proxy::transport::TransportConfig;
use crate::routing::{self, CompileInput};

/// Loads the dynamic configuration of every configured provider (files,
/// and the live labels of the swarm when that provider is on), compiles it,
/// and returns every problem found.
pub fn check_dynamic(config: &StaticConfig) -> Vec<ConfigIssue> {
    let mut snapshots: Vec<(String, Arc<Snapshot>)> = Vec::new();
    if let Some(swarm) = crate::app::AppConfig::from_static(config).swarm {
        let listed = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(swarm::snapshot_once(&swarm)));
        let provider = swarm.provider_name();
        match listed {
            Ok(mut snap) => {
                // Run from a host shell, escale is in no container: which
                // network it would share with a service cannot be checked.
                snap.issues
                    .retain(|i| !i.message.starts_with("escale does not run in a container"));
                snapshots.push((provider.to_string(), Arc::new(snap)));
            }
            Err(e) => {
                let mut snap = Snapshot::default();
                snap.issues.push(ConfigIssue::error(
                    provider,
                    format!("docker {}", swarm.endpoint),
                    format!("cannot list the swarm: {e}"),
                ));
                snapshots.push((provider.to_string(), Arc::new(snap)));
            }
        }
    }
    if let Some(f) = &config.providers.file {
        let mut last_good = Default::default();
        snapshots.push((
            file::PROVIDER.to_string(),
            Arc::new(file::load(&f.source, &mut last_good)),
        ));
    }
    let entrypoints: Vec<String> = config.entry_points.keys().cloned().collect();
    let table = routing::compile(CompileInput {
        snapshots: &snapshots,
        entrypoints: &entrypoints,
        default_entrypoints: &config.default_entry_points(),
        tls_entrypoints: &config
            .entry_points
            .iter()
            .filter(|(_, e)| e.tls.is_some())
            .map(|(n, _)| n.clone())
            .collect::<Vec<_>>(),
        default_transport: TransportConfig::default(),
        previous: None,
        generation: 1,
    });
    let mut issues = table.issues;
    if table.model.tls.is_some() {
        match crate::tls::generate_default() {
            Ok(default) => {
                issues.extend(crate::tls::CertStore::build(table.model.tls.as_ref(), default).1)
            }
            Err(e) => issues.push(ConfigIssue::error("file", "tls", e.to_string())),
        }
    }
    if let Some(tls) = &table.model.tls {
        for (name, e) in crate::tls::options::check(&tls.options) {
            issues.push(
                ConfigIssue::error("file", format!("tls options {name}"), e)
                    .with_key(format!("tls.options.{name}")),
            );
        }
    }
    issues
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("ping is not enabled (use --ping)")]
    PingDisabled,
    #[error("the ping entrypoint `{0}` is not defined")]
    NoEntrypoint(String),
    #[error(transparent)]
    Probe(#[from] crate::admin::healthcheck::ProbeError),
}

/// Sends `GET /ping` to the ping entrypoint on this host.
pub fn probe_ping(config: &StaticConfig) -> Result<(), ProbeError> {
    let ping = config.ping.as_ref().ok_or(ProbeError::PingDisabled)?;
    let ep = config
        .entry_points
        .get(&ping.entry_point)
        .ok_or_else(|| ProbeError::NoEntrypoint(ping.entry_point.clone()))?;
    crate::admin::healthcheck::probe(ep.address, Duration::from_secs(5))?;
    Ok(())
}
