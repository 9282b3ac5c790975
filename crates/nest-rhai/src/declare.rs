//! The top level of a taskset: `weight`, `wait_time`, `task`, and compiling a file into a taskset.
//!
//! `task(3, "shop/details")` with a string that names no function of the file is a nested taskset: the catalog
//! checks the name once every file is compiled. `wait_time(|| ...)` keeps its closure for the workers to call.
//!
//! A script's top level runs once, when it is loaded, to declare what the taskset is. Declarations are checked
//! there (a task weight of 0, a wait time below zero, a task naming a function that does not exist), so a broken
//! taskset is reported with its line and column before any load. At run time these functions are errors.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use nest_core::{TaskSpec, TasksetSpec, WaitTime};
use rhai::{AST, Dynamic, Engine, EvalAltResult, FnPtr, INT, Module, NativeCallContext, Position, Scope, Shared};

use crate::api::options::{duration, seconds};
use crate::error::LoadError;

/// What a script's top level declared. `Some` only while a top level runs.
pub(crate) type DeclarationCell = Rc<RefCell<Option<Declaration>>>;

/// The declarations of one script.
#[derive(Default, Debug)]
pub(crate) struct Declaration {
    weight: Option<u32>,
    wait: Option<WaitTime>,
    /// `(weight, function or taskset name, place, named by a string)`.
    tasks: Vec<(u32, String, Position, bool)>,
    /// `wait_time(|| ...)`: the closure and the place of the call.
    wait_fn: Option<(FnPtr, Position)>,
    sequential: bool,
    tags: Vec<String>,
    /// Tags of single tasks, by function name.
    task_tags: Vec<(String, Vec<String>, Position)>,
    /// `discard_bodies()`: stream response bodies and only count them.
    discard_bodies: bool,
}

/// A wait time value, as `between(..)` and `constant(..)` return it.
#[derive(Clone, Copy, Debug)]
struct WaitSpec(WaitTime);

type Res<T> = Result<T, Box<EvalAltResult>>;

fn declaring<T>(cell: &DeclarationCell, what: &str, f: impl FnOnce(&mut Declaration) -> Res<T>) -> Res<T> {
    match cell.borrow_mut().as_mut() {
        Some(declaration) => f(declaration),
        None => Err(format!("{what} can only be used at the top level of a taskset").into()),
    }
}

fn non_negative_secs(value: &Dynamic, what: &str) -> Res<Duration> {
    Ok(duration(value, what)?)
}

