//! Swarm service labels to the dynamic model, for both label generations.
//!
//! Pure functions, no Docker: a service's name and labels go in, a
//! [`LabelsOutcome`] comes out: routers, services (without servers yet) and
//! middlewares named as Traefik names them, how to build each service's
//! servers from the swarm tasks, and every problem found, each naming the
//! label key. A bad label disables only the router, service or middleware it
//! breaks.
//!
//! - [`v1`]: Traefik 1.x labels (`traefik.frontend.rule`, `traefik.port`, ...).
//! - [`v3`]: Traefik 2.x/3.x labels (`traefik.http.routers.<r>.rule`, ...).
//! - [`constraints`]: the provider's `Label(...)`/`LabelRegex(...)` filter.
//! - [`template`]: the `defaultRule` Go template subset.

pub mod constraints;
pub mod template;
pub mod v1;
pub mod v3;

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::config::dynamic::{DynamicConfig, Server, ServerOrigin};
use crate::provider::ConfigIssue;

pub use constraints::Constraint;
pub use template::{Template, normalize};

/// Which Traefik label syntax a service is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelGeneration {
    /// Traefik 1.x: `traefik.frontend.rule`, `traefik.port`, ...
    V1,
    /// Traefik 2.x and 3.x: `traefik.http.routers.<name>.rule`, ...
    #[default]
    V3,
}

/// The provider settings labels are read with.
#[derive(Debug, Clone)]
pub struct LabelDefaults {
    /// `swarm` (Traefik v3 naming) or `docker` (v1).
    pub provider: String,
    /// The syntax of a service whose labels do not tell (only `traefik.enable`).
    pub generation: LabelGeneration,
    pub exposed_by_default: bool,
    /// v2/v3 routers without a rule get this one.
    pub default_rule: Template,
    /// v1 frontends without a rule get `Host:{service}.{domain}`.
    pub domain: Option<String>,
    pub constraints: Option<Constraint>,
}

impl LabelDefaults {
    pub fn new(provider: &str, generation: LabelGeneration) -> Self {
        LabelDefaults {
            provider: provider.to_string(),
            generation,
            exposed_by_default: true,
            default_rule: default_rule_template(),
            domain: None,
            constraints: None,
        }
    }
}

/// Traefik's default `defaultRule`.
pub const DEFAULT_RULE: &str = "Host(`{{ normalize .Name }}`)";

pub fn default_rule_template() -> Template {
    // A constant that parses: covered by the tests below.
    Template::parse(DEFAULT_RULE).unwrap_or_else(|_| unreachable!("default rule parses"))
}

/// How one service's servers are made from the swarm tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTemplate {
    pub scheme: String,
    pub port: u16,
    pub weight: Option<u32>,
    pub preserve_path: Option<bool>,
}

/// A network chosen by label, with the key that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkLabel {
    pub key: String,
    pub name: String,
}

/// What one swarm service's labels say.
#[derive(Debug, Clone, Default)]
pub struct LabelsOutcome {
    /// False when the service is not exposed (exposedByDefault,
    /// `traefik.enable=false`, constraints): the provider then skips it.
    pub enabled: bool,
    /// The syntax used; `None` when the service is skipped or mixes both.
    pub generation: Option<LabelGeneration>,
    /// Routers, services (no servers yet) and middlewares, unqualified.
    pub config: DynamicConfig,
    /// For each service of `config`, how to build its servers.
    pub servers: BTreeMap<String, ServerTemplate>,
    pub network: Option<NetworkLabel>,
    /// Route to the service's VIP instead of its tasks.
    pub lb_swarm: bool,
    pub issues: Vec<ConfigIssue>,
}

/// One routable task, as the provider found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub task_id: String,
    pub node_id: String,
    pub slot: Option<u64>,
}

impl LabelsOutcome {
    /// The outcome's configuration with one server per endpoint in each service.
    pub fn with_servers(&self, swarm_service: &str, endpoints: &[Endpoint]) -> DynamicConfig {
        let mut config = self.config.clone();
        for (name, service) in config.http.services.iter_mut() {
            let (Some(template), Some(lb)) = (self.servers.get(name), &mut service.load_balancer)
            else {
                continue;
            };
            lb.servers = endpoints
                .iter()
                .map(|e| Server {
                    url: server_url(&template.scheme, e.ip, template.port),
                    weight: template.weight,
                    preserve_path: template.preserve_path,
                    origin: Some(ServerOrigin {
                        task_id: e.task_id.clone(),
                        node_id: e.node_id.clone(),
                        slot: e.slot,
                        swarm_service: Some(swarm_service.to_string()),
                    }),
                    ..Server::default()
                })
                .collect();
        }
        config
    }
}

pub fn server_url(scheme: &str, ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{scheme}://{v4}:{port}"),
        IpAddr::V6(v6) => format!("{scheme}://[{v6}]:{port}"),
    }
}

/// Builds issues for one swarm service.
#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    provider: String,
    source: String,
    pub issues: Vec<ConfigIssue>,
}

