//! The configuration tree and its decoder, modelled on Traefik's `paerser`.
//!
//! Every configuration source (flags, environment, TOML and YAML files, Docker
//! labels) becomes a [`Node`] tree, and [`decode`] turns a tree into any serde
//! type with Traefik's rules rather than serde's usual strictness:
//!
//! - struct fields match case-insensitively (`entrypoints` = `entryPoints`),
//!   while map keys (router names...) keep their case;
//! - strings coerce to the wanted type (`"true"`, `"8080"`, `"1.5"`), and a
//!   string becomes a list by splitting on commas, as Traefik does for flags
//!   and labels;
//! - a bare flag (`--ping`) is `true` for a bool and "enabled with defaults"
//!   for an optional struct; `false` leaves an optional struct disabled;
//! - an unknown key does not stop decoding: every one is collected with its
//!   full path and the nearest valid key, and so is every invalid value (the
//!   decoder drops the bad entry and tries again);
//! - a field typed [`Unsupported`] accepts anything and records a warning.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Deserializer, Serialize};

/// A Traefik key that escale accepts but does not implement. It keeps the raw
/// value (for `/api/rawdata`) and is reported as a warning naming the key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Unsupported(pub serde_json::Value);

/// The newtype name by which [`decode`] recognises an [`Unsupported`] field.
const UNSUPPORTED_NAME: &str = "$escale::Unsupported";

impl<'de> Deserialize<'de> for Unsupported {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Unsupported;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Unsupported, D::Error> {
                serde_json::Value::deserialize(d).map(Unsupported)
            }
        }
        // A named newtype so our decoder can tell it apart and warn; other
        // deserializers (serde_json, toml) simply see a newtype.
        d.deserialize_newtype_struct(UNSUPPORTED_NAME, V)
    }
}

/// A configuration tree, whatever the source.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Keys in source order. Flat sources merge keys case-insensitively.
    Map(Vec<(String, Node)>),
    List(Vec<Node>),
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A key with no value in a file (`ping:` in YAML).
    Null,
    /// A bare command-line flag (`--api.insecure`).
    Flag,
}

/// A file that does not parse, with 1-based position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What went wrong with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueKind {
    /// Not a field of the struct it appears in.
    UnknownKey { suggestion: Option<String> },
    /// The value has the wrong type or fails to parse.
    InvalidValue,
    /// An [`Unsupported`] field was given.
    Unsupported,
    /// The same field appears twice under different spellings, or a key has
    /// both a value and sub-keys.
    Conflict,
    /// A flat key that cannot be split (`a..b`, `a[x]`).
    MalformedKey,
}

/// One problem with one key, found while building or decoding a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIssue {
    /// The full dotted path as the user spelled it (`http.routers.r.rule`).
    pub path: String,
    /// The same path, one entry per segment; list indexes are `[n]`.
    pub keys: Vec<String>,
    /// A complete sentence naming the key.
    pub message: String,
    pub kind: IssueKind,
}

impl fmt::Display for KeyIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl KeyIssue {
    fn new(keys: Vec<String>, message: String, kind: IssueKind) -> Self {
        KeyIssue {
            path: render_path(&keys),
            keys,
            message,
            kind,
        }
    }

    /// An issue about an invalid value; `reason` is appended to the path.
    pub fn invalid(keys: Vec<String>, reason: &str) -> Self {
        let path = render_path(&keys);
        let message = if path.is_empty() {
            reason.to_string()
        } else {
            format!("`{path}`: {reason}")
        };
        KeyIssue::new(keys, message, IssueKind::InvalidValue)
    }
}

/// The outcome of [`decode`]: the value (absent only when the tree could not
/// be decoded at all) and every problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    pub value: Option<T>,
    pub errors: Vec<KeyIssue>,
    pub warnings: Vec<KeyIssue>,
}

/// Renders `["a", "b", "[0]", "c"]` as `a.b[0].c`.
pub fn render_path(keys: &[String]) -> String {
    let mut out = String::new();
    for k in keys {
        if !out.is_empty() && !is_index_segment(k) {
            out.push('.');
        }
        out.push_str(k);
    }
    out
}

fn is_index_segment(s: &str) -> bool {
    parse_index(s).is_some()
}

/// `[3]` (or, in maps standing for lists, `3`) as an index.
fn parse_index(s: &str) -> Option<usize> {
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    inner.parse().ok()
}

/// Splits a flat key (`servers[0].url`) into segments (`servers`, `[0]`, `url`).
pub fn split_flat_key(key: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in key.split('.') {
        if part.is_empty() {
            return Err(format!("malformed key `{key}`: empty segment"));
        }
        match part.find('[') {
            None => out.push(part.to_string()),
            Some(0) => return Err(format!("malformed key `{key}`: `[` must follow a name")),
            Some(open) => {
                let idx = &part[open..];
                if parse_index(idx).is_none() || !idx.starts_with('[') {
                    return Err(format!("malformed key `{key}`: bad list index `{idx}`"));
                }
                out.push(part[..open].to_string());
                out.push(idx.to_string());
            }
        }
    }
    Ok(out)
}

fn truthy_leaf(node: &Node) -> bool {
    match node {
        Node::Flag | Node::Null | Node::Bool(true) => true,
        Node::Str(s) => s.is_empty() || parse_go_bool(s) == Some(true),
        _ => false,
    }
}

fn falsy_leaf(node: &Node) -> bool {
    match node {
        Node::Bool(false) => true,
        Node::Str(s) => parse_go_bool(s) == Some(false),
        _ => false,
    }
}

