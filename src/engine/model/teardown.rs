//! What `destroy` deletes and keeps (pure): the realm's inventory as its journal holds it, and
//! the destroy plan built from that inventory and what the cloud reports now.
//!
//! The inventory is every cluster and node pool an install step announced an intent to create
//! (journaled, fsync'd, before the call: so a create that a crash interrupted is still known),
//! and every one a step adopted instead (described as the definition, never created here). Only
//! the first kind is deleted; the sweep of controllers' leftovers runs only for a cluster this
//! realm created, since what carries another cluster's tags is not the realm's to delete.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::cloud::teardown::{Created, Fate, Found, Mark, ResourceKind, SweepOptions};
use crate::cloud::vpn::VpnPart;
use crate::cloud::vpn::def::VpnDef;

/// One cluster or node pool of the realm's inventory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owned {
    /// Cluster or node pool.
    pub kind: ResourceKind,
    /// The cluster's name.
    pub cluster: String,
    /// The pool's name (node pools).
    pub pool: Option<String>,
    /// Created by this realm's journal, or adopted.
    pub created: CreatedBy,
}

/// [`Created`], ordered (for the inventory's sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CreatedBy {
    /// An intent was journaled.
    ThisRealm,
    /// A step adopted it.
    Adoption,
}

impl From<CreatedBy> for Created {
    fn from(c: CreatedBy) -> Self {
        match c {
            CreatedBy::ThisRealm => Created::ByThisRealm,
            CreatedBy::Adoption => Created::Adopted,
        }
    }
}

impl Owned {
    /// What the cloud's delete call takes: the cluster's name, or `cluster/pool`.
    pub fn id(&self) -> String {
        match &self.pool {
            Some(p) => format!("{}/{p}", self.cluster),
            None => self.cluster.clone(),
        }
    }
}

/// What a destroy step is told of the realm, from its journal
/// ([`super::inventory::facts`]): what it created, its VPN, and the approved destroy plan.
#[derive(Debug, Clone, Default)]
pub struct RealmFacts {
    /// The clusters and node pools, node pools first.
    pub inventory: Vec<Owned>,
    /// The VPN's definition and the parts an intent announced.
    pub vpn: Option<(VpnDef, BTreeSet<VpnPart>)>,
    /// The destroy plan this run's playbook recorded and its gate passed, if any.
    pub approved: Option<DestroyPlan>,
    /// Where the install seeded the realm's config in the enforcement core, if it did.
    pub seeded: Option<crate::quota::seed::Seeded>,
}

/// One resource the plan keeps, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kept {
    /// The resource.
    pub resource: Found,
    /// Why it is kept.
    pub why: String,
}

/// What a destroy deletes and keeps: the record the customer approves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestroyPlan {
    /// The realm.
    pub realm: String,
    /// The clusters whose leftovers the sweep deletes (those this realm created).
    pub swept_clusters: Vec<String>,
    /// The ownership tags the sweep deletes by: at the time of the sweep, every load balancer,
    /// network interface, volume (when asked) and security group carrying one of them.
    pub marks: Vec<Mark>,
    /// The options it was planned with.
    pub options: SweepOptions,
    /// Deleted, in order.
    pub delete: Vec<Found>,
    /// Kept, with the reason.
    pub keep: Vec<Kept>,
    /// Inventory items already gone from the cloud (`kind name`).
    pub gone: Vec<String>,
    /// What `destroy` does not delete, whatever the cloud holds: stated for the customer.
    pub never: Vec<String>,
    /// The enforcement core the realm is retired in before anything is deleted (its decision
    /// log exported as an artifact first); `None` when the install never seeded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire: Option<crate::quota::seed::Seeded>,
}

/// What the realm keeps in every destroy (the customer's network, and the evidence).
pub const NEVER: [&str; 3] = [
    "the customer's network (VPC or VNet, subnets, route tables): the realm uses it, it did not create it",
    "the artifacts and the journal (state folder and artifact bucket): the evidence of the install and of this destroy",
    "the install identity and its roles: the customer's, created in phase 1",
];

/// The inventory item described by the cloud now, or gone.
#[derive(Debug, Clone)]
pub struct Described {
    /// The item.
    pub owned: Owned,
    /// What the cloud reports (`None`: gone).
    pub found: Option<Found>,
}

