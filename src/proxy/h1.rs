//! HTTP/1.1 to backends, driven by the task of the request it carries.
//!
//! hyper's client runs each backend connection as a task of its own and
//! reaches it through channels: every request then costs two hand-offs
//! between tasks, a copy of its header map into a new `Request`, and more
//! wake-ups of the processes at both ends (docs/benchmarks.md). Here the
//! request's own task writes the head straight from the incoming request,
//! reads the response head, and the response body reads the socket as the
//! client side pulls it. A connection goes back to the pool only after a
//! complete exchange.
//!
//! Framing follows RFC 9112 and hyper's client, which escale used before:
//! 1xx answers other than 101 are skipped, HEAD, 204 and 304 have no body,
//! chunked wins over Content-Length, and a body with neither lasts until
//! the connection closes. A streamed request body keeps flowing while the
//! response is read (a backend may answer early, or echo as it reads), in
//! the same task.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use http_body::{Body as _, Frame, SizeHint};
use hyper::ext::ReasonPhrase;

use super::backend_io::BackendIo;
use super::body::{Body, BoxError};

/// Most headers a response head may carry (hyper's default).
const MAX_HEADERS: usize = 100;
/// Largest response head, and largest chunk-size or trailer section
/// (about hyper's default read buffer limit).
pub(super) const MAX_HEAD: usize = 400 * 1024;
/// Room made for a read when the buffer is (nearly) full.
pub(super) const READ_SIZE: usize = 8 * 1024;
/// Largest read for a body of known length.
pub(super) const MAX_READ: usize = 64 * 1024;
/// Buffers kept by an idle connection (larger ones are given back).
const KEEP_BUFFER: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connection closed before the response was complete")]
    Closed,
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("invalid response head: {0}")]
    Parse(httparse::Error),
    #[error("invalid response: {0}")]
    Invalid(&'static str),
    #[error("response head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("request body: {0}")]
    RequestBody(#[source] BoxError),
    #[error("request body does not match its content-length")]
    RequestLength,
}

/// A connection to a backend, idle or carrying one exchange. Always boxed:
/// it moves with every response through several layers.
pub struct Conn {
    pub(super) io: BackendIo,
    /// Bytes read and not used yet.
    pub(super) buf: BytesMut,
    /// The request head being written, kept for the next one.
    pub(super) head: Vec<u8>,
    /// Has completed an exchange before.
    pub(super) reused: bool,
}

/// What a request head is made of; the incoming request's parts are written
/// as they are, without building a new request.
pub struct RequestHead<'a> {
    pub method: &'a Method,
    /// The server URL's path, written before the request's own path.
    pub base_path: &'a str,
    pub path_and_query: &'a str,
    /// Sent as `Host`, first; any `Host` in `headers` is skipped.
    pub host: Option<&'a HeaderValue>,
    pub headers: &'a HeaderMap,
}

/// The request body to send.
pub enum OutBody {
    /// Known in full (kept for replays).
    Full(Bytes),
    /// Streamed as it arrives, at most once.
    Stream(Body),
}

/// How an exchange ended.
pub enum Outcome {
    Response(Response<ResponseBody>),
    /// `101 Switching Protocols`: the connection now belongs to the tunnel.
    Upgraded(Response<()>, Upgraded),
    /// Nothing was written: the pooled connection had closed. The streamed
    /// body, if any, comes back untouched.
    NotSent(Option<Body>),
    Failed {
        error: Error,
        /// Nothing came back on a connection that had served before: most
        /// likely the server closed it as idle while the request was on its
        /// way, so the request never reached the application.
        stale: bool,
    },
}

/// The backend side of an upgraded connection.
pub struct Upgraded {
    pub io: BackendIo,
    /// Bytes the backend sent after its `101` head.
    pub leftover: Bytes,
}

/// How the request body is framed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ReqFraming {
    /// No body: the head goes out as it is.
    None,
    /// `Content-Length`; `true`: written by us (and the request's own skipped).
    Length(u64, bool),
    Chunked,
}

/// How the response body is framed, and how much is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Length(u64),
    Chunked(Chunk),
    /// Until the connection closes.
    Eof,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    Trailers,
}

impl Conn {
    pub fn new(io: impl Into<BackendIo>) -> Box<Self> {
        Box::new(Conn {
            io: io.into(),
            buf: BytesMut::new(),
            head: Vec::new(),
            reused: false,
        })
    }

    /// Whether an idle connection can carry a request: the backend has not
    /// closed it, nor sent anything unasked (see [`BackendIo::is_idle_and_open`]).
    pub fn is_usable(&mut self) -> bool {
        self.buf.is_empty() && self.io.is_idle_and_open()
    }

