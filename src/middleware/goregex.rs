//! Go `regexp` semantics on top of the `regex` crate, for the patterns and
//! replacements users copy from Traefik configurations.
//!
//! The syntaxes are nearly the same (both RE2); the differences that matter
//! are handled here: Go's `\d`, `\w`, `\s` and `\b` are ASCII-only, Go has
//! `\Q...\E` and octal escapes, and Go's `Expand` and `ReplaceAll` differ
//! from the crate's in how they read `$1x` and treat empty matches.

use regex::{Regex, RegexBuilder};

/// Rewrites a Go pattern into an equivalent pattern for the `regex` crate.
pub fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((i, e)) = chars.next() else {
            // A trailing backslash: let the compiler report it.
            out.push('\\');
            break;
        };
        match e {
            // Nested classes work both inside and outside brackets.
            'd' => out.push_str("[0-9]"),
            'D' => out.push_str("[^0-9]"),
            'w' => out.push_str("[0-9A-Za-z_]"),
            'W' => out.push_str("[^0-9A-Za-z_]"),
            's' => out.push_str(r"[\t\n\x0C\r ]"),
            'S' => out.push_str(r"[^\t\n\x0C\r ]"),
            'b' => out.push_str(r"(?-u:\b)"),
            'B' => out.push_str(r"(?-u:\B)"),
            'Q' => {
                let rest = &pattern[i + 1..];
                let (literal, after) = match rest.find(r"\E") {
                    Some(end) => (&rest[..end], end + 2),
                    None => (rest, rest.len()),
                };
                out.push_str(&regex::escape(literal));
                // Skip what the literal consumed.
                let stop = i + 1 + after;
                while chars.peek().is_some_and(|&(j, _)| j < stop) {
                    chars.next();
                }
            }
            '0'..='7' => {
                // Go: `\0` takes up to two more octal digits, `\1`..`\7`
                // need at least one more (a lone `\1` is a backreference,
                // which neither engine supports).
                let mut digits = String::from(e);
                let max_more = 2;
                while digits.len() <= max_more {
                    match chars.peek() {
                        Some(&(_, d @ '0'..='7')) => {
                            digits.push(d);
                            chars.next();
                        }
                        _ => break,
                    }
                }
                if e != '0' && digits.len() == 1 {
                    out.push('\\');
                    out.push(e);
                } else {
                    let value = u32::from_str_radix(&digits, 8).unwrap_or(0);
                    out.push_str(&format!(r"\x{{{value:X}}}"));
                }
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
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
