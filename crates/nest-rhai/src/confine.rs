//! Keeping what scripts read inside the project: `import` (and, through the binary, `data:` paths) must resolve
//! inside given folders once symbolic links are resolved.
//!
//! Scripts and data paths are trusted input: a taskset runs with the rights of whoever runs nest, often root in
//! CI. Confinement is a guard against the easy mistakes and the planted link, an `import "../../etc/secret"` or a
//! `tasksets/_common.rhai` that links elsewhere, not a sandbox: a script can still send what it reads over HTTP.
//! [`Confine`] holds the allowed folders, canonicalised once; [`Confined`] wraps a module resolver with the check.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Shared};

/// The folders that file paths must resolve into, or no limit.
#[derive(Debug, Clone, Default)]
pub struct Confine {
    roots: Option<Arc<[PathBuf]>>,
}

impl Confine {
    /// No limit: any path is allowed (`--no-confine`).
    pub fn off() -> Confine {
        Confine { roots: None }
    }

    /// Paths must resolve inside one of `roots` (each resolved now; a root that does not exist is skipped).
    pub fn within<P: AsRef<Path>>(roots: &[P]) -> Confine {
        let roots: Vec<PathBuf> = roots.iter().filter_map(|r| std::fs::canonicalize(r).ok()).collect();
        Confine { roots: Some(roots.into()) }
    }

    /// Whether paths are checked.
    pub fn is_on(&self) -> bool {
        self.roots.is_some()
    }

    /// Checks that `path` resolves inside a root. A path that does not exist is resolved as far as it exists (its
    /// nearest existing ancestor, links and all) and the rest is applied as written, so a missing file inside the
    /// project passes (reading it fails with its own error) and one outside does not. The error says where the
    /// path leads and which folders are allowed.
    pub fn check(&self, path: &Path) -> Result<(), String> {
        let Some(roots) = &self.roots else { return Ok(()) };
        let real = resolve(path);
        if roots.iter().any(|root| real.starts_with(root)) {
            return Ok(());
        }
        let allowed: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        Err(format!(
            "{} resolves to {}, outside the project ({}): nest reads only files inside it, after links are \
             resolved; pass --no-confine to allow it",
            path.display(),
            real.display(),
            allowed.join(", ")
        ))
    }
}

/// Where `path` leads: canonical if it exists; otherwise its nearest existing ancestor, canonical, with the missing
/// rest appended and its `.` and `..` applied lexically.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut missing = Vec::new();
    let mut base = absolute.as_path();
    let mut real = loop {
        match base.parent() {
            Some(parent) => {
                missing.extend(base.file_name().map(PathBuf::from).or_else(|| Some(PathBuf::from(".."))));
                base = parent;
                if let Ok(real) = std::fs::canonicalize(base) {
                    break real;
                }
            }
            None => break base.to_path_buf(),
        }
    };
    for part in missing.iter().rev() {
        match part.as_os_str().to_str() {
            Some("..") => {
                real.pop();
            }
            Some(".") => {}
            _ => real.push(part),
        }
    }
    real
}

/// A module resolver that refuses modules outside the confinement, then delegates.
pub(crate) struct Confined<R> {
    confine: Confine,
    /// Computes the file an `import` reads exactly as `inner` does (Rhai replaces any extension with `.rhai`).
    paths: rhai::module_resolvers::FileModuleResolver,
    inner: R,
}

impl<R> Confined<R> {
    /// Wraps `inner`, which resolves `import "x"` as a [`rhai::module_resolvers::FileModuleResolver`] based at
    /// `dir` does.
    pub(crate) fn new(confine: Confine, dir: &Path, inner: R) -> Confined<R> {
        Confined { confine, paths: rhai::module_resolvers::FileModuleResolver::new_with_path(dir), inner }
    }
}

impl<R: ModuleResolver> ModuleResolver for Confined<R> {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let file = self.paths.get_file_path(path, source.map(Path::new));
        // Not `ErrorModuleNotFound`: Rhai takes that for "try elsewhere" and reports a bare "Module not found".
        self.confine.check(&file).map_err(|message| -> Box<EvalAltResult> {
            EvalAltResult::ErrorRuntime(format!("import \"{path}\": {message}").into(), pos).into()
        })?;
        self.inner.resolve(engine, source, path, pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_resolve_inside_a_root_after_links() {
        let project = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.csv"), "a\n1\n").unwrap();
        std::fs::write(project.path().join("ok.csv"), "a\n1\n").unwrap();
        let confine = Confine::within(&[project.path()]);
        assert!(confine.check(&project.path().join("ok.csv")).is_ok());
        assert!(confine.check(&project.path().join("missing.csv")).is_ok(), "left to the read to report");
        let escape = project.path().join("../").join(outside.path().file_name().unwrap()).join("secret.csv");
        assert!(confine.check(&escape).unwrap_err().contains("outside the project"));
        let missing_escape = project.path().join("../").join(outside.path().file_name().unwrap()).join("nope.csv");
        assert!(confine.check(&missing_escape).unwrap_err().contains("outside the project"), "checked lexically");
        let missing_deep = project.path().join("no/such/../../../x.csv");
        assert!(confine.check(&missing_deep).is_err(), "`..` past a missing folder still counts");
        assert!(confine.check(&project.path().join("no/such/x.csv")).is_ok());
        #[cfg(unix)]
        {
            let link = project.path().join("link.csv");
            std::os::unix::fs::symlink(outside.path().join("secret.csv"), &link).unwrap();
            let message = confine.check(&link).unwrap_err();
            assert!(message.contains("--no-confine"), "{message}");
        }
        assert!(Confine::off().check(&escape).is_ok());
    }
}
