//! Finding taskset files.
//!
//! Every `.rhai` file under the taskset folder, at any depth, is a taskset, named by its path without the extension
//! (`shop/browse`). Files and folders whose names start with `_` or `.` are skipped: they hold modules for
//! `import` and private data. The order is the sorted order of names, so it is the same on every machine.
//!
//! The path may also be a single `.rhai` file (`nest run -f locustfile.rhai`, as a Locust user would type it): it
//! is then the only taskset, named by its file stem, and its folder is where `import` and `_data/` resolve from.

use std::path::{Path, PathBuf};

use crate::error::LoadError;

/// One discovered taskset file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The taskset name: the path under the folder, without `.rhai`, with `/` separators.
    pub name: String,
    /// The file's path (the folder joined with its relative path).
    pub path: PathBuf,
}

/// The folder that `import` and `_data/` resolve from: `path` itself, or the folder of a single taskset file.
pub(crate) fn modules_root(path: &Path) -> PathBuf {
    if path.is_file() {
        match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
    } else {
        path.to_path_buf()
    }
}

/// Lists the tasksets under `dir`, sorted by name; `dir` may also be a single `.rhai` file.
pub fn discover(dir: &Path) -> Result<Vec<Discovered>, LoadError> {
    if dir.is_file() {
        return single_file(dir).map(|found| vec![found]);
    }
    if !dir.is_dir() {
        return Err(LoadError::plain(
            dir.display().to_string(),
            "taskset folder or file not found (give a folder of .rhai files or one .rhai file with -f PATH, \
             --taskset-dir, NEST_TASKSET_DIR or `taskset_dir:` in nest.yaml)"
                .to_owned(),
        ));
    }
    let mut found = Vec::new();
    let walker = walkdir::WalkDir::new(dir).follow_links(true).sort_by_file_name().into_iter();
    for entry in walker.filter_entry(|e| e.depth() == 0 || !is_hidden(e.file_name())) {
        let entry = entry.map_err(|e| LoadError::plain(dir.display().to_string(), e.to_string()))?;
        let path = entry.path();
        if !entry.file_type().is_file() || path.extension().is_none_or(|ext| ext != "rhai") {
            continue;
        }
        let Ok(relative) = path.strip_prefix(dir) else {
            continue;
        };
        let name = relative
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        found.push(Discovered { name, path: path.to_path_buf() });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// A taskset given as one file: named by its stem, whatever its name starts with (it was asked for by name).
fn single_file(path: &Path) -> Result<Discovered, LoadError> {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if path.extension().is_some_and(|ext| ext == "py") {
        return Err(LoadError::plain(
            path.display().to_string(),
            "not a taskset: nest runs Rhai tasksets (`.rhai`), not Python locustfiles; docs/from-locust.md shows \
             each Locust concept in Rhai"
                .to_owned(),
        ));
    }
    if path.extension().is_none_or(|ext| ext != "rhai") || stem.is_empty() {
        return Err(LoadError::plain(
            path.display().to_string(),
            "not a taskset: give a `.rhai` file or a folder of them".to_owned(),
        ));
    }
    Ok(Discovered { name: stem, path: path.to_path_buf() })
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| n.starts_with('_') || n.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_files_and_skips_private_ones() {
        let dir = std::env::temp_dir().join(format!("nest-discover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for f in ["a.rhai", "shop/browse.rhai", "shop/deep/x/y.rhai", "_common.rhai", "shop/_lib/z.rhai", ".h/q.rhai"] {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        std::fs::write(dir.join("notes.txt"), "").unwrap();
        let names: Vec<String> = discover(&dir).unwrap().into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["a", "shop/browse", "shop/deep/x/y"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_folder_is_an_error() {
        let err = discover(Path::new("/nonexistent/nest")).unwrap_err().to_string();
        assert!(err.contains("taskset folder or file not found") && err.contains("-f PATH"), "{err}");
    }

    #[test]
    fn a_single_file_is_the_only_taskset() {
        let dir = std::env::temp_dir().join(format!("nest-discover-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["locustfile.rhai", "other.rhai", "notes.txt", "locustfile.py"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let found = discover(&dir.join("locustfile.rhai")).unwrap();
        assert_eq!(found, [Discovered { name: "locustfile".into(), path: dir.join("locustfile.rhai") }]);
        assert_eq!(modules_root(&dir.join("locustfile.rhai")), dir);
        assert_eq!(modules_root(&dir), dir);
        let err = discover(&dir.join("notes.txt")).unwrap_err().to_string();
        assert!(err.contains("not a taskset: give a `.rhai` file"), "{err}");
        let err = discover(&dir.join("locustfile.py")).unwrap_err().to_string();
        assert!(err.contains("not Python locustfiles; docs/from-locust.md"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
