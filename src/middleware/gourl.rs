//! Just enough of Go's `net/url` to rewrite paths and `Location`s the way
//! Traefik does.
//!
//! Go keeps two forms of a path: the decoded `Path` and, when the client's
//! encoding differs from Go's default one, the `RawPath` as sent. Traefik's
//! middlewares edit both and then serialize with `EscapedPath`, so the
//! encoding a client chose (`%2F`, ...) survives a strip or a prefix, while a
//! path Go considers badly encoded is re-encoded. [`GoPath`] mirrors that
//! pair so each middleware can follow Traefik's code step by step.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::percent::{decode, hex_value, is_sub_delim};

/// Which URL component a byte is escaped for (Go's `encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Fragment,
}

/// A bad `%` sequence, printed as Go prints it (`invalid URL escape "%zz"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscapeError {
    #[error("invalid URL escape {0:?}")]
    Escape(String),
    #[error("invalid character {0:?} in host name")]
    Host(String),
}

fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if mode == Mode::Host
        && (is_sub_delim(c) || matches!(c, b':' | b'[' | b']' | b'<' | b'>' | b'"'))
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            // Go only escapes `?` in a path: the rest keep their meaning.
            Mode::Path => return c == b'?',
            Mode::Fragment => return false,
            Mode::Host => {}
        },
        _ => {}
    }
    if mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*') {
        return false;
    }
    true
}

fn unescape_mode(s: &str, mode: Mode) -> Result<Cow<'_, [u8]>, EscapeError> {
    let b = s.as_bytes();
    let mut has_escape = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let ok = i + 2 < b.len()
                    && hex_value(b[i + 1]).is_some()
                    && hex_value(b[i + 2]).is_some();
                if !ok {
                    let end = (i + 3).min(b.len());
                    return Err(EscapeError::Escape(
                        String::from_utf8_lossy(&b[i..end]).into_owned(),
                    ));
                }
                // In a host, %-encoding is only for non-ASCII bytes (and %25
                // for IPv6 zones), as in Go.
                if mode == Mode::Host
                    && hex_value(b[i + 1]).unwrap_or(0) < 8
                    && &b[i..i + 3] != b"%25"
                {
                    return Err(EscapeError::Escape(
                        String::from_utf8_lossy(&b[i..i + 3]).into_owned(),
                    ));
                }
                has_escape = true;
                i += 3;
            }
            c => {
                if mode == Mode::Host && c < 0x80 && should_escape(c, mode) {
                    return Err(EscapeError::Host((c as char).to_string()));
                }
                i += 1;
            }
        }
    }
    if !has_escape {
        return Ok(Cow::Borrowed(b));
    }
    // Validated above, so decoding cannot fail.
    decode(s, |_| false, false).ok_or_else(|| EscapeError::Escape(s.to_owned()))
}

/// Go's `PathUnescape`.
pub fn unescape_path(s: &str) -> Result<Cow<'_, [u8]>, EscapeError> {
    unescape_mode(s, Mode::Path)
}

fn escape_mode(s: &[u8], mode: Mode) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s {
        if should_escape(c, mode) {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{c:02X}");
        } else {
            out.push(c as char);
        }
    }
    out
}

/// Go's `url.QueryEscape`: all but letters, digits and `-_.~` is escaped,
/// and a space becomes `+`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        match c {
            b' ' => out.push('+'),
            c if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') => {
                out.push(c as char)
            }
            // Writing to a String cannot fail.
            c => {
                let _ = write!(out, "%{c:02X}");
            }
        }
    }
    out
}

fn valid_encoded(s: &str, mode: Mode) -> bool {
    s.bytes().all(|c| {
        is_sub_delim(c) || matches!(c, b':' | b'@' | b'[' | b']' | b'%') || !should_escape(c, mode)
    })
}

