//! The segment's live feed: what it pushes each second, and what the answers make it do.
//!
//! The runner publishes cumulative [`Snapshot`]s; a slow subscriber may skip some. The feed therefore pushes the
//! difference between the latest snapshot and what it pushed before (counts subtracted, histograms subtracted
//! bucket for bucket), so nothing is lost or counted twice however the pushes and snapshots interleave. A push
//! with nothing new is the heartbeat that keeps the segment from being declared lost. An answer that says stop
//! stops the load gracefully, as an `abort` threshold of a single process would. An answer that carries a new
//! change of load or reset of the statistics (see [`crate::steer`]) is applied once, at the instant it names, with
//! the run's own `RunHandle`; a refusal goes back in the next push. After a reset the feed starts again from the
//! restarted totals.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use nest_core::RunHandle;
use nest_core::snapshot::{Snapshot, Snapshots};
use nest_core::stats::{RequestCounts, TimelineRow};
use tokio::sync::watch;

use crate::client::{ClientError, Session};
use crate::protocol::{CheckTotal, Live, LiveReply, PUSH_EVERY};

/// Turns cumulative snapshots into pushes of what is new.
#[derive(Debug, Default)]
pub struct LiveFeed {
    seq: u64,
    /// The cumulative counts the coordinator acknowledged.
    sent: BTreeMap<(String, String), RequestCounts>,
    /// Those of the push in flight.
    pending: Vec<((String, String), RequestCounts)>,
    /// The second the snapshots' statistics count from (a reset restarts their totals).
    counted_from: std::time::Duration,
}

impl LiveFeed {
    /// The push for `snapshot`: the requests since the last acknowledged push, the cumulative checks and script
    /// errors.
    pub fn next(&mut self, session: &Session, snapshot: &Snapshot) -> Live {
        self.seq += 1;
        self.pending.clear();
        if snapshot.counted_from != self.counted_from {
            // The totals restarted: what was sent before the reset is no base for differences.
            self.counted_from = snapshot.counted_from;
            self.sent.clear();
        }
        let mut rows = Vec::new();
        for (key, now) in &snapshot.totals.requests {
            let delta = match self.sent.get(key) {
                Some(before) if before.count == now.count => continue,
                Some(before) => difference(now, before),
                None => now.clone(),
            };
            rows.push(TimelineRow::of(&key.1, &key.0, &delta));
            self.pending.push((key.clone(), now.clone()));
        }
        let checks = snapshot
            .totals
            .checks
            .iter()
            .map(|(name, c)| CheckTotal { name: name.clone(), passes: c.passes, fails: c.fails })
            .collect();
        Live {
            member: session.member().clone(),
            seq: self.seq,
            users: snapshot.users,
            rows,
            checks,
            script_errors: snapshot.totals.errors.values().sum(),
            counted_from_s: snapshot.counted_from.as_secs(),
            refused: None,
            start_skew_ms: session
                .start_at()
                .zip(snapshot.started_at)
                .map(|(intended, actual)| skew_ms(intended, actual)),
            target: snapshot.target.clone(),
        }
    }
}

/// `actual - intended`, in milliseconds (negative if it started early), as the report's `start_skew_ms`.
fn skew_ms(intended: SystemTime, actual: SystemTime) -> f64 {
    match actual.duration_since(intended) {
        Ok(late) => late.as_secs_f64() * 1e3,
        Err(early) => -early.duration().as_secs_f64() * 1e3,
    }
}

impl LiveFeed {
    /// The coordinator took the last push: its figures are sent.
    pub fn acknowledged(&mut self) {
        self.sent.extend(self.pending.drain(..));
    }
}

/// The changes of the coordinator this segment applied, by their `seq`.
#[derive(Debug, Default)]
struct Applied {
    steer: u64,
    reset: u64,
    /// The latest refusal, for the next push.
    refused: Option<String>,
}

impl Applied {
    /// Applies what `reply` carries that is new, at the instant it names.
    fn apply(&mut self, reply: &LiveReply, run: &RunHandle, say: &impl Fn(&str)) {
        if let Some(steer) = reply.steer.as_ref().filter(|s| s.seq > self.steer) {
            self.steer = steer.seq;
            let at = std::time::Duration::from_millis(steer.at_ms);
            match run.steer(Some(at), steer.target.clone()) {
                Ok(()) => say(&format!("the coordinator changes the load: {}", describe(&steer.target))),
                Err(e) => {
                    say(&format!("the coordinator's change of load is refused: {e}"));
                    self.refused = Some(e.to_string());
                }
            }
        }
        if let Some(reset) = reply.reset.filter(|r| r.seq > self.reset) {
            self.reset = reset.seq;
            match run.reset_stats_at(Some(std::time::Duration::from_secs(reset.at_s))) {
                Ok(()) => say(&format!("the coordinator resets the statistics from {}s", reset.at_s)),
                Err(e) => say(&format!("the coordinator's reset of the statistics is refused: {e}")),
            }
        }
    }
}

/// A target in words.
fn describe(target: &nest_core::LoadTarget) -> String {
    match target {
        nest_core::LoadTarget::Users { users, spawn_rate: Some(rate) } => format!("{users} users at {rate}/s"),
        nest_core::LoadTarget::Users { users, spawn_rate: None } => format!("{users} users at once"),
        nest_core::LoadTarget::Rate { per_second } => format!("{per_second} tasks/s"),
    }
}

