//! Reading CSV and JSON files into [`DataSet`]s, with errors that name the file and line.
//!
//! CSV is read record by record into one reused record, so a large file is never held twice in memory: its fields
//! are appended to the set's single text buffer as they come. A row with the wrong number of fields stops the load
//! with the row's line. JSON is parsed whole (serde_json), and must be an array.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::error::{DataError, ErrorKind};
use crate::set::{DataSet, Format, Rows};

impl DataSet {
    /// Loads `path`, as CSV or JSON by its extension. Only a regular file (or a link to one) of at most
    /// [`MAX_FILE_BYTES`] is read: a FIFO would block the load forever and `/dev/zero` would never end.
    pub fn load(path: &Path) -> Result<DataSet, DataError> {
        let format = Format::of(path).ok_or_else(|| DataError::new(path, ErrorKind::UnknownFormat))?;
        let read = |e| DataError::new(path, ErrorKind::Read(e));
        let file = open_regular(path)?;
        // `take` bounds the read even if the file grows while it is read.
        let reader = file.take(MAX_FILE_BYTES + 1);
        let set = match format {
            Format::Csv => DataSet::from_csv(path, CappedReader(reader)),
            Format::Json => {
                let mut text = Vec::new();
                CappedReader(reader).read_to_end(&mut text).map_err(read)?;
                DataSet::from_json(path, &text)
            }
        };
        set.map_err(|e| match &e.kind {
            ErrorKind::Read(io) if io.kind() == std::io::ErrorKind::FileTooLarge => {
                DataError::new(path, ErrorKind::FileTooLarge { limit: MAX_FILE_BYTES })
            }
            _ => e,
        })
    }

    /// Reads CSV with a header row from `reader`; `origin` names it in errors.
    pub fn from_csv(origin: impl AsRef<Path>, reader: impl Read) -> Result<DataSet, DataError> {
        let origin = origin.as_ref();
        let csv_error = |e: csv::Error| -> DataError {
            let line = e.position().map(csv::Position::line);
            let kind = match e.kind() {
                csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                    ErrorKind::FieldCount { expected: *expected_len, found: *len }
                }
                csv::ErrorKind::Io(_) => ErrorKind::Read(match e.into_kind() {
                    csv::ErrorKind::Io(io) => io,
                    _ => unreachable!("matched as an I/O error above"),
                }),
                _ => ErrorKind::Csv(bare_csv_message(&e)),
            };
            DataError::at(origin, line, None, kind)
        };
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(reader);
        let header: Box<[Box<str>]> = reader.headers().map_err(csv_error)?.iter().map(Box::from).collect();
        if header.is_empty() {
            return Err(DataError::new(origin, ErrorKind::NoHeader));
        }
        for (i, name) in header.iter().enumerate() {
            if header[..i].contains(name) {
                return Err(DataError::at(origin, Some(1), None, ErrorKind::DuplicateColumn(name.to_string())));
            }
        }
        let mut text = String::new();
        let mut bounds = vec![0u32];
        let mut record = csv::StringRecord::new();
        while reader.read_record(&mut record).map_err(csv_error)? {
            for field in &record {
                text.push_str(field);
                let end = u32::try_from(text.len()).map_err(|_| DataError::new(origin, ErrorKind::TooLarge))?;
                bounds.push(end);
            }
        }
        let rows = Rows::Csv { header, text: text.into_boxed_str(), bounds: bounds.into_boxed_slice() };
        Ok(DataSet::new(origin.to_path_buf(), rows))
    }

    /// Parses a JSON array of rows; `origin` names it in errors.
    pub fn from_json(origin: impl AsRef<Path>, text: &[u8]) -> Result<DataSet, DataError> {
        let origin = origin.as_ref();
        let value: Value = serde_json::from_slice(text).map_err(|e| {
            let place = format!(" at line {} column {}", e.line(), e.column());
            let message = e.to_string();
            let message = message.strip_suffix(&place).unwrap_or(&message).to_owned();
            DataError::at(origin, Some(e.line() as u64), Some(e.column() as u64), ErrorKind::Json(message))
        })?;
        let found = match value {
            Value::Array(rows) => return Ok(DataSet::new(origin.to_path_buf(), Rows::Json(rows.into_boxed_slice()))),
            Value::Object(_) => "an object",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null => "null",
        };
        Err(DataError::new(origin, ErrorKind::NotArray(found)))
    }
}

