//! `digestAuth`: HTTP Digest authentication (RFC 2617: MD5, `qop=auth`),
//! as Traefik's (its fork of go-http-auth). Users are `user:realm:HA1`
//! lines, as `htdigest` writes them.
//!
//! A client without valid credentials gets a 401 with a fresh nonce; the
//! nonces handed out are remembered (about a thousand, the oldest dropped
//! first) with the last nonce count each was used with, so a replayed
//! count is refused, and an older one gets `stale="true"`, for the client
//! to send again without asking its user. The nonces and the `opaque`
//! value outlive configuration reloads while the middleware's settings
//! stay the same (Traefik starts over on every change).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue, Response, request};
use md5::{Digest as _, Md5};

use super::basic_auth::{DEFAULT_REALM, header_field, read_users_file, unauthorized};
use super::gourl::GoPath;
use super::htpasswd::constant_time_eq;
use super::{Flow, Layer, MiddlewareError, RequestCtx, persist};
use crate::config::dynamic;
use crate::proxy::body::Body;

/// go-http-auth's client cache: past size + tolerance, the oldest
/// 2 × tolerance nonces are forgotten.
const CACHE_SIZE: usize = 1000;
const CACHE_TOLERANCE: usize = 100;

#[derive(Debug)]
pub struct DigestAuth {
    /// HA1 by `user:realm`.
    users: HashMap<String, String>,
    realm: String,
    header_field: Option<HeaderName>,
    remove_header: bool,
    sessions: Arc<Sessions>,
}

/// The nonces handed out, and this middleware's `opaque`.
#[derive(Debug)]
struct Sessions {
    opaque: String,
    nonces: Mutex<HashMap<String, Nonce>>,
}

#[derive(Debug)]
struct Nonce {
    /// The last nonce count accepted; 0 before the first.
    count: u64,
    last_seen: Instant,
}

/// Why credentials were not accepted.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Invalid,
    /// Right credentials, with a nonce count older than one already used.
    Stale,
}