/// `now - before` of one request group's cumulative counts. The min and max of the difference are not
/// recoverable from cumulative figures: the difference's histogram gives them, to its precision.
fn difference(now: &RequestCounts, before: &RequestCounts) -> RequestCounts {
    let mut d = now.clone();
    d.count -= before.count;
    d.failures -= before.failures;
    d.bytes -= before.bytes;
    d.wire_bytes -= before.wire_bytes;
    subtract(&mut d.latency, &before.latency);
    if let (Some(c), Some(b)) = (d.corrected.as_mut(), before.corrected.as_ref()) {
        subtract(c, b);
    }
    d
}

fn subtract(now: &mut nest_core::stats::Latency, before: &nest_core::stats::Latency) {
    now.count -= before.count;
    now.sum_us -= before.sum_us;
    // Same bounds and precision, and `before` is a prefix of `now`: the subtraction cannot fail.
    if now.histogram.subtract(&before.histogram).is_ok() && !now.histogram.is_empty() {
        now.min_us = now.histogram.min();
        now.max_us = now.histogram.max();
    }
}

/// Pushes the live feed every second until `done` turns true; stops the load when the coordinator says so, or
/// when it no longer counts this segment (lost, refused), and applies the changes of load and resets it hands out.
/// `say` hears why.
pub async fn push_live(
    session: Arc<Session>,
    mut snapshots: Snapshots,
    stop: RunHandle,
    mut done: watch::Receiver<bool>,
    say: impl Fn(&str) + Send,
) {
    let mut feed = LiveFeed::default();
    let mut ticks = tokio::time::interval(PUSH_EVERY);
    let mut stopped = false;
    let mut applied = Applied::default();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = done.wait_for(|d| *d) => return,
        }
        let snapshot = snapshots.borrow_and_update().clone();
        let mut live = feed.next(&session, &snapshot);
        live.refused = applied.refused.take();
        match session.push(&live).await {
            Ok(reply) => {
                feed.acknowledged();
                applied.apply(&reply, &stop, &say);
                if let Some(reason) = reply.stop
                    && !stopped
                {
                    stopped = true;
                    stop.stop();
                    say(&format!("the coordinator stops the run: {reason}"));
                }
            }
            Err(ClientError::Refused(reason)) if !stopped => {
                stopped = true;
                stop.stop();
                say(&format!("the coordinator no longer counts this segment: {reason}; stopping"));
            }
            // The coordinator may be busy or briefly away: the next push carries what this one did not.
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nest_core::stats::{Aggregate, Recorder, Sample};

    use super::*;
    use crate::client::Client;
    use crate::protocol::Register;
    use crate::token::Token;

    fn session() -> Session {
        let client = Client::new("http://127.0.0.1:1", Token::new("0123456789abcdef").unwrap()).unwrap();
        let (plan_hash, host, run_id) = ("p".into(), "h".into(), "r".into());
        Session::new(client, Register { index: 0, segments: 1, plan_hash, host, run_id })
    }

    /// Cumulative totals after `ms` more requests of those latencies.
    fn record(agg: &mut Aggregate, ms: &[u64]) -> Snapshot {
        let r = Recorder::new();
        for &m in ms {
            r.request("GET", "/a", Sample { latency: Duration::from_millis(m), ..Default::default() });
        }
        agg.merge(r.take());
        Snapshot { totals: agg.without_timeline(), ..Snapshot::default() }
    }

    fn pushed(live: &Live) -> (u64, u64) {
        live.rows
            .iter()
            .map(|r| (r.count, r.counts().unwrap().latency.histogram.len()))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    #[test]
    fn pushes_add_up_to_the_totals_and_an_unacknowledged_push_is_sent_again() {
        let (s, mut feed, mut agg) = (session(), LiveFeed::default(), Aggregate::default());
        let first = feed.next(&s, &record(&mut agg, &[1, 2, 3]));
        assert_eq!(pushed(&first), (3, 3));
        feed.acknowledged();
        let lost = feed.next(&s, &record(&mut agg, &[10, 20]));
        assert_eq!(pushed(&lost), (2, 2));
        // Not acknowledged (the coordinator did not answer): the next push carries it as well.
        let again = feed.next(&s, &record(&mut agg, &[30]));
        assert_eq!(pushed(&again), (3, 3));
        let latency = again.rows[0].counts().unwrap().latency;
        assert_eq!((latency.min_us / 1000, latency.max_us / 1000), (10, 30), "the difference's own min and max");
        assert!(again.seq > lost.seq);
        feed.acknowledged();
        let idle = feed.next(&s, &record(&mut agg, &[]));
        assert!(idle.rows.is_empty(), "nothing new: a heartbeat");
    }

    #[test]
    fn after_a_reset_the_feed_pushes_the_restarted_totals() {
        let (s, mut feed, mut agg) = (session(), LiveFeed::default(), Aggregate::default());
        feed.next(&s, &record(&mut agg, &[1, 2, 3, 4]));
        feed.acknowledged();
        // The runner reset its totals (counting from 5 s): they are smaller than what was sent.
        let mut fresh = Aggregate::default();
        let mut snapshot = record(&mut fresh, &[7]);
        snapshot.counted_from = Duration::from_secs(5);
        let live = feed.next(&s, &snapshot);
        assert_eq!(pushed(&live), (1, 1));
        assert_eq!(live.counted_from_s, 5);
        feed.acknowledged();
        let mut snapshot = record(&mut fresh, &[8, 9]);
        snapshot.counted_from = Duration::from_secs(5);
        assert_eq!(pushed(&feed.next(&s, &snapshot)), (2, 2), "differences again from the restarted totals");
    }
}