/// Builds the destroy plan (pure) from the inventory as described now and the leftovers found
/// by the marks.
pub fn plan(
    realm: &str,
    realm_key: &str,
    described: &[Described],
    leftovers: &[Found],
    marks: &[Mark],
    options: SweepOptions,
) -> DestroyPlan {
    let mut p = DestroyPlan {
        realm: realm.to_owned(),
        swept_clusters: swept(described, realm_key, realm),
        marks: marks.to_vec(),
        options,
        delete: Vec::new(),
        keep: Vec::new(),
        gone: Vec::new(),
        never: NEVER.iter().map(|s| (*s).to_owned()).collect(),
        retire: None,
    };
    for d in described {
        match &d.found {
            None => p.gone.push(format!("{} {}", d.owned.kind, d.owned.id())),
            // Routes carry no tags: the survey describes only those through this realm's own
            // instance, which were this realm's to add.
            Some(f) if d.owned.kind == ResourceKind::Vpn(VpnPart::Routes) => {
                match d.owned.created {
                    CreatedBy::ThisRealm => p.delete.push(f.clone()),
                    CreatedBy::Adoption => p.keep.push(Kept {
                        resource: f.clone(),
                        why: "adopted: this realm's journal did not add them".into(),
                    }),
                }
            }
            Some(f) => match crate::cloud::teardown::judge_owned(
                f,
                d.owned.created.into(),
                realm_key,
                realm,
            ) {
                Fate::Delete => p.delete.push(f.clone()),
                Fate::Keep { why } => p.keep.push(Kept {
                    resource: f.clone(),
                    why,
                }),
            },
        }
    }
    for f in leftovers {
        match crate::cloud::teardown::judge_leftover(f, marks, options) {
            Fate::Delete => p.delete.push(f.clone()),
            Fate::Keep { why } => p.keep.push(Kept {
                resource: f.clone(),
                why,
            }),
        }
    }
    p
}

/// The clusters this realm created that still carry its tag, or are gone (a cluster being
/// deleted still has leftovers to sweep).
pub fn swept(described: &[Described], realm_key: &str, realm: &str) -> Vec<String> {
    described
        .iter()
        .filter(|d| {
            d.owned.kind == ResourceKind::Cluster && d.owned.created == CreatedBy::ThisRealm
        })
        .filter(|d| {
            d.found
                .as_ref()
                .is_none_or(|f| f.tags.get(realm_key).map(String::as_str) == Some(realm))
        })
        .map(|d| d.owned.cluster.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "realmctl.digibee.com/realm";

    fn found(kind: ResourceKind, id: &str, realm: Option<&str>) -> Found {
        Found {
            kind,
            id: id.into(),
            name: id.into(),
            tags: realm
                .map(|r| [(KEY.to_owned(), r.to_owned())].into())
                .unwrap_or_default(),
            within: None,
        }
    }

    #[test]
    fn the_plan_deletes_the_realms_own_keeps_the_rest_and_sweeps_only_its_clusters() {
        let own = |kind, c: &str, pool: Option<&str>, created| Owned {
            kind,
            cluster: c.into(),
            pool: pool.map(str::to_owned),
            created,
        };
        let described = vec![
            Described {
                owned: own(
                    ResourceKind::NodePool,
                    "c1",
                    Some("workers"),
                    CreatedBy::ThisRealm,
                ),
                found: Some(found(ResourceKind::NodePool, "c1/workers", Some("acme"))),
            },
            Described {
                owned: own(ResourceKind::Cluster, "c1", None, CreatedBy::ThisRealm),
                found: Some(found(ResourceKind::Cluster, "c1", Some("acme"))),
            },
            Described {
                owned: own(ResourceKind::Cluster, "c2", None, CreatedBy::Adoption),
                found: Some(found(ResourceKind::Cluster, "c2", Some("acme"))),
            },
            Described {
                owned: own(ResourceKind::Cluster, "c3", None, CreatedBy::ThisRealm),
                found: Some(found(ResourceKind::Cluster, "c3", None)),
            },
            Described {
                owned: own(
                    ResourceKind::NodePool,
                    "c1",
                    Some("old"),
                    CreatedBy::ThisRealm,
                ),
                found: None,
            },
        ];
        let marks = [Mark::exactly("kubernetes.io/cluster/c1", "owned")];
        let lb = Found {
            tags: [("kubernetes.io/cluster/c1".to_owned(), "owned".to_owned())].into(),
            ..found(ResourceKind::LoadBalancer, "arn:lb", None)
        };
        let p = plan(
            "acme",
            KEY,
            &described,
            std::slice::from_ref(&lb),
            &marks,
            SweepOptions::default(),
        );
        let deleted: Vec<_> = p.delete.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(deleted, ["c1/workers", "c1", "arn:lb"]);
        let kept: Vec<_> = p.keep.iter().map(|k| k.resource.id.as_str()).collect();
        assert_eq!(
            kept,
            ["c2", "c3"],
            "adopted and untagged same-named are kept"
        );
        assert_eq!(p.gone, ["node pool c1/old"]);
        assert_eq!(
            p.swept_clusters,
            ["c1"],
            "the untagged c3 is not this realm's to sweep"
        );
        assert_eq!(p.never.len(), NEVER.len());
    }
}
