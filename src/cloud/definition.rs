//! The one cluster definition of a realm: what the customer approves is exactly what gets built.
//!
//! A cloud's profile ([`super::profile::Profile::definition`]) builds one typed
//! [`ClusterDefinition`] from the resolved spec and the sizing function. That single value is
//! rendered into the phase-4 artifact and the phase-5 roles-and-resources document, its digest is
//! what the phase-5 approval binds to, the provider sends it to the cloud in phase 6, and
//! [`compare`] judges a described cluster or pool against it (a difference in a field that
//! matters is a conflict, never a change). There is no second code path that "happens to
//! agree".

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::crypto::sha256_hex;

pub use crate::spec::ApiAccess;

/// Where the cluster's nodes live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkDef {
    /// The network (VPC, VNet, VPC network), where the cloud names one in the request.
    pub network: Option<String>,
    /// The subnets (EKS subnet ids, an Azure subnet resource id, a Google subnetwork).
    pub subnets: Vec<String>,
    /// Named secondary ranges of the subnet for pods and Services (a GKE VPC-native cluster on
    /// ranges the customer made); `None`: the cloud assigns pod and Service addresses itself.
    /// Left out of the JSON when `None`, so definitions without it digest as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_ranges: Option<SecondaryRanges>,
}

/// The subnet's secondary ranges a cluster takes pod and Service addresses from, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecondaryRanges {
    /// The range for pods.
    pub pods: String,
    /// The range for Services.
    pub services: String,
}

/// The node image of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type", content = "image")]
pub enum NodeImageDef {
    /// The managed service's default image of this kind (`AL2023_x86_64_STANDARD`,
    /// `AzureLinux`, `COS_CONTAINERD`).
    Default(String),
    /// A customer-supplied image (its id).
    Custom(String),
}

/// A pool's role in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PoolMode {
    /// Runs the cluster's system services (AKS needs one).
    System,
    /// Runs workloads.
    User,
}

/// A node pool's fields that matter, as the definition wants them and as a describe call
/// reports them: one type for both, so a described pool is judged field by field against the
/// definition ([`compare_pool`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolShape {
    /// Name (checked against the cloud's naming rule by the profile).
    pub name: String,
    /// Instance type, VM size or machine type.
    pub shape: String,
    /// Fewest nodes.
    pub min: u32,
    /// Nodes to start with (a described pool: now; the autoscaler moves it, so it is never
    /// compared).
    pub desired: u32,
    /// Most nodes.
    pub max: u32,
    /// The identity the nodes run as (EKS node role ARN, GKE node service account), if the
    /// request names one.
    pub node_identity: Option<String>,
    /// Subnets of the pool (empty: the cluster's).
    pub subnets: Vec<String>,
    /// Node image.
    pub image: NodeImageDef,
    /// Kubernetes labels every node carries.
    pub labels: BTreeMap<String, String>,
    /// Tags (labels) of the pool's cloud resource.
    pub tags: BTreeMap<String, String>,
}

/// One node pool of the definition: its shape, and how the cloud creates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolDefinition {
    /// Its fields.
    #[serde(flatten)]
    pub nodes: PoolShape,
    /// System or user pool.
    pub mode: PoolMode,
    /// Created as part of the cluster (AKS's system pool, GKE's initial pools) rather than by
    /// its own call after the cluster is active (EKS node groups).
    pub with_cluster: bool,
    /// vCPU of one node of the shape (for quota judgements).
    pub vcpu: u32,
}

/// A cluster's fields that matter, as the definition wants them and as a describe call reports
/// them ([`compare_cluster`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterShape {
    /// Name.
    pub name: String,
    /// Kubernetes `MAJOR.MINOR`.
    pub kubernetes_version: String,
    /// Who may reach the API server.
    pub api_access: ApiAccess,
    /// Where the nodes live.
    pub network: NetworkDef,
    /// The identity the control plane acts as (EKS cluster role ARN, an AKS user-assigned
    /// identity); `None` where the cloud manages it (AKS system-assigned, GKE).
    pub control_plane_identity: Option<String>,
    /// Tags (labels) of the cluster's cloud resource: the realm's ownership marks.
    pub tags: BTreeMap<String, String>,
}

