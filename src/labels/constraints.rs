//! Traefik's provider constraints: `Label(`k`, `v`)`, `LabelRegex(`k`, `re`)`,
//! combined with `&&`, `||`, `!` and parentheses. A service whose labels do
//! not match is ignored by the provider.

use std::collections::BTreeMap;

use regex::Regex;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid constraints `{expression}`: {message} at position {position}")]
pub struct ConstraintError {
    pub expression: String,
    pub position: usize,
    pub message: String,
}

/// A parsed constraints expression.
#[derive(Debug, Clone)]
pub enum Constraint {
    And(Box<Constraint>, Box<Constraint>),
    Or(Box<Constraint>, Box<Constraint>),
    Not(Box<Constraint>),
    Label(String, String),
    LabelRegex(String, Regex),
}

impl Constraint {
    pub fn parse(expression: &str) -> Result<Constraint, ConstraintError> {
        let mut p = Parser {
            src: expression,
            pos: 0,
        };
        let c = p.or()?;
        p.skip_ws();
        if p.pos < p.src.len() {
            return Err(p.error("unexpected input"));
        }
        Ok(c)
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Constraint::And(a, b) => a.matches(labels) && b.matches(labels),
            Constraint::Or(a, b) => a.matches(labels) || b.matches(labels),
            Constraint::Not(a) => !a.matches(labels),
            Constraint::Label(k, v) => labels.get(k) == Some(v),
            // Go's regexp.MatchString, as Traefik uses it: unanchored.
            Constraint::LabelRegex(k, re) => labels.get(k).is_some_and(|v| re.is_match(v)),
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> ConstraintError {
        ConstraintError {
            expression: self.src.to_string(),
            position: self.pos,
            message: message.to_string(),
        }
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Constraint, ConstraintError> {
        let mut left = self.and()?;
        while self.eat("||") {
            let right = self.and()?;
            left = Constraint::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Constraint, ConstraintError> {
        let mut left = self.unary()?;
        while self.eat("&&") {
            let right = self.unary()?;
            left = Constraint::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Constraint, ConstraintError> {
        if self.eat("!") {
            return Ok(Constraint::Not(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let inner = self.or()?;
            if !self.eat(")") {
                return Err(self.error("expected `)`"));
            }
            return Ok(inner);
        }
        self.call()
    }

    fn call(&mut self) -> Result<Constraint, ConstraintError> {
        self.skip_ws();
        let name_len = self
            .rest()
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(self.rest().len());
        if name_len == 0 {
            return Err(self.error("expected Label(...) or LabelRegex(...)"));
        }
        let start = self.pos;
        let name = self.rest()[..name_len].to_string();
        self.pos += name_len;
        if !self.eat("(") {
            return Err(self.error("expected `(`"));
        }
        let mut args = vec![self.string()?];
        while self.eat(",") {
            args.push(self.string()?);
        }
        if !self.eat(")") {
            return Err(self.error("expected `)`"));
        }
        let [key, value]: [String; 2] = args.try_into().map_err(|_| ConstraintError {
            expression: self.src.to_string(),
            position: start,
            message: format!("{name} takes 2 arguments"),
        })?;
        match name.as_str() {
            "Label" => Ok(Constraint::Label(key, value)),
            "LabelRegex" => Regex::new(&value)
                .map(|re| Constraint::LabelRegex(key, re))
                .map_err(|e| ConstraintError {
                    expression: self.src.to_string(),
                    position: start,
                    message: format!("bad regex: {e}"),
                }),
            _ => Err(ConstraintError {
                expression: self.src.to_string(),
                position: start,
                message: format!("unknown function {name}"),
            }),
        }
    }

    fn string(&mut self) -> Result<String, ConstraintError> {
        self.skip_ws();
        let quote = match self.rest().chars().next() {
            Some(q @ ('`' | '"')) => q,
            _ => return Err(self.error("expected a quoted string")),
        };
        let body = &self.rest()[1..];
        let end = body
            .find(quote)
            .ok_or_else(|| self.error("unterminated string"))?;
        let s = body[..end].to_string();
        self.pos += end + 2;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_and_regex() {
        let c = Constraint::parse("Label(`a.b`, `x`)").unwrap();
        assert!(c.matches(&labels(&[("a.b", "x")])));
        assert!(!c.matches(&labels(&[("a.b", "y")])));
        assert!(!c.matches(&labels(&[])));
        let c = Constraint::parse(r#"LabelRegex("env", "^prod-[0-9]+$")"#).unwrap();
        assert!(c.matches(&labels(&[("env", "prod-12")])));
        assert!(!c.matches(&labels(&[("env", "prod-x")])));
        // Unanchored, as Go's MatchString.
        let c = Constraint::parse("LabelRegex(`env`, `rod`)").unwrap();
        assert!(c.matches(&labels(&[("env", "prod")])));
    }

    #[test]
    fn boolean_structure_and_precedence() {
        let c = Constraint::parse("Label(`a`,`1`) || Label(`b`,`1`) && !Label(`c`,`1`)").unwrap();
        // && binds tighter than ||.
        assert!(c.matches(&labels(&[("a", "1"), ("c", "1")])));
        assert!(c.matches(&labels(&[("b", "1")])));
        assert!(!c.matches(&labels(&[("b", "1"), ("c", "1")])));
        let c = Constraint::parse("(Label(`a`,`1`) || Label(`b`,`1`)) && !Label(`c`,`1`)").unwrap();
        assert!(!c.matches(&labels(&[("a", "1"), ("c", "1")])));
        assert!(c.matches(&labels(&[("a", "1")])));
        let c = Constraint::parse("!!Label(`a`,`1`)").unwrap();
        assert!(c.matches(&labels(&[("a", "1")])));
    }

    #[test]
    fn errors_name_the_problem() {
        for (bad, want) in [
            ("Label(`a`)", "2 arguments"),
            ("Tag(`a`,`b`)", "unknown function Tag"),
            ("Label(`a`,`b`", "expected `)`"),
            ("Label(`a`,`b`) &&", "expected Label"),
            ("LabelRegex(`a`,`(`)", "bad regex"),
            ("Label(`a,`b`)", "expected"),
            ("Label(`a`,`b`) x", "unexpected input"),
            ("", "expected Label"),
        ] {
            let e = Constraint::parse(bad).unwrap_err();
            assert!(e.to_string().contains(want), "{bad}: {e}");
        }
    }
}