    /// Sends one request and reads the response head. The response body,
    /// which owns the connection, reads the rest.
    pub async fn send(mut self: Box<Self>, req: &RequestHead<'_>, body: OutBody) -> Outcome {
        let framing = request_framing(req.headers, &body);
        encode_head(&mut self.head, req, framing);
        let written = match &body {
            OutBody::Full(data) if framing != ReqFraming::None => {
                write_all(
                    &mut self.io,
                    &mut [IoSlice::new(&self.head), IoSlice::new(data)],
                )
                .await
            }
            _ => write_all(&mut self.io, &mut [IoSlice::new(&self.head)]).await,
        };
        if let Err((error, any)) = written {
            if !any && self.reused {
                return Outcome::NotSent(match body {
                    OutBody::Stream(b) => Some(b),
                    OutBody::Full(_) => None,
                });
            }
            return Outcome::Failed {
                error: Error::Io(error),
                stale: false,
            };
        }
        let mut upload = match (body, framing) {
            (OutBody::Stream(body), ReqFraming::Length(n, _)) => {
                Some(Box::new(Upload::new(body, Some(n))))
            }
            (OutBody::Stream(body), ReqFraming::Chunked) => Some(Box::new(Upload::new(body, None))),
            _ => None,
        };
        let mut seen = false;
        let mut write_failed = None;
        let head =
            poll_fn(|cx| self.poll_head(cx, &mut upload, &mut seen, &mut write_failed)).await;
        let head = match head {
            Ok(h) => h,
            Err(error) => {
                let stale = self.reused && !seen && matches!(error, Error::Closed | Error::Io(_));
                return Outcome::Failed { error, stale };
            }
        };
        let framing = match response_framing(&head, req.method) {
            Ok(f) => f,
            Err(error) => {
                return Outcome::Failed {
                    error,
                    stale: false,
                };
            }
        };
        // The client hears escale's own HTTP version, whatever the backend's:
        // hyper would answer an HTTP/1.0 status line, without chunking, and
        // close the client's keep-alive connection.
        let mut builder = Response::builder()
            .status(head.status)
            .version(Version::HTTP_11);
        if let Some(reason) = head.reason {
            builder = builder.extension(reason);
        }
        if head.status == StatusCode::SWITCHING_PROTOCOLS {
            let mut res = match builder.body(()) {
                Ok(r) => r,
                Err(_) => return invalid("response head"),
            };
            *res.headers_mut() = head.headers;
            let conn = *self;
            return Outcome::Upgraded(
                res,
                Upgraded {
                    io: conn.io,
                    leftover: conn.buf.freeze(),
                },
            );
        }
        let body = ResponseBody {
            conn: Some(self),
            framing,
            upload,
            // A request that did not go out whole leaves the connection in
            // no state to carry another.
            keep_alive: head.keep_alive && write_failed.is_none(),
        };
        match builder.body(body) {
            Ok(mut res) => {
                *res.headers_mut() = head.headers;
                Outcome::Response(res)
            }
            Err(_) => invalid("response head"),
        }
    }

    /// Reads until a final (non-1xx) response head is complete, moving the
    /// request body along meanwhile. A backend may answer before reading the
    /// whole body (a 413, a 401) and close: when the body can no longer be
    /// written, the answer may still be there to read. The write's error
    /// goes to `write_failed`, and is the one returned if no answer comes.
    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        upload: &mut Option<Box<Upload>>,
        seen: &mut bool,
        write_failed: &mut Option<io::Error>,
    ) -> Poll<Result<Head, Error>> {
        loop {
            if let Some(up) = upload.as_mut()
                && let Poll::Ready(Err(e)) = up.poll(&mut self.io, cx)
            {
                match e {
                    Error::Io(e) => {
                        *upload = None;
                        *write_failed = Some(e);
                    }
                    // The client's side failed: there is no request to answer.
                    e => return Poll::Ready(Err(e)),
                }
            }
            while !self.buf.is_empty() {
                *seen = true;
                match parse_head(&mut self.buf)? {
                    None if self.buf.len() > MAX_HEAD => {
                        return Poll::Ready(Err(Error::HeadTooLarge));
                    }
                    None => break,
                    Some(h)
                        if h.status.is_informational()
                            && h.status != StatusCode::SWITCHING_PROTOCOLS =>
                    {
                        continue;
                    }
                    Some(h) => return Poll::Ready(Ok(h)),
                }
            }
            match ready!(self.poll_fill(cx, READ_SIZE)) {
                Ok(0) => {
                    return Poll::Ready(Err(write_failed.take().map_or(Error::Closed, Error::Io)));
                }
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(Error::Io(write_failed.take().unwrap_or(e)))),
            }
        }
    }

    /// Reads what the socket has into the buffer, making room for `want`
    /// bytes when it is (nearly) full.
    pub(super) fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        want: usize,
    ) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < want.min(READ_SIZE) / 2 + 1 {
            self.buf.reserve(want);
        }
        self.io.poll_read_buf(cx, &mut self.buf)
    }

    /// Ready for the next exchange.
    pub(super) fn recycle(mut self: Box<Self>) -> Box<Self> {
        self.reused = true;
        if self.head.capacity() > KEEP_BUFFER {
            self.head = Vec::new();
        }
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = BytesMut::new();
        }
        self
    }
}

