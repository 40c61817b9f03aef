//! Retries as a decorator around any [`Cloud`]: read-only calls that fail with a retryable kind
//! (throttled, unavailable) are tried again with exponential backoff; creates are never retried
//! here (the engine describes before it creates again, so a retried create can never double).
//! The SDKs' own retries are off, so this is the one retry layer below the engine's step policy.

use std::time::Duration;

use futures::FutureExt;

use super::definition::{ClusterDefinition, PoolDefinition};
use super::facts::{
    AccountFacts, AccountQuery, ClusterFacts, Identity, KubeAccess, KubeToken, NodePoolFacts,
    PermissionFacts, RequiredPermission,
};
use super::{
    AccountInspector, Cloud, CloudError, CloudFuture, ClusterManager, IdentitySource,
    PermissionChecker,
};
use crate::spec::Provider;

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// The first back-off; it doubles per attempt.
    pub base: Duration,
    /// The longest back-off.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The back-off after failed attempt `n` (from 1).
    pub fn delay(&self, n: u32) -> Duration {
        self.base
            .saturating_mul(1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX))
            .min(self.cap)
    }
}

/// A cloud whose read-only calls are retried on throttling and unavailability.
pub struct Retrying<C> {
    inner: C,
    policy: RetryPolicy,
}

impl<C> Retrying<C> {
    /// Wraps `inner`.
    pub fn new(inner: C, policy: RetryPolicy) -> Self {
        Retrying { inner, policy }
    }

    /// The wrapped cloud.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

async fn retry<'a, T, F>(policy: RetryPolicy, mut call: F) -> Result<T, CloudError>
where
    F: FnMut() -> CloudFuture<'a, T>,
{
    let mut n = 1;
    loop {
        match call().await {
            Err(e) if e.kind.retryable() && n < policy.attempts => {
                // Never sooner than the cloud asked (`Retry-After`).
                let asked = e.retry_after.unwrap_or_default();
                tokio::time::sleep(policy.delay(n).max(asked)).await;
                n += 1;
            }
            other => return other,
        }
    }
}

impl<C: IdentitySource> IdentitySource for Retrying<C> {
    fn identity(&self) -> CloudFuture<'_, Identity> {
        retry(self.policy, || self.inner.identity()).boxed()
    }
}

impl<C: AccountInspector> AccountInspector for Retrying<C> {
    fn account<'a>(&'a self, q: &'a AccountQuery) -> CloudFuture<'a, AccountFacts> {
        retry(self.policy, move || self.inner.account(q)).boxed()
    }
}

impl<C: PermissionChecker> PermissionChecker for Retrying<C> {
    fn missing_permissions<'a>(
        &'a self,
        required: &'a [RequiredPermission],
    ) -> CloudFuture<'a, PermissionFacts> {
        retry(self.policy, move || {
            self.inner.missing_permissions(required)
        })
        .boxed()
    }
}

impl<C: ClusterManager> ClusterManager for Retrying<C> {
    fn cluster<'a>(&'a self, name: &'a str) -> CloudFuture<'a, Option<ClusterFacts>> {
        retry(self.policy, move || self.inner.cluster(name)).boxed()
    }

    fn create_cluster<'a>(&'a self, def: &'a ClusterDefinition) -> CloudFuture<'a, ()> {
        self.inner.create_cluster(def)
    }

    fn node_pool<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, Option<NodePoolFacts>> {
        retry(self.policy, move || self.inner.node_pool(cluster, name)).boxed()
    }

    fn create_node_pool<'a>(
        &'a self,
        def: &'a ClusterDefinition,
        pool: &'a PoolDefinition,
    ) -> CloudFuture<'a, ()> {
        self.inner.create_node_pool(def, pool)
    }

    fn upgrade_cluster<'a>(&'a self, def: &'a ClusterDefinition) -> CloudFuture<'a, ()> {
        self.inner.upgrade_cluster(def)
    }

    fn upgrade_node_pool<'a>(
        &'a self,
        def: &'a ClusterDefinition,
        pool: &'a PoolDefinition,
    ) -> CloudFuture<'a, ()> {
        self.inner.upgrade_node_pool(def, pool)
    }

    fn kube_access<'a>(&'a self, cluster: &'a ClusterFacts) -> CloudFuture<'a, KubeAccess> {
        retry(self.policy, move || self.inner.kube_access(cluster)).boxed()
    }

    fn kube_token<'a>(&'a self, cluster: &'a ClusterFacts) -> CloudFuture<'a, KubeToken> {
        retry(self.policy, move || self.inner.kube_token(cluster)).boxed()
    }
}

