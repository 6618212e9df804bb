//! Traefik 1.7 frontend rules (`rules/rules.go` at tag v1.7): `Matcher:a,b;Matcher2:c`.
//! `;` separates matchers, all of which must match; `,` separates the values of one matcher,
//! which are alternatives, except for `Headers`, `HeadersRegexp` and `Query`, whose values
//! gorilla/mux requires all at once. Matcher names are case-sensitive, as in Traefik's lookup.

use super::error::{RuleError, did_you_mean};
use super::expression::count;
use super::matcher::Matcher;
use super::template::{self, Kind};
use super::{Expr, Modifier, ParsedRule, values};

const MATCHERS: &[&str] = &[
    "Host",
    "HostRegexp",
    "Path",
    "PathStrip",
    "PathStripRegex",
    "PathPrefix",
    "PathPrefixStrip",
    "PathPrefixStripRegex",
    "Method",
    "Headers",
    "HeadersRegexp",
    "Query",
    "AddPrefix",
    "ReplacePath",
    "ReplacePathRegex",
];

struct Value<'r> {
    text: &'r str,
    pos: usize,
}

/// Modifiers seen so far. Like Traefik, which stores each in one field of its route, a later
/// matcher of the same kind replaces an earlier one.
#[derive(Default)]
struct Modifiers {
    strip_prefix: Option<Vec<String>>,
    strip_prefix_regex: Option<Vec<String>>,
    add_prefix: Option<String>,
    replace_path: Option<String>,
    replace_path_regex: Option<(String, String)>,
}

impl Modifiers {
    /// In the order Traefik 1.7 runs them on a request. `buildMatcherMiddlewares` in
    /// `server/server_configuration.go` (tag v1.7) wraps the handler innermost first:
    /// ReplacePath, ReplacePathRegex, AddPrefix, StripPrefix, StripPrefixRegex; so a request
    /// goes through StripPrefixRegex, StripPrefix, AddPrefix, ReplacePathRegex, ReplacePath.
    fn in_order(self) -> Vec<Modifier> {
        let mut out = Vec::new();
        out.extend(self.strip_prefix_regex.map(Modifier::StripPrefixRegex));
        out.extend(self.strip_prefix.map(Modifier::StripPrefix));
        out.extend(self.add_prefix.map(Modifier::AddPrefix));
        out.extend(
            self.replace_path_regex
                .map(|(regex, replacement)| Modifier::ReplacePathRegex { regex, replacement }),
        );
        out.extend(self.replace_path.map(Modifier::ReplacePath));
        out
    }
}

pub(super) fn parse(rule: &str) -> Result<ParsedRule, RuleError> {
    let err = |pos: usize, message: String| RuleError::new(rule, pos, message);
    if rule.split(';').all(|segment| segment.trim().is_empty()) {
        return Err(err(0, "empty rule".to_string()));
    }
    let mut matchers = Vec::new();
    let mut modifiers = Modifiers::default();
    let mut offset = 0;
    for segment in rule.split(';') {
        let start = offset;
        offset += segment.len() + 1;
        // Traefik skips empty segments, so `Host:a;` is fine.
        if segment.trim().is_empty() {
            continue;
        }
        let name_pos = start + (segment.len() - segment.trim_start().len());
        let colon = segment.find(':');
        let name = segment[..colon.unwrap_or(segment.len())].trim();
        if name.contains(['(', '`', '"']) {
            return Err(err(
                name_pos,
                "this looks like a v2/v3 rule (`Matcher(`value`)`); v1 rules are written `Matcher:value`"
                    .to_string(),
            ));
        }
        let Some(colon) = colon else {
            return Err(err(
                start + segment.trim_end().len(),
                format!("expected `:` after `{name}`"),
            ));
        };
        if name.is_empty() {
            return Err(err(
                start + colon,
                "missing matcher name before `:`".to_string(),
            ));
        }
        let Some(&canonical) = MATCHERS.iter().find(|m| **m == name) else {
            return Err(err(name_pos, unknown_matcher(name)));
        };
        let values = split_values(&segment[colon + 1..], start + colon + 1);
        if values.is_empty() {
            return Err(err(
                start + colon + 1,
                format!("`{canonical}` needs at least one value"),
            ));
        }
        let segment_rule = Segment {
            rule,
            name: canonical,
            pos: name_pos,
            values,
        };
        if let Some(expr) = segment_rule.apply(&mut modifiers)? {
            matchers.push(expr);
        }
    }
    Ok(ParsedRule {
        // Made only of modifiers, a rule restricts nothing, like a mux route without matchers.
        expr: Expr::all_of(matchers).unwrap_or(Expr::Match(Matcher::Any)),
        modifiers: modifiers.in_order(),
    })
}

