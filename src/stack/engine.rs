//! The Docker calls the stack needs, through bollard. Everything here is a
//! thin, typed wrapper; decisions are made in `diff` and `apply`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use bollard::Docker;
use bollard::models::{NetworkCreateRequest, Service, ServiceSpec, Task};
use bollard::query_parameters::{
    InspectServiceOptions, ListConfigsOptions, ListNetworksOptions, ListSecretsOptions,
    ListServicesOptions, ListTasksOptions, UpdateServiceOptions,
};

use super::diff::{Current, CurrentNetwork, CurrentService};
use super::model::{Desired, DesiredNetwork, Facts, OWNER_LABEL, Wants};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the Docker engine: {0}")]
    Connect(#[source] bollard::errors::Error),
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: bollard::errors::Error,
    },
}

fn api(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> EngineError {
    let what = what.into();
    move |source| EngineError::Api { what, source }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A connection to the local engine, at the API version it speaks.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

fn filters(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in pairs {
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    m
}

impl Engine {
    /// Connects through `DOCKER_HOST` or the local socket, then negotiates
    /// the API version (the engine here speaks 1.41).
    pub async fn connect() -> Result<Engine, EngineError> {
        let docker = Docker::connect_with_defaults().map_err(EngineError::Connect)?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(EngineError::Connect)?;
        Ok(Engine { docker })
    }

    /// The images, bind sources, secrets, configs and foreign published ports
    /// a stack's validation needs.
    pub async fn facts(
        &self,
        wants: &Wants,
        owner: &str,
        require_local_images: bool,
    ) -> Result<Facts, EngineError> {
        let mut f = Facts {
            require_local_images,
            ..Facts::default()
        };
        for image in &wants.images {
            match self.docker.inspect_image(image).await {
                Ok(_) => {
                    f.images.insert(image.clone());
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api(format!("inspecting image {image}"))(e)),
            }
        }
        for p in &wants.paths {
            if Path::new(p).exists() {
                f.paths.insert(p.clone());
            }
        }
        for s in self
            .docker
            .list_secrets(None::<ListSecretsOptions>)
            .await
            .map_err(api("listing secrets"))?
        {
            if let (Some(id), Some(name)) = (s.id, s.spec.and_then(|sp| sp.name)) {
                f.secrets.insert(name, id);
            }
        }
        for c in self
            .docker
            .list_configs(None::<ListConfigsOptions>)
            .await
            .map_err(api("listing configs"))?
        {
            if let (Some(id), Some(name)) = (c.id, c.spec.and_then(|sp| sp.name)) {
                f.configs.insert(name, id);
            }
        }
        let mut own_ports = Vec::new();
        for s in self.all_services().await? {
            let labels = s
                .spec
                .as_ref()
                .and_then(|sp| sp.labels.clone())
                .unwrap_or_default();
            if labels.get(OWNER_LABEL).map(String::as_str) == Some(owner) {
                let ports = s
                    .spec
                    .as_ref()
                    .and_then(|sp| sp.endpoint_spec.as_ref())
                    .and_then(|e| e.ports.clone())
                    .unwrap_or_default();
                own_ports.extend(ports.iter().filter_map(|p| p.published_port));
                continue;
            }
            let name = s
                .spec
                .as_ref()
                .and_then(|sp| sp.name.clone())
                .unwrap_or_default();
            let ports = s
                .spec
                .as_ref()
                .and_then(|sp| sp.endpoint_spec.as_ref())
                .and_then(|e| e.ports.clone())
                .unwrap_or_default();
            for p in ports {
                if let Some(pp) = p.published_port.filter(|p| *p > 0) {
                    let proto = p
                        .protocol
                        .map(|x| x.to_string())
                        .filter(|x| !x.is_empty())
                        .unwrap_or_else(|| "tcp".into());
                    f.foreign_ports.insert((pp as u16, proto), name.clone());
                }
            }
        }
        let listening = listening_ports();
        for &port in &wants.host_ports {
            if !own_ports.contains(&i64::from(port)) && listening.contains(&port) {
                f.busy_ports.insert(port);
            }
        }
        Ok(f)
    }

    async fn all_services(&self) -> Result<Vec<Service>, EngineError> {
        self.docker
            .list_services(None::<ListServicesOptions>)
            .await
            .map_err(api("listing services"))
    }

    /// Services owned by `desired.owner` or holding one of the desired
    /// names, and every network.
    pub async fn current(&self, desired: &Desired) -> Result<Current, EngineError> {
        self.current_for(
            &desired.owner,
            desired.services.iter().map(|s| s.name.as_str()),
        )
        .await
    }

    pub async fn current_for<'a>(
        &self,
        owner: &str,
        service_names: impl Iterator<Item = &'a str>,
    ) -> Result<Current, EngineError> {
        let label = format!("{OWNER_LABEL}={owner}");
        let owned = self
            .docker
            .list_services(Some(ListServicesOptions {
                filters: Some(filters(&[("label", &label)])),
                status: None,
            }))
            .await
            .map_err(api("listing the stack's services"))?;
        let mut cur = Current::default();
        for s in owned {
            cur.services.push(current_service(s));
        }
        for name in service_names {
            if cur.services.iter().any(|s| s.name == name) {
                continue;
            }
            match self
                .docker
                .inspect_service(name, None::<InspectServiceOptions>)
                .await
            {
                Ok(s) => cur.services.push(current_service(s)),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api(format!("inspecting service {name}"))(e)),
            }
        }
        let nets = self
            .docker
            .list_networks(None::<ListNetworksOptions>)
            .await
            .map_err(api("listing networks"))?;
        for n in nets {
            let labels: BTreeMap<String, String> =
                n.labels.clone().unwrap_or_default().into_iter().collect();
            let name = n.name.clone().unwrap_or_default();
            // Every network is kept, owned or not: stored specs name them by ID.
            cur.networks.push(CurrentNetwork {
                id: n.id.unwrap_or_default(),
                name,
                attachable: n.attachable.unwrap_or(false),
                internal: n.internal.unwrap_or(false),
                labels,
            });
        }
        Ok(cur)
    }

    pub async fn create_network(&self, n: &DesiredNetwork) -> Result<String, EngineError> {
        let req = NetworkCreateRequest {
            name: n.name.clone(),
            driver: Some("overlay".into()),
            attachable: Some(n.attachable),
            internal: Some(n.internal),
            labels: Some(n.labels.clone().into_iter().collect()),
            ..NetworkCreateRequest::default()
        };
        let r = self
            .docker
            .create_network(req)
            .await
            .map_err(api(format!("creating network {}", n.name)))?;
        Ok(r.id)
    }

    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api(format!("removing network {name}"))(e)),
        }
    }

    /// Whether a network by that name (or id) still exists.
    pub async fn network_exists(&self, name: &str) -> Result<bool, EngineError> {
        match self
            .docker
            .inspect_network(
                name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(api(format!("inspecting network {name}"))(e)),
        }
    }

    pub async fn create_service(&self, spec: ServiceSpec) -> Result<String, EngineError> {
        let name = spec.name.clone().unwrap_or_default();
        let r = self
            .docker
            .create_service(spec, None)
            .await
            .map_err(api(format!("creating service {name}")))?;
        Ok(r.id.unwrap_or_default())
    }

    pub async fn update_service(
        &self,
        id: &str,
        version: u64,
        spec: ServiceSpec,
    ) -> Result<Vec<String>, EngineError> {
        let name = spec.name.clone().unwrap_or_default();
        let opts = UpdateServiceOptions {
            version: i32::try_from(version).unwrap_or(i32::MAX),
            ..UpdateServiceOptions::default()
        };
        let r = self
            .docker
            .update_service(id, spec, opts, None)
            .await
            .map_err(api(format!("updating service {name}")))?;
        Ok(r.warnings.unwrap_or_default())
    }

    pub async fn remove_service(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.delete_service(name).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api(format!("removing service {name}"))(e)),
        }
    }

    pub async fn inspect_service(&self, name: &str) -> Result<Option<Service>, EngineError> {
        match self
            .docker
            .inspect_service(name, None::<InspectServiceOptions>)
            .await
        {
            Ok(s) => Ok(Some(s)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(api(format!("inspecting service {name}"))(e)),
        }
    }

    pub async fn tasks(&self, service: &str) -> Result<Vec<Task>, EngineError> {
        self.docker
            .list_tasks(Some(ListTasksOptions {
                filters: Some(filters(&[("service", service)])),
            }))
            .await
            .map_err(api(format!("listing tasks of {service}")))
    }

    /// Task containers of a service still running (they outlive its removal
    /// for their stop grace period, and hold network endpoints meanwhile).
    /// Exited ones hold nothing, and swarm reaps them on its own schedule.
    pub async fn service_containers(&self, service: &str) -> Result<usize, EngineError> {
        let label = format!("com.docker.swarm.service.name={service}");
        let list = self
            .docker
            .list_containers(Some(bollard::query_parameters::ListContainersOptions {
                all: false,
                filters: Some(filters(&[("label", &label)])),
                ..Default::default()
            }))
            .await
            .map_err(api(format!("listing containers of {service}")))?;
        Ok(list.len())
    }
}

