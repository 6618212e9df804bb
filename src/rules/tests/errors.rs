//! Malformed rules: each asserts the exact message and byte position.

use super::super::RuleSyntax::{self, V1, V2, V3};
use super::error;

#[track_caller]
fn fails(rule: &str, syntax: RuleSyntax, message: &str, position: usize) {
    let e = error(rule, syntax);
    assert_eq!(e.message, message, "message for `{rule}`");
    assert_eq!(e.position, position, "position for `{rule}`\n{}", e.caret());
    assert_eq!(e.rule, rule);
}

// ---- v3 structure ----

#[test]
fn empty_rule() {
    fails("", V3, "empty rule", 0);
    fails("  \n ", V3, "empty rule", 0);
}

#[test]
fn missing_operand_after_and() {
    let e = error("Host(`a`) &&", V3);
    assert_eq!(e.message, "expected a matcher after `&&`");
    assert_eq!(e.position, 12);
    assert_eq!(
        e.to_string(),
        "invalid rule `Host(`a`) &&`: expected a matcher after `&&` at position 12"
    );
}

#[test]
fn missing_operand_after_or() {
    fails("Host(`a`) || ", V3, "expected a matcher after `||`", 13);
    fails(
        "Host(`a`) || )",
        V3,
        "expected a matcher after `||`, found `)`",
        13,
    );
}

#[test]
fn missing_operand_after_not() {
    fails("!", V3, "expected a matcher after `!`", 1);
    fails("Host(`a`) && !", V3, "expected a matcher after `!`", 14);
}

#[test]
fn missing_left_operand() {
    fails("&& Host(`a`)", V3, "expected a matcher, found `&&`", 0);
    fails("|| Host(`a`)", V3, "expected a matcher, found `||`", 0);
}

#[test]
fn unknown_matcher_with_suggestion() {
    fails(
        "Hots(`a.com`)",
        V3,
        "unknown matcher `Hots`, did you mean `Host`?",
        0,
    );
    fails(
        "Host(`a`) && PathPrefx(`/a`)",
        V3,
        "unknown matcher `PathPrefx`, did you mean `PathPrefix`?",
        13,
    );
}

#[test]
fn unknown_matcher_with_unaccepted_spelling() {
    // Only Name, name, NAME and Title forms are registered by Traefik.
    fails(
        "pathPrefix(`/a`)",
        V3,
        "unknown matcher `pathPrefix`, did you mean `PathPrefix`?",
        0,
    );
}

#[test]
fn unknown_matcher_without_suggestion() {
    fails(
        "Host(`a`) && Foo(`b`)",
        V3,
        "unknown matcher `Foo`; v3 matchers are Host, HostRegexp, Path, PathPrefix, PathRegexp, \
         Method, Header, HeaderRegexp, Query, QueryRegexp, ClientIP",
        13,
    );
}

#[test]
fn v2_matcher_in_v3() {
    fails(
        "Headers(`X`, `y`)",
        V3,
        "unknown matcher `Headers` in v3 syntax, did you mean `Header`? (`Headers` is v2 syntax)",
        0,
    );
    fails(
        "HostHeader(`a`)",
        V3,
        "unknown matcher `HostHeader` in v3 syntax, did you mean `Host`? (`HostHeader` is v2 syntax)",
        0,
    );
}

#[test]
fn unclosed_call_parenthesis() {
    fails(
        "Host(`a`",
        V3,
        "unbalanced parenthesis: the `(` of `Host` is never closed",
        4,
    );
    fails(
        "Path(`/`) && Host(",
        V3,
        "unbalanced parenthesis: the `(` of `Host` is never closed",
        17,
    );
}

#[test]
fn unclosed_group_parenthesis() {
    fails(
        "(Host(`a`) || Path(`/b`)",
        V3,
        "unbalanced parenthesis: this `(` is never closed",
        0,
    );
    fails(
        "Method(`GET`) && ((Host(`a`) || Path(`/b`))",
        V3,
        "unbalanced parenthesis: this `(` is never closed",
        17,
    );
}

#[test]
fn extra_closing_parenthesis() {
    fails(
        "Host(`a`))",
        V3,
        "unbalanced parenthesis: unexpected `)`",
        9,
    );
}

#[test]
fn empty_parentheses() {
    fails("()", V3, "empty parentheses: expected a matcher", 1);
}

#[test]
fn missing_operator_inside_group() {
    fails(
        "(Host(`a`) Path(`/`))",
        V3,
        "expected `&&`, `||` or `)`, found `Path`",
        11,
    );
}

