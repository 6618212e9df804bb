use super::*;
use crate::stack::file;
use crate::stack::source::{self, Problems};

/// Facts where every image and bind source the file uses is present.
fn all_present(def: &StackDef) -> Facts {
    let w = wants(def);
    Facts {
        images: w.images,
        require_local_images: true,
        paths: w.paths,
        ..Facts::default()
    }
}

fn run(text: &str, tweak: impl FnOnce(&mut Facts)) -> (Option<Desired>, Vec<String>) {
    let mut p = Problems::for_text(text);
    let root = source::parse(text, &mut p).expect("toml");
    let def = file::read(&root, std::path::Path::new("/stacks"), &mut p);
    let mut facts = all_present(&def);
    tweak(&mut facts);
    let d = compile(&def, None, &facts, &mut p);
    let msgs = p
        .sorted()
        .iter()
        .map(|x| format!("{}: {}", x.line.unwrap_or(0), x.message))
        .collect();
    (d, msgs)
}

const BASE: &str = r#"[stack]
name = "assoc"
prefix = "t-"

[networks.traefik-net]

[proxy]
image = "escale:dev"
ports = { web = 19100, websecure = 0, traefik = 0 }
"#;

fn with_base(rest: &str) -> String {
    format!("{BASE}{rest}")
}

fn spec_json(d: &Desired, name: &str) -> serde_json::Value {
    serde_json::to_value(&d.service(name).unwrap().spec).unwrap()
}

#[test]
fn a_valid_stack_compiles() {
    let (d, msgs) = run(
        &with_base(
            r#"
[services.cdn]
image = "nginx"
replicas = 2
route = { host = "alderaan", path_prefix = "/cdn", strip = true, port = 80 }

[services.mysql_master]
image = "mysql"
mounts = ["/srv/mysql:/var/lib/mysql"]
"#,
        ),
        |_| {},
    );
    assert!(msgs.is_empty(), "{msgs:?}");
    let d = d.unwrap();
    assert_eq!(d.owner, "t-assoc");
    let names: Vec<&str> = d.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["t-proxy", "t-cdn", "t-mysql_master"]);
    assert_eq!(d.networks[0].name, "t-traefik-net");
    assert_eq!(d.networks[0].labels[OWNER_LABEL], "t-assoc");

    // Reachable by the name in the file, whatever the prefix.
    let mysql = spec_json(&d, "mysql_master");
    assert_eq!(
        mysql["TaskTemplate"]["Networks"][0]["Target"],
        "t-traefik-net"
    );
    assert_eq!(
        mysql["TaskTemplate"]["Networks"][0]["Aliases"][0],
        "mysql_master"
    );
    assert_eq!(mysql["Labels"][OWNER_LABEL], "t-assoc");
    assert_eq!(mysql["Labels"][LOGICAL_LABEL], "mysql_master");
    assert!(mysql["Labels"].get("traefik.enable").is_none());

    let cdn = spec_json(&d, "cdn");
    assert_eq!(
        cdn["Labels"]["traefik.http.routers.t-cdn.rule"],
        "Host(`alderaan`) && PathPrefix(`/cdn`)"
    );
    assert_eq!(cdn["Labels"]["traefik.swarm.network"], "t-traefik-net");

    assert_eq!(
        d.probes,
        [RouteProbe {
            service: "t-cdn".into(),
            rule: "Host(`alderaan`) && PathPrefix(`/cdn`)".into(),
            host: Some("alderaan".into()),
            path: "/cdn".into(),
            port: 19100,
        }]
    );
}

