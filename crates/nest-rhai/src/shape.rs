//! Scripted load shapes: Locust's `LoadTestShape`, as a Rhai file that changes without recompiling.
//!
//! A shape file defines `fn tick(t)`: given the seconds since the start, it returns
//! `#{ users: 50, spawn_rate: 10 }` (spawn rate optional: all at once) or `()` to end the run. The runner asks it
//! once a second. The file is compiled and checked before any load; an error while ticking ends the run and is
//! reported with its `file:line:col`.

use std::path::Path;
use std::time::Duration;

use nest_core::{ShapeTick, TaskError};
use rhai::{AST, Dynamic, Engine, Map, Scope};

use crate::error::{LoadError, locate};

/// A compiled shape file.
pub struct LoadShape {
    engine: Engine,
    ast: AST,
    path: String,
    tick_location: String,
}

impl LoadShape {
    /// Compiles a shape file and checks that it defines `fn tick(t)`.
    pub fn load(path: &Path) -> Result<LoadShape, LoadError> {
        let display = path.display().to_string();
        let source = std::fs::read_to_string(path)
            .map_err(|e| LoadError::plain(display.clone(), format!("cannot read the shape file: {e}")))?;
        let mut engine = Engine::new();
        engine.set_max_operations(crate::engine::MAX_OPERATIONS);
        engine.set_max_call_levels(crate::engine::MAX_CALL_LEVELS);
        engine.set_max_expr_depths(crate::engine::MAX_EXPR_DEPTH, crate::engine::MAX_FN_EXPR_DEPTH);
        let mut ast = engine.compile(&source).map_err(|e| LoadError::parse(&display, &e))?;
        ast.set_source(display.as_str());
        if !ast.iter_functions().any(|f| f.name == "tick" && f.params.len() == 1) {
            return Err(LoadError::plain(display, "a shape file defines `fn tick(t)` (t: seconds since the start)"));
        }
        let line = source.lines().position(|l| l.trim_start().starts_with("fn tick")).map_or(1, |i| i + 1);
        let tick_location = format!("{display}:{line}:1");
        Ok(LoadShape { engine, ast, path: display, tick_location })
    }

    /// What the shape wants at `elapsed` since the start.
    pub fn tick(&self, elapsed: Duration) -> ShapeTick {
        let t = elapsed.as_secs_f64();
        let options = rhai::CallFnOptions::new().eval_ast(false);
        match self.engine.call_fn_with_options::<Dynamic>(options, &mut Scope::new(), &self.ast, "tick", (t,)) {
            Ok(value) if value.is_unit() => ShapeTick::Stop,
            Ok(value) => match value.try_cast::<Map>().map(target) {
                Some(Ok(tick)) => tick,
                Some(Err(message)) => self.failed(message),
                None => self.failed("tick(t) must return a map like #{ users: 10, spawn_rate: 2 }, or ()".into()),
            },
            Err(e) => {
                let (location, message) = locate(&e, &self.path, &self.tick_location, Path::new("."));
                ShapeTick::Failed(TaskError { location, message })
            }
        }
    }

    fn failed(&self, message: String) -> ShapeTick {
        ShapeTick::Failed(TaskError { location: self.tick_location.clone(), message })
    }
}

fn target(map: Map) -> Result<ShapeTick, String> {
    for key in map.keys() {
        if !matches!(key.as_str(), "users" | "spawn_rate") {
            return Err(format!("tick(t) returned an unknown key `{key}`: expected users and spawn_rate"));
        }
    }
    let users = map
        .get("users")
        .and_then(|u| u.as_int().ok())
        .and_then(|u| u64::try_from(u).ok())
        .ok_or("tick(t) must return `users`, a whole number >= 0")?;
    let spawn_rate = match map.get("spawn_rate") {
        None => None,
        Some(r) => match r.as_float().ok().or_else(|| r.as_int().ok().map(|i| i as f64)) {
            Some(r) if r.is_finite() && r > 0.0 => Some(r),
            _ => return Err("`spawn_rate` must be a number above 0".into()),
        },
    };
    Ok(ShapeTick::Target { users, spawn_rate })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(src: &str) -> Result<LoadShape, LoadError> {
        let dir = tempfile_dir();
        let path = dir.join("shape.rhai");
        std::fs::write(&path, src).unwrap();
        LoadShape::load(&path)
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("nest-shape-{}-{:?}", std::process::id(), std::thread::current().id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn ticks_follow_the_script() {
        let s = shape("fn tick(t) {\n if t < 10.0 { #{ users: 5, spawn_rate: 2 } } else if t < 20.0 { #{ users: 1 } } else { () }\n}\n")
            .unwrap();
        assert_eq!(s.tick(Duration::from_secs(0)), ShapeTick::Target { users: 5, spawn_rate: Some(2.0) });
        assert_eq!(s.tick(Duration::from_secs(12)), ShapeTick::Target { users: 1, spawn_rate: None });
        assert_eq!(s.tick(Duration::from_secs(25)), ShapeTick::Stop);
    }

    #[test]
    fn bad_shapes_are_reported() {
        assert!(shape("fn tock(t) { () }").err().unwrap().to_string().contains("defines `fn tick(t)`"));
        assert!(shape("fn tick(t) { let = ; }").is_err());
        let s = shape("fn tick(t) {\n  #{ users: -1 }\n}\n").unwrap();
        assert!(matches!(s.tick(Duration::ZERO), ShapeTick::Failed(e) if e.message.contains("users")));
        let s = shape("fn tick(t) {\n  throw \"no\";\n}\n").unwrap();
        let ShapeTick::Failed(e) = s.tick(Duration::ZERO) else { panic!("failed") };
        assert!(e.location.ends_with("shape.rhai:2:3"), "{}", e.location);
        let s = shape("fn tick(t) { #{ users: 1, rate: 3 } }").unwrap();
        assert!(matches!(s.tick(Duration::ZERO), ShapeTick::Failed(e) if e.message.contains("unknown key `rate`")));
    }
}
