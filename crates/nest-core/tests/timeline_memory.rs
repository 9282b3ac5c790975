//! A long run's memory does not grow with its length: the aggregator's live heap over a simulated 4-hour run never
//! exceeds what the first hour (3,600 points at one per second) took. A counting allocator (this test binary's global allocator) measures the bytes
//! held; the run is simulated second by second (2 workers, 2 or 10 request names), without a clock or a network.
//! The tests run one at a time, since they share the counter.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use nest_core::stats::{Aggregate, MAX_POINTS, Recorder, Sample};

/// Held by each test: the live-bytes counter is the whole process's.
static SERIAL: Mutex<()> = Mutex::new(());

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

/// Simulates seconds `from..to` of a run into `agg`, as the runner does: a delta per worker per second, then seal.
fn simulate(agg: &mut Aggregate, workers: &[Recorder], from: u64, to: u64) {
    for second in from..to {
        for (i, recorder) in workers.iter().enumerate() {
            for n in 0..4u64 {
                let latency = Duration::from_micros(800 + (second * 37 + n * 101 + i as u64 * 13) % 5000);
                let name = if n % 2 == 0 { "/browse" } else { "/cart" };
                recorder.request("GET", name, Sample { latency, ..Default::default() });
            }
            let mut delta = recorder.take();
            delta.second = second;
            delta.users = 200;
            agg.merge(delta);
        }
        agg.seal_before(second);
    }
}

#[test]
fn the_aggregate_stays_bounded_over_a_long_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let workers = [Recorder::new(), Recorder::new()];
    let before = LIVE.load(Ordering::Relaxed);
    let mut agg = Aggregate::default();
    let hour = 3600;
    simulate(&mut agg, &workers, 0, hour);
    let one_hour = LIVE.load(Ordering::Relaxed) - before;
    simulate(&mut agg, &workers, hour, 2 * hour);
    let two_hours = LIVE.load(Ordering::Relaxed) - before;
    // Hours later: the points were merged (twice), never more of them than after the first hour.
    simulate(&mut agg, &workers, 2 * hour, 4 * hour - 1);
    let four_hours = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "aggregate heap: {} KiB after 1 h, {} KiB after 2 h, {} KiB after 4 h ({} points, {} s each)",
        one_hour / 1024,
        two_hours / 1024,
        four_hours / 1024,
        agg.timeline.len(),
        agg.step()
    );
    assert!(agg.timeline.len() <= MAX_POINTS + 1);
    // Before the bound, every hour added as much as the first; now the timeline's points are merged instead.
    let bound = one_hour + one_hour / 10;
    assert!(two_hours <= bound && four_hours <= bound, "grew: {one_hour}, {two_hours}, {four_hours} bytes");
    assert!(four_hours < 8 << 20, "{four_hours} bytes for 2 request names");
    let requests: u64 = agg.requests.values().map(|c| c.count).sum();
    assert_eq!(requests, (4 * hour - 1) * 8, "every request is still counted");
}
