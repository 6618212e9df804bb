//! The `escale` command line. With no subcommand it runs the proxy, as
//! `traefik` does; flags, configuration file and environment variables use
//! Traefik's static configuration keys.

use std::process::ExitCode;
use std::sync::Arc;

use escale::app::{self, AppConfig, Extensions};
use escale::config::static_config::{self, Loaded, SearchPaths};
use escale::proxy::access_log::AccessLog;
use escale::telemetry;

const HELP: &str = "\
escale: an edge reverse proxy for Docker Swarm, a drop-in for Traefik

Usage:
  escale [--key=value ...]        run the proxy
  escale check [--key=value ...]  validate the configuration; exit 1 on any error
  escale healthcheck [--key=...]  probe /ping on the ping entrypoint (for HEALTHCHECK)
  escale version                  print the version
  escale stack COMMAND FILE       deploy the platform from a stack file (plan, up, ps, scale, down)

Configuration uses Traefik v3 static keys, from flags (--entrypoints.web.address=:80),
a file (--configFile=traefik.yml, or traefik.toml/yml in /etc/traefik, $XDG_CONFIG_HOME,
$HOME/.config, .) or environment variables (TRAEFIK_... or ESCALE_...).
See README.md for the supported keys.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("stack") {
        return escale::stack::cli::main(&args[1..]);
    }
    let (command, rest) = match args.first().map(String::as_str) {
        Some(c @ ("version" | "healthcheck" | "check" | "help")) => (c, &args[1..]),
        Some("--version") => ("version", &args[1..]),
        Some("--help" | "-h") => ("help", &args[1..]),
        _ => ("run", &args[..]),
    };
    match command {
        "version" => {
            println!("escale {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        "help" => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        "healthcheck" => healthcheck(rest),
        "check" => check(rest),
        _ => run(rest),
    }
}

/// Loads the static configuration, printing every problem on failure.
fn load_static(args: &[String]) -> Option<Loaded> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    match static_config::load(args, &env, &SearchPaths::standard(&cwd, &env)) {
        Ok(loaded) => Some(loaded),
        Err(problems) => {
            eprintln!(
                "escale: the static configuration has {} error(s):",
                problems.len()
            );
            for p in problems {
                eprintln!("  {p}");
            }
            None
        }
    }
}

fn run(args: &[String]) -> ExitCode {
    let Some(loaded) = load_static(args) else {
        return ExitCode::FAILURE;
    };
    let _log_guard = match telemetry::init(&loaded.config) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("escale: {e}");
            return ExitCode::FAILURE;
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), source = ?loaded.source, "starting escale");

    let config = AppConfig::from_static(&loaded.config);
    if let Some(Err(errors)) = config.swarm.as_ref().map(|s| s.label_defaults()) {
        for e in errors {
            tracing::error!("providers.swarm: {e}");
        }
        return ExitCode::FAILURE;
    }
    let mut ext = Extensions::default();
    if let Some(al) = &loaded.config.access_log {
        ext.observers
            .push(Arc::new(AccessLog::new(telemetry::access_format(
                al.format,
            ))));
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("escale: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let running = match app::start(config, ext).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        app::termination_signal().await;
        tracing::info!("signal received: draining");
        running.shutdown().await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

fn check(args: &[String]) -> ExitCode {
    let Some(loaded) = load_static(args) else {
        return ExitCode::FAILURE;
    };
    let mut errors = 0;
    for w in &loaded.warnings {
        println!("warning: {w}");
    }
    let swarm = AppConfig::from_static(&loaded.config).swarm;
    if let Some(Err(problems)) = swarm.as_ref().map(|s| s.label_defaults()) {
        for p in problems {
            println!("error: providers.swarm: {p}");
            errors += 1;
        }
    }
    let report = escale::check::check_dynamic(&loaded.config);
    for issue in &report {
        println!("{issue}");
        if issue.severity == escale::provider::Severity::Error {
            errors += 1;
        }
    }
    if errors > 0 {
        println!("{errors} error(s)");
        ExitCode::FAILURE
    } else {
        println!("configuration OK");
        ExitCode::SUCCESS
    }
}

fn healthcheck(args: &[String]) -> ExitCode {
    let Some(loaded) = load_static(args) else {
        return ExitCode::FAILURE;
    };
    match escale::check::probe_ping(&loaded.config) {
        Ok(()) => {
            println!("OK: /ping answered 200");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("healthcheck failed: {e}");
            ExitCode::FAILURE
        }
    }
}
