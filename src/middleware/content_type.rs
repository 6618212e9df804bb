//! `contentType`: a response the backend sent without `Content-Type` gets
//! one guessed from its first bytes, as Go's `http.DetectContentType` does
//! (Traefik 3 does not guess otherwise). `autoDetect: false`, Traefik 2's
//! way to turn the guess off, is what Traefik 3 does anyway: no layer.
//!
//! The guess needs the body's first bytes before the head is sent, so the
//! handler runs it (`proxy::handler`) when a route's layer asks for it.

use http::request;

use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;

/// The built `contentType` middleware.
#[derive(Debug)]
pub struct ContentType;

impl ContentType {
    /// `None` when the middleware asks for no guess (`autoDetect: false`).
    pub fn new(name: &str, config: &dynamic::ContentType) -> Result<Option<Self>, MiddlewareError> {
        if let Some(auto) = config.auto_detect {
            tracing::warn!(
                middleware = name,
                "contentType: `autoDetect` is deprecated (Traefik 3); the middleware's presence turns the guess on"
            );
            if !auto {
                return Ok(None);
            }
        }
        Ok(Some(ContentType))
    }
}

impl Layer for ContentType {
    fn on_request(&self, _req: &mut request::Parts, _ctx: &mut RequestCtx) -> Flow {
        Flow::Continue
    }

    fn detects_content_type(&self) -> bool {
        true
    }
}

/// The most bytes the guess looks at.
pub const SNIFF_LEN: usize = 512;

/// Go's `http.DetectContentType`: the WHATWG MIME sniffing table, with
/// `application/octet-stream` when nothing matches.
pub fn detect(data: &[u8]) -> &'static str {
    let data = &data[..data.len().min(SNIFF_LEN)];
    let first_non_ws = data
        .iter()
        .position(|&b| !matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' '))
        .unwrap_or(data.len());
    let text = &data[first_non_ws..];
    if let Some(ct) = HTML_TAGS.iter().find_map(|tag| html_tag(text, tag)) {
        return ct;
    }
    if masked(text, EXACT, b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    let signature = |table: &[(&[u8], &[u8], &'static str)]| {
        table
            .iter()
            .find(|(mask, pattern, _)| masked(data, mask, pattern))
            .map(|(_, _, ct)| *ct)
    };
    if let Some(ct) = signature(SIGNATURES) {
        return ct;
    }
    if is_mp4(data) {
        return "video/mp4";
    }
    if let Some(ct) = signature(AFTER_MP4) {
        return ct;
    }
    // Text unless a byte only binary data has.
    if text
        .iter()
        .all(|&b| !matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F))
    {
        return "text/plain; charset=utf-8";
    }
    "application/octet-stream"
}

const HTML_TAGS: &[&[u8]] = &[
    b"<!DOCTYPE HTML",
    b"<HTML",
    b"<HEAD",
    b"<SCRIPT",
    b"<IFRAME",
    b"<H1",
    b"<DIV",
    b"<FONT",
    b"<TABLE",
    b"<A",
    b"<STYLE",
    b"<TITLE",
    b"<B",
    b"<BODY",
    b"<BR",
    b"<P",
    b"<!--",
];

/// An HTML tag, letters in any case, followed by a space or `>`.
fn html_tag(data: &[u8], tag: &[u8]) -> Option<&'static str> {
    let (head, next) = (data.get(..tag.len())?, *data.get(tag.len())?);
    let same = head.iter().zip(tag).all(|(&d, &t)| {
        if t.is_ascii_uppercase() {
            d & 0xDF == t
        } else {
            d == t
        }
    });
    (same && (next == b' ' || next == b'>')).then_some("text/html; charset=utf-8")
}

fn masked(data: &[u8], mask: &[u8], pattern: &[u8]) -> bool {
    if mask.is_empty() {
        return data.starts_with(pattern);
    }
    data.len() >= mask.len()
        && data
            .iter()
            .zip(mask)
            .zip(pattern)
            .all(|((d, m), p)| d & m == *p)
}

/// The mask of a signature that is an exact prefix.
const EXACT: &[u8] = &[];