/// The realm's cluster, as the customer approves it and the cloud receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDefinition {
    /// The cloud.
    pub provider: crate::spec::Provider,
    /// Account, subscription and resource group, or project (as the cloud's ids write it).
    pub scope: String,
    /// Region or location.
    pub location: String,
    /// The cluster's fields.
    #[serde(flatten)]
    pub cluster: ClusterShape,
    /// Every node pool, in creation order.
    pub pools: Vec<PoolDefinition>,
    /// What phase 6 applies into the cluster once it is active: the bundle's files and every
    /// object with its digest (`None` only for a definition a profile built on its own, before
    /// [`crate::cloud::access::definition`] adds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<crate::platform::PlatformDef>,
    /// The realm's VPN instance when the spec enables one (issue #23); left out of the JSON
    /// when `None`, so definitions without it digest as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpn: Option<super::vpn::def::VpnDef>,
}

impl ClusterDefinition {
    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.cluster.name
    }

    /// The canonical JSON this definition is digested and recorded as.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("definitions serialise")
    }

    /// `sha256:<hex>` of its canonical JSON (object keys sorted at every level, no
    /// whitespace): what an approval of it binds to. Independent of the order fields are
    /// declared or serialised in.
    pub fn digest(&self) -> String {
        format!(
            "sha256:{}",
            sha256_hex(crate::crypto::canonical_json(&self.to_json()).as_bytes())
        )
    }

    /// The pools created as part of the cluster.
    pub fn initial_pools(&self) -> impl Iterator<Item = &PoolDefinition> {
        self.pools.iter().filter(|p| p.with_cluster)
    }

    /// The pools created by their own call once the cluster is active.
    pub fn later_pools(&self) -> impl Iterator<Item = &PoolDefinition> {
        self.pools.iter().filter(|p| !p.with_cluster)
    }

    /// vCPU of every pool at its maximum size.
    pub fn max_vcpu(&self) -> u64 {
        self.pools
            .iter()
            .map(|p| u64::from(p.nodes.max) * u64::from(p.vcpu))
            .sum()
    }

    /// Nodes of every pool at its maximum size.
    pub fn max_nodes(&self) -> u64 {
        self.pools.iter().map(|p| u64::from(p.nodes.max)).sum()
    }
}

/// One field in which the cloud's resource differs from the definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// The field, e.g. `apiAccess` or `pools.workers.max`.
    pub field: String,
    /// What the definition says.
    pub want: String,
    /// What the cloud holds.
    pub have: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: the cloud has {}, the approved definition says {}",
            self.field, self.have, self.want
        )
    }
}

fn diff<T: PartialEq + std::fmt::Debug>(
    out: &mut Vec<Difference>,
    field: &str,
    want: &T,
    have: &T,
) {
    if want != have {
        out.push(Difference {
            field: field.to_owned(),
            want: format!("{want:?}"),
            have: format!("{have:?}"),
        });
    }
}

fn set(v: &[String]) -> BTreeSet<&str> {
    v.iter().map(String::as_str).collect()
}

/// Every tag or label of `want` that `have` lacks or holds with another value (clouds and
/// their controllers may add their own; those are not ours to judge).
fn missing_pairs(
    out: &mut Vec<Difference>,
    field: &str,
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
) {
    for (k, v) in want {
        if have.get(k) != Some(v) {
            out.push(Difference {
                field: format!("{field}.{k}"),
                want: v.clone(),
                have: have.get(k).cloned().unwrap_or_else(|| "(none)".into()),
            });
        }
    }
}

/// Where a described cluster differs from the definition, in every field that matters: its
/// name, version, API access, network, control-plane identity and tags. The ownership tags are
/// judged separately (a foreign cluster is refused before its fields matter).
pub fn compare_cluster(want: &ClusterShape, have: &ClusterShape) -> Vec<Difference> {
    let mut out = Vec::new();
    diff(&mut out, "name", &want.name, &have.name);
    diff(
        &mut out,
        "kubernetesVersion",
        &want.kubernetes_version,
        &have.kubernetes_version,
    );
    diff(
        &mut out,
        "apiAccess",
        &want.api_access.normalised(),
        &have.api_access.normalised(),
    );
    diff(
        &mut out,
        "network.network",
        &want.network.network,
        &have.network.network,
    );
    diff(
        &mut out,
        "network.subnets",
        &set(&want.network.subnets),
        &set(&have.network.subnets),
    );
    diff(
        &mut out,
        "network.secondaryRanges",
        &want.network.secondary_ranges,
        &have.network.secondary_ranges,
    );
    if want.control_plane_identity.is_some() {
        diff(
            &mut out,
            "controlPlaneIdentity",
            &want.control_plane_identity,
            &have.control_plane_identity,
        );
    }
    missing_pairs(&mut out, "tags", &want.tags, &have.tags);
    out
}

