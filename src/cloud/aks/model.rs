//! The ARM resources of an AKS install — `Microsoft.ContainerService/managedClusters` and
//! `agentPools` of the api-version in `playbooks/requirements/azure-api.yaml` — as serde
//! models holding only the fields realmctl sends or reads (ARM ignores none of what is sent
//! and adds read-only fields, which are read where they matter and otherwise skipped), and the
//! pure mappings between them and the one cluster definition: [`cluster_body`] and
//! [`pool_body`] are what phase 6 sends; [`describe_cluster`] and [`describe_pool`] turn
//! what ARM reports back into the definition's terms, so adoption is judged field by field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cloud::definition::{
    ApiAccess, ClusterDefinition, ClusterShape, NetworkDef, NodeImageDef, PoolDefinition, PoolMode,
    PoolShape,
};
use crate::cloud::facts::Status;

/// A managed cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCluster {
    /// Resource id (read-only).
    #[serde(default, skip_serializing)]
    pub id: Option<String>,
    /// Name (read-only).
    #[serde(default, skip_serializing)]
    pub name: Option<String>,
    /// Region.
    pub location: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The control plane's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Properties.
    pub properties: ClusterProperties,
}

/// `identity` of a managed cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// `SystemAssigned` or `UserAssigned`.
    #[serde(rename = "type")]
    pub kind: String,
    /// User-assigned identities by resource id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_assigned_identities: BTreeMap<String, serde_json::Value>,
}

/// `properties` of a managed cluster.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProperties {
    /// Where creation stands (read-only).
    #[serde(default, skip_serializing)]
    pub provisioning_state: Option<String>,
    /// Kubernetes version as requested (`MAJOR.MINOR`).
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    /// DNS prefix of the API server's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_prefix: Option<String>,
    /// No static admin credential exists when true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_local_accounts: Option<bool>,
    /// Entra ID authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aad_profile: Option<AadProfile>,
    /// Who may reach the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server_access_profile: Option<ApiServerAccessProfile>,
    /// Networking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_profile: Option<NetworkProfile>,
    /// Pools created with the cluster (and, when read, every pool).
    #[serde(default)]
    pub agent_pool_profiles: Vec<AgentPoolProperties>,
    /// Public API server name (read-only).
    #[serde(default, skip_serializing)]
    pub fqdn: Option<String>,
    /// Private API server name (read-only).
    #[serde(default, rename = "privateFQDN", skip_serializing)]
    pub private_fqdn: Option<String>,
}

/// `aadProfile`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AadProfile {
    /// AKS-managed Entra ID integration.
    pub managed: bool,
    /// Kubernetes authorization by Azure RBAC.
    #[serde(rename = "enableAzureRBAC")]
    pub enable_azure_rbac: bool,
    /// The tenant users sign in from.
    #[serde(rename = "tenantID", default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// `apiServerAccessProfile`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiServerAccessProfile {
    /// A private cluster (API server reachable only from the VNet).
    #[serde(default)]
    pub enable_private_cluster: Option<bool>,
    /// API server VNet integration (a private address in the VNet besides the public one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_vnet_integration: Option<bool>,
    /// The ranges allowed to reach the public endpoint.
    #[serde(
        rename = "authorizedIPRanges",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub authorized_ip_ranges: Vec<String>,
}

/// `networkProfile`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkProfile {
    /// `azure`.
    pub network_plugin: String,
    /// `overlay`: pods get addresses from an overlay, nodes from the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_plugin_mode: Option<String>,
}

/// The properties of an agent pool (inline in `agentPoolProfiles`, where it also has a name,
/// or as an `agentPools` resource's `properties`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentPoolProperties {
    /// Name (inline profiles only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where creation stands (read-only).
    #[serde(default, skip_serializing)]
    pub provisioning_state: Option<String>,
    /// Nodes now (at creation: to start with).
    #[serde(default)]
    pub count: Option<u32>,
    /// The autoscaler's floor.
    #[serde(default)]
    pub min_count: Option<u32>,
    /// The autoscaler's ceiling.
    #[serde(default)]
    pub max_count: Option<u32>,
    /// The cluster autoscaler is on.
    #[serde(default)]
    pub enable_auto_scaling: Option<bool>,
    /// VM size.
    #[serde(default)]
    pub vm_size: Option<String>,
    /// `System` or `User`.
    #[serde(default)]
    pub mode: Option<String>,
    /// `Linux`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
    /// The node OS (`AzureLinux`, `Ubuntu`).
    #[serde(default, rename = "osSKU")]
    pub os_sku: Option<String>,
    /// `VirtualMachineScaleSets`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub pool_type: Option<String>,
    /// The Kubernetes version asked for the nodes (ARM's `orchestratorVersion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator_version: Option<String>,
    /// The Kubernetes version the nodes run (read-only).
    #[serde(default, skip_serializing)]
    pub current_orchestrator_version: Option<String>,
    /// Kubernetes labels of the nodes.
    #[serde(default)]
    pub node_labels: BTreeMap<String, String>,
    /// Tags of the pool's scale set.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The subnet the nodes join.
    #[serde(default, rename = "vnetSubnetID")]
    pub vnet_subnet_id: Option<String>,
}

