//! A YAML document read straight into a [`Node`] tree from the parser's
//! events, with anchors, aliases and `<<` merge keys resolved. Scalars take
//! the types serde_yaml gave them (YAML 1.2 core schema: `true`, `~`, `0x1f`,
//! `1.5`; a quoted scalar is always text), so configurations read the same.
//!
//! saphyr-parser's events, rather than serde_yaml (unmaintained) through a
//! serde visitor: at 10,000 routers libyaml's scanner and serde_yaml's event
//! loader were most of a reload's work, and this parse takes 44% fewer
//! instructions (docs/benchmarks.md, "A faster YAML reader"). Files in the
//! common block shape are read by [`block`], which gives the builder the
//! same events for a fraction of the work.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};

use super::tree::{Node, SyntaxError};

mod block;

/// The key under which YAML merges other mappings into a mapping.
const MERGE_KEY: &str = "<<";

/// Nesting deeper than this is refused, as serde_yaml did: dropping a
/// deeper tree recurses, and no configuration needs it.
const MAX_DEPTH: usize = 128;

/// Aliases may copy at most this many nodes per event of the document
/// (serde_yaml's bound), so a few lines cannot expand into gigabytes.
const MAX_ALIAS_NODES_PER_EVENT: usize = 100;

/// Parses one YAML document (an empty one is [`Node::Null`]).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    if block::read(text, &mut builder).is_none() {
        return parse_fully(text);
    }
    finish(builder)
}

/// Parses with saphyr-parser alone: files the block reader leaves, and
/// the reference its tests compare with.
fn parse_fully(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(scan_error)?;
        builder.event(event, span)?;
    }
    finish(builder)
}

fn finish(builder: Builder) -> Result<Node, SyntaxError> {
    let mut node = builder.root.unwrap_or(Node::Null);
    apply_merges(&mut node).map_err(|message| SyntaxError {
        line: 1,
        column: 1,
        message,
    })?;
    Ok(node)
}

fn scan_error(e: ScanError) -> SyntaxError {
    SyntaxError {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_string(),
    }
}

fn error_at(span: Span, message: String) -> SyntaxError {
    SyntaxError {
        line: span.start.line(),
        column: span.start.col() + 1,
        message,
    }
}

/// A collection being read.
enum Frame {
    Map {
        entries: Vec<(String, Node)>,
        /// The key read, waiting for its value.
        key: Option<String>,
        /// Hashes of the keys so far, once the map is long enough that
        /// comparing every key would cost more: a duplicate is found where
        /// it stands without a copy of every key.
        seen: Option<HashSet<u64>>,
        anchor: usize,
    },
    List {
        items: Vec<Node>,
        anchor: usize,
    },
}

/// Builds the tree from the events, with an explicit stack (no recursion).
#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    documents: usize,
    /// Anchored nodes by id, with their size in nodes and their height.
    anchors: HashMap<usize, Anchored>,
    events: usize,
    alias_nodes: usize,
    hasher: foldhash::fast::RandomState,
}

