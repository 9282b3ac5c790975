//! Small helpers scripts need all the time: random values, ids, time, pauses, environment, logging, `interrupt()`.
//!
//! `sleep` suspends only the calling VU (and ends early when the run stops); `interrupt` unwinds the call in a way
//! `try`/`catch` cannot swallow, so a VU always leaves its taskset when asked (`interrupt(false)`: without waiting).

use std::io::Write;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use nest_core::fiber::{self, Cancelled};
use rand::Rng;
use rand::rngs::SmallRng;
use rhai::{Array, Dynamic, Engine, EvalAltResult, INT, NativeCallContext};

use super::options::{duration_named, seconds};
use crate::engine::{VuCtx, WorkerEnv, terminate};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Draws from the running VU's own stream (`setup()` and `teardown()` have one too), or from the worker's outside
/// any VU (a file's top level).
fn draw<T>(env: &WorkerEnv, f: impl FnOnce(&mut SmallRng) -> T) -> T {
    match fiber::local::<VuCtx>() {
        Some(vu) => f(&mut vu.rng.borrow_mut()),
        None => f(&mut env.rng.borrow_mut()),
    }
}

pub(super) fn register(engine: &mut Engine, env: &Rc<WorkerEnv>) {
    let e = env.clone();
    engine.register_fn("rand", move |a: INT, b: INT| -> Res<INT> {
        if a > b {
            return Err(format!("rand({a}, {b}): the first bound must not be larger than the second").into());
        }
        Ok(draw(&e, |rng| rng.random_range(a..=b)))
    });
    let e = env.clone();
    engine.register_fn("random", move || -> f64 { draw(&e, |rng| rng.random()) });
    let e = env.clone();
    engine.register_fn("choice", move |items: Array| -> Res<Dynamic> {
        if items.is_empty() {
            return Err("choice() needs a non-empty array".into());
        }
        let at = draw(&e, |rng| rng.random_range(0..items.len()));
        Ok(items[at].clone())
    });
    engine.register_fn("uuid", || uuid::Uuid::new_v4().to_string());
    engine.register_fn("now", || SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()));
    engine.register_fn("env", |name: &str| std::env::var(name).map_or(Dynamic::UNIT, Dynamic::from));
    engine.register_fn("log", |ctx: NativeCallContext, value: Dynamic| {
        // Use the script's own `to_string` (registered for responses and custom types) before Rust's Display.
        let text = ctx.call_native_fn::<String>("to_string", (value.clone(),)).unwrap_or_else(|_| value.to_string());
        log_line(&text)
    });
    engine.register_fn("sleep", |secs: Dynamic| sleep(&secs));
    // Rhai's core package has a `sleep(FLOAT)` and a `sleep(INT)` that block the thread, and an exact parameter
    // type wins over `Dynamic`: these overloads make `sleep(0.5)` and `sleep(1)` suspend only the VU.
    engine.register_fn("sleep", |secs: rhai::FLOAT| sleep(&Dynamic::from_float(secs)));
    engine.register_fn("sleep", |secs: INT| sleep(&Dynamic::from_int(secs)));
    engine.register_fn("interrupt", || interrupt(true));
    // `interrupt(false)`: leave without waiting the think time of where the VU returns to.
    engine.register_fn("interrupt", interrupt);
}

fn interrupt(wait: bool) -> Res<()> {
    let vu = VuCtx::current("interrupt()")?;
    vu.interrupted.set(true);
    vu.interrupt_now.set(!wait);
    Err(terminate("interrupt"))
}

fn sleep(secs: &Dynamic) -> Res<()> {
    let pause = duration_named(secs, || match seconds(secs) {
        Some(n) => format!("sleep({n:?})"),
        None => "sleep()".to_owned(),
    })?;
    let vu = VuCtx::current("sleep()")?;
    let stop = vu.env.stop.clone();
    match fiber::suspend(async move {
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.cancelled() => {}
        }
    }) {
        Ok(()) => Ok(()),
        Err(Cancelled::Stopped) => {
            vu.cancelled.set(true);
            Err(terminate("run stopped"))
        }
        Err(Cancelled::NotInFiber) => Err("sleep() can only be used inside a task, on_start or on_stop".into()),
    }
}

thread_local! {
    /// Set while workers compile their copies of the tasksets: the top level already ran (and logged) once.
    static QUIET_LOAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Silences top-level log lines on this thread while it lives.
pub(crate) struct QuietLoad;

impl QuietLoad {
    pub(crate) fn new() -> QuietLoad {
        QUIET_LOAD.set(true);
        QuietLoad
    }
}

impl Drop for QuietLoad {
    fn drop(&mut self) {
        QUIET_LOAD.set(false);
    }
}

/// Prints a script's log line with the VU and taskset it came from (or `load` at a script's top level).
pub(crate) fn log_line(text: &str) {
    let origin = match fiber::local::<VuCtx>() {
        Some(vu) if vu.vu_id < 0 => format!("global {}", vu.taskset.borrow()),
        Some(vu) => format!("vu {} {}", vu.vu_id, vu.taskset.borrow()),
        None if QUIET_LOAD.get() => return,
        None => "load".to_owned(),
    };
    // One write per line, so lines from two workers do not interleave mid-line.
    let line = format!("[{origin}] {text}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
