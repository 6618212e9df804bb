use super::*;
use crate::stack::file;
use crate::stack::model::{self, Facts};
use crate::stack::source::{self, Problems};
use bollard::models::ServiceSpec;

const NET_ID: &str = "p87jd2hqb9ii1d22i2xqx4dqx";

/// Specs as the engine (20.10, API 1.41) stored them after `up` of the
/// stack below, read back without `insertDefaults`.
const STORED_LUDO: &str = r#"{"Name": "esc-stack-local-ludoparis_ludotheque", "Labels": {"escale.stack": "esc-stack-local-assoc", "escale.stack.service": "ludoparis_ludotheque", "traefik.enable": "true", "traefik.http.middlewares.esc-stack-local-ludoparis_ludotheque-strip.stripprefix.prefixes": "/ludoparis/ludotheque", "traefik.http.routers.esc-stack-local-ludoparis_ludotheque.middlewares": "esc-stack-local-ludoparis_ludotheque-strip", "traefik.http.routers.esc-stack-local-ludoparis_ludotheque.rule": "Host(`alderaan`) && PathPrefix(`/ludoparis/ludotheque`)", "traefik.http.routers.esc-stack-local-ludoparis_ludotheque.service": "esc-stack-local-ludoparis_ludotheque", "traefik.http.services.esc-stack-local-ludoparis_ludotheque.loadbalancer.server.port": "80", "traefik.swarm.network": "esc-stack-local-traefik-net"}, "TaskTemplate": {"ContainerSpec": {"Image": "escale-whoami:dev", "Env": ["DB_HOST=mysql_master", "DB_NAME=ludoparis", "DB_USER=paris", "SAAS_URL=http://saas", "WHOAMI_ENV_PREFIX=DB_", "WHOAMI_NAME=ludoparis_ludotheque"], "Isolation": "default"}, "Networks": [{"Target": "p87jd2hqb9ii1d22i2xqx4dqx", "Aliases": ["ludoparis_ludotheque"]}], "ForceUpdate": 0, "Runtime": "container"}, "Mode": {"Replicated": {"Replicas": 2}}}"#;
const STORED_PROXY: &str = r#"{"Name": "esc-stack-local-proxy", "Labels": {"escale.stack": "esc-stack-local-assoc", "escale.stack.service": "proxy"}, "TaskTemplate": {"ContainerSpec": {"Image": "escale:dev", "Args": ["--entrypoints.web.address=:80", "--providers.swarm=true", "--providers.swarm.endpoint=unix:///var/run/docker.sock", "--providers.swarm.exposedByDefault=false", "--providers.swarm.network=esc-stack-local-traefik-net", "--providers.swarm.constraints=Label(`escale.stack`,`esc-stack-local-assoc`)"], "Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/var/run/docker.sock"}], "Isolation": "default"}, "Placement": {"Constraints": ["node.role == manager"]}, "Networks": [{"Target": "p87jd2hqb9ii1d22i2xqx4dqx", "Aliases": ["proxy"]}], "ForceUpdate": 0, "Runtime": "container"}, "Mode": {"Replicated": {"Replicas": 1}}, "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 19180, "PublishMode": "host"}]}}"#;
/// The update policy as stored: the engine fills in `FailureAction`.
const STORED_MYSQL: &str = r#"{"Name": "esc-stack-local-mysql_master", "Labels": {"escale.stack": "esc-stack-local-assoc", "escale.stack.service": "mysql_master"}, "TaskTemplate": {"ContainerSpec": {"Image": "escale-whoami:dev", "Env": ["WHOAMI_NAME=mysql_master"], "Mounts": [{"Type": "bind", "Source": "/data/mysql", "Target": "/var/lib/mysql"}], "Isolation": "default"}, "Placement": {"Constraints": ["node.role == manager"]}, "Networks": [{"Target": "p87jd2hqb9ii1d22i2xqx4dqx", "Aliases": ["mysql_master"]}], "ForceUpdate": 0, "Runtime": "container"}, "Mode": {"Replicated": {"Replicas": 1}}, "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause", "MaxFailureRatio": 0, "Order": "stop-first"}, "EndpointSpec": {"Mode": "dnsrr"}}"#;

const STACK: &str = r#"
[stack]
name = "assoc"
prefix = "esc-stack-local-"

[networks.traefik-net]

[proxy]
image = "escale:dev"
ports = { web = 19180, websecure = 0, traefik = 0 }

[services.mysql_master]
image = "escale-whoami:dev"
env = { WHOAMI_NAME = "mysql_master" }
endpoint_mode = "dnsrr"
mounts = ["/data/mysql:/var/lib/mysql"]
constraints = ["node.role == manager"]
update = { order = "stop-first", parallelism = 1 }

[templates.ludotheque]
image = "escale-whoami:dev"
env = { WHOAMI_NAME = "${tenant}_${app}", WHOAMI_ENV_PREFIX = "DB_", DB_HOST = "mysql_master", DB_NAME = "${tenant}", DB_USER = "${db_user}", SAAS_URL = "http://saas" }
route = { host = "alderaan", path_prefix = "/${tenant}/${app}", strip = true, port = 80 }

