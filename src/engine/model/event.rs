//! What the journal records: one [`Event`] per record, named by its [`EventKind`].
//!
//! Events say what happened, never a secret: identities by name, credentials by where they come
//! from, artifacts by digest. Every step record carries the number of the run that wrote it, so
//! overlapping runs (a broken lock) show in `audit verify`. The state of an install is a fold
//! over the events ([`super::state`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::output::{FailureKind, Intent, StepOutput};
use super::playbook::Playbook;
use crate::checks::Owner;
use crate::spec::{Provider, Spec};

/// What a run is about, typed: read back by `status`, `report` and `audit verify` without
/// digging in the recorded spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSubject {
    /// The realm.
    pub realm: String,
    /// The cloud.
    pub provider: Provider,
    /// Region or location.
    pub region: String,
    /// The object storage bucket of the artifacts (`None`: the state folder).
    pub artifacts_bucket: Option<String>,
    /// The cloud API endpoint override (`cloud.endpoint`), if any.
    #[serde(default)]
    pub endpoint: Option<String>,
}

impl RunSubject {
    /// The subject of a run of `spec`.
    pub fn of(spec: &Spec) -> Self {
        RunSubject {
            realm: spec.name.clone(),
            provider: spec.cloud.provider,
            region: spec.cloud.region.clone(),
            artifacts_bucket: spec.artifacts_bucket.clone(),
            endpoint: spec.cloud.endpoint.clone(),
        }
    }
}

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
        /// Where it runs.
        host: String,
        /// The lock id.
        lock_id: String,
        /// Realm, cloud, region and artifact store.
        subject: RunSubject,
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
        /// The run.
        run: u32,
        /// What changed in the spec.
        changes: Vec<Change>,
        /// Steps whose inputs changed.
        replanned: Vec<String>,
    },
    /// A step attempt began.
    StepStarted {
        /// The run.
        run: u32,
        /// Step id.
        step: String,
        /// Phase number.
        phase: u8,
        /// Attempt, from 1.
        attempt: u32,
        /// Digest of the step's inputs.
        input_digest: String,
    },
    /// A step is about to change something in the cloud (journaled before the call).
    StepIntent {
        /// The run.
        run: u32,
        /// Step id.
        step: String,
        /// What it is about to do.
        intent: Intent,
    },
    /// A step finished successfully.
    StepSucceeded {
        /// The run.
        run: u32,
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
        /// The run.
        run: u32,
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
        /// The run.
        run: u32,
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
        /// The run.
        run: u32,
        /// Step id.
        step: String,
        /// The next attempt.
        attempt: u32,
        /// Back-off before it.
        delay_ms: u64,
    },
    /// A step waits for someone to act.
    StepWaiting {
        /// The run.
        run: u32,
        /// Step id.
        step: String,
        /// Phase number.
        phase: u8,
        /// Who must act.
        owner: Owner,
        /// What they must do.
        reason: String,
        /// Digest of the step's inputs; an approval of the phase covering it lets it pass.
        input_digest: String,
        /// What an approval must cover instead, when the step names it (the digest of what
        /// someone was asked to do); absent from older records.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        covers: Option<String>,
    },
    /// A phase's steps are done and it waits for an approval.
    GateWaiting {
        /// The run.
        run: u32,
        /// Phase number.
        phase: u8,
        /// Gate id.
        gate: String,
        /// Who must approve.
        owner: Owner,
    },
    /// `realmctl approve` recorded an approval.
    Approved {
        /// Phase number.
        phase: u8,
        /// Who approved.
        by: String,
        /// Their note.
        note: Option<String>,
        /// Digest of the phase's outputs (or the waiting step's inputs) the approval covers.
        covers: String,
        /// Digest of the cluster definition those outputs render, when they render one: the
        /// definition this approval lets phase 6 build.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        definition: Option<String>,
        /// The customer's own signed statement, when they approved offline (`approve
        /// --import`): kept verbatim so an auditor checks it with the customer's public key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        customer: Option<Box<super::offline::SignedStatement>>,
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
    /// `realmctl vpn reveal-key` printed a secret once: only that, which secret, and by whom
    /// (never the secret).
    SecretRevealed {
        /// The secret's name in the cloud's secret store.
        secret: String,
        /// Who it was revealed to.
        by: String,
    },
}

