//! What the journal records: one [`Event`] per record.
//!
//! Events say what happened, never a secret: identities by name, credentials by where they come
//! from, artifacts by digest. The state of a run is a fold over them ([`super::state`]).

use serde::{Deserialize, Serialize};

use super::playbook::Playbook;
use crate::checks::CheckResult;

/// One journal event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// `install` started (or resumed).
    RunStarted {
        /// Run number, from 1.
        run: u32,
        /// Who runs it.
        operator: String,
        /// The realmctl version.
        version: String,
        /// Where it runs and the lock it holds.
        host: String,
        /// The lock id.
        lock_id: String,
        /// Digest of the resolved spec.
        spec_digest: String,
        /// The resolved spec (paths and names only; specs hold no secrets).
        spec: serde_json::Value,
        /// The playbook in force.
        playbook: Playbook,
        /// `--until`, if given.
        until: Option<u8>,
    },
    /// The spec changed since the last run; these steps run again.
    PlanChanged {
        /// What changed in the spec.
        changes: Vec<Change>,
        /// Steps whose inputs changed.
        replanned: Vec<String>,
    },
    /// A step attempt began.
    StepStarted {
        /// Step id.
        step: String,
        /// Phase number.
        phase: u8,
        /// Attempt, from 1.
        attempt: u32,
        /// Digest of the step's inputs.
        input_digest: String,
    },
    /// A step finished successfully.
    StepSucceeded {
        /// Step id.
        step: String,
        /// Phase number.
        phase: u8,
        /// Digest of the inputs it ran with.
        input_digest: String,
        /// Digest of `output`.
        output_digest: String,
        /// What it produced.
        output: StepOutput,
        /// How long the attempt took.
        duration_ms: u64,
    },
    /// A step had nothing to do.
    StepSkipped {
        /// Step id.
        step: String,
        /// Phase number.
        phase: u8,
        /// Digest of the inputs it judged.
        input_digest: String,
        /// Why.
        reason: String,
    },
    /// A step attempt failed.
    StepFailed {
        /// Step id.
        step: String,
        /// Phase number.
        phase: u8,
        /// Attempt, from 1.
        attempt: u32,
        /// Retryable, permanent, timeout or unavailable.
        failure: FailureKind,
        /// What went wrong.
        error: String,
        /// Evidence gathered before failing (e.g. check results).
        output: Option<StepOutput>,
        /// How long the attempt took.
        duration_ms: u64,
    },
    /// A failed step will be tried again.
    StepRetry {
        /// Step id.
        step: String,
        /// The next attempt.
        attempt: u32,
        /// Back-off before it.
        delay_ms: u64,
    },
    /// A step waits for someone to act.
    StepWaiting {
        /// Step id.
        step: String,
        /// Phase number.
        phase: u8,
        /// Who must act.
        owner: String,
        /// What they must do.
        reason: String,
        /// Digest of the step's inputs; an approval of the phase covering it lets it pass.
        input_digest: String,
    },
    /// A phase's steps are done and it waits for an approval.
    GateWaiting {
        /// Phase number.
        phase: u8,
        /// Gate id.
        gate: String,
        /// Who must approve.
        owner: String,
    },
    /// `realmctl approve` recorded an approval.
    Approved {
        /// Phase number.
        phase: u8,
        /// Who approved.
        by: String,
        /// Their note.
        note: Option<String>,
        /// Digest of the phase's outputs the approval covers.
        covers: String,
    },
    /// `install` stopped.
    RunStopped {
        /// Run number.
        run: u32,
        /// How it ended.
        outcome: StopOutcome,
        /// One line for people.
        message: String,
    },
    /// `realmctl unlock` took over a stale lock.
    LockTakenOver {
        /// The lock id given.
        lock_id: String,
        /// The holder it replaced.
        holder: String,
        /// Who took over.
        by: String,
    },
}

impl Event {
    /// The event name (the journal's `kind` column).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "runStarted",
            Event::PlanChanged { .. } => "planChanged",
            Event::StepStarted { .. } => "stepStarted",
            Event::StepSucceeded { .. } => "stepSucceeded",
            Event::StepSkipped { .. } => "stepSkipped",
            Event::StepFailed { .. } => "stepFailed",
            Event::StepRetry { .. } => "stepRetry",
            Event::StepWaiting { .. } => "stepWaiting",
            Event::GateWaiting { .. } => "gateWaiting",
            Event::Approved { .. } => "approved",
            Event::RunStopped { .. } => "runStopped",
            Event::LockTakenOver { .. } => "lockTakenOver",
        }
    }
}

/// One changed value of the spec, by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Dotted path, e.g. `domains.base`.
    pub path: String,
    /// The value before (JSON), or `null` when added.
    pub before: Option<String>,
    /// The value now, or `null` when removed.
    pub after: Option<String>,
}

/// What a step produced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOutput {
    /// One line for people.
    pub summary: String,
    /// Check evidence.
    pub checks: Vec<CheckResult>,
    /// Stored artifacts.
    pub artifacts: Vec<ArtifactRef>,
}

/// An artifact in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRef {
    /// File name, e.g. `cluster.json`.
    pub name: String,
    /// Where it is: a path relative to the state folder, or an object URL.
    pub location: String,
    /// SHA-256 hex of its bytes.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// How a step attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureKind {
    /// Worth another attempt (network, throttling, a 5xx).
    Retryable,
    /// Will fail the same way until someone fixes something.
    Permanent,
    /// The attempt ran out of time.
    Timeout,
    /// This build cannot run the action.
    Unavailable,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StopOutcome {
    /// Every phase is done.
    Completed,
    /// Stopped after the `--until` phase.
    Until,
    /// Waiting on a gate or a customer action.
    Waiting,
    /// A step failed.
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_with_their_kind_inside() {
        let e = Event::StepRetry {
            step: "dns".into(),
            attempt: 2,
            delay_ms: 500,
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"event":"stepRetry","step":"dns","attempt":2,"delayMs":500}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
        assert_eq!(e.kind(), "stepRetry");
    }
}
