//! The time limits of an HTTP/1 connection between requests: how long it may
//! wait idle for its next request (`idleTimeout`) and how long a request's
//! head may take to arrive once it has begun (`readTimeout`), as Go's server,
//! and so Traefik, applies them; and how long a request's body may pause
//! (`readTimeout` too: Traefik bounds the whole request, escale the pauses,
//! as nginx's `client_body_timeout` does).
//!
//! hyper's own header-read timeout arms a timer for every request, and covers
//! the idle wait with the same limit. Here each connection has one coarse
//! timer instead: the connection notes what it is doing (a relaxed store per
//! request and per phase), and the timer looks, a few times per limit,
//! whether it has moved on since its last look.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Instant;

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Phase {
    /// Waiting for the next request's first byte.
    Idle = 0,
    /// A request's head has begun to arrive.
    Head = 1,
    /// A request is being answered (the response may stream for as long as
    /// it takes, and the request's body once it has arrived whole).
    Busy = 2,
    /// A request's body is arriving: each part read is progress, and a
    /// client that stops sending is cut at the body limit.
    Body = 3,
}

/// The phase of one connection, and how often it changed. Written and read
/// by the connection's own task only (hyper's reads, the service, the
/// response body, the watchdog): relaxed loads and stores suffice.
pub struct Activity {
    /// `changes << 2 | phase`.
    state: AtomicU64,
    /// Whether the last request's body was left unread: its client may
    /// still be sending it when the connection closes (`proxy::linger`).
    body_unread: AtomicBool,
}

impl Activity {
    pub fn new(phase: Phase) -> Arc<Activity> {
        Arc::new(Activity {
            state: AtomicU64::new(phase as u64),
            body_unread: AtomicBool::new(false),
        })
    }

    pub fn phase(&self) -> Phase {
        phase_of(self.state.load(Ordering::Relaxed))
    }

    pub fn enter(&self, phase: Phase) {
        let old = self.state.load(Ordering::Relaxed);
        self.state
            .store(((old >> 2) + 1) << 2 | phase as u64, Ordering::Relaxed);
    }

    pub fn note_body_unread(&self, unread: bool) {
        self.body_unread.store(unread, Ordering::Relaxed);
    }

    pub fn body_unread(&self) -> bool {
        self.body_unread.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> u64 {
        self.state.load(Ordering::Relaxed)
    }
}

fn phase_of(state: u64) -> Phase {
    match state & 3 {
        0 => Phase::Idle,
        1 => Phase::Head,
        2 => Phase::Busy,
        _ => Phase::Body,
    }
}

/// The limits of an entrypoint's HTTP/1 connections; `None`: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub idle: Option<Duration>,
    pub head: Option<Duration>,
    /// The longest a request's body may go without progress.
    pub body: Option<Duration>,
}

impl Limits {
    fn of(&self, phase: Phase) -> Option<Duration> {
        match phase {
            Phase::Idle => self.idle,
            Phase::Head => self.head,
            Phase::Body => self.body,
            Phase::Busy => None,
        }
    }

    /// How often the watchdog looks: a limit is enforced at most a quarter
    /// late (a change is noticed up to one look late, and the limit is
    /// checked at the next look after it has passed).
    fn tick(&self) -> Option<Duration> {
        let shortest = [self.idle, self.head, self.body]
            .into_iter()
            .flatten()
            .min()?;
        Some((shortest / 8).max(Duration::from_millis(1)))
    }
}

/// Resolves when the connection has stayed idle, or in a request's head,
/// past its limit. Never resolves while a request is being answered.
pub async fn expired(activity: &Activity, limits: Limits) {
    let Some(tick) = limits.tick() else {
        return std::future::pending().await;
    };
    let mut seen = activity.snapshot();
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let now = activity.snapshot();
        if now != seen {
            seen = now;
            since = Instant::now();
            continue;
        }
        if let Some(limit) = limits.of(phase_of(now))
            && since.elapsed() >= limit
        {
            return;
        }
    }
}

