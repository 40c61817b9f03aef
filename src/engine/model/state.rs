//! Where a realm's install stands: a pure fold over the journal's events.
//!
//! Nothing here does I/O. [`State::fold`] replays events; [`super::plan`] turns a state and
//! the current inputs into decisions. Because the state is always recomputed from the journal,
//! a resumed run sees exactly what the killed one had made durable.

use std::collections::BTreeMap;

use serde::Serialize;

pub use super::approval::Approval;
use super::event::{Event, RunSubject, StopOutcome};
use super::output::{ArtifactRef, FailureKind, Intent, StepOutput};
use super::playbook::{Phase, Playbook};
use crate::checks::Owner;
use crate::cloud::definition::ClusterDefinition;
use crate::crypto::sha256_hex;

/// One `install` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    /// Run number.
    pub run: u32,
    /// Operator.
    pub operator: String,
    /// realmctl version.
    pub version: String,
    /// Host.
    pub host: String,
    /// Started at.
    pub started_at: String,
    /// `--until`.
    pub until: Option<u8>,
    /// Stopped at, if it stopped cleanly.
    pub stopped_at: Option<String>,
    /// How it ended; `None` when the process died.
    pub outcome: Option<StopOutcome>,
    /// The stop message.
    pub message: Option<String>,
}

/// Where one step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StepStatus {
    /// Never started.
    Pending,
    /// Started, never ended: the process died inside it.
    Interrupted,
    /// Done.
    Succeeded,
    /// Nothing to do.
    Skipped,
    /// The last attempt failed.
    Failed,
    /// Waits for someone.
    Waiting,
}

/// One step's history, as far as the journal tells.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepState {
    /// Status.
    pub status: StepStatus,
    /// Phase.
    pub phase: u8,
    /// Attempts over all runs.
    pub attempts: u32,
    /// Inputs digest of the last success, skip or wait.
    pub input_digest: Option<String>,
    /// Output digest of the last success.
    pub output_digest: Option<String>,
    /// Output of the last success (or the evidence of the last failure).
    pub output: Option<StepOutput>,
    /// First attempt started at.
    pub first_started_at: Option<String>,
    /// Last attempt ended at.
    pub ended_at: Option<String>,
    /// Duration of the last finished attempt.
    pub duration_ms: Option<u64>,
    /// Last error or wait reason.
    pub message: Option<String>,
    /// How the last attempt failed.
    pub failure: Option<FailureKind>,
    /// Who must act, while waiting.
    pub waiting_on: Option<Owner>,
    /// What an approval must cover to let the waiting step pass, when the step named it
    /// (otherwise its inputs).
    pub waiting_covers: Option<String>,
    /// Cloud changes the step announced (with their journal records), over all runs.
    pub intents: Vec<(u64, Intent)>,
}

impl StepState {
    /// What an apply step left: the inventory of its last output, and every object its intents
    /// announced (over all runs).
    pub fn applied(
        &self,
    ) -> (
        Option<&crate::platform::plan::Inventory>,
        Vec<crate::platform::ObjectRef>,
    ) {
        let announced = self
            .intents
            .iter()
            .filter_map(|(_, i)| match i {
                Intent::Apply { objects } => Some(objects.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect();
        (
            self.output.as_ref().and_then(|o| o.inventory.as_deref()),
            announced,
        )
    }

    fn new(phase: u8) -> Self {
        StepState {
            status: StepStatus::Pending,
            phase,
            attempts: 0,
            input_digest: None,
            output_digest: None,
            output: None,
            first_started_at: None,
            ended_at: None,
            duration_ms: None,
            message: None,
            failure: None,
            waiting_on: None,
            waiting_covers: None,
            intents: Vec::new(),
        }
    }

    /// Done (succeeded or skipped).
    pub fn is_done(&self) -> bool {
        matches!(self.status, StepStatus::Succeeded | StepStatus::Skipped)
    }
}

/// A gate that was reached and not yet passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GateWait {
    /// Phase.
    pub phase: u8,
    /// Gate id.
    pub gate: String,
    /// Who must approve.
    pub owner: Owner,
    /// Since.
    pub at: String,
}

/// A stale lock taken over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Takeover {
    /// The old lock id.
    pub lock_id: String,
    /// The old holder, described.
    pub holder: String,
    /// Who took over.
    pub by: String,
    /// When.
    pub at: String,
}

/// A secret `realmctl vpn reveal-key` printed once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reveal {
    /// The secret's name.
    pub secret: String,
    /// To whom.
    pub by: String,
    /// When.
    pub at: String,
    /// Journal record.
    pub seq: u64,
}

