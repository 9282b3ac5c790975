//! Measures what a long run's statistics cost: the heap the aggregator holds and the size of the report's JSON,
//! after 1, 6 and 24 hours of simulated run (no clock, no network), for 10 request names.
//!
//! It exists to state the figures of docs/reports.md ("Long runs and memory") and to show that the timeline's bound
//! holds: the per-hour cost falls as the run gets longer. Run it through `bench/timeline_memory.sh` (a release
//! build; a debug build takes many times longer). A counting global allocator measures the bytes held; the run is
//! simulated second by second as the runner does it: a delta per worker per second, then the second is sealed.
//!
//! Environment: `NAMES` (request names, default 10), `RATE` (requests per name per second, default 20),
//! `HOURS` (comma-separated checkpoints, default `1,6,24`), `MAX_MS` (service times spread from 1 ms to this,
//! default 50).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use nest_core::stats::{Aggregate, Recorder, Sample, Summary, SummaryParts};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The simulated traffic.
struct Traffic {
    names: Vec<String>,
    /// Requests per name per second, over all workers.
    rate: u64,
    /// Service times are spread uniformly from 1 ms to this, in µs.
    max_us: u64,
    rng: SmallRng,
}

fn env_or(key: &str, default: u64) -> u64 {
    match std::env::var(key) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{key}={v} is not a whole number")),
        Err(_) => default,
    }
}

/// Simulates seconds `from..to` into `agg`: 2 workers share the traffic, each sends its delta, then the second
/// before the current one is sealed (as the runner does once every worker reported).
fn simulate(agg: &mut Aggregate, workers: &[Recorder], traffic: &mut Traffic, from: u64, to: u64) {
    for second in from..to {
        for (i, recorder) in workers.iter().enumerate() {
            for name in &traffic.names {
                for _ in (i as u64..traffic.rate).step_by(workers.len()) {
                    let us = traffic.rng.random_range(1000..=traffic.max_us);
                    recorder.request("GET", name, Sample { latency: Duration::from_micros(us), ..Default::default() });
                }
            }
            let mut delta = recorder.take();
            (delta.second, delta.users) = (second, 100);
            agg.merge(delta);
        }
        agg.seal_before(second);
    }
}

/// The report JSON's size after `seconds` (the aggregate sealed to the end, as a run's last step does).
fn json_bytes(agg: &mut Aggregate, seconds: u64) -> usize {
    agg.seal_before(u64::MAX);
    let parts = SummaryParts { duration_s: seconds as f64, users: 100, ..SummaryParts::default() };
    serde_json::to_vec(&Summary::new(agg, parts)).map_or(0, |json| json.len())
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

fn main() {
    let names = env_or("NAMES", 10);
    let hours: Vec<u64> = std::env::var("HOURS")
        .unwrap_or_else(|_| "1,6,24".into())
        .split(',')
        .map(|h| h.trim().parse().unwrap_or_else(|_| panic!("HOURS: `{h}` is not a whole number of hours")))
        .collect();
    let mut traffic = Traffic {
        names: (0..names).map(|i| format!("/name{i}")).collect(),
        rate: env_or("RATE", 20),
        max_us: env_or("MAX_MS", 50).max(1) * 1000,
        rng: SmallRng::seed_from_u64(1),
    };
    println!(
        "{names} request names, {} requests per name per second, service times 1 to {} ms, 2 workers",
        traffic.rate,
        traffic.max_us / 1000
    );
    println!(
        "{:>6} {:>7} {:>7} {:>10} {:>12} {:>10} {:>12} {:>8}",
        "hours", "points", "width", "heap MiB", "heap MiB/h", "JSON MiB", "JSON MiB/h", "took"
    );
    let workers = [Recorder::new(), Recorder::new()];
    let before = LIVE.load(Ordering::Relaxed);
    let mut agg = Aggregate::default();
    let (mut done, started) = (0, Instant::now());
    for h in hours {
        simulate(&mut agg, &workers, &mut traffic, done, h * 3600);
        done = h * 3600;
        let heap = (LIVE.load(Ordering::Relaxed) - before) as f64;
        let json = json_bytes(&mut agg, done) as f64;
        let (points, width) = (agg.timeline.len(), agg.step());
        println!(
            "{h:>6} {points:>7} {:>6}s {:>10.1} {:>12.2} {:>10.1} {:>12.2} {:>7.0}s",
            width,
            mib(heap),
            mib(heap) / h as f64,
            mib(json),
            mib(json) / h as f64,
            started.elapsed().as_secs_f64()
        );
    }
}
