//! The one cluster definition as GKE's API v1 takes it, and a described cluster or node pool
//! back as the definition's shapes (pure, round-trip tested, the create request
//! snapshot-tested).
//!
//! - A VPC-native cluster (`ipAllocationPolicy.useIpAliases`) in the spec's network and
//!   subnetwork, on the secondary ranges the spec names or on ranges GKE makes.
//! - API access (`controlPlaneEndpointsConfig.ipEndpointsConfig`, nodes' addresses by
//!   `networkConfig.defaultEnablePrivateNodes`): `private` is private nodes and no public
//!   endpoint; `public` is public nodes and the public endpoint for the listed CIDRs
//!   (authorized networks); `both` is private nodes and the public endpoint for the listed
//!   CIDRs, besides the private endpoint every cluster has.
//! - Node pools are regional: GKE spreads a pool over the region's zones, so the bounds are the
//!   autoscaler's totals (`totalMinNodeCount`, `totalMaxNodeCount`), and the initial count is
//!   per zone: ⌈desired / 3⌉ (three zones by default).
//! - Labels: the realm's ownership marks are the cluster's and each pool's `resourceLabels`;
//!   the Kubernetes node labels are the pool's `config.labels`.

use google_cloud_container_v1::model::{
    Cluster, ControlPlaneEndpointsConfig, IPAllocationPolicy, MasterAuthorizedNetworksConfig,
    NetworkConfig, NodeConfig, NodePool, NodePoolAutoscaling,
    control_plane_endpoints_config::IPEndpointsConfig,
    master_authorized_networks_config::CidrBlock,
};

use crate::cloud::definition::{
    ApiAccess, ClusterDefinition, ClusterShape, NetworkDef, NodeImageDef, PoolDefinition,
    PoolShape, SecondaryRanges,
};
use crate::cloud::facts::Status;

/// The zones a regional pool spreads over unless told otherwise.
pub const DEFAULT_ZONES: u32 = 3;
/// The OAuth scope nodes run with (their IAM service account decides what they may do).
const NODE_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A node pool of the definition as GKE takes it.
pub fn node_pool(p: &PoolDefinition) -> NodePool {
    let n = &p.nodes;
    let mut config = NodeConfig::default();
    config.machine_type = n.shape.clone();
    config.image_type = match &n.image {
        NodeImageDef::Default(t) | NodeImageDef::Custom(t) => t.clone(),
    };
    config.labels = n.labels.clone().into_iter().collect();
    config.resource_labels = n.tags.clone().into_iter().collect();
    config.oauth_scopes = vec![NODE_SCOPE.to_owned()];
    if let Some(sa) = &n.node_identity {
        config.service_account = sa.clone();
    }
    let mut autoscaling = NodePoolAutoscaling::default();
    autoscaling.enabled = true;
    autoscaling.total_min_node_count = i32::try_from(n.min).unwrap_or(i32::MAX);
    autoscaling.total_max_node_count = i32::try_from(n.max).unwrap_or(i32::MAX);
    autoscaling.location_policy =
        google_cloud_container_v1::model::node_pool_autoscaling::LocationPolicy::Balanced;
    let mut pool = NodePool::default();
    pool.name = n.name.clone();
    pool.config = Some(config);
    pool.initial_node_count = i32::try_from(n.desired.div_ceil(DEFAULT_ZONES).max(1)).unwrap_or(1);
    pool.autoscaling = Some(autoscaling);
    pool
}

