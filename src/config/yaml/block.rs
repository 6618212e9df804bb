//! A fast reader for the shape nearly every configuration file has: block
//! mappings and sequences, scalars on one line (plain, or quoted without
//! rare escapes), and one-line flow sequences of scalars, with comments.
//!
//! It feeds the tree builder the events saphyr-parser would, and gives up
//! at anything else: anchors, aliases, tags, block and multi-line scalars,
//! flow mappings, tabs, a second document, an error of any kind. The full
//! parser then reads the whole file and reports its errors with their
//! positions. At 10,000 routers, saphyr's scanner was most of a reload's
//! work (docs/benchmarks.md, "A block reader for YAML and a cheaper
//! compile").

use std::borrow::Cow;

use saphyr_parser::{Event, Marker, ScalarStyle, Span};

use super::Builder;

/// The file needs the full parser.
struct Unsupported;

type Step<T = ()> = Result<T, Unsupported>;

/// Reads `text` into `builder`, or `None` when the full parser must: the
/// builder then holds a partial tree and is to be dropped.
pub(super) fn read(text: &str, builder: &mut Builder) -> Option<()> {
    Reader {
        builder,
        open: Vec::new(),
        pending: Pending::Root,
        line: 0,
    }
    .run(text)
    .ok()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Seq,
}

/// A block collection being read, and the column its entries start at.
struct Open {
    kind: Kind,
    indent: usize,
}

/// A node announced and not read yet.
#[derive(Clone, Copy)]
enum Pending {
    /// The document's first line opens the root collection.
    Root,
    None,
    /// `key:` ended its line, in a map whose keys start at `indent`.
    MapValue {
        indent: usize,
    },
    /// `-` ended its line, in a sequence whose dashes are at `indent`.
    SeqItem {
        indent: usize,
    },
}

/// A scalar as read, before the builder resolves its type.
struct Scalar<'a> {
    value: Cow<'a, str>,
    style: ScalarStyle,
}

impl<'a> Scalar<'a> {
    fn plain(value: &'a str) -> Self {
        Scalar {
            value: Cow::Borrowed(value),
            style: ScalarStyle::Plain,
        }
    }
}

struct Reader<'b> {
    builder: &'b mut Builder,
    open: Vec<Open>,
    pending: Pending,
    /// 1-based number of the line being read.
    line: usize,
}

