//! Bodies read to their end before they go on (the `buffering`
//! middleware): the first bytes in memory, up to a threshold, the rest in
//! an unnamed temporary file, with a cap on the whole. A spooled body can
//! be sent any number of times.
//!
//! The file is unlinked from the start (`O_TMPFILE`, through `tempfile`),
//! so the system reclaims it when the last handle closes, even if escale
//! dies. Disk I/O runs on tokio's blocking pool, one chunk at a time, so a
//! body costs at most its memory threshold plus one chunk in flight.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::task::JoinHandle;

use super::body::{Body, BoxError};

/// How much of a spilled body is read back from disk at a time.
const READ_CHUNK: u64 = 64 * 1024;

/// How a body may be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes kept in memory; the rest goes to disk.
    pub mem: u64,
    /// The most the body may hold; `None`: no limit.
    pub max: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
    /// The body failed while it was read.
    #[error("{0}")]
    Body(BoxError),
    #[error("cannot keep the body in a temporary file in {dir}: {source}")]
    Disk {
        dir: String,
        #[source]
        source: io::Error,
    },
}

fn disk(source: io::Error) -> SpoolError {
    SpoolError::Disk {
        dir: std::env::temp_dir().display().to_string(),
        source,
    }
}

/// A body read in full.
#[derive(Debug)]
pub struct Spooled {
    memory: Bytes,
    /// What did not fit in memory, from offset 0.
    file: Option<Arc<File>>,
    file_len: u64,
    trailers: Option<HeaderMap>,
}

impl Spooled {
    pub fn len(&self) -> u64 {
        self.memory.len() as u64 + self.file_len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether part of the body is on disk.
    pub fn spilled(&self) -> bool {
        self.file.is_some()
    }

    /// A copy of the body to send, of exact size.
    pub fn body(&self) -> Body {
        if self.file.is_none() && self.trailers.is_none() {
            return Body::full(self.memory.clone());
        }
        Body::boxed(Replay {
            memory: Some(self.memory.clone()),
            file: self.file.clone(),
            offset: 0,
            end: self.file_len,
            reading: None,
            trailers: self.trailers.clone(),
        })
    }
}

/// Reads `body` to its end within `limits`. Over `limits.max`, it stops
/// reading at once.
pub async fn spool<B>(mut body: B, limits: Limits) -> Result<Spooled, SpoolError>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mem = usize::try_from(limits.mem).unwrap_or(usize::MAX);
    let mut memory: Vec<u8> = Vec::new();
    // One allocation when the size is known.
    if let Some(n) = body.size_hint().exact() {
        memory.reserve_exact(usize::try_from(n).unwrap_or(usize::MAX).min(mem));
    }
    let mut file: Option<File> = None;
    let mut file_len: u64 = 0;
    let mut trailers: Option<HeaderMap> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| SpoolError::Body(e.into()))?;
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers.get_or_insert_with(HeaderMap::new).extend(t);
                }
                continue;
            }
        };
        let total = memory.len() as u64 + file_len + data.len() as u64;
        if let Some(max) = limits.max
            && total > max
        {
            return Err(SpoolError::TooLarge(max));
        }
        let room = mem.saturating_sub(memory.len()).min(data.len());
        if room > 0 {
            grow_within(&mut memory, room, mem);
            memory.extend_from_slice(&data[..room]);
        }
        if room < data.len() {
            let rest = data.slice(room..);
            file_len += rest.len() as u64;
            let f = match file.take() {
                Some(f) => f,
                None => blocking(tempfile::tempfile).await?,
            };
            file = Some(
                blocking(move || {
                    let mut f = f;
                    f.write_all(&rest).map(|()| f)
                })
                .await?,
            );
        }
    }
    Ok(Spooled {
        memory: Bytes::from(memory),
        file: file.map(Arc::new),
        file_len,
        trailers,
    })
}

/// Makes room for `more` bytes without going past `cap`: doubling, as a
/// `Vec` does, would let a body of just over half the threshold take twice
/// its memory.
fn grow_within(buf: &mut Vec<u8>, more: usize, cap: usize) {
    let want = buf.len() + more;
    if want > buf.capacity() {
        let target = buf
            .capacity()
            .saturating_mul(2)
            .max(want)
            .min(cap.max(want));
        buf.reserve_exact(target - buf.len());
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, SpoolError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(disk),
        Err(e) => Err(disk(io::Error::other(e))),
    }
}

/// A spooled body being sent: the memory part, then the file read back a
/// chunk at a time at this copy's own offset (several copies may be read
/// at once: a retry can start while a dropped attempt's upload winds down).
struct Replay {
    memory: Option<Bytes>,
    file: Option<Arc<File>>,
    offset: u64,
    end: u64,
    reading: Option<JoinHandle<io::Result<Bytes>>>,
    trailers: Option<HeaderMap>,
}

