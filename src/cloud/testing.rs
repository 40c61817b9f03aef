//! A fake [`Cloud`] of our own traits for unit tests: in-memory clusters and node pools built
//! from the definitions it is sent (initial pools with the cluster) that become active after a
//! number of polls, injectable failures per call, denied actions, call counts. It can stand for
//! any provider, so the AKS and GKE profiles are tested through the same engine paths.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures::FutureExt;

use super::definition::{ClusterDefinition, PoolDefinition};
use super::facts::{
    AccountFacts, AccountQuery, ClusterFacts, Identity, IdentityFacts, KubeAccess, KubeToken,
    Lookup, NodePoolFacts, PermissionFacts, QuotaFacts, RequiredPermission, ServiceFacts, Status,
    SubnetFacts,
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
    /// Every definition `create_cluster` was sent.
    sent: Vec<ClusterDefinition>,
    /// The API server an active cluster reports (URL, base64 PEM CA).
    kube_api: Option<(String, String)>,
    /// The realm VPN's parts as built (or put there by a test).
    vpn: BTreeMap<super::vpn::VpnPart, super::vpn::PartFacts>,
    /// A part whose builds never take effect.
    vpn_stubborn: Option<super::vpn::VpnPart>,
    /// The parts each build was sent a key with.
    vpn_keys: Vec<super::vpn::VpnPart>,
}

/// The fake.
pub struct FakeCloud {
    inner: Mutex<Inner>,
    /// Describes before a created cluster or pool turns active.
    pub ready_after: u32,
    /// The identity it reports.
    pub identity: Identity,
    /// The provider it stands for.
    pub provider: Provider,
}

impl Default for FakeCloud {
    fn default() -> Self {
        FakeCloud {
            inner: Mutex::default(),
            ready_after: 0,
            identity: Identity {
                principal: "arn:aws:sts::123456789012:assumed-role/Installer/test".into(),
                account: "123456789012".into(),
                source: "explicit credentials".into(),
                expires_at: None,
            },
            provider: Provider::Eks,
        }
    }
}

