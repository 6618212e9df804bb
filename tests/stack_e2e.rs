//! `escale stack` end to end, on the real local swarm: the built binary drives
//! the engine, and routes are checked through the proxy's host-mode port on
//! 127.0.0.1 only.
//!
//! Needs a Docker engine in swarm mode (scripts/swarm-setup.sh) and the images
//! `escale:dev` and `escale-whoami:dev` (scripts/build-images.sh). The tests
//! fail, not skip, without them. Each run uses its own `esc-stack-<random>-`
//! prefix, removes what it created, and removes leftovers of crashed runs.
//! Host ports: 19110-19112.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const LIFECYCLE_PORT: u16 = 19110;
/// Leftovers older than this are from crashed runs, not from a run in progress.
const LEFTOVER_AGE_SECS: u32 = 900;

fn docker_bin() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new(docker_bin())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"))
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks the engine, the swarm and the images once; cleans old leftovers.
fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let out = docker(&[
            "info",
            "--format",
            "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
        ]);
        assert!(
            out.status.success(),
            "Docker engine not available (run scripts/docker-setup.sh): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "active true",
            "this engine is not a swarm manager (run scripts/swarm-setup.sh)"
        );
        for image in ["escale:dev", "escale-whoami:dev"] {
            if !docker(&["image", "inspect", image]).status.success() {
                let st = Command::new("bash")
                    .arg(format!("{ROOT}/scripts/build-images.sh"))
                    .status()
                    .expect("run scripts/build-images.sh");
                assert!(st.success(), "scripts/build-images.sh failed");
            }
        }
        let st = Command::new("bash")
            .arg(format!("{ROOT}/scripts/swarm-clean.sh"))
            .args(["esc-stack-", &LEFTOVER_AGE_SECS.to_string()])
            .status()
            .expect("run scripts/swarm-clean.sh");
        assert!(st.success(), "swarm-clean.sh failed");
    });
}

fn unique_prefix(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "esc-stack-{:x}{:04x}-{tag}-",
        std::process::id() & 0xfff,
        nanos & 0xffff
    )
}

