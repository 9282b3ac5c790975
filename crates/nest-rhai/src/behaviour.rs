//! Running compiled tasksets for the scheduler: the [`nest_core::Behaviour`] of scripts.
//!
//! Each worker compiles its own copy of every taskset (Rhai values are not shared across threads), with one engine
//! per taskset and one tiny precompiled call script per task and hook. A call sets the VU as the fiber's local
//! value, runs the call, and turns the result into an [`Outcome`]: done, interrupted, failed with `file:line:col`,
//! or cancelled by a stop. The global `setup()` and `teardown()` run the same way, as a VU with id -1; the value
//! `setup()` returns crosses threads as JSON and every worker reads it back as `shared`.
//!
//! Each VU keeps Rhai's run-time state (the [`GlobalRuntimeState`] and the function-resolution [`Caches`]) from one
//! call to the next: the task function and the API functions it calls (`client.get`, ...) are then resolved once
//! per VU and taskset instead of at every call. A call that fails drops that state, so the next one starts afresh.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use nest_core::fiber;
use nest_core::{Behaviour, BehaviourFactory, Call, Outcome, Shared, Slot, TaskError, WorkerContext};
use nest_data::DataRegistry;
use nest_http::{ClientConfig, VuClient};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rhai::{AST, Caches, Dynamic, Engine, EvalAltResult, EvalContext, FnPtr, GlobalRuntimeState, Map, Scope};

use crate::catalog::Catalog;
use crate::declare::{self, DeclarationCell};
use crate::engine::{VuCtx, WorkerEnv, new_engine};
use crate::error::{CALL_SOURCE, locate};

/// Builds a [`ScriptBehaviour`] on each worker thread.
pub struct ScriptFactory {
    catalog: Catalog,
    http: Arc<ClientConfig>,
    base: Option<url::Url>,
    data: Arc<DataRegistry>,
}

impl ScriptFactory {
    pub(crate) fn new(catalog: Catalog, http: Arc<ClientConfig>, base: Option<url::Url>) -> ScriptFactory {
        ScriptFactory { catalog, http, base, data: Arc::default() }
    }

    /// Serves `data` to the scripts: the pools every worker shares (none by default). Check the scripts' pool
    /// names first with [`Catalog::check_data`].
    pub fn with_data(mut self, data: Arc<DataRegistry>) -> ScriptFactory {
        self.data = data;
        self
    }
}

/// One script function a slot calls, with the place to blame when Rhai cannot place an error.
struct Callable {
    function: String,
    fallback: String,
}

/// One taskset as a worker runs it.
struct Loaded {
    engine: Engine,
    name: Rc<str>,
    path: String,
    /// One call per slot, by [`Slot::index`]; `None` for an absent hook.
    calls: Vec<Option<Callable>>,
    setup: Option<Callable>,
    teardown: Option<Callable>,
    /// The taskset declared `discard_bodies()`.
    discard_bodies: bool,
    /// The compiled script and its `wait_time(|| ...)` closure with the closure's place.
    ast: AST,
    wait_fn: Option<(FnPtr, String)>,
}

/// The tasksets of one worker.
pub struct ScriptBehaviour {
    tasksets: Vec<Loaded>,
    env: Rc<WorkerEnv>,
    /// The worker, for each VU's seed.
    worker: WorkerContext,
    /// The taskset folder, where modules resolve from.
    dir: std::path::PathBuf,
}

/// One VU's script state: its HTTP session, its `user` map, its id, and Rhai's state between its calls.
pub struct ScriptVu(Rc<VuCtx>, Option<Box<Warm>>);

/// Rhai's run-time state of one VU's last successful call, for the next call of the same taskset.
struct Warm {
    taskset: usize,
    global: GlobalRuntimeState,
    caches: Caches,
}

impl BehaviourFactory for ScriptFactory {
    type Behaviour = ScriptBehaviour;

