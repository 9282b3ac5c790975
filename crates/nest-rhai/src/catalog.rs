//! Loading every taskset of a folder, checked, before any load.
//!
//! [`Catalog::load`] discovers the files, compiles each one and runs its top level, and collects *every* broken
//! file's error (not just the first), each as `path:line:col: message`. The catalog keeps the sources in memory, so
//! the workers compile exactly what was checked even if a file changes on disk during the run.
//!
//! Each file also goes through the static check (see `check.rs`): names that are not defined anywhere are errors
//! (warnings with [`LoadOptions::strict`] off), and functions named like a built-in are warnings.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use nest_core::TasksetSpec;
use nest_core::stats::Recorder;
use nest_data::DataRegistry;
use nest_http::ClientConfig;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio_util::sync::CancellationToken;

use crate::behaviour::ScriptFactory;
use crate::check::{self, Api};
use crate::confine::Confine;
use crate::data_refs::data_refs;
use crate::declare::{self, DeclarationCell};
use crate::discover::{discover, modules_root};
use crate::engine::{ScriptLimits, WorkerEnv, new_engine};
use crate::error::{LoadError, LoadErrors};

/// One loaded taskset.
#[derive(Debug, Clone)]
pub struct TasksetDef {
    /// Its name (`shop/browse`).
    pub name: String,
    /// Its file, as shown in messages.
    pub path: String,
    /// What it declares, with its script weight.
    pub spec: TasksetSpec,
    /// It defines the run's global `setup()`.
    pub has_setup: bool,
    /// It defines the run's global `teardown()`.
    pub has_teardown: bool,
    pub(crate) source: Arc<str>,
}

impl TasksetDef {
    /// The script's source, as it was compiled (a split run's plan hash covers it).
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Every taskset of a folder, compiled and checked.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The taskset folder (imports resolve from here).
    pub dir: PathBuf,
    /// The tasksets, sorted by name.
    pub tasksets: Vec<TasksetDef>,
    /// Where `import` may read modules from (and, for the caller, data files).
    pub confine: Confine,
    /// What the load found suspicious but not fatal, each at its `file:line:col`: a function named like a built-in
    /// (`fn json()`), or, with [`LoadOptions::strict`] off, what the static check would have refused.
    pub warnings: Vec<LoadError>,
    /// The size limits every engine of the run gets.
    pub(crate) limits: ScriptLimits,
}

/// How [`Catalog::load_with`] loads scripts.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Size limits of script values, for the load and for the run.
    pub limits: ScriptLimits,
    /// Static check findings (an undefined variable, function or method) are errors; when off, warnings.
    pub strict: bool,
    /// Where `import` may read modules from; `None` confines them to the taskset folder.
    pub confine: Option<Confine>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { limits: ScriptLimits::default(), strict: true, confine: None }
    }
}

impl Catalog {
    /// Discovers and compiles every taskset under `dir` (or the one file `dir` names) with the default
    /// [`LoadOptions`], imports confined to `dir`. Returns all errors found, one or more per broken file.
    pub fn load(dir: &Path) -> Result<Catalog, LoadErrors> {
        Catalog::load_with(dir, LoadOptions::default())
    }

