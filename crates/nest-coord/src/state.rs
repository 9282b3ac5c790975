//! The run's state, as a plain state machine: what each request and each tick of the clock does to it.
//!
//! The HTTP layer ([`crate::server`]) only decodes requests, calls these methods under one lock and wakes the long
//! polls; every rule of the protocol (who may join, when the barrier opens, who is lost, when the run is over) is
//! here, with the time passed in, so it is tested without a network or a clock.

use std::time::{Duration, Instant, SystemTime};

use nest_core::stats::Aggregate;
use nest_report::model::Report;
use nest_report::thresholds::{self, Threshold};

use crate::protocol::{Live, LiveReply, LoadDoneReply, Member, Ready, ReadyReply, Register, Registered};

mod events;
mod seats;

pub use events::{Event, Refusal, Stranger};
use seats::Seat;
pub use seats::{Lost, SeatStatus};

/// How a coordinated run is held together.
#[derive(Debug, Clone)]
pub struct Settings {
    /// N: the segments that make up the run.
    pub segments: u32,
    /// How long every segment has to become ready, from the coordinator's start.
    pub ready_timeout: Duration,
    /// Silence after which a segment that has not handed in its result is lost.
    pub lost_after: Duration,
    /// How far ahead of the barrier's opening the common start lies, so every segment hears of it in time.
    pub lead: Duration,
    /// The thresholds judged on the merged figures (`abort` ones live too).
    pub thresholds: Vec<Threshold>,
}

impl Settings {
    /// N segments with the defaults: 60 s to become ready, lost after 10 s of silence, a 500 ms lead.
    pub fn new(segments: u32) -> Settings {
        Settings {
            segments,
            ready_timeout: Duration::from_secs(60),
            lost_after: Duration::from_secs(10),
            lead: Duration::from_millis(500),
            thresholds: Vec::new(),
        }
    }
}

