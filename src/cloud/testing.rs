//! A fake [`Cloud`] of our own traits for unit tests: in-memory clusters and node pools that
//! become active after a number of polls, injectable failures per call, call counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures::FutureExt;

use super::facts::{
    AccountFacts, AccountQuery, ClusterDef, ClusterFacts, Identity, KubeAccess, Lookup,
    NodePoolDef, NodePoolFacts, PermissionFacts, RequiredPermission, Status,
};
use super::{
    AccountInspector, Cloud, CloudError, CloudErrorKind, CloudFuture, ClusterManager,
    IdentitySource, PermissionChecker,
};
use crate::spec::Provider;

#[derive(Default)]
struct Inner {
    calls: HashMap<&'static str, usize>,
    failures: HashMap<&'static str, (CloudErrorKind, usize)>,
    clusters: BTreeMap<String, (ClusterFacts, u32)>,
    pools: BTreeMap<(String, String), (NodePoolFacts, u32)>,
    denied: Vec<String>,
}

/// The fake.
pub struct FakeCloud {
    inner: Mutex<Inner>,
    /// Describes before a created cluster or pool turns active.
    pub ready_after: u32,
    /// The identity it reports.
    pub identity: Identity,
}

impl Default for FakeCloud {
    fn default() -> Self {
        FakeCloud {
            inner: Mutex::default(),
            ready_after: 0,
            identity: Identity {
                principal: "arn:aws:sts::123456789012:assumed-role/Installer/test".into(),
                policy_subject: "arn:aws:iam::123456789012:role/Installer".into(),
                account: "123456789012".into(),
                source: "explicit credentials".into(),
                expires_at: None,
            },
        }
    }
}

/// A cluster definition for tests.
pub fn cluster_def(name: &str) -> ClusterDef {
    ClusterDef {
        name: name.into(),
        kubernetes_version: "1.31".into(),
        subnets: vec!["subnet-a".into(), "subnet-b".into()],
        role: "arn:aws:iam::123456789012:role/c".into(),
        tags: super::realm_tags(Provider::Eks, "acme"),
    }
}

impl FakeCloud {
    /// A fake whose creations turn active after `polls` describes.
    pub fn ready_after(polls: u32) -> Self {
        FakeCloud {
            ready_after: polls,
            ..FakeCloud::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `n` calls of `op` fail with `kind`.
    pub fn fail_next(&self, op: &'static str, kind: CloudErrorKind, n: usize) {
        self.lock().failures.insert(op, (kind, n));
    }

    /// How often `op` was called.
    pub fn calls(&self, op: &'static str) -> usize {
        self.lock().calls.get(op).copied().unwrap_or(0)
    }

    /// The principal lacks `action`.
    pub fn deny(&self, action: &str) {
        self.lock().denied.push(action.into());
    }

    /// Puts a cluster there as if someone else had created it.
    pub fn insert_cluster(&self, c: ClusterFacts) {
        self.lock().clusters.insert(c.name.clone(), (c, 0));
    }

    /// The clusters there are.
    pub fn cluster_names(&self) -> Vec<String> {
        self.lock().clusters.keys().cloned().collect()
    }

    /// The node pools there are, as `cluster/pool`.
    pub fn pool_names(&self) -> Vec<String> {
        self.lock()
            .pools
            .keys()
            .map(|(c, p)| format!("{c}/{p}"))
            .collect()
    }

    fn enter(&self, op: &'static str) -> Result<(), CloudError> {
        let mut g = self.lock();
        *g.calls.entry(op).or_insert(0) += 1;
        if let Some((kind, n)) = g.failures.get_mut(op)
            && *n > 0
        {
            *n -= 1;
            return Err(CloudError::new(*kind, op, "injected failure"));
        }
        Ok(())
    }
}

impl IdentitySource for FakeCloud {
    fn identity(&self) -> CloudFuture<'_, Identity> {
        async move {
            self.enter("identity")?;
            Ok(self.identity.clone())
        }
        .boxed()
    }
}

impl AccountInspector for FakeCloud {
    fn account<'a>(&'a self, q: &'a AccountQuery) -> CloudFuture<'a, AccountFacts> {
        async move {
            self.enter("account")?;
            Ok(AccountFacts {
                account: self.identity.account.clone(),
                subnets: q
                    .subnets
                    .iter()
                    .enumerate()
                    .map(|(i, id)| super::facts::SubnetFacts {
                        id: id.clone(),
                        network: "vpc-1".into(),
                        zone: format!("zone-{i}"),
                        free_addresses: 4000,
                    })
                    .collect(),
                roles: q
                    .roles
                    .iter()
                    .map(|(purpose, id)| super::facts::RoleFacts {
                        purpose: purpose.clone(),
                        id: id.clone(),
                        exists: true,
                        trusted_services: vec![
                            "eks.amazonaws.com".into(),
                            "ec2.amazonaws.com".into(),
                        ],
                    })
                    .collect(),
                versions: Lookup::Found(vec!["1.30".into(), "1.31".into()]),
                vcpu_quota: Lookup::Found(1000.0),
            })
        }
        .boxed()
    }
}

impl PermissionChecker for FakeCloud {
    fn missing_permissions<'a>(
        &'a self,
        subject: &'a str,
        required: &'a [RequiredPermission],
    ) -> CloudFuture<'a, PermissionFacts> {
        async move {
            self.enter("missing_permissions")?;
            let denied = self.lock().denied.clone();
            Ok(PermissionFacts {
                principal: subject.into(),
                missing: required
                    .iter()
                    .filter(|p| denied.contains(&p.action))
                    .cloned()
                    .collect(),
                checked: required.len(),
            })
        }
        .boxed()
    }
}

