//! The open model on one worker: start tasks on schedule, whatever the response times.
//!
//! Task `k` is scheduled at the arrival curve's time for `k`, numbered over all segments; this worker takes the `k`
//! of its [`crate::segment::Lane`] (every `workers`-th arrival of its segment's), and `--iterations` keeps the `k`
//! below the total, so the segments' arrivals together are the whole schedule. Each start takes an idle VU from
//! the pool, which grows up to this worker's share of `--max-users` (VUs with the lane's global ids). When none is free, the start waits in a queue; one that has waited longer than `--max-delay` is
//! dropped and counted. Think time does not apply. Each task knows its scheduled start, so its first request can
//! report the response time a user would have seen.
//!
//! A new rate ([`Control::Retarget`], from the run handle) rewrites the curve from its instant on, which the runner
//! gives every worker alike: arrivals before it keep their times and the numbering goes on, so the lanes still split
//! one global schedule. While the rate may change, a worker whose arrivals ended (a rate of 0) waits for a new one.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::behaviour::Behaviour;
use crate::control::LoadTarget;
use crate::curve::ArrivalCurve;
use crate::vu::{self, PooledVu, VuCommon};
use crate::worker::Control;

/// The resolution of tokio's timers: a sleep ends on the first tick at or after its deadline.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// The plan's pool of VUs.
pub(crate) struct Pool {
    /// The most VUs over all segments.
    pub max_users: u64,
    /// A start that waited longer than this is dropped.
    pub max_delay: Duration,
}

/// Runs the open model until the run stops, the iterations are all started, or the rate ends for good.
pub(crate) async fn run<B: Behaviour>(
    common: Rc<VuCommon<B>>,
    mut arrivals: ArrivalCurve,
    pool: Pool,
    index: usize,
    start: Instant,
    control: &mut mpsc::UnboundedReceiver<Control>,
) {
    let Pool { max_users, max_delay } = pool;
    let lane = common.plan.lane(index);
    let limit = common.plan.iterations.unwrap_or(u64::MAX);
    let pool_limit = lane.count_below(max_users);
    let schedule =
        |arrivals: &ArrivalCurve, k: u64| if k < limit { arrivals.arrival(k).map(|d| start + d) } else { None };
    let steerable = common.plan.is_steerable();
    let mut control_open = true;
    let (returned_tx, mut returned) = mpsc::unbounded_channel::<PooledVu<B>>();
    let mut idle: Vec<PooledVu<B>> = Vec::new();
    let mut created = 0u64;
    let mut queue: VecDeque<Instant> = VecDeque::new();
    // This worker's next arrival is the `n`-th of its lane: global arrival `k`.
    let mut n = 0u64;
    let mut k = lane.id(n);
    let mut next = schedule(&arrivals, k);
    loop {
        // Dispatch queued starts to free VUs; drop the ones that waited too long.
        while let Some(&scheduled) = queue.front() {
            if Instant::now() >= scheduled + max_delay {
                queue.pop_front();
                common.recorder.dropped();
                continue;
            }
            let pooled = match idle.pop() {
                Some(v) => v,
                None if created < pool_limit => {
                    created += 1;
                    PooledVu::new(&common, lane.id(created - 1))
                }
                None => break,
            };
            queue.pop_front();
            let (common, tx) = (common.clone(), returned_tx.clone());
            common.active.set(common.active.get() + 1);
            tokio::task::spawn_local(async move {
                let mut pooled = pooled;
                vu::iteration(&common, &mut pooled, scheduled.into_std()).await;
                common.active.set(common.active.get() - 1);
                let _ = tx.send(pooled);
            });
        }
        let in_flight = created - idle.len() as u64;
        // (With a rate that may still change, only the end of the iterations ends the arrivals for good.)
        let waiting = steerable && control_open && k < limit;
        if next.is_none() && queue.is_empty() && in_flight == 0 && !waiting {
            break;
        }
        let expiry = queue.front().map(|&s| s + max_delay);
        tokio::select! {
            () = sleep_until_opt(next) => {
                if let Some(at) = next {
                    queue.push_back(at);
                    n += 1;
                    k = lane.id(n);
                    next = schedule(&arrivals, k);
                }
            }
            Some(pooled) = returned.recv() => idle.push(pooled),
            () = sleep_until_opt(expiry) => {}
            message = control.recv(), if control_open => match message {
                Some(Control::Retarget { at, target: LoadTarget::Rate { per_second } }) => {
                    arrivals.retarget(at, per_second);
                    next = schedule(&arrivals, k);
                }
                Some(_) => {}
                None => control_open = false,
            },
            () = common.stop.cancelled() => break,
        }
    }
    // Stopping: the starts still queued found no VU in time, and the starts that were already due but not yet taken
    // from the schedule (a worker that fell behind) never ran: all count as dropped, so the report accounts for the
    // whole schedule. Tasks in flight finish (or are cancelled) and hand their VU back; then every VU leaves its
    // tasksets with on_stop.
    // Starts at or after the end of the run time were never part of the run. Nor were the starts due within one
    // timer tick of the stop: their timer and the stop's came due together, and the stop won the race (a lost
    // race, not a worker that fell behind, and not a missing VU).
    let run_end = common.plan.run_time.map_or(Instant::now(), |t| start + t);
    let stopped_at = Instant::now().min(run_end);
    for _ in queue.drain(..).filter(|&at| at < stopped_at) {
        common.recorder.dropped();
    }
    while next.is_some_and(|at| at + TIMER_TICK < stopped_at) {
        common.recorder.dropped();
        n += 1;
        k = lane.id(n);
        next = schedule(&arrivals, k);
    }
    drop(returned_tx);
    let in_flight = created - idle.len() as u64;
    for _ in 0..in_flight {
        match returned.recv().await {
            Some(pooled) => idle.push(pooled),
            None => break,
        }
    }
    for mut pooled in idle {
        vu::retire(&common, &mut pooled).await;
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
