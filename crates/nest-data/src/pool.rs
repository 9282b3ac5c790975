//! A pool of rows that users claim exclusively, share in order, or pick at random.
//!
//! Claims are exclusive and fair. A free row goes to the claimer at once; when every row is held, the claimer
//! queues, and a released row is handed straight to the first claimer still waiting, so waiting claimers are served
//! in arrival order and a newcomer can never take a row from under one that has waited longer. The state is one
//! short `Mutex` (a free list, a queue of one-shot senders, the counters), never held across an `await`, so a pool is
//! shared by every worker thread.
//!
//! A claim gives a [`Lease`], which releases its row when dropped: a row cannot be released twice, and the rows of a
//! user that stops, crashes or is cancelled go back on their own. A waiter that gives up (its timeout, or its
//! future dropped) closes its channel and returns any row that reached it meanwhile, so no row is ever lost.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::Rng;
use tokio::sync::oneshot;

use crate::partition::{Segment, partition};
use crate::set::{DataSet, Row};

/// A row of a data set: its 0-based index in the whole set (not in the segment's share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowId(pub usize);

/// What happened to a pool so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Claims that got a row.
    pub claims: u64,
    /// Rows given back.
    pub releases: u64,
    /// The most rows held at once.
    pub max_held: u64,
    /// Claims that found every row held and had to wait.
    pub waits: u64,
    /// The longest wait of a claim (served or timed out).
    pub longest_wait: Duration,
    /// Claims that gave up after their timeout without a row ("pool exhausted").
    pub timeouts: u64,
}

struct State {
    /// Free rows, oldest first: a released row goes to the back, so every row gets its turn.
    free: VecDeque<RowId>,
    /// Waiting claimers, in arrival order. Some may have given up: their send fails and the next one is tried.
    waiters: VecDeque<oneshot::Sender<RowId>>,
    /// Rows not in `free`: held, or on their way to a waiter.
    out: usize,
    stats: PoolStats,
}

/// The claimable rows of one data set: see the module docs.
pub struct Pool {
    name: String,
    data: Arc<DataSet>,
    rows: Range<usize>,
    cursor: AtomicUsize,
    state: Mutex<State>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("name", &self.name).field("rows", &self.rows).finish_non_exhaustive()
    }
}

/// A claimed row. The row is released when the lease is dropped (or [`Lease::release`]d).
#[derive(Debug)]
pub struct Lease {
    pool: Arc<Pool>,
    row: RowId,
}

impl Lease {
    /// The row held.
    pub fn row(&self) -> RowId {
        self.row
    }

    /// The pool the row belongs to.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Gives the row back (the same as dropping the lease).
    pub fn release(self) {}
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        state.stats.releases += 1;
        Pool::put_back(&mut state, self.row);
    }
}

/// Gives back a row that reached a claimer after it stopped waiting, and forgets claimers that gave up.
struct Waiting {
    pool: Arc<Pool>,
    rx: Option<oneshot::Receiver<RowId>>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        rx.close();
        let mut state = self.pool.lock();
        if let Ok(row) = rx.try_recv() {
            Pool::put_back(&mut state, row);
        }
        state.waiters.retain(|tx| !tx.is_closed());
    }
}

enum Attempt {
    Got(RowId),
    Wait(oneshot::Receiver<RowId>),
    Empty,
}

impl Pool {
    /// A pool of the rows of `data` that belong to `segment` (see [`partition`]).
    pub fn new(name: impl Into<String>, data: Arc<DataSet>, segment: Segment) -> Pool {
        let rows = partition(data.len(), segment);
        let state = State {
            free: rows.clone().map(RowId).collect(),
            waiters: VecDeque::new(),
            out: 0,
            stats: PoolStats::default(),
        };
        Pool { name: name.into(), data, rows, cursor: AtomicUsize::new(0), state: Mutex::new(state) }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The data set the rows come from.
    pub fn data(&self) -> &Arc<DataSet> {
        &self.data
    }

    /// The row `id` of the data set.
    pub fn row(&self, id: RowId) -> Row<'_> {
        self.data.row(id.0)
    }

