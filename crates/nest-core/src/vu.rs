//! The VU: one loop for the closed model, one iteration for the open model, and the call path both share.
//!
//! Closed model: a VU starts in the taskset its id is assigned (smooth weighted round-robin), runs `on_start`, then
//! runs tasks (by weight, or in order with `sequential()`) with think time between them until a task calls
//! `interrupt()`; it then runs `on_stop`, leaves the taskset and picks the next one at random by weight. A task
//! that is a nested taskset runs that taskset the same way, one level down, and its `interrupt()` returns to the
//! parent. Open model: a pooled VU runs one task per scheduled start, entering a taskset (with `on_start`) on its
//! first use and leaving it on `interrupt()`. Every script call runs on a pooled fiber; think time is an ordinary
//! timer here, so a VU that is thinking holds no stack (a custom wait time makes one short call on a fiber first).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
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
use crate::taskset::{Pause, Slot, WaitTime};
use crate::weights::{SmoothRoundRobin, WeightedTable};

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

    /// The order of a taskset's tasks, or `None` when it has no enabled task. A taskset of weight 0 has one too:
    /// it may be entered as a nested taskset.
    pub(crate) fn of(spec: &crate::TasksetSpec) -> Option<Order> {
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
pub(crate) struct VuCommon<B: Behaviour> {
    pub behaviour: B,
    pub plan: Arc<Plan>,
    pub pool: FiberPool,
    pub recorder: Recorder,
    pub stop: CancellationToken,
    pub kill: CancellationToken,
    pub tasksets: WeightedTable,
    /// Which taskset each VU starts in, by its global id.
    pub first: SmoothRoundRobin,
    /// Per taskset, how its tasks are chosen (`None` for a disabled taskset).
    pub orders: Vec<Option<Order>>,
    /// Closed model with `--iterations`: tasks the whole run may still start, shared by every worker so the count
    /// is exact however the VUs are spread (one atomic operation per task, only in this mode).
    pub tickets: Option<Arc<AtomicU64>>,
    /// VUs running now (closed model), or tasks in flight (open model).
    pub active: Cell<u64>,
}

impl<B: Behaviour> VuCommon<B> {
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
    pub(crate) fn new(common: &VuCommon<B>, id: u64) -> VuState<B> {
        VuState {
            id,
            state: Some(common.behaviour.new_vu(id)),
            rng: SmallRng::seed_from_u64(crate::segment::vu_seed(common.plan.seed, id)),
        }
    }
}

/// How a VU's pass through a taskset should continue after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    Continue,
    /// Leave the taskset, then wait the think time of where the VU returns to.
    Leave,
    /// Leave the taskset and go on at once (`interrupt(false)`).
    LeaveNow,
    Exit,
}

/// How a VU left a taskset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// It interrupted, or could not enter: go on where it returns to, after that place's think time when `wait`.
    Interrupted { wait: bool, took: Duration },
    /// The run, or this VU, is stopping (or the tickets ran out): leave every taskset, with `on_stop`.
    Stopped,
    /// The run was killed: leave at once.
    Exit,
}

/// Runs VU `id` of the closed model until the run stops, the VU is asked to stop, or the tickets run out.
///
/// Its first taskset is a pure function of `id` ([`crate::SmoothRoundRobin`]); after an `interrupt()` it picks
/// again at random by weight.
pub(crate) async fn run_closed<B: Behaviour>(common: Rc<VuCommon<B>>, id: u64, stop: Rc<VuStop>) {
    let mut vu = VuState::new(&common, id);
    let mut ts = common.first.at(id);
    while !stopping(&common, &stop) && !common.tickets_exhausted() {
        let Left::Interrupted { wait, took } = visit(&common, &mut vu, &stop, ts).await else { return };
        // Leaving is followed by think time like any task, so a taskset that interrupts at once (or whose on_start
        // fails) cannot spin; the time spent in the last task counts towards pacing.
        let pause = if wait { pause(&common, &mut vu, ts, took).await.wait } else { Duration::ZERO };
        if !think(&common, &stop, pause).await {
            return;
        }
        ts = common.tasksets.pick(&mut vu.rng);
    }
}

