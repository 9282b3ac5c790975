//! `nest run`'s part in a split run: which rendezvous it uses (`--start-at`), its identity in the report (run id,
//! plan hash, segment, start and skew), and the exit code of a rendezvous that failed.
//!
//! The logic (hashing, ids, the rendezvous) is in the libraries; this only picks from the command line.

use std::sync::Arc;
use std::time::Duration;

use nest_core::{Alone, Rendezvous, RendezvousError, RunResult, StartAt};
use nest_report::identity::{self, PlanParts, RunIdentity};

use crate::cli::ScaleOutArgs;
use nest_config::parse::ExitWith;
use nest_config::plan::RunPlan;

/// What a run needs of the scale-out options once its plan is built.
pub struct ScaleOut {
    rendezvous: Arc<dyn Rendezvous>,
    run_id: String,
    plan_hash: String,
    segment: nest_core::Segment,
    plan_users: u64,
}

impl ScaleOut {
    /// Hashes the plan and picks the run id; a split plan given no `--seed` takes one from the run id, so that
    /// every segment draws from the same global streams.
    pub fn prepare(args: &ScaleOutArgs, checked: &mut RunPlan) -> ScaleOut {
        let scripts: Vec<(&str, &str)> =
            checked.mix.catalog.tasksets.iter().map(|def| (def.name.as_str(), def.source())).collect();
        let data: Vec<(&str, usize)> = checked.mix.data.iter().map(|(name, pool)| (name, pool.data().len())).collect();
        let explicit_seed = checked.mix.settings.seed.is_some();
        let (mix, plan) = (&checked.mix.rows, &checked.plan);
        let plan_hash = identity::plan_hash(PlanParts { scripts: &scripts, data: &data, mix, plan, explicit_seed });
        let run_id = match (&args.run_id, args.start_at) {
            (Some(id), _) => id.clone(),
            (None, Some(at)) => identity::derived_run_id(&plan_hash, at),
            (None, None) => identity::fresh_run_id(),
        };
        if !explicit_seed && checked.plan.segment.count > 1 {
            checked.plan.seed = identity::seed_of_run(&run_id);
        }
        let rendezvous: Arc<dyn Rendezvous> = match args.start_at {
            Some(at) => Arc::new(StartAt { at, tolerance: args.late_tolerance.unwrap_or(Duration::from_secs(2)) }),
            None => Arc::new(Alone),
        };
        let (segment, plan_users) = (checked.plan.segment, checked.plan.users());
        ScaleOut { rendezvous, run_id, plan_hash, segment, plan_users }
    }

    /// Takes part in a coordinated run when `--coordinator` is given: registers (refused: exit 5), then takes the
    /// coordinator's run id (and, with no `--seed`, the seed derived from it) and meets the others through it.
    pub fn coordinated(
        &mut self,
        args: &crate::coordinate::JoinArgs,
        scale: &ScaleOutArgs,
        checked: &mut RunPlan,
    ) -> anyhow::Result<Option<Arc<nest_coord::rendezvous::Coordinated>>> {
        let Some(joined) = crate::coordinate::join(args, scale, self.segment, &self.plan_hash, &self.run_id)? else {
            return Ok(None);
        };
        self.run_id = joined.run_id().to_owned();
        if checked.mix.settings.seed.is_none() {
            checked.plan.seed = identity::seed_of_run(&self.run_id);
        }
        self.rendezvous = joined.clone();
        Ok(Some(joined))
    }

    /// The rendezvous the runner meets the other segments through.
    pub fn rendezvous(&self) -> Arc<dyn Rendezvous> {
        self.rendezvous.clone()
    }

    /// What this process says before it starts, if it is part of a split run or waits for a start time.
    pub fn announcement(&self, args: &ScaleOutArgs) -> Option<String> {
        let at = args.start_at.map(|at| format!(", starting at {}", humantime::format_rfc3339_millis(at)));
        (self.segment.count > 1 || at.is_some())
            .then(|| format!("segment {} of run {}{}", self.segment, self.run_id, at.unwrap_or_default()))
    }

    /// The report's identity of this run.
    pub fn identity(&self, result: &RunResult) -> RunIdentity {
        let (run_id, plan_hash) = (self.run_id.clone(), self.plan_hash.clone());
        RunIdentity::new(run_id, plan_hash, self.segment, self.plan_users, result.intended_start, result.started_at)
    }
}

/// The error a failed rendezvous ends the command with: 3 late, 4 cancelled (incomplete), 5 refused.
pub fn failed(error: &RendezvousError) -> ExitWith {
    let code = match error {
        RendezvousError::Late { .. } => 3,
        RendezvousError::Cancelled(_) => 4,
        RendezvousError::Refused(_) => 5,
        _ => 1,
    };
    ExitWith { code, message: format!("{error}: nothing was sent") }
}