impl http_body::Body for Replay {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if let Some(memory) = this.memory.take().filter(|m| !m.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(memory))));
        }
        if this.offset < this.end
            && let Some(file) = &this.file
        {
            let reading = this.reading.get_or_insert_with(|| {
                let file = file.clone();
                let at = this.offset;
                let len = (this.end - at).min(READ_CHUNK) as usize;
                tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0; len];
                    file.read_exact_at(&mut buf, at)?;
                    Ok(Bytes::from(buf))
                })
            });
            let read = ready!(Pin::new(reading).poll(cx));
            this.reading = None;
            return Poll::Ready(Some(match read {
                Ok(Ok(chunk)) => {
                    this.offset += chunk.len() as u64;
                    Ok(Frame::data(chunk))
                }
                Ok(Err(e)) => Err(e),
                Err(e) => Err(io::Error::other(e)),
            }));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.memory.as_ref().is_none_or(Bytes::is_empty)
            && self.offset >= self.end
            && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let memory = self.memory.as_ref().map_or(0, |m| m.len() as u64);
        SizeHint::with_exact(memory + (self.end - self.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn chunked(parts: &[&[u8]]) -> Body {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::copy_from_slice(p))))
            .collect();
        Body::boxed(StreamBody::new(futures_util::stream::iter(frames)))
    }

    async fn read(body: Body) -> Vec<u8> {
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    fn limits(mem: u64, max: Option<u64>) -> Limits {
        Limits { mem, max }
    }

    #[tokio::test]
    async fn small_bodies_stay_in_memory_and_replay() {
        let s = spool(chunked(&[b"hello ", b"world"]), limits(64, None))
            .await
            .unwrap();
        assert_eq!(s.len(), 11);
        assert!(!s.spilled());
        for _ in 0..3 {
            let body = s.body();
            assert_eq!(http_body::Body::size_hint(&body).exact(), Some(11));
            assert_eq!(read(body).await, b"hello world");
        }
        let empty = spool(Body::empty(), limits(64, Some(0))).await.unwrap();
        assert!(empty.is_empty() && http_body::Body::is_end_stream(&empty.body()));
    }

    #[tokio::test]
    async fn bodies_over_the_memory_threshold_spill_to_disk_and_replay_whole() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let parts: Vec<&[u8]> = data.chunks(7_000).collect();
        let s = spool(chunked(&parts), limits(10_000, Some(300_000)))
            .await
            .unwrap();
        assert!(s.spilled());
        assert_eq!(s.memory.len(), 10_000, "exactly the threshold in memory");
        assert!(s.memory.len() <= 10_000);
        assert_eq!(s.len(), 300_000);
        // Two copies read at once do not disturb each other.
        let (a, b) = tokio::join!(read(s.body()), read(s.body()));
        assert!(a == data && b == data);
        let body = s.body();
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(300_000));
    }

    #[tokio::test]
    async fn the_limit_counts_every_byte() {
        let at_limit = spool(chunked(&[b"12345", b"67890"]), limits(4, Some(10))).await;
        assert_eq!(at_limit.unwrap().len(), 10);
        let over = spool(chunked(&[b"12345", b"67890", b"x"]), limits(4, Some(10))).await;
        assert!(matches!(over, Err(SpoolError::TooLarge(10))), "{over:?}");
        let over_in_memory = spool(chunked(&[b"123456"]), limits(64, Some(5))).await;
        assert!(matches!(over_in_memory, Err(SpoolError::TooLarge(5))));
    }

    #[tokio::test]
    async fn trailers_are_kept_after_the_data() {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Ok(Frame::trailers({
                let mut t = HeaderMap::new();
                t.insert("grpc-status", "0".parse().unwrap());
                t
            })),
        ];
        let body = Body::boxed(StreamBody::new(futures_util::stream::iter(frames)));
        let s = spool(body, limits(2, None)).await.unwrap();
        let collected = s.body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
        assert_eq!(collected.to_bytes().as_ref(), b"abc");
    }

    #[tokio::test]
    async fn a_failing_body_is_reported_as_such() {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Err("client went away".into()),
        ];
        let body = Body::boxed(StreamBody::new(futures_util::stream::iter(frames)));
        let err = spool(body, limits(2, None)).await.unwrap_err();
        assert!(matches!(err, SpoolError::Body(_)));
        assert_eq!(err.to_string(), "client went away");
    }

    #[test]
    fn memory_grows_no_further_than_the_threshold() {
        let mut buf = Vec::new();
        for _ in 0..10 {
            let n = (550 - buf.len()).min(100);
            grow_within(&mut buf, n, 550);
            buf.extend(std::iter::repeat_n(0u8, n));
        }
        assert_eq!(buf.len(), 550);
        assert_eq!(buf.capacity(), 550);
    }
}