#[test]
fn trailing_garbage() {
    fails(
        "Host(`a`) Path(`/b`)",
        V3,
        "expected `&&` or `||` between matchers, found `Path`",
        10,
    );
    fails(
        "Host(`a`) == Host(`b`)",
        V3,
        "expected `&&` or `||` between matchers, found `=`",
        10,
    );
}

#[test]
fn single_ampersand_or_pipe() {
    fails(
        "Host(`a`) & Path(`/b`)",
        V3,
        "expected `&&`, found a single `&`",
        10,
    );
    fails(
        "Host(`a`) | Path(`/b`)",
        V3,
        "expected `||`, found a single `|`",
        10,
    );
}

#[test]
fn missing_call_parenthesis() {
    fails(
        "Host",
        V3,
        "expected `(` after `Host`, found the end of the rule",
        4,
    );
    fails(
        "Host && Path(`/`)",
        V3,
        "expected `(` after `Host`, found `&&`",
        5,
    );
}

#[test]
fn v1_rule_in_v3() {
    fails(
        "Host:a.com",
        V3,
        "expected `(` after `Host`; `Host:value` is v1 syntax, write `Host(`value`)`",
        4,
    );
}

// ---- v3 values and quoting ----

#[test]
fn unterminated_backtick() {
    fails("Host(`a.com)", V3, "unterminated backtick-quoted value", 5);
}

#[test]
fn unterminated_double_quote() {
    fails("Host(\"a.com)", V3, "unterminated double-quoted value", 5);
    // Go's interpreted strings cannot span lines.
    fails("Host(\"a\nb\")", V3, "unterminated double-quoted value", 5);
}

#[test]
fn single_quotes() {
    fails(
        "Host('a.com')",
        V3,
        "single quotes are not accepted; quote values with backticks or double quotes",
        5,
    );
}

#[test]
fn bad_escapes() {
    fails(
        "Host(\"a\\qb\")",
        V3,
        "unknown escape `\\q` in double-quoted value",
        7,
    );
    fails("Path(\"/\\x4\")", V3, "escape `\\x` needs 2 hex digits", 7);
    fails("Path(\"/\\u12\")", V3, "escape `\\u` needs 4 hex digits", 7);
    fails("Path(\"/\\777\")", V3, "octal escape value above 255", 7);
    fails(
        "Path(\"/\\ud800\")",
        V3,
        "escape is not a valid Unicode code point",
        7,
    );
    // `\'` is only valid in Go rune literals.
    fails(
        "Path(\"/\\'\")",
        V3,
        "unknown escape `\\'` in double-quoted value",
        7,
    );
}

#[test]
fn unquoted_value() {
    fails(
        "Host(a.com)",
        V3,
        "expected a value in backticks or double quotes, found `a`",
        5,
    );
    fails(
        "Host(1)",
        V3,
        "expected a value in backticks or double quotes, found `1`",
        5,
    );
}

#[test]
fn missing_comma_between_values() {
    fails(
        "Header(`a` `b`)",
        V3,
        "expected `,` or `)` after a value, found a quoted value",
        11,
    );
}

#[test]
fn wrong_arity() {
    fails("Host(`a`, `b`)", V3, "`Host` takes 1 value, got 2", 0);
    fails("Method()", V3, "`Method` takes 1 value, got 0", 0);
    fails(
        "Path(`/`) || Header(`X-A`)",
        V3,
        "`Header` takes 2 values, got 1",
        13,
    );
    fails(
        "Query(`a`, `b`, `c`)",
        V3,
        "`Query` takes 1 or 2 values, got 3",
        0,
    );
    fails(
        "ClientIP(`10.0.0.1`, `10.0.0.2`)",
        V3,
        "`ClientIP` takes 1 value, got 2",
        0,
    );
}

#[test]
fn empty_values() {
    fails("Host(``)", V3, "empty value for `Host`", 5);
    fails("Query(`q`, \"\")", V3, "empty value for `Query`", 11);
    fails("Header(``, `v`)", V3, "empty value for `Header`", 7);
}

#[test]
fn bad_regexes() {
    fails(
        "PathRegexp(`/(a`)",
        V3,
        "invalid regex `/(a`: unclosed group",
        11,
    );
    fails(
        "HeaderRegexp(`X`, `[`)",
        V3,
        "invalid regex `[`: unclosed character class",
        18,
    );
    fails(
        "QueryRegexp(`q`, `(traefik`)",
        V3,
        "invalid regex `(traefik`: unclosed group",
        17,
    );
    fails(
        "HostRegexp(`a{2,1}`)",
        V3,
        "invalid regex `a{2,1}`: invalid repetition count range, the start must be <= the end",
        11,
    );
}