fn pool_facts(def: &ClusterDefinition, p: &PoolDefinition) -> NodePoolFacts {
    NodePoolFacts {
        status: Status::Creating,
        described: p.nodes.clone(),
        version: def.cluster.kubernetes_version.clone(),
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

    /// A fake standing for `provider`, its identity in `account`.
    pub fn for_provider(provider: Provider, account: &str) -> Self {
        let mut f = FakeCloud {
            provider,
            ..FakeCloud::default()
        };
        f.identity.account = account.into();
        f
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Active clusters report this API server (a Kubernetes stand-in's URL and CA PEM).
    pub fn set_kube_api(&self, url: &str, ca_pem: &str) {
        use base64::Engine as _;
        self.lock().kube_api = Some((
            url.to_owned(),
            base64::engine::general_purpose::STANDARD.encode(ca_pem),
        ));
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
        self.lock()
            .clusters
            .insert(c.described.name.clone(), (c, 0));
    }

    /// Sets the status of the cluster `name` (a cluster being deleted, one that failed).
    pub fn set_cluster_status(&self, name: &str, status: Status) {
        if let Some((c, _)) = self.lock().clusters.get_mut(name) {
            c.status = status;
        }
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

    /// Every definition `create_cluster` was sent.
    pub fn sent(&self) -> Vec<ClusterDefinition> {
        self.lock().sent.clone()
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
                    .map(|(i, id)| SubnetFacts {
                        id: id.clone(),
                        network: "vpc-1".into(),
                        zone: Some(format!("zone-{i}")),
                        free_addresses: 4000,
                        secondary_ranges: Vec::new(),
                    })
                    .collect(),
                identities: q
                    .identities
                    .iter()
                    .map(|i| IdentityFacts {
                        purpose: i.purpose.clone(),
                        id: i.id.clone(),
                        exists: true,
                        trusted_services: i.trusts.iter().cloned().collect(),
                    })
                    .collect(),
                services: q
                    .services
                    .iter()
                    .map(|s| ServiceFacts {
                        name: s.clone(),
                        enabled: Lookup::Found(true),
                    })
                    .collect(),
                versions: Lookup::Found(vec!["1.30".into(), "1.31".into(), "1.35".into()]),
                quotas: q
                    .quotas
                    .iter()
                    .map(|q| QuotaFacts {
                        code: q.code.clone(),
                        limit: Lookup::Found(1000.0),
                        usage: Some(0.0),
                    })
                    .collect(),
            })
        }
        .boxed()
    }
}

impl PermissionChecker for FakeCloud {
    fn missing_permissions<'a>(
        &'a self,
        required: &'a [RequiredPermission],
    ) -> CloudFuture<'a, PermissionFacts> {
        async move {
            self.enter("missing_permissions")?;
            let denied = self.lock().denied.clone();
            Ok(PermissionFacts {
                principal: self.identity.principal.clone(),
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
            let kube_api = g.kube_api.clone();
            Ok(g.clusters.get_mut(name).map(|(c, polls)| {
                *polls += 1;
                if c.status == Status::Creating && *polls > self.ready_after {
                    let (url, ca) = kube_api
                        .clone()
                        .unwrap_or_else(|| ("https://127.0.0.1:6443".into(), "Q0E=".into()));
                    c.status = Status::Active;
                    c.endpoint = Some(url);
                    c.certificate_authority = Some(ca);
                }
                c.clone()
            }))
        }
        .boxed()
    }

    fn create_cluster<'a>(&'a self, def: &'a ClusterDefinition) -> CloudFuture<'a, ()> {
        async move {
            self.enter("create_cluster")?;
            let mut g = self.lock();
            if g.clusters.contains_key(&def.cluster.name) {
                return Err(CloudError::new(
                    CloudErrorKind::Conflict,
                    "create_cluster",
                    "exists",
                ));
            }
            g.sent.push(def.clone());
            g.clusters.insert(
                def.cluster.name.clone(),
                (
                    ClusterFacts {
                        id: format!("fake:cluster/{}", def.cluster.name),
                        status: Status::Creating,
                        described: def.cluster.clone(),
                        endpoint: None,
                        certificate_authority: None,
                    },
                    0,
                ),
            );
            for p in def.initial_pools() {
                g.pools.insert(
                    (def.cluster.name.clone(), p.nodes.name.clone()),
                    (pool_facts(def, p), 0),
                );
            }
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
        def: &'a ClusterDefinition,
        pool: &'a PoolDefinition,
    ) -> CloudFuture<'a, ()> {
        async move {
            self.enter("create_node_pool")?;
            let mut g = self.lock();
            let key = (def.cluster.name.clone(), pool.nodes.name.clone());
            if g.pools.contains_key(&key) {
                return Err(CloudError::new(
                    CloudErrorKind::Conflict,
                    "create_node_pool",
                    "exists",
                ));
            }
            g.pools.insert(key, (pool_facts(def, pool), 0));
            Ok(())
        }
        .boxed()
    }

    fn upgrade_cluster<'a>(&'a self, def: &'a ClusterDefinition) -> CloudFuture<'a, ()> {
        async move {
            self.enter("upgrade_cluster")?;
            let mut g = self.lock();
            let (c, _) = g.clusters.get_mut(&def.cluster.name).ok_or_else(|| {
                CloudError::new(CloudErrorKind::NotFound, "upgrade_cluster", "no cluster")
            })?;
            c.described.kubernetes_version = def.cluster.kubernetes_version.clone();
            Ok(())
        }
        .boxed()
    }

    fn upgrade_node_pool<'a>(
        &'a self,
        def: &'a ClusterDefinition,
        pool: &'a PoolDefinition,
    ) -> CloudFuture<'a, ()> {
        async move {
            self.enter("upgrade_node_pool")?;
            let mut g = self.lock();
            let key = (def.cluster.name.clone(), pool.nodes.name.clone());
            let (p, _) = g.pools.get_mut(&key).ok_or_else(|| {
                CloudError::new(CloudErrorKind::NotFound, "upgrade_node_pool", "no pool")
            })?;
            p.version = def.cluster.kubernetes_version.clone();
            Ok(())
        }
        .boxed()
    }

    fn kube_access<'a>(&'a self, c: &'a ClusterFacts) -> CloudFuture<'a, KubeAccess> {
        async move {
            Ok(KubeAccess {
                name: c.name().to_owned(),
                server: c.endpoint.clone().unwrap_or_default(),
                certificate_authority: c.certificate_authority.clone().unwrap_or_default(),
                command: "fake-token".into(),
                args: vec![c.name().to_owned()],
                env: BTreeMap::new(),
            })
        }
        .boxed()
    }

    fn kube_token<'a>(&'a self, _c: &'a ClusterFacts) -> CloudFuture<'a, KubeToken> {
        async move {
            self.enter("kube_token")?;
            Ok(KubeToken {
                token: crate::secret::Secret::new("fake-kube-token"),
                expires: None,
            })
        }
        .boxed()
    }
}

