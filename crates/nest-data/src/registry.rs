//! The named pools of a run: every data file loaded once, before any load, and shared by all worker threads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{DataError, DataErrors};
use crate::partition::Segment;
use crate::pool::Pool;
use crate::set::DataSet;

/// A data file to load under a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource {
    /// The pool's name, as scripts use it (`users`).
    pub name: String,
    /// The file.
    pub path: PathBuf,
}

/// The pools of a run, by name. Cheap to share: wrap it in an `Arc`.
#[derive(Debug, Default)]
pub struct DataRegistry {
    pools: BTreeMap<String, Arc<Pool>>,
}

impl DataRegistry {
    /// A registry without pools.
    pub fn new() -> DataRegistry {
        DataRegistry::default()
    }

    /// Loads every source, each file once, into pools over `segment`'s share of the rows. Reports every file that
    /// failed, not only the first.
    pub fn load(sources: &[DataSource], segment: Segment) -> Result<DataRegistry, DataErrors> {
        let mut registry = DataRegistry::new();
        let mut errors: Vec<DataError> = Vec::new();
        for source in sources {
            match DataSet::load(&source.path) {
                Ok(set) => {
                    registry.insert(source.name.clone(), Arc::new(set), segment);
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() { Ok(registry) } else { Err(DataErrors(errors)) }
    }

    /// Adds (or replaces) the pool `name` over `segment`'s share of `data`, and returns it.
    pub fn insert(&mut self, name: impl Into<String>, data: Arc<DataSet>, segment: Segment) -> Arc<Pool> {
        let name = name.into();
        let pool = Arc::new(Pool::new(name.clone(), data, segment));
        self.pools.insert(name, pool.clone());
        pool
    }

    /// The same data sets, each in a fresh pool over `segment`'s share of its rows: what the segment of a split load
    /// claims from. Nothing is read again.
    pub fn for_segment(&self, segment: Segment) -> DataRegistry {
        let mut registry = DataRegistry::new();
        for (name, pool) in &self.pools {
            registry.insert(name.clone(), pool.data().clone(), segment);
        }
        registry
    }

    /// The pool `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Pool>> {
        self.pools.get(name)
    }

    /// Every pool, by name in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Pool>)> {
        self.pools.iter().map(|(name, pool)| (name.as_str(), pool))
    }

    /// The pool names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pools.keys().map(String::as_str)
    }

    /// The number of pools.
    pub fn len(&self) -> usize {
        self.pools.len()
    }

    /// Whether there is no pool.
    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_every_source_and_reports_every_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("users.csv");
        std::fs::write(&good, "name\nada\ngrace\nlinus\n").unwrap();
        let bad = dir.path().join("items.json");
        std::fs::write(&bad, "{}").unwrap();
        let missing = dir.path().join("gone.csv");
        let source = |name: &str, path: &PathBuf| DataSource { name: name.into(), path: path.clone() };

        let registry = DataRegistry::load(&[source("users", &good)], Segment::new(1, 2).unwrap()).unwrap();
        let users = registry.get("users").unwrap();
        assert_eq!((users.len(), users.data().len()), (2, 3), "segment 1/2 of 3 rows");
        assert_eq!(registry.names().collect::<Vec<_>>(), ["users"]);

        let errors = DataRegistry::load(
            &[source("users", &good), source("items", &bad), source("gone", &missing)],
            Segment::WHOLE,
        )
        .unwrap_err();
        assert_eq!(errors.0.len(), 2);
        let text = errors.to_string();
        assert!(text.contains("items.json: expected a JSON array") && text.contains("gone.csv: cannot read"), "{text}");
    }

    #[test]
    fn a_segments_registry_shares_the_sets_and_splits_every_pool() {
        let mut whole = DataRegistry::new();
        let set = Arc::new(DataSet::from_csv("users.csv", "name\na\nb\nc\nd\ne\n".as_bytes()).unwrap());
        whole.insert("users", set.clone(), Segment::WHOLE);
        let mut rows = Vec::new();
        for index in 0..3 {
            let part = whole.for_segment(Segment::new(index, 3).unwrap());
            let pool = part.get("users").unwrap();
            assert!(Arc::ptr_eq(pool.data(), &set), "the rows are not read again");
            rows.extend(std::iter::from_fn(|| pool.next()).take(pool.len()).map(|id| id.0));
        }
        rows.sort_unstable();
        assert_eq!(rows, [0, 1, 2, 3, 4], "the segments' pools hold every row once");
    }
}
