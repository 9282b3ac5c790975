//! The static check: mistakes found in a script's syntax tree when it loads, not 275,000 times a second at run time.
//!
//! Rhai resolves names only when a line runs, so a misspelt `client.gett`, a Locust habit like `self.client`, a
//! top-level `let` read inside a `fn`, or an undefined helper would pass `nest list` and fail every call. This module
//! walks each compiled script with Rhai's own scoping rules (checked by experiment, see the tests):
//!
//! - a `let` in a block is in scope after it, until the block ends; `for` and `catch` variables inside their block;
//! - a `fn` sees only its parameters, its locals, `this`, the top level's `import` aliases and its constants through
//!   `global::NAME` (not the top level's `let`s, nor its constants by their bare name);
//! - a closure sees what it captures (Rhai turns captured variables into parameters of an anonymous `fn`);
//! - `client`, `data`, `user`, `vu_id` and `shared` are everywhere (the engine's variable resolver serves them);
//! - a bare function name is a function pointer (`task(1, browse)`).
//!
//! Function and method names are checked against the script's functions, its imports, and what the engine has
//! registered, queried from the engine itself, so any function added to the API is known without a list to keep.
mod walk;

use std::collections::{HashMap, HashSet};

use rhai::{AST, ASTFlags, Engine, FnAccess, Module, Position, Stmt};
use walk::Scope;

/// Variables the engine's resolver serves to every script (see `engine.rs`).
pub(crate) const RESOLVED: &[&str] = &["client", "data", "user", "vu_id", "shared"];

/// Functions the Rhai language itself handles (keywords parsed as calls), which no engine registers.
const KEYWORD_FNS: &[&str] =
    &["Fn", "call", "curry", "type_of", "print", "debug", "eval", "is_shared", "is_def_var", "is_def_fn"];

/// What an engine knows: every function and method name it registered (its packages included), and the variables
/// its resolver serves.
pub(crate) struct Api<'e> {
    engine: &'e Engine,
    names: HashSet<String>,
}

impl<'e> Api<'e> {
    /// The registered functions of `engine`, including Rhai's standard packages.
    pub fn of(engine: &'e Engine) -> Api<'e> {
        let names = engine.collect_fn_metadata(None, |info| Some(info.metadata.name.to_string()), true);
        // Property getters and setters (`get$status`) are accessed as `r.status`, not called.
        let names = names.into_iter().filter(|n| !n.contains('$')).collect();
        Api { engine, names }
    }

    /// Whether a function or method of this name is registered.
    pub fn has(&self, name: &str) -> bool {
        self.names.contains(name) || KEYWORD_FNS.contains(&name)
    }

    /// Whether the engine's variable resolver serves `name` (`client`, and any variable added to it later): asked
    /// of the engine itself, which answers "not found" only for names it does not serve. At load time a served
    /// name answers with its value or with "only inside a task"; either way it exists.
    fn serves(&self, name: &str) -> bool {
        if !rhai::is_valid_identifier(name) {
            return false;
        }
        match self.engine.eval_expression::<rhai::Dynamic>(name) {
            Ok(_) => true,
            Err(e) => {
                !matches!(*e, rhai::EvalAltResult::ErrorVariableNotFound(..) | rhai::EvalAltResult::ErrorParsing(..))
            }
        }
    }
}

/// A mistake found, at its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub position: Position,
    pub message: String,
}

/// What the walk knows about the whole file.
struct Context<'a> {
    api: &'a Api<'a>,
    /// Script functions by name, with their numbers of parameters.
    functions: HashMap<String, Vec<usize>>,
    /// The top level's `import ... as alias`, with the public functions of each module when it could be resolved.
    imports: HashMap<String, Option<HashSet<String>>>,
    /// Top-level constants (readable in functions as `global::NAME`).
    constants: HashSet<String>,
    /// Top-level `let`s (for a better message when a function reads one).
    top_lets: HashSet<String>,
    /// A module checked on its own: what `global::` names depends on the importer, so it is not checked.
    any_global: bool,
    findings: Vec<Finding>,
}

/// Checks one compiled script. `module` is what evaluating it produced (its imports are its sub-modules).
pub(crate) fn check(ast: &AST, module: &Module, api: &Api) -> Vec<Finding> {
    let mut functions: HashMap<String, Vec<usize>> = HashMap::new();
    for f in ast.iter_fn_def() {
        functions.entry(f.name.to_string()).or_default().push(f.params.len());
    }
    let mut ctx = Context {
        api,
        functions,
        imports: HashMap::new(),
        constants: HashSet::new(),
        top_lets: HashSet::new(),
        any_global: false,
        findings: Vec::new(),
    };
    for stmt in ast.statements() {
        match stmt {
            Stmt::Import(import, _) if !import.1.name.is_empty() => {
                let name = import.1.name.as_str();
                let functions = module.get_sub_module(name).map(public_functions);
                ctx.imports.insert(name.to_owned(), functions);
            }
            Stmt::Var(var, flags, _) if flags.contains(ASTFlags::CONSTANT) => {
                ctx.constants.insert(var.0.name.to_string());
            }
            Stmt::Var(var, ..) => {
                ctx.top_lets.insert(var.0.name.to_string());
            }
            _ => {}
        }
    }
    let mut top = Scope { frames: vec![Vec::new()], in_fn: false };
    for stmt in ast.statements() {
        ctx.stmt(stmt, &mut top);
    }
    ctx.functions_of(ast)
}

