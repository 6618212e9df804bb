//! The v2/v3 expression grammar: Go's boolean expressions over matcher calls, with Go's
//! precedence (`!` binds tighter than `&&`, which binds tighter than `||`) and left
//! associativity. The matchers themselves are defined per syntax by a [`Grammar`].

use super::Expr;
use super::error::{RuleError, did_you_mean};
use super::lexer::{Lexer, Tok, Token};

/// The matchers of one syntax.
pub(super) struct Grammar {
    /// Shown in messages: "v3", "v2".
    pub name: &'static str,
    /// Canonical matcher names.
    pub matchers: &'static [&'static str],
    /// Matchers of the other syntax, with the closest equivalent here (if any), to explain
    /// a rule written for the wrong syntax.
    pub foreign: &'static [(&'static str, Option<&'static str>)],
    pub build: fn(&Call<'_>) -> Result<Expr, RuleError>,
}

/// One matcher call, with its name resolved to the canonical spelling.
pub(super) struct Call<'r> {
    pub rule: &'r str,
    pub name: &'static str,
    /// Offset of the matcher name.
    pub pos: usize,
    pub args: Vec<Arg>,
}

pub(super) struct Arg {
    pub value: String,
    /// Offset of the opening quote.
    pub pos: usize,
}

impl Call<'_> {
    pub(super) fn err(&self, pos: usize, message: impl Into<String>) -> RuleError {
        RuleError::new(self.rule, pos, message)
    }

    /// Fails unless the call has one of the `allowed` numbers of values.
    pub(super) fn arity(&self, allowed: &[usize]) -> Result<(), RuleError> {
        if allowed.contains(&self.args.len()) {
            return Ok(());
        }
        let expected = match allowed {
            [1] => "1 value".to_string(),
            [n] => format!("{n} values"),
            [a, b] => format!("{a} or {b} values"),
            _ => format!("{allowed:?} values"),
        };
        Err(self.err(
            self.pos,
            format!("`{}` takes {expected}, got {}", self.name, self.args.len()),
        ))
    }

    /// Traefik rejects a matcher without values, and any empty value.
    pub(super) fn non_empty(&self) -> Result<(), RuleError> {
        if self.args.is_empty() {
            return Err(self.err(self.pos, format!("`{}` needs a value", self.name)));
        }
        match self.args.iter().find(|a| a.value.is_empty()) {
            Some(empty) => Err(self.err(empty.pos, format!("empty value for `{}`", self.name))),
            None => Ok(()),
        }
    }
}

/// Traefik registers each matcher under its exact name and its lower, UPPER and Title case forms
/// (`PathPrefix`, `pathprefix`, `PATHPREFIX`, `Pathprefix`); nothing else.
fn accepted_spelling(given: &str, canonical: &str) -> bool {
    // The usual case first: the canonical spelling itself.
    if given == canonical {
        return true;
    }
    if !given.eq_ignore_ascii_case(canonical) {
        return false;
    }
    let mut rest = given.chars();
    let first_upper = rest.next().is_some_and(|c| c.is_ascii_uppercase());
    given == canonical
        || given.bytes().all(|b| !b.is_ascii_uppercase())
        || given.bytes().all(|b| !b.is_ascii_lowercase())
        || (first_upper && rest.all(|c| !c.is_ascii_uppercase()))
}

pub(super) fn parse(rule: &str, grammar: &Grammar) -> Result<Expr, RuleError> {
    let mut parser = Parser {
        rule,
        grammar,
        lexer: Lexer::new(rule),
        peeked: None,
    };
    if parser.peek()?.tok == Tok::Eof {
        return Err(RuleError::new(rule, 0, "empty rule"));
    }
    let expr = parser.or(None)?;
    let next = parser.next()?;
    match next.tok {
        Tok::Eof => Ok(expr),
        Tok::RParen => Err(parser.err(next.pos, "unbalanced parenthesis: unexpected `)`")),
        other => Err(parser.err(
            next.pos,
            format!(
                "expected `&&` or `||` between matchers, found {}",
                other.describe()
            ),
        )),
    }
}

struct Parser<'a> {
    rule: &'a str,
    grammar: &'a Grammar,
    lexer: Lexer<'a>,
    peeked: Option<Token<'a>>,
}

impl<'a> Parser<'a> {
    fn err(&self, pos: usize, message: impl Into<String>) -> RuleError {
        RuleError::new(self.rule, pos, message)
    }

