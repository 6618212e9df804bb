//! The cluster as listed (services, tasks, networks) to a provider snapshot.
//! Pure: the provider loop lists, this decides.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::config::dynamic::{DynamicConfig, Service};
use crate::labels::{self, Endpoint, LabelDefaults, LabelsOutcome};
use crate::provider::docker::{NetworkInfo, OwnContainer, SwarmService, SwarmTask};
use crate::provider::{ConfigIssue, Snapshot};

/// Everything one re-list found.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    pub services: Vec<SwarmService>,
    pub tasks: Vec<SwarmTask>,
    pub networks: BTreeMap<String, NetworkInfo>,
    /// The container escale runs in, when known.
    pub own: Option<OwnContainer>,
    /// Containers not to route to: their last health event said unhealthy,
    /// or they are being stopped or died (events arrive before the task
    /// state changes).
    pub excluded: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct BuildSettings<'a> {
    pub labels: &'a LabelDefaults,
    /// `--providers.swarm.network` / `--docker.network`.
    pub network: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
pub struct Built {
    pub snapshot: Snapshot,
    /// Services whose tasks have not settled (names).
    pub converging: BTreeSet<String>,
}

pub fn build(state: &ClusterState, settings: &BuildSettings) -> Built {
    let mut services: Vec<&SwarmService> = state.services.iter().collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    let mut tasks_by_service: BTreeMap<&str, Vec<&SwarmTask>> = BTreeMap::new();
    for t in &state.tasks {
        tasks_by_service.entry(&t.service_id).or_default().push(t);
    }

    let mut merger = Merger::new(&settings.labels.provider);
    let mut converging = BTreeSet::new();
    for service in services {
        let tasks = tasks_by_service
            .get(service.id.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if is_converging(service, tasks) {
            converging.insert(service.name.clone());
        }
        let is_self = state
            .own
            .as_ref()
            .and_then(|o| o.service_id.as_deref())
            .is_some_and(|id| id == service.id);
        if is_self && !service.labels.keys().any(|k| k.starts_with("traefik.")) {
            // escale's own service, unlabelled: not an application.
            continue;
        }
        let outcome = labels::parse(&service.name, &service.labels, settings.labels);
        merger.issues.extend(outcome.issues.iter().cloned());
        if !outcome.enabled || outcome.servers.is_empty() {
            if outcome.enabled {
                merger.add(&service.name, outcome.config.clone());
            }
            continue;
        }
        let network = match choose_network(service, &outcome, state, settings) {
            Ok(n) => n,
            Err(issue) => {
                merger.issues.push(issue);
                continue;
            }
        };
        let endpoints = endpoints(service, tasks, &network, &outcome, state);
        merger.add(
            &service.name,
            outcome.with_servers(&service.name, &endpoints),
        );
    }

    let (config, mut issues) = merger.finish();
    issues.sort_by(|a, b| (&a.source, &a.key, &a.message).cmp(&(&b.source, &b.key, &b.message)));
    issues.dedup();
    Built {
        snapshot: Snapshot {
            config: Arc::new(config),
            issues,
        },
        converging,
    }
}

fn is_converging(service: &SwarmService, tasks: &[&SwarmTask]) -> bool {
    if service.updating || tasks.iter().any(|t| t.is_converging()) {
        return true;
    }
    let running = tasks.iter().filter(|t| t.is_running()).count() as u64;
    service.replicas.is_some_and(|want| want != running)
}

/// The network the service is reached on: the label's, the provider's, or
/// the only one escale shares with it. Anything ambiguous is an error.
#[allow(clippy::result_large_err)] // Cold path, once per service and re-list.
fn choose_network(
    service: &SwarmService,
    outcome: &LabelsOutcome,
    state: &ClusterState,
    settings: &BuildSettings,
) -> Result<NetworkInfo, ConfigIssue> {
    let provider = settings.labels.provider.as_str();
    let source = format!("swarm service {}", service.name);
    let attached: Vec<NetworkInfo> = service
        .networks
        .iter()
        .map(|id| {
            state.networks.get(id).cloned().unwrap_or(NetworkInfo {
                id: id.clone(),
                name: id.clone(),
                ingress: false,
            })
        })
        .filter(|n| !n.ingress)
        .collect();
    let names = |nets: &[NetworkInfo]| {
        let v: Vec<&str> = nets.iter().map(|n| n.name.as_str()).collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let namespace = service.labels.get("com.docker.stack.namespace");
    let find = |wanted: &str| {
        let prefixed = namespace.map(|ns| format!("{ns}_{wanted}"));
        attached
            .iter()
            .find(|n| n.name == wanted || n.id == wanted)
            .or_else(|| {
                prefixed
                    .as_ref()
                    .and_then(|p| attached.iter().find(|n| &n.name == p))
            })
            .cloned()
    };

    if let Some(label) = &outcome.network {
        return find(&label.name).ok_or_else(|| {
            ConfigIssue::error(
                provider,
                source.clone(),
                format!(
                    "network `{}` is not attached to the service (attached: {}); \
                     the service is not routed",
                    label.name,
                    names(&attached)
                ),
            )
            .with_key(label.key.clone())
        });
    }
    if let Some(wanted) = settings.network {
        return find(wanted).ok_or_else(|| {
            ConfigIssue::error(
                provider,
                source.clone(),
                format!(
                    "the provider's network `{wanted}` is not attached to the service \
                     (attached: {}); attach it or set traefik.swarm.network",
                    names(&attached)
                ),
            )
        });
    }
    let Some(own) = &state.own else {
        return Err(ConfigIssue::error(
            provider,
            source,
            "escale does not run in a container of this engine, so it cannot tell which \
             network it shares with the service: set the provider's network \
             (--providers.swarm.network) or traefik.swarm.network",
        ));
    };
    let shared: Vec<NetworkInfo> = attached
        .iter()
        .filter(|n| own.networks.contains(&n.id))
        .cloned()
        .collect();
    match shared.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ConfigIssue::error(
            provider,
            source,
            format!(
                "the service shares no network with escale (service networks: {}); \
                 attach it to one of escale's networks",
                names(&attached)
            ),
        )),
        several => Err(ConfigIssue::error(
            provider,
            source,
            format!(
                "the service shares several networks with escale ({}); choose one with \
                 traefik.swarm.network or the provider's network",
                names(several)
            ),
        )),
    }
}

