//! `basicAuth`: checks `Authorization: Basic` against htpasswd-style users,
//! answering 401 with a `WWW-Authenticate` challenge as Traefik does.
//!
//! bcrypt costs tens of milliseconds by design, so it runs on a blocking
//! thread while the request waits (`Flow::Wait`), a verified header value
//! is remembered (by a salted digest, never the password) and a returning
//! client skips the hash. Failures are never remembered. An unknown user
//! still costs one hash check, so that timing does not reveal which users
//! exist.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Response, StatusCode, request};
use sha1::{Digest as _, Sha1};

use super::htpasswd::{Hash, constant_time_eq};
use super::{Deferred, Finish, Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;
use crate::proxy::body::Body;

/// Go's `base64.StdEncoding`: padding required, stray trailing bits allowed.
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

pub(super) const DEFAULT_REALM: &str = "traefik";
const CACHE_CAPACITY: usize = 1024;

/// Verified `Authorization` values, by a keyed hash of the value.
struct CredentialCache {
    hasher: RandomState,
    salt: [u8; 16],
    entries: Mutex<HashMap<u64, CachedCredential>>,
}

struct CachedCredential {
    digest: [u8; 20],
    user: String,
}

impl CredentialCache {
    fn new() -> Self {
        // Two independently keyed hashers give 128 random bits.
        let mut salt = [0u8; 16];
        salt[..8].copy_from_slice(&RandomState::new().hash_one(0u8).to_le_bytes());
        salt[8..].copy_from_slice(&RandomState::new().hash_one(1u8).to_le_bytes());
        CredentialCache {
            hasher: RandomState::new(),
            salt,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, value: &[u8]) -> [u8; 20] {
        let mut d = Sha1::new();
        d.update(self.salt);
        d.update(value);
        d.finalize().into()
    }

    fn get(&self, value: &[u8]) -> Option<String> {
        let key = self.hasher.hash_one(value);
        let digest = self.digest(value);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&key)
            .filter(|c| constant_time_eq(&c.digest, &digest))
            .map(|c| c.user.clone())
    }

    fn insert(&self, value: &[u8], user: &str) {
        let key = self.hasher.hash_one(value);
        let entry = CachedCredential {
            digest: self.digest(value),
            user: user.to_owned(),
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_CAPACITY && !entries.contains_key(&key) {
            // Evicting any one entry keeps this O(1); a client evicted by
            // mistake only pays one more hash.
            if let Some(&victim) = entries.keys().next() {
                entries.remove(&victim);
            }
        }
        entries.insert(key, entry);
    }

    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache")
            .field("entries", &self.len())
            .finish()
    }
}

#[derive(Debug)]
pub struct BasicAuth {
    name: String,
    users: HashMap<String, Hash>,
    /// Checked for unknown users, so they cost as much as known ones.
    decoy: Hash,
    /// Shared with the requests waiting for a slow hash.
    admission: Arc<Admission>,
}

/// What follows a check: the request let through (and marked) or refused.
#[derive(Debug)]
struct Admission {
    challenge: HeaderValue,
    header_field: Option<HeaderName>,
    remove_header: bool,
    cache: CredentialCache,
}

/// What a check of an `Authorization` value comes to.
enum Verdict {
    Pass(String),
    Fail,
    /// A slow hash to verify first, for a known user (or the decoy).
    Slow {
        hash: Hash,
        password: Vec<u8>,
        user: Option<String>,
    },
}

/// The `headerField` of an auth middleware (`kind`), as a header name.
pub(super) fn header_field(
    name: &str,
    kind: &str,
    field: Option<&str>,
) -> Result<Option<HeaderName>, MiddlewareError> {
    field
        .filter(|h| !h.is_empty())
        .map(|h| {
            HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                MiddlewareError::new(
                    name,
                    format!("{kind}.headerField: invalid header name `{h}`"),
                )
            })
        })
        .transpose()
}

