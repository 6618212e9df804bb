//! `retryExpression`: when to send a buffered request again, in the small
//! language Traefik takes from oxy (vulcand/predicate reading a Go
//! expression).
//!
//! - `IsNetworkError()`: the attempt ended in a 502 or a 504;
//! - `Attempts()`: attempts so far, the first one included;
//! - `ResponseCode()`: the status of the attempt;
//! - `RequestMethod()`: the request's method, compared with a string;
//! - `&&`, `||` (Go's precedence: `&&` binds tighter), parentheses, and
//!   `== != < > <= >=` between a number function and an integer, or
//!   `== !=` between `RequestMethod()` and a string.
//!
//! As strict as oxy, so that a file escale accepts, Traefik accepts too:
//! the function comes first (`Attempts() < 3`, not `3 > Attempts()`),
//! integers are decimal, and there is no `!`.

use std::fmt;

use http::Method;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(String);

fn error<T>(why: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError(why.into()))
}

/// What an expression reads after an attempt.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// 1 after the first attempt.
    pub attempts: u32,
    /// The status the attempt ended with (escale's own 502/504/503 when
    /// the backend failed or none was available).
    pub response_code: u16,
    pub method: &'a Method,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Op {
    fn holds(self, a: i64, b: i64) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Gt => a > b,
            Op::Le => a <= b,
            Op::Ge => a >= b,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
        }
    }
}

/// A function that gives a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    Attempts,
    ResponseCode,
}

impl Number {
    fn value(self, a: &Attempt<'_>) -> i64 {
        match self {
            Number::Attempts => i64::from(a.attempts),
            Number::ResponseCode => i64::from(a.response_code),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    IsNetworkError,
    Compare(Number, Op, i64),
    /// `RequestMethod() == "POST"` (`true`) or `!=` (`false`).
    MethodIs(String, bool),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    pub fn parse(input: &str) -> Result<Expr, ExprError> {
        let tokens = lex(input)?;
        if tokens.is_empty() {
            return error("the expression is empty");
        }
        let mut p = Parser { tokens, pos: 0 };
        let term = p.or()?;
        if let Some(t) = p.peek() {
            return error(format!("unexpected {t} after the expression"));
        }
        term.into_condition()
    }

    pub fn holds(&self, a: &Attempt<'_>) -> bool {
        match self {
            Expr::IsNetworkError => matches!(a.response_code, 502 | 504),
            Expr::Compare(n, op, v) => op.holds(n.value(a), *v),
            Expr::MethodIs(m, eq) => (a.method.as_str() == m) == *eq,
            Expr::And(x, y) => x.holds(a) && y.holds(a),
            Expr::Or(x, y) => x.holds(a) || y.holds(a),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Int(i64),
    Str(String),
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Not,
    Cmp(Op),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Int(n) => write!(f, "`{n}`"),
            Tok::Str(s) => write!(f, "{s:?}"),
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::And => f.write_str("`&&`"),
            Tok::Or => f.write_str("`||`"),
            Tok::Not => f.write_str("`!`"),
            Tok::Cmp(op) => write!(f, "`{}`", op.text()),
        }
    }
}

fn lex(input: &str) -> Result<Vec<Tok>, ExprError> {
    let mut out = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is = |want: char, chars: &mut std::iter::Peekable<std::str::CharIndices>| {
            chars.next_if(|&(_, n)| n == want).is_some()
        };
        let tok = match c {
            ' ' | '\t' | '\n' | '\r' => continue,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '&' if next_is('&', &mut chars) => Tok::And,
            '|' if next_is('|', &mut chars) => Tok::Or,
            '=' if next_is('=', &mut chars) => Tok::Cmp(Op::Eq),
            '!' if next_is('=', &mut chars) => Tok::Cmp(Op::Ne),
            '!' => Tok::Not,
            '<' if next_is('=', &mut chars) => Tok::Cmp(Op::Le),
            '<' => Tok::Cmp(Op::Lt),
            '>' if next_is('=', &mut chars) => Tok::Cmp(Op::Ge),
            '>' => Tok::Cmp(Op::Gt),
            '"' => Tok::Str(quoted(&mut chars)?),
            '`' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some((_, '`')) => break,
                        Some((_, c)) => s.push(c),
                        None => return error("a string in backquotes is not closed"),
                    }
                }
                Tok::Str(s)
            }
            '0'..='9' | '.' => {
                let mut end = i + c.len_utf8();
                while let Some((j, n)) =
                    chars.next_if(|&(_, n)| n.is_ascii_alphanumeric() || n == '_' || n == '.')
                {
                    end = j + n.len_utf8();
                }
                let text = &input[i..end];
                // Go's strconv.Atoi: decimal digits only.
                if !text.bytes().all(|b| b.is_ascii_digit()) {
                    return error(format!(
                        "`{text}` is not an integer (numbers are decimal integers)"
                    ));
                }
                match text.parse() {
                    Ok(n) => Tok::Int(n),
                    Err(_) => return error(format!("`{text}` is too large")),
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut end = i + c.len_utf8();
                while let Some((j, n)) = chars.next_if(|&(_, n)| n.is_alphanumeric() || n == '_') {
                    end = j + n.len_utf8();
                }
                Tok::Ident(input[i..end].to_string())
            }
            '-' | '+' => return error(format!("`{c}` is not supported: numbers have no sign")),
            c => return error(format!("unexpected character `{c}`")),
        };
        out.push(tok);
    }
    Ok(out)
}