/// An `agentPools` resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentPool {
    /// Name (read-only).
    #[serde(default, skip_serializing)]
    pub name: Option<String>,
    /// Properties.
    pub properties: AgentPoolProperties,
}

/// Why a definition cannot be sent to AKS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// AKS builds nodes from its own images only.
    #[error(
        "AKS runs nodes on its own images (AzureLinux, Ubuntu); the custom image `{0}` cannot be set on an agent pool"
    )]
    CustomImage(String),
    /// Private and public access together need an API server subnet realmctl does not take.
    #[error(
        "AKS serves a private and a public API endpoint together only with API Server VNet Integration and a delegated API server subnet, which realmctl does not take; choose private or public"
    )]
    BothAccess,
    /// AKS needs a System pool created with the cluster.
    #[error("AKS needs at least one System pool created with the cluster; the definition has none")]
    NoSystemPool,
}

fn pool_properties(p: &PoolDefinition) -> Result<AgentPoolProperties, BodyError> {
    let os_sku = match &p.nodes.image {
        NodeImageDef::Default(sku) => sku.clone(),
        NodeImageDef::Custom(image) => return Err(BodyError::CustomImage(image.clone())),
    };
    Ok(AgentPoolProperties {
        name: None,
        provisioning_state: None,
        count: Some(p.nodes.desired),
        min_count: Some(p.nodes.min),
        max_count: Some(p.nodes.max),
        enable_auto_scaling: Some(true),
        vm_size: Some(p.nodes.shape.clone()),
        mode: Some(
            match p.mode {
                PoolMode::System => "System",
                PoolMode::User => "User",
            }
            .to_owned(),
        ),
        os_type: Some("Linux".to_owned()),
        os_sku: Some(os_sku),
        pool_type: Some("VirtualMachineScaleSets".to_owned()),
        // The cluster's version, as ARM defaults it.
        orchestrator_version: None,
        current_orchestrator_version: None,
        node_labels: p.nodes.labels.clone(),
        tags: p.nodes.tags.clone(),
        vnet_subnet_id: p.nodes.subnets.first().cloned(),
    })
}