fn invalid(what: &'static str) -> Outcome {
    Outcome::Failed {
        error: Error::Invalid(what),
        stale: false,
    }
}

/// Writes every slice, waiting for the socket as needed. On failure, tells
/// whether any byte went out.
pub(super) async fn write_all(
    io: &mut BackendIo,
    mut bufs: &mut [IoSlice<'_>],
) -> Result<(), (io::Error, bool)> {
    let mut any = false;
    poll_fn(|cx| {
        while !bufs.is_empty() {
            match ready!(io.poll_write_vectored(cx, bufs)) {
                Ok(0) => return Poll::Ready(Err((io::ErrorKind::WriteZero.into(), any))),
                Ok(n) => {
                    any = true;
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) => return Poll::Ready(Err((e, any))),
            }
        }
        io.poll_flush(cx).map_err(|e| (e, any))
    })
    .await
}

/// A streamed request body on its way to the backend.
struct Upload {
    body: Body,
    /// Bytes still expected for a `Content-Length` body; `None`: chunked.
    left: Option<u64>,
    /// Framed bytes waiting for the socket.
    out: Vec<Bytes>,
    ended: bool,
}

impl Upload {
    fn new(body: Body, left: Option<u64>) -> Self {
        Upload {
            body,
            left,
            out: Vec::with_capacity(3),
            ended: false,
        }
    }

    fn is_done(&self) -> bool {
        self.ended && self.out.is_empty()
    }

    /// Moves as much of the body as the client and the socket allow.
    fn poll(&mut self, io: &mut BackendIo, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            while !self.out.is_empty() {
                let mut slices = [IoSlice::new(&[]), IoSlice::new(&[]), IoSlice::new(&[])];
                let count = self.out.len().min(slices.len());
                for (slice, bytes) in slices.iter_mut().zip(&self.out) {
                    *slice = IoSlice::new(bytes);
                }
                match ready!(io.poll_write_vectored(cx, &slices[..count])) {
                    Ok(0) => return Poll::Ready(Err(Error::Io(io::ErrorKind::WriteZero.into()))),
                    Ok(mut n) => {
                        while n > 0 {
                            let first = &mut self.out[0];
                            if n >= first.len() {
                                n -= first.len();
                                self.out.remove(0);
                            } else {
                                first.advance(n);
                                n = 0;
                            }
                        }
                    }
                    Err(e) => return Poll::Ready(Err(Error::Io(e))),
                }
            }
            ready!(io.poll_flush(cx))?;
            if self.ended {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => {
                    self.ended = true;
                    match self.left {
                        None => self.out.push(Bytes::from_static(b"0\r\n\r\n")),
                        Some(0) => {}
                        Some(_) => return Poll::Ready(Err(Error::RequestLength)),
                    }
                }
                Some(Err(e)) => return Poll::Ready(Err(Error::RequestBody(e))),
                Some(Ok(frame)) => {
                    // Trailers of a streamed request are not forwarded.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    match &mut self.left {
                        None => {
                            let mut line = Vec::with_capacity(18);
                            push_hex(&mut line, data.len() as u64);
                            line.extend_from_slice(b"\r\n");
                            self.out.push(Bytes::from(line));
                            self.out.push(data);
                            self.out.push(Bytes::from_static(b"\r\n"));
                        }
                        Some(left) => {
                            let n = data.len() as u64;
                            if n > *left {
                                return Poll::Ready(Err(Error::RequestLength));
                            }
                            *left -= n;
                            self.out.push(data);
                        }
                    }
                }
            }
        }
    }
}

/// A backend's response body, read from the connection as it is polled.
pub struct ResponseBody {
    conn: Option<Box<Conn>>,
    framing: Framing,
    /// The rest of a streamed request body, still on its way (boxed: a
    /// request body may itself be a response body).
    upload: Option<Box<Upload>>,
    keep_alive: bool,
}

