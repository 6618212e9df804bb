//! A validated service definition → the swarm `ServiceSpec` sent to Docker.
//! Empty settings are left out (`None`) rather than sent as empty values, so
//! that what Docker stores back is what the diff expects.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, HealthConfig, Limit,
    Mount, MountType, NetworkAttachmentConfig, ResourceObject, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecRollbackConfig, ServiceSpecUpdateConfig, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile,
    TaskSpecContainerSpecFile1, TaskSpecContainerSpecSecrets, TaskSpecPlacement, TaskSpecResources,
    TaskSpecRestartPolicy,
};

use super::file::{FileRef, Health, Publish, ServiceDef, UpdatePolicy};

/// Everything about a service that is not in its definition: its full name,
/// labels, networks, and the IDs of the secrets and configs it uses.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Full network name → aliases on it.
    pub networks: Vec<(String, Vec<String>)>,
    pub secret_ids: BTreeMap<String, String>,
    pub config_ids: BTreeMap<String, String>,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

pub fn service_spec(def: &ServiceDef, x: &Extras) -> ServiceSpec {
    let env: Vec<String> = sorted_env(def)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mounts: Vec<Mount> = def
        .mounts
        .iter()
        .map(|m| {
            let m = &m.value;
            Mount {
                target: Some(m.target.clone()),
                source: Some(m.source.clone()),
                typ: Some(if m.kind == "bind" {
                    MountType::BIND
                } else {
                    MountType::VOLUME
                }),
                read_only: m.readonly.then_some(true),
                ..Mount::default()
            }
        })
        .collect();
    let secrets: Vec<TaskSpecContainerSpecSecrets> = def
        .secrets
        .iter()
        .map(|s| secret_ref(&s.value, &x.secret_ids))
        .collect();
    let configs: Vec<TaskSpecContainerSpecConfigs> = def
        .configs
        .iter()
        .map(|c| config_ref(&c.value, &x.config_ids))
        .collect();
    let container = TaskSpecContainerSpec {
        image: def.image.as_ref().map(|i| i.value.clone()),
        command: def.command.clone(),
        args: def.args.clone(),
        hostname: def.hostname.clone(),
        env: non_empty(env),
        dir: def.workdir.clone(),
        user: def.user.clone(),
        mounts: non_empty(mounts),
        stop_grace_period: def.stop_grace_period.map(nanos),
        health_check: def.healthcheck.as_ref().map(health),
        secrets: non_empty(secrets),
        configs: non_empty(configs),
        ..TaskSpecContainerSpec::default()
    };
    let r = &def.resources;
    let limits = (r.cpus.is_some() || r.memory.is_some()).then(|| Limit {
        nano_cpus: r.cpus.map(cpus_to_nanos),
        memory_bytes: r.memory,
        pids: None,
    });
    let reservations =
        (r.reserve_cpus.is_some() || r.reserve_memory.is_some()).then(|| ResourceObject {
            nano_cpus: r.reserve_cpus.map(cpus_to_nanos),
            memory_bytes: r.reserve_memory,
            generic_resources: None,
        });
    let resources = (limits.is_some() || reservations.is_some()).then(|| TaskSpecResources {
        limits,
        reservations,
        ..TaskSpecResources::default()
    });
    let networks: Vec<NetworkAttachmentConfig> = x
        .networks
        .iter()
        .map(|(n, aliases)| NetworkAttachmentConfig {
            target: Some(n.clone()),
            aliases: non_empty(aliases.clone()),
            driver_opts: None,
        })
        .collect();
    let task = TaskSpec {
        container_spec: Some(container),
        resources,
        restart_policy: def.restart.as_ref().map(|r| TaskSpecRestartPolicy {
            condition: r.condition.as_deref().and_then(|c| c.parse().ok()),
            delay: r.delay.map(nanos),
            max_attempts: r.max_attempts,
            window: None,
        }),
        placement: non_empty(def.constraints.clone()).map(|c| TaskSpecPlacement {
            constraints: Some(c),
            ..TaskSpecPlacement::default()
        }),
        networks: non_empty(networks),
        ..TaskSpec::default()
    };
    let mode = match def.replicas {
        Some(n) => ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(n as i64),
            }),
            ..ServiceSpecMode::default()
        },
        None => ServiceSpecMode {
            global: Some(HashMap::new()),
            ..ServiceSpecMode::default()
        },
    };
    let ports: Vec<EndpointPortConfig> = def.publish.iter().map(|p| port(&p.value)).collect();
    let endpoint = (def.endpoint_mode.is_some() || !ports.is_empty()).then(|| EndpointSpec {
        mode: def.endpoint_mode.as_deref().and_then(|m| m.parse().ok()),
        ports: non_empty(ports),
    });
    ServiceSpec {
        name: Some(x.name.clone()),
        labels: Some(x.labels.clone().into_iter().collect()),
        task_template: Some(task),
        mode: Some(mode),
        update_config: def.update.as_ref().map(update_config),
        rollback_config: def.rollback.as_ref().map(rollback_config),
        networks: None,
        endpoint_spec: endpoint,
    }
}

