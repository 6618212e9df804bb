//! Traefik v1 and v2 options, rewritten into the v3 structure.
//!
//! The seed platform runs Traefik 1.x with `--docker.swarmmode --api`, and
//! v1 entry points are written `--entryPoints='Name:http Address::80'`. These
//! keep working: `--docker.*` becomes `providers.swarm` (or
//! `providers.docker` without swarm mode) with v1 label defaults, `--api` and
//! `--web` serve the API on the `traefik` entry point as v1 did, and v1 entry
//! point definitions become `entryPoints.<name>.*`. Traefik v2's
//! `providers.docker.swarmMode`, which v3 refuses, becomes `providers.swarm`.

use crate::config::file_format::Severity;
use crate::config::tree::{self, Node};

use super::sources::{Entry, EntryOrigin, same_keys};
use super::{Finding, Generation, V1Docker};

/// What the translation learnt besides the rewritten entries.
#[derive(Debug, Clone)]
pub(super) struct Legacy {
    pub generation: Generation,
    /// Set when `--docker.*` (v1) configured the swarm or docker provider.
    pub v1_docker: Option<V1Docker>,
    /// v1 `defaultEntryPoints` (v1 defaults to `http`), with where the user
    /// wrote it, if they did.
    pub v1_default_entry_points: Option<(Vec<String>, Option<EntryOrigin>)>,
    pub findings: Vec<Finding>,
}

/// v1 boolean flags, which never take the next argument as value.
const V1_BOOL_FLAGS: &[&str] = &[
    "docker",
    "docker.swarmmode",
    "docker.watch",
    "docker.exposedbydefault",
    "docker.usebindportip",
    "web",
    "web.readonly",
    "debug",
    "file",
    "file.watch",
];

/// v1 flags that need a value.
const V1_VALUE_FLAGS: &[&str] = &[
    "docker.endpoint",
    "docker.domain",
    "docker.network",
    "docker.constraints",
    "docker.filename",
    "docker.swarmmoderefreshseconds",
    "web.address",
    "defaultentrypoints",
    "loglevel",
    "entrypoints",
    "file.directory",
    "file.filename",
    "configfile",
];

/// v1 `--docker.*` options: (v1 name, v3 name under the provider).
const V1_DOCKER_KEYS: &[(&str, &str)] = &[
    ("endpoint", "endpoint"),
    ("watch", "watch"),
    ("exposedbydefault", "exposedByDefault"),
    ("network", "network"),
    ("usebindportip", "useBindPortIP"),
    ("swarmmoderefreshseconds", "refreshSeconds"),
];

/// v1 `--docker.*` options escale knows but does not implement.
const V1_DOCKER_UNSUPPORTED: &[&str] = &[
    "constraints",
    "filename",
    "templateversion",
    "tls",
    "debugloggeneratedtemplate",
];

fn flat(keys: &[String]) -> String {
    keys.iter()
        .map(|k| k.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(".")
}

pub(super) fn is_v1_bool_flag(keys: &[String]) -> bool {
    V1_BOOL_FLAGS.contains(&flat(keys).as_str())
}

pub(super) fn is_v1_value_flag(keys: &[String]) -> bool {
    V1_VALUE_FLAGS.contains(&flat(keys).as_str())
}

fn is(seg: Option<&String>, name: &str) -> bool {
    seg.is_some_and(|s| s.eq_ignore_ascii_case(name))
}

fn owned(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|s| s.to_string()).collect()
}

/// Whether an entry is written in a v1-only form.
fn is_v1_entry(e: &Entry) -> bool {
    let k = &e.keys;
    let root = k[0].to_ascii_lowercase();
    match root.as_str() {
        "docker" | "web" | "defaultentrypoints" | "debug" => true,
        "loglevel" | "file" => k.len() <= 2,
        "entrypoints" => {
            k.len() == 1 || (k.len() >= 3 && V1_EP_SECTIONS.iter().any(|s| is(k.get(2), s)))
        }
        _ => false,
    }
}

/// Sections of a v1 entry point in a file that v3 does not have.
const V1_EP_SECTIONS: &[&str] = &[
    "redirect",
    "tls",
    "auth",
    "whitelist",
    "whitelistsourcerange",
    "compress",
];

