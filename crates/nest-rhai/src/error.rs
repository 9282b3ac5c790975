//! Script errors with their place: `file:line:col: message`.
//!
//! Rhai nests errors raised inside functions and modules, and leaves gaps: limit errors carry no position and the
//! file name is only on some layers. This module walks the nesting to the innermost error, keeps the nearest file
//! name, and falls back to the position of the task's own `fn` when Rhai gives none.

use std::fmt;
use std::path::Path;

use rhai::{EvalAltResult, ParseError, Position};

/// An error found while loading tasksets, before any load is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The file (or folder) at fault.
    pub file: String,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl LoadError {
    /// An error at a place in a file.
    pub fn at(file: impl Into<String>, position: Position, message: impl Into<String>) -> LoadError {
        LoadError { file: file.into(), position: line_col(position), message: message.into() }
    }
    /// An error about a whole file or folder.
    pub fn plain(file: impl Into<String>, message: impl Into<String>) -> LoadError {
        LoadError { file: file.into(), position: None, message: message.into() }
    }
    /// From a parse error of `file`.
    pub fn parse(file: &str, error: &ParseError) -> LoadError {
        LoadError::at(file, error.1, error.0.to_string())
    }
    /// From an error raised while running `file`'s top level.
    pub fn eval(file: &str, error: &EvalAltResult) -> LoadError {
        let (source, position, message) = innermost(error, file);
        LoadError { file: source, position: line_col(position), message }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => write!(f, "{}:{line}:{col}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Several load errors, one per broken file, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// `file:line:col` and message of a runtime error, with `fallback` as the place when Rhai knows none.
///
/// Module sources are named by their import path (`_common`); `modules` is the folder they resolve from, so the
/// location names the file (`tasksets/_common.rhai:3:5`).
pub(crate) fn locate(error: &EvalAltResult, file: &str, fallback: &str, modules: &Path) -> (String, String) {
    // Limit errors carry the position of the outermost call, not of the loop or recursion: point at the task.
    let limit = match error.unwrap_inner() {
        EvalAltResult::ErrorTooManyOperations(_) => Some(format!(
            "too many operations (more than {} in one call): a loop that never ends?",
            crate::engine::MAX_OPERATIONS
        )),
        EvalAltResult::ErrorStackOverflow(_) => Some(format!(
            "too many nested function calls (more than {}): runaway recursion?",
            crate::engine::MAX_CALL_LEVELS
        )),
        EvalAltResult::ErrorTerminated(value, _) => Some(value.to_string()),
        // Rhai places these at the outermost call (the call script), not where the value grew.
        EvalAltResult::ErrorDataTooLarge(what, _) => Some(too_large(what)),
        _ => None,
    };
    if let Some(message) = limit {
        return (fallback.to_owned(), message);
    }
    let (source, position, message) = innermost(error, file);
    let location = match line_col(position) {
        Some((line, col)) if source != CALL_SOURCE => format!("{}:{line}:{col}", module_file(&source, modules)),
        _ => fallback.to_owned(),
    };
    (location, message)
}

/// The source name of the tiny scripts that call a task; errors placed there have no useful position.
pub(crate) const CALL_SOURCE: &str = "<call>";

fn module_file(source: &str, modules: &Path) -> String {
    if source.ends_with(".rhai") || source.is_empty() || source == CALL_SOURCE {
        source.to_owned()
    } else {
        modules.join(format!("{source}.rhai")).display().to_string()
    }
}

fn innermost(error: &EvalAltResult, file: &str) -> (String, Position, String) {
    match error {
        EvalAltResult::ErrorInFunctionCall(_, source, inner, _) => {
            innermost(inner, if source.is_empty() { file } else { source })
        }
        EvalAltResult::ErrorInModule(path, inner, _) => innermost(inner, if path.is_empty() { file } else { path }),
        EvalAltResult::ErrorRuntime(value, position) => {
            let message = if value.is_unit() { "runtime error".to_owned() } else { value.to_string() };
            (file.to_owned(), *position, message)
        }
        EvalAltResult::ErrorTerminated(value, position) => (file.to_owned(), *position, value.to_string()),
        EvalAltResult::ErrorDataTooLarge(what, position) => (file.to_owned(), *position, too_large(what)),
        EvalAltResult::ErrorVariableNotFound(name, position) => {
            let hint = crate::check::habit_hint(name).map(|h| format!(": {h}")).unwrap_or_default();
            (file.to_owned(), *position, format!("Variable not found: {name}{hint}"))
        }
        other => {
            let position = other.position();
            let text = other.to_string();
            let message = match text.strip_suffix(&format!(" ({position})")) {
                Some(bare) if !position.is_none() => bare.to_owned(),
                _ => text,
            };
            (file.to_owned(), position, message)
        }
    }
}

/// The message of a value that outgrew a size limit, naming the setting that raises it.
fn too_large(what: &str) -> String {
    let (value, setting) = match what {
        "Length of string" => ("a string", "max_string_size"),
        "Size of object map" => ("a map", "max_map_size"),
        w if w.starts_with("Size of array") => ("an array", "max_array_size"),
        other => return format!("{other} too large"),
    };
    format!(
        "{value} grew larger than {setting} allows: a runaway loop? (raise the limit with --{} or `{setting}:` in \
         nest.yaml)",
        setting.replace('_', "-")
    )
}

fn line_col(position: Position) -> Option<(usize, usize)> {
    Some((position.line()?, position.position().unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_file_line_col() {
        let e = LoadError::at("t/a.rhai", Position::new(3, 7), "Unexpected ';'");
        assert_eq!(e.to_string(), "t/a.rhai:3:7: Unexpected ';'");
        assert_eq!(LoadError::plain("t/b.rhai", "no task").to_string(), "t/b.rhai: no task");
    }

    #[test]
    fn locates_the_innermost_error_in_its_own_file() {
        let inner = EvalAltResult::ErrorRuntime("boom".into(), Position::new(9, 5));
        let nested = EvalAltResult::ErrorInFunctionCall(
            "helper".into(),
            "t/_common.rhai".into(),
            inner.into(),
            Position::new(2, 1),
        );
        let outer =
            EvalAltResult::ErrorInFunctionCall("task".into(), "t/a.rhai".into(), nested.into(), Position::new(1, 1));
        assert_eq!(
            locate(&outer, CALL_SOURCE, "t/a.rhai:1:1", Path::new("t")),
            ("t/_common.rhai:9:5".into(), "boom".into())
        );
        let in_module = EvalAltResult::ErrorInFunctionCall(
            "helper".into(),
            "_lib".into(),
            EvalAltResult::ErrorRuntime("bad".into(), Position::new(2, 5)).into(),
            Position::new(1, 1),
        );
        assert_eq!(locate(&in_module, CALL_SOURCE, "x", Path::new("t")).0, "t/_lib.rhai:2:5");
    }

    #[test]
    fn falls_back_when_rhai_has_no_position() {
        let inner = EvalAltResult::ErrorTooManyOperations(Position::new(1, 1));
        let e = EvalAltResult::ErrorInFunctionCall("spin".into(), "t/a.rhai".into(), inner.into(), Position::new(1, 1));
        let (location, message) = locate(&e, CALL_SOURCE, "t/a.rhai:4:1", Path::new("t"));
        assert_eq!(location, "t/a.rhai:4:1");
        assert!(message.starts_with("too many operations"), "{message}");
    }
}