    fn peek(&mut self) -> Result<&Token<'a>, RuleError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        Ok(self.peeked.insert(token))
    }

    fn next(&mut self) -> Result<Token<'a>, RuleError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    /// `and ('||' and)*`. `after` names what precedes the first operand, for messages.
    fn or(&mut self, after: Option<&str>) -> Result<Expr, RuleError> {
        let mut left = self.and(after)?;
        while self.peek()?.tok == Tok::OrOr {
            self.next()?;
            let right = self.and(Some("||"))?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, after: Option<&str>) -> Result<Expr, RuleError> {
        let mut left = self.unary(after)?;
        while self.peek()?.tok == Tok::AndAnd {
            self.next()?;
            let right = self.unary(Some("&&"))?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, after: Option<&str>) -> Result<Expr, RuleError> {
        let token = self.next()?;
        match token.tok {
            Tok::Bang => Ok(Expr::Not(Box::new(self.unary(Some("!"))?))),
            Tok::LParen => {
                let inner = self.or(Some("("))?;
                let close = self.next()?;
                match close.tok {
                    Tok::RParen => Ok(inner),
                    Tok::Eof => Err(self.err(
                        token.pos,
                        "unbalanced parenthesis: this `(` is never closed",
                    )),
                    other => Err(self.err(
                        close.pos,
                        format!("expected `&&`, `||` or `)`, found {}", other.describe()),
                    )),
                }
            }
            Tok::Ident(name) => self.call(name, token.pos),
            other => {
                let expected = match after {
                    Some(op) => format!("expected a matcher after `{op}`"),
                    None => "expected a matcher".to_string(),
                };
                let message = match other {
                    Tok::Eof => expected,
                    Tok::RParen if after == Some("(") => {
                        "empty parentheses: expected a matcher".to_string()
                    }
                    other => format!("{expected}, found {}", other.describe()),
                };
                Err(self.err(token.pos, message))
            }
        }
    }

    fn resolve(&self, name: &str, pos: usize) -> Result<&'static str, RuleError> {
        let grammar = self.grammar;
        if let Some(found) = grammar
            .matchers
            .iter()
            .find(|canonical| accepted_spelling(name, canonical))
        {
            return Ok(found);
        }
        let foreign = grammar
            .foreign
            .iter()
            .find(|(other, _)| accepted_spelling(name, other));
        let message = match foreign {
            Some((other, Some(here))) => format!(
                "unknown matcher `{name}` in {} syntax, did you mean `{here}`? (`{other}` is {} syntax)",
                grammar.name,
                other_syntax(grammar.name)
            ),
            Some((other, None)) => format!(
                "unknown matcher `{name}` in {} syntax (`{other}` only exists in {} syntax)",
                grammar.name,
                other_syntax(grammar.name)
            ),
            None => match did_you_mean(name, grammar.matchers) {
                Some(suggestion) => {
                    format!("unknown matcher `{name}`, did you mean `{suggestion}`?")
                }
                None => format!(
                    "unknown matcher `{name}`; {} matchers are {}",
                    grammar.name,
                    grammar.matchers.join(", ")
                ),
            },
        };
        Err(self.err(pos, message))
    }

    fn call(&mut self, name: &'a str, pos: usize) -> Result<Expr, RuleError> {
        let canonical = self.resolve(name, pos)?;
        let open = self.next()?;
        match open.tok {
            Tok::LParen => {}
            Tok::Other(':') => {
                return Err(self.err(
                    open.pos,
                    format!(
                        "expected `(` after `{name}`; `{name}:value` is v1 syntax, write `{name}(`value`)`"
                    ),
                ));
            }
            other => {
                return Err(self.err(
                    open.pos,
                    format!("expected `(` after `{name}`, found {}", other.describe()),
                ));
            }
        }
        let mut args = Vec::new();
        loop {
            let token = self.next()?;
            match token.tok {
                Tok::RParen => break,
                Tok::Str(value) => args.push(Arg {
                    value,
                    pos: token.pos,
                }),
                Tok::Eof => return Err(self.unclosed_call(name, open.pos)),
                other => {
                    return Err(self.err(
                        token.pos,
                        format!(
                            "expected a value in backticks or double quotes, found {}",
                            other.describe()
                        ),
                    ));
                }
            }
            // Go accepts a trailing comma in a call, so `Host(`a`,)` is valid.
            let sep = self.next()?;
            match sep.tok {
                Tok::Comma => {}
                Tok::RParen => break,
                Tok::Eof => return Err(self.unclosed_call(name, open.pos)),
                other => {
                    return Err(self.err(
                        sep.pos,
                        format!(
                            "expected `,` or `)` after a value, found {}",
                            other.describe()
                        ),
                    ));
                }
            }
        }
        let call = Call {
            rule: self.rule,
            name: canonical,
            pos,
            args,
        };
        (self.grammar.build)(&call)
    }

    fn unclosed_call(&self, name: &str, open: usize) -> RuleError {
        self.err(
            open,
            format!("unbalanced parenthesis: the `(` of `{name}` is never closed"),
        )
    }
}

/// "1 value", "3 values".
pub(super) fn count(n: usize) -> String {
    if n == 1 {
        "1 value".to_string()
    } else {
        format!("{n} values")
    }
}

fn other_syntax(name: &str) -> &'static str {
    if name == "v3" { "v2" } else { "v3" }
}
