//! Playbooks: the six phases, their owners, steps and gates, as data.
//!
//! `playbooks/dedicated-saas.yaml` is embedded; `--playbook FILE` replaces it. Loading has the
//! spec's two stages: a raw file with positions, then a resolved [`Playbook`]. A playbook that
//! names an unknown action, repeats a step id, orders phases wrongly or gives an action
//! parameters it does not take is rejected here, before anything runs, with every problem at
//! once and each one's line and column.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checks::Owner;
use crate::engine::actions::{Action, ParamKind};
use crate::engine::ctx::Params;
use crate::fsutil;
use crate::spec::raw::Located;

pub use crate::engine::actions::Workflow;

/// The embedded default playbook.
pub const EMBEDDED: &str = include_str!("../../../playbooks/dedicated-saas.yaml");
/// Name shown for the embedded playbook's source.
pub const EMBEDDED_NAME: &str = "<embedded>/playbooks/dedicated-saas.yaml";
/// The embedded destroy playbook.
pub const EMBEDDED_DESTROY: &str = include_str!("../../../playbooks/destroy.yaml");
/// Name shown for the embedded destroy playbook's source.
pub const EMBEDDED_DESTROY_NAME: &str = "<embedded>/playbooks/destroy.yaml";
/// The embedded upgrade playbook.
pub const EMBEDDED_UPGRADE: &str = include_str!("../../../playbooks/upgrade.yaml");
/// Name shown for the embedded upgrade playbook's source.
pub const EMBEDDED_UPGRADE_NAME: &str = "<embedded>/playbooks/upgrade.yaml";

/// Number of phases an install playbook has: the brief's shared-responsibility table.
pub const PHASES: u8 = 6;

/// A resolved playbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Playbook {
    /// The playbook's name.
    pub name: String,
    /// Install (the six phases) or destroy; absent from records written before destroy existed.
    #[serde(default)]
    pub workflow: Workflow,
    /// The phases, in order (six for an install).
    pub phases: Vec<Phase>,
}

/// One phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    /// 1 to 6.
    pub number: u8,
    /// Stable identifier, e.g. `validation-of-access`.
    pub id: String,
    /// Heading for people.
    pub title: String,
    /// Who acts in this phase.
    pub owner: Owner,
    /// A remark shown in plans and reports.
    pub note: Option<String>,
    /// The steps, in order.
    pub steps: Vec<StepDef>,
    /// Approvals needed after the steps.
    pub gates: Vec<Gate>,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepDef {
    /// Unique across the playbook.
    pub id: String,
    /// What it does.
    #[serde(with = "action_name")]
    pub action: Action,
    /// Action parameters.
    pub params: Params,
    /// Limit of one attempt.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// Extra attempts after a retryable failure.
    pub retries: u32,
}

/// An approval gate at the end of a phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// Identifier.
    pub id: String,
    /// Who must approve.
    pub owner: Owner,
    /// What the approver accepts.
    pub description: String,
}

