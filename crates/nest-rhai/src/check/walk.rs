//! The walk of the static check: statements and expressions visited with Rhai's scoping rules (see `check.rs`),
//! each variable, function and method name checked where it is used, and a finding with a hint or a suggestion
//! for each that is not known.
//!
//! The walk is most of the check's code; the file-wide setup (functions, imports, constants) and the hints it
//! shares with run-time errors stay in `check.rs`.

use rhai::{Expr, FnCallExpr, Position, Stmt, StmtBlock};

use super::{Context, Finding, RESOLVED, habit_hint, suggest};

/// The variables in scope: one frame per block.
pub(super) struct Scope {
    pub(super) frames: Vec<Vec<String>>,
    pub(super) in_fn: bool,
}

impl Scope {
    fn has(&self, name: &str) -> bool {
        self.frames.iter().any(|f| f.iter().any(|v| v == name))
    }
    fn add(&mut self, name: &str) {
        if let Some(frame) = self.frames.last_mut() {
            frame.push(name.to_owned());
        }
    }
    fn names(&self) -> impl Iterator<Item = &str> {
        self.frames.iter().flatten().map(String::as_str)
    }
}

impl Context<'_> {
    fn report(&mut self, position: Position, message: String) {
        self.findings.push(Finding { position, message });
    }

    fn block(&mut self, block: &StmtBlock, scope: &mut Scope) {
        scope.frames.push(Vec::new());
        for stmt in block.iter() {
            self.stmt(stmt, scope);
        }
        scope.frames.pop();
    }

    pub(super) fn stmt(&mut self, stmt: &Stmt, scope: &mut Scope) {
        match stmt {
            Stmt::Var(var, ..) => {
                self.expr(&var.1, scope);
                scope.add(&var.0.name);
            }
            Stmt::Assignment(assign) => {
                let target = &assign.1;
                self.expr(&target.rhs, scope);
                match &target.lhs {
                    Expr::Variable(v, _, pos) if v.2.is_empty() && !self.variable_known(&v.1, scope) => {
                        let message = self.unknown_assignment(&v.1, scope);
                        self.report(*pos, message);
                    }
                    Expr::Variable(..) => {}
                    other => self.expr(other, scope),
                }
            }
            Stmt::FnCall(call, pos) => self.call(call, *pos, scope),
            Stmt::Block(block) => self.block(block, scope),
            Stmt::If(flow, _) | Stmt::While(flow, _) => {
                self.expr(&flow.expr, scope);
                self.block(&flow.body, scope);
                self.block(&flow.branch, scope);
            }
            Stmt::Do(flow, ..) => {
                self.block(&flow.body, scope);
                self.expr(&flow.expr, scope);
            }
            Stmt::For(each, _) => {
                let (var, counter, flow) = &**each;
                self.expr(&flow.expr, scope);
                scope.frames.push(vec![var.name.to_string()]);
                if let Some(counter) = counter {
                    scope.add(&counter.name);
                }
                self.block(&flow.body, scope);
                scope.frames.pop();
            }
            Stmt::TryCatch(flow, _) => {
                self.block(&flow.body, scope);
                let mut frame = Vec::new();
                if let Expr::Variable(v, ..) = &flow.expr {
                    frame.push(v.1.to_string());
                }
                scope.frames.push(frame);
                self.block(&flow.branch, scope);
                scope.frames.pop();
            }
            Stmt::Switch(switch, _) => {
                self.expr(&switch.0, scope);
                for case in &switch.1.expressions {
                    self.expr(&case.lhs, scope);
                    self.expr(&case.rhs, scope);
                }
            }
            Stmt::Expr(e) => self.expr(e, scope),
            Stmt::BreakLoop(Some(e), ..) | Stmt::Return(Some(e), ..) => self.expr(e, scope),
            Stmt::Import(import, _) => {
                self.expr(&import.0, scope);
                if !import.1.name.is_empty() && scope.in_fn {
                    self.imports.entry(import.1.name.to_string()).or_insert(None);
                }
            }
            _ => {}
        }
    }

    fn expr(&mut self, expr: &Expr, scope: &mut Scope) {
        match expr {
            Expr::InterpolatedString(items, _) | Expr::Array(items, _) => {
                for item in items.iter() {
                    self.expr(item, scope);
                }
            }
            Expr::Map(map, _) => {
                for (_, value) in &map.0 {
                    self.expr(value, scope);
                }
            }
            Expr::Variable(v, _, pos) => self.variable(&v.1, &v.2, *pos, scope),
            Expr::MethodCall(call, pos) => self.method(call, *pos, scope),
            Expr::Stmt(block) => self.block(block, scope),
            Expr::FnCall(call, pos) => self.call(call, *pos, scope),
            Expr::Dot(chain, ..) | Expr::Index(chain, ..) => {
                self.expr(&chain.lhs, scope);
                self.chain(&chain.rhs, scope);
            }
            Expr::And(items, _) | Expr::Or(items, _) | Expr::Coalesce(items, _) => {
                for item in items.iter() {
                    self.expr(item, scope);
                }
            }
            _ => {}
        }
    }

    /// The right side of `.` or `[`: properties and methods of the value on the left, and index expressions.
    fn chain(&mut self, expr: &Expr, scope: &mut Scope) {
        match expr {
            Expr::Property(..) => {}
            Expr::MethodCall(call, pos) => self.method(call, *pos, scope),
            Expr::Dot(chain, ..) | Expr::Index(chain, ..) => {
                self.chain(&chain.lhs, scope);
                self.chain(&chain.rhs, scope);
            }
            other => self.expr(other, scope),
        }
    }

    fn variable_known(&self, name: &str, scope: &Scope) -> bool {
        scope.has(name)
            || RESOLVED.contains(&name)
            || self.functions.contains_key(name)
            || name == "this"
            || self.api.serves(name)
    }

    fn variable(&mut self, name: &str, namespace: &rhai::Namespace, pos: Position, scope: &Scope) {
        if !namespace.is_empty() {
            let root = namespace.root();
            if root == "global" {
                if !self.any_global && !self.constants.contains(name) {
                    let hint = match self.top_lets.contains(name) {
                        true => format!(": `{name}` is a `let`; declare it `const {name} = ..;` to read it here"),
                        false => suggest(name, self.constants.iter().map(String::as_str)),
                    };
                    self.report(pos, format!("`global::{name}`: there is no top-level constant `{name}`{hint}"));
                }
            } else if !self.imports.contains_key(root) {
                let hint = suggest(root, self.imports.keys().map(String::as_str));
                self.report(pos, format!("`{root}::{name}`: no module is imported as `{root}`{hint}"));
            }
            return;
        }
        if self.variable_known(name, scope) {
            return;
        }
        let message = match (name, scope.in_fn) {
            _ if habit_hint(name).is_some() => {
                format!("variable `{name}` is not defined: {}", habit_hint(name).unwrap_or_default())
            }
            (_, true) if self.top_lets.contains(name) || self.constants.contains(name) => {
                let what = if self.constants.contains(name) {
                    format!("read the top-level constant as `global::{name}`")
                } else {
                    format!(
                        "declare it `const {name} = ..;` and read it as `global::{name}`, or pass it as a parameter"
                    )
                };
                format!(
                    "variable `{name}` is not defined in this function: a `fn` cannot see the variables of the top \
                     level; {what}"
                )
            }
            _ if self.api.has(name) => {
                format!("variable `{name}` is not defined: `{name}` is a function; call it, `{name}(..)`")
            }
            _ => {
                let candidates: Vec<&str> = scope
                    .names()
                    .chain(RESOLVED.iter().copied())
                    .chain(self.functions.keys().map(String::as_str))
                    .collect();
                format!("variable `{name}` is not defined{}", suggest(name, candidates.into_iter()))
            }
        };
        self.report(pos, message);
    }

    fn unknown_assignment(&self, name: &str, scope: &Scope) -> String {
        if let Some(hint) = habit_hint(name) {
            return format!("`{name} = ...` assigns to a variable that does not exist: {hint}");
        }
        if self.api.has(name) {
            return format!(
                "`{name} = ...` assigns to a variable that does not exist: `{name}` is a function; call it, \
                 `{name}(...);` (e.g. `wait_time(between(1, 2));`, `weight(3);`)"
            );
        }
        let candidates: Vec<&str> = scope.names().chain(RESOLVED.iter().copied()).collect();
        format!(
            "`{name} = ...` assigns to a variable that does not exist: declare it with `let {name} = ...;`{}",
            suggest(name, candidates.into_iter())
        )
    }

    fn args(&mut self, call: &FnCallExpr, scope: &mut Scope) {
        for arg in call.args.iter() {
            self.expr(arg, scope);
        }
    }

    fn call(&mut self, call: &FnCallExpr, pos: Position, scope: &mut Scope) {
        self.args(call, scope);
        if call.op_token.is_some() || call.name.starts_with("anon$") {
            return;
        }
        let name = call.name.as_str();
        if !call.namespace.is_empty() {
            let root = call.namespace.root();
            match self.imports.get(root) {
                None if root == "global" => {}
                None => {
                    let hint = suggest(root, self.imports.keys().map(String::as_str));
                    self.report(pos, format!("`{root}::{name}(..)`: no module is imported as `{root}`{hint}"));
                }
                Some(Some(functions)) if !functions.contains(name) => {
                    let hint = suggest(name, functions.iter().map(String::as_str));
                    self.report(
                        pos,
                        format!("`{root}::{name}(..)`: the module `{root}` has no function `{name}`{hint}"),
                    );
                }
                Some(_) => {}
            }
            return;
        }
        if self.api.has(name) || scope.has(name) {
            return;
        }
        match self.functions.get(name) {
            Some(arities) if arities.contains(&call.args.len()) || call.capture_parent_scope => {}
            Some(arities) => {
                let takes = arities.iter().map(usize::to_string).collect::<Vec<_>>().join(" or ");
                self.report(
                    pos,
                    format!("`{name}` takes {takes} argument(s), and this call passes {}", call.args.len()),
                );
            }
            None => {
                let candidates: Vec<&str> = self.functions.keys().map(String::as_str).chain(self.api_names()).collect();
                let hint = suggest(name, candidates.into_iter());
                self.report(
                    pos,
                    format!("function `{name}` is not defined in this file, its imports or the taskset API{hint}"),
                );
            }
        }
    }

    fn method(&mut self, call: &FnCallExpr, pos: Position, scope: &mut Scope) {
        self.args(call, scope);
        let name = call.name.as_str();
        if self.api.has(name) || self.functions.contains_key(name) {
            return;
        }
        let candidates: Vec<&str> = self.api_names().chain(self.functions.keys().map(String::as_str)).collect();
        let hint = suggest(name, candidates.into_iter());
        self.report(pos, format!("method `{name}` exists on no type{hint}"));
    }

    fn api_names(&self) -> impl Iterator<Item = &str> {
        self.api.names.iter().map(String::as_str)
    }
}
