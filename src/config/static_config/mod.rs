//! The static configuration (entry points, providers, API, ping, metrics,
//! logs), read the way Traefik reads it.
//!
//! Traefik takes its static configuration from exactly one source, tried in
//! this order (`cmd/traefik/traefik.go`, loaders File, Flag, Env):
//!
//! 1. a file: `--configFile=<path>`, or else the first of `traefik.toml`,
//!    `traefik.yaml`, `traefik.yml` in `/etc/traefik/`, `$XDG_CONFIG_HOME/`,
//!    `$HOME/.config/`, `.`; when a file is found, flags are ignored;
//! 2. the command-line flags, if there is any;
//! 3. the `TRAEFIK_*` environment variables (escale also reads `ESCALE_*`,
//!    which win over `TRAEFIK_*` for the same key).
//!
//! escale follows that rule but, unlike Traefik, warns about each source it
//! ignores. Traefik v1 flags (`--docker.swarmmode`, `--entryPoints=Name:http
//! Address::80`, ...) are translated to the v3 structure by [`legacy`].
//!
//! Loading goes source -> flat entries -> tree -> [`raw::RawStatic`] ->
//! [`StaticConfig`], and reports every problem, each naming its flag,
//! environment variable or file line.

mod legacy;
pub mod raw;
mod sources;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use super::file_format::{self, Format, Severity};
use super::traefik_keys::{self, KeyMatch};
use super::tree::{self, IssueKind, Node};
use sources::{Entry, EntryOrigin};

/// The checked static configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticConfig {
    pub entry_points: BTreeMap<String, EntryPoint>,
    pub providers: Providers,
    pub api: Option<Api>,
    pub ping: Option<Ping>,
    /// `metrics.prometheus`, the only metrics backend escale implements.
    pub metrics: Option<Prometheus>,
    pub log: Log,
    pub access_log: Option<AccessLog>,
    pub servers_transport: ServersTransport,
    /// Which Traefik generation the configuration is written for.
    pub generation: Generation,
}

/// The Traefik generation whose option names the user wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// Traefik 1.x flags or file (`--docker.swarmmode`, `--entryPoints=Name:...`).
    V1,
    /// Traefik 2.x-only options (`providers.docker.swarmMode`, `pilot`, `hub`).
    V2,
    V3,
}

/// Traefik's name for the entry point it creates for the API, ping and metrics.
pub const INTERNAL_ENTRY_POINT: &str = "traefik";

