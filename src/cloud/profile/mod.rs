//! What each cloud *is*, as pure profiles: its names and naming rules, the tags or labels that
//! mark a realm's resources, the cluster definition it builds from a spec, what its account
//! step asks and expects, how its credentials expire, its permissions and least-privilege
//! role or policy document, and the help texts that name its spec fields. No SDK, no I/O:
//! a profile is data and pure functions, so `plan`, `validate`, rendering and the judges work
//! offline, and shared code asks the profile instead of matching on the provider.
//!
//! [`for_provider`] is the one place that maps a provider to its profile.

mod aks;
mod eks;
mod gke;
pub mod rules;
pub mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use super::definition::{
    ClusterDefinition, ClusterShape, NetworkDef, NodeImageDef, PoolDefinition, PoolMode, PoolShape,
};
use super::facts::{AccountQuery, QuotaQuery};
use super::sizing::PoolSize;
use crate::spec::{NodeImage, Provider, Spec};

pub use aks::AKS;
pub use eks::{EKS, STANDARD_VCPU_QUOTA, STANDARD_VCPU_QUOTA_NAME};
pub use gke::GKE;

/// Every profile; [`for_provider`] picks from here.
const PROFILES: &[&dyn Profile] = &[&EKS, &AKS, &GKE];

/// The profile of `provider`.
pub fn for_provider(provider: Provider) -> &'static dyn Profile {
    PROFILES
        .iter()
        .copied()
        .find(|p| p.provider() == provider)
        .expect("every provider has a profile (unit-tested)")
}

/// The profile of a spec's cloud.
pub fn of(spec: &Spec) -> &'static dyn Profile {
    for_provider(spec.cloud.provider)
}

/// How a cloud's temporary credentials are judged against the install's longest step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialRenewal {
    /// A session that cannot renew itself (AWS temporary keys): it must outlive `needed`.
    Session {
        /// How long a cluster creation and its wait may take.
        needed: Duration,
    },
    /// Tokens the chain refreshes before they expire (Entra ID, Google OAuth): an expiry is
    /// only when the current token ends.
    Refreshing,
}

/// What the account step asks the cloud and what it expects of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountAsk {
    /// The query.
    pub query: AccountQuery,
    /// The account, subscription or project the spec names.
    pub account: String,
    /// The spec field naming it (for the fix line).
    pub account_field: &'static str,
    /// The spec field naming the subnets.
    pub subnets_field: &'static str,
    /// The fewest distinct zones the subnets must span (0: subnets are regional).
    pub min_zones: usize,
    /// Addresses each subnet must keep free for the control plane.
    pub reserved_per_subnet: u64,
    /// Addresses the pools may take at their maximum, and how that was counted.
    pub addresses: (u64, String),
    /// vCPU of every pool at its maximum, and how that was counted.
    pub vcpu: (u64, String),
    /// The Kubernetes version the spec names.
    pub kubernetes_version: String,
    /// How to enable a missing service: a command with `{service}` in it.
    pub service_fix: &'static str,
}

/// The least-privilege document the install identity needs, as the cloud writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyDoc {
    /// The template under `templates/` it is rendered from.
    pub template: &'static str,
    /// What it is, for people (`IAM policy`, `Azure custom role`, `IAM custom role`).
    pub kind: &'static str,
    /// The language of the rendered text (`json`, `yaml`) for documents.
    pub language: &'static str,
}

/// The tag (or label) keys that mark a realm's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagKeys {
    /// Names the realm that created the resource.
    pub realm: &'static str,
    /// Says realmctl manages it.
    pub managed_by: &'static str,
}

/// What a cloud is.
pub trait Profile: Send + Sync {
    /// Which cloud.
    fn provider(&self) -> Provider;

    /// Its name for people (`Amazon EKS`).
    fn title(&self) -> &'static str;

    /// The tag (label) keys that mark a realm's resources on this cloud.
    fn tag_keys(&self) -> TagKeys;

    /// Whether `key` is a tag (label) key this cloud accepts; why not otherwise.
    fn check_tag_key(&self, key: &str) -> Result<(), String>;

    /// Whether `value` is a tag (label) value this cloud accepts; why not otherwise.
    fn check_tag_value(&self, value: &str) -> Result<(), String>;

