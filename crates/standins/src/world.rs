//! The stand-ins' one neutral world: an account (subscription, project) in one region, with
//! the subnets, identities, services, quotas and Kubernetes versions an install checks, the
//! policy that decides what the caller may do, and the clusters and node pools it creates.
//! Clusters and pools are creating until `create_delay` has passed, as on every managed
//! Kubernetes service. Each cloud's wire adapter ([`crate::aws`], and the ones to come) reads and
//! writes this world in its own protocol; tests and the demo shape it before and while an
//! install runs.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::policy::Policy;

/// A subnet (subnetwork).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// Its id.
    pub id: String,
    /// The network it belongs to.
    pub network: String,
    /// Its zone; `None` where subnets are regional.
    pub zone: Option<String>,
    /// CIDR block.
    pub cidr: String,
    /// Free addresses.
    pub free: u64,
}

/// An identity the account holds (a role, a managed identity, a service account).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// The services allowed to act as it.
    pub trusts: Vec<String>,
}

/// A quota of the region.
#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    /// Its name for people.
    pub name: String,
    /// The limit.
    pub limit: f64,
    /// What is in use.
    pub usage: f64,
}

/// Who may reach a cluster's API server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiEndpoint {
    /// The private endpoint is on.
    pub private: bool,
    /// The public endpoint is on.
    pub public: bool,
    /// The networks allowed to reach the public endpoint.
    pub public_cidrs: Vec<String>,
}

/// A cluster the world holds.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Name.
    pub name: String,
    /// Kubernetes `MAJOR.MINOR`.
    pub version: String,
    /// Who may reach the API server.
    pub api: ApiEndpoint,
    /// Subnets.
    pub subnets: Vec<String>,
    /// The control plane's identity.
    pub identity: Option<String>,
    /// Tags (labels).
    pub tags: BTreeMap<String, String>,
    /// When it was created (ready `create_delay` later).
    pub created: Instant,
    /// Seconds since the epoch, for `createdAt`.
    pub created_epoch: f64,
    /// Fails instead of becoming ready, with this reason.
    pub fail: Option<String>,
    /// Being deleted.
    pub deleting: bool,
    /// When its last version upgrade began (updating until `create_delay` later).
    pub updating: Option<Instant>,
}

/// A node pool the world holds.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Cluster name.
    pub cluster: String,
    /// Name.
    pub name: String,
    /// The nodes' identity.
    pub identity: Option<String>,
    /// Subnets.
    pub subnets: Vec<String>,
    /// Shape (instance type, VM size, machine type).
    pub shape: String,
    /// Scaling (min, desired, max).
    pub scaling: (i64, i64, i64),
    /// Node image (its kind or id).
    pub image: String,
    /// Kubernetes labels of the nodes.
    pub labels: BTreeMap<String, String>,
    /// Tags (labels) of the pool.
    pub tags: BTreeMap<String, String>,
    /// When it was created.
    pub created: Instant,
    /// Seconds since the epoch.
    pub created_epoch: f64,
    /// Fails instead of becoming ready, with this reason.
    pub fail: Option<String>,
    /// The nodes' Kubernetes `MAJOR.MINOR` (the cluster's when created).
    pub version: String,
    /// When its last version upgrade began (updating until `create_delay` later).
    pub updating: Option<Instant>,
}

/// Where a cluster or pool stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Being created.
    Creating,
    /// Ready.
    Ready,
    /// Creation failed.
    Failed,
    /// Being deleted.
    Deleting,
    /// Being upgraded to another Kubernetes version.
    Updating,
}

/// One call a stand-in answered (or forwarded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `service:Operation`, e.g. `eks:DescribeCluster`.
    pub op: String,
    /// When, since the stand-in started.
    pub at: Duration,
    /// Whether it was answered with an injected throttling error.
    pub throttled: bool,
}

