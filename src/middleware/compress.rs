//! `compress`: responses encoded with gzip or Brotli, as the request's
//! `Accept-Encoding` allows, chosen as Traefik chooses (highest `q` first,
//! then the order of `encodings`; `*` takes `defaultEncoding`).
//!
//! When the request accepts one of the encodings, the answer carries
//! `Vary: Accept-Encoding`, and is encoded unless it already is
//! (`Content-Encoding`), has no body (HEAD, 1xx, 204, 304) or is partial
//! (206), asks for no transform (`Cache-Control: no-transform`), is gRPC,
//! has a content type excluded (or not included), or declares a length
//! under `minResponseBodyBytes`.
//! A body without a declared length is encoded whatever its size (Traefik
//! holds back its first bytes to decide). Each part of the body is encoded
//! and flushed as it comes, so streamed responses (server-sent events, long
//! polls) keep flowing. zstd, which Traefik also offers, is not: a client
//! that accepts nothing else gets the response unencoded.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode, request, response};
use http_body::{Frame, SizeHint};

use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;
use crate::proxy::body::{Body, BoxError};

/// gzip's level and Brotli's quality: nginx's defaults for on-the-fly
/// compression, a fraction of the CPU of the maximum levels.
const GZIP_LEVEL: u32 = 6;
const BROTLI_QUALITY: u32 = 5;
const BROTLI_WINDOW: u32 = 22;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gzip,
    Brotli,
}

impl Encoding {
    fn token(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "br",
        }
    }
}

#[derive(Debug)]
pub struct Compress {
    /// In order of preference.
    encodings: Vec<Encoding>,
    default_encoding: Option<Encoding>,
    /// Lowercase, without whitespace.
    excluded: Vec<String>,
    included: Vec<String>,
    min_bytes: u64,
}

impl Compress {
    pub fn new(name: &str, config: &dynamic::Compress) -> Result<Self, MiddlewareError> {
        let error = |why: String| MiddlewareError::new(name, why);
        if !config.excluded_content_types.is_empty() && !config.included_content_types.is_empty() {
            return Err(error(
                "excludedContentTypes and includedContentTypes are mutually exclusive".into(),
            ));
        }
        let parse = |e: &str| match e.trim().to_ascii_lowercase().as_str() {
            "gzip" => Ok(Some(Encoding::Gzip)),
            "br" => Ok(Some(Encoding::Brotli)),
            // Valid for Traefik; not produced here.
            "zstd" => Ok(None),
            other => Err(error(format!(
                "unknown encoding {other:?} (zstd, br or gzip)"
            ))),
        };
        let encodings = if config.encodings.is_empty() {
            vec![Encoding::Gzip, Encoding::Brotli]
        } else {
            let mut encodings = Vec::new();
            for e in &config.encodings {
                if let Some(e) = parse(e)?
                    && !encodings.contains(&e)
                {
                    encodings.push(e);
                }
            }
            if encodings.is_empty() {
                return Err(error(
                    "encodings lists only zstd, which escale does not produce: add br or gzip"
                        .into(),
                ));
            }
            encodings
        };
        let default_encoding = match config.default_encoding.trim() {
            "" => None,
            e => match parse(e)? {
                Some(e) => Some(e),
                None => {
                    return Err(error(
                        "defaultEncoding zstd is not produced by escale: use br or gzip".into(),
                    ));
                }
            },
        };
        let normalize = |list: &[String]| {
            list.iter()
                .map(|t| {
                    t.split_whitespace()
                        .collect::<String>()
                        .to_ascii_lowercase()
                })
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
        };
        Ok(Compress {
            encodings,
            default_encoding,
            excluded: normalize(&config.excluded_content_types),
            included: normalize(&config.included_content_types),
            min_bytes: config.min_response_body_bytes.unwrap_or(1024),
        })
    }