impl Reader<'_> {
    fn run(&mut self, text: &str) -> Step {
        if !plain_text(text) {
            return Err(Unsupported);
        }
        self.emit(Event::StreamStart)?;
        let mut explicit_start = false;
        let mut started = false;
        for (number, line) in text.split('\n').enumerate() {
            self.line = number + 1;
            let indent = line.bytes().take_while(|b| *b == b' ').count();
            let content = &line[indent..];
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            if indent == 0 && (content.starts_with("---") || content.starts_with("...")) {
                // A leading `---` alone is common; other markers are not.
                if !started && !explicit_start && content == "---" {
                    explicit_start = true;
                    continue;
                }
                return Err(Unsupported);
            }
            if !started {
                self.emit(Event::DocumentStart(explicit_start))?;
                started = true;
            }
            self.read_line(indent, content)?;
        }
        if !started {
            // An empty document: rare, and the full parser's events for it
            // are not worth copying.
            return Err(Unsupported);
        }
        if matches!(
            self.pending,
            Pending::MapValue { .. } | Pending::SeqItem { .. }
        ) {
            self.empty(0)?;
        }
        while let Some(open) = self.open.pop() {
            self.end(open.kind)?;
        }
        self.emit(Event::DocumentEnd)?;
        self.emit(Event::StreamEnd)
    }

    fn read_line(&mut self, indent: usize, content: &str) -> Step {
        let item = is_item(content);
        match self.pending {
            Pending::Root => return self.open_block(indent, content, item),
            // A nested collection, or a sequence at its key's column.
            Pending::MapValue { indent: key } if indent > key || (indent == key && item) => {
                return self.open_block(indent, content, item);
            }
            Pending::SeqItem { indent: dash } if indent > dash => {
                return self.open_block(indent, content, item);
            }
            Pending::MapValue { .. } | Pending::SeqItem { .. } => {
                self.empty(indent)?;
                self.pending = Pending::None;
            }
            Pending::None => {}
        }
        // Close what this line's indentation ends: deeper collections, and
        // a sequence written at its key's column once keys resume.
        loop {
            let Some(top) = self.open.last() else {
                // Past the root collection.
                return Err(Unsupported);
            };
            if top.indent > indent || (top.indent == indent && top.kind == Kind::Seq && !item) {
                let kind = top.kind;
                self.open.pop();
                self.end(kind)?;
            } else if top.indent == indent {
                break;
            } else {
                // Deeper than the collection with nothing announced: a
                // continued scalar, or an error.
                return Err(Unsupported);
            }
        }
        match (self.open.last().map(|o| o.kind), item) {
            (Some(Kind::Map), false) => self.entry(indent, content),
            (Some(Kind::Seq), true) => self.item(indent, content),
            _ => Err(Unsupported),
        }
    }

    /// Opens a block collection whose first line is `content`.
    fn open_block(&mut self, indent: usize, content: &str, item: bool) -> Step {
        self.pending = Pending::None;
        if item {
            self.emit_at(Event::SequenceStart(0, None), indent)?;
            self.open.push(Open {
                kind: Kind::Seq,
                indent,
            });
            self.item(indent, content)
        } else {
            self.emit_at(Event::MappingStart(0, None), indent)?;
            self.open.push(Open {
                kind: Kind::Map,
                indent,
            });
            self.entry(indent, content)
        }
    }

    /// `key: value` or `key:`, in the map whose keys start at `indent`.
    fn entry(&mut self, indent: usize, content: &str) -> Step {
        let (key, rest) = split_entry(content).ok_or(Unsupported)?;
        self.scalar(key, indent)?;
        self.value(rest, indent, Pending::MapValue { indent })
    }

    /// `- value`, `- key: value` or `-`, in the sequence whose dashes are at
    /// `indent`.
    fn item(&mut self, indent: usize, content: &str) -> Step {
        let after_dash = &content[1..];
        let body = after_dash.trim_start_matches(' ');
        if is_item(body) {
            // `- - x`: rare.
            return Err(Unsupported);
        }
        let column = indent + 1 + (after_dash.len() - body.len());
        if !body.is_empty()
            && !body.starts_with('#')
            && let Some((key, rest)) = split_entry(body)
        {
            // `- key: value` opens a map whose keys start at `key`.
            self.emit_at(Event::MappingStart(0, None), column)?;
            self.open.push(Open {
                kind: Kind::Map,
                indent: column,
            });
            self.scalar(key, column)?;
            return self.value(rest, column, Pending::MapValue { indent: column });
        }
        self.value(after_dash, column, Pending::SeqItem { indent })
    }

    /// What follows `key:` or `-` on its line (empty, or after a space): a
    /// scalar, a flow sequence, or nothing, when the node is on the lines
    /// below (`if_empty`).
    fn value(&mut self, rest: &str, column: usize, if_empty: Pending) -> Step {
        let text = rest.trim_start_matches(' ');
        if text.is_empty() || text.starts_with('#') {
            self.pending = if_empty;
            return Ok(());
        }
        let column = column + (rest.len() - text.len());
        if let Some(items) = text.strip_prefix('[') {
            return self.flow_sequence(items, column);
        }
        if matches!(text.as_bytes()[0], b'\'' | b'"') {
            let (scalar, after) = quoted(text)?;
            if !blank_or_comment(after) {
                return Err(Unsupported);
            }
            return self.scalar(scalar, column);
        }
        self.scalar(Scalar::plain(plain_block_value(text)?), column)
    }

    /// `[a, "b", c]` on one line (after its `[`): scalars only.
    fn flow_sequence(&mut self, mut rest: &str, column: usize) -> Step {
        self.emit_at(Event::SequenceStart(0, None), column)?;
        rest = rest.trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(']') {
            return self.close_flow(after);
        }
        loop {
            let (scalar, after) = match rest.as_bytes().first() {
                Some(b'\'' | b'"') => quoted(rest)?,
                Some(_) => {
                    let (value, after) = plain_flow_value(rest)?;
                    (Scalar::plain(value), after)
                }
                None => return Err(Unsupported),
            };
            self.scalar(scalar, column)?;
            let after = after.trim_start_matches(' ');
            if let Some(after) = after.strip_prefix(']') {
                return self.close_flow(after);
            }
            let next = after.strip_prefix(',').ok_or(Unsupported)?;
            rest = next.trim_start_matches(' ');
            if rest.starts_with(']') {
                // A trailing comma: rare, left to the full parser.
                return Err(Unsupported);
            }
        }
    }

    fn close_flow(&mut self, after: &str) -> Step {
        if !blank_or_comment(after) {
            return Err(Unsupported);
        }
        self.emit(Event::SequenceEnd)
    }

    /// The null of `key:` or `-` with nothing below.
    fn empty(&mut self, column: usize) -> Step {
        self.scalar(Scalar::plain("~"), column)
    }

    fn end(&mut self, kind: Kind) -> Step {
        self.emit(match kind {
            Kind::Map => Event::MappingEnd,
            Kind::Seq => Event::SequenceEnd,
        })
    }

    fn scalar(&mut self, scalar: Scalar<'_>, column: usize) -> Step {
        self.emit_at(Event::Scalar(scalar.value, scalar.style, 0, None), column)
    }

    fn emit(&mut self, event: Event<'_>) -> Step {
        self.emit_at(event, 0)
    }

    /// Hands an event to the builder. Its errors (a duplicate key, too deep
    /// a nesting) are reported by the full parser's run, which has the
    /// exact positions.
    fn emit_at(&mut self, event: Event<'_>, column: usize) -> Step {
        let at = Marker::new(0, self.line, column);
        self.builder
            .event(event, Span::new(at, at))
            .map_err(|_| Unsupported)
    }
}