/// The largest data file nest reads, in bytes (1 GiB): the whole file is held in memory for the run.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Opens `path` for reading if it is a regular file (or a link to one). On Unix the open does not block, so a FIFO
/// (even one swapped in for the file at the last moment) is refused by the check on what was opened instead of
/// waiting for a writer; elsewhere the path is checked before opening too.
fn open_regular(path: &Path) -> Result<File, DataError> {
    let read = |e| DataError::new(path, ErrorKind::Read(e));
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    #[cfg(not(unix))]
    regular_file(path, &std::fs::metadata(path).map_err(read)?)?;
    let file = options.open(path).map_err(read)?;
    regular_file(path, &file.metadata().map_err(read)?)?;
    Ok(file)
}

/// Refuses anything but a regular file, and one over [`MAX_FILE_BYTES`].
fn regular_file(path: &Path, meta: &std::fs::Metadata) -> Result<(), DataError> {
    if !meta.is_file() {
        let what = if meta.is_dir() { "a folder" } else { "not a regular file (a FIFO, socket or device)" };
        return Err(DataError::new(path, ErrorKind::NotAFile(what)));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(DataError::new(path, ErrorKind::FileTooLarge { limit: MAX_FILE_BYTES }));
    }
    Ok(())
}

/// Fails the read once more than [`MAX_FILE_BYTES`] came (the inner reader is limited to one byte more).
struct CappedReader<R>(std::io::Take<R>);

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        if n > 0 && self.0.limit() == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, "the data file is too large"));
        }
        Ok(n)
    }
}

