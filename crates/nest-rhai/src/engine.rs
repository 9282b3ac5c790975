//! One configured Rhai engine, and the state host functions find at run time.
//!
//! Every taskset gets its own `Engine` on every worker (so that two tasksets may both define `browse`), configured
//! the same way: the taskset API, an operation limit per call, a call-depth limit, a stack guard that ends runaway
//! recursion before it reaches the fiber's guard page, and a fairness yield every few thousand operations so one
//! busy script cannot starve the other VUs of its worker.
//!
//! Script functions cannot see outer variables in Rhai, so `client`, `data`, `user` and `vu_id` are served by a
//! variable resolver from the VU whose call is running (the fiber-local [`VuCtx`]). A closure made at the top level
//! (`wait_time(|| user.think)`) captures a stand-in for `user`, `vu_id` and `shared` that resolves the same way.

#![allow(deprecated)] // `Engine::on_var` is marked volatile, not deprecated.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use nest_core::fiber;
use nest_core::stats::Recorder;
use nest_http::{ClientConfig, VuClient};
use rand::rngs::SmallRng;
use rhai::module_resolvers::FileModuleResolver;
use rhai::{Dynamic, Engine, EvalAltResult, Position};
use rhai::{Module, ModuleResolver, Shared};
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::declare::DeclarationCell;

/// Operations one call of a task or hook may run before it is stopped as a runaway.
pub const MAX_OPERATIONS: u64 = 10_000_000;
/// Script call depth allowed (the same in debug and release builds).
pub const MAX_CALL_LEVELS: usize = 64;
/// Expression nesting allowed at a script's top level.
pub const MAX_EXPR_DEPTH: usize = 64;
/// Expression nesting allowed inside functions.
pub const MAX_FN_EXPR_DEPTH: usize = 32;
/// Operations between two fairness yields.
const YIELD_EVERY: u64 = 4096;

/// How large one script value may grow, so that a runaway (`s += s` in a loop) fails its task with its place
/// instead of taking the machine's memory. Settings: `max_string_size`, `max_array_size`, `max_map_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Bytes in one string [default: 16 MiB].
    pub max_string_size: usize,
    /// Items in one array or BLOB [default: 1,000,000].
    pub max_array_size: usize,
    /// Entries in one object map [default: 1,000,000].
    pub max_map_size: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        ScriptLimits { max_string_size: 16 << 20, max_array_size: 1_000_000, max_map_size: 1_000_000 }
    }
}

/// What one worker's host functions share: where to record, when to stop, the HTTP settings.
pub(crate) struct WorkerEnv {
    pub recorder: Recorder,
    pub stop: CancellationToken,
    pub http: Arc<ClientConfig>,
    pub base: Option<url::Url>,
    pub rng: RefCell<SmallRng>,
    /// Stop a call when less than this much fiber stack is left.
    pub stack_margin: usize,
    /// What the global `setup()` returned: `shared` in scripts (read-only).
    pub shared: RefCell<Dynamic>,
    /// The run's test data pools (`data` in scripts), shared with every worker.
    pub data: Arc<nest_data::DataRegistry>,
    /// Where `import` may read modules from.
    pub confine: crate::confine::Confine,
    /// Size limits of script values.
    pub limits: ScriptLimits,
}

/// The VU whose call is running: stored as the fiber's local value for the length of each call.
pub(crate) struct VuCtx {
    pub vu_id: i64,
    /// The VU's random stream for `rand`, `random`, `choice` and `data.random`: seeded from its global id, so it
    /// draws the same values on any worker and in any segment.
    pub rng: RefCell<SmallRng>,
    pub client: VuClient,
    /// The VU's `user` map: shared, so that `user.x = ...` writes through.
    pub user: Dynamic,
    pub env: Rc<WorkerEnv>,
    pub taskset: RefCell<Rc<str>>,
    /// The call asked to leave the taskset.
    pub interrupted: Cell<bool>,
    /// It asked with `interrupt(false)`: leave without think time.
    pub interrupt_now: Cell<bool>,
    /// The run stopped under the call.
    pub cancelled: Cell<bool>,
    /// Open model: when the running task was scheduled to start; taken by its first request.
    pub scheduled: Cell<Option<Instant>>,
    /// Open model: the running call is a scheduled task, so its requests record corrected latency.
    pub open: Cell<bool>,
    /// The running taskset declared `discard_bodies()`: responses are streamed and counted, not kept.
    pub discard_bodies: Cell<bool>,
    /// Rows claimed from data pools and not released yet. Dropping the VU releases them.
    pub held: RefCell<Vec<api::Held>>,
}

impl VuCtx {
    /// The running VU, or the error a script gets for using VU state at its top level.
    pub fn current(what: &str) -> Result<Rc<VuCtx>, Box<EvalAltResult>> {
        Self::current_named(|| what.to_owned())
    }

    /// [`VuCtx::current`], with the call's name built only when there is an error to report.
    pub fn current_named(what: impl FnOnce() -> String) -> Result<Rc<VuCtx>, Box<EvalAltResult>> {
        fiber::local::<VuCtx>().ok_or_else(|| {
            format!(
                "`{}` can only be used inside a task, on_start or on_stop, not at the top level of a taskset",
                what()
            )
            .into()
        })
    }
}

/// What a closure created at a script's top level captures for `user`, `vu_id` or `shared`: when the closure runs,
/// it reads the running VU's value instead.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Captured(&'static str);

impl Captured {
    /// The error for using the stand-in itself, at the top level.
    fn misuse(&self) -> Box<EvalAltResult> {
        format!(
            "`{}` can only be used inside a task, on_start, on_stop or a closure, not at the top level of a taskset",
            self.0
        )
        .into()
    }
}

