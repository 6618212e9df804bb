//! Keeps an entrypoint's connections spread evenly over the serving threads.
//!
//! Each serving thread accepts on its own socket of an `SO_REUSEPORT` group,
//! and the kernel picks the socket by a hash of the connection's addresses:
//! even on average, but a few dozen long-lived connections often land 40 on
//! one thread and 24 on the other, and a connection never moves after. The
//! busier thread then answers late (scenario a of the benchmark, or a
//! handful of keep-alive connections from a load balancer in front). So a
//! thread that accepts a connection while it serves clearly more than the
//! least busy thread hands the socket over to that thread, before reading
//! anything from it or registering it (`accept`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A connection handed from one serving thread to another.
struct Handed {
    stream: std::net::TcpStream,
    remote: SocketAddr,
    tenancy: Tenancy,
}

/// One entrypoint's connection counts and hand-over queues, one per thread.
struct Spread {
    live: Box<[AtomicUsize]>,
    inboxes: Box<[mpsc::UnboundedSender<Handed>]>,
}

/// A serving thread's place in its entrypoint's [`Spread`].
pub struct Seat {
    spread: Arc<Spread>,
    thread: usize,
    inbox: mpsc::UnboundedReceiver<Handed>,
}

/// A connection counted as served by a thread until this is dropped.
pub struct Tenancy {
    spread: Arc<Spread>,
    thread: usize,
}