/// The cluster of the definition as `clusters.create` takes it, with the pools GKE creates with
/// it.
pub fn cluster(def: &ClusterDefinition) -> Cluster {
    let shape = &def.cluster;
    let mut c = Cluster::default();
    c.name = shape.name.clone();
    c.initial_cluster_version = shape.kubernetes_version.clone();
    c.network = shape.network.network.clone().unwrap_or_default();
    c.subnetwork = shape.network.subnets.first().cloned().unwrap_or_default();
    c.resource_labels = shape.tags.clone().into_iter().collect();
    let mut ip = IPAllocationPolicy::default();
    ip.use_ip_aliases = true;
    if let Some(r) = &shape.network.secondary_ranges {
        ip.cluster_secondary_range_name = r.pods.clone();
        ip.services_secondary_range_name = r.services.clone();
    }
    c.ip_allocation_policy = Some(ip);
    let (private_nodes, public_endpoint) = match &shape.api_access {
        ApiAccess::Private => (true, false),
        ApiAccess::Public { .. } => (false, true),
        ApiAccess::Both { .. } => (true, true),
    };
    let mut net = NetworkConfig::default();
    net.default_enable_private_nodes = Some(private_nodes);
    c.network_config = Some(net);
    let mut man = MasterAuthorizedNetworksConfig::default();
    man.enabled = true;
    man.cidr_blocks = shape
        .api_access
        .public_cidrs()
        .unwrap_or_default()
        .iter()
        .map(|n| {
            let mut b = CidrBlock::default();
            b.cidr_block = n.to_string();
            b
        })
        .collect();
    let mut ip = IPEndpointsConfig::default();
    ip.enabled = Some(true);
    ip.enable_public_endpoint = Some(public_endpoint);
    ip.authorized_networks_config = Some(man);
    let mut endpoints = ControlPlaneEndpointsConfig::default();
    endpoints.ip_endpoints_config = Some(ip);
    c.control_plane_endpoints_config = Some(endpoints);
    c.node_pools = def.initial_pools().map(node_pool).collect();
    c
}

