//! Test data for a run: the files named under `data:` in `nest.yaml` and those in `<taskset_dir>/_data/`, loaded
//! once before any load and checked against the scripts, and the per-pool rows of the report.
//!
//! Every problem is a [`UsageError`] (exit 2, nothing sent): a missing or malformed file (with its line), a name
//! given twice, a pool name a script uses that nothing declares, a pool without rows that a script uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nest_core::stats::PoolRow;
use nest_data::{DataRegistry, DataSource, Format, Segment};
use nest_rhai::Catalog;

use crate::config::LoadedConfig;
use crate::parse::UsageError;

/// The folder under the taskset folder whose data files are picked up by their stem.
pub const DATA_DIR: &str = "_data";

/// Where a data set was declared, for messages.
struct Declared {
    path: PathBuf,
    /// `nest.yaml:9:3`, or the file itself for `_data/`.
    place: String,
}

/// Loads every declared data file into pools over all the rows (segment 0/1: see [`for_segment`]) and checks the
/// scripts' pool names against them.
pub fn load(config: Option<&LoadedConfig>, catalog: &Catalog) -> Result<Arc<DataRegistry>, UsageError> {
    let declared = declared(config, &catalog.dir)?;
    for d in declared.values() {
        catalog.confine.check(&d.path).map_err(|message| UsageError(format!("{}: {message}", d.place)))?;
    }
    let sources: Vec<DataSource> =
        declared.iter().map(|(name, d)| DataSource { name: name.clone(), path: d.path.clone() }).collect();
    let data = DataRegistry::load(&sources, Segment::WHOLE).map_err(|errors| {
        let lines: Vec<String> = errors
            .0
            .iter()
            .map(|e| match declared.values().find(|d| d.path == e.file && d.place != d.path.display().to_string()) {
                Some(d) => format!("{e} (declared at {})", d.place),
                None => e.to_string(),
            })
            .collect();
        let head = if lines.len() == 1 {
            "a data file has an error".to_owned()
        } else {
            format!("{} errors in data files", lines.len())
        };
        UsageError(format!("{head}; nothing was run:\n{}", lines.join("\n")))
    })?;
    check(catalog, &data, Segment::WHOLE)?;
    Ok(Arc::new(data))
}

/// The pools of the plan's segment: each over the segment's share of its rows (the same data, not read again), so
/// that the segments of a split load never hold the same row; checked again, since a share may have no row.
pub fn for_segment(
    data: &Arc<DataRegistry>,
    catalog: &Catalog,
    segment: Segment,
) -> Result<Arc<DataRegistry>, UsageError> {
    if segment == Segment::WHOLE {
        return Ok(data.clone());
    }
    let part = data.for_segment(segment);
    check(catalog, &part, segment)?;
    Ok(Arc::new(part))
}

/// Checks the scripts' pool names against `data`, the pools of `segment`.
fn check(catalog: &Catalog, data: &DataRegistry, segment: Segment) -> Result<(), UsageError> {
    catalog.check_data(data).map_err(|errors| {
        let n = errors.0.len();
        let head = if n == 1 {
            "a taskset uses data that is not there".to_owned()
        } else {
            format!("{n} errors in the data tasksets use")
        };
        let of = if segment == Segment::WHOLE { String::new() } else { format!(" (segment {segment})") };
        UsageError(format!("{head}{of}; nothing was run:\n{errors}"))
    })
}

/// Every data set by name: `data:` in the config (paths relative to it), then the files of `<dir>/_data/`.
fn declared(config: Option<&LoadedConfig>, dir: &Path) -> Result<BTreeMap<String, Declared>, UsageError> {
    let mut found: BTreeMap<String, Declared> = BTreeMap::new();
    let mut add = |name: String, d: Declared| match found.get(&name) {
        Some(first) => Err(UsageError(format!(
            "{}: the data set `{name}` is declared twice: here ({}) and at {} ({})",
            d.place,
            d.path.display(),
            first.place,
            first.path.display()
        ))),
        None => {
            found.insert(name, d);
            Ok(())
        }
    };
    if let Some(config) = config {
        for (name, path) in &config.file.data {
            // `data/users.csv` rather than `./data/users.csv` when the file is in the current folder.
            let path = if config.dir() == Path::new(".") { path.clone() } else { config.dir().join(path) };
            add(name.clone(), Declared { path, place: config.locate(Some("data"), name) })?;
        }
    }
    for path in data_files(&dir.join(DATA_DIR))? {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else { continue };
        add(name, Declared { place: path.display().to_string(), path })?;
    }
    Ok(found)
}

/// The `.csv` and `.json` files of `folder`, sorted; none when it does not exist. Other files (a README, dot
/// files) are ignored.
fn data_files(folder: &Path) -> Result<Vec<PathBuf>, UsageError> {
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(folder)
        .map_err(|e| UsageError(format!("{}: cannot read the data folder: {e}", folder.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| UsageError(format!("{}: {e}", folder.display())))?.path();
        let hidden = path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
        if !hidden && path.is_file() && Format::of(&path).is_some() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The report's row of every pool, by name.
pub fn pool_rows(data: &DataRegistry) -> Vec<PoolRow> {
    data.iter()
        .map(|(name, pool)| {
            let s = pool.stats();
            PoolRow {
                name: name.to_owned(),
                rows: pool.len() as u64,
                claims: s.claims,
                releases: s.releases,
                max_held: s.max_held,
                waits: s.waits,
                longest_wait_ms: s.longest_wait.as_secs_f64() * 1000.0,
                timeouts: s.timeouts,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn picks_up_data_files_by_stem_and_ignores_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "_data/users.csv", "name\na\n");
        write(dir.path(), "_data/items.JSON", "[1]");
        write(dir.path(), "_data/README.md", "notes");
        write(dir.path(), "_data/.hidden.csv", "x\n");
        let found = declared(None, dir.path()).unwrap();
        assert_eq!(found.keys().collect::<Vec<_>>(), ["items", "users"]);
        assert!(declared(None, &dir.path().join("nowhere")).unwrap().is_empty());
    }

    #[test]
    fn a_name_declared_twice_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "_data/users.csv", "name\na\n");
        write(dir.path(), "_data/users.json", "[1]");
        let e = declared(None, dir.path()).err().unwrap().0;
        assert!(e.contains("the data set `users` is declared twice"), "{e}");
    }

    #[test]
    fn a_segment_claims_from_its_share_of_the_rows_and_an_empty_share_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "_data/users.csv", "name\na\nb\n");
        write(dir.path(), "t.rhai", "task(1, t);\nfn t() {\n    let u = data.claim(\"users\");\n}\n");
        let catalog = Catalog::load(dir.path()).unwrap();
        let data = load(None, &catalog).unwrap();
        assert!(Arc::ptr_eq(&for_segment(&data, &catalog, Segment::WHOLE).unwrap(), &data));
        // Two rows over three segments: 1/3 and 2/3 get one each, 0/3 none.
        let rows = |i| for_segment(&data, &catalog, Segment::new(i, 3).unwrap()).map(|d| pool_rows(&d)[0].rows);
        assert_eq!((rows(1).unwrap(), rows(2).unwrap()), (1, 1));
        let e = rows(0).unwrap_err().0;
        assert!(e.contains("(segment 0/3)") && e.contains("t.rhai:3:"), "{e}");
    }
}