/// Registers the declaration functions on an engine.
pub(crate) fn register(engine: &mut Engine, cell: &DeclarationCell) {
    engine.register_type_with_name::<WaitSpec>("WaitTime");
    engine.register_fn("between", |a: Dynamic, b: Dynamic| -> Res<WaitSpec> {
        let (a, b) = (non_negative_secs(&a, "between()")?, non_negative_secs(&b, "between()")?);
        if a > b {
            return Err(format!(
                "between({}, {}): the minimum is larger than the maximum",
                a.as_secs_f64(),
                b.as_secs_f64()
            )
            .into());
        }
        Ok(WaitSpec(WaitTime::Between(a, b)))
    });
    engine.register_fn("constant_pacing", |s: Dynamic| -> Res<WaitSpec> {
        let d = non_negative_secs(&s, "constant_pacing()")?;
        if d.is_zero() {
            return Err("constant_pacing(): the interval must be longer than 0 seconds".into());
        }
        Ok(WaitSpec(WaitTime::ConstantPacing(d)))
    });
    engine.register_fn("constant_throughput", |n: Dynamic| -> Res<WaitSpec> {
        match seconds(&n) {
            Some(n) if nest_core::throughput_interval(n).is_ok() => Ok(WaitSpec(WaitTime::ConstantThroughput(n))),
            Some(n) if n > 0.0 && n.is_finite() => Err(format!(
                "constant_throughput({n:?}): n is a number of tasks per second of at least {:.3e} (one task a year)",
                1.0 / nest_core::MAX_DURATION.as_secs_f64()
            )
            .into()),
            _ => Err("constant_throughput(n): n is a number of tasks per second above 0".into()),
        }
    });
    let c = cell.clone();
    engine.register_fn("discard_bodies", move || {
        declaring(&c, "discard_bodies()", |d| {
            d.discard_bodies = true;
            Ok(())
        })
    });
    let c = cell.clone();
    engine.register_fn("sequential", move || {
        declaring(&c, "sequential()", |d| {
            d.sequential = true;
            Ok(())
        })
    });
    let c = cell.clone();
    engine.register_fn("tags", move |tags: rhai::Array| {
        let tags = tag_list(tags)?;
        declaring(&c, "tags()", |d| {
            d.tags.extend(tags);
            Ok(())
        })
    });
    let c = cell.clone();
    engine.register_fn("tags", move |ctx: NativeCallContext, tags: rhai::Array, f: FnPtr| {
        let tags = tag_list(tags)?;
        declaring(&c, "tags()", |d| {
            d.task_tags.push((f.fn_name().to_owned(), tags, ctx.call_position()));
            Ok(())
        })
    });
    engine.register_fn("constant", |s: Dynamic| -> Res<WaitSpec> {
        Ok(WaitSpec(WaitTime::Constant(non_negative_secs(&s, "constant()")?)))
    });
    let c = cell.clone();
    engine.register_fn("wait_time", move |w: WaitSpec| {
        declaring(&c, "wait_time()", |d| match d.wait.replace(w.0) {
            Some(_) => Err("wait_time() is declared twice".into()),
            None => Ok(()),
        })
    });
    let c = cell.clone();
    engine.register_fn("wait_time", move |ctx: NativeCallContext, f: FnPtr| {
        declaring(&c, "wait_time()", |d| {
            if d.wait.replace(WaitTime::Custom).is_some() {
                return Err("wait_time() is declared twice".into());
            }
            d.wait_fn = Some((f, ctx.call_position()));
            Ok(())
        })
    });
    let c = cell.clone();
    engine.register_fn("weight", move |w: INT| {
        declaring(&c, "weight()", |d| {
            let w = u32::try_from(w).map_err(|_| format!("weight({w}): {TASKSET_WEIGHT}"))?;
            match d.weight.replace(w) {
                Some(_) => Err("weight() is declared twice".into()),
                None => Ok(()),
            }
        })
    });
    let c = cell.clone();
    engine.register_fn("task", move |ctx: NativeCallContext, w: INT, f: FnPtr| {
        add_task(&c, w, f.fn_name(), ctx.call_position(), false)
    });
    let c = cell.clone();
    engine.register_fn("task", move |ctx: NativeCallContext, w: INT, f: &str| {
        add_task(&c, w, f, ctx.call_position(), true)
    });
    // Calls with the wrong types (`task(1.5, f)`, `weight("2")`) reach these instead of Rhai's "Function not found:
    // task (f64, Fn)", and are told what is allowed.
    engine.register_fn("task", |w: Dynamic, f: Dynamic| -> Res<()> {
        let call = format!("task({}, {})", shown(&w), shown(&f));
        if w.as_int().is_err() {
            return Err(format!("{call}: {TASK_WEIGHT}").into());
        }
        Err(format!("{call}: the second argument names the task's function, e.g. `task(3, browse)`, or a nested taskset, e.g. `task(3, \"shop/details\")`").into())
    });
    engine.register_fn("weight", |w: Dynamic| -> Res<()> {
        Err(format!("weight({}): {TASKSET_WEIGHT}", shown(&w)).into())
    });
}

/// What a task weight may be.
const TASK_WEIGHT: &str = "a task weight is a whole number from 1 to 4294967295";
/// What a taskset weight may be.
const TASKSET_WEIGHT: &str = "a taskset weight is a whole number from 0 to 4294967295 (0 disables the taskset)";

/// A script value as it was probably written: strings quoted, function pointers by name.
fn shown(value: &Dynamic) -> String {
    if let Some(f) = value.read_lock::<FnPtr>() {
        return f.fn_name().to_owned();
    }
    if value.is_string() { format!("{value:?}") } else { value.to_string() }
}

fn tag_list(tags: rhai::Array) -> Res<Vec<String>> {
    tags.into_iter()
        .map(|t| match t.into_string() {
            Ok(tag) if !tag.trim().is_empty() => Ok(tag),
            _ => Err("tags() takes an array of non-empty strings, e.g. tags([\"checkout\", \"slow\"])".into()),
        })
        .collect()
}

fn add_task(cell: &DeclarationCell, weight: INT, function: &str, position: Position, by_name: bool) -> Res<()> {
    declaring(cell, "task()", |d| {
        let weight = u32::try_from(weight)
            .ok()
            .filter(|&w| w >= 1)
            .ok_or_else(|| format!("task({weight}, {function}): {TASK_WEIGHT}"))?;
        d.tasks.push((weight, function.to_owned(), position, by_name));
        Ok(())
    })
}

/// A compiled taskset: what it declares, and its functions as a module that keeps its imports.
pub(crate) struct Compiled {
    pub spec: TasksetSpec,
    pub module: Shared<Module>,
    /// The file defines the global `setup()` / `teardown()`.
    pub has_setup: bool,
    /// See `has_setup`.
    pub has_teardown: bool,
    /// `file:line:col` of each function, for errors Rhai cannot place.
    pub fn_locations: HashMap<String, String>,
    /// The taskset declared `discard_bodies()`.
    pub discard_bodies: bool,
    /// The script declares `weight(n)` itself.
    pub weight_declared: bool,
    /// The tasks that name no function of this file and so enter the taskset of that name: `(task index, place)`.
    pub nested: Vec<(usize, Position)>,
    /// `wait_time(|| ...)`: the closure, and `file:line:col` of the call.
    pub wait_fn: Option<(FnPtr, String)>,
    /// The compiled script (a closure is called against it).
    pub ast: AST,
}