/// A connection's transport, noting when the next request's first bytes
/// arrive.
pub struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I> Watched<I> {
    pub fn new(io: I, activity: Arc<Activity>) -> Self {
        Watched { io, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before && self.activity.phase() == Phase::Idle {
            self.activity.enter(Phase::Head);
        }
        polled
    }
}

write_through!(Watched, io);

/// A response body that, once hyper is done with it (sent whole, or given
/// up), puts its connection back to waiting for the next request. The
/// connection entered [`Phase::Busy`] when its request was handed over.
pub struct Answering<B> {
    body: B,
    activity: Option<Arc<Activity>>,
}

impl<B> Answering<B> {
    /// `activity`: `None` on connections without a watchdog (HTTP/2).
    pub fn new(body: B, activity: Option<Arc<Activity>>) -> Self {
        Answering { body, activity }
    }
}

impl<B> Drop for Answering<B> {
    fn drop(&mut self) {
        if let Some(a) = &self.activity {
            a.enter(Phase::Idle);
        }
    }
}

impl<B> http_body::Body for Answering<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMITS: Limits = Limits {
        idle: Some(Duration::from_secs(180)),
        head: Some(Duration::from_secs(60)),
        body: Some(Duration::from_secs(60)),
    };

    /// When `expired` resolves, in paused time, after `script` has played.
    async fn expires_after(
        activity: Arc<Activity>,
        limits: Limits,
        script: impl Future<Output = ()>,
    ) -> Option<Duration> {
        let start = Instant::now();
        tokio::select! {
            () = expired(&activity, limits) => Some(start.elapsed()),
            () = async { script.await; std::future::pending::<()>().await } => None,
            () = tokio::time::sleep(Duration::from_secs(3600)) => None,
        }
    }

    fn between(d: Option<Duration>, low: u64, high: u64) -> bool {
        d.is_some_and(|d| d >= Duration::from_secs(low) && d <= Duration::from_secs(high))
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_gets_the_idle_limit_and_a_begun_head_the_read_limit() {
        let idle = expires_after(Activity::new(Phase::Idle), LIMITS, async {}).await;
        assert!(between(idle, 180, 225), "{idle:?}");
        let head = expires_after(Activity::new(Phase::Head), LIMITS, async {}).await;
        assert!(between(head, 60, 75), "{head:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_being_answered_has_no_limit() {
        let busy = expires_after(Activity::new(Phase::Busy), LIMITS, async {}).await;
        assert_eq!(busy, None);
    }

    #[tokio::test(start_paused = true)]
    async fn each_request_starts_the_idle_wait_again() {
        let activity = Activity::new(Phase::Idle);
        let a = activity.clone();
        // A request every 100 s: each one under the idle limit.
        let script = async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(100)).await;
                a.enter(Phase::Head);
                a.enter(Phase::Busy);
                a.enter(Phase::Idle);
            }
        };
        let ended = expires_after(activity, LIMITS, script).await;
        // Expires only after the last request, 500 s in.
        assert!(between(ended, 680, 725), "{ended:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_gets_the_body_limit_from_its_last_progress() {
        let limits = Limits {
            body: Some(Duration::from_secs(10)),
            ..LIMITS
        };
        let activity = Activity::new(Phase::Body);
        let a = activity.clone();
        // A part every 5 s for 30 s, then nothing.
        let script = async move {
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                a.enter(Phase::Body);
            }
        };
        let ended = expires_after(activity, limits, script).await;
        assert!(between(ended, 40, 44), "{ended:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_limits_never_expire() {
        let none = Limits {
            idle: None,
            head: None,
            body: None,
        };
        let ended = expires_after(Activity::new(Phase::Idle), none, async {}).await;
        assert_eq!(ended, None);
    }

    #[tokio::test]
    async fn the_first_bytes_of_a_request_end_the_idle_wait() {
        let (client, server) = tokio::io::duplex(64);
        let activity = Activity::new(Phase::Idle);
        let mut watched = Watched::new(server, activity.clone());
        let mut client = client;
        client.write_all(b"GET").await.unwrap();
        let mut buf = [0u8; 8];
        let n = watched.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"GET");
        assert_eq!(activity.phase(), Phase::Head);
        // Later bytes of the same head, or of a request body, change nothing.
        activity.enter(Phase::Busy);
        client.write_all(b"body").await.unwrap();
        let n = watched.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"body");
        assert_eq!(activity.phase(), Phase::Busy);
    }

    #[test]
    fn a_response_body_marks_its_request_answered_until_dropped() {
        let activity = Activity::new(Phase::Busy);
        let body = Answering::new(super::super::body::Body::empty(), Some(activity.clone()));
        assert_eq!(activity.phase(), Phase::Busy);
        drop(body);
        assert_eq!(activity.phase(), Phase::Idle);
    }
}