impl ResponseBody {
    pub fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done
    }

    pub fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }

    /// Once the body has ended: its connection, if it may carry another
    /// request (the backend keeps it open, the request went out in full and
    /// nothing unasked followed the response).
    pub fn take_reusable(&mut self) -> Option<Box<Conn>> {
        if self.framing != Framing::Done || !self.keep_alive {
            return None;
        }
        if self.upload.as_ref().is_some_and(|u| !u.is_done()) {
            return None;
        }
        self.conn
            .take()
            .filter(|c| c.buf.is_empty())
            .map(Conn::recycle)
    }

    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(up) = self.upload.as_mut()
            && let Poll::Ready(Err(_)) = up.poll(&mut conn.io, cx)
        {
            // The backend answered and stopped reading: the request cannot
            // complete, so the connection will not be reused.
            self.upload = None;
            self.keep_alive = false;
        }
        loop {
            match &mut self.framing {
                Framing::Done => return Poll::Ready(None),
                Framing::Length(left) => {
                    if !conn.buf.is_empty() {
                        let n = conn
                            .buf
                            .len()
                            .min(usize::try_from(*left).unwrap_or(usize::MAX));
                        *left -= n as u64;
                        if *left == 0 {
                            self.framing = Framing::Done;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(conn.buf.split_to(n).freeze()))));
                    }
                    let want = usize::try_from(*left).unwrap_or(MAX_READ).min(MAX_READ);
                    match ready!(conn.poll_fill(cx, want)) {
                        Ok(0) => return Poll::Ready(Some(Err(Error::Closed))),
                        Ok(_) => {}
                        Err(e) => return Poll::Ready(Some(Err(Error::Io(e)))),
                    }
                }
                Framing::Eof => {
                    if !conn.buf.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(conn.buf.split().freeze()))));
                    }
                    match ready!(conn.poll_fill(cx, READ_SIZE * 2)) {
                        Ok(0) => {
                            self.framing = Framing::Done;
                            self.keep_alive = false;
                            return Poll::Ready(None);
                        }
                        Ok(_) => {}
                        Err(e) => return Poll::Ready(Some(Err(Error::Io(e)))),
                    }
                }
                Framing::Chunked(state) => match decode_chunked(state, &mut conn.buf) {
                    Err(e) => return Poll::Ready(Some(Err(e))),
                    Ok(Decoded::Data(data)) => {
                        if *state == Chunk::DataEnd && conn.buf.starts_with(b"\r\n0\r\n\r\n") {
                            // The last chunk is already here: end with this frame.
                            conn.buf.advance(7);
                            self.framing = Framing::Done;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Ok(Decoded::Trailers(trailers)) => {
                        self.framing = Framing::Done;
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                    Ok(Decoded::End) => {
                        self.framing = Framing::Done;
                        return Poll::Ready(None);
                    }
                    Ok(Decoded::More) => match ready!(conn.poll_fill(cx, READ_SIZE * 2)) {
                        Ok(0) => return Poll::Ready(Some(Err(Error::Closed))),
                        Ok(_) => {}
                        Err(e) => return Poll::Ready(Some(Err(Error::Io(e)))),
                    },
                },
            }
        }
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.get_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        ResponseBody::is_end_stream(self)
    }

    fn size_hint(&self) -> SizeHint {
        ResponseBody::size_hint(self)
    }
}

pub(super) enum Decoded {
    Data(Bytes),
    Trailers(HeaderMap),
    End,
    /// Needs more bytes.
    More,
}

/// One step of chunked decoding over the buffered bytes.
pub(super) fn decode_chunked(state: &mut Chunk, buf: &mut BytesMut) -> Result<Decoded, Error> {
    loop {
        match *state {
            Chunk::Size => {
                let Some(eol) = buf.iter().position(|&b| b == b'\n') else {
                    return if buf.len() > MAX_HEAD {
                        Err(Error::Invalid("chunk size line too long"))
                    } else {
                        Ok(Decoded::More)
                    };
                };
                let size = parse_chunk_size(&buf[..eol])?;
                buf.advance(eol + 1);
                *state = if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(left) => {
                if buf.is_empty() {
                    return Ok(Decoded::More);
                }
                let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let rest = left - n as u64;
                *state = if rest == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(rest)
                };
                return Ok(Decoded::Data(buf.split_to(n).freeze()));
            }
            Chunk::DataEnd => {
                if buf.starts_with(b"\r\n") {
                    buf.advance(2);
                } else if buf.starts_with(b"\n") {
                    buf.advance(1);
                } else if buf.is_empty() || buf[..] == b"\r"[..] {
                    return Ok(Decoded::More);
                } else {
                    return Err(Error::Invalid("chunk data not followed by CRLF"));
                }
                *state = Chunk::Size;
            }
            Chunk::Trailers => {
                if buf.starts_with(b"\r\n") {
                    buf.advance(2);
                    return Ok(Decoded::End);
                }
                if buf.starts_with(b"\n") {
                    buf.advance(1);
                    return Ok(Decoded::End);
                }
                let mut raw = [httparse::EMPTY_HEADER; 32];
                return match httparse::parse_headers(buf, &mut raw) {
                    Ok(httparse::Status::Complete((len, fields))) => {
                        let mut trailers = HeaderMap::with_capacity(fields.len());
                        for f in fields {
                            let name = HeaderName::from_bytes(f.name.as_bytes())
                                .map_err(|_| Error::Invalid("trailer name"))?;
                            let value = HeaderValue::from_bytes(f.value)
                                .map_err(|_| Error::Invalid("trailer value"))?;
                            trailers.append(name, value);
                        }
                        buf.advance(len);
                        Ok(Decoded::Trailers(trailers))
                    }
                    Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => Ok(Decoded::More),
                    Ok(httparse::Status::Partial) => Err(Error::HeadTooLarge),
                    Err(e) => Err(Error::Parse(e)),
                };
            }
        }
    }
}

