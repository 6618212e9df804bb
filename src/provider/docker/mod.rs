//! A thin Docker client for the swarm provider.
//!
//! bollard (with `negotiate_version`) reads services, networks, containers and
//! the event stream. Tasks are read with a GET of our own ([`raw`]), because
//! bollard's typed `Task` drops `NetworksAttachments`, where the task IPs are.
//! Everything is turned into the small owned types of [`model`], so the rest of
//! the provider never sees Docker's wire types.

pub mod model;
pub mod raw;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use bollard::models::EventMessageTypeEnum;
use bollard::query_parameters::EventsOptions;
use futures_util::{Stream, StreamExt};

pub use model::{ClusterEvent, NetworkInfo, OwnContainer, SwarmService, SwarmTask};

/// Docker's own default, and Traefik's `providers.swarm.endpoint` default.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// Where the Docker API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `host:port` of a plain-HTTP API (a socket proxy).
    Tcp(String),
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, DockerError> {
        if let Some(path) = s.strip_prefix("unix://") {
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        for scheme in ["tcp://", "http://"] {
            if let Some(addr) = s.strip_prefix(scheme) {
                let addr = addr.trim_end_matches('/');
                if addr.is_empty() {
                    break;
                }
                return Ok(Endpoint::Tcp(addr.to_string()));
            }
        }
        if s.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(s)));
        }
        Err(DockerError::Endpoint(s.to_string()))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("unsupported docker endpoint `{0}` (use unix:///path or tcp://host:port)")]
    Endpoint(String),
    #[error("docker: {0}")]
    Bollard(#[from] bollard::errors::Error),
    #[error("docker {path}: {source}")]
    Raw {
        path: String,
        #[source]
        source: raw::RawError,
    },
    #[error("docker {path}: bad response: {source}")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("docker event stream ended")]
    StreamEnded,
}

/// Seconds bollard waits for a response head.
const REQUEST_TIMEOUT_SECS: u64 = 10;

#[derive(Debug, Clone)]
pub struct DockerClient {
    docker: Docker,
    raw: raw::RawClient,
    /// `/v1.41`: the negotiated API version, for our own requests.
    version_prefix: String,
}

impl DockerClient {
    /// Connects and negotiates the API version with the engine.
    pub async fn connect(endpoint: &Endpoint) -> Result<DockerClient, DockerError> {
        let version = bollard::API_DEFAULT_VERSION;
        let docker = match endpoint {
            Endpoint::Unix(path) => {
                Docker::connect_with_unix(&path.to_string_lossy(), REQUEST_TIMEOUT_SECS, version)?
            }
            Endpoint::Tcp(addr) => {
                Docker::connect_with_http(&format!("http://{addr}"), REQUEST_TIMEOUT_SECS, version)?
            }
        };
        let docker = docker.negotiate_version().await?;
        let v = docker.client_version();
        Ok(DockerClient {
            docker,
            raw: raw::RawClient::new(endpoint.clone(), Duration::from_secs(REQUEST_TIMEOUT_SECS)),
            version_prefix: format!("/v{}.{}", v.major_version, v.minor_version),
        })
    }

    pub fn api_version(&self) -> &str {
        self.version_prefix.trim_start_matches("/v")
    }

    pub async fn services(&self) -> Result<Vec<SwarmService>, DockerError> {
        let services = self.docker.list_services(None).await?;
        Ok(services
            .into_iter()
            .filter_map(model::service_from_bollard)
            .collect())
    }

    /// Every task of the swarm, with its network attachments.
    pub async fn tasks(&self) -> Result<Vec<SwarmTask>, DockerError> {
        let path = format!("{}/tasks", self.version_prefix);
        let body = self
            .raw
            .get(&path)
            .await
            .map_err(|source| DockerError::Raw {
                path: path.clone(),
                source,
            })?;
        let wire: Vec<model::WireTask> =
            serde_json::from_slice(&body).map_err(|source| DockerError::Decode { path, source })?;
        Ok(wire.into_iter().filter_map(model::task_from_wire).collect())
    }

    pub async fn networks(&self) -> Result<BTreeMap<String, NetworkInfo>, DockerError> {
        let networks = self.docker.list_networks(None).await?;
        Ok(networks
            .into_iter()
            .filter_map(|n| {
                let id = n.id?;
                Some((
                    id.clone(),
                    NetworkInfo {
                        id,
                        name: n.name.unwrap_or_default(),
                        ingress: n.ingress.unwrap_or(false),
                    },
                ))
            })
            .collect())
    }

