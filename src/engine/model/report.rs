//! `realmctl status` and `realmctl report`: where an install stands, and the auditor's report.
//!
//! Both come from the journal alone (the spec and playbook of the last run are recorded in
//! it), through one typed model: each phase's owner, status, timings, approvals, check
//! evidence and artifact checksums, who must act next, and the journal head an auditor keeps.
//! HTML and Markdown are rendered with tera from `templates/`; JSON is the model itself.

use serde::Serialize;

use super::chain::Checkpoint;
use super::next::{Next, standing};
use super::output::ArtifactRef;
use super::playbook::{Phase, Playbook};
use super::state::{
    Approval, RunInfo, State, StepState, StepStatus, Takeover, phase_outputs_digest,
};
use crate::checks::{CheckResult, Owner};
use crate::report::DocFormat;
use crate::templates::{self, TemplateError};

/// A phase's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PhaseStatus {
    /// Nothing ran yet.
    NotStarted,
    /// Some steps done.
    InProgress,
    /// Waits on someone.
    Waiting,
    /// A step failed.
    Failed,
    /// Every step done and every gate approved.
    Done,
    /// The phase has no steps in this build.
    Empty,
}

/// One step in the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRow {
    /// Id.
    pub id: String,
    /// Action.
    pub action: String,
    /// Status.
    pub status: StepStatus,
    /// Attempts.
    pub attempts: u32,
    /// First started.
    pub started_at: Option<String>,
    /// Ended.
    pub ended_at: Option<String>,
    /// Duration of the last attempt.
    pub duration_ms: Option<u64>,
    /// Summary or error.
    pub message: String,
    /// Check evidence.
    pub checks: Vec<CheckResult>,
    /// Artifacts with checksums.
    pub artifacts: Vec<ArtifactRef>,
}

/// One phase in the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseRow {
    /// Number.
    pub number: u8,
    /// Title.
    pub title: String,
    /// Owner.
    pub owner: Owner,
    /// Status.
    pub status: PhaseStatus,
    /// Remark.
    pub note: Option<String>,
    /// First step started.
    pub started_at: Option<String>,
    /// Last step ended.
    pub ended_at: Option<String>,
    /// Steps.
    pub steps: Vec<StepRow>,
    /// Gates, described.
    pub gates: Vec<String>,
    /// Approvals recorded for this phase.
    pub approvals: Vec<ApprovalRow>,
}

/// An approval and the key that signed its record.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRow {
    /// The approval.
    #[serde(flatten)]
    pub approval: Approval,
    /// The key id its record names as signer (checked by `audit verify --public-key`).
    pub signed_by: Option<String>,
}

/// Who signed the journal's records, as the records name them.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signatures {
    /// Per key id: how many records, and the first and last of them.
    pub keys: Vec<SignerRow>,
    /// Records without a signature.
    pub unsigned: u64,
    /// The signer of each record (only what the report shows: approvals).
    #[serde(skip)]
    pub of_record: std::collections::HashMap<u64, String>,
}

/// One signing key's share of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignerRow {
    /// Key id.
    pub key: String,
    /// Records it signed.
    pub records: u64,
    /// First record it signed.
    pub first: u64,
    /// Last record it signed.
    pub last: u64,
}

impl Signatures {
    /// Counts one record's signer (pure; records in order). `keep` records the signer of
    /// this record for the report's rows.
    pub fn add(&mut self, seq: u64, signer: Option<&str>, keep: bool) {
        let Some(key) = signer else {
            self.unsigned += 1;
            return;
        };
        match self.keys.iter_mut().find(|k| k.key == key) {
            Some(row) => {
                row.records += 1;
                row.last = seq;
            }
            None => self.keys.push(SignerRow {
                key: key.to_owned(),
                records: 1,
                first: seq,
                last: seq,
            }),
        }
        if keep {
            self.of_record.insert(seq, key.to_owned());
        }
    }
}

/// The cluster definition an approval named, next to the one a step built (pure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionRow {
    /// The digest the latest definition approval named.
    pub approved: Option<String>,
    /// Who approved it, when, and in which record.
    pub approved_by: Option<String>,
    /// The digest of what the last cloud step built or adopted.
    pub built: Option<String>,
    /// The step that built it.
    pub built_by_step: Option<String>,
    /// Whether what was built is what was approved (`None` while nothing is built).
    pub matches: Option<bool>,
}

/// What was approved and what was built, from the journal's state (pure). `None` when the
/// install renders no cluster definition.
pub fn definition_row(playbook: &Playbook, state: &State) -> Option<DefinitionRow> {
    let approval = state
        .approvals
        .iter()
        .rev()
        .find(|a| a.definition.is_some());
    let built = playbook.steps().find_map(|(_, s)| {
        let st = state.step_state(&s.id)?;
        let b = st.output.as_ref()?.built.as_ref()?;
        Some((s.id.clone(), b.digest()))
    });
    if approval.is_none() && built.is_none() {
        return None;
    }
    let approved = approval.and_then(|a| a.definition.clone());
    Some(DefinitionRow {
        matches: built
            .as_ref()
            .map(|(_, d)| approved.as_deref() == Some(d.as_str())),
        approved,
        approved_by: approval.map(|a| format!("{} at {} (record {})", a.by, a.at, a.seq)),
        built_by_step: built.as_ref().map(|(s, _)| s.clone()),
        built: built.map(|(_, d)| d),
    })
}