/// `1a;ext=1\r` → 26.
fn parse_chunk_size(line: &[u8]) -> Result<u64, Error> {
    let mut size: u64 = 0;
    let mut digits = 0;
    for &b in line {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            b';' | b' ' | b'\t' | b'\r' => break,
            _ => return Err(Error::Invalid("chunk size")),
        };
        digits += 1;
        if digits > 15 {
            return Err(Error::Invalid("chunk size too large"));
        }
        size = size * 16 + u64::from(d);
    }
    if digits == 0 {
        return Err(Error::Invalid("chunk size"));
    }
    Ok(size)
}

/// A parsed response head.
struct Head {
    status: StatusCode,
    version: Version,
    reason: Option<ReasonPhrase>,
    headers: HeaderMap,
    keep_alive: bool,
}

/// Parses one response head off the front of `buf`; `None`: incomplete.
fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, Error> {
    // Where each name and value sit in the head, so that values can share
    // its bytes once it is split off the buffer.
    let mut at = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
    let (len, code, minor, reason, count) = {
        let bytes: &[u8] = buf;
        let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut []);
        match httparse::ParserConfig::default()
            .allow_obsolete_multiline_headers_in_responses(true)
            .parse_response_with_uninit_headers(&mut res, bytes, &mut raw)
        {
            Ok(httparse::Status::Complete(len)) => {
                let base = bytes.as_ptr() as usize;
                for (slot, h) in at.iter_mut().zip(res.headers.iter()) {
                    let name = h.name.as_ptr() as usize - base;
                    let value = h.value.as_ptr() as usize - base;
                    *slot = (
                        name as u32,
                        (name + h.name.len()) as u32,
                        value as u32,
                        (value + h.value.len()) as u32,
                    );
                }
                let code = res.code.unwrap_or(0);
                let reason = res.reason.filter(|r| {
                    !r.is_empty()
                        && StatusCode::from_u16(code)
                            .ok()
                            .and_then(|s| s.canonical_reason())
                            != Some(*r)
                });
                let reason = reason.and_then(|r| ReasonPhrase::try_from(r.as_bytes()).ok());
                (
                    len,
                    code,
                    res.version.unwrap_or(1),
                    reason,
                    res.headers.len(),
                )
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(Error::Invalid("too many headers")),
            Err(e) => return Err(Error::Parse(e)),
        }
    };
    let status = StatusCode::from_u16(code).map_err(|_| Error::Invalid("status code"))?;
    let version = if minor == 1 {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let head = buf.split_to(len).freeze();
    // hyper's server reuses a response's (cleared) header map for the next
    // request on the connection; room for that request's headers and the
    // X-Forwarded-* family spares growing it then.
    let mut headers = HeaderMap::with_capacity(count + 20);
    let mut keep_alive = version == Version::HTTP_11;
    let mut close = false;
    for &(ns, ne, vs, ve) in &at[..count] {
        let name = HeaderName::from_bytes(&head[ns as usize..ne as usize])
            .map_err(|_| Error::Invalid("header name"))?;
        let raw = head.slice(vs as usize..ve as usize);
        let value = HeaderValue::from_maybe_shared(raw.clone())
            .or_else(|_| unfold(&raw))
            .map_err(|_| Error::Invalid("header value"))?;
        if name == header::CONNECTION {
            if has_token(&value, b"close") {
                close = true;
            } else if has_token(&value, b"keep-alive") {
                keep_alive = true;
            }
        }
        headers.append(name, value);
    }
    Ok(Some(Head {
        status,
        version,
        reason,
        headers,
        keep_alive: keep_alive && !close,
    }))
}

/// A value folded over several lines (obsolete, but old backends send it)
/// made one line, as RFC 9112 §5.2 lets a proxy do and Go's client does:
/// each line break and the whitespace after it become one space.
fn unfold(value: &[u8]) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    let mut line = Vec::with_capacity(value.len());
    push_unfolded(&mut line, value);
    HeaderValue::from_bytes(&line)
}

/// Appends `value` made one line (see [`unfold`]).
pub(super) fn push_unfolded(out: &mut Vec<u8>, value: &[u8]) {
    let mut bytes = value.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if b == b'\r' || b == b'\n' {
            while bytes
                .next_if(|&b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
                .is_some()
            {}
            out.push(b' ');
        } else {
            out.push(b);
        }
    }
}