impl StaticConfig {
    /// Entry points for routers that name none, by Traefik's rule: those
    /// marked `asDefault`, or else all of them but `traefik`.
    pub fn default_entry_points(&self) -> Vec<String> {
        let marked: Vec<String> = self
            .entry_points
            .iter()
            .filter(|(_, ep)| ep.as_default)
            .map(|(n, _)| n.clone())
            .collect();
        if !marked.is_empty() {
            return marked;
        }
        self.entry_points
            .keys()
            .filter(|n| *n != INTERNAL_ENTRY_POINT)
            .cloned()
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EntryPoint {
    /// Where to listen. Traefik's `:80` (all interfaces) is `0.0.0.0:80`.
    pub address: SocketAddr,
    /// The address as written, for the API.
    pub address_text: String,
    pub as_default: bool,
    pub forwarded_headers: ForwardedHeaders,
    pub timeouts: RespondingTimeouts,
    pub life_cycle: LifeCycle,
    pub redirect: Option<EntryPointRedirect>,
    /// `http.tls`: the entrypoint terminates TLS for all its routers.
    pub tls: Option<EntryPointTls>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryPointTls {
    pub options: Option<String>,
}

/// Which clients may set `X-Forwarded-*` headers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ForwardedHeaders {
    /// Trust every client (Traefik v1's default).
    pub insecure: bool,
    pub trusted_ips: Vec<IpNet>,
}

/// `None` means no limit, as Traefik's `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespondingTimeouts {
    pub read: Option<Duration>,
    pub write: Option<Duration>,
    pub idle: Option<Duration>,
    /// escale extension (`readHeaderTimeout`); `None` leaves it to `read`.
    pub read_header: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifeCycle {
    /// How long to keep accepting requests after a stop signal.
    pub request_accept_grace: Duration,
    /// How long in-flight requests may take to finish after that.
    pub grace: Duration,
}

/// `entryPoints.<n>.http.redirections.entryPoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPointRedirect {
    pub to: RedirectTarget,
    pub scheme: String,
    pub permanent: bool,
    pub priority: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectTarget {
    /// Another entry point, whose port the redirect uses.
    EntryPoint(String),
    /// A port written as `:443`.
    Port(u16),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Providers {
    /// Minimum time between two configuration reloads from a provider.
    pub throttle_duration: Duration,
    pub file: Option<FileProvider>,
    pub swarm: Option<DockerProvider>,
    pub docker: Option<DockerProvider>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProvider {
    pub source: FileSource,
    pub watch: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    Filename(PathBuf),
    Directory(PathBuf),
}

/// `providers.swarm` or `providers.docker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerProvider {
    pub endpoint: String,
    pub network: Option<String>,
    pub exposed_by_default: bool,
    pub constraints: Option<String>,
    pub default_rule: String,
    /// Swarm only: Traefik's polling period; escale uses it as its resync
    /// period, since it reacts to events.
    pub refresh: Duration,
    pub watch: bool,
    pub use_bind_port_ip: bool,
    pub allow_empty_services: bool,
    /// Set when the provider was configured with Traefik v1 flags
    /// (`--docker.*`): labels then get Traefik v1 defaults.
    pub v1: Option<V1Docker>,
}

/// Traefik v1 docker settings with no v3 equivalent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct V1Docker {
    /// `--docker.domain`: v1's default rule is `Host:<service>.<domain>`.
    pub domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// Serve the API and dashboard on the `traefik` entry point directly.
    pub insecure: bool,
    pub dashboard: bool,
    pub debug: bool,
    pub base_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    pub entry_point: String,
    pub manual_routing: bool,
    /// Answered while draining after a stop signal.
    pub terminating_status_code: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prometheus {
    pub buckets: Vec<f64>,
    pub add_entry_points_labels: bool,
    pub add_routers_labels: bool,
    pub add_services_labels: bool,
    pub entry_point: String,
    pub manual_routing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub level: LogLevel,
    pub format: LogFormat,
    pub file_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
    Panic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Common,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    /// Standard output when `None`.
    pub file_path: Option<PathBuf>,
    pub format: AccessLogFormat,
    /// Lines buffered before writing (0: unbuffered).
    pub buffering_size: u64,
    pub fields: AccessLogFields,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    Common,
    GenericClf,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogFields {
    pub default_mode: FieldMode,
    pub names: BTreeMap<String, FieldMode>,
    pub headers_default_mode: FieldMode,
    pub header_names: BTreeMap<String, FieldMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldMode {
    Keep,
    Drop,
    Redact,
}

/// The default transport to backends (`serversTransport`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServersTransport {
    pub max_idle_conns_per_host: usize,
    /// `None` means no limit.
    pub dial_timeout: Option<Duration>,
    pub response_header_timeout: Option<Duration>,
    pub idle_conn_timeout: Option<Duration>,
    pub insecure_skip_verify: bool,
    /// CAs (paths or PEM text) for `https://` servers, instead of the
    /// system's.
    pub root_cas: Vec<String>,
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flags,
    File(PathBuf),
    Env,
    /// Nothing was given: Traefik's defaults.
    Defaults,
}

/// Where Traefik looks for `traefik.{toml,yaml,yml}`, and the directory
/// relative paths are resolved against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPaths {
    pub cwd: PathBuf,
    /// Searched in order.
    pub dirs: Vec<PathBuf>,
}

impl SearchPaths {
    /// Traefik's order: `/etc/traefik`, `$XDG_CONFIG_HOME`, `$HOME/.config`,
    /// then the working directory.
    pub fn standard(cwd: &Path, env: &[(String, String)]) -> SearchPaths {
        let var = |name: &str| {
            env.iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| PathBuf::from(v))
        };
        let mut dirs = vec![PathBuf::from("/etc/traefik")];
        dirs.extend(var("XDG_CONFIG_HOME"));
        dirs.extend(var("HOME").map(|h| h.join(".config")));
        dirs.push(cwd.to_path_buf());
        SearchPaths {
            cwd: cwd.to_path_buf(),
            dirs,
        }
    }

    /// The first `traefik.toml`, `traefik.yaml` or `traefik.yml` found.
    pub fn find(&self) -> Option<PathBuf> {
        self.dirs.iter().find_map(|dir| {
            ["toml", "yaml", "yml"]
                .iter()
                .map(|ext| dir.join(format!("traefik.{ext}")))
                .find(|p| p.is_file())
        })
    }
}

/// A successfully loaded configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: StaticConfig,
    pub warnings: Vec<ConfigProblem>,
    pub source: Source,
}

/// Where a problem was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The command-line argument as given (`--log.level=DEBUG`).
    Flag(String),
    /// The environment variable's name.
    Env(String),
    File {
        path: PathBuf,
        line: Option<usize>,
    },
    /// No single place: a default, or several keys together.
    Config,
}

