//! Lingering close of HTTP/1 connections.
//!
//! A request can be answered before its body has been read: a 401 from
//! basic auth, a 404, a backend's early 413. hyper then closes the
//! connection, while the client may still be sending the body. Closing a
//! socket with data unread, or arriving after, makes the kernel answer with
//! a reset: the client's writes fail before it reads the answer, and over a
//! real network the reset can discard an answer not yet read.
//!
//! As nginx (`lingering_close`) and, with a fixed wait, Go's server (so
//! Traefik): such a connection is half-closed, and what the client still
//! sends is read and discarded until it closes its side, pauses too long,
//! or the lingering time is over. Only connections whose last request body
//! was left unread linger; others close at once.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::watchdog::{Activity, Phase};

/// The longest a closing connection keeps reading (nginx's `lingering_time`).
const LINGER_AT_MOST: Duration = Duration::from_secs(30);
/// How long the client may pause its sending before the connection closes
/// anyway (nginx's `lingering_timeout`).
const LINGER_PAUSE: Duration = Duration::from_secs(5);

/// A request's body as hyper hands it, noting on its HTTP/1 connection
/// whether the client may still be sending it, and each part that arrives
/// (the watchdog cuts a body that stops arriving, `Phase::Body`).
pub struct RequestBody {
    incoming: Incoming,
    /// `None` on HTTP/2 (an early answer resets only the stream) and once
    /// the body has been read to its end.
    connection: Option<Arc<Activity>>,
}

impl RequestBody {
    /// `connection`: the HTTP/1 connection the request arrived on.
    pub fn new(incoming: Incoming, connection: Option<&Arc<Activity>>) -> Self {
        let unread = !http_body::Body::is_end_stream(&incoming);
        let connection = connection.filter(|_| unread).cloned();
        if let Some(activity) = &connection {
            activity.note_body_unread(true);
            activity.enter(Phase::Body);
        }
        RequestBody {
            incoming,
            connection,
        }
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.incoming).poll_frame(cx);
        if let (Poll::Ready(frame), Some(activity)) = (&polled, &self.connection) {
            // Progress for the watchdog, or the body's end. Only while the
            // connection is reading it: an answer may have ended first.
            let reading = activity.phase() == Phase::Body;
            match frame {
                Some(_) if reading => activity.enter(Phase::Body),
                Some(_) => {}
                None => {
                    activity.note_body_unread(false);
                    if reading {
                        activity.enter(Phase::Busy);
                    }
                    self.connection = None;
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

/// Half-closes `io`, then reads and discards what its client still sends,
/// until the client closes, pauses for `LINGER_PAUSE`, or `LINGER_AT_MOST`
/// has passed. Dropping `io` afterwards closes it.
pub async fn linger<I: AsyncRead + AsyncWrite + Unpin>(mut io: I) {
    // hyper has usually half-closed already; a second shutdown is harmless.
    if io.shutdown().await.is_err() {
        return;
    }
    let until = Instant::now() + LINGER_AT_MOST;
    let mut discard = [0u8; 16 * 1024];
    loop {
        let pause_over = (Instant::now() + LINGER_PAUSE).min(until);
        match tokio::time::timeout_at(pause_over, io.read(&mut discard)).await {
            Ok(Ok(n)) if n > 0 => continue,
            // Closed by the client, failed, or out of time.
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    #[tokio::test]
    async fn lingers_until_the_client_closes_discarding_what_it_sends() {
        let (server, mut client) = duplex(1024);
        let lingering = tokio::spawn(linger(server));
        // The server's side is half-closed at once...
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        // ...and keeps reading: far more than the pipe holds goes through.
        client.write_all(&vec![b'x'; 1 << 20]).await.unwrap();
        assert!(!lingering.is_finished());
        drop(client);
        tokio::time::timeout(Duration::from_secs(5), lingering)
            .await
            .expect("done once the client closed")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_when_the_client_pauses_or_lingers_too_long() {
        let (server, _silent) = duplex(1024);
        let started = Instant::now();
        linger(server).await;
        assert_eq!(started.elapsed(), LINGER_PAUSE);

        // A client that keeps sending a little is cut at the lingering time.
        let (server, mut trickling) = duplex(1024);
        let lingering = tokio::spawn(linger(server));
        let started = Instant::now();
        while !lingering.is_finished() {
            let _ = trickling.write_all(b"x").await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let took = started.elapsed();
        assert!(
            took >= LINGER_AT_MOST && took <= LINGER_AT_MOST + Duration::from_secs(1),
            "{took:?}"
        );
    }
}
