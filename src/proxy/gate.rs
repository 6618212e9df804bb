//! A future that is polled only when it asked to be.
//!
//! A connection's task races its HTTP/1 connection against rare events (the
//! idle watchdog's timer, the entrypoint's shutdown). `select!` polls every
//! branch each time the task wakes, that is several times per request, and
//! polling a timer or a `watch` receiver costs a few hundred instructions
//! each time. [`Gated`] gives its future a waker of its own and skips the
//! poll unless that waker has fired since.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

pin_project_lite::pin_project! {
    /// Polls `inner` only when it has been woken since its last poll (and
    /// once at first).
    pub struct Gated<F> {
        #[pin]
        inner: F,
        signal: Arc<Signal>,
        // `signal` as a waker, made once.
        waker: Waker,
    }
}

/// Whether the inner future was woken, and the task to tell when it is.
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> Gated<F> {
    pub fn new(inner: F) -> Self {
        let signal = Arc::new(Signal {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Gated {
            inner,
            waker: Waker::from(signal.clone()),
            signal,
        }
    }
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Registered before the flag is read: a wake in between is seen
        // either here or by the task it wakes.
        this.signal.task.register(cx.waker());
        if !this.signal.woken.swap(false, Ordering::Acquire) {
            return Poll::Pending;
        }
        this.inner.poll(&mut Context::from_waker(this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Counts its polls; pending until `ready` is set.
    struct Counted {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        waker: Arc<std::sync::Mutex<Option<Waker>>>,
    }

    impl Future for Counted {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[test]
    fn the_inner_future_is_polled_only_after_its_own_wake() {
        let polls = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(AtomicBool::new(false));
        let inner_waker = Arc::new(std::sync::Mutex::new(None));
        let mut gated = Box::pin(Gated::new(Counted {
            polls: polls.clone(),
            ready: ready.clone(),
            waker: inner_waker.clone(),
        }));
        let outer_wakes = Arc::new(OuterWakes::default());
        let outer = Waker::from(outer_wakes.clone());
        let mut cx = Context::from_waker(&outer);

        assert!(gated.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 1, "polled once at first");
        for _ in 0..5 {
            assert!(gated.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1, "not polled without a wake");

        ready.store(true, Ordering::SeqCst);
        let waker = inner_waker.lock().unwrap().take().unwrap();
        waker.wake();
        assert_eq!(
            outer_wakes.0.load(Ordering::SeqCst),
            1,
            "its wake reaches the task"
        );
        assert!(gated.as_mut().poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[derive(Default)]
    struct OuterWakes(AtomicUsize);

    impl Wake for OuterWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_gated_timer_still_fires() {
        let started = tokio::time::Instant::now();
        Gated::new(tokio::time::sleep(Duration::from_secs(5))).await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