/// An application that can sign in (a service principal): its secret, or the federated token it
/// may present instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Its client secret.
    pub secret: String,
    /// The secret has expired (sign-in with it is refused as expired).
    pub secret_expired: bool,
    /// A federated token (workload identity) it may sign in with instead.
    pub federated: Option<String>,
    /// Its object id (the principal's id in the directory).
    pub object_id: String,
}

/// What a long-running operation creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A cluster, by name.
    Cluster(String),
    /// A node pool: cluster and pool name.
    Pool(String, String),
    /// The deletion of a cluster, by name: done once it is gone.
    DeleteCluster(String),
    /// The deletion of a node pool: cluster and pool name.
    DeletePool(String, String),
}

/// A resource something in a cluster made for it (a load balancer, a public address, a disk, a
/// firewall), or one a test puts beside it: what `destroy` sweeps, or must leave alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The cloud's type name (`Microsoft.Network/loadBalancers`, `forwardingRules`, ...).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its resource group (Azure), if any.
    pub group: Option<String>,
    /// Its tags (labels).
    pub tags: BTreeMap<String, String>,
    /// The id of another leftover that must be gone before this one can be deleted.
    pub held_by: Option<String>,
}

/// A long-running operation (ARM's asynchronous operation): its status follows its target's.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// What it creates.
    pub target: Target,
    /// When it started, seconds since the epoch.
    pub started_epoch: f64,
}

/// A Google service-account key: whose, its RSA public key, and whether it still works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountKey {
    /// The service account's email.
    pub email: String,
    /// The RSA public key (DER RSAPublicKey).
    pub public_key: Vec<u8>,
    /// The key was disabled or deleted (tokens it signs are refused as UNAUTHENTICATED).
    pub disabled: bool,
}

/// The account, region and everything in them.
#[derive(Debug, Clone)]
pub struct World {
    /// Account, subscription or project id.
    pub account: String,
    /// Region.
    pub region: String,
    /// The caller (an assumed role's session ARN, an object id, an e-mail).
    pub principal: String,
    /// Identities by name.
    pub identities: BTreeMap<String, Identity>,
    /// Subnets.
    pub subnets: Vec<Subnet>,
    /// Services (resource providers, APIs) and whether they are enabled.
    pub services: BTreeMap<String, bool>,
    /// Quotas by code.
    pub quotas: BTreeMap<String, Quota>,
    /// Offered Kubernetes versions.
    pub versions: Vec<String>,
    /// The account's state as the cloud words it (`Enabled`).
    pub account_state: String,
    /// The directory (tenant) the account trusts.
    pub tenant: String,
    /// Applications that can sign in, by client id.
    pub apps: BTreeMap<String, App>,
    /// Access tokens issued: token → (principal, expiry in seconds since the epoch, audience).
    pub tokens: BTreeMap<String, (String, u64, String)>,
    /// Every issued token is answered as expired.
    pub tokens_expired: bool,
    /// Resource groups: name → location (Azure; other clouds have none).
    pub resource_groups: BTreeMap<String, String>,
    /// Resource bodies as an adapter keeps them (ARM describes back what was PUT), by
    /// lower-case id.
    pub documents: BTreeMap<String, serde_json::Value>,
    /// Long-running operations by id.
    pub operations: BTreeMap<String, Operation>,
    /// How many seconds a long-running operation or a throttled call asks the caller to wait
    /// (`Retry-After`).
    pub retry_after: u64,
    /// A cluster someone else creates just before the caller's next create of the same name
    /// arrives (the race between a describe and a create).
    pub ambush: Option<Cluster>,
    /// The next cluster created fails with this reason (`Code: message`).
    pub fail_next_create: Option<String>,
    /// Lists answer in pages of this many items (ARM's `nextLink`); `None`: one page.
    pub page_size: Option<usize>,
    /// A managed identity's token endpoint (App Service's `IDENTITY_ENDPOINT` protocol): the
    /// `X-IDENTITY-HEADER` secret it requires and the identity's object id.
    pub managed_identity: Option<(String, String)>,
    /// What the caller may do (answered by permission checks and enforced on calls).
    pub policy: Policy,
    /// Google service-account keys by key id.
    pub service_account_keys: BTreeMap<String, ServiceAccountKey>,
    /// Google user refresh tokens (gcloud's authorized user): token → (email, revoked).
    pub refresh_tokens: BTreeMap<String, (String, bool)>,
    /// Google service accounts that may be impersonated.
    pub service_accounts: std::collections::BTreeSet<String>,
    /// Clusters by name.
    pub clusters: BTreeMap<String, Cluster>,
    /// Node pools by (cluster, name).
    pub pools: BTreeMap<(String, String), Pool>,
    /// How long creation takes.
    pub create_delay: Duration,
    /// The next `n` calls of an operation answer with throttling.
    pub throttle: HashMap<String, u32>,
    /// How long a deletion takes (a cluster or pool reports deleting until then).
    pub delete_delay: Duration,
    /// What is being deleted, by key (`cluster/NAME`, `pool/CLUSTER/NAME`), since when.
    pub deleting: BTreeMap<String, Instant>,
    /// Leftovers by id.
    pub leftovers: BTreeMap<String, Leftover>,
    /// The next `n` calls of a delete operation answer that something still depends on the
    /// resource (AWS `DependencyViolation`, Elastic Load Balancing `ResourceInUse`): what a
    /// cloud answers while a load balancer's interfaces are still being released.
    pub in_use: HashMap<String, u32>,
    /// Every call, in order.
    pub calls: Vec<Call>,
    /// The realm VPN's resources (issue #23).
    pub vpn: crate::vpn::VpnWorld,
    /// The Kubernetes API every ready cluster reports (the stand-in's own, [`crate::kube`]):
    /// `host:port` and its CA (PEM).
    pub kube_api: Option<(String, String)>,
    /// An upstream endpoint (moto) for the operations not in `local` (tests only).
    #[cfg(feature = "moto")]
    pub upstream: Option<String>,
    /// Operations answered here even when an upstream is set.
    #[cfg(feature = "moto")]
    pub local: std::collections::BTreeSet<String>,
}