fn endpoints(
    service: &SwarmService,
    tasks: &[&SwarmTask],
    network: &NetworkInfo,
    outcome: &LabelsOutcome,
    state: &ClusterState,
) -> Vec<Endpoint> {
    if outcome.lb_swarm {
        return service
            .vips
            .get(&network.id)
            .map(|ip| Endpoint {
                ip: *ip,
                task_id: format!("vip:{}", service.name),
                node_id: String::new(),
                slot: None,
            })
            .into_iter()
            .collect();
    }
    let mut out: Vec<Endpoint> = tasks
        .iter()
        .filter(|t| t.is_running())
        .filter(|t| {
            !t.container_id
                .as_ref()
                .is_some_and(|c| is_excluded(c, &state.excluded))
        })
        .filter_map(|t| {
            let ip: IpAddr = t
                .attachments
                .iter()
                .find(|a| a.network_id == network.id)?
                .addresses
                .first()
                .copied()?;
            Some(Endpoint {
                ip,
                task_id: t.id.clone(),
                node_id: t.node_id.clone(),
                slot: t.slot,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.slot, &a.task_id).cmp(&(b.slot, &b.task_id)));
    out
}

/// Events carry full IDs, tasks may carry either: compare by prefix.
pub fn is_excluded(container: &str, excluded: &BTreeSet<String>) -> bool {
    excluded
        .iter()
        .any(|u| u.starts_with(container) || container.starts_with(u.as_str()))
}

/// The kinds of named objects swarm services may both define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Router,
    Service,
    Middleware,
    ServersTransport,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Router => "router",
            Kind::Service => "service",
            Kind::Middleware => "middleware",
            Kind::ServersTransport => "serversTransport",
        }
    }
}

