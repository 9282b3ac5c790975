//! Load over time, as pure functions of time: how many users should be active, and when each task should start.
//!
//! Closed model: a [`UserCurve`] is a list of linear segments of the active-user count. A spawn rate, `--stages`
//! and scripted shape ticks all become segments. The k-th change of a segment (k from 1) happens at
//! `start + (k - 1) / rate`, so "20 users at 10/s" starts one user at once and one every 100 ms after.
//!
//! Open model: an [`ArrivalCurve`] gives the start time of task `k` (from 0) under a piecewise-linear rate: the time
//! at which the cumulative number of arrivals reaches `k`. Both are deterministic, so every worker (and, later,
//! every machine of a split run) computes the same schedule and takes its share by index.

use std::time::Duration;

/// One stage: move linearly to `target` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// The users (closed model) or tasks per second (open model) at its end.
    pub target: f64,
}

/// Parses `30s:50,2m:50,30s:0` into stages, using `parse_duration` for each duration.
pub fn parse_stages(
    text: &str,
    parse_duration: impl Fn(&str) -> Result<Duration, String>,
) -> Result<Vec<Stage>, String> {
    let mut stages = Vec::new();
    for (i, part) in text.split(',').map(str::trim).enumerate() {
        let (d, t) = part
            .split_once(':')
            .ok_or_else(|| format!("stage {} `{part}`: expected DURATION:TARGET, e.g. 30s:50", i + 1))?;
        let duration = parse_duration(d.trim()).map_err(|e| format!("stage {} `{part}`: {e}", i + 1))?;
        let target: f64 = t
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("stage {} `{part}`: the target must be a number >= 0", i + 1))?;
        stages.push(Stage { duration, target });
    }
    if stages.is_empty() || stages.iter().all(|s| s.duration.is_zero()) {
        return Err("stages must last longer than zero".into());
    }
    Ok(stages)
}

/// A linear move of the active-user count, starting at `start` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start: f64,
    from: u64,
    to: u64,
    /// Changes per second; `None` makes every change at `start`.
    rate: Option<f64>,
}

impl Segment {
    fn steps(&self) -> u64 {
        self.from.abs_diff(self.to)
    }

    /// Changes made by time `t` (seconds), `t >= start`.
    fn done_at(&self, t: f64) -> u64 {
        match self.rate {
            None => self.steps(),
            Some(rate) => {
                let k = ((t - self.start) * rate + 1e-9).floor() as u64 + 1;
                k.min(self.steps())
            }
        }
    }

    fn count_at(&self, t: f64) -> u64 {
        let done = self.done_at(t);
        if self.to >= self.from { self.from + done } else { self.from - done }
    }
}

/// The number of active users over time (closed model). Extended at run time by scripted shapes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserCurve {
    segments: Vec<Segment>,
}

impl UserCurve {
    /// `users` started at `spawn_rate` per second from time 0 (all at once when `None`).
    pub fn fixed(users: u64, spawn_rate: Option<f64>) -> UserCurve {
        UserCurve { segments: vec![Segment { start: 0.0, from: 0, to: users, rate: spawn_rate }] }
    }

    /// Stages: each moves linearly from the previous target to its own over its duration.
    pub fn stages(stages: &[Stage]) -> UserCurve {
        let mut curve = UserCurve::default();
        let (mut at, mut users) = (0.0, 0u64);
        for stage in stages {
            let target = stage.target.round() as u64;
            let secs = stage.duration.as_secs_f64();
            let steps = users.abs_diff(target);
            let rate = if secs > 0.0 { Some(steps as f64 / secs) } else { None };
            if steps > 0 {
                curve.segments.push(Segment { start: at, from: users, to: target, rate });
            }
            at += secs;
            users = target;
        }
        curve
    }

