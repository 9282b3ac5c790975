//! # nest-data: test data for the nest load tester
//!
//! Real load needs real-looking data: a thousand distinct accounts logged in at once, each used by one user at a
//! time, and product ids read in order or at random. This crate holds that data and hands it out; it knows nothing
//! about Rhai or HTTP.
//!
//! - A [`DataSet`] is one file, CSV with a header row or a JSON array, loaded once per process into a compact,
//!   immutable table ([`DataSet::load`]). Errors name the file and line (`users.csv:17: expected 3 fields, found
//!   2`).
//! - A [`Pool`] hands out the rows of one data set to many users on many threads: [`Pool::claim`] gives a row
//!   that nobody else holds (waiting, first come first served, when every row is held), as a [`Lease`] that gives
//!   the row back when it is dropped; [`Pool::next`] steps through the rows in order and [`Pool::random`] picks one.
//!   Each pool counts what happened to it ([`PoolStats`]).
//! - [`partition`] gives each [`Segment`] of a load split across machines its own share of the rows, so that rows
//!   stay unique across machines. A single machine is [`Segment::WHOLE`].
//! - A [`DataRegistry`] is the named pools of a run, shared by every worker thread through an `Arc`.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use nest_data::{DataSet, Pool, Segment};
//!
//! let set = DataSet::from_csv("users.csv", "name,password\nada,x\ngrace,y\n".as_bytes())?;
//! let pool = Arc::new(Pool::new("users", Arc::new(set), Segment::WHOLE));
//! let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
//! rt.block_on(async {
//!     let ada = pool.claim(None).await.expect("a free row");
//!     let grace = pool.claim(None).await.expect("another free row");
//!     // Both rows are held: a third claim waits, here for at most 10 ms, and gets nothing.
//!     assert!(pool.claim(Some(Duration::from_millis(10))).await.is_none());
//!     assert_eq!(pool.row(ada.row()).get("name"), Some("ada"));
//!     drop(grace); // released: the next claim gets it
//!     assert!(pool.claim(None).await.is_some());
//! });
//! assert_eq!(pool.stats().timeouts, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod error;
mod load;
mod partition;
mod pool;
mod registry;
mod set;

pub use error::{DataError, DataErrors, ErrorKind};
pub use load::MAX_FILE_BYTES;
pub use partition::{Segment, partition};
pub use pool::{Lease, Pool, PoolStats, RowId};
pub use registry::{DataRegistry, DataSource};
pub use set::{CsvRow, DataSet, Format, Row};
