//! The `escale` command line (TEMPORARY minimal flag parsing).

use std::time::Duration;

use escale::app::{self, AppConfig, EntrypointSpec, Extensions};
use escale::provider::file::FileSource;
use escale::provider::swarm::SwarmConfig;
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
    for arg in std::env::args().skip(1) {
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
        } else if let Some(key) = k
            .strip_prefix("providers.swarm")
            .map(|r| ("v3", r))
            .or_else(|| k.strip_prefix("docker").map(|r| ("v1", r)))
        {
            swarm_flag(&mut config, key, v)?;
        } else {
            anyhow::bail!("unknown flag {arg}");
        }
    }
    config.file = source.map(|s| (s, watch));
    if config.entrypoints.is_empty() {
        // Traefik's default: one `http` entrypoint on :80.
        config.entrypoints.push(EntrypointSpec {
            name: "http".into(),
            address: "0.0.0.0:80".parse()?,
            forwarded: Default::default(),
            timeouts: ServerTimeouts::default(),
            accept_grace: Duration::ZERO,
            as_default: true,
        });
    }
    if let Some(sc) = &config.swarm
        && let Err(errors) = sc.label_defaults()
    {
        anyhow::bail!("swarm provider: {}", errors.join("; "));
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

/// `--providers.swarm.*` (v3) and `--docker.*` (Traefik 1, swarm mode only).
fn swarm_flag(
    config: &mut AppConfig,
    (generation, key): (&str, &str),
    v: &str,
) -> anyhow::Result<()> {
    let base = if generation == "v1" {
        SwarmConfig::v1()
    } else {
        SwarmConfig::default()
    };
    let bool_value = || -> anyhow::Result<bool> {
        match v {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => anyhow::bail!("--{key}: `{v}` is not a boolean"),
        }
    };
    if key.is_empty() || key == ".swarmmode" {
        if bool_value()? {
            config.swarm.get_or_insert(base);
        }
        return Ok(());
    }
    let sc = config.swarm.get_or_insert(base);
    match key {
        ".endpoint" => sc.endpoint = v.to_string(),
        ".network" => sc.network = Some(v.to_string()).filter(|s| !s.is_empty()),
        ".exposedbydefault" => sc.exposed_by_default = bool_value()?,
        ".constraints" if generation == "v3" => sc.constraints = Some(v.to_string()),
        ".defaultrule" if generation == "v3" => sc.default_rule = v.to_string(),
        ".domain" if generation == "v1" => sc.domain = Some(v.to_string()),
        ".watch" => sc.watch = bool_value()?,
        ".refreshseconds" | ".swarmmoderefreshseconds" => {
            let d = escale::config::duration::GoDuration::parse(v)?;
            sc.refresh = d.0.max(Duration::from_secs(1));
        }
        _ => anyhow::bail!(
            "unknown flag --{}{key}",
            if generation == "v1" {
                "docker"
            } else {
                "providers.swarm"
            }
        ),
    }
    Ok(())
}
