//! Builds the layers of a named middleware, expanding chains.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{
    AddPrefix, BasicAuth, Buffering, CircuitBreaker, Compress, ContentType, DigestAuth, ErrorPages,
    ForwardAuth, Headers, InFlightReq, IpAllowList, Layer, MiddlewareError, PassTlsClientCert,
    RateLimit, RedirectRegex, RedirectScheme, ReplacePath, ReplacePathRegex, Retry, StripPrefix,
    StripPrefixRegex, provider_of, qualify,
};
use crate::config::dynamic::Middleware;
use crate::routing::Target;

/// Resolves a middleware by name (already qualified like `auth@file`) for
/// chains, and a service by name for the middlewares that send to one.
pub trait Lookup {
    fn get(&self, qualified_name: &str) -> Option<&Middleware>;

    /// Qualifies a chain member named from within `current_provider`.
    fn qualify(&self, name: &str, current_provider: &str) -> String {
        qualify(name, current_provider)
    }

    /// The compiled service of that qualified name, or why there is none.
    fn service(&self, qualified_name: &str) -> Result<Target, String> {
        Err(format!("the service \"{qualified_name}\" does not exist"))
    }
}

impl Lookup for BTreeMap<String, Middleware> {
    fn get(&self, qualified_name: &str) -> Option<&Middleware> {
        BTreeMap::get(self, qualified_name)
    }
}

impl Lookup for HashMap<String, Middleware> {
    fn get(&self, qualified_name: &str) -> Option<&Middleware> {
        HashMap::get(self, qualified_name)
    }
}

/// Builds the layers of one named middleware; a `chain` expands into its
/// members' layers (recursively, detecting cycles with a clear error
/// listing the cycle).
///
/// `inFlightReq`, `rateLimit` and `circuitBreaker` keep their state while
/// their name and settings stay the same, across rebuilds. `retry` only
/// hands its policy to the forwarder, which makes the attempts.
pub fn build(
    qualified_name: &str,
    mw: &Middleware,
    lookup: &dyn Lookup,
) -> Result<Vec<Arc<dyn Layer>>, MiddlewareError> {
    let mut stack = vec![qualified_name.to_owned()];
    let mut layers = Vec::new();
    build_into(qualified_name, mw, lookup, &mut stack, &mut layers)?;
    Ok(layers)
}

/// Builds the layers of a router's middleware list, in order. Names are
/// qualified with the router's provider; a name that resolves to nothing
/// is an error naming it.
pub fn build_list(
    names: &[String],
    provider: &str,
    lookup: &dyn Lookup,
) -> Result<Vec<Arc<dyn Layer>>, MiddlewareError> {
    let mut layers = Vec::new();
    for name in names {
        let qualified = lookup.qualify(name, provider);
        let Some(mw) = lookup.get(&qualified) else {
            return Err(MiddlewareError::new(
                &qualified,
                "middleware does not exist",
            ));
        };
        layers.extend(build(&qualified, mw, lookup)?);
    }
    Ok(layers)
}

