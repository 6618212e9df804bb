//! Traefik v3 dynamic configuration files (TOML or YAML) and the position of
//! keys in configuration text.
//!
//! A file decodes through [`super::tree`], then is checked object by object.
//! An object (router, service, middleware, servers transport) with an error is
//! left out and every other object is kept, so one typo costs one route, not
//! the file. Every issue names the file, the line and the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::dynamic::{DynamicConfig, HttpConfig, Service};
use super::tree::{self, IssueKind, KeyIssue, Node, SyntaxError};

/// The syntax of a configuration file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

impl Format {
    /// `.toml`, `.yml` or `.yaml` (any case); anything else is `None`.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "toml" => Some(Format::Toml),
            "yml" | "yaml" => Some(Format::Yaml),
            _ => None,
        }
    }

    pub fn parse(self, text: &str) -> Result<Node, SyntaxError> {
        match self {
            Format::Toml => Node::from_toml(text),
            Format::Yaml => Node::from_yaml(text),
        }
    }
}

pub use crate::provider::Severity;

/// A problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based; `None` when the problem is about the file as a whole or the
    /// key could not be found in the text.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The dotted key path, when the problem is about a key.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {level}: {}", self.message)
    }
}

impl Issue {
    fn whole_file(file: &Path, message: String) -> Issue {
        Issue {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line: None,
            column: None,
            key: None,
            message,
        }
    }

    fn syntax(file: &Path, e: SyntaxError) -> Issue {
        Issue {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line: Some(e.line),
            column: Some(e.column),
            key: None,
            message: format!("syntax error: {}", e.message),
        }
    }

    fn from_key(
        file: &Path,
        format: Format,
        text: &str,
        severity: Severity,
        k: &KeyIssue,
    ) -> Issue {
        Issue {
            severity,
            file: file.to_path_buf(),
            line: locate_key(format, text, &k.keys),
            column: None,
            key: (!k.path.is_empty()).then(|| k.path.clone()),
            message: k.message.clone(),
        }
    }
}

/// Decodes one Traefik v3 dynamic configuration file.
///
/// `Ok` holds the configuration without the objects that have errors, and
/// every issue (errors and warnings, in line order). `Err` means nothing in
/// the file is usable: unknown extension, syntax error, or wrong shape.
pub fn parse_dynamic_file(
    path: &Path,
    text: &str,
) -> Result<(DynamicConfig, Vec<Issue>), Vec<Issue>> {
    let Some(format) = Format::from_path(path) else {
        return Err(vec![Issue::whole_file(
            path,
            "unsupported file extension (use .toml, .yml or .yaml)".to_string(),
        )]);
    };
    let node = format
        .parse(text)
        .map_err(|e| vec![Issue::syntax(path, e)])?;
    let decoded = tree::decode::<DynamicConfig>(&node);
    let mut issues: Vec<Issue> = decoded
        .errors
        .iter()
        .map(|k| Issue::from_key(path, format, text, Severity::Error, k))
        .chain(
            decoded
                .warnings
                .iter()
                .map(|k| Issue::from_key(path, format, text, Severity::Warning, k)),
        )
        .collect();
    let Some(mut config) = decoded.value else {
        return Err(issues);
    };
    let checks = check_dynamic(&config);
    issues.extend(
        checks
            .iter()
            .map(|(sev, k)| Issue::from_key(path, format, text, *sev, k)),
    );
    // Leave out every object that has an error, and say so once per object.
    let mut dropped: Vec<(ObjectKind, String)> = Vec::new();
    for k in decoded.errors.iter().chain(
        checks
            .iter()
            .filter(|(s, _)| *s == Severity::Error)
            .map(|(_, k)| k),
    ) {
        if let Some(obj) = object_of(&k.keys)
            && !dropped.contains(&obj)
            && obj.0.remove(&mut config.http, &obj.1)
        {
            dropped.push(obj);
        }
    }
    for (kind, name) in dropped {
        let keys = vec!["http".to_string(), kind.section().to_string(), name.clone()];
        issues.push(Issue {
            severity: Severity::Warning,
            file: path.to_path_buf(),
            line: locate_key(format, text, &keys),
            column: None,
            key: Some(tree::render_path(&keys)),
            message: format!(
                "{} `{name}` is ignored because of the errors above",
                kind.noun()
            ),
        });
    }
    issues.sort_by_key(|i| (i.line.unwrap_or(0), i.severity));
    Ok((config, issues))
}

/// Reads and decodes one dynamic configuration file.
pub fn load_dynamic_file(path: &Path) -> Result<(DynamicConfig, Vec<Issue>), Vec<Issue>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![Issue::whole_file(path, format!("cannot read file: {e}"))])?;
    parse_dynamic_file(path, &text)
}