/// RFC 3339 (UTC) of `epoch` seconds.
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Seconds since the epoch, whole.
pub(crate) fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64().floor())
        .unwrap_or(0.0)
}

impl World {
    /// The API server URL and CA (base64 of PEM) a ready cluster reports: the Kubernetes
    /// stand-in's when one runs, else a name that never resolves (RFC 2606 `.invalid`).
    pub fn kube_endpoint(&self, cluster: &str) -> (String, String) {
        use base64::Engine as _;
        match &self.kube_api {
            Some((host, ca)) => (
                format!("https://{host}"),
                base64::engine::general_purpose::STANDARD.encode(ca),
            ),
            None => (
                format!("https://{cluster}.stand-in.invalid"),
                base64::engine::general_purpose::STANDARD
                    .encode("-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n"),
            ),
        }
    }

    /// An empty account: nothing in it, everything allowed, creation taking 3 s.
    pub fn new(account: &str, region: &str, principal: &str) -> World {
        World {
            account: account.into(),
            region: region.into(),
            principal: principal.into(),
            identities: BTreeMap::new(),
            subnets: Vec::new(),
            services: BTreeMap::new(),
            quotas: BTreeMap::new(),
            versions: Vec::new(),
            account_state: "Enabled".into(),
            tenant: String::new(),
            apps: BTreeMap::new(),
            tokens: BTreeMap::new(),
            tokens_expired: false,
            resource_groups: BTreeMap::new(),
            documents: BTreeMap::new(),
            operations: BTreeMap::new(),
            retry_after: 0,
            ambush: None,
            fail_next_create: None,
            page_size: None,
            managed_identity: None,
            policy: Policy::allow_all(),
            service_account_keys: BTreeMap::new(),
            refresh_tokens: BTreeMap::new(),
            service_accounts: Default::default(),
            clusters: BTreeMap::new(),
            pools: BTreeMap::new(),
            create_delay: Duration::from_secs(3),
            throttle: HashMap::new(),
            in_use: HashMap::new(),
            delete_delay: Duration::from_secs(1),
            deleting: BTreeMap::new(),
            leftovers: BTreeMap::new(),
            calls: Vec::new(),
            kube_api: None,
            vpn: Default::default(),
            #[cfg(feature = "moto")]
            upstream: None,
            #[cfg(feature = "moto")]
            local: Default::default(),
        }
    }