    /// The container escale runs in, when it runs in one on this engine.
    pub async fn own_container(&self) -> Result<Option<OwnContainer>, DockerError> {
        let candidates = own_container_candidates();
        for id in candidates {
            match self.docker.inspect_container(&id, None).await {
                Ok(c) => {
                    let networks: BTreeSet<String> = c
                        .network_settings
                        .and_then(|s| s.networks)
                        .map(|n| n.into_values().filter_map(|e| e.network_id).collect())
                        .unwrap_or_default();
                    let labels: HashMap<String, String> =
                        c.config.and_then(|c| c.labels).unwrap_or_default();
                    return Ok(Some(OwnContainer {
                        id: c.id.unwrap_or(id),
                        service_id: labels.get("com.docker.swarm.service.id").cloned(),
                        networks,
                    }));
                }
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Service, node and container events that may change what is routable.
    pub fn events(&self) -> impl Stream<Item = Result<ClusterEvent, DockerError>> + use<> {
        let mut filters = HashMap::new();
        filters.insert(
            "type".to_string(),
            vec!["service".into(), "node".into(), "container".into()],
        );
        // Container events minus the noisy exec_* ones healthchecks make.
        filters.insert(
            "event".to_string(),
            [
                "create",
                "update",
                "remove",
                "start",
                "die",
                "kill",
                "stop",
                "destroy",
                "health_status",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        );
        let stream = self.docker.events(Some(EventsOptions {
            filters: Some(filters),
            ..EventsOptions::default()
        }));
        stream.map(|r| {
            r.map_err(DockerError::from).map(|e| {
                let attrs = e.actor.as_ref().and_then(|a| a.attributes.as_ref());
                let attr = |k: &str| attrs.and_then(|a| a.get(k)).cloned();
                ClusterEvent {
                    kind: match e.typ {
                        Some(EventMessageTypeEnum::SERVICE) => model::EventKind::Service,
                        Some(EventMessageTypeEnum::NODE) => model::EventKind::Node,
                        Some(EventMessageTypeEnum::CONTAINER) => model::EventKind::Container,
                        _ => model::EventKind::Other,
                    },
                    action: e.action.clone().unwrap_or_default(),
                    id: e
                        .actor
                        .as_ref()
                        .and_then(|a| a.id.clone())
                        .unwrap_or_default(),
                    swarm_service_id: attr("com.docker.swarm.service.id"),
                    name: attr("name"),
                    signal: attr("signal"),
                }
            })
        })
    }
}

/// Container IDs escale may be running in: from the mounts Docker makes for
/// every container (`/var/lib/docker/containers/<id>/hostname`), then the
/// hostname, which Docker sets to the short ID unless told otherwise.
fn own_container_candidates() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") {
        for id in container_ids_in_mountinfo(&mountinfo) {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim().to_string();
        if host.len() >= 12 && host.bytes().all(|b| b.is_ascii_hexdigit()) && !out.contains(&host) {
            out.push(host);
        }
    }
    out
}

pub fn container_ids_in_mountinfo(mountinfo: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        for field in line.split_whitespace() {
            if let Some(pos) = field.find("/containers/") {
                let rest = &field[pos + "/containers/".len()..];
                let id: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
                if id.len() == 64 && !out.contains(&id) {
                    out.push(id);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("unix:///var/run/docker.sock").unwrap(),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://socket-proxy:2375").unwrap(),
            Endpoint::Tcp("socket-proxy:2375".into())
        );
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:2375/").unwrap(),
            Endpoint::Tcp("127.0.0.1:2375".into())
        );
        assert!(Endpoint::parse("ssh://host").is_err());
        assert!(Endpoint::parse("tcp://").is_err());
    }

    #[test]
    fn finds_container_id_in_mountinfo() {
        let id = "4ffd8bbcb2827f0a6b2c4c1d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081";
        let text = format!(
            "1 0 0:1 / / rw - overlay overlay rw\n\
             612 600 8:1 /var/lib/docker/containers/{id}/resolv.conf /etc/resolv.conf rw - ext4 /dev/sda1 rw\n\
             613 600 8:1 /var/lib/docker/containers/{id}/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n"
        );
        assert_eq!(container_ids_in_mountinfo(&text), vec![id.to_string()]);
        assert!(container_ids_in_mountinfo("1 0 0:1 / / rw - ext4 /dev/sda1 rw").is_empty());
    }
}