/// Below this many keys a map finds a duplicate by comparing the keys.
const SCAN_KEYS: usize = 16;

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        self.events += 1;
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(error_at(
                        span,
                        "a file holds one YAML document; found a second one (`---`)".into(),
                    ));
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let node = scalar(value, style, tag.as_deref());
                self.complete(node, anchor, span)?;
            }
            Event::Alias(id) => {
                let Some(Anchored { node, size, height }) = self.anchors.get(&id) else {
                    return Err(error_at(
                        span,
                        "an alias refers to an unknown anchor".into(),
                    ));
                };
                self.alias_nodes += size;
                if self.alias_nodes > self.events.saturating_mul(MAX_ALIAS_NODES_PER_EVENT) {
                    return Err(error_at(
                        span,
                        "aliases expand to too many nodes (repetition limit exceeded)".into(),
                    ));
                }
                // Counted with the frames open, as the events it stands
                // for would have been: no tree deeper than the limit.
                if self.stack.len() + height > MAX_DEPTH + 1 {
                    return Err(depth_error(span));
                }
                let node = node.clone();
                self.complete(node, 0, span)?;
            }
            Event::SequenceStart(anchor, _) => self.open(
                Frame::List {
                    items: Vec::new(),
                    anchor,
                },
                span,
            )?,
            Event::MappingStart(anchor, _) => self.open(
                Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    seen: None,
                    anchor,
                },
                span,
            )?,
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::List { items, anchor }) => (Node::List(items), anchor),
                    Some(Frame::Map {
                        entries, anchor, ..
                    }) => (Node::Map(entries), anchor),
                    None => return Err(error_at(span, "unbalanced collection end".into())),
                };
                self.complete(node, anchor, span)?;
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, span: Span) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(depth_error(span));
        }
        self.stack.push(frame);
        Ok(())
    }

    /// Places a finished node: as the root, a list item, a key or a value.
    fn complete(&mut self, node: Node, anchor: usize, span: Span) -> Result<(), SyntaxError> {
        if anchor != 0 {
            let (size, height) = measure(&node);
            let node = node.clone();
            self.anchors.insert(anchor, Anchored { node, size, height });
        }
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match frame {
            Frame::List { items, .. } => items.push(node),
            Frame::Map {
                entries, key, seen, ..
            } => match key.take() {
                Some(k) => entries.push((k, node)),
                None => {
                    let k = key_text(node);
                    let duplicate = if entries.len() < SCAN_KEYS {
                        entries.iter().any(|(e, _)| *e == k)
                    } else {
                        let seen = seen.get_or_insert_with(|| {
                            entries
                                .iter()
                                .map(|(e, _)| self.hasher.hash_one(e))
                                .collect()
                        });
                        !seen.insert(self.hasher.hash_one(&k))
                            && entries.iter().any(|(e, _)| *e == k)
                    };
                    if duplicate {
                        let path = self.path();
                        let at = if path.is_empty() {
                            path
                        } else {
                            format!("{path}: ")
                        };
                        return Err(error_at(
                            span,
                            format!("{at}duplicate entry with key {k:?}"),
                        ));
                    }
                    *key = Some(k);
                }
            },
        }
        Ok(())
    }

    /// Where the current collection stands (`http.routers`, `a[2]`), for
    /// an error; empty at the root.
    fn path(&self) -> String {
        let mut path = String::new();
        for frame in &self.stack[..self.stack.len().saturating_sub(1)] {
            match frame {
                Frame::Map { key: Some(k), .. } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                }
                Frame::List { items, .. } => path.push_str(&format!("[{}]", items.len())),
                Frame::Map { key: None, .. } => {}
            }
        }
        path
    }
}

/// An anchored node, kept for its aliases.
struct Anchored {
    node: Node,
    /// Nodes in the tree, which an alias copies.
    size: usize,
    /// Levels of the tree (1 for a scalar).
    height: usize,
}

/// A tree's size in nodes and its height. Recursion is bounded: no tree
/// built here is deeper than [`MAX_DEPTH`] and one.
fn measure(node: &Node) -> (usize, usize) {
    let (mut size, mut height) = (1, 1);
    let mut add = |child: &Node| {
        let (s, h) = measure(child);
        size += s;
        height = height.max(h + 1);
    };
    match node {
        Node::Map(entries) => entries.iter().for_each(|(_, v)| add(v)),
        Node::List(items) => items.iter().for_each(add),
        _ => {}
    }
    (size, height)
}

fn depth_error(span: Span) -> SyntaxError {
    error_at(
        span,
        format!("nesting deeper than {MAX_DEPTH} levels (recursion limit exceeded)"),
    )
}

/// A scalar's value. Quoted and block scalars, and `!!str`, are text; a
/// plain scalar is resolved as serde_yaml did. Other tags are dropped. Text
/// takes the parser's string as it is (no copy when it owns one).
fn scalar(value: Cow<'_, str>, style: ScalarStyle, tag: Option<&Tag>) -> Node {
    let is_str_tag = tag.is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
    if style == ScalarStyle::Plain
        && !is_str_tag
        && let Some(node) = resolve_plain(&value)
    {
        return node;
    }
    Node::Str(value.into_owned())
}

/// YAML 1.2 core schema, with serde_yaml's details: `0x`/`0o`/`0b`
/// integers, a leading zero makes text (`0123`), integers beyond i64 stay
/// text, and floats must be finite unless written `.inf`/`.nan`. `None`
/// for text.
fn resolve_plain(v: &str) -> Option<Node> {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Node::Null),
        "true" | "True" | "TRUE" => return Some(Node::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Node::Bool(false)),
        _ => {}
    }
    // Most scalars are words: only a digit, a sign or a dot starts a number.
    if !v.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) {
        return None;
    }
    if let Some(int) = parse_int(v) {
        return Some(int);
    }
    if leading_zero_digits(v) {
        return None;
    }
    parse_float(v).map(Node::Float)
}

