//! # nest-coord: one test out of N processes
//!
//! `nest coordinate` is a rendezvous, not a master: it never places, starts or watches processes (Kubernetes,
//! SSH or `nest launch local` does). It only makes N segments started with `nest run --coordinator URL --segment
//! I/N` add up to exactly one test:
//!
//! - [`state`]: the rules, as a plain state machine. Registration (one plan hash, indices 0..N, each once), the
//!   barrier (one start instant and segment 0's `setup()` value once all N are ready, or a cancellation naming the
//!   missing ones), live figures merged for the operator and the `abort` thresholds, lost segments, the end.
//! - [`server`]: [`server::Coordinator`], the HTTP service (axum) with the token check, body caps and long polls.
//! - [`protocol`]: the JSON bodies and routes; segments only connect out, control rides in the answers.
//! - [`client`]: the segment's side ([`client::Session`]); [`segment`]: its live feed.
//! - [`steer`]: changes of the whole run's load and resets of its statistics, handed to every segment for one
//!   instant.
//! - [`finish`]: the exact merge of the results, the central verdict, the incomplete marker.
//! - [`token`]: the run's shared secret, from `NEST_COORDINATOR_TOKEN`, compared in constant time.
//!
//! ```
//! use nest_coord::state::{Settings, State};
//! use nest_coord::protocol::Register;
//! use std::time::Instant;
//!
//! let mut run = State::new(Settings::new(2), "run-1".into(), Instant::now());
//! let join = |index| Register {
//!     index, segments: 2, plan_hash: "abc".into(), host: "h".into(), run_id: format!("s{index}"),
//! };
//! assert!(run.register(&join(0), Instant::now()).is_ok());
//! let refused = run.register(&join(0), Instant::now()).unwrap_err();
//! assert!(refused.to_string().contains("already registered"), "{refused}");
//! ```

#![deny(missing_docs)]

pub mod client;
pub mod finish;
pub mod launch;
pub mod protocol;
pub mod rendezvous;
pub mod segment;
pub mod server;
pub mod state;
pub mod steer;
pub mod token;