#[test]
fn the_proxy_gets_its_defaults() {
    let (d, msgs) = run(&with_base(""), |_| {});
    assert!(msgs.is_empty(), "{msgs:?}");
    let d = d.unwrap();
    assert_eq!(d.proxy.as_deref(), Some("t-proxy"));
    let px = spec_json(&d, "t-proxy");
    let c = &px["TaskTemplate"]["ContainerSpec"];
    assert_eq!(c["Image"], "escale:dev");
    assert_eq!(c["Mounts"][0]["Source"], "/var/run/docker.sock");
    assert_eq!(
        px["TaskTemplate"]["Placement"]["Constraints"][0],
        "node.role == manager"
    );
    let ports = &px["EndpointSpec"]["Ports"];
    assert_eq!(ports.as_array().unwrap().len(), 1);
    assert_eq!(ports[0]["PublishedPort"], 19100);
    assert_eq!(ports[0]["TargetPort"], 80);
    assert_eq!(ports[0]["PublishMode"], "host");
    let args: Vec<&str> = c["Args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "--entrypoints.web.address=:80",
            "--providers.swarm=true",
            "--providers.swarm.endpoint=unix:///var/run/docker.sock",
            "--providers.swarm.exposedByDefault=false",
            "--providers.swarm.network=t-traefik-net",
            "--providers.swarm.constraints=Label(`escale.stack`,`t-assoc`)",
        ]
    );
}

#[test]
fn default_proxy_ports_and_own_flags() {
    let text = "[stack]\nname = \"s\"\n[networks.n]\n[proxy]\nargs = [\"--log.level=DEBUG\"]\n";
    let (d, msgs) = run(text, |_| {});
    assert!(msgs.is_empty(), "{msgs:?}");
    let px = spec_json(&d.unwrap(), "proxy");
    let ports: Vec<(i64, i64)> = px["EndpointSpec"]["Ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["PublishedPort"].as_i64().unwrap(),
                p["TargetPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, [(80, 80), (443, 443), (8080, 8080)]);
    let args = px["TaskTemplate"]["ContainerSpec"]["Args"]
        .as_array()
        .unwrap()
        .clone();
    assert!(args.contains(&"--api.insecure=true".into()));
    assert_eq!(args.last().unwrap(), "--log.level=DEBUG");
    assert_eq!(
        px["TaskTemplate"]["ContainerSpec"]["Image"],
        file::DEFAULT_PROXY_IMAGE
    );
}

#[test]
fn missing_image_is_reported_where_it_is_written() {
    let (d, msgs) = run(
        &with_base("\n[services.cdn]\nimage = \"nginx:1.27\"\n"),
        |f| {
            f.images.remove("nginx:1.27");
        },
    );
    assert!(d.is_none());
    assert_eq!(
        msgs,
        [
            "12: service `cdn`: image `nginx:1.27` is not present locally and no registry is reachable: build or load it first (or pass --pull if the nodes can pull it)"
        ]
    );
}

#[test]
fn missing_image_is_fine_when_nodes_can_pull() {
    let (d, msgs) = run(
        &with_base("\n[services.cdn]\nimage = \"nginx:1.27\"\n"),
        |f| {
            f.images.clear();
            f.require_local_images = false;
        },
    );
    assert!(msgs.is_empty(), "{msgs:?}");
    assert!(d.is_some());
}

#[test]
fn route_without_port() {
    let (d, msgs) = run(
        &with_base("\n[services.cdn]\nimage = \"nginx\"\nroute = { host = \"alderaan\" }\n"),
        |_| {},
    );
    assert!(d.is_none());
    assert_eq!(
        msgs,
        [
            "13: service `cdn`: the route has no `port`: set the container port the proxy sends traffic to"
        ]
    );
}

#[test]
fn rule_that_does_not_parse() {
    let (d, msgs) = run(
        &with_base(
            "\n[services.cdn]\nimage = \"nginx\"\n[services.cdn.route]\nport = 80\nrule = \"Host(`a`) && PathPrefx(`/x`)\"\n",
        ),
        |_| {},
    );
    assert!(d.is_none());
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0]
            .starts_with("15: service `cdn`: rule `Host(`a`) && PathPrefx(`/x`)` does not parse"),
        "{msgs:?}"
    );
}