pub(super) fn translate(entries: Vec<Entry>) -> (Vec<Entry>, Legacy) {
    let v1 = entries.iter().any(is_v1_entry);
    let mut t = Translator {
        out: Vec::new(),
        findings: Vec::new(),
        v1_docker: None,
        default_eps: None,
        v2: false,
    };
    let swarm_mode = |path: &[&str]| {
        entries
            .iter()
            .any(|e| same_keys(&e.keys, &owned(path)) && e.value.is_truthy() && !e.value.is_falsy())
    };
    let v1_target = if swarm_mode(&["docker", "swarmmode"]) {
        "swarm"
    } else {
        "docker"
    };
    let v2_swarm = swarm_mode(&["providers", "docker", "swarmmode"]);

    for e in entries {
        let root = e.keys[0].to_ascii_lowercase();
        match root.as_str() {
            "docker" => t.v1_docker(e, v1_target),
            "web" => t.v1_web(e),
            // A file's list arrives as one entry per item (`defaultEntryPoints[0]`).
            "defaultentrypoints"
                if e.keys.len() == 1 || (e.keys.len() == 2 && e.keys[1].starts_with('[')) =>
            {
                let (names, _) = t
                    .default_eps
                    .get_or_insert_with(|| (Vec::new(), Some(e.origin.clone())));
                names.extend(list_of(&e.value));
            }
            "loglevel" if e.keys.len() == 1 => t.rewrite(e, &["log", "level"]),
            "debug" if e.keys.len() == 1 => {
                if !e.value.is_falsy() {
                    t.push(&["log", "level"], Node::Str("DEBUG".into()), &e.origin);
                }
            }
            "file" if e.keys.len() <= 2 => {
                let mut keys = owned(&["providers", "file"]);
                keys.extend(e.keys[1..].iter().cloned());
                t.out.push(Entry { keys, ..e });
            }
            "entrypoints" if e.keys.len() == 1 => {
                for def in list_of(&e.value) {
                    t.v1_entry_point(&def, &e.origin);
                }
            }
            "entrypoints"
                if e.keys.len() >= 3 && V1_EP_SECTIONS.iter().any(|s| is(e.keys.get(2), s)) =>
            {
                t.v1_file_entry_point(e)
            }
            "providers" if is(e.keys.get(1), "docker") && is(e.keys.get(2), "swarmmode") => {
                t.v2 = true;
                let msg = if v2_swarm {
                    "`providers.docker.swarmMode` was removed in Traefik v3 (which refuses to start with it); escale reads these settings as `providers.swarm`"
                } else {
                    "`providers.docker.swarmMode` was removed in Traefik v3 and is ignored"
                };
                t.findings
                    .push(Finding::warning(e.keys.clone(), msg.to_string()).from(&e.origin));
            }
            "providers" if v2_swarm && is(e.keys.get(1), "docker") => {
                let mut keys = owned(&["providers", "swarm"]);
                if is(e.keys.get(2), "swarmmoderefreshseconds") {
                    keys.push("refreshSeconds".into());
                } else {
                    keys.extend(e.keys[2..].iter().cloned());
                }
                t.out.push(Entry { keys, ..e });
            }
            "pilot" | "hub" => {
                t.v2 = true;
                t.out.push(e);
            }
            _ => t.out.push(e),
        }
    }

    if v1 {
        t.v1_api();
        t.v1_forwarded_headers();
        if t.default_eps.is_none() {
            t.default_eps = Some((vec!["http".to_string()], None));
        }
    }
    let generation = if v1 {
        Generation::V1
    } else if t.v2 {
        Generation::V2
    } else {
        Generation::V3
    };
    let legacy = Legacy {
        generation,
        v1_docker: t.v1_docker,
        v1_default_entry_points: t.default_eps,
        findings: t.findings,
    };
    (t.out, legacy)
}