    /// Whether `name` is a node pool name this cloud accepts; why not otherwise.
    fn check_pool_name(&self, name: &str) -> Result<(), String>;

    /// Whether `name` is a cluster name this cloud accepts; why not otherwise.
    fn check_cluster_name(&self, name: &str) -> Result<(), String>;

    /// How long this cloud supports each Kubernetes minor version (its published calendar,
    /// as data).
    fn kubernetes_support(&self) -> &'static support::Calendar;

    /// What of `def` this cloud cannot build, one line each with the way out (none by default):
    /// refused by `validate` rather than discovered by the cloud in phase 6.
    fn unsupported(&self, _def: &ClusterDefinition) -> Vec<String> {
        Vec::new()
    }

    /// The realm's cluster definition (pure): the one value rendered, approved, sent and
    /// judged.
    fn definition(&self, spec: &Spec, pool: &PoolSize) -> ClusterDefinition;

    /// What the account step asks and expects, for the spec and its definition.
    fn account(&self, spec: &Spec, def: &ClusterDefinition, pool: &PoolSize) -> AccountAsk;

    /// How credential expiry is judged.
    fn credential_renewal(&self) -> CredentialRenewal;

    /// The values the resource patterns of the permission data are filled in with
    /// (`{account}`, `{subscription}`, `{project}`, ...).
    fn permission_vars(&self, spec: &Spec) -> BTreeMap<&'static str, String>;

    /// The least-privilege document of the install identity.
    fn policy(&self) -> PolicyDoc;

    /// The scheme of this cloud's object storage (`s3`, `az`, `gs`): a bucket of that scheme
    /// is written with the cloud's own credentials.
    fn storage_scheme(&self) -> &'static str;

    /// What the realm's VPN instance runs on, and how it reads its key (data).
    fn vpn_host(&self) -> super::vpn::def::HostProfile;

    /// The realm's ownership tags (labels) on this cloud.
    fn realm_tags(&self, realm: &str) -> BTreeMap<String, String> {
        let k = self.tag_keys();
        [
            (k.realm.to_owned(), realm.to_owned()),
            (k.managed_by.to_owned(), "realmctl".to_owned()),
        ]
        .into()
    }

    /// The tags (labels) by which what controllers in the realm's cluster made for it is
    /// recognised (load balancers, their security groups and interfaces, volumes), for the
    /// sweep of `destroy`. A cloud without them sweeps nothing.
    fn leftover_marks(&self, cluster: &str) -> Vec<super::teardown::Mark> {
        let _ = cluster;
        Vec::new()
    }

    /// Whether deleting the cluster deletes the disks of its persistent volumes (a node
    /// resource group the cloud deletes with it): then a destroy that keeps volumes stops
    /// before the cluster.
    fn volumes_go_with_cluster(&self) -> bool {
        false
    }

    /// Every problem of `def` against this cloud's published naming rules: cluster and pool
    /// names, tag (label) keys and values, Kubernetes node labels. Empty when the cloud would
    /// accept it.
    fn problems(&self, def: &ClusterDefinition) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = self.check_cluster_name(&def.cluster.name) {
            out.push(format!("cluster name `{}`: {e}", def.cluster.name));
        }
        let mut tags: Vec<(&str, &BTreeMap<String, String>)> = vec![("cluster", &def.cluster.tags)];
        for p in &def.pools {
            if let Err(e) = self.check_pool_name(&p.nodes.name) {
                out.push(format!("node pool name `{}`: {e}", p.nodes.name));
            }
            tags.push(("node pool", &p.nodes.tags));
            for (k, v) in &p.nodes.labels {
                if let Err(e) = rules::kubernetes_label(k, v) {
                    out.push(format!(
                        "node label `{k}={v}` of pool {}: {e}",
                        p.nodes.name
                    ));
                }
            }
        }
        for (what, map) in tags {
            for (k, v) in map {
                if let Err(e) = self.check_tag_key(k) {
                    out.push(format!("{what} tag key `{k}`: {e}"));
                }
                if let Err(e) = self.check_tag_value(v) {
                    out.push(format!("{what} tag `{k}` value `{v}`: {e}"));
                }
            }
        }
        out.extend(self.unsupported(def));
        out
    }
}

