//! What a segment elsewhere needs from this machine: the taskset folder, `nest.yaml` and its data files.
//!
//! A remote host or a pod starts from nothing, so the launcher ships these files and runs the segment in their
//! copy, from the folder that holds the same relative paths. Every path must therefore lie under the project
//! folder (the current directory): one outside it would not exist over there. The run flags that name files
//! (`--config`, `-f`) are rewritten relative to that folder, so the same flags work on both sides.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Why the files cannot be shipped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A path outside the project folder.
    #[error("{0}: outside the project folder {1}: only files under it can be copied (run from a folder above it)")]
    Outside(PathBuf, PathBuf),
    /// A file that cannot be read.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A `nest.yaml` that does not parse.
    #[error("{0}: {1}")]
    Config(PathBuf, String),
    /// A flag without its value.
    #[error("{0} needs a value")]
    MissingValue(String),
}

/// The files to ship, relative to the project folder, and the run flags rewritten to match.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The project folder (absolute).
    pub root: PathBuf,
    /// Every regular file to copy, relative to `root`, sorted, each once.
    pub files: Vec<PathBuf>,
    /// The run flags, with `--config` and `-f` relative to `root`.
    pub run_args: Vec<OsString>,
}

/// The run flags that name a file or folder to ship.
const PATH_FLAGS: [&str; 4] = ["--config", "-f", "--taskset-dir", "--locustfile"];