/// Text this reader handles: no tabs, carriage returns or other control
/// characters, no byte order mark and none of the characters YAML 1.1 reads
/// as line breaks.
fn plain_text(text: &str) -> bool {
    let controls = text.bytes().any(|b| (b < b' ' && b != b'\n') || b == 0x7f);
    !controls
        && (text.is_ascii()
            || !text.chars().any(|c| {
                matches!(
                    c,
                    '\u{80}'
                        ..='\u{9f}'
                            | '\u{2028}'
                            | '\u{2029}'
                            | '\u{feff}'
                            | '\u{fffe}'
                            | '\u{ffff}'
                )
            }))
}

/// A block sequence entry: `-` followed by a space or the line's end.
fn is_item(content: &str) -> bool {
    let b = content.as_bytes();
    b.first() == Some(&b'-') && (b.len() == 1 || b[1] == b' ')
}

/// Nothing, or a comment after at least one space.
fn blank_or_comment(rest: &str) -> bool {
    let text = rest.trim_start_matches(' ');
    text.is_empty() || (text.starts_with('#') && text.len() < rest.len())
}

/// The longest implicit key YAML allows.
const MAX_KEY: usize = 1024;

/// Splits `key: value` (or `key:`) into the key and what follows its colon.
/// `None` when the line is not a simple entry.
fn split_entry(content: &str) -> Option<(Scalar<'_>, &str)> {
    if matches!(content.as_bytes().first(), Some(b'\'' | b'"')) {
        let (key, after) = quoted(content).ok()?;
        let after = after.trim_start_matches(' ');
        let rest = after.strip_prefix(':')?;
        return (rest.is_empty() || rest.starts_with(' ')).then_some((key, rest));
    }
    if !plain_start(content, false) {
        return None;
    }
    let bytes = content.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b':' if i + 1 == bytes.len() || bytes[i + 1] == b' ' => {
                let key = content[..i].trim_end_matches(' ');
                if key.len() > MAX_KEY {
                    return None;
                }
                return Some((Scalar::plain(key), &content[i + 1..]));
            }
            // A comment before any colon: not an entry.
            b'#' if i > 0 && bytes[i - 1] == b' ' => return None,
            _ => {}
        }
    }
    None
}

