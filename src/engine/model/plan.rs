//! The plan: what `install` would do next, phase by phase. Pure: built from the playbook, the
//! journal's state and the digests of each step's current inputs, with no side effects, so
//! `realmctl plan` and `install` decide the same way. Also the other pure decisions of the
//! engine: what changed in the spec, and the retry policy.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::event::Change;
use super::output::FailureKind;
use super::playbook::Phase;
use super::playbook::Playbook;
use super::state::{State, StepStatus, phase_outputs_digest};
use crate::checks::Owner;
use crate::cloud::definition::{ClusterDefinition, changed_fields};
use crate::engine::actions::{Action, Availability, Capabilities};

/// What will happen to one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum StepPlan {
    /// Done with the same inputs; never re-run.
    Done {
        /// When it finished.
        at: String,
        /// Skipped rather than run.
        skipped: bool,
    },
    /// Never ran: will run.
    Run,
    /// The process died inside it: will run again (actions create or adopt).
    Resume,
    /// It failed last time: will run again.
    Retry {
        /// The last error.
        error: String,
    },
    /// It waits for someone: will check again.
    Recheck {
        /// What it waits for.
        reason: String,
    },
    /// Done, but its inputs changed since: will run again.
    Rerun,
    /// This build cannot run it.
    Unavailable {
        /// Why.
        reason: String,
    },
}

impl StepPlan {
    /// Whether `install` will execute the step.
    pub fn runs(&self) -> bool {
        !matches!(self, StepPlan::Done { .. } | StepPlan::Unavailable { .. })
    }
}

/// One planned step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanStep {
    /// Step id.
    pub id: String,
    /// Action.
    pub action: Action,
    /// The decision.
    #[serde(flatten)]
    pub plan: StepPlan,
    /// Digest of the current inputs.
    pub input_digest: String,
    /// Timeout of one attempt, ms.
    pub timeout_ms: u64,
    /// Extra attempts on retryable failures.
    pub retries: u32,
}

/// A gate's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum GatePlan {
    /// Approved for the phase's current outputs.
    Approved {
        /// By whom.
        by: String,
        /// When.
        at: String,
    },
    /// Needs an approval once the phase's steps are done.
    Pending {
        /// Why an earlier approval of this phase no longer holds (what changed since), if
        /// there was one.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// One planned gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanGate {
    /// Gate id.
    pub id: String,
    /// Who approves.
    pub owner: Owner,
    /// What they accept.
    pub description: String,
    /// State.
    #[serde(flatten)]
    pub plan: GatePlan,
}

/// One planned phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanPhase {
    /// 1 to 6.
    pub number: u8,
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Owner.
    pub owner: Owner,
    /// Remark.
    pub note: Option<String>,
    /// Steps.
    pub steps: Vec<PlanStep>,
    /// Gates.
    pub gates: Vec<PlanGate>,
}

/// What the install will ask of the cloud: the cluster definition (pools sized from the
/// realm's RTUs) with the digest an approval binds to, and the least-privilege document the
/// install identity needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudPlan {
    /// The cloud.
    pub provider: crate::spec::Provider,
    /// Who the cloud steps run through (region, endpoint), when this run has a provider.
    pub via: Option<String>,
    /// The cluster definition phase 6 builds, once approved.
    pub definition: ClusterDefinition,
    /// How its pools were sized from the realm's RTUs.
    pub pool: crate::cloud::sizing::PoolSize,
    /// Its digest.
    pub digest: String,
    /// What the least-privilege document is (`IAM policy`, `Azure custom role`, ...).
    pub policy_kind: &'static str,
    /// The least-privilege document of the install identity.
    pub policy: Option<String>,
    /// What `platform.apply` would do now: apply (new or changed since the last inventory),
    /// leave, prune.
    pub platform: PlatformPlan,
}