impl ClusterManager for FakeCloud {
    fn cluster<'a>(&'a self, name: &'a str) -> CloudFuture<'a, Option<ClusterFacts>> {
        async move {
            self.enter("cluster")?;
            let mut g = self.lock();
            Ok(g.clusters.get_mut(name).map(|(c, polls)| {
                *polls += 1;
                if c.status == Status::Creating && *polls > self.ready_after {
                    c.status = Status::Active;
                    c.endpoint = Some("https://127.0.0.1:6443".into());
                    c.certificate_authority = Some("Q0E=".into());
                }
                c.clone()
            }))
        }
        .boxed()
    }

    fn create_cluster<'a>(&'a self, def: &'a ClusterDef) -> CloudFuture<'a, ()> {
        async move {
            self.enter("create_cluster")?;
            let mut g = self.lock();
            if g.clusters.contains_key(&def.name) {
                return Err(CloudError::new(
                    CloudErrorKind::Conflict,
                    "create_cluster",
                    "exists",
                ));
            }
            g.clusters.insert(
                def.name.clone(),
                (
                    ClusterFacts {
                        name: def.name.clone(),
                        id: format!("arn:fake:cluster/{}", def.name),
                        status: Status::Creating,
                        kubernetes_version: def.kubernetes_version.clone(),
                        subnets: def.subnets.clone(),
                        role: def.role.clone(),
                        tags: def.tags.clone(),
                        endpoint: None,
                        certificate_authority: None,
                    },
                    0,
                ),
            );
            Ok(())
        }
        .boxed()
    }

    fn node_pool<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, Option<NodePoolFacts>> {
        async move {
            self.enter("node_pool")?;
            let mut g = self.lock();
            Ok(g.pools
                .get_mut(&(cluster.to_owned(), name.to_owned()))
                .map(|(p, polls)| {
                    *polls += 1;
                    if p.status == Status::Creating && *polls > self.ready_after {
                        p.status = Status::Active;
                    }
                    p.clone()
                }))
        }
        .boxed()
    }

    fn create_node_pool<'a>(
        &'a self,
        cluster: &'a str,
        def: &'a NodePoolDef,
    ) -> CloudFuture<'a, ()> {
        async move {
            self.enter("create_node_pool")?;
            let mut g = self.lock();
            let key = (cluster.to_owned(), def.name.clone());
            if g.pools.contains_key(&key) {
                return Err(CloudError::new(
                    CloudErrorKind::Conflict,
                    "create_node_pool",
                    "exists",
                ));
            }
            g.pools.insert(
                key,
                (
                    NodePoolFacts {
                        name: def.name.clone(),
                        status: Status::Creating,
                        shape: def.shape.clone(),
                        role: def.role.clone(),
                        min: def.min,
                        desired: def.desired,
                        max: def.max,
                        tags: def.tags.clone(),
                    },
                    0,
                ),
            );
            Ok(())
        }
        .boxed()
    }

    fn kube_access(&self, c: &ClusterFacts) -> Result<KubeAccess, CloudError> {
        Ok(KubeAccess {
            name: c.name.clone(),
            server: c.endpoint.clone().unwrap_or_default(),
            certificate_authority: c.certificate_authority.clone().unwrap_or_default(),
            command: "fake-token".into(),
            args: vec![c.name.clone()],
            env: BTreeMap::new(),
        })
    }
}

impl Cloud for FakeCloud {
    fn provider(&self) -> Provider {
        Provider::Eks
    }

    fn describe(&self) -> String {
        "fake cloud".into()
    }
}