/// Removes everything named with `prefix` when dropped, even if a test fails.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(format!("{ROOT}/scripts/swarm-clean.sh"))
            .arg(&self.0)
            .status();
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn stack(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_escale"))
        .arg("stack")
        .args(args)
        .output()
        .expect("run escale stack");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A stack file in a fresh directory, with the data directory its relative
/// bind mount needs.
struct StackDir {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl StackDir {
    fn new(content: &str) -> StackDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data/mysql")).unwrap();
        let path = dir.path().join("stack.toml");
        std::fs::write(&path, content).unwrap();
        StackDir { _dir: dir, path }
    }

    fn write(&self, content: &str) {
        std::fs::write(&self.path, content).unwrap();
    }

    fn p(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

fn local_toml(port: u16) -> String {
    let text = std::fs::read_to_string(format!("{ROOT}/examples/stack/local.toml")).unwrap();
    let replaced = text.replace("web = 19180", &format!("web = {port}"));
    assert_ne!(
        replaced, text,
        "local.toml no longer publishes web on 19180"
    );
    replaced
}

/// Names of the services and networks whose name starts with `prefix`.
fn objects(prefix: &str) -> (Vec<String>, Vec<String>) {
    let list = |kind: &str| -> Vec<String> {
        let mut v: Vec<String> = docker_ok(&[
            kind,
            "ls",
            "--filter",
            &format!("name={prefix}"),
            "--format",
            "{{.Name}}",
        ])
        .lines()
        .filter(|n| n.starts_with(prefix))
        .map(String::from)
        .collect();
        v.sort();
        v
    };
    (list("service"), list("network"))
}

/// Service name → version index, for every service named with `prefix`.
fn versions(prefix: &str) -> BTreeMap<String, String> {
    objects(prefix)
        .0
        .into_iter()
        .map(|s| {
            let v = docker_ok(&["service", "inspect", "-f", "{{.Version.Index}}", &s]);
            (s, v.trim().to_string())
        })
        .collect()
}

/// Task IDs of a service that should be running.
fn running_tasks(service: &str) -> Vec<String> {
    let mut v: Vec<String> = docker_ok(&[
        "service",
        "ps",
        "-q",
        "--filter",
        "desired-state=running",
        service,
    ])
    .lines()
    .map(String::from)
    .collect();
    v.sort();
    v
}

/// GET through the proxy on 127.0.0.1; status and body.
fn get(port: u16, host: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.take(1 << 20).read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text))
}

/// Waits (bounded) until the route answers 200 with `needle` in the body.
fn wait_body(port: u16, path: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        last = get(port, "alderaan", path);
        if let Some((200, body)) = &last
            && body.contains(needle)
        {
            return body.clone();
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("{path}: no 200 with {needle:?} within 30s; last answer: {last:?}");
}

/// The lines of a plan that say what changes (not the summary).
fn change_lines(plan: &str) -> Vec<String> {
    plan.lines()
        .filter(|l| {
            l.starts_with("+ ")
                || l.starts_with("~ ")
                || l.starts_with("- ")
                || l.starts_with("    ")
        })
        .map(String::from)
        .collect()
}

#[test]
fn up_twice_update_scale_prune_and_down() {
    setup();
    let prefix = unique_prefix("life");
    let _cleanup = Cleanup(prefix.clone());
    let port = LIFECYCLE_PORT;
    let dir = StackDir::new(&local_toml(port));
    let owner = format!("{prefix}assoc");

    // A service outside the stack, with the same name prefix and another
    // owner's label: `down` must leave it alone.
    let outside = format!("{prefix}outside");
    docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        &outside,
        "--label",
        &format!("escale.stack={prefix}other"),
        "--replicas",
        "0",
        "escale-whoami:dev",
    ]);

    // 1. From nothing: everything is created, converges, and every route answers.
    let up = stack(&["up", dir.p(), "--prefix", &prefix, "--timeout", "90s"]);
    assert_eq!(up.code, 0, "{up:?}");
    for path in [
        "/cdn",
        "/saas",
        "/ludotm/ludotheque",
        "/ludoparis/ludotheque",
    ] {
        assert!(
            up.stdout
                .lines()
                .any(|l| l.contains("✓") && l.contains(&format!("PathPrefix(`{path}`)"))),
            "route {path} not reported live: {up:?}"
        );
    }
    let (services, networks) = objects(&prefix);
    let mut expected: Vec<String> = [
        "cdn",
        "ludoparis_ludotheque",
        "ludotm_ludotheque",
        "mysql_master",
        "outside",
        "proxy",
        "redis",
        "saas",
    ]
    .iter()
    .map(|s| format!("{prefix}{s}"))
    .collect();
    expected.sort();
    assert_eq!(services, expected);
    assert_eq!(networks, [format!("{prefix}traefik-net")]);

    // Each route reaches its own service; tenant parameters reach the containers.
    wait_body(port, "/cdn/", "Name: cdn");
    let saas = wait_body(port, "/saas/", "Name: saas");
    assert!(
        saas.contains("Env: SESSION_SAVE_PATH=tcp://redis:6379"),
        "{saas}"
    );
    let tm = wait_body(port, "/ludotm/ludotheque/", "Name: ludotm_ludotheque");
    assert!(tm.contains("Env: DB_NAME=ludotm"), "{tm}");
    assert!(tm.contains("Env: DB_USER=tm"), "{tm}");
    assert!(tm.contains("Env: DB_HOST=mysql_master"), "{tm}");
    // The prefix is stripped before the app sees the request.
    assert!(tm.contains("GET / HTTP/1.1"), "{tm}");
    let paris = wait_body(port, "/ludoparis/ludotheque/", "Name: ludoparis_ludotheque");
    assert!(paris.contains("Env: DB_NAME=ludoparis"), "{paris}");
    assert_eq!(get(port, "alderaan", "/nowhere").map(|(s, _)| s), Some(404));

    // 2. A second `up` changes nothing: no version bump, no task restart.
    let before = versions(&prefix);
    let tasks_before = running_tasks(&format!("{prefix}cdn"));
    let up2 = stack(&["up", dir.p(), "--prefix", &prefix, "--timeout", "60s"]);
    assert_eq!(up2.code, 0, "{up2:?}");
    assert!(up2.stdout.contains("no changes"), "{up2:?}");
    assert!(change_lines(&up2.stdout).is_empty(), "{up2:?}");
    assert_eq!(versions(&prefix), before);
    assert_eq!(running_tasks(&format!("{prefix}cdn")), tasks_before);

    // 3. One tenant's replicas and one env value: exactly those two changes.
    let changed = local_toml(port)
        .replace(
            "[tenants.ludotm]\napps = [\"ludotheque\"]",
            "[tenants.ludotm]\napps = { ludotheque = { replicas = 2 } }",
        )
        .replace("db_user = \"paris\"", "db_user = \"paris2\"");
    assert_ne!(changed, local_toml(port));
    dir.write(&changed);
    let plan = stack(&["plan", dir.p(), "--prefix", &prefix]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert_eq!(
        change_lines(&plan.stdout),
        [
            format!("~ service {prefix}ludotm_ludotheque"),
            "    ~ replicas: 1 → 2".to_string(),
            format!("~ service {prefix}ludoparis_ludotheque"),
            "    ~ env.DB_USER: \"paris\" → \"paris2\"".to_string(),
        ],
        "{plan:?}"
    );
    assert_eq!(versions(&prefix), before, "plan changed something");
    let up3 = stack(&["up", dir.p(), "--prefix", &prefix, "--timeout", "90s"]);
    assert_eq!(up3.code, 0, "{up3:?}");
    let after = versions(&prefix);
    let bumped: Vec<&String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        bumped,
        [
            &format!("{prefix}ludoparis_ludotheque"),
            &format!("{prefix}ludotm_ludotheque")
        ]
    );
    assert_eq!(
        running_tasks(&format!("{prefix}ludotm_ludotheque")).len(),
        2
    );
    wait_body(port, "/ludoparis/ludotheque/", "Env: DB_USER=paris2");

    // ps: services, replicas, tasks and routes.
    let ps = stack(&["ps", dir.p(), "--prefix", &prefix]);
    assert_eq!(ps.code, 0, "{ps:?}");
    let tm_line = ps
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{prefix}ludotm_ludotheque ")))
        .unwrap_or_else(|| panic!("{ps:?}"));
    assert!(tm_line.contains(" 2/2 "), "{tm_line}");
    assert!(
        tm_line.contains("PathPrefix(`/ludotm/ludotheque`)"),
        "{tm_line}"
    );
    assert!(
        ps.stdout
            .contains(&format!("{prefix}ludotm_ludotheque.2 running")),
        "{ps:?}"
    );

    // scale: only replicas change; the file still says 2, so plan shows it.
    let sc = stack(&["scale", dir.p(), "--prefix", &prefix, "cdn=3"]);
    assert_eq!(sc.code, 0, "{sc:?}");
    assert_eq!(running_tasks(&format!("{prefix}cdn")).len(), 3);
    let plan = stack(&["plan", dir.p(), "--prefix", &prefix]);
    assert_eq!(
        change_lines(&plan.stdout),
        [
            format!("~ service {prefix}cdn"),
            "    ~ replicas: 3 → 2".to_string()
        ],
        "{plan:?}"
    );

    // A service removed from the file is kept, unless --prune.
    let start = changed.find("# Sessions: reached").unwrap();
    let end = changed.find("# The database").unwrap();
    let pruned = format!("{}{}", &changed[..start], &changed[end..]);
    dir.write(&pruned);
    let up4 = stack(&["up", dir.p(), "--prefix", &prefix, "--timeout", "60s"]);
    assert_eq!(up4.code, 0, "{up4:?}");
    assert!(
        up4.stdout.contains(&format!(
            "! service `{prefix}redis` belongs to the stack but is not in the file: kept"
        )),
        "{up4:?}"
    );
    assert!(objects(&prefix).0.contains(&format!("{prefix}redis")));
    let up5 = stack(&[
        "up",
        dir.p(),
        "--prefix",
        &prefix,
        "--prune",
        "--timeout",
        "60s",
    ]);
    assert_eq!(up5.code, 0, "{up5:?}");
    assert!(
        up5.stdout
            .contains(&format!("- service {prefix}redis (not in the file)")),
        "{up5:?}"
    );
    assert!(!objects(&prefix).0.contains(&format!("{prefix}redis")));

    // 5. down removes exactly what the stack owns.
    let down = stack(&["down", dir.p(), "--prefix", &prefix, "--timeout", "60s"]);
    assert_eq!(down.code, 0, "{down:?}");
    assert_eq!(objects(&prefix), (vec![outside.clone()], vec![]));
    let inspect = docker_ok(&[
        "service",
        "inspect",
        "-f",
        "{{index .Spec.Labels \"escale.stack\"}}",
        &outside,
    ]);
    assert_eq!(inspect.trim(), format!("{prefix}other"));
    let again = stack(&["down", dir.p(), "--prefix", &prefix]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains(&format!(
            "nothing to remove: no object belongs to stack `{owner}`"
        )),
        "{again:?}"
    );
    docker_ok(&["service", "rm", &outside]);
}