    fn build(&self, worker: &WorkerContext) -> Result<ScriptBehaviour, String> {
        let env = Rc::new(WorkerEnv {
            recorder: worker.recorder.clone(),
            stop: worker.stop.clone(),
            http: self.http.clone(),
            base: self.base.clone(),
            rng: RefCell::new(SmallRng::seed_from_u64(worker.seed)),
            stack_margin: nest_core::fiber::FiberPool::default_stack_size() / 8,
            shared: RefCell::new(Dynamic::UNIT),
            data: self.data.clone(),
            confine: self.catalog.confine.clone(),
            limits: self.catalog.limits,
        });
        // The top level was run (and its log lines shown) when the catalog was checked: stay quiet here.
        let _quiet = crate::api::QuietLoad::new();
        let mut tasksets = Vec::with_capacity(self.catalog.tasksets.len());
        for def in &self.catalog.tasksets {
            let cell = DeclarationCell::default();
            let mut engine = new_engine(&env, &self.catalog.dir, &cell);
            let compiled =
                declare::compile(&engine, &cell, &def.name, &def.path, &def.source).map_err(|e| e.to_string())?;
            engine.register_global_module(compiled.module);
            // A task is called from Rust (`Warm`), one call level deeper than from a script: give that level back, so
            // that a task nests MAX_CALL_LEVELS deep as the limit's message says. (A `wait_time` closure, called
            // the other way, gets one level more.)
            engine.set_max_call_levels(crate::engine::MAX_CALL_LEVELS + 1);
            let callable = |function: &str| -> Result<Callable, String> {
                let fallback = compiled.fn_locations.get(function).cloned().unwrap_or_else(|| def.path.clone());
                Ok(Callable { function: function.to_owned(), fallback })
            };
            let spec = &compiled.spec;
            let calls = (0..spec.tasks.len() + 2)
                .map(|index| match Slot::from_index(index, spec) {
                    // A nested taskset is run by the scheduler, not called.
                    Slot::Task(i) => spec.tasks[i].nested.is_none().then_some(spec.tasks[i].name.as_str()),
                    Slot::OnStart => spec.has_on_start.then_some("on_start"),
                    Slot::OnStop => spec.has_on_stop.then_some("on_stop"),
                })
                .map(|function| function.map(callable).transpose())
                .collect::<Result<Vec<_>, String>>()?;
            let setup = compiled.has_setup.then(|| callable("setup")).transpose()?;
            let teardown = compiled.has_teardown.then(|| callable("teardown")).transpose()?;
            let (name, path) = (def.name.as_str().into(), def.path.clone());
            let (ast, wait_fn, discard_bodies) = (compiled.ast, compiled.wait_fn, compiled.discard_bodies);
            tasksets.push(Loaded { engine, name, path, calls, setup, teardown, discard_bodies, ast, wait_fn });
        }
        Ok(ScriptBehaviour { tasksets, env, worker: worker.clone(), dir: self.catalog.dir.clone() })
    }

    /// `setup()`'s value is plain data already (checked when it returned): JSON carries it to other processes.
    fn encode_shared(&self, shared: &Shared) -> Result<Vec<u8>, String> {
        let json = shared.downcast_ref::<serde_json::Value>().ok_or("setup(): not a value of a Rhai script")?;
        serde_json::to_vec(json).map_err(|e| format!("setup(): its value cannot be encoded: {e}"))
    }

    fn decode_shared(&self, bytes: &[u8]) -> Result<Shared, String> {
        let json: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("setup(): the value received is not JSON: {e}"))?;
        Ok(Arc::new(json))
    }
}

impl Warm {
    /// A fresh state, as `Engine::eval_ast` starts each evaluation with. Errors Rhai cannot place point at the call.
    fn new(engine: &Engine, taskset: usize) -> Warm {
        let mut global = engine.new_global_runtime_state();
        global.source = Some(CALL_SOURCE.into());
        Warm { taskset, global, caches: Caches::new() }
    }
}

/// The pause a `wait_time(|| ...)` closure returned: a number of seconds, checked like every other duration.
fn wait_seconds(value: &Dynamic) -> Result<Duration, String> {
    crate::api::options::duration(value, "the wait_time() closure's result")
}

impl ScriptBehaviour {
    fn vu(&self, vu_id: i64) -> Rc<VuCtx> {
        Rc::new(VuCtx {
            vu_id,
            rng: RefCell::new(SmallRng::seed_from_u64(self.worker.vu_seed(vu_id as u64))),
            client: VuClient::for_vu(self.env.http.clone(), self.env.base.clone(), vu_id as u64),
            user: Dynamic::from_map(Map::new()).into_shared(),
            env: self.env.clone(),
            taskset: RefCell::new("".into()),
            interrupted: Cell::new(false),
            interrupt_now: Cell::new(false),
            cancelled: Cell::new(false),
            scheduled: Cell::new(None),
            open: Cell::new(false),
            held: RefCell::new(Vec::new()),
            discard_bodies: Cell::new(false),
        })
    }

    /// Runs one call of `loaded` (the taskset at index `taskset`) for `vu`, on the current fiber, with the Rhai state
    /// `warm` kept from the VU's last call when it was of the same taskset.
    fn run(
        &self,
        (taskset, loaded): (usize, &Loaded),
        callable: &Callable,
        vu: &Rc<VuCtx>,
        warm: &mut Option<Box<Warm>>,
    ) -> Result<Dynamic, TaskError> {
        let mut state = match warm.take() {
            Some(state) if state.taskset == taskset => state,
            _ => Box::new(Warm::new(&loaded.engine, taskset)),
        };
        // The operation limit and the fairness yields count from the start of each call.
        state.global.num_operations = 0;
        let result = self.as_vu(loaded, vu, || {
            let Warm { global, caches, .. } = &mut *state;
            EvalContext::new(&loaded.engine, global, caches, &mut Scope::new(), None).call_fn_raw(
                &callable.function,
                false,
                false,
                &mut [],
            )
        });
        let result = match result {
            Ok(value) => {
                *warm = Some(state);
                Ok(value)
            }
            // `exit()` ends the call with its value, as at a script's top level.
            Err(error) if matches!(*error, EvalAltResult::Exit(..)) => {
                let EvalAltResult::Exit(value, _) = *error else { unreachable!("matched above") };
                Ok(value)
            }
            Err(error) => Err(error),
        };
        result.map_err(|error| {
            let (location, message) = locate(&error, &loaded.path, &callable.fallback, &self.dir);
            TaskError { location, message }
        })
    }

