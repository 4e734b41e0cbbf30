//! The hashing pool: a fixed set of threads that run password hashes, fed
//! by a bounded queue that is fair between client addresses (docs/api.md §7).
//!
//! Hashing is CPU-bound (tens of milliseconds), so it never runs on the
//! async runtime's threads. Each job belongs to an owner: the address of
//! the client it is for, or none for an operator's call. A free thread
//! takes the oldest job of the owner with the fewest jobs running, so one
//! address flooding the pool does not delay the others by more than one
//! hash. When the pool is full (`workers + max_waiting` jobs running or
//! queued), an owner that would hold more than its fair share of the pool
//! is refused, or gives way: its newest queued job is refused to admit an
//! owner under its share. Refusals for fairness are
//! [`CiamError::Throttled`]; a pool full of work from owners within their
//! share refuses with [`CiamError::Overloaded`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::error::CiamError;
use crate::model::AddressKey;
use crate::telemetry::{self, Rejection};

/// Whose work a job is.
pub type Owner = Option<AddressKey>;

/// How a queued job ends: run, or refused without running.
enum Verdict {
    Run,
    Refuse(CiamError),
}

/// Hands a job's result to its caller.
type Delivery = Box<dyn FnOnce() + Send>;

/// A unit of work, told whether to run; returns the delivery of its result,
/// which the worker makes once the job no longer counts as running (so a
/// caller that gets its answer finds the pool as the job left it).
type Job = Box<dyn FnOnce(Verdict) -> Delivery + Send>;

/// Seconds a client refused for fairness is asked to wait.
const FAIR_SHARE_RETRY: i64 = 1;

struct Queued {
    id: u64,
    job: Job,
}

#[derive(Default)]
struct State {
    /// Queued jobs per owner, oldest first.
    queued: HashMap<Owner, VecDeque<Queued>>,
    /// Running jobs per owner.
    running: HashMap<Owner, usize>,
    queued_total: usize,
    running_total: usize,
    next_id: u64,
    stopped: bool,
}

impl State {
    /// Jobs `owner` has queued or running.
    fn held(&self, owner: &Owner) -> usize {
        self.queued.get(owner).map_or(0, VecDeque::len) + self.running.get(owner).copied().unwrap_or(0)
    }

    /// Owners with jobs queued or running, and `newcomer` whether or not it has any.
    fn owners_with(&self, newcomer: &Owner) -> usize {
        let mut owners: Vec<&Owner> = self.queued.keys().chain(self.running.keys()).collect();
        owners.push(newcomer);
        owners.sort_unstable();
        owners.dedup();
        owners.len()
    }

    /// The queued job to run next: the oldest of the owner with the fewest
    /// jobs running, then the fewest held, then the oldest head job.
    fn take_next(&mut self) -> Option<(Owner, Job)> {
        let owner = self
            .queued
            .iter()
            .filter_map(|(owner, jobs)| jobs.front().map(|head| (owner, head.id)))
            .min_by_key(|(owner, head)| (self.running.get(*owner).copied().unwrap_or(0), self.held(owner), *head))
            .map(|(owner, _)| owner.clone())?;
        let job = self.pop(&owner, VecDeque::pop_front)?;
        *self.running.entry(owner.clone()).or_default() += 1;
        self.running_total += 1;
        Some((owner, job.job))
    }

    fn pop(&mut self, owner: &Owner, take: impl FnOnce(&mut VecDeque<Queued>) -> Option<Queued>) -> Option<Queued> {
        let jobs = self.queued.get_mut(owner)?;
        let job = take(jobs)?;
        if jobs.is_empty() {
            self.queued.remove(owner);
        }
        self.queued_total -= 1;
        Some(job)
    }

    fn finished(&mut self, owner: &Owner) {
        if let Some(n) = self.running.get_mut(owner) {
            *n -= 1;
            if *n == 0 {
                self.running.remove(owner);
            }
        }
        self.running_total -= 1;
    }
}

/// The pool's threads and queue.
pub(crate) struct Pool {
    state: Mutex<State>,
    ready: Condvar,
    workers: usize,
    max_waiting: usize,
    max_wait: Duration,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (running, queued) = self.load();
        f.debug_struct("Pool")
            .field("workers", &self.workers)
            .field("running", &running)
            .field("queued", &queued)
            .finish()
    }
}

impl Pool {
    /// Starts `workers` threads; at most `max_waiting` jobs wait for them,
    /// each at most `max_wait`.
    pub fn start(workers: usize, max_waiting: usize, max_wait: Duration) -> Result<Arc<Self>, CiamError> {
        let workers = workers.max(1);
        let pool = Arc::new(Pool { state: Mutex::default(), ready: Condvar::new(), workers, max_waiting, max_wait });
        for i in 0..workers {
            let pool = Arc::clone(&pool);
            std::thread::Builder::new()
                .name(format!("ciam-hash-{i}"))
                .spawn(move || pool.work())
                .map_err(|e| CiamError::Internal(format!("hashing thread: {e}")))?;
        }
        Ok(pool)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Jobs running and jobs queued.
    pub fn load(&self) -> (usize, usize) {
        let state = self.lock();
        (state.running_total, state.queued_total)
    }

    /// Ends the threads once the queue is empty.
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.ready.notify_all();
    }

