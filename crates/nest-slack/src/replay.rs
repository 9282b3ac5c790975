//! The signatures accepted within the last five minutes, so that a captured request cannot be sent again.
//!
//! A request older than the window is already refused by its timestamp, so a signature only needs to be kept for
//! as long as its timestamp is inside the window. Memory is bounded twice: entries leave when their timestamp
//! leaves the window, and past [`CAPACITY`] entries the oldest go first (then a replay of a very old one would be
//! refused by its timestamp anyway, only an extreme flood of genuine requests could push one out early).

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

/// The most signatures kept.
pub const CAPACITY: usize = 50_000;

/// Signatures seen, with their timestamps, oldest first.
#[derive(Debug)]
pub struct ReplayCache {
    window: u64,
    order: VecDeque<(u64, String)>,
    seen: HashSet<String>,
}

impl ReplayCache {
    /// An empty cache for a window of `window`.
    pub fn new(window: Duration) -> ReplayCache {
        ReplayCache { window: window.as_secs(), order: VecDeque::new(), seen: HashSet::new() }
    }

    /// Remembers `signature` (of a request stamped `at`, checked at `now`); false when it was already there.
    pub fn insert(&mut self, signature: &str, at: u64, now: u64) -> bool {
        self.expire(now);
        if self.seen.contains(signature) {
            return false;
        }
        while self.order.len() >= CAPACITY {
            self.pop();
        }
        self.seen.insert(signature.to_owned());
        // Kept in arrival order; an entry's expiry is its own timestamp, so expire() checks each front entry.
        self.order.push_back((at, signature.to_owned()));
        true
    }

    /// How many signatures are kept.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn expire(&mut self, now: u64) {
        while let Some((at, _)) = self.order.front() {
            if at.saturating_add(self.window) >= now {
                break;
            }
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some((_, signature)) = self.order.pop_front() {
            self.seen.remove(&signature);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_refused_within_the_window_and_forgotten_after() {
        let mut cache = ReplayCache::new(Duration::from_secs(300));
        assert!(cache.insert("a", 1000, 1000));
        assert!(!cache.insert("a", 1000, 1200));
        assert!(cache.insert("b", 1250, 1250));
        // At 1301, "a" (stamped 1000) is out of the window: a replay of it is refused by its timestamp instead.
        assert!(cache.insert("c", 1301, 1301));
        assert_eq!(cache.len(), 2);
        assert!(!cache.insert("b", 1250, 1301));
    }

    #[test]
    fn memory_is_bounded() {
        let mut cache = ReplayCache::new(Duration::from_secs(300));
        for i in 0..CAPACITY + 10 {
            assert!(cache.insert(&i.to_string(), 1000, 1000));
        }
        assert_eq!(cache.len(), CAPACITY);
        assert!(cache.insert("0", 1000, 1000), "the oldest went first");
    }
}