impl Drop for Tenancy {
    fn drop(&mut self) {
        self.spread.live[self.thread].fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection to serve on this thread.
pub type Placed = (TcpStream, SocketAddr, Tenancy);

/// The seats of one entrypoint, one per serving thread, in thread order.
pub fn seats(threads: usize) -> Vec<Seat> {
    let (inboxes, receivers): (Vec<_>, Vec<_>) =
        (0..threads).map(|_| mpsc::unbounded_channel()).unzip();
    let spread = Arc::new(Spread {
        live: (0..threads).map(|_| AtomicUsize::new(0)).collect(),
        inboxes: inboxes.into(),
    });
    receivers
        .into_iter()
        .enumerate()
        .map(|(thread, inbox)| Seat {
            spread: spread.clone(),
            thread,
            inbox,
        })
        .collect()
}

impl Spread {
    fn enter(self: &Arc<Self>, thread: usize) -> Tenancy {
        self.live[thread].fetch_add(1, Ordering::Relaxed);
        Tenancy {
            spread: self.clone(),
            thread,
        }
    }
}

impl Seat {
    /// Places a connection this thread accepted: `Some` to serve it here,
    /// `None` when it went to a less busy thread (or could not be registered).
    pub fn place(&self, stream: std::net::TcpStream, remote: SocketAddr) -> Option<Placed> {
        let live = self.spread.live.iter().map(|n| n.load(Ordering::Relaxed));
        let target = destination(live, self.thread);
        if target == self.thread {
            return self.serve_here(stream, remote);
        }
        let tenancy = self.spread.enter(target);
        let handed = Handed {
            stream,
            remote,
            tenancy,
        };
        match self.spread.inboxes[target].send(handed) {
            Ok(()) => None,
            // That thread has stopped (shutting down): serve it here.
            Err(mpsc::error::SendError(handed)) => self.serve_here(handed.stream, handed.remote),
        }
    }

    fn serve_here(&self, stream: std::net::TcpStream, remote: SocketAddr) -> Option<Placed> {
        match TcpStream::from_std(stream) {
            Ok(stream) => Some((stream, remote, self.spread.enter(self.thread))),
            Err(e) => {
                tracing::debug!(%remote, error = %e, "connection lost before it was served");
                None
            }
        }
    }

    /// The next connection another thread handed to this one.
    pub async fn handed(&mut self) -> Option<Placed> {
        loop {
            let Handed {
                stream,
                remote,
                tenancy,
            } = self.inbox.recv().await?;
            match TcpStream::from_std(stream) {
                Ok(stream) => return Some((stream, remote, tenancy)),
                Err(e) => {
                    tracing::debug!(%remote, error = %e, "connection lost before it was served")
                }
            }
        }
    }
}

/// The thread a connection accepted by `me` goes to, given each thread's
/// live connections: the least busy one when `me` serves more than it by a
/// margin; else `me`. The margin (two, and an eighth) keeps short-lived
/// connections, whose counts come and go, from being moved back and forth.
fn destination(live: impl Iterator<Item = usize>, me: usize) -> usize {
    let (mut mine, mut least, mut fewest) = (0, me, usize::MAX);
    for (thread, n) in live.enumerate() {
        if thread == me {
            mine = n;
        }
        if n < fewest {
            (least, fewest) = (thread, n);
        }
    }
    if fewest != usize::MAX && mine > fewest + 2 + fewest / 8 {
        least
    } else {
        me
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_a_connection_unless_clearly_busier() {
        assert_eq!(destination([0].into_iter(), 0), 0);
        assert_eq!(destination([0, 0].into_iter(), 1), 1);
        assert_eq!(destination([2, 0].into_iter(), 0), 0);
        assert_eq!(destination([3, 0].into_iter(), 0), 1);
        assert_eq!(destination([0, 3].into_iter(), 1), 0);
        // An eighth of the least busy thread's count is tolerated too.
        assert_eq!(destination([37, 32].into_iter(), 0), 0);
        assert_eq!(destination([39, 32].into_iter(), 0), 1);
        // The least busy of several.
        assert_eq!(destination([9, 5, 2, 4].into_iter(), 0), 2);
        assert_eq!(destination([9, 5, 2, 4].into_iter(), 3), 3);
    }

    /// A connection accepted by `listener`, and its client end (kept open).
    async fn accepted(
        listener: &tokio::net::TcpListener,
        clients: &mut Vec<TcpStream>,
    ) -> (std::net::TcpStream, SocketAddr) {
        let address = listener.local_addr().unwrap();
        clients.push(TcpStream::connect(address).await.unwrap());
        let (stream, remote) = listener.accept().await.unwrap();
        (stream.into_std().unwrap(), remote)
    }

    #[tokio::test]
    async fn a_busier_thread_hands_connections_to_the_least_busy_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut seats = seats(2);
        let mut clients = Vec::new();
        let mut kept = Vec::new();
        for _ in 0..3 {
            let (stream, remote) = accepted(&listener, &mut clients).await;
            kept.push(
                seats[0]
                    .place(stream, remote)
                    .expect("kept while close to even"),
            );
        }
        let (stream, remote) = accepted(&listener, &mut clients).await;
        assert!(
            seats[0].place(stream, remote).is_none(),
            "3 against 0: handed over"
        );
        let (stream, handed_remote, tenancy) = seats[1].handed().await.unwrap();
        assert_eq!(handed_remote, remote);
        assert_eq!(stream.peer_addr().unwrap(), remote);
        assert_eq!(tenancy.thread, 1);
        let live = |seats: &[Seat]| -> Vec<usize> {
            let spread = &seats[0].spread;
            spread
                .live
                .iter()
                .map(|n| n.load(Ordering::Relaxed))
                .collect()
        };
        assert_eq!(live(&seats), [3, 1]);
        drop(tenancy);
        kept.pop();
        assert_eq!(live(&seats), [2, 0], "counts fall as connections end");
    }

    #[tokio::test]
    async fn a_stopped_thread_leaves_the_connection_where_it_was_accepted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut seats = seats(2);
        drop(seats.pop());
        let mut clients = Vec::new();
        let mut kept = Vec::new();
        for _ in 0..5 {
            let (stream, remote) = accepted(&listener, &mut clients).await;
            kept.push(seats[0].place(stream, remote).expect("served here"));
        }
        assert!(kept.iter().all(|(_, _, t)| t.thread == 0));
    }
}