    /// Runs `f` with `vu` as the running VU of `loaded`.
    fn as_vu<T>(&self, loaded: &Loaded, vu: &Rc<VuCtx>, f: impl FnOnce() -> T) -> T {
        vu.interrupted.set(false);
        vu.interrupt_now.set(false);
        vu.cancelled.set(false);
        vu.taskset.replace(loaded.name.clone());
        vu.discard_bodies.set(loaded.discard_bodies);
        fiber::set_local(Some(vu.clone()));
        let result = f();
        fiber::set_local(None);
        result
    }

    /// Runs the global hook that `pick` selects, if a taskset defines it.
    fn global(&self, pick: fn(&Loaded) -> Option<&Callable>) -> Result<Option<Dynamic>, TaskError> {
        let Some((loaded, callable)) = self.tasksets.iter().find_map(|l| pick(l).map(|c| (l, c))) else {
            return Ok(None);
        };
        let vu = self.vu(-1);
        let taskset = self.tasksets.iter().position(|l| std::ptr::eq(l, loaded)).unwrap_or_default();
        let result = self.run((taskset, loaded), callable, &vu, &mut None);
        if vu.cancelled.get() {
            return Err(TaskError { location: callable.fallback.clone(), message: "the run was stopped".into() });
        }
        result.map(Some)
    }
}

impl Behaviour for ScriptBehaviour {
    type Vu = ScriptVu;

    fn new_vu(&self, vu_id: u64) -> ScriptVu {
        ScriptVu(self.vu(i64::try_from(vu_id).unwrap_or(i64::MAX)), None)
    }

    fn call(&self, vu: &mut ScriptVu, call: Call) -> Outcome {
        let ScriptVu(vu, warm) = vu;
        let loaded = &self.tasksets[call.taskset];
        let index = match call.slot {
            Slot::Task(i) => i,
            Slot::OnStart => loaded.calls.len() - 2,
            Slot::OnStop => loaded.calls.len() - 1,
        };
        let Some(callable) = &loaded.calls[index] else { return Outcome::Done };
        vu.scheduled.set(call.scheduled);
        vu.open.set(call.scheduled.is_some());
        let result = self.run((call.taskset, loaded), callable, vu, warm);
        vu.open.set(false);
        if vu.cancelled.get() {
            Outcome::Cancelled
        } else if vu.interrupted.get() && vu.interrupt_now.get() {
            Outcome::InterruptedNow
        } else if vu.interrupted.get() {
            Outcome::Interrupted
        } else {
            match result {
                Ok(_) => Outcome::Done,
                Err(error) => Outcome::Failed(error),
            }
        }
    }

    fn wait_time(&self, vu: &mut ScriptVu, taskset: usize) -> Result<Duration, TaskError> {
        let loaded = &self.tasksets[taskset];
        let Some((closure, location)) = &loaded.wait_fn else { return Ok(Duration::ZERO) };
        let result = self.as_vu(loaded, &vu.0, || closure.call::<Dynamic>(&loaded.engine, &loaded.ast, ()));
        if vu.0.cancelled.get() {
            return Ok(Duration::ZERO);
        }
        let value = result.map_err(|error| {
            let (at, message) = locate(&error, &loaded.path, location, &self.dir);
            TaskError { location: at, message: format!("wait_time(): {message}") }
        })?;
        wait_seconds(&value).map_err(|message| TaskError { location: location.clone(), message })
    }

    fn leave(&self, vu: &mut ScriptVu, taskset: usize) {
        // Rows claimed in this taskset go back to their pools (dropping a lease releases its row).
        let name = &self.tasksets[taskset].name;
        vu.0.held.borrow_mut().retain(|held| held.taskset != *name);
    }

    fn setup(&self) -> Result<Option<Shared>, TaskError> {
        let Some(value) = self.global(|l| l.setup.as_ref())? else { return Ok(None) };
        if value.is_unit() {
            return Ok(None);
        }
        let json: serde_json::Value = rhai::serde::from_dynamic(&value).map_err(|e| TaskError {
            location: "setup()".into(),
            message: format!("the value setup() returns must be plain data (maps, arrays, strings, numbers): {e}"),
        })?;
        Ok(Some(Arc::new(json)))
    }

    fn set_shared(&self, shared: Option<Shared>) {
        let value = shared
            .as_ref()
            .and_then(|s| s.downcast_ref::<serde_json::Value>())
            .and_then(|json| rhai::serde::to_dynamic(json).ok())
            .unwrap_or(Dynamic::UNIT);
        *self.env.shared.borrow_mut() = value;
    }

    fn teardown(&self) -> Result<(), TaskError> {
        self.global(|l| l.teardown.as_ref()).map(|_| ())
    }
}