/// Env in name order, later definitions winning (template, tenant, override).
pub fn sorted_env(def: &ServiceDef) -> BTreeMap<String, String> {
    def.env
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect()
}

fn cpus_to_nanos(c: f64) -> i64 {
    (c * 1e9).round() as i64
}

fn port(p: &Publish) -> EndpointPortConfig {
    EndpointPortConfig {
        name: None,
        protocol: p.protocol.parse().ok(),
        target_port: Some(p.target.into()),
        published_port: Some(p.published.into()),
        publish_mode: Some(if p.mode == "ingress" {
            EndpointPortConfigPublishModeEnum::INGRESS
        } else {
            EndpointPortConfigPublishModeEnum::HOST
        }),
    }
}

/// Secrets and configs get the file owner and mode `docker service create` gives them.
fn secret_ref(f: &FileRef, ids: &BTreeMap<String, String>) -> TaskSpecContainerSpecSecrets {
    TaskSpecContainerSpecSecrets {
        file: Some(TaskSpecContainerSpecFile {
            name: Some(f.target.clone()),
            uid: Some("0".into()),
            gid: Some("0".into()),
            mode: Some(0o444),
        }),
        secret_id: ids.get(&f.source).cloned(),
        secret_name: Some(f.source.clone()),
    }
}

fn config_ref(f: &FileRef, ids: &BTreeMap<String, String>) -> TaskSpecContainerSpecConfigs {
    TaskSpecContainerSpecConfigs {
        file: Some(TaskSpecContainerSpecFile1 {
            name: Some(f.target.clone()),
            uid: Some("0".into()),
            gid: Some("0".into()),
            mode: Some(0o444),
        }),
        runtime: None,
        config_id: ids.get(&f.source).cloned(),
        config_name: Some(f.source.clone()),
    }
}

fn health(h: &Health) -> HealthConfig {
    HealthConfig {
        test: Some(h.test.clone()),
        interval: h.interval.map(nanos),
        timeout: h.timeout.map(nanos),
        retries: h.retries,
        start_period: h.start_period.map(nanos),
        start_interval: None,
    }
}

/// One task at a time unless said otherwise, as `docker service create`
/// does; the API alone would read a missing value as "all at once".
fn parallelism(u: &UpdatePolicy) -> Option<i64> {
    Some(u.parallelism.unwrap_or(1))
}

fn update_config(u: &UpdatePolicy) -> ServiceSpecUpdateConfig {
    ServiceSpecUpdateConfig {
        parallelism: parallelism(u),
        delay: u.delay.map(nanos),
        failure_action: u.failure_action.as_deref().and_then(|a| a.parse().ok()),
        monitor: u.monitor.map(nanos),
        max_failure_ratio: u.max_failure_ratio,
        order: u.order.as_deref().and_then(|o| o.parse().ok()),
    }
}

