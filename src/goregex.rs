//! Go `regexp` semantics on top of the `regex` crate, for the patterns and
//! replacements users copy from Traefik configurations (rules and
//! middlewares). Both are RE2 dialects; the differences that matter:
//! - Go reads a `{` that does not start a valid repetition as a literal (`{id}`); Rust errors.
//! - Inside a class, Go reads `[` (except `[:name:]`), `&` and `~` literally; Rust uses them
//!   for nested classes and set operations.
//! - Go's `\d`, `\w`, `\s`, `\b` are ASCII-only; Rust's are Unicode-aware.
//! - Go supports `\Q...\E` literal text and octal escapes.
//! - Go's `Expand` and `ReplaceAll` differ from the crate's in how they read
//!   `$1x` and treat empty matches.

use regex::{Regex, RegexBuilder};

/// The Rust regex equivalent to the Go regex `go`. Invalid Go regexes stay invalid.
pub fn translate(go: &str) -> String {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i = escape(&chars, i, false, &mut out),
            '[' => i = class(&chars, i, &mut out),
            '{' => match repeat_len(&chars[i..]) {
                Some(len) => {
                    out.extend(&chars[i..i + len]);
                    i += len;
                }
                None => {
                    out.push_str("\\{");
                    i += 1;
                }
            },
            '}' => {
                out.push_str("\\}");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Length of a valid Go repetition `{n}`, `{n,}` or `{n,m}` at the start of `s`.
fn repeat_len(s: &[char]) -> Option<usize> {
    let digits = |from: usize| s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = 1;
    let min = digits(i);
    if min == 0 {
        return None;
    }
    i += min;
    if s.get(i) == Some(&',') {
        i += 1;
        i += digits(i);
    }
    (s.get(i) == Some(&'}')).then_some(i + 1)
}

/// Copies the escape at `i` (a backslash); returns the index after it.
fn escape(chars: &[char], i: usize, in_class: bool, out: &mut String) -> usize {
    let Some(&c) = chars.get(i + 1) else {
        out.push('\\');
        return i + 1;
    };
    let ascii_class = match (c, in_class) {
        ('d', false) => Some("[[:digit:]]"),
        ('D', false) => Some("[[:^digit:]]"),
        ('w', false) => Some("[[:word:]]"),
        ('W', false) => Some("[[:^word:]]"),
        ('s', false) => Some(r"[\t\n\f\r ]"),
        ('S', false) => Some(r"[^\t\n\f\r ]"),
        ('b', false) => Some(r"(?-u:\b)"),
        ('B', false) => Some(r"(?-u:\B)"),
        ('d', true) => Some("[:digit:]"),
        ('D', true) => Some("[:^digit:]"),
        ('w', true) => Some("[:word:]"),
        ('W', true) => Some("[:^word:]"),
        ('s', true) => Some(r"\t\n\f\r "),
        ('S', true) => Some("[:^space:]"),
        _ => None,
    };
    if let Some(replacement) = ascii_class {
        out.push_str(replacement);
        return i + 2;
    }
    if c == 'Q' && !in_class {
        let body = &chars[i + 2..];
        let end = body
            .windows(2)
            .position(|w| w == ['\\', 'E'])
            .unwrap_or(body.len());
        let literal: String = body[..end].iter().collect();
        out.push_str(&regex::escape(&literal));
        return (i + 2 + end + 2).min(chars.len());
    }
    if let Some(next) = octal(chars, i, out) {
        return next;
    }
    out.push('\\');
    out.push(c);
    let mut next = i + 2;
    // `\p{Greek}` and `\x{41}` carry braces that are not repetitions.
    if matches!(c, 'p' | 'P' | 'x') && chars.get(next) == Some(&'{') {
        while let Some(&b) = chars.get(next) {
            out.push(b);
            next += 1;
            if b == '}' {
                break;
            }
        }
    }
    next
}

/// Copies the class opening at `i`; returns the index after its `]`.
fn class(chars: &[char], i: usize, out: &mut String) -> usize {
    out.push('[');
    let mut j = i + 1;
    if chars.get(j) == Some(&'^') {
        out.push('^');
        j += 1;
    }
    // A `]` right after the opening is a literal in Go.
    if chars.get(j) == Some(&']') {
        out.push_str("\\]");
        j += 1;
    }
    while let Some(&c) = chars.get(j) {
        match c {
            ']' => {
                out.push(']');
                return j + 1;
            }
            '\\' => j = escape(chars, j, true, out),
            '[' => {
                let named = (chars.get(j + 1) == Some(&':'))
                    .then(|| chars[j + 2..].windows(2).position(|w| w == [':', ']']))
                    .flatten();
                match named {
                    Some(len) => {
                        let end = j + 2 + len + 2;
                        out.extend(&chars[j..end]);
                        j = end;
                    }
                    None => {
                        out.push_str("\\[");
                        j += 1;
                    }
                }
            }
            '&' | '~' => {
                out.push('\\');
                out.push(c);
                j += 1;
            }
            c => {
                out.push(c);
                j += 1;
            }
        }
    }
    j
}

/// Go's octal escapes: `\0` takes up to two more octal digits, `\1`..`\7`
/// need at least one more (a lone `\1` is a backreference, which neither
/// engine supports: it is left for the compiler to reject).
fn octal(chars: &[char], i: usize, out: &mut String) -> Option<usize> {
    let first = *chars.get(i + 1)?;
    if !('0'..='7').contains(&first) {
        return None;
    }
    let digits: String = chars[i + 1..]
        .iter()
        .take(3)
        .take_while(|c| ('0'..='7').contains(*c))
        .collect();
    if first != '0' && digits.len() == 1 {
        return None;
    }
    let value = u32::from_str_radix(&digits, 8).ok()?;
    out.push_str(&format!(r"\x{{{value:X}}}"));
    Some(i + 1 + digits.len())
}

/// Compiles a Go pattern.
pub fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(&translate(pattern)).build()
}

/// Compiles a Go pattern to match bytes (paths that may not be UTF-8).
pub fn compile_bytes(pattern: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(&translate(pattern)).build()
}

/// Go's `regexp.extract`: a `$name` or `${name}` reference at the start of
/// `s`, with its group number when the name is a plain number.
fn extract(s: &str) -> Option<(&str, Option<usize>, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphabetic() || c.is_numeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let rest = if brace {
        body[end..].strip_prefix('}')?
    } else {
        &body[end..]
    };
    let num = if name.bytes().all(|b| b.is_ascii_digit())
        && !(name.len() > 1 && name.starts_with('0'))
        && name.len() <= 9
    {
        name.parse::<usize>().ok()
    } else {
        None
    };
    Some((name, num, rest))
}

/// Go's `Regexp.Expand` for one match.
fn expand(re: &Regex, caps: &regex::Captures<'_>, mut template: &str, dst: &mut String) {
    while let Some(at) = template.find('$') {
        dst.push_str(&template[..at]);
        template = &template[at + 1..];
        if let Some(rest) = template.strip_prefix('$') {
            dst.push('$');
            template = rest;
            continue;
        }
        let Some((name, num, rest)) = extract(template) else {
            dst.push('$');
            continue;
        };
        template = rest;
        let group = match num {
            Some(n) => caps.get(n),
            None => re
                .capture_names()
                .enumerate()
                .filter(|(_, n)| *n == Some(name))
                .find_map(|(i, _)| caps.get(i)),
        };
        if let Some(m) = group {
            dst.push_str(m.as_str());
        }
    }
    dst.push_str(template);
}

/// Go's `Regexp.ReplaceAllString`.
pub fn replace_all(re: &Regex, src: &str, template: &str) -> String {
    let mut out = String::with_capacity(src.len() + template.len());
    let mut last_match_end = 0;
    let mut search_pos = 0;
    while search_pos <= src.len() {
        let Some(caps) = re.captures_at(src, search_pos) else {
            break;
        };
        let Some(m) = caps.get(0) else { break };
        out.push_str(src.get(last_match_end..m.start()).unwrap_or(""));
        // No replacement for an empty match right after the previous match.
        if m.end() > last_match_end || m.start() == 0 {
            expand(re, &caps, template, &mut out);
        }
        last_match_end = m.end();
        let width = src[search_pos..].chars().next().map_or(0, char::len_utf8);
        if search_pos + width > m.end() {
            search_pos += width;
        } else if search_pos + 1 > m.end() {
            search_pos += 1;
        } else {
            search_pos = m.end();
        }
    }
    out.push_str(src.get(last_match_end..).unwrap_or(""));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go_replace(pattern: &str, src: &str, template: &str) -> String {
        replace_all(&compile(pattern).unwrap(), src, template)
    }

    #[test]
    fn perl_classes_are_ascii_only() {
        let re = compile(r"^\w+$").unwrap();
        assert!(re.is_match("abc_09"));
        assert!(!re.is_match("héllo"));
        assert!(!compile(r"\d").unwrap().is_match("٣"));
        assert!(compile(r"[\d.]+").unwrap().is_match("1.2"));
        assert!(compile(r"[^\d]").unwrap().is_match("a"));
        assert!(!compile(r"^[^\d]$").unwrap().is_match("5"));
        assert!(compile(r"a\sb").unwrap().is_match("a\tb"));
        assert!(!compile(r"a\sb").unwrap().is_match("a\u{a0}b"));
        // Go's \b is an ASCII word boundary: é is not a word character.
        assert!(compile(r"\bx").unwrap().is_match("éx"));
        assert!(compile(r"\\d").unwrap().is_match(r"\d"));
    }

    #[test]
    fn quoted_literals_and_octal() {
        assert!(compile(r"^\Q/a.b*\E$").unwrap().is_match("/a.b*"));
        assert!(!compile(r"^\Q/a.b\E$").unwrap().is_match("/axb"));
        assert!(
            compile(r"^\Q(unterminated")
                .unwrap()
                .is_match("(unterminated")
        );
        assert!(compile(r"^\101$").unwrap().is_match("A"));
        assert!(compile(r"^\0$").unwrap().is_match("\0"));
        assert!(compile(r"(a)\1").is_err());
    }

    #[test]
    fn expand_reads_names_like_go() {
        assert_eq!(go_replace(r"(\w+)-(\w+)", "ab-cd", "$2-$1"), "cd-ab");
        assert_eq!(go_replace(r"(\w+)-(\w+)", "ab-cd", "${2}x${1}"), "cdxab");
        // `$1x` is the (absent) group named `1x`, not group 1 then `x`.
        assert_eq!(go_replace(r"(\w+)", "ab", "$1x"), "");
        // Leading zeros make a name, not a number.
        assert_eq!(go_replace(r"(\w+)", "ab", "$01"), "");
        assert_eq!(go_replace(r"(?P<word>\w+)", "ab", "<$word>"), "<ab>");
        assert_eq!(go_replace(r"(\w+)", "ab", "$$1"), "$1");
        assert_eq!(go_replace(r"(\w+)", "ab", "$"), "$");
        assert_eq!(go_replace(r"(\w+)", "ab", "${1"), "${1");
        assert_eq!(go_replace(r"(a)|(b)", "b", "[$1]"), "[]");
    }

    #[test]
    fn replace_all_skips_empty_match_after_match() {
        // Go: regexp.MustCompile("x*").ReplaceAllString("abxd", "-") == "-a-b-d-"
        assert_eq!(go_replace("x*", "abxd", "-"), "-a-b-d-");
        assert_eq!(go_replace("a*", "baaac", "X"), "XbXcX");
        assert_eq!(go_replace("", "é", "-"), "-é-");
        assert_eq!(go_replace("^/api", "/api/api", "/v1"), "/v1/api");
        assert_eq!(go_replace("b", "abcb", "[$0]"), "a[b]c[b]");
    }
}
