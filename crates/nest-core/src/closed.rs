//! The closed model on one worker: keep as many VUs running as the user curve asks for.
//!
//! The curve gives the global count, over all segments; this worker owns a [`Lane`] of the global VU ids (every
//! `workers`-th id of its segment's), so its share is the number of its ids below the count, and VU `j` starts at
//! the global curve's time for `j` whichever segment runs it. VUs start in id order and stop in reverse (the
//! newest first), each finishing its current task and running `on_stop`. Scripted shapes and the run handle's
//! `set_users` extend the curve while the run goes on (the runner relays them as [`Control::Retarget`]); while
//! they may, a worker with no VU left waits for more instead of ending.

use std::rc::Rc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::behaviour::Behaviour;
use crate::control::LoadTarget;
use crate::curve::UserCurve;
use crate::segment::Lane;
use crate::vu::{self, VuCommon, VuStop};
use crate::worker::Control;

/// How many of its VUs a worker owning `lane` runs at `now`: its ids below the global count (none once the
/// `--iterations` budget is used up).
pub(crate) fn wanted(curve: &UserCurve, lane: Lane, now: std::time::Duration, exhausted: bool) -> u64 {
    if exhausted { 0 } else { lane.count_below(curve.count_at(now)) }
}

/// Runs the closed model until the run stops, the tickets run out, or the curve has no users left for good.
pub(crate) async fn run<B: Behaviour>(
    common: Rc<VuCommon<B>>,
    mut curve: UserCurve,
    shaped: bool,
    index: usize,
    start: tokio::time::Instant,
    control: &mut mpsc::UnboundedReceiver<Control>,
) {
    let lane = common.plan.lane(index);
    let mut running: Vec<Rc<VuStop>> = Vec::new();
    let mut tasks = JoinSet::new();
    let mut control_open = true;
    loop {
        let now = start.elapsed();
        let exhausted = common.tickets_exhausted();
        let wanted = wanted(&curve, lane, now, exhausted) as usize;
        while running.len() < wanted {
            let id = lane.id(running.len() as u64);
            let stop = Rc::new(VuStop::default());
            running.push(stop.clone());
            let common = common.clone();
            tasks.spawn_local(async move {
                common.active.set(common.active.get() + 1);
                vu::run_closed(common.clone(), id, stop).await;
                common.active.set(common.active.get() - 1);
            });
        }
        while running.len() > wanted {
            if let Some(stop) = running.pop() {
                stop.stop();
            }
        }
        let next = curve.next_change_after(now);
        // Without more changes, no running VU and no shape or handle to extend the curve, this worker is done.
        let extensible = shaped || common.plan.is_steerable();
        if next.is_none() && tasks.is_empty() && (!extensible || !control_open || exhausted) {
            break;
        }
        tokio::select! {
            () = sleep_until_opt(next.map(|d| start + d)) => {}
            message = control.recv(), if control_open => match message {
                Some(Control::Retarget { at, target: LoadTarget::Users { users, spawn_rate } }) => {
                    curve.retarget(at, users, spawn_rate);
                }
                Some(_) => {}
                None => control_open = false,
            },
            () = common.stop.cancelled() => break,
            joined = tasks.join_next(), if !tasks.is_empty() => {
                if let Some(Err(e)) = joined {
                    // A panic in the loop itself (not in a script call, which the fiber catches) is a bug in nest:
                    // count it where people look, and let the other VUs go on.
                    common.recorder.error("nest (internal)", &format!("a VU loop failed: {e}"));
                }
            }
        }
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            common.recorder.error("nest (internal)", &format!("a VU loop failed: {e}"));
        }
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