/// One problem (or warning) with the static configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub severity: Severity,
    pub origin: Origin,
    /// The dotted key, when there is one.
    pub key: Option<String>,
    /// A sentence that names the key.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Flag(arg) => write!(f, "flag `{arg}`: ")?,
            Origin::Env(var) => write!(f, "environment variable {var}: ")?,
            Origin::File {
                path,
                line: Some(l),
            } => write!(f, "{}:{l}: ", path.display())?,
            Origin::File { path, line: None } => write!(f, "{}: ", path.display())?,
            Origin::Config => f.write_str("configuration: ")?,
        }
        f.write_str(&self.message)
    }
}

/// A problem before it is tied to its origin.
#[derive(Debug, Clone)]
struct Finding {
    severity: Severity,
    keys: Vec<String>,
    /// Known when the finding comes from one entry.
    origin: Option<EntryOrigin>,
    message: String,
}

impl Finding {
    fn error(keys: Vec<String>, message: String) -> Finding {
        Finding {
            severity: Severity::Error,
            keys,
            origin: None,
            message,
        }
    }

    fn warning(keys: Vec<String>, message: String) -> Finding {
        Finding {
            severity: Severity::Warning,
            keys,
            origin: None,
            message,
        }
    }

    fn from(mut self, origin: &EntryOrigin) -> Finding {
        self.origin = Some(origin.clone());
        self
    }
}

/// The text of the configuration file, to find lines in.
struct FileText {
    path: PathBuf,
    format: Format,
    text: String,
}

/// Loads the static configuration from the arguments (without the program
/// name and subcommand), the environment and the configuration file.
pub fn load(
    args: &[String],
    env: &[(String, String)],
    paths: &SearchPaths,
) -> Result<Loaded, Vec<ConfigProblem>> {
    let mut findings: Vec<Finding> = Vec::new();
    let parsed = sources::parse_args(args);
    findings.extend(parsed.findings);
    let (env_entries, env_findings) = sources::env_entries(env);
    findings.extend(env_findings);

    let explicit = parsed.config_file.as_ref();
    let file_path = match explicit {
        Some((value, arg)) => {
            let p = paths.cwd.join(value);
            if !p.is_file() {
                let problem = ConfigProblem {
                    severity: Severity::Error,
                    origin: Origin::Flag(arg.clone()),
                    key: Some("configFile".to_string()),
                    message: format!("configuration file {} does not exist", p.display()),
                };
                return Err(vec![problem]);
            }
            Some(p)
        }
        None => paths.find(),
    };

    let mut file_text: Option<FileText> = None;
    let (source, entries) = if let Some(path) = file_path {
        let file = read_file(&path)?;
        let node = file
            .format
            .parse(&file.text)
            .map_err(|e| vec![file_problem(&path, e)])?;
        for e in &parsed.entries {
            findings.push(
                Finding::warning(
                    Vec::new(),
                    format!(
                        "ignored: the configuration comes from {} (Traefik reads a single source)",
                        path.display()
                    ),
                )
                .from(&e.origin),
            );
        }
        warn_ignored_env(&env_entries, "the configuration file", &mut findings);
        let entries = sources::file_entries(&node);
        file_text = Some(file);
        (Source::File(path), entries)
    } else if !parsed.entries.is_empty() {
        warn_ignored_env(&env_entries, "command-line flags", &mut findings);
        (Source::Flags, parsed.entries)
    } else if !env_entries.is_empty() {
        (Source::Env, env_entries)
    } else {
        (Source::Defaults, Vec::new())
    };

    let (entries, legacy) = legacy::translate(entries);
    findings.extend(legacy.findings.iter().cloned());

    let mut node = Node::new_map();
    for e in &entries {
        if let Err(issue) = node.insert_path(&e.keys, e.value.clone()) {
            findings.push(Finding::error(issue.keys.clone(), issue.message).from(&e.origin));
        }
    }
    let decoded = tree::decode::<raw::RawStatic>(&node);
    findings.extend(classify(&decoded.errors, &decoded.warnings, &node));

    let config = decoded.value.map(|raw| {
        let (config, checks) = validate::validate(raw, &legacy);
        findings.extend(checks);
        config
    });

    let problems: Vec<ConfigProblem> = findings
        .into_iter()
        .map(|f| to_problem(f, &entries, file_text.as_ref()))
        .collect();
    let (errors, warnings): (Vec<_>, Vec<_>) = problems
        .into_iter()
        .partition(|p| p.severity == Severity::Error);
    match config {
        Some(config) if errors.is_empty() => Ok(Loaded {
            config,
            warnings,
            source,
        }),
        _ => Err(errors),
    }
}

fn read_file(path: &Path) -> Result<FileText, Vec<ConfigProblem>> {
    let problem = |message: String| {
        vec![ConfigProblem {
            severity: Severity::Error,
            origin: Origin::File {
                path: path.to_path_buf(),
                line: None,
            },
            key: None,
            message,
        }]
    };
    let format = Format::from_path(path)
        .ok_or_else(|| problem("unsupported file extension (use .toml, .yml or .yaml)".into()))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| problem(format!("cannot read the configuration file: {e}")))?;
    Ok(FileText {
        path: path.to_path_buf(),
        format,
        text,
    })
}

