//! The closed model on one worker: keep as many VUs running as the user curve asks for.
//!
//! The curve gives the global count; this worker owns the VU ids `i` with `i mod workers == index`, so its share
//! is the number of such ids below the count. VUs start in id order and stop in reverse (the newest first), each
//! finishing its current task and running `on_stop`. Scripted shapes extend the curve while the run goes on.

use std::rc::Rc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::behaviour::Behaviour;
use crate::curve::UserCurve;
use crate::vu::{self, Shared, VuStop};
use crate::worker::Control;

/// This worker's share of a global user count.
pub(crate) fn local_share(global: u64, index: u64, workers: u64) -> u64 {
    if global > index { (global - index).div_ceil(workers) } else { 0 }
}

/// Runs the closed model until the run stops, the tickets run out, or the curve has no users left for good.
pub(crate) async fn run<B: Behaviour>(
    shared: Rc<Shared<B>>,
    mut curve: UserCurve,
    shaped: bool,
    index: usize,
    start: tokio::time::Instant,
    control: &mut mpsc::UnboundedReceiver<Control>,
) {
    let workers = shared.plan.workers as u64;
    let mut running: Vec<Rc<VuStop>> = Vec::new();
    let mut tasks = JoinSet::new();
    let mut control_open = true;
    loop {
        let now = start.elapsed();
        let exhausted = shared.tickets_exhausted();
        let wanted = if exhausted { 0 } else { local_share(curve.count_at(now), index as u64, workers) as usize };
        while running.len() < wanted {
            let id = index as u64 + running.len() as u64 * workers;
            let stop = Rc::new(VuStop::default());
            running.push(stop.clone());
            let shared = shared.clone();
            tasks.spawn_local(async move {
                shared.active.set(shared.active.get() + 1);
                vu::run_closed(shared.clone(), id, stop).await;
                shared.active.set(shared.active.get() - 1);
            });
        }
        while running.len() > wanted {
            if let Some(stop) = running.pop() {
                stop.stop();
            }
        }
        let next = curve.next_change_after(now);
        // Without more changes, no running VU and no shape to extend the curve, this worker is done.
        if next.is_none() && tasks.is_empty() && (!shaped || !control_open || exhausted) {
            break;
        }
        tokio::select! {
            () = sleep_until_opt(next.map(|d| start + d)) => {}
            message = control.recv(), if shaped && control_open => match message {
                Some(Control::Retarget { at, users, spawn_rate }) => curve.retarget(at, users, spawn_rate),
                _ => control_open = false,
            },
            () = shared.stop.cancelled() => break,
            joined = tasks.join_next(), if !tasks.is_empty() => {
                if let Some(Err(e)) = joined {
                    // A panic in the loop itself (not in a script call, which the fiber catches) is a bug in nest:
                    // count it where people look, and let the other VUs go on.
                    shared.recorder.error("nest (internal)", &format!("a VU loop failed: {e}"));
                }
            }
        }
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            shared.recorder.error("nest (internal)", &format!("a VU loop failed: {e}"));
        }
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::local_share;

    #[test]
    fn shares_add_up_to_the_global_count() {
        for workers in 1..5u64 {
            for global in 0..40u64 {
                let total: u64 = (0..workers).map(|w| local_share(global, w, workers)).sum();
                assert_eq!(total, global, "{global} users over {workers} workers");
            }
        }
        assert_eq!(local_share(3, 0, 2), 2);
        assert_eq!(local_share(3, 1, 2), 1);
    }
}
