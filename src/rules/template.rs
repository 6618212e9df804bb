//! gorilla/mux route templates, as Traefik v1 and v2 use them: literal text with variables
//! `{name}` or `{name:pattern}`. Compiled the way mux's `newRouteRegexp` does it, with
//! non-capturing groups since escale never reads the variables.

use regex::Regex;

use super::compile_go_regex;
use super::values::short_regex_error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Whole host, case-insensitive; `{name}` is one label.
    Host,
    /// Whole path; `strict_slash` makes one trailing slash optional (mux's StrictSlash).
    Path { strict_slash: bool },
    /// Path prefix.
    PathPrefix,
    /// A query value, whole; `{name}` and the empty template match anything.
    QueryValue,
}

/// Whether the text uses template syntax at all; if not, it is a plain literal.
pub(super) fn is_template(text: &str) -> bool {
    text.contains(['{', '}'])
}

/// The regex source equivalent to `template`.
pub(super) fn to_regex(template: &str, kind: Kind) -> Result<String, String> {
    let default_pattern = match kind {
        Kind::Host => "[^.]+",
        Kind::Path { .. } | Kind::PathPrefix => "[^/]+",
        Kind::QueryValue => ".*",
    };
    let spans = brace_spans(template)?;
    let strict = matches!(kind, Kind::Path { strict_slash: true });
    // Braces never end a template that ends with '/', so the spans stay valid.
    let tpl = match template.strip_suffix('/') {
        Some(trimmed) if strict => trimmed,
        _ => template,
    };

    let mut pattern = String::new();
    if kind == Kind::Host {
        pattern.push_str("(?i)");
    }
    pattern.push('^');
    let mut end = 0;
    for (open, close) in spans {
        pattern.push_str(&regex::escape(&tpl[end..open]));
        let inner = &tpl[open + 1..close];
        let (name, var_pattern) = inner.split_once(':').unwrap_or((inner, default_pattern));
        if name.is_empty() || var_pattern.is_empty() {
            return Err(format!(
                "missing name or pattern in `{}`",
                &tpl[open..=close]
            ));
        }
        // mux also compiles each variable's pattern on its own, which rejects patterns that
        // only compile once embedded (such as `a)(b`).
        if let Err(e) = compile_go_regex(&format!("^{var_pattern}$")) {
            return Err(format!(
                "invalid regex `{var_pattern}` in `{}`: {}",
                &tpl[open..=close],
                short_regex_error(&e)
            ));
        }
        pattern.push_str("(?:");
        pattern.push_str(var_pattern);
        pattern.push(')');
        end = close + 1;
    }
    pattern.push_str(&regex::escape(&tpl[end..]));
    if strict {
        pattern.push_str("/?");
    }
    if kind == Kind::QueryValue && template.is_empty() {
        pattern.push_str(default_pattern);
    }
    if kind != Kind::PathPrefix {
        pattern.push('$');
    }
    Ok(pattern)
}

/// Compiles `template` into a regex.
pub(super) fn compile(template: &str, kind: Kind) -> Result<Regex, String> {
    let source = to_regex(template, kind)?;
    compile_go_regex(&source)
        .map_err(|e| format!("invalid template `{template}`: {}", short_regex_error(&e)))
}

/// Offsets of the outermost `{` and its matching `}`; nested braces belong to patterns such
/// as `[0-9]{2}`.
fn brace_spans(text: &str) -> Result<Vec<(usize, usize)>, String> {
    let mut spans = Vec::new();
    let mut level = 0usize;
    let mut open = 0;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'{' => {
                if level == 0 {
                    open = i;
                }
                level += 1;
            }
            b'}' => {
                if level == 0 {
                    return Err(format!("unbalanced braces in `{text}`"));
                }
                level -= 1;
                if level == 0 {
                    spans.push((open, i));
                }
            }
            _ => {}
        }
    }
    if level != 0 {
        return Err(format!("unbalanced braces in `{text}`"));
    }
    Ok(spans)
}
