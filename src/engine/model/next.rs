//! Where an install stands and who acts next, computed in one place from the journal's state
//! (pure): `install` prints it when it stops, `status` and `report` show it.

use std::fmt;

use serde::Serialize;

use super::event::StopOutcome;
use super::playbook::Playbook;
use super::state::{State, StepStatus};
use crate::checks::Owner;

/// Who must act next, and what they must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Next {
    /// Who.
    pub owner: Owner,
    /// What, in words (with the command when there is one).
    pub action: String,
}

impl fmt::Display for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.owner.as_str(), self.action)
    }
}

/// Where an install stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Standing {
    /// One line for people.
    pub summary: String,
    /// Who acts next; `None` when the install is complete.
    pub next: Option<Next>,
}

fn next(owner: Owner, action: impl Into<String>) -> Option<Next> {
    Some(Next {
        owner,
        action: action.into(),
    })
}

/// Where the install of `state` stands under `playbook`, from the last run's end. `running`
/// describes the process holding the realm's lock right now, if a live one does (an install
/// in progress is not an interrupted one).
pub fn standing(playbook: &Playbook, state: &State, running: Option<&str>) -> Standing {
    let cmd = playbook.workflow.command();
    let Some(last) = state.runs.last() else {
        return Standing {
            summary: "no install has run yet".into(),
            next: next(Owner::Digibee, "run `realmctl install`"),
        };
    };
    let message = last.message.clone().unwrap_or_default();
    let steps_with = |status: StepStatus| {
        playbook.steps().find_map(move |(phase, s)| {
            state
                .step_state(&s.id)
                .filter(|st| st.status == status)
                .map(|st| (phase, st))
        })
    };
    match last.outcome {
        None if running.is_some() => Standing {
            summary: format!(
                "run {} is in progress ({})",
                last.run,
                running.unwrap_or_default()
            ),
            next: next(
                Owner::Digibee,
                format!(
                    "wait for the running {cmd} to finish; `realmctl status` shows where it stands"
                ),
            ),
        },
        None => Standing {
            summary: format!("run {} was interrupted (the process died)", last.run),
            next: next(
                Owner::Digibee,
                format!(
                    "check the lock (`realmctl unlock` if it is stale) and run `realmctl {cmd}` again to resume"
                ),
            ),
        },
        Some(StopOutcome::Completed) => Standing {
            summary: match playbook.workflow {
                crate::engine::actions::Workflow::Install => "the install is complete".into(),
                crate::engine::actions::Workflow::Destroy => "the realm is destroyed".into(),
                crate::engine::actions::Workflow::Upgrade => "the upgrade is complete".into(),
            },
            next: None,
        },
        Some(StopOutcome::Until) => Standing {
            summary: message,
            next: next(Owner::Digibee, format!("run `realmctl {cmd}` to continue")),
        },
        Some(StopOutcome::Waiting) => {
            let who = if let Some((_, st)) = steps_with(StepStatus::Waiting) {
                next(
                    st.waiting_on.unwrap_or(Owner::Customer),
                    st.message.clone().unwrap_or_default(),
                )
            } else if let Some(g) = &state.gate_waiting {
                let description = playbook
                    .phases
                    .iter()
                    .flat_map(|p| &p.gates)
                    .find(|x| x.id == g.gate)
                    .map(|x| format!(": {}", x.description))
                    .unwrap_or_default();
                next(
                    g.owner,
                    format!(
                        "approve phase {}{description} (`realmctl approve --state <dir> --phase {} --by NAME`)",
                        g.phase, g.phase
                    ),
                )
            } else {
                next(
                    Owner::Digibee,
                    format!("run `realmctl {cmd}` again; the approval it waited for is recorded"),
                )
            };
            Standing {
                summary: message,
                next: who,
            }
        }
        Some(StopOutcome::Failed) => {
            let who = match steps_with(StepStatus::Failed) {
                Some((phase, st)) => {
                    let owner = st
                        .output
                        .as_ref()
                        .and_then(|o| crate::checks::first_failure_owner(&o.checks))
                        .unwrap_or(phase.owner);
                    let error = st.message.as_deref().unwrap_or("");
                    let first = error.lines().next().unwrap_or("");
                    next(
                        owner,
                        format!("fix: {first}; then run `realmctl {cmd}` again"),
                    )
                }
                None => next(
                    Owner::Digibee,
                    format!("fix the failure, then run `realmctl {cmd}` again"),
                ),
            };
            Standing {
                summary: message,
                next: who,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::event::{Event, RunSubject};
    use crate::engine::model::output::{FailureKind, StepOutput};
    use crate::engine::model::playbook;
    use crate::spec::Provider;

    fn state(events: &[Event]) -> State {
        State::fold(
            events
                .iter()
                .enumerate()
                .map(|(i, e)| (i as u64 + 1, "t", e)),
        )
    }

    fn start() -> Event {
        Event::RunStarted {
            run: 1,
            operator: "op".into(),
            version: "v".into(),
            host: "h".into(),
            lock_id: "l".into(),
            subject: RunSubject {
                realm: "acme".into(),
                provider: Provider::Eks,
                region: "r".into(),
                artifacts_bucket: None,
                endpoint: None,
            },
            spec_digest: "d".into(),
            spec: serde_json::json!({}),
            playbook: playbook::embedded(),
            until: None,
        }
    }

    fn stop(outcome: StopOutcome) -> Event {
        Event::RunStopped {
            run: 1,
            outcome,
            message: "stopped".into(),
        }
    }

    #[test]
    fn nobody_has_run_yet_or_a_run_died() {
        let pb = playbook::embedded();
        let s = standing(&pb, &state(&[]), None);
        assert_eq!(s.next.unwrap().owner, Owner::Digibee);
        let s = standing(&pb, &state(&[start()]), Some("pid 7 on h"));
        assert!(
            s.summary.contains("is in progress (pid 7 on h)"),
            "{}",
            s.summary
        );
        assert!(!s.next.as_ref().unwrap().action.contains("unlock"));
        let s = standing(&pb, &state(&[start()]), None);
        assert!(s.summary.contains("interrupted"), "{}", s.summary);
        assert!(s.next.unwrap().action.contains("unlock"));
    }

    #[test]
    fn a_gate_names_its_approver_and_the_command() {
        let pb = playbook::embedded();
        let s = standing(
            &pb,
            &state(&[
                start(),
                Event::GateWaiting {
                    run: 1,
                    phase: 5,
                    gate: "customer-acknowledgement".into(),
                    owner: Owner::Customer,
                },
                stop(StopOutcome::Waiting),
            ]),
            None,
        );
        let n = s.next.unwrap();
        assert_eq!(n.owner, Owner::Customer);
        assert!(n.action.starts_with("approve phase 5: "), "{n}");
        assert!(n.action.contains("--phase 5"), "{n}");
    }

    #[test]
    fn a_failed_check_is_fixed_by_its_owner_else_by_the_phase_owner() {
        let pb = playbook::embedded();
        let failed = |output| Event::StepFailed {
            run: 1,
            step: "certificate".into(),
            phase: 3,
            attempt: 1,
            failure: FailureKind::Permanent,
            error: "expired\nmore".into(),
            output,
            duration_ms: 1,
        };
        let s = standing(
            &pb,
            &state(&[start(), failed(None), stop(StopOutcome::Failed)]),
            None,
        );
        let n = s.next.unwrap();
        assert_eq!(n.owner, Owner::Digibee, "phase 3 is Digibee's");
        assert_eq!(n.action, "fix: expired; then run `realmctl install` again");
        let evidence = StepOutput {
            checks: vec![crate::checks::CheckResult::fail(
                "certificate.expiry",
                crate::checks::Category::Certificate,
                "cert",
                "expired",
                "renew it",
            )],
            ..StepOutput::default()
        };
        let s = standing(
            &pb,
            &state(&[start(), failed(Some(evidence)), stop(StopOutcome::Failed)]),
            None,
        );
        assert_eq!(s.next.unwrap().owner, Owner::Customer);
    }

    #[test]
    fn a_complete_install_needs_nobody() {
        let pb = playbook::embedded();
        let s = standing(&pb, &state(&[start(), stop(StopOutcome::Completed)]), None);
        assert_eq!(s.next, None);
        assert_eq!(s.summary, "the install is complete");
    }
}