/// The rest of a double-quoted Go string, after its opening quote.
fn quoted(chars: &mut std::iter::Peekable<std::str::CharIndices>) -> Result<String, ExprError> {
    let mut s = String::new();
    loop {
        match chars.next() {
            None | Some((_, '\n')) => return error("a string in double quotes is not closed"),
            Some((_, '"')) => return Ok(s),
            Some((_, '\\')) => {
                let c = match chars.next() {
                    Some((_, c @ ('"' | '\\'))) => c,
                    Some((_, 'n')) => '\n',
                    Some((_, 't')) => '\t',
                    Some((_, 'r')) => '\r',
                    Some((_, c)) => {
                        return error(format!("unsupported escape `\\{c}` in a string"));
                    }
                    None => return error("a string in double quotes is not closed"),
                };
                s.push(c);
            }
            Some((_, c)) => s.push(c),
        }
    }
}

/// A parsed piece, typed as oxy types it: a condition, a function's value,
/// or a literal.
#[derive(Debug)]
enum Term {
    Condition(Expr),
    Number(Number),
    Method,
    Int(i64),
    Str(String),
}

impl Term {
    fn describe(&self) -> String {
        match self {
            Term::Condition(_) => "a condition".into(),
            Term::Number(Number::Attempts) => "`Attempts()`, a number".into(),
            Term::Number(Number::ResponseCode) => "`ResponseCode()`, a number".into(),
            Term::Method => "`RequestMethod()`, a string".into(),
            Term::Int(n) => format!("the number `{n}`"),
            Term::Str(s) => format!("the string {s:?}"),
        }
    }

    fn into_condition(self) -> Result<Expr, ExprError> {
        match self {
            Term::Condition(e) => Ok(e),
            other => error(format!(
                "expected a condition such as `Attempts() < 3`, found {} alone",
                other.describe()
            )),
        }
    }
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
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

