//! The provider layer: what the install needs from a cloud, as narrow async traits, with one
//! folder per cloud behind its own cargo feature (`eks` today; `aks` and `gke` plug in the same
//! way).
//!
//! Providers only gather facts ([`facts`]) and carry out the few changes the install makes
//! (create a cluster, create a node pool). What the facts mean — is the quota enough, which
//! permission is missing, who must fix it, create or adopt or refuse — is decided by pure
//! functions ([`judge`], [`permissions`], [`sizing`], [`poll`]) that the engine and
//! `preflight --only access` share. Cloud errors are classified into kinds ([`error`]) by each
//! provider from the SDK's codes and HTTP statuses. SDK types never leave a provider's folder.

pub mod access;
pub mod error;
pub mod facts;
pub mod judge;
pub mod permissions;
pub mod poll;
pub mod retry;
pub mod sizing;
#[cfg(test)]
pub(crate) mod testing;

#[cfg(feature = "eks")]
pub mod eks;

use futures::future::BoxFuture;

pub use error::{CloudError, CloudErrorKind};
use facts::{
    AccountFacts, AccountQuery, ClusterDef, ClusterFacts, Identity, KubeAccess, NodePoolDef,
    NodePoolFacts, PermissionFacts, RequiredPermission,
};

use crate::spec::Provider;

/// A cloud call's future.
pub type CloudFuture<'a, T> = BoxFuture<'a, Result<T, CloudError>>;

/// Who the install runs as and where its credentials come from.
pub trait IdentitySource: Send + Sync {
    /// The caller's identity (one call; never the secret).
    fn identity(&self) -> CloudFuture<'_, Identity>;
}

/// Facts about the account, subscription or project and the region the spec names.
pub trait AccountInspector: Send + Sync {
    /// The account, its subnets, roles, offered Kubernetes versions and vCPU quota.
    fn account<'a>(&'a self, query: &'a AccountQuery) -> CloudFuture<'a, AccountFacts>;
}

/// Which of the install's permissions an identity lacks.
pub trait PermissionChecker: Send + Sync {
    /// Checks `required` for the principal `subject` (an identity's policy subject).
    fn missing_permissions<'a>(
        &'a self,
        subject: &'a str,
        required: &'a [RequiredPermission],
    ) -> CloudFuture<'a, PermissionFacts>;
}

/// Clusters and node pools: describe, create (never change or delete).
pub trait ClusterManager: Send + Sync {
    /// The cluster called `name`, if there is one.
    fn cluster<'a>(&'a self, name: &'a str) -> CloudFuture<'a, Option<ClusterFacts>>;
    /// Creates a cluster (the engine checked there is none).
    fn create_cluster<'a>(&'a self, def: &'a ClusterDef) -> CloudFuture<'a, ()>;
    /// The node pool `name` of `cluster`, if there is one.
    fn node_pool<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, Option<NodePoolFacts>>;
    /// Creates a node pool (the engine checked there is none).
    fn create_node_pool<'a>(
        &'a self,
        cluster: &'a str,
        def: &'a NodePoolDef,
    ) -> CloudFuture<'a, ()>;
    /// How `kubectl` reaches an active cluster with a short-lived token.
    fn kube_access(&self, cluster: &ClusterFacts) -> Result<KubeAccess, CloudError>;
}

/// Credentials for the realm's object storage, taken from the same chain as the cloud calls so
/// that artifacts are written by the same identity (never logged, never stored).
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
}

/// A cloud provider: everything the install needs from one cloud.
pub trait Cloud: IdentitySource + AccountInspector + PermissionChecker + ClusterManager {
    /// Which cloud.
    fn provider(&self) -> Provider;
    /// Where it talks to, for people (region and endpoint; no secret).
    fn describe(&self) -> String;
    /// The credentials of this provider's chain for the realm's object storage, if it has a
    /// store of its own cloud (S3 for EKS).
    fn storage_credentials(&self) -> CloudFuture<'_, Option<StorageCredentials>> {
        Box::pin(async { Ok(None) })
    }
}

/// The tag (label) key that marks resources as created by realmctl for a realm, per cloud
/// (GKE labels allow neither dots nor slashes).
pub fn realm_tag_key(provider: Provider) -> &'static str {
    match provider {
        Provider::Eks | Provider::Aks => "realmctl.digibee.com/realm",
        Provider::Gke => "realmctl-realm",
    }
}

/// The tags every resource of `realm` carries.
pub fn realm_tags(provider: Provider, realm: &str) -> std::collections::BTreeMap<String, String> {
    let managed_by = match provider {
        Provider::Eks | Provider::Aks => "realmctl.digibee.com/managed-by",
        Provider::Gke => "realmctl-managed-by",
    };
    [
        (realm_tag_key(provider).to_owned(), realm.to_owned()),
        (managed_by.to_owned(), "realmctl".to_owned()),
    ]
    .into_iter()
    .collect()
}
