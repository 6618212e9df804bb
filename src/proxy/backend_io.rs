//! The socket to a backend server: plain TCP, or TLS over TCP for
//! `https://` servers. `proxy::h1` drives both the same way; the plain case
//! keeps tokio's own calls, so an `http://` server pays one branch.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub enum BackendIo {
    Tcp(TcpStream),
    /// Boxed: a TLS session is large, and most connections are plain.
    Tls(Box<TlsStream<TcpStream>>),
}

impl From<TcpStream> for BackendIo {
    fn from(io: TcpStream) -> Self {
        BackendIo::Tcp(io)
    }
}

impl From<TlsStream<TcpStream>> for BackendIo {
    fn from(io: TlsStream<TcpStream>) -> Self {
        BackendIo::Tls(Box::new(io))
    }
}

impl BackendIo {
    /// Whether an idle connection can carry a request: the server has not
    /// closed it, nor sent anything unasked. Costs no system call unless
    /// the socket saw an event since the last read. On TLS, records that
    /// carry no data (a TLS 1.3 session ticket) are taken in and do not
    /// count.
    pub fn is_idle_and_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self {
            BackendIo::Tcp(io) => match io.poll_read_ready(&mut cx) {
                Poll::Pending => true,
                Poll::Ready(Err(_)) => false,
                Poll::Ready(Ok(())) => {
                    let mut probe = [0u8; 1];
                    matches!(io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
                }
            },
            BackendIo::Tls(io) => match io.get_ref().0.poll_read_ready(&mut cx) {
                Poll::Pending => true,
                Poll::Ready(Err(_)) => false,
                Poll::Ready(Ok(())) => {
                    let mut probe = [0u8; 1];
                    let mut buf = ReadBuf::new(&mut probe);
                    Pin::new(&mut **io)
                        .poll_read(&mut cx, &mut buf)
                        .is_pending()
                }
            },
        }
    }

    /// Reads what the socket has into `buf`.
    pub fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        match self {
            // tokio's own read: it marks the socket drained after a short
            // read, which spares the next read's `EAGAIN`.
            BackendIo::Tcp(io) => pin!(io.read_buf(buf)).poll(cx),
            BackendIo::Tls(io) => pin!(io.read_buf(buf)).poll(cx),
        }
    }

    /// Writes what the socket takes of `bufs`, waiting for room when it
    /// takes nothing.
    pub fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self {
            BackendIo::Tcp(io) => loop {
                match io.try_write_vectored(bufs) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::task::ready!(io.poll_write_ready(cx))?;
                    }
                    r => return Poll::Ready(r),
                }
            },
            BackendIo::Tls(io) => Pin::new(&mut **io).poll_write_vectored(cx, bufs),
        }
    }

    /// Sends what TLS still holds; nothing to do on plain TCP.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            BackendIo::Tcp(_) => Poll::Ready(Ok(())),
            BackendIo::Tls(io) => Pin::new(&mut **io).poll_flush(cx),
        }
    }
}

impl AsyncRead for BackendIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendIo::Tcp(io) => Pin::new(io).poll_read(cx, buf),
            BackendIo::Tls(io) => Pin::new(&mut **io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for BackendIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BackendIo::Tcp(io) => Pin::new(io).poll_write(cx, buf),
            BackendIo::Tls(io) => Pin::new(&mut **io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        BackendIo::poll_write_vectored(self.get_mut(), cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        BackendIo::poll_flush(self.get_mut(), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BackendIo::Tcp(io) => Pin::new(io).poll_shutdown(cx),
            BackendIo::Tls(io) => Pin::new(&mut **io).poll_shutdown(cx),
        }
    }
}
