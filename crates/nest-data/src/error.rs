//! Errors of loading a data file: the file, the line (and column, for JSON), and what is wrong.
//!
//! Messages read `users.csv:17: expected 3 fields, found 2`, so that an editor can jump to the place. The kind is
//! data ([`ErrorKind`]) for callers that group or test errors; the text is for people.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What is wrong with a data file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be opened or read (it does not exist, or is not readable).
    #[error("cannot read the data file: {0}")]
    Read(#[source] io::Error),
    /// The file name ends neither in `.csv` nor in `.json`.
    #[error("unknown data format: a data file ends in .csv (with a header row) or .json (an array)")]
    UnknownFormat,
    /// A CSV file is empty: it has no header row naming the columns.
    #[error("no header row: the first line of a CSV data file names its columns")]
    NoHeader,
    /// Two CSV columns have the same name.
    #[error("column `{0}` is named twice in the header row")]
    DuplicateColumn(String),
    /// A CSV row has more or fewer fields than the header row.
    #[error("expected {expected} fields, found {found}")]
    FieldCount {
        /// Fields in the header row.
        expected: u64,
        /// Fields in this row.
        found: u64,
    },
    /// Any other CSV error (invalid UTF-8, for example).
    #[error("{0}")]
    Csv(String),
    /// The JSON text does not parse.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The JSON parses, but is not an array of rows.
    #[error("expected a JSON array of rows (objects or values), found {0}")]
    NotArray(&'static str),
    /// The path is not a regular file (a folder, FIFO, socket or device): nest reads only files.
    #[error("the data file is {0}: give a regular file")]
    NotAFile(&'static str),
    /// The file is larger than nest reads.
    #[error("the data file is larger than {} MiB, the most nest reads", limit >> 20)]
    FileTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The text of the file is larger than a data set holds (4 GiB).
    #[error("the data file is too large: a data set holds at most 4 GiB of text")]
    TooLarge,
}

/// An error of one data file.
#[derive(Debug, thiserror::Error)]
pub struct DataError {
    /// The file, as given.
    pub file: PathBuf,
    /// The 1-based line, when the error has one.
    pub line: Option<u64>,
    /// The 1-based column, when the error has one (JSON syntax errors).
    pub column: Option<u64>,
    /// What is wrong.
    #[source]
    pub kind: ErrorKind,
}

impl DataError {
    pub(crate) fn new(file: impl Into<PathBuf>, kind: ErrorKind) -> DataError {
        DataError { file: file.into(), line: None, column: None, kind }
    }

    pub(crate) fn at(file: impl Into<PathBuf>, line: Option<u64>, column: Option<u64>, kind: ErrorKind) -> DataError {
        DataError { file: file.into(), line, column, kind }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.kind)
    }
}

/// The errors of several data files, reported together, one per line.
#[derive(Debug, thiserror::Error)]
pub struct DataErrors(pub Vec<DataError>);

impl fmt::Display for DataErrors {
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
