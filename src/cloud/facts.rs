//! What a cloud provider tells the engine, in provider-neutral shapes (AWS account, Azure
//! subscription or Google project; subnets; identities; services; quotas; clusters and node
//! pools). Providers only gather these facts; what they mean is decided by [`super::judge`]
//! with the rules of the cloud's profile ([`super::profile`]). Nothing here is shaped after one
//! cloud: a zone is optional (Azure and Google subnets are regional), quotas and services are
//! lists the profile asks for.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::definition::{ClusterShape, PoolShape};

/// Who the install runs as, and where its credentials came from (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The principal, e.g. `arn:aws:sts::123456789012:assumed-role/Installer/ann`, an Entra
    /// object id, a service account's e-mail.
    pub principal: String,
    /// Account, subscription or project the credentials belong to.
    pub account: String,
    /// Which source of the cloud's standard chain gave the credentials (e.g. `Environment`,
    /// `ProfileFile`, `WebIdentityToken`, `IMDSv2`).
    pub source: String,
    /// When the current credentials expire; `None` for long-lived ones.
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
    /// The network it belongs to (VPC, VNet, VPC network).
    pub network: String,
    /// Its availability zone; `None` where subnets are regional (Azure, Google).
    pub zone: Option<String>,
    /// Free addresses.
    pub free_addresses: u64,
    /// The names of its secondary ranges (Google subnetworks; empty elsewhere).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secondary_ranges: Vec<String>,
}

/// An identity the spec names for the cloud to use (an IAM role, a managed identity, a node
/// service account), as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityQuery {
    /// The spec field that names it (`cloud.eks.clusterRoleArn`).
    pub purpose: String,
    /// Its id as written in the spec.
    pub id: String,
    /// The service that must be allowed to act as it (`eks.amazonaws.com`), where the cloud
    /// has such a trust relation.
    pub trusts: Option<String>,
}

/// An identity the install hands to the cloud, as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityFacts {
    /// The spec field that names it.
    pub purpose: String,
    /// Its id as written in the spec.
    pub id: String,
    /// Whether it exists.
    pub exists: bool,
    /// The services allowed to act as it (`eks.amazonaws.com`, `ec2.amazonaws.com`).
    pub trusted_services: Vec<String>,
}

/// A quota the install counts against, as asked: the cloud's code and its name for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaQuery {
    /// The cloud's code (`L-1216C47A`, `standardDSv5Family`, `CPUS`).
    pub code: String,
    /// Its name for people (what the customer asks to raise).
    pub name: String,
}

/// A quota's limit and what is used of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaFacts {
    /// The cloud's code.
    pub code: String,
    /// The limit, in vCPU.
    pub limit: Lookup<f64>,
    /// What is in use now, where the cloud reports it with the limit.
    pub usage: Option<f64>,
}

/// A service (AWS service, Azure resource provider, Google API) and whether the account has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceFacts {
    /// Its name (`Microsoft.ContainerService`, `container.googleapis.com`).
    pub name: String,
    /// Whether it is registered or enabled.
    pub enabled: Lookup<bool>,
}

/// What `cloud.account` asks the cloud about (built by the cloud's profile from the spec).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountQuery {
    /// The subnets the spec names.
    pub subnets: Vec<String>,
    /// The identities the spec names.
    pub identities: Vec<IdentityQuery>,
    /// The services the install needs enabled.
    pub services: Vec<String>,
    /// The quotas the node pools count against.
    pub quotas: Vec<QuotaQuery>,
    /// The secondary ranges the definition takes from the subnets, by name (GKE's pod and
    /// Service ranges); empty when it takes none.
    pub secondary_ranges: Vec<String>,
}

/// Facts about the account and region.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountFacts {
    /// The account the credentials belong to.
    pub account: String,
    /// The subnets found (those not found are absent).
    pub subnets: Vec<SubnetFacts>,
    /// The identities.
    pub identities: Vec<IdentityFacts>,
    /// The services asked about.
    pub services: Vec<ServiceFacts>,
    /// The Kubernetes versions (`MAJOR.MINOR`) the managed service offers in the region.
    pub versions: Lookup<Vec<String>>,
    /// The quotas asked about.
    pub quotas: Vec<QuotaFacts>,
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
    /// The principal whose permissions were evaluated (for an assumed AWS role: the role).
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

/// A cluster as the cloud reports it: where it stands, how to reach it, and its fields in the
/// definition's terms (judged by [`super::definition::compare_cluster`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterFacts {
    /// The cloud's id for it (ARN, resource id).
    pub id: String,
    /// Where it stands.
    pub status: Status,
    /// Its fields.
    pub described: ClusterShape,
    /// API server URL, once known.
    pub endpoint: Option<String>,
    /// The API server's CA bundle (base64 PEM), once known.
    pub certificate_authority: Option<String>,
}

impl ClusterFacts {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.described.name
    }
}

/// A node pool as the cloud reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolFacts {
    /// Where it stands.
    pub status: Status,
    /// Its fields.
    pub described: PoolShape,
    /// The Kubernetes `MAJOR.MINOR` its nodes run (a pool may lag its control plane during an
    /// upgrade, never lead it); not a field of the definition, whose pools follow the cluster.
    pub version: String,
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

/// A bearer token for a cluster's API server ([`super::ClusterManager::kube_token`]).
pub struct KubeToken {
    /// The token.
    pub token: crate::secret::Secret,
    /// When it stops working, if the provider says (a client asks again before then).
    pub expires: Option<std::time::SystemTime>,
}