    fn work(&self) {
        // A hashing thread hashes all its life: it keeps its memory.
        crate::password::keep_working_memory();
        loop {
            let (owner, job) = {
                let mut state = self.lock();
                loop {
                    if let Some(next) = state.take_next() {
                        break next;
                    }
                    if state.stopped {
                        return;
                    }
                    state = self.ready.wait(state).unwrap_or_else(PoisonError::into_inner);
                }
            };
            let deliver = job(Verdict::Run);
            self.lock().finished(&owner);
            deliver();
        }
    }

    fn full(&self, state: &State) -> bool {
        state.running_total + state.queued_total >= self.workers + self.max_waiting
    }

    /// Whether a job of `owner` would be admitted now; a caller checks
    /// before work it would otherwise do for nothing. Admission itself may
    /// still refuse, the pool having filled meanwhile.
    pub fn check(&self, owner: &Owner) -> Result<(), CiamError> {
        let state = self.lock();
        if self.full(&state) {
            self.gives_way(&state, owner)?;
        }
        Ok(())
    }

    /// Queues `job` for `owner`, or refuses it when the pool is full.
    fn admit(&self, owner: &Owner, job: Job) -> Result<u64, CiamError> {
        let mut state = self.lock();
        if state.stopped {
            return Err(CiamError::Internal("hashing pool stopped".into()));
        }
        let evicted = match self.full(&state) {
            true => {
                let victim = self.gives_way(&state, owner)?;
                state.pop(&victim, VecDeque::pop_back).map(|q| q.job)
            }
            false => None,
        };
        let id = state.next_id;
        state.next_id += 1;
        state.queued.entry(owner.clone()).or_default().push_back(Queued { id, job });
        state.queued_total += 1;
        drop(state);
        self.ready.notify_one();
        if let Some(evicted) = evicted {
            telemetry::hash_rejected(Rejection::Evicted);
            evicted(Verdict::Refuse(CiamError::Throttled { retry_after: FAIR_SHARE_RETRY }))();
        }
        Ok(id)
    }

    /// In a full pool: refuses `newcomer` when one more job would put it
    /// over its fair share, or names the owner furthest over its share,
    /// whose newest queued job gives way so that the newcomer fits.
    fn gives_way(&self, state: &State, newcomer: &Owner) -> Result<Owner, CiamError> {
        let owners = state.owners_with(newcomer);
        let full = || {
            telemetry::hash_rejected(Rejection::PoolFull);
            CiamError::Overloaded
        };
        if owners == 1 {
            return Err(full());
        }
        let fair = ((self.workers + self.max_waiting) / owners).max(1);
        if state.held(newcomer) + 1 > fair {
            telemetry::hash_rejected(Rejection::OverShare);
            return Err(CiamError::Throttled { retry_after: FAIR_SHARE_RETRY });
        }
        state
            .queued
            .keys()
            .map(|owner| (state.held(owner), owner))
            .filter(|(held, _)| *held > fair)
            .max_by_key(|(held, _)| *held)
            .map(|(_, owner)| owner.clone())
            .ok_or_else(full)
    }

    /// Takes a job out of the queue if it has not started; returns whether it was there.
    fn withdraw(&self, owner: &Owner, id: u64) -> bool {
        let mut state = self.lock();
        let Some(position) = state.queued.get(owner).and_then(|jobs| jobs.iter().position(|q| q.id == id)) else {
            return false;
        };
        state.pop(owner, |jobs| jobs.remove(position)).is_some()
    }

