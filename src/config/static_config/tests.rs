use std::net::SocketAddr;

use super::*;
use crate::config::traefik_keys::{KeyKind, STATIC_KEYS};

/// A scratch working directory that is also the only search directory, so
/// the host's `/etc/traefik` never leaks into a test.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn paths(&self) -> SearchPaths {
        SearchPaths {
            cwd: self.dir.path().to_path_buf(),
            dirs: vec![self.dir.path().join("etc"), self.dir.path().to_path_buf()],
        }
    }

    fn load(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Loaded, Vec<ConfigProblem>> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(&args, &env, &self.paths())
    }

    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> Loaded {
        match self.load(args, env) {
            Ok(l) => l,
            Err(problems) => panic!("{}", lines(&problems)),
        }
    }

    fn errors(&self, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
        match self.load(args, env) {
            Ok(l) => panic!("expected errors, got {:#?}", l.config),
            Err(problems) => problems.iter().map(|p| p.to_string()).collect(),
        }
    }
}

fn lines(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn has(lines: &[String], wanted: &str) -> bool {
    lines.iter().any(|l| l == wanted)
}

#[test]
fn nothing_given_means_traefik_defaults() {
    let env = Env::new();
    let l = env.ok(&[], &[("PATH", "/bin"), ("TRAEFIK_VERSION", "1.7")]);
    assert_eq!(
        l.source,
        Source::Defaults,
        "unrelated TRAEFIK_ vars do not count"
    );
    let c = &l.config;
    assert_eq!(c.entry_points.len(), 1);
    let http = &c.entry_points["http"];
    assert_eq!(http.address, addr("0.0.0.0:80"));
    assert!(!http.forwarded_headers.insecure);
    assert_eq!(http.timeouts.read, Some(Duration::from_secs(60)));
    assert_eq!(http.timeouts.write, None);
    assert_eq!(http.timeouts.idle, Some(Duration::from_secs(180)));
    assert_eq!(http.life_cycle.grace, Duration::from_secs(10));
    assert_eq!(c.api, None);
    assert_eq!(c.providers.swarm, None);
    assert_eq!(c.providers.throttle_duration, Duration::from_secs(2));
    assert_eq!(c.log.level, LogLevel::Error);
    assert_eq!(c.servers_transport.max_idle_conns_per_host, 200);
    assert_eq!(
        c.servers_transport.dial_timeout,
        Some(Duration::from_secs(30))
    );
    assert_eq!(c.generation, Generation::V3);
    assert!(l.warnings.is_empty());
}

#[test]
fn flags_decode_into_typed_config_with_swarm_defaults() {
    let env = Env::new();
    let l = env.ok(
        &[
            "--entrypoints.web.address=:8000",
            "--providers.swarm",
            "--providers.swarm.network=traefik-net",
            "--api.insecure",
            "--log.level=DEBUG",
            "--accesslog.format=json",
        ],
        &[],
    );
    assert_eq!(l.source, Source::Flags);
    let c = &l.config;
    assert_eq!(c.entry_points["web"].address, addr("0.0.0.0:8000"));
    assert!(
        !c.entry_points.contains_key("http"),
        "http only when none is given"
    );
    assert_eq!(
        c.entry_points[INTERNAL_ENTRY_POINT].address,
        addr("0.0.0.0:8080"),
        "api.insecure creates the traefik entry point"
    );
    let swarm = c.providers.swarm.as_ref().unwrap();
    assert_eq!(swarm.endpoint, "unix:///var/run/docker.sock");
    assert_eq!(swarm.network.as_deref(), Some("traefik-net"));
    assert!(swarm.exposed_by_default);
    assert_eq!(swarm.default_rule, "Host(`{{ normalize .Name }}`)");
    assert_eq!(swarm.refresh, Duration::from_secs(15));
    assert!(swarm.watch);
    assert_eq!(swarm.v1, None);
    let api = c.api.as_ref().unwrap();
    assert!(api.insecure && api.dashboard && !api.debug);
    assert_eq!(api.base_path, "/");
    assert_eq!(c.log.level, LogLevel::Debug);
    assert_eq!(c.access_log.as_ref().unwrap().format, AccessLogFormat::Json);
    assert_eq!(c.default_entry_points(), vec!["web"]);
}

#[test]
fn keys_are_case_insensitive_and_lists_split_on_commas() {
    let env = Env::new();
    let l = env.ok(
        &[
            "--entryPoints.Web.Address=:81",
            "--ENTRYPOINTS.Web.forwardedheaders.trustedips=1.2.3.4,10.0.0.0/8",
            "--entrypoints.Web.forwardedHeaders.trustedIPs=::1",
            "--Metrics.Prometheus.Buckets=0.5,1,2.5",
        ],
        &[],
    );
    let ep = &l.config.entry_points["Web"];
    assert_eq!(ep.address, addr("0.0.0.0:81"));
    let ips: Vec<String> = ep
        .forwarded_headers
        .trusted_ips
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        ips,
        vec!["1.2.3.4/32", "10.0.0.0/8", "::1/128"],
        "repeated list flags join"
    );
    assert_eq!(
        l.config.metrics.as_ref().unwrap().buckets,
        vec![0.5, 1.0, 2.5]
    );
}

