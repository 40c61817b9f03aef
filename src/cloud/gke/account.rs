//! Phases 1–3 on Google Cloud: who the credentials are ([`super::credential::Principal`]), the
//! project and what is in it (its state, the enabled services, the subnetwork and its secondary
//! ranges, the region's CPU quotas, the Kubernetes versions GKE offers), and
//! `projects.testIamPermissions` with the permissions the install needs.

use std::collections::BTreeSet;

use futures::FutureExt;
use serde::Deserialize;

use super::GkeProvider;
use super::credential::Principal;
use crate::cloud::facts::{
    AccountFacts, AccountQuery, Identity, Lookup, PermissionFacts, QuotaFacts, RequiredPermission,
    ServiceFacts, SubnetFacts,
};
use crate::cloud::{
    AccountInspector, CloudError, CloudErrorKind, CloudFuture, IdentitySource, PermissionChecker,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Project {
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    state: String,
}

#[derive(Deserialize)]
struct Services {
    #[serde(default)]
    services: Vec<Service>,
}

#[derive(Deserialize)]
struct Service {
    name: String,
    #[serde(default)]
    state: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subnetwork {
    name: String,
    #[serde(default)]
    network: String,
    #[serde(default)]
    ip_cidr_range: String,
    #[serde(default)]
    secondary_ip_ranges: Vec<SecondaryRange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecondaryRange {
    range_name: String,
}

#[derive(Deserialize)]
struct Region {
    #[serde(default)]
    quotas: Vec<Quota>,
}

#[derive(Deserialize)]
struct Quota {
    metric: String,
    limit: f64,
    usage: f64,
}

#[derive(Deserialize)]
struct Granted {
    #[serde(default)]
    permissions: Vec<String>,
}

/// Addresses of a subnetwork's primary range the nodes may take (pure): its size less the four
/// Google reserves in every primary range. Addresses other VMs hold are not counted (Compute
/// Engine lists them per instance, not per subnetwork).
pub fn usable_addresses(cidr: &str) -> Option<u64> {
    let net: ipnet::IpNet = cidr.parse().ok()?;
    let bits = net.max_prefix_len() - net.prefix_len();
    let size = 1u128.checked_shl(u32::from(bits)).unwrap_or(u128::MAX);
    Some(u64::try_from(size).unwrap_or(u64::MAX).saturating_sub(4))
}

/// The last segment of a Compute Engine URL or path (`…/global/networks/vpc` → `vpc`).
pub fn short_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

impl IdentitySource for GkeProvider {
    fn identity(&self) -> CloudFuture<'_, Identity> {
        async move {
            // A token proves the chain works (an exchange at the token endpoint, the metadata
            // server or the impersonation API); a service-account key signs its own, so a
            // revoked key shows at the first API call instead.
            self.rest().await?.token("login:token").await?;
            let (principal, how) = match &self.connected().await?.chain.principal {
                Principal::Named { email, how } => (email.clone(), how.clone()),
                Principal::Metadata { root } => (
                    self.rest().await?.metadata_email(root).await?,
                    "the metadata server's default service account".to_owned(),
                ),
                Principal::Unnamed { why } => ("an unnamed principal".to_owned(), why.clone()),
            };
            Ok(Identity {
                principal,
                account: self.settings.project.clone(),
                source: format!("{}; principal: {how}", self.connected().await?.chain.source),
                expires_at: None,
            })
        }
        .boxed()
    }
}

impl GkeProvider {
    async fn project_state(&self) -> Result<(), CloudError> {
        let op = "crm:GetProject";
        let p = &self.settings.project;
        let url = format!("{}/v3/projects/{p}", self.endpoints.resource_manager);
        let got: Option<Project> = self.rest().await?.get(op, &url).await?;
        let project = got.ok_or_else(|| {
            CloudError::new(
                CloudErrorKind::NotFound,
                op,
                format!("project {p} not found"),
            )
        })?;
        if project.state != "ACTIVE" {
            return Err(CloudError::new(
                CloudErrorKind::Invalid,
                op,
                format!(
                    "project {} is {}, not ACTIVE",
                    crate::text::one_line(&project.project_id),
                    crate::text::one_line(&project.state)
                ),
            ));
        }
        Ok(())
    }

    async fn services(&self, names: &[String]) -> Result<Vec<ServiceFacts>, CloudError> {
        let p = &self.settings.project;
        let mut url = format!(
            "{}/v1/projects/{p}/services:batchGet?",
            self.endpoints.service_usage
        );
        let query: Vec<String> = names
            .iter()
            .map(|n| format!("names=projects/{p}/services/{n}"))
            .collect();
        url.push_str(&query.join("&"));
        let got: Option<Services> = self
            .rest()
            .await?
            .get("serviceusage:BatchGetServices", &url)
            .await?;
        let got = got.map(|s| s.services).unwrap_or_default();
        Ok(names
            .iter()
            .map(|n| {
                let state = got.iter().find(|s| short_name(&s.name) == n.as_str());
                ServiceFacts {
                    name: n.clone(),
                    enabled: Lookup::Found(state.is_some_and(|s| s.state == "ENABLED")),
                }
            })
            .collect())
    }

    async fn subnetworks(&self, names: &[String]) -> Result<Vec<SubnetFacts>, CloudError> {
        let mut out = Vec::new();
        for name in names {
            let url = format!(
                "{}/compute/v1/projects/{}/regions/{}/subnetworks/{name}",
                self.endpoints.compute, self.settings.project, self.settings.region
            );
            let got: Option<Subnetwork> = self
                .rest()
                .await?
                .get("compute:GetSubnetwork", &url)
                .await?;
            if let Some(s) = got {
                out.push(SubnetFacts {
                    id: s.name.clone(),
                    network: short_name(&s.network).to_owned(),
                    zone: None,
                    free_addresses: usable_addresses(&s.ip_cidr_range).unwrap_or(0),
                    secondary_ranges: s
                        .secondary_ip_ranges
                        .into_iter()
                        .map(|r| r.range_name)
                        .collect(),
                });
            }
        }
        Ok(out)
    }

    async fn quotas(&self, query: &AccountQuery) -> Result<Vec<QuotaFacts>, CloudError> {
        let url = format!(
            "{}/compute/v1/projects/{}/regions/{}",
            self.endpoints.compute, self.settings.project, self.settings.region
        );
        let region: Option<Region> = self.rest().await?.get("compute:GetRegion", &url).await?;
        let region = region.ok_or_else(|| {
            CloudError::new(
                CloudErrorKind::NotFound,
                "compute:GetRegion",
                format!("region {} not found", self.settings.region),
            )
        })?;
        Ok(query
            .quotas
            .iter()
            .map(
                |q| match region.quotas.iter().find(|x| x.metric == q.code) {
                    Some(x) => QuotaFacts {
                        code: q.code.clone(),
                        limit: Lookup::Found(x.limit),
                        usage: Some(x.usage),
                    },
                    None => QuotaFacts {
                        code: q.code.clone(),
                        limit: Lookup::Unknown(format!("the region reports no {} quota", q.code)),
                        usage: None,
                    },
                },
            )
            .collect())
    }
}

impl AccountInspector for GkeProvider {
    fn account<'a>(&'a self, query: &'a AccountQuery) -> CloudFuture<'a, AccountFacts> {
        async move {
            self.project_state().await?;
            let services = self.services(&query.services).await?;
            let subnets = self.subnetworks(&query.subnets).await?;
            let quotas = self.quotas(query).await?;
            let versions = match self.offered_versions().await {
                Ok(v) if v.is_empty() => Lookup::Unknown(format!(
                    "GKE offers no versions in {}",
                    self.settings.region
                )),
                Ok(v) => Lookup::Found(v),
                Err(e) if e.kind == CloudErrorKind::AccessDenied => Lookup::Unknown(e.to_string()),
                Err(e) => return Err(e),
            };
            Ok(AccountFacts {
                account: self.settings.project.clone(),
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

impl PermissionChecker for GkeProvider {
    fn missing_permissions<'a>(
        &'a self,
        required: &'a [RequiredPermission],
    ) -> CloudFuture<'a, PermissionFacts> {
        async move {
            let asked: BTreeSet<&str> = required.iter().map(|r| r.action.as_str()).collect();
            let url = format!(
                "{}/v3/projects/{}:testIamPermissions",
                self.endpoints.resource_manager, self.settings.project
            );
            let granted: Granted = self
                .rest()
                .await?
                .post(
                    "crm:TestIamPermissions",
                    &url,
                    &serde_json::json!({"permissions": asked}),
                )
                .await?;
            let granted: BTreeSet<&str> = granted.permissions.iter().map(String::as_str).collect();
            let principal = self.identity().await.map(|i| i.principal)?;
            Ok(PermissionFacts {
                principal,
                missing: required
                    .iter()
                    .filter(|r| !granted.contains(r.action.as_str()))
                    .cloned()
                    .collect(),
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
    fn a_primary_range_keeps_four_addresses_back() {
        assert_eq!(usable_addresses("10.0.0.0/24"), Some(252));
        assert_eq!(usable_addresses("10.0.0.0/29"), Some(4));
        assert_eq!(usable_addresses("bad"), None);
        assert_eq!(
            short_name("https://www.googleapis.com/compute/v1/projects/p/global/networks/vpc"),
            "vpc"
        );
    }
}
