//! Finding taskset files.
//!
//! Every `.rhai` file under the taskset folder, at any depth, is a taskset, named by its path without the extension
//! (`shop/browse`). Files and folders whose names start with `_` or `.` are skipped: they hold modules for
//! `import` and private data. The order is the sorted order of names, so it is the same on every machine.

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

/// Lists the tasksets under `dir`, sorted by name.
pub fn discover(dir: &Path) -> Result<Vec<Discovered>, LoadError> {
    if !dir.is_dir() {
        return Err(LoadError::plain(
            dir.display().to_string(),
            "taskset folder not found (set it with --taskset-dir)".to_owned(),
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
        assert!(discover(Path::new("/nonexistent/nest")).is_err());
    }
}