impl Reporter {
    pub(crate) fn new(provider: &str, service: &str) -> Self {
        Reporter {
            provider: provider.to_string(),
            source: format!("swarm service {service}"),
            issues: Vec::new(),
        }
    }

    pub(crate) fn qualify(&self, name: &str) -> String {
        format!("{name}@{}", self.provider)
    }

    pub(crate) fn error(&mut self, key: &str, object: Option<&str>, message: impl Into<String>) {
        let mut issue =
            ConfigIssue::error(&self.provider, self.source.clone(), message).with_key(key);
        if let Some(o) = object {
            issue = issue.with_object(self.qualify(o));
        }
        self.issues.push(issue);
    }

    pub(crate) fn warning(&mut self, key: &str, object: Option<&str>, message: impl Into<String>) {
        let mut issue =
            ConfigIssue::warning(&self.provider, self.source.clone(), message).with_key(key);
        if let Some(o) = object {
            issue = issue.with_object(self.qualify(o));
        }
        self.issues.push(issue);
    }
}

/// Go's `strconv.ParseBool`, which Traefik uses for label booleans.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(format!("`{other}` is not a boolean")),
    }
}

/// The part of a label key after `traefik.`, when it has that prefix.
pub(crate) fn traefik_suffix(key: &str) -> Option<&str> {
    let prefix = key.get(..8)?;
    prefix
        .eq_ignore_ascii_case("traefik.")
        .then(|| &key[8..])
        .filter(|rest| !rest.is_empty())
}

/// The first dotted segment of a key, lowercased.
fn head(rest: &str) -> String {
    rest.split('.').next().unwrap_or("").to_ascii_lowercase()
}

/// Keys both generations understand, and how they are read.
enum Shared {
    Enable,
    Network,
    LbSwarm,
}

fn shared_key(rest: &str) -> Option<Shared> {
    match rest.to_ascii_lowercase().as_str() {
        "enable" => Some(Shared::Enable),
        "docker.network" | "swarm.network" => Some(Shared::Network),
        "docker.lbswarm" | "swarm.lbswarm" => Some(Shared::LbSwarm),
        _ => None,
    }
}

fn is_v3_key(rest: &str) -> bool {
    matches!(head(rest).as_str(), "http" | "tcp" | "udp" | "tls")
}