/// Checks the functions of an imported module (`import "_common" as common;`), which has no top level left.
pub(crate) fn check_module(module: &Module, api: &Api) -> Vec<Finding> {
    let ast = AST::new_from_module(module.clone());
    let mut functions: HashMap<String, Vec<usize>> = HashMap::new();
    for f in ast.iter_fn_def() {
        functions.entry(f.name.to_string()).or_default().push(f.params.len());
    }
    let ctx = Context {
        api,
        functions,
        imports: module.iter_sub_modules().map(|(name, m)| (name.to_owned(), Some(public_functions(m)))).collect(),
        constants: module.iter_var().map(|(name, _)| name.to_owned()).collect(),
        top_lets: HashSet::new(),
        any_global: true,
        findings: Vec::new(),
    };
    ctx.functions_of(&ast)
}

impl Context<'_> {
    /// Checks every function of `ast` and returns all findings, in source order.
    fn functions_of(mut self, ast: &AST) -> Vec<Finding> {
        let ctx = &mut self;
        for f in ast.iter_fn_def() {
            let params = f.params.iter().map(|p| p.to_string()).collect();
            let mut scope = Scope { frames: vec![params, Vec::new()], in_fn: true };
            for stmt in body_of(f) {
                ctx.stmt(&stmt, &mut scope);
            }
        }
        let mut findings = self.findings;
        findings.sort_by_key(|f| (f.position.line(), f.position.position()));
        findings.dedup();
        findings
    }
}

/// Warnings for script functions named like a registered function or method: `fn json()` takes over `r.json()`
/// (Rhai calls script functions in method style, and they win over native ones).
pub(crate) fn shadowed_builtins(ast: &AST, api: &Api) -> Vec<(String, String)> {
    let mut seen = HashSet::new();
    ast.iter_functions()
        .map(|f| f.name)
        .filter(|name| api.names.contains(*name) && seen.insert(*name))
        .map(|name| {
            let message = format!(
                "`fn {name}` has the name of a built-in function or method: calls like `{name}(..)` and \
                 `x.{name}(..)` may now run this function instead; rename it"
            );
            (name.to_owned(), message)
        })
        .collect()
}

/// The statements of a script function. Rhai does not export the type of a function's body, so they are copied
/// out of a walk over an AST that holds only that function.
fn body_of(f: &rhai::Shared<rhai::ScriptFuncDef>) -> Vec<Stmt> {
    let mut module = Module::new();
    module.set_script_fn(f.clone());
    let one = AST::new_from_module(module);
    let mut body = Vec::new();
    one.walk(&mut |path: &[rhai::ASTNode]| {
        if let [rhai::ASTNode::Stmt(stmt)] = path {
            body.push((*stmt).clone());
        }
        true
    });
    body
}

fn public_functions(module: &Module) -> HashSet<String> {
    module
        .iter_script_fn_info()
        .filter(|(_, access, ..)| *access == FnAccess::Public)
        .map(|(_, _, name, ..)| name.to_owned())
        .collect()
}
/// What to write instead of a Locust habit: `wait_time = between(1, 2)` is a call in nest, `self` does not exist.
pub(crate) fn habit_hint(name: &str) -> Option<&'static str> {
    Some(match name {
        "wait_time" => "`wait_time` is a function call in nest: `wait_time(between(1, 2));`",
        "weight" => "`weight` is a function call in nest: `weight(3);`",
        "task" | "tasks" => "tasks are declared with a call per task: `task(3, browse);`",
        "tags" => "`tags` is a function call in nest: `tags([\"slow\"]);`",
        "host" => "the host is set with --host, NEST_HOST or `host:` in nest.yaml",
        "self" => "nest scripts have no `self`: write `client.get(..)`, `user.name`, ... directly",
        _ => return None,
    })
}

