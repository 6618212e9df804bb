//! Go `regexp` syntax, as Traefik reads it, rewritten for the regex crate. Both are RE2
//! dialects; the differences that matter for rules are:
//! - Go reads a `{` that does not start a valid repetition as a literal (`{id}`); Rust errors.
//! - Inside a class, Go reads `[` (except `[:name:]`), `&` and `~` literally; Rust uses them
//!   for nested classes and set operations.
//! - Go's `\d`, `\w`, `\s`, `\b` are ASCII-only; Rust's are Unicode-aware.
//! - Go supports `\Q...\E` literal text.

/// The Rust regex equivalent to the Go regex `go`. Invalid Go regexes stay invalid.
pub(super) fn translate(go: &str) -> String {
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