    /// Discovers, compiles and checks every taskset under `dir` (or the one file `dir` names). Returns all errors
    /// found, one or more per broken file.
    pub fn load_with(dir: &Path, options: LoadOptions) -> Result<Catalog, LoadErrors> {
        let confine = options.confine.clone().unwrap_or_else(|| Confine::within(&[dir]));
        let found = discover(dir).map_err(|e| LoadErrors(vec![e]))?;
        let dir = &modules_root(dir);
        if found.is_empty() {
            return Err(LoadErrors(vec![LoadError::plain(
                dir.display().to_string(),
                "no taskset found: add a `.rhai` file (names starting with `_` or `.` are skipped)",
            )]));
        }
        let env = Rc::new(WorkerEnv {
            recorder: Recorder::new(),
            stop: CancellationToken::new(),
            http: Arc::new(
                ClientConfig::new(true).map_err(|e| LoadErrors(vec![LoadError::plain("http", e.to_string())]))?,
            ),
            base: None,
            rng: RefCell::new(SmallRng::seed_from_u64(0)),
            stack_margin: 0,
            shared: RefCell::new(rhai::Dynamic::UNIT),
            data: Arc::default(),
            confine: confine.clone(),
            limits: options.limits,
        });
        let mut tasksets = Vec::with_capacity(found.len());
        let mut links = Vec::with_capacity(found.len());
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        // A module imported by several tasksets is checked once.
        let mut checked_modules = std::collections::HashSet::new();
        for file in found {
            let path = file.path.display().to_string();
            let source: Arc<str> = match std::fs::read_to_string(&file.path) {
                Ok(text) => text.into(),
                Err(e) => {
                    errors.push(LoadError::plain(path, format!("cannot read: {e}")));
                    continue;
                }
            };
            let cell = DeclarationCell::default();
            let engine = new_engine(&env, dir, &cell);
            match declare::compile(&engine, &cell, &file.name, &path, &source) {
                Ok(compiled) => {
                    let api = Api::of(&engine);
                    let findings = check::check(&compiled.ast, &compiled.module, &api)
                        .into_iter()
                        .map(|f| LoadError::at(path.as_str(), f.position, f.message));
                    match options.strict {
                        true => errors.extend(findings),
                        false => warnings.extend(findings),
                    }
                    for (alias, module) in compiled.module.iter_sub_modules() {
                        let file = module.id().map_or_else(|| dir.join(alias).display().to_string(), str::to_owned);
                        if !checked_modules.insert(file.clone()) {
                            continue;
                        }
                        let findings = check::check_module(module, &api)
                            .into_iter()
                            .map(|f| LoadError::at(file.as_str(), f.position, f.message));
                        match options.strict {
                            true => errors.extend(findings),
                            false => warnings.extend(findings),
                        }
                    }
                    let positions = declare::fn_positions(&source);
                    for (name, message) in check::shadowed_builtins(&compiled.ast, &api) {
                        let position = positions.get(&name).map(|&(line, col)| (line, col));
                        warnings.push(LoadError { file: path.clone(), position, message });
                    }
                    links.push(Links {
                        nested: compiled.nested,
                        weight_declared: compiled.weight_declared,
                        functions: compiled.fn_locations.keys().cloned().collect(),
                    });
                    tasksets.push(TasksetDef {
                        name: file.name,
                        path,
                        spec: compiled.spec,
                        has_setup: compiled.has_setup,
                        has_teardown: compiled.has_teardown,
                        source,
                    });
                }
                Err(e) => errors.push(e),
            }
        }
        // With a broken file the names are incomplete: its nested uses are checked once it compiles.
        if errors.is_empty() {
            errors.extend(link_nested(&mut tasksets, &links));
        }
        type Has = fn(&TasksetDef) -> bool;
        for (hook, has) in [("setup", (|t| t.has_setup) as Has), ("teardown", |t| t.has_teardown)] {
            let files: Vec<&str> = tasksets.iter().filter(|t| has(t)).map(|t| t.path.as_str()).collect();
            if files.len() > 1 {
                errors.push(LoadError::plain(
                    files[1],
                    format!("{hook}() is defined in {} and here: a run has one global {hook}()", files[0]),
                ));
            }
        }
        if errors.is_empty() {
            Ok(Catalog { dir: dir.to_path_buf(), tasksets, confine, warnings, limits: options.limits })
        } else {
            Err(LoadErrors(errors))
        }
    }

    /// The taskset specs, in catalog order, with their script weights.
    pub fn specs(&self) -> Vec<TasksetSpec> {
        self.tasksets.iter().map(|t| t.spec.clone()).collect()
    }

