//! Cheap pseudo-randomness without the `rand` crate.
//!
//! The shop needs jitter for its simulated latencies and unguessable-looking
//! ids for tokens, sessions and orders. Neither needs cryptographic quality:
//! a per-thread xorshift gives the jitter, and a seeded splitmix64 over a
//! counter gives unique ids. The seed comes from std's randomly keyed hasher.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// A random 64-bit seed (from std's per-process random hash keys).
pub(crate) fn seed() -> u64 {
    RandomState::new().hash_one(0x6e65_7374_u64)
}

/// The splitmix64 finaliser: a good bijective mix of a 64-bit value.
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

thread_local! {
    static XORSHIFT: Cell<u64> = Cell::new(seed() | 1);
}

/// The next value of this thread's xorshift64 generator.
pub(crate) fn next_u64() -> u64 {
    XORSHIFT.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x
    })
}

/// A pseudo-random value in `lo..=hi` (`lo` if `hi <= lo`).
pub(crate) fn between(lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    lo + next_u64() % (hi - lo + 1)
}

/// Unique, random-looking 128-bit ids: splitmix64 over a seeded counter, so
/// two ids from one generator never collide.
pub(crate) struct IdGen {
    seed: u64,
    counter: AtomicU64,
}

impl IdGen {
    /// A generator with a fresh random seed.
    pub(crate) fn new() -> Self {
        IdGen { seed: seed(), counter: AtomicU64::new(0) }
    }

    /// The next id.
    pub(crate) fn next_u128(&self) -> u128 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // splitmix64 is a bijection, so distinct counters give distinct `hi`.
        let hi = splitmix64(self.seed.wrapping_add(n));
        let lo = splitmix64(hi ^ self.seed.rotate_left(29));
        (u128::from(hi) << 64) | u128::from(lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_stays_in_range() {
        for _ in 0..10_000 {
            let v = between(3, 6);
            assert!((3..=6).contains(&v));
        }
        assert_eq!(between(5, 5), 5);
        assert_eq!(between(7, 2), 7);
    }

    #[test]
    fn ids_are_distinct() {
        let ids = IdGen::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(ids.next_u128()));
        }
    }
}