[tenants.ludoparis]
params = { db_user = "paris" }
[tenants.ludoparis.apps.ludotheque]
replicas = 2
"#;

fn desired(text: &str) -> Desired {
    let mut p = Problems::for_text(text);
    let root = source::parse(text, &mut p).unwrap();
    let def = file::read(&root, std::path::Path::new("/"), &mut p);
    let w = model::wants(&def);
    let facts = Facts {
        images: w.images,
        paths: w.paths,
        require_local_images: true,
        ..Facts::default()
    };
    let d = model::compile(&def, None, &facts, &mut p);
    assert!(p.is_empty(), "{}", p.render("stack.toml"));
    d.unwrap()
}

fn stored(json: &str, version: u64) -> CurrentService {
    let spec: ServiceSpec = serde_json::from_str(json).unwrap();
    CurrentService {
        id: format!("id-{}", spec.name.clone().unwrap()),
        name: spec.name.clone().unwrap(),
        version,
        labels: spec.labels.clone().unwrap().into_iter().collect(),
        spec,
    }
}

fn network(owner: &str) -> CurrentNetwork {
    CurrentNetwork {
        id: NET_ID.into(),
        name: "esc-stack-local-traefik-net".into(),
        attachable: true,
        internal: false,
        labels: [(OWNER_LABEL.to_string(), owner.to_string())].into(),
    }
}

fn running() -> Current {
    Current {
        services: vec![
            stored(STORED_PROXY, 10),
            stored(STORED_MYSQL, 11),
            stored(STORED_LUDO, 12),
        ],
        networks: vec![network("esc-stack-local-assoc")],
    }
}

#[test]
fn what_the_engine_stored_is_no_change() {
    let plan = plan(&running(), &desired(STACK), false);
    assert!(plan.is_empty(), "{}", render(&plan));
    assert_eq!(plan.unchanged.len(), 3);
    assert!(plan.notes.is_empty() && plan.conflicts.is_empty());
    assert_eq!(render(&plan), "no changes (3 services up to date)\n");
}

#[test]
fn from_nothing_everything_is_created() {
    let plan = plan(&Current::default(), &desired(STACK), false);
    let kinds: Vec<String> = plan
        .changes
        .iter()
        .map(|c| match c {
            Change::CreateNetwork(n) => format!("+net {}", n.name),
            Change::CreateService { desired, .. } => format!("+svc {}", desired.name),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "+net esc-stack-local-traefik-net",
            "+svc esc-stack-local-proxy",
            "+svc esc-stack-local-mysql_master",
            "+svc esc-stack-local-ludoparis_ludotheque",
        ]
    );
    let out = render(&plan);
    assert!(out.starts_with("+ network esc-stack-local-traefik-net (overlay, attachable)\n+ service esc-stack-local-proxy\n"), "{out}");
    assert!(out.contains("    + replicas: 2\n"), "{out}");
    assert!(out.contains("    + env.DB_NAME: \"ludoparis\"\n"), "{out}");
}

#[test]
fn replicas_and_one_env_value_are_exactly_two_changes() {
    let text = STACK
        .replace("replicas = 2", "replicas = 3")
        .replace("db_user = \"paris\"", "db_user = \"paris2\"");
    let plan = plan(&running(), &desired(&text), false);
    assert_eq!(plan.changes.len(), 1, "{}", render(&plan));
    let Change::UpdateService {
        desired,
        current_id,
        version,
        fields,
    } = &plan.changes[0]
    else {
        panic!("{:?}", plan.changes[0]);
    };
    assert_eq!(desired.name, "esc-stack-local-ludoparis_ludotheque");
    assert_eq!(current_id, "id-esc-stack-local-ludoparis_ludotheque");
    assert_eq!(*version, 12);
    assert_eq!(
        fields,
        &[
            FieldChange {
                field: "env.DB_USER".into(),
                before: Some("\"paris\"".into()),
                after: Some("\"paris2\"".into()),
            },
            FieldChange {
                field: "replicas".into(),
                before: Some("2".into()),
                after: Some("3".into()),
            },
        ]
    );
    assert_eq!(
        render(&plan),
        "~ service esc-stack-local-ludoparis_ludotheque\n    ~ env.DB_USER: \"paris\" → \"paris2\"\n    ~ replicas: 2 → 3\n= 2 unchanged: esc-stack-local-proxy, esc-stack-local-mysql_master\n"
    );
}

#[test]
fn added_and_removed_fields() {
    let text = STACK.replace(
        "endpoint_mode = \"dnsrr\"",
        "hostname = \"db\"\nupdate_removed = 1",
    );
    // An unknown key is a file problem, not a diff.
    let mut p = Problems::for_text(&text);
    let root = source::parse(&text, &mut p).unwrap();
    file::read(&root, std::path::Path::new("/"), &mut p);
    assert_eq!(p.len(), 1);

    let text = STACK.replace("endpoint_mode = \"dnsrr\"", "hostname = \"db\"");
    let plan = plan(&running(), &desired(&text), false);
    let out = render(&plan);
    assert!(out.contains("~ service esc-stack-local-mysql_master\n    - endpoint_mode: dnsrr\n    + hostname: db\n"), "{out}");
}