/// `platform.apply`'s decisions for the plan ([`crate::platform::plan::decide`] over the
/// journal's last inventory and intents).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformPlan {
    /// Objects to apply, foundation stage first.
    pub apply: Vec<(crate::platform::Stage, crate::platform::ObjectRef)>,
    /// Objects unchanged since the last inventory.
    pub unchanged: usize,
    /// Objects to prune.
    pub prune: Vec<crate::platform::ObjectRef>,
    /// Namespaces and CRDs that left the bundle, left for a person.
    pub left: Vec<crate::platform::ObjectRef>,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Realm.
    pub realm: String,
    /// Playbook name.
    pub playbook: String,
    /// What changed in the spec since the last run.
    pub spec_changes: Vec<Change>,
    /// Steps re-planned because their inputs changed.
    pub replanned: Vec<String>,
    /// Phases.
    pub phases: Vec<PlanPhase>,
    /// What the install asks of the cloud.
    pub cloud: Option<CloudPlan>,
}

impl Plan {
    /// The first step this build cannot run that `install` would reach.
    pub fn first_unavailable(&self) -> Option<&PlanStep> {
        self.phases
            .iter()
            .flat_map(|p| &p.steps)
            .find(|s| matches!(s.plan, StepPlan::Unavailable { .. }))
    }
}

/// Why a gate that waits for an approval does, when an earlier approval of its phase exists
/// (pure): what changed in the cluster definition since it was approved, or that the phase's
/// documents changed. `None` when the phase was never approved.
pub fn why_pending(
    phase: &Phase,
    state: &State,
    now: Option<&ClusterDefinition>,
) -> Option<String> {
    let last = state
        .approvals
        .iter()
        .rev()
        .find(|a| a.phase == phase.number)?;
    let who = format!(
        "{} approved at {}",
        crate::text::one_line(&last.by),
        last.at
    );
    let Some(approved) = last.definition.as_deref() else {
        return Some(format!(
            "the phase's documents changed since {who}; approve phase {} again",
            phase.number
        ));
    };
    let changed = match (state.definitions.get(approved), now) {
        (Some(before), Some(now)) if before.digest() != now.digest() => {
            changed_fields(&before.to_json(), &now.to_json())
        }
        (None, Some(now)) if now.digest() != approved => {
            vec!["(the approved definition is not in the journal)".to_owned()]
        }
        _ => Vec::new(),
    };
    Some(if changed.is_empty() {
        format!(
            "the phase's documents changed since {who} (cluster definition {approved} unchanged); approve phase {} again",
            phase.number
        )
    } else {
        format!(
            "the cluster definition {approved} that {who} is no longer what the spec asks for ({}); approve phase {} again",
            changed.join("; "),
            phase.number
        )
    })
}

/// Builds the plan. `inputs` maps each step id to the digest of its current inputs; `caps`
/// says what this run can offer (a step this run cannot carry out is unavailable unless it is
/// already done with the same inputs); `definition` is the realm's cluster definition now (to
/// say why an approval no longer holds).
#[allow(clippy::too_many_arguments)]
pub fn build(
    realm: &str,
    playbook: &Playbook,
    state: &State,
    inputs: &BTreeMap<String, String>,
    spec_changes: Vec<Change>,
    caps: Capabilities,
    cloud: crate::spec::Provider,
    definition: Option<&ClusterDefinition>,
) -> Plan {
    let mut replanned = Vec::new();
    let phases = playbook
        .phases
        .iter()
        .map(|phase| {
            let steps = phase
                .steps
                .iter()
                .map(|s| {
                    let input = inputs.get(&s.id).cloned().unwrap_or_default();
                    let st = state.step_state(&s.id);
                    let plan = match (s.action.def().availability(caps, cloud), st) {
                        (Availability::Unavailable(r), st)
                            if !st.is_some_and(|st| {
                                st.is_done() && st.input_digest.as_deref() == Some(&input)
                            }) =>
                        {
                            StepPlan::Unavailable {
                                reason: r.to_owned(),
                            }
                        }
                        (_, None) => StepPlan::Run,
                        (_, Some(st)) => match st.status {
                            StepStatus::Succeeded | StepStatus::Skipped
                                if st.input_digest.as_deref() == Some(&input) =>
                            {
                                StepPlan::Done {
                                    at: st.ended_at.clone().unwrap_or_default(),
                                    skipped: st.status == StepStatus::Skipped,
                                }
                            }
                            StepStatus::Succeeded | StepStatus::Skipped => {
                                replanned.push(s.id.clone());
                                StepPlan::Rerun
                            }
                            StepStatus::Pending => StepPlan::Run,
                            StepStatus::Interrupted => StepPlan::Resume,
                            StepStatus::Failed => StepPlan::Retry {
                                error: st.message.clone().unwrap_or_default(),
                            },
                            StepStatus::Waiting => StepPlan::Recheck {
                                reason: st.message.clone().unwrap_or_default(),
                            },
                        },
                    };
                    PlanStep {
                        id: s.id.clone(),
                        action: s.action,
                        plan,
                        input_digest: input,
                        timeout_ms: u64::try_from(s.timeout.as_millis()).unwrap_or(u64::MAX),
                        retries: s.retries,
                    }
                })
                .collect::<Vec<_>>();
            let all_done = steps
                .iter()
                .all(|s| matches!(s.plan, StepPlan::Done { .. }));
            let subject = all_done
                .then(|| phase_outputs_digest(phase, state))
                .flatten();
            let gates = phase
                .gates
                .iter()
                .map(|g| PlanGate {
                    id: g.id.clone(),
                    owner: g.owner,
                    description: g.description.clone(),
                    plan: match subject
                        .as_deref()
                        .and_then(|d| state.approval_for(phase.number, d))
                    {
                        Some(a) => GatePlan::Approved {
                            by: a.by.clone(),
                            at: a.at.clone(),
                        },
                        None => GatePlan::Pending {
                            reason: why_pending(phase, state, definition),
                        },
                    },
                })
                .collect();
            PlanPhase {
                number: phase.number,
                id: phase.id.clone(),
                title: phase.title.clone(),
                owner: phase.owner,
                note: phase.note.clone(),
                steps,
                gates,
            }
        })
        .collect();
    Plan {
        realm: realm.to_owned(),
        playbook: playbook.name.clone(),
        spec_changes,
        replanned,
        phases,
        cloud: None,
    }
}