    /// From time `at`, move from the current count to `users` at `spawn_rate` per second (all at once if `None`).
    pub fn retarget(&mut self, at: Duration, users: u64, spawn_rate: Option<f64>) {
        let t = at.as_secs_f64();
        let from = self.count_at(at);
        self.segments.retain(|s| s.start < t);
        if let Some(last) = self.segments.last_mut() {
            // The running segment ends where it is now: times before `t` see the same counts, and its unreached
            // target no longer counts towards the peak.
            last.to = from;
        }
        self.segments.push(Segment { start: t, from, to: users, rate: spawn_rate.filter(|r| *r > 0.0) });
    }

    /// The rate of the first segment (a fixed plan's spawn rate).
    pub fn first_rate(&self) -> Option<f64> {
        self.segments.first().and_then(|s| s.rate)
    }

    /// Active users at `at` since the start.
    pub fn count_at(&self, at: Duration) -> u64 {
        let t = at.as_secs_f64();
        self.segments.iter().rev().find(|s| s.start <= t).map_or(0, |s| s.count_at(t))
    }

    /// The most users the curve asks for at any time.
    pub fn peak(&self) -> u64 {
        self.segments.iter().map(|s| s.from.max(s.to)).max().unwrap_or(0)
    }

    /// The first time after `at` at which the count changes, if any.
    pub fn next_change_after(&self, at: Duration) -> Option<Duration> {
        let t = at.as_secs_f64();
        for (i, s) in self.segments.iter().enumerate() {
            let end = self.segments.get(i + 1).map_or(f64::INFINITY, |n| n.start);
            if end <= t || s.steps() == 0 {
                continue;
            }
            let next = match s.rate {
                None if s.start > t => s.start,
                None => continue,
                Some(rate) => {
                    let done = if s.start > t { 0 } else { s.done_at(t) };
                    if done >= s.steps() {
                        continue;
                    }
                    s.start + done as f64 / rate
                }
            };
            if next < end {
                // A tiny rate puts the next change past any duration: it never comes.
                return Duration::try_from_secs_f64(next.max(t)).ok();
            }
        }
        None
    }
}

/// Task start times of the open model: a piecewise-linear rate, in tasks per second.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrivalCurve {
    /// (start time s, rate at start, rate at end, length s); the last one lasts forever at its end rate.
    pieces: Vec<(f64, f64, f64, f64)>,
}

impl ArrivalCurve {
    /// A constant rate.
    pub fn constant(rate: f64) -> ArrivalCurve {
        ArrivalCurve { pieces: vec![(0.0, rate, rate, f64::INFINITY)] }
    }

    /// Starts at `rate` and follows the stages, then holds the last target.
    pub fn stages(rate: f64, stages: &[Stage]) -> ArrivalCurve {
        let mut pieces = Vec::new();
        let (mut at, mut r) = (0.0, rate);
        for s in stages {
            let secs = s.duration.as_secs_f64();
            if secs > 0.0 {
                pieces.push((at, r, s.target, secs));
            }
            at += secs;
            r = s.target;
        }
        pieces.push((at, r, r, f64::INFINITY));
        ArrivalCurve { pieces }
    }

    /// The start time of task `k` (from 0): when the cumulative arrivals reach `k`. `None` if the rate drops to
    /// zero for good before that.
    pub fn arrival(&self, k: u64) -> Option<Duration> {
        let mut remaining = k as f64;
        for &(start, r0, r1, len) in &self.pieces {
            let area = if len.is_finite() { (r0 + r1) / 2.0 * len } else { f64::INFINITY };
            if remaining <= area + 1e-9 {
                if remaining <= 0.0 {
                    return Duration::try_from_secs_f64(start).ok();
                }
                // Solve r0*t + (r1 - r0)/(2 len) * t^2 = remaining for t in [0, len].
                let slope = if len.is_finite() { (r1 - r0) / len } else { 0.0 };
                let t = if slope.abs() < 1e-12 {
                    if r0 <= 0.0 {
                        return None;
                    }
                    remaining / r0
                } else {
                    let disc = (r0 * r0 + 2.0 * slope * remaining).max(0.0);
                    (disc.sqrt() - r0) / slope
                };
                // A tiny rate puts the arrival past any duration: it never comes.
                return Duration::try_from_secs_f64(start + t.clamp(0.0, len.min(f64::MAX))).ok();
            }
            remaining -= area;
        }
        None
    }

