//! The provider layer: what the install needs from a cloud, split three ways.
//!
//! - **Profiles** ([`profile`]): what a cloud *is* — names and naming rules, ownership tags,
//!   the one cluster definition it builds from a spec ([`definition`]), what the account step
//!   asks and expects, how credentials expire, the permissions and least-privilege document.
//!   Pure data and functions, no SDK: `plan`, `validate` and rendering work offline.
//! - **Clients**: how to talk to it, behind the narrow async traits below, one folder per cloud
//!   behind its own cargo feature (`eks/`, `aks/`, `gke/`). SDK types never leave their folder.
//! - **Stand-ins**: loopback servers that follow each cloud's published wire protocol, in their
//!   own crate (`crates/standins`); nothing here depends on them.
//!
//! Clients only gather facts ([`facts`]) and carry out the few changes the install makes
//! (create a cluster with its initial pools, create a node pool). What the facts mean — is the
//! quota enough, which permission is missing, who must fix it, create or adopt or refuse — is
//! decided by pure functions ([`judge`], [`permissions`], [`sizing`], [`poll`]) with the
//! profile's rules; the engine and `preflight --only access` share them. Cloud errors are
//! classified into kinds ([`error`]) by each client from codes and HTTP statuses. Shared code
//! never matches on the provider: [`profile::for_provider`] picks the profile, and the CLI's
//! registry picks the client.

pub mod access;
pub mod definition;
pub mod error;
pub mod facts;
pub mod guard;
pub mod judge;
pub mod permissions;
pub mod poll;
pub mod profile;
pub mod retry;
pub mod sizing;
pub mod teardown;
#[cfg(test)]
pub(crate) mod testing;
pub mod vpn;

#[cfg(feature = "aks")]
pub mod aks;
#[cfg(feature = "eks")]
pub mod eks;
#[cfg(feature = "gke")]
pub mod gke;

use futures::future::BoxFuture;

use definition::{ClusterDefinition, PoolDefinition};
pub use error::{CloudError, CloudErrorKind};
use facts::{
    AccountFacts, AccountQuery, ClusterFacts, Identity, KubeAccess, KubeToken, NodePoolFacts,
    PermissionFacts, RequiredPermission,
};

use crate::spec::Provider;
use vpn::{PartFacts, VpnDef, VpnPart};

/// A cloud call's future.
pub type CloudFuture<'a, T> = BoxFuture<'a, Result<T, CloudError>>;

/// Who the install runs as and where its credentials come from.
pub trait IdentitySource: Send + Sync {
    /// The caller's identity (one call; never the secret).
    fn identity(&self) -> CloudFuture<'_, Identity>;
}

/// Facts about the account, subscription or project and the region the spec names.
pub trait AccountInspector: Send + Sync {
    /// The account, its subnets, identities, services, offered Kubernetes versions and quotas,
    /// as the profile's query asks.
    fn account<'a>(&'a self, query: &'a AccountQuery) -> CloudFuture<'a, AccountFacts>;
}

/// Which of the install's permissions the caller lacks.
pub trait PermissionChecker: Send + Sync {
    /// Checks `required` for the caller's own identity (for an assumed AWS role: the role's
    /// policies; Azure: its permissions at each scope; Google: `testIamPermissions`).
    fn missing_permissions<'a>(
        &'a self,
        required: &'a [RequiredPermission],
    ) -> CloudFuture<'a, PermissionFacts>;
}

/// Clusters and node pools: describe, create, and upgrade one Kubernetes minor (never any other
/// change; deleting is [`teardown::Teardown`]'s, for `destroy` alone).
pub trait ClusterManager: Send + Sync {
    /// The cluster called `name`, if there is one.
    fn cluster<'a>(&'a self, name: &'a str) -> CloudFuture<'a, Option<ClusterFacts>>;
    /// Creates the cluster of `def` with the pools the cloud creates with it
    /// ([`ClusterDefinition::initial_pools`]); the engine checked there is none. A cloud whose
    /// create call may overwrite (ARM's PUT) must make it create-only.
    fn create_cluster<'a>(&'a self, def: &'a ClusterDefinition) -> CloudFuture<'a, ()>;
    /// The node pool `name` of `cluster`, if there is one.
    fn node_pool<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, Option<NodePoolFacts>>;
    /// Creates `pool` of the cluster of `def` (the engine checked there is none).
    fn create_node_pool<'a>(
        &'a self,
        def: &'a ClusterDefinition,
        pool: &'a PoolDefinition,
    ) -> CloudFuture<'a, ()>;
    /// Upgrades the control plane of the cluster of `def` to `def`'s Kubernetes version; only
    /// the version changes (the `upgrade` workflow judged the rest equal to `def` and checked
    /// the version skew rules first). The cloud may still be upgrading when this returns.
    fn upgrade_cluster<'a>(&'a self, def: &'a ClusterDefinition) -> CloudFuture<'a, ()>;
    /// Upgrades the nodes of `pool` to `def`'s Kubernetes version (after the control plane).
    fn upgrade_node_pool<'a>(
        &'a self,
        def: &'a ClusterDefinition,
        pool: &'a PoolDefinition,
    ) -> CloudFuture<'a, ()>;
    /// How `kubectl` reaches an active cluster with a short-lived token (a cloud may need a
    /// call for it).
    fn kube_access<'a>(&'a self, cluster: &'a ClusterFacts) -> CloudFuture<'a, KubeAccess>;
    /// A bearer token for the cluster's API server from this provider's own credential chain,
    /// made in-process (EKS: the presigned STS `GetCallerIdentity` token `aws eks get-token`
    /// makes; AKS: an Entra token for the AKS server application; GKE: the ADC access token),
    /// so no `aws`, `kubelogin` or `gke-gcloud-auth-plugin` is needed. Never logged or stored.
    fn kube_token<'a>(&'a self, cluster: &'a ClusterFacts) -> CloudFuture<'a, KubeToken>;
}

