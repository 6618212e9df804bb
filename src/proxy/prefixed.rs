//! A connection whose first bytes were already read (to tell its protocol):
//! reads return those bytes first, then go to the socket. Reading them, rather
//! than peeking and reading again, saves a syscall on every new connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

pub struct Prefixed<I> {
    first: Vec<u8>,
    /// How much of `first` was handed out.
    taken: usize,
    io: I,
}

impl<I> Prefixed<I> {
    pub fn new(first: Vec<u8>, io: I) -> Self {
        Prefixed {
            first,
            taken: 0,
            io,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.taken < this.first.len() {
            let rest = &this.first[this.taken..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.taken += n;
            if this.taken == this.first.len() {
                // A long-lived connection should not keep the buffer.
                this.first = Vec::new();
                this.taken = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

write_through!(Prefixed, io);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn hands_out_the_first_bytes_then_reads_the_socket() {
        let (near, mut far) = tokio::io::duplex(64);
        far.write_all(b" world").await.unwrap();
        drop(far);
        let mut io = Prefixed::new(b"hello".to_vec(), near);
        // A reader with less room than the prefix gets it in pieces.
        let mut small = [0u8; 3];
        assert_eq!(io.read(&mut small).await.unwrap(), 3);
        assert_eq!(&small, b"hel");
        let mut rest = String::new();
        io.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "lo world");
        assert!(
            io.first.capacity() == 0,
            "the prefix buffer is freed once read"
        );
    }
}
