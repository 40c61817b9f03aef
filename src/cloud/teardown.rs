//! Tearing a realm down (issue #20, `realmctl destroy`): what a cloud holds for the realm, and
//! the pure judgements that decide what is deleted and what is kept.
//!
//! Two sources name what a realm owns. The journal's inventory says what *this realm created*
//! (an intent was journaled before every create): its cluster and node pools. The sweep finds
//! what controllers inside the cluster made for it (load balancers, their security groups and
//! network interfaces, volumes), by the ownership marks its profile names
//! ([`crate::cloud::profile::Profile::leftover_marks`]). Each resource is judged here, by its
//! tags and by the journal, never by its name alone: a same-named resource without this
//! realm's tags, or one this realm adopted rather than created, is kept and reported.
//!
//! Clients only list and delete ([`Teardown`]); deciding is pure and tested in this file.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::CloudFuture;

/// What kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ResourceKind {
    /// A node pool (EKS managed node group, AKS agent pool, GKE node pool).
    NodePool,
    /// The managed cluster.
    Cluster,
    /// A load balancer a controller made for a Service or an Ingress.
    LoadBalancer,
    /// A network interface left by a load balancer or a node.
    NetworkInterface,
    /// A disk made for a persistent volume.
    Volume,
    /// A security group (firewall) a controller made.
    SecurityGroup,
    /// A public address a controller made for a load balancer (Azure public IP).
    PublicAddress,
    /// A resource group made for the cluster (AKS's node resource group).
    ResourceGroup,
    /// A part of the realm's VPN instance (issue #23).
    Vpn(crate::cloud::vpn::VpnPart),
}

impl ResourceKind {
    /// In words (a VPN part: `VPN` and the part's name, written by [`fmt::Display`]).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::NodePool => "node pool",
            ResourceKind::Cluster => "cluster",
            ResourceKind::LoadBalancer => "load balancer",
            ResourceKind::NetworkInterface => "network interface",
            ResourceKind::Volume => "volume",
            ResourceKind::SecurityGroup => "security group",
            ResourceKind::PublicAddress => "public address",
            ResourceKind::ResourceGroup => "resource group",
            ResourceKind::Vpn(p) => p.as_str(),
        }
    }

    /// The kinds the sweep lists, in the order they are deleted: a load balancer holds
    /// public addresses and network interfaces, and they hold security groups; a resource
    /// group (with whatever is left in it) goes last.
    pub const SWEPT: [ResourceKind; 6] = [
        ResourceKind::LoadBalancer,
        ResourceKind::PublicAddress,
        ResourceKind::NetworkInterface,
        ResourceKind::Volume,
        ResourceKind::SecurityGroup,
        ResourceKind::ResourceGroup,
    ];
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceKind::Vpn(p) => write!(f, "VPN {p}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// One resource as the cloud reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    /// Its kind.
    pub kind: ResourceKind,
    /// What the delete call takes (an id or ARN; `cluster/pool` for a node pool).
    pub id: String,
    /// Its name for people (may equal the id).
    pub name: String,
    /// Its tags (labels).
    pub tags: BTreeMap<String, String>,
    /// The container the sweep found it in that the cluster's deletion takes with it (AKS's
    /// node resource group): it is the cluster's whatever its tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name == self.id {
            write!(f, "{} {}", self.kind, self.id)
        } else {
            write!(f, "{} {} ({})", self.kind, self.name, self.id)
        }
    }
}

/// A tag (label) that marks a resource as made for the realm or its cluster: `value: None`
/// means any value of the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mark {
    /// The key.
    pub key: String,
    /// The value, when it must be exactly this.
    pub value: Option<String>,
}

impl Mark {
    /// A mark of `key` with exactly `value`.
    pub fn exactly(key: impl Into<String>, value: impl Into<String>) -> Self {
        Mark {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// Whether `tags` carry this mark.
    pub fn on(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(&self.key)
            .is_some_and(|v| self.value.as_ref().is_none_or(|want| want == v))
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.key),
            None => write!(f, "{}", self.key),
        }
    }
}