/// Compiles one script and runs its top level with `engine`.
pub(crate) fn compile(
    engine: &Engine,
    cell: &DeclarationCell,
    name: &str,
    path: &str,
    source: &str,
) -> Result<Compiled, LoadError> {
    let mut ast = engine.compile(source).map_err(|e| LoadError::parse(path, &e))?;
    ast.set_source(path);
    *cell.borrow_mut() = Some(Declaration::default());
    let module = Module::eval_ast_as_new(Scope::new(), &ast, engine);
    let declaration = cell.borrow_mut().take().unwrap_or_default();
    let module = module.map_err(|e| LoadError::eval(path, &e))?;

    let functions: Vec<(String, usize)> = ast.iter_functions().map(|f| (f.name.to_owned(), f.params.len())).collect();
    let takes_no_args = |n: &str| functions.iter().any(|(f, p)| f == n && *p == 0);
    for hook in ["on_start", "on_stop", "setup", "teardown"] {
        if functions.iter().any(|(f, _)| f == hook) && !takes_no_args(hook) {
            return Err(LoadError::plain(path, format!("{hook} must take no parameters")));
        }
    }
    if declaration.tasks.is_empty() {
        return Err(LoadError::plain(path, "declares no task: add `task(weight, function);` at the top level"));
    }
    let mut tasks = Vec::with_capacity(declaration.tasks.len());
    let mut nested = Vec::new();
    for (weight, function, position, by_name) in declaration.tasks {
        if by_name && !functions.iter().any(|(f, _)| *f == function) {
            // Not a function of this file: the name of a taskset to enter, checked when the catalog is complete.
            nested.push((tasks.len(), position));
            tasks.push(TaskSpec::nested(function, weight));
            continue;
        }
        if !takes_no_args(&function) {
            return Err(LoadError::at(
                path,
                position,
                format!("task({weight}, {function}): there is no `fn {function}()` without parameters in this file"),
            ));
        }
        let tags =
            declaration.task_tags.iter().filter(|(f, ..)| *f == function).flat_map(|(_, t, _)| t.clone()).collect();
        tasks.push(TaskSpec { name: function, weight, tags, nested: None });
    }
    if let Some((function, _, position)) =
        declaration.task_tags.iter().find(|(f, ..)| !tasks.iter().any(|t| t.name == *f && t.nested.is_none()))
    {
        return Err(LoadError::at(
            path,
            *position,
            format!("tags(.., {function}): `{function}` is not a task of this taskset"),
        ));
    }
    let spec = TasksetSpec {
        name: name.to_owned(),
        weight: declaration.weight.unwrap_or(1),
        tasks,
        wait: declaration.wait.unwrap_or_default(),
        has_on_start: takes_no_args("on_start"),
        has_on_stop: takes_no_args("on_stop"),
        sequential: declaration.sequential,
        tags: declaration.tags,
    };
    let fn_locations =
        fn_positions(source).into_iter().map(|(f, (line, col))| (f, format!("{path}:{line}:{col}"))).collect();
    let wait_fn = declaration.wait_fn.map(|(f, at)| {
        let (line, col) = (at.line().unwrap_or(0), at.position().unwrap_or(0));
        (f, format!("{path}:{line}:{col}"))
    });
    Ok(Compiled {
        spec,
        module: module.into(),
        has_setup: takes_no_args("setup"),
        has_teardown: takes_no_args("teardown"),
        fn_locations,
        discard_bodies: declaration.discard_bodies,
        weight_declared: declaration.weight.is_some(),
        nested,
        wait_fn,
        ast,
    })
}

/// Line and column of each `fn name(` in a source (the first one, outside `//` comments).
pub(crate) fn fn_positions(source: &str) -> HashMap<String, (usize, usize)> {
    let mut found = HashMap::new();
    for (line_no, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("fn ") {
            let start = code.len() - rest.len() + at;
            let boundary = start == 0 || !code.as_bytes()[start - 1].is_ascii_alphanumeric();
            let after = rest[at + 3..].trim_start();
            let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if boundary && !name.is_empty() && after[name.len()..].trim_start().starts_with('(') {
                found.entry(name).or_insert((line_no + 1, start + 1));
            }
            rest = &rest[at + 3..];
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_function_positions() {
        let src = "// fn fake() {}\nweight(1);\nfn a() {}\n  private fn b_2 (x) {}\nfn_x(); let y = 1; fn c(){}\n";
        let p = fn_positions(src);
        assert_eq!(p["a"], (3, 1));
        assert_eq!(p["b_2"], (4, 11));
        assert_eq!(p["c"], (5, 20));
        assert!(!p.contains_key("fake"));
    }
}
