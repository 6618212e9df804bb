//! Traefik v2 matchers, as Traefik v3 still parses them with `ruleSyntax: v2`
//! (`pkg/muxer/http/matcher_v2.go`): several values per matcher, gorilla/mux templates in
//! `HostRegexp`, `Path` and `PathPrefix`, and `Query(`key=value`)`.

use super::Expr;
use super::error::RuleError;
use super::expression::{Arg, Call, Grammar, count};
use super::matcher::Matcher;
use super::template::{self, Kind};
use super::values;

pub(super) static GRAMMAR: Grammar = Grammar {
    name: "v2",
    matchers: &[
        "Host",
        "HostHeader",
        "HostRegexp",
        "Path",
        "PathPrefix",
        "Method",
        "Headers",
        "HeadersRegexp",
        "Query",
        "ClientIP",
    ],
    foreign: &[
        ("Header", Some("Headers")),
        ("HeaderRegexp", Some("HeadersRegexp")),
        ("PathRegexp", None),
        ("QueryRegexp", None),
    ],
    build,
};

fn build(call: &Call<'_>) -> Result<Expr, RuleError> {
    call.non_empty()?;
    let each = |f: fn(&str) -> Result<Matcher, String>| -> Result<Vec<Expr>, RuleError> {
        call.args
            .iter()
            .map(|a| f(&a.value).map(Expr::Match).map_err(|m| call.err(a.pos, m)))
            .collect()
    };
    // Values of one matcher are alternatives, except for the header and query pairs, which
    // gorilla/mux requires all at once.
    let expr = match call.name {
        "Host" | "HostHeader" => Expr::any_of(each(|v| values::host(v, false))?),
        "HostRegexp" => Expr::any_of(each(values::host_template)?),
        "Path" => Expr::any_of(each(|v| {
            values::path_template(
                v,
                Kind::Path {
                    strict_slash: false,
                },
            )
        })?),
        "PathPrefix" => Expr::any_of(each(|v| values::path_template(v, Kind::PathPrefix))?),
        "Method" => Expr::any_of(each(|v| values::method(v).map(Matcher::Method))?),
        "ClientIP" => Expr::any_of(each(|v| values::client_ip(v).map(Matcher::ClientIp))?),
        "Headers" | "HeadersRegexp" => Expr::all_of(header_pairs(call)?),
        "Query" => Expr::all_of(
            call.args
                .iter()
                .map(|a| query_pair(call, a))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        other => return Err(call.err(call.pos, format!("unknown matcher `{other}`"))),
    };
    expr.ok_or_else(|| call.err(call.pos, format!("`{}` needs a value", call.name)))
}

fn header_pairs(call: &Call<'_>) -> Result<Vec<Expr>, RuleError> {
    if !call.args.len().is_multiple_of(2) {
        return Err(call.err(
            call.pos,
            format!(
                "`{}` takes header name and value pairs, got {}",
                call.name,
                count(call.args.len())
            ),
        ));
    }
    call.args
        .chunks(2)
        .map(|pair| {
            let (key, value) = (&pair[0], &pair[1]);
            let name = values::header_name(&key.value).map_err(|m| call.err(key.pos, m))?;
            let matcher = if call.name == "Headers" {
                Matcher::Header {
                    name,
                    value: value.value.clone(),
                }
            } else {
                let regex = values::regex(&value.value).map_err(|m| call.err(value.pos, m))?;
                Matcher::HeaderRegexp { name, regex }
            };
            Ok(Expr::Match(matcher))
        })
        .collect()
}

fn query_pair(call: &Call<'_>, arg: &Arg) -> Result<Expr, RuleError> {
    let Some((key, value)) = arg.value.split_once('=') else {
        return Err(call.err(
            arg.pos,
            format!("expected `key=value` in `Query`, got `{}`", arg.value),
        ));
    };
    if key.is_empty() {
        return Err(call.err(arg.pos, "empty query parameter name in `Query`"));
    }
    let regex = template::compile(value, Kind::QueryValue).map_err(|m| call.err(arg.pos, m))?;
    Ok(Expr::Match(Matcher::QueryTemplate {
        key: key.to_string(),
        regex,
    }))
}
