//! Recording what happened, per worker, without sharing anything on the hot path.
//!
//! Each worker owns a [`Recorder`]: plain maps and HdrHistograms behind an `Rc<RefCell>`, touched only by that
//! worker's thread. Once a second the worker swaps its [`Delta`] out and sends it to the one aggregator
//! ([`Aggregate`]), which merges deltas from every worker. Histograms record microseconds with 3 significant figures
//! and are merged bucket by bucket, so percentiles are exact to that precision and never averaged.

mod aggregate;
mod summary;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use hdrhistogram::Histogram;

pub use aggregate::Aggregate;
pub use summary::{ErrorRow, FailureRow, LatencyMs, RequestRow, Summary, TaskRow, Totals};

/// Significant figures of every latency histogram.
pub const SIGFIG: u8 = 3;

/// A new, empty latency histogram in microseconds; it grows as larger values arrive.
pub fn new_histogram() -> Histogram<u64> {
    // `new` enables auto-resize, so a fast endpoint does not pay for the range of a slow one.
    Histogram::new(SIGFIG)
        .unwrap_or_else(|_| unreachable!("3 significant figures is a valid precision"))
}

/// Counters and latencies of one (method, name) group.
#[derive(Debug, Clone)]
pub struct RequestCounts {
    /// Requests completed (successful or not).
    pub count: u64,
    /// Requests counted as failed.
    pub failures: u64,
    /// Sum of latencies in µs, for an exact mean.
    pub sum_us: u64,
    /// Smallest latency in µs.
    pub min_us: u64,
    /// Largest latency in µs.
    pub max_us: u64,
    /// Latency distribution in µs.
    pub histogram: Histogram<u64>,
}

impl Default for RequestCounts {
    fn default() -> Self {
        RequestCounts {
            count: 0,
            failures: 0,
            sum_us: 0,
            min_us: u64::MAX,
            max_us: 0,
            histogram: new_histogram(),
        }
    }
}

impl RequestCounts {
    fn record(&mut self, latency_us: u64) {
        self.count += 1;
        self.sum_us += latency_us;
        self.min_us = self.min_us.min(latency_us);
        self.max_us = self.max_us.max(latency_us);
        // `record` grows the histogram as needed; saturate only if even that fails.
        if self.histogram.record(latency_us.max(1)).is_err() {
            self.histogram.saturating_record(latency_us.max(1));
        }
    }

    /// Adds another group's counts to this one.
    pub fn merge(&mut self, other: &RequestCounts) {
        self.count += other.count;
        self.failures += other.failures;
        self.sum_us += other.sum_us;
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
        // Both histograms auto-resize and share the lowest value and precision, so `add` cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }
}

/// Runs and errors of one slot (task or hook).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotCounts {
    /// Calls that ran to an end (done, interrupted or failed).
    pub runs: u64,
    /// Calls that ended in an error.
    pub errors: u64,
}

/// What one worker recorded since its last flush. Sent to the aggregator.
#[derive(Debug, Default)]
pub struct Delta {
    /// Request groups by name, then by method (usually one).
    pub requests: HashMap<Box<str>, Vec<(Box<str>, RequestCounts)>>,
    /// Failed requests by (method, name, reason).
    pub failures: HashMap<(String, String, String), u64>,
    /// Script errors by (location, message).
    pub errors: HashMap<(String, String), u64>,
    /// Slot counters: `slots[taskset][slot index]` (see [`crate::Slot::index`]).
    pub slots: Vec<Vec<SlotCounts>>,
}

impl Delta {
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
            && self.errors.is_empty()
            && self.slots.iter().flatten().all(|s| s.runs == 0)
    }
}

/// A worker's handle for recording. Cheap to clone; never crosses threads.
#[derive(Clone, Default)]
pub struct Recorder {
    delta: Rc<RefCell<Delta>>,
}

impl Recorder {
    /// A recorder with no data.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Records one completed request, with its failure reason if it failed.
    pub fn request(&self, method: &str, name: &str, latency: Duration, failure: Option<&str>) {
        let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let mut delta = self.delta.borrow_mut();
        let group = group_mut(&mut delta, method, name);
        group.record(latency_us);
        if let Some(reason) = failure {
            group.failures += 1;
            *delta
                .failures
                .entry((method.to_owned(), name.to_owned(), reason.to_owned()))
                .or_default() += 1;
        }
    }

    /// Marks an already recorded, successful request as failed (a script called `fail()` on its response).
    pub fn fail_recorded(&self, method: &str, name: &str, reason: &str) {
        let mut delta = self.delta.borrow_mut();
        group_mut(&mut delta, method, name).failures += 1;
        *delta
            .failures
            .entry((method.to_owned(), name.to_owned(), reason.to_owned()))
            .or_default() += 1;
    }

    /// Records the end of one call of a slot, with its error if it failed.
    pub fn slot(&self, taskset: usize, slot_index: usize, error: Option<(&str, &str)>) {
        let mut delta = self.delta.borrow_mut();
        if delta.slots.len() <= taskset {
            delta.slots.resize_with(taskset + 1, Vec::new);
        }
        let slots = &mut delta.slots[taskset];
        if slots.len() <= slot_index {
            slots.resize(slot_index + 1, SlotCounts::default());
        }
        slots[slot_index].runs += 1;
        if let Some((location, message)) = error {
            slots[slot_index].errors += 1;
            *delta
                .errors
                .entry((location.to_owned(), message.to_owned()))
                .or_default() += 1;
        }
    }

    /// Records an error that belongs to no slot.
    pub fn error(&self, location: &str, message: &str) {
        *self
            .delta
            .borrow_mut()
            .errors
            .entry((location.to_owned(), message.to_owned()))
            .or_default() += 1;
    }

    /// Takes everything recorded so far, leaving the recorder empty.
    pub fn take(&self) -> Delta {
        std::mem::take(&mut *self.delta.borrow_mut())
    }
}

fn group_mut<'a>(delta: &'a mut Delta, method: &str, name: &str) -> &'a mut RequestCounts {
    if !delta.requests.contains_key(name) {
        delta.requests.insert(name.into(), Vec::with_capacity(1));
    }
    let Some(methods) = delta.requests.get_mut(name) else {
        unreachable!("inserted above")
    };
    let at = match methods.iter().position(|(m, _)| &**m == method) {
        Some(at) => at,
        None => {
            methods.push((method.into(), RequestCounts::default()));
            methods.len() - 1
        }
    };
    &mut methods[at].1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_groups_failures_and_slots() {
        let r = Recorder::new();
        r.request("GET", "/a", Duration::from_millis(2), None);
        r.request("GET", "/a", Duration::from_millis(4), Some("HTTP 500"));
        r.request("POST", "/a", Duration::from_millis(1), None);
        r.fail_recorded("POST", "/a", "bad body");
        r.slot(1, 2, Some(("x.rhai:3:4", "boom")));
        r.slot(1, 2, None);
        let d = r.take();
        let a = &d.requests["/a"];
        assert_eq!(a.len(), 2);
        let get = &a.iter().find(|(m, _)| &**m == "GET").unwrap().1;
        assert_eq!(
            (get.count, get.failures, get.sum_us, get.min_us, get.max_us),
            (2, 1, 6000, 2000, 4000)
        );
        assert_eq!(
            d.failures[&("POST".into(), "/a".into(), "bad body".into())],
            1
        );
        assert_eq!(d.slots[1][2], SlotCounts { runs: 2, errors: 1 });
        assert_eq!(d.errors[&("x.rhai:3:4".into(), "boom".into())], 1);
        assert!(r.take().is_empty(), "take leaves the recorder empty");
    }
}