#[test]
fn space_separated_values_and_bare_boolean_flags() {
    let env = Env::new();
    let l = env.ok(
        &[
            "--log.level",
            "info",
            "--api.insecure",
            "--entrypoints.web.address",
            ":80",
            "--ping",
            "--metrics.prometheus",
            "--api.dashboard=false",
        ],
        &[],
    );
    let c = &l.config;
    assert_eq!(c.log.level, LogLevel::Info);
    assert!(c.api.as_ref().unwrap().insecure);
    assert!(!c.api.as_ref().unwrap().dashboard);
    assert_eq!(c.entry_points["web"].address, addr("0.0.0.0:80"));
    let ping = c.ping.as_ref().unwrap();
    assert_eq!(ping.entry_point, "traefik");
    assert_eq!(ping.terminating_status_code, 503);
    let prom = c.metrics.as_ref().unwrap();
    assert_eq!(prom.buckets, vec![0.1, 0.3, 1.2, 5.0]);
    assert!(prom.add_entry_points_labels && prom.add_services_labels && !prom.add_routers_labels);
    assert!(c.entry_points.contains_key("traefik"));
}

#[test]
fn false_disables_an_optional_section() {
    let env = Env::new();
    let l = env.ok(&["--ping=false", "--providers.swarm=false", "--api"], &[]);
    assert_eq!(l.config.ping, None);
    assert_eq!(l.config.providers.swarm, None);
    let api = l.config.api.as_ref().unwrap();
    assert!(!api.insecure, "v3 --api alone is not insecure");
    assert!(!l.config.entry_points.contains_key("traefik"));
}

#[test]
fn a_found_file_wins_over_flags_and_env_with_warnings() {
    let env = Env::new();
    let path = env.file(
        "traefik.yml",
        "entryPoints:\n  web:\n    address: ':9000'\n",
    );
    let l = env.ok(
        &["--entrypoints.web.address=:1", "--api.insecure"],
        &[("TRAEFIK_LOG_LEVEL", "DEBUG")],
    );
    assert_eq!(l.source, Source::File(path.clone()));
    assert_eq!(l.config.entry_points["web"].address, addr("0.0.0.0:9000"));
    assert_eq!(l.config.api, None);
    assert_eq!(l.config.log.level, LogLevel::Error);
    let w: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
    let ignored = format!(
        "ignored: the configuration comes from {} (Traefik reads a single source)",
        path.display()
    );
    assert!(
        has(
            &w,
            &format!("flag `--entrypoints.web.address=:1`: {ignored}")
        ),
        "{w:#?}"
    );
    assert!(
        has(&w, &format!("flag `--api.insecure`: {ignored}")),
        "{w:#?}"
    );
    assert!(
        w.iter()
            .any(|l| l.starts_with("environment variable TRAEFIK_LOG_LEVEL: ignored")),
        "{w:#?}"
    );
}