fn parse_int(v: &str) -> Option<Node> {
    let (negative, unsigned) = match v.as_bytes().first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    let (radix, digits) = if let Some(d) = unsigned.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = unsigned.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = unsigned.strip_prefix("0b") {
        (2, d)
    } else {
        if leading_zero_digits(unsigned) {
            return None;
        }
        (10, unsigned)
    };
    if digits.is_empty() || !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(digits, radix).ok()?;
    if negative {
        // Below i64::MIN a number is kept as its text, as above i64::MAX.
        let value = 0i128.checked_sub(i128::try_from(magnitude).ok()?)?;
        Some(i64::try_from(value).map_or_else(|_| Node::Str(v.to_owned()), Node::Int))
    } else {
        Some(i64::try_from(magnitude).map_or_else(|_| Node::Str(v.to_owned()), Node::Int))
    }
}

/// `0123`: digits with a leading zero are text in YAML 1.2.
fn leading_zero_digits(v: &str) -> bool {
    let v = v.strip_prefix(['-', '+']).unwrap_or(v);
    v.len() > 1 && v.starts_with('0') && v[1..].bytes().all(|b| b.is_ascii_digit())
}

fn parse_float(v: &str) -> Option<f64> {
    let unsigned = match v.strip_prefix('+') {
        Some(u) if u.starts_with(['+', '-']) => return None,
        Some(u) => u,
        None => v,
    };
    match unsigned {
        ".inf" | ".Inf" | ".INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    // Rust also reads `inf`, `nan` and `infinity`, which YAML does not.
    let f: f64 = unsigned.parse().ok()?;
    f.is_finite().then_some(f)
}

/// A mapping key as text: scalars as YAML writes them.
fn key_text(key: Node) -> String {
    match key {
        Node::Str(s) => s,
        Node::Bool(b) => b.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => f.to_string(),
        Node::Null => "null".to_string(),
        // A list or map as a key: no Traefik option has one, and the
        // decoder names it as an unknown key.
        other => format!("{other:?}"),
    }
}

/// Resolves `<<` merge keys everywhere: the merged mappings' entries are
/// added where the mapping does not have the key (earlier mappings of a
/// merge list win), as in YAML 1.1 and serde_yaml.
fn apply_merges(root: &mut Node) -> Result<(), String> {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match node {
            Node::Map(entries) => {
                while let Some(at) = entries.iter().position(|(k, _)| k == MERGE_KEY) {
                    let (_, merged) = entries.remove(at);
                    match merged {
                        Node::Map(merged) => merge_into(entries, merged),
                        Node::List(list) => {
                            for item in list {
                                match item {
                                    Node::Map(merged) => merge_into(entries, merged),
                                    other => {
                                        return Err(format!(
                                            "expected a mapping for merging, but found {}",
                                            kind(&other)
                                        ));
                                    }
                                }
                            }
                        }
                        other => {
                            return Err(format!(
                                "expected a mapping or list of mappings for merging, but found {}",
                                kind(&other)
                            ));
                        }
                    }
                }
                stack.extend(entries.iter_mut().map(|(_, v)| v));
            }
            Node::List(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
    Ok(())
}

fn merge_into(entries: &mut Vec<(String, Node)>, merged: Vec<(String, Node)>) {
    for (key, value) in merged {
        if !entries.iter().any(|(k, _)| *k == key) {
            entries.push((key, value));
        }
    }
}

fn kind(node: &Node) -> &'static str {
    match node {
        Node::List(_) => "sequence",
        Node::Map(_) => "mapping",
        _ => "scalar",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Node)]) -> Node {
        Node::Map(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn scalars_lists_and_maps_keep_their_types_and_order() {
        let node =
            parse("b: 1\na: [x, 2.5, true, ~]\nbig: 18446744073709551615\nneg: -3\n").unwrap();
        assert_eq!(
            node,
            map(&[
                ("b", Node::Int(1)),
                (
                    "a",
                    Node::List(vec![
                        Node::Str("x".into()),
                        Node::Float(2.5),
                        Node::Bool(true),
                        Node::Null
                    ])
                ),
                ("big", Node::Str("18446744073709551615".into())),
                ("neg", Node::Int(-3)),
            ])
        );
    }

    #[test]
    fn empty_documents_and_keys_without_value_are_null() {
        assert_eq!(parse("").unwrap(), Node::Null);
        assert_eq!(parse("ping:\n").unwrap(), map(&[("ping", Node::Null)]));
    }

    #[test]
    fn scalar_keys_become_text() {
        let node = parse("1: a\ntrue: b\n~: c\n").unwrap();
        let keys: Vec<_> = match node {
            Node::Map(e) => e.into_iter().map(|(k, _)| k).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(keys, ["1", "true", "null"]);
    }

    #[test]
    fn a_duplicate_key_is_a_syntax_error_naming_its_map() {
        let e = parse("a: 1\nb:\n  c: 1\n  c: 2\n").unwrap_err();
        assert!(
            e.message.contains("b: duplicate entry with key \"c\""),
            "{e}"
        );
        // At the second key.
        assert_eq!((e.line, e.column), (4, 3), "{e}");
        // The same key in different maps is fine.
        parse("a:\n  c: 1\nb:\n  c: 2\n").unwrap();
        // A long map (keys hashed rather than compared) finds it too.
        let mut long: String = (0..40).map(|i| format!("k{i}: {i}\n")).collect();
        parse(&long).unwrap();
        long.push_str("k7: again\n");
        let e = parse(&long).unwrap_err();
        assert_eq!(e.line, 41, "{e}");
        assert!(e.message.contains("duplicate entry with key \"k7\""), "{e}");
    }

    #[test]
    fn merge_keys_and_lists_of_them_fill_what_is_missing() {
        let yaml = "base: &b\n  x: 1\n  y: 1\nother: &o\n  y: 2\n  z: 2\n\
                    one:\n  <<: *b\n  x: 0\nmany:\n  <<: [*o, *b]\n";
        let node = parse(yaml).unwrap();
        assert_eq!(
            node.get(&["one".into()]).unwrap(),
            &map(&[("x", Node::Int(0)), ("y", Node::Int(1))])
        );
        assert_eq!(
            node.get(&["many".into()]).unwrap(),
            &map(&[
                ("y", Node::Int(2)),
                ("z", Node::Int(2)),
                ("x", Node::Int(1))
            ])
        );
        let e = parse("a:\n  <<: 1\n").unwrap_err();
        assert!(e.message.contains("for merging, but found scalar"), "{e}");
    }

    #[test]
    fn tags_are_dropped_but_str_keeps_text() {
        assert_eq!(
            parse("a: !custom 5\nb: !!str 5\n").unwrap(),
            map(&[("a", Node::Int(5)), ("b", Node::Str("5".into()))])
        );
    }

    #[test]
    fn plain_scalars_resolve_as_serde_yaml_did_and_quoted_ones_are_text() {
        let node = parse(
            "a: '8080'\nb: \"true\"\nc: 0123\nd: 0x1f\ne: -0o17\nf: +7\ng: 1e3\nh: .inf\n\
             i: nan\nj: -9223372036854775809\nk: |\n  text\nl: 1.5.2\nm: False\nn: 10s\n",
        )
        .unwrap();
        assert_eq!(
            node,
            map(&[
                ("a", Node::Str("8080".into())),
                ("b", Node::Str("true".into())),
                ("c", Node::Str("0123".into())),
                ("d", Node::Int(31)),
                ("e", Node::Int(-15)),
                ("f", Node::Int(7)),
                ("g", Node::Float(1000.0)),
                ("h", Node::Float(f64::INFINITY)),
                ("i", Node::Str("nan".into())),
                ("j", Node::Str("-9223372036854775809".into())),
                ("k", Node::Str("text\n".into())),
                ("l", Node::Str("1.5.2".into())),
                ("m", Node::Bool(false)),
                ("n", Node::Str("10s".into())),
            ])
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let e = parse("http:\n  routers:\n    r: [a\n  x: 1\n").unwrap_err();
        assert!(e.line >= 3, "{e}");
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("one YAML document"), "{e}");
        let e = parse("a: *nowhere\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            let refs = vec![format!("*{prev}"); 10].join(", ");
            bomb.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
        }
        let e = parse(&bomb).unwrap_err();
        assert!(e.message.contains("repetition limit"), "{e}");
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("recursion limit"), "{e}");
        // Nor through aliases: each anchor nests the one before a level
        // deeper, within the limit each time, and the limit still holds.
        let mut chained = format!("a0: &a0 {}x{}\n", "[".repeat(100), "]".repeat(100));
        for i in 1..5 {
            let open = "[".repeat(100);
            let close = "]".repeat(100);
            chained.push_str(&format!("a{i}: &a{i} {open}*a{}{close}\n", i - 1));
        }
        let e = parse(&chained).unwrap_err();
        assert!(e.message.contains("recursion limit"), "{e}");
        assert_eq!(e.line, 2, "{e}");
        // An alias within the limit is fine.
        parse("a: &a [[1]]\nb: [[*a]]\n").unwrap();
    }
}
