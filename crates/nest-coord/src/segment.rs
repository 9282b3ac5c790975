//! The segment's live feed: what it pushes each second, and what the answers make it do.
//!
//! The runner publishes cumulative [`Snapshot`]s; a slow subscriber may skip some. The feed therefore pushes the
//! difference between the latest snapshot and what it pushed before (counts subtracted, histograms subtracted
//! bucket for bucket), so nothing is lost or counted twice however the pushes and snapshots interleave. A push
//! with nothing new is the heartbeat that keeps the segment from being declared lost. An answer that says stop
//! stops the load gracefully, as an `abort` threshold of a single process would.

use std::collections::BTreeMap;
use std::sync::Arc;

use nest_core::StopHandle;
use nest_core::snapshot::{Snapshot, Snapshots};
use nest_core::stats::{RequestCounts, TimelineRow};
use tokio::sync::watch;

use crate::client::{ClientError, Session};
use crate::protocol::{CheckTotal, Live, PUSH_EVERY};

/// Turns cumulative snapshots into pushes of what is new.
#[derive(Debug, Default)]
pub struct LiveFeed {
    seq: u64,
    /// The cumulative counts the coordinator acknowledged.
    sent: BTreeMap<(String, String), RequestCounts>,
    /// Those of the push in flight.
    pending: Vec<((String, String), RequestCounts)>,
}

impl LiveFeed {
    /// The push for `snapshot`: the requests since the last acknowledged push, the cumulative checks and script
    /// errors.
    pub fn next(&mut self, session: &Session, snapshot: &Snapshot) -> Live {
        self.seq += 1;
        self.pending.clear();
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
        }
    }
}

impl LiveFeed {
    /// The coordinator took the last push: its figures are sent.
    pub fn acknowledged(&mut self) {
        self.sent.extend(self.pending.drain(..));
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
/// when it no longer counts this segment (lost, refused). `say` hears why.
pub async fn push_live(
    session: Arc<Session>,
    mut snapshots: Snapshots,
    stop: StopHandle,
    mut done: watch::Receiver<bool>,
    say: impl Fn(&str) + Send,
) {
    let mut feed = LiveFeed::default();
    let mut ticks = tokio::time::interval(PUSH_EVERY);
    let mut stopped = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = done.wait_for(|d| *d) => return,
        }
        let snapshot = snapshots.borrow_and_update().clone();
        let live = feed.next(&session, &snapshot);
        match session.push(&live).await {
            Ok(reply) => {
                feed.acknowledged();
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