fn rollback_config(u: &UpdatePolicy) -> ServiceSpecRollbackConfig {
    ServiceSpecRollbackConfig {
        parallelism: parallelism(u),
        delay: u.delay.map(nanos),
        failure_action: u.failure_action.as_deref().and_then(|a| a.parse().ok()),
        monitor: u.monitor.map(nanos),
        max_failure_ratio: u.max_failure_ratio,
        order: u.order.as_deref().and_then(|o| o.parse().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::decode::At;
    use crate::stack::file::{MountDef, Resources};

    #[test]
    fn builds_a_full_spec() {
        let def = ServiceDef {
            name: At::new("cdn".into(), 1),
            image: Some(At::new("nginx:1.27".into(), 2)),
            replicas: Some(2),
            args: Some(vec!["-g".into(), "daemon off;".into()]),
            env: vec![
                ("B".into(), At::new("2".into(), 3)),
                ("A".into(), At::new("1".into(), 3)),
            ],
            mounts: vec![At::new(
                MountDef {
                    kind: "bind".into(),
                    source: "/srv".into(),
                    target: "/data".into(),
                    readonly: true,
                },
                4,
            )],
            publish: vec![At::new(
                Publish {
                    published: 19150,
                    target: 80,
                    protocol: "tcp".into(),
                    mode: "host".into(),
                },
                5,
            )],
            resources: Resources {
                cpus: Some(0.5),
                memory: Some(1 << 20),
                ..Resources::default()
            },
            update: Some(UpdatePolicy {
                order: Some("start-first".into()),
                failure_action: Some("rollback".into()),
                ..UpdatePolicy::default()
            }),
            endpoint_mode: Some("dnsrr".into()),
            constraints: vec!["node.role==manager".into()],
            ..ServiceDef::default()
        };
        let x = Extras {
            name: "esc-cdn".into(),
            networks: vec![("esc-net".into(), vec!["cdn".into()])],
            ..Extras::default()
        };
        let spec = service_spec(&def, &x);
        let json = serde_json::to_value(&spec).unwrap();
        let c = &json["TaskTemplate"]["ContainerSpec"];
        assert_eq!(c["Env"], serde_json::json!(["A=1", "B=2"]));
        assert_eq!(c["Args"][1], "daemon off;");
        assert_eq!(c["Mounts"][0]["Type"], "bind");
        assert_eq!(c["Mounts"][0]["ReadOnly"], true);
        assert_eq!(json["Mode"]["Replicated"]["Replicas"], 2);
        assert_eq!(json["EndpointSpec"]["Mode"], "dnsrr");
        assert_eq!(json["EndpointSpec"]["Ports"][0]["PublishMode"], "host");
        assert_eq!(json["UpdateConfig"]["Order"], "start-first");
        assert_eq!(json["UpdateConfig"]["FailureAction"], "rollback");
        assert_eq!(
            json["TaskTemplate"]["Resources"]["Limits"]["NanoCPUs"],
            500_000_000
        );
        assert_eq!(json["TaskTemplate"]["Networks"][0]["Target"], "esc-net");
        assert_eq!(json["TaskTemplate"]["Networks"][0]["Aliases"][0], "cdn");
        assert_eq!(
            json["TaskTemplate"]["Placement"]["Constraints"][0],
            "node.role==manager"
        );
        // Nothing the stack does not set is sent.
        assert!(c.get("Hostname").is_none());
        assert!(json.get("RollbackConfig").is_none());
    }

    #[test]
    fn global_mode() {
        let def = ServiceDef {
            replicas: None,
            ..ServiceDef::default()
        };
        let json = serde_json::to_value(service_spec(&def, &Extras::default())).unwrap();
        assert_eq!(json["Mode"], serde_json::json!({"Global": {}}));
    }
}