/// A valid stack with a slot for one mistake; nothing in it is deployed.
fn broken(prefix_port: u16, extra: &str) -> String {
    format!(
        r#"[stack]
name = "broken"

[networks.net]

[proxy]
image = "escale:dev"
ports = {{ web = {prefix_port}, websecure = 0, traefik = 0 }}

[services.ok]
image = "escale-whoami:dev"
route = {{ host = "ok", port = 80 }}
{extra}"#
    )
}

/// Runs plan and up on a broken file: both refuse with `expected` (each a
/// `file:line: message`), and nothing is created.
fn assert_refused(tag: &str, extra: &str, expected: &[&str]) {
    setup();
    let prefix = unique_prefix(tag);
    let _cleanup = Cleanup(prefix.clone());
    let dir = StackDir::new(&broken(19111, extra));
    for cmd in ["plan", "up"] {
        let r = stack(&[cmd, dir.p(), "--prefix", &prefix]);
        assert_eq!(r.code, 1, "{cmd}: {r:?}");
        let problems: Vec<String> = r
            .stderr
            .lines()
            .filter(|l| l.starts_with(dir.p()) && !l.ends_with("nothing was changed"))
            .map(|l| l[dir.p().len()..].to_string())
            .collect();
        assert_eq!(problems, expected, "{cmd}: {r:?}");
        assert!(
            r.stderr.ends_with(&format!(
                "{} problem(s); nothing was changed\n",
                expected.len()
            )),
            "{r:?}"
        );
        assert!(change_lines(&r.stdout).is_empty(), "{r:?}");
    }
    assert_eq!(objects(&prefix), (vec![], vec![]));
}