/// Go's `path.Clean`.
fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let n = path.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        if path[r] == b'/' || (path[r] == b'.' && (r + 1 == n || path[r + 1] == b'/')) {
            // An empty or `.` element.
            r += 1;
        } else if path[r] == b'.'
            && r + 1 < n
            && path[r + 1] == b'.'
            && (r + 2 == n || path[r + 2] == b'/')
        {
            r += 2;
            if out.len() > dotdot {
                // Back up to the slash before the last element, dropping it.
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && path[r] != b'/' {
                out.push(path[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return b".".to_vec();
    }
    out
}

/// A request path as Go's `url.URL` holds it: decoded `path`, and `raw_path`
/// (empty when the default encoding of `path` is what the client sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoPath {
    pub path: Vec<u8>,
    pub raw_path: String,
}

impl GoPath {
    /// Go's `setPath`: how a server parses the path of a request target.
    pub fn parse(p: &str) -> Result<GoPath, EscapeError> {
        let path = unescape_path(p)?.into_owned();
        let raw_path = if escape_mode(&path, Mode::Path) == p {
            String::new()
        } else {
            p.to_owned()
        };
        Ok(GoPath { path, raw_path })
    }

    /// Go's `EscapedPath`.
    pub fn escaped(&self) -> Cow<'_, str> {
        if !self.raw_path.is_empty()
            && valid_encoded(&self.raw_path, Mode::Path)
            && unescape_path(&self.raw_path).is_ok_and(|p| *p == *self.path)
        {
            return Cow::Borrowed(&self.raw_path);
        }
        if self.path == b"*" {
            return Cow::Borrowed("*");
        }
        Cow::Owned(escape_mode(&self.path, Mode::Path))
    }

    /// The raw path if the client's encoding is kept, else the escaped one:
    /// what Traefik's path rewriters match and report.
    pub fn current(&self) -> Cow<'_, str> {
        if self.raw_path.is_empty() {
            self.escaped()
        } else {
            Cow::Borrowed(&self.raw_path)
        }
    }

    /// Go's `URL.JoinPath()` without elements: the path, cleaned of `.`,
    /// `..` and empty segments, keeping a trailing slash.
    pub fn joined(&self) -> GoPath {
        let mut elem = self.escaped();
        let mut p = if elem.starts_with('/') {
            clean(elem.as_bytes())
        } else {
            // Go roots a relative path to clean it, then drops the root.
            elem = Cow::Owned(format!("/{elem}"));
            clean(elem.as_bytes()).split_off(1)
        };
        if elem.ends_with('/') && p.last() != Some(&b'/') {
            p.push(b'/');
        }
        // `p` only holds bytes of an escaped path, so it is ASCII.
        let p = String::from_utf8_lossy(&p);
        GoPath::parse(&p).unwrap_or_else(|_| self.clone())
    }

    /// Traefik refuses a rewritten path that cleaning would change, so that
    /// a strip cannot turn `/api/../admin` into a reachable `/admin`.
    pub fn is_clean(&self) -> bool {
        self.path.is_empty() || self.joined().path == self.path
    }

    /// The path part of Go's `RequestURI`.
    pub fn request_uri_path(&self) -> Cow<'_, str> {
        let p = self.escaped();
        if p.is_empty() { Cow::Borrowed("/") } else { p }
    }
}

/// Go's `ensureLeadingSlash` helpers of the path middlewares.
pub fn ensure_leading_slash(s: &str) -> Cow<'_, str> {
    if s.is_empty() || s.starts_with('/') {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("/{s}"))
    }
}

pub fn ensure_leading_slash_bytes(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 1);
    if !s.is_empty() && s[0] != b'/' {
        out.push(b'/');
    }
    out.extend_from_slice(s);
    out
}

/// How many bytes of `raw` encode the first `decoded_len` decoded bytes
/// (Traefik's `encodedPrefixLen`).
pub fn encoded_prefix_len(raw: &str, decoded_len: usize) -> usize {
    let b = raw.as_bytes();
    let (mut i, mut decoded) = (0, 0);
    while i < b.len() && decoded < decoded_len {
        if b[i] == b'%' && i + 2 < b.len() {
            i += 3;
        } else {
            i += 1;
        }
        decoded += 1;
    }
    i
}

/// Go's `net.SplitHostPort`, except that an IPv6 host keeps its brackets so
/// that it can be put back into a URL as is.
pub fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let i = hostport.rfind(':')?;
    let (j, k);
    let host;
    if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        if end + 1 != i {
            return None;
        }
        host = &hostport[..=end];
        j = 1;
        k = end + 1;
    } else {
        host = &hostport[..i];
        if host.contains(':') {
            return None;
        }
        j = 0;
        k = 0;
    }
    if hostport[j..].contains('[') || hostport[k..].contains(']') {
        return None;
    }
    Some((host, &hostport[i + 1..]))
}

/// Why Go's `url.Parse` refused a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("net/url: invalid control character in URL")]
    Control,
    #[error("missing protocol scheme")]
    MissingScheme,
    #[error("first path segment in URL cannot contain colon")]
    ColonInFirstSegment,
    #[error("net/url: invalid userinfo")]
    UserInfo,
    #[error("missing ']' in host")]
    MissingBracket,
    #[error("invalid port {0:?} after host")]
    Port(String),
    #[error(transparent)]
    Escape(#[from] EscapeError),
}

fn get_scheme(raw: &str) -> Result<(&str, &str), UrlError> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i == 0 => return Ok(("", raw)),
            b'0'..=b'9' | b'+' | b'-' | b'.' => {}
            b':' if i == 0 => return Err(UrlError::MissingScheme),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
    }
}

