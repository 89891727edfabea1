//! Bounded argon2 work (issue 8 item 4). Each hash holds argon2's 19 MiB of memory while it
//! runs, so unbounded concurrent sign-ins multiplied memory: 96 of them took the process
//! from 26 MiB to 1.8 GiB. Every hash and verification therefore runs through [`bounded`]:
//!
//! - on a few dedicated threads, [`hashing_limit`] of them (the CPU count, at most 4: a hash
//!   keeps one core busy, so more at once would only wait for the CPU while holding their
//!   memory). Dedicated threads, not tokio's blocking pool, because the allocator keeps a
//!   heap per thread that has allocated, and a freed 19 MiB block stays in it: hashes
//!   spread over many short-lived blocking threads left hundreds of MiB behind;
//! - with a short queue in front ([`QUEUE_PER_THREAD`] per thread, waiting at most
//!   [`QUEUE_WAIT`]); beyond it, [`StoreError::Busy`], which the web answers with 503,
//!   rather than piling up requests whose clients will have given up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{oneshot, Semaphore};

use crate::StoreError;

/// Hashes allowed to wait per hashing thread.
const QUEUE_PER_THREAD: usize = 8;
/// The longest a hash waits for its turn before it is refused.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads, their admission control, and counters.
struct Hashing {
    /// One per thread: holding one means a thread is free for the job.
    permits: Arc<Semaphore>,
    limit: usize,
    jobs: mpsc::Sender<Job>,
    /// Hashes waiting or running.
    pending: AtomicUsize,
    /// Hashes running now, and the most that ever ran at once.
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

static HASHING: LazyLock<Hashing> = LazyLock::new(|| {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    Hashing::start(cpus.clamp(1, 4))
});

/// How many argon2 hashes may run at once in this process.
pub fn hashing_limit() -> usize {
    HASHING.limit
}

/// Runs password work (`job`) on a hashing thread once one is free; [`StoreError::Busy`]
/// when too many already wait.
pub(crate) async fn bounded<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    HASHING.run(job).await
}

impl Hashing {
    /// Starts `threads` hashing threads (fewer if the system refuses some).
    fn start(threads: usize) -> Hashing {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut started = 0;
        for n in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("tidings-hash-{n}"))
                .spawn(move || loop {
                    let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    match next {
                        // A panicking job must not take the thread with it.
                        Ok(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        Err(_) => return,
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(err) => tracing::error!(%err, "starting a password hashing thread"),
            }
        }
        // Without threads there are no permits either: every job waits its queue time out
        // and is refused as busy, rather than hanging.
        if started == 0 {
            tracing::error!("no password hashing thread could start: every sign-in will be busy");
        }
        Hashing {
            permits: Arc::new(Semaphore::new(started)),
            limit: started.max(1),
            jobs,
            pending: AtomicUsize::new(0),
            running: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let _pending = Count::enter(&self.pending, self.limit * (1 + QUEUE_PER_THREAD))
            .ok_or(StoreError::Busy)?;
        let permit = tokio::time::timeout(QUEUE_WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| StoreError::Busy)?
            .map_err(|_| StoreError::Busy)?;
        let (running, peak) = (self.running.clone(), self.peak.clone());
        let (done, result) = oneshot::channel();
        // The permit moves into the job: if the request is dropped meanwhile (the client
        // went away), the hash keeps its permit until it has finished.
        let work: Job = Box::new(move || {
            let counted = Count::enter(&running, usize::MAX);
            peak.fetch_max(running.load(Ordering::Acquire), Ordering::AcqRel);
            let out = job();
            // Counted out (also on a panic, by unwinding) before the caller hears of it.
            drop(counted);
            drop(permit);
            let _ = done.send(out);
        });
        self.jobs
            .send(work)
            .map_err(|_| StoreError::Hash("the hashing threads stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError::Hash("a hashing job failed".into()))
    }
}

/// One unit of a counter, given back on drop (also when a future is cancelled).
struct Count<'a>(&'a AtomicUsize);

impl<'a> Count<'a> {
    /// Counts one in, unless the counter is at `max` already.
    fn enter(counter: &'a AtomicUsize, max: usize) -> Option<Count<'a>> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Count(counter))
    }
}

impl Drop for Count<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "a failing test should say where")]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hashing_is_bounded_and_refuses_a_long_queue() {
        let hashing = Arc::new(Hashing::start(2));
        let gate = Arc::new(std::sync::Barrier::new(3));
        // Two jobs hold both threads until the gate opens; the queue then takes 16 more.
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let (hashing, gate) = (hashing.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                hashing.run(move || gate.wait()).await.map(|_| ())
            }));
        }
        while hashing.running.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        for _ in 0..16 {
            let hashing = hashing.clone();
            tasks.push(tokio::spawn(async move { hashing.run(|| ()).await }));
        }
        while hashing.pending.load(Ordering::Acquire) < 18 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(hashing.run(|| ()).await, Err(StoreError::Busy)));
        gate.wait();
        for task in tasks {
            assert!(task.await.expect("join").is_ok());
        }
        assert_eq!(hashing.peak.load(Ordering::Relaxed), 2);
        assert_eq!(hashing.pending.load(Ordering::Relaxed), 0);
        assert!(hashing.run(|| 7).await.is_ok_and(|n| n == 7));
        assert!((1..=4).contains(&hashing_limit()));
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let hashing = Hashing::start(1);
        assert!(matches!(
            hashing.run(|| panic!("boom")).await,
            Err(StoreError::Hash(_))
        ));
        assert!(hashing.run(|| 1).await.is_ok_and(|n| n == 1));
        assert_eq!(hashing.running.load(Ordering::Relaxed), 0);
    }
}