impl Bundle {
    /// Collects the files of `nest run RUN_ARGS` started in `root`: the config (`--config`, else `nest.yaml` if
    /// present), the taskset path (`-f`, else the config's `taskset_dir`, else `env_taskset_dir`, else
    /// `tasksets`) and the config's data files.
    pub fn collect(root: &Path, run_args: &[OsString], env_taskset_dir: Option<&Path>) -> Result<Bundle, BundleError> {
        let root = std::path::absolute(root).map_err(|e| BundleError::Io(root.to_path_buf(), e))?;
        let mut bundle = Bundle { root: root.clone(), files: Vec::new(), run_args: Vec::new() };
        let (mut config, mut tasksets) = (None, None);
        let mut args = run_args.iter();
        while let Some(arg) = args.next() {
            let text = arg.to_string_lossy();
            let (flag, inline) = match text.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(OsString::from(v))),
                _ => (text.clone().into_owned(), None),
            };
            if !PATH_FLAGS.contains(&flag.as_str()) {
                bundle.run_args.push(arg.clone());
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => args.next().cloned().ok_or_else(|| BundleError::MissingValue(flag.clone()))?,
            };
            let relative = bundle.relative(Path::new(&value))?;
            bundle.run_args.extend([OsString::from(&flag), relative.clone().into_os_string()]);
            match flag.as_str() {
                "--config" => config = Some(relative),
                _ => tasksets = Some(relative),
            }
        }
        let config = config.or_else(|| root.join("nest.yaml").is_file().then(|| PathBuf::from("nest.yaml")));
        let mut from_config = None;
        if let Some(config) = &config {
            bundle.add(config)?;
            from_config = bundle.config_paths(config)?;
        }
        let config_dir = config.as_deref().and_then(Path::parent).unwrap_or(Path::new("")).to_path_buf();
        let (config_tasksets, data) = from_config.unwrap_or_default();
        for path in &data {
            let path = bundle.relative(&config_dir.join(path))?;
            bundle.add(&path)?;
        }
        let tasksets = match (tasksets, config_tasksets, env_taskset_dir) {
            (Some(t), _, _) => t,
            (None, Some(t), _) => bundle.relative(&config_dir.join(t))?,
            (None, None, Some(env)) => {
                let relative = bundle.relative(env)?;
                bundle.run_args.extend([OsString::from("-f"), relative.clone().into_os_string()]);
                relative
            }
            (None, None, None) => PathBuf::from("tasksets"),
        };
        bundle.add(&tasksets)?;
        bundle.files.sort();
        bundle.files.dedup();
        Ok(bundle)
    }

    /// `path` relative to the root, checked to stay inside it (`..` resolved by the letter, links followed).
    fn relative(&self, path: &Path) -> Result<PathBuf, BundleError> {
        let absolute = if path.is_absolute() { path.to_path_buf() } else { self.root.join(path) };
        let real = absolute.canonicalize().map_err(|e| BundleError::Io(path.to_path_buf(), e))?;
        let root = self.root.canonicalize().map_err(|e| BundleError::Io(self.root.clone(), e))?;
        let relative = real.strip_prefix(&root).map_err(|_| BundleError::Outside(path.to_path_buf(), root.clone()))?;
        if relative.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(BundleError::Outside(path.to_path_buf(), root));
        }
        Ok(if relative.as_os_str().is_empty() { PathBuf::from(".") } else { relative.to_path_buf() })
    }

    /// Adds a file, or every regular file under a folder (hidden ones included, links followed).
    fn add(&mut self, relative: &Path) -> Result<(), BundleError> {
        let path = self.root.join(relative);
        for entry in walkdir::WalkDir::new(&path).follow_links(true) {
            let entry = entry.map_err(|e| BundleError::Io(relative.to_path_buf(), e.into()))?;
            if entry.file_type().is_file() {
                let inner = entry.path().strip_prefix(&path).unwrap_or(Path::new(""));
                let file = if inner.as_os_str().is_empty() { relative.to_path_buf() } else { relative.join(inner) };
                self.files.push(file);
            }
        }
        Ok(())
    }

    /// The config's `taskset_dir` and `data` files (relative to the config's folder); `None` when it is not a map.
    #[allow(clippy::type_complexity)]
    fn config_paths(&self, config: &Path) -> Result<Option<(Option<PathBuf>, Vec<PathBuf>)>, BundleError> {
        let path = self.root.join(config);
        let text = std::fs::read_to_string(&path).map_err(|e| BundleError::Io(config.to_path_buf(), e))?;
        let value: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).map_err(|e| BundleError::Config(config.to_path_buf(), e.to_string()))?;
        let Some(map) = value.as_mapping() else { return Ok(None) };
        let tasksets = map.get("taskset_dir").and_then(|v| v.as_str()).map(PathBuf::from);
        let data = match map.get("data").and_then(|d| d.as_mapping()) {
            Some(pools) => pools.values().filter_map(|v| v.as_str()).map(PathBuf::from).collect(),
            None => Vec::new(),
        };
        Ok(Some((tasksets, data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, relative: &str, text: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn ships_the_config_its_data_and_the_tasksets_with_the_flags_made_relative() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "tasksets/a.rhai", "");
        write(root, "tasksets/sub/b.rhai", "");
        write(root, "conf/nest.yaml", "data:\n  users: ../data/users.csv\n");
        write(root, "data/users.csv", "name\n");
        write(root, "other.txt", "not shipped");
        let tasksets = root.join("tasksets").display().to_string();
        let bundle =
            Bundle::collect(root, &args(&["-u", "2", "--config=conf/nest.yaml", "-f", &tasksets]), None).unwrap();
        let files: Vec<_> = bundle.files.iter().map(|f| f.display().to_string()).collect();
        assert_eq!(files, ["conf/nest.yaml", "data/users.csv", "tasksets/a.rhai", "tasksets/sub/b.rhai"]);
        assert_eq!(bundle.run_args, args(&["-u", "2", "--config", "conf/nest.yaml", "-f", "tasksets"]));
    }

    #[test]
    fn the_default_config_and_its_taskset_dir_are_found() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "nest.yaml", "taskset_dir: load\n");
        write(dir.path(), "load/x.rhai", "");
        let bundle = Bundle::collect(dir.path(), &[], None).unwrap();
        assert_eq!(bundle.files, [PathBuf::from("load/x.rhai"), PathBuf::from("nest.yaml")]);
    }

    #[test]
    fn a_path_outside_the_project_folder_is_refused_by_name() {
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "t/a.rhai", "");
        let dir = tempfile::tempdir().unwrap();
        let flag = outside.path().join("t").display().to_string();
        let err = Bundle::collect(dir.path(), &args(&["-f", &flag]), None).unwrap_err().to_string();
        assert!(err.contains("outside the project folder") && err.contains(&flag), "{err}");
    }

    #[test]
    fn the_env_taskset_dir_becomes_a_flag() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "mine/a.rhai", "");
        let bundle = Bundle::collect(dir.path(), &[], Some(Path::new("mine"))).unwrap();
        assert_eq!(bundle.run_args, args(&["-f", "mine"]));
        assert_eq!(bundle.files, [PathBuf::from("mine/a.rhai")]);
    }
}
