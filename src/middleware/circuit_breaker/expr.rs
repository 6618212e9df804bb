//! The circuit breaker's trigger expressions, as Traefik (oxy with
//! vulcand/predicate) reads them: Go-style expressions combining
//! `NetworkErrorRatio()`, `ResponseCodeRatio(from, to, dividedByFrom,
//! dividedByTo)`, `LatencyAtQuantileMS(quantile)` and `RequestThreshold()`
//! with `&&`, `||`, parentheses and `> >= < <= == !=` against numbers.
//!
//! escale is a little more lenient than Go's typing: an integer compares
//! with a ratio, a quantile may be written without `.0`, and the number
//! may come first (`0.5 < NetworkErrorRatio()`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid circuit breaker expression: {0}")]
pub struct ExprError(pub String);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    NetworkErrorRatio,
    ResponseCodeRatio(u16, u16, u16, u16),
    LatencyAtQuantileMs(f64),
    RequestThreshold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    fn flipped(self) -> Op {
        match self {
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            other => other,
        }
    }

    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(Metric, Op, f64),
}

/// What an expression reads.
pub trait Stats {
    fn network_error_ratio(&self) -> f64;
    fn response_code_ratio(&self, from: u16, to: u16, div_from: u16, div_to: u16) -> f64;
    /// Whole milliseconds, truncated, as oxy returns them.
    fn latency_at_quantile_ms(&self, quantile: f64) -> i64;
    fn total(&self) -> i64;
}

impl Metric {
    pub fn value(&self, s: &dyn Stats) -> f64 {
        match *self {
            Metric::NetworkErrorRatio => s.network_error_ratio(),
            Metric::ResponseCodeRatio(a, b, c, d) => s.response_code_ratio(a, b, c, d),
            Metric::LatencyAtQuantileMs(q) => s.latency_at_quantile_ms(q) as f64,
            Metric::RequestThreshold => s.total() as f64,
        }
    }
}

impl Expr {
    pub fn parse(input: &str) -> Result<Expr, ExprError> {
        let tokens = lex(input)?;
        if tokens.is_empty() {
            return Err(ExprError("the expression is empty".into()));
        }
        let mut p = Parser { tokens, pos: 0 };
        let e = p.or()?;
        match p.peek() {
            None => Ok(e),
            Some(t) => Err(ExprError(format!("unexpected {t} after the expression"))),
        }
    }

    pub fn eval(&self, s: &dyn Stats) -> bool {
        match self {
            Expr::And(a, b) => a.eval(s) && b.eval(s),
            Expr::Or(a, b) => a.eval(s) || b.eval(s),
            Expr::Cmp(m, op, v) => op.holds(m.value(s), *v),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Cmp(Op),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Num(n) => write!(f, "`{n}`"),
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::And => f.write_str("`&&`"),
            Tok::Or => f.write_str("`||`"),
            Tok::Cmp(op) => write!(f, "{op:?}"),
        }
    }
}

fn lex(input: &str) -> Result<Vec<Tok>, ExprError> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let two = bytes.get(i..i + 2);
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            _ if two == Some(b"&&") => {
                out.push(Tok::And);
                i += 2;
            }
            _ if two == Some(b"||") => {
                out.push(Tok::Or);
                i += 2;
            }
            _ if two == Some(b">=") => {
                out.push(Tok::Cmp(Op::Ge));
                i += 2;
            }
            _ if two == Some(b"<=") => {
                out.push(Tok::Cmp(Op::Le));
                i += 2;
            }
            _ if two == Some(b"==") => {
                out.push(Tok::Cmp(Op::Eq));
                i += 2;
            }
            _ if two == Some(b"!=") => {
                out.push(Tok::Cmp(Op::Ne));
                i += 2;
            }
            b'>' => {
                out.push(Tok::Cmp(Op::Gt));
                i += 1;
            }
            b'<' => {
                out.push(Tok::Cmp(Op::Lt));
                i += 1;
            }
            b'0'..=b'9' | b'.' | b'-' => {
                let start = i;
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
                let text = &input[start..i];
                let n: f64 = text
                    .parse()
                    .map_err(|_| ExprError(format!("bad number `{text}`")))?;
                out.push(Tok::Num(n));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push(Tok::Ident(input[start..i].to_string()));
            }
            _ => {
                let ch = input[i..].chars().next().unwrap_or('?');
                return Err(ExprError(format!("unexpected character `{ch}`")));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
}

/// An operand of a comparison.
enum Operand {
    Metric(Metric),
    Num(f64),
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: Tok) -> Result<(), ExprError> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            Some(t) => Err(ExprError(format!("expected {want}, found {t}"))),
            None => Err(ExprError(format!("expected {want} at the end"))),
        }
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.comparison()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            let right = self.comparison()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            self.expect(Tok::RParen)?;
            return Ok(e);
        }
        let left = self.operand()?;
        let op = match self.next() {
            Some(Tok::Cmp(op)) => op,
            Some(t) => return Err(ExprError(format!("expected a comparison, found {t}"))),
            None => return Err(ExprError("expected a comparison at the end".into())),
        };
        let right = self.operand()?;
        match (left, right) {
            (Operand::Metric(m), Operand::Num(n)) => Ok(Expr::Cmp(m, op, n)),
            (Operand::Num(n), Operand::Metric(m)) => Ok(Expr::Cmp(m, op.flipped(), n)),
            _ => Err(ExprError(
                "a comparison needs one metric function and one number".into(),
            )),
        }
    }

    fn operand(&mut self) -> Result<Operand, ExprError> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(Operand::Num(n)),
            Some(Tok::Ident(name)) => {
                self.expect(Tok::LParen)?;
                let mut args = Vec::new();
                if self.peek() != Some(&Tok::RParen) {
                    loop {
                        match self.next() {
                            Some(Tok::Num(n)) => args.push(n),
                            Some(t) => {
                                return Err(ExprError(format!(
                                    "`{name}` takes numbers, found {t}"
                                )));
                            }
                            None => return Err(ExprError(format!("`{name}(` is not closed"))),
                        }
                        if self.peek() == Some(&Tok::Comma) {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.expect(Tok::RParen)?;
                metric(&name, &args).map(Operand::Metric)
            }
            Some(t) => Err(ExprError(format!(
                "expected a metric or a number, found {t}"
            ))),
            None => Err(ExprError("the expression ends too early".into())),
        }
    }
}

