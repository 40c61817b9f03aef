//! Amazon EKS as a profile: IAM roles that must trust EKS and EC2, zonal subnets with the VPC
//! CNI's pod addresses, the On-Demand Standard vCPU quota, AWS tag rules, node groups created
//! after the cluster, an IAM policy as the least-privilege document, sessions that do not renew.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    AccountAsk, CloudParts, CredentialRenewal, PolicyDoc, Profile, TagKeys, build_definition, rules,
};
use crate::cloud::definition::{ClusterDefinition, NetworkDef, PoolMode};
use crate::cloud::facts::{AccountQuery, IdentityQuery, QuotaQuery};
use crate::cloud::sizing::PoolSize;
use crate::spec::{CloudAccount, Provider, Spec};

/// The Service Quotas code of "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z)
/// instances", the vCPU quota the node group's instance families count against.
pub const STANDARD_VCPU_QUOTA: &str = "L-1216C47A";
/// Its name, for messages.
pub const STANDARD_VCPU_QUOTA_NAME: &str =
    "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances";

/// Free addresses EKS needs in each subnet for the control plane's network interfaces.
const CONTROL_PLANE_ADDRESSES_PER_SUBNET: u64 = 6;

/// How long temporary AWS credentials must last at least: a cluster creation and its wait
/// (EKS takes 10–20 minutes for a cluster and a few more for its node group).
const SESSION_NEEDED: Duration = Duration::from_secs(60 * 60);

/// The AMI type of the default node image.
const DEFAULT_AMI_TYPE: &str = "AL2023_x86_64_STANDARD";

/// The EKS profile.
pub struct Eks;

/// The one EKS profile.
pub const EKS: Eks = Eks;

/// The EKS block of a spec (an EKS profile is only asked about EKS specs).
struct Block<'a> {
    account_id: &'a str,
    cluster_role: &'a str,
    node_role: &'a str,
    subnets: &'a [String],
}

fn block(spec: &Spec) -> Block<'_> {
    match &spec.cloud.account {
        CloudAccount::Eks {
            account_id,
            cluster_role_arn,
            node_role_arn,
            subnet_ids,
        } => Block {
            account_id,
            cluster_role: cluster_role_arn,
            node_role: node_role_arn,
            subnets: subnet_ids,
        },
        // The spec resolver gives an EKS spec an EKS block; any other block has none of these.
        _ => Block {
            account_id: "",
            cluster_role: "",
            node_role: "",
            subnets: &[],
        },
    }
}

/// The calendar of [`Profile::kubernetes_support`], parsed once.
static CALENDAR: std::sync::OnceLock<super::support::Calendar> = std::sync::OnceLock::new();

impl Profile for Eks {
    fn provider(&self) -> Provider {
        Provider::Eks
    }

