//! The wire protocol between segments and the coordinator: JSON bodies over HTTP/1, segments always the client.
//!
//! Segments only ever connect out, so the protocol works from pods, SSH hosts, Lambda or behind NAT: control (start,
//! stop, run `teardown()`) rides in the responses. Waiting is a long poll: the coordinator holds a request up to
//! [`POLL`] and answers `wait` if nothing happened, and the segment asks again. Every body has a size cap
//! ([`limits`]) and every request names its segment and the run id it registered with, so a stale retry or a
//! stranger's request changes nothing.
//!
//! | Route | Body | Answer |
//! |---|---|---|
//! | `POST /v1/register` | [`Register`] | [`Registered`], or 409 [`ErrorBody`] (refused) |
//! | `POST /v1/ready` | [`Ready`] | [`ReadyReply`]: wait, start (instant + setup value) or cancelled |
//! | `POST /v1/live` | [`Live`] | [`LiveReply`]: whether to stop; the latest change of load and reset of the statistics |
//! | `POST /v1/load-done` | [`Member`] | [`LoadDoneReply`]: noted (segments 1..N), or wait until `teardown()` may run |
//! | `POST /v1/result` | [`Upload`] | [`Ack`] |

use std::time::Duration;

use nest_core::stats::TimelineRow;
use nest_report::model::Report;
use serde::{Deserialize, Serialize};

/// The routes' common prefix: the protocol's version.
pub const PREFIX: &str = "/v1";

/// The longest the coordinator holds a long poll before answering `wait`.
pub const POLL: Duration = Duration::from_secs(5);

/// How often a segment pushes its live figures (its heartbeat too).
pub const PUSH_EVERY: Duration = Duration::from_secs(1);

/// Body size caps, in bytes: anything larger is answered 413 before it is parsed.
pub mod limits {
    /// Registration, load done: a few short strings.
    pub const SMALL: usize = 16 * 1024;
    /// `ready`: carries segment 0's encoded `setup()` value.
    pub const READY: usize = 16 * 1024 * 1024;
    /// A live push: one second of counts and encoded histograms per request name.
    pub const LIVE: usize = 4 * 1024 * 1024;
    /// The final result JSON, with its timeline.
    pub const RESULT: usize = 256 * 1024 * 1024;
    /// The longest string field (host, plan hash, run id) in a small body.
    pub const FIELD: usize = 256;
    /// The most request names in one live push.
    pub const ROWS: usize = 10_000;
}

/// A segment asks to join the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// Its index, 0..N.
    pub index: u32,
    /// The N it was started with.
    pub segments: u32,
    /// The hash of its plan (scripts, mix, load settings): every segment must have the same.
    pub plan_hash: String,
    /// The host it runs on.
    pub host: String,
    /// Its own run id: later requests must carry the same.
    pub run_id: String,
}

/// The coordinator took the segment in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    /// The coordinated run's id, for the segment's report.
    pub run_id: String,
    /// Silence after which the coordinator counts the segment lost, ms.
    pub lost_after_ms: u64,
}

/// Which segment of which registration a request comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The segment's index.
    pub index: u32,
    /// The run id it registered with.
    pub run_id: String,
}

/// The segment is ready to start (segment 0: its `setup()` ran).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// Who.
    #[serde(flatten)]
    pub member: Member,
    /// Segment 0's encoded `setup()` value, base64 (others send none).
    #[serde(default)]
    pub setup: Option<String>,
}

/// The answer to [`Ready`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ReadyReply {
    /// Not every segment is ready yet: ask again.
    Wait,
    /// Start the load at this instant, with this `setup()` value.
    Start {
        /// Microseconds since the Unix epoch.
        at_unix_us: u64,
        /// Segment 0's encoded `setup()` value, base64.
        setup: Option<String>,
    },
    /// The run will not start.
    Cancelled {
        /// Why.
        reason: String,
    },
}

/// One check's cumulative counts in a live push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckTotal {
    /// The check's name.
    pub name: String,
    /// Times it held, so far.
    pub passes: u64,
    /// Times it did not, so far.
    pub fails: u64,
}

/// A segment's live figures: the requests since its previous push (exact counts and encoded histograms, as the
/// report's timeline rows), its cumulative checks, script errors and current users, its start skew and target.
/// An empty push is the heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Live {
    /// Who.
    #[serde(flatten)]
    pub member: Member,
    /// Grows by one with each push: a repeated or older push is ignored.
    pub seq: u64,
    /// Active VUs now.
    pub users: u64,
    /// The requests since the previous push, per name.
    #[serde(default)]
    pub rows: Vec<TimelineRow>,
    /// Every check so far.
    #[serde(default)]
    pub checks: Vec<CheckTotal>,
    /// Script errors so far.
    #[serde(default)]
    pub script_errors: u64,
    /// The whole second of the load its statistics count from (0 unless they were reset): the coordinator drops
    /// the rows of pushes from before the latest reset.
    #[serde(default)]
    pub counted_from_s: u64,
    /// The segment refused the latest change of load (its plan cannot take it), and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Its load's actual start minus the common start it was given, ms (once its load started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_skew_ms: Option<f64>,
    /// What its load is steered to now (as `nest_core::RunHandle::target`): the run's model and current target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<nest_core::LoadTarget>,
}

/// The answer to [`Live`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveReply {
    /// Stop the load (gracefully), for this reason.
    pub stop: Option<String>,
    /// The latest change of load the operator asked for: a segment applies each `seq` once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steer: Option<Steer>,
    /// The latest reset of the statistics: a segment applies each `seq` once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<ResetAt>,
}

/// A change of the whole run's load, at one instant of the common timeline (every segment takes its share of the
/// global target, as `nest_core::RunHandle::steer` does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Steer {
    /// Grows by one with each change or reset.
    pub seq: u64,
    /// When it takes effect: milliseconds since the load's common start.
    pub at_ms: u64,
    /// The new target, over all segments.
    pub target: nest_core::LoadTarget,
}

/// A reset of the statistics of every segment, from one whole second of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetAt {
    /// Grows by one with each change or reset.
    pub seq: u64,
    /// The second since the load's common start the statistics count from.
    pub at_s: u64,
}

/// The answer to `load-done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LoadDoneReply {
    /// Some segment's load still runs: ask again.
    Wait,
    /// Every segment's load ended or was lost: `teardown()` may run.
    Teardown,
    /// (To a segment other than 0, at once.) Its load's end is noted; it runs no `teardown()`.
    Noted,
}

/// A segment's final result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// Who.
    #[serde(flatten)]
    pub member: Member,
    /// Its report, as `--json` writes it.
    pub report: Box<Report>,
}

/// An empty acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {}

/// Why a request was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What kind of refusal.
    pub kind: ErrorKind,
    /// In words, for the segment to print.
    pub error: String,
}

/// The kinds of [`ErrorBody`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The registration was refused (plan hash, index, duplicate): the segment exits "refused".
    Refused,
    /// No token, or the wrong one.
    Unauthorized,
    /// The request is not from a registered segment of this run.
    Stranger,
    /// The body is malformed or out of bounds.
    Invalid,
    /// The body is larger than the route's cap.
    TooLarge,
}