fn file_problem(path: &Path, e: tree::SyntaxError) -> ConfigProblem {
    ConfigProblem {
        severity: Severity::Error,
        origin: Origin::File {
            path: path.to_path_buf(),
            line: Some(e.line),
        },
        key: None,
        message: format!("syntax error at column {}: {}", e.column, e.message),
    }
}

fn warn_ignored_env(env_entries: &[Entry], used: &str, findings: &mut Vec<Finding>) {
    for e in env_entries {
        if let EntryOrigin::Env(var) = &e.origin {
            findings.push(
                Finding::warning(
                    e.keys.clone(),
                    format!("ignored: the configuration comes from {used} (Traefik reads a single source)"),
                )
                .from(&EntryOrigin::Env(var.clone())),
            );
        }
    }
}

/// Sorts decoding issues: a real Traefik key escale lacks is a warning, a key
/// Traefik does not know is an error.
fn classify(errors: &[tree::KeyIssue], warnings: &[tree::KeyIssue], node: &Node) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in errors {
        match &e.kind {
            IssueKind::UnknownKey { .. } if traefik_keys::lookup(&e.keys) != KeyMatch::Unknown => {
                out.push(Finding::warning(
                    e.keys.clone(),
                    format!("`{}` is not supported by escale and is ignored", e.path),
                ));
                out.extend(unknown_below(&e.keys, node));
            }
            _ => out.push(Finding::error(e.keys.clone(), e.message.clone())),
        }
    }
    for w in warnings {
        out.push(Finding::warning(w.keys.clone(), w.message.clone()));
        out.extend(unknown_below(&w.keys, node));
    }
    out
}

/// Keys under an unsupported section that Traefik itself does not know.
fn unknown_below(keys: &[String], node: &Node) -> Vec<Finding> {
    // Traefik v2 sections are not in v3's key list.
    if keys
        .first()
        .is_some_and(|k| k.eq_ignore_ascii_case("pilot") || k.eq_ignore_ascii_case("hub"))
    {
        return Vec::new();
    }
    let Some(sub) = node.get(keys) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (rel, _) in sub.leaves() {
        let mut full = keys.to_vec();
        full.extend(rel);
        if traefik_keys::lookup(&full) != KeyMatch::Unknown {
            continue;
        }
        let path = tree::render_path(&full);
        let message = match traefik_keys::suggest(&full) {
            (_, Some(s)) => format!("unknown key `{path}`, did you mean `{s}`?"),
            (_, None) => format!("unknown key `{path}`"),
        };
        out.push(Finding::error(full, message));
    }
    out
}

/// Ties a finding to the flag, variable or file line it comes from.
fn to_problem(f: Finding, entries: &[Entry], file: Option<&FileText>) -> ConfigProblem {
    let key = (!f.keys.is_empty()).then(|| tree::render_path(&f.keys));
    let origin_entry = f.origin.clone().or_else(|| {
        if f.keys.is_empty() {
            return None;
        }
        find_entry(&f.keys, entries).map(|e| e.origin.clone())
    });
    let origin = match (origin_entry, file) {
        (Some(EntryOrigin::Flag(a)), _) => Origin::Flag(a),
        (Some(EntryOrigin::Env(v)), _) => Origin::Env(v),
        (Some(EntryOrigin::File(keys)), Some(file)) => Origin::File {
            path: file.path.clone(),
            line: file_format::locate_key(file.format, &file.text, &keys),
        },
        (_, Some(file)) => Origin::File {
            path: file.path.clone(),
            line: (!f.keys.is_empty())
                .then(|| file_format::locate_key(file.format, &file.text, &f.keys))
                .flatten(),
        },
        _ => Origin::Config,
    };
    ConfigProblem {
        severity: f.severity,
        origin,
        key,
        message: f.message,
    }
}

/// The entry that wrote `keys`: the same key, else the first entry below it,
/// else the nearest entry above it.
fn find_entry<'e>(keys: &[String], entries: &'e [Entry]) -> Option<&'e Entry> {
    let starts = |long: &[String], short: &[String]| {
        long.len() >= short.len()
            && long
                .iter()
                .zip(short)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    };
    entries
        .iter()
        .rev()
        .find(|e| e.keys.len() == keys.len() && starts(&e.keys, keys))
        .or_else(|| entries.iter().find(|e| starts(&e.keys, keys)))
        .or_else(|| {
            entries
                .iter()
                .filter(|e| starts(keys, &e.keys))
                .max_by_key(|e| e.keys.len())
        })
}

#[cfg(test)]
mod tests;