    /// Runs `job` on a hashing thread for `owner` once one is free, or
    /// refuses: at once when the pool is full, or after `max_wait` in the
    /// queue.
    pub async fn run<T: Send + 'static>(
        &self,
        owner: Owner,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CiamError> {
        let (done, mut result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |verdict| {
            let result = match verdict {
                // The caller has gone (its request was cut short, and its
                // places on the failure counters given back): no hash runs
                // for nobody, so no password is verified uncounted.
                Verdict::Run if done.is_closed() => Err(CiamError::Internal("hashing job abandoned".into())),
                Verdict::Run => Ok(job()),
                Verdict::Refuse(e) => Err(e),
            };
            Box::new(move || {
                let _ = done.send(result);
            })
        });
        let id = self.admit(&owner, job)?;
        let lost = || CiamError::Internal("hashing job lost".into());
        match tokio::time::timeout(self.max_wait, &mut result).await {
            Ok(outcome) => outcome.map_err(|_| lost())?,
            // Still queued: give up the place. Already running: it ends soon.
            Err(_) if self.withdraw(&owner, id) => {
                telemetry::hash_rejected(Rejection::QueueWait);
                Err(CiamError::Overloaded)
            }
            Err(_) => result.await.map_err(|_| lost())?,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use super::*;

    fn owner(n: u8) -> Owner {
        Some(AddressKey::of(std::net::IpAddr::from([127, 0, 0, n])))
    }

    /// A job that holds its thread until `gate` opens.
    fn blocker(gate: &Arc<(Mutex<bool>, Condvar)>) -> impl FnOnce() -> Instant + Send + 'static {
        let gate = Arc::clone(gate);
        move || {
            let (open, changed) = &*gate;
            let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
            while !*open {
                open = changed.wait(open).unwrap_or_else(PoisonError::into_inner);
            }
            Instant::now()
        }
    }

    fn open(gate: &Arc<(Mutex<bool>, Condvar)>) {
        *gate.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        gate.1.notify_all();
    }

    async fn settle(pool: &Pool, running: usize, queued: usize) {
        for _ in 0..200 {
            if pool.load() == (running, queued) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("pool load {:?}, wanted {:?}", pool.load(), (running, queued));
    }

    async fn holds(pool: &Pool, owner: &Owner, jobs: usize) {
        for _ in 0..200 {
            if pool.lock().held(owner) == jobs {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{owner:?} does not hold {jobs} jobs");
    }

    #[tokio::test]
    async fn a_job_whose_caller_has_gone_does_not_run() {
        let pool = Pool::start(1, 4, Duration::from_secs(5)).expect("pool");
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let running = tokio::spawn({
            let (pool, job) = (Arc::clone(&pool), blocker(&gate));
            async move { pool.run(owner(1), job).await.map(drop) }
        });
        settle(&pool, 1, 0).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let abandoned = tokio::spawn({
            let (pool, ran) = (Arc::clone(&pool), Arc::clone(&ran));
            async move { pool.run(owner(2), move || ran.fetch_add(1, Ordering::SeqCst)).await.map(drop) }
        });
        settle(&pool, 1, 1).await;
        abandoned.abort();
        let _ = abandoned.await;
        open(&gate);
        running.await.expect("join").expect("ran");
        settle(&pool, 0, 0).await;
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the abandoned job's work never ran");
    }

    #[tokio::test]
    async fn a_full_pool_of_one_owner_is_overloaded_not_throttled() {
        let pool = Pool::start(1, 1, Duration::from_secs(5)).expect("pool");
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let first = tokio::spawn({
            let pool = Arc::clone(&pool);
            let job = blocker(&gate);
            async move { pool.run(owner(1), job).await }
        });
        settle(&pool, 1, 0).await;
        let second = tokio::spawn({
            let pool = Arc::clone(&pool);
            let job = blocker(&gate);
            async move { pool.run(owner(1), job).await }
        });
        settle(&pool, 1, 1).await;
        assert!(matches!(pool.run(owner(1), || ()).await, Err(CiamError::Overloaded)));
        open(&gate);
        assert!(first.await.expect("join").is_ok() && second.await.expect("join").is_ok());
    }

    #[tokio::test]
    async fn a_flooding_owner_gives_way_and_others_run_first() {
        let pool = Pool::start(1, 4, Duration::from_secs(5)).expect("pool");
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let mut flood = Vec::new();
        for _ in 0..5 {
            let pool = Arc::clone(&pool);
            let job = blocker(&gate);
            flood.push(tokio::spawn(async move { pool.run(owner(1), job).await }));
        }
        settle(&pool, 1, 4).await;
        // Another owner arrives at a full pool: the flood's newest queued job gives way.
        let honest = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.run(owner(2), Instant::now).await }
        });
        holds(&pool, &owner(2), 1).await;
        settle(&pool, 1, 4).await;
        // The flooding owner, over its share now, is refused at once.
        assert!(matches!(pool.run(owner(1), || ()).await, Err(CiamError::Throttled { .. })));
        open(&gate);
        let honest_at = honest.await.expect("join").expect("the other owner runs");
        let mut flood_done = Vec::new();
        for job in flood {
            match job.await.expect("join") {
                Ok(at) => flood_done.push(at),
                Err(CiamError::Throttled { .. }) => {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(refused.load(Ordering::SeqCst), 1, "one queued flood job made room");
        let after_honest = flood_done.iter().filter(|at| **at > honest_at).count();
        assert_eq!(after_honest, 3, "the other owner ran right after the flood's running job");
    }

    #[tokio::test]
    async fn a_job_that_waits_too_long_leaves_the_queue() {
        let pool = Pool::start(1, 2, Duration::from_millis(100)).expect("pool");
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let running = tokio::spawn({
            let pool = Arc::clone(&pool);
            let job = blocker(&gate);
            async move { pool.run(None, job).await }
        });
        settle(&pool, 1, 0).await;
        assert!(matches!(pool.run(owner(3), || ()).await, Err(CiamError::Overloaded)));
        assert_eq!(pool.load(), (1, 0), "the timed-out job is no longer queued");
        open(&gate);
        assert!(running.await.expect("join").is_ok());
    }
}