/// The whole state of a realm's install.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Every run, in order.
    pub runs: Vec<RunInfo>,
    /// What the last run was about.
    pub subject: Option<RunSubject>,
    /// The spec of the last run.
    pub spec: Option<serde_json::Value>,
    /// Its digest.
    pub spec_digest: Option<String>,
    /// The playbook of the last run.
    pub playbook: Option<Playbook>,
    /// Steps by id.
    pub steps: BTreeMap<String, StepState>,
    /// Approvals, in order.
    pub approvals: Vec<Approval>,
    /// The gate the last run stopped at, if not yet approved.
    pub gate_waiting: Option<GateWait>,
    /// Lock takeovers.
    pub takeovers: Vec<Takeover>,
    /// Secrets revealed once.
    pub reveals: Vec<Reveal>,
    /// Every cluster definition a step rendered or built, by digest (what an approval's
    /// definition digest names, and what changed since).
    pub definitions: BTreeMap<String, ClusterDefinition>,
    /// Number of records folded.
    pub records: u64,
}

impl State {
    /// Replays `(seq, at, event)` triples in journal order.
    pub fn fold<'a>(events: impl IntoIterator<Item = (u64, &'a str, &'a Event)>) -> Self {
        let mut s = State::default();
        for (seq, at, e) in events {
            s.apply(seq, at, e);
        }
        s
    }

    fn step(&mut self, id: &str, phase: u8) -> &mut StepState {
        self.steps
            .entry(id.to_owned())
            .or_insert_with(|| StepState::new(phase))
    }

    /// Applies one event.
    pub fn apply(&mut self, seq: u64, at: &str, e: &Event) {
        self.records += 1;
        match e {
            Event::RunStarted {
                run,
                operator,
                version,
                host,
                subject,
                spec_digest,
                spec,
                playbook,
                until,
                ..
            } => {
                self.runs.push(RunInfo {
                    run: *run,
                    operator: operator.clone(),
                    version: version.clone(),
                    host: host.clone(),
                    started_at: at.to_owned(),
                    until: *until,
                    stopped_at: None,
                    outcome: None,
                    message: None,
                });
                self.subject = Some(subject.clone());
                self.spec = Some(spec.clone());
                self.spec_digest = Some(spec_digest.clone());
                self.playbook = Some(playbook.clone());
                self.gate_waiting = None;
            }
            Event::PlanChanged { .. } => {}
            Event::StepStarted { step, phase, .. } => {
                let st = self.step(step, *phase);
                st.status = StepStatus::Interrupted;
                st.attempts += 1;
                st.first_started_at.get_or_insert_with(|| at.to_owned());
                st.waiting_on = None;
                st.waiting_covers = None;
            }
            Event::StepSucceeded {
                step,
                phase,
                input_digest,
                output_digest,
                output,
                duration_ms,
                ..
            } => {
                for d in output.definition.iter().chain(&output.built) {
                    self.definitions.insert(d.digest(), (**d).clone());
                }
                let st = self.step(step, *phase);
                st.status = StepStatus::Succeeded;
                st.input_digest = Some(input_digest.clone());
                st.output_digest = Some(output_digest.clone());
                st.output = Some(output.clone());
                st.ended_at = Some(at.to_owned());
                st.duration_ms = Some(*duration_ms);
                st.message = None;
                st.failure = None;
            }
            Event::StepSkipped {
                step,
                phase,
                input_digest,
                reason,
                ..
            } => {
                let st = self.step(step, *phase);
                st.status = StepStatus::Skipped;
                st.input_digest = Some(input_digest.clone());
                st.output_digest = Some(sha256_hex(reason.as_bytes()));
                st.output = None;
                st.ended_at = Some(at.to_owned());
                st.message = Some(reason.clone());
                st.failure = None;
            }
            Event::StepFailed {
                step,
                phase,
                failure,
                error,
                output,
                duration_ms,
                ..
            } => {
                let st = self.step(step, *phase);
                st.status = StepStatus::Failed;
                st.failure = Some(*failure);
                st.message = Some(error.clone());
                st.ended_at = Some(at.to_owned());
                st.duration_ms = Some(*duration_ms);
                if output.is_some() {
                    st.output = output.clone();
                }
            }
            Event::StepRetry { .. } => {}
            Event::StepIntent { step, intent, .. } => {
                if let Some(st) = self.steps.get_mut(step) {
                    st.intents.push((seq, intent.clone()));
                }
            }
            Event::StepWaiting {
                step,
                phase,
                owner,
                reason,
                input_digest,
                covers,
                ..
            } => {
                let st = self.step(step, *phase);
                st.status = StepStatus::Waiting;
                st.input_digest = Some(input_digest.clone());
                st.waiting_covers = covers.clone();
                st.message = Some(reason.clone());
                st.waiting_on = Some(*owner);
                st.ended_at = Some(at.to_owned());
            }
            Event::GateWaiting {
                phase, gate, owner, ..
            } => {
                self.gate_waiting = Some(GateWait {
                    phase: *phase,
                    gate: gate.clone(),
                    owner: *owner,
                    at: at.to_owned(),
                });
            }
            Event::Approved {
                phase,
                by,
                note,
                covers,
                definition,
                customer,
            } => {
                self.approvals.push(Approval {
                    phase: *phase,
                    by: by.clone(),
                    note: note.clone(),
                    covers: covers.clone(),
                    definition: definition.clone(),
                    customer_key: customer.as_ref().map(|c| c.key.clone()),
                    at: at.to_owned(),
                    seq,
                });
                if self
                    .gate_waiting
                    .as_ref()
                    .is_some_and(|g| g.phase == *phase)
                {
                    self.gate_waiting = None;
                }
            }
            Event::RunStopped {
                run,
                outcome,
                message,
            } => {
                if let Some(r) = self.runs.iter_mut().rev().find(|r| r.run == *run) {
                    r.stopped_at = Some(at.to_owned());
                    r.outcome = Some(*outcome);
                    r.message = Some(message.clone());
                }
            }
            Event::LockTakenOver {
                lock_id,
                holder,
                by,
            } => self.takeovers.push(Takeover {
                lock_id: lock_id.clone(),
                holder: holder.clone(),
                by: by.clone(),
                at: at.to_owned(),
            }),
            Event::SecretRevealed { secret, by } => self.reveals.push(Reveal {
                secret: secret.clone(),
                by: by.clone(),
                at: at.to_owned(),
                seq,
            }),
        }
    }

    /// A step's state, `Pending` if it never ran.
    pub fn step_state(&self, id: &str) -> Option<&StepState> {
        self.steps.get(id)
    }

    /// The next run number.
    pub fn next_run(&self) -> u32 {
        self.runs.last().map_or(1, |r| r.run + 1)
    }

    /// The approval of `phase` covering `subject`, if any.
    pub fn approval_for(&self, phase: u8, subject: &str) -> Option<&Approval> {
        self.approvals
            .iter()
            .rev()
            .find(|a| a.phase == phase && a.covers == subject)
    }

    /// The latest approval of a cluster definition with this digest, if any: what lets phase 6
    /// build it.
    pub fn approval_of_definition(&self, digest: &str) -> Option<&Approval> {
        self.approvals
            .iter()
            .rev()
            .find(|a| a.definition.as_deref() == Some(digest))
    }

    /// The latest approval of `phase` that named a cluster definition, if any.
    pub fn last_definition_approval(&self, phase: u8) -> Option<&Approval> {
        self.approvals
            .iter()
            .rev()
            .find(|a| a.phase == phase && a.definition.is_some())
    }
}

