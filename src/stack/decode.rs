//! Typed reads from the spanned tree. Each read reports its own problem and
//! returns `None`, so decoding goes on and every problem is found in one pass.

use std::time::Duration;

use super::source::{Entry, Kind, Problems, Val};
use crate::config::duration::GoDuration;
use crate::config::tree::nearest;

/// A value with the line it was written on.
#[derive(Debug, Clone, PartialEq)]
pub struct At<T> {
    pub value: T,
    pub line: usize,
}

impl<T> At<T> {
    pub fn new(value: T, line: usize) -> Self {
        At { value, line }
    }
}

/// The reading context: problems go here, and lines come from here.
pub struct Cx<'p> {
    pub problems: &'p mut Problems,
    /// Relative bind mount sources are resolved against this directory (the
    /// stack file's).
    pub base_dir: std::path::PathBuf,
}

impl Cx<'_> {
    pub fn line(&self, e: &Entry) -> usize {
        self.problems.line_of(e.key_span.start)
    }

    pub fn val_line(&self, v: &Val) -> usize {
        self.problems.line_of(v.span.start)
    }

    pub fn err(&mut self, e: &Entry, message: impl Into<String>) {
        self.problems.at(&e.key_span, message);
    }

    pub fn err_val(&mut self, v: &Val, message: impl Into<String>) {
        self.problems.at(&v.span, message);
    }

    fn wrong_type(&mut self, e: &Entry, path: &str, expected: &str) {
        let found = e.value.kind.type_name();
        self.err(e, format!("`{path}` must be {expected}, found {found}"));
    }

    /// Checks that `e` is a table whose keys are all in `known`; reports each
    /// unknown key with the nearest known one.
    pub fn table<'a>(&mut self, e: &'a Entry, path: &str, known: &[&str]) -> Option<&'a [Entry]> {
        let Kind::Table(t) = &e.value.kind else {
            self.wrong_type(e, path, "a table");
            return None;
        };
        self.check_keys(t, path, known);
        Some(t)
    }

    pub fn check_keys(&mut self, t: &[Entry], path: &str, known: &[&str]) {
        for k in t {
            if !known.contains(&k.key.as_str()) {
                let hint = match nearest(&k.key, known.iter().copied()) {
                    Some(n) => format!("; did you mean `{n}`?"),
                    None => format!("; expected one of: {}", known.join(", ")),
                };
                let at = if path.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in [{path}]")
                };
                self.err(k, format!("unknown key `{}` {at}{hint}", k.key));
            }
        }
    }

    pub fn string(&mut self, e: &Entry, path: &str) -> Option<At<String>> {
        match &e.value.kind {
            Kind::Str(s) => Some(At::new(s.clone(), self.line(e))),
            _ => {
                self.wrong_type(e, path, "a string");
                None
            }
        }
    }

    /// A string, a number or a boolean, as text (env values, labels).
    pub fn scalar_text(&mut self, e: &Entry, path: &str) -> Option<At<String>> {
        let text = match &e.value.kind {
            Kind::Str(s) => s.clone(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => f.to_string(),
            Kind::Bool(b) => b.to_string(),
            _ => {
                self.wrong_type(e, path, "a string, number or boolean");
                return None;
            }
        };
        Some(At::new(text, self.line(e)))
    }

    pub fn int(&mut self, e: &Entry, path: &str, min: i64, max: i64) -> Option<At<i64>> {
        match e.value.kind {
            Kind::Int(i) if (min..=max).contains(&i) => Some(At::new(i, self.line(e))),
            Kind::Int(i) => {
                self.err(
                    e,
                    format!("`{path}` must be between {min} and {max}, found {i}"),
                );
                None
            }
            _ => {
                self.wrong_type(e, path, "an integer");
                None
            }
        }
    }

    pub fn float(&mut self, e: &Entry, path: &str) -> Option<At<f64>> {
        match e.value.kind {
            Kind::Float(f) if f >= 0.0 && f.is_finite() => Some(At::new(f, self.line(e))),
            Kind::Int(i) if i >= 0 => Some(At::new(i as f64, self.line(e))),
            _ => {
                self.wrong_type(e, path, "a positive number");
                None
            }
        }
    }

    pub fn boolean(&mut self, e: &Entry, path: &str) -> Option<bool> {
        match e.value.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(e, path, "a boolean");
                None
            }
        }
    }

    /// A list of strings; a bare string is refused, so that `command` is never
    /// split in a way the user did not write.
    pub fn str_list(&mut self, e: &Entry, path: &str) -> Option<Vec<At<String>>> {
        let Kind::Array(items) = &e.value.kind else {
            self.wrong_type(e, path, "a list of strings");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for v in items {
            match &v.kind {
                Kind::Str(s) => out.push(At::new(s.clone(), self.val_line(v))),
                other => {
                    ok = false;
                    let found = other.type_name();
                    self.err_val(v, format!("`{path}` items must be strings, found {found}"));
                }
            }
        }
        ok.then_some(out)
    }

    /// A table of scalars (env, labels), as text, in file order.
    pub fn str_map(&mut self, e: &Entry, path: &str) -> Option<Vec<(String, At<String>)>> {
        let Kind::Table(t) = &e.value.kind else {
            self.wrong_type(e, path, "a table");
            return None;
        };
        let mut out = Vec::new();
        for k in t {
            if let Some(v) = self.scalar_text(k, &format!("{path}.{}", k.key)) {
                out.push((k.key.clone(), v));
            }
        }
        Some(out)
    }

    /// A Go duration string (`"10s"`, `"1m30s"`).
    pub fn duration(&mut self, e: &Entry, path: &str) -> Option<At<Duration>> {
        let s = self.string(e, path)?;
        match GoDuration::parse(&s.value) {
            Ok(d) => Some(At::new(d.0, s.line)),
            Err(err) => {
                self.err(e, format!("`{path}`: {err}"));
                None
            }
        }
    }

    /// A size in bytes: an integer, or a string with a unit (`"256M"`, `"1g"`).
    pub fn bytes(&mut self, e: &Entry, path: &str) -> Option<At<i64>> {
        match &e.value.kind {
            Kind::Int(i) if *i >= 0 => Some(At::new(*i, self.line(e))),
            Kind::Str(s) => match parse_bytes(s) {
                Some(b) => Some(At::new(b, self.line(e))),
                None => {
                    self.err(
                        e,
                        format!("`{path}`: invalid size {s:?} (expected e.g. \"256M\", \"1G\")"),
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(e, path, "a size such as \"256M\"");
                None
            }
        }
    }

    /// One of `choices`, with the nearest suggested otherwise.
    pub fn choice(&mut self, e: &Entry, path: &str, choices: &[&str]) -> Option<At<String>> {
        let s = self.string(e, path)?;
        if choices.contains(&s.value.as_str()) {
            return Some(s);
        }
        let hint = match nearest(&s.value, choices.iter().copied()) {
            Some(n) => format!("did you mean `{n}`?"),
            None => format!("expected one of: {}", choices.join(", ")),
        };
        self.err(e, format!("`{path}`: invalid value {:?}; {hint}", s.value));
        None
    }
}

/// `"256M"` → 268435456. Units are binary, as Docker's `--memory` reads them.
pub fn parse_bytes(s: &str) -> Option<i64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().ok()?;
    let mul: i64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::source::parse;

    fn with(text: &str, f: impl FnOnce(&mut Cx, &Val)) -> Problems {
        let mut p = Problems::for_text(text);
        let v = parse(text, &mut p).unwrap();
        let mut cx = Cx {
            problems: &mut p,
            base_dir: "/".into(),
        };
        f(&mut cx, &v);
        p
    }

    #[test]
    fn unknown_keys_get_the_nearest_suggestion() {
        let p = with("[route]\nhost = \"a\"\npot = 80\n", |cx, v| {
            let e = v.get("route").unwrap();
            cx.table(e, "services.x.route", &["host", "port", "path_prefix"]);
        });
        assert_eq!(p.list.len(), 1);
        assert_eq!(p.list[0].line, Some(3));
        assert_eq!(
            p.list[0].message,
            "unknown key `pot` in [services.x.route]; did you mean `port`?"
        );
    }

    #[test]
    fn typed_reads_report_and_continue() {
        let p = with(
            "a = 1\nb = [\"x\", 2]\nc = \"5x\"\nd = \"1G\"\n",
            |cx, v| {
                let t = v.table().unwrap();
                assert!(cx.string(&t[0], "a").is_none());
                assert!(cx.str_list(&t[1], "b").is_none());
                assert!(cx.duration(&t[2], "c").is_none());
                assert_eq!(cx.bytes(&t[3], "d").unwrap().value, 1 << 30);
            },
        );
        let lines: Vec<_> = p.list.iter().map(|x| x.line.unwrap()).collect();
        assert_eq!(lines, [1, 2, 3]);
        assert!(
            p.list[0]
                .message
                .contains("must be a string, found an integer")
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("256M"), Some(256 << 20));
        assert_eq!(parse_bytes("512k"), Some(512 << 10));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("1T"), None);
        assert_eq!(parse_bytes("M"), None);
    }
}
