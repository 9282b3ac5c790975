//! The one VU loop.
//!
//! A VU picks a taskset by weight, runs `on_start`, then picks tasks by weight with think time between them until a
//! task calls `interrupt()`; it then runs `on_stop`, leaves the taskset and picks again. Every script call runs on a
//! pooled fiber; think time is an ordinary timer in this async loop, so a VU that is thinking holds no stack.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio_util::sync::CancellationToken;

use crate::behaviour::{Behaviour, Outcome};
use crate::fiber::{FiberError, FiberPool};
use crate::plan::Plan;
use crate::stats::Recorder;
use crate::taskset::Slot;
use crate::weights::WeightedTable;

/// What every VU of one worker shares.
pub(crate) struct Shared<B: Behaviour> {
    pub behaviour: B,
    pub plan: Arc<Plan>,
    pub pool: FiberPool,
    pub recorder: Recorder,
    pub stop: CancellationToken,
    pub kill: CancellationToken,
    pub tasksets: WeightedTable,
    /// Per taskset, its task table (`None` for a disabled taskset).
    pub tasks: Vec<Option<WeightedTable>>,
}

/// How a VU's pass through a taskset should continue after a call.
enum Next {
    Continue,
    Leave,
    Exit,
}

/// Runs VU `vu_id` until the run stops.
pub(crate) async fn run<B: Behaviour>(shared: Rc<Shared<B>>, vu_id: u64) {
    let mut rng =
        SmallRng::seed_from_u64(shared.plan.seed ^ vu_id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut vu = Some(shared.behaviour.new_vu(vu_id));
    while !shared.stop.is_cancelled() {
        let ts = shared.tasksets.pick(&mut rng);
        let spec = &shared.plan.tasksets[ts];
        let Some(table) = &shared.tasks[ts] else {
            unreachable!("only enabled tasksets can be picked")
        };
        let mut next = if spec.has_on_start {
            call(&shared, &mut vu, vu_id, ts, Slot::OnStart).await
        } else {
            Next::Continue
        };
        let started = matches!(next, Next::Continue);
        while matches!(next, Next::Continue) {
            if shared.stop.is_cancelled() {
                break;
            }
            let task = table.pick(&mut rng);
            next = call(&shared, &mut vu, vu_id, ts, Slot::Task(task)).await;
            if matches!(next, Next::Continue) && !think(&shared, spec.wait.sample(&mut rng)).await {
                break;
            }
        }
        if matches!(next, Next::Exit) || shared.kill.is_cancelled() {
            return;
        }
        if spec.has_on_stop
            && matches!(
                call(&shared, &mut vu, vu_id, ts, Slot::OnStop).await,
                Next::Exit
            )
        {
            return;
        }
        if let Some(vu) = vu.as_mut() {
            shared.behaviour.leave(vu, ts);
        }
        if !started {
            // A failed or interrupted on_start must not spin: pause as between tasks before choosing again.
            think(&shared, spec.wait.sample(&mut rng)).await;
        }
    }
}

/// Runs one slot on a fiber and records it.
async fn call<B: Behaviour>(
    shared: &Rc<Shared<B>>,
    vu: &mut Option<B::Vu>,
    vu_id: u64,
    ts: usize,
    slot: Slot,
) -> Next {
    let spec = &shared.plan.tasksets[ts];
    let slot_index = slot.index(spec);
    let mut state = vu.take().unwrap_or_else(|| shared.behaviour.new_vu(vu_id));
    let on_fiber = shared.clone();
    let result = shared
        .pool
        .run(
            move || {
                let outcome = on_fiber.behaviour.call(&mut state, ts, slot);
                (state, outcome)
            },
            &shared.kill,
        )
        .await;
    let outcome = match result {
        Ok((state, outcome)) => {
            *vu = Some(state);
            outcome
        }
        Err(error) => {
            // The VU's state went down with the fiber: the next call starts it afresh.
            let message = match error {
                FiberError::Panicked(m) => format!("internal error (panic): {m}"),
                other => other.to_string(),
            };
            let location = format!("{}:{}", spec.name, slot.name(spec));
            shared
                .recorder
                .slot(ts, slot_index, Some((&location, &message)));
            return Next::Leave;
        }
    };
    match outcome {
        Outcome::Done => {
            shared.recorder.slot(ts, slot_index, None);
            Next::Continue
        }
        Outcome::Interrupted => {
            shared.recorder.slot(ts, slot_index, None);
            Next::Leave
        }
        Outcome::Failed(e) => {
            shared
                .recorder
                .slot(ts, slot_index, Some((&e.location, &e.message)));
            // An error in on_start leaves the taskset; an error in a task is counted and the VU goes on.
            if slot == Slot::OnStart {
                Next::Leave
            } else {
                Next::Continue
            }
        }
        Outcome::Cancelled => Next::Exit,
    }
}

/// Waits `pause`, or until the run stops. Returns false when the run is stopping.
async fn think<B: Behaviour>(shared: &Shared<B>, pause: Duration) -> bool {
    if pause.is_zero() {
        // Let the worker's other VUs run now and then even when nobody waits.
        tokio::task::consume_budget().await;
        return !shared.stop.is_cancelled();
    }
    tokio::select! {
        () = tokio::time::sleep(pause) => true,
        () = shared.stop.cancelled() => false,
    }
}