#[test]
fn raw_label_rules_are_checked_too() {
    let (d, msgs) = run(
        &with_base(
            "\n[services.cdn]\nimage = \"nginx\"\nlabels = { \"traefik.http.routers.x.rule\" = \"Host(`a`\" }\n",
        ),
        |_| {},
    );
    assert!(d.is_none());
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0].starts_with("13: service `cdn`: label `traefik.http.routers.x.rule`: rule"),
        "{msgs:?}"
    );
}

#[test]
fn service_name_used_twice() {
    // A tenant instance named like a plain service.
    let (d, msgs) = run(
        &with_base(
            r#"
[services.ludotm_ludotheque]
image = "ludo"

[templates.ludotheque]
image = "ludo"

[tenants.ludotm]
apps = ["ludotheque"]
"#,
        ),
        |_| {},
    );
    assert!(d.is_none());
    assert_eq!(
        msgs,
        [
            "18: service name `ludotm_ludotheque` is used twice: by service `ludotm_ludotheque` (line 11) and by service `ludotm_ludotheque` (template `ludotheque`, tenant `ludotm`)"
        ]
    );
}

#[test]
fn proxy_name_clashes_with_a_service() {
    let (_, msgs) = run(&with_base("\n[services.proxy]\nimage = \"x\"\n"), |_| {});
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0].starts_with("11: service name `proxy` is used twice: by proxy `proxy` (line 7)"),
        "{msgs:?}"
    );
}

#[test]
fn published_port_used_twice() {
    let (d, msgs) = run(
        &with_base(
            "\n[services.a]\nimage = \"x\"\npublish = [\"19100:80\"]\n[services.b]\nimage = \"x\"\npublish = [\"19150:80\", { published = 19150, target = 81 }]\n",
        ),
        |_| {},
    );
    assert!(d.is_none());
    assert_eq!(
        msgs,
        [
            "13: published port 19100/tcp is used twice: by `proxy` (line 9) and by `a`",
            "16: published port 19150/tcp is used twice: by `b` (line 16) and by `b`",
        ]
    );
}

#[test]
fn published_port_held_outside_the_stack() {
    let (_, msgs) = run(&with_base(""), |f| {
        f.foreign_ports
            .insert((19100, "tcp".into()), "other".into());
    });
    assert_eq!(
        msgs,
        [
            "9: published port 19100/tcp of `proxy` is already published by service `other`, outside this stack"
        ]
    );
}

#[test]
fn mount_source_that_does_not_exist() {
    let (d, msgs) = run(
        &with_base(
            "\n[services.db]\nimage = \"mysql\"\nmounts = [\"/nope/mysql:/var/lib/mysql\", \"./data:/data\", \"vol:/v\"]\n",
        ),
        |f| {
            f.paths.remove("/nope/mysql");
            f.paths.remove("/stacks/data");
        },
    );
    assert!(d.is_none());
    assert_eq!(
        msgs,
        [
            "13: service `db`: bind mount source `/nope/mysql` does not exist on this host",
            "13: service `db`: bind mount source `/stacks/data` does not exist on this host",
        ]
    );
}

#[test]
fn unknown_network_with_suggestion() {
    let (_, msgs) = run(
        &with_base("\n[services.a]\nimage = \"x\"\nnetworks = [\"traefik_net\"]\n"),
        |_| {},
    );
    assert_eq!(
        msgs,
        ["13: service `a` uses unknown network `traefik_net`; did you mean `traefik-net`?"]
    );
}

#[test]
fn a_routed_service_must_share_the_proxy_network() {
    let (_, msgs) = run(
        &with_base(
            "[networks.back]\n[services.a]\nimage = \"x\"\nnetworks = [\"back\"]\nroute = { host = \"h\", port = 80 }\n",
        ),
        |_| {},
    );
    // Two networks: the proxy's must be named, and the route cannot be reached.
    assert_eq!(
        msgs,
        [
            "7: the stack has several networks: choose the proxy's with `network = \"...\"`",
            "14: service `a`: the route needs the service on the proxy's network `traefik-net`",
        ]
    );
}

