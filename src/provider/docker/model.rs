//! What the swarm provider knows of the cluster: small owned types, free of
//! Docker's wire formats.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use bollard::models::{Service, ServiceUpdateStatusStateEnum};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmService {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Network IDs the service's tasks are attached to.
    pub networks: Vec<String>,
    /// The service's virtual IPs, by network ID.
    pub vips: BTreeMap<String, IpAddr>,
    /// `None` for global services.
    pub replicas: Option<u64>,
    /// A rolling update or rollback is under way.
    pub updating: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskAttachment {
    pub network_id: String,
    pub network_name: String,
    pub addresses: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmTask {
    pub id: String,
    pub service_id: String,
    pub node_id: String,
    pub slot: Option<u64>,
    pub desired_state: String,
    pub state: String,
    pub container_id: Option<String>,
    pub attachments: Vec<TaskAttachment>,
}

impl SwarmTask {
    /// Routable as far as swarm is concerned: wanted and running. (Swarm
    /// keeps a task with a HEALTHCHECK in `starting` until it is healthy.)
    pub fn is_running(&self) -> bool {
        self.desired_state == "running" && self.state == "running"
    }

    /// Still moving towards its desired state.
    pub fn is_converging(&self) -> bool {
        match self.desired_state.as_str() {
            "running" => matches!(
                self.state.as_str(),
                "new"
                    | "allocated"
                    | "pending"
                    | "assigned"
                    | "accepted"
                    | "preparing"
                    | "ready"
                    | "starting"
            ),
            // Being stopped: its container may still be up.
            _ => matches!(
                self.state.as_str(),
                "running" | "starting" | "ready" | "preparing" | "assigned" | "accepted"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub id: String,
    pub name: String,
    pub ingress: bool,
}

/// The container escale runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnContainer {
    pub id: String,
    pub service_id: Option<String>,
    /// Network IDs.
    pub networks: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Service,
    Node,
    Container,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEvent {
    pub kind: EventKind,
    pub action: String,
    pub id: String,
    /// For container events: the swarm service the container belongs to.
    pub swarm_service_id: Option<String>,
    pub name: Option<String>,
    /// For `kill` events: the signal sent.
    pub signal: Option<String>,
}

impl ClusterEvent {
    /// Whether the event can change what is routable.
    pub fn is_relevant(&self) -> bool {
        match self.kind {
            EventKind::Service | EventKind::Node => true,
            // Only swarm tasks' containers matter.
            EventKind::Container => self.swarm_service_id.is_some(),
            EventKind::Other => false,
        }
    }

    /// A service change that starts a convergence (create, update, scale).
    pub fn starts_convergence(&self) -> bool {
        self.kind == EventKind::Service
            || (self.kind == EventKind::Container
                && matches!(self.action.as_str(), "die" | "kill" | "stop" | "start"))
    }

    /// A container being stopped or gone: route no more requests to it.
    pub fn container_stopping(&self) -> bool {
        if self.kind != EventKind::Container {
            return false;
        }
        match self.action.as_str() {
            "die" | "stop" | "destroy" => true,
            // A reload signal (HUP, USR1) does not stop the container.
            "kill" => self.signal.as_deref().is_none_or(|s| {
                matches!(s, "2" | "3" | "9" | "15")
                    || matches!(
                        s.trim_start_matches("SIG"),
                        "INT" | "QUIT" | "KILL" | "TERM"
                    )
            }),
            _ => false,
        }
    }

    /// `Some(healthy)` for a container health change.
    pub fn health(&self) -> Option<bool> {
        let status = self.action.strip_prefix("health_status")?;
        let status = status.trim_start_matches(':').trim();
        Some(status == "healthy")
    }
}

pub(crate) fn service_from_bollard(s: Service) -> Option<SwarmService> {
    let id = s.id?;
    let spec = s.spec?;
    let name = spec.name.unwrap_or_else(|| id.clone());
    let mut networks: Vec<String> = Vec::new();
    let task_nets = spec
        .task_template
        .and_then(|t| t.networks)
        .unwrap_or_default();
    for n in task_nets
        .into_iter()
        .chain(spec.networks.unwrap_or_default())
    {
        if let Some(t) = n.target
            && !networks.contains(&t)
        {
            networks.push(t);
        }
    }
    let vips = s
        .endpoint
        .and_then(|e| e.virtual_ips)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| Some((v.network_id?, parse_cidr_ip(&v.addr?)?)))
        .collect();
    let replicas = spec
        .mode
        .and_then(|m| m.replicated)
        .and_then(|r| r.replicas)
        .and_then(|r| u64::try_from(r).ok());
    let updating = matches!(
        s.update_status.and_then(|u| u.state),
        Some(
            ServiceUpdateStatusStateEnum::UPDATING | ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
        )
    );
    Some(SwarmService {
        id,
        name,
        labels: spec.labels.unwrap_or_default().into_iter().collect(),
        networks,
        vips,
        replicas,
        updating,
    })
}

/// `10.0.1.5/24` -> `10.0.1.5`.
pub fn parse_cidr_ip(addr: &str) -> Option<IpAddr> {
    addr.split('/').next()?.parse().ok()
}

// The wire shape of `GET /tasks`, reduced to what escale reads.

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireTask {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "ServiceID")]
    service_id: Option<String>,
    #[serde(rename = "NodeID")]
    node_id: Option<String>,
    slot: Option<u64>,
    desired_state: Option<String>,
    status: Option<WireStatus>,
    #[serde(default)]
    networks_attachments: Vec<WireAttachment>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireStatus {
    state: Option<String>,
    container_status: Option<WireContainerStatus>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireContainerStatus {
    #[serde(rename = "ContainerID")]
    container_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireAttachment {
    network: Option<WireNetwork>,
    #[serde(default)]
    addresses: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireNetwork {
    #[serde(rename = "ID")]
    id: Option<String>,
    spec: Option<WireNetworkSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireNetworkSpec {
    name: Option<String>,
}

pub(crate) fn task_from_wire(t: WireTask) -> Option<SwarmTask> {
    let status = t.status;
    Some(SwarmTask {
        id: t.id?,
        service_id: t.service_id?,
        node_id: t.node_id.unwrap_or_default(),
        slot: t.slot.filter(|s| *s > 0),
        desired_state: t.desired_state.unwrap_or_default(),
        state: status
            .as_ref()
            .and_then(|s| s.state.clone())
            .unwrap_or_default(),
        container_id: status
            .and_then(|s| s.container_status)
            .and_then(|c| c.container_id)
            .filter(|c| !c.is_empty()),
        attachments: t
            .networks_attachments
            .into_iter()
            .filter_map(|a| {
                let net = a.network?;
                Some(TaskAttachment {
                    network_id: net.id?,
                    network_name: net.spec.and_then(|s| s.name).unwrap_or_default(),
                    addresses: a
                        .addresses
                        .iter()
                        .filter_map(|s| parse_cidr_ip(s))
                        .collect(),
                })
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from a real `GET /v1.41/tasks` answer of Engine 20.10.
    const TASKS: &str = r#"[
      {"ID":"lol52dsy7v8fh1sl4nuwkoc9h","Version":{"Index":52},
       "Spec":{"ContainerSpec":{"Image":"cdn:latest"},"Networks":[{"Target":"eop8p"}]},
       "ServiceID":"n8ljuywcox6k","Slot":1,"NodeID":"8mu904sfrqkyv5jv0nbo2r6zh",
       "Status":{"Timestamp":"2024-01-01T00:00:00Z","State":"running","Message":"started",
                 "ContainerStatus":{"ContainerID":"42e51714614c","PID":1234,"ExitCode":0},
                 "PortStatus":{}},
       "DesiredState":"running",
       "NetworksAttachments":[{"Network":{"ID":"eop8pk","Spec":{"Name":"traefik-net","Driver":"overlay"}},
                               "Addresses":["10.201.1.5/24"]}]},
      {"ID":"pending1","ServiceID":"n8ljuywcox6k","Slot":2,"NodeID":"",
       "Status":{"State":"pending"},"DesiredState":"running"},
      {"ID":"broken","Status":{"State":"running"}}
    ]"#;

    #[test]
    fn decodes_tasks_with_their_addresses() {
        let wire: Vec<WireTask> = serde_json::from_str(TASKS).unwrap();
        let tasks: Vec<SwarmTask> = wire.into_iter().filter_map(task_from_wire).collect();
        assert_eq!(tasks.len(), 2, "a task without service is dropped");
        let t = &tasks[0];
        assert!(t.is_running());
        assert!(!t.is_converging());
        assert_eq!(t.slot, Some(1));
        assert_eq!(t.container_id.as_deref(), Some("42e51714614c"));
        assert_eq!(t.attachments[0].network_name, "traefik-net");
        assert_eq!(
            t.attachments[0].addresses,
            vec!["10.201.1.5".parse::<IpAddr>().unwrap()]
        );
        assert!(!tasks[1].is_running());
        assert!(tasks[1].is_converging());
    }

    #[test]
    fn convergence_of_stopping_tasks() {
        let mut t = SwarmTask {
            id: "t".into(),
            service_id: "s".into(),
            node_id: "n".into(),
            slot: Some(1),
            desired_state: "shutdown".into(),
            state: "running".into(),
            container_id: None,
            attachments: vec![],
        };
        assert!(!t.is_running());
        assert!(t.is_converging());
        t.state = "shutdown".into();
        assert!(!t.is_converging());
    }

    #[test]
    fn event_helpers() {
        let e = ClusterEvent {
            kind: EventKind::Container,
            action: "health_status: unhealthy".into(),
            id: "c".into(),
            swarm_service_id: Some("s".into()),
            name: None,
            signal: None,
        };
        assert!(!e.container_stopping());
        let kill = |sig: &str| ClusterEvent {
            action: "kill".into(),
            signal: Some(sig.into()),
            ..e.clone()
        };
        assert!(kill("9").container_stopping());
        assert!(kill("15").container_stopping());
        assert!(!kill("1").container_stopping(), "HUP reloads");
        assert!(!kill("SIGUSR1").container_stopping());
        assert_eq!(e.health(), Some(false));
        assert!(e.is_relevant());
        let plain = ClusterEvent {
            swarm_service_id: None,
            ..e.clone()
        };
        assert!(!plain.is_relevant(), "non-swarm containers are ignored");
        assert_eq!(
            ClusterEvent {
                action: "health_status: healthy".into(),
                ..e
            }
            .health(),
            Some(true)
        );
    }
}