/// Merges the fragments of every swarm service into one configuration.
/// Swarm services that share a v1 backend name share the service and its
/// servers; any other clash disables the clashing objects.
struct Merger {
    provider: String,
    config: DynamicConfig,
    owners: BTreeMap<(Kind, String), String>,
    clashes: BTreeSet<(Kind, String)>,
    issues: Vec<ConfigIssue>,
}

/// One swarm service's fragment being merged: who defined each name first, and the
/// names this fragment clashes on (kind, name, first owner).
struct Pass<'a> {
    owner: &'a str,
    owners: &'a mut BTreeMap<(Kind, String), String>,
    clashes: Vec<(Kind, String, String)>,
}

impl Pass<'_> {
    /// Adds `new` objects of one kind to `map`. An object already there is kept when
    /// `join` accepts the newcomer (merging it in as it sees fit), else it is a clash.
    fn merge<T>(
        &mut self,
        kind: Kind,
        map: &mut BTreeMap<String, T>,
        new: BTreeMap<String, T>,
        join: impl Fn(&mut T, T) -> bool,
    ) {
        for (name, object) in new {
            match map.get_mut(&name) {
                None => {
                    self.owners
                        .insert((kind, name.clone()), self.owner.to_string());
                    map.insert(name, object);
                }
                Some(existing) => {
                    if !join(existing, object) {
                        let first = self.owners.get(&(kind, name.clone())).cloned();
                        self.clashes.push((kind, name, first.unwrap_or_default()));
                    }
                }
            }
        }
    }
}

/// Services that differ only by their servers are one v1 backend: their servers add up.
fn join_service(existing: &mut Service, new: Service) -> bool {
    let (mut a, mut b) = (existing.clone(), new.clone());
    for lb in [&mut a.load_balancer, &mut b.load_balancer]
        .into_iter()
        .flatten()
    {
        lb.servers.clear();
    }
    if a != b {
        return false;
    }
    if let (Some(lb), Some(new)) = (&mut existing.load_balancer, new.load_balancer) {
        lb.servers.extend(new.servers);
    }
    true
}

fn same<T: PartialEq>(existing: &mut T, new: T) -> bool {
    *existing == new
}

impl Merger {
    fn new(provider: &str) -> Self {
        Merger {
            provider: provider.to_string(),
            config: DynamicConfig::default(),
            owners: BTreeMap::new(),
            clashes: BTreeSet::new(),
            issues: Vec::new(),
        }
    }

    fn clash(&mut self, kind: Kind, name: &str, first: &str, second: &str) {
        let what = kind.label();
        if self.clashes.insert((kind, name.to_string())) {
            for owner in [first, second] {
                self.issues.push(
                    ConfigIssue::error(
                        &self.provider,
                        format!("swarm service {owner}"),
                        format!(
                            "{what} `{name}` is defined differently by swarm services \
                             {first} and {second}; it is disabled"
                        ),
                    )
                    .with_object(format!("{name}@{}", self.provider)),
                );
            }
        }
    }

    fn add(&mut self, owner: &str, fragment: DynamicConfig) {
        let (http, into) = (fragment.http, &mut self.config.http);
        let mut pass = Pass {
            owner,
            owners: &mut self.owners,
            clashes: Vec::new(),
        };
        pass.merge(Kind::Router, &mut into.routers, http.routers, same);
        pass.merge(
            Kind::Service,
            &mut into.services,
            http.services,
            join_service,
        );
        pass.merge(
            Kind::Middleware,
            &mut into.middlewares,
            http.middlewares,
            same,
        );
        let transports = &mut into.servers_transports;
        pass.merge(
            Kind::ServersTransport,
            transports,
            http.servers_transports,
            same,
        );
        for (kind, name, first) in pass.clashes {
            self.clash(kind, &name, &first, owner);
        }
    }