    fn or(&mut self) -> Result<Term, ExprError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            let right = self.and()?;
            left = Term::Condition(Expr::Or(
                Box::new(logical(left, "||")?),
                Box::new(logical(right, "||")?),
            ));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Term, ExprError> {
        let mut left = self.comparison()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            let right = self.comparison()?;
            left = Term::Condition(Expr::And(
                Box::new(logical(left, "&&")?),
                Box::new(logical(right, "&&")?),
            ));
        }
        Ok(left)
    }

    /// Go's comparisons associate to the left (`a < b < c` compares a
    /// condition), which oxy then refuses: so does [`compare`].
    fn comparison(&mut self) -> Result<Term, ExprError> {
        let mut left = self.primary()?;
        while let Some(&Tok::Cmp(op)) = self.peek() {
            self.pos += 1;
            let right = self.primary()?;
            left = Term::Condition(compare(left, op, right)?);
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Term, ExprError> {
        match self.next() {
            Some(Tok::LParen) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Tok::RParen) => Ok(inner),
                    Some(t) => error(format!("expected `)`, found {t}")),
                    None => error("a `(` is not closed"),
                }
            }
            Some(Tok::Int(n)) => Ok(Term::Int(n)),
            Some(Tok::Str(s)) => Ok(Term::Str(s)),
            Some(Tok::Ident(name)) => {
                if self.peek() != Some(&Tok::LParen) {
                    return error(format!(
                        "`{name}` is not defined (functions are called: `{name}()`)"
                    ));
                }
                self.pos += 1;
                if self.peek() != Some(&Tok::RParen) {
                    return error(format!("`{name}` takes no arguments"));
                }
                self.pos += 1;
                function(&name)
            }
            Some(Tok::Not) => error(
                "`!` is not supported: write the opposite comparison (`ResponseCode() != 200`)",
            ),
            Some(t) => error(format!(
                "expected a function, a number or a string, found {t}"
            )),
            None => error("the expression ends too early"),
        }
    }
}

fn logical(term: Term, op: &str) -> Result<Expr, ExprError> {
    match term {
        Term::Condition(e) => Ok(e),
        other => error(format!(
            "`{op}` joins conditions, found {}",
            other.describe()
        )),
    }
}

fn compare(left: Term, op: Op, right: Term) -> Result<Expr, ExprError> {
    match (left, right) {
        (Term::Number(n), Term::Int(v)) => Ok(Expr::Compare(n, op, v)),
        (Term::Method, Term::Str(m)) => match op {
            Op::Eq => Ok(Expr::MethodIs(m, true)),
            Op::Ne => Ok(Expr::MethodIs(m, false)),
            _ => error(format!(
                "`RequestMethod()` compares with `==` or `!=` only, not `{}`",
                op.text()
            )),
        },
        (Term::Number(_), other) => error(format!(
            "`{}` compares a number function with an integer, found {}",
            op.text(),
            other.describe()
        )),
        (Term::Method, other) => error(format!(
            "`RequestMethod()` compares with a string, found {}",
            other.describe()
        )),
        (left @ (Term::Int(_) | Term::Str(_)), _) => error(format!(
            "`{}` needs the function first (`Attempts() < 3`), found {} first",
            op.text(),
            left.describe()
        )),
        (Term::Condition(_), _) => error(format!(
            "`{}` compares a function with a value, found a condition on its left",
            op.text()
        )),
    }
}

