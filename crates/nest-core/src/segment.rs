//! Splitting one plan between segments `i/N` (one per process or machine) so that their union is the whole plan.
//!
//! Every id a run hands out is global: VU `j`, arrival `k` of the open model, iteration `n` of an `--iterations`
//! budget. Segment `i` of `N` owns the ids `j` with `j mod N = i`, and its worker `w` of `W` owns every `W`-th of
//! those, so each worker owns an arithmetic progression of global ids, a [`Lane`]. The schedule (the user curve,
//! the arrival curve) is computed globally; a lane only selects its ids from it. So the active VUs of all
//! segments add up to the plan's count at every instant, each VU and each arrival runs in exactly one segment at
//! its global time, and a VU's first taskset and random stream (functions of its global id) do not depend on `N`.

pub use nest_data::Segment;

/// The global ids `first + n * stride` (n = 0, 1, ...) that one segment, or one worker of a segment, owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lane {
    first: u64,
    stride: u64,
}

impl Lane {
    /// The ids of a segment: `index + n * count`.
    pub(crate) fn of_segment(segment: Segment) -> Lane {
        Lane { first: u64::from(segment.index), stride: u64::from(segment.count.max(1)) }
    }

    /// Part `part` of `parts` of this lane (a worker of a segment): every `parts`-th id, from the `part`-th.
    pub(crate) fn split(self, part: u64, parts: u64) -> Lane {
        Lane { first: self.id(part), stride: self.stride.saturating_mul(parts.max(1)) }
    }

    /// The `n`-th id of the lane, from 0 (saturating: ids that large are never reached).
    pub(crate) fn id(self, n: u64) -> u64 {
        self.first.saturating_add(n.saturating_mul(self.stride))
    }

    /// How many ids of the lane are below `global`: this lane's share of a global count.
    pub(crate) fn count_below(self, global: u64) -> u64 {
        if global > self.first { (global - self.first).div_ceil(self.stride) } else { 0 }
    }
}

/// How many of the global ids below `total` (VUs, arrivals, iterations) segment `segment` owns: its share of a
/// count, exactly as the runner splits it.
pub fn segment_share(total: u64, segment: Segment) -> u64 {
    Lane::of_segment(segment).count_below(total)
}

/// The seed of global VU `id`'s random stream, under the plan's seed: the same in every segment and on every worker.
pub(crate) fn vu_seed(seed: u64, id: u64) -> u64 {
    seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod partition;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_split_a_count_exactly() {
        for count in 1..=8u32 {
            for workers in 1..=4u64 {
                for global in 0..50u64 {
                    let mut seen = vec![0u32; global as usize];
                    for index in 0..count {
                        let segment = Lane::of_segment(Segment::new(index, count).unwrap());
                        let share: u64 = (0..workers).map(|w| segment.split(w, workers).count_below(global)).sum();
                        assert_eq!(share, segment.count_below(global), "{global} over {index}/{count}, {workers}");
                        for w in 0..workers {
                            let lane = segment.split(w, workers);
                            for n in 0..lane.count_below(global) {
                                let id = lane.id(n);
                                assert_eq!(id % u64::from(count), u64::from(index), "{id} is in its segment");
                                seen[id as usize] += 1;
                            }
                        }
                    }
                    assert!(seen.iter().all(|&s| s == 1), "{global} ids over {count} segments, {workers}: {seen:?}");
                }
            }
        }
        assert_eq!(Lane::of_segment(Segment::WHOLE).split(1, 3).id(2), 7);
        assert_eq!(Lane::of_segment(Segment::WHOLE).id(u64::MAX), u64::MAX);
    }
}
