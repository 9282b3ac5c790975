//! A loaded data file: an immutable table of rows, compact enough for millions of rows.
//!
//! A CSV data set keeps one header and the text of every field back to back in a single string, with one `u32`
//! offset per field: a million rows of three short fields take tens of megabytes, not the hundreds that a
//! `String` per field would. A JSON data set keeps one `serde_json::Value` per row. Either way the set is built
//! once, never changes, and is shared read-only (`Send + Sync`) by every thread through an `Arc`.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The format of a data file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// A JSON array of objects or values.
    Json,
}

impl Format {
    /// The format of `path` (`.csv` or `.json`, in any case), or `None`.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// The rows of a data set, in one of two layouts.
#[derive(Debug)]
pub(crate) enum Rows {
    Csv {
        header: Box<[Box<str>]>,
        /// Every field's text, back to back.
        text: Box<str>,
        /// `rows * columns + 1` offsets into `text`: field `k` of row `r` is `bounds[r*n+k] .. bounds[r*n+k+1]`.
        bounds: Box<[u32]>,
    },
    Json(Box<[Value]>),
}

/// One data file, loaded: see the module docs.
#[derive(Debug)]
pub struct DataSet {
    origin: PathBuf,
    rows: Rows,
}

impl DataSet {
    pub(crate) fn new(origin: PathBuf, rows: Rows) -> DataSet {
        DataSet { origin, rows }
    }

    /// The file the set was loaded from, as given.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        match &self.rows {
            Rows::Csv { header, bounds, .. } => (bounds.len() - 1) / header.len(),
            Rows::Json(rows) => rows.len(),
        }
    }

    /// Whether the set has no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The format the set was loaded from.
    pub fn format(&self) -> Format {
        match self.rows {
            Rows::Csv { .. } => Format::Csv,
            Rows::Json(_) => Format::Json,
        }
    }

    /// The column names of a CSV set; empty for JSON.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        let header: &[Box<str>] = match &self.rows {
            Rows::Csv { header, .. } => header,
            Rows::Json(_) => &[],
        };
        header.iter().map(|h| &**h)
    }

    /// Row `index` (0-based). Panics when `index >= len()`.
    pub fn row(&self, index: usize) -> Row<'_> {
        match &self.rows {
            Rows::Csv { header, text, bounds } => {
                let n = header.len();
                assert!(index < self.len(), "row {index} of a data set of {} rows", self.len());
                Row::Csv(CsvRow { header, text, bounds: &bounds[index * n..=index * n + n] })
            }
            Rows::Json(rows) => Row::Json(&rows[index]),
        }
    }
}

/// One row of a data set, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub enum Row<'a> {
    /// A CSV row: named string fields.
    Csv(CsvRow<'a>),
    /// A JSON row: an object, or any other value.
    Json(&'a Value),
}

impl<'a> Row<'a> {
    /// The field `name` of a CSV row, or the string member `name` of a JSON object row.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        match self {
            Row::Csv(row) => row.get(name),
            Row::Json(value) => value.get(name)?.as_str(),
        }
    }

    /// The row as JSON: an object of strings for a CSV row, the value itself for a JSON row.
    pub fn to_json(&self) -> Value {
        match self {
            Row::Csv(row) => Value::Object(row.fields().map(|(k, v)| (k.to_owned(), Value::from(v))).collect()),
            Row::Json(value) => (*value).clone(),
        }
    }
}

/// A CSV row: the header's names paired with this row's fields.
#[derive(Debug, Clone, Copy)]
pub struct CsvRow<'a> {
    header: &'a [Box<str>],
    text: &'a str,
    bounds: &'a [u32],
}

impl<'a> CsvRow<'a> {
    /// `(column, value)` for every field, in column order.
    pub fn fields(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        let (header, text, bounds) = (self.header, self.text, self.bounds);
        header.iter().zip(bounds.windows(2)).map(move |(name, w)| (&**name, &text[w[0] as usize..w[1] as usize]))
    }

    /// The value of column `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}
