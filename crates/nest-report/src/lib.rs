//! # nest-report: the results of a nest run, as a library
//!
//! Everything that happens to a run's results after the engine has counted them, so that `nest run`, `nest report`
//! and later a merge, a web UI or a coordinator share one implementation:
//!
//! - [`model`]: the JSON report ([`model::Report`]: the engine's [`nest_core::stats::Summary`] flattened, what was
//!   run, the verdicts). Its keys are the contract pinned by `docs/report.schema.json`.
//! - [`thresholds`]: the threshold language (`p95 < 300ms`, `error_rate < 1%`, `check "login" > 99%`), its
//!   [`thresholds::ThresholdError`], and the evaluator, with the default gate.
//! - [`table`]: the terminal summary tables, written to any [`std::io::Write`].
//! - [`render`]: the report files: Locust CSV, JUnit XML and a self-contained HTML page, a pure function of the
//!   report, so that a saved JSON report renders again byte for byte.
//! - [`merge`]: [`model::Report::merge`], the exact merge of several reports of one plan (counts added, histograms
//!   added bucket for bucket, percentiles computed again), refusing reports of different plans ([`merge::MergeError`]).
//! - [`identity`]: which run a report belongs to (run id, plan hash, segment, host, start and skew), and the
//!   incomplete marker of a merge that lacks segments ([`identity::mark_incomplete`]).
//! - [`output`]: atomic file writes (a temporary file renamed over the target), for every file nest writes.
//!
//! ```
//! use nest_report::thresholds::Threshold;
//!
//! let t = Threshold::parse("GET /items/:id: p99 < 800ms").unwrap();
//! assert_eq!(t.expr, "GET /items/:id: p99 < 800ms");
//! let e = Threshold::parse("error_rate < 1").unwrap_err();
//! assert!(e.message.contains("did you mean `error_rate < 1%`"), "{e}");
//! ```

#![deny(missing_docs)]

pub mod identity;
pub mod merge;
pub mod model;
pub mod output;
pub mod render;
pub mod table;
pub mod thresholds;