fn stopping<B: Behaviour>(common: &VuCommon<B>, stop: &VuStop) -> bool {
    common.stop.is_cancelled() || stop.stopped.get()
}

/// One pass of a VU through taskset `ts`: `on_start`, tasks with think time until one interrupts, `on_stop`. A task
/// that is a nested taskset is such a pass one level down; its `interrupt()` returns here.
fn visit<'a, B: Behaviour>(
    common: &'a Rc<VuCommon<B>>,
    vu: &'a mut VuState<B>,
    stop: &'a VuStop,
    ts: usize,
) -> Pin<Box<dyn Future<Output = Left> + 'a>> {
    Box::pin(async move {
        let spec = &common.plan.tasksets[ts];
        let Some(order) = &common.orders[ts] else { unreachable!("a reachable taskset has a task to run") };
        let mut next = if spec.has_on_start { call(common, vu, ts, Slot::OnStart, None).await } else { Next::Continue };
        let started = next == Next::Continue;
        let (mut cursor, mut took, mut stopped) = (0, Duration::ZERO, false);
        // Only pacing needs the task's duration (here and after an `interrupt()`): no clock read per task otherwise.
        let paces = spec.wait.paces();
        while next == Next::Continue {
            let task = order.next(&mut vu.rng, &mut cursor);
            let began = paces.then(Instant::now);
            let wait = match run_task(common, vu, stop, ts, task).await {
                Step::Ran(after, wait) => {
                    next = after;
                    wait
                }
                Step::Stopped => {
                    stopped = true;
                    break;
                }
                Step::Exit => return Left::Exit,
            };
            took = began.map_or(Duration::ZERO, |began| began.elapsed());
            if next == Next::Continue && !pause_after(common, vu, stop, ts, task, wait, took).await {
                stopped = true;
                break;
            }
        }
        if next == Next::Exit || !leave_closed(common, vu, ts).await {
            return Left::Exit;
        }
        if stopped {
            return Left::Stopped;
        }
        Left::Interrupted { wait: next != Next::LeaveNow, took: if started { took } else { Duration::ZERO } }
    })
}

/// How one task of a pass went.
enum Step {
    /// It ran (a nested taskset: the VU came back from it); then think time, unless `false`.
    Ran(Next, bool),
    /// The run or the VU is stopping, or the tickets ran out: the task did not run.
    Stopped,
    /// The run was killed.
    Exit,
}

/// Runs task `task` of taskset `ts`: a call, or a visit of the nested taskset it names.
async fn run_task<B: Behaviour>(
    common: &Rc<VuCommon<B>>,
    vu: &mut VuState<B>,
    stop: &VuStop,
    ts: usize,
    task: usize,
) -> Step {
    if stopping(common, stop) {
        return Step::Stopped;
    }
    if let Some(child) = common.plan.nested_taskset(ts, task) {
        common.recorder.slot(ts, Slot::Task(task).index(&common.plan.tasksets[ts]), None);
        return match visit(common, vu, stop, child).await {
            Left::Interrupted { wait, .. } => Step::Ran(Next::Continue, wait),
            Left::Stopped => Step::Stopped,
            Left::Exit => Step::Exit,
        };
    }
    if !common.take_ticket() {
        stop.stopped.set(true);
        return Step::Stopped;
    }
    Step::Ran(call(common, vu, ts, Slot::Task(task), None).await, true)
}

/// The think time after a task (none when `wait` is false); false when the VU should stop.
async fn pause_after<B: Behaviour>(
    common: &Rc<VuCommon<B>>,
    vu: &mut VuState<B>,
    stop: &VuStop,
    ts: usize,
    task: usize,
    wait: bool,
    took: Duration,
) -> bool {
    let pause = if wait { pause(common, vu, ts, took).await } else { Pause::default() };
    if pause.missed {
        common.recorder.pacing_missed(ts, task);
    }
    think(common, stop, pause.wait).await
}