fn metric(name: &str, args: &[f64]) -> Result<Metric, ExprError> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(ExprError(format!(
                "`{name}` takes {n} argument(s), got {}",
                args.len()
            )))
        }
    };
    let code = |v: f64| -> Result<u16, ExprError> {
        if v.fract() == 0.0 && (0.0..=1000.0).contains(&v) {
            Ok(v as u16)
        } else {
            Err(ExprError(format!("`{name}`: {v} is not a status code")))
        }
    };
    match name {
        "NetworkErrorRatio" => arity(0).map(|()| Metric::NetworkErrorRatio),
        "RequestThreshold" => arity(0).map(|()| Metric::RequestThreshold),
        "LatencyAtQuantileMS" => {
            arity(1)?;
            if !(0.0..=100.0).contains(&args[0]) {
                return Err(ExprError(format!(
                    "`{name}`: quantile {} is not between 0 and 100",
                    args[0]
                )));
            }
            Ok(Metric::LatencyAtQuantileMs(args[0]))
        }
        "ResponseCodeRatio" => {
            arity(4)?;
            Ok(Metric::ResponseCodeRatio(
                code(args[0])?,
                code(args[1])?,
                code(args[2])?,
                code(args[3])?,
            ))
        }
        _ => Err(ExprError(format!("unsupported function `{name}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed {
        net: f64,
        codes: Vec<(u16, i64)>,
        p50: i64,
        total: i64,
    }

    impl Stats for Fixed {
        fn network_error_ratio(&self) -> f64 {
            self.net
        }
        fn response_code_ratio(&self, a: u16, b: u16, c: u16, d: u16) -> f64 {
            let sum = |lo, hi| {
                self.codes
                    .iter()
                    .filter(|(code, _)| *code >= lo && *code < hi)
                    .map(|(_, n)| *n)
                    .sum::<i64>()
            };
            let den = sum(c, d);
            if den == 0 {
                0.0
            } else {
                sum(a, b) as f64 / den as f64
            }
        }
        fn latency_at_quantile_ms(&self, _q: f64) -> i64 {
            self.p50
        }
        fn total(&self) -> i64 {
            self.total
        }
    }

    fn stats() -> Fixed {
        Fixed {
            net: 0.4,
            codes: vec![(200, 70), (500, 30)],
            p50: 120,
            total: 100,
        }
    }

    #[test]
    fn traefik_doc_examples_parse_and_evaluate() {
        let s = stats();
        let cases = [
            ("NetworkErrorRatio() > 0.30", true),
            ("NetworkErrorRatio() > 0.5", false),
            ("ResponseCodeRatio(500, 600, 0, 600) > 0.25", true),
            ("ResponseCodeRatio(500, 600, 0, 600) > 0.30", false),
            ("LatencyAtQuantileMS(50.0) > 100", true),
            (
                "LatencyAtQuantileMS(50.0) >= 120 && NetworkErrorRatio() < 0.5",
                true,
            ),
            (
                "ResponseCodeRatio(500, 600, 0, 600) > 0.30 || NetworkErrorRatio() > 0.10",
                true,
            ),
            ("LatencyAtQuantileMS(50.0) == 120", true),
            ("LatencyAtQuantileMS(50.0) != 120", false),
            ("LatencyAtQuantileMS(50.0) <= 119", false),
            ("RequestThreshold() > 50 && NetworkErrorRatio() > 0.3", true),
            (
                "(NetworkErrorRatio() > 0.9 || RequestThreshold() >= 100) && LatencyAtQuantileMS(99) > 1",
                true,
            ),
            ("0.5 < NetworkErrorRatio()", false),
            ("0.3 < NetworkErrorRatio()", true),
        ];
        for (text, want) in cases {
            let e = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(e.eval(&s), want, "{text}");
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let e = Expr::parse(
            "NetworkErrorRatio() > 0.9 && RequestThreshold() > 1 || LatencyAtQuantileMS(50.0) > 100",
        )
        .unwrap();
        assert!(matches!(e, Expr::Or(..)));
        assert!(e.eval(&stats()));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (text, part) in [
            ("", "empty"),
            ("NetworkErrorRatio()", "comparison"),
            ("NetworkErrorRatio() >", "ends too early"),
            ("Foo() > 1", "unsupported function `Foo`"),
            ("NetworkErrorRatio(1) > 1", "takes 0 argument"),
            ("ResponseCodeRatio(500, 600) > 1", "takes 4 argument"),
            ("LatencyAtQuantileMS(150.0) > 1", "between 0 and 100"),
            ("NetworkErrorRatio() > 0.5 &&", "ends too early"),
            ("1 > 2", "one metric function and one number"),
            (
                "NetworkErrorRatio() > 0.5 NetworkErrorRatio()",
                "unexpected",
            ),
            ("(NetworkErrorRatio() > 0.5", "expected `)`"),
            ("NetworkErrorRatio() ~ 1", "unexpected character `~`"),
        ] {
            let err = Expr::parse(text).unwrap_err().to_string();
            assert!(err.contains(part), "{text:?}: {err}");
        }
    }
}
