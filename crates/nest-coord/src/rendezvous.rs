//! The segment's [`Rendezvous`]: how `nest run --coordinator URL --segment I/N` meets the other segments.
//!
//! The segment registers before its workers are built (a refusal ends the run before anything is sent). The runner
//! then asks the rendezvous two things. `start`: hand in segment 0's encoded `setup()` value and wait at the barrier for the common start. `load_done`:
//! say the load is over; segment 0 waits there until every segment's load ended or was lost, then runs
//! `teardown()` once for the whole run.

use std::sync::Arc;
use std::time::Duration;

use nest_core::{RunHandle, Snapshots};
use nest_report::model::Report;
use tokio::sync::watch;

use crate::client::{ClientError, Session};
use crate::protocol::Registered;
use nest_core::rendezvous::{Rendezvous, RendezvousError, RendezvousFuture, StartOrder};

/// A segment of a coordinated run, registered (see [`Session::register`]: the binary registers before it builds its
/// workers, so that every segment takes the run's id, and its seed, from the coordinator).
pub struct Coordinated {
    session: Arc<Session>,
    registered: Registered,
    /// Ends the live feed once the result is handed in.
    done: watch::Sender<bool>,
}

impl Coordinated {
    /// The rendezvous of `session`'s segment, which the coordinator took in with `registered`.
    pub fn new(session: Session, registered: Registered) -> Coordinated {
        Coordinated { session: Arc::new(session), registered, done: watch::channel(false).0 }
    }

    /// Registers `session`'s segment, waiting up to `patience` for a coordinator that does not answer yet.
    pub async fn join(session: Session, patience: Duration) -> Result<Coordinated, ClientError> {
        let registered = session.register(patience).await?;
        Ok(Coordinated::new(session, registered))
    }

    /// Starts the live feed (on the current runtime): its answers may stop the run through `stop`; `say` hears
    /// why. It ends with [`Coordinated::hand_in`].
    pub fn feed(&self, snapshots: Snapshots, stop: RunHandle, say: impl Fn(&str) + Send + 'static) {
        let (session, done) = (self.session.clone(), self.done.subscribe());
        tokio::spawn(crate::segment::push_live(session, snapshots, stop, done, say));
    }

    /// Hands the segment's result in, and ends the live feed.
    pub async fn hand_in(&self, report: &Report) -> Result<(), ClientError> {
        let handed = self.session.upload(report).await;
        self.done.send_replace(true);
        handed
    }

    /// The session, for the live feed and the final upload.
    pub fn session(&self) -> Arc<Session> {
        self.session.clone()
    }

    /// The coordinated run's id: every segment's report carries it.
    pub fn run_id(&self) -> &str {
        &self.registered.run_id
    }
}

fn rendezvous_error(e: ClientError) -> RendezvousError {
    match e {
        ClientError::Refused(m) => RendezvousError::Refused(m),
        ClientError::Cancelled(m) => RendezvousError::Cancelled(m),
        other => RendezvousError::Unreachable(other.to_string()),
    }
}

impl Rendezvous for Coordinated {
    fn runs_globals(&self) -> bool {
        self.session.index() == 0
    }

    fn shares_setup(&self) -> bool {
        true
    }

    fn start(&self, setup: Option<Vec<u8>>) -> RendezvousFuture<'_, Result<StartOrder, RendezvousError>> {
        Box::pin(async move {
            let start = self.session.ready(setup).await.map_err(rendezvous_error)?;
            Ok(StartOrder { at: start.at, setup: start.setup })
        })
    }

    fn load_done(&self) -> RendezvousFuture<'_, ()> {
        // A coordinator gone away cannot hold teardown() up: it runs, and the upload says what failed.
        Box::pin(async move {
            let _ = self.session.load_done().await;
        })
    }
}
