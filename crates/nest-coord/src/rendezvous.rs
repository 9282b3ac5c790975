//! The segment's [`Rendezvous`]: how `nest run --coordinator URL --segment I/N` meets the other segments.
//!
//! The segment registers before its workers are built (a refusal ends the run before anything is sent). The runner
//! then asks the rendezvous two things. `start`: hand in segment 0's encoded `setup()` value and wait at the barrier for the common start. `load_done`:
//! say the load is over; segment 0 waits there until every segment's load ended or was lost, then runs
//! `teardown()` once for the whole run.

use std::sync::Arc;

use crate::client::{ClientError, Session};
use crate::protocol::Registered;
use nest_core::rendezvous::{Rendezvous, RendezvousError, RendezvousFuture, StartOrder};

/// A segment of a coordinated run, registered (see [`Session::register`]: the binary registers before it builds its
/// workers, so that every segment takes the run's id, and its seed, from the coordinator).
pub struct Coordinated {
    session: Arc<Session>,
    registered: Registered,
}

impl Coordinated {
    /// The rendezvous of `session`'s segment, which the coordinator took in with `registered`.
    pub fn new(session: Session, registered: Registered) -> Coordinated {
        Coordinated { session: Arc::new(session), registered }
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