    /// Starts deleting cluster `name` (with its pools), as a cloud does: it reports deleting
    /// until [`World::delete_delay`] has passed, then it is gone ([`World::purge`]).
    pub fn delete_cluster(&mut self, name: &str) {
        self.deleting
            .entry(format!("cluster/{name}"))
            .or_insert_with(Instant::now);
    }

    /// Starts deleting pool `name` of `cluster`.
    pub fn delete_pool(&mut self, cluster: &str, name: &str) {
        self.deleting
            .entry(format!("pool/{cluster}/{name}"))
            .or_insert_with(Instant::now);
    }

    /// Removes what has finished deleting: clusters with their pools and with the leftovers of
    /// their node resource group (`group_of(cluster)`), and pools.
    pub fn purge(&mut self, group_of: impl Fn(&str) -> Option<String>) {
        let done: Vec<String> = self
            .deleting
            .iter()
            .filter(|(_, t)| t.elapsed() >= self.delete_delay)
            .map(|(k, _)| k.clone())
            .collect();
        for key in done {
            self.deleting.remove(&key);
            if let Some(name) = key.strip_prefix("cluster/") {
                self.clusters.remove(name);
                self.pools.retain(|(c, _), _| c != name);
                if let Some(g) = group_of(name) {
                    self.leftovers
                        .retain(|_, l| l.group.as_deref() != Some(g.as_str()));
                    self.resource_groups.remove(&g);
                }
            } else if let Some((c, p)) = key.strip_prefix("pool/").and_then(|k| k.split_once('/')) {
                self.pools.remove(&(c.to_owned(), p.to_owned()));
            }
        }
    }

    /// The caller may not do `action`, on any resource.
    pub fn deny(&mut self, action: &str) {
        self.policy.deny(action);
    }

    /// How many calls of `op` were made.
    pub fn count(&self, op: &str) -> usize {
        self.calls.iter().filter(|c| c.op == op).count()
    }

    /// Where a cluster stands now.
    pub fn cluster_phase(&self, c: &Cluster) -> Phase {
        if c.deleting || self.deleting.contains_key(&format!("cluster/{}", c.name)) {
            Phase::Deleting
        } else if c.fail.is_some() {
            Phase::Failed
        } else if c.updating.is_some_and(|t| t.elapsed() < self.create_delay) {
            Phase::Updating
        } else if c.created.elapsed() >= self.create_delay {
            Phase::Ready
        } else {
            Phase::Creating
        }
    }

    /// Where a pool stands now.
    pub fn pool_phase(&self, p: &Pool) -> Phase {
        if self
            .deleting
            .contains_key(&format!("pool/{}/{}", p.cluster, p.name))
        {
            Phase::Deleting
        } else if p.fail.is_some() {
            Phase::Failed
        } else if p.updating.is_some_and(|t| t.elapsed() < self.create_delay) {
            Phase::Updating
        } else if p.created.elapsed() >= self.create_delay {
            Phase::Ready
        } else {
            Phase::Creating
        }
    }

    /// The clusters, each with its pools: `name (node pools: a, b)`.
    pub fn describe_clusters(&self) -> Vec<String> {
        self.clusters
            .keys()
            .map(|c| {
                let pools: Vec<&str> = self
                    .pools
                    .values()
                    .filter(|p| &p.cluster == c)
                    .map(|p| p.name.as_str())
                    .collect();
                format!("{c} (node pools: {})", pools.join(", "))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn epochs_print_as_rfc3339() {
        use super::rfc3339;
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_428_800), "2026-12-05T00:00:00Z");
    }
}