/// Whether a plain scalar may start this way: not with an indicator, and
/// `-` only when a character that is not a space follows (`-1`).
fn plain_start(text: &str, flow: bool) -> bool {
    let b = text.as_bytes();
    match b.first() {
        None => false,
        Some(b'-') => b
            .get(1)
            .is_some_and(|n| *n != b' ' && !(flow && is_flow_indicator(*n))),
        Some(c) => !b"-?:,[]{}#&*!|>'\"%@`".contains(c),
    }
}

fn is_flow_indicator(b: u8) -> bool {
    matches!(b, b',' | b'[' | b']' | b'{' | b'}')
}

/// A plain scalar ending its line (block context): up to a comment,
/// without trailing spaces. A `: ` inside is a mapping the reader leaves to
/// the full parser (which reports it as an error).
fn plain_block_value(text: &str) -> Step<&str> {
    if !plain_start(text, false) {
        return Err(Unsupported);
    }
    let end = text.find(" #").unwrap_or(text.len());
    let value = text[..end].trim_end_matches(' ');
    if value.contains(": ") || value.ends_with(':') {
        return Err(Unsupported);
    }
    Ok(value)
}

/// A plain scalar inside a flow sequence: up to `,` or `]`, without the
/// spaces around it; the rest of the line after it.
fn plain_flow_value(text: &str) -> Step<(&str, &str)> {
    if !plain_start(text, true) {
        return Err(Unsupported);
    }
    let bytes = text.as_bytes();
    let mut end = bytes.len();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b',' | b']' => {
                end = i;
                break;
            }
            b'[' | b'{' | b'}' => return Err(Unsupported),
            b'#' if bytes[i - 1] == b' ' => return Err(Unsupported),
            // `a: b` is a mapping; `a:b` and `http://x` are text.
            b':' if bytes
                .get(i + 1)
                .is_none_or(|n| *n == b' ' || is_flow_indicator(*n)) =>
            {
                return Err(Unsupported);
            }
            _ => {}
        }
    }
    Ok((text[..end].trim_end_matches(' '), &text[end..]))
}

/// A quoted scalar that ends on its line, and the text after its closing
/// quote. Double quotes take only the common escapes (`\\ \" \n \t \/`).
fn quoted(text: &str) -> Step<(Scalar<'_>, &str)> {
    let quote = text.as_bytes()[0];
    let body = &text[1..];
    let mut owned: Option<String> = None;
    let mut copied = 0; // bytes of `body` already in `owned`
    let mut i = 0;
    let bytes = body.as_bytes();
    while i < bytes.len() {
        let b = bytes[i];
        if quote == b'\'' && b == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                let s = owned.get_or_insert_with(String::new);
                s.push_str(&body[copied..=i]);
                i += 2;
                copied = i;
                continue;
            }
            return Ok(finish_quoted(
                body,
                owned,
                copied,
                i,
                ScalarStyle::SingleQuoted,
            ));
        }
        if quote == b'"' {
            match b {
                b'"' => {
                    return Ok(finish_quoted(
                        body,
                        owned,
                        copied,
                        i,
                        ScalarStyle::DoubleQuoted,
                    ));
                }
                b'\\' => {
                    let unescaped = match bytes.get(i + 1) {
                        Some(b'\\') => '\\',
                        Some(b'"') => '"',
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        Some(b'/') => '/',
                        _ => return Err(Unsupported),
                    };
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&body[copied..i]);
                    s.push(unescaped);
                    i += 2;
                    copied = i;
                    continue;
                }
                _ => {}
            }
        }
        i += 1;
    }
    // Not closed on this line: a multi-line scalar.
    Err(Unsupported)
}

