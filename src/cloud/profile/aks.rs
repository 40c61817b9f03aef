//! Azure Kubernetes Service as a profile: a subscription and resource group, the resource
//! providers the install needs registered, the regional and VM-family vCPU usage, Azure tag
//! rules (no `< > % & \ ? /` in names), agent pool names of `[a-z][a-z0-9]{0,11}`, the system
//! pool created inline with the cluster, an Azure custom role as the least-privilege document,
//! and Entra ID tokens that the chain refreshes.

use std::collections::BTreeMap;

use super::{
    AccountAsk, CloudParts, CredentialRenewal, PolicyDoc, Profile, TagKeys, build_definition,
    one_address_per_node, quota_queries, rules,
};
use crate::cloud::definition::{ApiAccess, ClusterDefinition, NetworkDef, NodeImageDef, PoolMode};
use crate::cloud::facts::{AccountQuery, QuotaQuery};
use crate::cloud::sizing::PoolSize;
use crate::spec::{CloudAccount, Provider, Spec};

/// The OS SKU of the default node image.
const DEFAULT_OS_SKU: &str = "AzureLinux";

/// The AKS profile.
pub struct Aks;

/// The one AKS profile.
pub const AKS: Aks = Aks;

/// The AKS block of a spec.
struct Block<'a> {
    subscription: &'a str,
    group: &'a str,
    tenant: &'a str,
    subnet: &'a str,
    identity: Option<&'a str>,
}

fn block(spec: &Spec) -> Block<'_> {
    match &spec.cloud.account {
        CloudAccount::Aks {
            subscription_id,
            resource_group,
            tenant_id,
            subnet_id,
            identity,
        } => Block {
            subscription: subscription_id,
            group: resource_group,
            tenant: tenant_id,
            subnet: subnet_id,
            identity: identity.as_deref(),
        },
        // The spec resolver gives an AKS spec an AKS block.
        _ => Block {
            subscription: "",
            group: "",
            tenant: "",
            subnet: "",
            identity: None,
        },
    }
}

/// The compute usage name of a VM size's family (`Standard_D4s_v5` → `standardDSv5Family`,
/// `Standard_D4as_v5` → `standardDASv5Family`), as `Microsoft.Compute/locations/usages`
/// names it; `None` for a name of another form.
pub fn vm_family(size: &str) -> Option<String> {
    let rest = size.strip_prefix("Standard_")?;
    let (body, version) = rest.split_once('_')?;
    let series: String = body.chars().take_while(char::is_ascii_uppercase).collect();
    let after = &body[series.len()..];
    let digits = after.chars().take_while(char::is_ascii_digit).count();
    let features = &after[digits..];
    if series.is_empty() || digits == 0 || !version.starts_with('v') {
        return None;
    }
    Some(format!(
        "standard{series}{}{version}Family",
        features.to_ascii_uppercase()
    ))
}

/// The calendar of [`Profile::kubernetes_support`], parsed once.
static CALENDAR: std::sync::OnceLock<super::support::Calendar> = std::sync::OnceLock::new();

impl Profile for Aks {
    fn provider(&self) -> Provider {
        Provider::Aks
    }

