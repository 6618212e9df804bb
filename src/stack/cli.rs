//! `escale stack ...`: arguments and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::apply::{self, Options, Outcome};
use crate::config::duration::GoDuration;

/// Deploys the whole platform (networks, the proxy, services, per-tenant apps)
/// from one TOML file, idempotently. See the README (`escale stack`) for the file format.
#[derive(Debug, Parser)]
#[command(name = "escale stack", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Shows what `up` would create, update and remove, field by field. Changes nothing.
    Plan {
        #[command(flatten)]
        common: Common,
        /// Also list owned objects that are no longer in the file as removals.
        #[arg(long)]
        prune: bool,
    },
    /// Validates, then creates what is missing and updates what changed; waits
    /// for convergence and checks each route through the proxy.
    Up {
        #[command(flatten)]
        common: Common,
        /// Remove owned services (and networks) that are no longer in the file.
        #[arg(long)]
        prune: bool,
        /// Skip the route checks through the proxy.
        #[arg(long)]
        no_check: bool,
    },
    /// Services, replicas, tasks and routes of the stack.
    Ps {
        #[command(flatten)]
        common: Common,
    },
    /// Sets the replicas of services: `escale stack scale FILE cdn=3 saas=2`.
    Scale {
        #[command(flatten)]
        common: Common,
        /// SERVICE=REPLICAS pairs; SERVICE is the name in the file.
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    /// Removes every service and network the stack owns, and nothing else.
    Down {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// The stack file (TOML).
    file: PathBuf,
    /// Prefix for every object name and for the owner label (overrides `[stack] prefix`).
    #[arg(long)]
    prefix: Option<String>,
    /// Images may be missing locally because the nodes can pull them.
    #[arg(long)]
    pull: bool,
    /// Bound on each wait (convergence, route checks, removal), e.g. 90s or 2m.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    timeout: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    GoDuration::parse(s).map(|d| d.0).map_err(|e| e.to_string())
}

impl Common {
    fn options(&self) -> Options {
        Options {
            prefix: self.prefix.clone(),
            pull: self.pull,
            timeout: self.timeout,
            ..Options::default()
        }
    }
}

/// Runs `escale stack` with the arguments after `stack`.
pub fn main(args: &[String]) -> ExitCode {
    let argv = std::iter::once("escale stack".to_string()).chain(args.iter().cloned());
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("escale stack: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match &cli.command {
            Command::Plan { common, prune } => {
                let opts = Options {
                    prune: *prune,
                    ..common.options()
                };
                apply::plan(&common.file, &opts).await
            }
            Command::Up {
                common,
                prune,
                no_check,
            } => {
                let opts = Options {
                    prune: *prune,
                    check_routes: !no_check,
                    ..common.options()
                };
                apply::up(&common.file, &opts).await
            }
            Command::Ps { common } => apply::ps(&common.file, &common.options()).await,
            Command::Scale { common, pairs } => {
                apply::scale(&common.file, pairs, &common.options()).await
            }
            Command::Down { common } => apply::down(&common.file, &common.options()).await,
        }
    });
    match outcome {
        Outcome::Done => ExitCode::SUCCESS,
        Outcome::Invalid => ExitCode::from(1),
        Outcome::Failed => ExitCode::from(3),
    }
}