/// The scalar of a quoted run of `body` closed at `end`, and what follows.
fn finish_quoted(
    body: &str,
    owned: Option<String>,
    copied: usize,
    end: usize,
    style: ScalarStyle,
) -> (Scalar<'_>, &str) {
    let value = match owned {
        Some(mut s) => {
            s.push_str(&body[copied..end]);
            Cow::Owned(s)
        }
        None => Cow::Borrowed(&body[..end]),
    };
    (Scalar { value, style }, &body[end + 1..])
}

#[cfg(test)]
mod tests {
    use super::super::{Builder, finish, parse_fully};
    use super::*;
    use crate::config::tree::{Node, SyntaxError};

    /// The block reader's result (merge keys applied), or `None` when it
    /// leaves the file.
    fn fast(text: &str) -> Option<Result<Node, SyntaxError>> {
        let mut builder = Builder::default();
        read(text, &mut builder)?;
        Some(finish(builder))
    }

    /// Debug text compares NaN equal to itself.
    fn same(a: &Result<Node, SyntaxError>, b: &Result<Node, SyntaxError>) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    fn assert_read_like_full_parser(text: &str) {
        let full = parse_fully(text);
        assert!(full.is_ok(), "{text:?}: {full:?}");
        let fast = fast(text).unwrap_or_else(|| panic!("block reader left {text:?}"));
        assert!(
            same(&fast, &full),
            "{text:?}\nblock: {fast:?}\nfull:  {full:?}"
        );
    }

    #[test]
    fn common_shapes_are_read_as_the_full_parser_reads_them() {
        for text in [
            "http:\n  routers:\n    r0:\n      rule: Host(`h0.test`)\n      service: app\n      entryPoints: [web]\n",
            "---\na: 1\nb:\n  - x\n  - y: 2\n    z: [a, 'b', \"c\"]\n",
            "a:\n- 1\n- two\nb: ~\n",
            "# top\na: # after key\n  # inside\n  b: c # after value\n\nd: e#f\n",
            "'quoted key': 'it''s'\n\"dq\": \"a\\\"b\\\\c\\n\\t\\/\"\nplain key : v\n",
            "list:\n  -\n  - a: 1\n    b:\n      - x\n  - [ ]\n  - []\n  -   spaced\n",
            "n: -5\nf: 1.5\nh: 0x1f\no: 0123\nt: true\nnul: null\nempty:\nurl: http://a:8080/p?q=1#frag\n",
            "  indented: root\n  second: key\n",
            "- a\n- b:\n    c: d\n- - \n".trim_end_matches("- - \n"),
            "unicode: héllo wörld ✓\nkey with spaces: value, with commas\n",
            "flow: [ a , b:c, 'd, e', \"f]\" ]   # comment\n",
            "1: int key\ntrue: bool key\n~: null key\n",
            "a:\n  b:\n    c:\n",
            "x: a ] b } c , d\n",
        ] {
            assert_read_like_full_parser(text);
        }
    }

    #[test]
    fn rare_shapes_are_left_to_the_full_parser() {
        for text in [
            "",
            "# only a comment\n",
            "a: &x 1\nb: *x\n",
            "base: &b {x: 1}\n",
            "a: !!str 1\n",
            "a: |\n  text\n",
            "a: >\n  text\n",
            "a: multi\n  line\n",
            "a: 'multi\n  line'\n",
            "a:\tb\n",
            "a: b\r\nc: d\r\n",
            "a: {b: c}\n",
            "a: [b, [c]]\n",
            "a: [b,]\n",
            "a: [b\n",
            "- - x\n",
            "? complex\n: key\n",
            "a: 1\n---\nb: 2\n",
            "--- a\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: \"\\x41\"\n",
            "\u{feff}a: 1\n",
            "scalar root\n",
            "[a, b]\n",
            "a: b: c\n",
            "a: 1\na: 2\n",
            "a:\n  b: 1\n c: 2\n",
            "a: 'x'y\n",
            "a: 'x'#y\n",
            "a: @x\n",
            "a: `x`\n",
            "a: -\n",
            "a: - b\n",
        ] {
            assert!(fast(text).is_none(), "block reader took {text:?}");
        }
    }