    fn finish(mut self) -> (DynamicConfig, Vec<ConfigIssue>) {
        let http = &mut self.config.http;
        for (kind, name) in &self.clashes {
            match kind {
                Kind::Router => drop(http.routers.remove(name)),
                Kind::Service => drop(http.services.remove(name)),
                Kind::Middleware => drop(http.middlewares.remove(name)),
                Kind::ServersTransport => drop(http.servers_transports.remove(name)),
            }
        }
        for lb in http
            .services
            .values_mut()
            .filter_map(|s| s.load_balancer.as_mut())
        {
            lb.servers.sort_by(|a, b| a.url.cmp(&b.url));
        }
        (self.config, self.issues)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::labels::LabelGeneration;
    use crate::provider::docker::model::TaskAttachment;

    pub fn service(id: &str, name: &str, nets: &[&str], labels: &[(&str, &str)]) -> SwarmService {
        SwarmService {
            id: id.into(),
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            networks: nets.iter().map(|s| s.to_string()).collect(),
            vips: BTreeMap::new(),
            replicas: None,
            updating: false,
        }
    }

    pub fn task(id: &str, service: &str, slot: u64, net: &str, ip: &str) -> SwarmTask {
        SwarmTask {
            id: id.into(),
            service_id: service.into(),
            node_id: "node1".into(),
            slot: Some(slot),
            desired_state: "running".into(),
            state: "running".into(),
            container_id: Some(format!("c-{id}")),
            attachments: vec![TaskAttachment {
                network_id: net.into(),
                network_name: net.into(),
                addresses: vec![ip.parse().unwrap()],
            }],
        }
    }

    pub fn networks(list: &[(&str, &str, bool)]) -> BTreeMap<String, NetworkInfo> {
        list.iter()
            .map(|(id, name, ingress)| {
                (
                    id.to_string(),
                    NetworkInfo {
                        id: id.to_string(),
                        name: name.to_string(),
                        ingress: *ingress,
                    },
                )
            })
            .collect()
    }

    pub fn own(nets: &[&str]) -> Option<OwnContainer> {
        Some(OwnContainer {
            id: "self".into(),
            service_id: Some("proxy".into()),
            networks: nets.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn v1() -> LabelDefaults {
        LabelDefaults::new("docker", LabelGeneration::V1)
    }

    fn seed_cdn_labels() -> Vec<(&'static str, &'static str)> {
        vec![
            ("traefik.backend", "cdn"),
            ("traefik.frontend.rule", "Host:alderaan"),
            ("traefik.port", "80"),
        ]
    }

    /// A cluster whose services all sit on the one overlay `net`, which the proxy shares.
    fn on_one_net(services: Vec<SwarmService>, tasks: Vec<SwarmTask>) -> ClusterState {
        ClusterState {
            services,
            tasks,
            networks: networks(&[("net", "traefik-net", false)]),
            own: own(&["net"]),
            excluded: BTreeSet::new(),
        }
    }

    /// Builds with no provider-wide network.
    fn build_with(state: &ClusterState, labels: &LabelDefaults) -> Built {
        build(
            state,
            &BuildSettings {
                labels,
                network: None,
            },
        )
    }

    fn urls(built: &Built, service: &str) -> Vec<String> {
        built.snapshot.config.http.services[service]
            .load_balancer
            .as_ref()
            .unwrap()
            .servers
            .iter()
            .map(|s| s.url.clone())
            .collect()
    }

    #[test]
    fn routes_running_tasks_on_the_shared_network() {
        let d = v1();
        let mut stopping = task("t3", "s1", 3, "net", "10.201.1.7");
        stopping.desired_state = "shutdown".into();
        let mut starting = task("t4", "s1", 4, "net", "10.201.1.8");
        starting.state = "starting".into();
        let state = on_one_net(
            vec![
                service("s1", "running_cdn", &["net"], &seed_cdn_labels()),
                service("proxy", "proxy", &["net"], &[]),
            ],
            vec![
                task("t2", "s1", 2, "net", "10.201.1.6"),
                task("t1", "s1", 1, "net", "10.201.1.5"),
                stopping,
                starting,
            ],
        );
        let built = build_with(&state, &d);
        assert!(
            built.snapshot.issues.is_empty(),
            "{:?}",
            built.snapshot.issues
        );
        assert_eq!(
            urls(&built, "cdn"),
            vec!["http://10.201.1.5:80", "http://10.201.1.6:80"]
        );
        assert!(built.converging.contains("running_cdn"));
        assert!(!built.snapshot.config.http.routers.contains_key("proxy"));
    }

    #[test]
    fn unhealthy_containers_are_left_out() {
        let d = v1();
        let state = ClusterState {
            excluded: ["c-t2-full-id".to_string()].into_iter().collect(),
            ..on_one_net(
                vec![service("s1", "web", &["net"], &seed_cdn_labels())],
                vec![
                    task("t1", "s1", 1, "net", "10.201.1.5"),
                    task("t2", "s1", 2, "net", "10.201.1.6"),
                ],
            )
        };
        let built = build_with(&state, &d);
        assert_eq!(urls(&built, "cdn"), vec!["http://10.201.1.5:80"]);
    }

    #[test]
    fn network_choice_is_never_a_guess() {
        let d = v1();
        let nets = networks(&[
            ("a", "front", false),
            ("b", "back", false),
            ("i", "ingress", true),
        ]);
        let two = |labels: &[(&str, &str)]| ClusterState {
            services: vec![service("s1", "web", &["a", "b", "i"], labels)],
            tasks: vec![SwarmTask {
                attachments: vec![
                    TaskAttachment {
                        network_id: "a".into(),
                        network_name: "front".into(),
                        addresses: vec!["10.201.1.5".parse().unwrap()],
                    },
                    TaskAttachment {
                        network_id: "b".into(),
                        network_name: "back".into(),
                        addresses: vec!["10.201.2.5".parse().unwrap()],
                    },
                ],
                ..task("t1", "s1", 1, "a", "10.201.1.5")
            }],
            networks: nets.clone(),
            own: own(&["a", "b", "i"]),
            excluded: BTreeSet::new(),
        };
        let settings = BuildSettings {
            labels: &d,
            network: None,
        };
        // Two shared networks: ambiguous.
        let built = build(&two(&seed_cdn_labels()), &settings);
        assert!(built.snapshot.config.http.services.is_empty());
        assert!(
            built.snapshot.issues[0]
                .message
                .contains("several networks"),
            "{:?}",
            built.snapshot.issues
        );
        // The label decides.
        let mut l = seed_cdn_labels();
        l.push(("traefik.docker.network", "back"));
        let built = build(&two(&l), &settings);
        assert_eq!(urls(&built, "cdn"), vec!["http://10.201.2.5:80"]);
        // The provider's network decides.
        let built = build(
            &two(&seed_cdn_labels()),
            &BuildSettings {
                labels: &d,
                network: Some("front"),
            },
        );
        assert_eq!(urls(&built, "cdn"), vec!["http://10.201.1.5:80"]);
        // A label naming a network the service is not on.
        let mut l = seed_cdn_labels();
        l.push(("traefik.docker.network", "nope"));
        let built = build(&two(&l), &settings);
        assert!(built.snapshot.config.http.services.is_empty());
        assert_eq!(
            built.snapshot.issues[0].key.as_deref(),
            Some("traefik.docker.network")
        );
        // No shared network at all (the seed's first attempt).
        let mut lonely = two(&seed_cdn_labels());
        lonely.own = own(&["other"]);
        let built = build(&lonely, &settings);
        assert!(
            built.snapshot.issues[0]
                .message
                .contains("shares no network")
        );
    }

    #[test]
    fn stack_prefixed_network_label() {
        let d = v1();
        let mut l = seed_cdn_labels();
        l.push(("traefik.docker.network", "front"));
        l.push(("com.docker.stack.namespace", "shop"));
        let state = ClusterState {
            services: vec![service("s1", "shop_web", &["a"], &l)],
            tasks: vec![task("t1", "s1", 1, "a", "10.201.1.5")],
            networks: networks(&[("a", "shop_front", false)]),
            own: own(&["a"]),
            excluded: BTreeSet::new(),
        };
        let built = build_with(&state, &d);
        assert_eq!(urls(&built, "cdn"), vec!["http://10.201.1.5:80"]);
    }

    #[test]
    fn shared_v1_backends_merge_and_clashes_disable() {
        let d = v1();
        let state = on_one_net(
            vec![
                service("s1", "cdn_a", &["net"], &seed_cdn_labels()),
                service("s2", "cdn_b", &["net"], &seed_cdn_labels()),
                service(
                    "s3",
                    "other",
                    &["net"],
                    &[
                        ("traefik.backend", "cdn"),
                        ("traefik.frontend.rule", "Host:x"),
                        ("traefik.port", "8080"),
                        ("traefik.backend.loadbalancer.sticky", "true"),
                    ],
                ),
            ],
            vec![
                task("t1", "s1", 1, "net", "10.201.1.5"),
                task("t2", "s2", 1, "net", "10.201.1.6"),
            ],
        );
        let built = build_with(&state, &d);
        // s3 defines `cdn` differently: the service is disabled, and said so.
        assert!(!built.snapshot.config.http.services.contains_key("cdn"));
        assert_eq!(
            built.snapshot.issues.len(),
            2,
            "{:?}",
            built.snapshot.issues
        );
        let state = ClusterState {
            services: state.services[..2].to_vec(),
            ..state
        };
        let built = build_with(&state, &d);
        assert_eq!(
            urls(&built, "cdn"),
            vec!["http://10.201.1.5:80", "http://10.201.1.6:80"]
        );
    }

    #[test]
    fn lbswarm_routes_to_the_vip() {
        let d = LabelDefaults::new("swarm", LabelGeneration::V3);
        let mut s = service(
            "s1",
            "web",
            &["net"],
            &[
                ("traefik.http.services.web.loadbalancer.server.port", "80"),
                ("traefik.swarm.lbswarm", "true"),
            ],
        );
        s.vips.insert("net".into(), "10.201.1.2".parse().unwrap());
        let state = on_one_net(vec![s], vec![task("t1", "s1", 1, "net", "10.201.1.5")]);
        let built = build_with(&state, &d);
        assert_eq!(urls(&built, "web"), vec!["http://10.201.1.2:80"]);
    }

    #[test]
    fn broken_service_does_not_affect_others() {
        let d = v1();
        let state = on_one_net(
            vec![
                service("s1", "good", &["net"], &seed_cdn_labels()),
                service(
                    "s2",
                    "bad",
                    &["net"],
                    &[("traefik.frontend.rule", "Host:y"), ("traefik.port", "x")],
                ),
            ],
            vec![
                task("t1", "s1", 1, "net", "10.201.1.5"),
                task("t2", "s2", 1, "net", "10.201.1.6"),
            ],
        );
        let built = build_with(&state, &d);
        assert_eq!(urls(&built, "cdn"), vec!["http://10.201.1.5:80"]);
        assert!(!built.snapshot.config.http.routers.contains_key("bad"));
        assert_eq!(built.snapshot.issues.len(), 1);
        assert_eq!(built.snapshot.issues[0].source, "swarm service bad");
        assert_eq!(
            built.snapshot.issues[0].key.as_deref(),
            Some("traefik.port")
        );
    }
}