/// The values that differ between two specs, by dotted path (arrays compared whole).
pub fn diff(before: &serde_json::Value, after: &serde_json::Value) -> Vec<Change> {
    let mut out = Vec::new();
    diff_at("", before, after, &mut out);
    out
}

fn diff_at(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<Change>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff_at(&p, va, vb, out),
                    (va, vb) => out.push(Change {
                        path: p,
                        before: va.map(Value::to_string),
                        after: vb.map(Value::to_string),
                    }),
                }
            }
        }
        _ if a == b => {}
        _ => out.push(Change {
            path: path.to_owned(),
            before: Some(a.to_string()),
            after: Some(b.to_string()),
        }),
    }
}

/// Back-off before attempt `attempt + 1`, or `None` to give up. Retryable failures and timeouts
/// get `retries` extra attempts, doubling from `base` up to a minute; the rest get none.
pub fn retry_delay(
    failure: FailureKind,
    attempt: u32,
    retries: u32,
    base: Duration,
) -> Option<Duration> {
    match failure {
        FailureKind::Retryable | FailureKind::Timeout if attempt <= retries => {
            let factor = 1u32 << attempt.saturating_sub(1).min(16);
            Some(base.saturating_mul(factor).min(Duration::from_secs(60)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::event::Event;
    use crate::engine::model::output::StepOutput;
    use crate::engine::model::playbook;
    use serde_json::json;

    fn step<'a>(p: &'a Plan, id: &str) -> &'a StepPlan {
        &p.phases
            .iter()
            .flat_map(|ph| &ph.steps)
            .find(|s| s.id == id)
            .unwrap()
            .plan
    }

    fn inputs(pb: &Playbook, d: &str) -> BTreeMap<String, String> {
        pb.steps()
            .map(|(_, s)| (s.id.clone(), d.to_owned()))
            .collect()
    }

    fn done(step: &str, phase: u8, input: &str) -> Event {
        Event::StepSucceeded {
            run: 1,
            step: step.into(),
            phase,
            input_digest: input.into(),
            output_digest: "o".into(),
            output: StepOutput::default(),
            duration_ms: 1,
        }
    }

    #[test]
    fn fresh_plan_runs_everything_and_shows_cloud_steps_unavailable() {
        let pb = playbook::embedded();
        let p = build(
            "acme",
            &pb,
            &State::default(),
            &inputs(&pb, "d"),
            vec![],
            Capabilities::default(),
            crate::spec::Provider::Eks,
            None,
        );
        assert_eq!(p.phases.len(), 6);
        assert_eq!(p.phases[0].steps[0].plan, StepPlan::Run);
        let u = p.first_unavailable().unwrap();
        assert_eq!(u.action, Action::CloudAccount, "without a provider");
        let with = build(
            "acme",
            &pb,
            &State::default(),
            &inputs(&pb, "d"),
            vec![],
            Capabilities {
                cloud: Some(crate::spec::Provider::Eks),
            },
            crate::spec::Provider::Eks,
            None,
        );
        assert_eq!(with.first_unavailable(), None, "with an EKS provider");
        assert_eq!(
            p.phases[4].gates[0].plan,
            GatePlan::Pending { reason: None }
        );
    }

    #[test]
    fn done_steps_stay_done_until_their_inputs_change() {
        let pb = playbook::embedded();
        let events = [done("spec", 1, "d"), done("certificate", 3, "d")];
        let state = State::fold(events.iter().map(|e| (1, "t", e)));
        let mut now = inputs(&pb, "d");
        let p = build(
            "acme",
            &pb,
            &state,
            &now,
            vec![],
            Capabilities::default(),
            crate::spec::Provider::Eks,
            None,
        );
        assert!(matches!(p.phases[0].steps[0].plan, StepPlan::Done { .. }));
        now.insert("certificate".into(), "changed".into());
        let p = build(
            "acme",
            &pb,
            &state,
            &now,
            vec![],
            Capabilities::default(),
            crate::spec::Provider::Eks,
            None,
        );
        assert_eq!(step(&p, "certificate"), &StepPlan::Rerun);
        assert_eq!(p.replanned, vec!["certificate".to_owned()]);
    }

    #[test]
    fn interrupted_failed_and_waiting_steps_run_again() {
        let pb = playbook::embedded();
        let events = [
            Event::StepStarted {
                run: 1,
                step: "spec".into(),
                phase: 1,
                attempt: 1,
                input_digest: "d".into(),
            },
            Event::StepFailed {
                run: 1,
                step: "certificate".into(),
                phase: 3,
                attempt: 1,
                failure: FailureKind::Permanent,
                error: "expired".into(),
                output: None,
                duration_ms: 1,
            },
        ];
        let state = State::fold(events.iter().map(|e| (1, "t", e)));
        let p = build(
            "acme",
            &pb,
            &state,
            &inputs(&pb, "d"),
            vec![],
            Capabilities::default(),
            crate::spec::Provider::Eks,
            None,
        );
        assert_eq!(p.phases[0].steps[0].plan, StepPlan::Resume);
        assert_eq!(
            step(&p, "certificate"),
            &StepPlan::Retry {
                error: "expired".into()
            }
        );
    }

    #[test]
    fn spec_diff_names_changed_added_and_removed_paths() {
        let a = json!({"name": "acme", "domains": {"base": "a.com", "runTime": ["test"]}, "x": 1});
        let b = json!({"name": "acme", "domains": {"base": "b.com", "runTime": ["test", "api"]}, "y": 2});
        let d = diff(&a, &b);
        let paths: Vec<_> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["domains.base", "domains.runTime", "x", "y"]);
        assert_eq!(d[0].before.as_deref(), Some("\"a.com\""));
        assert_eq!(d[2].after, None);
        assert_eq!(d[3].before, None);
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn retry_policy_backs_off_and_gives_up() {
        let b = Duration::from_millis(100);
        assert_eq!(
            retry_delay(FailureKind::Retryable, 1, 3, b),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            retry_delay(FailureKind::Timeout, 3, 3, b),
            Some(Duration::from_millis(400))
        );
        assert_eq!(retry_delay(FailureKind::Retryable, 4, 3, b), None);
        assert_eq!(retry_delay(FailureKind::Permanent, 1, 3, b), None);
        assert_eq!(retry_delay(FailureKind::Unavailable, 1, 3, b), None);
        assert_eq!(
            retry_delay(FailureKind::Retryable, 30, 40, Duration::from_secs(1)),
            Some(Duration::from_secs(60))
        );
    }
}