    #[test]
    fn the_repository_files_are_read_as_the_full_parser_reads_them() {
        assert_read_like_full_parser(include_str!("../testdata/dynamic_all.yml"));
        assert_read_like_full_parser(include_str!("../../../examples/quickstart/dynamic.yml"));
    }

    /// Random documents from pieces that sit on the edges of the subset:
    /// whatever the block reader takes, the full parser must take too, with
    /// the same tree. Errors must never be read as a configuration.
    #[test]
    fn random_documents_agree_with_the_full_parser() {
        // Common pieces, then pieces on the edges of the subset.
        const KEYS: [&[&str]; 2] = [
            &["a", "b", "key", "'q k'", "\"d\"", "1", "a b", "é"],
            &[
                "-1",
                "true",
                "~",
                "x#y",
                "<<",
                "a]",
                "'it''s'",
                "? a",
                "-",
                "a:b",
                "http://x",
                "\"e\\\\\"",
                "k ",
                "x #y",
            ],
        ];
        const VALUES: [&[&str]; 2] = [
            &[
                "", "v", "1", "a b", "'s'", "\"d\"", "[a, b]", "[]", "x #c", "# c",
            ],
            &[
                "-2",
                "0x1f",
                "012",
                "1.5",
                ".inf",
                "null",
                "~",
                "True",
                "x#c",
                "'it''s'",
                "'a' b",
                "\"d\\\"q\"",
                "\"bad\\q\"",
                "\"\"",
                "''",
                "[ a ,b ]",
                "[ ]",
                "[a,]",
                "[a, [b]]",
                "[x: y]",
                "[a:b]",
                "['a', \"b\"]",
                "[a #c]",
                "[-1, - x]",
                "{a: 1}",
                "&a x",
                "*a",
                "!!str 1",
                "|",
                ">",
                "- x",
                "-",
                "a: b",
                "a:b",
                "b:",
                "http://a:1/#x",
                "héllo",
                "%x",
                "@x",
                "`x`",
                "a ] b",
                "[a] b",
                "'open",
                "\"open",
                ":x",
                "?x",
                "--x",
            ],
        ];
        const INDENTS: &[usize] = &[0, 0, 0, 1, 2, 2, 2, 3, 4, 4, 6];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut taken, mut total) = (0, 0);
        for _ in 0..50_000 {
            let mut text = String::new();
            let mut indent: usize = 0;
            for _ in 0..1 + next(7) {
                // Mostly the shapes of real files: the same column, one
                // level deeper, back to the left; sometimes anywhere.
                indent = match next(10) {
                    0..=4 => indent,
                    5 | 6 => indent + 2,
                    7 => 0,
                    8 => indent.saturating_sub(2),
                    _ => INDENTS[next(INDENTS.len())],
                };
                text.push_str(&" ".repeat(indent));
                match next(6) {
                    0 => text.push_str("- "),
                    1 => text.push('-'),
                    2 => text.push_str("-   "),
                    _ => {}
                }
                let edge = usize::from(next(4) == 0);
                let value = VALUES[edge][next(VALUES[edge].len())];
                match next(5) {
                    0 => text.push_str(value),
                    1 => text.push_str("# comment"),
                    _ => {
                        let edge = usize::from(next(4) == 0);
                        text.push_str(KEYS[edge][next(KEYS[edge].len())]);
                        text.push_str([": ", ":", " : ", ":  "][next(4)]);
                        text.push_str(value);
                    }
                }
                text.push('\n');
            }
            total += 1;
            let Some(fast) = fast(&text) else { continue };
            taken += 1;
            // Merge errors come after reading, and must match too.
            let full = parse_fully(&text);
            assert!(
                same(&fast, &full),
                "{text:?}\nblock: {fast:?}\nfull:  {full:?}"
            );
        }
        // Enough documents go through the block reader for this to test it.
        assert!(
            taken * 10 > total,
            "only {taken} of {total} read by the block reader"
        );
    }
}