/// Go's `strconv.ParseBool`, which Traefik uses for every boolean.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl Node {
    /// An empty map, the root of a tree built key by key.
    pub fn new_map() -> Node {
        Node::Map(Vec::new())
    }

    /// Builds a tree from flat dotted keys and string values, as Traefik does
    /// for flags, environment variables and labels. Keys merge
    /// case-insensitively (the first spelling is kept) and, for a key given
    /// twice, the last value wins. Malformed keys are skipped and reported.
    pub fn from_flat<I, K, V>(pairs: I) -> (Node, Vec<KeyIssue>)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Node::from_flat_nodes(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_string(), Node::Str(v.as_ref().to_string()))),
        )
    }

    /// Like [`Node::from_flat`] with any leaf, e.g. [`Node::Flag`] for a bare flag.
    pub fn from_flat_nodes<I>(pairs: I) -> (Node, Vec<KeyIssue>)
    where
        I: IntoIterator<Item = (String, Node)>,
    {
        let mut pairs: Vec<(String, Node)> = pairs.into_iter().collect();
        // Labels come from hash maps: sort so the result does not depend on
        // their order, but stably, so the last of repeated flags still wins.
        pairs.sort_by_key(|(k, _)| k.to_ascii_lowercase());
        let mut root = Node::new_map();
        let mut issues = Vec::new();
        for (key, value) in pairs {
            if let Err(issue) = root.insert_flat(&key, value) {
                issues.push(issue);
            }
        }
        (root, issues)
    }

    /// Inserts one flat key into this tree (which must be a map).
    pub fn insert_flat(&mut self, key: &str, value: Node) -> Result<(), KeyIssue> {
        let keys = split_flat_key(key)
            .map_err(|m| KeyIssue::new(vec![key.to_string()], m, IssueKind::MalformedKey))?;
        self.insert_path(&keys, value)
    }

    /// Inserts `value` at `keys`, creating maps on the way; segments match
    /// existing keys case-insensitively.
    pub fn insert_path(&mut self, keys: &[String], value: Node) -> Result<(), KeyIssue> {
        let mut node = self;
        for (depth, seg) in keys.iter().enumerate() {
            if !matches!(node, Node::Map(_)) {
                if !truthy_leaf(node) {
                    let at = keys[..depth].to_vec();
                    let path = render_path(&at);
                    return Err(KeyIssue::new(
                        at,
                        format!("`{path}` is given both a value and sub-keys"),
                        IssueKind::Conflict,
                    ));
                }
                // `--ping --ping.entryPoint=web`: the sub-keys win.
                *node = Node::new_map();
            }
            let Node::Map(entries) = node else {
                unreachable!("made a map above")
            };
            let pos = match entries
                .iter()
                .position(|(k, _)| k.eq_ignore_ascii_case(seg))
            {
                Some(p) => p,
                None => {
                    entries.push((seg.clone(), Node::new_map()));
                    entries.len() - 1
                }
            };
            let slot = &mut entries[pos].1;
            if depth + 1 == keys.len() {
                match slot {
                    Node::Map(children) if !children.is_empty() => {
                        if !truthy_leaf(&value) {
                            let path = render_path(keys);
                            return Err(KeyIssue::new(
                                keys.to_vec(),
                                format!("`{path}` is given both a value and sub-keys"),
                                IssueKind::Conflict,
                            ));
                        }
                    }
                    _ => *slot = value,
                }
                return Ok(());
            }
            node = slot;
        }
        Ok(())
    }

    /// Parses a TOML document.
    pub fn from_toml(text: &str) -> Result<Node, SyntaxError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            SyntaxError {
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        Ok(Node::from_toml_value(toml::Value::Table(table)))
    }

    fn from_toml_value(v: toml::Value) -> Node {
        match v {
            toml::Value::String(s) => Node::Str(s),
            toml::Value::Integer(i) => Node::Int(i),
            toml::Value::Float(f) => Node::Float(f),
            toml::Value::Boolean(b) => Node::Bool(b),
            toml::Value::Datetime(d) => Node::Str(d.to_string()),
            toml::Value::Array(a) => Node::List(a.into_iter().map(Node::from_toml_value).collect()),
            toml::Value::Table(t) => Node::Map(
                t.into_iter()
                    .map(|(k, v)| (k, Node::from_toml_value(v)))
                    .collect(),
            ),
        }
    }

    /// Parses a YAML document (anchors and `<<` merge keys are resolved).
    pub fn from_yaml(text: &str) -> Result<Node, SyntaxError> {
        super::yaml::parse(text)
    }

    /// The child at `keys` (exact key spelling, `[n]` for list items).
    pub fn get(&self, keys: &[String]) -> Option<&Node> {
        let mut node = self;
        for k in keys {
            node = match node {
                Node::Map(entries) => &entries.iter().find(|(ek, _)| ek == k)?.1,
                Node::List(items) => items.get(parse_index(k)?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The entry of a map whose key equals `key` case-insensitively.
    pub fn get_ci(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Removes and returns the entry of a map whose key equals `key`
    /// case-insensitively, with the key as spelled.
    pub fn take_ci(&mut self, key: &str) -> Option<(String, Node)> {
        match self {
            Node::Map(entries) => {
                let pos = entries
                    .iter()
                    .position(|(k, _)| k.eq_ignore_ascii_case(key))?;
                Some(entries.remove(pos))
            }
            _ => None,
        }
    }

    /// Removes the node at `keys`; when the full path does not exist (an item
    /// of a comma-separated string), removes its deepest existing ancestor.
    /// Returns whether anything was removed.
    pub fn remove(&mut self, keys: &[String]) -> bool {
        let Some((first, rest)) = keys.split_first() else {
            return false;
        };
        match self {
            Node::Map(entries) => {
                let Some(i) = entries.iter().position(|(k, _)| k == first) else {
                    return false;
                };
                if !rest.is_empty() && entries[i].1.remove(rest) {
                    return true;
                }
                entries.remove(i);
                true
            }
            Node::List(items) => {
                let Some(i) = parse_index(first).filter(|i| *i < items.len()) else {
                    return false;
                };
                if !rest.is_empty() && items[i].remove(rest) {
                    return true;
                }
                items.remove(i);
                true
            }
            _ => false,
        }
    }

    /// Every leaf (anything but a non-empty map or list) with its path.
    pub fn leaves(&self) -> Vec<(Vec<String>, &Node)> {
        fn walk<'n>(
            node: &'n Node,
            path: &mut Vec<String>,
            out: &mut Vec<(Vec<String>, &'n Node)>,
        ) {
            match node {
                Node::Map(entries) if !entries.is_empty() => {
                    for (k, v) in entries {
                        path.push(k.clone());
                        walk(v, path, out);
                        path.pop();
                    }
                }
                Node::List(items) if !items.is_empty() => {
                    for (i, v) in items.iter().enumerate() {
                        path.push(format!("[{i}]"));
                        walk(v, path, out);
                        path.pop();
                    }
                }
                _ => out.push((path.clone(), node)),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }

    /// The value of a scalar leaf as text (`Flag` reads as `true`).
    pub fn scalar_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Node::Str(s) => Some(Cow::Borrowed(s)),
            Node::Bool(b) => Some(Cow::Owned(b.to_string())),
            Node::Int(i) => Some(Cow::Owned(i.to_string())),
            Node::Float(f) => Some(Cow::Owned(f.to_string())),
            Node::Flag => Some(Cow::Borrowed("true")),
            Node::Null | Node::Map(_) | Node::List(_) => None,
        }
    }

    /// Whether this is an empty map (or nothing at all).
    pub fn is_empty(&self) -> bool {
        match self {
            Node::Map(e) => e.is_empty(),
            Node::Null => true,
            _ => false,
        }
    }

    /// Whether this leaf turns an option on (`--ping`, `ping: {}`, `true`).
    pub fn is_truthy(&self) -> bool {
        truthy_leaf(self) || matches!(self, Node::Map(_))
    }

    /// Whether this leaf explicitly turns an option off (`false`).
    pub fn is_falsy(&self) -> bool {
        falsy_leaf(self)
    }

    fn describe(&self) -> String {
        match self {
            Node::Map(_) => "a table of options".to_string(),
            Node::List(_) => "a list".to_string(),
            Node::Str(s) => format!("{s:?}"),
            Node::Bool(b) => b.to_string(),
            Node::Int(i) => i.to_string(),
            Node::Float(f) => f.to_string(),
            Node::Null => "nothing".to_string(),
            Node::Flag => "a flag without value".to_string(),
        }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Decodes a tree into `T` with Traefik's rules (see the module docs).
pub fn decode<T: DeserializeOwned>(node: &Node) -> Decoded<T> {
    let mut work = Cow::Borrowed(node);
    let mut value_errors: Vec<KeyIssue> = Vec::new();
    // Each failed attempt removes at least one node, so this ends; the cap
    // only bounds pathological inputs.
    for _ in 0..10_000 {
        let ctx = Ctx::default();
        let result = T::deserialize(NodeDe::new(&work, &ctx));
        let mut errors = ctx.errors.into_inner();
        let warnings = ctx.warnings.into_inner();
        match result {
            Ok(value) => {
                errors.extend(value_errors);
                return Decoded {
                    value: Some(value),
                    errors,
                    warnings,
                };
            }
            Err(e) => {
                let keys = e.keys.unwrap_or_default();
                if keys.is_empty() && e.disabled {
                    value_errors.push(KeyIssue::invalid(
                        Vec::new(),
                        &format!("expected a table of options, found {}", node.describe()),
                    ));
                } else if !e.disabled {
                    value_errors.push(KeyIssue::invalid(keys.clone(), &e.message));
                }
                if keys.is_empty() || !work.to_mut().remove(&keys) {
                    errors.extend(value_errors);
                    return Decoded {
                        value: None,
                        errors,
                        warnings,
                    };
                }
            }
        }
    }
    value_errors.push(KeyIssue::invalid(Vec::new(), "too many errors"));
    Decoded {
        value: None,
        errors: value_errors,
        warnings: Vec::new(),
    }
}

/// The suggestion for an unknown key among the valid ones, if one is close.
pub fn nearest<'f>(key: &str, candidates: impl IntoIterator<Item = &'f str>) -> Option<&'f str> {
    let k = key.to_ascii_lowercase();
    let mut best: Option<(&str, f64)> = None;
    for c in candidates {
        let lc = c.to_ascii_lowercase();
        let mut score = strsim::normalized_damerau_levenshtein(&k, &lc);
        if k.len() >= 3 && (lc.starts_with(&k) || k.starts_with(&lc)) {
            score = score.max(0.7);
        }
        if score >= 0.6 && best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

#[derive(Default)]
struct Ctx {
    errors: RefCell<Vec<KeyIssue>>,
    warnings: RefCell<Vec<KeyIssue>>,
}

#[derive(Debug)]
struct DecodeError {
    /// Where it happened; set by the innermost node that sees the error.
    keys: Option<Vec<String>>,
    message: String,
    /// `false` given for a struct, or no value for a scalar: not an error,
    /// the entry is dropped so the field keeps its default.
    disabled: bool,
}

impl DecodeError {
    fn at(mut self, path: &Path) -> Self {
        if self.keys.is_none() {
            self.keys = Some(path.keys());
        }
        self
    }

    fn disabled(path: &Path) -> Self {
        DecodeError {
            keys: Some(path.keys()),
            message: "disabled".to_string(),
            disabled: true,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError {
            keys: None,
            message: msg.to_string(),
            disabled: false,
        }
    }
}

/// Where a node sits in the tree: a list linked through the decoder's
/// stack, turned into key strings only for an issue (cloning the path for
/// every node was a quarter of decoding a large file).
#[derive(Debug, Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    /// A list item, `[n]`.
    Index(usize),
}

impl<'a> Path<'a> {
    const ROOT: Path<'static> = Path {
        parent: None,
        seg: Seg::Root,
    };

    fn child(&'a self, seg: Seg<'a>) -> Path<'a> {
        Path {
            parent: Some(self),
            seg,
        }
    }

    /// One entry per segment, list indexes as `[n]`.
    fn keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = Some(self);
        while let Some(p) = at {
            match p.seg {
                Seg::Root => {}
                Seg::Key(k) => out.push(k.to_string()),
                Seg::Index(i) => out.push(format!("[{i}]")),
            }
            at = p.parent;
        }
        out.reverse();
        out
    }
}

struct NodeDe<'a> {
    node: &'a Node,
    path: Path<'a>,
    ctx: &'a Ctx,
    /// Traefik's label form `loadbalancer.server.port`: one struct standing
    /// for a one-item list.
    single_list: bool,
}

impl<'a> NodeDe<'a> {
    fn new(node: &'a Node, ctx: &'a Ctx) -> Self {
        NodeDe {
            node,
            path: Path::ROOT,
            ctx,
            single_list: false,
        }
    }

    fn child<'c>(&'c self, node: &'c Node, seg: Seg<'c>) -> NodeDe<'c> {
        NodeDe {
            node,
            path: self.path.child(seg),
            ctx: self.ctx,
            single_list: false,
        }
    }

    fn fail(&self, message: String) -> DecodeError {
        DecodeError {
            keys: Some(self.path.keys()),
            message,
            disabled: false,
        }
    }

    fn expected(&self, what: &str) -> DecodeError {
        self.fail(format!("expected {what}, found {}", self.node.describe()))
    }

    fn integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let keys = self.path;
        let r = match self.node {
            Node::Int(i) => visitor.visit_i64(*i),
            Node::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => visitor.visit_i64(*f as i64),
            Node::Str(s) => {
                let t = s.trim();
                if let Ok(i) = t.parse::<i64>() {
                    visitor.visit_i64(i)
                } else if let Ok(u) = t.parse::<u64>() {
                    visitor.visit_u64(u)
                } else {
                    return Err(self.expected("an integer"));
                }
            }
            Node::Null => return Err(DecodeError::disabled(&keys)),
            _ => return Err(self.expected("an integer")),
        };
        r.map_err(|e: DecodeError| e.at(&keys))
    }

    fn float<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let keys = self.path;
        let r = match self.node {
            Node::Float(f) => visitor.visit_f64(*f),
            Node::Int(i) => visitor.visit_f64(*i as f64),
            Node::Str(s) => match s.trim().parse::<f64>() {
                Ok(f) => visitor.visit_f64(f),
                Err(_) => return Err(self.expected("a number")),
            },
            Node::Null => return Err(DecodeError::disabled(&keys)),
            _ => return Err(self.expected("a number")),
        };
        r.map_err(|e: DecodeError| e.at(&keys))
    }

    fn unknown_key(&self, key: &str, fields: &'static [&'static str]) {
        let mut keys = self.path.keys();
        keys.push(key.to_string());
        let path = render_path(&keys);
        let suggestion = nearest(key, fields.iter().copied()).map(str::to_string);
        let message = match &suggestion {
            Some(s) => format!("unknown key `{path}`, did you mean `{s}`?"),
            None if fields.len() <= 12 => {
                format!(
                    "unknown key `{path}` (valid keys here: {})",
                    fields.join(", ")
                )
            }
            None => format!("unknown key `{path}`"),
        };
        self.ctx.errors.borrow_mut().push(KeyIssue::new(
            keys,
            message,
            IssueKind::UnknownKey { suggestion },
        ));
    }

    fn struct_entries(
        &self,
        entries: &'a [(String, Node)],
        fields: &'static [&'static str],
    ) -> Vec<StructEntry<'a>> {
        let mut out: Vec<StructEntry<'a>> = Vec::new();
        for (key, value) in entries {
            let direct = fields.iter().find(|f| f.eq_ignore_ascii_case(key));
            // Traefik labels write `loadbalancer.server.port` for `servers[0]`.
            let alias = direct
                .is_none()
                .then(|| {
                    SLICE_AS_STRUCT
                        .iter()
                        .find(|(_, single)| single.eq_ignore_ascii_case(key))
                        .and_then(|(plural, _)| fields.iter().find(|f| *f == plural))
                })
                .flatten();
            let Some(field) = direct.or(alias) else {
                self.unknown_key(key, fields);
                continue;
            };
            if let Some(prev) = out.iter().find(|e| e.field == *field) {
                let mut keys = self.path.keys();
                keys.push(key.clone());
                let message = format!(
                    "`{}` is given twice (as `{}` and `{key}`); the first is used",
                    render_path(&keys),
                    prev.key
                );
                self.ctx.errors.borrow_mut().push(KeyIssue::new(
                    keys,
                    message,
                    IssueKind::Conflict,
                ));
                continue;
            }
            out.push(StructEntry {
                field,
                key,
                node: value,
                single_list: alias.is_some(),
            });
        }
        out
    }
}