#[test]
fn flags_win_over_env_and_env_is_used_alone() {
    let env = Env::new();
    let vars = [
        ("TRAEFIK_ENTRYPOINTS_WEB_ADDRESS", ":7000"),
        ("TRAEFIK_API_INSECURE", "true"),
        ("TRAEFIK_PROVIDERS_SWARM_ENDPOINT", "tcp://127.0.0.1:2375"),
        ("ESCALE_PROVIDERS_SWARM_ENDPOINT", "unix:///run/docker.sock"),
        ("TRAEFIK_PROVIDERS_SWARM_EXPOSEDBYDEFAULT", "false"),
    ];
    let l = env.ok(&["--entrypoints.web.address=:6000"], &vars);
    assert_eq!(l.source, Source::Flags);
    assert_eq!(l.config.entry_points["web"].address, addr("0.0.0.0:6000"));
    assert_eq!(
        l.warnings.len(),
        vars.len(),
        "each ignored variable is named"
    );

    let l = env.ok(&[], &vars);
    assert_eq!(l.source, Source::Env);
    let c = &l.config;
    assert_eq!(c.entry_points["web"].address, addr("0.0.0.0:7000"));
    assert!(c.api.as_ref().unwrap().insecure);
    let swarm = c.providers.swarm.as_ref().unwrap();
    assert_eq!(
        swarm.endpoint, "unix:///run/docker.sock",
        "ESCALE_ wins over TRAEFIK_"
    );
    assert!(!swarm.exposed_by_default);
}

#[test]
fn env_problems_name_the_variable() {
    let env = Env::new();
    let errors = env.errors(
        &[],
        &[
            ("TRAEFIK_ENTRYPOINTS_WEB_ADRESS", ":80"),
            ("TRAEFIK_LOG_LEVEL", "loud"),
        ],
    );
    assert!(
        has(
            &errors,
            "environment variable TRAEFIK_ENTRYPOINTS_WEB_ADRESS: unknown key `entrypoints.web.adress`, did you mean `address`?"
        ),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("environment variable TRAEFIK_LOG_LEVEL: `log.level` \"loud\"")),
        "{errors:#?}"
    );
    // A near miss at the top is not a source, but it is said.
    let l = env.ok(&[], &[("TRAEFIK_ENTRYPIONTS_WEB_ADDRESS", ":80")]);
    assert_eq!(l.source, Source::Defaults);
    assert!(
        l.warnings[0]
            .to_string()
            .contains("did you mean `entrypoints`?"),
        "{:?}",
        l.warnings
    );
}

#[test]
fn explicit_config_file_is_used_and_must_exist() {
    let env = Env::new();
    env.file("traefik.toml", "[entryPoints.web]\naddress = \":1\"\n");
    let custom = env.file(
        "conf/custom.yaml",
        "entryPoints:\n  web:\n    address: ':2'\n",
    );
    let l = env.ok(&["--configFile=conf/custom.yaml"], &[]);
    assert_eq!(l.source, Source::File(custom));
    assert_eq!(l.config.entry_points["web"].address, addr("0.0.0.0:2"));
    assert!(
        l.warnings.is_empty(),
        "--configFile itself is not an ignored flag"
    );

    let l = env.ok(&["--configfile", "conf/custom.yaml"], &[]);
    assert_eq!(l.config.entry_points["web"].address, addr("0.0.0.0:2"));

    let errors = env.errors(&["--configFile=nope.toml"], &[]);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("flag `--configFile=nope.toml`: configuration file"),
        "{errors:?}"
    );
}

#[test]
fn search_order_is_directories_then_toml_yaml_yml() {
    let env = Env::new();
    env.file("traefik.yml", "entryPoints:\n  web:\n    address: ':3'\n");
    env.file("traefik.toml", "[entryPoints.web]\naddress = \":4\"\n");
    assert_eq!(
        env.ok(&[], &[]).config.entry_points["web"].address.port(),
        4
    );
    env.file(
        "etc/traefik.yaml",
        "entryPoints:\n  web:\n    address: ':5'\n",
    );
    assert_eq!(
        env.ok(&[], &[]).config.entry_points["web"].address.port(),
        5
    );

    let std = SearchPaths::standard(
        Path::new("/work"),
        &[
            ("HOME".to_string(), "/home/u".to_string()),
            ("XDG_CONFIG_HOME".to_string(), "/xdg".to_string()),
        ],
    );
    let dirs: Vec<&str> = std.dirs.iter().map(|d| d.to_str().unwrap()).collect();
    assert_eq!(
        dirs,
        vec!["/etc/traefik", "/xdg", "/home/u/.config", "/work"]
    );
}

