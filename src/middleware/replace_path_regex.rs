//! `replacePathRegex`: rewrites the path (as sent, still encoded) with a Go
//! regex and replacement, keeping the original in `X-Replaced-Path`.

use http::{StatusCode, request};

use super::gourl::{GoPath, unescape_path};
use super::replace_path::add_replaced_path;
use super::reqhead::{bad_request, go_error, parse_path, set_path};
use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;
use crate::goregex;

#[derive(Debug)]
pub struct ReplacePathRegex {
    name: String,
    regex: regex::Regex,
    replacement: String,
}

impl ReplacePathRegex {
    /// The qualified name this layer was built for.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn new(name: &str, cfg: &dynamic::ReplacePathRegex) -> Result<Self, MiddlewareError> {
        let regex = goregex::compile(cfg.regex.trim()).map_err(|e| {
            MiddlewareError::new(
                name,
                format!("replacePathRegex.regex: invalid regex `{}`: {e}", cfg.regex),
            )
        })?;
        Ok(ReplacePathRegex {
            name: name.to_owned(),
            regex,
            replacement: cfg.replacement.trim().to_owned(),
        })
    }
}

impl Layer for ReplacePathRegex {
    fn on_request(&self, req: &mut request::Parts, _ctx: &mut RequestCtx) -> Flow {
        let url = match parse_path(req) {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        let current = url.current();
        if !self.regex.is_match(&current) {
            return Flow::Continue;
        }
        if let Err(e) = add_replaced_path(req, &current) {
            return e.into();
        }
        let raw_path = goregex::replace_all(&self.regex, &current, &self.replacement);
        let path = match unescape_path(&raw_path) {
            Ok(p) => p.into_owned(),
            Err(e) => {
                return Flow::Respond(go_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()));
            }
        };
        let rewritten = GoPath { path, raw_path };
        if !rewritten.is_clean() {
            return Flow::Respond(bad_request());
        }
        match set_path(req, &rewritten.request_uri_path()) {
            Ok(()) => Flow::Continue,
            Err(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::replace_path::X_REPLACED_PATH;
    use crate::middleware::reqhead::tests::{parts, run_layer};
    use http_body_util::BodyExt;
    use std::net::Ipv4Addr;

    fn layer(regex: &str, replacement: &str) -> ReplacePathRegex {
        ReplacePathRegex::new(
            "rpr@file",
            &dynamic::ReplacePathRegex {
                regex: regex.into(),
                replacement: replacement.into(),
            },
        )
        .unwrap()
    }

    fn run(regex: &str, replacement: &str, uri: &str) -> (u16, String, Option<String>) {
        let (status, req) = run_layer(&layer(regex, replacement), uri);
        let header = req
            .headers
            .get(&X_REPLACED_PATH)
            .map(|v| v.to_str().unwrap().to_owned());
        (status, req.uri.to_string(), header)
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn traefik_cases() {
        let cases: &[(&str, &str, &str, u16, &str, Option<&str>)] = &[
            (
                "/whoami/and/whoami",
                "^/whoami/(.*)",
                "/who-am-i/$1",
                200,
                "/who-am-i/and/whoami",
                Some("/whoami/and/whoami"),
            ),
            (
                "/whoami/and/whoami",
                "/whoami",
                "/who-am-i",
                200,
                "/who-am-i/and/who-am-i",
                Some("/whoami/and/whoami"),
            ),
            (
                "/whoami/and/whoami",
                "/whoami",
                "",
                200,
                "/and",
                Some("/whoami/and/whoami"),
            ),
            (
                "/whoami/and/whoami",
                "/whoami",
                " ",
                200,
                "/and",
                Some("/whoami/and/whoami"),
            ),
            (
                "/whoami/and/whoami",
                "/no-match",
                "/whoami",
                200,
                "/whoami/and/whoami",
                None,
            ),
            (
                "/downloads/src/source.go",
                "^(?i)/downloads/([^/]+)/([^/]+)$",
                "/downloads/$1-$2",
                200,
                "/downloads/src-source.go",
                Some("/downloads/src/source.go"),
            ),
            (
                "/aaa/bbb",
                "/aaa/bbb",
                "/foo%2Fbar",
                200,
                "/foo%2Fbar",
                Some("/aaa/bbb"),
            ),
            (
                "/aaa%2Fbbb",
                "/aaa%2Fbbb",
                "/foo/bar",
                200,
                "/foo/bar",
                Some("/aaa%2Fbbb"),
            ),
            (
                "/aaa%2Fbbb",
                "/aaa/bbb",
                "/foo/bar",
                200,
                "/aaa%2Fbbb",
                None,
            ),
            (
                "/foo/%08bar",
                "^/foo/(.*)",
                "/$1",
                200,
                "/%08bar",
                Some("/foo/%08bar"),
            ),
            ("/foo../bar", "^/foo(.*)", "/$1", 400, "", None),
        ];
        for (uri, regex, replacement, status, want_uri, header) in cases {
            let (got_status, got_uri, got_header) = run(regex, replacement, uri);
            assert_eq!(got_status, *status, "{uri} {regex}");
            if *status == 200 {
                assert_eq!(got_uri, *want_uri, "{uri} {regex}");
                assert_eq!(got_header.as_deref(), *header, "{uri} {regex}");
            }
        }
    }

    #[tokio::test]
    async fn bad_escape_after_rewrite_answers_500_like_go() {
        let mut req = parts("/a/b");
        let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), "http");
        let Flow::Respond(res) = layer("^/a/(.*)", "/%zz$1").on_request(&mut req, &mut ctx) else {
            panic!("expected an answer");
        };
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"invalid URL escape \"%zz\"\n");
    }

    #[test]
    fn query_kept_and_relative_result_rooted() {
        assert_eq!(run("^/api/(.*)", "/v2/$1", "/api/x?q=1").1, "/v2/x?q=1");
        assert_eq!(run("^/api/(.*)", "$1", "/api/x").1, "/x");
        assert_eq!(run("^/api/(.*)", "$1", "/api/../x").0, 400);
    }

    #[test]
    fn invalid_regex_is_a_build_error() {
        let err = ReplacePathRegex::new(
            "rpr@file",
            &dynamic::ReplacePathRegex {
                regex: "^(?err)/x".into(),
                replacement: "/".into(),
            },
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("replacePathRegex.regex: invalid regex"),
            "{err}"
        );
    }
}