/// Traefik's `label-slice-as-struct` fields: (list field, singular label key).
const SLICE_AS_STRUCT: &[(&str, &str)] = &[("servers", "server")];

struct StructEntry<'a> {
    field: &'static str,
    key: &'a str,
    node: &'a Node,
    single_list: bool,
}

macro_rules! forward_integer {
    ($($m:ident)*) => {$(
        fn $m<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            self.integer(visitor)
        }
    )*};
}

impl<'de, 'a> Deserializer<'de> for NodeDe<'a> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let keys = self.path;
        let r = match self.node {
            Node::Map(entries) => visitor.visit_map(UserMap::new(&self, entries)),
            Node::List(items) => visitor.visit_seq(Seq::of_list(&self, items)),
            Node::Str(s) => visitor.visit_str(s),
            Node::Bool(b) => visitor.visit_bool(*b),
            Node::Int(i) => visitor.visit_i64(*i),
            Node::Float(f) => visitor.visit_f64(*f),
            Node::Null => visitor.visit_unit(),
            Node::Flag => visitor.visit_bool(true),
        };
        r.map_err(|e: DecodeError| e.at(&keys))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let b = match self.node {
            Node::Bool(b) => *b,
            Node::Flag => true,
            Node::Int(0) => false,
            Node::Int(1) => true,
            Node::Str(s) => match parse_go_bool(s) {
                Some(b) => b,
                None => return Err(self.expected("true or false")),
            },
            Node::Null => return Err(DecodeError::disabled(&self.path)),
            _ => return Err(self.expected("true or false")),
        };
        visitor
            .visit_bool(b)
            .map_err(|e: DecodeError| e.at(&self.path))
    }

    forward_integer!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.float(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.float(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let keys = self.path;
        let r = match self.node {
            Node::Str(s) => visitor.visit_str(s),
            Node::Null => return Err(DecodeError::disabled(&keys)),
            Node::Map(_) | Node::List(_) => return Err(self.expected("a single value")),
            other => match other.scalar_text() {
                Some(t) => visitor.visit_str(&t),
                None => return Err(self.expected("a single value")),
            },
        };
        r.map_err(|e: DecodeError| e.at(&keys))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        // A present key is `Some`: `--ping` and `ping:` enable ping; `false`
        // and empty scalars are turned into "absent" by the inner decoder.
        let keys = self.path;
        visitor
            .visit_some(self)
            .map_err(|e: DecodeError| e.at(&keys))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor
            .visit_unit()
            .map_err(|e: DecodeError| e.at(&self.path))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let keys = self.path;
        if name == UNSUPPORTED_NAME {
            if falsy_leaf(self.node) {
                return Err(DecodeError::disabled(&keys));
            }
            let keys = keys.keys();
            let path = render_path(&keys);
            self.ctx.warnings.borrow_mut().push(KeyIssue::new(
                keys,
                format!("`{path}` is not supported by escale and is ignored"),
                IssueKind::Unsupported,
            ));
        }
        visitor
            .visit_newtype_struct(self)
            .map_err(|e: DecodeError| e.at(&keys))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let keys = self.path;
        if self.single_list {
            let seq = Seq {
                items: vec![(self.node, None)].into_iter(),
                parent: &self,
            };
            return visitor.visit_seq(seq).map_err(|e: DecodeError| e.at(&keys));
        }
        let r = match self.node {
            Node::List(items) => visitor.visit_seq(Seq::of_list(&self, items)),
            Node::Map(entries) => {
                let mut indexed = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    match parse_index(k) {
                        Some(i) => indexed.push((i, k.as_str(), v)),
                        None => return Err(self.expected("a list")),
                    }
                }
                indexed.sort_by_key(|(i, _, _)| *i);
                let items: Vec<(&Node, Option<Seg>)> = indexed
                    .into_iter()
                    .map(|(_, k, v)| (v, Some(Seg::Key(k))))
                    .collect();
                visitor.visit_seq(Seq {
                    items: items.into_iter(),
                    parent: &self,
                })
            }
            Node::Str(s) => {
                // Traefik's flag and label form: `a,b,c`.
                let parts: Vec<Node> = if s.trim().is_empty() {
                    Vec::new()
                } else {
                    s.split(',')
                        .map(|p| Node::Str(p.trim().to_string()))
                        .collect()
                };
                let items: Vec<(&Node, Option<Seg>)> = parts
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n, Some(Seg::Index(i))))
                    .collect();
                visitor.visit_seq(Seq {
                    items: items.into_iter(),
                    parent: &self,
                })
            }
            Node::Int(_) | Node::Float(_) | Node::Bool(_) => visitor.visit_seq(Seq {
                items: vec![(self.node, Some(Seg::Index(0)))].into_iter(),
                parent: &self,
            }),
            Node::Null => visitor.visit_seq(Seq {
                items: Vec::new().into_iter(),
                parent: &self,
            }),
            Node::Flag => return Err(self.expected("a list")),
        };
        r.map_err(|e: DecodeError| e.at(&keys))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let keys = self.path;
        let r = match self.node {
            Node::Map(entries) => visitor.visit_map(UserMap::new(&self, entries)),
            n if truthy_leaf(n) => visitor.visit_map(UserMap::new(&self, &[])),
            n if falsy_leaf(n) => return Err(DecodeError::disabled(&keys)),
            _ => return Err(self.expected("a table of names")),
        };
        r.map_err(|e: DecodeError| e.at(&keys))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let keys = self.path;
        let entries = match self.node {
            Node::Map(entries) => self.struct_entries(entries, fields),
            n if truthy_leaf(n) => Vec::new(),
            n if falsy_leaf(n) => return Err(DecodeError::disabled(&keys)),
            _ => return Err(self.expected("a table of options")),
        };
        let access = StructAccess {
            entries: entries.into_iter(),
            pending: None,
            parent: &self,
        };
        visitor
            .visit_map(access)
            .map_err(|e: DecodeError| e.at(&keys))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let keys = self.path;
        let Some(text) = self.node.scalar_text() else {
            return Err(self.expected(&format!("one of {}", variants.join(", "))));
        };
        let text = text.trim();
        let Some(variant) = variants.iter().find(|v| v.eq_ignore_ascii_case(text)) else {
            return Err(self.fail(format!(
                "unknown value {text:?}, expected one of {}",
                variants.join(", ")
            )));
        };
        let d: de::value::StrDeserializer<'_, DecodeError> = variant.into_deserializer();
        visitor.visit_enum(d).map_err(|e: DecodeError| e.at(&keys))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }
}