/// The report model.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallReport {
    /// Realm.
    pub realm: String,
    /// Provider and region.
    pub cloud: String,
    /// Playbook.
    pub playbook: String,
    /// realmctl version rendering the report.
    pub version: String,
    /// Where things stand, one line.
    pub summary: String,
    /// Who must act next, if anyone.
    pub next: Option<Next>,
    /// Phases.
    pub phases: Vec<PhaseRow>,
    /// Runs.
    pub runs: Vec<RunInfo>,
    /// Lock takeovers.
    pub takeovers: Vec<Takeover>,
    /// Secrets revealed once (which and to whom; never the secret).
    pub reveals: Vec<super::state::Reveal>,
    /// The journal head when the report was made.
    pub journal_head: Option<Checkpoint>,
    /// Records in the journal.
    pub journal_records: u64,
    /// Who signed the records (as recorded; `audit verify --public-key` checks them).
    pub signatures: Signatures,
    /// The cluster definition the customer approved, next to the one built.
    pub definition: Option<DefinitionRow>,
    /// What the platform step applied into the cluster: every object with its digest and
    /// readiness, and what it pruned.
    pub inventory: Option<crate::platform::plan::Inventory>,
    /// The realm VPN instance phase 6 built or adopted.
    pub vpn: Option<crate::cloud::vpn::VpnBuilt>,
}

fn step_row(id: &str, action: &str, st: Option<&StepState>) -> StepRow {
    let Some(st) = st else {
        return StepRow {
            id: id.to_owned(),
            action: action.to_owned(),
            status: StepStatus::Pending,
            attempts: 0,
            started_at: None,
            ended_at: None,
            duration_ms: None,
            message: String::new(),
            checks: Vec::new(),
            artifacts: Vec::new(),
        };
    };
    let output = st.output.clone().unwrap_or_default();
    let message = match st.status {
        StepStatus::Succeeded => output.summary.clone(),
        _ => st.message.clone().unwrap_or_default(),
    };
    StepRow {
        id: id.to_owned(),
        action: action.to_owned(),
        status: st.status,
        attempts: st.attempts,
        started_at: st.first_started_at.clone(),
        ended_at: st.ended_at.clone(),
        duration_ms: st.duration_ms,
        message,
        checks: output.checks,
        artifacts: output.artifacts,
    }
}

/// A phase's status (pure).
pub fn phase_status(phase: &Phase, state: &State) -> PhaseStatus {
    if phase.steps.is_empty() && phase.gates.is_empty() {
        return PhaseStatus::Empty;
    }
    let sts: Vec<_> = phase
        .steps
        .iter()
        .map(|s| state.step_state(&s.id).map(|st| st.status))
        .collect();
    if sts.contains(&Some(StepStatus::Failed)) {
        return PhaseStatus::Failed;
    }
    if sts.contains(&Some(StepStatus::Waiting)) {
        return PhaseStatus::Waiting;
    }
    let all_done = sts
        .iter()
        .all(|s| matches!(s, Some(StepStatus::Succeeded | StepStatus::Skipped)));
    if all_done {
        let approved = phase.gates.is_empty()
            || phase_outputs_digest(phase, state)
                .is_some_and(|d| state.approval_for(phase.number, &d).is_some());
        return if approved {
            PhaseStatus::Done
        } else if state
            .gate_waiting
            .as_ref()
            .is_some_and(|g| g.phase == phase.number)
        {
            PhaseStatus::Waiting
        } else {
            PhaseStatus::InProgress
        };
    }
    if sts.iter().all(Option::is_none) {
        PhaseStatus::NotStarted
    } else {
        PhaseStatus::InProgress
    }
}

