//! What a `platform.apply` run does, decided before anything is sent: which desired objects to
//! apply (new, or changed since the inventory of the last successful apply; a Secret filled at
//! apply time always), which to leave (unchanged), and which to prune (applied earlier by this
//! realm — in the last inventory or announced by an earlier run's intent — and no longer
//! desired). Pure; tested here.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::definition::{Desired, Stage};
use super::object::ObjectRef;
use super::ready::Readiness;

/// One object realmctl applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryEntry {
    /// Which object.
    #[serde(flatten)]
    pub object: ObjectRef,
    /// Its stage.
    pub stage: Stage,
    /// The digest of the manifest applied (the definition's).
    pub digest: String,
    /// The uid the API server gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Its readiness when the step ended.
    pub readiness: Readiness,
}

/// Every object of the realm's platform, as the last apply left it: what the journal records
/// and the report shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// `name version` of the bundle.
    pub bundle: String,
    /// The objects.
    pub objects: Vec<InventoryEntry>,
    /// Objects pruned by this apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<ObjectRef>,
}

impl Inventory {
    /// The entry of `r`.
    pub fn entry(&self, r: &ObjectRef) -> Option<&InventoryEntry> {
        self.objects.iter().find(|e| &e.object == r)
    }
}

/// The decisions of one run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyPlan {
    /// Indexes into the desired list to apply, in order.
    pub apply: Vec<usize>,
    /// Indexes of desired objects left as they are (unchanged since the last inventory).
    pub unchanged: Vec<usize>,
    /// Objects to prune, if they still carry this realm's label.
    pub prune: Vec<ObjectRef>,
    /// Namespaces and CRDs that left the bundle: never deleted by realmctl (deleting one deletes
    /// everything in it or of its kind), named for a person.
    pub left: Vec<ObjectRef>,
}

/// Whether deleting an object of `kind` deletes what is in it or of its kind.
pub fn deletes_contents(kind: &str) -> bool {
    kind == "Namespace" || kind == "CustomResourceDefinition"
}

/// Decides the run: `previous` is the last successful inventory, `announced` every object an
/// earlier run's intent named (it may have been applied before a crash).
pub fn decide(
    desired: &[Desired],
    previous: Option<&Inventory>,
    announced: &[ObjectRef],
) -> ApplyPlan {
    let mut plan = ApplyPlan::default();
    for (i, d) in desired.iter().enumerate() {
        let same = previous
            .and_then(|p| p.entry(&d.planned.object))
            .is_some_and(|e| e.digest == d.planned.digest);
        if same && !super::realm::filled_at_apply(&d.manifest) {
            plan.unchanged.push(i);
        } else {
            plan.apply.push(i);
        }
    }
    let wanted: BTreeSet<&ObjectRef> = desired.iter().map(|d| &d.planned.object).collect();
    let mut seen = BTreeSet::new();
    let earlier = previous
        .into_iter()
        .flat_map(|p| p.objects.iter().map(|e| &e.object))
        .chain(announced);
    // Workloads before the namespaces and CRDs they live in.
    let mut prune: Vec<ObjectRef> = earlier
        .filter(|r| !wanted.contains(r) && seen.insert((*r).clone()))
        .cloned()
        .collect();
    prune.sort_by_key(|r| std::cmp::Reverse(Stage::of(&r.kind, r.namespace.is_some())));
    plan.prune = prune;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::definition::PlannedObject;
    use serde_json::json;

    fn d(kind: &str, ns: Option<&str>, name: &str, digest: &str) -> Desired {
        let mut m = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}});
        if let Some(ns) = ns {
            m["metadata"]["namespace"] = json!(ns);
        }
        Desired {
            planned: PlannedObject {
                object: ObjectRef::of(&m),
                stage: Stage::of(kind, ns.is_some()),
                source: "t".into(),
                digest: digest.into(),
            },
            manifest: m,
        }
    }

    fn inv(items: &[&Desired]) -> Inventory {
        Inventory {
            bundle: "b 1".into(),
            objects: items
                .iter()
                .map(|d| InventoryEntry {
                    object: d.planned.object.clone(),
                    stage: d.planned.stage,
                    digest: d.planned.digest.clone(),
                    uid: None,
                    readiness: Readiness::Current,
                })
                .collect(),
            pruned: Vec::new(),
        }
    }

    #[test]
    fn a_first_run_applies_everything_and_prunes_nothing() {
        let want = [
            d("Namespace", None, "a", "1"),
            d("ConfigMap", Some("a"), "c", "2"),
        ];
        let p = decide(&want, None, &[]);
        assert_eq!(p.apply, [0, 1]);
        assert!(p.unchanged.is_empty() && p.prune.is_empty());
    }

    #[test]
    fn only_changed_objects_are_applied_and_removed_ones_pruned_but_namespaces_left() {
        let ns = d("Namespace", None, "a", "1");
        let cm = d("ConfigMap", Some("a"), "c", "2");
        let gone_ns = d("Namespace", None, "old", "3");
        let gone_cm = d("ConfigMap", Some("old"), "x", "4");
        let before = inv(&[&ns, &cm, &gone_ns, &gone_cm]);
        let changed = d("ConfigMap", Some("a"), "c", "2b");
        let p = decide(&[ns.clone(), changed], Some(&before), &[]);
        assert_eq!(p.apply, [1]);
        assert_eq!(p.unchanged, [0]);
        assert_eq!(
            p.prune,
            [
                gone_cm.planned.object.clone(),
                gone_ns.planned.object.clone()
            ]
        );
        // Announced by a run that crashed before its inventory: pruned too, once.
        let crashed = d("ConfigMap", Some("a"), "half", "5").planned.object;
        let p = decide(
            std::slice::from_ref(&ns),
            Some(&inv(&[&ns])),
            &[crashed.clone(), crashed.clone()],
        );
        assert_eq!(p.prune, [crashed]);
    }

    #[test]
    fn the_tls_secret_is_always_applied() {
        let mut s = d(
            "Secret",
            Some("digibee-system"),
            "digibee-wildcard-tls",
            "1",
        );
        s.manifest = crate::platform::realm::tls_secret();
        let p = decide(&[s.clone()], Some(&inv(&[&s])), &[]);
        assert_eq!(p.apply, [0]);
    }
}