#[test]
fn secrets_resolve_to_ids_or_are_reported() {
    let text = with_base(
        "\n[services.db]\nimage = \"mysql\"\nsecrets = [\"db_pass\", { source = \"db_pas\", target = \"p\" }]\n",
    );
    let (d, msgs) = run(&text, |f| {
        f.secrets.insert("db_pass".into(), "id123".into());
    });
    assert!(d.is_none());
    assert_eq!(
        msgs,
        [
            "13: service `db`: secret `db_pas` does not exist (create it with `docker secret create`); did you mean `db_pass`?"
        ]
    );
    let text = with_base("\n[services.db]\nimage = \"mysql\"\nsecrets = [\"db_pass\"]\n");
    let (d, msgs) = run(&text, |f| {
        f.secrets.insert("db_pass".into(), "id123".into());
    });
    assert!(msgs.is_empty(), "{msgs:?}");
    let s = spec_json(&d.unwrap(), "db");
    assert_eq!(
        s["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretID"],
        "id123"
    );
    assert_eq!(
        s["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["File"]["Name"],
        "db_pass"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let (d, msgs) = run(
        &with_base(
            r#"
[services.cdn]
image = "nginx"
replicas = "two"
route = { host = "a", pth_prefix = "/x" }

[services.db]
image = "mysql"
mounts = ["/nope:/var/lib/mysql"]
publish = ["19100:3306"]
"#,
        ),
        |f| {
            f.paths.remove("/nope");
            f.images.remove("mysql");
        },
    );
    assert!(d.is_none());
    assert_eq!(
        msgs,
        [
            "13: `services.cdn.replicas` must be an integer, found a string",
            "14: unknown key `pth_prefix` in [services.cdn.route]; did you mean `path_prefix`?",
            "14: service `cdn`: the route has no `port`: set the container port the proxy sends traffic to",
            "17: service `db`: image `mysql` is not present locally and no registry is reachable: build or load it first (or pass --pull if the nodes can pull it)",
            "18: service `db`: bind mount source `/nope` does not exist on this host",
            "19: published port 19100/tcp is used twice: by `proxy` (line 9) and by `db`",
        ]
    );
}

#[test]
fn stack_needs_a_name() {
    let (d, msgs) = run("[services.a]\nimage = \"x\"\n", |_| {});
    assert!(d.is_none());
    assert_eq!(
        msgs,
        ["1: the stack has no name: add `[stack]` with `name = \"...\"`"]
    );
}

#[test]
fn prefix_override_and_invalid_names() {
    let text = "[stack]\nname = \"s\"\n[services.\"bad name\"]\nimage = \"x\"\n";
    let mut p = Problems::for_text(text);
    let root = source::parse(text, &mut p).unwrap();
    let def = file::read(&root, std::path::Path::new("/"), &mut p);
    let facts = all_present(&def);
    assert!(compile(&def, Some("esc-"), &facts, &mut p).is_none());
    assert_eq!(p.list.len(), 1);
    assert!(
        p.list[0]
            .message
            .contains("`esc-bad name` is not a valid service name")
    );

    let text = "[stack]\nname = \"s\"\nprefix = \"a-\"\n[services.ok]\nimage = \"x\"\n";
    let mut p = Problems::for_text(text);
    let root = source::parse(text, &mut p).unwrap();
    let def = file::read(&root, std::path::Path::new("/"), &mut p);
    let d = compile(&def, Some("b-"), &all_present(&def), &mut p).unwrap();
    assert_eq!(d.owner, "b-s");
    assert_eq!(d.services[0].name, "b-ok");
}

#[test]
fn reserved_labels_and_route_label_clashes() {
    let (_, msgs) = run(
        &with_base(
            "\n[services.a]\nimage = \"x\"\nroute = { host = \"h\", port = 80 }\nlabels = { \"escale.stack\" = \"other\", \"traefik.enable\" = \"false\" }\n",
        ),
        |_| {},
    );
    assert_eq!(
        msgs,
        [
            "14: service `a`: label `escale.stack` is reserved for escale",
            "14: service `a`: label `traefik.enable` is also set by the route; drop one of them",
        ]
    );
}

#[test]
fn examples_pass_validation() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/stack");
    for name in ["local.toml", "seed.toml"] {
        let path = std::path::Path::new(root).join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut p = Problems::for_text(&text);
        let v = source::parse(&text, &mut p).unwrap();
        let def = file::read(&v, std::path::Path::new(root), &mut p);
        let facts = all_present(&def);
        let d = compile(&def, None, &facts, &mut p);
        assert!(p.is_empty(), "{name}: {}", p.render(name));
        let d = d.unwrap();
        let names: Vec<&str> = d.services.iter().map(|s| s.logical.as_str()).collect();
        assert_eq!(
            names,
            [
                "proxy",
                "cdn",
                "saas",
                "redis",
                "mysql_master",
                "ludotm_ludotheque",
                "ludoparis_ludotheque"
            ],
            "{name}"
        );
        let ludo = spec_json(&d, "ludotm_ludotheque");
        let env = ludo["TaskTemplate"]["ContainerSpec"]["Env"]
            .as_array()
            .unwrap();
        assert!(env.contains(&"DB_NAME=ludotm".into()), "{name}: {env:?}");
        assert!(
            env.contains(&"DB_HOST=mysql_master".into()),
            "{name}: {env:?}"
        );
        assert_eq!(d.probes.len(), 4, "{name}");
        assert_eq!(d.probes[2].path, "/ludotm/ludotheque");
        let cdn = spec_json(&d, "cdn");
        assert_eq!(cdn["Mode"]["Replicated"]["Replicas"], 2);
        let mysql = spec_json(&d, "mysql_master");
        let src = mysql["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Source"]
            .as_str()
            .unwrap();
        assert!(src.ends_with("examples/stack/data/mysql"), "{src}");
        assert_eq!(
            mysql["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Type"],
            "bind"
        );
    }
}

/// The TOML blocks of the README (its `escale stack` section) are valid stack files.
#[test]
fn documented_examples_are_valid() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 2);
    for (i, block) in blocks.iter().enumerate() {
        // The template example is a fragment: give it a stack name.
        let text = if block.contains("[stack]") {
            block.to_string()
        } else {
            format!("[stack]\nname = \"doc\"\n{block}")
        };
        let (d, msgs) = run(&text, |f| {
            for s in ["db_password", "tls_key"] {
                f.secrets.insert(s.into(), format!("id-{s}"));
            }
            f.configs.insert("nginx_conf".into(), "id-conf".into());
        });
        assert!(msgs.is_empty(), "block {i}: {msgs:?}");
        assert!(d.is_some());
    }
}