struct StructAccess<'p, 'a> {
    entries: std::vec::IntoIter<StructEntry<'a>>,
    pending: Option<StructEntry<'a>>,
    parent: &'p NodeDe<'a>,
}

impl<'de, 'p, 'a> MapAccess<'de> for StructAccess<'p, 'a> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        let field = entry.field;
        self.pending = Some(entry);
        let d: de::value::StrDeserializer<'_, DecodeError> = field.into_deserializer();
        seed.deserialize(d).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, DecodeError> {
        let Some(entry) = self.pending.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        let parent: &'p NodeDe<'a> = self.parent;
        let mut child = parent.child(entry.node, Seg::Key(entry.key));
        child.single_list = entry.single_list;
        seed.deserialize(child)
    }
}

struct UserMap<'p, 'a> {
    entries: std::slice::Iter<'a, (String, Node)>,
    pending: Option<&'a (String, Node)>,
    parent: &'p NodeDe<'a>,
}

impl<'p, 'a> UserMap<'p, 'a> {
    fn new(parent: &'p NodeDe<'a>, entries: &'a [(String, Node)]) -> Self {
        UserMap {
            entries: entries.iter(),
            pending: None,
            parent,
        }
    }
}

impl<'de, 'p, 'a> MapAccess<'de> for UserMap<'p, 'a> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some(entry);
        let parent: &'p NodeDe<'a> = self.parent;
        let key_de = KeyDe {
            key: &entry.0,
            path: parent.path.child(Seg::Key(&entry.0)),
            ctx: parent.ctx,
        };
        seed.deserialize(key_de).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, DecodeError> {
        let Some(entry) = self.pending.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        let parent: &'p NodeDe<'a> = self.parent;
        seed.deserialize(parent.child(&entry.1, Seg::Key(&entry.0)))
    }
}

