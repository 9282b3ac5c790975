//! The crate's errors, grouped by what the caller does with them: a usage error (exit 2, nothing sent), a step
//! that could not run, a file that could not be read or written, and the gate's "scalability regressed" (exit 6).

use std::path::PathBuf;

/// Why `nest scale` could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScaleError {
    /// Bad steps, SLOs or settings, found before any load.
    #[error("{0}")]
    Usage(String),
    /// A step could not run.
    #[error("step {step} ({load}) could not run: {reason}")]
    Step {
        /// The step's number, from 1.
        step: usize,
        /// Its load in words.
        load: String,
        /// What went wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The gate found a regression.
    #[error(transparent)]
    Regressed(#[from] Regressed),
}

/// The gate's verdict "scalability regressed": exit code [`Regressed::CODE`], the comparison already printed.
#[derive(Debug, thiserror::Error)]
#[error("scalability regressed at {now} against {}", baseline.join(", "))]
pub struct Regressed {
    /// This run's commit (short).
    pub now: String,
    /// The baseline's commits (short).
    pub baseline: Vec<String>,
}

impl Regressed {
    /// The exit code of a regression, distinct from a failed threshold's 99.
    pub const CODE: u8 = 6;
}

impl ScaleError {
    /// A file error at `path`.
    pub fn file(path: &std::path::Path, source: std::io::Error) -> ScaleError {
        ScaleError::File { path: path.to_owned(), source }
    }
}