/// Builds the report model from the journal's state.
pub fn build(
    state: &State,
    head: Option<Checkpoint>,
    signatures: Signatures,
    running: Option<&str>,
) -> Option<InstallReport> {
    let playbook = state.playbook.as_ref()?;
    let subject = state.subject.as_ref()?;
    let phases: Vec<PhaseRow> = playbook
        .phases
        .iter()
        .map(|p| {
            let steps: Vec<StepRow> = p
                .steps
                .iter()
                .map(|s| step_row(&s.id, s.action.name(), state.step_state(&s.id)))
                .collect();
            PhaseRow {
                number: p.number,
                title: p.title.clone(),
                owner: p.owner,
                status: phase_status(p, state),
                note: p.note.clone(),
                started_at: steps.iter().filter_map(|s| s.started_at.clone()).min(),
                ended_at: steps.iter().filter_map(|s| s.ended_at.clone()).max(),
                gates: p
                    .gates
                    .iter()
                    .map(|g| format!("{} ({}): {}", g.id, g.owner.as_str(), g.description))
                    .collect(),
                approvals: state
                    .approvals
                    .iter()
                    .filter(|a| a.phase == p.number)
                    .map(|a| ApprovalRow {
                        signed_by: signatures.of_record.get(&a.seq).cloned(),
                        approval: a.clone(),
                    })
                    .collect(),
                steps,
            }
        })
        .collect();
    let now = standing(playbook, state, running);
    Some(InstallReport {
        realm: subject.realm.clone(),
        cloud: format!("{} {}", subject.provider, subject.region),
        playbook: playbook.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        summary: now.summary,
        next: now.next,
        phases,
        runs: state.runs.clone(),
        takeovers: state.takeovers.clone(),
        reveals: state.reveals.clone(),
        journal_head: head,
        journal_records: state.records,
        signatures,
        definition: definition_row(playbook, state),
        inventory: playbook
            .phases
            .iter()
            .flat_map(|p| &p.steps)
            .filter(|s| s.action == crate::engine::actions::Action::PlatformApply)
            .filter_map(|s| {
                state
                    .step_state(&s.id)?
                    .output
                    .as_ref()?
                    .inventory
                    .as_deref()
            })
            .next_back()
            .cloned(),
        vpn: playbook
            .steps()
            .filter_map(|(_, s)| state.step_state(&s.id)?.output.as_ref()?.vpn.as_deref())
            .last()
            .cloned(),
    })
}

/// Renders the report as HTML, Markdown or JSON.
pub fn render(report: &InstallReport, format: ReportFormat) -> Result<String, TemplateError> {
    match format {
        ReportFormat::Json => Ok(serde_json::to_string_pretty(report).expect("reports serialise")),
        ReportFormat::Doc(DocFormat::Html) => templates::render("install-report.html", report),
        ReportFormat::Doc(DocFormat::Markdown) => templates::render("install-report.md", report),
    }
}

/// `report --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// JSON.
    Json,
    /// HTML or Markdown.
    Doc(DocFormat),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::event::Event;
    use crate::engine::model::output::{FailureKind, StepOutput};
    use crate::engine::model::playbook;

    fn state(events: &[Event]) -> State {
        State::fold(
            events
                .iter()
                .enumerate()
                .map(|(i, e)| (i as u64 + 1, "t", e)),
        )
    }

    fn ok(step: &str, phase: u8) -> Event {
        Event::StepSucceeded {
            run: 1,
            step: step.into(),
            phase,
            input_digest: "i".into(),
            output_digest: "o".into(),
            output: StepOutput::default(),
            duration_ms: 1,
        }
    }

    #[test]
    fn signatures_are_counted_per_key_with_their_range() {
        let mut s = Signatures::default();
        s.add(1, Some("ed25519:a"), false);
        s.add(2, None, false);
        s.add(3, Some("ed25519:b"), true);
        s.add(4, Some("ed25519:a"), false);
        assert_eq!(s.unsigned, 1);
        assert_eq!(
            s.keys,
            vec![
                SignerRow {
                    key: "ed25519:a".into(),
                    records: 2,
                    first: 1,
                    last: 4
                },
                SignerRow {
                    key: "ed25519:b".into(),
                    records: 1,
                    first: 3,
                    last: 3
                }
            ]
        );
        assert_eq!(s.of_record.len(), 1);
        assert_eq!(s.of_record[&3], "ed25519:b");
    }

    #[test]
    fn phase_status_follows_steps_and_gates() {
        let pb = playbook::embedded();
        let p5 = &pb.phases[4];
        let empty = playbook::Phase {
            steps: vec![],
            gates: vec![],
            ..pb.phases[1].clone()
        };
        assert_eq!(phase_status(&empty, &state(&[])), PhaseStatus::Empty);
        assert_eq!(phase_status(p5, &state(&[])), PhaseStatus::NotStarted);
        let done = state(&[ok("roles-document", 5)]);
        assert_eq!(
            phase_status(p5, &done),
            PhaseStatus::InProgress,
            "gate not reached"
        );
        let waiting = state(&[
            ok("roles-document", 5),
            Event::GateWaiting {
                run: 1,
                phase: 5,
                gate: "g".into(),
                owner: Owner::Customer,
            },
        ]);
        assert_eq!(phase_status(p5, &waiting), PhaseStatus::Waiting);
        let covers = phase_outputs_digest(p5, &done).unwrap();
        let approved = state(&[
            ok("roles-document", 5),
            Event::Approved {
                phase: 5,
                by: "ann".into(),
                note: None,
                covers,
                definition: None,
                customer: None,
            },
        ]);
        assert_eq!(phase_status(p5, &approved), PhaseStatus::Done);
        let failed = state(&[Event::StepFailed {
            run: 1,
            step: "certificate".into(),
            phase: 3,
            attempt: 1,
            failure: FailureKind::Permanent,
            error: "expired".into(),
            output: None,
            duration_ms: 1,
        }]);
        assert_eq!(phase_status(&pb.phases[2], &failed), PhaseStatus::Failed);
    }
}