/// TCP ports something listens on in this host's network namespace, from
/// /proc/net/tcp{,6} (empty elsewhere). Reading, not binding: a bind test
/// would race with another `escale stack` doing the same check.
fn listening_ports() -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        ports.extend(parse_listening(&text));
    }
    ports
}

/// Lines read `sl local_address rem_address st ...`, addresses as
/// `HEXADDR:HEXPORT`; state 0A is LISTEN.
fn parse_listening(text: &str) -> Vec<u16> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            let local = cols.nth(1)?;
            let state = cols.nth(1)?;
            if state != "0A" {
                return None;
            }
            u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
        })
        .collect()
}

fn current_service(s: Service) -> CurrentService {
    let spec = s.spec.unwrap_or_default();
    CurrentService {
        id: s.id.unwrap_or_default(),
        name: spec.name.clone().unwrap_or_default(),
        version: s.version.and_then(|v| v.index).unwrap_or(0),
        labels: spec
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        spec,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_ports_from_proc() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4A50 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:4A51 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
";
        assert_eq!(parse_listening(text), [0x4A50]);
        let text6 = "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000
";
        assert_eq!(parse_listening(text6), [8080]);
    }

    #[test]
    fn a_listener_here_is_seen() {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(listening_ports().contains(&port));
        drop(l);
        assert!(!listening_ports().contains(&port));
    }
}