/// The managed cluster PUT of `def`, with its initial pools inline; local accounts disabled,
/// Entra ID authentication with Azure RBAC for `tenant`.
pub fn cluster_body(def: &ClusterDefinition, tenant: &str) -> Result<ManagedCluster, BodyError> {
    let mut pools = Vec::new();
    for p in def.initial_pools() {
        let mut props = pool_properties(p)?;
        props.name = Some(p.nodes.name.clone());
        pools.push(props);
    }
    if !pools.iter().any(|p| p.mode.as_deref() == Some("System")) {
        return Err(BodyError::NoSystemPool);
    }
    let access = &def.cluster.api_access;
    if matches!(access, ApiAccess::Both { .. }) {
        return Err(BodyError::BothAccess);
    }
    let api = ApiServerAccessProfile {
        enable_private_cluster: Some(matches!(access, ApiAccess::Private)),
        enable_vnet_integration: None,
        authorized_ip_ranges: access
            .public_cidrs()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    let identity = match &def.cluster.control_plane_identity {
        Some(id) => Identity {
            kind: "UserAssigned".to_owned(),
            user_assigned_identities: [(id.clone(), serde_json::json!({}))].into(),
        },
        None => Identity {
            kind: "SystemAssigned".to_owned(),
            user_assigned_identities: BTreeMap::new(),
        },
    };
    Ok(ManagedCluster {
        id: None,
        name: None,
        location: def.location.clone(),
        tags: def.cluster.tags.clone(),
        identity: Some(identity),
        properties: ClusterProperties {
            provisioning_state: None,
            kubernetes_version: Some(def.cluster.kubernetes_version.clone()),
            dns_prefix: Some(def.cluster.name.clone()),
            disable_local_accounts: Some(true),
            aad_profile: Some(AadProfile {
                managed: true,
                enable_azure_rbac: true,
                tenant_id: Some(tenant.to_owned()),
            }),
            api_server_access_profile: Some(api),
            network_profile: Some(NetworkProfile {
                network_plugin: "azure".to_owned(),
                network_plugin_mode: Some("overlay".to_owned()),
            }),
            agent_pool_profiles: pools,
            fqdn: None,
            private_fqdn: None,
        },
    })
}

/// The agent pool PUT of `pool`.
pub fn pool_body(pool: &PoolDefinition) -> Result<AgentPool, BodyError> {
    Ok(AgentPool {
        name: None,
        properties: pool_properties(pool)?,
    })
}

/// A provisioning state in the neutral terms.
pub fn status(state: Option<&str>) -> Status {
    match state.unwrap_or("") {
        "Succeeded" => Status::Active,
        "Creating" | "Accepted" => Status::Creating,
        "Updating" | "Upgrading" | "Scaling" | "Starting" | "Migrating" => Status::Updating,
        "Deleting" => Status::Deleting,
        "Failed" => Status::Failed("its provisioning state is Failed".to_owned()),
        "Canceled" => Status::Failed("its creation was canceled".to_owned()),
        other => Status::Other(other.to_owned()),
    }
}

/// `MAJOR.MINOR` of a version (`1.31.2` → `1.31`).
pub fn minor(v: &str) -> String {
    v.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Turns a managed cluster as ARM returned it into the body of its control-plane-only upgrade
/// to `version` (pure): `kubernetesVersion` changes, and every agent pool profile keeps the
/// version its nodes run, so only the control plane moves.
pub fn control_plane_upgrade(mc: &mut serde_json::Value, version: &str) {
    let props = &mut mc["properties"];
    props["kubernetesVersion"] = serde_json::Value::String(version.to_owned());
    if let Some(pools) = props["agentPoolProfiles"].as_array_mut() {
        for p in pools {
            let now = p
                .get("currentOrchestratorVersion")
                .or_else(|| p.get("orchestratorVersion"))
                .cloned();
            if let Some(v) = now {
                p["orchestratorVersion"] = v;
            }
        }
    }
}

/// What ARM reports of a managed cluster, in the definition's terms.
pub fn describe_cluster(mc: &ManagedCluster, asked: &str) -> ClusterShape {
    let p = &mc.properties;
    let api = p.api_server_access_profile.clone().unwrap_or_default();
    let cidrs = api
        .authorized_ip_ranges
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    let api_access = if api.enable_private_cluster == Some(true) {
        ApiAccess::Private
    } else if api.enable_vnet_integration == Some(true) {
        ApiAccess::Both { cidrs }
    } else {
        ApiAccess::Public { cidrs }
    };
    let system = p
        .agent_pool_profiles
        .iter()
        .find(|a| a.mode.as_deref() == Some("System"))
        .or_else(|| p.agent_pool_profiles.first());
    ClusterShape {
        name: mc.name.clone().unwrap_or_else(|| asked.to_owned()),
        kubernetes_version: minor(p.kubernetes_version.as_deref().unwrap_or_default()),
        api_access,
        network: NetworkDef {
            network: None,
            subnets: system
                .and_then(|s| s.vnet_subnet_id.as_deref())
                .map(str::to_ascii_lowercase)
                .into_iter()
                .collect(),
            secondary_ranges: None,
        },
        control_plane_identity: mc
            .identity
            .as_ref()
            .filter(|i| i.kind.eq_ignore_ascii_case("UserAssigned"))
            .and_then(|i| i.user_assigned_identities.keys().next())
            .map(|id| id.to_ascii_lowercase()),
        tags: mc.tags.clone(),
    }
}

/// What ARM reports of an agent pool named `name`, in the definition's terms.
pub fn describe_pool(name: &str, p: &AgentPoolProperties) -> PoolShape {
    PoolShape {
        name: name.to_owned(),
        shape: p.vm_size.clone().unwrap_or_default(),
        min: p.min_count.unwrap_or_default(),
        desired: p.count.unwrap_or_default(),
        max: p.max_count.unwrap_or_default(),
        node_identity: None,
        subnets: p
            .vnet_subnet_id
            .as_deref()
            .map(str::to_ascii_lowercase)
            .into_iter()
            .collect(),
        image: NodeImageDef::Default(p.os_sku.clone().unwrap_or_default()),
        labels: p.node_labels.clone(),
        tags: p.tags.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::definition::{compare_cluster, compare_pool};
    use crate::spec::Provider;

    fn def() -> ClusterDefinition {
        let (_d, spec) = crate::engine::test_support::spec(Provider::Aks, "digibee.acme.com");
        crate::cloud::access::definition(&spec)
    }

    #[test]
    fn a_control_plane_upgrade_changes_the_version_and_holds_every_pool_where_it_runs() {
        let mut mc = serde_json::json!({
            "location": "westeurope",
            "properties": {
                "kubernetesVersion": "1.34", "dnsPrefix": "x", "someFieldArmKeeps": {"a": 1},
                "agentPoolProfiles": [
                    {"name": "system", "orchestratorVersion": "1.34", "currentOrchestratorVersion": "1.34.2"},
                    {"name": "workers", "currentOrchestratorVersion": "1.33.5"}
                ]
            }
        });
        control_plane_upgrade(&mut mc, "1.35");
        assert_eq!(mc["properties"]["kubernetesVersion"], "1.35");
        assert_eq!(mc["properties"]["someFieldArmKeeps"]["a"], 1);
        let pools = mc["properties"]["agentPoolProfiles"].as_array().unwrap();
        assert_eq!(pools[0]["orchestratorVersion"], "1.34.2");
        assert_eq!(pools[1]["orchestratorVersion"], "1.33.5");
    }

    #[test]
    fn the_put_body_is_the_definition() {
        let def = def();
        let body = cluster_body(&def, "00000000-0000-0000-0000-000000000001").unwrap();
        insta::assert_snapshot!(
            "aks_cluster_put",
            serde_json::to_string_pretty(&body).unwrap()
        );
    }

    #[test]
    fn what_is_sent_describes_back_as_the_definition() {
        let def = def();
        for access in [
            ApiAccess::Private,
            ApiAccess::Public {
                cidrs: vec!["203.0.113.0/24".parse().unwrap()],
            },
        ] {
            let mut def = def.clone();
            def.cluster.api_access = access;
            def.cluster.control_plane_identity = Some("/subscriptions/x/resourcegroups/g/providers/microsoft.managedidentity/userassignedidentities/aks".into());
            // Round trip through JSON, as ARM stores and returns it, ids in another case.
            let sent = serde_json::to_string(&cluster_body(&def, "t").unwrap())
                .unwrap()
                .replace("resourcegroups", "resourceGroups")
                .replace("/subnets/", "/Subnets/");
            let sent: serde_json::Value = serde_json::from_str(&sent).unwrap();
            let mut back: ManagedCluster = serde_json::from_value(sent).unwrap();
            back.properties.kubernetes_version =
                Some(format!("{}.4", def.cluster.kubernetes_version));
            let shape = describe_cluster(&back, &def.cluster.name);
            assert!(
                compare_cluster(&def.cluster, &shape).is_empty(),
                "{:?}",
                compare_cluster(&def.cluster, &shape)
            );
            let pool = &def.pools[0];
            let props = &back.properties.agent_pool_profiles[0];
            let shape = describe_pool(&pool.nodes.name, props);
            assert!(compare_pool(&pool.nodes, &shape).is_empty());
        }
    }

    #[test]
    fn a_custom_image_or_no_system_pool_is_refused() {
        let mut d = def();
        d.pools[0].nodes.image = NodeImageDef::Custom("img".into());
        assert_eq!(
            cluster_body(&d, "t").unwrap_err(),
            BodyError::CustomImage("img".into())
        );
        let mut d = def();
        d.pools[0].mode = PoolMode::User;
        assert_eq!(cluster_body(&d, "t").unwrap_err(), BodyError::NoSystemPool);
        let mut d = def();
        d.cluster.api_access = ApiAccess::Both {
            cidrs: vec!["198.51.100.7/32".parse().unwrap()],
        };
        assert_eq!(cluster_body(&d, "t").unwrap_err(), BodyError::BothAccess);
    }

    #[test]
    fn provisioning_states_map_to_statuses() {
        assert_eq!(status(Some("Succeeded")), Status::Active);
        assert_eq!(status(Some("Creating")), Status::Creating);
        assert_eq!(status(Some("Upgrading")), Status::Updating);
        assert_eq!(status(Some("Deleting")), Status::Deleting);
        assert!(matches!(status(Some("Failed")), Status::Failed(_)));
        assert!(matches!(status(Some("Canceled")), Status::Failed(_)));
        assert_eq!(status(Some("Stopped")), Status::Other("Stopped".into()));
    }
}