/// What the sweep looks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepQuery {
    /// The realm's cluster.
    pub cluster: String,
    /// A resource carrying any of these was made for the realm's cluster.
    pub marks: Vec<Mark>,
}

/// What becomes of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "camelCase")]
pub enum Fate {
    /// Deleted by the destroy.
    Delete,
    /// Kept; why.
    Keep {
        /// Why, for people.
        why: String,
    },
}

/// How the realm's own inventory item stands against the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The journal recorded the intent to create it: this realm made it (or tried to).
    ByThisRealm,
    /// A step adopted it: it existed before this realm's journal asked for it.
    Adopted,
}

/// Judges a cluster or node pool the journal names (pure): deleted only when this realm's
/// journal created it and it still carries the realm's tag.
pub fn judge_owned(found: &Found, created: Created, realm_key: &str, realm: &str) -> Fate {
    match found.tags.get(realm_key) {
        Some(v) if v == realm => match created {
            Created::ByThisRealm => Fate::Delete,
            Created::Adopted => Fate::Keep {
                why: "adopted: it existed before this realm's journal asked to create it, so `destroy` leaves it to whoever created it".into(),
            },
        },
        Some(other) => Fate::Keep {
            why: format!("tagged {realm_key}={other}: another realm's, not deleted"),
        },
        None => Fate::Keep {
            why: format!(
                "same name, but without the tag {realm_key}={realm}: not created by this realm, not deleted"
            ),
        },
    }
}

/// Options of a destroy that change what the sweep deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepOptions {
    /// Delete the disks of persistent volumes, and their data (`--delete-volumes`).
    pub delete_volumes: bool,
}

/// Judges one leftover the sweep found (pure): deleted when it carries one of the marks, kept
/// otherwise; volumes (the data of persistent volumes) kept unless asked.
pub fn judge_leftover(found: &Found, marks: &[Mark], opts: SweepOptions) -> Fate {
    let mark = match &found.within {
        Some(group) => Some(format!("in the cluster's {group}")),
        None => marks
            .iter()
            .find(|m| m.on(&found.tags))
            .map(|m| format!("tagged {m}")),
    };
    let Some(mark) = mark else {
        return Fate::Keep {
            why: format!(
                "carries none of the realm's ownership tags ({}): not deleted",
                marks
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
    };
    if found.kind == ResourceKind::Volume && !opts.delete_volumes {
        return Fate::Keep {
            why: format!(
                "a persistent volume's disk ({mark}): its data is kept; `destroy --delete-volumes` deletes it"
            ),
        };
    }
    Fate::Delete
}

/// Listing and deleting what a realm left. A client that does not tear down yet keeps the
/// defaults, which say so ([`super::CloudErrorKind::Unsupported`]).
pub trait Teardown: Send + Sync {
    /// Every resource of `kind` carrying one of the query's marks (a sweep kind of
    /// [`ResourceKind::SWEPT`]).
    fn leftovers<'a>(
        &'a self,
        kind: ResourceKind,
        query: &'a SweepQuery,
    ) -> CloudFuture<'a, Vec<Found>> {
        let _ = query;
        Box::pin(async move { Err(unsupported(kind, "list")) })
    }
    /// Deletes `found` (any kind). Deleting what is already gone succeeds; a resource something
    /// else still holds fails with [`super::CloudErrorKind::InUse`].
    fn delete<'a>(&'a self, found: &'a Found) -> CloudFuture<'a, ()> {
        Box::pin(async move { Err(unsupported(found.kind, "delete")) })
    }
}