/// The cluster definition a phase's finished steps rendered, if one did (`None` while a step of
/// the phase is not done).
pub fn phase_definition<'a>(phase: &Phase, state: &'a State) -> Option<&'a ClusterDefinition> {
    phase.steps.iter().find_map(|s| {
        state
            .step_state(&s.id)
            .filter(|st| st.is_done())
            .and_then(|st| st.output.as_ref())
            .and_then(|o| o.definition.as_deref())
    })
}

/// The artifacts of a phase's finished steps (the documents an approval of the phase covers).
pub fn phase_artifacts<'a>(phase: &Phase, state: &'a State) -> Vec<&'a ArtifactRef> {
    phase
        .steps
        .iter()
        .filter_map(|s| state.step_state(&s.id).filter(|st| st.is_done()))
        .filter_map(|st| st.output.as_ref())
        .flat_map(|o| &o.artifacts)
        .collect()
}

/// Digest of a phase's step outputs: what its gate's approval covers. `None` while a step of
/// the phase is not done.
pub fn phase_outputs_digest(phase: &Phase, state: &State) -> Option<String> {
    let mut acc = format!("phase:{}", phase.number);
    for s in &phase.steps {
        let st = state.step_state(&s.id).filter(|st| st.is_done())?;
        acc.push_str(&format!(
            "\n{}={}",
            s.id,
            st.output_digest.as_deref().unwrap_or("")
        ));
    }
    Some(sha256_hex(acc.as_bytes()))
}

