//! Tearing an AKS realm down through Azure Resource Manager: `DELETE` of its agent pools and
//! managed cluster (followed through ARM's asynchronous-operation protocol; AKS deletes the
//! cluster's node resource group with it), and the sweep — resources and resource groups
//! carrying the cluster's ownership tags, listed with ARM's `$filter=tagName eq … and tagValue
//! eq …` and deleted by id. What is deleted is decided by [`crate::cloud::teardown`].

use futures::FutureExt;
use serde::Deserialize;

use super::AksProvider;
use crate::cloud::teardown::{Found, ResourceKind, SweepQuery, Teardown};
use crate::cloud::{CloudError, CloudErrorKind, CloudFuture};

/// One resource (or resource group) of an ARM list.
#[derive(Deserialize)]
struct Listed {
    id: String,
    name: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

/// The sweep kind of an ARM resource type (pure; types are case-insensitive).
pub fn kind_of(arm_type: &str) -> Option<ResourceKind> {
    Some(match arm_type.to_ascii_lowercase().as_str() {
        "microsoft.network/loadbalancers" => ResourceKind::LoadBalancer,
        "microsoft.network/publicipaddresses" => ResourceKind::PublicAddress,
        "microsoft.network/networkinterfaces" => ResourceKind::NetworkInterface,
        "microsoft.compute/disks" => ResourceKind::Volume,
        "microsoft.network/networksecuritygroups" => ResourceKind::SecurityGroup,
        "microsoft.resources/resourcegroups" => ResourceKind::ResourceGroup,
        _ => return None,
    })
}

/// ARM's `$filter` for one tag (quotes doubled, as OData writes them).
fn tag_filter(key: &str, value: &str) -> String {
    format!(
        "tagName eq '{}' and tagValue eq '{}'",
        key.replace('\'', "''"),
        value.replace('\'', "''")
    )
}

impl AksProvider {
    fn sub_path(&self) -> String {
        format!("/subscriptions/{}", self.settings.subscription)
    }

    /// The api-version of a resource's provider.
    fn api_of(&self, kind: ResourceKind) -> &str {
        match kind {
            ResourceKind::Volume => &self.api.compute,
            ResourceKind::ResourceGroup => &self.api.resources,
            _ => &self.api.network,
        }
    }
}

impl Teardown for AksProvider {
    fn leftovers<'a>(
        &'a self,
        kind: ResourceKind,
        query: &'a SweepQuery,
    ) -> CloudFuture<'a, Vec<Found>> {
        async move {
            let mut out: Vec<Found> = Vec::new();
            let (path, op) = if kind == ResourceKind::ResourceGroup {
                (
                    format!("{}/resourcegroups", self.sub_path()),
                    "arm:ListResourceGroups",
                )
            } else {
                (
                    format!("{}/resources", self.sub_path()),
                    "arm:ListResources",
                )
            };
            for m in &query.marks {
                let Some(value) = &m.value else {
                    continue;
                };
                let filter = tag_filter(&m.key, value);
                let listed: Vec<Listed> = self
                    .arm
                    .list_where(op, &path, &self.api.resources, &[("$filter", &filter)])
                    .await?;
                out.extend(
                    listed
                        .into_iter()
                        .filter(|l| {
                            kind == ResourceKind::ResourceGroup || kind_of(&l.kind) == Some(kind)
                        })
                        .map(|l| Found {
                            kind,
                            id: l.id,
                            name: l.name,
                            tags: l.tags,
                            within: None,
                        }),
                );
            }
            if kind == ResourceKind::Volume {
                // The disks in the cluster's node resource group go with the cluster, whatever
                // their tags (the disk CSI driver's name no cluster).
                for g in self.leftovers(ResourceKind::ResourceGroup, query).await? {
                    let listed: Vec<Listed> = self
                        .arm
                        .list(
                            "arm:ListResourceGroupResources",
                            &format!("{}/resourceGroups/{}/resources", self.sub_path(), g.name),
                            &self.api.resources,
                        )
                        .await?;
                    out.extend(
                        listed
                            .into_iter()
                            .filter(|l| kind_of(&l.kind) == Some(ResourceKind::Volume))
                            .map(|l| Found {
                                kind,
                                id: l.id,
                                name: l.name,
                                tags: l.tags,
                                within: Some(format!("node resource group {}", g.name)),
                            }),
                    );
                }
            }
            out.sort();
            out.dedup_by(|a, b| a.id.eq_ignore_ascii_case(&b.id));
            Ok(out)
        }
        .boxed()
    }

    fn delete<'a>(&'a self, found: &'a Found) -> CloudFuture<'a, ()> {
        async move {
            match found.kind {
                ResourceKind::Cluster => {
                    self.arm
                        .delete(
                            "arm:DeleteManagedCluster",
                            &self.cluster_path(&found.id),
                            self.cs(),
                        )
                        .await
                }
                ResourceKind::NodePool => {
                    let (cluster, pool) = found.id.split_once('/').ok_or_else(|| {
                        CloudError::new(
                            CloudErrorKind::Invalid,
                            "arm:DeleteAgentPool",
                            format!("node pool id `{}` is not CLUSTER/POOL", found.id),
                        )
                    })?;
                    self.arm
                        .delete(
                            "arm:DeleteAgentPool",
                            &self.pool_path(cluster, pool),
                            self.cs(),
                        )
                        .await
                }
                ResourceKind::Vpn(part) => Err(CloudError::new(
                    CloudErrorKind::Invalid,
                    "destroy:delete",
                    format!("the VPN {part} is deleted with its definition"),
                )),
                kind => {
                    // A swept resource: by the id ARM listed, and only under this
                    // subscription (the token goes with the request).
                    if !found
                        .id
                        .to_ascii_lowercase()
                        .starts_with(&format!("{}/", self.sub_path().to_ascii_lowercase()))
                    {
                        return Err(CloudError::new(
                            CloudErrorKind::Invalid,
                            "arm:DeleteResource",
                            format!("{} is not in this subscription", found.id),
                        ));
                    }
                    self.arm
                        .delete("arm:DeleteResource", &found.id, self.api_of(kind))
                        .await
                }
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_types_map_to_sweep_kinds_without_regard_to_case() {
        assert_eq!(
            kind_of("Microsoft.Network/publicIPAddresses"),
            Some(ResourceKind::PublicAddress)
        );
        assert_eq!(
            kind_of("microsoft.compute/DISKS"),
            Some(ResourceKind::Volume)
        );
        assert_eq!(kind_of("Microsoft.Compute/virtualMachines"), None);
    }

    #[test]
    fn tag_filters_double_their_quotes() {
        assert_eq!(
            tag_filter("k8s-azure-cluster-name", "o'brien"),
            "tagName eq 'k8s-azure-cluster-name' and tagValue eq 'o''brien'"
        );
    }
}