/// Reads every `.toml`, `.yml` and `.yaml` file under `dir` (recursively, in
/// name order, skipping hidden entries) and merges them as Traefik does. A
/// name defined in two files is an error naming both; the first definition is
/// kept, as in Traefik. A file that fails does not stop the others. `Err`
/// only when the directory cannot be read.
pub fn load_dynamic_dir(dir: &Path) -> Result<(DynamicConfig, Vec<Issue>), Vec<Issue>> {
    let mut paths = Vec::new();
    collect_files(dir, &mut paths).map_err(|e| {
        vec![Issue::whole_file(
            dir,
            format!("cannot read directory: {e}"),
        )]
    })?;
    let mut parsed = Vec::new();
    let mut issues = Vec::new();
    for path in paths {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                issues.push(Issue::whole_file(&path, format!("cannot read file: {e}")));
                continue;
            }
        };
        match parse_dynamic_file(&path, &text) {
            Ok((config, file_issues)) => {
                issues.extend(file_issues);
                parsed.push(ParsedFile {
                    path,
                    text,
                    config: Arc::new(config),
                    issues: Vec::new(),
                });
            }
            Err(errs) => issues.extend(errs),
        }
    }
    let (merged, merge_issues) = merge_files(&parsed);
    issues.extend(merge_issues);
    Ok((Arc::unwrap_or_clone(merged), issues))
}

/// One dynamic file that parsed: its text is kept to locate keys in issues
/// (and to tell a real change from an event that changed nothing).
#[derive(Debug, Clone)]
pub struct ParsedFile {
    pub path: PathBuf,
    pub text: String,
    pub config: Arc<DynamicConfig>,
    /// What parsing it reported (warnings, objects left out).
    pub issues: Vec<Issue>,
}

/// Merges files as Traefik does. A name defined in two files is an error
/// naming both; the first definition (in the given order) is kept. One file
/// is its own merge: its configuration is shared, not copied.
pub fn merge_files<'a>(
    files: impl IntoIterator<Item = &'a ParsedFile>,
) -> (Arc<DynamicConfig>, Vec<Issue>) {
    let mut files = files.into_iter().peekable();
    let Some(first) = files.next() else {
        return (Arc::default(), Vec::new());
    };
    if files.peek().is_none() {
        return (first.config.clone(), Vec::new());
    }
    let files = std::iter::once(first).chain(files);
    let mut merged = DynamicConfig::default();
    let mut issues = Vec::new();
    // Which file defined each object, to name both on a duplicate.
    let mut origin: BTreeMap<(ObjectKind, String), PathBuf> = BTreeMap::new();
    for ParsedFile {
        path: file,
        text,
        config,
        ..
    } in files
    {
        let format = Format::from_path(file).unwrap_or(Format::Yaml);
        let HttpConfig {
            routers,
            services,
            middlewares,
            servers_transports,
        } = config.http.clone();
        let mut dup = |kind: ObjectKind, name: &str| -> bool {
            let key = (kind, name.to_string());
            if let Some(first) = origin.get(&key) {
                let keys = vec!["http".into(), kind.section().into(), name.to_string()];
                issues.push(Issue {
                    severity: Severity::Error,
                    file: file.clone(),
                    line: locate_key(format, text, &keys),
                    column: None,
                    key: Some(tree::render_path(&keys)),
                    message: format!(
                        "{} `{name}` is defined in both {} and {}; the one in {} is used",
                        kind.noun(),
                        first.display(),
                        file.display(),
                        first.display()
                    ),
                });
                return true;
            }
            origin.insert(key, file.clone());
            false
        };
        for (name, v) in routers {
            if !dup(ObjectKind::Router, &name) {
                merged.http.routers.insert(name, v);
            }
        }
        for (name, v) in services {
            if !dup(ObjectKind::Service, &name) {
                merged.http.services.insert(name, v);
            }
        }
        for (name, v) in middlewares {
            if !dup(ObjectKind::Middleware, &name) {
                merged.http.middlewares.insert(name, v);
            }
        }
        for (name, v) in servers_transports {
            if !dup(ObjectKind::ServersTransport, &name) {
                merged.http.servers_transports.insert(name, v);
            }
        }
        merged.tcp = merged.tcp.clone().or(config.tcp.clone());
        merged.udp = merged.udp.clone().or(config.udp.clone());
        merged.tls = merged.tls.clone().or(config.tls.clone());
    }
    (Arc::new(merged), issues)
}