/// A map key. Keys are strings: read as one without copying it; any other
/// wanted type goes through a node, with the usual coercions.
struct KeyDe<'a> {
    key: &'a str,
    path: Path<'a>,
    ctx: &'a Ctx,
}

impl KeyDe<'_> {
    fn node<R>(self, f: impl FnOnce(NodeDe<'_>) -> R) -> R {
        let node = Node::Str(self.key.to_string());
        f(NodeDe {
            node: &node,
            path: self.path,
            ctx: self.ctx,
            single_list: false,
        })
    }
}

macro_rules! key_as_str {
    ($($m:ident)*) => {$(
        fn $m<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            visitor
                .visit_str(self.key)
                .map_err(|e: DecodeError| e.at(&self.path))
        }
    )*};
}

macro_rules! key_via_node {
    ($($m:ident)*) => {$(
        fn $m<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            self.node(|d| d.$m(visitor))
        }
    )*};
}

impl<'de> Deserializer<'de> for KeyDe<'_> {
    type Error = DecodeError;

    key_as_str!(deserialize_any deserialize_str deserialize_string deserialize_identifier);
    key_via_node!(deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_bytes
        deserialize_byte_buf deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_ignored_any);

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.node(|d| d.deserialize_unit_struct(name, visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.node(|d| d.deserialize_newtype_struct(name, visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.node(|d| d.deserialize_tuple(len, visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.node(|d| d.deserialize_tuple_struct(name, len, visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.node(|d| d.deserialize_struct(name, fields, visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.node(|d| d.deserialize_enum(name, variants, visitor))
    }
}

struct Seq<'p, 'a, 'n> {
    /// Items with their path segment; `None` keeps the parent's path.
    items: std::vec::IntoIter<(&'n Node, Option<Seg<'n>>)>,
    parent: &'p NodeDe<'a>,
}

impl<'p, 'a> Seq<'p, 'a, 'a> {
    fn of_list(parent: &'p NodeDe<'a>, items: &'a [Node]) -> Self {
        let items: Vec<(&'a Node, Option<Seg<'a>>)> = items
            .iter()
            .enumerate()
            .map(|(i, n)| (n, Some(Seg::Index(i))))
            .collect();
        Seq {
            items: items.into_iter(),
            parent,
        }
    }
}

impl<'de, 'p, 'a, 'n> SeqAccess<'de> for Seq<'p, 'a, 'n> {
    type Error = DecodeError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, DecodeError> {
        let Some((node, seg)) = self.items.next() else {
            return Ok(None);
        };
        let parent: &'p NodeDe<'a> = self.parent;
        let path = match seg {
            Some(seg) => parent.path.child(seg),
            None => parent.path,
        };
        let d = NodeDe {
            node,
            path,
            ctx: parent.ctx,
            single_list: false,
        };
        seed.deserialize(d).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::duration::GoDuration;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", default)]
    struct Root {
        entry_points: BTreeMap<String, Ep>,
        api: Option<Api>,
        ping: Option<Ping>,
        tracing: Option<Unsupported>,
        servers: Vec<Server>,
        load_balancer: Option<Lb>,
        port: Option<u16>,
        ratio: Option<f64>,
        syntax: Option<Syntax>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", default)]
    struct Ep {
        address: String,
        forwarded_headers: Option<Fwd>,
        idle: Option<GoDuration>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", default)]
    struct Fwd {
        insecure: bool,
        #[serde(rename = "trustedIPs")]
        trusted_ips: Vec<String>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", default)]
    struct Api {
        insecure: bool,
        dashboard: Option<bool>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", default)]
    struct Ping {
        entry_point: Option<String>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", default)]
    struct Server {
        url: String,
        port: Option<u16>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", default)]
    struct Lb {
        servers: Vec<Server>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Syntax {
        V2,
        V3,
    }

    fn flat(pairs: &[(&str, &str)]) -> Node {
        let (node, issues) = Node::from_flat(pairs.iter().copied());
        assert!(issues.is_empty(), "{issues:?}");
        node
    }

    fn ok<T: DeserializeOwned>(node: &Node) -> T {
        let d = decode::<T>(node);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        d.value.expect("decoded")
    }

    #[test]
    fn flat_keys_match_fields_case_insensitively_and_keep_map_key_case() {
        let node = flat(&[
            ("entrypoints.Web.address", ":80"),
            (
                "ENTRYPOINTS.Web.forwardedheaders.trustedips",
                "1.2.3.4, 10.0.0.0/8",
            ),
            ("entryPoints.web.forwardedHeaders.insecure", "TRUE"),
        ]);
        let root: Root = ok(&node);
        let ep = &root.entry_points["Web"];
        assert_eq!(ep.address, ":80");
        let fwd = ep.forwarded_headers.as_ref().unwrap();
        assert!(fwd.insecure);
        assert_eq!(fwd.trusted_ips, vec!["1.2.3.4", "10.0.0.0/8"]);
        assert_eq!(root.entry_points.len(), 1, "keys merged case-insensitively");
    }

    #[test]
    fn strings_coerce_to_numbers_bools_durations_and_enums() {
        let node = flat(&[
            ("port", "8080"),
            ("ratio", "0.25"),
            ("api.dashboard", "false"),
            ("entrypoints.a.idle", "1m30s"),
            ("syntax", "V2"),
        ]);
        let root: Root = ok(&node);
        assert_eq!(root.port, Some(8080));
        assert_eq!(root.ratio, Some(0.25));
        assert_eq!(root.api.unwrap().dashboard, Some(false));
        assert_eq!(root.entry_points["a"].idle, Some(GoDuration::from_secs(90)));
        assert_eq!(root.syntax, Some(Syntax::V2));
    }

    #[test]
    fn bare_flags_enable_bools_and_option_structs() {
        let (node, issues) = Node::from_flat_nodes(vec![
            ("api.insecure".to_string(), Node::Flag),
            ("ping".to_string(), Node::Flag),
        ]);
        assert!(issues.is_empty());
        let root: Root = ok(&node);
        assert_eq!(
            root.api,
            Some(Api {
                insecure: true,
                dashboard: None
            })
        );
        assert_eq!(root.ping, Some(Ping::default()));
    }

    #[test]
    fn false_leaves_an_option_struct_disabled() {
        let root: Root = ok(&flat(&[("ping", "false"), ("api", "true")]));
        assert_eq!(root.ping, None);
        assert_eq!(root.api, Some(Api::default()));
    }

    #[test]
    fn flag_and_sub_keys_merge() {
        let (node, issues) = Node::from_flat_nodes(vec![
            ("ping".to_string(), Node::Flag),
            ("ping.entryPoint".to_string(), Node::Str("web".into())),
        ]);
        assert!(issues.is_empty());
        let root: Root = ok(&node);
        assert_eq!(root.ping.unwrap().entry_point.as_deref(), Some("web"));
    }

    #[test]
    fn value_and_sub_keys_conflict_is_reported() {
        let (_, issues) = Node::from_flat(vec![("port", "80"), ("port.x", "1")]);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].kind, IssueKind::Conflict);
        assert!(
            issues[0].message.contains("`port`"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn unknown_keys_are_all_collected_with_suggestions() {
        let node = flat(&[
            ("entrypoints.web.adress", ":80"),
            ("entrypoints.web.forwardedheaders.trustedip", "1.2.3.4"),
            ("api.insecur", "true"),
            ("pnig", "true"),
            ("port", "81"),
        ]);
        let d = decode::<Root>(&node);
        let root = d.value.expect("decoding goes on");
        assert_eq!(root.port, Some(81));
        let msgs: Vec<&str> = d.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(d.errors.len(), 4, "{msgs:?}");
        assert!(msgs.contains(&"unknown key `entrypoints.web.adress`, did you mean `address`?"));
        assert!(msgs.contains(
            &"unknown key `entrypoints.web.forwardedheaders.trustedip`, did you mean `trustedIPs`?"
        ));
        assert!(msgs.contains(&"unknown key `api.insecur`, did you mean `insecure`?"));
        assert!(msgs.contains(&"unknown key `pnig`, did you mean `ping`?"));
        let adress = d
            .errors
            .iter()
            .find(|e| e.path == "entrypoints.web.adress")
            .unwrap();
        assert_eq!(adress.keys, vec!["entrypoints", "web", "adress"]);
        assert_eq!(
            adress.kind,
            IssueKind::UnknownKey {
                suggestion: Some("address".into())
            }
        );
    }

    #[test]
    fn unknown_key_without_close_match_lists_valid_keys() {
        let d = decode::<Api>(&flat(&[("zzzzzz", "1")]));
        assert_eq!(
            d.errors[0].message,
            "unknown key `zzzzzz` (valid keys here: insecure, dashboard)"
        );
    }

    #[test]
    fn invalid_values_are_all_reported_and_dropped() {
        let node = flat(&[
            ("port", "eighty"),
            ("ratio", "x"),
            ("entrypoints.web.idle", "10 parsecs"),
            ("entrypoints.web.address", ":80"),
            ("api.insecure", "maybe"),
        ]);
        let d = decode::<Root>(&node);
        let root = d.value.expect("the rest decodes");
        assert_eq!(root.entry_points["web"].address, ":80");
        assert_eq!(root.port, None);
        let paths: Vec<&str> = d.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(d.errors.len(), 4, "{:?}", d.errors);
        for p in ["port", "ratio", "entrypoints.web.idle", "api.insecure"] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
        let port = d.errors.iter().find(|e| e.path == "port").unwrap();
        assert_eq!(
            port.message,
            "`port`: expected an integer, found \"eighty\""
        );
        assert!(d.errors.iter().all(|e| e.kind == IssueKind::InvalidValue));
    }

    #[test]
    fn out_of_range_integer_is_an_error() {
        let d = decode::<Root>(&flat(&[("port", "70000")]));
        assert_eq!(d.errors.len(), 1);
        assert!(
            d.errors[0].message.contains("u16"),
            "{}",
            d.errors[0].message
        );
    }

    #[test]
    fn unsupported_fields_warn_with_their_path() {
        let node = flat(&[("tracing.otlp.http.endpoint", "x"), ("port", "1")]);
        let d = decode::<Root>(&node);
        assert!(d.errors.is_empty());
        let root = d.value.unwrap();
        assert!(root.tracing.is_some());
        assert_eq!(d.warnings.len(), 1);
        assert_eq!(
            d.warnings[0].message,
            "`tracing` is not supported by escale and is ignored"
        );
        assert_eq!(d.warnings[0].kind, IssueKind::Unsupported);
        // Explicitly disabled: nothing to warn about.
        let d = decode::<Root>(&flat(&[("tracing", "false")]));
        assert!(d.warnings.is_empty());
        assert_eq!(d.value.unwrap().tracing, None);
    }

    #[test]
    fn list_indexes_and_label_slice_as_struct() {
        let node = flat(&[
            ("servers[1].url", "http://b"),
            ("servers[0].url", "http://a"),
            ("loadbalancer.server.port", "8080"),
        ]);
        let root: Root = ok(&node);
        let urls: Vec<&str> = root.servers.iter().map(|s| s.url.as_str()).collect();
        assert_eq!(urls, vec!["http://a", "http://b"]);
        assert_eq!(root.load_balancer.unwrap().servers[0].port, Some(8080));
    }

    #[test]
    fn error_paths_inside_lists_name_the_index() {
        let node = flat(&[("servers[0].url", "a"), ("servers[1].port", "x")]);
        let d = decode::<Root>(&node);
        assert_eq!(d.errors.len(), 1);
        assert_eq!(d.errors[0].path, "servers[1].port");
        assert_eq!(d.value.unwrap().servers.len(), 2);
    }

    #[test]
    fn malformed_flat_keys_are_reported() {
        let (_, issues) = Node::from_flat(vec![("a..b", "1"), ("[0]", "1"), ("a[x]", "1")]);
        assert_eq!(issues.len(), 3);
        assert!(issues.iter().all(|i| i.kind == IssueKind::MalformedKey));
    }

    #[test]
    fn toml_and_yaml_decode_the_same() {
        let toml = r#"
            port = 8080
            [entryPoints.web]
            address = ":80"
            [entryPoints.web.forwardedHeaders]
            trustedIPs = ["127.0.0.1/32"]
            [[servers]]
            url = "http://a"
        "#;
        let yaml = "
port: 8080
entryPoints:
  web:
    address: ':80'
    forwardedHeaders:
      trustedIPs:
        - 127.0.0.1/32
servers:
  - url: http://a
";
        let a: Root = ok(&Node::from_toml(toml).unwrap());
        let b: Root = ok(&Node::from_yaml(yaml).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.port, Some(8080));
        assert_eq!(a.servers[0].url, "http://a");
    }

    #[test]
    fn yaml_empty_key_enables_struct_and_typed_values_coerce_to_strings() {
        let yaml = "ping:\napi: {}\nentryPoints:\n  web:\n    address: 80\n";
        let root: Root = ok(&Node::from_yaml(yaml).unwrap());
        assert_eq!(root.ping, Some(Ping::default()));
        assert_eq!(root.api, Some(Api::default()));
        assert_eq!(root.entry_points["web"].address, "80");
    }

    #[test]
    fn yaml_anchors_merge() {
        let yaml = "base: &b\n  address: ':1'\nentryPoints:\n  web:\n    <<: *b\n";
        let node = Node::from_yaml(yaml).unwrap();
        let ep = node.get(&["entryPoints".into(), "web".into(), "address".into()]);
        assert_eq!(ep, Some(&Node::Str(":1".into())));
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let e = Node::from_toml("a = 1\n[b]\nc = = 2\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.column > 1);
        let e = Node::from_yaml("a: 1\nb:\n  c: [1, 2\n  d: 3\n").unwrap_err();
        assert!(e.line >= 3, "{e}");
        assert!(!e.message.contains(" at line "), "{e}");
        let e = Node::from_yaml("a: 1\n  b: 2\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn duplicate_fields_in_different_case_are_reported() {
        let node = Node::from_yaml("port: 1\nPort: 2\n").unwrap();
        let d = decode::<Root>(&node);
        assert_eq!(d.value.unwrap().port, Some(1));
        assert_eq!(d.errors.len(), 1);
        assert_eq!(d.errors[0].kind, IssueKind::Conflict);
    }

    #[test]
    fn root_of_wrong_shape_gives_no_value() {
        let d = decode::<Root>(&Node::from_yaml("- a\n- b\n").unwrap());
        assert!(d.value.is_none());
        assert_eq!(d.errors.len(), 1);
        assert!(
            d.errors[0].message.contains("a list"),
            "{}",
            d.errors[0].message
        );
    }

    #[test]
    fn unsupported_still_round_trips_through_serde_json() {
        let v: Unsupported = serde_json::from_str(r#"{"a":1}"#).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"a":1}"#);
        let node = Node::from_yaml("a: [1, x]\n").unwrap();
        let d = decode::<Unsupported>(&node);
        assert_eq!(d.value.unwrap().0, serde_json::json!({"a": [1, "x"]}));
    }

    #[test]
    fn render_and_remove_paths() {
        let keys: Vec<String> = ["a", "[0]", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(render_path(&keys), "a[0].b");
        let mut node = Node::from_yaml("a:\n  - b: 1\n    c: 2\n").unwrap();
        assert!(node.remove(&keys));
        assert_eq!(node, Node::from_yaml("a:\n  - c: 2\n").unwrap());
        // Past a leaf: the leaf goes.
        let mut node = flat(&[("x", "1,2")]);
        assert!(node.remove(&["x".into(), "[1]".into()]));
        assert!(node.is_empty());
    }

    #[test]
    fn nearest_prefers_close_names() {
        let fields = ["address", "asDefault", "forwardedHeaders"];
        assert_eq!(nearest("adress", fields), Some("address"));
        assert_eq!(nearest("forwardedheader", fields), Some("forwardedHeaders"));
        assert_eq!(nearest("qqq", fields), None);
    }
}