/// Why `approve` has nothing to approve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApproveError {
    /// No such phase.
    #[error("there is no phase {0}; phases are numbered 1 to 6")]
    NoPhase(u8),
    /// The phase waits for nothing.
    #[error(
        "phase {phase} is not waiting for an approval ({why})\n  help: `realmctl status` shows who must act next"
    )]
    NotWaiting {
        /// The phase.
        phase: u8,
        /// Where it stands.
        why: String,
    },
}

/// What an approval of `phase` would cover now: a step of the phase waiting on someone (its
/// inputs), or else the phase's finished outputs when the phase has a gate, with the digest
/// of the cluster definition those outputs render.
pub fn approval_subject(
    playbook: &Playbook,
    state: &State,
    phase: u8,
) -> Result<(String, Option<String>), ApproveError> {
    let p = playbook
        .phases
        .iter()
        .find(|p| p.number == phase)
        .ok_or(ApproveError::NoPhase(phase))?;
    for s in &p.steps {
        if let Some(st) = state.step_state(&s.id)
            && st.status == StepStatus::Waiting
            && let Some(d) = st.waiting_covers.as_ref().or(st.input_digest.as_ref())
        {
            return Ok((d.clone(), None));
        }
    }
    if p.gates.is_empty() {
        return Err(ApproveError::NotWaiting {
            phase,
            why: "it has no gate and no step waits".into(),
        });
    }
    let subject = phase_outputs_digest(p, state).ok_or_else(|| ApproveError::NotWaiting {
        phase,
        why: "its steps have not all finished yet".into(),
    })?;
    if let Some(a) = state.approval_for(phase, &subject) {
        return Err(ApproveError::NotWaiting {
            phase,
            why: format!("already approved by {} at {}", a.by, a.at),
        });
    }
    Ok((
        subject,
        phase_definition(p, state).map(ClusterDefinition::digest),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::playbook;

    fn ok(step: &str, phase: u8, out: &str) -> Event {
        Event::StepSucceeded {
            run: 1,
            step: step.into(),
            phase,
            input_digest: "in".into(),
            output_digest: out.into(),
            output: StepOutput::default(),
            duration_ms: 1,
        }
    }

    fn start(step: &str, phase: u8) -> Event {
        Event::StepStarted {
            run: 1,
            step: step.into(),
            phase,
            attempt: 1,
            input_digest: "in".into(),
        }
    }

    fn fold(events: &[Event]) -> State {
        State::fold(
            events
                .iter()
                .enumerate()
                .map(|(i, e)| (i as u64 + 1, "t", e)),
        )
    }

    #[test]
    fn a_start_without_an_end_is_interrupted() {
        let s = fold(&[start("a", 1), ok("a", 1, "o"), start("b", 1)]);
        assert_eq!(s.steps["a"].status, StepStatus::Succeeded);
        assert_eq!(s.steps["b"].status, StepStatus::Interrupted);
        assert_eq!(s.steps["b"].attempts, 1);
    }

    #[test]
    fn gate_subject_needs_finished_steps_and_changes_with_outputs() {
        let pb = playbook::embedded();
        let steps: Vec<_> = pb.phases[4].steps.iter().map(|s| s.id.clone()).collect();
        let s = fold(&[]);
        assert!(matches!(
            approval_subject(&pb, &s, 5),
            Err(ApproveError::NotWaiting { .. })
        ));
        let s1 = fold(&[start(&steps[0], 5), ok(&steps[0], 5, "o1")]);
        let s2 = fold(&[start(&steps[0], 5), ok(&steps[0], 5, "o2")]);
        let (a, _) = approval_subject(&pb, &s1, 5).unwrap();
        assert_ne!(a, approval_subject(&pb, &s2, 5).unwrap().0);
        assert_eq!(approval_subject(&pb, &s, 9), Err(ApproveError::NoPhase(9)));
        assert!(matches!(
            approval_subject(&pb, &s1, 4),
            Err(ApproveError::NotWaiting { .. })
        ));
        let mut approved = s1.clone();
        approved.apply(
            9,
            "t",
            &Event::Approved {
                phase: 5,
                by: "ann".into(),
                note: None,
                covers: a.clone(),
                definition: None,
                customer: None,
            },
        );
        match approval_subject(&pb, &approved, 5) {
            Err(ApproveError::NotWaiting { why, .. }) => {
                assert!(why.contains("already approved by ann"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_waiting_step_is_what_its_phase_approval_covers() {
        let pb = playbook::embedded();
        let s = fold(&[Event::StepWaiting {
            run: 1,
            step: "node-image-acceptance".into(),
            phase: 1,
            owner: Owner::Customer,
            reason: "accept".into(),
            input_digest: "img".into(),
            covers: None,
        }]);
        assert_eq!(
            approval_subject(&pb, &s, 1).unwrap(),
            ("img".to_owned(), None)
        );
        let s = {
            let mut s = s;
            s.apply(
                2,
                "t",
                &Event::Approved {
                    phase: 1,
                    by: "cto".into(),
                    note: None,
                    covers: "img".into(),
                    definition: None,
                    customer: None,
                },
            );
            s
        };
        assert_eq!(s.approval_for(1, "img").unwrap().by, "cto");
        assert!(s.approval_for(1, "other").is_none());
        // A step that names what it asked for is approved by that, not by its inputs.
        let named = fold(&[Event::StepWaiting {
            run: 1,
            step: "node-image-acceptance".into(),
            phase: 1,
            owner: Owner::Customer,
            reason: "configure".into(),
            input_digest: "img".into(),
            covers: Some("asked".into()),
        }]);
        assert_eq!(
            approval_subject(&pb, &named, 1).unwrap(),
            ("asked".to_owned(), None)
        );
    }
}