fn has_token(value: &HeaderValue, token: &[u8]) -> bool {
    value
        .as_bytes()
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// RFC 9112 6.3, as hyper's client applies it.
fn response_framing(head: &Head, method: &Method) -> Result<Framing, Error> {
    match head.status.as_u16() {
        101 | 204 | 304 => return Ok(Framing::Done),
        _ => {}
    }
    if *method == Method::HEAD {
        return Ok(Framing::Done);
    }
    if *method == Method::CONNECT && head.status.is_success() {
        return Ok(Framing::Done);
    }
    let h = &head.headers;
    if h.contains_key(header::TRANSFER_ENCODING) {
        if head.version == Version::HTTP_10 {
            return Err(Error::Invalid("transfer-encoding in an HTTP/1.0 response"));
        }
        let chunked_last = h
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .next_back()
            .and_then(|v| v.as_bytes().rsplit(|&b| b == b',').next())
            .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        return Ok(if chunked_last {
            Framing::Chunked(Chunk::Size)
        } else {
            Framing::Eof
        });
    }
    match content_length(h) {
        Some(Ok(0)) => Ok(Framing::Done),
        Some(Ok(n)) => Ok(Framing::Length(n)),
        Some(Err(())) => Err(Error::Invalid("content-length")),
        None => Ok(Framing::Eof),
    }
}

/// Every `Content-Length` value (comma lists included) must agree.
fn content_length(headers: &HeaderMap) -> Option<Result<u64, ()>> {
    let mut found: Option<u64> = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        if add_content_length(&mut found, value.as_bytes()).is_err() {
            return Some(Err(()));
        }
    }
    found.map(Ok)
}

/// Adds one `Content-Length` value (a comma list) to what the earlier
/// ones said; an error when a part is no number or disagrees.
pub(super) fn add_content_length(found: &mut Option<u64>, value: &[u8]) -> Result<(), ()> {
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return Err(());
        }
        let n = part.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        match *found {
            Some(prev) if prev != n => return Err(()),
            _ => *found = Some(n),
        }
    }
    Ok(())
}

/// Framing of the request body, as hyper's client chose it: a body known to
/// be empty sends the head as it is; otherwise the request's own
/// `Content-Length` stands, else a known size, else chunked.
fn request_framing(headers: &HeaderMap, body: &OutBody) -> ReqFraming {
    match body {
        OutBody::Full(data) if data.is_empty() => ReqFraming::None,
        OutBody::Full(data) => ReqFraming::Length(data.len() as u64, true),
        OutBody::Stream(b) if http_body::Body::is_end_stream(b) => ReqFraming::None,
        OutBody::Stream(b) => match content_length(headers) {
            Some(Ok(n)) => ReqFraming::Length(n, false),
            _ => match http_body::Body::size_hint(b).exact() {
                Some(n) => ReqFraming::Length(n, true),
                None => ReqFraming::Chunked,
            },
        },
    }
}

