//! Accepting connections without registering them with this thread's
//! reactor: a connection is registered by the thread that serves it, which
//! is not always the one that accepted it (`spread`). tokio's listener
//! registers each connection it accepts, and moving one to another thread
//! would cost a deregistration and a second registration.

use std::net::SocketAddr;

/// A listening socket, read by one serving thread.
pub struct Acceptor {
    #[cfg(unix)]
    listener: tokio::io::unix::AsyncFd<mio::net::TcpListener>,
    #[cfg(not(unix))]
    listener: tokio::net::TcpListener,
}

impl Acceptor {
    /// Registers `listener` with the current thread's reactor.
    pub fn new(listener: std::net::TcpListener) -> std::io::Result<Acceptor> {
        listener.set_nonblocking(true)?;
        #[cfg(unix)]
        // SAFETY: the mio listener owns its descriptor and closes it only
        // when dropped, which the `AsyncFd` that owns it does last.
        let listener = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(
                mio::net::TcpListener::from_std(listener),
                tokio::io::Interest::READABLE,
            )
        }
        .map_err(std::io::Error::from)?;
        #[cfg(not(unix))]
        let listener = tokio::net::TcpListener::from_std(listener)?;
        Ok(Acceptor { listener })
    }

    /// The next connection, non-blocking and not yet registered anywhere.
    #[cfg(unix)]
    pub async fn accept(&self) -> std::io::Result<(std::net::TcpStream, SocketAddr)> {
        loop {
            let mut ready = self.listener.readable().await?;
            // `accept4` with SOCK_NONBLOCK: no second syscall to set it.
            if let Ok(accepted) = ready.try_io(|listener| listener.get_ref().accept()) {
                return accepted.map(|(stream, remote)| (stream.into(), remote));
            }
        }
    }

    /// The next connection, non-blocking and not yet registered anywhere.
    #[cfg(not(unix))]
    pub async fn accept(&self) -> std::io::Result<(std::net::TcpStream, SocketAddr)> {
        let (stream, remote) = self.listener.accept().await?;
        Ok((stream.into_std()?, remote))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_are_non_blocking_and_registrable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let acceptor = Acceptor::new(listener).unwrap();
        let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
        let (accepted, remote) = acceptor.accept().await.unwrap();
        assert_eq!(remote, client.local_addr().unwrap());
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: F_GETFL only reads the flags of a descriptor we own.
            let flags = unsafe { libc::fcntl(accepted.as_raw_fd(), libc::F_GETFL) };
            assert_ne!(flags & libc::O_NONBLOCK, 0, "non-blocking");
        }
        let mut served = tokio::net::TcpStream::from_std(accepted).unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        client.write_all(b"ping").await.unwrap();
        let mut got = [0; 4];
        served.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
    }
}