#[test]
fn refuses_an_image_that_is_not_present() {
    assert_refused(
        "img",
        "[services.cdn]\nimage = \"esc-stack-absent:never\"\n",
        &[
            ":14: service `cdn`: image `esc-stack-absent:never` is not present locally and no registry is reachable: build or load it first (or pass --pull if the nodes can pull it)",
        ],
    );
}

#[test]
fn refuses_a_route_without_a_port() {
    assert_refused(
        "port",
        "[services.cdn]\nimage = \"escale-whoami:dev\"\nroute = { host = \"alderaan\", path_prefix = \"/cdn\" }\n",
        &[
            ":15: service `cdn`: the route has no `port`: set the container port the proxy sends traffic to",
        ],
    );
}

#[test]
fn refuses_a_rule_that_does_not_parse() {
    assert_refused(
        "rule",
        "[services.cdn]\nimage = \"escale-whoami:dev\"\nroute = { rule = \"Host(`alderaan`) && PathPrefx(`/cdn`)\", port = 80 }\n",
        &[
            ":15: service `cdn`: rule `Host(`alderaan`) && PathPrefx(`/cdn`)` does not parse: unknown matcher `PathPrefx`, did you mean `PathPrefix`? (at character 21)",
        ],
    );
}

#[test]
fn refuses_a_service_name_used_twice() {
    assert_refused(
        "name",
        "[services.ludotm_ludotheque]\nimage = \"escale-whoami:dev\"\n[templates.ludotheque]\nimage = \"escale-whoami:dev\"\n[tenants.ludotm]\napps = [\"ludotheque\"]\n",
        &[
            ":18: service name `ludotm_ludotheque` is used twice: by service `ludotm_ludotheque` (line 13) and by service `ludotm_ludotheque` (template `ludotheque`, tenant `ludotm`)",
        ],
    );
}

#[test]
fn refuses_a_published_port_used_twice() {
    assert_refused(
        "pub",
        "[services.db]\nimage = \"escale-whoami:dev\"\npublish = [\"19111:3306\"]\n",
        &[":15: published port 19111/tcp is used twice: by `proxy` (line 8) and by `db`"],
    );
}

