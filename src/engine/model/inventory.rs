//! What the journal says a realm holds (pure): the clusters, node pools and VPN parts an install
//! created or adopted, whether a destroy has begun deleting, and the destroy plan a run
//! recorded — folded once from the [`State`] into the [`RealmFacts`] the destroy steps are
//! given (so a step never needs the whole state).

use std::collections::BTreeSet;

use super::output::Intent;
use super::state::State;
use super::teardown::{CreatedBy, DestroyPlan, Owned, RealmFacts};
use crate::cloud::teardown::ResourceKind;
use crate::cloud::vpn::VpnPart;
use crate::cloud::vpn::def::VpnDef;
use crate::engine::actions::{Action, Workflow};
use crate::quota::seed::{SEEDED_FACT, Seeded};

/// The realm's facts from `state`.
pub fn facts(state: &State) -> RealmFacts {
    RealmFacts {
        inventory: inventory(state),
        vpn: vpn(state),
        approved: approved(state),
        seeded: seeded(state),
    }
}

/// Where a finished `quota.seed` step seeded the realm's config.
fn seeded(state: &State) -> Option<Seeded> {
    state
        .steps
        .values()
        .filter(|s| s.is_done())
        .filter_map(|s| s.output.as_ref()?.facts.as_ref()?.get(SEEDED_FACT))
        .find_map(|v| serde_json::from_value(v.clone()).ok())
}

/// The destroy plan recorded by the last run's playbook's `destroy.plan` step, once done.
fn approved(state: &State) -> Option<DestroyPlan> {
    let step = state
        .playbook
        .as_ref()?
        .steps()
        .find(|(_, s)| s.action == Action::DestroyPlan)
        .map(|(_, s)| s.id.clone())?;
    let v = state
        .step_state(&step)
        .filter(|s| s.is_done())?
        .output
        .as_ref()?
        .facts
        .as_ref()?
        .get("destroyPlan")?;
    serde_json::from_value(v.clone()).ok()
}

/// The realm's clusters and node pools, as its journal holds them (pure): node pools first,
/// then clusters, the order they are deleted in.
pub fn inventory(state: &State) -> Vec<Owned> {
    let mut created = BTreeSet::new();
    for s in state.steps.values() {
        for (_, i) in &s.intents {
            match i {
                Intent::Cluster { name } => {
                    created.insert((ResourceKind::Cluster, name.clone(), None));
                }
                Intent::NodePool { cluster, name } => {
                    created.insert((ResourceKind::NodePool, cluster.clone(), Some(name.clone())));
                }
                _ => {}
            }
        }
    }
    let mut adopted = BTreeSet::new();
    for s in state.steps.values() {
        let Some(def) = s.output.as_ref().and_then(|o| o.built.as_deref()) else {
            continue;
        };
        adopted.insert((ResourceKind::Cluster, def.cluster.name.clone(), None));
        // A pool the cloud creates with the cluster goes with it (AKS's system pool, which
        // cannot be deleted on its own).
        for p in def.pools.iter().filter(|p| !p.with_cluster) {
            adopted.insert((
                ResourceKind::NodePool,
                def.cluster.name.clone(),
                Some(p.nodes.name.clone()),
            ));
        }
    }
    let mut out: Vec<Owned> = created
        .iter()
        .map(|k| (k, CreatedBy::ThisRealm))
        .chain(
            adopted
                .difference(&created)
                .map(|k| (k, CreatedBy::Adoption)),
        )
        .map(|((kind, cluster, pool), created)| Owned {
            kind: *kind,
            cluster: cluster.clone(),
            pool: pool.clone(),
            created,
        })
        .collect();
    out.sort();
    out
}

/// Whether a destroy has begun deleting (pure): the last run's playbook is a destroy playbook
/// and one of its deleting steps has started. An install must not run on such a realm.
pub fn deleting(state: &State) -> bool {
    let Some(pb) = state.playbook.as_ref() else {
        return false;
    };
    pb.workflow == Workflow::Destroy
        && pb.steps().any(|(_, s)| {
            s.action != Action::DestroyPlan
                && state
                    .step_state(&s.id)
                    .is_some_and(|st| st.status != super::state::StepStatus::Pending)
        })
}

/// The realm VPN this realm's journal built parts of (pure): its definition — the one in the
/// latest approved cluster definition with a VPN of that name, which is what `vpn.apply` built —
/// and the parts an intent announced.
pub fn vpn(state: &State) -> Option<(VpnDef, BTreeSet<VpnPart>)> {
    let mut name = None;
    let mut parts = BTreeSet::new();
    for s in state.steps.values() {
        for (_, i) in &s.intents {
            if let Intent::VpnPart { part, name: n, .. } = i {
                parts.insert(*part);
                name = Some(n.clone());
            }
        }
    }
    let name = name?;
    let def = state
        .approvals
        .iter()
        .rev()
        .filter_map(|a| a.definition.as_ref())
        .filter_map(|d| state.definitions.get(d))
        .filter_map(|d| d.vpn.clone())
        .find(|v| v.name == name)?;
    Some((def, parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::event::Event;

    fn intent(seq: u64, i: Intent) -> (u64, String, Event) {
        (
            seq,
            "2026-12-06T00:00:00Z".into(),
            Event::StepIntent {
                run: 1,
                step: "cluster".into(),
                intent: i,
            },
        )
    }

    #[test]
    fn the_inventory_is_what_intents_announced_pools_before_clusters() {
        let started = Event::StepStarted {
            run: 1,
            step: "cluster".into(),
            phase: 6,
            attempt: 1,
            input_digest: "d".into(),
        };
        let events = [
            (0, "2026-12-06T00:00:00Z".to_owned(), started),
            intent(1, Intent::Cluster { name: "c1".into() }),
            intent(
                2,
                Intent::NodePool {
                    cluster: "c1".into(),
                    name: "workers".into(),
                },
            ),
        ];
        let state = State::fold(events.iter().map(|(s, a, e)| (*s, a.as_str(), e)));
        let inv = inventory(&state);
        assert_eq!(inv.len(), 2);
        assert_eq!(inv[0].kind, ResourceKind::NodePool);
        assert_eq!(inv[0].id(), "c1/workers");
        assert_eq!(inv[1].id(), "c1");
        assert!(inv.iter().all(|o| o.created == CreatedBy::ThisRealm));
        assert!(inventory(&State::default()).is_empty());
    }
}
