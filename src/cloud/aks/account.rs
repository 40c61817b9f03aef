//! Phases 1–3 on ARM: the identity in the token's claims, the subscription and what is in it
//! (resource group, resource providers, the node subnet, compute usages, Kubernetes versions),
//! and `Microsoft.Authorization/permissions` at each scope, evaluated by [`super::rbac`].

use std::collections::BTreeMap;

use futures::FutureExt;
use serde::Deserialize;

use super::credential::{self, Source};
use super::{AksProvider, rbac};
use crate::cloud::facts::{
    AccountFacts, AccountQuery, Identity, Lookup, PermissionFacts, QuotaFacts, RequiredPermission,
    ServiceFacts, SubnetFacts,
};
use crate::cloud::{
    AccountInspector, CloudError, CloudErrorKind, CloudFuture, IdentitySource, PermissionChecker,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscription {
    subscription_id: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    display_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceProvider {
    #[serde(default)]
    registration_state: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subnet {
    id: String,
    properties: SubnetProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubnetProperties {
    #[serde(default)]
    address_prefix: Option<String>,
    #[serde(default)]
    address_prefixes: Vec<String>,
    #[serde(default)]
    ip_configurations: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Usage {
    name: UsageName,
    current_value: f64,
    limit: f64,
}

#[derive(Deserialize)]
struct UsageName {
    value: String,
}

#[derive(Deserialize)]
struct Versions {
    values: Vec<Version>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Version {
    version: String,
    #[serde(default)]
    is_preview: bool,
}

/// Free addresses of a subnet (pure): its size less Azure's 5 reserved and those in use.
pub fn free_addresses(prefix: &str, in_use: usize) -> Option<u64> {
    let net: ipnet::IpNet = prefix.parse().ok()?;
    let bits = net.max_prefix_len() - net.prefix_len();
    let size = 1u128.checked_shl(u32::from(bits)).unwrap_or(u128::MAX);
    let size = u64::try_from(size).unwrap_or(u64::MAX);
    Some(size.saturating_sub(5).saturating_sub(in_use as u64))
}

impl IdentitySource for AksProvider {
    fn identity(&self) -> CloudFuture<'_, Identity> {
        async move {
            let token = self.token().await?;
            let claims = credential::claims(token.token.secret()).unwrap_or_default();
            let app = claims.appid.or(claims.azp);
            let mut principal = match (&claims.oid, &claims.upn) {
                (Some(oid), Some(upn)) => format!("{upn} (object id {oid})"),
                (Some(oid), None) => format!("object id {oid}"),
                (None, _) => "an identity whose token names no object id".to_owned(),
            };
            if let Some(app) = app {
                principal.push_str(&format!(", application {app}"));
            }
            if let Some(t) = claims.tid {
                principal.push_str(&format!(", tenant {t}"));
            }
            Ok(Identity {
                principal,
                account: self.settings.subscription.clone(),
                source: self
                    .chain
                    .answered()
                    .map_or("unknown", Source::describe)
                    .to_owned(),
                expires_at: Some(token.expires_on),
            })
        }
        .boxed()
    }
}

impl AccountInspector for AksProvider {
    fn account<'a>(&'a self, query: &'a AccountQuery) -> CloudFuture<'a, AccountFacts> {
        async move {
            let s = &self.settings;
            let sub: Subscription = self
                .arm
                .get_existing(
                    "arm:GetSubscription",
                    &format!("/subscriptions/{}", s.subscription),
                    &self.api.subscriptions,
                )
                .await?;
            if !sub.state.eq_ignore_ascii_case("Enabled") {
                let mut e = CloudError::new(
                    CloudErrorKind::AccessDenied,
                    "arm:GetSubscription",
                    format!(
                        "subscription {} ({}) is {}, not Enabled: nothing can be created in it",
                        sub.subscription_id,
                        crate::text::one_line(&sub.display_name),
                        crate::text::one_line(&sub.state)
                    ),
                );
                e.code = Some(format!("Subscription{}", crate::text::one_line(&sub.state)));
                return Err(e);
            }
            let group: Option<serde::de::IgnoredAny> = self
                .arm
                .get("arm:GetResourceGroup", &self.group_path(), &self.api.resources)
                .await?;
            if group.is_none() {
                let mut e = CloudError::new(
                    CloudErrorKind::NotFound,
                    "arm:GetResourceGroup",
                    format!(
                        "resource group {} does not exist in subscription {}; create it (`az group create -n {} -l {}`) or name another in cloud.aks.resourceGroup",
                        s.resource_group, s.subscription, s.resource_group, s.region
                    ),
                );
                e.code = Some("ResourceGroupNotFound".into());
                return Err(e);
            }
            let mut services = Vec::new();
            for ns in &query.services {
                let p: Option<ResourceProvider> = self
                    .arm
                    .get(
                        "arm:GetProvider",
                        &format!("/subscriptions/{}/providers/{ns}", s.subscription),
                        &self.api.resources,
                    )
                    .await?;
                services.push(ServiceFacts {
                    name: ns.clone(),
                    enabled: match p {
                        Some(p) => Lookup::Found(p.registration_state.eq_ignore_ascii_case("Registered")),
                        None => Lookup::Found(false),
                    },
                });
            }
            let mut subnets = Vec::new();
            for id in &query.subnets {
                let got: Option<Subnet> =
                    self.arm.get("arm:GetSubnet", id, &self.api.network).await?;
                if let Some(sn) = got {
                    let prefix = sn
                        .properties
                        .address_prefix
                        .clone()
                        .or_else(|| sn.properties.address_prefixes.first().cloned())
                        .unwrap_or_default();
                    let network = sn
                        .id
                        .rsplit_once("/subnets/")
                        .map_or(String::new(), |(v, _)| v.to_owned());
                    subnets.push(SubnetFacts {
                        id: id.clone(),
                        network,
                        zone: None,
                        free_addresses: free_addresses(&prefix, sn.properties.ip_configurations.len())
                            .unwrap_or(0),
                secondary_ranges: Vec::new(),
                    });
                }
            }
            let usages: Vec<Usage> = self
                .arm
                .list(
                    "arm:ListUsages",
                    &format!(
                        "/subscriptions/{}/providers/Microsoft.Compute/locations/{}/usages",
                        s.subscription, s.region
                    ),
                    &self.api.compute,
                )
                .await?;
            let quotas = query
                .quotas
                .iter()
                .map(|q| {
                    match usages
                        .iter()
                        .find(|u| u.name.value.eq_ignore_ascii_case(&q.code))
                    {
                        Some(u) => QuotaFacts {
                            code: q.code.clone(),
                            limit: Lookup::Found(u.limit),
                            usage: Some(u.current_value),
                        },
                        None => QuotaFacts {
                            code: q.code.clone(),
                            limit: Lookup::Unknown(format!(
                                "the region's compute usages list no `{}`",
                                q.code
                            )),
                            usage: None,
                        },
                    }
                })
                .collect();
            let versions = match self
                .arm
                .get_existing::<Versions>(
                    "arm:ListKubernetesVersions",
                    &format!(
                        "/subscriptions/{}/providers/Microsoft.ContainerService/locations/{}/kubernetesVersions",
                        s.subscription, s.region
                    ),
                    self.cs(),
                )
                .await
            {
                Ok(v) => Lookup::Found(
                    v.values
                        .into_iter()
                        .filter(|v| !v.is_preview)
                        .map(|v| v.version.split('.').take(2).collect::<Vec<_>>().join("."))
                        .collect(),
                ),
                Err(e) if e.kind == CloudErrorKind::NotFound => {
                    Lookup::Unknown(format!("AKS lists no versions for {}", s.region))
                }
                Err(e) => return Err(e),
            };
            Ok(AccountFacts {
                account: sub.subscription_id,
                subnets,
                identities: Vec::new(),
                services,
                versions,
                quotas,
            })
        }
        .boxed()
    }
}

impl PermissionChecker for AksProvider {
    fn missing_permissions<'a>(
        &'a self,
        required: &'a [RequiredPermission],
    ) -> CloudFuture<'a, PermissionFacts> {
        async move {
            let token = self.token().await?;
            let principal = credential::claims(token.token.secret())
                .and_then(|c| c.oid)
                .unwrap_or_else(|| "the install identity".to_owned());
            let mut by_scope: BTreeMap<&str, Vec<rbac::Permission>> = BTreeMap::new();
            for r in required {
                if !by_scope.contains_key(r.resource.as_str()) {
                    let list: Vec<rbac::Permission> = self
                        .arm
                        .list(
                            "arm:ListPermissions",
                            &format!(
                                "{}/providers/Microsoft.Authorization/permissions",
                                r.resource
                            ),
                            &self.api.authorization,
                        )
                        .await?;
                    by_scope.insert(&r.resource, list);
                }
            }
            let missing = required
                .iter()
                .filter(|r| !rbac::allows(&by_scope[r.resource.as_str()], &r.action))
                .cloned()
                .collect();
            Ok(PermissionFacts {
                principal,
                missing,
                checked: required.len(),
            })
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_addresses_leave_out_azures_five() {
        assert_eq!(free_addresses("10.240.0.0/24", 0), Some(251));
        assert_eq!(free_addresses("10.240.0.0/24", 10), Some(241));
        assert_eq!(free_addresses("10.240.0.0/29", 10), Some(0));
        assert_eq!(free_addresses("nonsense", 0), None);
    }
}