impl FakeCloud {
    /// Puts a VPN part there (someone else's, or this realm's from before).
    pub fn insert_vpn_part(&self, part: super::vpn::VpnPart, facts: super::vpn::PartFacts) {
        self.lock().vpn.insert(part, facts);
    }

    /// Builds of `part` answer success and change nothing.
    pub fn stubborn_vpn_part(&self, part: super::vpn::VpnPart) {
        self.lock().vpn_stubborn = Some(part);
    }

    /// The parts whose builds were handed a key, in order.
    pub fn vpn_keys(&self) -> Vec<super::vpn::VpnPart> {
        self.lock().vpn_keys.clone()
    }
}

/// A VPN part as the definition wants it (the fake builds exactly that).
fn vpn_facts(
    def: &super::vpn::VpnDef,
    part: super::vpn::VpnPart,
    built: &super::vpn::Built,
) -> super::vpn::PartFacts {
    use super::vpn::{Described, PartFacts, RouteFacts, RouteTarget, VpnPart};
    let host = built
        .get(&VpnPart::Host)
        .map(|f| f.id.clone())
        .unwrap_or_else(|| "i-1".into());
    let described = match part {
        VpnPart::Secret => Described::Secret { has_value: true },
        VpnPart::Identity => Described::Identity {
            reads: vec![def.secret.clone()],
            complete: true,
        },
        VpnPart::Firewall => Described::Firewall {
            ingress: def.ingress.clone(),
            forwards: true,
        },
        VpnPart::Address => Described::Address {
            ip: "203.0.113.9".into(),
            attached_to: None,
        },
        VpnPart::Host => Described::Host {
            size: def.size.clone(),
            subnet: def.subnet.clone(),
            forwarding: true,
            status: Status::Active,
            private_ip: Some("10.0.0.9".into()),
            public_ip: Some("203.0.113.9".into()),
            network_cidrs: vec!["10.0.0.0/16".into()],
        },
        VpnPart::Routes => Described::Routes {
            tables: vec!["rt-1".into()],
            routes: def
                .remote_cidrs
                .iter()
                .map(|c| RouteFacts {
                    table: "rt-1".into(),
                    destination: c.clone(),
                    target: RouteTarget::Host(host.clone()),
                })
                .collect(),
        },
    };
    PartFacts {
        id: if part == VpnPart::Host {
            "i-1".into()
        } else {
            format!("{part}-1")
        },
        tags: if part == VpnPart::Routes {
            BTreeMap::new()
        } else {
            def.tags.clone()
        },
        described,
    }
}

impl super::VpnManager for FakeCloud {
    fn vpn_part<'a>(
        &'a self,
        _def: &'a super::vpn::VpnDef,
        part: super::vpn::VpnPart,
        _built: &'a super::vpn::Built,
    ) -> CloudFuture<'a, Option<super::vpn::PartFacts>> {
        async move {
            let mut g = self.lock();
            *g.calls.entry("vpn_part").or_default() += 1;
            Ok(match (part, g.vpn.get(&part)) {
                // Routes are read from tables that always exist.
                (super::vpn::VpnPart::Routes, None) => Some(super::vpn::PartFacts {
                    id: "vpc".into(),
                    tags: BTreeMap::new(),
                    described: super::vpn::Described::Routes {
                        tables: vec!["rt-1".into()],
                        routes: Vec::new(),
                    },
                }),
                (_, f) => f.cloned(),
            })
        }
        .boxed()
    }

    fn build_vpn_part<'a>(
        &'a self,
        def: &'a super::vpn::VpnDef,
        part: super::vpn::VpnPart,
        built: &'a super::vpn::Built,
        with: &'a super::vpn::BuildInputs<'a>,
    ) -> CloudFuture<'a, ()> {
        async move {
            let mut g = self.lock();
            *g.calls.entry("build_vpn_part").or_default() += 1;
            if with.key.is_some() {
                g.vpn_keys.push(part);
            }
            if g.vpn_stubborn != Some(part) {
                g.vpn.insert(part, vpn_facts(def, part, built));
            }
            Ok(())
        }
        .boxed()
    }
}

/// Tearing realms down on this cloud is still to come (issue #20): the defaults say so.
impl crate::cloud::teardown::Teardown for FakeCloud {}

impl Cloud for FakeCloud {
    fn provider(&self) -> Provider {
        self.provider
    }

    fn describe(&self) -> String {
        "fake cloud".into()
    }
}