mod action_name {
    use super::Action;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(a: &Action, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(a.name())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|()| serde::de::Error::custom(format!("unknown action `{s}`")))
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPlaybook {
    api_version: Located<String>,
    kind: Located<String>,
    name: Located<String>,
    phases: Located<Vec<RawPhase>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPhase {
    number: Located<u8>,
    id: Located<String>,
    title: String,
    owner: Owner,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    steps: Vec<RawStep>,
    #[serde(default)]
    gates: Vec<RawGate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawStep {
    id: Located<String>,
    action: Located<String>,
    #[serde(default)]
    params: Option<Located<Params>>,
    #[serde(default)]
    timeout: Option<Located<String>>,
    #[serde(default)]
    retries: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawGate {
    id: Located<String>,
    owner: Owner,
    description: String,
}

/// One problem in a playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Line, from 1 (0 when unknown).
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Why a playbook was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    /// The file could not be read.
    #[error("cannot read the playbook: {source}\n  help: check the path given with --playbook")]
    Read {
        /// Why.
        #[from]
        source: fsutil::ReadError,
    },
    /// The playbook is not valid; every problem is listed.
    #[error("{}", render_problems(source_name, problems))]
    Invalid {
        /// The file.
        source_name: String,
        /// Every problem, in file order.
        problems: Vec<Problem>,
    },
}

fn render_problems(source: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{source}:{}:{}: {}", p.line, p.column, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The embedded playbook.
pub fn embedded() -> Playbook {
    parse(EMBEDDED, EMBEDDED_NAME).expect("the embedded playbook is valid (unit-tested)")
}

/// The embedded destroy playbook.
pub fn embedded_destroy() -> Playbook {
    parse(EMBEDDED_DESTROY, EMBEDDED_DESTROY_NAME)
        .expect("the embedded destroy playbook is valid (unit-tested)")
}

/// The embedded upgrade playbook.
pub fn embedded_upgrade() -> Playbook {
    parse(EMBEDDED_UPGRADE, EMBEDDED_UPGRADE_NAME)
        .expect("the embedded upgrade playbook is valid (unit-tested)")
}

/// Loads a playbook file.
pub fn load(path: &Path) -> Result<Playbook, PlaybookError> {
    let text = fsutil::read_capped_string(path, fsutil::caps::SPEC)?;
    parse(&text, &path.display().to_string())
}

/// Parses and checks a playbook.
pub fn parse(text: &str, source_name: &str) -> Result<Playbook, PlaybookError> {
    let invalid = |problems| PlaybookError::Invalid {
        source_name: source_name.to_owned(),
        problems,
    };
    let raw: RawPlaybook = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        invalid(vec![Problem {
            line,
            column,
            message: e.without_snippet().to_string(),
        }])
    })?;
    let mut problems = Vec::new();
    let mut problem = |pos: crate::spec::Pos, message: String| {
        problems.push(Problem {
            line: pos.line,
            column: pos.column,
            message,
        })
    };
    if raw.api_version.value != "realmctl/v1" {
        problem(
            raw.api_version.pos,
            format!(
                "apiVersion must be `realmctl/v1`, not `{}`",
                raw.api_version.value
            ),
        );
    }
    let workflow = match raw.kind.value.as_str() {
        "Playbook" => Workflow::Install,
        "DestroyPlaybook" => Workflow::Destroy,
        "UpgradePlaybook" => Workflow::Upgrade,
        other => {
            problem(
                raw.kind.pos,
                format!(
                    "kind must be `Playbook`, `DestroyPlaybook` or `UpgradePlaybook`, not `{other}`"
                ),
            );
            Workflow::Install
        }
    };
    let count = raw.phases.value.len();
    match workflow {
        Workflow::Install if count != usize::from(PHASES) => problem(
            raw.phases.pos,
            format!(
                "a playbook has exactly {PHASES} phases (the shared-responsibility table), found {count}"
            ),
        ),
        Workflow::Destroy | Workflow::Upgrade if count == 0 || count > usize::from(PHASES) => {
            problem(
                raw.phases.pos,
                format!(
                    "a {} playbook has 1 to {PHASES} phases, found {count}",
                    workflow.command()
                ),
            )
        }
        _ => {}
    }
    let last = u8::try_from(count).unwrap_or(u8::MAX);
    let mut step_ids = HashSet::new();
    let mut phases = Vec::new();
    for (i, p) in raw.phases.value.into_iter().enumerate() {
        let expected = u8::try_from(i + 1).unwrap_or(u8::MAX);
        if p.number.value != expected {
            problem(
                p.number.pos,
                format!(
                    "phase {} is in position {expected}: phases must be numbered 1 to {last} in order",
                    p.number.value
                ),
            );
        }
        let mut steps = Vec::new();
        for s in p.steps {
            if !step_ids.insert(s.id.value.clone()) {
                problem(
                    s.id.pos,
                    format!(
                        "step id `{}` is used twice; step ids must be unique across the playbook",
                        s.id.value
                    ),
                );
            }
            let Ok(action) = s.action.value.parse::<Action>() else {
                problem(
                    s.action.pos,
                    format!(
                        "unknown action `{}`; known actions: {}",
                        s.action.value,
                        Action::ALL
                            .iter()
                            .map(|a| a.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                continue;
            };
            if action.def().workflow != workflow {
                problem(
                    s.action.pos,
                    format!(
                        "action `{action}` belongs to `{}` playbooks (kind: {}), not to this `{}` one",
                        action.def().workflow.command(),
                        action.def().workflow.kind(),
                        workflow.command()
                    ),
                );
                continue;
            }
            let params = s.params.map(|p| (p.value, p.pos));
            if let Some((params, pos)) = &params
                && let Err(e) = check_params(action, params)
            {
                problem(*pos, e);
            }
            let timeout = match s.timeout {
                None => action.def().timeout,
                Some(t) => match parse_duration(&t.value) {
                    Some(d) => d,
                    None => {
                        problem(
                            t.pos,
                            format!(
                                "timeout `{}` is not a duration; write e.g. 90s, 10m or 1h",
                                t.value
                            ),
                        );
                        continue;
                    }
                },
            };
            steps.push(StepDef {
                id: s.id.value,
                action,
                params: params.map(|(p, _)| p).unwrap_or_default(),
                timeout,
                retries: s.retries.unwrap_or(action.def().retries),
            });
        }
        let mut gate_ids = HashSet::new();
        let mut gates = Vec::new();
        for g in p.gates {
            if !gate_ids.insert(g.id.value.clone()) {
                problem(g.id.pos, format!("gate id `{}` is used twice", g.id.value));
            }
            gates.push(Gate {
                id: g.id.value,
                owner: g.owner,
                description: g.description,
            });
        }
        phases.push(Phase {
            number: p.number.value,
            id: p.id.value,
            title: p.title,
            owner: p.owner,
            note: p.note,
            steps,
            gates,
        });
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| (p.line, p.column));
        return Err(invalid(problems));
    }
    Ok(Playbook {
        name: raw.name.value,
        workflow,
        phases,
    })
}

/// Checks `params` against the parameters the action's definition declares: no unknown key,
/// every required one present, each of its kind.
fn check_params(action: Action, params: &Params) -> Result<(), String> {
    let declared = action.def().params;
    let names = || {
        declared
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for key in params.keys() {
        if !declared.iter().any(|p| p.name == key) {
            return Err(if declared.is_empty() {
                format!("action `{action}` takes no parameters (found `{key}`)")
            } else {
                format!(
                    "action `{action}` has no parameter `{key}` (it takes {})",
                    names()
                )
            });
        }
    }
    for p in declared {
        match params.get(p.name) {
            None if p.required => {
                return Err(format!(
                    "action `{action}` needs the parameter `{}`",
                    p.name
                ));
            }
            None => {}
            Some(v) => {
                let ok = match p.kind {
                    ParamKind::Text => v.is_string(),
                    ParamKind::Count => v.is_u64(),
                };
                if !ok {
                    return Err(format!(
                        "parameter `{}` of action `{action}` must be {}",
                        p.name,
                        p.kind.describe()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Parses `90s`, `10m`, `1h` or `500ms`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

impl Playbook {
    /// Every step with its phase, in run order.
    /// Whether a step applies the platform into the cluster (so the realm's own enforcement
    /// core runs there, and is where `quota.seed` writes by default).
    pub fn applies_platform(&self) -> bool {
        self.steps()
            .any(|(_, s)| s.action == crate::engine::actions::Action::PlatformApply)
    }

    /// Whether a step seeds a quota ledger.
    pub fn seeds_quota(&self) -> bool {
        self.steps()
            .any(|(_, s)| s.action == crate::engine::actions::Action::QuotaSeed)
    }

    /// Every step with its phase, in order.
    pub fn steps(&self) -> impl Iterator<Item = (&Phase, &StepDef)> {
        self.phases
            .iter()
            .flat_map(|p| p.steps.iter().map(move |s| (p, s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Problem> {
        match parse(text, "pb.yaml") {
            Err(PlaybookError::Invalid { problems, .. }) => problems,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    fn with_phases(phases: &str) -> String {
        format!("apiVersion: realmctl/v1\nkind: Playbook\nname: t\nphases:\n{phases}")
    }

    fn six(step3: &str, order: [u8; 6]) -> String {
        let mut s = String::new();
        for n in order {
            s.push_str(&format!(
                "  - number: {n}\n    id: p{n}\n    title: P{n}\n    owner: digibee\n"
            ));
            if n == 3 {
                s.push_str(step3);
            }
        }
        with_phases(&s)
    }

    #[test]
    fn embedded_playbook_is_valid_and_follows_the_brief() {
        let p = embedded();
        assert_eq!(p.phases.len(), 6);
        let owners: Vec<_> = p.phases.iter().map(|p| p.owner.as_str()).collect();
        assert_eq!(
            owners,
            [
                "customer", "customer", "digibee", "digibee", "digibee", "digibee"
            ]
        );
        assert_eq!(p.phases[4].gates.len(), 1, "phase 5 has the approval gate");
        let actions: Vec<Action> = p.phases[5].steps.iter().map(|s| s.action).collect();
        assert_eq!(
            actions[actions.len() - 5..],
            [
                Action::PlatformApply,
                Action::QuotaSeed,
                Action::RealmLive,
                Action::VpnApply,
                Action::VpnCustomer
            ],
            "phase 6 applies the platform, seeds the realm's core, checks the realm is live, then builds the realm's VPN and waits for the customer's side of it"
        );
        assert!(p.applies_platform());
    }

    #[test]
    fn the_embedded_upgrade_playbook_plans_behind_a_customer_gate_then_moves_control_plane_then_pools()
     {
        let p = embedded_upgrade();
        assert_eq!(p.workflow, Workflow::Upgrade);
        let steps: Vec<&str> = p.steps().map(|(_, s)| s.action.name()).collect();
        assert_eq!(
            steps,
            [
                "upgrade.plan",
                "upgrade.control_plane",
                "upgrade.node_pools"
            ]
        );
        assert_eq!(p.phases[0].gates.len(), 1);
        assert_eq!(p.phases[0].gates[0].owner, crate::checks::Owner::Customer);
    }

    #[test]
    fn the_embedded_destroy_playbook_plans_behind_a_customer_gate_then_deletes_in_order() {
        let p = embedded_destroy();
        assert_eq!(p.workflow, Workflow::Destroy);
        assert_eq!(p.phases[0].gates[0].owner, crate::checks::Owner::Customer);
        let actions: Vec<Action> = p.steps().map(|(_, s)| s.action).collect();
        assert_eq!(
            actions,
            [
                Action::DestroyPlan,
                Action::DestroyRetire,
                Action::DestroyInCluster,
                Action::DestroyNodePools,
                Action::DestroyCluster,
                Action::DestroyVpn,
                Action::DestroySweep
            ]
        );
        assert_eq!(embedded().workflow, Workflow::Install);
    }

    #[test]
    fn an_install_playbook_cannot_delete_and_a_destroy_playbook_cannot_build() {
        let text = six(
            "    steps:\n      - id: a\n        action: destroy.cluster\n",
            [1, 2, 3, 4, 5, 6],
        );
        let p = problems(&text);
        assert!(
            p[0].message
                .contains("action `destroy.cluster` belongs to `destroy` playbooks"),
            "{p:?}"
        );
        let destroy = "apiVersion: realmctl/v1\nkind: DestroyPlaybook\nname: d\nphases:\n  - number: 1\n    id: p1\n    title: P1\n    owner: digibee\n    steps:\n      - id: a\n        action: cluster.apply\n";
        let p = problems(destroy);
        assert!(
            p[0].message
                .contains("action `cluster.apply` belongs to `install` playbooks"),
            "{p:?}"
        );
        let none = "apiVersion: realmctl/v1\nkind: DestroyPlaybook\nname: d\nphases: []\n";
        assert!(problems(none)[0].message.contains("1 to 6 phases"));
        let other = "apiVersion: realmctl/v1\nkind: Upgrade\nname: d\nphases: []\n";
        assert!(
            problems(other)[0]
                .message
                .contains("`Playbook`, `DestroyPlaybook` or `UpgradePlaybook`")
        );
    }

    #[test]
    fn records_written_before_destroy_existed_read_as_install_playbooks() {
        let mut v = serde_json::to_value(embedded()).unwrap();
        v.as_object_mut().unwrap().remove("workflow");
        let p: Playbook = serde_json::from_value(v).unwrap();
        assert_eq!(p.workflow, Workflow::Install);
    }

    #[test]
    fn unknown_action_is_rejected_with_its_position() {
        let text = six(
            "    steps:\n      - id: a\n        action: cluster.explode\n",
            [1, 2, 3, 4, 5, 6],
        );
        let p = problems(&text);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].message.contains("unknown action `cluster.explode`"),
            "{p:?}"
        );
        assert_eq!(p[0].line, 19);
    }

    #[test]
    fn repeated_step_id_is_rejected() {
        let text = six(
            "    steps:\n      - id: a\n        action: spec.validate\n      - id: a\n        action: checks.dns\n",
            [1, 2, 3, 4, 5, 6],
        );
        let p = problems(&text);
        assert!(p[0].message.contains("step id `a` is used twice"), "{p:?}");
    }

    #[test]
    fn phases_out_of_order_or_missing_are_rejected() {
        let p = problems(&six("", [1, 3, 2, 4, 5, 6]));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].message.contains("phase 3 is in position 2"));
        let mut five = six("", [1, 2, 3, 4, 5, 6]);
        five.truncate(five.find("  - number: 6").unwrap());
        let p = problems(&five);
        assert!(p[0].message.contains("exactly 6 phases"), "{p:?}");
    }

    #[test]
    fn parameters_an_action_does_not_take_are_rejected() {
        let text = six(
            "    steps:\n      - id: a\n        action: spec.validate\n        params: {strict: true}\n",
            [1, 2, 3, 4, 5, 6],
        );
        let p = problems(&text);
        assert!(p[0].message.contains("takes no parameters"), "{p:?}");
    }

    #[test]
    fn bad_timeout_and_unknown_keys_are_rejected() {
        let text = six(
            "    steps:\n      - id: a\n        action: spec.validate\n        timeout: soon\n",
            [1, 2, 3, 4, 5, 6],
        );
        assert!(problems(&text)[0].message.contains("not a duration"));
        let text = six(
            "    steps:\n      - id: a\n        action: spec.validate\n        when: always\n",
            [1, 2, 3, 4, 5, 6],
        );
        let p = problems(&text);
        assert!(p[0].message.contains("when"), "{p:?}");
        assert!(p[0].line > 0);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("m"), None);
    }
}