/// The dynamic files under `dir`, recursively, in name order, skipping
/// hidden entries.
pub fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        // Hidden entries include Kubernetes' `..data` mirrors of the same files.
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if Format::from_path(&path).is_some() {
            out.push(path);
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ObjectKind {
    Router,
    Service,
    Middleware,
    ServersTransport,
}

impl ObjectKind {
    fn section(self) -> &'static str {
        match self {
            ObjectKind::Router => "routers",
            ObjectKind::Service => "services",
            ObjectKind::Middleware => "middlewares",
            ObjectKind::ServersTransport => "serversTransports",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            ObjectKind::Router => "router",
            ObjectKind::Service => "service",
            ObjectKind::Middleware => "middleware",
            ObjectKind::ServersTransport => "servers transport",
        }
    }

    fn remove(self, http: &mut HttpConfig, name: &str) -> bool {
        match self {
            ObjectKind::Router => http.routers.remove(name).is_some(),
            ObjectKind::Service => http.services.remove(name).is_some(),
            ObjectKind::Middleware => http.middlewares.remove(name).is_some(),
            ObjectKind::ServersTransport => http.servers_transports.remove(name).is_some(),
        }
    }
}

/// The object a key path belongs to: `http.routers.<name>...`.
fn object_of(keys: &[String]) -> Option<(ObjectKind, String)> {
    let [http, section, name, ..] = keys else {
        return None;
    };
    if !http.eq_ignore_ascii_case("http") {
        return None;
    }
    let kind = [
        ObjectKind::Router,
        ObjectKind::Service,
        ObjectKind::Middleware,
        ObjectKind::ServersTransport,
    ]
    .into_iter()
    .find(|k| k.section().eq_ignore_ascii_case(section))?;
    Some((kind, name.clone()))
}

/// Checks a decoded dynamic configuration object by object (the parts that
/// types cannot express). Errors make the object unusable; warnings do not.
/// Shared by every provider (files, labels).
pub fn check_dynamic(config: &DynamicConfig) -> Vec<(Severity, KeyIssue)> {
    let mut out = Vec::new();
    let key = |section: &str, name: &str| -> Vec<String> {
        vec!["http".to_string(), section.to_string(), name.to_string()]
    };
    let http = &config.http;
    for (name, r) in &http.routers {
        if r.rule.trim().is_empty() {
            out.push(error(
                key("routers", name),
                format!("router `{name}` has no rule"),
            ));
        }
        if r.service.trim().is_empty() {
            out.push(error(
                key("routers", name),
                format!("router `{name}` has no service"),
            ));
        }
    }
    for (name, s) in &http.services {
        check_service(name, s, key("services", name), &mut out);
    }
    for (name, m) in &http.middlewares {
        let kinds = set_kinds(m);
        let keys = key("middlewares", name);
        match kinds.len() {
            1 => {}
            0 => out.push(error(keys, format!("middleware `{name}` has no type"))),
            _ => out.push(error(
                keys,
                format!(
                    "middleware `{name}` has several types ({}); give each its own middleware",
                    kinds.join(", ")
                ),
            )),
        }
    }
    out
}

fn check_service(name: &str, s: &Service, keys: Vec<String>, out: &mut Vec<(Severity, KeyIssue)>) {
    let Some(lb) = &s.load_balancer else {
        if !crate::routing::composite::is_composite(s) {
            out.push(error(
                keys,
                format!("service `{name}` has no type (loadBalancer)"),
            ));
        }
        return;
    };
    if lb.servers.is_empty() {
        let message = format!("service `{name}` has no servers; it will answer 503");
        out.push((
            Severity::Warning,
            KeyIssue {
                path: tree::render_path(&keys),
                keys,
                message,
                kind: IssueKind::InvalidValue,
            },
        ));
        return;
    }
    for (i, server) in lb.servers.iter().enumerate() {
        if let Err(why) = check_server_url(&server.url) {
            let mut k = keys.clone();
            k.extend([
                "loadBalancer".into(),
                "servers".into(),
                format!("[{i}]"),
                "url".into(),
            ]);
            out.push(error(
                k,
                format!("service `{name}`: server URL {:?} {why}", server.url),
            ));
        }
    }
}

/// A backend URL as Traefik accepts it for HTTP: `http(s)://host[:port][/path]`.
pub fn check_server_url(url: &str) -> Result<(), String> {
    // One rule for what a server URL may be: the proxy's own parser.
    crate::balance::server::Upstream::parse(url)
        .map(|_| ())
        .map_err(|e| e.reason.to_string())
}

fn error(keys: Vec<String>, message: String) -> (Severity, KeyIssue) {
    (
        Severity::Error,
        KeyIssue {
            path: tree::render_path(&keys),
            keys,
            message,
            kind: IssueKind::InvalidValue,
        },
    )
}

