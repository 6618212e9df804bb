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
use std::sync::OnceLock;

use tokio::sync::oneshot;

thread_local! {
    /// 1-based index of the serving thread this is; 0 on any other thread.
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// How many serving threads to run: one per core this process may use
/// (its CPU affinity and cgroup quota count). Fixed for the process.
pub fn count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Slots for per-thread state: one per serving thread, plus slot 0 shared
/// by every other thread (the main runtime, tests).
pub fn slots() -> usize {
    count() + 1
}

/// This thread's slot (see [`slots`]); a serving thread beyond [`count`]
/// shares the last one.
pub fn slot() -> usize {
    INDEX.with(Cell::get).min(count())
}

/// Starts one serving thread per job. Each builds a single-threaded runtime
/// and runs its job's future (job `i` runs as serving thread `i + 1`) until
/// it completes; the receivers resolve as each thread's runtime has finished.
pub fn spawn<J, Fut>(jobs: Vec<J>) -> std::io::Result<Vec<oneshot::Receiver<()>>>
where
    J: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let mut done = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.into_iter().enumerate() {
        let index = i + 1;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (finished, finished_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("escale-serve-{index}"))
            .spawn(move || {
                INDEX.with(|i| i.set(index));
                runtime.block_on(job());
                drop(runtime);
                let _ = finished.send(());
            })?;
        done.push(finished_rx);
    }
    Ok(done)
}

/// Makes this thread count as serving thread `index` (tests of per-thread state).
#[cfg(test)]
pub fn pretend_serving(index: usize) {
    INDEX.with(|i| i.set(index));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_serving_thread_runs_its_own_single_threaded_runtime() {
        let (seen_tx, seen) = std::sync::mpsc::channel();
        let jobs = (1..=2)
            .map(|index| {
                let seen_tx = seen_tx.clone();
                move || async move {
                    let flavor = tokio::runtime::Handle::current().runtime_flavor();
                    let thread = std::thread::current().id();
                    seen_tx
                        .send((index, INDEX.with(Cell::get), flavor, thread))
                        .unwrap();
                }
            })
            .collect();
        let finished = spawn(jobs).unwrap();
        let mut seen: Vec<_> = seen.iter().take(2).collect();
        seen.sort_by_key(|s| s.0);
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2]);
        for (index, slot, flavor, _) in &seen {
            assert_eq!(index, slot);
            assert_eq!(*flavor, tokio::runtime::RuntimeFlavor::CurrentThread);
        }
        assert_ne!(seen[0].3, seen[1].3, "two threads");
        assert_ne!(seen[0].3, std::thread::current().id());
        for f in finished {
            f.blocking_recv().expect("the thread reports its end");
        }
        assert_eq!(slot(), 0, "other threads share slot 0");
    }
}
