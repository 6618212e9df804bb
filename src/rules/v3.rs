//! Traefik v3 matchers (`pkg/muxer/http/matcher.go`): each takes exactly one value, except
//! `Header`/`HeaderRegexp` (two) and `Query`/`QueryRegexp` (one or two).

use super::Expr;
use super::error::RuleError;
use super::expression::{Call, Grammar};
use super::matcher::Matcher;
use super::values;

pub(super) static GRAMMAR: Grammar = Grammar {
    name: "v3",
    matchers: &[
        "Host",
        "HostRegexp",
        "Path",
        "PathPrefix",
        "PathRegexp",
        "Method",
        "Header",
        "HeaderRegexp",
        "Query",
        "QueryRegexp",
        "ClientIP",
    ],
    foreign: &[
        ("HostHeader", Some("Host")),
        ("Headers", Some("Header")),
        ("HeadersRegexp", Some("HeaderRegexp")),
    ],
    build,
};

fn build(call: &Call<'_>) -> Result<Expr, RuleError> {
    let allowed: &[usize] = match call.name {
        "Header" | "HeaderRegexp" => &[2],
        "Query" | "QueryRegexp" => &[1, 2],
        _ => &[1],
    };
    call.arity(allowed)?;
    call.non_empty()?;
    let args = &call.args;
    let first = &args[0];
    let at = |pos: usize| move |message: String| call.err(pos, message);
    let matcher = match call.name {
        "Host" => values::host(&first.value, true).map_err(at(first.pos))?,
        "HostRegexp" => {
            if !first.value.is_ascii() {
                return Err(call.err(
                    first.pos,
                    format!(
                        "non-ASCII host `{}`; write it in punycode (xn--...)",
                        first.value
                    ),
                ));
            }
            Matcher::HostRegexp(values::regex(&first.value).map_err(at(first.pos))?)
        }
        "Path" => Matcher::Path(values::path(&first.value).map_err(at(first.pos))?),
        "PathPrefix" => Matcher::PathPrefix(values::path(&first.value).map_err(at(first.pos))?),
        "PathRegexp" => Matcher::PathRegexp(values::regex(&first.value).map_err(at(first.pos))?),
        "Method" => Matcher::Method(values::method(&first.value).map_err(at(first.pos))?),
        "Header" | "HeaderRegexp" => {
            let name = values::header_name(&first.value).map_err(at(first.pos))?;
            let second = &args[1];
            if call.name == "Header" {
                Matcher::Header {
                    name,
                    value: second.value.clone(),
                }
            } else {
                let regex = values::regex(&second.value).map_err(at(second.pos))?;
                Matcher::HeaderRegexp { name, regex }
            }
        }
        "Query" | "QueryRegexp" => {
            let key = first.value.clone();
            match args.get(1) {
                // With only a key, both match the parameter with an empty value (`?key`).
                None => Matcher::Query {
                    key,
                    value: String::new(),
                },
                Some(second) if call.name == "Query" => Matcher::Query {
                    key,
                    value: second.value.clone(),
                },
                Some(second) => Matcher::QueryRegexp {
                    key,
                    regex: values::regex(&second.value).map_err(at(second.pos))?,
                },
            }
        }
        "ClientIP" => Matcher::ClientIp(values::client_ip(&first.value).map_err(at(first.pos))?),
        other => return Err(call.err(call.pos, format!("unknown matcher `{other}`"))),
    };
    Ok(Expr::Match(matcher))
}
