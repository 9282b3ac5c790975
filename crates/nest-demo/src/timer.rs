//! A sub-millisecond timer for the hello mode's latency and stall.
//!
//! tokio's timer counts in whole-millisecond ticks: it rounds a deadline up to
//! the next tick and parks from the start of the current one, so a 50 ms
//! `tokio::time::sleep` takes about 51.5 ms and a 1 ms one about 2.4 ms
//! (measured). A load-model benchmark against "a 50 ms target" would charge
//! that to the load tester. So responses wait on this timer instead: one OS
//! thread keeps the pending deadlines in a heap and sleeps on a condition
//! variable until the earliest (a futex wait, precise to tens of
//! microseconds), then completes each due response's oneshot channel. No
//! runtime thread ever blocks, and only servers with a latency or a stall
//! start it.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::oneshot;

/// The handle: dropping the last one stops the thread (pending waits then
/// complete with an error, which the hello service treats as due).
pub(crate) struct Timer {
    shared: Arc<TimerShared>,
}

struct TimerShared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    queue: BinaryHeap<Reverse<Entry>>,
    next_seq: u64,
    stopped: bool,
}

struct Entry {
    due: Instant,
    /// Keeps equal deadlines in arrival order.
    seq: u64,
    done: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

impl TimerShared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing in the state can be left half-updated by a panic.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Timer {
    /// Starts the timer thread.
    pub(crate) fn start() -> std::io::Result<Arc<Timer>> {
        let shared = Arc::new(TimerShared { state: Mutex::new(State::default()), changed: Condvar::new() });
        let thread_shared = shared.clone();
        std::thread::Builder::new().name("nest-demo-timer".to_owned()).spawn(move || run(&thread_shared))?;
        Ok(Arc::new(Timer { shared }))
    }

    /// A channel that completes at `due` (at once if it has passed).
    pub(crate) fn at(&self, due: Instant) -> oneshot::Receiver<()> {
        let (done, wait) = oneshot::channel();
        let mut state = self.shared.lock();
        let earliest = state.queue.peek().map(|Reverse(e)| e.due);
        let seq = state.next_seq;
        state.next_seq += 1;
        state.queue.push(Reverse(Entry { due, seq, done }));
        drop(state);
        // With a fixed latency deadlines come in order, so the thread rarely needs waking.
        if earliest.is_none_or(|earliest| due < earliest) {
            self.shared.changed.notify_one();
        }
        wait
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.changed.notify_one();
    }
}

fn run(shared: &TimerShared) {
    let mut state = shared.lock();
    while !state.stopped {
        let now = Instant::now();
        while state.queue.peek().is_some_and(|Reverse(e)| e.due <= now) {
            let Some(Reverse(entry)) = state.queue.pop() else { break };
            // The connection may be gone: nothing to do then.
            let _ = entry.done.send(());
        }
        state = match state.queue.peek() {
            Some(Reverse(next)) => {
                let wait = next.due - now;
                shared.changed.wait_timeout(state, wait).unwrap_or_else(|poisoned| poisoned.into_inner()).0
            }
            None => shared.changed.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner()),
        };
    }
    // Dropping the queue completes the remaining waits with an error.
    state.queue.clear();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn completes_in_deadline_order_not_before_the_deadline() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let timer = Timer::start().unwrap();
        let t0 = Instant::now();
        let later = timer.at(t0 + Duration::from_millis(60));
        let sooner = timer.at(t0 + Duration::from_millis(30));
        let past = timer.at(t0);
        runtime.block_on(async {
            past.await.unwrap();
            sooner.await.unwrap();
            assert!(t0.elapsed() >= Duration::from_millis(30));
            later.await.unwrap();
            assert!(t0.elapsed() >= Duration::from_millis(60));
        });
    }

    #[test]
    fn dropping_the_handle_ends_pending_waits() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let timer = Timer::start().unwrap();
        let wait = timer.at(Instant::now() + Duration::from_secs(3600));
        drop(timer);
        assert!(runtime.block_on(wait).is_err());
    }
}
