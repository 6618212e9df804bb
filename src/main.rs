//! The `escale` command line (TEMPORARY minimal flag parsing).

use std::time::Duration;

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
        } else {
            anyhow::bail!("unknown flag {arg}");
        }
    }
    config.file = source.map(|s| (s, watch));
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let running = app::start(config, Extensions::default()).await?;
        app::termination_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok(())
    })
}