    /// The encoding for a request's `Accept-Encoding` (all its lines);
    /// `None`: leave the response as it is.
    fn negotiate<'a>(&self, accept: impl Iterator<Item = &'a HeaderValue>) -> Option<Encoding> {
        let mut lines = accept.peekable();
        if lines.peek().is_none() {
            return self.default_encoding;
        }
        // (q in thousandths, preference rank, encoding or `*`)
        let mut best: Option<(u32, usize, Option<Encoding>)> = None;
        let mut any_line = false;
        for line in lines {
            let Ok(line) = line.to_str() else { continue };
            for item in line.split(',') {
                let mut params = item.split(';');
                let coding = params.next().unwrap_or("").trim();
                if coding.is_empty() {
                    continue;
                }
                any_line = true;
                let q = params
                    .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                    .next()
                    .map_or(1000, qvalue);
                if q == 0 {
                    continue;
                }
                let candidate = if coding == "*" {
                    (q, self.encodings.len(), None)
                } else {
                    let Some(rank) = self
                        .encodings
                        .iter()
                        .position(|e| e.token().eq_ignore_ascii_case(coding))
                    else {
                        continue;
                    };
                    (q, rank, Some(self.encodings[rank]))
                };
                let better = best.is_none_or(|(bq, brank, _)| {
                    candidate.0 > bq || (candidate.0 == bq && candidate.1 < brank)
                });
                if better {
                    best = Some(candidate);
                }
            }
        }
        // An empty Accept-Encoding asks for no coding at all.
        if !any_line {
            return None;
        }
        match best? {
            (_, _, Some(e)) => Some(e),
            (_, _, None) => Some(self.default_encoding.unwrap_or(self.encodings[0])),
        }
    }

    fn content_type_allows(&self, res: &response::Parts) -> bool {
        let Some(ct) = res.headers.get(header::CONTENT_TYPE) else {
            return self.included.is_empty();
        };
        let full: String = String::from_utf8_lossy(ct.as_bytes())
            .split_whitespace()
            .collect::<String>()
            .to_ascii_lowercase();
        let media = full.split(';').next().unwrap_or("");
        if media.starts_with("application/grpc") {
            return false;
        }
        let matches = |t: &String| {
            if t.contains(';') {
                *t == full
            } else {
                t == media
            }
        };
        if !self.included.is_empty() {
            return self.included.iter().any(matches);
        }
        !self.excluded.iter().any(matches)
    }
}

/// An RFC 9110 qvalue (`0.8`, `1`, `0.125`) in thousandths; malformed: 0.
fn qvalue(q: &str) -> u32 {
    let (whole, fraction) = q.trim().split_once('.').unwrap_or((q.trim(), ""));
    if !matches!(whole, "0" | "1")
        || fraction.len() > 3
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return 0;
    }
    let thousandths = fraction
        .bytes()
        .zip([100, 10, 1])
        .map(|(b, unit)| u32::from(b - b'0') * unit)
        .sum::<u32>();
    (u32::from(whole == "1") * 1000 + thousandths).min(1000)
}

/// What the request step leaves for the response step.
#[derive(Debug, Clone, Copy)]
pub struct Negotiated(pub Option<Encoding>);

impl Layer for Compress {
    fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        ctx.compress = if req.method == Method::HEAD {
            Negotiated(None)
        } else {
            Negotiated(self.negotiate(req.headers.get_all(header::ACCEPT_ENCODING).iter()))
        };
        Flow::Continue
    }

    fn on_response_body(&self, res: &mut response::Parts, body: Body, ctx: &RequestCtx) -> Body {
        let Negotiated(Some(encoding)) = ctx.compress else {
            return body;
        };
        // Encoded or not, this answer depends on Accept-Encoding: caches
        // must know (Traefik says so in both cases too).
        let varies = res.headers.get_all(header::VARY).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("accept-encoding") || t.trim() == "*")
            })
        });
        if !varies {
            res.headers
                .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        let no_body = res.status.is_informational()
            || matches!(
                res.status,
                StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED | StatusCode::PARTIAL_CONTENT
            );
        let declared = res
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let no_transform = res.headers.get_all(header::CACHE_CONTROL).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("no-transform"))
        });
        if no_body
            || no_transform
            || res.headers.contains_key(header::CONTENT_ENCODING)
            || declared.is_some_and(|n| n < self.min_bytes)
            || http_body::Body::is_end_stream(&body)
            || !self.content_type_allows(res)
        {
            return body;
        }
        res.headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(encoding.token()),
        );
        res.headers.remove(header::CONTENT_LENGTH);
        // Byte ranges of the encoded body are not the ranges the backend
        // offered.
        res.headers.remove(header::ACCEPT_RANGES);
        Body::boxed(Encoded::new(body, encoding))
    }
}

