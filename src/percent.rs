//! Percent-decoding, shared by the rule matchers (routing path, query) and the
//! Go `net/url` port the path middlewares use, so `%XX` is read in one place.

use std::borrow::Cow;

/// The value of one hex digit.
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 sub-delims, which several of Go's and Traefik's character classes include.
pub(crate) fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// Decodes every `%XX` in `s`, except the bytes `keep_encoded` accepts, which stay as the
/// client spelled them; with `plus_is_space`, `+` reads as a space (form encoding).
/// Borrows when there is nothing to decode. `None` on a malformed escape.
pub(crate) fn decode(
    s: &str,
    keep_encoded: impl Fn(u8) -> bool,
    plus_is_space: bool,
) -> Option<Cow<'_, [u8]>> {
    let bytes = s.as_bytes();
    let escaped = s.contains('%') || (plus_is_space && s.contains('+'));
    if !escaped {
        return Some(Cow::Borrowed(bytes));
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_value(*bytes.get(i + 1)?)?;
                let lo = hex_value(*bytes.get(i + 2)?)?;
                let decoded = hi << 4 | lo;
                if keep_encoded(decoded) {
                    out.extend_from_slice(&bytes[i..i + 3]);
                } else {
                    out.push(decoded);
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(Cow::Owned(out))
}

/// Decoded bytes as text, invalid UTF-8 replaced.
pub(crate) fn lossy(bytes: Cow<'_, [u8]>) -> Cow<'_, str> {
    match bytes {
        Cow::Borrowed(b) => String::from_utf8_lossy(b),
        Cow::Owned(v) => match String::from_utf8(v) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_keeps_and_rejects() {
        let all = |s| decode(s, |_| false, false).map(|c| c.into_owned());
        assert_eq!(all("/a%41%62"), Some(b"/aAb".to_vec()));
        assert!(matches!(
            decode("/plain", |_| false, false),
            Some(Cow::Borrowed(_))
        ));
        assert_eq!(all("/bad%4"), None);
        assert_eq!(all("/bad%zz"), None);
        let kept = decode("/%2f%41", |b| b == b'/', false).map(|c| c.into_owned());
        assert_eq!(kept, Some(b"/%2fA".to_vec()));
        let form = decode("a+b%2B", |_| false, true).map(|c| c.into_owned());
        assert_eq!(form, Some(b"a b+".to_vec()));
        assert_eq!(all("a+b"), Some(b"a+b".to_vec()));
    }

    #[test]
    fn lossy_replaces_invalid_utf8() {
        assert_eq!(lossy(Cow::Owned(vec![b'a', 0xff])), "a\u{fffd}");
        assert_eq!(lossy(Cow::Borrowed(b"ok")), "ok");
    }
}