#[test]
fn unknown_keys_are_all_reported_with_the_nearest_valid_key() {
    let env = Env::new();
    let errors = env.errors(
        &[
            "--entrypoints.web.adress=:80",
            "--providers.swarm.netwrok=traefik-net",
            "--api.insecur",
            "--lgo.level=DEBUG",
            "--entrypoints.web.transport.respondingTimeouts.readTimeuot=5s",
        ],
        &[],
    );
    for want in [
        "flag `--entrypoints.web.adress=:80`: unknown key `entrypoints.web.adress`, did you mean `address`?",
        "flag `--providers.swarm.netwrok=traefik-net`: unknown key `providers.swarm.netwrok`, did you mean `network`?",
        "flag `--api.insecur`: unknown key `api.insecur`, did you mean `insecure`?",
        "flag `--lgo.level=DEBUG`: unknown key `lgo`, did you mean `log`?",
        "flag `--entrypoints.web.transport.respondingTimeouts.readTimeuot=5s`: unknown key `entrypoints.web.transport.respondingTimeouts.readTimeuot`, did you mean `readTimeout`?",
    ] {
        assert!(has(&errors, want), "missing {want:?} in {errors:#?}");
    }
}

#[test]
fn real_traefik_keys_escale_lacks_are_warnings_typos_below_them_are_errors() {
    let env = Env::new();
    let l = env.ok(
        &[
            "--entrypoints.web.address=:80",
            "--tracing.otlp=true",
            "--certificatesresolvers.le.acme.email=a@example.com",
            "--providers.kubernetescrd",
            "--entrypoints.web.http.tls.certresolver=le",
            "--entrypoints.web.http2.maxConcurrentStreams=10",
            "--global.checkNewVersion=true",
            "--global.sendAnonymousUsage",
        ],
        &[],
    );
    let w: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
    for want in [
        "flag `--tracing.otlp=true`: `tracing` is not supported by escale and is ignored",
        "flag `--certificatesresolvers.le.acme.email=a@example.com`: `certificatesresolvers` is not supported by escale and is ignored",
        "flag `--providers.kubernetescrd`: `providers.kubernetescrd` is not supported by escale and is ignored",
        "flag `--entrypoints.web.http.tls.certresolver=le`: `entrypoints.web.http.tls.certresolver` is not supported by escale and is ignored",
        "flag `--entrypoints.web.http2.maxConcurrentStreams=10`: `entrypoints.web.http2` is not supported by escale and is ignored",
    ] {
        assert!(has(&w, want), "missing {want:?} in {w:#?}");
    }
    assert_eq!(w.len(), 5, "global.* is accepted silently: {w:#?}");

    let errors = env.errors(&["--tracing.otlp.grcp.endpoint=x"], &[]);
    assert!(
        has(
            &errors,
            "flag `--tracing.otlp.grcp.endpoint=x`: unknown key `tracing.otlp.grcp.endpoint`, did you mean `grpc`?"
        ),
        "{errors:#?}"
    );
}

#[test]
fn every_traefik_v3_key_is_either_supported_or_a_warning() {
    for (pattern, kind) in STATIC_KEYS {
        let key = pattern.replace("<name>", "x").replace("[n]", "[0]");
        let value = match kind {
            KeyKind::Bool => Node::Flag,
            KeyKind::Value => Node::Str("1".into()),
        };
        let (node, issues) = Node::from_flat_nodes(vec![(key.clone(), value)]);
        assert!(issues.is_empty(), "{key}: {issues:?}");
        let decoded = tree::decode::<raw::RawStatic>(&node);
        assert!(decoded.value.is_some(), "{key}");
        for f in classify(&decoded.errors, &decoded.warnings, &node) {
            assert!(
                !f.message.starts_with("unknown key"),
                "{key}: {}",
                f.message
            );
        }
    }
}

