//! Splitting a data set's rows between the segments of a load spread over several machines.
//!
//! When a load is split into segments `i/N` (one per machine), each segment claims only from its own share of
//! every pool, so a row is never held on two machines at once. The share is one pure function of the row count and
//! the segment: contiguous, disjoint, covering every row, and as even as integer division allows.

use std::fmt;
use std::ops::Range;

/// One segment `index/count` of a load split across machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    /// This segment, from 0.
    pub index: u32,
    /// How many segments there are; at least 1.
    pub count: u32,
}

impl Segment {
    /// The whole load on one machine: `0/1`.
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    /// Segment `index` of `count`; `None` unless `index < count`.
    pub fn new(index: u32, count: u32) -> Option<Segment> {
        (index < count).then_some(Segment { index, count })
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The rows of a data set of `len` rows that belong to `segment`.
///
/// Segment `i` of `N` gets `[len*i/N, len*(i+1)/N)`: the shares of all segments are disjoint, cover `0..len`, and
/// differ in size by at most one row. A segment may get no row when there are fewer rows than segments.
pub fn partition(len: usize, segment: Segment) -> Range<usize> {
    let count = u128::from(segment.count.max(1));
    let index = u128::from(segment.index).min(count - 1);
    let cut = |i: u128| (len as u128 * i / count) as usize;
    cut(index)..cut(index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_disjoint_cover_every_row_and_are_even() {
        for len in [0usize, 1, 2, 7, 10, 299, 300, 1001] {
            for count in 1..=9u32 {
                let mut next = 0;
                let mut sizes = Vec::new();
                for index in 0..count {
                    let share = partition(len, Segment::new(index, count).unwrap());
                    assert_eq!(share.start, next, "{len} rows, segment {index}/{count} starts where the last ended");
                    next = share.end;
                    sizes.push(share.len());
                }
                assert_eq!(next, len, "{len} rows over {count} segments: every row is in a share");
                let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(max - min <= 1, "{len} rows over {count}: sizes {sizes:?}");
            }
        }
    }

    #[test]
    fn the_whole_is_every_row_and_huge_sets_do_not_overflow() {
        assert_eq!(partition(300, Segment::WHOLE), 0..300);
        assert_eq!(partition(usize::MAX, Segment::new(1, 2).unwrap()).end, usize::MAX);
        assert_eq!(Segment::new(2, 2), None);
        assert_eq!(Segment::new(1, 3).unwrap().to_string(), "1/3");
    }
}