    fn kubernetes_support(&self) -> &'static super::support::Calendar {
        super::support::embedded(&CALENDAR, include_str!("versions/aks.yaml"))
    }

    fn title(&self) -> &'static str {
        "Azure Kubernetes Service"
    }

    fn tag_keys(&self) -> TagKeys {
        super::DASHED_TAG_KEYS
    }

    /// The tag AKS puts on a cluster's node resource group (`aks-managed-cluster-name`), and
    /// the tags of the Azure cloud provider on the public addresses and load balancers it makes
    /// for Services (`k8s-azure-cluster-name`, formerly `kubernetes-cluster-name`).
    fn leftover_marks(&self, cluster: &str) -> Vec<crate::cloud::teardown::Mark> {
        use crate::cloud::teardown::Mark;
        vec![
            Mark::exactly("aks-managed-cluster-name", cluster),
            Mark::exactly("k8s-azure-cluster-name", cluster),
            Mark::exactly("kubernetes-cluster-name", cluster),
        ]
    }

    /// AKS deletes the node resource group with the cluster, and the disks of persistent
    /// volumes in it.
    fn volumes_go_with_cluster(&self) -> bool {
        true
    }

    fn check_tag_key(&self, key: &str) -> Result<(), String> {
        rules::azure_tag_name(key)
    }

    fn check_tag_value(&self, value: &str) -> Result<(), String> {
        rules::azure_tag_value(value)
    }

    fn check_pool_name(&self, name: &str) -> Result<(), String> {
        rules::aks_pool_name(name)
    }

    fn check_cluster_name(&self, name: &str) -> Result<(), String> {
        rules::aks_cluster_name(name)
    }

    fn unsupported(&self, def: &ClusterDefinition) -> Vec<String> {
        let mut out = Vec::new();
        if matches!(def.cluster.api_access, ApiAccess::Both { .. }) {
            out.push("cloud.cluster.apiAccess `both`: AKS serves a private and a public API endpoint together only with API Server VNet Integration, which needs a delegated subnet for the API server that realmctl does not take yet; choose `private` (a private cluster) or `public` (authorized IP ranges)".to_owned());
        }
        for p in &def.pools {
            if let NodeImageDef::Custom(image) = &p.nodes.image {
                out.push(format!(
                    "cloud.cluster.nodeImage `{image}`: AKS runs nodes on its own images (AzureLinux, Ubuntu) and takes no custom image; use {{type: default}}"
                ));
            }
        }
        // A Key Vault name has 3 to 24 characters (and is global).
        if let Some(v) = &def.vpn
            && v.secret.len() > 24
        {
            out.push(format!(
                "vpn: the realm VPN's key vault would be named `{}` ({} characters), and Azure takes at most 24; use a realm name of at most 16 characters",
                v.secret,
                v.secret.len()
            ));
        }
        out
    }

    fn definition(&self, spec: &Spec, pool: &PoolSize) -> ClusterDefinition {
        let b = block(spec);
        // Azure resource ids compare without regard to case, and ARM may describe them back in
        // another case: the definition holds them in lower case, as the AKS client describes
        // them, so adoption never turns on a letter's case.
        let subnet = b.subnet.to_ascii_lowercase();
        build_definition(
            self,
            spec,
            pool,
            CloudParts {
                scope: format!(
                    "/subscriptions/{}/resourceGroups/{}",
                    b.subscription, b.group
                ),
                // The nodes join the customer's subnet (Azure CNI overlay: pods get addresses
                // from the overlay, nodes from the subnet).
                network: NetworkDef {
                    network: None,
                    subnets: vec![subnet.clone()],
                    secondary_ranges: None,
                },
                // A user-assigned identity the spec names, else system-assigned (AKS manages it).
                control_plane_identity: b.identity.map(str::to_ascii_lowercase),
                // AKS creates a cluster with at least one System pool inline: the workers.
                mode: PoolMode::System,
                with_cluster: true,
                node_identity: None,
                pool_subnets: vec![subnet],
                default_image: DEFAULT_OS_SKU,
            },
        )
    }

    fn account(&self, spec: &Spec, def: &ClusterDefinition, _pool: &PoolSize) -> AccountAsk {
        let subscription = block(spec).subscription;
        let region = &spec.cloud.region;
        let total = QuotaQuery {
            code: "cores".into(),
            name: format!("Total Regional vCPUs ({region})"),
        };
        AccountAsk {
            query: AccountQuery {
                subnets: def.cluster.network.subnets.clone(),
                identities: Vec::new(),
                services: vec![
                    "Microsoft.ContainerService".into(),
                    "Microsoft.Network".into(),
                    "Microsoft.Compute".into(),
                ],
                quotas: quota_queries(def, region, vec![total], vm_family),
                secondary_ranges: Vec::new(),
            },
            account: subscription.to_owned(),
            account_field: "cloud.aks.subscriptionId",
            subnets_field: "cloud.aks.subnetId",
            min_zones: 0,
            reserved_per_subnet: 0,
            addresses: one_address_per_node(def, "Azure CNI overlay"),
            vcpu: (def.max_vcpu(), super::eks::vcpu_why(def)),
            kubernetes_version: def.cluster.kubernetes_version.clone(),
            service_fix: "az provider register --namespace {service}",
        }
    }

    fn credential_renewal(&self) -> CredentialRenewal {
        CredentialRenewal::Refreshing
    }

    fn permission_vars(&self, spec: &Spec) -> BTreeMap<&'static str, String> {
        let b = block(spec);
        [
            ("subscription", b.subscription.to_owned()),
            ("resourceGroup", b.group.to_owned()),
            ("tenant", b.tenant.to_owned()),
            ("subnet", b.subnet.to_owned()),
            ("region", spec.cloud.region.clone()),
            ("cluster", spec.cloud.cluster.name.clone()),
            ("realm", spec.name.clone()),
            // AKS's default name of the cluster's node resource group (the definition sets
            // none), which `destroy` sweeps.
            (
                "nodeResourceGroup",
                format!(
                    "MC_{}_{}_{}",
                    b.group, spec.cloud.cluster.name, spec.cloud.region
                ),
            ),
        ]
        .into()
    }

    fn policy(&self) -> PolicyDoc {
        PolicyDoc {
            template: "policies/aks-installer-role.json",
            kind: "Azure custom role",
            language: "json",
        }
    }

    fn vpn_host(&self) -> crate::cloud::vpn::def::HostProfile {
        crate::cloud::vpn::def::HostProfile {
            image: "Canonical:ubuntu-24_04-lts:server:latest",
            size: "Standard_B2s",
            read_key: "python3 -c \"import json,sys,urllib.request as u;t=json.load(u.urlopen(u.Request('http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net',headers={'Metadata':'true'})))['access_token'];print(json.load(u.urlopen(u.Request('https://'+sys.argv[1]+'.vault.azure.net/secrets/psk?api-version=7.4',headers={'Authorization':'Bearer '+t})))['value'])\" {secret}",
            store: "Azure Key Vault; share it with the customer through an access role on the secret",
            zone: None,
        }
    }

    fn storage_scheme(&self) -> &'static str {
        "az"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_sizes_map_to_their_usage_family() {
        assert_eq!(
            vm_family("Standard_D4s_v5").as_deref(),
            Some("standardDSv5Family")
        );
        assert_eq!(
            vm_family("Standard_D16s_v5").as_deref(),
            Some("standardDSv5Family")
        );
        assert_eq!(
            vm_family("Standard_D4as_v5").as_deref(),
            Some("standardDASv5Family")
        );
        assert_eq!(
            vm_family("Standard_E8ds_v5").as_deref(),
            Some("standardEDSv5Family")
        );
        assert_eq!(
            vm_family("Standard_D4_v5").as_deref(),
            Some("standardDv5Family")
        );
        assert_eq!(vm_family("Basic_A1"), None);
        assert_eq!(vm_family("Standard_D4s"), None);
    }
}