#[test]
fn seed_v1_flags_map_to_the_swarm_provider() {
    let env = Env::new();
    let l = env.ok(
        &[
            "--docker.swarmmode",
            "--docker.domain=docker.localhost",
            "--api",
        ],
        &[],
    );
    let c = &l.config;
    assert_eq!(c.generation, Generation::V1);
    assert_eq!(c.providers.docker, None);
    let swarm = c.providers.swarm.as_ref().expect("swarm provider");
    assert_eq!(
        swarm.v1,
        Some(V1Docker {
            domain: Some("docker.localhost".into())
        })
    );
    assert_eq!(swarm.endpoint, "unix:///var/run/docker.sock");
    assert!(swarm.watch && swarm.exposed_by_default);
    let api = c.api.as_ref().unwrap();
    assert!(api.insecure && api.dashboard, "v1 serves the API on :8080");
    assert_eq!(c.entry_points["traefik"].address, addr("0.0.0.0:8080"));
    let http = &c.entry_points["http"];
    assert_eq!(http.address, addr("0.0.0.0:80"));
    assert!(http.as_default, "v1 defaultEntryPoints is http");
    assert!(
        http.forwarded_headers.insecure,
        "v1 trusts forwarded headers"
    );
    assert_eq!(c.default_entry_points(), vec!["http"]);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn full_v1_command_line() {
    let env = Env::new();
    let l = env.ok(
        &[
            "--docker",
            "--docker.swarmMode=true",
            "--docker.network=traefik-net",
            "--docker.exposedbydefault=false",
            "--docker.watch",
            "--docker.endpoint=tcp://127.0.0.1:2375",
            "--web",
            "--entryPoints=Name:http Address::80 Redirect.EntryPoint:https",
            "--entryPoints",
            "Name:https Address::443 TLS ForwardedHeaders.TrustedIPs:10.0.0.0/8",
            "--defaultentrypoints=http,https",
            "--logLevel=INFO",
        ],
        &[],
    );
    let c = &l.config;
    assert_eq!(c.generation, Generation::V1);
    let swarm = c.providers.swarm.as_ref().unwrap();
    assert_eq!(swarm.network.as_deref(), Some("traefik-net"));
    assert!(!swarm.exposed_by_default);
    assert_eq!(swarm.endpoint, "tcp://127.0.0.1:2375");
    assert_eq!(swarm.v1, Some(V1Docker { domain: None }));
    assert!(c.api.as_ref().unwrap().insecure);
    let http = &c.entry_points["http"];
    assert_eq!(
        http.redirect,
        Some(EntryPointRedirect {
            to: RedirectTarget::EntryPoint("https".into()),
            scheme: "https".into(),
            permanent: false,
            priority: i64::MAX - 1,
        })
    );
    let https = &c.entry_points["https"];
    assert_eq!(https.address, addr("0.0.0.0:443"));
    assert!(!https.forwarded_headers.insecure);
    assert_eq!(
        https.forwarded_headers.trusted_ips[0].to_string(),
        "10.0.0.0/8"
    );
    assert!(http.as_default && https.as_default);
    assert!(!c.entry_points["traefik"].as_default);
    assert_eq!(c.log.level, LogLevel::Info);
    let w: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(
        w[0],
        "flag `--entryPoints Name:https Address::443 TLS ForwardedHeaders.TrustedIPs:10.0.0.0/8`: Traefik v1 entry point option `tls` (entry point `https`) is not supported by escale and is ignored"
    );
}

#[test]
fn v1_mistakes_are_reported() {
    let env = Env::new();
    let errors = env.errors(
        &[
            "--docker.domian=x",
            "--entryPoints=Address::80",
            "--entryPoints=Name:a Adress::81",
            "--defaultentrypoints=nope",
        ],
        &[],
    );
    for want in [
        "flag `--docker.domian=x`: unknown Traefik v1 option `docker.domian`, did you mean `docker.domain`?",
        "flag `--entryPoints=Address::80`: Traefik v1 entry point \"Address::80\" has no `Name:`",
        "flag `--entryPoints=Name:a Adress::81`: unknown Traefik v1 entry point option `adress`, did you mean `address`?",
        "flag `--entryPoints=Name:a Adress::81`: Traefik v1 entry point `a` has no `Address:`",
        "flag `--defaultentrypoints=nope`: `defaultEntryPoints` names entry point `nope`, which is not defined",
    ] {
        assert!(has(&errors, want), "missing {want:?} in {errors:#?}");
    }
}

#[test]
fn v2_docker_swarm_mode_becomes_the_swarm_provider() {
    let env = Env::new();
    env.file(
        "traefik.toml",
        "[providers.docker]\nswarmMode = true\nnetwork = \"net\"\nswarmModeRefreshSeconds = 30\n",
    );
    let l = env.ok(&[], &[]);
    assert_eq!(l.config.generation, Generation::V2);
    assert_eq!(l.config.providers.docker, None);
    let swarm = l.config.providers.swarm.as_ref().unwrap();
    assert_eq!(swarm.network.as_deref(), Some("net"));
    assert_eq!(swarm.refresh, Duration::from_secs(30));
    let w = l.warnings[0].to_string();
    assert!(w.ends_with(":2: `providers.docker.swarmMode` was removed in Traefik v3 (which refuses to start with it); escale reads these settings as `providers.swarm`"), "{w}");
}

#[test]
fn file_problems_name_file_and_line() {
    let env = Env::new();
    let path = env.file(
        "traefik.yml",
        "\
entryPoints:
  web:
    address: ':80'
    adress: ':81'
  bad:
    address: 'example.com:80'
log:
  level: LOUD
providers:
  swarm:
    refreshSeconds: soon
",
    );
    let errors = env.errors(&[], &[]);
    let p = path.display();
    for want in [
        format!("{p}:4: unknown key `entryPoints.web.adress`, did you mean `address`?"),
        format!("{p}:6: `entryPoints.bad.address`: host `example.com` must be an IP address"),
        format!(
            "{p}:8: `log.level` \"LOUD\" is not a level (trace, debug, info, warn, error, fatal, panic)"
        ),
    ] {
        assert!(has(&errors, &want), "missing {want:?} in {errors:#?}");
    }
    assert!(
        errors.iter().any(|e| e.starts_with(&format!(
            "{p}:11: `providers.swarm.refreshSeconds`: invalid duration"
        ))),
        "{errors:#?}"
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

#[test]
fn toml_static_file_and_syntax_errors() {
    let env = Env::new();
    env.file(
        "traefik.toml",
        r#"
[global]
  checkNewVersion = false
  sendAnonymousUsage = false

[entryPoints]
  [entryPoints.web]
    address = ":80"
    [entryPoints.web.http.redirections.entryPoint]
      to = "websecure"
      scheme = "https"
  [entryPoints.websecure]
    address = ":443"
    asDefault = true
    [entryPoints.websecure.transport.respondingTimeouts]
      readTimeout = "30s"
      idleTimeout = 0
      readHeaderTimeout = "5s"
    [entryPoints.websecure.transport.lifeCycle]
      requestAcceptGraceTimeout = "2s"
      graceTimeOut = 5

[providers]
  providersThrottleDuration = "500ms"
  [providers.file]
    directory = "/etc/escale/dynamic"
    watch = false

[serversTransport]
  maxIdleConnsPerHost = 0
  [serversTransport.forwardingTimeouts]
    responseHeaderTimeout = "20s"
    idleConnTimeout = 0

[accessLog]
  bufferingSize = 100
  [accessLog.fields]
    defaultMode = "keep"
    [accessLog.fields.names]
      ClientUsername = "drop"
    [accessLog.fields.headers]
      defaultMode = "keep"
      [accessLog.fields.headers.names]
        Authorization = "redact"
"#,
    );
    let l = env.ok(&[], &[]);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = &l.config;
    let web = &c.entry_points["web"];
    assert_eq!(
        web.redirect.as_ref().unwrap().to,
        RedirectTarget::EntryPoint("websecure".into())
    );
    assert!(web.redirect.as_ref().unwrap().permanent);
    let ws = &c.entry_points["websecure"];
    assert_eq!(ws.timeouts.read, Some(Duration::from_secs(30)));
    assert_eq!(ws.timeouts.idle, None);
    assert_eq!(ws.timeouts.read_header, Some(Duration::from_secs(5)));
    assert_eq!(ws.life_cycle.request_accept_grace, Duration::from_secs(2));
    assert_eq!(ws.life_cycle.grace, Duration::from_secs(5));
    assert_eq!(c.default_entry_points(), vec!["websecure"]);
    assert_eq!(c.providers.throttle_duration, Duration::from_millis(500));
    assert_eq!(
        c.providers.file,
        Some(FileProvider {
            source: FileSource::Directory("/etc/escale/dynamic".into()),
            watch: false
        })
    );
    assert_eq!(c.servers_transport.max_idle_conns_per_host, 2);
    assert_eq!(
        c.servers_transport.response_header_timeout,
        Some(Duration::from_secs(20))
    );
    assert_eq!(c.servers_transport.idle_conn_timeout, None);
    let al = c.access_log.as_ref().unwrap();
    assert_eq!(al.buffering_size, 100);
    assert_eq!(al.fields.names["ClientUsername"], FieldMode::Drop);
    assert_eq!(al.fields.header_names["Authorization"], FieldMode::Redact);
    assert_eq!(al.fields.headers_default_mode, FieldMode::Keep);

    let env = Env::new();
    let path = env.file(
        "traefik.toml",
        "[entryPoints.web]\naddress = \":80\"\nport = = 3\n",
    );
    let errors = env.errors(&[], &[]);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(&format!("{}:3: syntax error at column", path.display())),
        "{errors:?}"
    );
    let env = Env::new();
    let path = env.file(
        "traefik.yaml",
        "entryPoints:\n  web:\n   address: ':80'\n  - x\n",
    );
    let errors = env.errors(&[], &[]);
    assert!(
        errors[0].starts_with(&format!("{}:4: syntax error", path.display())),
        "{errors:?}"
    );
}

#[test]
fn validation_reports_every_problem_at_once() {
    let env = Env::new();
    let errors = env.errors(
        &[
            "--entrypoints.a.address=:80",
            "--entrypoints.b.address=:80",
            "--entrypoints.c.address=:8x",
            "--entrypoints.d.address=:81",
            "--entrypoints.d.forwardedheaders.trustedips=10.0.0.0/8,not-an-ip",
            "--entrypoints.e.address=:82",
            "--entrypoints.e.http.redirections.entrypoint.to=nowhere",
            "--entrypoints.f",
            "--ping.entrypoint=missing",
            "--providers.file",
            "--providers.swarm.endpoint=/var/run/docker.sock",
            "--api.basepath=dashboard",
        ],
        &[],
    );
    for want in [
        "flag `--entrypoints.b.address=:80`: entry points `a` and `b` both listen on 0.0.0.0:80",
        "flag `--entrypoints.c.address=:8x`: `entryPoints.c.address`: invalid port \"8x\"",
        "flag `--entrypoints.d.forwardedheaders.trustedips=10.0.0.0/8,not-an-ip`: `entryPoints.d.forwardedHeaders.trustedIPs`: \"not-an-ip\" is neither an IP address nor a CIDR range",
        "flag `--entrypoints.e.http.redirections.entrypoint.to=nowhere`: entry point `e` redirects to entry point `nowhere`, which is not defined",
        "flag `--entrypoints.f`: entry point `f` has no address",
        "flag `--ping.entrypoint=missing`: `ping.entryPoint` names entry point `missing`, which is not defined",
        "flag `--providers.file`: `providers.file` needs a `filename` or a `directory`",
        "flag `--providers.swarm.endpoint=/var/run/docker.sock`: `providers.swarm.endpoint` \"/var/run/docker.sock\" must start with unix://, tcp://, http:// or https://",
        "flag `--api.basepath=dashboard`: `api.basePath` \"dashboard\" must start with `/`",
    ] {
        assert!(has(&errors, want), "missing {want:?} in {errors:#?}");
    }
    assert_eq!(errors.len(), 9, "{errors:#?}");
}

#[test]
fn argument_mistakes() {
    let env = Env::new();
    let errors = env.errors(&["stray", "--log.level"], &[]);
    assert!(
        has(
            &errors,
            "configuration: unexpected argument `stray` (options are written --key=value)"
        ),
        "{errors:#?}"
    );
    assert!(
        has(&errors, "flag `--log.level`: this option needs a value"),
        "{errors:#?}"
    );
    let errors = env.errors(&["--entrypoints..address=:80"], &[]);
    assert!(errors[0].contains("empty segment"), "{errors:?}");
}

#[test]
fn redirect_to_a_port_and_default_entry_points() {
    let env = Env::new();
    let l = env.ok(
        &[
            "--entrypoints.web.address=:80",
            "--entrypoints.web.http.redirections.entrypoint.to=:443",
            "--entrypoints.web.http.redirections.entrypoint.permanent=false",
            "--entrypoints.other.address=127.0.0.1:81",
            "--ping",
        ],
        &[],
    );
    let c = &l.config;
    let r = c.entry_points["web"].redirect.as_ref().unwrap();
    assert_eq!(r.to, RedirectTarget::Port(443));
    assert!(!r.permanent);
    assert_eq!(
        c.default_entry_points(),
        vec!["other", "web"],
        "all but traefik"
    );
}

#[test]
fn yaml_list_items_are_located() {
    let env = Env::new();
    let path = env.file(
        "traefik.yml",
        "\
entryPoints:
  web:
    address: ':80'
    forwardedHeaders:
      trustedIPs:
        - 10.0.0.0/8
        - 300.1.1.1
metrics:
  prometheus:
    buckets: [0.1, 0.05]
",
    );
    let errors = env.errors(&[], &[]);
    let p = path.display();
    assert!(
        has(
            &errors,
            &format!(
                "{p}:7: `entryPoints.web.forwardedHeaders.trustedIPs`: \"300.1.1.1\" is neither an IP address nor a CIDR range"
            )
        ),
        "{errors:#?}"
    );
    assert!(
        has(
            &errors,
            &format!("{p}:10: `metrics.prometheus.buckets` must be increasing numbers")
        ),
        "{errors:#?}"
    );
}

#[test]
fn v1_toml_file() {
    let env = Env::new();
    env.file(
        "traefik.toml",
        r#"
defaultEntryPoints = ["http", "https"]
logLevel = "DEBUG"

[entryPoints]
  [entryPoints.http]
  address = ":80"
    [entryPoints.http.redirect]
    entryPoint = "https"
  [entryPoints.https]
  address = ":443"
    [entryPoints.https.tls]

[docker]
endpoint = "unix:///var/run/docker.sock"
domain = "docker.localhost"
watch = true
swarmMode = true
constraints = ["tag==api"]

[api]
"#,
    );
    let l = env.ok(&[], &[]);
    let c = &l.config;
    assert_eq!(c.generation, Generation::V1);
    assert_eq!(c.log.level, LogLevel::Debug);
    let swarm = c.providers.swarm.as_ref().unwrap();
    assert_eq!(
        swarm.v1.as_ref().unwrap().domain.as_deref(),
        Some("docker.localhost")
    );
    let redirect = c.entry_points["http"].redirect.as_ref().unwrap();
    assert_eq!(redirect.to, RedirectTarget::EntryPoint("https".into()));
    assert!(c.entry_points["https"].as_default && c.entry_points["http"].as_default);
    assert!(c.api.as_ref().unwrap().insecure);
    let w: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w.iter().any(|l| l.ends_with(":12: Traefik v1 option `entryPoints.https.tls` is not supported by escale and is ignored")), "{w:#?}");
    assert!(w.iter().any(|l| l.ends_with(":19: Traefik v1 option `docker.constraints[0]` is not supported by escale and is ignored")), "{w:#?}");
}
