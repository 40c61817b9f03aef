//! What a cloud provider tells the engine, in provider-neutral shapes (AWS account, Azure
//! subscription or Google project; subnets; roles; clusters and node pools). Providers only
//! gather these facts; what they mean is decided by [`super::judge`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Who the install runs as, and where its credentials came from (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The principal, e.g. `arn:aws:sts::123456789012:assumed-role/Installer/ann`.
    pub principal: String,
    /// The principal whose policies decide its permissions (for an assumed role: the role).
    pub policy_subject: String,
    /// Account, subscription or project.
    pub account: String,
    /// Which source of the cloud's standard chain gave the credentials (e.g. `Environment`,
    /// `ProfileFile`, `WebIdentityToken`, `IMDSv2`).
    pub source: String,
    /// When temporary credentials expire; `None` for long-lived ones.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A fact a cloud may not be able to give (an API this endpoint lacks, a missing quota).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "value")]
pub enum Lookup<T> {
    /// Known.
    Found(T),
    /// Not known, and why.
    Unknown(String),
}

/// One subnet (or Azure subnet, Google subnetwork).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetFacts {
    /// Its id.
    pub id: String,
    /// The network it belongs to (VPC, VNet).
    pub network: String,
    /// Its availability zone.
    pub zone: String,
    /// Free addresses.
    pub free_addresses: u64,
}

/// A role the install hands to the cloud (cluster role, node role).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleFacts {
    /// What the spec calls it (`cloud.eks.clusterRoleArn`).
    pub purpose: String,
    /// Its id as written in the spec.
    pub id: String,
    /// Whether it exists.
    pub exists: bool,
    /// The services allowed to assume it (`eks.amazonaws.com`, `ec2.amazonaws.com`).
    pub trusted_services: Vec<String>,
}

/// What `cloud.account` asks the cloud about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountQuery {
    /// The subnets the spec names.
    pub subnets: Vec<String>,
    /// The roles the spec names: (purpose, id).
    pub roles: Vec<(String, String)>,
}

/// Facts about the account and region.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountFacts {
    /// The account the credentials belong to.
    pub account: String,
    /// The subnets found (those not found are absent).
    pub subnets: Vec<SubnetFacts>,
    /// The roles.
    pub roles: Vec<RoleFacts>,
    /// The Kubernetes versions the managed service offers in the region.
    pub versions: Lookup<Vec<String>>,
    /// The regional vCPU quota for the worker shapes.
    pub vcpu_quota: Lookup<f64>,
}

/// One permission to check: an action on a resource, with the request context a policy
/// condition may test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequiredPermission {
    /// The action, e.g. `eks:CreateCluster`.
    pub action: String,
    /// The resource, e.g. the cluster's ARN (`*` for actions without resource-level control).
    pub resource: String,
    /// Condition context: key → values.
    pub context: BTreeMap<String, Vec<String>>,
}

/// What the permission check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionFacts {
    /// The principal checked.
    pub principal: String,
    /// The permissions it lacks (action and resource), in the order asked.
    pub missing: Vec<RequiredPermission>,
    /// How many were checked.
    pub checked: usize,
}

/// Where a cluster or node pool stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "detail")]
pub enum Status {
    /// Being created.
    Creating,
    /// Ready.
    Active,
    /// Being changed.
    Updating,
    /// Being deleted.
    Deleting,
    /// Creation failed; the cloud's reason.
    Failed(String),
    /// Anything else the cloud says.
    Other(String),
}

/// The cluster the install wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDef {
    /// Name.
    pub name: String,
    /// `MAJOR.MINOR`.
    pub kubernetes_version: String,
    /// Subnets (or the provider's network reference).
    pub subnets: Vec<String>,
    /// The role the control plane runs as.
    pub role: String,
    /// Tags (labels) every resource carries.
    pub tags: BTreeMap<String, String>,
}

/// A cluster as the cloud reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterFacts {
    /// Name.
    pub name: String,
    /// The cloud's id for it (ARN, resource id).
    pub id: String,
    /// Where it stands.
    pub status: Status,
    /// `MAJOR.MINOR`.
    pub kubernetes_version: String,
    /// Subnets.
    pub subnets: Vec<String>,
    /// Control-plane role.
    pub role: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// API server URL, once known.
    pub endpoint: Option<String>,
    /// The API server's CA bundle (base64 PEM), once known.
    pub certificate_authority: Option<String>,
}

/// The node image of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "type", content = "image")]
pub enum NodeImageDef {
    /// The managed service's default image.
    Default,
    /// A customer-supplied image (its id).
    Custom(String),
}

/// The node pool the install wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolDef {
    /// Name.
    pub name: String,
    /// The role its nodes run as.
    pub role: String,
    /// Subnets.
    pub subnets: Vec<String>,
    /// Instance type, VM size or machine type.
    pub shape: String,
    /// Fewest nodes.
    pub min: u32,
    /// Nodes to start with.
    pub desired: u32,
    /// Most nodes.
    pub max: u32,
    /// Node image.
    pub image: NodeImageDef,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// A node pool as the cloud reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolFacts {
    /// Name.
    pub name: String,
    /// Where it stands.
    pub status: Status,
    /// Shape.
    pub shape: String,
    /// Node role.
    pub role: String,
    /// Scaling.
    pub min: u32,
    /// Scaling.
    pub desired: u32,
    /// Scaling.
    pub max: u32,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// How `kubectl` reaches a cluster without a stored token: the API server, its CA, and the
/// command that prints a short-lived token (client-go's exec credential plugin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeAccess {
    /// Cluster name (the kubeconfig's cluster, user and context name).
    pub name: String,
    /// API server URL.
    pub server: String,
    /// CA bundle, base64 PEM.
    pub certificate_authority: String,
    /// The token command.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment it needs (names and values; never a secret).
    pub env: BTreeMap<String, String>,
}