#[test]
fn update_policy_defaults_are_not_changes() {
    // Swarm's defaults, spelled out or left to the engine, mean the same.
    let explicit = STACK.replace(
        "update = { order = \"stop-first\", parallelism = 1 }",
        "update = { order = \"stop-first\", parallelism = 1, failure_action = \"pause\", monitor = \"5s\" }",
    );
    assert!(plan(&running(), &desired(&explicit), false).is_empty());
    let none = STACK.replace("update = { order = \"stop-first\", parallelism = 1 }", "");
    assert!(plan(&running(), &desired(&none), false).is_empty());
    let changed = STACK.replace("order = \"stop-first\"", "order = \"start-first\"");
    let p = plan(&running(), &desired(&changed), false);
    assert!(
        render(&p).contains("    + update.order: start-first\n"),
        "{}",
        render(&p)
    );
}

#[test]
fn rollback_policy_filled_in_by_the_engine_is_no_change() {
    let mut cur = running();
    let mysql = cur
        .services
        .iter_mut()
        .find(|s| s.name.ends_with("mysql_master"))
        .unwrap();
    let mut json: serde_json::Value = serde_json::from_str(STORED_MYSQL).unwrap();
    json["RollbackConfig"] = serde_json::json!({"Parallelism": 1, "FailureAction": "pause", "Monitor": 5000000000u64, "MaxFailureRatio": 0, "Order": "stop-first"});
    json["UpdateConfig"]["Monitor"] = 5000000000u64.into();
    mysql.spec = serde_json::from_value(json).unwrap();
    assert!(plan(&cur, &desired(STACK), false).is_empty());
}

#[test]
fn services_out_of_the_file_are_kept_or_pruned() {
    let without_ludo = STACK
        .split("[templates.ludotheque]")
        .next()
        .unwrap()
        .to_string();
    let d = desired(&without_ludo);
    let p = plan(&running(), &d, false);
    assert!(p.is_empty());
    assert_eq!(
        p.notes,
        [
            "service `esc-stack-local-ludoparis_ludotheque` belongs to the stack but is not in the file: kept (pass --prune to remove it)"
        ]
    );
    let p = plan(&running(), &d, true);
    assert_eq!(
        p.changes,
        [Change::RemoveService {
            name: "esc-stack-local-ludoparis_ludotheque".into(),
            id: "id-esc-stack-local-ludoparis_ludotheque".into(),
        }]
    );
    assert!(
        render(&p)
            .starts_with("- service esc-stack-local-ludoparis_ludotheque (not in the file)\n")
    );
}

#[test]
fn objects_of_another_owner_are_conflicts() {
    let mut cur = running();
    cur.services[0]
        .labels
        .insert(OWNER_LABEL.into(), "someone-else".into());
    cur.services[1].labels.remove(OWNER_LABEL);
    cur.networks = vec![network("someone-else")];
    let p = plan(&cur, &desired(STACK), true);
    assert_eq!(
        p.conflicts,
        [
            "network `esc-stack-local-traefik-net` already exists and does not belong to stack `esc-stack-local-assoc`",
            "service `esc-stack-local-proxy` already exists and does not belong to stack `esc-stack-local-assoc`",
            "service `esc-stack-local-mysql_master` already exists and does not belong to stack `esc-stack-local-assoc`",
        ]
    );
    // --prune never removes what is not owned.
    assert!(
        p.changes
            .iter()
            .all(|c| !matches!(c, Change::RemoveService { .. }))
    );
}

#[test]
fn a_changed_network_is_a_note_not_a_change() {
    let mut cur = running();
    cur.networks[0].attachable = false;
    let p = plan(&cur, &desired(STACK), false);
    assert!(p.is_empty());
    assert_eq!(p.notes.len(), 1);
    assert!(
        p.notes[0].contains("networks cannot be updated in place"),
        "{:?}",
        p.notes
    );
}

#[test]
fn views_name_networks_and_skip_empty_values() {
    let spec: ServiceSpec = serde_json::from_str(STORED_PROXY).unwrap();
    let names = |id: &str| {
        if id == NET_ID {
            "net".to_string()
        } else {
            id.to_string()
        }
    };
    let v = view(&spec, &names);
    assert_eq!(v["networks.net"], "aliases proxy");
    assert_eq!(v["publish.19180/tcp"], "target 80, mode host");
    assert_eq!(
        v["mounts./var/run/docker.sock"],
        "bind /var/run/docker.sock"
    );
    assert!(!v.contains_key("endpoint_mode"), "vip is the default");
    assert!(
        !v.keys()
            .any(|k| k.contains("Isolation") || k.contains("isolation"))
    );
}