fn encode_head(out: &mut Vec<u8>, req: &RequestHead<'_>, framing: ReqFraming) {
    out.clear();
    out.reserve(64 + req.headers.len() * 32);
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.base_path.as_bytes());
    out.extend_from_slice(req.path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(host) = req.host {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let own_length = matches!(framing, ReqFraming::Length(_, true) | ReqFraming::Chunked);
    for (name, value) in req.headers {
        if *name == header::HOST || (own_length && *name == header::CONTENT_LENGTH) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        ReqFraming::Length(n, true) => {
            out.extend_from_slice(b"content-length: ");
            push_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        ReqFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        _ => {}
    }
    out.extend_from_slice(b"\r\n");
}

pub(super) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

pub(super) fn push_hex(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    fn parse(text: &str) -> Head {
        let mut buf = BytesMut::from(text.as_bytes());
        parse_head(&mut buf).unwrap().unwrap()
    }

    #[test]
    fn heads_and_framing() {
        let h = parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\nX-A: 2\r\n\r\nabc");
        assert_eq!(h.status, 200);
        assert!(h.keep_alive && h.reason.is_none());
        assert_eq!(h.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(
            response_framing(&h, &Method::GET).unwrap(),
            Framing::Length(3)
        );
        assert_eq!(response_framing(&h, &Method::HEAD).unwrap(), Framing::Done);

        let h = parse(
            "HTTP/1.1 200 Fine\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n",
        );
        assert_eq!(h.reason.as_ref().unwrap().as_bytes(), b"Fine");
        assert_eq!(
            response_framing(&h, &Method::GET).unwrap(),
            Framing::Chunked(Chunk::Size)
        );
        let h = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(response_framing(&h, &Method::GET).unwrap(), Framing::Eof);
        let h = parse("HTTP/1.0 200 OK\r\n\r\n");
        assert!(!h.keep_alive);
        assert_eq!(response_framing(&h, &Method::GET).unwrap(), Framing::Eof);
        let h = parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n");
        assert!(h.keep_alive);
        assert_eq!(response_framing(&h, &Method::GET).unwrap(), Framing::Done);
        let h = parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n");
        assert!(!h.keep_alive);
        let h = parse("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(response_framing(&h, &Method::GET).unwrap(), Framing::Done);
        let h = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
        assert!(response_framing(&h, &Method::GET).is_err());
        let h = parse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n");
        assert_eq!(
            response_framing(&h, &Method::GET).unwrap(),
            Framing::Length(5)
        );

        // Folded values are unfolded; bare control bytes stay refused.
        let h = parse("HTTP/1.1 200 OK\r\nX-A: one\r\n  two\r\n\tthree\r\nX-B: b\r\n\r\n");
        assert_eq!(h.headers["x-a"], "one two three");
        assert_eq!(h.headers["x-b"], "b");
        let mut control = BytesMut::from(&b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\n\r\n"[..]);
        assert!(parse_head(&mut control).is_err());

        let mut partial = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
        assert!(parse_head(&mut partial).unwrap().is_none());
        assert_eq!(partial.len(), 27, "an incomplete head stays buffered");
    }

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let wire = b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n";
        for step in [1, 2, 3, 7, wire.len()] {
            let mut state = Chunk::Size;
            let mut buf = BytesMut::new();
            let mut data = Vec::new();
            let mut trailers = None;
            let mut fed = 0;
            loop {
                match decode_chunked(&mut state, &mut buf).unwrap() {
                    Decoded::Data(d) => data.extend_from_slice(&d),
                    Decoded::Trailers(t) => {
                        trailers = Some(t);
                        break;
                    }
                    Decoded::End => break,
                    Decoded::More => {
                        let end = (fed + step).min(wire.len());
                        assert!(fed < end, "ran out of input");
                        buf.extend_from_slice(&wire[fed..end]);
                        fed = end;
                    }
                }
            }
            assert_eq!(data, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
            assert_eq!(trailers.unwrap()["x-t"], "1");
            assert!(buf.is_empty());
        }
        let mut state = Chunk::Size;
        let mut bad = BytesMut::from(&b"zz\r\n"[..]);
        assert!(decode_chunked(&mut state, &mut bad).is_err());
    }

    #[test]
    fn request_heads() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("client.example"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        let host = HeaderValue::from_static("backend:80");
        let req = RequestHead {
            method: &Method::PUT,
            base_path: "/base",
            path_and_query: "/p?q=1",
            host: Some(&host),
            headers: &headers,
        };
        let mut out = Vec::new();
        let body = OutBody::Full(Bytes::from_static(b"abc"));
        let framing = request_framing(&headers, &body);
        assert_eq!(framing, ReqFraming::Length(3, true));
        encode_head(&mut out, &req, framing);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "PUT /base/p?q=1 HTTP/1.1\r\nhost: backend:80\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 3\r\n\r\n"
        );
        let empty = OutBody::Stream(Body::empty());
        assert_eq!(request_framing(&headers, &empty), ReqFraming::None);
        let streamed = OutBody::Stream(Body::boxed(http_body_util::StreamBody::new(
            futures_util::stream::iter([Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(
                b"x",
            )))]),
        )));
        assert_eq!(
            request_framing(&headers, &streamed),
            ReqFraming::Length(99, false)
        );
        assert_eq!(
            request_framing(&HeaderMap::new(), &streamed),
            ReqFraming::Chunked
        );
        let mut n = Vec::new();
        push_decimal(&mut n, 0);
        push_decimal(&mut n, 18446744073709551615);
        push_hex(&mut n, 0x1a2b);
        assert_eq!(n, b"0184467440737095516151a2b");
    }

    /// A backend that answers each request with the given bytes, and
    /// returns what it received.
    async fn backend(
        answers: Vec<&'static [u8]>,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for answer in answers {
                let mut buf = [0u8; 4096];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    seen.extend_from_slice(&buf[..n]);
                    if n == 0 || seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                s.write_all(answer).await.unwrap();
            }
            seen
        });
        (addr, task)
    }

    fn get(headers: &HeaderMap) -> RequestHead<'_> {
        RequestHead {
            method: &Method::GET,
            base_path: "",
            path_and_query: "/",
            host: None,
            headers,
        }
    }

    fn post(headers: &HeaderMap) -> RequestHead<'_> {
        RequestHead {
            method: &Method::POST,
            base_path: "",
            path_and_query: "/up",
            host: None,
            headers,
        }
    }

    /// The data of a response body, read to its end.
    async fn read_all(body: &mut ResponseBody) -> Vec<u8> {
        let mut data = Vec::new();
        while let Some(frame) = body.frame().await {
            data.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        data
    }

    async fn exchange(
        conn: Box<Conn>,
        headers: &HeaderMap,
    ) -> (Response<()>, Vec<u8>, Option<Box<Conn>>) {
        let Outcome::Response(res) = conn.send(&get(headers), OutBody::Full(Bytes::new())).await
        else {
            panic!("no response");
        };
        let (parts, mut body) = res.into_parts();
        let mut data = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(d) = frame.unwrap().into_data() {
                data.extend_from_slice(&d);
            }
        }
        (Response::from_parts(parts, ()), data, body.take_reusable())
    }

    #[tokio::test]
    async fn keep_alive_exchanges_reuse_the_connection() {
        let (addr, task) = backend(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
        ])
        .await;
        let headers = HeaderMap::new();
        let conn = Conn::new(TcpStream::connect(addr).await.unwrap());
        let (res, data, conn) = exchange(conn, &headers).await;
        assert_eq!((res.status(), &data[..]), (StatusCode::OK, &b"ok"[..]));
        let mut conn = conn.expect("reusable");
        assert!(conn.is_usable());
        let (_, data, conn) = exchange(conn, &headers).await;
        assert_eq!(data, b"hi");
        let (res, data, conn) = exchange(conn.expect("reusable"), &headers).await;
        assert_eq!(
            (res.status(), &data[..]),
            (StatusCode::NOT_FOUND, &b"x"[..])
        );
        assert!(conn.is_none(), "the backend asked to close");
        let seen = task.await.unwrap();
        assert_eq!(
            seen.windows(14).filter(|w| w == b"GET / HTTP/1.1").count(),
            3
        );
    }

    #[tokio::test]
    async fn a_closed_idle_connection_is_not_usable_and_not_sent_on() {
        let (addr, task) = backend(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]).await;
        let headers = HeaderMap::new();
        let conn = Conn::new(TcpStream::connect(addr).await.unwrap());
        let (_, _, conn) = exchange(conn, &headers).await;
        let mut conn = conn.expect("reusable");
        task.await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!conn.is_usable(), "the backend closed it");
        match conn.send(&get(&headers), OutBody::Full(Bytes::new())).await {
            Outcome::NotSent(_) | Outcome::Failed { stale: true, .. } => {}
            _ => panic!("a request on a closed connection must be retryable"),
        }
    }

    #[tokio::test]
    async fn streamed_bodies_are_framed_and_read_until_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.ends_with(b"0\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0);
                seen.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil close")
                .await
                .unwrap();
            seen
        });
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(2);
        let body = Body::boxed(http_body_util::StreamBody::new(
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
            ),
        ));
        let feeder = tokio::spawn(async move {
            for part in ["abc", "", "defgh"] {
                tx.send(Ok(Frame::data(Bytes::from(part)))).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        });
        let headers = HeaderMap::new();
        let req = post(&headers);
        let conn = Conn::new(TcpStream::connect(addr).await.unwrap());
        let Outcome::Response(res) = conn.send(&req, OutBody::Stream(body)).await else {
            panic!("no response");
        };
        feeder.await.unwrap();
        let mut body = res.into_body();
        assert_eq!(read_all(&mut body).await, b"until close");
        assert!(body.take_reusable().is_none());
        let seen = String::from_utf8(task.await.unwrap()).unwrap();
        assert!(seen.contains("transfer-encoding: chunked\r\n"), "{seen}");
        assert!(
            seen.ends_with("\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"),
            "{seen}"
        );
    }

    #[tokio::test]
    async fn an_answer_before_the_body_is_read_is_relayed_though_the_body_fails() {
        // Answers at once and closes with the body unread: the kernel then
        // resets what is still sent.
        let (addr, task) = backend(vec![
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n\r\nbig",
        ])
        .await;
        let chunks = std::iter::repeat_n(Bytes::from(vec![b'x'; 64 << 10]), 1024);
        let body = Body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
            chunks.map(|c| Ok::<_, std::io::Error>(Frame::data(c))),
        )));
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(64u64 << 20));
        let req = post(&headers);
        let conn = Conn::new(TcpStream::connect(addr).await.unwrap());
        let sending = conn.send(&req, OutBody::Stream(body));
        let Outcome::Response(res) =
            tokio::time::timeout(std::time::Duration::from_secs(10), sending)
                .await
                .expect("answered in time")
        else {
            panic!("the early answer is lost");
        };
        task.await.unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let mut body = res.into_body();
        assert_eq!(read_all(&mut body).await, b"big");
        assert!(
            body.take_reusable().is_none(),
            "the request did not go out whole"
        );
    }

    #[tokio::test]
    async fn upgrades_hand_over_the_connection_with_early_bytes() {
        let (addr, _task) = backend(vec![
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nearly",
        ])
        .await;
        let headers = HeaderMap::new();
        let conn = Conn::new(TcpStream::connect(addr).await.unwrap());
        match conn.send(&get(&headers), OutBody::Full(Bytes::new())).await {
            Outcome::Upgraded(res, up) => {
                assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
                assert_eq!(res.headers()["upgrade"], "websocket");
                assert_eq!(&up.leftover[..], b"early");
            }
            _ => panic!("expected an upgrade"),
        }
    }
}