    /// Checks the data pool names the scripts use with a literal (`data.claim("users")`) against `data`: a name
    /// that is not declared, or a pool without rows that is claimed or read, is an error at its `file:line:col`.
    pub fn check_data(&self, data: &DataRegistry) -> Result<(), LoadErrors> {
        let mut errors = Vec::new();
        for taskset in &self.tasksets {
            for r in data_refs(&taskset.source) {
                let call = format!("data.{}(\"{}\")", r.method, r.name);
                let message = match data.get(&r.name) {
                    None => {
                        let declared: Vec<&str> = data.names().collect();
                        let known = if declared.is_empty() {
                            "no data is declared".to_owned()
                        } else {
                            format!("declared: {}", declared.join(", "))
                        };
                        format!(
                            "{call}: no data set named `{}` ({known}); declare it under `data:` in nest.yaml or put \
                             a file in {}",
                            r.name,
                            self.dir.join("_data").display()
                        )
                    }
                    Some(pool) if pool.is_empty() && r.method != "len" => {
                        format!("{call}: the data set `{}` ({}) has no row", r.name, pool.data().origin().display())
                    }
                    Some(_) => continue,
                };
                errors.push(LoadError { file: taskset.path.clone(), position: Some((r.line, r.col)), message });
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(LoadErrors(errors)) }
    }

    /// A factory that builds the script behaviour on each worker. `base` is the host relative paths go to.
    pub fn factory(&self, http: Arc<ClientConfig>, base: Option<url::Url>) -> ScriptFactory {
        ScriptFactory::new(self.clone(), http, base)
    }
}

/// What a compiled file links to: its nested-taskset tasks with their places, and whether it set its own weight.
struct Links {
    nested: Vec<(usize, rhai::Position)>,
    weight_declared: bool,
    /// The file's functions, for suggestions.
    functions: Vec<String>,
}

/// Checks every nested-taskset task against the catalog (an unknown name, with the closest names; a cycle, with its
/// chain), and gives the tasksets used only as nested tasks a top-level weight of 0 unless their script declares
/// `weight(n)`.
fn link_nested(tasksets: &mut [TasksetDef], links: &[Links]) -> Vec<LoadError> {
    let names: Vec<String> = tasksets.iter().map(|t| t.name.clone()).collect();
    let mut errors = Vec::new();
    let mut graph: Vec<Vec<Option<usize>>> = tasksets.iter().map(|t| vec![None; t.spec.tasks.len()]).collect();
    for (i, (def, links)) in tasksets.iter().zip(links).enumerate() {
        for &(task, position) in &links.nested {
            let name = &def.spec.tasks[task].name;
            match names.iter().position(|n| n == name) {
                Some(target) => graph[i][task] = Some(target),
                None => {
                    let candidates: Vec<String> = names.iter().chain(&links.functions).cloned().collect();
                    errors.push(LoadError::at(
                        &def.path,
                        position,
                        format!(
                            "task({}, \"{name}\"): no `fn {name}()` in this file and no taskset named `{name}`{}",
                            def.spec.tasks[task].weight,
                            suggest(name, &candidates)
                        ),
                    ))
                }
            }
        }
    }
    if !errors.is_empty() {
        return errors;
    }
    if let Some(cycle) = nest_core::nested_cycle(&graph) {
        let chain: Vec<&str> = cycle.iter().map(|&i| names[i].as_str()).collect();
        let (from, to) = (cycle[0], cycle[1]);
        let task = graph[from].iter().position(|&t| t == Some(to)).unwrap_or(0);
        let position = links[from].nested.iter().find(|(t, _)| *t == task).map_or(rhai::Position::NONE, |p| p.1);
        return vec![LoadError::at(
            &tasksets[from].path,
            position,
            format!("nested tasksets form a cycle: {}", chain.join(" -> ")),
        )];
    }
    let used: Vec<usize> = graph.iter().flatten().flatten().copied().collect();
    for (i, def) in tasksets.iter_mut().enumerate() {
        if used.contains(&i) && !links[i].weight_declared {
            def.spec.weight = 0;
        }
    }
    errors
}

/// `; did you mean ...?` with the closest taskset names, if any is close.
fn suggest(name: &str, names: &[String]) -> String {
    let mut close: Vec<(f64, &str)> =
        names.iter().map(|n| (strsim::jaro_winkler(name, n), n.as_str())).filter(|(score, _)| *score > 0.8).collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pick: Vec<String> = close.iter().take(3).map(|(_, n)| format!("`{n}`")).collect();
    if pick.is_empty() { String::new() } else { format!("; did you mean {}?", pick.join(" or ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Catalog, LoadErrors>) {
        let dir = tempfile::tempdir().unwrap();
        for (name, source) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, source).unwrap();
        }
        let catalog = Catalog::load(dir.path());
        (dir, catalog)
    }

    #[test]
    fn nested_tasksets_are_linked_and_nested_only_ones_get_weight_0() {
        let (_dir, catalog) = load(&[
            ("p.rhai", "task(1, a);\ntask(3, \"shop/c\");\ntask(1, \"both\");\nfn a() {}\n"),
            ("shop/c.rhai", "task(1, \"a\");\nfn a() {}\n"),
            ("both.rhai", "weight(2);\ntask(1, b);\nfn b() {}\n"),
        ]);
        let catalog = catalog.unwrap();
        let weight = |name: &str| catalog.tasksets.iter().find(|t| t.name == name).unwrap().spec.weight;
        assert_eq!((weight("p"), weight("shop/c"), weight("both")), (1, 0, 2));
        let p = &catalog.tasksets.iter().find(|t| t.name == "p").unwrap().spec;
        assert_eq!(p.tasks[1], nest_core::TaskSpec::nested("shop/c", 3));
        // A string naming a function of the file stays a function task.
        let c = &catalog.tasksets.iter().find(|t| t.name == "shop/c").unwrap().spec;
        assert_eq!(c.tasks[0].nested, None);
    }

    #[test]
    fn a_wait_time_closure_may_use_vu_variables_but_the_top_level_may_not() {
        let (_dir, catalog) =
            load(&[("w.rhai", "let base = 1;\nwait_time(|| base + user.think + vu_id);\ntask(1, t);\nfn t() {}\n")]);
        assert_eq!(catalog.unwrap().tasksets[0].spec.wait, nest_core::WaitTime::Custom);
        for (top, col) in [("let x = user.name;", 13), ("user.x = 1;", 5), ("let s = shared.key;", 15)] {
            let (_dir, catalog) = load(&[("w.rhai", &format!("{top}\ntask(1, t);\nfn t() {{}}\n"))]);
            let error = catalog.unwrap_err().0.remove(0);
            assert_eq!(error.position, Some((1, col)), "{error}");
            assert!(
                error.message.contains("can only be used inside a task, on_start, on_stop or a closure"),
                "{error}"
            );
        }
    }

    #[test]
    fn unknown_names_and_cycles_are_errors_at_the_task_call() {
        let (dir, catalog) =
            load(&[("p.rhai", "task(1, a);\n\ntask(2, \"shopp\");\nfn a() {}\n"), ("shop.rhai", "task(1, \"p\");\n")]);
        let errors = catalog.unwrap_err().to_string();
        let p = dir.path().join("p.rhai").display().to_string();
        assert_eq!(
            errors,
            format!(
                "{p}:3:1: task(2, \"shopp\"): no `fn shopp()` in this file and no taskset named `shopp`; did you mean \
                 `shop`?"
            )
        );
        let (dir, catalog) = load(&[("f.rhai", "task(1, \"brwose\");\nfn browse() {}\n")]);
        let f = dir.path().join("f.rhai").display().to_string();
        let message = "no `fn brwose()` in this file and no taskset named `brwose`; did you mean `browse`?";
        assert_eq!(catalog.unwrap_err().to_string(), format!("{f}:1:1: task(1, \"brwose\"): {message}"));
        let (dir, catalog) =
            load(&[("a.rhai", "task(1, \"b\");\n"), ("b.rhai", "task(1, x);\n  task(1, \"a\");\nfn x() {}\n")]);
        let a = dir.path().join("a.rhai").display().to_string();
        assert_eq!(catalog.unwrap_err().to_string(), format!("{a}:1:1: nested tasksets form a cycle: a -> b -> a"));
    }
}