/// `: did you mean `x`?` for the closest candidate, or nothing when none is close.
pub(crate) fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    // One edit per three characters; names of one or two characters look like too many others to guess.
    let limit = name.chars().count() / 3 + usize::from(name.chars().count() == 3 || name.chars().count() > 5);
    let best = candidates
        .filter(|c| *c != name && !c.is_empty())
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min();
    match best {
        Some((_, c)) => format!(": did you mean `{c}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The findings of `source` as `line:col: message`, checked with a plain engine (Rhai's packages).
    fn findings(source: &str) -> Vec<String> {
        let engine = Engine::new();
        let ast = engine.compile(source).unwrap();
        check(&ast, &Module::new(), &Api::of(&engine))
            .into_iter()
            .map(|f| format!("{}:{}: {}", f.position.line().unwrap(), f.position.position().unwrap(), f.message))
            .collect()
    }

    #[test]
    fn rhai_scoping_is_followed() {
        // Everything here is valid Rhai: locals after their `let`, loop and catch variables, closures capturing
        // locals, `global::` constants, function pointers, `this`, the resolver's variables.
        let valid = r#"
const BASE = "/items";
let top = 1;
let later = top + 1;
let pointer = browse;
fn helper(a, b) { a + b }
fn browse() {
    let n = helper(1, 2);
    for (x, i) in [1, 2] { n += x + i; }
    try { throw 1; } catch (e) { n += e; }
    let add = |v| v + n;
    let f = Fn("helper");
    f.call(1, add.call(2));
    switch n { 1 => n = 2, _ => { let z = 3; n = z; } }
    if n > 0 { let y = n; y.to_string(); } else { n = 0; }
    do { n -= 1; } while n > 0;
    client.get(global::BASE + `/${vu_id}`);
    user.name = data ?? vu_id;
    is_def_var("n");
}
fn method() { this.len() }
"#;
        assert_eq!(findings(valid), Vec::<String>::new());
    }

    #[test]
    fn out_of_scope_variables_are_found_with_a_hint() {
        let source = "let base = \"/\";\nconst C = 1;\nfn t() {\n    { let inner = 1; }\n    inner + base + C + tokn;\n    let token = 1;\n}\n";
        assert_eq!(
            findings(source),
            vec![
                "5:5: variable `inner` is not defined",
                "5:13: variable `base` is not defined in this function: a `fn` cannot see the variables of the top \
                 level; declare it `const base = ..;` and read it as `global::base`, or pass it as a parameter",
                "5:20: variable `C` is not defined in this function: a `fn` cannot see the variables of the top \
                 level; read the top-level constant as `global::C`",
                "5:24: variable `tokn` is not defined",
            ]
        );
        // A local is in scope only after its `let`; a closure sees what it captures, not the caller's later locals.
        assert_eq!(findings("fn t() { let a = b; let b = 1; }"), vec!["1:18: variable `b` is not defined"]);
        assert_eq!(
            findings("fn t() { let token = 1; tokn }"),
            vec!["1:25: variable `tokn` is not defined: did you mean `token`?"]
        );
        assert_eq!(
            findings("let x = 1;\nfn t() { global::x + global::Y }"),
            vec![
                "2:18: `global::x`: there is no top-level constant `x`: `x` is a `let`; declare it `const x = ..;` to \
                 read it here",
                "2:30: `global::Y`: there is no top-level constant `Y`",
            ]
        );
    }

    #[test]
    fn unknown_functions_and_methods_are_found_with_a_suggestion() {
        let source = "fn helper(x) { x }\nfn t() {\n    helpr(1);\n    helper(1, 2);\n    client.gett(\"/\");\n    [1].lenn();\n    nothing_like_this();\n}\n";
        assert_eq!(
            findings(source),
            vec![
                "3:5: function `helpr` is not defined in this file, its imports or the taskset API: did you mean \
                 `helper`?",
                "4:5: `helper` takes 1 argument(s), and this call passes 2",
                "5:12: method `gett` exists on no type: did you mean `get`?",
                "6:9: method `lenn` exists on no type: did you mean `len`?",
                "7:5: function `nothing_like_this` is not defined in this file, its imports or the taskset API",
            ]
        );
    }

    #[test]
    fn locust_habits_get_a_hint() {
        assert_eq!(
            findings("wait_time = 3;\nfn t() { self.client.get(\"/\"); }"),
            vec![
                "1:1: `wait_time = ...` assigns to a variable that does not exist: `wait_time` is a function call in \
                 nest: `wait_time(between(1, 2));`",
                "2:10: variable `self` is not defined: nest scripts have no `self`: write `client.get(..)`, \
                 `user.name`, ... directly",
            ]
        );
    }

    #[test]
    fn functions_named_like_builtins_are_listed_once() {
        let engine = Engine::new();
        let ast = engine.compile("fn len() { 1 }\nfn len(a) { a }\nfn browse() {}").unwrap();
        let shadowed: Vec<String> = shadowed_builtins(&ast, &Api::of(&engine)).into_iter().map(|(n, _)| n).collect();
        assert_eq!(shadowed, vec!["len"]);
    }

    #[test]
    fn variables_the_engine_serves_are_known_without_a_list() {
        #[allow(deprecated)] // `on_var` is volatile, not deprecated.
        fn serving(engine: &mut Engine) {
            engine.on_var(|name, _, _| match name {
                "metric" => Err("`metric` can only be used inside a task".into()),
                _ => Ok(None),
            });
        }
        let mut engine = Engine::new();
        serving(&mut engine);
        let ast = engine.compile("fn t() { print(metric); print(metrc); }").unwrap();
        let found: Vec<String> =
            check(&ast, &Module::new(), &Api::of(&engine)).into_iter().map(|f| f.message).collect();
        assert_eq!(found, vec!["variable `metrc` is not defined"]);
    }

    #[test]
    fn suggestions_are_close_or_absent() {
        assert_eq!(suggest("gett", ["get", "post", "set"].into_iter()), ": did you mean `get`?");
        assert_eq!(suggest("xyz", ["get", "post"].into_iter()), "");
    }
}
