//! `check(value, #{ name: |v| ... })` and `metric.counter/trend/rate/gauge(name)`: k6's checks and custom metrics.
//!
//! A check records a pass or a fail per name and returns whether all held; it does not fail the request (a script
//! that wants that calls `r.fail(...)`). A closure that raises an error counts as a failed check, and the error is
//! logged with its place once per worker, so a broken check is seen without flooding the terminal. Metrics are
//! handles on a name: declared at a script's top level or created on first use, recorded in the worker's
//! [`Recorder`](nest_core::stats::Recorder) and merged like the built-in figures.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::Path;
use std::rc::Rc;

use nest_core::stats::{CustomError, MetricKind};
use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, INT, Map, NativeCallContext};

use crate::engine::{VuCtx, WorkerEnv};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// The `metric` value of scripts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metrics;

/// A handle on one custom metric.
#[derive(Debug, Clone)]
pub(crate) struct Metric {
    name: Rc<str>,
    kind: MetricKind,
}

/// Distinct check errors logged per worker before the rest go unlogged.
const MAX_LOGGED: usize = 100;

thread_local! {
    /// The check errors this worker has logged, by (check name, location, message).
    static LOGGED: RefCell<HashSet<(String, String, String)>> = RefCell::new(HashSet::new());
}

pub(super) fn register(engine: &mut Engine, env: &Rc<WorkerEnv>) {
    engine.register_fn("check", check);
    engine.register_type_with_name::<Metrics>("Metrics");
    engine.register_type_with_name::<Metric>("Metric");
    for kind in [MetricKind::Counter, MetricKind::Trend, MetricKind::Rate, MetricKind::Gauge] {
        let e = env.clone();
        engine.register_fn(kind.word(), move |_: Metrics, name: &str| -> Res<Metric> {
            // Declaring records an empty metric, so a metric declared but never used still shows in the report.
            e.recorder.metric(name, kind, |_| Ok(())).map_err(|err| refused(kind, name, &err))?;
            Ok(Metric { name: name.into(), kind })
        });
    }
    engine.register_fn("add", |m: &mut Metric, n: INT| m.record("add", |v| v.add(n as f64)));
    engine.register_fn("add", |m: &mut Metric, n: rhai::FLOAT| m.record("add", |v| v.add(n)));
    engine.register_fn("add", |m: &mut Metric, yes: bool| m.record("add", |v| v.add_bool(yes)));
    engine.register_fn("set", |m: &mut Metric, n: INT| m.record("set", |v| v.set(n as f64)));
    engine.register_fn("set", |m: &mut Metric, n: rhai::FLOAT| m.record("set", |v| v.set(n)));
    engine.register_get("name", |m: &mut Metric| m.name.to_string());
    engine.register_fn("to_string", |m: &mut Metric| format!("{}(\"{}\")", m.kind.word(), m.name));
    engine.register_fn("to_debug", |m: &mut Metric| format!("{}(\"{}\")", m.kind.word(), m.name));
    engine.register_fn("to_string", |_: &mut Metrics| "metric".to_owned());
    engine.register_fn("to_debug", |_: &mut Metrics| "metric".to_owned());
}

fn refused(kind: MetricKind, name: &str, err: &CustomError) -> Box<EvalAltResult> {
    format!("metric.{}(\"{name}\"): {err}", kind.word()).into()
}

impl Metric {
    fn record(
        &mut self,
        what: &str,
        update: impl FnOnce(&mut nest_core::stats::MetricValue) -> Result<(), CustomError>,
    ) -> Res<()> {
        // Values recorded at a script's top level would be counted once per worker: only VUs record.
        let vu = VuCtx::current_named(|| format!("{}(\"{}\").{what}", self.kind.word(), self.name))?;
        vu.env.recorder.metric(&self.name, self.kind, update).map_err(|err| match err {
            CustomError::BadValue(text) => format!("{}(\"{}\").{what}: {text}", self.kind.word(), self.name).into(),
            other => refused(self.kind, &self.name, &other),
        })
    }
}

/// `check(value, #{ name: |v| bool, ... })`: records each check, true when all held.
fn check(ctx: NativeCallContext, value: Dynamic, checks: Map) -> Res<bool> {
    let vu = VuCtx::current("check()")?;
    let mut all = true;
    for (name, test) in checks {
        let passed = match run_one(&ctx, &name, &value, test)? {
            Ok(passed) => passed,
            Err((location, message)) => {
                log_once(&name, &location, &message);
                false
            }
        };
        vu.env.recorder.check(&name, passed).map_err(|e| format!("check \"{name}\": {e}"))?;
        all &= passed;
    }
    Ok(all)
}

/// One check's outcome, or the place and text of its error. Errors that stop the VU (the run stopping,
/// `interrupt()`) go up unchanged.
fn run_one(ctx: &NativeCallContext, name: &str, value: &Dynamic, test: Dynamic) -> Res<Result<bool, (String, String)>> {
    if let Ok(passed) = test.as_bool() {
        return Ok(Ok(passed));
    }
    let Some(f) = test.clone().try_cast::<FnPtr>() else {
        return Err(format!(
            "check \"{name}\": expected a closure such as |r| r.status == 200, or true/false, not {}",
            test.type_name()
        )
        .into());
    };
    match f.call_within_context::<Dynamic>(ctx, (value.clone(),)) {
        Ok(result) => match result.as_bool() {
            Ok(passed) => Ok(Ok(passed)),
            Err(other) => Ok(Err(("check".into(), format!("check \"{name}\" returned {other}, not true or false")))),
        },
        Err(err) if matches!(err.unwrap_inner(), EvalAltResult::ErrorTerminated(..)) => Err(err),
        Err(err) => {
            let file = ctx.call_source().unwrap_or("script");
            Ok(Err(crate::error::locate(&err, file, file, Path::new(""))))
        }
    }
}

fn log_once(name: &str, location: &str, message: &str) {
    let first = LOGGED.with_borrow_mut(|seen| {
        seen.len() < MAX_LOGGED && seen.insert((name.to_owned(), location.to_owned(), message.to_owned()))
    });
    if first {
        super::log_line(&format!("check \"{name}\" failed with an error at {location}: {message} (logged once)"));
    }
}