/// The Traefik names of the middleware types that are set.
fn set_kinds(m: &super::dynamic::Middleware) -> Vec<String> {
    match serde_json::to_value(m) {
        Ok(serde_json::Value::Object(o)) => o.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Finds the 1-based line where `keys` (as in [`KeyIssue::keys`]) is written,
/// or where its nearest written ancestor is. Matching is case-insensitive;
/// this is a careful scan, not a full parser, so flow/inline forms resolve to
/// their enclosing key.
pub fn locate_key(format: Format, text: &str, keys: &[String]) -> Option<usize> {
    let records = match format {
        Format::Toml => toml_records(text),
        Format::Yaml => yaml_records(text),
    };
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let starts_with = |path: &[String], prefix: &[String]| {
        path.len() >= prefix.len() && path.iter().zip(prefix).all(|(a, b)| eq(a, b))
    };
    for depth in (1..=keys.len()).rev() {
        let want = &keys[..depth];
        if let Some((_, line)) = records
            .iter()
            .find(|(p, _)| p.len() == want.len() && starts_with(p, want))
        {
            return Some(*line);
        }
        // A table written only through its children (`[http.routers.r.tls]`).
        if let Some((_, line)) = records.iter().find(|(p, _)| starts_with(p, want)) {
            return Some(*line);
        }
    }
    None
}

type Records = Vec<(Vec<String>, usize)>;

fn toml_records(text: &str) -> Records {
    let mut out = Vec::new();
    let mut table: Vec<String> = Vec::new();
    // How many `[[x]]` blocks each array-of-tables path has had.
    let mut aot: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    let mut multiline: Option<&str> = None;
    let mut depth = 0i32;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if let Some(delim) = multiline {
            if line.contains(delim) {
                multiline = None;
            }
            continue;
        }
        if depth > 0 {
            depth += bracket_balance(line);
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("[[") {
            let header = rest.split("]]").next().unwrap_or("");
            let plain = toml_key(header);
            let path = with_aot_indexes(&plain, &aot);
            let n = aot.entry(lower(&plain)).or_insert(0);
            table = path;
            table.push(format!("[{n}]"));
            *n += 1;
            out.push((table.clone(), line_no));
        } else if let Some(rest) = line.strip_prefix('[') {
            let header = rest.split(']').next().unwrap_or("");
            table = with_aot_indexes(&toml_key(header), &aot);
            out.push((table.clone(), line_no));
        } else if let Some(eq) = find_unquoted(line, '=') {
            let mut path = table.clone();
            path.extend(toml_key(&line[..eq]));
            out.push((path, line_no));
            let value = line[eq + 1..].trim();
            for delim in ["\"\"\"", "'''"] {
                if let Some(after) = value.strip_prefix(delim)
                    && !after.contains(delim)
                {
                    multiline = Some(delim);
                }
            }
            depth += bracket_balance(value);
        }
    }
    out
}

fn lower(keys: &[String]) -> Vec<String> {
    keys.iter().map(|k| k.to_ascii_lowercase()).collect()
}

/// `a.b.c` where `a.b` is an array of tables becomes `a.b[<last>].c`.
fn with_aot_indexes(plain: &[String], aot: &BTreeMap<Vec<String>, usize>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, seg) in plain.iter().enumerate() {
        out.push(seg.clone());
        if i + 1 < plain.len()
            && let Some(n) = aot.get(&lower(&plain[..=i]))
        {
            out.push(format!("[{}]", n.saturating_sub(1)));
        }
    }
    out
}

/// Splits a TOML key (`a."b.c".d`) into its parts.
fn toml_key(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, '.') => parts.push(std::mem::take(&mut cur).trim().to_string()),
            (None, c) => cur.push(c),
        }
    }
    parts.push(cur.trim().to_string());
    parts
}

fn find_unquoted(s: &str, target: char) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, c) if c == target => return Some(i),
            _ => {}
        }
    }
    None
}

/// Opened minus closed brackets and braces outside strings, to skip the
/// continuation lines of multi-line arrays and inline tables.
fn bracket_balance(s: &str) -> i32 {
    let mut quote: Option<char> = None;
    let mut n = 0;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => break,
            (None, '[' | '{') => n += 1,
            (None, ']' | '}') => n -= 1,
            _ => {}
        }
    }
    n
}

struct Frame {
    indent: usize,
    seg: String,
    is_item: bool,
    items_seen: usize,
}