/// What a cloud's definition has of its own; the rest every cloud fills the same way
/// ([`build_definition`]).
struct CloudParts<'a> {
    /// Account, subscription and resource group, or project.
    scope: String,
    /// Where the nodes live.
    network: NetworkDef,
    /// The control plane's identity, where the request names one.
    control_plane_identity: Option<String>,
    /// The worker pool's role.
    mode: PoolMode,
    /// Whether the cloud creates the worker pool with the cluster.
    with_cluster: bool,
    /// The nodes' identity, where the request names one.
    node_identity: Option<String>,
    /// The worker pool's own subnets (empty: the cluster's).
    pool_subnets: Vec<String>,
    /// The cloud's name for its default node image.
    default_image: &'a str,
}

/// The realm's definition on a cloud (pure): the spec's cluster (name, version, API access),
/// the cloud's own parts, the realm's ownership tags, and one worker pool sized from the RTUs
/// with the `digibee.io/realm` node label.
fn build_definition(
    prof: &dyn Profile,
    spec: &Spec,
    pool: &PoolSize,
    parts: CloudParts<'_>,
) -> ClusterDefinition {
    let tags = prof.realm_tags(&spec.name);
    ClusterDefinition {
        provider: prof.provider(),
        scope: parts.scope,
        location: spec.cloud.region.clone(),
        cluster: ClusterShape {
            name: spec.cloud.cluster.name.clone(),
            kubernetes_version: spec.cloud.cluster.kubernetes_version.clone(),
            api_access: spec.cloud.cluster.api_access.clone(),
            network: parts.network,
            control_plane_identity: parts.control_plane_identity,
            tags: tags.clone(),
        },
        pools: vec![PoolDefinition {
            nodes: PoolShape {
                name: WORKER_POOL.to_owned(),
                shape: pool.shape.name.clone(),
                min: pool.min,
                desired: pool.desired,
                max: pool.max,
                node_identity: parts.node_identity,
                subnets: parts.pool_subnets,
                image: match &spec.cloud.cluster.node_image {
                    NodeImage::Default => NodeImageDef::Default(parts.default_image.to_owned()),
                    NodeImage::Custom { image, .. } => NodeImageDef::Custom(image.clone()),
                },
                labels: [("digibee.io/realm".to_owned(), spec.name.clone())].into(),
                tags,
            },
            mode: parts.mode,
            with_cluster: parts.with_cluster,
            vcpu: pool.shape.vcpu,
        }],
        platform: None,
        vpn: None,
    }
}

/// One subnet address per node at the pools' maximum (clouds whose pods use an overlay or a
/// secondary range), for the account step.
fn one_address_per_node(def: &ClusterDefinition, how: &str) -> (u64, String) {
    let n = def.max_nodes();
    (n, format!("{n} nodes × 1 address ({how})"))
}

/// One quota query per distinct code of the pools' shapes (`code_of` the shape), named for
/// people with the region.
fn quota_queries(
    def: &ClusterDefinition,
    region: &str,
    mut queries: Vec<QuotaQuery>,
    code_of: impl Fn(&str) -> Option<String>,
) -> Vec<QuotaQuery> {
    for p in &def.pools {
        if let Some(code) = code_of(&p.nodes.shape)
            && !queries.iter().any(|q| q.code == code)
        {
            queries.push(QuotaQuery {
                name: format!("{code} vCPUs ({region})"),
                code,
            });
        }
    }
    queries
}

/// The ownership tag keys of clouds whose tag or label names allow neither `/` nor `.`-led
/// prefixes (Azure tag names, Google label keys).
const DASHED_TAG_KEYS: TagKeys = TagKeys {
    realm: "realmctl-realm",
    managed_by: "realmctl-managed-by",
};

