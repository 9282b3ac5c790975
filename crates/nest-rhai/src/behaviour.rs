//! Running compiled tasksets for the scheduler: the [`nest_core::Behaviour`] of scripts.
//!
//! Each worker compiles its own copy of every taskset (Rhai values are not shared across threads), with one engine
//! per taskset and one tiny precompiled call script per task and hook. A call sets the VU as the fiber's local
//! value, runs the call, and turns the result into an [`Outcome`]: done, interrupted, failed with `file:line:col`,
//! or cancelled by a stop.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use nest_core::fiber;
use nest_core::{Behaviour, BehaviourFactory, Outcome, Slot, TaskError, WorkerContext};
use nest_http::{ClientConfig, VuClient};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rhai::{AST, Dynamic, Engine, Map};

use crate::catalog::Catalog;
use crate::declare::{self, DeclarationCell};
use crate::engine::{VuCtx, WorkerEnv, new_engine};
use crate::error::{CALL_SOURCE, locate};

/// Builds a [`ScriptBehaviour`] on each worker thread.
pub struct ScriptFactory {
    catalog: Catalog,
    http: Arc<ClientConfig>,
    base: Option<url::Url>,
}

impl ScriptFactory {
    pub(crate) fn new(
        catalog: Catalog,
        http: Arc<ClientConfig>,
        base: Option<url::Url>,
    ) -> ScriptFactory {
        ScriptFactory {
            catalog,
            http,
            base,
        }
    }
}

/// One taskset as a worker runs it.
struct Loaded {
    engine: Engine,
    name: Rc<str>,
    path: String,
    /// One call script per slot, by [`Slot::index`]; `None` for an absent hook.
    calls: Vec<Option<AST>>,
    /// Where each slot's function is defined, for errors Rhai cannot place.
    fallbacks: Vec<String>,
}

/// The tasksets of one worker.
pub struct ScriptBehaviour {
    tasksets: Vec<Loaded>,
    env: Rc<WorkerEnv>,
}

impl BehaviourFactory for ScriptFactory {
    type Behaviour = ScriptBehaviour;

    fn build(&self, worker: &WorkerContext) -> Result<ScriptBehaviour, String> {
        let env = Rc::new(WorkerEnv {
            recorder: worker.recorder.clone(),
            stop: worker.stop.clone(),
            http: self.http.clone(),
            base: self.base.clone(),
            rng: RefCell::new(SmallRng::from_rng(&mut rand::rng())),
            stack_margin: nest_core::fiber::FiberPool::default_stack_size() / 8,
        });
        let mut tasksets = Vec::with_capacity(self.catalog.tasksets.len());
        for def in &self.catalog.tasksets {
            let cell = DeclarationCell::default();
            let mut engine = new_engine(&env, &self.catalog.dir, &cell);
            let compiled = declare::compile(&engine, &cell, &def.name, &def.path, &def.source)
                .map_err(|e| e.to_string())?;
            engine.register_global_module(compiled.module);
            let spec = &compiled.spec;
            let slots = spec.tasks.len() + 2;
            let mut calls = Vec::with_capacity(slots);
            let mut fallbacks = Vec::with_capacity(slots);
            for index in 0..slots {
                let function = match Slot::from_index(index, spec) {
                    Slot::Task(i) => Some(spec.tasks[i].name.as_str()),
                    Slot::OnStart => spec.has_on_start.then_some("on_start"),
                    Slot::OnStop => spec.has_on_stop.then_some("on_stop"),
                };
                let call = function
                    .map(|f| {
                        let mut ast = engine
                            .compile(format!("{f}()"))
                            .map_err(|e| e.to_string())?;
                        ast.set_source(CALL_SOURCE);
                        Ok::<_, String>(ast)
                    })
                    .transpose()?;
                calls.push(call);
                fallbacks.push(location_of(&compiled.fn_locations, function, &def.path));
            }
            tasksets.push(Loaded {
                engine,
                name: def.name.as_str().into(),
                path: def.path.clone(),
                calls,
                fallbacks,
            });
        }
        Ok(ScriptBehaviour { tasksets, env })
    }
}

fn location_of(locations: &HashMap<String, String>, function: Option<&str>, path: &str) -> String {
    function
        .and_then(|f| locations.get(f).cloned())
        .unwrap_or_else(|| path.to_owned())
}

/// One VU's script state: its HTTP session, its `user` map, its id.
pub struct ScriptVu(Rc<VuCtx>);

impl Behaviour for ScriptBehaviour {
    type Vu = ScriptVu;

    fn new_vu(&self, vu_id: u64) -> ScriptVu {
        ScriptVu(Rc::new(VuCtx {
            vu_id: i64::try_from(vu_id).unwrap_or(i64::MAX),
            client: VuClient::new(self.env.http.clone(), self.env.base.clone()),
            user: Dynamic::from_map(Map::new()).into_shared(),
            env: self.env.clone(),
            taskset: RefCell::new("".into()),
            interrupted: Cell::new(false),
            cancelled: Cell::new(false),
        }))
    }

    fn call(&self, vu: &mut ScriptVu, taskset: usize, slot: Slot) -> Outcome {
        let vu = &vu.0;
        let loaded = &self.tasksets[taskset];
        let index = match slot {
            Slot::Task(i) => i,
            Slot::OnStart => loaded.calls.len() - 2,
            Slot::OnStop => loaded.calls.len() - 1,
        };
        let Some(call) = &loaded.calls[index] else {
            return Outcome::Done;
        };
        vu.interrupted.set(false);
        vu.cancelled.set(false);
        vu.taskset.replace(loaded.name.clone());
        fiber::set_local(Some(vu.clone()));
        let result = loaded.engine.eval_ast::<Dynamic>(call);
        fiber::set_local(None);
        if vu.cancelled.get() {
            Outcome::Cancelled
        } else if vu.interrupted.get() {
            Outcome::Interrupted
        } else {
            match result {
                Ok(_) => Outcome::Done,
                Err(error) => {
                    let (location, message) =
                        locate(&error, &loaded.path, &loaded.fallbacks[index]);
                    Outcome::Failed(TaskError { location, message })
                }
            }
        }
    }
}