    /// The number of rows in this pool (the segment's share of the data set).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the pool has no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows held right now (claimed and not yet released).
    pub fn held(&self) -> usize {
        self.lock().out
    }

    /// Claimers waiting in line right now.
    pub fn waiting(&self) -> usize {
        self.lock().waiters.iter().filter(|tx| !tx.is_closed()).count()
    }

    /// The counters so far.
    pub fn stats(&self) -> PoolStats {
        self.lock().stats
    }

    /// Claims a row that no other claimer holds until the returned [`Lease`] is dropped.
    ///
    /// When every row is held, waits in line (first come, first served) for at most `timeout` (`None`: as long as
    /// it takes) and then resolves to `None`, counted as a timeout. An empty pool resolves to `None` at once. Dropping
    /// the future gives up the place in line without losing a row.
    pub fn claim(self: &Arc<Self>, timeout: Option<Duration>) -> impl Future<Output = Option<Lease>> + Send + 'static {
        let pool = Arc::clone(self);
        async move {
            let rx = match pool.try_claim() {
                Attempt::Got(row) => return Some(Lease { pool, row }),
                Attempt::Empty => return None,
                Attempt::Wait(rx) => rx,
            };
            // tokio's clock, so that tests with paused time measure waits exactly.
            let began = tokio::time::Instant::now();
            let mut waiting = Waiting { pool: pool.clone(), rx: Some(rx) };
            let receiver = waiting.rx.as_mut().expect("set above");
            let received = match timeout {
                Some(limit) => tokio::time::timeout(limit, receiver).await.ok(),
                None => Some(receiver.await),
            };
            let waited = began.elapsed();
            match received {
                // The pool never drops a live waiter's sender, and we hold the pool: Err cannot happen.
                Some(Ok(row)) => {
                    waiting.rx = None;
                    let mut state = pool.lock();
                    state.stats.claims += 1;
                    state.stats.longest_wait = state.stats.longest_wait.max(waited);
                    drop(state);
                    Some(Lease { pool, row })
                }
                _ => {
                    // Returns a row that arrived meanwhile, before the timeout is counted.
                    drop(waiting);
                    let mut state = pool.lock();
                    state.stats.timeouts += 1;
                    state.stats.longest_wait = state.stats.longest_wait.max(waited);
                    None
                }
            }
        }
    }

    /// The next row in order, shared by every caller, wrapping around at the end; `None` for an empty pool.
    pub fn next(&self) -> Option<RowId> {
        if self.rows.is_empty() {
            return None;
        }
        let step = self.cursor.fetch_add(1, Ordering::Relaxed) % self.rows.len();
        Some(RowId(self.rows.start + step))
    }

    /// A row picked uniformly at random with `rng`; `None` for an empty pool.
    pub fn random(&self, rng: &mut impl Rng) -> Option<RowId> {
        (!self.rows.is_empty()).then(|| RowId(rng.random_range(self.rows.clone())))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in a holder (every update is a few plain assignments).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn try_claim(&self) -> Attempt {
        if self.rows.is_empty() {
            return Attempt::Empty;
        }
        let mut state = self.lock();
        if let Some(row) = state.free.pop_front() {
            state.out += 1;
            state.stats.claims += 1;
            state.stats.max_held = state.stats.max_held.max(state.out as u64);
            return Attempt::Got(row);
        }
        let (tx, rx) = oneshot::channel();
        state.waiters.push_back(tx);
        state.stats.waits += 1;
        Attempt::Wait(rx)
    }

    /// Hands `row` to the first claimer still waiting, or puts it back on the free list.
    fn put_back(state: &mut State, mut row: RowId) {
        while let Some(tx) = state.waiters.pop_front() {
            match tx.send(row) {
                Ok(()) => return,
                Err(back) => row = back,
            }
        }
        state.free.push_back(row);
        state.out -= 1;
    }
}
