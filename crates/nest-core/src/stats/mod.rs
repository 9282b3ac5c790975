//! Recording what happened, per worker, without sharing anything on the hot path.
//!
//! Each worker owns a [`Recorder`]: plain maps and HdrHistograms behind an `Rc<RefCell>`, touched only by that
//! worker's thread. Once a second the worker swaps its [`Delta`] out and sends it, tagged with the second it covers,
//! to the one aggregator ([`Aggregate`]), which merges deltas from every worker into totals and a per-second
//! timeline. Histograms record microseconds with 3 significant figures and are merged bucket by bucket, so
//! percentiles are exact to that precision and never averaged.

mod aggregate;
mod custom;
mod summary;
mod timeline;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

pub use aggregate::Aggregate;
pub use custom::{
    CheckCounts, CheckRow, CustomError, MAX_CHECKS, MAX_METRICS, MAX_NAME_LEN, MetricKind, MetricRow, MetricValue,
    check_name, check_rows, metric_rows,
};
pub use summary::{
    ErrorRow, FailureRow, LatencyMs, PoolRow, RequestRow, Summary, SummaryParts, TaskRow, TimelinePoint, Totals,
};
pub use timeline::{
    Interval, MAX_POINTS, Second, TOTAL_QUANTILES, TimelineLatency, TimelineRow, TimelineTotal, seal_rows,
};

/// Significant figures of every latency histogram.
pub const SIGFIG: u8 = 3;

/// A new, empty latency histogram in microseconds; it grows as larger values arrive.
pub fn new_histogram() -> Histogram<u64> {
    // `new` enables auto-resize, so a fast endpoint does not pay for the range of a slow one.
    Histogram::new(SIGFIG).unwrap_or_else(|_| unreachable!("3 significant figures is a valid precision"))
}

/// Encodes a histogram as HdrHistogram V2 + DEFLATE in base64: the interchange form of every report.
///
/// The bytes are exactly those of hdrhistogram's `V2DeflateSerializer`, but the zlib compressor is kept per thread
/// and reset between histograms: a new one allocates and zeroes about 300 KiB of tables, several times the cost of
/// compressing a typical histogram (the runner encodes every name's histograms each second).
pub fn encode_histogram(histogram: &Histogram<u64>) -> String {
    use base64::Engine as _;
    let bytes = ENCODER.with(|encoder| match encoder.try_borrow_mut() {
        Ok(mut encoder) => encoder.encode(histogram),
        // (Only if an encode were re-entered on this thread: a compressor of its own.)
        Err(_) => HistogramEncoder::default().encode(histogram),
    });
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

thread_local! {
    static ENCODER: RefCell<HistogramEncoder> = RefCell::new(HistogramEncoder::default());
}

/// What `V2DeflateSerializer` builds for each histogram, kept: the V2 serializer, its buffer and the compressor.
struct HistogramEncoder {
    v2: hdrhistogram::serialization::V2Serializer,
    raw: Vec<u8>,
    zlib: flate2::write::ZlibEncoder<Vec<u8>>,
}

impl Default for HistogramEncoder {
    fn default() -> Self {
        HistogramEncoder {
            v2: hdrhistogram::serialization::V2Serializer::new(),
            raw: Vec::new(),
            zlib: flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default()),
        }
    }
}

/// hdrhistogram's cookie of a V2 + DEFLATE histogram (`V2_COMPRESSED_COOKIE`, private there).
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;

impl HistogramEncoder {
    /// The cookie, the compressed length and the zlib stream of the V2 form, as `V2DeflateSerializer` writes them.
    fn encode(&mut self, histogram: &Histogram<u64>) -> Vec<u8> {
        use hdrhistogram::serialization::Serializer as _;
        use std::io::Write as _;
        self.raw.clear();
        // Serialising and compressing into memory cannot fail for a valid histogram.
        let _ = self.v2.serialize(histogram, &mut self.raw);
        let mut out = Vec::with_capacity(8 + self.raw.len() / 2);
        out.extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        *self.zlib.get_mut() = out;
        let _ = self.zlib.write_all(&self.raw);
        let _ = self.zlib.try_finish();
        // `reset` starts the next stream with the same compressor and hands back this one's output.
        let mut out = self.zlib.reset(Vec::new()).unwrap_or_default();
        let len = u32::try_from(out.len().saturating_sub(8)).unwrap_or(u32::MAX);
        out[4..8].copy_from_slice(&len.to_be_bytes());
        out
    }
}