/// Traefik's `getLinesFromFile`: trimmed lines, without blanks and comments.
pub(super) fn read_users_file(
    name: &str,
    kind: &str,
    path: &str,
) -> Result<Vec<String>, MiddlewareError> {
    let data = std::fs::read(path).map_err(|e| {
        MiddlewareError::new(name, format!("{kind}.usersFile: cannot read `{path}`: {e}"))
    })?;
    Ok(String::from_utf8_lossy(&data)
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

impl BasicAuth {
    /// The qualified name this layer was built for.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn new(name: &str, cfg: &dynamic::BasicAuth) -> Result<Self, MiddlewareError> {
        let file = cfg.users_file.as_deref().filter(|f| !f.is_empty());
        let mut entries: Vec<(String, &str)> = Vec::new();
        let file_lines = match file {
            Some(path) => read_users_file(name, "basicAuth", path)?,
            None => Vec::new(),
        };
        let file_field = format!("basicAuth.usersFile `{}`", file.unwrap_or(""));
        for line in &file_lines {
            entries.push((line.clone(), file_field.as_str()));
        }
        for user in &cfg.users {
            entries.push((user.clone(), "basicAuth.users"));
        }

        let mut users = HashMap::new();
        let mut decoy = None;
        for (entry, field) in &entries {
            let mut split = entry.split(':');
            let (Some(user), Some(secret), None) = (split.next(), split.next(), split.next())
            else {
                let who = entry.split(':').next().unwrap_or("");
                return Err(MiddlewareError::new(
                    name,
                    format!("{field}: entry for `{who}` is not `user:hash`"),
                ));
            };
            let hash = Hash::parse(secret)
                .map_err(|e| MiddlewareError::new(name, format!("{field}: user `{user}`: {e}")))?;
            decoy.get_or_insert_with(|| hash.clone());
            // Later entries win: inline users override the file.
            users.insert(user.to_owned(), hash);
        }
        let Some(decoy) = decoy else {
            let where_ = file.map_or(String::new(), |f| format!(" in `{f}`"));
            return Err(MiddlewareError::new(
                name,
                format!("basicAuth: no users found{where_}"),
            ));
        };

        let realm = cfg
            .realm
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or(DEFAULT_REALM);
        let challenge =
            HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")).map_err(|_| {
                MiddlewareError::new(
                    name,
                    format!("basicAuth.realm: `{realm}` cannot be sent in a header"),
                )
            })?;
        let header_field = header_field(name, "basicAuth", cfg.header_field.as_deref())?;

        Ok(BasicAuth {
            name: name.to_owned(),
            users,
            decoy,
            admission: Arc::new(Admission {
                challenge,
                header_field,
                remove_header: cfg.remove_header,
                cache: CredentialCache::new(),
            }),
        })
    }

    /// Checks an `Authorization` value, at once unless the hash is slow.
    fn authenticate(&self, header: &[u8]) -> Verdict {
        if let Some(user) = self.admission.cache.get(header) {
            return Verdict::Pass(user);
        }
        let Some((user, password)) = parse_basic(header) else {
            return Verdict::Fail;
        };
        let known = std::str::from_utf8(&user)
            .ok()
            .and_then(|u| self.users.get_key_value(u));
        let hash = known.map_or(&self.decoy, |(_, h)| h);
        if hash.is_slow() {
            return Verdict::Slow {
                hash: hash.clone(),
                password,
                user: known.map(|(u, _)| u.clone()),
            };
        }
        match known {
            Some((user, _)) if hash.verify(&password) => {
                self.admission.cache.insert(header, user);
                Verdict::Pass(user.clone())
            }
            _ => Verdict::Fail,
        }
    }
}

impl Admission {
    /// Lets an authenticated request through, marked as the configuration says.
    fn admit(&self, req: &mut request::Parts, user: &str) -> Flow {
        if let Some(field) = &self.header_field {
            match HeaderValue::from_str(user) {
                Ok(v) => {
                    req.headers.insert(field.clone(), v);
                }
                // A configured user name no header can carry.
                Err(_) => return Flow::Respond(self.unauthorized()),
            }
        }
        if self.remove_header {
            req.headers.remove(AUTHORIZATION);
        }
        Flow::Continue
    }

    fn unauthorized(&self) -> Response<Body> {
        unauthorized(Some(self.challenge.clone()))
    }
}

