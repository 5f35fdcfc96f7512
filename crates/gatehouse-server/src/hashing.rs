//! Password hashing on a bounded pool: a fixed set of threads of its own, and a bounded number of jobs that may
//! wait for one. Past that the caller gets `Overloaded` at once (→ 503 + Retry-After) instead of an
//! ever-growing queue, and the async runtime never runs a hash itself. Each thread keeps its argon2 working
//! memory from one hash to the next, so the pool holds exactly one block per worker under load; a worker idle
//! for [`RELEASE_MEMORY_AFTER`] gives its block back, so that a burst of logins does not leave an idle server
//! holding tens of MiB.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gatehouse_core::crypto::{
    HashError, HashParams, PasswordHashing, Passwords, Verification, VerifyFloor, release_working_memory, shape_of,
};
use tokio::sync::{Semaphore, oneshot};

type Job = Box<dyn FnOnce(&Passwords) + Send>;

/// How long a hashing worker keeps its working memory without a job. Long enough that steady traffic, even a
/// login every few seconds, never pays for a fresh block; short enough that memory is back well within 30 s.
pub const RELEASE_MEMORY_AFTER: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct HashPool {
    passwords: Arc<Passwords>,
    /// Tickets for running or waiting jobs (workers + queue capacity).
    admission: Arc<Semaphore>,
    /// Jobs for the worker threads; they stop when the last pool handle is dropped.
    jobs: flume::Sender<Job>,
    /// Workers running a job right now.
    busy: Arc<AtomicUsize>,
    worker_count: usize,
    admission_size: usize,
    /// Every check takes as long as the slowest kind of stored hash (see [`VerifyFloor`]).
    floor: Arc<VerifyFloor>,
}

impl HashPool {
    /// `workers == 0` means one per available core; checks are padded up to `equalize_max_ms`.
    pub fn new(
        params: HashParams,
        workers: usize,
        queue_capacity: usize,
        equalize_max_ms: u64,
    ) -> Result<Self, HashError> {
        let worker_count =
            if workers == 0 { std::thread::available_parallelism().map_or(1, usize::from) } else { workers };
        let passwords = Arc::new(Passwords::new(params)?);
        let busy = Arc::new(AtomicUsize::new(0));
        let (jobs, queue) = flume::unbounded::<Job>();
        for n in 0..worker_count {
            let (queue, passwords, busy) = (queue.clone(), passwords.clone(), busy.clone());
            std::thread::Builder::new()
                .name(format!("gatehouse-hash-{n}"))
                .spawn(move || run_worker(&queue, &passwords, &busy))
                .map_err(|e| HashError::Internal(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Self {
            passwords,
            admission: Arc::new(Semaphore::new(worker_count + queue_capacity)),
            jobs,
            busy,
            worker_count,
            admission_size: worker_count + queue_capacity,
            floor: Arc::new(VerifyFloor::new(equalize_max_ms)),
        })
    }

    pub fn worker_count(&self) -> usize {
        self.worker_count
    }

    /// (workers busy, jobs waiting for one) right now.
    pub fn load(&self) -> (usize, usize) {
        let busy = self.busy.load(Ordering::Relaxed).min(self.worker_count);
        let admitted = self.admission_size.saturating_sub(self.admission.available_permits());
        (busy, admitted.saturating_sub(busy))
    }

    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    async fn run<T: Send + 'static>(&self, job: impl FnOnce(&Passwords) -> T + Send + 'static) -> Result<T, HashError> {
        let Ok(_ticket) = self.admission.clone().try_acquire_owned() else {
            metrics::counter!("gatehouse_hashing_overloaded_total").increment(1);
            return Err(HashError::Overloaded);
        };
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |passwords| {
            // The caller may have gone (its request was cancelled): the result is dropped.
            let _ = done.send(job(passwords));
        });
        self.jobs.send(job).map_err(|_| HashError::Internal("hashing pool stopped".into()))?;
        result.await.map_err(|_| HashError::Internal("a hashing job was lost".into()))
    }

    /// Runs one check of a hash of `shape` and waits, after it and outside the pool, until it took as long as a
    /// check of the slowest shape.
    async fn timed_check<T: Send + 'static>(
        &self,
        shape: String,
        check: impl FnOnce(&Passwords) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (result, took) = self
            .run(move |p| {
                let started = Instant::now();
                let result = check(p);
                (result, started.elapsed())
            })
            .await?;
        let wait_ms = self.floor.record(&shape, took.as_secs_f64() * 1000.0);
        if wait_ms > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait_ms / 1000.0)).await;
        }
        Ok(result)
    }
}

/// A worker's life: run jobs until every pool handle is gone, giving its working memory back when idle.
fn run_worker(queue: &flume::Receiver<Job>, passwords: &Passwords, busy: &AtomicUsize) {
    loop {
        let job = match queue.recv_timeout(RELEASE_MEMORY_AFTER) {
            Ok(job) => job,
            Err(flume::RecvTimeoutError::Timeout) => {
                if release_working_memory() {
                    tracing::debug!("an idle hashing worker gave its working memory back");
                }
                match queue.recv() {
                    Ok(job) => job,
                    Err(flume::RecvError::Disconnected) => return,
                }
            }
            Err(flume::RecvTimeoutError::Disconnected) => return,
        };
        busy.fetch_add(1, Ordering::Relaxed);
        // A job that panics loses its answer (the caller gets an error), not the worker.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(passwords)));
        busy.fetch_sub(1, Ordering::Relaxed);
        if ran.is_err() {
            tracing::error!("a hashing job panicked");
        }
    }
}

#[async_trait]
impl PasswordHashing for HashPool {
    async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move |p| p.hash(&password)).await?
    }

    async fn verify(&self, password: String, phc: String) -> Result<Verification, HashError> {
        self.timed_check(shape_of(&phc), move |p| p.verify(&password, &phc)).await?
    }

    async fn verify_dummy(&self, password: String) -> Result<(), HashError> {
        let shape = shape_of(self.passwords.dummy());
        self.timed_check(shape, move |p| p.verify_dummy(&password)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_answers_overloaded_instead_of_waiting() {
        let pool = HashPool::new(HashParams { memory_kib: 8192, iterations: 4, parallelism: 1 }, 1, 2, 0).unwrap();
        let jobs: Vec<_> = (0..12)
            .map(|i| {
                let p = pool.clone();
                tokio::spawn(async move { p.hash(format!("pw{i}")).await })
            })
            .collect();
        let mut ok = 0;
        let mut overloaded = 0;
        for j in jobs {
            match j.await.unwrap() {
                Ok(_) => ok += 1,
                Err(HashError::Overloaded) => overloaded += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!((1..=3).contains(&ok), "one worker + two queued at most at once, got {ok}");
        assert_eq!(ok + overloaded, 12);
        // Once the queue drained, hashing works again.
        assert!(pool.hash("again".into()).await.is_ok());
    }
}