/// The name of the realm's worker pool: valid on every cloud (AKS allows `[a-z][a-z0-9]{0,11}`).
pub const WORKER_POOL: &str = "workers";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support;

    #[test]
    fn every_provider_has_its_own_profile() {
        for p in [Provider::Eks, Provider::Aks, Provider::Gke] {
            assert_eq!(for_provider(p).provider(), p);
        }
    }

    #[test]
    fn every_profile_builds_a_definition_its_cloud_accepts() {
        for p in [Provider::Eks, Provider::Aks, Provider::Gke] {
            let (_d, spec) = test_support::spec(p, "digibee.acme.com");
            let prof = of(&spec);
            let pool = crate::cloud::sizing::for_realm(p, &spec.subscription);
            let def = prof.definition(&spec, &pool);
            assert_eq!(prof.problems(&def), Vec::<String>::new(), "{p}");
            assert_eq!(def.provider, p);
            assert_eq!(def.name(), spec.cloud.cluster.name);
            assert_eq!(def.pools.len(), 1);
            let w = &def.pools[0];
            assert_eq!(
                (w.nodes.min, w.nodes.desired, w.nodes.max),
                (pool.min, pool.desired, pool.max)
            );
            assert_eq!(w.nodes.shape, pool.shape.name);
            assert_eq!(def.cluster.tags, prof.realm_tags("acme"));
            // What the account step asks counts the same pools.
            let ask = prof.account(&spec, &def, &pool);
            assert_eq!(ask.vcpu.0, def.max_vcpu());
        }
    }

    /// Each profile refuses what its cloud refuses: the issue's own examples (an AKS pool named
    /// `<realm>-workers`, the EKS-style tag key on Azure) and one per rule.
    #[test]
    fn each_profile_names_what_its_cloud_would_refuse() {
        let def_for = |p: Provider| {
            let (_d, spec) = test_support::spec(p, "digibee.acme.com");
            crate::cloud::access::definition(&spec)
        };
        let mut aks = def_for(Provider::Aks);
        aks.pools[0].nodes.name = "acme-workers".into();
        aks.cluster
            .tags
            .insert("realmctl.digibee.com/realm".into(), "acme".into());
        let problems = AKS.problems(&aks);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("node pool name `acme-workers`"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("not allowed in an Azure tag name"),
            "{problems:?}"
        );
        // What AKS cannot build at all: both endpoints without an API server subnet, a custom
        // node image; other clouds take them.
        let mut aks = def_for(Provider::Aks);
        aks.cluster.api_access = crate::spec::ApiAccess::Both {
            cidrs: vec!["198.51.100.0/24".parse().unwrap()],
        };
        aks.pools[0].nodes.image = crate::cloud::definition::NodeImageDef::Custom("img-1".into());
        let problems = AKS.problems(&aks);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("apiAccess `both`"), "{problems:?}");
        assert!(problems[1].contains("nodeImage `img-1`"), "{problems:?}");
        let mut eks = def_for(Provider::Eks);
        eks.cluster.api_access = aks.cluster.api_access.clone();
        eks.pools[0].nodes.image = aks.pools[0].nodes.image.clone();
        assert!(EKS.problems(&eks).is_empty(), "{:?}", EKS.problems(&eks));
        let mut gke = def_for(Provider::Gke);
        gke.cluster.tags.insert("Realm".into(), "Acme".into());
        gke.pools[0]
            .nodes
            .labels
            .insert("bad label".into(), "x".into());
        let problems = GKE.problems(&gke);
        assert_eq!(problems.len(), 3, "{problems:?}");
        // A VPN whose names the cloud would refuse: Azure's key vault, Google's service account.
        for (p, max) in [(Provider::Aks, 24), (Provider::Gke, 30)] {
            let mut d = def_for(p);
            let (_d, mut spec) = test_support::spec(p, "digibee.acme.com");
            spec.name = "a-realm-with-a-very-long-name-x".into();
            spec.vpn = crate::spec::VpnSpec {
                enabled: true,
                peer: Some("198.51.100.7/32".parse().unwrap()),
                routing: Some(crate::spec::Routing::RouteBased),
                remote_cidrs: vec!["192.168.10.0/24".parse().unwrap()],
                subnet: None,
            };
            d.vpn = crate::cloud::access::definition(&spec).vpn;
            let problems = for_provider(p).problems(&d);
            assert!(
                problems
                    .iter()
                    .any(|x| x.contains(&format!("at most {max}"))),
                "{p}: {problems:?}"
            );
        }
        let mut eks = def_for(Provider::Eks);
        eks.cluster.tags.insert("aws:reserved".into(), "x".into());
        eks.cluster.name = "-digibee".into();
        assert_eq!(EKS.problems(&eks).len(), 2, "{:?}", EKS.problems(&eks));
    }
}