#[test]
fn bad_client_ip() {
    fails("ClientIP(`1`)", V3, "invalid IP or CIDR `1`", 9);
    fails(
        "ClientIP(`10.0.0.0/33`)",
        V3,
        "invalid IP or CIDR `10.0.0.0/33`",
        9,
    );
    fails(
        "ClientIP(`fe80::/129`)",
        V3,
        "invalid IP or CIDR `fe80::/129`",
        9,
    );
}

#[test]
fn path_without_slash() {
    fails("Path(`foo`)", V3, "path `foo` must start with `/`", 5);
    fails(
        "PathPrefix(`api`)",
        V3,
        "path `api` must start with `/`",
        11,
    );
}

#[test]
fn bad_hosts() {
    fails(
        "Host(`*.a.*.com`)",
        V3,
        "`*` is only allowed as the whole first label of a host, as in `*.example.com`",
        5,
    );
    fails(
        "Host(`foo*.a.com`)",
        V3,
        "`*` is only allowed as the whole first label of a host, as in `*.example.com`",
        5,
    );
    fails(
        "Host(`a.com:8080`)",
        V3,
        "unexpected port in host `a.com:8080`; hosts are matched without their port",
        5,
    );
    fails(
        "Host(`bücher.de`)",
        V3,
        "non-ASCII host `bücher.de`; write it in punycode (xn--...)",
        5,
    );
    fails("Host(`.`)", V3, "invalid host `.`", 5);
}

#[test]
fn bad_method_and_header_name() {
    fails("Method(`GE T`)", V3, "invalid method `GE T`", 7);
    fails("Header(`X A`, `b`)", V3, "invalid header name `X A`", 7);
}

// ---- v2 ----

#[test]
fn v2_wildcard_host() {
    fails(
        "Host(`*.a.com`)",
        V2,
        "wildcard hosts need the v3 rule syntax; use HostRegexp",
        5,
    );
}

#[test]
fn v2_odd_header_pairs() {
    fails(
        "Headers(`X-A`)",
        V2,
        "`Headers` takes header name and value pairs, got 1 value",
        0,
    );
    fails(
        "HeadersRegexp(`X-A`, `a`, `X-B`)",
        V2,
        "`HeadersRegexp` takes header name and value pairs, got 3 values",
        0,
    );
}

#[test]
fn v2_query_without_equals() {
    fails(
        "Query(`k`)",
        V2,
        "expected `key=value` in `Query`, got `k`",
        6,
    );
    fails(
        "Query(`=v`)",
        V2,
        "empty query parameter name in `Query`",
        6,
    );
}

#[test]
fn v2_bad_templates() {
    fails(
        "HostRegexp(`{sub:[a-z]+.a.com`)",
        V2,
        "unbalanced braces in `{sub:[a-z]+.a.com`",
        11,
    );
    fails(
        "HostRegexp(`{:[a-z]+}.a.com`)",
        V2,
        "missing name or pattern in `{:[a-z]+}`",
        11,
    );
    fails(
        "Path(`/{id:[0-9+}`)",
        V2,
        "invalid regex `[0-9+` in `{id:[0-9+}`: unclosed character class",
        5,
    );
    fails(
        "HostRegexp(`*.a.com`)",
        V2,
        "`*` is not a wildcard in HostRegexp templates; write `{sub:[a-z0-9-]+}.example.com`",
        11,
    );
}

#[test]
fn v3_matcher_in_v2() {
    fails(
        "PathRegexp(`/a`)",
        V2,
        "unknown matcher `PathRegexp` in v2 syntax (`PathRegexp` only exists in v3 syntax)",
        0,
    );
    fails(
        "Header(`X`, `y`)",
        V2,
        "unknown matcher `Header` in v2 syntax, did you mean `Headers`? (`Header` is v3 syntax)",
        0,
    );
}

#[test]
fn v2_empty_value() {
    fails("Host(`a`, ``)", V2, "empty value for `Host`", 10);
    fails("Method()", V2, "`Method` needs a value", 0);
}

// ---- v1 ----

#[test]
fn v1_empty_rule() {
    fails("", V1, "empty rule", 0);
    fails(" ; ", V1, "empty rule", 0);
}