fn yaml_records(text: &str) -> Records {
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root_items = 0usize;
    // Inside a block scalar (`key: |`): skip lines indented deeper than this.
    let mut block_scalar: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim_start();
        let mut indent = raw.len() - trimmed.len();
        if let Some(bs) = block_scalar {
            if trimmed.is_empty() || indent > bs {
                continue;
            }
            block_scalar = None;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let mut content = trimmed;
        // `- - key: v` opens nested items on one line.
        while content == "-" || content.starts_with("- ") {
            while stack
                .last()
                .is_some_and(|f| f.indent > indent || (f.indent == indent && f.is_item))
            {
                stack.pop();
            }
            let counter = match stack.last_mut() {
                Some(f) => &mut f.items_seen,
                None => &mut root_items,
            };
            let n = *counter;
            *counter += 1;
            stack.push(Frame {
                indent,
                seg: format!("[{n}]"),
                is_item: true,
                items_seen: 0,
            });
            out.push((stack.iter().map(|f| f.seg.clone()).collect(), line_no));
            let rest = content[1..].trim_start();
            indent += content.len() - rest.len();
            content = rest;
        }
        let Some((key, value)) = yaml_key_value(content) else {
            continue;
        };
        while stack.last().is_some_and(|f| f.indent >= indent) {
            stack.pop();
        }
        stack.push(Frame {
            indent,
            seg: key,
            is_item: false,
            items_seen: 0,
        });
        out.push((stack.iter().map(|f| f.seg.clone()).collect(), line_no));
        let v = value.trim();
        if v.starts_with('|') || v.starts_with('>') {
            block_scalar = Some(indent);
        }
    }
    out
}

