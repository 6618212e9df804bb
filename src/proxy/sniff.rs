//! The `contentType` middleware's guess: the response body's first frame is
//! read before the head is sent, the type guessed from it, and the frame
//! sent first, ahead of the rest of the body.

use http::header::{self, HeaderValue};
use http::{StatusCode, response};
use http_body::Frame;
use http_body_util::BodyExt;

use super::body::Body;
use crate::middleware::content_type;

/// Sets a guessed `Content-Type` on a response that has none and may have a
/// body, as Go's server does on its first write; returns the same body.
pub async fn guess_content_type(res: &mut response::Parts, mut body: Body) -> Body {
    let no_body = res.status.is_informational()
        || matches!(
            res.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        );
    if no_body
        || res.headers.contains_key(header::CONTENT_TYPE)
        || http_body::Body::is_end_stream(&body)
    {
        return body;
    }
    let first = match body.frame().await {
        // Nothing written, nothing to guess from.
        None => return body,
        Some(first) => first,
    };
    if let Some(data) = first.as_ref().ok().and_then(Frame::data_ref)
        && !data.is_empty()
    {
        res.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type::detect(data)),
        );
    }
    Body::replayed(first, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::body::BoxError;
    use bytes::Bytes;
    use http_body_util::StreamBody;

    fn parts(status: u16, content_type: Option<&str>) -> response::Parts {
        let mut b = http::Response::builder().status(status);
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn streamed(chunks: &[&'static [u8]]) -> Body {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c))))
            .collect();
        Body::boxed(StreamBody::new(futures_util::stream::iter(frames)))
    }

    #[tokio::test]
    async fn the_first_frame_decides_and_every_byte_still_goes() {
        let mut res = parts(200, None);
        let body = guess_content_type(&mut res, streamed(&[b"<html>", b"\x00\x01rest"])).await;
        assert_eq!(res.headers["content-type"], "text/html; charset=utf-8");
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"<html>\x00\x01rest");
    }

    #[tokio::test]
    async fn a_type_given_an_empty_body_or_no_body_status_is_left_alone() {
        let mut res = parts(200, Some("application/json"));
        let _ = guess_content_type(&mut res, Body::full("<html>")).await;
        assert_eq!(res.headers["content-type"], "application/json");
        let mut res = parts(200, None);
        let _ = guess_content_type(&mut res, Body::empty()).await;
        assert!(res.headers.get("content-type").is_none());
        let mut res = parts(304, None);
        let _ = guess_content_type(&mut res, Body::full("<html>")).await;
        assert!(res.headers.get("content-type").is_none());
    }

    #[tokio::test]
    async fn a_whole_body_read_keeps_its_exact_length() {
        let mut res = parts(200, None);
        let body = guess_content_type(&mut res, Body::full("%PDF-1.4 ...")).await;
        assert_eq!(res.headers["content-type"], "application/pdf");
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(12));
    }
}
