//! Serving threads: one single-threaded tokio runtime per core, each
//! accepting on every entrypoint's listener and serving, to the end, the
//! connections it accepted; with its own backend connections too
//! (`ServerPool` keeps one idle list per serving thread).
//!
//! Why not one multi-threaded runtime: its work-stealing scheduler moves a
//! connection's tasks between workers and wakes idle workers to steal, so
//! one request's work crosses cores. Here a connection, its request and its
//! backend exchange stay on the core that accepted it, as in nginx's and
//! HAProxy's workers. The providers, the config pipeline and the health
//! checks stay on the main runtime.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::oneshot;

/// How many serving threads this process runs (0 until they start).
static THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// 1-based index of the serving thread this is; 0 on any other thread.
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// How many serving threads to run: one per core this process may use
/// (its CPU affinity and cgroup quota count).
pub fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Slots for per-thread state: one per serving thread, plus slot 0 for
/// every other thread (tests, health checks, the main runtime).
pub fn slots() -> usize {
    THREADS.load(Ordering::Relaxed) + 1
}

/// This thread's slot (see [`slots`]).
pub fn slot() -> usize {
    INDEX.with(Cell::get)
}

/// Starts `count` serving threads. Each builds a single-threaded runtime and
/// runs what `serve(index)` returns until it completes; the receivers resolve
/// as each thread's runtime has finished.
pub fn spawn<F, Fut>(count: usize, serve: F) -> std::io::Result<Vec<oneshot::Receiver<()>>>
where
    F: Fn(usize) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let count = count.max(1);
    THREADS.store(count, Ordering::Relaxed);
    let mut done = Vec::with_capacity(count);
    for index in 1..=count {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (finished, finished_rx) = oneshot::channel();
        let serve = serve.clone();
        std::thread::Builder::new()
            .name(format!("escale-serve-{index}"))
            .spawn(move || {
                INDEX.with(|i| i.set(index));
                runtime.block_on(serve(index));
                drop(runtime);
                let _ = finished.send(());
            })?;
        done.push(finished_rx);
    }
    Ok(done)
}