/// `MAJOR.MINOR` of a GKE version (`1.31.5-gke.1234` → `1.31`).
pub fn minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// A described cluster as the definition's shape (pure).
pub fn describe_cluster(c: &Cluster) -> ClusterShape {
    let private_nodes = c
        .network_config
        .as_ref()
        .and_then(|n| n.default_enable_private_nodes)
        .unwrap_or(false);
    let ip = c
        .control_plane_endpoints_config
        .as_ref()
        .and_then(|e| e.ip_endpoints_config.as_ref());
    let public_endpoint = ip.and_then(|i| i.enable_public_endpoint).unwrap_or(true);
    let cidrs: Vec<ipnet::IpNet> = ip
        .and_then(|i| i.authorized_networks_config.as_ref())
        .filter(|m| m.enabled)
        .map(|m| {
            m.cidr_blocks
                .iter()
                .filter_map(|b| b.cidr_block.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let api_access = match (private_nodes, public_endpoint) {
        (_, false) => ApiAccess::Private,
        (true, true) => ApiAccess::Both { cidrs },
        (false, true) => ApiAccess::Public { cidrs },
    };
    let ip = c.ip_allocation_policy.as_ref();
    let secondary_ranges = ip
        .filter(|p| !p.cluster_secondary_range_name.is_empty())
        .map(|p| SecondaryRanges {
            pods: p.cluster_secondary_range_name.clone(),
            services: p.services_secondary_range_name.clone(),
        });
    let version = if c.current_master_version.is_empty() {
        &c.initial_cluster_version
    } else {
        &c.current_master_version
    };
    ClusterShape {
        name: c.name.clone(),
        kubernetes_version: minor(version),
        api_access,
        network: NetworkDef {
            network: (!c.network.is_empty()).then(|| short(&c.network)),
            subnets: (!c.subnetwork.is_empty())
                .then(|| short(&c.subnetwork))
                .into_iter()
                .collect(),
            secondary_ranges,
        },
        control_plane_identity: None,
        tags: c.resource_labels.clone().into_iter().collect(),
    }
}

fn short(s: &str) -> String {
    s.rsplit('/').next().unwrap_or(s).to_owned()
}

/// A described node pool as the definition's shape (pure).
pub fn describe_pool(p: &NodePool) -> PoolShape {
    let config = p.config.clone().unwrap_or_default();
    let a = p.autoscaling.clone().unwrap_or_default();
    let zones = u32::try_from(p.locations.len()).unwrap_or(0).max(1);
    let count = |n: i32| u32::try_from(n).unwrap_or(0);
    PoolShape {
        name: p.name.clone(),
        shape: config.machine_type.clone(),
        min: count(a.total_min_node_count),
        desired: count(p.initial_node_count) * zones,
        max: count(a.total_max_node_count),
        node_identity: match config.service_account.as_str() {
            "" | "default" => None,
            sa => Some(sa.to_owned()),
        },
        subnets: Vec::new(),
        image: NodeImageDef::Default(config.image_type.clone()),
        labels: config.labels.clone().into_iter().collect(),
        tags: config.resource_labels.clone().into_iter().collect(),
    }
}

/// Where a cluster in GKE's `status` stands (pure).
pub fn cluster_status(status: Option<&str>, message: &str) -> Status {
    match status {
        Some("PROVISIONING") => Status::Creating,
        Some("RUNNING") => Status::Active,
        Some("RECONCILING") => Status::Updating,
        Some("STOPPING") => Status::Deleting,
        Some("ERROR") => Status::Failed(if message.is_empty() {
            "ERROR".into()
        } else {
            message.to_owned()
        }),
        other => Status::Other(other.unwrap_or("STATUS_UNSPECIFIED").to_owned()),
    }
}

/// Where a node pool in GKE's `status` stands (pure).
pub fn pool_status(status: Option<&str>, message: &str) -> Status {
    match status {
        Some("RUNNING_WITH_ERROR") => Status::Failed(format!(
            "RUNNING_WITH_ERROR: {}",
            crate::text::one_line(message)
        )),
        other => cluster_status(other, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::definition::compare_cluster;

    fn def(access: ApiAccess, ranges: bool) -> ClusterDefinition {
        let (_d, spec) =
            crate::engine::test_support::spec(crate::spec::Provider::Gke, "digibee.acme.com");
        let mut d = crate::cloud::access::definition(&spec);
        d.cluster.api_access = access;
        d.cluster.network.secondary_ranges = ranges.then(|| SecondaryRanges {
            pods: "pods".into(),
            services: "svc".into(),
        });
        d
    }

    #[test]
    fn every_api_access_and_range_choice_round_trips() {
        let cidrs = vec!["203.0.113.0/24".parse().unwrap()];
        for access in [
            ApiAccess::Private,
            ApiAccess::Public {
                cidrs: cidrs.clone(),
            },
            ApiAccess::Both { cidrs },
        ] {
            for ranges in [false, true] {
                let d = def(access.clone(), ranges);
                let mut c = cluster(&d);
                // What GKE adds when it describes the cluster.
                c.current_master_version = format!("{}.5-gke.1234", d.cluster.kubernetes_version);
                let back = describe_cluster(&c);
                assert_eq!(compare_cluster(&d.cluster, &back), vec![], "{access:?}");
                let pool = describe_pool(&c.node_pools[0]);
                assert_eq!(
                    crate::cloud::definition::compare_pool(&d.pools[0].nodes, &pool),
                    vec![]
                );
            }
        }
    }

    #[test]
    fn statuses_map_to_where_a_resource_stands() {
        assert_eq!(cluster_status(Some("RUNNING"), ""), Status::Active);
        assert_eq!(cluster_status(Some("PROVISIONING"), ""), Status::Creating);
        assert!(matches!(cluster_status(Some("ERROR"), "boom"), Status::Failed(m) if m == "boom"));
        assert!(matches!(
            pool_status(Some("RUNNING_WITH_ERROR"), "x"),
            Status::Failed(_)
        ));
        assert_eq!(
            cluster_status(Some("DEGRADED"), ""),
            Status::Other("DEGRADED".into())
        );
        assert_eq!(minor("1.31.5-gke.1234"), "1.31");
    }

    #[test]
    fn the_create_request_is_the_definition() {
        let d = def(ApiAccess::Private, true);
        // Through `Value` (sorted keys): the SDK's models keep labels in hash maps, whose order
        // varies from run to run.
        let sent = serde_json::to_value(cluster(&d)).unwrap();
        insta::assert_snapshot!(
            "gke_cluster_create",
            serde_json::to_string_pretty(&sent).unwrap()
        );
    }
}
