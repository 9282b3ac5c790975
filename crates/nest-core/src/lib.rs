//! # nest-core: the scheduler of the nest load tester
//!
//! This crate runs virtual users (VUs) and counts what they do. It knows nothing about Rhai or HTTP: a
//! [`BehaviourFactory`] builds, on each worker thread, a [`Behaviour`] that runs one slot (task or hook) of a
//! taskset for one VU. The scheduler decides *when* and *which*:
//!
//! - [`Plan`] describes the run (tasksets with weights, users, spawn rate, run time, workers) and is validated
//!   before anything starts.
//! - [`run`] starts one thread per worker (a `current_thread` tokio runtime with a `LocalSet`), spreads the VUs over
//!   them, and aggregates their statistics until the run time ends or the [`RunHandle`] fires.
//! - The closed model runs VUs that start in the taskset their id is given ([`SmoothRoundRobin`]), run `on_start`,
//!   run tasks with think time (a task may be a nested taskset, visited the same way one level down), leave on
//!   `interrupt()`, run `on_stop`, and pick again by weight ([`WeightedTable`]); the number of VUs follows a
//!   [`curve::UserCurve`] (spawn rate, stages, or a scripted shape). The open model starts tasks on the schedule
//!   of a [`curve::ArrivalCurve`] on pooled VUs, and reports latency corrected for coordinated omission.
//! - Script calls run on pooled stackful coroutines ([`fiber`]); a call that waits on I/O [`fiber::suspend`]s and
//!   the worker runs other VUs.
//! - [`run_observed`] also publishes a [`Snapshot`] on a `watch` channel ([`snapshot`]) at each phase and each
//!   second every worker has reported: observers such as a live view or abort thresholds subscribe to it and stop
//!   the run through the [`RunHandle`], outside the aggregation loop.
//! - A run split over processes (segments) meets the others through a [`Rendezvous`] ([`rendezvous`]): one start
//!   instant, who runs `setup()` and `teardown()`, and when; [`run_with_rendezvous`] takes one.
//! - Statistics ([`stats`]) are recorded per worker into HdrHistograms and merged exactly by one aggregator, then
//!   summarised into a [`stats::Summary`].
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use nest_core::{Behaviour, BehaviourFactory, Call, Outcome, Plan, RunHandle, TaskSpec, TasksetSpec,
//!                 WaitTime, WorkerContext, fiber};
//!
//! struct Sleepy(nest_core::stats::Recorder);
//! impl Behaviour for Sleepy {
//!     type Vu = ();
//!     fn new_vu(&self, _: u64) {}
//!     fn call(&self, _: &mut (), _: Call) -> Outcome {
//!         // Pretend to send a request: wait 1 ms on the fiber, then record it.
//!         let _ = fiber::suspend(tokio::time::sleep(Duration::from_millis(1)));
//!         let sample = nest_core::stats::Sample { latency: Duration::from_millis(1), ..Default::default() };
//!         self.0.request("GET", "/", sample);
//!         Outcome::Done
//!     }
//! }
//! struct Factory;
//! impl BehaviourFactory for Factory {
//!     type Behaviour = Sleepy;
//!     fn build(&self, w: &WorkerContext) -> Result<Sleepy, String> { Ok(Sleepy(w.recorder.clone())) }
//! }
//!
//! let taskset = TasksetSpec {
//!     name: "demo".into(), weight: 1, wait: WaitTime::Constant(Duration::from_millis(10)),
//!     tasks: vec![TaskSpec::new("t", 1)], ..Default::default()
//! };
//! let plan = Plan::builder(vec![taskset]).users(4).workers(2)
//!     .run_time(Some(Duration::from_millis(200))).build()?;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let result = rt.block_on(nest_core::run(plan, Arc::new(Factory), RunHandle::new(), ()))?;
//! assert!(result.aggregate.total().count > 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod behaviour;
mod closed;
mod control;
pub mod curve;
mod error;
pub mod fiber;
pub mod limits;
mod open;
mod plan;
pub mod rendezvous;
mod runner;
mod segment;
pub mod snapshot;
pub mod stats;
mod taskset;
mod vu;
mod weights;
mod worker;

pub use behaviour::{Behaviour, BehaviourFactory, Call, Outcome, Shared, TaskError, WorkerContext};
pub use control::{ControlError, LoadTarget, RunHandle, ShapeSource, ShapeTick};
pub use curve::Stage;
pub use error::Error;
pub use plan::{Model, Plan, PlanBuilder, nested_cycle};
pub use rendezvous::{Alone, Rendezvous, RendezvousError, StartAt, StartOrder};
pub use runner::{EndReason, Phase, RunResult, run, run_observed, run_with_rendezvous};
pub use segment::{Segment, segment_share};
pub use snapshot::{RunPhase, Snapshot, Snapshots};
pub use taskset::{
    BadDuration, MAX_DURATION, Pause, Slot, TaskSpec, TasksetSpec, WaitTime, duration_from_secs, throughput_interval,
};
pub use weights::{SmoothRoundRobin, WeightedTable};
