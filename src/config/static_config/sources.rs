//! Reading each source into flat entries: one key path, one value, and where
//! it was written, so every later problem can name its flag, variable or line.

use crate::config::traefik_keys::{self, KeyKind, KeyMatch};
use crate::config::tree::{self, Node};

use super::{Finding, legacy};

/// One key with its value, as a source gives it.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub keys: Vec<String>,
    pub value: Node,
    pub origin: EntryOrigin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum EntryOrigin {
    /// The argument as written (`--api.insecure`, `--log.level DEBUG`).
    Flag(String),
    /// The variable's name.
    Env(String),
    /// The key path as written in the file, to find its line.
    File(Vec<String>),
}

pub(super) struct ParsedArgs {
    pub entries: Vec<Entry>,
    /// `--configFile`: the value and the argument as written.
    pub config_file: Option<(String, String)>,
    pub findings: Vec<Finding>,
}

/// Parses `--key=value`, `--key value` and bare `--flag` arguments as
/// Traefik's flag parser does: a boolean key never takes the next argument as
/// its value; other keys do, unless it looks like a flag itself.
pub(super) fn parse_args(args: &[String]) -> ParsedArgs {
    let mut out = ParsedArgs {
        entries: Vec::new(),
        config_file: None,
        findings: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(body) = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .filter(|b| !b.is_empty() && !b.starts_with(['-', '=']))
        else {
            out.findings.push(Finding::error(
                Vec::new(),
                format!("unexpected argument `{arg}` (options are written --key=value)"),
            ));
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let keys = match tree::split_flat_key(name) {
            Ok(k) => k,
            Err(m) => {
                out.findings
                    .push(Finding::error(Vec::new(), m).from(&EntryOrigin::Flag(arg.clone())));
                continue;
            }
        };
        let mut written = arg.clone();
        let value = match inline {
            Some(v) => Node::Str(v),
            None if is_bool(&keys) => Node::Flag,
            None => match args.get(i).filter(|next| !next.starts_with('-')) {
                Some(next) => {
                    i += 1;
                    written = format!("{arg} {next}");
                    Node::Str(next.clone())
                }
                None if needs_value(&keys) => {
                    out.findings.push(
                        Finding::error(keys, "this option needs a value".to_string())
                            .from(&EntryOrigin::Flag(arg.clone())),
                    );
                    continue;
                }
                None => Node::Flag,
            },
        };
        if keys.len() == 1 && keys[0].eq_ignore_ascii_case("configfile") {
            let path = value.scalar_text().unwrap_or_default().into_owned();
            out.config_file = Some((path, written));
            continue;
        }
        push_flag(&mut out.entries, keys, value, written);
    }
    out
}

/// Adds a flag; Traefik joins repeated list flags with commas and keeps the
/// last value of any other repeated flag (the tree keeps the last).
fn push_flag(entries: &mut Vec<Entry>, keys: Vec<String>, value: Node, written: String) {
    if traefik_keys::is_list_key(&keys)
        && let Some(prev) = entries.iter_mut().rev().find(|e| same_keys(&e.keys, &keys))
        && let (Node::Str(a), Node::Str(b)) = (&mut prev.value, &value)
    {
        a.push(',');
        a.push_str(b);
        return;
    }
    entries.push(Entry {
        keys,
        value,
        origin: EntryOrigin::Flag(written),
    });
}

pub(super) fn same_keys(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

fn is_bool(keys: &[String]) -> bool {
    traefik_keys::is_bool_flag(keys) || legacy::is_v1_bool_flag(keys)
}

fn needs_value(keys: &[String]) -> bool {
    traefik_keys::lookup(keys) == KeyMatch::Exact(KeyKind::Value) || legacy::is_v1_value_flag(keys)
}

const ENV_PREFIXES: [&str; 2] = ["TRAEFIK_", "ESCALE_"];

/// `TRAEFIK_ENTRYPOINTS_WEB_ADDRESS=:80` becomes `entrypoints.web.address`.
/// Like Traefik, only variables under a known section count (so unrelated
/// `TRAEFIK_*` variables do not switch the source); a near miss is warned
/// about. `ESCALE_*` variables come last, so they win.
pub(super) fn env_entries(env: &[(String, String)]) -> (Vec<Entry>, Vec<Finding>) {
    let roots = traefik_keys::roots();
    let mut entries = Vec::new();
    let mut findings = Vec::new();
    for prefix in ENV_PREFIXES {
        for (name, value) in env {
            let upper = name.to_ascii_uppercase();
            let Some(rest) = upper.strip_prefix(prefix) else {
                continue;
            };
            let keys: Vec<String> = rest
                .to_ascii_lowercase()
                .split('_')
                .map(String::from)
                .collect();
            let origin = EntryOrigin::Env(name.clone());
            if !roots.contains(&keys[0].as_str()) {
                if let Some(near) = tree::nearest(&keys[0], roots.iter().copied()) {
                    findings.push(
                        Finding::warning(
                            Vec::new(),
                            format!(
                                "ignored: `{}` is not a configuration section, did you mean `{near}`?",
                                keys[0]
                            ),
                        )
                        .from(&origin),
                    );
                }
                continue;
            }
            if keys.iter().any(String::is_empty) {
                findings.push(
                    Finding::error(Vec::new(), "malformed name: empty key segment".to_string())
                        .from(&origin),
                );
                continue;
            }
            entries.push(Entry {
                keys,
                value: Node::Str(value.clone()),
                origin,
            });
        }
    }
    (entries, findings)
}

/// Every leaf of a parsed file, keyed by its path as written.
pub(super) fn file_entries(node: &Node) -> Vec<Entry> {
    if node.is_empty() {
        return Vec::new();
    }
    node.leaves()
        .into_iter()
        .map(|(keys, value)| Entry {
            origin: EntryOrigin::File(keys.clone()),
            keys,
            value: value.clone(),
        })
        .collect()
}
