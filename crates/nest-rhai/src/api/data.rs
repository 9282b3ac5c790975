//! `data`: the run's test data pools as scripts see them.
//!
//! `data.claim("users")` suspends only the calling VU until a row is free (in arrival order), and returns the row
//! as a map; the VU keeps the [`Lease`] together with the taskset it claimed in, so the row goes back on
//! `data.release`, when the VU leaves that taskset, or when the VU itself goes away (stopped, killed, or lost in a
//! crash), whichever comes first. `data.next`, `data.random` and `data.len` read without claiming.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use nest_core::fiber::{self, Cancelled};
use nest_data::{Lease, Pool, Row, RowId};
use rhai::{Dynamic, Engine, EvalAltResult, INT, Map};

use super::options::{duration, seconds};
use crate::engine::{VuCtx, terminate};

/// The `data` value of scripts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Data;

/// A row a VU holds, and the taskset it was claimed in.
pub(crate) struct Held {
    pub taskset: Rc<str>,
    pub lease: Lease,
}

type Res<T> = Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Data>("Data");
    engine.register_fn("claim", |_: Data, name: &str| claim(name, None));
    engine.register_fn("claim", |_: Data, name: &str, opts: Map| claim(name, Some(opts)));
    engine.register_fn("release", |_: Data, name: &str, row: Dynamic| release(name, row));
    engine.register_fn("next", |_: Data, name: &str| -> Res<Dynamic> {
        let (_, pool) = pool("next", name)?;
        Ok(row_value(pool.row(pool.next().ok_or_else(|| empty("next", name))?)))
    });
    engine.register_fn("random", |_: Data, name: &str| -> Res<Dynamic> {
        let (vu, pool) = pool("random", name)?;
        let picked = pool.random(&mut *vu.rng.borrow_mut()).ok_or_else(|| empty("random", name))?;
        Ok(row_value(pool.row(picked)))
    });
    engine.register_fn("len", |_: Data, name: &str| -> Res<INT> {
        let (_, pool) = pool("len", name)?;
        Ok(INT::try_from(pool.len()).unwrap_or(INT::MAX))
    });
    engine.register_fn("to_string", |_: &mut Data| "data".to_owned());
    engine.register_fn("to_debug", |_: &mut Data| "data".to_owned());
}

/// The running VU and the pool `name`, or the error that lists the declared names.
fn pool(method: &str, name: &str) -> Res<(Rc<VuCtx>, Arc<Pool>)> {
    let vu = VuCtx::current("data")?;
    let pool = vu.env.data.get(name).cloned().ok_or_else(|| unknown(&vu.env.data, method, name))?;
    Ok((vu, pool))
}

fn unknown(data: &nest_data::DataRegistry, method: &str, name: &str) -> Box<EvalAltResult> {
    let declared: Vec<&str> = data.names().collect();
    let known =
        if declared.is_empty() { "none is declared".to_owned() } else { format!("declared: {}", declared.join(", ")) };
    format!(
        "data.{method}(\"{name}\"): no data set named `{name}` ({known}; declare data in nest.yaml `data:` or put a \
         file in the taskset folder's _data/)"
    )
    .into()
}

fn empty(method: &str, name: &str) -> Box<EvalAltResult> {
    format!("data.{method}(\"{name}\"): the data set `{name}` has no row").into()
}

/// `data.claim(name)` and `data.claim(name, #{ timeout: s })`.
fn claim(name: &str, opts: Option<Map>) -> Res<Dynamic> {
    let timeout = match opts {
        Some(opts) => claim_timeout(opts)?,
        None => None,
    };
    let (vu, pool) = pool("claim", name)?;
    if pool.is_empty() {
        return Err(empty("claim", name));
    }
    let lease = match fiber::suspend(pool.claim(timeout)) {
        Ok(Some(lease)) => lease,
        // The wait timed out: the pool counts it as exhausted.
        Ok(None) => return Ok(Dynamic::UNIT),
        Err(Cancelled::Stopped) => {
            vu.cancelled.set(true);
            return Err(terminate("run stopped"));
        }
        Err(Cancelled::NotInFiber) => {
            return Err("`data.claim` can only be used inside a task, on_start or on_stop".into());
        }
    };
    let value = row_value(pool.row(lease.row()));
    let taskset = vu.taskset.borrow().clone();
    vu.held.borrow_mut().push(Held { taskset, lease });
    Ok(value)
}

fn claim_timeout(opts: Map) -> Res<Option<Duration>> {
    let mut timeout = None;
    for (key, value) in opts {
        if key != "timeout" {
            return Err(format!("unknown option `{key}` for data.claim: the only option is `timeout` (seconds)").into());
        }
        if seconds(&value).is_none() {
            return Err(format!("data.claim option `timeout` is a number of seconds >= 0, not {value}").into());
        }
        timeout = Some(duration(&value, "data.claim option `timeout`")?);
    }
    Ok(timeout)
}

/// `data.release(name, row)`: gives back a row this VU holds. `()` (a claim that timed out) is ignored.
fn release(name: &str, row: Dynamic) -> Res<()> {
    let (vu, pool) = pool("release", name)?;
    if row.is_unit() {
        return Ok(());
    }
    let json: Option<serde_json::Value> = rhai::serde::from_dynamic(&row).ok();
    let mut held = vu.held.borrow_mut();
    let found = held.iter().rposition(|h| {
        Arc::ptr_eq(h.lease.pool(), &pool) && json.as_ref().is_some_and(|j| same_row(&pool, h.lease.row(), j))
    });
    match found {
        Some(at) => {
            let released = held.remove(at);
            drop(held);
            drop(released);
            Ok(())
        }
        None => Err(format!(
            "data.release(\"{name}\", row): this VU holds no such row of `{name}` (release the row that data.claim \
             returned, once, without changing its fields)"
        )
        .into()),
    }
}

/// Whether `value` is row `id`: every field of the row is there with the same value (added keys are allowed).
fn same_row(pool: &Pool, id: RowId, value: &serde_json::Value) -> bool {
    match (pool.row(id), value) {
        (Row::Csv(row), serde_json::Value::Object(map)) => {
            row.fields().all(|(k, v)| map.get(k).and_then(serde_json::Value::as_str) == Some(v))
        }
        (Row::Json(serde_json::Value::Object(fields)), serde_json::Value::Object(map)) => {
            fields.iter().all(|(k, v)| map.get(k) == Some(v))
        }
        (Row::Json(original), value) => original == value,
        _ => false,
    }
}

/// A row as a script value: a map of strings for CSV, the JSON value itself (maps, arrays, numbers...) for JSON.
fn row_value(row: Row<'_>) -> Dynamic {
    match row {
        Row::Csv(row) => {
            let map: Map = row.fields().map(|(k, v)| (k.into(), Dynamic::from(v.to_owned()))).collect();
            Dynamic::from_map(map)
        }
        Row::Json(value) => rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT),
    }
}