/// `key: value` (key possibly quoted) into its key and the rest.
fn yaml_key_value(content: &str) -> Option<(String, &str)> {
    if content.starts_with('{') || content.starts_with('[') {
        return None;
    }
    if let Some(q) = content.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = content[1..].find(q)? + 1;
        let key = content[1..end].to_string();
        let rest = content[end + 1..].trim_start().strip_prefix(':')?;
        return Some((key, rest));
    }
    let bytes = content.as_bytes();
    let colon = (0..bytes.len()).find(|&i| {
        bytes[i] == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ' || bytes[i + 1] == b'\t')
    })?;
    let key = content[..colon].trim();
    if key.is_empty() || key.starts_with('#') {
        return None;
    }
    Some((key.to_string(), &content[colon + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::duration::GoDuration;
    use crate::config::dynamic::RuleSyntax;

    const ALL_YAML: &str = include_str!("testdata/dynamic_all.yml");
    const ALL_TOML: &str = include_str!("testdata/dynamic_all.toml");

    fn parse_ok(name: &str, text: &str) -> (DynamicConfig, Vec<Issue>) {
        match parse_dynamic_file(Path::new(name), text) {
            Ok(ok) => ok,
            Err(issues) => panic!("{name}: {issues:#?}"),
        }
    }

    fn keys(s: &str) -> Vec<String> {
        tree::split_flat_key(s).unwrap()
    }

    #[test]
    fn every_supported_middleware_decodes_the_same_from_yaml_and_toml() {
        let (yaml, yaml_issues) = parse_ok("dyn.yml", ALL_YAML);
        let (toml, toml_issues) = parse_ok("dyn.toml", ALL_TOML);
        assert!(yaml_issues.is_empty(), "{yaml_issues:#?}");
        assert!(toml_issues.is_empty(), "{toml_issues:#?}");
        assert_eq!(yaml, toml);

        let http = &yaml.http;
        let mut kinds: Vec<&str> = http.middlewares.values().filter_map(|m| m.kind()).collect();
        kinds.sort();
        assert_eq!(
            kinds,
            vec![
                "addPrefix",
                "basicAuth",
                "buffering",
                "chain",
                "circuitBreaker",
                "headers",
                "inFlightReq",
                "rateLimit",
                "redirectRegex",
                "redirectScheme",
                "replacePath",
                "replacePathRegex",
                "retry",
                "stripPrefix",
                "stripPrefixRegex",
            ]
        );
        let r = &http.routers["my-router"];
        assert_eq!(r.entry_points, vec!["web"]);
        assert_eq!(r.middlewares, vec!["add-foo", "strip-api"]);
        assert_eq!(r.priority, Some(10));
        assert_eq!(http.routers["blog"].rule_syntax, Some(RuleSyntax::V2));
        let lb = http.services["my-service"].load_balancer.as_ref().unwrap();
        assert_eq!(lb.servers.len(), 2);
        assert_eq!(lb.servers[1].weight, Some(2));
        assert!(!lb.pass_host_header());
        let hc = lb.health_check.as_ref().unwrap();
        assert_eq!(hc.interval, Some(GoDuration::from_secs(10)));
        assert_eq!(hc.headers["My-Custom-Header"], "foo");
        let h = http.middlewares["secure-headers"].headers.as_ref().unwrap();
        assert_eq!(h.custom_request_headers["X-Custom-Request-Header"], "");
        assert_eq!(h.sts_seconds, Some(31_536_000));
        let auth = http.middlewares["auth"].basic_auth.as_ref().unwrap();
        assert_eq!(auth.users.len(), 2);
        assert!(auth.users[0].starts_with("test:$apr1$"));
        let ifr = http.middlewares["limit-inflight"]
            .in_flight_req
            .as_ref()
            .unwrap();
        let ip = ifr
            .source_criterion
            .as_ref()
            .unwrap()
            .ip_strategy
            .as_ref()
            .unwrap();
        assert_eq!(ip.excluded_ips, vec!["127.0.0.1/32"]);
        let rs = http.middlewares["to-https"]
            .redirect_scheme
            .as_ref()
            .unwrap();
        assert_eq!(rs.port.as_deref(), Some("443"));
        let st = &http.servers_transports["mytransport"];
        assert_eq!(st.max_idle_conns_per_host, Some(7));
        let buf = http.middlewares["limit-body"].buffering.as_ref().unwrap();
        assert_eq!(buf.max_request_body_bytes, Some(2_000_000));
        assert_eq!(buf.max_response_body_bytes, Some(0));
        assert_eq!(buf.mem_response_body_bytes, Some(2 << 20));
        assert_eq!(buf.retry_expression, "IsNetworkError() && Attempts() < 2");
    }

    #[test]
    fn unknown_keys_give_file_line_key_and_suggestion() {
        let yaml = "\
http:
  routers:
    r:
      rule: Host(`a`)
      servce: s
  services:
    s:
      loadBalancer:
        servers:
          - url: http://127.0.0.1:1
            wieght: 3
";
        let (cfg, issues) = parse_ok("dyn.yml", yaml);
        let servce = issues
            .iter()
            .find(|i| i.key.as_deref() == Some("http.routers.r.servce"));
        let servce = servce.expect("servce reported");
        assert_eq!(servce.line, Some(5));
        assert_eq!(servce.severity, Severity::Error);
        assert_eq!(
            servce.to_string(),
            "dyn.yml:5: error: unknown key `http.routers.r.servce`, did you mean `service`?"
        );
        let weight = issues
            .iter()
            .find(|i| i.key.as_deref() == Some("http.services.s.loadBalancer.servers[0].wieght"))
            .expect("wieght reported");
        assert_eq!(weight.line, Some(11));
        assert!(weight.message.contains("did you mean `weight`?"));
        // Both objects have errors: both are left out, and that is said.
        assert!(cfg.http.routers.is_empty());
        assert!(cfg.http.services.is_empty());
        assert!(
            issues
                .iter()
                .any(|i| i.message == "router `r` is ignored because of the errors above")
        );

        let toml = "\
[http.routers.r]
rule = \"Host(`a`)\"
service = \"s\"
entrypoints = [\"web\"]
prority = 3
";
        let (cfg, issues) = parse_ok("dyn.toml", toml);
        let bad = issues
            .iter()
            .find(|i| i.severity == Severity::Error)
            .unwrap();
        assert_eq!(bad.line, Some(5));
        assert_eq!(bad.key.as_deref(), Some("http.routers.r.prority"));
        assert!(
            bad.message.ends_with("did you mean `priority`?"),
            "{}",
            bad.message
        );
        assert!(cfg.http.routers.is_empty());
    }

    #[test]
    fn invalid_values_are_located() {
        let toml = "\
[http.services.s.loadBalancer]
  [[http.services.s.loadBalancer.servers]]
    url = \"http://127.0.0.1:1\"
  [http.services.s.loadBalancer.healthCheck]
    interval = \"often\"
";
        let (cfg, issues) = parse_ok("dyn.toml", toml);
        let bad = issues
            .iter()
            .find(|i| i.severity == Severity::Error)
            .unwrap();
        assert_eq!(bad.line, Some(5), "{issues:#?}");
        assert_eq!(
            bad.key.as_deref(),
            Some("http.services.s.loadBalancer.healthCheck.interval")
        );
        assert!(bad.message.contains("invalid duration"), "{}", bad.message);
        assert!(cfg.http.services.is_empty());
    }

    #[test]
    fn unsupported_middlewares_and_sections_warn_and_are_kept() {
        let yaml = "\
http:
  middlewares:
    pages:
      plugin:
        demo: {}
    web:
      grpcWeb: {}
tcp:
  routers: {}
";
        let (cfg, issues) = parse_ok("dyn.yaml", yaml);
        assert_eq!(issues.len(), 3, "{issues:#?}");
        assert!(issues.iter().all(|i| i.severity == Severity::Warning));
        assert_eq!(issues[0].line, Some(4));
        assert_eq!(
            issues[0].message,
            "`http.middlewares.pages.plugin` is not supported by escale and is ignored"
        );
        assert_eq!(issues[1].line, Some(7));
        assert_eq!(issues[2].key.as_deref(), Some("tcp"));
        assert_eq!(cfg.http.middlewares["pages"].kind(), Some("plugin"));
        assert!(cfg.tcp.is_some());
    }

    #[test]
    fn checks_name_each_bad_object_and_keep_the_rest() {
        let yaml = "\
http:
  routers:
    no-rule:
      service: ok
    no-service:
      rule: Host(`a`)
    good:
      rule: Host(`b`)
      service: ok
  services:
    ok:
      loadBalancer:
        servers:
          - url: http://127.0.0.1:8080
    empty:
      loadBalancer: {}
    bad-url:
      loadBalancer:
        servers:
          - url: http://127.0.0.1:1
          - url: 127.0.0.1:8080
    untyped: {}
  middlewares:
    none: {}
    two:
      addPrefix:
        prefix: /a
      stripPrefix:
        prefixes: [/b]
";
        let (cfg, issues) = parse_ok("dyn.yml", yaml);
        let msg = |m: &str| {
            issues
                .iter()
                .find(|i| i.message.starts_with(m))
                .unwrap_or_else(|| panic!("no issue {m:?} in {issues:#?}"))
        };
        assert_eq!(msg("router `no-rule` has no rule").line, Some(3));
        assert_eq!(msg("router `no-service` has no service").line, Some(5));
        let empty = msg("service `empty` has no servers");
        assert_eq!((empty.line, empty.severity), (Some(15), Severity::Warning));
        let url = msg("service `bad-url`: server URL \"127.0.0.1:8080\"");
        assert_eq!(url.line, Some(21));
        assert_eq!(
            url.key.as_deref(),
            Some("http.services.bad-url.loadBalancer.servers[1].url")
        );
        assert_eq!(msg("service `untyped` has no type").line, Some(22));
        assert_eq!(msg("middleware `none` has no type").line, Some(24));
        let two = msg("middleware `two` has several types");
        assert!(
            two.message.contains("addPrefix, stripPrefix"),
            "{}",
            two.message
        );
        assert_eq!(two.line, Some(25));

        let routers: Vec<&str> = cfg.http.routers.keys().map(String::as_str).collect();
        assert_eq!(routers, vec!["good"]);
        let services: Vec<&str> = cfg.http.services.keys().map(String::as_str).collect();
        assert_eq!(services, vec!["empty", "ok"]);
        assert!(cfg.http.middlewares.is_empty());
        // Sorted by line.
        let lines: Vec<usize> = issues.iter().filter_map(|i| i.line).collect();
        assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    }

    #[test]
    fn syntax_errors_are_fatal_and_located() {
        let err = parse_dynamic_file(Path::new("a.yml"), "http:\n  routers:\n    r: [a\n  x: 1\n")
            .unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(err[0].line.is_some_and(|l| l >= 3), "{err:?}");
        assert!(err[0].to_string().starts_with("a.yml:"), "{}", err[0]);
        assert!(err[0].message.starts_with("syntax error"));

        let err = parse_dynamic_file(Path::new("a.toml"), "[http]\nrouters = {\n").unwrap_err();
        assert_eq!(err[0].line, Some(2), "{err:?}");

        let err = parse_dynamic_file(Path::new("a.json"), "{}").unwrap_err();
        assert!(err[0].message.contains("extension"));
        // Wrong shape at the root: nothing usable.
        let err = parse_dynamic_file(Path::new("a.yml"), "- 1\n").unwrap_err();
        assert_eq!(err.len(), 1);
    }

    #[test]
    fn empty_file_is_an_empty_configuration() {
        let (cfg, issues) = parse_ok("empty.yml", "# nothing yet\n");
        assert!(issues.is_empty());
        assert_eq!(cfg, DynamicConfig::default());
        let (cfg, _) = parse_ok("empty.toml", "");
        assert_eq!(cfg, DynamicConfig::default());
    }

    #[test]
    fn directory_merges_files_and_reports_duplicates_with_both_names() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write(
            "a.yml",
            "http:\n  routers:\n    r:\n      rule: Host(`a`)\n      service: s\n",
        );
        write(
            "b.toml",
            "[http.routers.r]\nrule = \"Host(`b`)\"\nservice = \"s\"\n\n[http.services.s.loadBalancer]\n[[http.services.s.loadBalancer.servers]]\nurl = \"http://127.0.0.1:1\"\n",
        );
        write(
            "sub/c.yaml",
            "http:\n  middlewares:\n    m:\n      addPrefix:\n        prefix: /x\n",
        );
        write("broken.yml", "http: [\n");
        write("notes.txt", "not config");
        write(
            ".hidden.yml",
            "http:\n  routers:\n    r:\n      rule: x\n      service: s\n",
        );

        let (cfg, issues) = load_dynamic_dir(dir.path()).unwrap();
        assert_eq!(cfg.http.routers["r"].rule, "Host(`a`)", "first file wins");
        assert!(cfg.http.services.contains_key("s"));
        assert!(
            cfg.http.middlewares.contains_key("m"),
            "subdirectories are read"
        );
        let dup = issues
            .iter()
            .find(|i| i.message.starts_with("router `r` is defined in both"))
            .expect("duplicate reported");
        assert!(
            dup.message.contains("a.yml") && dup.message.contains("b.toml"),
            "{}",
            dup.message
        );
        assert_eq!(dup.line, Some(1));
        assert!(dup.file.ends_with("b.toml"));
        assert!(
            issues
                .iter()
                .any(|i| i.file.ends_with("broken.yml") && i.line.is_some())
        );
        assert_eq!(issues.len(), 2, "{issues:#?}");

        assert!(load_dynamic_dir(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn locates_keys_in_yaml_lists_and_quoted_keys() {
        let yaml = "\
http:
  services:
    s:
      loadBalancer:
        servers:
        - url: a
        - url: b
          weight: 2
        healthCheck:
          path: |
            weight: not a key
          interval: 1s
  routers:
    \"my.router\":
      rule: x
";
        let at = |k: &[&str]| {
            let k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
            locate_key(Format::Yaml, yaml, &k)
        };
        let lb = ["http", "services", "s", "loadBalancer"];
        assert_eq!(
            at(&[&lb[..], &["servers", "[1]", "weight"]].concat()),
            Some(8)
        );
        assert_eq!(at(&[&lb[..], &["servers", "[1]"]].concat()), Some(7));
        assert_eq!(at(&[&lb[..], &["servers", "[0]", "url"]].concat()), Some(6));
        assert_eq!(
            at(&[&lb[..], &["healthCheck", "interval"]].concat()),
            Some(12)
        );
        assert_eq!(at(&["http", "routers", "my.router", "rule"]), Some(15));
        assert_eq!(at(&["HTTP", "Routers"]), Some(13), "case-insensitive");
        // A key that is not written: its nearest written ancestor.
        assert_eq!(at(&["http", "services", "s", "nope"]), Some(3));
        assert_eq!(at(&["nope"]), None);
    }

    #[test]
    fn locates_keys_in_toml_tables_arrays_and_dotted_keys() {
        let toml = "\
[http.services.s.loadBalancer]
  servers = [
    { url = \"a\" },
  ]
  passHostHeader = true
[[http.services.t.loadBalancer.servers]]
  url = \"a\"
[[http.services.t.loadBalancer.servers]]
  url = \"b\"
  weight = 2
[http.routers]
  r.rule = \"x\"
  \"my.router\".service = \"s\"
";
        let at = |k: &str| locate_key(Format::Toml, toml, &keys(k));
        assert_eq!(at("http.services.s.loadBalancer.passHostHeader"), Some(5));
        assert_eq!(at("http.services.s.loadBalancer.servers[0].url"), Some(2));
        assert_eq!(
            at("http.services.t.loadBalancer.servers[1].weight"),
            Some(10)
        );
        assert_eq!(at("http.services.t.loadBalancer.servers[0].url"), Some(7));
        assert_eq!(at("http.services.t"), Some(6));
        assert_eq!(at("http.routers.r.rule"), Some(12));
        let quoted: Vec<String> = ["http", "routers", "my.router", "service"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(locate_key(Format::Toml, toml, &quoted), Some(13));
    }

    #[test]
    fn server_urls() {
        assert!(check_server_url("http://10.0.0.1:8080").is_ok());
        assert!(check_server_url("h2c://backend/path").is_ok());
        assert!(check_server_url("https://backend").is_ok());
        assert!(check_server_url("http://[::1]:80").is_ok());
        assert!(check_server_url("10.0.0.1:8080").is_err());
        assert!(
            check_server_url("ftp://x")
                .unwrap_err()
                .contains("http, https or h2c")
        );
        assert!(check_server_url("").is_err());
        assert!(check_server_url("http://").is_err());
    }
}