/// Where a described pool differs from its definition: shape, scaling bounds, identity,
/// subnets, image, labels and tags (not the desired count, which the autoscaler moves).
pub fn compare_pool(want: &PoolShape, have: &PoolShape) -> Vec<Difference> {
    let mut out = Vec::new();
    let f = |s: &str| format!("pools.{}.{s}", want.name);
    diff(&mut out, &f("name"), &want.name, &have.name);
    diff(&mut out, &f("shape"), &want.shape, &have.shape);
    diff(&mut out, &f("min"), &want.min, &have.min);
    diff(&mut out, &f("max"), &want.max, &have.max);
    if want.node_identity.is_some() {
        diff(
            &mut out,
            &f("nodeIdentity"),
            &want.node_identity,
            &have.node_identity,
        );
    }
    if !want.subnets.is_empty() {
        diff(
            &mut out,
            &f("subnets"),
            &set(&want.subnets),
            &set(&have.subnets),
        );
    }
    diff(&mut out, &f("image"), &want.image, &have.image);
    missing_pairs(&mut out, &f("labels"), &want.labels, &have.labels);
    missing_pairs(&mut out, &f("tags"), &want.tags, &have.tags);
    out
}

/// The fields in which two recorded definitions differ (both as their JSON), for people: why an
/// approval no longer holds. Arrays of named things (pools) are compared by name, other arrays
/// by position.
pub fn changed_fields(before: &serde_json::Value, after: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        _ if a == b => {}
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let none = Value::Null;
                walk(
                    &join(k),
                    x.get(k).unwrap_or(&none),
                    y.get(k).unwrap_or(&none),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            let named = |v: &Vec<Value>| v.iter().all(|e| e["name"].is_string());
            if named(x) && named(y) {
                let by_name = |v: &'_ Vec<Value>| -> BTreeMap<String, Value> {
                    v.iter()
                        .map(|e| (e["name"].as_str().unwrap_or("").to_owned(), e.clone()))
                        .collect()
                };
                let (x, y) = (by_name(x), by_name(y));
                let names: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for n in names {
                    let none = Value::Null;
                    walk(
                        &join(n),
                        x.get(n).unwrap_or(&none),
                        y.get(n).unwrap_or(&none),
                        out,
                    );
                }
            } else {
                out.push(format!(
                    "{}: {a} → {b}",
                    if path.is_empty() { "(root)" } else { path }
                ));
            }
        }
        _ => out.push(format!(
            "{}: {a} → {b}",
            if path.is_empty() { "(root)" } else { path }
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> ClusterDefinition {
        let tags: BTreeMap<String, String> =
            [("realmctl.digibee.com/realm".to_owned(), "acme".to_owned())].into();
        ClusterDefinition {
            provider: crate::spec::Provider::Eks,
            scope: "123456789012".into(),
            location: "us-east-1".into(),
            cluster: ClusterShape {
                name: "digibee-acme".into(),
                kubernetes_version: "1.31".into(),
                api_access: ApiAccess::Private,
                network: NetworkDef {
                    network: None,
                    subnets: vec!["a".into(), "b".into()],
                    secondary_ranges: None,
                },
                control_plane_identity: Some("arn:c".into()),
                tags: tags.clone(),
            },
            pools: vec![PoolDefinition {
                nodes: PoolShape {
                    name: "workers".into(),
                    shape: "m6i.xlarge".into(),
                    min: 3,
                    desired: 7,
                    max: 14,
                    node_identity: Some("arn:n".into()),
                    subnets: vec!["a".into(), "b".into()],
                    image: NodeImageDef::Default("AL2023_x86_64_STANDARD".into()),
                    labels: [("digibee.io/realm".to_owned(), "acme".to_owned())].into(),
                    tags,
                },
                mode: PoolMode::User,
                with_cluster: false,
                vcpu: 4,
            }],
            platform: None,
            vpn: None,
        }
    }

    /// What a cloud would describe of `d`: the same fields, subnets in another order, the
    /// autoscaler having moved the desired count.
    pub(crate) fn described(d: &ClusterDefinition) -> (ClusterShape, PoolShape) {
        let mut c = d.cluster.clone();
        c.network.subnets.reverse();
        let mut p = d.pools[0].nodes.clone();
        p.desired += 2;
        (c, p)
    }

    #[test]
    fn a_cluster_built_from_the_definition_matches_it_whatever_the_order_or_desired_count() {
        let d = sample();
        let (c, p) = described(&d);
        assert_eq!(compare_cluster(&d.cluster, &c), []);
        assert_eq!(compare_pool(&d.pools[0].nodes, &p), []);
        let mut extra = p.clone();
        extra
            .labels
            .insert("eks.amazonaws.com/nodegroup".into(), "workers".into());
        assert_eq!(
            compare_pool(&d.pools[0].nodes, &extra),
            [],
            "the cloud's own labels"
        );
    }

    #[test]
    fn every_field_that_matters_is_a_difference_named_by_its_path() {
        let d = sample();
        type EditC = Box<dyn Fn(&mut ClusterShape)>;
        let cluster_cases: Vec<(&str, EditC)> = vec![
            ("name", Box::new(|c| c.name = "digibee-acme\nx".into())),
            (
                "kubernetesVersion",
                Box::new(|c| c.kubernetes_version = "1.30".into()),
            ),
            (
                "apiAccess",
                Box::new(|c| {
                    c.api_access = ApiAccess::Public {
                        cidrs: vec!["0.0.0.0/0".parse().unwrap()],
                    }
                }),
            ),
            (
                "network.subnets",
                Box::new(|c| c.network.subnets.pop().map(drop).unwrap_or(())),
            ),
            (
                "network.network",
                Box::new(|c| c.network.network = Some("vpc-x".into())),
            ),
            (
                "controlPlaneIdentity",
                Box::new(|c| c.control_plane_identity = Some("arn:x".into())),
            ),
            (
                "tags.realmctl.digibee.com/realm",
                Box::new(|c| {
                    c.tags.clear();
                }),
            ),
        ];
        for (field, edit) in cluster_cases {
            let (mut c, _) = described(&d);
            edit(&mut c);
            let got = compare_cluster(&d.cluster, &c);
            assert_eq!(got.len(), 1, "{field}: {got:?}");
            assert_eq!(got[0].field, field);
        }
        type EditP = Box<dyn Fn(&mut PoolShape)>;
        let pool_cases: Vec<(&str, EditP)> = vec![
            (
                "pools.workers.shape",
                Box::new(|p| p.shape = "m6i.large".into()),
            ),
            ("pools.workers.min", Box::new(|p| p.min = 1)),
            ("pools.workers.max", Box::new(|p| p.max = 46)),
            (
                "pools.workers.nodeIdentity",
                Box::new(|p| p.node_identity = None),
            ),
            (
                "pools.workers.subnets",
                Box::new(|p| p.subnets = vec!["a".into()]),
            ),
            (
                "pools.workers.image",
                Box::new(|p| p.image = NodeImageDef::Custom("ami-1".into())),
            ),
            (
                "pools.workers.labels.digibee.io/realm",
                Box::new(|p| {
                    p.labels.insert("digibee.io/realm".into(), "other".into());
                }),
            ),
            (
                "pools.workers.tags.realmctl.digibee.com/realm",
                Box::new(|p| {
                    p.tags.clear();
                }),
            ),
        ];
        for (field, edit) in pool_cases {
            let (_, mut p) = described(&d);
            edit(&mut p);
            let got = compare_pool(&d.pools[0].nodes, &p);
            assert_eq!(got.len(), 1, "{field}: {got:?}");
            assert_eq!(got[0].field, field);
        }
    }

    #[test]
    fn the_digest_covers_every_field() {
        let d = sample();
        let mut bigger = d.clone();
        bigger.pools[0].nodes.max = 46;
        assert_ne!(d.digest(), bigger.digest());
        let mut public = d.clone();
        public.cluster.api_access = ApiAccess::Both {
            cidrs: vec!["203.0.113.0/24".parse().unwrap()],
        };
        assert_ne!(d.digest(), public.digest());
        assert_eq!(d.digest(), sample().digest(), "stable");
        assert!(d.digest().starts_with("sha256:") && d.digest().len() == 71);
        // Canonical: the same value with its keys in another order digests the same.
        let mut v = d.to_json();
        let reordered: serde_json::Map<String, serde_json::Value> = v
            .as_object_mut()
            .unwrap()
            .clone()
            .into_iter()
            .rev()
            .collect();
        assert_eq!(
            crate::crypto::canonical_json(&v),
            crate::crypto::canonical_json(&reordered.into())
        );
        assert_eq!(
            changed_fields(&d.to_json(), &bigger.to_json()),
            ["pools.workers.max: 14 → 46"]
        );
        assert_eq!(
            changed_fields(&d.to_json(), &public.to_json()),
            [
                r#"apiAccess.access: "private" → "both""#,
                r#"apiAccess.cidrs: null → ["203.0.113.0/24"]"#
            ]
        );
        assert!(changed_fields(&d.to_json(), &d.to_json()).is_empty());
    }
}
