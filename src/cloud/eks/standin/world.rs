//! The stand-in's state: one AWS account in one region, with the subnets, roles, quota and
//! Kubernetes versions the install checks, and the clusters and node groups it creates. Clusters
//! and node groups go CREATING → ACTIVE after `create_delay`, as on AWS (moto makes them ACTIVE
//! at once). Tests and the demo shape the world before and while the install runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// A subnet of the stand-in's VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// `subnet-…`.
    pub id: String,
    /// `vpc-…`.
    pub vpc: String,
    /// Availability zone.
    pub zone: String,
    /// CIDR block.
    pub cidr: String,
    /// Free addresses.
    pub free: u64,
}

/// A cluster the stand-in holds.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Name.
    pub name: String,
    /// Kubernetes version.
    pub version: String,
    /// Control-plane role ARN.
    pub role: String,
    /// Subnets.
    pub subnets: Vec<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// When it was created (ACTIVE `create_delay` later).
    pub created: Instant,
    /// Seconds since the epoch, for `createdAt`.
    pub created_epoch: f64,
    /// Fails instead of becoming active, with this reason.
    pub fail: Option<String>,
}

/// A node group the stand-in holds.
#[derive(Debug, Clone)]
pub struct Nodegroup {
    /// Cluster name.
    pub cluster: String,
    /// Name.
    pub name: String,
    /// Node role ARN.
    pub role: String,
    /// Subnets.
    pub subnets: Vec<String>,
    /// Instance types.
    pub instance_types: Vec<String>,
    /// Scaling (min, desired, max).
    pub scaling: (i64, i64, i64),
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// When it was created.
    pub created: Instant,
    /// Seconds since the epoch.
    pub created_epoch: f64,
}

/// One call the stand-in answered (or forwarded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `service:Operation`, e.g. `eks:DescribeCluster`.
    pub op: String,
    /// When, since the stand-in started.
    pub at: Duration,
    /// Whether it was answered with an injected throttling error.
    pub throttled: bool,
}

/// The account, region and everything in them.
#[derive(Debug, Clone)]
pub struct World {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// The caller's ARN (`sts:GetCallerIdentity`).
    pub caller: String,
    /// Roles: name → services its trust policy allows.
    pub roles: BTreeMap<String, Vec<String>>,
    /// Subnets.
    pub subnets: Vec<Subnet>,
    /// The On-Demand Standard vCPU quota (`None`: no such quota).
    pub vcpu_quota: Option<f64>,
    /// Offered Kubernetes versions.
    pub versions: Vec<String>,
    /// Actions the caller lacks (answered by SimulatePrincipalPolicy and enforced on calls).
    pub denied: BTreeSet<String>,
    /// Clusters by name.
    pub clusters: BTreeMap<String, Cluster>,
    /// Node groups by (cluster, name).
    pub nodegroups: BTreeMap<(String, String), Nodegroup>,
    /// How long creation takes.
    pub create_delay: Duration,
    /// The next `n` calls of an operation answer with throttling.
    pub throttle: HashMap<String, u32>,
    /// Every call, in order.
    pub calls: Vec<Call>,
    /// Operations answered here even when an upstream is set; the rest are forwarded.
    pub local: BTreeSet<String>,
    /// An upstream AWS endpoint (moto) for the operations not answered here.
    pub upstream: Option<String>,
}

impl World {
    /// A ready account for realm `realm`: a VPC with three subnets in three zones, the two
    /// roles the spec names (trusting EKS and EC2), a vCPU quota of 640 and current versions.
    pub fn sample(account: &str, region: &str) -> World {
        let subnet = |i: usize, zone: char| Subnet {
            id: format!("subnet-0a1b2c3d4e5f6071{i}"),
            vpc: "vpc-0demo0000000000a".into(),
            zone: format!("{region}{zone}"),
            cidr: format!("10.42.{}.0/20", i * 16),
            free: 4091,
        };
        World {
            account: account.into(),
            region: region.into(),
            caller: format!("arn:aws:sts::{account}:assumed-role/realmctl-installer/demo"),
            roles: [
                (
                    "realmctl-installer".to_owned(),
                    vec!["ec2.amazonaws.com".to_owned()],
                ),
                (
                    "digibee-eks-cluster".to_owned(),
                    vec!["eks.amazonaws.com".to_owned()],
                ),
                (
                    "digibee-eks-node".to_owned(),
                    vec!["ec2.amazonaws.com".to_owned()],
                ),
            ]
            .into_iter()
            .collect(),
            subnets: vec![subnet(0, 'a'), subnet(1, 'b'), subnet(2, 'c')],
            vcpu_quota: Some(640.0),
            versions: ["1.29", "1.30", "1.31", "1.32", "1.33"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            denied: BTreeSet::new(),
            clusters: BTreeMap::new(),
            nodegroups: BTreeMap::new(),
            create_delay: Duration::from_secs(3),
            throttle: HashMap::new(),
            calls: Vec::new(),
            local: BTreeSet::new(),
            upstream: None,
        }
    }

    /// A world that answers only what moto cannot (permission simulation, the vCPU quota,
    /// cluster versions) and forwards everything else to `upstream`.
    pub fn in_front_of(upstream: &str, account: &str, region: &str) -> World {
        let mut w = World::sample(account, region);
        w.upstream = Some(upstream.trim_end_matches('/').to_owned());
        w.local = [
            "iam:SimulatePrincipalPolicy",
            "servicequotas:GetServiceQuota",
            "eks:DescribeClusterVersions",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        w
    }

    /// The ARN of role `name` in this account.
    pub fn role_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.account)
    }

    /// How many calls of `op` were made.
    pub fn count(&self, op: &str) -> usize {
        self.calls.iter().filter(|c| c.op == op).count()
    }

    /// Whether the cluster is active now.
    pub fn cluster_active(&self, c: &Cluster) -> bool {
        c.fail.is_none() && c.created.elapsed() >= self.create_delay
    }
}