/// Reads a swarm service's labels, whichever generation they are written in.
pub fn parse(
    service: &str,
    labels: &BTreeMap<String, String>,
    defaults: &LabelDefaults,
) -> LabelsOutcome {
    let mut report = Reporter::new(&defaults.provider, service);
    let mut enable: Option<bool> = None;
    let mut network: Option<NetworkLabel> = None;
    let mut lb_swarm = false;
    let mut enable_broken = false;
    let mut v1_keys = Vec::new();
    let mut v3_keys = Vec::new();

    for (key, value) in labels {
        let Some(rest) = traefik_suffix(key) else {
            continue;
        };
        match shared_key(rest) {
            Some(Shared::Enable) => match parse_bool(value) {
                Ok(b) => enable = Some(b),
                Err(e) => {
                    enable_broken = true;
                    report.error(key, None, format!("{e}; the service is not exposed"));
                }
            },
            Some(Shared::Network) => {
                // `traefik.swarm.network` wins over the deprecated docker form.
                let swarm_form = rest.to_ascii_lowercase().starts_with("swarm.");
                if network.is_none() || swarm_form {
                    network = Some(NetworkLabel {
                        key: key.clone(),
                        name: value.trim().to_string(),
                    });
                }
            }
            Some(Shared::LbSwarm) => match parse_bool(value) {
                Ok(b) => lb_swarm = b,
                Err(e) => report.error(key, None, e),
            },
            None if is_v3_key(rest) => v3_keys.push(key.as_str()),
            None if v1::is_v1_key(rest) => v1_keys.push(key.as_str()),
            None => {}
        }
    }

    let enabled = !enable_broken && enable.unwrap_or(defaults.exposed_by_default);
    let constrained_out = defaults
        .constraints
        .as_ref()
        .is_some_and(|c| !c.matches(labels));
    if !enabled || constrained_out {
        return LabelsOutcome {
            enabled: false,
            issues: report.issues,
            ..LabelsOutcome::default()
        };
    }
    if let Some(n) = &network
        && n.name.is_empty()
    {
        report.error(&n.key, None, "the network name is empty");
        network = None;
    }

    if let (false, Some(k3)) = (v1_keys.is_empty(), v3_keys.first()) {
        report.error(
            k3,
            None,
            format!(
                "labels mix Traefik v1 keys ({}) and v2/v3 keys ({}); \
                 a service must use one generation: the service is not exposed",
                v1_keys.join(", "),
                v3_keys.join(", ")
            ),
        );
        return LabelsOutcome {
            enabled: true,
            issues: report.issues,
            ..LabelsOutcome::default()
        };
    }
    let generation = if !v3_keys.is_empty() {
        LabelGeneration::V3
    } else if !v1_keys.is_empty() {
        LabelGeneration::V1
    } else {
        defaults.generation
    };
    let mut outcome = match generation {
        LabelGeneration::V1 => v1::parse(service, labels, defaults),
        LabelGeneration::V3 => v3::parse(service, labels, defaults),
    };
    report.issues.append(&mut outcome.issues);
    outcome.issues = report.issues;
    outcome.network = network;
    outcome.lb_swarm = lb_swarm;
    outcome.generation = Some(generation);
    outcome.enabled = true;
    outcome
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::collections::BTreeMap;

    use super::LabelsOutcome;
    use crate::provider::Severity;

    pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `(key, message)` of each error.
    pub fn errors_of(out: &LabelsOutcome) -> Vec<(String, String)> {
        out.issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| (i.key.clone().unwrap_or_default(), i.message.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::labels;
    use super::*;

    fn v3_defaults() -> LabelDefaults {
        LabelDefaults::new("swarm", LabelGeneration::V3)
    }

    #[test]
    fn default_rule_parses() {
        assert_eq!(default_rule_template().source(), DEFAULT_RULE);
    }

    #[test]
    fn exposure_and_enable() {
        let mut d = v3_defaults();
        d.exposed_by_default = false;
        let out = parse(
            "web",
            &labels(&[("traefik.http.services.web.loadbalancer.server.port", "80")]),
            &d,
        );
        assert!(!out.enabled);
        let out = parse(
            "web",
            &labels(&[
                ("traefik.enable", "true"),
                ("traefik.http.services.web.loadbalancer.server.port", "80"),
            ]),
            &d,
        );
        assert!(out.enabled);
        assert!(out.config.http.routers.contains_key("web"));

        let d = v3_defaults();
        let out = parse("web", &labels(&[("traefik.enable", "false")]), &d);
        assert!(!out.enabled);
        let out = parse("web", &labels(&[("traefik.enable", "yes")]), &d);
        assert!(!out.enabled);
        assert_eq!(out.issues.len(), 1);
        assert_eq!(out.issues[0].key.as_deref(), Some("traefik.enable"));
    }

    #[test]
    fn constraints_filter_services() {
        let mut d = v3_defaults();
        d.constraints = Some(Constraint::parse("Label(`team`, `a`)").unwrap());
        let port = ("traefik.http.services.web.loadbalancer.server.port", "80");
        assert!(!parse("web", &labels(&[port]), &d).enabled);
        assert!(parse("web", &labels(&[port, ("team", "a")]), &d).enabled);
    }

    #[test]
    fn generations_are_detected_and_not_mixed() {
        let d = v3_defaults();
        let v1 = parse(
            "cdn",
            &labels(&[
                ("traefik.port", "80"),
                ("traefik.frontend.rule", "Host:alderaan"),
            ]),
            &d,
        );
        assert_eq!(v1.generation, Some(LabelGeneration::V1));
        let mixed = parse(
            "cdn",
            &labels(&[
                ("traefik.port", "80"),
                ("traefik.http.routers.cdn.rule", "Host(`a`)"),
            ]),
            &d,
        );
        assert_eq!(mixed.generation, None);
        assert!(mixed.config.http.is_empty());
        let e = &mixed.issues[0];
        assert!(e.message.contains("traefik.port"), "{e}");
        assert!(e.message.contains("traefik.http.routers.cdn.rule"), "{e}");
        assert_eq!(e.source, "swarm service cdn");
    }

    #[test]
    fn shared_network_and_lbswarm() {
        let d = v3_defaults();
        let out = parse(
            "web",
            &labels(&[
                ("traefik.docker.network", "old"),
                ("traefik.swarm.network", "new"),
                ("traefik.swarm.lbswarm", "true"),
                ("traefik.http.services.web.loadbalancer.server.port", "80"),
            ]),
            &d,
        );
        assert_eq!(out.network.as_ref().map(|n| n.name.as_str()), Some("new"));
        assert!(out.lb_swarm);
    }

    #[test]
    fn servers_are_built_from_endpoints() {
        let d = v3_defaults();
        let out = parse(
            "web",
            &labels(&[
                ("traefik.http.services.web.loadbalancer.server.port", "8080"),
                (
                    "traefik.http.services.web.loadbalancer.server.scheme",
                    "https",
                ),
            ]),
            &d,
        );
        let eps = vec![
            Endpoint {
                ip: "10.201.1.5".parse().unwrap(),
                task_id: "t1".into(),
                node_id: "n1".into(),
                slot: Some(1),
            },
            Endpoint {
                ip: "fd00::5".parse().unwrap(),
                task_id: "t2".into(),
                node_id: "n1".into(),
                slot: Some(2),
            },
        ];
        let cfg = out.with_servers("web", &eps);
        let servers = &cfg.http.services["web"]
            .load_balancer
            .as_ref()
            .unwrap()
            .servers;
        assert_eq!(servers[0].url, "https://10.201.1.5:8080");
        assert_eq!(servers[1].url, "https://[fd00::5]:8080");
        let origin = servers[0].origin.as_ref().unwrap();
        assert_eq!(origin.task_id, "t1");
        assert_eq!(origin.swarm_service.as_deref(), Some("web"));
    }
}
