//! Progress of an install for a front end: the library never prints, it tells an
//! [`EngineObserver`] (whose methods all default to doing nothing). Check progress inside steps
//! flows through the supertrait [`crate::checks::Observer`].

use std::time::Duration;

use super::model::output::{FailureKind, StepOutput};
use super::model::playbook::{Phase, StepDef};
use crate::checks::Owner;

/// How a step ended, for observers.
#[derive(Debug)]
pub enum StepEnd<'a> {
    /// Succeeded.
    Succeeded(&'a StepOutput),
    /// Nothing to do.
    Skipped(&'a str),
    /// Already done in an earlier run.
    AlreadyDone,
    /// Failed; `retry_in` when another attempt follows.
    Failed {
        /// How.
        kind: FailureKind,
        /// What went wrong.
        message: &'a str,
        /// Back-off before the next attempt.
        retry_in: Option<Duration>,
    },
    /// Waits for someone.
    Waiting {
        /// Who.
        owner: Owner,
        /// What.
        reason: &'a str,
    },
}

/// Receives progress while the engine runs; every method defaults to doing nothing.
pub trait EngineObserver: crate::checks::Observer {
    /// Something the operator should know before the run goes on (e.g. a state folder that
    /// others may write).
    fn on_warning(&self, _message: &str) {}
    /// A phase begins.
    fn on_phase_start(&self, _phase: &Phase) {}
    /// A step attempt begins.
    fn on_step_start(&self, _step: &StepDef, _attempt: u32) {}
    /// A running step says how it is going (e.g. a cluster still CREATING).
    fn on_step_progress(&self, _step: &StepDef, _message: &str) {}
    /// A step ended (or was already done).
    fn on_step_end(&self, _step: &StepDef, _end: &StepEnd<'_>) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl crate::checks::Observer for Quiet {}
impl EngineObserver for Quiet {}