fn build_into(
    name: &str,
    mw: &Middleware,
    lookup: &dyn Lookup,
    stack: &mut Vec<String>,
    layers: &mut Vec<Arc<dyn Layer>>,
) -> Result<(), MiddlewareError> {
    if mw.kinds_set() > 1 {
        return Err(MiddlewareError::new(
            name,
            "multi-types middleware not supported, consider declaring two different pieces of middleware instead",
        ));
    }
    let Some(kind) = mw.kind() else {
        return Err(MiddlewareError::new(name, "no middleware type is set"));
    };

    fn push(layers: &mut Vec<Arc<dyn Layer>>, layer: impl Layer + 'static) {
        layers.push(Arc::new(layer));
    }
    if let Some(c) = &mw.add_prefix {
        push(layers, AddPrefix::new(name, c)?);
    } else if let Some(c) = &mw.strip_prefix {
        push(layers, StripPrefix::new(name, c)?);
    } else if let Some(c) = &mw.strip_prefix_regex {
        push(layers, StripPrefixRegex::new(name, c)?);
    } else if let Some(c) = &mw.replace_path {
        push(layers, ReplacePath::new(name, c)?);
    } else if let Some(c) = &mw.replace_path_regex {
        push(layers, ReplacePathRegex::new(name, c)?);
    } else if let Some(c) = &mw.redirect_scheme {
        push(layers, RedirectScheme::new(name, c)?);
    } else if let Some(c) = &mw.redirect_regex {
        push(layers, RedirectRegex::new(name, c)?);
    } else if let Some(c) = &mw.headers {
        push(layers, Headers::new(name, c)?);
    } else if let Some(c) = &mw.basic_auth {
        push(layers, BasicAuth::new(name, c)?);
    } else if let Some(chain) = &mw.chain {
        let provider = provider_of(name).unwrap_or("");
        for member in &chain.middlewares {
            let qualified = lookup.qualify(member, provider);
            if stack.contains(&qualified) {
                let mut cycle = stack.clone();
                cycle.push(qualified);
                return Err(MiddlewareError::new(
                    name,
                    format!("recursion detected in chain: {}", cycle.join(" -> ")),
                ));
            }
            let Some(member_mw) = lookup.get(&qualified) else {
                return Err(MiddlewareError::new(
                    name,
                    format!("chain member `{qualified}` does not exist"),
                ));
            };
            stack.push(qualified.clone());
            build_into(&qualified, member_mw, lookup, stack, layers)?;
            stack.pop();
        }
    } else if let Some(c) = &mw.retry {
        push(layers, Retry::new(name, c)?);
    } else if let Some(c) = &mw.in_flight_req {
        push(layers, InFlightReq::new(name, c)?);
    } else if let Some(c) = &mw.rate_limit {
        push(layers, RateLimit::new(name, c)?);
    } else if let Some(c) = &mw.circuit_breaker {
        push(layers, CircuitBreaker::new(name, c)?);
    } else if let Some(c) = &mw.forward_auth {
        push(layers, ForwardAuth::new(name, c)?);
    } else if let Some(c) = &mw.compress {
        push(layers, Compress::new(name, c)?);
    } else if let Some(c) = &mw.buffering {
        push(layers, Buffering::new(name, c)?);
    } else if let Some(c) = mw.ip_allow_list.as_ref().or(mw.ip_white_list.as_ref()) {
        push(layers, IpAllowList::new(name, c)?);
    } else if let Some(c) = &mw.pass_tls_client_cert {
        push(layers, PassTlsClientCert::new(name, c)?);
    } else if let Some(c) = &mw.digest_auth {
        push(layers, DigestAuth::new(name, c)?);
    } else if let Some(c) = &mw.content_type {
        if let Some(layer) = ContentType::new(name, c)? {
            push(layers, layer);
        }
    } else if let Some(c) = &mw.errors {
        if c.service.is_empty() {
            return Err(MiddlewareError::new(name, "errors: `service` is not set"));
        }
        // Qualified with the middleware's own provider, as Traefik does.
        let service = lookup.qualify(&c.service, provider_of(name).unwrap_or(""));
        let target = lookup
            .service(&service)
            .map_err(|e| MiddlewareError::new(name, format!("errors: {e}")))?;
        push(layers, ErrorPages::new(name, c, target)?);
    } else {
        return Err(MiddlewareError::new(
            name,
            format!("middleware type `{kind}` is not supported by escale"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dynamic;
    use crate::config::tree::Unsupported;
    use crate::middleware::reqhead::tests::parts;
    use crate::middleware::{Flow, RequestCtx};
    use std::net::Ipv4Addr;

    fn strip(prefix: &str) -> Middleware {
        Middleware {
            strip_prefix: Some(dynamic::StripPrefix {
                prefixes: vec![prefix.into()],
                force_slash: None,
            }),
            ..Default::default()
        }
    }

    fn chain(members: &[&str]) -> Middleware {
        Middleware {
            chain: Some(dynamic::Chain {
                middlewares: members.iter().map(|s| s.to_string()).collect(),
            }),
            ..Default::default()
        }
    }

    fn run(layers: &[Arc<dyn Layer>], uri: &str) -> String {
        let mut req = parts(uri);
        let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), "http");
        for l in layers {
            assert!(matches!(l.on_request(&mut req, &mut ctx), Flow::Continue));
        }
        req.uri.to_string()
    }

    #[test]
    fn chain_expands_in_order_with_qualified_members() {
        let mut all = BTreeMap::new();
        all.insert("a@file".to_string(), strip("/a"));
        all.insert("b@docker".to_string(), strip("/b"));
        all.insert("inner@file".to_string(), chain(&["b@docker"]));
        all.insert("outer@file".to_string(), chain(&["a", "inner"]));
        let layers = build("outer@file", &all["outer@file"], &all).unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(run(&layers, "/a/b/c"), "/c");
        // Order matters: /a is tried before /b is stripped.
        assert_eq!(run(&layers, "/b/a/c"), "/a/c");
    }

    #[test]
    fn router_lists_are_qualified_with_the_router_provider() {
        let mut all = BTreeMap::new();
        all.insert("a@docker".to_string(), strip("/a"));
        all.insert("b@file".to_string(), strip("/b"));
        let names = vec!["a".to_string(), "b@file".to_string()];
        let layers = build_list(&names, "docker", &all).unwrap();
        assert_eq!(run(&layers, "/a/b/c"), "/c");
        let err = build_list(&names, "file", &all).unwrap_err();
        assert_eq!(
            err.to_string(),
            "middleware `a@file`: middleware does not exist"
        );
        assert!(build_list(&[], "file", &all).unwrap().is_empty());
    }

    #[test]
    fn missing_member_is_named() {
        let mut all = BTreeMap::new();
        all.insert("outer@file".to_string(), chain(&["ghost"]));
        let err = build("outer@file", &all["outer@file"], &all).unwrap_err();
        assert_eq!(err.middleware, "outer@file");
        assert_eq!(err.message, "chain member `ghost@file` does not exist");
    }

    #[test]
    fn cycles_are_reported_with_their_path() {
        let mut all = BTreeMap::new();
        all.insert("a@file".to_string(), chain(&["b"]));
        all.insert("b@file".to_string(), chain(&["c@file"]));
        all.insert("c@file".to_string(), chain(&["a"]));
        let err = build("a@file", &all["a@file"], &all).unwrap_err();
        assert_eq!(
            err.message,
            "recursion detected in chain: a@file -> b@file -> c@file -> a@file"
        );
        all.insert("self@file".to_string(), chain(&["self"]));
        let err = build("self@file", &all["self@file"], &all).unwrap_err();
        assert_eq!(
            err.message,
            "recursion detected in chain: self@file -> self@file"
        );
    }

    #[test]
    fn same_member_twice_is_not_a_cycle() {
        let mut all = BTreeMap::new();
        all.insert("s@file".to_string(), strip("/x"));
        all.insert("c@file".to_string(), chain(&["s", "s"]));
        let layers = build("c@file", &all["c@file"], &all).unwrap();
        assert_eq!(run(&layers, "/x/x/y"), "/y");
    }

    #[test]
    fn member_errors_name_the_member() {
        let mut all = BTreeMap::new();
        all.insert(
            "bad@file".to_string(),
            Middleware {
                add_prefix: Some(dynamic::AddPrefix::default()),
                ..Default::default()
            },
        );
        all.insert("c@file".to_string(), chain(&["bad"]));
        let err = build("c@file", &all["c@file"], &all).unwrap_err();
        assert_eq!(err.middleware, "bad@file");
    }

    #[test]
    fn resilience_kinds_build_and_unsupported_ones_do_not() {
        let empty = BTreeMap::new();
        let retry = Middleware {
            retry: Some(dynamic::Retry {
                attempts: 3,
                initial_interval: None,
            }),
            ..Default::default()
        };
        assert_eq!(build("r@file", &retry, &empty).unwrap().len(), 1);
        let limits = [
            Middleware {
                in_flight_req: Some(dynamic::InFlightReq {
                    amount: 2,
                    source_criterion: None,
                }),
                ..Default::default()
            },
            Middleware {
                rate_limit: Some(dynamic::RateLimit {
                    average: 5,
                    burst: 2,
                    ..Default::default()
                }),
                ..Default::default()
            },
            Middleware {
                circuit_breaker: Some(dynamic::CircuitBreaker {
                    expression: "NetworkErrorRatio() > 0.5".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        for mw in &limits {
            assert_eq!(
                build("l@file", mw, &empty).unwrap().len(),
                1,
                "{:?}",
                mw.kind()
            );
        }
        let broken = Middleware {
            circuit_breaker: Some(dynamic::CircuitBreaker::default()),
            ..Default::default()
        };
        let err = build("cb@file", &broken, &empty).unwrap_err();
        assert_eq!(err.middleware, "cb@file");
        assert!(err.message.contains("empty"), "{}", err.message);
        let grpc_web = Middleware {
            grpc_web: Some(Unsupported(serde_json::json!({"allowOrigins": ["*"]}))),
            ..Default::default()
        };
        let err = build("gw@file", &grpc_web, &empty).unwrap_err();
        assert_eq!(
            err.to_string(),
            "middleware `gw@file`: middleware type `grpcWeb` is not supported by escale"
        );
        let err = build("none@file", &Middleware::default(), &empty).unwrap_err();
        assert_eq!(err.message, "no middleware type is set");
        let two = Middleware {
            strip_prefix: strip("/a").strip_prefix,
            add_prefix: Some(dynamic::AddPrefix {
                prefix: "/b".into(),
            }),
            ..Default::default()
        };
        assert!(
            build("two@file", &two, &empty)
                .unwrap_err()
                .message
                .starts_with("multi-types")
        );
    }

    /// Every request-rewriting kind, configured so that most requests hit its rewrite.
    fn rewriting_kinds() -> Vec<Middleware> {
        vec![
            Middleware {
                add_prefix: Some(dynamic::AddPrefix {
                    prefix: "/p re".into(),
                }),
                ..Default::default()
            },
            strip("/"),
            Middleware {
                strip_prefix: Some(dynamic::StripPrefix {
                    prefixes: vec!["/a".into()],
                    force_slash: Some(true),
                }),
                ..Default::default()
            },
            Middleware {
                strip_prefix_regex: Some(dynamic::StripPrefixRegex {
                    regex: vec!["(?s)^/.".into()],
                }),
                ..Default::default()
            },
            Middleware {
                replace_path_regex: Some(dynamic::ReplacePathRegex {
                    regex: "(.)(.?)".into(),
                    replacement: "$2%$1".into(),
                }),
                ..Default::default()
            },
            Middleware {
                replace_path_regex: Some(dynamic::ReplacePathRegex {
                    regex: "^(.*)$".into(),
                    replacement: "$1/..".into(),
                }),
                ..Default::default()
            },
            Middleware {
                redirect_regex: Some(dynamic::RedirectRegex {
                    regex: "^(.*)://([^/]*)(.*)$".into(),
                    replacement: "$1://$3$2#%".into(),
                    permanent: false,
                }),
                ..Default::default()
            },
            Middleware {
                redirect_scheme: Some(dynamic::RedirectScheme {
                    scheme: "https".into(),
                    port: Some("8443".into()),
                    permanent: false,
                }),
                ..Default::default()
            },
            Middleware {
                headers: Some(dynamic::Headers {
                    custom_request_headers: [("Host".to_string(), "h:1".to_string())].into(),
                    access_control_allow_origin_list: vec!["*".into()],
                    access_control_allow_credentials: Some(true),
                    add_vary_header: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Middleware {
                basic_auth: Some(dynamic::BasicAuth {
                    users: vec!["u:{SHA}qvTGHdzF6KLavt4PO0gs2a6pQ00=".into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
            Middleware {
                replace_path: Some(dynamic::ReplacePath {
                    path: "/%41 b".into(),
                }),
                ..Default::default()
            },
        ]
    }

    fn all_layers() -> Vec<Arc<dyn Layer>> {
        let empty = BTreeMap::new();
        rewriting_kinds()
            .iter()
            .flat_map(|mw| build("any@file", mw, &empty).unwrap())
            .collect()
    }

    #[test]
    fn no_layer_panics_on_odd_requests() {
        // A small deterministic generator: paths made of the bytes that
        // path code trips on, plus fixed nasty targets.
        let alphabet: &[&str] = &[
            "/", "%", "%2", "%2F", "%2e", ".", "..", "a", "é", "%FF", "%00", "?", ";", "~", "'",
            "[", "]", "*", "%zz", "%0A",
        ];
        let mut targets: Vec<String> = [
            "*",
            "/",
            "//",
            "/.",
            "/..",
            "/%",
            "example.com:443",
            "http://h/a/../b?q",
            "https://[::1]:8443/%2e%2e/",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        targets.push(format!("/{}", "a".repeat(60_000)));
        let mut seed: u32 = 0x9e37_79b9;
        for _ in 0..1500 {
            let mut t = String::from("/");
            for _ in 0..(seed % 9) {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                t.push_str(alphabet[(seed >> 16) as usize % alphabet.len()]);
            }
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            targets.push(t);
        }
        let layers = all_layers();
        let mut answered = 0;
        for target in &targets {
            let Ok(req) = http::Request::builder().uri(target.as_str()).body(()) else {
                continue;
            };
            for layer in &layers {
                let (mut parts, ()) = req.clone().into_parts();
                parts.headers.insert(
                    http::header::HOST,
                    http::HeaderValue::from_bytes(b"h\xe9:80").unwrap(),
                );
                parts.headers.insert(
                    http::header::AUTHORIZATION,
                    http::HeaderValue::from_static("Basic dTpoZWxsbw=="),
                );
                let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), "https");
                match layer.on_request(&mut parts, &mut ctx) {
                    Flow::Continue => {
                        assert!(
                            parts.uri.path().starts_with('/')
                                || parts.uri.path() == "*"
                                || parts.uri.path().is_empty(),
                            "{target}: {}",
                            parts.uri
                        );
                    }
                    Flow::Respond(res) => {
                        answered += 1;
                        let (mut res, _) = res.into_parts();
                        layer.on_response(&mut res, &ctx);
                    }
                    // The basicAuth layer here has a SHA user: nothing waits.
                    Flow::Wait(_) => panic!("{target}: no layer here needs slow work"),
                }
                let mut res = http::Response::builder()
                    .header("vary", http::HeaderValue::from_bytes(b"\xff").unwrap())
                    .body(())
                    .unwrap()
                    .into_parts()
                    .0;
                layer.on_response(&mut res, &ctx);
            }
        }
        // The generator does reach the error paths.
        assert!(answered > 100, "{answered}");
    }

    #[test]
    fn every_supported_kind_builds() {
        let empty = BTreeMap::new();
        for mw in &rewriting_kinds() {
            let layers = build("m@file", mw, &empty).unwrap();
            assert_eq!(layers.len(), 1, "{:?}", mw.kind());
        }
    }
}