fn unknown_matcher(name: &str) -> String {
    match did_you_mean(name, MATCHERS) {
        Some(same) if same.eq_ignore_ascii_case(name) => format!(
            "unknown matcher `{name}`, did you mean `{same}`? (v1 matcher names are case-sensitive)"
        ),
        Some(suggestion) => format!("unknown matcher `{name}`, did you mean `{suggestion}`?"),
        None => format!(
            "unknown matcher `{name}`; v1 matchers are {}",
            MATCHERS.join(", ")
        ),
    }
}

/// Comma-separated values, trimmed, empty ones dropped as Traefik does.
fn split_values(text: &str, base: usize) -> Vec<Value<'_>> {
    let mut values = Vec::new();
    let mut offset = base;
    for part in text.split(',') {
        let lead = part.len() - part.trim_start().len();
        let trimmed = part.trim();
        if !trimmed.is_empty() {
            values.push(Value {
                text: trimmed,
                pos: offset + lead,
            });
        }
        offset += part.len() + 1;
    }
    values
}

struct Segment<'r> {
    rule: &'r str,
    name: &'static str,
    pos: usize,
    values: Vec<Value<'r>>,
}

impl Segment<'_> {
    fn err(&self, pos: usize, message: impl Into<String>) -> RuleError {
        RuleError::new(self.rule, pos, message)
    }

    /// Each value through `f`, as alternatives.
    fn any(&self, f: impl Fn(&str) -> Result<Matcher, String>) -> Result<Expr, RuleError> {
        let exprs = self
            .values
            .iter()
            .map(|v| f(v.text).map(Expr::Match).map_err(|m| self.err(v.pos, m)))
            .collect::<Result<Vec<_>, _>>()?;
        Expr::any_of(exprs).ok_or_else(|| self.err(self.pos, "missing value"))
    }

    /// The values, longest first: Traefik sorts strip prefixes so the longest one wins.
    fn by_length(&self) -> Vec<&Value<'_>> {
        let mut sorted: Vec<_> = self.values.iter().collect();
        sorted.sort_by_key(|v| std::cmp::Reverse(v.text.len()));
        sorted
    }

    fn no_templates(&self) -> Result<(), RuleError> {
        match self.values.iter().find(|v| template::is_template(v.text)) {
            Some(v) => Err(self.err(
                v.pos,
                format!(
                    "`{}` strips a literal prefix and takes no `{{}}` template; use `{}Regex`",
                    self.name, self.name
                ),
            )),
            None => Ok(()),
        }
    }

    fn strip_regexes(&self) -> Result<Vec<String>, RuleError> {
        self.by_length()
            .into_iter()
            .map(|v| template::to_regex(v.text, Kind::PathPrefix).map_err(|m| self.err(v.pos, m)))
            .collect()
    }

    /// Traefik keeps the last value of a modifier given several.
    fn last(&self) -> Result<&Value<'_>, RuleError> {
        self.values
            .last()
            .ok_or_else(|| self.err(self.pos, "missing value"))
    }

    /// Adds this matcher's modifiers and returns its condition, if it has one.
    fn apply(&self, modifiers: &mut Modifiers) -> Result<Option<Expr>, RuleError> {
        const PATH: Kind = Kind::Path { strict_slash: true };
        let expr = match self.name {
            "Host" => self.any(|v| values::host(v, false))?,
            "HostRegexp" => self.any(values::host_template)?,
            "Path" => self.any(|v| values::path_template(v, PATH))?,
            "PathPrefix" => self.any(|v| values::path_template(v, Kind::PathPrefix))?,
            "PathStrip" | "PathPrefixStrip" => {
                self.no_templates()?;
                let kind = if self.name == "PathStrip" {
                    PATH
                } else {
                    Kind::PathPrefix
                };
                let expr = self.any(|v| values::path_template(v, kind))?;
                let prefixes = self
                    .by_length()
                    .iter()
                    .map(|v| v.text.to_string())
                    .collect();
                modifiers.strip_prefix = Some(prefixes);
                expr
            }
            "PathStripRegex" | "PathPrefixStripRegex" => {
                let kind = if self.name == "PathStripRegex" {
                    PATH
                } else {
                    Kind::PathPrefix
                };
                let expr = self.any(|v| values::path_template(v, kind))?;
                modifiers.strip_prefix_regex = Some(self.strip_regexes()?);
                expr
            }
            "Method" => self.any(|v| values::method(v).map(Matcher::Method))?,
            "Headers" | "HeadersRegexp" => self.header_pairs()?,
            "Query" => self.queries()?,
            "AddPrefix" => {
                modifiers.add_prefix = Some(self.last()?.text.to_string());
                return Ok(None);
            }
            "ReplacePath" => {
                modifiers.replace_path = Some(self.last()?.text.to_string());
                return Ok(None);
            }
            "ReplacePathRegex" => {
                let last = self.last()?;
                let parts: Vec<&str> = last.text.split(' ').collect();
                let [regex, replacement] = parts[..] else {
                    return Err(self.err(
                        last.pos,
                        "`ReplacePathRegex` takes a regex and a replacement separated by one space",
                    ));
                };
                values::regex(regex).map_err(|m| self.err(last.pos, m))?;
                modifiers.replace_path_regex = Some((regex.to_string(), replacement.to_string()));
                return Ok(None);
            }
            other => return Err(self.err(self.pos, format!("unknown matcher `{other}`"))),
        };
        Ok(Some(expr))
    }

    fn header_pairs(&self) -> Result<Expr, RuleError> {
        if !self.values.len().is_multiple_of(2) {
            return Err(self.err(
                self.pos,
                format!(
                    "`{}` takes header name and value pairs, got {}",
                    self.name,
                    count(self.values.len())
                ),
            ));
        }
        let exprs = self
            .values
            .chunks(2)
            .map(|pair| {
                let (key, value) = (&pair[0], &pair[1]);
                let name = values::header_name(key.text).map_err(|m| self.err(key.pos, m))?;
                let matcher = if self.name == "Headers" {
                    Matcher::Header {
                        name,
                        value: value.text.to_string(),
                    }
                } else {
                    let regex = values::regex(value.text).map_err(|m| self.err(value.pos, m))?;
                    Matcher::HeaderRegexp { name, regex }
                };
                Ok(Expr::Match(matcher))
            })
            .collect::<Result<Vec<_>, RuleError>>()?;
        Expr::all_of(exprs).ok_or_else(|| self.err(self.pos, "missing value"))
    }

    fn queries(&self) -> Result<Expr, RuleError> {
        let exprs = self
            .values
            .iter()
            .map(|v| {
                let parts: Vec<&str> = v.text.split('=').collect();
                let [key, value] = parts[..] else {
                    return Err(self.err(
                        v.pos,
                        format!("expected `key=value` in `Query`, got `{}`", v.text),
                    ));
                };
                if key.is_empty() {
                    return Err(self.err(v.pos, "empty query parameter name in `Query`"));
                }
                let regex =
                    template::compile(value, Kind::QueryValue).map_err(|m| self.err(v.pos, m))?;
                Ok(Expr::Match(Matcher::QueryTemplate {
                    key: key.to_string(),
                    regex,
                }))
            })
            .collect::<Result<Vec<_>, RuleError>>()?;
        Expr::all_of(exprs).ok_or_else(|| self.err(self.pos, "missing value"))
    }
}
