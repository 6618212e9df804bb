//! The stack file as a spanned tree, and the problems found in it.
//!
//! TOML is parsed into an owned tree that keeps the byte span of every key
//! and value, so that every problem, found at any later step, can name its
//! line. Tables keep file order (the parser sorts keys; spans restore order).

use std::fmt;
use std::ops::Range;

/// A value of the stack file, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Val {
    pub kind: Kind,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Kept as text: the stack schema has no date field, it only needs a type name.
    Datetime(String),
    Array(Vec<Val>),
    Table(Vec<Entry>),
}

/// A table entry; the key span points at the key as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub value: Val,
}

impl Kind {
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Str(_) => "a string",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Bool(_) => "a boolean",
            Kind::Datetime(_) => "a date",
            Kind::Array(_) => "an array",
            Kind::Table(_) => "a table",
        }
    }
}

impl Val {
    pub fn table(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Table(t) => Some(t),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.table()?.iter().find(|e| e.key == key)
    }
}

/// One problem, with its place in the file when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line; `None` for problems about the whole stack.
    pub line: Option<usize>,
    pub message: String,
}

/// Problems collected across every step, reported together.
#[derive(Debug, Clone, Default)]
pub struct Problems {
    text_lines: Vec<usize>,
    pub list: Vec<Problem>,
}

impl Problems {
    /// Problems about `text`; offsets are turned into line numbers.
    pub fn for_text(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Problems {
            text_lines: starts,
            list: Vec::new(),
        }
    }

    /// The 1-based line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        match self.text_lines.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i.max(1),
        }
    }

    pub fn at(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let line = self.line_of(span.start);
        self.list.push(Problem {
            line: Some(line),
            message: message.into(),
        });
    }

    pub fn at_line(&mut self, line: Option<usize>, message: impl Into<String>) {
        self.list.push(Problem {
            line,
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Sorted by line, for a report that reads top to bottom; a problem
    /// found twice (a template seen through two tenants) is said once.
    pub fn sorted(&self) -> Vec<Problem> {
        let mut v: Vec<Problem> = Vec::with_capacity(self.list.len());
        for p in &self.list {
            if !v.contains(p) {
                v.push(p.clone());
            }
        }
        v.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        v
    }

    /// One line per problem, prefixed with `file:line:`.
    pub fn render(&self, file: &str) -> String {
        let mut out = String::new();
        for p in self.sorted() {
            out.push_str(&p.located(file).to_string());
            out.push('\n');
        }
        out
    }
}

impl Problem {
    pub fn located<'a>(&'a self, file: &'a str) -> Located<'a> {
        Located {
            file,
            problem: self,
        }
    }
}

/// A problem displayed as `file:line: message`.
pub struct Located<'a> {
    file: &'a str,
    problem: &'a Problem,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.problem.message),
            None => write!(f, "{}: {}", self.file, self.problem.message),
        }
    }
}

/// Parses TOML text into a spanned tree. A syntax error is returned as
/// problems (the parser recovers and may find several).
pub fn parse(text: &str, problems: &mut Problems) -> Option<Val> {
    let (doc, errors) = toml::de::DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            problems.at(&span, format!("TOML syntax: {}", e.message().trim()));
        }
        return None;
    }
    let span = doc.span();
    Some(Val {
        kind: Kind::Table(convert_table(doc.get_ref())),
        span,
    })
}

fn convert_table(t: &toml::de::DeTable<'_>) -> Vec<Entry> {
    let mut out: Vec<Entry> = t
        .iter()
        .map(|(k, v)| Entry {
            key: k.get_ref().to_string(),
            key_span: k.span(),
            value: convert(v),
        })
        .collect();
    out.sort_by_key(|e| e.key_span.start);
    out
}

fn convert(v: &toml::Spanned<toml::de::DeValue<'_>>) -> Val {
    use toml::de::DeValue;
    let kind = match v.get_ref() {
        DeValue::String(s) => Kind::Str(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            let digits = digits
                .trim_start_matches("0x")
                .trim_start_matches("0o")
                .trim_start_matches("0b");
            match i64::from_str_radix(digits, i.radix()) {
                Ok(n) => Kind::Int(n),
                Err(_) => Kind::Str(i.as_str().to_string()),
            }
        }
        DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
            Ok(x) => Kind::Float(x),
            Err(_) => Kind::Str(f.as_str().to_string()),
        },
        DeValue::Boolean(b) => Kind::Bool(*b),
        DeValue::Datetime(d) => Kind::Datetime(d.to_string()),
        DeValue::Array(a) => Kind::Array(a.iter().map(convert).collect()),
        DeValue::Table(t) => Kind::Table(convert_table(t)),
    };
    Val {
        kind,
        span: v.span(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_file_order_and_lines() {
        let text = "b = 1\na = \"x\"\n[t]\nz = [1, 2]\n";
        let mut p = Problems::for_text(text);
        let v = parse(text, &mut p).unwrap();
        let keys: Vec<_> = v.table().unwrap().iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["b", "a", "t"]);
        let z = &v.get("t").unwrap().value.get("z").unwrap();
        assert_eq!(p.line_of(z.key_span.start), 4);
        assert_eq!(v.get("b").unwrap().value.kind, Kind::Int(1));
    }

    #[test]
    fn syntax_errors_have_lines() {
        let text = "a = 1\nb = = 2\n";
        let mut p = Problems::for_text(text);
        assert!(parse(text, &mut p).is_none());
        assert_eq!(p.list[0].line, Some(2), "{:?}", p.list);
        assert!(p.render("s.toml").starts_with("s.toml:2: TOML syntax"));
    }

    #[test]
    fn duplicate_keys_are_syntax_errors() {
        let text = "[services.a]\nimage = \"x\"\n[services.a]\nimage = \"y\"\n";
        let mut p = Problems::for_text(text);
        assert!(parse(text, &mut p).is_none());
        assert_eq!(p.list[0].line, Some(3), "{:?}", p.list);
    }

    #[test]
    fn line_of_offsets() {
        let p = Problems::for_text("ab\ncd\n");
        assert_eq!(p.line_of(0), 1);
        assert_eq!(p.line_of(2), 1);
        assert_eq!(p.line_of(3), 2);
        assert_eq!(p.line_of(6), 3);
    }
}