/// The kind of an event: the journal's `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// [`Event::RunStarted`].
    RunStarted,
    /// [`Event::PlanChanged`].
    PlanChanged,
    /// [`Event::StepStarted`].
    StepStarted,
    /// [`Event::StepIntent`].
    StepIntent,
    /// [`Event::StepSucceeded`].
    StepSucceeded,
    /// [`Event::StepSkipped`].
    StepSkipped,
    /// [`Event::StepFailed`].
    StepFailed,
    /// [`Event::StepRetry`].
    StepRetry,
    /// [`Event::StepWaiting`].
    StepWaiting,
    /// [`Event::GateWaiting`].
    GateWaiting,
    /// [`Event::Approved`].
    Approved,
    /// [`Event::RunStopped`].
    RunStopped,
    /// [`Event::LockTakenOver`].
    LockTakenOver,
    /// [`Event::SecretRevealed`].
    SecretRevealed,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 14] = [
        EventKind::RunStarted,
        EventKind::PlanChanged,
        EventKind::StepStarted,
        EventKind::StepIntent,
        EventKind::StepSucceeded,
        EventKind::StepSkipped,
        EventKind::StepFailed,
        EventKind::StepRetry,
        EventKind::StepWaiting,
        EventKind::GateWaiting,
        EventKind::Approved,
        EventKind::RunStopped,
        EventKind::LockTakenOver,
        EventKind::SecretRevealed,
    ];

    /// The name stored in the journal (and the payload's `event` tag).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RunStarted => "runStarted",
            EventKind::PlanChanged => "planChanged",
            EventKind::StepStarted => "stepStarted",
            EventKind::StepIntent => "stepIntent",
            EventKind::StepSucceeded => "stepSucceeded",
            EventKind::StepSkipped => "stepSkipped",
            EventKind::StepFailed => "stepFailed",
            EventKind::StepRetry => "stepRetry",
            EventKind::StepWaiting => "stepWaiting",
            EventKind::GateWaiting => "gateWaiting",
            EventKind::Approved => "approved",
            EventKind::RunStopped => "runStopped",
            EventKind::LockTakenOver => "lockTakenOver",
            EventKind::SecretRevealed => "secretRevealed",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown event kind `{s}`"))
    }
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::RunStarted { .. } => EventKind::RunStarted,
            Event::PlanChanged { .. } => EventKind::PlanChanged,
            Event::StepStarted { .. } => EventKind::StepStarted,
            Event::StepIntent { .. } => EventKind::StepIntent,
            Event::StepSucceeded { .. } => EventKind::StepSucceeded,
            Event::StepSkipped { .. } => EventKind::StepSkipped,
            Event::StepFailed { .. } => EventKind::StepFailed,
            Event::StepRetry { .. } => EventKind::StepRetry,
            Event::StepWaiting { .. } => EventKind::StepWaiting,
            Event::GateWaiting { .. } => EventKind::GateWaiting,
            Event::Approved { .. } => EventKind::Approved,
            Event::RunStopped { .. } => EventKind::RunStopped,
            Event::LockTakenOver { .. } => EventKind::LockTakenOver,
            Event::SecretRevealed { .. } => EventKind::SecretRevealed,
        }
    }

    /// The run that wrote the event, for records that belong to a run (`approve` and `unlock`
    /// write outside runs).
    pub fn run(&self) -> Option<u32> {
        match self {
            Event::RunStarted { run, .. }
            | Event::PlanChanged { run, .. }
            | Event::StepStarted { run, .. }
            | Event::StepIntent { run, .. }
            | Event::StepSucceeded { run, .. }
            | Event::StepSkipped { run, .. }
            | Event::StepFailed { run, .. }
            | Event::StepRetry { run, .. }
            | Event::StepWaiting { run, .. }
            | Event::GateWaiting { run, .. }
            | Event::RunStopped { run, .. } => Some(*run),
            Event::Approved { .. } | Event::LockTakenOver { .. } | Event::SecretRevealed { .. } => {
                None
            }
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
            run: 3,
            step: "dns".into(),
            attempt: 2,
            delay_ms: 500,
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"event":"stepRetry","run":3,"step":"dns","attempt":2,"delayMs":500}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
        assert_eq!(e.kind(), EventKind::StepRetry);
        assert_eq!(e.run(), Some(3));
    }

    #[test]
    fn every_kind_names_its_payload_tag() {
        for k in EventKind::ALL {
            assert_eq!(k.as_str().parse::<EventKind>(), Ok(k));
        }
        let e = Event::Approved {
            phase: 5,
            by: "ann".into(),
            note: None,
            covers: "x".into(),
            definition: None,
            customer: None,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], e.kind().as_str());
        assert_eq!(e.run(), None);
    }
}
