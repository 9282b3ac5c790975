//! A long run's memory does not grow with its length: the aggregator's live heap over a simulated run four times
//! as long as the timeline's bound ([`MAX_POINTS`] points at one per second) never exceeds what the first part
//! took. A counting allocator (this test binary's global allocator) measures the bytes held; the run is simulated
//! second by second (2 workers, 2 request names), without a clock or a network. (The figures for 10 request names
//! and 1, 6 and 24 hours come from the `timeline_memory` example: `bench/timeline_memory.sh`.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use nest_core::stats::{Aggregate, MAX_POINTS, Recorder, Sample};

/// Held by the test: the live-bytes counter is the whole process's.
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
    let first = MAX_POINTS as u64;
    simulate(&mut agg, &workers, 0, first);
    let one = LIVE.load(Ordering::Relaxed) - before;
    simulate(&mut agg, &workers, first, 2 * first);
    let two = LIVE.load(Ordering::Relaxed) - before;
    // Later still: the points were merged (twice), never more of them than after the first part.
    simulate(&mut agg, &workers, 2 * first, 4 * first - 1);
    let four = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "aggregate heap: {} KiB after {first} s, {} KiB after twice as long, {} KiB after 4 times ({} points, {} s each)",
        one / 1024,
        two / 1024,
        four / 1024,
        agg.timeline.len(),
        agg.step()
    );
    assert!(agg.timeline.len() <= MAX_POINTS + 1);
    // Before the bound, every part added as much as the first; now the timeline's points are merged instead.
    let bound = one + one / 10;
    assert!(two <= bound && four <= bound, "grew: {one}, {two}, {four} bytes");
    assert!(four < 8 << 20, "{four} bytes for 2 request names");
    let requests: u64 = agg.requests.values().map(|c| c.count).sum();
    assert_eq!(requests, (4 * first - 1) * 8, "every request is still counted");
}