fn function(name: &str) -> Result<Term, ExprError> {
    match name {
        "IsNetworkError" => Ok(Term::Condition(Expr::IsNetworkError)),
        "Attempts" => Ok(Term::Number(Number::Attempts)),
        "ResponseCode" => Ok(Term::Number(Number::ResponseCode)),
        "RequestMethod" => Ok(Term::Method),
        _ => error(format!(
            "unsupported function `{name}` (IsNetworkError, Attempts, ResponseCode, RequestMethod)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(text: &str, attempts: u32, code: u16, method: &Method) -> bool {
        let e = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        e.holds(&Attempt {
            attempts,
            response_code: code,
            method,
        })
    }

    #[test]
    fn traefik_and_oxy_examples() {
        let post = Method::POST;
        let cases = [
            ("IsNetworkError() && Attempts() < 2", 1, 502, true),
            ("IsNetworkError() && Attempts() < 2", 2, 502, false),
            ("IsNetworkError() && Attempts() < 2", 1, 503, false),
            ("IsNetworkError() && Attempts() <= 2", 2, 504, true),
            ("Attempts() <= 2 && ResponseCode() == 502", 2, 502, true),
            ("ResponseCode() == 503", 7, 503, true),
            ("ResponseCode() != 200", 1, 200, false),
            ("ResponseCode() >= 500", 1, 500, true),
            ("ResponseCode() > 500", 1, 500, false),
            ("RequestMethod() == \"POST\"", 1, 200, true),
            ("RequestMethod() != `POST`", 1, 200, false),
            ("RequestMethod() == \"GET\"", 1, 200, false),
            // `&&` binds tighter than `||`.
            (
                "ResponseCode() == 503 || IsNetworkError() && Attempts() < 1",
                1,
                503,
                true,
            ),
            (
                "(ResponseCode() == 503 || IsNetworkError()) && Attempts() < 1",
                1,
                503,
                false,
            ),
            ("((Attempts()) < (2))", 1, 0, true),
            ("\tIsNetworkError()\n", 1, 504, true),
            ("Attempts() < 010", 9, 0, true),
        ];
        for (text, attempts, code, want) in cases {
            assert_eq!(holds(text, attempts, code, &post), want, "{text}");
        }
    }

    #[test]
    fn precedence_builds_the_right_tree() {
        let e = Expr::parse("IsNetworkError() || ResponseCode() == 503 && Attempts() < 3").unwrap();
        assert_eq!(
            e,
            Expr::Or(
                Box::new(Expr::IsNetworkError),
                Box::new(Expr::And(
                    Box::new(Expr::Compare(Number::ResponseCode, Op::Eq, 503)),
                    Box::new(Expr::Compare(Number::Attempts, Op::Lt, 3)),
                )),
            )
        );
    }

    #[test]
    fn malformed_expressions_say_what_is_wrong() {
        for (text, part) in [
            ("", "empty"),
            ("   ", "empty"),
            ("Attempts()", "found `Attempts()`, a number alone"),
            ("Attempts() <", "ends too early"),
            ("Attempts() < 2 &&", "ends too early"),
            (
                "Attempts() < 2 & IsNetworkError()",
                "unexpected character `&`",
            ),
            ("Foo()", "unsupported function `Foo`"),
            ("IsNetworkError", "`IsNetworkError` is not defined"),
            ("Attempts(1) < 2", "takes no arguments"),
            ("2 > Attempts()", "needs the function first"),
            ("Attempts() < 2.5", "not an integer"),
            ("Attempts() < 0x10", "not an integer"),
            ("Attempts() < 99999999999999999999", "too large"),
            ("Attempts() < -1", "`-` is not supported"),
            ("Attempts() < \"2\" && (", "found the string \"2\""),
            ("Attempts() < (", "ends too early"),
            (
                "Attempts() < ,",
                "expected a function, a number or a string, found `,`",
            ),
            ("Attempts() < \"2\"", "found the string \"2\""),
            ("RequestMethod() == 1", "compares with a string"),
            ("RequestMethod() < \"POST\"", "`==` or `!=` only"),
            ("!IsNetworkError()", "`!` is not supported"),
            ("IsNetworkError() == 1", "found a condition on its left"),
            ("Attempts() < 2 < 3", "found a condition on its left"),
            ("Attempts() && IsNetworkError()", "`&&` joins conditions"),
            ("IsNetworkError() || 1", "`||` joins conditions"),
            ("(IsNetworkError()", "not closed"),
            ("IsNetworkError())", "unexpected `)` after"),
            (
                "IsNetworkError() IsNetworkError()",
                "unexpected `IsNetworkError`",
            ),
            ("RequestMethod() == \"POST", "not closed"),
            ("RequestMethod() == `POST", "not closed"),
            ("RequestMethod() == \"P\\qST\"", "unsupported escape"),
            (
                "Attempts() < 2 ; IsNetworkError()",
                "unexpected character `;`",
            ),
        ] {
            let err = Expr::parse(text).unwrap_err().to_string();
            assert!(err.contains(part), "{text:?}: {err}");
        }
    }
}