    /// From time `at`, a constant `rate` (tasks per second; 0 pauses the arrivals). Arrivals before `at` keep their
    /// times, and the numbering goes on where it was: computed with the same `at`, every worker and segment still
    /// takes its own arrivals of one global schedule.
    pub fn retarget(&mut self, at: Duration, rate: f64) {
        let t = at.as_secs_f64();
        self.pieces.retain(|p| p.0 < t);
        if let Some(last) = self.pieces.last_mut() {
            // The piece running at `at` ends there, at the rate it had reached.
            let (start, r0, r1, len) = *last;
            let cut = (t - start).min(len);
            let reached = if len.is_finite() && len > 0.0 { r0 + (r1 - r0) * cut / len } else { r0 };
            *last = (start, r0, reached, cut);
        }
        self.pieces.push((t, rate, rate, f64::INFINITY));
    }

    /// The rate at `at`, in tasks per second.
    pub fn rate_at(&self, at: Duration) -> f64 {
        let t = at.as_secs_f64();
        let Some(&(start, r0, r1, len)) = self.pieces.iter().rev().find(|p| p.0 <= t) else { return 0.0 };
        if len.is_finite() && len > 0.0 { r0 + (r1 - r0) * ((t - start) / len).min(1.0) } else { r0 }
    }

