//! `stripPrefixRegex`: strips the text matched by the first regex whose
//! (leftmost) match is a prefix of the decoded path; the stripped text goes
//! to `X-Forwarded-Prefix`. Same encoding and cleaning rules as `stripPrefix`.

use http::{HeaderValue, request};

use super::gourl::{GoPath, encoded_prefix_len, ensure_leading_slash, ensure_leading_slash_bytes};
use super::reqhead::{bad_request, parse_path, set_path};
use super::strip_prefix::X_FORWARDED_PREFIX;
use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;
use crate::goregex;

#[derive(Debug)]
pub struct StripPrefixRegex {
    name: String,
    // Bytes regexes: a decoded path need not be UTF-8.
    expressions: Vec<regex::bytes::Regex>,
}

impl StripPrefixRegex {
    /// The qualified name this layer was built for.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn new(name: &str, cfg: &dynamic::StripPrefixRegex) -> Result<Self, MiddlewareError> {
        let expressions = cfg
            .regex
            .iter()
            .map(|exp| {
                goregex::compile_bytes(exp.trim()).map_err(|e| {
                    MiddlewareError::new(
                        name,
                        format!("stripPrefixRegex.regex: invalid regex `{exp}`: {e}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(StripPrefixRegex {
            name: name.to_owned(),
            expressions,
        })
    }
}

impl Layer for StripPrefixRegex {
    fn on_request(&self, req: &mut request::Parts, _ctx: &mut RequestCtx) -> Flow {
        let url = match parse_path(req) {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        for exp in &self.expressions {
            let Some(m) = exp.find(&url.path) else {
                continue;
            };
            let prefix = m.as_bytes();
            if prefix.is_empty() || !url.path.starts_with(prefix) {
                continue;
            }
            // The matched text comes from the client: it may hold bytes a
            // header cannot carry.
            let Ok(header) = HeaderValue::from_bytes(prefix) else {
                return Flow::Respond(bad_request());
            };
            let mut stripped = GoPath {
                path: ensure_leading_slash_bytes(&url.path[prefix.len()..]),
                raw_path: String::new(),
            };
            if !url.raw_path.is_empty() {
                let at = encoded_prefix_len(&url.raw_path, prefix.len());
                let Some(rest) = url.raw_path.get(at..) else {
                    return Flow::Respond(bad_request());
                };
                stripped.raw_path = ensure_leading_slash(rest).into_owned();
            }
            if !stripped.is_clean() {
                return Flow::Respond(bad_request());
            }
            req.headers.append(X_FORWARDED_PREFIX.clone(), header);
            return match set_path(req, &stripped.request_uri_path()) {
                Ok(()) => Flow::Continue,
                Err(e) => e.into(),
            };
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::reqhead::tests::run_layer;

    fn run(regex: &[&str], uri: &str) -> (u16, String, Option<String>) {
        let mw = StripPrefixRegex::new(
            "spr@file",
            &dynamic::StripPrefixRegex {
                regex: regex.iter().map(|s| s.to_string()).collect(),
            },
        )
        .unwrap();
        let (status, req) = run_layer(&mw, uri);
        let header = req
            .headers
            .get(&X_FORWARDED_PREFIX)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        (status, req.uri.to_string(), header)
    }

    #[test]
    fn traefik_cases() {
        let exps = ["/a/api/", "/b/([a-z0-9]+)/", "/c/[a-z0-9]+/[0-9]+/"];
        let cases: &[(&str, u16, &str, Option<&str>)] = &[
            ("/a/test", 200, "/a/test", None),
            ("/a/test/", 200, "/a/test/", None),
            ("/a/api/", 200, "/", Some("/a/api/")),
            ("/a/api/test", 200, "/test", Some("/a/api/")),
            ("/a/api/test/", 200, "/test/", Some("/a/api/")),
            ("/b/api/", 200, "/", Some("/b/api/")),
            ("/b/api", 200, "/b/api", None),
            ("/b/api/test1", 200, "/test1", Some("/b/api/")),
            ("/b/api2/test2", 200, "/test2", Some("/b/api2/")),
            ("/c/api/123/", 200, "/", Some("/c/api/123/")),
            ("/c/api/123/test3", 200, "/test3", Some("/c/api/123/")),
            ("/c/api/abc/test4", 200, "/c/api/abc/test4", None),
            ("/a/api/a%2Fb", 200, "/a%2Fb", Some("/a/api/")),
            ("/a/api/./foo", 400, "", None),
            ("/a/api/../foo", 400, "", None),
        ];
        for (path, status, uri, header) in cases {
            let (got_status, got_uri, got_header) = run(&exps, path);
            assert_eq!(got_status, *status, "{path}");
            if *status == 200 {
                assert_eq!(got_uri, *uri, "{path}");
                assert_eq!(got_header.as_deref(), *header, "{path}");
            }
        }
    }

    #[test]
    fn match_must_be_a_prefix_of_the_path() {
        assert_eq!(run(&["b/"], "/ab/c").1, "/ab/c");
        // The leftmost match need not start at 0, only equal the start.
        let (_, uri, header) = run(&["/a/$"], "/a/x/a/");
        assert_eq!(uri, "/x/a/");
        assert_eq!(header.as_deref(), Some("/a/"));
        // Empty matches never strip.
        assert_eq!(run(&["x*"], "/a").1, "/a");
    }

    #[test]
    fn query_survives_and_bad_input_is_refused() {
        assert_eq!(run(&["^/api"], "/api/x?q=1").1, "/x?q=1");
        assert_eq!(run(&["^/api"], "/api%zz").0, 400);
        // A control byte in the stripped prefix cannot become a header.
        assert_eq!(run(&["(?s)^/a.b"], "/a%0Ab/c").0, 400);
        // Non-UTF-8 decoded paths still match byte-wise.
        let (status, uri, _) = run(&["^/api/"], "/api/%FF");
        assert_eq!((status, uri.as_str()), (200, "/%FF"));
    }

    #[test]
    fn invalid_regex_is_a_build_error() {
        let err = StripPrefixRegex::new(
            "spr@file",
            &dynamic::StripPrefixRegex {
                regex: vec!["/(a".into()],
            },
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("stripPrefixRegex.regex: invalid regex `/(a`"),
            "{err}"
        );
    }
}
