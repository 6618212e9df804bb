//! A YAML document read straight into a [`Node`] tree, with anchors, aliases
//! and `<<` merge keys resolved. Going through `serde_yaml::Value` first held
//! the whole document twice while converting, and a `Value` map (an index
//! map keyed by values) costs several times a tree's list of pairs: at 10,000
//! routers that was most of the parse's peak, and of the memory malloc kept
//! from it.

use std::collections::HashSet;
use std::fmt;
use std::hash::BuildHasher;

use serde::de::{
    self, Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::tree::{Node, SyntaxError};

/// The key under which YAML merges other mappings into a mapping.
const MERGE_KEY: &str = "<<";

/// Parses one YAML document.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let ParsedNode(mut node) = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        let mut message = e.to_string();
        // serde_yaml repeats the position we report separately.
        if let Some(at) = message.find(" at line ") {
            message.truncate(at);
        }
        SyntaxError {
            line,
            column,
            message,
        }
    })?;
    apply_merges(&mut node).map_err(|message| SyntaxError {
        line: 1,
        column: 1,
        message,
    })?;
    Ok(node)
}

/// A node as serde_yaml's deserializer produces it (aliases replayed).
struct ParsedNode(Node);

impl<'de> Deserialize<'de> for ParsedNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor).map(ParsedNode)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Node, E> {
        Ok(Node::Int(i))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Node, E> {
        // Beyond i64 a number is kept as its text.
        Ok(i64::try_from(u).map_or_else(|_| Node::Str(u.to_string()), Node::Int))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Node, E> {
        Ok(Node::Float(f))
    }

    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::Str(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Node, E> {
        Ok(Node::Str(s))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(ParsedNode(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::with_capacity(map.size_hint().unwrap_or(0));
        // Hashes of the keys so far: a duplicate is found where it stands
        // (so the error has its position) without a copy of every key.
        let hasher = std::collections::hash_map::RandomState::new();
        let mut seen = HashSet::new();
        while let Some(ParsedNode(key)) = map.next_key()? {
            let key = key_text(key);
            if !seen.insert(hasher.hash_one(&key)) && entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate entry with key {key:?}"
                )));
            }
            let ParsedNode(value) = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }

    /// A tagged value (`!tag value`): the tag is dropped.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        let (_tag, value): (de::IgnoredAny, _) = data.variant()?;
        value
            .newtype_variant::<ParsedNode>()
            .map(|ParsedNode(node)| node)
    }
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
        // serde_yaml places the error where the map starts.
        assert_eq!(e.line, 3, "{e}");
        // The same key in different maps is fine.
        parse("a:\n  c: 1\nb:\n  c: 2\n").unwrap();
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
    fn tags_are_dropped() {
        assert_eq!(
            parse("a: !custom 5\n").unwrap(),
            map(&[("a", Node::Int(5))])
        );
    }
}