/// A new run id: a UUID v4, as a single `nest run` gets.
pub fn new_run_id() -> String {
    nest_report::identity::fresh_run_id()
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The start, once the barrier opened.
#[derive(Debug, Clone, Copy)]
struct Start {
    at: SystemTime,
    instant: Instant,
}

/// What the run came to.
#[derive(Debug, Clone)]
pub enum End {
    /// Cancelled before the start (ready timeout, stopped): nothing was sent.
    Cancelled {
        /// Why, naming the missing segments.
        reason: String,
        /// The segments that never became ready.
        missing: Vec<u32>,
    },
    /// The load ran: the results handed in and the segments lost.
    Ran {
        /// The results, by index.
        results: Vec<(u32, Report)>,
        /// The segments without a result.
        lost: Vec<Lost>,
        /// The abort thresholds that stopped the run, with the second.
        aborted: Vec<(usize, f64)>,
    },
}

/// The whole run's state.
#[derive(Debug)]
pub struct State {
    settings: Settings,
    run_id: String,
    created: Instant,
    plan_hash: Option<(String, u32)>,
    seats: Vec<Option<Seat>>,
    setup: Option<String>,
    start: Option<Start>,
    /// Why, the segments not ready, and when.
    cancelled: Option<(String, Vec<u32>, Instant)>,
    stop: Option<String>,
    live: Aggregate,
    aborted: Vec<(usize, f64)>,
    events: Vec<Event>,
    steering: crate::steer::Steering,
}

impl State {
    /// A run waiting for its segments, created at `now`.
    pub fn new(settings: Settings, run_id: String, now: Instant) -> State {
        let seats = (0..settings.segments).map(|_| None).collect();
        State {
            settings,
            run_id,
            created: now,
            plan_hash: None,
            seats,
            setup: None,
            start: None,
            cancelled: None,
            stop: None,
            live: Aggregate::default(),
            aborted: Vec::new(),
            events: Vec::new(),
            steering: crate::steer::Steering::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The events since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// A segment asks to join.
    pub fn register(&mut self, r: &Register, now: Instant) -> Result<Registered, Refusal> {
        let n = self.settings.segments;
        for (what, value) in [("host", &r.host), ("plan hash", &r.plan_hash), ("run id", &r.run_id)] {
            if value.is_empty() || value.len() > crate::protocol::limits::FIELD {
                return Err(Refusal::Invalid(format!("the {what} must be 1 to 256 bytes long")));
            }
        }
        if let Some((reason, ..)) = &self.cancelled {
            return Err(Refusal::Closed(reason.clone()));
        }
        if r.index >= n {
            return Err(Refusal::OutOfRange { index: r.index, segments: n });
        }
        if let Some(seat) = &self.seats[r.index as usize] {
            return Err(Refusal::Duplicate { index: r.index, host: seat.host.clone() });
        }
        if r.segments != n {
            return Err(Refusal::OtherCount { index: r.index, given: r.segments, segments: n });
        }
        match &self.plan_hash {
            Some((expected, first)) if *expected != r.plan_hash => {
                return Err(Refusal::PlanHash {
                    index: r.index,
                    given: r.plan_hash.clone(),
                    expected: expected.clone(),
                    first: *first,
                });
            }
            Some(_) => {}
            None => self.plan_hash = Some((r.plan_hash.clone(), r.index)),
        }
        self.seats[r.index as usize] = Some(Seat::new(r, now));
        self.events.push(Event::Registered { index: r.index, host: r.host.clone() });
        Ok(Registered { run_id: self.run_id.clone(), lost_after_ms: self.settings.lost_after.as_millis() as u64 })
    }

    fn seat(&mut self, m: &Member) -> Result<&mut Seat, Stranger> {
        seats::member(&mut self.seats, m)
    }

    /// A request of `m` begins (a long poll counts as presence until it ends).
    pub fn enter(&mut self, m: &Member, now: Instant) -> Result<(), Stranger> {
        let seat = self.seat(m)?;
        seat.pending += 1;
        seat.last_seen = now;
        Ok(())
    }

    /// A request of segment `index` ended.
    pub fn leave(&mut self, index: u32, now: Instant) {
        if let Some(Some(seat)) = self.seats.get_mut(index as usize) {
            seat.pending = seat.pending.saturating_sub(1);
            seat.last_seen = now;
        }
    }

    /// A segment is ready (segment 0 hands in its `setup()` value); the answer if there is one yet.
    pub fn ready(&mut self, r: &Ready, now: Instant) -> Result<ReadyReply, Stranger> {
        let index = r.member.index;
        let seat = self.seat(&r.member)?;
        if !seat.ready {
            seat.ready = true;
            if index == 0 {
                self.setup = r.setup.clone();
            }
        }
        self.open_barrier(now);
        Ok(self.ready_reply())
    }

    /// What a ready segment is told now.
    pub fn ready_reply(&self) -> ReadyReply {
        if let Some((reason, ..)) = &self.cancelled {
            return ReadyReply::Cancelled { reason: reason.clone() };
        }
        match self.start {
            Some(start) => ReadyReply::Start {
                at_unix_us: start.at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64),
                setup: self.setup.clone(),
            },
            None => ReadyReply::Wait,
        }
    }

    fn open_barrier(&mut self, now: Instant) {
        if self.start.is_some() || self.cancelled.is_some() {
            return;
        }
        if self.seats.iter().all(|s| s.as_ref().is_some_and(|s| s.ready)) {
            let lead = self.settings.lead;
            // (In whole microseconds, as the segments are told it.)
            let at = SystemTime::now() + lead;
            let micros = at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
            let start = Start { at: SystemTime::UNIX_EPOCH + Duration::from_micros(micros), instant: now + lead };
            self.start = Some(start);
            self.events.push(Event::Started { at: start.at });
        }
    }

    /// A live push. `Ok(Err(reason))`: its rows do not decode (nothing of it is taken; the segment is not stopped
    /// for it, as its final result is what counts).
    pub fn live(&mut self, mut l: Live, now: Instant) -> Result<Result<LiveReply, String>, Stranger> {
        let seat = self.seat(&l.member)?;
        seat.last_seen = now;
        if l.seq > seat.last_seq {
            let decoded: Result<Vec<_>, String> =
                l.rows.iter().map(|row| row.counts().map(|c| ((row.name.clone(), row.method.clone()), c))).collect();
            let rows = match decoded {
                Ok(rows) => rows,
                Err(e) => return Ok(Err(format!("a live row does not decode: {e}"))),
            };
            seat.take(&mut l);
            // (Rows counted before the segment applied the latest reset belong to no figure any more.)
            if l.counted_from_s >= self.steering.counted_from() {
                for (key, counts) in rows {
                    self.live.requests.entry(key).or_default().merge(&counts);
                }
            }
            if let Some(reason) = l.refused {
                self.events.push(Event::Refused { index: l.member.index, reason });
            }
            self.refresh_live();
        }
        let (steer, reset) = (self.steering.target.clone(), self.steering.reset);
        Ok(Ok(LiveReply { stop: self.stop.clone(), steer, reset }))
    }

    /// Rebuilds the run-wide live figures (users, checks, script errors) from each segment's latest push.
    fn refresh_live(&mut self) {
        let seats = self.seats.iter().flatten().filter(|s| s.lost.is_none() && s.result.is_none());
        self.live.live_users = seats.map(|s| s.users).sum();
        self.live.checks.clear();
        let mut errors = 0;
        for seat in self.seats.iter().flatten() {
            errors += seat.script_errors;
            for c in &seat.checks {
                let mine = self.live.checks.entry(c.name.clone()).or_default();
                mine.passes += c.passes;
                mine.fails += c.fails;
            }
        }
        self.live.errors.clear();
        if errors > 0 {
            self.live.errors.insert(("segments".into(), "script errors".into()), errors);
        }
    }

    /// The common start, once the barrier opened.
    pub fn start_at(&self) -> Option<SystemTime> {
        self.start.map(|s| s.at)
    }

    /// The merged live figures and the time since the start, once the load started.
    pub fn live_view(&self, now: Instant) -> Option<(&Aggregate, Duration)> {
        self.start.map(|s| (&self.live, now.saturating_duration_since(s.instant)))
    }

    /// Every segment as the coordinator sees it at `now`, by index, for displays (the web UI's segments tab).
    pub fn seats(&self, now: Instant) -> Vec<SeatStatus> {
        let started = self.start.is_some();
        let status = |(index, seat): (usize, &Option<Seat>)| match seat {
            Some(seat) => seat.status(index as u32, started, now),
            None => SeatStatus::waiting(index as u32),
        };
        self.seats.iter().enumerate().map(status).collect()
    }

    /// Checks the abort thresholds on the merged live figures; a breach stops every segment.
    pub fn check_abort(&mut self, now: Instant) {
        let Some(start) = self.start else { return };
        if self.stop.is_some() || now < start.instant {
            return;
        }
        let elapsed = now - start.instant;
        // (After a reset, the live figures and their rates cover the time since it.)
        let counted = elapsed.saturating_sub(Duration::from_secs(self.steering.counted_from()));
        let breached = thresholds::breached_now(&self.settings.thresholds, &self.live, counted);
        for i in breached {
            let at_s = elapsed.as_secs_f64();
            self.aborted.push((i, at_s));
            self.events.push(Event::Aborted { expr: self.settings.thresholds[i].expr.clone(), at_s });
            self.stop.get_or_insert_with(|| format!("threshold `{}` breached", self.settings.thresholds[i].expr));
        }
    }

    /// A new target of load for the whole run, handed to every segment (see [`crate::steer`]).
    pub fn steer(&mut self, target: nest_core::LoadTarget, now: Instant) -> Result<(), nest_core::ControlError> {
        let elapsed = self.steerable(now)?;
        if let Some(running) = self.segments_target() {
            crate::steer::same_model(running, &target)?;
        }
        self.steering.set(elapsed, target)
    }

    /// Resets the statistics of every segment (and the live figures) from the first whole second
    /// [`crate::steer::LEAD`] ahead; returns that second.
    pub fn reset_stats(&mut self, now: Instant) -> Result<u64, nest_core::ControlError> {
        let elapsed = self.steerable(now)?;
        self.live.requests.clear();
        Ok(self.steering.reset(elapsed))
    }

    /// What the load is steered to (as the segments say, else the latest target handed out), and the second the
    /// statistics count from (0 unless reset).
    pub fn steering(&self) -> (Option<nest_core::LoadTarget>, u64) {
        let handed_out = || self.steering.target.as_ref().map(|s| s.target.clone());
        (self.segments_target().cloned().or_else(handed_out), self.steering.counted_from())
    }

    /// The target the segments' latest pushes say their load is steered to (the lowest index still running first):
    /// it tells the run's model, which the coordinator knows only from them.
    fn segments_target(&self) -> Option<&nest_core::LoadTarget> {
        let seats = || self.seats.iter().flatten();
        let running = seats().filter(|s| !s.load_over()).find_map(|s| s.target.as_ref());
        running.or_else(|| seats().find_map(|s| s.target.as_ref()))
    }

    /// The time since the start, if the load runs and is not being stopped.
    fn steerable(&self, now: Instant) -> Result<Duration, nest_core::ControlError> {
        let start = self.start.ok_or(nest_core::ControlError::NotStarted)?;
        let over = self.seats.iter().flatten().all(Seat::load_over);
        if self.stop.is_some() || self.cancelled.is_some() || over {
            return Err(nest_core::ControlError::Over);
        }
        Ok(now.saturating_duration_since(start.instant))
    }

    /// Asks every segment to stop (the coordinator was interrupted); before the start, cancels the run.
    pub fn stop_all(&mut self, reason: &str) {
        if self.start.is_none() {
            self.cancel(reason.to_owned());
        } else {
            self.stop.get_or_insert_with(|| reason.to_owned());
        }
    }

    /// A segment's load is over; whether `teardown()` may run.
    pub fn load_done(&mut self, m: &Member) -> Result<LoadDoneReply, Stranger> {
        self.seat(m)?.load_done = true;
        Ok(if m.index == 0 { self.load_done_reply() } else { LoadDoneReply::Noted })
    }

    /// Whether every segment's load ended (or it was lost).
    pub fn load_done_reply(&self) -> LoadDoneReply {
        let over = self.seats.iter().flatten().all(Seat::load_over);
        if over && self.start.is_some() { LoadDoneReply::Teardown } else { LoadDoneReply::Wait }
    }

    /// A segment's final result.
    pub fn upload(&mut self, m: &Member, report: Report) -> Result<(), Stranger> {
        let seat = self.seat(m)?;
        if seat.result.is_some() {
            return Err(Stranger(format!("segment {} already handed in its result", m.index)));
        }
        seat.result = Some(report);
        seat.load_done = true;
        self.events.push(Event::Result { index: m.index });
        self.refresh_live();
        Ok(())
    }

    /// A segment's process ended (known to `nest launch`, which started it): lost at once if it has no result.
    pub fn exited(&mut self, index: u32, how: &str, now: Instant) {
        if self.start.is_none() {
            self.stop_all(&format!("segment {index}'s process exited ({how}) before the start"));
            return;
        }
        let at_s = self.at_s(now);
        if let Some(Some(seat)) = self.seats.get_mut(index as usize)
            && seat.result.is_none()
            && seat.lost.is_none()
        {
            let lost = Lost {
                index,
                at_s,
                at_unix: unix_now(),
                reason: format!("its process exited ({how}) before handing in a result"),
            };
            seat.lost = Some(lost.clone());
            self.events.push(Event::Lost(lost));
            self.refresh_live();
        }
    }

    /// Gives up on every segment still running (a second Ctrl-C): each is lost; before the start, cancels.
    pub fn abandon(&mut self, reason: &str, now: Instant) {
        if self.start.is_none() {
            self.stop_all(reason);
            return;
        }
        let at_s = self.at_s(now);
        for (index, seat) in self.seats.iter_mut().enumerate() {
            if let Some(seat) = seat
                && seat.result.is_none()
                && seat.lost.is_none()
            {
                let lost = Lost { index: index as u32, at_s, at_unix: unix_now(), reason: reason.to_owned() };
                seat.lost = Some(lost.clone());
                self.events.push(Event::Lost(lost));
            }
        }
    }

    fn at_s(&self, now: Instant) -> f64 {
        self.start.map_or(0.0, |s| now.saturating_duration_since(s.instant).as_secs_f64())
    }

    fn cancel(&mut self, reason: String) {
        let missing: Vec<u32> = (0..self.settings.segments)
            .filter(|&i| !self.seats[i as usize].as_ref().is_some_and(|s| s.ready))
            .collect();
        self.events.push(Event::Cancelled { reason: reason.clone() });
        self.cancelled = Some((reason, missing, Instant::now()));
    }

    /// The clock moved: the ready timeout, silent segments.
    pub fn tick(&mut self, now: Instant) {
        if self.start.is_none() && self.cancelled.is_none() {
            if now.saturating_duration_since(self.created) >= self.settings.ready_timeout {
                let missing = self.missing();
                let timeout = self.settings.ready_timeout.as_secs_f64();
                self.cancel(format!("not every segment was ready within {timeout:.0}s: missing {missing}"));
            }
            return;
        }
        let lost_after = self.settings.lost_after;
        let at_s = self.at_s(now);
        for (index, seat) in self.seats.iter_mut().enumerate() {
            let Some(seat) = seat else { continue };
            let silent = now.saturating_duration_since(seat.last_seen);
            if seat.result.is_none() && seat.lost.is_none() && seat.pending == 0 && silent >= lost_after {
                let reason = format!("silent for {:.0}s", silent.as_secs_f64());
                let lost = Lost { index: index as u32, at_s, at_unix: unix_now(), reason };
                seat.lost = Some(lost.clone());
                self.events.push(Event::Lost(lost));
            }
        }
        self.refresh_live();
    }

    /// The segments not ready, in words: `segments 1 and 2 (never registered)`.
    fn missing(&self) -> String {
        seats::missing(&self.seats)
    }

    /// Segment `index` was answered that the run is cancelled.
    pub fn told(&mut self, index: u32) {
        if let Some(Some(seat)) = self.seats.get_mut(index as usize) {
            seat.told = true;
        }
    }

    /// The end, once there is one at `now`: every segment handed in a result or was lost; or the run was cancelled
    /// and every registered segment was told (or had `--lost-after` to ask), so none exits without knowing why.
    pub fn end(&self, now: Instant) -> Option<End> {
        if let Some((reason, missing, at)) = &self.cancelled {
            let all_told = self.seats.iter().flatten().all(|s| s.told);
            if !all_told && now.saturating_duration_since(*at) < self.settings.lost_after {
                return None;
            }
            return Some(End::Cancelled { reason: reason.clone(), missing: missing.clone() });
        }
        self.start?;
        let seats: Vec<&Seat> = self.seats.iter().flatten().collect();
        if !seats.iter().all(|s| s.result.is_some() || s.lost.is_some()) {
            return None;
        }
        let mut results = Vec::new();
        let mut lost = Vec::new();
        for (i, seat) in self.seats.iter().enumerate() {
            let seat = seat.as_ref().expect("every seat is taken once started");
            match (&seat.result, &seat.lost) {
                (Some(report), _) => results.push((i as u32, report.clone())),
                (None, Some(l)) => lost.push(l.clone()),
                (None, None) => unreachable!("checked above"),
            }
        }
        Some(End::Ran { results, lost, aborted: self.aborted.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(index: u32) -> Register {
        Register { index, segments: 3, plan_hash: "p".into(), host: "h".into(), run_id: format!("r{index}") }
    }

    fn member(index: u32) -> Member {
        Member { index, run_id: format!("r{index}") }
    }

    #[test]
    fn a_segment_that_exits_before_the_start_cancels_the_run_at_once() {
        let t0 = Instant::now();
        let mut s = State::new(Settings::new(3), "run".into(), t0);
        s.register(&join(0), t0).unwrap();
        s.register(&join(1), t0).unwrap();
        s.exited(1, "exit status: 2", t0);
        assert!(s.end(t0).is_none(), "segment 0 has not heard of it yet");
        assert!(matches!(s.ready(&Ready { member: member(0), setup: None }, t0), Ok(ReadyReply::Cancelled { .. })));
        s.told(0);
        s.told(1);
        let Some(End::Cancelled { reason, missing }) = s.end(t0) else { panic!("cancelled") };
        assert!(reason.contains("segment 1's process exited (exit status: 2) before the start"), "{reason}");
        assert_eq!(missing, [0, 1, 2]);
        assert!(matches!(s.register(&join(2), t0), Err(Refusal::Closed(_))));
    }

    #[test]
    fn the_ready_timeout_and_silence_are_judged_on_the_clock_given() {
        let t0 = Instant::now();
        let settings = Settings { ready_timeout: Duration::from_secs(5), ..Settings::new(3) };
        let mut s = State::new(settings, "run".into(), t0);
        for i in 0..3 {
            s.register(&join(i), t0).unwrap();
            s.ready(&Ready { member: member(i), setup: None }, t0).unwrap();
        }
        assert!(matches!(s.ready_reply(), ReadyReply::Start { .. }));
        s.tick(t0 + Duration::from_secs(6));
        assert!(s.end(t0).is_none(), "the barrier opened: the ready timeout no longer applies");
        // Segment 2 holds a long poll: present, however long it lasts. Segments 0 and 1 upload.
        s.enter(&member(2), t0).unwrap();
        for i in 0..2 {
            s.upload(&member(i), dummy_report()).unwrap();
        }
        s.tick(t0 + Duration::from_secs(60));
        assert!(s.end(t0).is_none(), "a pending request is presence");
        s.leave(2, t0 + Duration::from_secs(60));
        s.tick(t0 + Duration::from_secs(69));
        assert!(s.end(t0).is_none(), "silent for 9 s only");
        s.tick(t0 + Duration::from_secs(70));
        let Some(End::Ran { results, lost, .. }) = s.end(t0) else { panic!("ran") };
        assert_eq!((results.len(), lost.len(), lost[0].index), (2, 1, 2));
        assert!(lost[0].reason.contains("silent for 10s"), "{}", lost[0].reason);
    }

    fn dummy_report() -> Report {
        serde_json::from_value(serde_json::json!({
            "duration_s": 1.0, "users": 1, "started_at": 0.0, "model": "closed", "dropped_iterations": 0,
            "totals": {"requests": 0, "failures": 0, "rps": 0.0, "failures_per_s": 0.0, "bytes": 0,
                       "latency_ms": {"min": 0.0, "mean": 0.0, "p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0,
                                      "p999": 0.0, "max": 0.0}, "histogram": ""},
            "requests": [], "tasks": [], "failures": [], "errors": [], "timeline": [],
            "run": {"nest_version": "t", "command": "c", "host": "h", "load": "l", "workers": 1,
                    "run_time_s": null, "iterations": null, "mix": []}
        }))
        .unwrap_or_else(|e| panic!("a minimal report: {e}"))
    }
}