/// Decodes a histogram written by [`encode_histogram`].
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("not base64: {e}"))?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("not an HdrHistogram: {e:?}"))
}

/// A latency distribution with its exact sum, min and max.
#[derive(Debug, Clone)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Sum of latencies in µs, for an exact mean.
    pub sum_us: u64,
    /// Smallest latency in µs.
    pub min_us: u64,
    /// Largest latency in µs.
    pub max_us: u64,
    /// The distribution in µs.
    pub histogram: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency { count: 0, sum_us: 0, min_us: u64::MAX, max_us: 0, histogram: new_histogram() }
    }
}

impl Latency {
    fn record(&mut self, us: u64) {
        self.count += 1;
        self.sum_us += us;
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
        // `record` grows the histogram as needed; saturate only if even that fails.
        if self.histogram.record(us.max(1)).is_err() {
            self.histogram.saturating_record(us.max(1));
        }
    }

    /// Adds another distribution to this one.
    pub fn merge(&mut self, other: &Latency) {
        self.count += other.count;
        self.sum_us += other.sum_us;
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
        // Both histograms auto-resize and share the lowest value and precision, so `add` cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }

    /// The value at quantile `q`, in µs, clamped to the exact min and max.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.histogram.is_empty() {
            return 0;
        }
        self.histogram.value_at_quantile(q).clamp(self.min_us, self.max_us)
    }

    /// The values at the ascending quantiles `qs`, each exactly [`Latency::quantile_us`], in one pass over the
    /// histogram's buckets rather than one pass each.
    pub fn quantiles_us<const N: usize>(&self, qs: [f64; N]) -> [u64; N] {
        let mut values = [0; N];
        if !self.histogram.is_empty() {
            for (value, v) in values.iter_mut().zip(self.histogram.value_at_quantiles(qs)) {
                *value = v.clamp(self.min_us, self.max_us);
            }
        }
        values
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// No response: refused, timed out, TLS, DNS... (status 0).
    Transport,
    /// A response whose status was not expected (`expect`, or not 1xx–3xx by default).
    Status,
    /// The script rejected the response with `fail(reason)`.
    Check,
}

/// A failed request: why, and in what words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure<'a> {
    /// The kind of failure.
    pub kind: FailureKind,
    /// The reason shown in reports (`HTTP 500`, `connection refused`, the script's text).
    pub reason: &'a str,
}

/// One completed request, as the client measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample<'a> {
    /// Service time: from sending to the end of the response.
    pub latency: Duration,
    /// Open model: time from the task's scheduled start (first request) or the send (later requests).
    pub corrected: Option<Duration>,
    /// Response body bytes (decoded: what the script sees, counted even when the body was discarded).
    pub bytes: u64,
    /// Why it failed, if it did.
    pub failure: Option<Failure<'a>>,
    /// Response body bytes as they came off the wire, before decoding `gzip`, `deflate` or `br`.
    pub wire_bytes: u64,
    /// The response's HTTP status; 0 when there was none (a transport error).
    pub status: u16,
}

/// Counters and latencies of one (method, name) group.
#[derive(Debug, Clone, Default)]
pub struct RequestCounts {
    /// Requests completed (successful or not).
    pub count: u64,
    /// Requests counted as failed.
    pub failures: u64,
    /// Response body bytes received.
    pub bytes: u64,
    /// Service time: from sending to the end of the response.
    pub latency: Latency,
    /// Open model only: response time counted from each task's scheduled start (coordinated omission corrected).
    pub corrected: Option<Latency>,
    /// Response body bytes as they came off the wire (before decoding).
    pub wire_bytes: u64,
    /// Requests by HTTP status (0: no response), for the metrics' `status` label. Live figures a coordinator merges
    /// from its segments' pushes do not carry it: then it is empty.
    pub statuses: BTreeMap<u16, u64>,
}