fn valid_userinfo(s: &str) -> bool {
    s.bytes().all(|c| {
        c.is_ascii_alphanumeric()
            || is_sub_delim(c)
            || matches!(c, b'-' | b'.' | b'_' | b':' | b'~' | b'%' | b'@')
    })
}

/// Go's `parseHost`, returning the host as `String()` writes it back.
fn parse_host(host: &str) -> Result<String, UrlError> {
    if host.starts_with('[') {
        let i = host.rfind(']').ok_or(UrlError::MissingBracket)?;
        let colon_port = &host[i + 1..];
        if !valid_optional_port(colon_port) {
            return Err(UrlError::Port(colon_port.to_owned()));
        }
    } else if let Some(i) = host.rfind(':') {
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(UrlError::Port(colon_port.to_owned()));
        }
    }
    let decoded = unescape_mode(host, Mode::Host)?;
    Ok(escape_mode(&decoded, Mode::Host))
}

/// `url.Parse(s).String()` as Go computes it, for the `Location` of a
/// redirect: the scheme is lowercased, the path re-encoded when Go would,
/// and what Go cannot parse is an error.
pub fn normalize_url(raw: &str) -> Result<String, UrlError> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(UrlError::Control);
    }
    let (u, frag) = match raw.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (raw, None),
    };
    if u == "*" {
        return Ok("*".to_owned());
    }
    let (scheme, rest) = get_scheme(u)?;
    let scheme = scheme.to_ascii_lowercase();
    let (mut rest, query, force_query) = if rest.ends_with('?') && rest.matches('?').count() == 1 {
        (&rest[..rest.len() - 1], None, true)
    } else {
        match rest.split_once('?') {
            Some((r, q)) => (r, Some(q), false),
            None => (rest, None, false),
        }
    };

    let mut out = String::with_capacity(raw.len() + 8);
    if !scheme.is_empty() {
        out.push_str(&scheme);
        out.push(':');
    }
    if !rest.starts_with('/') && !scheme.is_empty() {
        // A rootless URL with a scheme is opaque (`mailto:x`).
        out.push_str(rest);
    } else {
        if !rest.starts_with('/') && rest.split('/').next().unwrap_or("").contains(':') {
            return Err(UrlError::ColonInFirstSegment);
        }
        let mut host = String::new();
        let mut user: Option<&str> = None;
        let has_authority =
            (!scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//");
        if has_authority {
            let authority_and_path = &rest[2..];
            let (authority, path) = match authority_and_path.find('/') {
                Some(i) => (&authority_and_path[..i], &authority_and_path[i..]),
                None => (authority_and_path, ""),
            };
            rest = path;
            let host_part = match authority.rfind('@') {
                Some(i) => {
                    let ui = &authority[..i];
                    if !valid_userinfo(ui) {
                        return Err(UrlError::UserInfo);
                    }
                    unescape_mode(ui, Mode::Path)?;
                    user = Some(ui);
                    &authority[i + 1..]
                }
                None => authority,
            };
            host = parse_host(host_part)?;
        }
        let path = GoPath::parse(rest)?;
        // Without an authority (`https:/x`), Go writes no `//` back.
        if has_authority {
            if !host.is_empty() || !path.path.is_empty() || user.is_some() {
                out.push_str("//");
            }
            if let Some(ui) = user {
                out.push_str(ui);
                out.push('@');
            }
            out.push_str(&host);
        }
        let escaped = path.escaped();
        if !escaped.is_empty() && !escaped.starts_with('/') && !host.is_empty() {
            out.push('/');
        }
        out.push_str(&escaped);
    }
    if force_query || query.is_some_and(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(query.unwrap_or(""));
    }
    if let Some(f) = frag {
        let decoded = unescape_mode(f, Mode::Fragment)?;
        if !decoded.is_empty() {
            out.push('#');
            if valid_encoded(f, Mode::Fragment) {
                out.push_str(f);
            } else {
                out.push_str(&escape_mode(&decoded, Mode::Fragment));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_escape_as_go() {
        // url.QueryEscape("a b/c?d=é&e~f-g_h.i%") in Go.
        assert_eq!(
            query_escape("a b/c?d=é&e~f-g_h.i%"),
            "a+b%2Fc%3Fd%3D%C3%A9%26e~f-g_h.i%25"
        );
        assert_eq!(query_escape(""), "");
    }

    #[test]
    fn parse_keeps_raw_only_when_encoding_differs() {
        let p = GoPath::parse("/a/b").unwrap();
        assert_eq!(p.path, b"/a/b");
        assert_eq!(p.raw_path, "");
        let p = GoPath::parse("/a%2Fb").unwrap();
        assert_eq!(p.path, b"/a/b");
        assert_eq!(p.raw_path, "/a%2Fb");
        assert_eq!(p.escaped(), "/a%2Fb");
        // Go's default encoding of a space is %20.
        let p = GoPath::parse("/a%20b").unwrap();
        assert_eq!(p.raw_path, "");
        assert!(GoPath::parse("/a%zzb").is_err());
        assert!(GoPath::parse("/a%2").is_err());
    }

    #[test]
    fn escape_error_reads_like_go() {
        let e = GoPath::parse("/x%zzy").unwrap_err();
        assert_eq!(e.to_string(), r#"invalid URL escape "%zz""#);
        let e = GoPath::parse("/x%4").unwrap_err();
        assert_eq!(e.to_string(), r#"invalid URL escape "%4""#);
    }

    #[test]
    fn escaped_falls_back_to_default_encoding_when_raw_is_invalid() {
        let p = GoPath {
            path: b"/a b\"".to_vec(),
            raw_path: "/a b\"".to_owned(),
        };
        assert_eq!(p.escaped(), "/a%20b%22");
        // A stale raw path (not decoding to the path) is ignored.
        let p = GoPath {
            path: b"/x".to_vec(),
            raw_path: "/y".to_owned(),
        };
        assert_eq!(p.escaped(), "/x");
        assert_eq!(GoPath::parse("/a(b)").unwrap().escaped(), "/a(b)");
        assert_eq!(GoPath::parse("/é").unwrap().escaped(), "/%C3%A9");
    }

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("/a/b/../c", "/a/c"),
            ("/../a", "/a"),
            ("a/../../b", "../b"),
            ("//a//b/./", "/a/b"),
            ("/a/..", "/"),
            ("./", "."),
            ("abc/def/..", "abc"),
        ] {
            assert_eq!(
                String::from_utf8(clean(input.as_bytes())).unwrap(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn joined_keeps_trailing_slash_and_relative_paths() {
        let j = |s: &str| String::from_utf8(GoPath::parse(s).unwrap().joined().path).unwrap();
        assert_eq!(j("/a/b/"), "/a/b/");
        assert_eq!(j("/a/./b"), "/a/b");
        assert_eq!(j("a/../b"), "b");
        assert_eq!(j("/"), "/");
        assert!(GoPath::parse("/a/b").unwrap().is_clean());
        assert!(!GoPath::parse("/./foo").unwrap().is_clean());
        assert!(!GoPath::parse("//foo").unwrap().is_clean());
        // Encoded dots are not segments for Go: they survive cleaning.
        assert!(GoPath::parse("/%2e%2e/foo").unwrap().is_clean());
    }

    #[test]
    fn encoded_prefix_len_counts_escapes_as_one_byte() {
        assert_eq!(encoded_prefix_len("/ap%69/a%2Fb", 5), 7);
        assert_eq!(encoded_prefix_len("/stat", 10), 5);
        assert_eq!(encoded_prefix_len("", 3), 0);
    }

    #[test]
    fn split_host_port_cases() {
        assert_eq!(split_host_port("foo:80"), Some(("foo", "80")));
        assert_eq!(split_host_port("foo"), None);
        assert_eq!(split_host_port("[::1]:80"), Some(("[::1]", "80")));
        assert_eq!(split_host_port("[::1]"), None);
        assert_eq!(split_host_port("::1"), None);
        assert_eq!(split_host_port("foo:"), Some(("foo", "")));
        assert_eq!(split_host_port("[::1]x:80"), None);
    }

    #[test]
    fn normalize_url_like_go_string() {
        for (input, want) in [
            ("https://foo", "https://foo"),
            (
                "HTTPS://foo:8443/bar?x=1#frag",
                "https://foo:8443/bar?x=1#frag",
            ),
            ("https://foo/a b", "https://foo/a%20b"),
            ("https://foo/a%2Fb", "https://foo/a%2Fb"),
            ("https://foo/?", "https://foo/?"),
            ("https://foo/#", "https://foo/"),
            ("/relative?q", "/relative?q"),
            ("mailto:someone", "mailto:someone"),
            ("a:b/c", "a:b/c"),
            ("https:/path", "https:/path"),
            ("https://", "https:"),
            ("https:///path", "https:///path"),
            ("https://user:pw@foo/", "https://user:pw@foo/"),
            ("https://[::1]:8443/", "https://[::1]:8443/"),
            ("https://héllo/", "https://h%C3%A9llo/"),
            ("http://foo/#a b", "http://foo/#a%20b"),
        ] {
            assert_eq!(normalize_url(input).unwrap(), want, "{input}");
        }
        for bad in [
            "http://192.168.0.%31/",
            "http://foo:8x/",
            "http://fo o/",
            ":nope",
            "http://foo/\n",
            "http://foo/%zz",
            "1a:b/c",
            "http://[::1/",
        ] {
            assert!(normalize_url(bad).is_err(), "{bad}");
        }
    }
}