/// The realm's VPN instance, part by part (issue #23): describe, create, finish what this
/// realm started on its own resource, and read the key for the one-time reveal. A client that
/// does not build it yet keeps the defaults, which say so ([`CloudErrorKind::Unsupported`]).
pub trait VpnManager: Send + Sync {
    /// `part` of the VPN of `def` as the cloud has it; `built` holds the parts before it.
    fn vpn_part<'a>(
        &'a self,
        def: &'a VpnDef,
        part: VpnPart,
        built: &'a vpn::Built,
    ) -> CloudFuture<'a, Option<PartFacts>> {
        let _ = (def, built);
        Box::pin(async move { Err(vpn_unsupported(part)) })
    }
    /// Creates `part` (absent), or finishes it (this realm's, with [`vpn::PartDecision::Finish`]
    /// work left): only what is missing is done.
    fn build_vpn_part<'a>(
        &'a self,
        def: &'a VpnDef,
        part: VpnPart,
        built: &'a vpn::Built,
        with: &'a vpn::BuildInputs<'a>,
    ) -> CloudFuture<'a, ()> {
        let _ = (def, built, with);
        Box::pin(async move { Err(vpn_unsupported(part)) })
    }
    /// Deletes `part` as `facts` describe it (`destroy`, issue #20): for the routes, only those
    /// through this realm's instance; deleting what is already gone succeeds.
    fn delete_vpn_part<'a>(
        &'a self,
        def: &'a VpnDef,
        part: VpnPart,
        facts: &'a PartFacts,
    ) -> CloudFuture<'a, ()> {
        let _ = (def, facts);
        Box::pin(async move { Err(vpn_unsupported(part)) })
    }
    /// The pre-shared key, read from the secret store (for the one-time reveal only).
    fn vpn_key<'a>(&'a self, def: &'a VpnDef) -> CloudFuture<'a, crate::secret::Secret> {
        let _ = def;
        Box::pin(async move { Err(vpn_unsupported(VpnPart::Secret)) })
    }
}

fn vpn_unsupported(part: VpnPart) -> CloudError {
    CloudError::new(
        CloudErrorKind::Unsupported,
        format!("vpn:{part}"),
        "this build's client of the realm's cloud does not build the realm VPN instance yet (issue #23)",
    )
}

/// Credentials for the realm's object storage, taken from the same chain as the cloud calls so
/// that artifacts are written by the same identity (never logged, never stored). One variant
/// per kind of store; a cloud's client gives the kind its object storage takes.
pub enum StorageCredentials {
    /// AWS keys for S3.
    Aws {
        /// Access key id.
        key_id: String,
        /// Secret access key.
        secret: crate::secret::Secret,
        /// Session token of temporary credentials.
        token: Option<crate::secret::Secret>,
    },
    /// An Entra ID access token for Azure Storage (`https://storage.azure.com`).
    AzureBearer {
        /// The token.
        token: crate::secret::Secret,
    },
    /// A Google OAuth access token (scope `cloud-platform`) for Cloud Storage.
    GoogleBearer {
        /// The token.
        token: crate::secret::Secret,
    },
}

/// A cloud provider: everything the install needs from one cloud.
pub trait Cloud:
    IdentitySource
    + AccountInspector
    + PermissionChecker
    + ClusterManager
    + VpnManager
    + teardown::Teardown
{
    /// Which cloud.
    fn provider(&self) -> Provider;
    /// Where it talks to, for people (region and endpoint; no secret).
    fn describe(&self) -> String;
    /// The credentials of this provider's chain for the realm's object storage (the bucket
    /// scheme its profile names: S3 for EKS, Azure Blob for AKS), if it can give them.
    fn storage_credentials(&self) -> CloudFuture<'_, Option<StorageCredentials>> {
        Box::pin(async { Ok(None) })
    }
}