#[test]
fn engine_refusals_are_caught_first() {
    let (d, msgs) = run(
        &with_base(
            "\n[services.a]\nimage = \"x\"\nendpoint_mode = \"dnsrr\"\npublish = [{ published = 19150, target = 80, mode = \"ingress\" }]\nconstraints = [\"node.role=manager\"]\n",
        ),
        |_| {},
    );
    assert!(d.is_none());
    assert_eq!(
        msgs,
        [
            "11: service `a`: constraint `node.role=manager` must read `key == value` or `key != value`",
            "14: service `a`: port 19150 is published in ingress mode, which needs endpoint_mode = \"vip\"",
        ]
    );
}

#[test]
fn published_port_busy_on_this_host() {
    let text =
        with_base("\n[services.a]\nimage = \"x\"\npublish = [\"19150:80\", \"19151:80/udp\"]\n");
    let mut p = Problems::for_text(&text);
    let root = source::parse(&text, &mut p).unwrap();
    let def = file::read(&root, std::path::Path::new("/"), &mut p);
    assert_eq!(
        wants(&def).host_ports.into_iter().collect::<Vec<_>>(),
        [19100, 19150]
    );
    let (_, msgs) = run(&text, |f| {
        f.busy_ports.insert(19150);
    });
    assert_eq!(
        msgs,
        ["13: published port 19150/tcp of `a` is already in use on this host"]
    );
}