/// Leaves taskset `ts` in the closed model: `on_stop`, then the behaviour lets go. False when the run was killed.
async fn leave_closed<B: Behaviour>(common: &Rc<VuCommon<B>>, vu: &mut VuState<B>, ts: usize) -> bool {
    if common.kill.is_cancelled() {
        return false;
    }
    if common.plan.tasksets[ts].has_on_stop && call(common, vu, ts, Slot::OnStop, None).await == Next::Exit {
        return false;
    }
    if let Some(state) = vu.state.as_mut() {
        common.behaviour.leave(state, ts);
    }
    true
}

/// The pause before a VU's next task in taskset `ts`; a custom wait time asks the behaviour, on a fiber.
async fn pause<B: Behaviour>(common: &Rc<VuCommon<B>>, vu: &mut VuState<B>, ts: usize, took: Duration) -> Pause {
    let spec = &common.plan.tasksets[ts];
    if !matches!(spec.wait, WaitTime::Custom) {
        return spec.wait.pause(&mut vu.rng, took);
    }
    let mut state = vu.state.take().unwrap_or_else(|| common.behaviour.new_vu(vu.id));
    let on_fiber = common.clone();
    let asked = move || {
        let wait = on_fiber.behaviour.wait_time(&mut state, ts);
        (state, wait)
    };
    match common.pool.run(asked, &common.kill).await {
        Ok((state, wait)) => {
            vu.state = Some(state);
            match wait {
                Ok(wait) => Pause { wait, missed: false },
                Err(e) => {
                    common.recorder.error(&e.location, &e.message);
                    Pause::default()
                }
            }
        }
        Err(error) => {
            common.recorder.error(&format!("{}:wait_time", spec.name), &error.to_string());
            Pause::default()
        }
    }
}

/// A VU of the open model's pool: per top-level taskset, the path of tasksets it is in (the top one first, then
/// each nested taskset it entered), with its place in each sequence.
pub(crate) struct PooledVu<B: Behaviour> {
    pub vu: VuState<B>,
    paths: Vec<Vec<(usize, usize)>>,
}

impl<B: Behaviour> PooledVu<B> {
    pub(crate) fn new(common: &VuCommon<B>, id: u64) -> PooledVu<B> {
        let n = common.plan.tasksets.len();
        PooledVu { vu: VuState::new(common, id), paths: vec![Vec::new(); n] }
    }
}

/// Runs one scheduled task of the open model on a pooled VU.
///
/// The start picks a top-level taskset by weight and runs one task where the VU is in it: in the innermost nested
/// taskset it entered there. A task that is a nested taskset enters it (with `on_start`) and runs one of its tasks.
/// `interrupt()` leaves the innermost taskset only.
pub(crate) async fn iteration<B: Behaviour>(common: &Rc<VuCommon<B>>, pooled: &mut PooledVu<B>, scheduled: Instant) {
    let top = common.tasksets.pick(&mut pooled.vu.rng);
    if pooled.paths[top].is_empty() && !enter_open(common, pooled, top, top).await {
        // The task cannot run in a taskset the VU could not enter; its start counts as run.
        return;
    }
    loop {
        let Some((ts, cursor)) = pooled.paths[top].last_mut() else { return };
        let ts = *ts;
        let Some(order) = &common.orders[ts] else { unreachable!("a reachable taskset has a task to run") };
        let task = order.next(&mut pooled.vu.rng, cursor);
        if let Some(child) = common.plan.nested_taskset(ts, task) {
            common.recorder.slot(ts, Slot::Task(task).index(&common.plan.tasksets[ts]), None);
            if !enter_open(common, pooled, top, child).await {
                return;
            }
            continue;
        }
        let next = call(common, &mut pooled.vu, ts, Slot::Task(task), Some(scheduled)).await;
        if matches!(next, Next::Leave | Next::LeaveNow) {
            leave_open(common, pooled, top).await;
        }
        return;
    }
}