#[test]
fn refuses_a_port_in_use_on_this_host() {
    // Something listening on the port, as a forgotten `docker run -p` would.
    let _holder = std::net::TcpListener::bind(("127.0.0.1", 19112)).expect("bind 127.0.0.1:19112");
    assert_refused(
        "busy",
        "[services.db]\nimage = \"escale-whoami:dev\"\npublish = [\"19112:3306\"]\n",
        &[":15: published port 19112/tcp of `db` is already in use on this host"],
    );
}

#[test]
fn refuses_a_mount_source_that_does_not_exist() {
    assert_refused(
        "mount",
        "[services.mysql_master]\nimage = \"escale-whoami:dev\"\nmounts = [\"/esc-stack-nowhere/mysql:/var/lib/mysql\"]\n",
        &[
            ":15: service `mysql_master`: bind mount source `/esc-stack-nowhere/mysql` does not exist on this host",
        ],
    );
}

#[test]
fn refuses_unknown_keys_with_the_nearest_one() {
    assert_refused(
        "key",
        "[services.cdn]\nimage = \"escale-whoami:dev\"\nreplica = 2\n[services.cdn.route]\nhots = \"alderaan\"\nport = 80\n",
        &[
            ":15: unknown key `replica` in [services.cdn]; did you mean `replicas`?",
            ":16: service `cdn`: a route needs `host`, `path_prefix` or `rule`",
            ":17: unknown key `hots` in [services.cdn.route]; did you mean `host`?",
        ],
    );
}

#[test]
fn reports_every_problem_at_once() {
    assert_refused(
        "all",
        "[services.cdn]\nimage = \"esc-stack-absent:never\"\nroute = { host = \"alderaan\" }\npublish = [\"19111:80\"]\nmounts = [\"/esc-stack-nowhere:/data\"]\nnetworks = [\"nett\"]\n",
        &[
            ":14: service `cdn`: image `esc-stack-absent:never` is not present locally and no registry is reachable: build or load it first (or pass --pull if the nodes can pull it)",
            ":15: service `cdn`: the route has no `port`: set the container port the proxy sends traffic to",
            ":16: published port 19111/tcp is used twice: by `proxy` (line 8) and by `cdn`",
            ":17: service `cdn`: bind mount source `/esc-stack-nowhere` does not exist on this host",
            ":18: service `cdn` uses unknown network `nett`; did you mean `net`?",
        ],
    );
}

#[test]
fn seed_passes_validation_but_for_absent_images() {
    setup();
    let prefix = unique_prefix("seed");
    let _cleanup = Cleanup(prefix.clone());
    let seed = format!("{ROOT}/examples/stack/seed.toml");
    let images = [
        "escale:latest",
        "nginx:1.27-alpine",
        "php:8.3-apache",
        "redis:7-alpine",
        "mysql:8.4",
    ];
    let absent: Vec<&str> = images
        .iter()
        .copied()
        .filter(|i| !docker(&["image", "inspect", i]).status.success())
        .collect();
    for cmd in ["plan", "up"] {
        let r = stack(&[cmd, &seed, "--prefix", &prefix]);
        let problems: Vec<&str> = r
            .stderr
            .lines()
            .filter(|l| l.starts_with(&seed) && !l.ends_with("nothing was changed"))
            .collect();
        for p in &problems {
            assert!(
                absent
                    .iter()
                    .any(|i| p.contains(&format!("image `{i}` is not present locally"))),
                "{cmd}: not an absent-image problem: {p}\n{r:?}"
            );
        }
        // Every absent image is reported (the PHP image once per service using it).
        for i in &absent {
            assert!(
                problems.iter().any(|p| p.contains(&format!("`{i}`"))),
                "{cmd}: {i} not reported: {r:?}"
            );
        }
        assert_eq!(r.code, if absent.is_empty() { r.code } else { 1 }, "{r:?}");
    }
    // With --pull, missing images are the nodes' business: the plan is whole.
    let r = stack(&["plan", &seed, "--prefix", &prefix, "--pull"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("+ service {prefix}mysql_master")),
        "{r:?}"
    );
    assert!(r.stdout.contains("    + env.DB_NAME: \"ludotm\""), "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "    + networks.{prefix}traefik-net: aliases mysql_master"
        )),
        "{r:?}"
    );
    assert_eq!(objects(&prefix), (vec![], vec![]));
}
