//! The `escale` command line (TEMPORARY minimal flag parsing).

use std::time::Duration;

use escale::admin::{self, ApiConfig, PingConfig, PrometheusConfig};
use escale::app::{self, AppConfig, EntrypointSpec, Extensions};
use escale::provider::file::FileSource;
use escale::proxy::server::ServerTimeouts;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ESCALE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut config = AppConfig::default();
    let mut watch = false;
    let mut source = None;
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let healthcheck = args.first().is_some_and(|a| a == "healthcheck");
    if healthcheck {
        args.remove(0);
    }
    let on = |v: &str| v == "true";
    for arg in args {
        let (k, v) = arg
            .trim_start_matches("--")
            .split_once('=')
            .unwrap_or((&arg, "true"));
        let k = k.trim_start_matches("--").to_ascii_lowercase();
        if let Some(name) = k
            .strip_prefix("entrypoints.")
            .and_then(|r| r.strip_suffix(".address"))
        {
            let addr = if v.starts_with(':') {
                format!("0.0.0.0{v}")
            } else {
                v.to_string()
            };
            config.entrypoints.push(EntrypointSpec {
                name: name.to_string(),
                address: addr.parse()?,
                forwarded: Default::default(),
                timeouts: ServerTimeouts::default(),
                accept_grace: Duration::ZERO,
                as_default: false,
            });
        } else if k == "providers.file.filename" {
            source = Some(FileSource::File(v.into()));
        } else if k == "providers.file.directory" {
            source = Some(FileSource::Directory(v.into()));
        } else if k == "providers.file.watch" {
            watch = v == "true";
        } else if k == "api" {
            config.admin.api = on(v).then(ApiConfig::default);
        } else if let Some(opt) = k.strip_prefix("api.") {
            let api = config.admin.api.get_or_insert_with(ApiConfig::default);
            match opt {
                "insecure" => api.insecure = on(v),
                "dashboard" => api.dashboard = on(v),
                _ => anyhow::bail!("unknown flag {arg}"),
            }
        } else if k == "ping" {
            config.admin.ping = on(v).then(PingConfig::default);
        } else if let Some(opt) = k.strip_prefix("ping.") {
            let ping = config.admin.ping.get_or_insert_with(PingConfig::default);
            match opt {
                "entrypoint" => ping.entry_point = v.to_string(),
                "manualrouting" => ping.manual_routing = on(v),
                "terminatingstatuscode" => ping.terminating_status_code = v.parse()?,
                _ => anyhow::bail!("unknown flag {arg}"),
            }
        } else if k == "metrics.prometheus" {
            config.admin.prometheus = on(v).then(PrometheusConfig::default);
        } else if let Some(opt) = k.strip_prefix("metrics.prometheus.") {
            let p = config
                .admin
                .prometheus
                .get_or_insert_with(PrometheusConfig::default);
            match opt {
                "entrypoint" => p.entry_point = v.to_string(),
                "manualrouting" => p.manual_routing = on(v),
                "addentrypointslabels" => p.add_entry_points_labels = on(v),
                "addrouterslabels" => p.add_routers_labels = on(v),
                "addserviceslabels" => p.add_services_labels = on(v),
                "buckets" => {
                    p.buckets = v
                        .split(',')
                        .map(|b| b.trim().parse::<f64>())
                        .collect::<Result<_, _>>()?
                }
                _ => anyhow::bail!("unknown flag {arg}"),
            }
        } else if k == "accesslog" {
            config.admin.access_log = on(v);
        } else {
            anyhow::bail!("unknown flag {arg}");
        }
    }
    config.file = source.map(|s| (s, watch));
    if healthcheck {
        return run_healthcheck(&config);
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let running = app::start(config, Extensions::default()).await?;
        app::termination_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok(())
    })
}

/// `escale healthcheck`: probe `/ping` on the ping entrypoint; exit 0 when
/// healthy, 1 otherwise (as `traefik healthcheck`).
fn run_healthcheck(config: &AppConfig) -> anyhow::Result<()> {
    let Some(ping) = &config.admin.ping else {
        eprintln!("please enable `ping` to use health check");
        std::process::exit(1);
    };
    let address = config
        .entrypoints
        .iter()
        .find(|e| e.name == ping.entry_point)
        .map(|e| e.address)
        .or_else(|| {
            (ping.entry_point == admin::INTERNAL_ENTRYPOINT)
                .then(|| config.admin.implicit_entrypoint_address())
        });
    let Some(address) = address else {
        eprintln!("ping: missing entry point {}", ping.entry_point);
        std::process::exit(1);
    };
    match admin::healthcheck::probe(address, Duration::from_secs(5)) {
        Ok(()) => {
            println!(
                "OK: http://{}/ping",
                admin::healthcheck::probe_address(address)
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