/// The error that unwinds a script when the run stops or the VU leaves; scripts cannot catch it.
pub(crate) fn terminate(reason: &str) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(reason.into(), Position::NONE).into()
}

/// Resolves `import "_common"` from the taskset folder, naming modules by their file so that errors inside them
/// read `tasksets/_common.rhai:3:5` rather than `_common:3:5`.
struct TasksetModules {
    files: FileModuleResolver,
}

impl ModuleResolver for TasksetModules {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let file = self.files.get_file_path(path, source.map(Path::new)).display().to_string();
        match self.files.resolve(engine, source, path, pos) {
            Ok(module) if module.id() == Some(file.as_str()) => Ok(module),
            Ok(module) => {
                let mut named = (*module).clone();
                named.set_id(file);
                Ok(named.into())
            }
            Err(error) => Err(match *error {
                EvalAltResult::ErrorInModule(_, inner, at) => EvalAltResult::ErrorInModule(file, inner, at).into(),
                other => other.into(),
            }),
        }
    }
}

/// Builds an engine for one taskset.
pub(crate) fn new_engine(env: &Rc<WorkerEnv>, taskset_dir: &Path, declaration: &DeclarationCell) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(MAX_OPERATIONS);
    engine.set_max_call_levels(MAX_CALL_LEVELS);
    // Debug builds of Rhai default to half the release depths (32 and 16); use the release ones everywhere so a
    // script that loads in one build loads in the other.
    engine.set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FN_EXPR_DEPTH);
    // 0 would mean "unlimited" to Rhai; a limit of 0 is taken as 1 instead.
    engine.set_max_string_size(env.limits.max_string_size.max(1));
    engine.set_max_array_size(env.limits.max_array_size.max(1));
    engine.set_max_map_size(env.limits.max_map_size.max(1));
    let modules = TasksetModules { files: FileModuleResolver::new_with_path(taskset_dir) };
    engine.set_module_resolver(crate::confine::Confined::new(env.confine.clone(), taskset_dir, modules));

    let margin = env.stack_margin;
    engine.on_progress(move |ops| {
        if let Some(left) = fiber::stack_remaining()
            && left < margin
        {
            return Some(format!("stack overflow: recursion too deep ({} KiB of stack left)", left >> 10).into());
        }
        if ops % YIELD_EVERY == 0 && fiber::in_fiber() && fiber::yield_now().is_err() {
            if let Some(vu) = fiber::local::<VuCtx>() {
                vu.cancelled.set(true);
            }
            return Some("run stopped".into());
        }
        None
    });

    // Rhai reserves the word `shared` (for closures it does not have yet); scripts read the setup() value under that
    // name, so the tokenizer hands it over as a plain identifier, which the variable resolver below serves.
    engine.on_parse_token(|token, _, _| match token {
        rhai::Token::Reserved(word) if word.as_str() == "shared" => rhai::Token::Identifier(word),
        other => other,
    });
    let declaring = declaration.clone();
    engine.register_type_with_name::<Captured>("VU variable (use it inside a task, on_start, on_stop or a closure)");
    // Property access falls back to these: `user.name` at the top level says what is wrong.
    engine.register_indexer_get(|c: &mut Captured, _: &str| -> Result<Dynamic, Box<EvalAltResult>> { Err(c.misuse()) });
    engine.register_indexer_set(|c: &mut Captured, _: &str, _: Dynamic| -> Result<(), Box<EvalAltResult>> {
        Err(c.misuse())
    });
    engine.on_var(move |name, index, context| {
        if !matches!(name, "client" | "data" | "user" | "vu_id" | "shared" | "metric") {
            return Ok(None);
        }
        // A script's own variable of the same name (`let data = r.json();`) wins over the VU's, except the stand-in
        // a closure captured at the top level: that one reads the running VU's value.
        match context.scope().get(name) {
            Some(value) if !value.is::<Captured>() => return Ok(None),
            None if index > 0 => return Ok(None),
            _ => {}
        }
        // Metrics may be declared at a script's top level, so `metric` needs no VU.
        if name == "metric" {
            return Ok(Some(Dynamic::from(api::Metrics)));
        }
        // (Asked once, without taking a reference to the VU: `client`, the usual name, needs nothing more.)
        let in_vu = fiber::has_local::<VuCtx>();
        if !in_vu && declaring.borrow().is_some() {
            // The top level is running: only a closure (`wait_time(|| user.think)`) can use this, and it captures a
            // stand-in here.
            match name {
                "user" => return Ok(Some(Dynamic::from(Captured("user")).into_shared())),
                "vu_id" => return Ok(Some(Dynamic::from(Captured("vu_id")).into_shared())),
                "shared" => return Ok(Some(Dynamic::from(Captured("shared")).into_shared())),
                _ => {}
            }
        }
        match name {
            "client" if in_vu => Ok(Some(Dynamic::from(api::Client))),
            "data" if in_vu => Ok(Some(Dynamic::from(api::Data))),
            "client" | "data" => VuCtx::current(name).map(|_| None),
            "user" => VuCtx::current("user").map(|vu| Some(vu.user.clone())),
            "vu_id" => VuCtx::current("vu_id").map(|vu| Some(Dynamic::from_int(vu.vu_id))),
            _ => VuCtx::current("shared").map(|vu| Some(vu.env.shared.borrow().clone())),
        }
    });
    engine.on_print(api::log_line);
    engine.on_debug(|text, _, _| api::log_line(text));

    api::register(&mut engine, env);
    crate::declare::register(&mut engine, declaration);
    engine
}