fn md5_hex(data: &str) -> String {
    Md5::digest(data.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 12 random bytes in base64, as go-http-auth's `RandomKey`.
fn random_key() -> String {
    let mut bytes = [0u8; 12];
    // The system's random source does not fail on Linux; zeros would
    // only make nonces guessable, never let a wrong password through.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// go-http-auth's `ParseList` and `ParsePairs`: comma-separated
/// `key=value` items, commas inside quotes kept, values unquoted.
fn parse_params(value: &str) -> HashMap<&str, &str> {
    let mut items = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = value[start..].trim();
    if !last.is_empty() {
        items.push(last);
    }
    items
        .into_iter()
        .map(|item| match item.split_once('=') {
            None => (item, ""),
            Some((k, v)) => {
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                (k, v)
            }
        })
        .collect()
}

impl DigestAuth {
    pub fn new(name: &str, cfg: &dynamic::DigestAuth) -> Result<Self, MiddlewareError> {
        let mut lines = match cfg.users_file.as_deref().filter(|f| !f.is_empty()) {
            Some(path) => read_users_file(name, "digestAuth", path)?,
            None => Vec::new(),
        };
        // Inline users come last, and win.
        lines.extend(cfg.users.iter().cloned());
        let mut users = HashMap::new();
        for line in &lines {
            let parts: Vec<&str> = line.split(':').collect();
            let [user, realm, ha1] = parts[..] else {
                let who = parts.first().copied().unwrap_or("");
                return Err(MiddlewareError::new(
                    name,
                    format!("digestAuth: entry for `{who}` is not `user:realm:HA1`"),
                ));
            };
            users.insert(format!("{user}:{realm}"), ha1.to_owned());
        }
        if users.is_empty() {
            return Err(MiddlewareError::new(name, "digestAuth: no users found"));
        }
        let realm = cfg
            .realm
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or(DEFAULT_REALM)
            .to_owned();
        if HeaderValue::from_str(&format!("Digest realm=\"{realm}\"")).is_err() {
            return Err(MiddlewareError::new(
                name,
                format!("digestAuth.realm: `{realm}` cannot be sent in a header"),
            ));
        }
        let header_field = header_field(name, "digestAuth", cfg.header_field.as_deref())?;
        let sessions = persist::shared("digestAuth", name, format!("{cfg:?}"), || Sessions {
            opaque: random_key(),
            nonces: Mutex::new(HashMap::new()),
        });
        Ok(DigestAuth {
            users,
            realm,
            header_field,
            remove_header: cfg.remove_header,
            sessions,
        })
    }

    /// go-http-auth's `CheckAuth`: the user, or why not.
    fn check(&self, req: &request::Parts) -> Result<String, Refusal> {
        let header = req
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(Refusal::Invalid)?;
        let params = match header.split_once(' ') {
            Some(("Digest", rest)) => parse_params(rest.trim()),
            _ => return Err(Refusal::Invalid),
        };
        let param = |k: &str| params.get(k).copied().unwrap_or("");
        let algorithm = params.get("algorithm").copied().unwrap_or("MD5");
        if param("opaque") != self.sessions.opaque || algorithm != "MD5" || param("qop") != "auth" {
            return Err(Refusal::Invalid);
        }
        let uri = param("uri");
        let request_uri = req.uri.path_and_query().map_or("/", |p| p.as_str());
        if uri != request_uri && !path_prefixes(uri, req.uri.path()) {
            return Err(Refusal::Invalid);
        }
        let user = param("username");
        let ha1 = self
            .users
            .get(&format!("{user}:{}", self.realm))
            .map_or("", String::as_str);
        let ha2 = md5_hex(&format!("{}:{uri}", req.method));
        let expected = md5_hex(&format!(
            "{ha1}:{}:{}:{}:{}:{ha2}",
            param("nonce"),
            param("nc"),
            param("cnonce"),
            param("qop")
        ));
        if !constant_time_eq(expected.as_bytes(), param("response").as_bytes()) {
            return Err(Refusal::Invalid);
        }
        let count = u64::from_str_radix(param("nc"), 16).map_err(|_| Refusal::Invalid)?;
        let mut nonces = self
            .sessions
            .nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let nonce = nonces.get_mut(param("nonce")).ok_or(Refusal::Invalid)?;
        if nonce.count != 0 {
            if count == nonce.count {
                return Err(Refusal::Invalid); // a replay
            }
            if count < nonce.count {
                return Err(Refusal::Stale);
            }
        }
        nonce.count = count;
        nonce.last_seen = Instant::now();
        Ok(user.to_owned())
    }

    /// go-http-auth's `RequireAuth`: a 401 with a fresh nonce.
    fn challenge(&self, stale: bool) -> Response<Body> {
        let nonce = random_key();
        {
            let mut nonces = self
                .sessions
                .nonces
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if nonces.len() > CACHE_SIZE + CACHE_TOLERANCE {
                let mut ages: Vec<(Instant, String)> = nonces
                    .iter()
                    .map(|(n, c)| (c.last_seen, n.clone()))
                    .collect();
                ages.sort();
                for (_, old) in ages.into_iter().take(CACHE_TOLERANCE * 2) {
                    nonces.remove(&old);
                }
            }
            nonces.insert(
                nonce.clone(),
                Nonce {
                    count: 0,
                    last_seen: Instant::now(),
                },
            );
        }
        let stale = if stale { "stale=\"true\", " } else { "" };
        let challenge = format!(
            "Digest realm=\"{}\", nonce=\"{nonce}\", opaque=\"{}\", {stale}algorithm=\"MD5\", qop=\"auth\"",
            self.realm, self.sessions.opaque
        );
        // The realm was checked when built; the nonce and opaque are base64.
        unauthorized(HeaderValue::from_str(&challenge).ok())
    }
}

/// go-http-auth also takes a `uri` whose path is a prefix of the request's
/// (decoded) path.
fn path_prefixes(uri: &str, request_path: &str) -> bool {
    let path_of = |s: &str| {
        let s = s.split(['?', '#']).next().unwrap_or("");
        GoPath::parse(s).ok().map(|p| p.path)
    };
    let (Some(auth), Some(req)) = (path_of(uri), path_of(request_path)) else {
        return false;
    };
    req.starts_with(&auth)
}

impl Layer for DigestAuth {
    fn on_request(&self, req: &mut request::Parts, _ctx: &mut RequestCtx) -> Flow {
        match self.check(req) {
            Err(refusal) => Flow::Respond(self.challenge(refusal == Refusal::Stale)),
            Ok(user) => {
                if let Some(field) = &self.header_field {
                    match HeaderValue::from_str(&user) {
                        Ok(v) => {
                            req.headers.insert(field.clone(), v);
                        }
                        Err(_) => return Flow::Respond(self.challenge(false)),
                    }
                }
                if self.remove_header {
                    req.headers.remove(AUTHORIZATION);
                }
                Flow::Continue
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
    use std::net::Ipv4Addr;

    /// `htdigest` for alice / realm traefik / password "secret".
    fn alice() -> String {
        format!("alice:traefik:{}", md5_hex("alice:traefik:secret"))
    }

    fn build(users: &[String]) -> DigestAuth {
        DigestAuth::new(
            "d@file",
            &dynamic::DigestAuth {
                users: users.to_vec(),
                header_field: Some("X-User".into()),
                remove_header: true,
                ..Default::default()
            },
        )
        .unwrap()
    }

    fn challenge_params(res: &Response<Body>) -> HashMap<String, String> {
        let v = res.headers()[WWW_AUTHENTICATE].to_str().unwrap();
        let rest = v.strip_prefix("Digest ").unwrap();
        parse_params(rest)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// What a browser sends for `uri` after the challenge.
    fn answer(c: &HashMap<String, String>, password: &str, uri: &str, nc: u32) -> String {
        let ha1 = md5_hex(&format!("alice:traefik:{password}"));
        let ha2 = md5_hex(&format!("GET:{uri}"));
        let nc = format!("{nc:08x}");
        let response = md5_hex(&format!("{ha1}:{}:{nc}:abcdef:auth:{ha2}", c["nonce"]));
        format!(
            "Digest username=\"alice\", realm=\"traefik\", nonce=\"{}\", uri=\"{uri}\", algorithm=MD5, response=\"{response}\", opaque=\"{}\", qop=auth, nc={nc}, cnonce=\"abcdef\"",
            c["nonce"], c["opaque"]
        )
    }

    fn run(mw: &DigestAuth, uri: &str, authorization: Option<&str>) -> (Flow, request::Parts) {
        let mut b = http::Request::builder().uri(uri);
        if let Some(a) = authorization {
            b = b.header(AUTHORIZATION, a);
        }
        let mut req = b.body(()).unwrap().into_parts().0;
        let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), "http");
        let flow = mw.on_request(&mut req, &mut ctx);
        (flow, req)
    }

    fn refused(flow: Flow) -> Response<Body> {
        match flow {
            Flow::Respond(res) => res,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn challenge_then_credentials_then_replays_and_stale_counts() {
        let mw = build(&[alice()]);
        let res = refused(run(&mw, "/app?x=1", None).0);
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()[CONTENT_TYPE], "text/plain");
        let c = challenge_params(&res);
        assert_eq!(c["realm"], "traefik");
        assert_eq!(
            (c["algorithm"].as_str(), c["qop"].as_str()),
            ("MD5", "auth")
        );
        assert_eq!(c["nonce"].len(), 16);

        let (flow, req) = run(&mw, "/app?x=1", Some(&answer(&c, "secret", "/app?x=1", 1)));
        assert!(matches!(flow, Flow::Continue), "{flow:?}");
        assert_eq!(req.headers["x-user"], "alice");
        assert!(req.headers.get(AUTHORIZATION).is_none(), "removeHeader");

        // The next count passes; the same count again is a replay.
        let second = answer(&c, "secret", "/app?x=1", 2);
        assert!(matches!(
            run(&mw, "/app?x=1", Some(&second)).0,
            Flow::Continue
        ));
        let replay = refused(run(&mw, "/app?x=1", Some(&second)).0);
        assert!(!challenge_params(&replay).contains_key("stale"));
        // An older count: stale, so the browser retries on its own.
        let older = refused(run(&mw, "/app?x=1", Some(&answer(&c, "secret", "/app?x=1", 1))).0);
        assert_eq!(challenge_params(&older)["stale"], "true");
    }

    #[test]
    fn wrong_password_unknown_nonce_or_other_uri_are_refused() {
        let mw = build(&[alice()]);
        let c = challenge_params(&refused(run(&mw, "/", None).0));
        for (uri, auth) in [
            ("/", answer(&c, "wrong", "/", 1)),
            ("/other", answer(&c, "secret", "/app", 1)),
            ("/", "Basic YWxpY2U6c2VjcmV0".to_string()),
            (
                "/",
                answer(&c, "secret", "/", 1).replace(&c["opaque"], "forged"),
            ),
        ] {
            let res = refused(run(&mw, uri, Some(&auth)).0);
            assert_eq!(res.status(), 401, "{auth}");
        }
        let mut unknown = c.clone();
        unknown.insert("nonce".into(), "bm90IGhhbmRlZCBvdXQ=".into());
        assert!(matches!(
            run(&mw, "/", Some(&answer(&unknown, "secret", "/", 1))).0,
            Flow::Respond(_)
        ));
        // A uri whose path is a prefix of the request's passes, as in go-http-auth.
        assert!(matches!(
            run(&mw, "/app/deep", Some(&answer(&c, "secret", "/app", 1))).0,
            Flow::Continue
        ));
    }

    #[test]
    fn sessions_survive_a_rebuild_with_the_same_settings() {
        let a = build(&[alice()]);
        let c = challenge_params(&refused(run(&a, "/", None).0));
        let rebuilt = build(&[alice()]);
        assert!(matches!(
            run(&rebuilt, "/", Some(&answer(&c, "secret", "/", 1))).0,
            Flow::Continue
        ));
    }

    #[test]
    fn bad_users_and_settings_name_the_problem() {
        let err = |users: &[&str], realm: Option<&str>| {
            DigestAuth::new(
                "d@file",
                &dynamic::DigestAuth {
                    users: users.iter().map(|s| s.to_string()).collect(),
                    realm: realm.map(str::to_owned),
                    ..Default::default()
                },
            )
            .unwrap_err()
            .message
        };
        assert_eq!(
            err(&["bob:hash"], None),
            "digestAuth: entry for `bob` is not `user:realm:HA1`"
        );
        assert_eq!(err(&[], None), "digestAuth: no users found");
        assert!(err(&["a:b:c"], Some("bad\nrealm")).starts_with("digestAuth.realm"));
    }

    #[test]
    fn the_nonce_cache_is_bounded() {
        let mw = build(&[alice()]);
        for _ in 0..(CACHE_SIZE + CACHE_TOLERANCE + 50) {
            let _ = run(&mw, "/", None);
        }
        let held = mw.sessions.nonces.lock().unwrap().len();
        assert!(held <= CACHE_SIZE + CACHE_TOLERANCE + 1, "{held}");
    }

    #[test]
    fn params_parse_as_go_http_auth() {
        let p = parse_params(r#"a="x, y", b=2,c , d="""#);
        assert_eq!(p["a"], "x, y");
        assert_eq!(p["b"], "2");
        assert_eq!(p["c"], "");
        assert_eq!(p["d"], "");
    }
}