/// Enters taskset `ts` under top-level taskset `top` (running its `on_start`); false when `on_start` failed.
async fn enter_open<B: Behaviour>(common: &Rc<VuCommon<B>>, pooled: &mut PooledVu<B>, top: usize, ts: usize) -> bool {
    if common.plan.tasksets[ts].has_on_start
        && call(common, &mut pooled.vu, ts, Slot::OnStart, None).await != Next::Continue
    {
        return false;
    }
    pooled.paths[top].push((ts, 0));
    true
}

/// Leaves every taskset a pooled VU is in (at the end of the run), the innermost first.
pub(crate) async fn retire<B: Behaviour>(common: &Rc<VuCommon<B>>, pooled: &mut PooledVu<B>) {
    for top in 0..pooled.paths.len() {
        while !pooled.paths[top].is_empty() && !common.kill.is_cancelled() {
            leave_open(common, pooled, top).await;
        }
    }
}

/// Leaves the innermost taskset the VU is in under `top`, with its `on_stop`.
async fn leave_open<B: Behaviour>(common: &Rc<VuCommon<B>>, pooled: &mut PooledVu<B>, top: usize) {
    let Some((ts, _)) = pooled.paths[top].pop() else { return };
    if common.plan.tasksets[ts].has_on_stop {
        call(common, &mut pooled.vu, ts, Slot::OnStop, None).await;
    }
    if let Some(state) = pooled.vu.state.as_mut() {
        common.behaviour.leave(state, ts);
    }
}

/// Runs one slot on a fiber and records it.
async fn call<B: Behaviour>(
    common: &Rc<VuCommon<B>>,
    vu: &mut VuState<B>,
    ts: usize,
    slot: Slot,
    scheduled: Option<Instant>,
) -> Next {
    let spec = &common.plan.tasksets[ts];
    let slot_index = slot.index(spec);
    let mut state = vu.state.take().unwrap_or_else(|| common.behaviour.new_vu(vu.id));
    let on_fiber = common.clone();
    let call = Call { taskset: ts, slot, scheduled };
    let result = common
        .pool
        .run(
            move || {
                let outcome = on_fiber.behaviour.call(&mut state, call);
                (state, outcome)
            },
            &common.kill,
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
            common.recorder.slot(ts, slot_index, Some((&location, &message)));
            return Next::Leave;
        }
    };
    match outcome {
        Outcome::Done => {
            common.recorder.slot(ts, slot_index, None);
            Next::Continue
        }
        Outcome::Interrupted => {
            common.recorder.slot(ts, slot_index, None);
            Next::Leave
        }
        Outcome::InterruptedNow => {
            common.recorder.slot(ts, slot_index, None);
            Next::LeaveNow
        }
        Outcome::Failed(e) => {
            common.recorder.slot(ts, slot_index, Some((&e.location, &e.message)));
            // An error in on_start leaves the taskset; an error in a task is counted and the VU goes on.
            if slot == Slot::OnStart { Next::Leave } else { Next::Continue }
        }
        Outcome::Cancelled => Next::Exit,
    }
}

/// Waits `pause`, or until the run stops or this VU is asked to stop. Returns false when it should stop.
async fn think<B: Behaviour>(common: &VuCommon<B>, stop: &VuStop, pause: Duration) -> bool {
    if pause.is_zero() {
        // Let the worker's other VUs run now and then even when nobody waits. Whether to stop is asked where the
        // next task or visit starts (`run_task`, `run_closed`'s loop), not here as well.
        tokio::task::consume_budget().await;
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(pause) => !stop.stopped.get(),
        () = common.stop.cancelled() => false,
        () = stop.wake.notified() => false,
    }
}
