//! The proxy: entrypoint listeners, request handling, forwarding to backends.

/// `AsyncWrite` for a transport wrapper that only changes how its transport
/// is read: every write goes straight to the field named.
macro_rules! write_through {
    ($wrapper:ident, $field:ident) => {
        impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $wrapper<I> {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                tokio::io::AsyncWrite::poll_write(std::pin::Pin::new(&mut self.$field), cx, buf)
            }

            fn poll_write_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                tokio::io::AsyncWrite::poll_write_vectored(
                    std::pin::Pin::new(&mut self.$field),
                    cx,
                    bufs,
                )
            }

            fn is_write_vectored(&self) -> bool {
                tokio::io::AsyncWrite::is_write_vectored(&self.$field)
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                tokio::io::AsyncWrite::poll_flush(std::pin::Pin::new(&mut self.$field), cx)
            }

            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                tokio::io::AsyncWrite::poll_shutdown(std::pin::Pin::new(&mut self.$field), cx)
            }
        }
    };
}

pub mod accept;
pub mod access_log;
pub mod backend_io;
pub mod body;
pub mod composite;
pub mod error;
pub mod forward;
pub mod gate;
pub mod h1;
pub mod handler;
pub mod headers;
pub mod linger;
pub mod observe;
pub mod pool;
pub mod prefixed;
pub mod relay;
pub mod server;
pub mod sniff;
pub mod spool;
pub mod spread;
pub mod target;
pub mod threads;
pub mod transport;
pub mod watchdog;
