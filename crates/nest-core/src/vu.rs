//! The VU: one loop for the closed model, one iteration for the open model, and the call path both share.
//!
//! Closed model: a VU picks a taskset by weight, runs `on_start`, then runs tasks (by weight, or in order with
//! `sequential()`) with think time between them until a task calls `interrupt()`; it then runs `on_stop`, leaves
//! the taskset and picks again. Open model: a pooled VU runs one task per scheduled start, entering a taskset (with
//! `on_start`) on its first use and leaving it on `interrupt()`. Every script call runs on a pooled fiber; think
//! time is an ordinary timer here, so a VU that is thinking holds no stack.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::behaviour::{Behaviour, Call, Outcome};
use crate::fiber::{FiberError, FiberPool};
use crate::plan::Plan;
use crate::stats::Recorder;
use crate::taskset::Slot;
use crate::weights::WeightedTable;

/// How a taskset's next task is chosen.
pub(crate) enum Order {
    /// By weight, at random.
    Random(WeightedTable),
    /// In declaration order, each task repeated by its weight.
    Sequence(Vec<usize>),
}

impl Order {
    fn next(&self, rng: &mut SmallRng, cursor: &mut usize) -> usize {
        match self {
            Order::Random(table) => table.pick(rng),
            Order::Sequence(steps) => {
                let task = steps[*cursor % steps.len()];
                *cursor = (*cursor + 1) % steps.len();
                task
            }
        }
    }

    /// The order of a taskset, or `None` when it is disabled.
    pub(crate) fn of(spec: &crate::TasksetSpec) -> Option<Order> {
        if spec.weight == 0 {
            return None;
        }
        if spec.sequential {
            let steps: Vec<usize> =
                spec.tasks.iter().enumerate().flat_map(|(i, t)| std::iter::repeat_n(i, t.weight as usize)).collect();
            (!steps.is_empty()).then_some(Order::Sequence(steps))
        } else {
            let weights: Vec<u32> = spec.tasks.iter().map(|t| t.weight).collect();
            WeightedTable::new(&weights).map(Order::Random)
        }
    }
}

/// What every VU of one worker shares.
pub(crate) struct Shared<B: Behaviour> {
    pub behaviour: B,
    pub plan: Arc<Plan>,
    pub pool: FiberPool,
    pub recorder: Recorder,
    pub stop: CancellationToken,
    pub kill: CancellationToken,
    pub tasksets: WeightedTable,
    /// Per taskset, how its tasks are chosen (`None` for a disabled taskset).
    pub orders: Vec<Option<Order>>,
    /// Closed model with `--iterations`: tasks the whole run may still start, shared by every worker so the count
    /// is exact however the VUs are spread (one atomic operation per task, only in this mode).
    pub tickets: Option<Arc<AtomicU64>>,
    /// VUs running now (closed model), or tasks in flight (open model).
    pub active: Cell<u64>,
}

impl<B: Behaviour> Shared<B> {
    /// Takes one task ticket; false when the worker's share of `--iterations` is used up.
    pub(crate) fn take_ticket(&self) -> bool {
        match &self.tickets {
            None => true,
            Some(left) => left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok(),
        }
    }

    /// Whether `--iterations` is used up.
    pub(crate) fn tickets_exhausted(&self) -> bool {
        self.tickets.as_ref().is_some_and(|t| t.load(Ordering::Relaxed) == 0)
    }
}

/// Asks one VU of the closed model to stop after its current task.
#[derive(Default)]
pub(crate) struct VuStop {
    stopped: Cell<bool>,
    wake: Notify,
}

impl VuStop {
    pub(crate) fn stop(&self) {
        self.stopped.set(true);
        self.wake.notify_one();
    }
}

/// A VU's state between calls: its script state (`None` after a crash lost it) and its random stream.
pub(crate) struct VuState<B: Behaviour> {
    pub id: u64,
    state: Option<B::Vu>,
    pub rng: SmallRng,
}

impl<B: Behaviour> VuState<B> {
    pub(crate) fn new(shared: &Shared<B>, id: u64) -> VuState<B> {
        VuState {
            id,
            state: Some(shared.behaviour.new_vu(id)),
            rng: SmallRng::seed_from_u64(shared.plan.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        }
    }
}

/// How a VU's pass through a taskset should continue after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    Continue,
    Leave,
    Exit,
}

/// Runs VU `id` of the closed model until the run stops, the VU is asked to stop, or the tickets run out.
pub(crate) async fn run_closed<B: Behaviour>(shared: Rc<Shared<B>>, id: u64, stop: Rc<VuStop>) {
    let mut vu = VuState::new(&shared, id);
    let done = |shared: &Shared<B>| shared.stop.is_cancelled() || stop.stopped.get();
    while !done(&shared) && !shared.tickets_exhausted() {
        let ts = shared.tasksets.pick(&mut vu.rng);
        let spec = &shared.plan.tasksets[ts];
        let Some(order) = &shared.orders[ts] else { unreachable!("only enabled tasksets can be picked") };
        let mut next =
            if spec.has_on_start { call(&shared, &mut vu, ts, Slot::OnStart, None).await } else { Next::Continue };
        let started = next == Next::Continue;
        let mut cursor = 0;
        let mut left_after = Duration::ZERO;
        while next == Next::Continue {
            if done(&shared) || !shared.take_ticket() {
                next = Next::Leave;
                stop.stopped.set(true);
                break;
            }
            let task = order.next(&mut vu.rng, &mut cursor);
            let began = Instant::now();
            next = call(&shared, &mut vu, ts, Slot::Task(task), None).await;
            left_after = began.elapsed();
            if next == Next::Continue {
                let pause = spec.wait.pause(&mut vu.rng, left_after);
                if pause.missed {
                    shared.recorder.pacing_missed(ts, task);
                }
                if !think(&shared, &stop, pause.wait).await {
                    break;
                }
            }
        }
        if next == Next::Exit || shared.kill.is_cancelled() {
            return;
        }
        if spec.has_on_stop && call(&shared, &mut vu, ts, Slot::OnStop, None).await == Next::Exit {
            return;
        }
        if let Some(state) = vu.state.as_mut() {
            shared.behaviour.leave(state, ts);
        }
        // Leaving is followed by think time like any task, so a taskset that interrupts at once (or whose on_start
        // fails) cannot spin; the time spent in the last task counts towards pacing.
        let pause = spec.wait.pause(&mut vu.rng, if started { left_after } else { Duration::ZERO });
        think(&shared, &stop, pause.wait).await;
    }
}