/// The csv crate's message without the position it appends (the position is in front already).
fn bare_csv_message(e: &csv::Error) -> String {
    let text = e.to_string();
    match text.find(" in line ").or_else(|| text.find(", line ")) {
        Some(at) if text.starts_with("CSV") => text[..at].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("users.csv");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        // Without the check this blocks forever: no writer ever opens the FIFO.
        let e = DataSet::load(&fifo).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::NotAFile(_)), "{e}");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let folder = dir.path().join("rows.json");
        std::fs::create_dir(&folder).unwrap();
        assert!(DataSet::load(&folder).unwrap_err().to_string().contains("a folder"));
        let zero = dir.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(DataSet::load(&zero).unwrap_err().kind, ErrorKind::NotAFile(_)));
    }

    /// A FIFO in place of the file when it is opened (as if swapped in after any check of the path) is refused at
    /// once: the open itself must not wait for a writer. Run on a thread so a regression fails instead of hanging.
    #[cfg(unix)]
    #[test]
    fn opening_a_fifo_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("users.csv");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let (sent, opened) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || sent.send(open_regular(&path).map(|_| ())));
        let result = opened.recv_timeout(std::time::Duration::from_secs(20)).expect("the open blocked on the FIFO");
        let e = result.unwrap_err();
        assert!(matches!(e.kind, ErrorKind::NotAFile(_)), "{e}");
    }

    #[test]
    fn a_read_past_the_cap_fails() {
        let mut capped = CappedReader(std::io::Read::take(&b"abcdef"[..], 4));
        let mut out = Vec::new();
        let e = capped.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        let mut fits = CappedReader(std::io::Read::take(&b"abc"[..], 4));
        out.clear();
        fits.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
    }

    fn csv(text: &str) -> Result<DataSet, DataError> {
        DataSet::from_csv("users.csv", text.as_bytes())
    }

    fn json(text: &str) -> Result<DataSet, DataError> {
        DataSet::from_json("products.json", text.as_bytes())
    }

    #[test]
    fn reads_csv_rows_by_column_name() {
        let set = csv("name,password,note\nada,x1,\"a, quoted\"\ngrace,y2,\n").unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.columns().collect::<Vec<_>>(), ["name", "password", "note"]);
        assert_eq!(set.row(0).get("note"), Some("a, quoted"));
        assert_eq!(set.row(1).get("name"), Some("grace"));
        assert_eq!(set.row(1).get("note"), Some(""));
        assert_eq!(set.row(1).get("missing"), None);
        assert_eq!(set.row(0).to_json(), serde_json::json!({"name": "ada", "password": "x1", "note": "a, quoted"}));
    }

    #[test]
    fn a_header_alone_is_an_empty_set() {
        assert!(csv("name,password\n").unwrap().is_empty());
    }

    #[test]
    fn a_csv_row_with_the_wrong_number_of_fields_names_its_line() {
        let e = csv("name,password,note\na,b,c\nd,e\n").unwrap_err();
        assert_eq!(e.to_string(), "users.csv:3: expected 3 fields, found 2");
        assert!(matches!(e.kind, ErrorKind::FieldCount { expected: 3, found: 2 }));
        let e = csv("a,b\n1,2\n3,4\n5,6,7\n").unwrap_err();
        assert_eq!(e.to_string(), "users.csv:4: expected 2 fields, found 3");
    }

    #[test]
    fn bad_csv_headers_are_errors() {
        assert_eq!(
            csv("").unwrap_err().to_string(),
            "users.csv: no header row: the first line of a CSV data file names its columns"
        );
        assert_eq!(
            csv("a,b,a\n1,2,3\n").unwrap_err().to_string(),
            "users.csv:1: column `a` is named twice in the header row"
        );
    }

    #[test]
    fn invalid_utf8_in_csv_names_its_line() {
        let e = DataSet::from_csv("users.csv", &b"a\nok\n\xff\n"[..]).unwrap_err();
        assert!(e.to_string().starts_with("users.csv:3: "), "{e}");
        assert!(e.to_string().contains("UTF-8"), "{e}");
    }

    #[test]
    fn reads_json_arrays_of_objects_or_values() {
        let set = json(r#"[{"id": 1, "name": "lamp"}, {"id": 2, "name": "mug"}]"#).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.row(1).get("name"), Some("mug"));
        let set = json("[3, 5, 7]").unwrap();
        assert_eq!(set.row(2).to_json(), serde_json::json!(7));
        assert!(json("[]").unwrap().is_empty());
    }

    #[test]
    fn invalid_json_names_line_and_column() {
        let e = json("[\n  {\"id\": 1},\n  {\"id\": }\n]").unwrap_err();
        assert_eq!(e.to_string(), "products.json:3:10: invalid JSON: expected value");
        assert_eq!((e.line, e.column), (Some(3), Some(10)));
    }

    #[test]
    fn json_that_is_not_an_array_is_an_error() {
        let e = json(r#"{"rows": []}"#).unwrap_err();
        assert_eq!(e.to_string(), "products.json: expected a JSON array of rows (objects or values), found an object");
    }

    #[test]
    fn files_are_read_by_extension_and_missing_files_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("users.csv");
        let e = DataSet::load(&missing).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Read(_)));
        assert!(e.to_string().starts_with(&format!("{}: cannot read the data file: ", missing.display())), "{e}");
        let txt = dir.path().join("users.txt");
        std::fs::write(&txt, "a\n1\n").unwrap();
        assert!(DataSet::load(&txt).unwrap_err().to_string().contains("unknown data format"));
        let upper = dir.path().join("ITEMS.JSON");
        std::fs::write(&upper, "[1]").unwrap();
        let set = DataSet::load(&upper).unwrap();
        assert_eq!((set.len(), set.format(), set.origin()), (1, Format::Json, upper.as_path()));
    }
}