/// go-http-auth's 401: its text, as plain text, with the challenge.
pub(super) fn unauthorized(challenge: Option<HeaderValue>) -> Response<Body> {
    let mut res = Response::new(Body::full("401 Unauthorized\n"));
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if let Some(challenge) = challenge {
        h.insert(WWW_AUTHENTICATE, challenge);
    }
    res
}

/// Go's `Request.BasicAuth` on a header value.
fn parse_basic(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    const PREFIX: &[u8] = b"Basic ";
    if value.len() < PREFIX.len() || !value[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let mut decoded = GO_STD.decode(&value[PREFIX.len()..]).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let password = decoded.split_off(colon + 1);
    decoded.truncate(colon);
    Some((decoded, password))
}

impl Layer for BasicAuth {
    fn on_request(&self, req: &mut request::Parts, _ctx: &mut RequestCtx) -> Flow {
        let Some(header) = req.headers.get(AUTHORIZATION) else {
            return Flow::Respond(self.admission.unauthorized());
        };
        match self.authenticate(header.as_bytes()) {
            Verdict::Pass(user) => self.admission.admit(req, &user),
            Verdict::Fail => Flow::Respond(self.admission.unauthorized()),
            Verdict::Slow {
                hash,
                password,
                user,
            } => {
                let header = header.clone();
                let admission = self.admission.clone();
                Flow::Wait(Deferred::new(async move {
                    // Tens of milliseconds: on a blocking thread, so the
                    // serving thread goes on with its other connections.
                    let ok = tokio::task::spawn_blocking(move || hash.verify(&password))
                        .await
                        .unwrap_or(false);
                    let finish: Finish = Box::new(move |req, _ctx| match user {
                        Some(user) if ok => {
                            admission.cache.insert(header.as_bytes(), &user);
                            admission.admit(req, &user)
                        }
                        _ => Flow::Respond(admission.unauthorized()),
                    });
                    finish
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::reqhead::tests::parts;
    use http_body_util::BodyExt;
    use std::io::Write;
    use std::net::Ipv4Addr;

    const TEST_APR1: &str = "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/";

    fn auth(cfg: dynamic::BasicAuth) -> BasicAuth {
        BasicAuth::new("auth@file", &cfg).unwrap()
    }

    fn users(list: &[&str]) -> dynamic::BasicAuth {
        dynamic::BasicAuth {
            users: list.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn basic(user: &str, password: &str) -> HeaderValue {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {token}")).unwrap()
    }

    fn run(mw: &BasicAuth, authorization: Option<HeaderValue>) -> (Flow, request::Parts) {
        let mut req = parts("/");
        if let Some(a) = authorization {
            req.headers.insert(AUTHORIZATION, a);
        }
        let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), "http");
        let mut flow = mw.on_request(&mut req, &mut ctx);
        if let Flow::Wait(deferred) = flow {
            flow = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(deferred.resolve(&mut req, &mut ctx));
        }
        (flow, req)
    }

    fn passes(mw: &BasicAuth, user: &str, password: &str) -> bool {
        matches!(run(mw, Some(basic(user, password))).0, Flow::Continue)
    }

    #[tokio::test]
    async fn challenge_matches_traefik() {
        let mw = auth(users(&[TEST_APR1]));
        let (Flow::Respond(res), _) = run(&mw, None) else {
            panic!("expected a 401");
        };
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[WWW_AUTHENTICATE], "Basic realm=\"traefik\"");
        assert_eq!(res.headers()[CONTENT_TYPE], "text/plain");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"401 Unauthorized\n");

        let mut cfg = users(&[TEST_APR1]);
        cfg.realm = Some("members only".into());
        let (Flow::Respond(res), _) = run(&auth(cfg), Some(basic("test", "nope"))) else {
            panic!("expected a 401");
        };
        assert_eq!(
            res.headers()[WWW_AUTHENTICATE],
            "Basic realm=\"members only\""
        );
    }

    #[test]
    fn every_hash_format_authenticates() {
        let mw = auth(users(&[
            "sha:{SHA}qvTGHdzF6KLavt4PO0gs2a6pQ00=",
            "apr:$apr1$a0j62R97$mYqFkloXH0/UOaUnAiV2b0",
            "bc:$2y$05$ih3C91zUBSTFcAh2mQnZYuob0UOZVEf16wl/ukgjDhjvj.xgM1WwS",
        ]));
        assert!(passes(&mw, "sha", "hello"));
        assert!(passes(&mw, "apr", "hello2"));
        assert!(passes(&mw, "bc", "hello3"));
        assert!(!passes(&mw, "bc", "hello2"));
        assert!(!passes(&mw, "nobody", "hello"));
        assert!(!passes(&mw, "sha", ""));
    }

    #[test]
    fn malformed_authorization_headers_are_refused() {
        let mw = auth(users(&[
            TEST_APR1,
            "test:{SHA}tESsBmE/yNY3lb6a0L6vVQEZNqw=",
        ]));
        let padded = HeaderValue::from_static("Basic dGVzdDp0ZXN0MQ==");
        assert!(matches!(run(&mw, Some(padded)).0, Flow::Continue));
        for bad in [
            &b"Digest blabla"[..],
            b"Basic !@#",
            b"Basic",
            b"Basic dGVzdA==",       // no colon
            b"Basic dGVzdDp0ZXN0MQ", // test:test1 without its padding
            b"Basic  dGVzdDp0ZXN0",  // two spaces
            b"Basic \xff\xfe",
        ] {
            let (flow, _) = run(&mw, Some(HeaderValue::from_bytes(bad).unwrap()));
            assert!(matches!(flow, Flow::Respond(_)), "{bad:?}");
        }
        // The scheme is case-insensitive, as in Go.
        let ok = HeaderValue::from_static("bAsIc dGVzdDp0ZXN0MQ==");
        assert!(matches!(run(&mw, Some(ok)).0, Flow::Continue));
        // A password may contain colons: the user name ends at the first.
        let mw = auth(users(&["u:{SHA}3OptnM09ILoVSfbZtd3mB0IViII="]));
        assert!(passes(&mw, "u", "a:b"));
        assert!(!passes(&mw, "u", "a"));
    }

    #[test]
    fn header_field_and_remove_header() {
        let mut cfg = users(&[TEST_APR1]);
        cfg.header_field = Some("X-WebAuth-User".into());
        cfg.remove_header = true;
        let mw = auth(cfg);
        let mut req = parts("/");
        req.headers.insert(AUTHORIZATION, basic("test", "test"));
        req.headers
            .insert("x-webauth-user", HeaderValue::from_static("spoofed"));
        let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), "http");
        assert!(matches!(mw.on_request(&mut req, &mut ctx), Flow::Continue));
        let values: Vec<_> = req.headers.get_all("x-webauth-user").iter().collect();
        assert_eq!(values, ["test"]);
        assert!(req.headers.get(AUTHORIZATION).is_none());

        // Without removeHeader the credentials go to the backend.
        let mw = auth(users(&[TEST_APR1]));
        let (flow, req) = run(&mw, Some(basic("test", "test")));
        assert!(matches!(flow, Flow::Continue));
        assert!(req.headers.get(AUTHORIZATION).is_some());
    }

    #[test]
    fn users_file_merges_and_inline_users_win() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "#Comment\n  test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/  \n\ntest2:$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0"
        )
        .unwrap();
        let cfg = dynamic::BasicAuth {
            users: vec!["test2:$apr1$mK.GtItK$ncnLYvNLek0weXdxo68690".into()],
            users_file: Some(file.path().to_string_lossy().into_owned()),
            ..Default::default()
        };
        let mw = auth(cfg);
        assert!(passes(&mw, "test", "test"));
        assert!(passes(&mw, "test2", "overridden"));
        assert!(!passes(&mw, "test2", "test2"));
    }

    #[test]
    fn build_errors_name_the_problem() {
        let err = BasicAuth::new(
            "auth@file",
            &dynamic::BasicAuth {
                users_file: Some("/nonexistent/htpasswd".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            err.message
                .starts_with("basicAuth.usersFile: cannot read `/nonexistent/htpasswd`"),
            "{err}"
        );

        let err = BasicAuth::new("auth@file", &dynamic::BasicAuth::default()).unwrap_err();
        assert_eq!(err.message, "basicAuth: no users found");

        let err = BasicAuth::new("auth@file", &users(&["bob:plain"])).unwrap_err();
        assert!(
            err.message
                .starts_with("basicAuth.users: user `bob`: unrecognized password hash"),
            "{err}"
        );

        let err = BasicAuth::new("auth@file", &users(&["bob"])).unwrap_err();
        assert_eq!(
            err.message,
            "basicAuth.users: entry for `bob` is not `user:hash`"
        );
        let err = BasicAuth::new("auth@file", &users(&["bob:a:b"])).unwrap_err();
        assert!(!err.message.contains("a:b"), "hash leaked: {err}");

        let mut cfg = users(&[TEST_APR1]);
        cfg.header_field = Some("bad header".into());
        assert!(
            BasicAuth::new("auth@file", &cfg)
                .unwrap_err()
                .message
                .contains("headerField")
        );
        let mut cfg = users(&[TEST_APR1]);
        cfg.realm = Some("line\nbreak".into());
        assert!(
            BasicAuth::new("auth@file", &cfg)
                .unwrap_err()
                .message
                .contains("basicAuth.realm")
        );
    }

    #[test]
    fn verified_credentials_are_cached_and_failures_are_not() {
        let mw = auth(users(&[
            "bc:$2y$05$ih3C91zUBSTFcAh2mQnZYuob0UOZVEf16wl/ukgjDhjvj.xgM1WwS",
        ]));
        assert!(!passes(&mw, "bc", "wrong"));
        assert_eq!(mw.admission.cache.len(), 0);
        assert!(passes(&mw, "bc", "hello3"));
        assert_eq!(mw.admission.cache.len(), 1);
        assert!(passes(&mw, "bc", "hello3"));
        assert_eq!(mw.admission.cache.len(), 1);
        assert!(!passes(&mw, "bc", "hello4"));
        assert_eq!(mw.admission.cache.len(), 1);
        // The cache is consulted before any hash: a (planted) entry is
        // enough to pass, which is what spares returning clients bcrypt.
        mw.admission
            .cache
            .insert(basic("bc", "planted").as_bytes(), "bc");
        assert!(passes(&mw, "bc", "planted"));
    }

    #[test]
    fn cache_is_bounded() {
        let cache = CredentialCache::new();
        for i in 0..CACHE_CAPACITY + 50 {
            cache.insert(format!("Basic {i}").as_bytes(), "u");
        }
        assert_eq!(cache.len(), CACHE_CAPACITY);
        let last = format!("Basic {}", CACHE_CAPACITY + 49);
        assert_eq!(cache.get(last.as_bytes()).as_deref(), Some("u"));
        assert_eq!(cache.get(b"Basic never"), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bcrypt_waits_without_holding_up_the_thread() {
        let mw = auth(users(&[
            "bc:$2y$05$ih3C91zUBSTFcAh2mQnZYuob0UOZVEf16wl/ukgjDhjvj.xgM1WwS",
        ]));
        let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            }
        });
        for (user, password, admitted) in [("bc", "hello3", true), ("nobody", "hello3", false)] {
            let mut req = parts("/");
            req.headers.insert(AUTHORIZATION, basic(user, password));
            let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), "http");
            let Flow::Wait(deferred) = mw.on_request(&mut req, &mut ctx) else {
                panic!("a bcrypt check must not run on the serving thread");
            };
            let flow = deferred.resolve(&mut req, &mut ctx).await;
            assert_eq!(matches!(flow, Flow::Continue), admitted, "{user}");
        }
        // The thread served its other task meanwhile. Not asserted per hash:
        // on a loaded machine a hash may be done before its first poll.
        assert!(ticks.load(std::sync::atomic::Ordering::Relaxed) > 0);
        ticker.abort();
        // Verified once, then remembered: no more waiting.
        assert!(passes(&mw, "bc", "hello3"));
        let (flow, _) = {
            let mut req = parts("/");
            req.headers.insert(AUTHORIZATION, basic("bc", "hello3"));
            let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), "http");
            (mw.on_request(&mut req, &mut ctx), req)
        };
        assert!(matches!(flow, Flow::Continue));
    }
}