#[test]
fn v1_missing_colon() {
    fails("Host", V1, "expected `:` after `Host`", 4);
    fails(
        "Host:a.com;PathPrefix ",
        V1,
        "expected `:` after `PathPrefix`",
        21,
    );
}

#[test]
fn v1_empty_value_list() {
    fails("Host:", V1, "`Host` needs at least one value", 5);
    fails(
        "Host:a;Path: , ;",
        V1,
        "`Path` needs at least one value",
        12,
    );
}

#[test]
fn v1_missing_name() {
    fails(":a.com", V1, "missing matcher name before `:`", 0);
}

#[test]
fn v1_unknown_matcher() {
    fails(
        "Host:a.com;PathPrefixStip:/api",
        V1,
        "unknown matcher `PathPrefixStip`, did you mean `PathPrefixStrip`?",
        11,
    );
    fails(
        "Foo:bar",
        V1,
        "unknown matcher `Foo`; v1 matchers are Host, HostRegexp, Path, PathStrip, PathStripRegex, \
         PathPrefix, PathPrefixStrip, PathPrefixStripRegex, Method, Headers, HeadersRegexp, Query, \
         AddPrefix, ReplacePath, ReplacePathRegex",
        0,
    );
}

#[test]
fn v1_names_are_case_sensitive() {
    fails(
        "host:a.com",
        V1,
        "unknown matcher `host`, did you mean `Host`? (v1 matcher names are case-sensitive)",
        0,
    );
    fails(
        "Host:a.com; pathprefixstrip:/a",
        V1,
        "unknown matcher `pathprefixstrip`, did you mean `PathPrefixStrip`? (v1 matcher names are case-sensitive)",
        12,
    );
}

#[test]
fn v3_rule_in_v1() {
    fails(
        "Host(`a.com`)",
        V1,
        "this looks like a v2/v3 rule (`Matcher(`value`)`); v1 rules are written `Matcher:value`",
        0,
    );
}

#[test]
fn v1_odd_headers() {
    fails(
        "Headers:X-A",
        V1,
        "`Headers` takes header name and value pairs, got 1 value",
        0,
    );
    fails("Headers:X A,b", V1, "invalid header name `X A`", 8);
}

#[test]
fn v1_replace_path_regex_needs_a_space() {
    fails(
        "ReplacePathRegex:^/a/(.*)",
        V1,
        "`ReplacePathRegex` takes a regex and a replacement separated by one space",
        17,
    );
    fails(
        "ReplacePathRegex: ^/a/(.*)  /b/$1",
        V1,
        "`ReplacePathRegex` takes a regex and a replacement separated by one space",
        18,
    );
}

#[test]
fn v1_replace_path_regex_bad_regex() {
    fails(
        "ReplacePathRegex:^/a/(.* /b/$1",
        V1,
        "invalid regex `^/a/(.*`: unclosed group",
        17,
    );
}

#[test]
fn v1_query_without_equals() {
    fails(
        "Query:mobile",
        V1,
        "expected `key=value` in `Query`, got `mobile`",
        6,
    );
    fails(
        "Query:a=1, b=2=3",
        V1,
        "expected `key=value` in `Query`, got `b=2=3`",
        11,
    );
}

#[test]
fn v1_bad_values() {
    fails("Path:api", V1, "path `api` must start with `/`", 5);
    fails(
        "Host:*.a.com",
        V1,
        "wildcard hosts need the v3 rule syntax; use HostRegexp",
        5,
    );
    fails("Method:GET,G(T", V1, "invalid method `G(T`", 11);
    fails(
        "HeadersRegexp:Content-Type,(json",
        V1,
        "invalid regex `(json`: unclosed group",
        27,
    );
}

#[test]
fn v1_strip_without_templates() {
    fails(
        "PathPrefixStrip:/api/{v}",
        V1,
        "`PathPrefixStrip` strips a literal prefix and takes no `{}` template; use `PathPrefixStripRegex`",
        16,
    );
}

#[test]
fn v1_bad_template() {
    fails(
        "HostRegexp:{sub:[a-z]+.example.com",
        V1,
        "unbalanced braces in `{sub:[a-z]+.example.com`",
        11,
    );
    // Traefik splits values on commas before reading templates, so a `{1,3}` repetition
    // breaks the template in two.
    fails(
        "PathPrefixStripRegex:/id/{n:[0-9]{1,3}}",
        V1,
        "unbalanced braces in `/id/{n:[0-9]{1`",
        21,
    );
}