/// A VU of the open model's pool: which tasksets it has entered, and where it is in each sequence.
pub(crate) struct PooledVu<B: Behaviour> {
    pub vu: VuState<B>,
    entered: Vec<bool>,
    cursors: Vec<usize>,
}

impl<B: Behaviour> PooledVu<B> {
    pub(crate) fn new(shared: &Shared<B>, id: u64) -> PooledVu<B> {
        let n = shared.plan.tasksets.len();
        PooledVu { vu: VuState::new(shared, id), entered: vec![false; n], cursors: vec![0; n] }
    }
}

/// Runs one scheduled task of the open model on a pooled VU.
pub(crate) async fn iteration<B: Behaviour>(shared: &Rc<Shared<B>>, pooled: &mut PooledVu<B>, scheduled: Instant) {
    let ts = shared.tasksets.pick(&mut pooled.vu.rng);
    let spec = &shared.plan.tasksets[ts];
    if !pooled.entered[ts] {
        if spec.has_on_start && call(shared, &mut pooled.vu, ts, Slot::OnStart, None).await != Next::Continue {
            // The task cannot run in a taskset the VU could not enter; its start counts as run.
            return;
        }
        pooled.entered[ts] = true;
        pooled.cursors[ts] = 0;
    }
    let Some(order) = &shared.orders[ts] else { unreachable!("only enabled tasksets can be picked") };
    let task = order.next(&mut pooled.vu.rng, &mut pooled.cursors[ts]);
    if call(shared, &mut pooled.vu, ts, Slot::Task(task), Some(scheduled)).await == Next::Leave {
        leave_open(shared, pooled, ts).await;
    }
}

/// Leaves every taskset a pooled VU is in (at the end of the run).
pub(crate) async fn retire<B: Behaviour>(shared: &Rc<Shared<B>>, pooled: &mut PooledVu<B>) {
    for ts in 0..pooled.entered.len() {
        if pooled.entered[ts] && !shared.kill.is_cancelled() {
            leave_open(shared, pooled, ts).await;
        }
    }
}

async fn leave_open<B: Behaviour>(shared: &Rc<Shared<B>>, pooled: &mut PooledVu<B>, ts: usize) {
    pooled.entered[ts] = false;
    if shared.plan.tasksets[ts].has_on_stop {
        call(shared, &mut pooled.vu, ts, Slot::OnStop, None).await;
    }
    if let Some(state) = pooled.vu.state.as_mut() {
        shared.behaviour.leave(state, ts);
    }
}

/// Runs one slot on a fiber and records it.
async fn call<B: Behaviour>(
    shared: &Rc<Shared<B>>,
    vu: &mut VuState<B>,
    ts: usize,
    slot: Slot,
    scheduled: Option<Instant>,
) -> Next {
    let spec = &shared.plan.tasksets[ts];
    let slot_index = slot.index(spec);
    let mut state = vu.state.take().unwrap_or_else(|| shared.behaviour.new_vu(vu.id));
    let on_fiber = shared.clone();
    let call = Call { taskset: ts, slot, scheduled };
    let result = shared
        .pool
        .run(
            move || {
                let outcome = on_fiber.behaviour.call(&mut state, call);
                (state, outcome)
            },
            &shared.kill,
        )
        .await;
    let outcome = match result {
        Ok((state, outcome)) => {
            vu.state = Some(state);
            outcome
        }
        Err(error) => {
            // The VU's state went down with the fiber: the next call starts it afresh.
            let message = match error {
                FiberError::Panicked(m) => format!("internal error (panic): {m}"),
                other => other.to_string(),
            };
            let location = format!("{}:{}", spec.name, slot.name(spec));
            shared.recorder.slot(ts, slot_index, Some((&location, &message)));
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
            shared.recorder.slot(ts, slot_index, Some((&e.location, &e.message)));
            // An error in on_start leaves the taskset; an error in a task is counted and the VU goes on.
            if slot == Slot::OnStart { Next::Leave } else { Next::Continue }
        }
        Outcome::Cancelled => Next::Exit,
    }
}

/// Waits `pause`, or until the run stops or this VU is asked to stop. Returns false when it should stop.
async fn think<B: Behaviour>(shared: &Shared<B>, stop: &VuStop, pause: Duration) -> bool {
    if pause.is_zero() {
        // Let the worker's other VUs run now and then even when nobody waits.
        tokio::task::consume_budget().await;
        return !shared.stop.is_cancelled() && !stop.stopped.get();
    }
    tokio::select! {
        () = tokio::time::sleep(pause) => !stop.stopped.get(),
        () = shared.stop.cancelled() => false,
        () = stop.wake.notified() => false,
    }
}