impl<C: super::VpnManager> super::VpnManager for Retrying<C> {
    fn vpn_part<'a>(
        &'a self,
        def: &'a super::vpn::VpnDef,
        part: super::vpn::VpnPart,
        built: &'a super::vpn::Built,
    ) -> CloudFuture<'a, Option<super::vpn::PartFacts>> {
        retry(self.policy, move || self.inner.vpn_part(def, part, built)).boxed()
    }

    fn build_vpn_part<'a>(
        &'a self,
        def: &'a super::vpn::VpnDef,
        part: super::vpn::VpnPart,
        built: &'a super::vpn::Built,
        with: &'a super::vpn::BuildInputs<'a>,
    ) -> CloudFuture<'a, ()> {
        self.inner.build_vpn_part(def, part, built, with)
    }

    fn delete_vpn_part<'a>(
        &'a self,
        def: &'a super::vpn::VpnDef,
        part: super::vpn::VpnPart,
        facts: &'a super::vpn::PartFacts,
    ) -> CloudFuture<'a, ()> {
        self.inner.delete_vpn_part(def, part, facts)
    }

    fn vpn_key<'a>(
        &'a self,
        def: &'a super::vpn::VpnDef,
    ) -> CloudFuture<'a, crate::secret::Secret> {
        retry(self.policy, move || self.inner.vpn_key(def)).boxed()
    }
}

impl<C: super::teardown::Teardown> super::teardown::Teardown for Retrying<C> {
    fn leftovers<'a>(
        &'a self,
        kind: super::teardown::ResourceKind,
        query: &'a super::teardown::SweepQuery,
    ) -> CloudFuture<'a, Vec<super::teardown::Found>> {
        retry(self.policy, move || self.inner.leftovers(kind, query)).boxed()
    }

    /// Deletes are changes: never retried here (the sweep and the step policy decide).
    fn delete<'a>(&'a self, found: &'a super::teardown::Found) -> CloudFuture<'a, ()> {
        self.inner.delete(found)
    }
}

impl<C: Cloud> Cloud for Retrying<C> {
    fn provider(&self) -> Provider {
        self.inner.provider()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn storage_credentials(&self) -> CloudFuture<'_, Option<super::StorageCredentials>> {
        retry(self.policy, || self.inner.storage_credentials()).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::CloudErrorKind;
    use crate::cloud::testing::FakeCloud;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn retryable_reads_are_retried_until_they_succeed_or_attempts_run_out() {
        let fake = FakeCloud::default();
        fake.fail_next("cluster", CloudErrorKind::Throttled, 2);
        let c = Retrying::new(fake, fast());
        assert!(c.cluster("x").await.unwrap().is_none());
        assert_eq!(c.inner().calls("cluster"), 3);
        c.inner()
            .fail_next("cluster", CloudErrorKind::Unavailable, 5);
        let e = c.cluster("x").await.unwrap_err();
        assert_eq!(e.kind, CloudErrorKind::Unavailable);
        assert_eq!(
            c.inner().calls("cluster"),
            6,
            "three more attempts, then the error"
        );
    }

    #[tokio::test]
    async fn permanent_errors_and_creates_are_not_retried() {
        let fake = FakeCloud::default();
        fake.fail_next("cluster", CloudErrorKind::AccessDenied, 1);
        let c = Retrying::new(fake, fast());
        assert_eq!(
            c.cluster("x").await.unwrap_err().kind,
            CloudErrorKind::AccessDenied
        );
        assert_eq!(c.inner().calls("cluster"), 1);
        c.inner()
            .fail_next("create_cluster", CloudErrorKind::Throttled, 1);
        let def = crate::cloud::definition::tests::sample();
        assert_eq!(
            c.create_cluster(&def).await.unwrap_err().kind,
            CloudErrorKind::Throttled
        );
        assert_eq!(c.inner().calls("create_cluster"), 1);
    }

    #[test]
    fn back_off_doubles_to_the_cap() {
        let p = RetryPolicy::default();
        let d: Vec<_> = (1..=6).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(d, [500, 1000, 2000, 4000, 8000, 8000]);
    }
}