/// A comma-separated string or a list of strings.
fn list_of(value: &Node) -> Vec<String> {
    match value {
        Node::List(items) => items
            .iter()
            .filter_map(|n| n.scalar_text().map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect(),
        other => other
            .scalar_text()
            .map(|s| {
                s.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

struct Translator {
    out: Vec<Entry>,
    findings: Vec<Finding>,
    v1_docker: Option<V1Docker>,
    default_eps: Option<(Vec<String>, Option<EntryOrigin>)>,
    v2: bool,
}

impl Translator {
    fn push(&mut self, keys: &[&str], value: Node, origin: &EntryOrigin) {
        self.out.push(Entry {
            keys: owned(keys),
            value,
            origin: origin.clone(),
        });
    }

    fn rewrite(&mut self, e: Entry, keys: &[&str]) {
        self.out.push(Entry {
            keys: owned(keys),
            ..e
        });
    }

    fn unsupported_v1(&mut self, e: &Entry) {
        let path = tree::render_path(&e.keys);
        self.findings.push(
            Finding::warning(
                e.keys.clone(),
                format!("Traefik v1 option `{path}` is not supported by escale and is ignored"),
            )
            .from(&e.origin),
        );
    }

    fn v1_docker(&mut self, e: Entry, target: &str) {
        self.v1_docker.get_or_insert_with(V1Docker::default);
        // Any `--docker.*` flag enables the provider, as in v1.
        let enable = Entry {
            keys: owned(&["providers", target]),
            value: Node::Flag,
            origin: e.origin.clone(),
        };
        if e.keys.len() == 1 {
            if !e.value.is_falsy() {
                self.out.push(enable);
            }
            return;
        }
        let sub = e.keys[1].to_ascii_lowercase();
        if sub == "domain" && e.keys.len() == 2 {
            let domain = e
                .value
                .scalar_text()
                .map(|s| s.into_owned())
                .filter(|s| !s.is_empty());
            if let Some(v1) = self.v1_docker.as_mut() {
                v1.domain = domain;
            }
            self.out.push(enable);
            return;
        }
        if sub == "swarmmode" && e.keys.len() == 2 {
            self.out.push(enable);
            return;
        }
        if let Some((_, v3)) = V1_DOCKER_KEYS.iter().find(|(v1, _)| *v1 == sub) {
            if *v3 == "refreshSeconds" && target != "swarm" {
                self.unsupported_v1(&e);
                return;
            }
            self.out.push(enable);
            self.rewrite(e, &["providers", target, v3]);
            return;
        }
        if V1_DOCKER_UNSUPPORTED.contains(&sub.as_str()) {
            self.unsupported_v1(&e);
            return;
        }
        let known = V1_DOCKER_KEYS
            .iter()
            .map(|(k, _)| *k)
            .chain(["domain", "swarmmode"])
            .chain(V1_DOCKER_UNSUPPORTED.iter().copied());
        let path = tree::render_path(&e.keys);
        let message = match tree::nearest(&sub, known) {
            Some(s) => format!("unknown Traefik v1 option `{path}`, did you mean `docker.{s}`?"),
            None => format!("unknown Traefik v1 option `{path}`"),
        };
        self.findings
            .push(Finding::error(e.keys.clone(), message).from(&e.origin));
    }

    fn v1_web(&mut self, e: Entry) {
        match e.keys.len() {
            1 if e.value.is_falsy() => {}
            1 => {
                self.push(&["api"], Node::Flag, &e.origin);
                self.push(&["api", "insecure"], Node::Bool(true), &e.origin);
            }
            2 if is(e.keys.get(1), "address") => {
                self.push(&["api"], Node::Flag, &e.origin);
                self.push(&["api", "insecure"], Node::Bool(true), &e.origin);
                self.rewrite(e, &["entryPoints", super::INTERNAL_ENTRY_POINT, "address"]);
            }
            _ => self.unsupported_v1(&e),
        }
    }

    /// v1's API is served on the `traefik` entry point itself: v3's insecure mode.
    fn v1_api(&mut self) {
        let is_api = |e: &Entry| is(e.keys.first(), "api");
        let enabled = self
            .out
            .iter()
            .any(|e| is_api(e) && !(e.keys.len() == 1 && e.value.is_falsy()));
        let mut dropped = Vec::new();
        self.out.retain(|e| {
            let v1_only =
                is_api(e) && (is(e.keys.get(1), "entrypoint") || is(e.keys.get(1), "statistics"));
            if v1_only {
                dropped.push(e.clone());
            }
            !v1_only
        });
        for e in &dropped {
            self.unsupported_v1(e);
        }
        let has_insecure = self
            .out
            .iter()
            .any(|e| is_api(e) && is(e.keys.get(1), "insecure"));
        if enabled
            && !has_insecure
            && let Some(origin) = self
                .out
                .iter()
                .find(|e| is_api(e))
                .map(|e| e.origin.clone())
        {
            self.push(&["api", "insecure"], Node::Bool(true), &origin);
        }
    }

    /// v1 trusted forwarded headers from everyone unless told otherwise.
    fn v1_forwarded_headers(&mut self) {
        let mut names: Vec<(String, EntryOrigin)> = Vec::new();
        for e in &self.out {
            if is(e.keys.first(), "entrypoints")
                && let Some(name) = e.keys.get(1)
                && !names.iter().any(|(n, _)| n == name)
            {
                names.push((name.clone(), e.origin.clone()));
            }
        }
        for (name, origin) in names {
            let configured = self.out.iter().any(|e| {
                is(e.keys.first(), "entrypoints")
                    && e.keys.get(1) == Some(&name)
                    && is(e.keys.get(2), "forwardedheaders")
            });
            if !configured {
                self.out.push(Entry {
                    keys: vec![
                        "entryPoints".into(),
                        name,
                        "forwardedHeaders".into(),
                        "insecure".into(),
                    ],
                    value: Node::Bool(true),
                    origin,
                });
            }
        }
    }

    /// `Name:http Address::80 Redirect.EntryPoint:https ...` (v1's flag syntax).
    fn v1_entry_point(&mut self, def: &str, origin: &EntryOrigin) {
        let mut fields: Vec<(String, String)> = Vec::new();
        for part in def.split_whitespace() {
            let (k, v) = part.split_once(':').unwrap_or((part, ""));
            fields.push((k.to_ascii_lowercase(), v.to_string()));
        }
        let Some(name) = fields
            .iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.clone())
        else {
            self.findings.push(
                Finding::error(
                    vec!["entryPoints".into()],
                    format!("Traefik v1 entry point {def:?} has no `Name:`"),
                )
                .from(origin),
            );
            return;
        };
        let ep = |rest: &[&str]| {
            let mut keys = vec!["entryPoints".to_string(), name.clone()];
            keys.extend(rest.iter().map(|s| s.to_string()));
            keys
        };
        let mut redirect_permanent = false;
        let mut redirect = false;
        for (k, v) in &fields {
            let target: Option<&[&str]> = match k.as_str() {
                "name" => continue,
                "address" => Some(&["address"]),
                "redirect.entrypoint" => {
                    redirect = true;
                    Some(&["http", "redirections", "entryPoint", "to"])
                }
                "redirect.permanent" => {
                    redirect_permanent = true;
                    Some(&["http", "redirections", "entryPoint", "permanent"])
                }
                "forwardedheaders.trustedips" => Some(&["forwardedHeaders", "trustedIPs"]),
                "forwardedheaders.insecure" => Some(&["forwardedHeaders", "insecure"]),
                "proxyprotocol.trustedips" => Some(&["proxyProtocol", "trustedIPs"]),
                "proxyprotocol.insecure" => Some(&["proxyProtocol", "insecure"]),
                _ => None,
            };
            if let Some(rest) = target {
                let value = if k.ends_with("permanent") || k.ends_with("insecure") {
                    // v1 reads "true", "enable" and "on" as true.
                    let on = ["true", "enable", "on"]
                        .iter()
                        .any(|t| v.eq_ignore_ascii_case(t));
                    Node::Bool(on)
                } else {
                    Node::Str(v.clone())
                };
                self.out.push(Entry {
                    keys: ep(rest),
                    value,
                    origin: origin.clone(),
                });
                continue;
            }
            let known_unsupported = [
                "tls",
                "ca",
                "compress",
                "whitelistsourcerange",
                "redirect.regex",
                "redirect.replacement",
            ]
            .contains(&k.as_str())
                || ["tls.", "ca.", "auth.", "whitelist."]
                    .iter()
                    .any(|p| k.starts_with(p));
            if known_unsupported {
                self.findings.push(
                    Finding::warning(
                        ep(&[]),
                        format!("Traefik v1 entry point option `{k}` (entry point `{name}`) is not supported by escale and is ignored"),
                    )
                    .from(origin),
                );
            } else {
                let known = [
                    "name",
                    "address",
                    "redirect.entrypoint",
                    "redirect.permanent",
                    "forwardedheaders.trustedips",
                    "forwardedheaders.insecure",
                    "proxyprotocol.trustedips",
                    "proxyprotocol.insecure",
                    "tls",
                    "compress",
                ];
                let message = match tree::nearest(k, known) {
                    Some(s) => {
                        format!("unknown Traefik v1 entry point option `{k}`, did you mean `{s}`?")
                    }
                    None => format!("unknown Traefik v1 entry point option `{k}`"),
                };
                self.findings
                    .push(Finding::error(ep(&[]), message).from(origin));
            }
        }
        if redirect && !redirect_permanent {
            // v1 redirects are temporary unless told otherwise; v3's default is permanent.
            self.out.push(Entry {
                keys: ep(&["http", "redirections", "entryPoint", "permanent"]),
                value: Node::Bool(false),
                origin: origin.clone(),
            });
        }
        if !fields.iter().any(|(k, _)| k == "address") {
            self.findings.push(Finding {
                severity: Severity::Error,
                keys: ep(&["address"]),
                origin: Some(origin.clone()),
                message: format!("Traefik v1 entry point `{name}` has no `Address:`"),
            });
        }
    }

    /// v1 file sections of an entry point (`[entryPoints.http.redirect]`).
    fn v1_file_entry_point(&mut self, e: Entry) {
        let name = e.keys[1].clone();
        let rest: Vec<String> = e.keys[2..].iter().map(|k| k.to_ascii_lowercase()).collect();
        let target: Option<&str> = match rest
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["redirect", "entrypoint"] => Some("to"),
            ["redirect", "permanent"] => Some("permanent"),
            _ => None,
        };
        match target {
            Some(t) => {
                let keys = vec![
                    "entryPoints".to_string(),
                    name,
                    "http".into(),
                    "redirections".into(),
                    "entryPoint".into(),
                    t.to_string(),
                ];
                self.out.push(Entry { keys, ..e });
            }
            None => self.unsupported_v1(&e),
        }
    }
}