/// A body encoded part by part.
pub struct Encoded {
    inner: Body,
    encoder: Option<Encoder>,
}

enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl Encoded {
    fn new(inner: Body, encoding: Encoding) -> Self {
        let encoder = match encoding {
            Encoding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Encoding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                BROTLI_QUALITY,
                BROTLI_WINDOW,
            ))),
        };
        Encoded {
            inner,
            encoder: Some(encoder),
        }
    }
}

impl Encoder {
    /// Encodes `data` and flushes: what the client can decode so far.
    fn push(&mut self, data: &[u8]) -> std::io::Result<Bytes> {
        let out = match self {
            Encoder::Gzip(e) => {
                e.write_all(data)?;
                e.flush()?;
                e.get_mut()
            }
            Encoder::Brotli(e) => {
                e.write_all(data)?;
                e.flush()?;
                e.get_mut()
            }
        };
        Ok(Bytes::from(std::mem::take(out)))
    }

    /// The end of the stream (gzip's trailer, Brotli's last block).
    fn finish(self) -> std::io::Result<Bytes> {
        let out = match self {
            Encoder::Gzip(e) => e.finish()?,
            Encoder::Brotli(e) => e.into_inner(),
        };
        Ok(Bytes::from(out))
    }
}

impl http_body::Body for Encoded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(None);
            };
            match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    // Trailers cannot follow an encoded body they describe.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let out = encoder.push(&data)?;
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
                Some(Err(e)) => {
                    this.encoder = None;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    let last = this.encoder.take().map(Encoder::finish).transpose()?;
                    return Poll::Ready(last.filter(|b| !b.is_empty()).map(|b| Ok(Frame::data(b))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::io::Read;

    fn layer(config: dynamic::Compress) -> Compress {
        Compress::new("c@file", &config).unwrap()
    }

    fn negotiated(c: &Compress, accept: &[&str]) -> Option<&'static str> {
        let values: Vec<HeaderValue> = accept
            .iter()
            .map(|a| HeaderValue::from_str(a).unwrap())
            .collect();
        c.negotiate(values.iter()).map(Encoding::token)
    }

    #[test]
    fn the_encoding_follows_q_then_the_configured_order() {
        let c = layer(dynamic::Compress::default());
        assert_eq!(negotiated(&c, &["gzip, deflate, br, zstd"]), Some("gzip"));
        assert_eq!(negotiated(&c, &["br"]), Some("br"));
        assert_eq!(negotiated(&c, &["gzip;q=0.5, br;q=0.8"]), Some("br"));
        assert_eq!(negotiated(&c, &["br;q=0", "gzip"]), Some("gzip"));
        assert_eq!(negotiated(&c, &["gzip;q=0, br;q=0"]), None);
        // zstd is not produced: a client that takes nothing else gets none.
        assert_eq!(negotiated(&c, &["zstd"]), None);
        assert_eq!(negotiated(&c, &["identity"]), None);
        assert_eq!(negotiated(&c, &["*"]), Some("gzip"));
        // Present but empty: no coding; absent: only the default encoding.
        assert_eq!(negotiated(&c, &[""]), None);
        assert_eq!(negotiated(&c, &[]), None);
        let c = layer(dynamic::Compress {
            encodings: vec!["br".into(), "gzip".into()],
            default_encoding: "br".into(),
            ..Default::default()
        });
        assert_eq!(negotiated(&c, &["gzip, br"]), Some("br"));
        assert_eq!(negotiated(&c, &[]), Some("br"));
        assert_eq!(negotiated(&c, &["*;q=0.5, gzip;q=0.4"]), Some("br"));
        assert_eq!(qvalue("0.125"), 125);
        assert_eq!(qvalue("1.000"), 1000);
        assert_eq!(qvalue("2"), 0);
        assert_eq!(qvalue("0.1234"), 0);
    }

    #[test]
    fn bad_configurations_are_named() {
        let err = |c: dynamic::Compress| Compress::new("c@file", &c).unwrap_err().to_string();
        assert!(
            err(dynamic::Compress {
                encodings: vec!["lzma".into()],
                ..Default::default()
            })
            .contains("unknown encoding \"lzma\"")
        );
        assert!(
            err(dynamic::Compress {
                encodings: vec!["zstd".into()],
                ..Default::default()
            })
            .contains("only zstd")
        );
        assert!(
            err(dynamic::Compress {
                excluded_content_types: vec!["a/b".into()],
                included_content_types: vec!["c/d".into()],
                ..Default::default()
            })
            .contains("mutually exclusive")
        );
    }

    /// The response parts and body after the layer, for a GET accepting `accept`.
    async fn through(
        c: &Compress,
        accept: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (response::Parts, Vec<u8>) {
        let mut req = http::Request::builder()
            .header("accept-encoding", accept)
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let mut ctx = RequestCtx::new("127.0.0.1".parse().unwrap(), "http");
        assert!(matches!(c.on_request(&mut req, &mut ctx), Flow::Continue));
        let mut res = http::Response::builder();
        for (k, v) in headers {
            res = res.header(*k, *v);
        }
        let (mut parts, ()) = res.body(()).unwrap().into_parts();
        let out = c.on_response_body(&mut parts, Body::full(body.to_vec()), &ctx);
        let bytes = out.collect().await.unwrap().to_bytes().to_vec();
        (parts, bytes)
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn unbrotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        brotli::Decompressor::new(data, 4096)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[tokio::test]
    async fn bodies_are_encoded_with_the_headers_that_say_so() {
        let c = layer(dynamic::Compress::default());
        let text = "hello compress ".repeat(200);
        let headers = [
            ("content-type", "text/html; charset=utf-8"),
            ("content-length", "3000"),
            ("accept-ranges", "bytes"),
        ];
        let (parts, body) = through(&c, "gzip", &headers, text.as_bytes()).await;
        assert_eq!(parts.headers["content-encoding"], "gzip");
        assert!(!parts.headers.contains_key("content-length"));
        assert!(!parts.headers.contains_key("accept-ranges"));
        assert_eq!(parts.headers["vary"], "Accept-Encoding");
        assert!(body.len() < text.len() / 10, "{} bytes", body.len());
        assert_eq!(gunzip(&body), text.as_bytes());

        let (parts, body) = through(&c, "br", &headers, text.as_bytes()).await;
        assert_eq!(parts.headers["content-encoding"], "br");
        assert_eq!(unbrotli(&body), text.as_bytes());
    }

    #[tokio::test]
    async fn some_responses_are_left_as_they_are() {
        let c = layer(dynamic::Compress {
            excluded_content_types: vec!["Image/PNG".into()],
            ..Default::default()
        });
        let big = vec![b'a'; 4096];
        for headers in [
            vec![("content-type", "text/plain"), ("content-length", "100")],
            vec![("content-type", "image/png")],
            vec![("content-type", "application/grpc+proto")],
            vec![("content-type", "text/plain"), ("content-encoding", "br")],
            vec![
                ("content-type", "text/plain"),
                ("cache-control", "public, no-transform"),
            ],
        ] {
            let (parts, body) = through(&c, "gzip", &headers, &big).await;
            assert!(
                !parts.headers.contains_key("content-encoding")
                    || parts.headers["content-encoding"] == "br",
                "{headers:?}"
            );
            assert_eq!(body, big, "{headers:?}");
        }
        let only_json = layer(dynamic::Compress {
            included_content_types: vec!["application/json".into()],
            ..Default::default()
        });
        let (parts, _) = through(&only_json, "gzip", &[("content-type", "text/html")], &big).await;
        assert!(!parts.headers.contains_key("content-encoding"));
        let (parts, _) = through(
            &only_json,
            "gzip",
            &[("content-type", "application/json")],
            &big,
        )
        .await;
        assert_eq!(parts.headers["content-encoding"], "gzip");
    }

    #[test]
    fn each_part_is_decodable_as_it_comes() {
        let mut e = Encoded::new(Body::empty(), Encoding::Gzip).encoder.unwrap();
        let first = e.push(b"data: first event\n\n").unwrap();
        // The bytes sent so far decode to the first part, before the end.
        let mut so_far = Vec::new();
        let mut d = flate2::write::GzDecoder::new(&mut so_far);
        d.write_all(&first).unwrap();
        d.flush().unwrap();
        drop(d);
        assert_eq!(so_far, b"data: first event\n\n");
    }
}