    /// The highest rate the curve reaches.
    pub fn peak_rate(&self) -> f64 {
        self.pieces.iter().map(|p| p.1.max(p.2)).fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn rates_too_small_for_a_duration_never_change_nor_arrive() {
        let c = UserCurve::fixed(20, Some(1e-300));
        assert_eq!(c.count_at(s(100.0)), 1);
        assert_eq!(c.next_change_after(s(0.0)), None);
        let a = ArrivalCurve::constant(1e-300);
        assert_eq!(a.arrival(0), Some(Duration::ZERO));
        assert_eq!(a.arrival(1), None);
    }

    #[test]
    fn fixed_users_with_a_spawn_rate() {
        let c = UserCurve::fixed(20, Some(10.0));
        assert_eq!(c.count_at(s(0.0)), 1);
        assert_eq!(c.count_at(s(0.099)), 1);
        assert_eq!(c.count_at(s(0.1)), 2);
        assert_eq!(c.count_at(s(1.9)), 20);
        assert_eq!(c.count_at(s(100.0)), 20);
        assert_eq!(c.next_change_after(s(0.05)), Some(s(0.1)));
        assert_eq!(c.next_change_after(s(1.9)), None);
        assert_eq!(UserCurve::fixed(5, None).count_at(s(0.0)), 5);
    }

    #[test]
    fn stages_move_linearly() {
        let c = UserCurve::stages(&[
            Stage { duration: s(10.0), target: 50.0 },
            Stage { duration: s(20.0), target: 50.0 },
            Stage { duration: s(10.0), target: 0.0 },
        ]);
        assert_eq!(c.count_at(s(0.0)), 1);
        assert_eq!(c.count_at(s(5.0)), 26);
        assert_eq!(c.count_at(s(10.0)), 50);
        assert_eq!(c.count_at(s(25.0)), 50);
        assert_eq!(c.count_at(s(30.0)), 49);
        assert_eq!(c.count_at(s(35.0)), 24);
        assert_eq!(c.count_at(s(40.0)), 0);
        assert_eq!(c.peak(), 50);
        assert_eq!(c.next_change_after(s(12.0)), Some(s(30.0)));
    }

    #[test]
    fn retargeting_starts_from_where_the_curve_is() {
        let mut c = UserCurve::fixed(100, Some(10.0));
        c.retarget(s(2.0), 10, None);
        assert_eq!(c.count_at(s(1.95)), 20);
        assert_eq!(c.count_at(s(2.0)), 10);
        c.retarget(s(3.0), 30, Some(20.0));
        assert_eq!(c.count_at(s(3.0)), 11);
        assert_eq!(c.count_at(s(4.0)), 30);
        assert_eq!(c.count_at(s(50.0)), 30);
    }

    #[test]
    fn constant_arrivals() {
        let a = ArrivalCurve::constant(500.0);
        assert_eq!(a.arrival(0), Some(s(0.0)));
        assert_eq!(a.arrival(500), Some(s(1.0)));
        assert!((a.arrival(10_000).unwrap().as_secs_f64() - 20.0).abs() < 1e-9);
        assert_eq!(ArrivalCurve::constant(0.0).arrival(1), None);
    }

    #[test]
    fn ramping_arrivals_follow_the_area_under_the_rate() {
        // 0 -> 100/s over 10 s: 500 arrivals by t = 10, then 100/s.
        let a = ArrivalCurve::stages(0.0, &[Stage { duration: s(10.0), target: 100.0 }]);
        assert!((a.arrival(500).unwrap().as_secs_f64() - 10.0).abs() < 1e-6);
        // Area 5 t^2 = 125 at t = 5.
        assert!((a.arrival(125).unwrap().as_secs_f64() - 5.0).abs() < 1e-6);
        assert!((a.arrival(600).unwrap().as_secs_f64() - 11.0).abs() < 1e-6);
        assert_eq!(a.peak_rate(), 100.0);
        // Ramping down to zero ends the arrivals.
        let down = ArrivalCurve::stages(10.0, &[Stage { duration: s(2.0), target: 0.0 }]);
        assert!(down.arrival(9).is_some());
        assert_eq!(down.arrival(11), None);
    }

    #[test]
    fn a_new_rate_keeps_the_arrivals_before_it_and_goes_on_from_there() {
        let mut a = ArrivalCurve::constant(10.0);
        a.retarget(s(2.0), 100.0);
        // 20 arrivals in the first two seconds, then 100 a second.
        assert!((a.arrival(19).unwrap().as_secs_f64() - 1.9).abs() < 1e-9);
        assert!((a.arrival(20).unwrap().as_secs_f64() - 2.0).abs() < 1e-9);
        assert!((a.arrival(120).unwrap().as_secs_f64() - 3.0).abs() < 1e-9);
        assert_eq!(a.rate_at(s(1.0)), 10.0);
        assert_eq!(a.rate_at(s(2.5)), 100.0);
        // A pause, then a restart: the numbering goes on.
        a.retarget(s(3.0), 0.0);
        assert_eq!(a.arrival(121), None);
        a.retarget(s(10.0), 1.0);
        assert!((a.arrival(121).unwrap().as_secs_f64() - 11.0).abs() < 1e-9);
        // Cutting a ramp halfway keeps the rate it had reached.
        let mut ramp = ArrivalCurve::stages(0.0, &[Stage { duration: s(10.0), target: 100.0 }]);
        ramp.retarget(s(5.0), 7.0);
        assert!((ramp.rate_at(s(4.999)) - 49.99).abs() < 1e-6);
        assert!((ramp.arrival(125).unwrap().as_secs_f64() - 5.0).abs() < 1e-6);
        assert!((ramp.arrival(132).unwrap().as_secs_f64() - 6.0).abs() < 1e-6);
        assert_eq!(ramp.peak_rate(), 50.0);
    }

    #[test]
    fn parses_stages() {
        let p =
            |t: &str| t.trim_end_matches('s').parse::<f64>().map(Duration::from_secs_f64).map_err(|e| e.to_string());
        let st = parse_stages("30s:50, 120s:50,30s:0", p).unwrap();
        assert_eq!(st.len(), 3);
        assert_eq!(st[1], Stage { duration: s(120.0), target: 50.0 });
        assert!(parse_stages("30s", p).unwrap_err().contains("DURATION:TARGET"));
        assert!(parse_stages("30s:-1", p).unwrap_err().contains(">= 0"));
        assert!(parse_stages("0s:5", p).is_err());
    }
}