fn unsupported(kind: ResourceKind, what: &str) -> super::CloudError {
    super::CloudError::new(
        super::CloudErrorKind::Unsupported,
        format!("destroy:{what} {kind}"),
        "this build's client of the realm's cloud does not tear realms down yet (issue #20)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(kind: ResourceKind, tags: &[(&str, &str)]) -> Found {
        Found {
            kind,
            id: "id-1".into(),
            name: "id-1".into(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            within: None,
        }
    }

    #[test]
    fn only_what_this_realm_created_and_still_tags_as_its_own_is_deleted() {
        let key = "realmctl.digibee.com/realm";
        let ours = found(ResourceKind::Cluster, &[(key, "acme")]);
        assert_eq!(
            judge_owned(&ours, Created::ByThisRealm, key, "acme"),
            Fate::Delete
        );
        let Fate::Keep { why } = judge_owned(&ours, Created::Adopted, key, "acme") else {
            panic!("an adopted cluster is kept")
        };
        assert!(why.starts_with("adopted"), "{why}");
        let theirs = found(ResourceKind::Cluster, &[(key, "other")]);
        let Fate::Keep { why } = judge_owned(&theirs, Created::ByThisRealm, key, "acme") else {
            panic!("another realm's cluster is kept")
        };
        assert!(why.contains("another realm"), "{why}");
        let untagged = found(ResourceKind::NodePool, &[]);
        let Fate::Keep { why } = judge_owned(&untagged, Created::ByThisRealm, key, "acme") else {
            panic!("an untagged pool is kept")
        };
        assert!(why.contains("without the tag"), "{why}");
    }

    #[test]
    fn leftovers_are_deleted_by_mark_and_volumes_only_when_asked() {
        let marks = [
            Mark::exactly("kubernetes.io/cluster/c1", "owned"),
            Mark {
                key: "elbv2.k8s.aws/cluster".into(),
                value: None,
            },
        ];
        let sg = found(
            ResourceKind::SecurityGroup,
            &[("kubernetes.io/cluster/c1", "owned")],
        );
        assert_eq!(
            judge_leftover(&sg, &marks, SweepOptions::default()),
            Fate::Delete
        );
        let shared = found(
            ResourceKind::SecurityGroup,
            &[("kubernetes.io/cluster/c1", "shared")],
        );
        assert!(matches!(
            judge_leftover(&shared, &marks, SweepOptions::default()),
            Fate::Keep { .. }
        ));
        let lb = found(
            ResourceKind::LoadBalancer,
            &[("elbv2.k8s.aws/cluster", "anything")],
        );
        assert_eq!(
            judge_leftover(&lb, &marks, SweepOptions::default()),
            Fate::Delete
        );
        let vol = found(
            ResourceKind::Volume,
            &[("kubernetes.io/cluster/c1", "owned")],
        );
        let Fate::Keep { why } = judge_leftover(&vol, &marks, SweepOptions::default()) else {
            panic!("a volume is kept by default")
        };
        assert!(why.contains("--delete-volumes"), "{why}");
        assert_eq!(
            judge_leftover(
                &vol,
                &marks,
                SweepOptions {
                    delete_volumes: true
                }
            ),
            Fate::Delete
        );
    }

    #[test]
    fn what_lies_in_a_group_the_cluster_takes_with_it_is_the_clusters_whatever_its_tags() {
        let disk = Found {
            within: Some("node resource group MC_g_c_eastus".into()),
            ..found(
                ResourceKind::Volume,
                &[("k8s-azure-created-by", "kubernetes-azure-dd")],
            )
        };
        let Fate::Keep { why } = judge_leftover(&disk, &[], SweepOptions::default()) else {
            panic!("a volume is kept by default")
        };
        assert!(
            why.contains("in the cluster's node resource group"),
            "{why}"
        );
        let all = SweepOptions {
            delete_volumes: true,
        };
        assert_eq!(judge_leftover(&disk, &[], all), Fate::Delete);
        let untagged = found(ResourceKind::Volume, &[]);
        assert!(matches!(
            judge_leftover(&untagged, &[], all),
            Fate::Keep { .. }
        ));
    }

    #[test]
    fn sweep_deletes_load_balancers_before_what_they_hold() {
        let pos = |k| ResourceKind::SWEPT.iter().position(|x| *x == k).unwrap();
        assert!(pos(ResourceKind::LoadBalancer) < pos(ResourceKind::NetworkInterface));
        assert!(pos(ResourceKind::NetworkInterface) < pos(ResourceKind::SecurityGroup));
    }
}
