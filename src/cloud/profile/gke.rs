//! Google Kubernetes Engine as a profile: a project, the APIs the install needs enabled, the
//! region's CPU quota of the machine series, Google label rules, node pool names of DNS
//! labels, node pools created with the cluster, an IAM custom role as the least-privilege
//! document, and OAuth tokens that the chain refreshes.

use std::collections::BTreeMap;

use super::{
    AccountAsk, CloudParts, CredentialRenewal, PolicyDoc, Profile, TagKeys, build_definition,
    one_address_per_node, quota_queries, rules,
};
use crate::cloud::definition::{
    ClusterDefinition, NetworkDef, NodeImageDef, PoolMode, SecondaryRanges,
};
use crate::cloud::facts::{AccountQuery, QuotaQuery};
use crate::cloud::sizing::PoolSize;
use crate::spec::{CloudAccount, Provider, Spec};

/// The image type of the default node image.
const DEFAULT_IMAGE_TYPE: &str = "COS_CONTAINERD";

/// The GKE profile.
pub struct Gke;

/// The one GKE profile.
pub const GKE: Gke = Gke;

/// The GKE block of a spec.
struct Block<'a> {
    project: &'a str,
    network: &'a str,
    subnetwork: &'a str,
    ranges: Option<&'a (String, String)>,
}

fn block(spec: &Spec) -> Block<'_> {
    match &spec.cloud.account {
        CloudAccount::Gke {
            project,
            network,
            subnetwork,
            secondary_ranges,
            ..
        } => Block {
            project,
            network,
            subnetwork,
            ranges: secondary_ranges.as_ref(),
        },
        // The spec resolver gives a GKE spec a GKE block.
        _ => Block {
            project: "",
            network: "",
            subnetwork: "",
            ranges: None,
        },
    }
}

fn project(spec: &Spec) -> &str {
    block(spec).project
}

/// The regional quota a machine type's vCPUs count against (Compute Engine, "CPU quota"):
/// E2 and N1 count against `CPUS`, other series against `<SERIES>_CPUS`.
pub fn cpu_quota(machine_type: &str) -> String {
    let series = machine_type
        .split('-')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    match series.as_str() {
        "E2" | "N1" | "F1" | "G1" | "" => "CPUS".into(),
        s => format!("{s}_CPUS"),
    }
}

/// The calendar of [`Profile::kubernetes_support`], parsed once.
static CALENDAR: std::sync::OnceLock<super::support::Calendar> = std::sync::OnceLock::new();

impl Profile for Gke {
    fn provider(&self) -> Provider {
        Provider::Gke
    }