/// `(mask, pattern, type)` in Go's order.
const SIGNATURES: &[(&[u8], &[u8], &str)] = &[
    (EXACT, b"%PDF-", "application/pdf"),
    (EXACT, b"%!PS-Adobe-", "application/postscript"),
    // Byte order marks.
    (
        b"\xFF\xFF\x00\x00",
        b"\xFE\xFF\x00\x00",
        "text/plain; charset=utf-16be",
    ),
    (
        b"\xFF\xFF\x00\x00",
        b"\xFF\xFE\x00\x00",
        "text/plain; charset=utf-16le",
    ),
    (
        b"\xFF\xFF\xFF\x00",
        b"\xEF\xBB\xBF\x00",
        "text/plain; charset=utf-8",
    ),
    // Images.
    (EXACT, b"\x00\x00\x01\x00", "image/x-icon"),
    (EXACT, b"\x00\x00\x02\x00", "image/x-icon"),
    (EXACT, b"BM", "image/bmp"),
    (EXACT, b"GIF87a", "image/gif"),
    (EXACT, b"GIF89a", "image/gif"),
    (
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF\xFF\xFF",
        b"RIFF\x00\x00\x00\x00WEBPVP",
        "image/webp",
    ),
    (EXACT, b"\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
    (EXACT, b"\xFF\xD8\xFF", "image/jpeg"),
    // Audio and video.
    (
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        b"FORM\x00\x00\x00\x00AIFF",
        "audio/aiff",
    ),
    (EXACT, b"ID3", "audio/mpeg"),
    (EXACT, b"OggS\x00", "application/ogg"),
    (EXACT, b"MThd\x00\x00\x00\x06", "audio/midi"),
    (
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        b"RIFF\x00\x00\x00\x00AVI ",
        "video/avi",
    ),
    (
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        b"RIFF\x00\x00\x00\x00WAVE",
        "audio/wave",
    ),
];

/// Go checks these after the MP4 signature.
const AFTER_MP4: &[(&[u8], &[u8], &str)] = &[
    (EXACT, b"\x1A\x45\xDF\xA3", "video/webm"),
    // Fonts.
    (
        b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xFF\xFF",
        b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00LP",
        "application/vnd.ms-fontobject",
    ),
    (EXACT, b"\x00\x01\x00\x00", "font/ttf"),
    (EXACT, b"OTTO", "font/otf"),
    (EXACT, b"ttcf", "font/collection"),
    (EXACT, b"wOFF", "font/woff"),
    (EXACT, b"wOF2", "font/woff2"),
    // Archives.
    (EXACT, b"\x1F\x8B\x08", "application/x-gzip"),
    (EXACT, b"PK\x03\x04", "application/zip"),
    (EXACT, b"Rar!\x1A\x07\x00", "application/x-rar-compressed"),
    (EXACT, b"Rar!\x1A\x07\x01\x00", "application/x-rar-compressed"),
    (EXACT, b"\x00asm", "application/wasm"),
];

/// The WHATWG signature for MP4: an `ftyp` box naming an `mp4` brand.
fn is_mp4(data: &[u8]) -> bool {
    if data.len() < 12 {
        return false;
    }
    let box_size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if !box_size.is_multiple_of(4) || data.len() < box_size || &data[4..8] != b"ftyp" {
        return false;
    }
    (8..box_size)
        .step_by(4)
        .filter(|&at| at != 12) // the minor version
        .any(|at| data.get(at..at + 3) == Some(b"mp4"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_bodies_are_told_apart() {
        let cases: &[(&[u8], &str)] = &[
            (b"  <!doctype html><p>x", "text/html; charset=utf-8"),
            (b"<HtMl>", "text/html; charset=utf-8"),
            (b"<p>", "text/html; charset=utf-8"),
            (b"<pre>", "text/plain; charset=utf-8"),
            (b"\n<?xml version=\"1.0\"?>", "text/xml; charset=utf-8"),
            (b"%PDF-1.7", "application/pdf"),
            (b"\x89PNG\r\n\x1a\n....", "image/png"),
            (b"\xFF\xD8\xFF\xE0", "image/jpeg"),
            (b"GIF89a..", "image/gif"),
            (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
            (b"wOF2....", "font/woff2"),
            (b"\x1F\x8B\x08\x00", "application/x-gzip"),
            (b"PK\x03\x04..", "application/zip"),
            (b"\x00asm\x01\x00\x00\x00", "application/wasm"),
            (b"\x1A\x45\xDF\xA3\x01", "video/webm"),
            (
                b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
                "video/mp4",
            ),
            (b"{\"json\": true}", "text/plain; charset=utf-8"),
            (b"plain words\r\n", "text/plain; charset=utf-8"),
            (b"\xEF\xBB\xBFbom", "text/plain; charset=utf-8"),
            (b"\x01\x02binary", "application/octet-stream"),
            (b"", "text/plain; charset=utf-8"),
        ];
        for (data, ct) in cases {
            assert_eq!(detect(data), *ct, "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn only_the_first_512_bytes_count() {
        let mut data = vec![b'a'; SNIFF_LEN];
        data.push(0x01);
        assert_eq!(detect(&data), "text/plain; charset=utf-8");
        data[10] = 0x01;
        assert_eq!(detect(&data), "application/octet-stream");
    }

    #[test]
    fn auto_detect_false_builds_no_layer() {
        let off = dynamic::ContentType {
            auto_detect: Some(false),
        };
        assert!(ContentType::new("c@file", &off).unwrap().is_none());
        let on = dynamic::ContentType::default();
        let layer = ContentType::new("c@file", &on).unwrap().unwrap();
        assert!(layer.detects_content_type());
    }
}