    fn kubernetes_support(&self) -> &'static super::support::Calendar {
        super::support::embedded(&CALENDAR, include_str!("versions/eks.yaml"))
    }

    fn title(&self) -> &'static str {
        "Amazon EKS"
    }

    fn tag_keys(&self) -> TagKeys {
        TagKeys {
            realm: "realmctl.digibee.com/realm",
            managed_by: "realmctl.digibee.com/managed-by",
        }
    }

    /// The cloud provider's and the AWS Load Balancer Controller's ownership tags
    /// (`kubernetes.io/cluster/<name>=owned` on load balancers, security groups, interfaces and
    /// EBS volumes; `elbv2.k8s.aws/cluster` on what the controller makes), and the tag EKS puts
    /// on what it makes for a cluster (`aws:eks:cluster-name`, e.g. the cluster security group).
    fn leftover_marks(&self, cluster: &str) -> Vec<crate::cloud::teardown::Mark> {
        use crate::cloud::teardown::Mark;
        vec![
            Mark::exactly(format!("kubernetes.io/cluster/{cluster}"), "owned"),
            Mark::exactly("elbv2.k8s.aws/cluster", cluster),
            Mark::exactly("aws:eks:cluster-name", cluster),
        ]
    }

    fn check_tag_key(&self, key: &str) -> Result<(), String> {
        rules::aws_tag(key, 128, true)
    }

    fn check_tag_value(&self, value: &str) -> Result<(), String> {
        rules::aws_tag(value, 256, false)
    }

    fn check_pool_name(&self, name: &str) -> Result<(), String> {
        rules::eks_name(name, 63)
    }

    fn check_cluster_name(&self, name: &str) -> Result<(), String> {
        rules::eks_name(name, 100)
    }

    fn definition(&self, spec: &Spec, pool: &PoolSize) -> ClusterDefinition {
        let b = block(spec);
        build_definition(
            self,
            spec,
            pool,
            CloudParts {
                scope: b.account_id.to_owned(),
                network: NetworkDef {
                    network: None,
                    subnets: b.subnets.to_vec(),
                    secondary_ranges: None,
                },
                control_plane_identity: Some(b.cluster_role.to_owned()),
                // EKS node groups are created once the cluster is active.
                mode: PoolMode::User,
                with_cluster: false,
                node_identity: Some(b.node_role.to_owned()),
                pool_subnets: b.subnets.to_vec(),
                default_image: DEFAULT_AMI_TYPE,
            },
        )
    }

    fn account(&self, spec: &Spec, def: &ClusterDefinition, pool: &PoolSize) -> AccountAsk {
        let b = block(spec);
        let per_node = u64::from(pool.shape.pod_addresses);
        let nodes = def.max_nodes();
        AccountAsk {
            query: AccountQuery {
                subnets: b.subnets.to_vec(),
                identities: vec![
                    IdentityQuery {
                        purpose: "cloud.eks.clusterRoleArn".into(),
                        id: b.cluster_role.to_owned(),
                        trusts: Some("eks.amazonaws.com".into()),
                    },
                    IdentityQuery {
                        purpose: "cloud.eks.nodeRoleArn".into(),
                        id: b.node_role.to_owned(),
                        trusts: Some("ec2.amazonaws.com".into()),
                    },
                ],
                services: Vec::new(),
                quotas: vec![QuotaQuery {
                    code: STANDARD_VCPU_QUOTA.into(),
                    name: STANDARD_VCPU_QUOTA_NAME.into(),
                }],
                secondary_ranges: Vec::new(),
            },
            account: b.account_id.to_owned(),
            account_field: "cloud.eks.accountId",
            subnets_field: "cloud.eks.subnetIds",
            min_zones: 2,
            reserved_per_subnet: CONTROL_PLANE_ADDRESSES_PER_SUBNET,
            addresses: (
                nodes * per_node,
                format!(
                    "{nodes} nodes × {per_node} pod addresses of the VPC CNI (+ {CONTROL_PLANE_ADDRESSES_PER_SUBNET} per subnet for the control plane)"
                ),
            ),
            vcpu: (def.max_vcpu(), vcpu_why(def)),
            kubernetes_version: def.cluster.kubernetes_version.clone(),
            service_fix: "",
        }
    }

    fn credential_renewal(&self) -> CredentialRenewal {
        CredentialRenewal::Session {
            needed: SESSION_NEEDED,
        }
    }

    fn permission_vars(&self, spec: &Spec) -> BTreeMap<&'static str, String> {
        let b = block(spec);
        let partition = b.cluster_role.split(':').nth(1).unwrap_or("aws");
        [
            ("partition", partition.to_owned()),
            ("region", spec.cloud.region.clone()),
            ("account", b.account_id.to_owned()),
            ("cluster", spec.cloud.cluster.name.clone()),
            ("clusterRole", b.cluster_role.to_owned()),
            ("nodeRole", b.node_role.to_owned()),
            ("realm", spec.name.clone()),
        ]
        .into()
    }

    fn policy(&self) -> PolicyDoc {
        PolicyDoc {
            template: "policies/eks-installer.json",
            kind: "IAM policy",
            language: "json",
        }
    }

    fn vpn_host(&self) -> crate::cloud::vpn::def::HostProfile {
        crate::cloud::vpn::def::HostProfile {
            // The newest Amazon Linux 2023 (kernel 6.1, x86_64) owned by Amazon: AMI ids differ
            // per region, so the definition names the image, and the instance records its id.
            image: "amazon/al2023-ami-2023.*-kernel-6.1-x86_64",
            size: "t3.small",
            read_key: "aws secretsmanager get-secret-value --region {location} --secret-id {secret} --query SecretString --output text",
            store: "AWS Secrets Manager; share it with the customer through the secret's resource policy",
            zone: None,
        }
    }

    fn storage_scheme(&self) -> &'static str {
        "s3"
    }
}

/// How the pools' vCPU at their maximum was counted, for people.
pub(super) fn vcpu_why(def: &ClusterDefinition) -> String {
    def.pools
        .iter()
        .map(|p| format!("{} × {} ({} vCPU)", p.nodes.max, p.nodes.shape, p.vcpu))
        .collect::<Vec<_>>()
        .join(" + ")
}
