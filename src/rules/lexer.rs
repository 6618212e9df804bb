//! Tokens of the v2/v3 expression grammar. Traefik parses rules with Go's expression parser,
//! so values are Go string literals: raw strings in backticks, or interpreted strings in double
//! quotes with Go's escapes. Single quotes are Go rune literals and are rejected.

use super::error::RuleError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok<'a> {
    Ident(&'a str),
    Str(String),
    LParen,
    RParen,
    Comma,
    AndAnd,
    OrOr,
    Bang,
    /// A character the grammar has no use for; the parser says why in context.
    Other(char),
    Eof,
}

impl Tok<'_> {
    /// How an error message names this token.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("`{name}`"),
            Tok::Str(_) => "a quoted value".to_string(),
            Tok::LParen => "`(`".to_string(),
            Tok::RParen => "`)`".to_string(),
            Tok::Comma => "`,`".to_string(),
            Tok::AndAnd => "`&&`".to_string(),
            Tok::OrOr => "`||`".to_string(),
            Tok::Bang => "`!`".to_string(),
            Tok::Other(c) => format!("`{c}`"),
            Tok::Eof => "the end of the rule".to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Token<'a> {
    pub tok: Tok<'a>,
    /// Byte offset of the token's first character.
    pub pos: usize,
}

pub(super) struct Lexer<'a> {
    rule: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(rule: &'a str) -> Self {
        Lexer { rule, pos: 0 }
    }

    fn err(&self, pos: usize, message: impl Into<String>) -> RuleError {
        RuleError::new(self.rule, pos, message)
    }

    pub(super) fn next_token(&mut self) -> Result<Token<'a>, RuleError> {
        let bytes = self.rule.as_bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.pos) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(&c) = bytes.get(start) else {
            return Ok(Token {
                tok: Tok::Eof,
                pos: start,
            });
        };
        let tok = match c {
            b'(' => self.single(Tok::LParen),
            b')' => self.single(Tok::RParen),
            b',' => self.single(Tok::Comma),
            b'!' => self.single(Tok::Bang),
            b'&' | b'|' => {
                if bytes.get(start + 1) != Some(&c) {
                    let op = if c == b'&' { "&&" } else { "||" };
                    return Err(self.err(
                        start,
                        format!("expected `{op}`, found a single `{}`", c as char),
                    ));
                }
                self.pos += 2;
                if c == b'&' { Tok::AndAnd } else { Tok::OrOr }
            }
            b'`' => Tok::Str(self.raw_string(start)?),
            b'"' => Tok::Str(self.quoted_string(start)?),
            b'\'' => {
                return Err(self.err(
                    start,
                    "single quotes are not accepted; quote values with backticks or double quotes",
                ));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while let Some(b) = bytes.get(self.pos) {
                    if !(b.is_ascii_alphanumeric() || *b == b'_') {
                        break;
                    }
                    self.pos += 1;
                }
                Tok::Ident(&self.rule[start..self.pos])
            }
            _ => {
                let ch = self.rule[start..].chars().next().unwrap_or('\u{fffd}');
                self.pos += ch.len_utf8();
                Tok::Other(ch)
            }
        };
        Ok(Token { tok, pos: start })
    }

    fn single(&mut self, tok: Tok<'a>) -> Tok<'a> {
        self.pos += 1;
        tok
    }

    fn raw_string(&mut self, start: usize) -> Result<String, RuleError> {
        let body = &self.rule[start + 1..];
        let Some(len) = body.find('`') else {
            return Err(self.err(start, "unterminated backtick-quoted value"));
        };
        self.pos = start + 1 + len + 1;
        // Go drops carriage returns from raw strings (`replace` costs more
        // than the search, even when there is nothing to replace).
        let raw = &body[..len];
        Ok(if raw.contains('\r') {
            raw.replace('\r', "")
        } else {
            raw.to_string()
        })
    }

    fn quoted_string(&mut self, start: usize) -> Result<String, RuleError> {
        let bytes = self.rule.as_bytes();
        let mut out = Vec::new();
        let mut i = start + 1;
        loop {
            match bytes.get(i) {
                None | Some(b'\n') => {
                    return Err(self.err(start, "unterminated double-quoted value"));
                }
                Some(b'"') => {
                    i += 1;
                    break;
                }
                Some(b'\\') => i = self.escape(i, &mut out)?,
                Some(&b) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        self.pos = i;
        String::from_utf8(out)
            .map_err(|_| self.err(start, "double-quoted value is not valid UTF-8"))
    }

    /// Decodes the Go escape sequence at `at` (a backslash) into `out`; returns the next offset.
    fn escape(&self, at: usize, out: &mut Vec<u8>) -> Result<usize, RuleError> {
        let bytes = self.rule.as_bytes();
        let Some(&kind) = bytes.get(at + 1) else {
            return Err(self.err(at, "unterminated double-quoted value"));
        };
        let simple = match kind {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            b'"' => Some(b'"'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(at + 2);
        }
        let digits = |n: usize, radix: u32| -> Option<u32> {
            let text = self.rule.get(at + 2..at + 2 + n)?;
            if !text.bytes().all(|b| (b as char).is_digit(radix)) {
                return None;
            }
            u32::from_str_radix(text, radix).ok()
        };
        match kind {
            b'0'..=b'7' => {
                let value = self
                    .rule
                    .get(at + 1..at + 4)
                    .filter(|t| t.bytes().all(|b| (b'0'..=b'7').contains(&b)))
                    .and_then(|t| u32::from_str_radix(t, 8).ok())
                    .ok_or_else(|| self.err(at, "octal escape needs 3 digits"))?;
                let byte = u8::try_from(value)
                    .map_err(|_| self.err(at, "octal escape value above 255"))?;
                out.push(byte);
                Ok(at + 4)
            }
            b'x' => {
                let value =
                    digits(2, 16).ok_or_else(|| self.err(at, "escape `\\x` needs 2 hex digits"))?;
                out.push(value as u8);
                Ok(at + 4)
            }
            b'u' | b'U' => {
                let n = if kind == b'u' { 4 } else { 8 };
                let value = digits(n, 16).ok_or_else(|| {
                    self.err(
                        at,
                        format!("escape `\\{}` needs {n} hex digits", kind as char),
                    )
                })?;
                let c = char::from_u32(value)
                    .ok_or_else(|| self.err(at, "escape is not a valid Unicode code point"))?;
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                Ok(at + 2 + n)
            }
            _ => {
                let shown = self.rule[at + 1..].chars().next().unwrap_or(' ');
                Err(self.err(
                    at,
                    format!("unknown escape `\\{shown}` in double-quoted value"),
                ))
            }
        }
    }
}