impl RequestCounts {
    fn record(&mut self, latency: Duration, corrected: Option<Duration>) {
        self.count += 1;
        self.latency.record(micros(latency));
        if let Some(c) = corrected {
            self.corrected.get_or_insert_with(Latency::default).record(micros(c));
        }
    }

    /// Adds another group's counts to this one.
    pub fn merge(&mut self, other: &RequestCounts) {
        self.count += other.count;
        self.failures += other.failures;
        self.bytes += other.bytes;
        self.wire_bytes += other.wire_bytes;
        for (&status, &n) in &other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.latency.merge(&other.latency);
        if let Some(c) = &other.corrected {
            self.corrected.get_or_insert_with(Latency::default).merge(c);
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Runs and errors of one slot (task or hook).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotCounts {
    /// Calls that ran to an end (done, interrupted or failed).
    pub runs: u64,
    /// Calls that ended in an error.
    pub errors: u64,
    /// Times this task took longer than its pacing interval, so the next task started late.
    pub pacing_missed: u64,
}

/// What one worker recorded since its last flush. Sent to the aggregator.
#[derive(Debug, Default)]
pub struct Delta {
    /// The second of the run this delta covers (0 is the first).
    pub second: u64,
    /// Active VUs on the worker when the delta was taken.
    pub users: u64,
    /// Open model: task starts dropped because no VU was free in time.
    pub dropped: u64,
    /// Request groups by name, then by method (usually one).
    pub requests: HashMap<Box<str>, MethodGroups, NameHasher>,
    /// Failed requests by (method, name, reason): their kind and count.
    pub failures: HashMap<(String, String, String), (FailureKind, u64)>,
    /// Script errors by (location, message).
    pub errors: HashMap<(String, String), u64>,
    /// Slot counters: `slots[taskset][slot index]` (see [`crate::Slot::index`]).
    pub slots: Vec<Vec<SlotCounts>>,
    /// The script's `check()` results by check name.
    pub checks: HashMap<Box<str>, CheckCounts, NameHasher>,
    /// The script's custom metrics by name (declared ones too, possibly still empty).
    pub metrics: HashMap<Box<str>, MetricValue, NameHasher>,
}

/// One request name's groups in a [`Delta`], by method (usually one).
pub type MethodGroups = Vec<(Box<str>, RequestCounts)>;

/// The hasher of a [`Delta`]'s maps, which are looked up at each request, check or metric update: foldhash with a
/// fixed seed, several times cheaper than the standard SipHash on short names. (The names come from the taskset, not
/// from a remote peer, so hash flooding is not a concern.)
pub type NameHasher = foldhash::fast::FixedState;

impl Delta {
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
            && self.errors.is_empty()
            && self.slots.iter().flatten().all(|s| s.runs == 0)
            && self.checks.is_empty()
            && self.metrics.is_empty()
    }
}

/// A worker's handle for recording. Cheap to clone; never crosses threads.
#[derive(Clone, Default)]
pub struct Recorder {
    delta: Rc<RefCell<Delta>>,
    /// Metric and check names seen in the whole run (they outlive each delta).
    names: Rc<RefCell<custom::Names>>,
}

impl Recorder {
    /// A recorder with no data.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Records one completed request.
    pub fn request(&self, method: &str, name: &str, sample: Sample<'_>) {
        let mut delta = self.delta.borrow_mut();
        with_group(&mut delta, method, name, |group| {
            group.record(sample.latency, sample.corrected);
            group.bytes += sample.bytes;
            group.wire_bytes += sample.wire_bytes;
            *group.statuses.entry(sample.status).or_default() += 1;
            group.failures += u64::from(sample.failure.is_some());
        });
        if let Some(failure) = sample.failure {
            count_failure(&mut delta, method, name, failure);
        }
    }

    /// Marks an already recorded, successful request as failed (a script called `fail()` on its response).
    pub fn fail_recorded(&self, method: &str, name: &str, reason: &str) {
        let mut delta = self.delta.borrow_mut();
        with_group(&mut delta, method, name, |group| group.failures += 1);
        count_failure(&mut delta, method, name, Failure { kind: FailureKind::Check, reason });
    }

    /// Records the end of one call of a slot, with its error if it failed.
    pub fn slot(&self, taskset: usize, slot_index: usize, error: Option<(&str, &str)>) {
        let mut delta = self.delta.borrow_mut();
        let counts = slot_mut(&mut delta, taskset, slot_index);
        counts.runs += 1;
        if let Some((location, message)) = error {
            counts.errors += 1;
            *delta.errors.entry((location.to_owned(), message.to_owned())).or_default() += 1;
        }
    }

    /// Records that a task overran its pacing interval.
    pub fn pacing_missed(&self, taskset: usize, slot_index: usize) {
        slot_mut(&mut self.delta.borrow_mut(), taskset, slot_index).pacing_missed += 1;
    }

    /// Records a dropped task start (open model).
    pub fn dropped(&self) {
        self.delta.borrow_mut().dropped += 1;
    }

    /// Records an error that belongs to no slot.
    pub fn error(&self, location: &str, message: &str) {
        *self.delta.borrow_mut().errors.entry((location.to_owned(), message.to_owned())).or_default() += 1;
    }

    /// Records one result of the named check.
    pub fn check(&self, name: &str, passed: bool) -> Result<(), CustomError> {
        self.names.borrow_mut().check(name)?;
        let mut delta = self.delta.borrow_mut();
        let counts = match delta.checks.get_mut(name) {
            Some(c) => c,
            None => delta.checks.entry(name.into()).or_default(),
        };
        if passed {
            counts.passes += 1;
        } else {
            counts.fails += 1;
        }
        Ok(())
    }

    /// Updates (or declares, with an `update` that does nothing) the custom metric `name` of `kind`.
    pub fn metric(
        &self,
        name: &str,
        kind: MetricKind,
        update: impl FnOnce(&mut MetricValue) -> Result<(), CustomError>,
    ) -> Result<(), CustomError> {
        self.names.borrow_mut().metric(name, kind)?;
        let mut delta = self.delta.borrow_mut();
        let value = match delta.metrics.get_mut(name) {
            Some(v) => v,
            None => delta.metrics.entry(name.into()).or_insert_with(|| MetricValue::new(kind)),
        };
        update(value)
    }

    /// Takes everything recorded so far, leaving the recorder empty.
    pub fn take(&self) -> Delta {
        std::mem::take(&mut *self.delta.borrow_mut())
    }
}

fn count_failure(delta: &mut Delta, method: &str, name: &str, failure: Failure<'_>) {
    let key = (method.to_owned(), name.to_owned(), failure.reason.to_owned());
    delta.failures.entry(key).or_insert((failure.kind, 0)).1 += 1;
}

fn slot_mut(delta: &mut Delta, taskset: usize, slot_index: usize) -> &mut SlotCounts {
    if delta.slots.len() <= taskset {
        delta.slots.resize_with(taskset + 1, Vec::new);
    }
    let slots = &mut delta.slots[taskset];
    if slots.len() <= slot_index {
        slots.resize(slot_index + 1, SlotCounts::default());
    }
    &mut slots[slot_index]
}

/// Runs `f` on the counts of the group `name` and `method`, made on first use: one hash look-up when the group
/// exists (the borrow stays inside this function, so `get_mut` can fall back to `entry`).
fn with_group(delta: &mut Delta, method: &str, name: &str, f: impl FnOnce(&mut RequestCounts)) {
    let methods = match delta.requests.get_mut(name) {
        Some(methods) => methods,
        None => delta.requests.entry(name.into()).or_insert_with(|| Vec::with_capacity(1)),
    };
    let at = match methods.iter().position(|(m, _)| &**m == method) {
        Some(at) => at,
        None => {
            methods.push((method.into(), RequestCounts::default()));
            methods.len() - 1
        }
    };
    f(&mut methods[at].1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_groups_failures_and_slots() {
        let r = Recorder::new();
        let ms = Duration::from_millis;
        r.request("GET", "/a", Sample { latency: ms(2), bytes: 10, ..Default::default() });
        let failure = Some(Failure { kind: FailureKind::Status, reason: "HTTP 500" });
        let sample = Sample { latency: ms(4), corrected: Some(ms(9)), bytes: 5, failure, wire_bytes: 2, status: 500 };
        r.request("GET", "/a", sample);
        r.request("POST", "/a", Sample { latency: ms(1), ..Default::default() });
        r.fail_recorded("POST", "/a", "bad body");
        r.slot(1, 2, Some(("x.rhai:3:4", "boom")));
        r.slot(1, 2, None);
        r.pacing_missed(1, 2);
        let d = r.take();
        let a = &d.requests["/a"];
        assert_eq!(a.len(), 2);
        let get = &a.iter().find(|(m, _)| &**m == "GET").unwrap().1;
        let l = &get.latency;
        assert_eq!((get.count, get.failures, l.sum_us, l.min_us, l.max_us, get.bytes), (2, 1, 6000, 2000, 4000, 15));
        assert_eq!(get.wire_bytes, 2);
        assert_eq!(get.statuses, BTreeMap::from([(0, 1), (500, 1)]), "by status (0: the sample gave none)");
        assert_eq!(get.corrected.as_ref().unwrap().max_us, 9000);
        assert_eq!(d.failures[&("POST".into(), "/a".into(), "bad body".into())], (FailureKind::Check, 1));
        assert_eq!(d.failures[&("GET".into(), "/a".into(), "HTTP 500".into())], (FailureKind::Status, 1));
        assert_eq!(d.slots[1][2], SlotCounts { runs: 2, errors: 1, pacing_missed: 1 });
        assert_eq!(d.errors[&("x.rhai:3:4".into(), "boom".into())], 1);
        assert!(r.take().is_empty(), "take leaves the recorder empty");
    }

    /// What hdrhistogram's own serializer writes, base64: the bytes every report held before the compressor was
    /// kept per thread.
    fn encoded_by_hdrhistogram(h: &Histogram<u64>) -> String {
        use base64::Engine as _;
        use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
        let mut bytes = Vec::new();
        V2DeflateSerializer::new().serialize(h, &mut bytes).unwrap();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn quantiles_in_one_pass_are_each_quantile() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let mut rng = SmallRng::seed_from_u64(7);
        let qs = [0.0, 0.001, 0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0];
        for n in [0, 1, 2, 3, 10, 1000, 50_000] {
            let mut l = Latency::default();
            for _ in 0..n {
                l.record(10u64.pow(rng.random_range(0..7)) * rng.random_range(1..10) + rng.random_range(0..10));
            }
            assert_eq!(l.quantiles_us(qs), qs.map(|q| l.quantile_us(q)), "{n} values");
        }
    }

    #[test]
    fn the_reused_compressor_writes_exactly_what_hdrhistogram_writes() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let mut rng = SmallRng::seed_from_u64(15);
        let mut sizes = vec![0, 1, 2, 50, 1000];
        // A wide spread of values gives a V2 form larger than the compressor's 32 KiB output buffer.
        sizes.extend([20_000, 200_000]);
        for (i, n) in sizes.into_iter().enumerate() {
            let mut h = new_histogram();
            for _ in 0..n {
                let us = if i % 2 == 0 { rng.random_range(1..60_000_000) } else { 10u64.pow(rng.random_range(0..7)) };
                h.record(us).unwrap();
            }
            // Twice in a row: the second stream starts from the reset compressor.
            for _ in 0..2 {
                let encoded = encode_histogram(&h);
                assert_eq!(encoded, encoded_by_hdrhistogram(&h), "{n} values: the same bytes");
                assert_eq!(decode_histogram(&encoded).unwrap(), h, "{n} values decode back");
            }
        }
    }
}