    fn kubernetes_support(&self) -> &'static super::support::Calendar {
        super::support::embedded(&CALENDAR, include_str!("versions/gke.yaml"))
    }

    fn title(&self) -> &'static str {
        "Google Kubernetes Engine"
    }

    fn tag_keys(&self) -> TagKeys {
        super::DASHED_TAG_KEYS
    }

    /// The label GKE puts on what it makes for a cluster (`goog-k8s-cluster-name`): the
    /// persistent disks of its volumes and the forwarding rules of its load balancers.
    fn leftover_marks(&self, cluster: &str) -> Vec<crate::cloud::teardown::Mark> {
        vec![crate::cloud::teardown::Mark::exactly(
            "goog-k8s-cluster-name",
            cluster,
        )]
    }

    fn check_tag_key(&self, key: &str) -> Result<(), String> {
        rules::google_label(key, true)
    }

    fn check_tag_value(&self, value: &str) -> Result<(), String> {
        rules::google_label(value, false)
    }

    fn check_pool_name(&self, name: &str) -> Result<(), String> {
        rules::dns_label(name, 40, true)
    }

    fn check_cluster_name(&self, name: &str) -> Result<(), String> {
        rules::dns_label(name, 40, true)
    }

    fn unsupported(&self, def: &ClusterDefinition) -> Vec<String> {
        let mut out: Vec<String> = def
            .pools
            .iter()
            .filter_map(|p| match &p.nodes.image {
                NodeImageDef::Custom(image) => Some(format!(
                    "cloud.cluster.nodeImage `{image}`: GKE runs nodes on its own image types (COS_CONTAINERD, UBUNTU_CONTAINERD) and takes no custom image; use {{type: default}}"
                )),
                NodeImageDef::Default(_) => None,
            })
            .collect();
        // A service account id has 6 to 30 characters.
        if let Some(v) = &def.vpn
            && v.name.len() > 30
        {
            out.push(format!(
                "vpn: the realm VPN's service account would be named `{}` ({} characters), and Google takes at most 30; use a realm name of at most 26 characters",
                v.name,
                v.name.len()
            ));
        }
        out
    }

    fn definition(&self, spec: &Spec, pool: &PoolSize) -> ClusterDefinition {
        let b = block(spec);
        build_definition(
            self,
            spec,
            pool,
            CloudParts {
                scope: format!("projects/{}", b.project),
                // A VPC-native cluster in the customer's network and regional subnetwork, by
                // name as GKE describes them; pods and Services on the subnetwork's secondary
                // ranges the spec names, else on ranges GKE makes.
                network: NetworkDef {
                    network: Some(b.network.to_owned()),
                    subnets: vec![b.subnetwork.to_owned()],
                    secondary_ranges: b.ranges.map(|(pods, services)| SecondaryRanges {
                        pods: pods.clone(),
                        services: services.clone(),
                    }),
                },
                control_plane_identity: None,
                // GKE creates the cluster with its node pools.
                mode: PoolMode::User,
                with_cluster: true,
                node_identity: None,
                pool_subnets: Vec::new(),
                default_image: DEFAULT_IMAGE_TYPE,
            },
        )
    }

    fn account(&self, spec: &Spec, def: &ClusterDefinition, _pool: &PoolSize) -> AccountAsk {
        AccountAsk {
            query: AccountQuery {
                subnets: def.cluster.network.subnets.clone(),
                identities: Vec::new(),
                services: vec![
                    "container.googleapis.com".into(),
                    "compute.googleapis.com".into(),
                ],
                quotas: quota_queries(
                    def,
                    &spec.cloud.region,
                    vec![QuotaQuery {
                        code: "CPUS".into(),
                        name: format!("CPUS vCPUs ({})", spec.cloud.region),
                    }],
                    |shape| Some(cpu_quota(shape)),
                ),
                secondary_ranges: def
                    .cluster
                    .network
                    .secondary_ranges
                    .iter()
                    .flat_map(|r| [r.pods.clone(), r.services.clone()])
                    .collect(),
            },
            account: project(spec).to_owned(),
            account_field: "cloud.gke.project",
            subnets_field: "cloud.gke.subnetwork",
            min_zones: 0,
            reserved_per_subnet: 0,
            addresses: one_address_per_node(def, "VPC-native, pods on secondary ranges"),
            vcpu: (def.max_vcpu(), super::eks::vcpu_why(def)),
            kubernetes_version: def.cluster.kubernetes_version.clone(),
            service_fix: "gcloud services enable {service}",
        }
    }

    fn credential_renewal(&self) -> CredentialRenewal {
        CredentialRenewal::Refreshing
    }

    fn permission_vars(&self, spec: &Spec) -> BTreeMap<&'static str, String> {
        [
            ("project", project(spec).to_owned()),
            ("network", block(spec).network.to_owned()),
            ("subnetwork", block(spec).subnetwork.to_owned()),
            ("region", spec.cloud.region.clone()),
            ("cluster", spec.cloud.cluster.name.clone()),
            ("realm", spec.name.clone()),
        ]
        .into()
    }

    fn policy(&self) -> PolicyDoc {
        PolicyDoc {
            template: "policies/gke-installer-role.yaml",
            kind: "IAM custom role",
            language: "yaml",
        }
    }

    fn vpn_host(&self) -> crate::cloud::vpn::def::HostProfile {
        crate::cloud::vpn::def::HostProfile {
            image: "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64",
            size: "e2-small",
            read_key: "gcloud secrets versions access latest --secret {secret}",
            store: "Google Secret Manager; share it with the customer through an IAM binding on the secret",
            zone: Some("-b"),
        }
    }

    fn storage_scheme(&self) -> &'static str {
        "gs"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_series_map_to_their_cpu_quota() {
        assert_eq!(cpu_quota("e2-standard-4"), "CPUS");
        assert_eq!(cpu_quota("n1-standard-8"), "CPUS");
        assert_eq!(cpu_quota("n2-standard-8"), "N2_CPUS");
        assert_eq!(cpu_quota("c3-highcpu-4"), "C3_CPUS");
    }
}
