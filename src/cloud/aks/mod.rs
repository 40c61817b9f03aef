//! Azure Kubernetes Service through Azure Resource Manager (feature `aks`): a small typed ARM
//! client of realmctl's own ([`arm`], [`model`]) on azure_core's pipeline, with Entra ID tokens
//! from azure_identity's credentials in the chain Azure tools use ([`credential`]), all over
//! one guarded reqwest/rustls transport ([`transport`]). The published AKS crates sit on an
//! older azure_core with a second HTTP/TLS stack and preview api-versions
//! (`docs/decisions.md`). SDK types stay in this folder; the engine sees the neutral facts of
//! [`crate::cloud::facts`].
//!
//! Phase 1 reads the subscription (it must be Enabled), the resource group, the resource
//! providers' registration, the node subnet's free addresses, the region's compute usages
//! and the offered Kubernetes versions; phase 2 the identity in the token's claims; phase 3
//! `Microsoft.Authorization/permissions` at each scope the install acts on, evaluated by
//! [`rbac`]. Phase 6 creates the cluster with its system pool inline, and further pools, each
//! as a create-only PUT (`If-None-Match: *`) followed through ARM's asynchronous-operation
//! protocol. Local accounts are disabled and Entra ID authentication is on, so no static
//! admin credential exists; the kubeconfig runs `kubelogin` for a token.

mod account;
pub mod arm;
pub mod credential;
pub mod errors;
pub mod kubeconfig;
pub mod model;
pub mod rbac;
mod teardown;
pub mod transport;
mod vpn;
mod vpn_teardown;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{ClientOptions, Pipeline, RetryOptions, Transport, Url};
use futures::FutureExt;
use serde::Deserialize;

use super::definition::{ClusterDefinition, PoolDefinition};
use super::facts::{ClusterFacts, KubeAccess, KubeToken, NodePoolFacts};
use super::{Cloud, CloudError, CloudErrorKind, CloudFuture, ClusterManager};
use crate::spec::Provider;
use credential::{AzureEnv, Chain};
use kubeconfig::{Credentials, login_mode, server_and_ca};

/// Azure Resource Manager in the public cloud.
pub const PUBLIC_ARM: &str = "https://management.azure.com";
/// The token scope of ARM.
const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// The token scope of Azure Storage (artifacts in Blob storage).
const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
/// The application id of the AKS Entra ID server, which `kubelogin` asks tokens for.
pub const AKS_SERVER_ID: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

/// The ARM api-versions realmctl calls (`playbooks/requirements/azure-api.yaml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiVersions {
    /// Format version of the file.
    pub version: u32,
    /// `Microsoft.ContainerService`.
    pub container_service: String,
    /// Subscriptions.
    pub subscriptions: String,
    /// Resource groups and providers.
    pub resources: String,
    /// `Microsoft.Network`.
    pub network: String,
    /// `Microsoft.Compute`.
    pub compute: String,
    /// `Microsoft.Authorization`.
    pub authorization: String,
    /// `Microsoft.KeyVault` (the realm VPN's key).
    pub key_vault: String,
    /// `Microsoft.ManagedIdentity` (the realm VPN instance's identity).
    pub managed_identity: String,
}

impl ApiVersions {
    /// The embedded list.
    pub fn embedded() -> ApiVersions {
        serde_saphyr::from_str(include_str!(
            "../../../playbooks/requirements/azure-api.yaml"
        ))
        .expect("azure-api.yaml parses (unit-tested)")
    }
}

/// Where and as whom to reach Azure.
#[derive(Clone)]
pub struct AksSettings {
    /// The region (location).
    pub region: String,
    /// The subscription.
    pub subscription: String,
    /// The resource group of the cluster.
    pub resource_group: String,
    /// The tenant.
    pub tenant: String,
    /// ARM's endpoint; `None`: the public cloud's. https, or http to loopback (which the
    /// bearer-token policy refuses anyway).
    pub endpoint: Option<String>,
    /// The credential chain's settings.
    pub env: AzureEnv,
    /// Roots trusted besides the platform's (PEM): the demo's stand-in CA.
    pub extra_roots: Vec<String>,
    /// How long a connection may take to open.
    pub connect_timeout: Duration,
    /// How long one call may take.
    pub call_timeout: Duration,
}

impl AksSettings {
    /// Settings with the default deadlines (connect 10 s, one call 60 s).
    pub fn new(region: &str, subscription: &str, resource_group: &str, tenant: &str) -> Self {
        AksSettings {
            region: region.to_owned(),
            subscription: subscription.to_owned(),
            resource_group: resource_group.to_owned(),
            tenant: tenant.to_owned(),
            endpoint: None,
            env: AzureEnv::default(),
            extra_roots: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(60),
        }
    }
}

/// AKS and the ARM resources around it.
pub struct AksProvider {
    settings: AksSettings,
    arm: arm::Arm,
    chain: Arc<Chain>,
    api: ApiVersions,
    endpoint: Url,
}

fn refused(why: String) -> CloudError {
    CloudError::new(CloudErrorKind::RefusedDestination, "arm:endpoint", why)
}

impl AksProvider {
    /// A provider on the credential chain `settings.env` configures. Makes no call.
    pub fn new(settings: AksSettings) -> Result<Self, CloudError> {
        let base = settings.endpoint.as_deref().unwrap_or(PUBLIC_ARM);
        crate::secret::may_carry_credentials(base).map_err(|why| {
            refused(format!(
                "ARM endpoint {}: {why}",
                crate::text::one_line(base)
            ))
        })?;
        let endpoint = Url::parse(base).map_err(|e| refused(format!("ARM endpoint: {e}")))?;
        let http = transport::client(
            &settings.extra_roots,
            settings.connect_timeout,
            settings.call_timeout,
        )
        .map_err(|e| CloudError::new(CloudErrorKind::Invalid, "arm:transport", e))?;
        let transport = Transport::new(http);
        let chain = Arc::new(Chain::new(&settings.env, &settings.tenant, &transport)?);
        let credential: Arc<dyn TokenCredential> = chain.clone();
        let auth = BearerTokenAuthorizationPolicy::new(credential, [ARM_SCOPE]);
        let options = ClientOptions {
            transport: Some(transport),
            retry: RetryOptions::none(),
            ..ClientOptions::default()
        };
        let pipeline = Pipeline::new(
            Some("realmctl"),
            Some(env!("CARGO_PKG_VERSION")),
            options,
            Vec::new(),
            vec![Arc::new(auth)],
            None,
        );
        Ok(AksProvider {
            arm: arm::Arm::new(pipeline, endpoint.clone()),
            chain,
            api: ApiVersions::embedded(),
            endpoint,
            settings,
        })
    }

    fn group_path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.settings.subscription, self.settings.resource_group
        )
    }

    fn cluster_path(&self, name: &str) -> String {
        format!(
            "{}/providers/Microsoft.ContainerService/managedClusters/{name}",
            self.group_path()
        )
    }

    fn pool_path(&self, cluster: &str, pool: &str) -> String {
        format!("{}/agentPools/{pool}", self.cluster_path(cluster))
    }

    async fn token(&self) -> Result<azure_core::credentials::AccessToken, CloudError> {
        self.chain
            .get_token(&[ARM_SCOPE], None)
            .await
            .map_err(|e| errors::from_azure("login:token", &e))
    }

    fn cs(&self) -> &str {
        &self.api.container_service
    }
}

impl ClusterManager for AksProvider {
    fn cluster<'a>(&'a self, name: &'a str) -> CloudFuture<'a, Option<ClusterFacts>> {
        async move {
            let got: Option<model::ManagedCluster> = self
                .arm
                .get("arm:GetManagedCluster", &self.cluster_path(name), self.cs())
                .await?;
            Ok(got.map(|mc| {
                let fqdn = mc
                    .properties
                    .private_fqdn
                    .clone()
                    .or_else(|| mc.properties.fqdn.clone());
                ClusterFacts {
                    id: mc.id.clone().unwrap_or_else(|| self.cluster_path(name)),
                    status: model::status(mc.properties.provisioning_state.as_deref()),
                    described: model::describe_cluster(&mc, name),
                    endpoint: fqdn.map(|f| format!("https://{f}:443")),
                    certificate_authority: None,
                }
            }))
        }
        .boxed()
    }

    fn create_cluster<'a>(&'a self, def: &'a ClusterDefinition) -> CloudFuture<'a, ()> {
        async move {
            let body = model::cluster_body(def, &self.settings.tenant).map_err(|e| {
                CloudError::new(
                    CloudErrorKind::Invalid,
                    "arm:PutManagedCluster",
                    e.to_string(),
                )
            })?;
            self.arm
                .create(
                    "arm:PutManagedCluster",
                    &self.cluster_path(def.name()),
                    self.cs(),
                    &body,
                )
                .await
        }
        .boxed()
    }

    fn node_pool<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, Option<NodePoolFacts>> {
        async move {
            let got: Option<model::AgentPool> = self
                .arm
                .get(
                    "arm:GetAgentPool",
                    &self.pool_path(cluster, name),
                    self.cs(),
                )
                .await?;
            Ok(got.map(|p| NodePoolFacts {
                version: model::minor(
                    p.properties
                        .current_orchestrator_version
                        .as_deref()
                        .or(p.properties.orchestrator_version.as_deref())
                        .unwrap_or_default(),
                ),
                status: model::status(p.properties.provisioning_state.as_deref()),
                described: model::describe_pool(name, &p.properties),
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
            let body = model::pool_body(pool).map_err(|e| {
                CloudError::new(CloudErrorKind::Invalid, "arm:PutAgentPool", e.to_string())
            })?;
            self.arm
                .create(
                    "arm:PutAgentPool",
                    &self.pool_path(def.name(), &pool.nodes.name),
                    self.cs(),
                    &body,
                )
                .await
        }
        .boxed()
    }

    fn upgrade_cluster<'a>(&'a self, def: &'a ClusterDefinition) -> CloudFuture<'a, ()> {
        async move {
            // Read, change the version, write back (as `az aks upgrade --control-plane-only`):
            // every field ARM holds is sent as it is, every agent pool keeps its version.
            let path = self.cluster_path(def.name());
            let mut mc: serde_json::Value = self
                .arm
                .get_existing("arm:GetManagedCluster", &path, self.cs())
                .await?;
            model::control_plane_upgrade(&mut mc, &def.cluster.kubernetes_version);
            self.arm
                .put("arm:PutManagedCluster", &path, self.cs(), &mc)
                .await
        }
        .boxed()
    }

    fn upgrade_node_pool<'a>(
        &'a self,
        def: &'a ClusterDefinition,
        pool: &'a PoolDefinition,
    ) -> CloudFuture<'a, ()> {
        async move {
            let path = self.pool_path(def.name(), &pool.nodes.name);
            let mut p: serde_json::Value = self
                .arm
                .get_existing("arm:GetAgentPool", &path, self.cs())
                .await?;
            p["properties"]["orchestratorVersion"] =
                serde_json::Value::String(def.cluster.kubernetes_version.clone());
            self.arm.put("arm:PutAgentPool", &path, self.cs(), &p).await
        }
        .boxed()
    }

    fn kube_token<'a>(&'a self, _cluster: &'a ClusterFacts) -> CloudFuture<'a, KubeToken> {
        // An AKS cluster with Entra ID integration takes an Entra token for the AKS server
        // application (what kubelogin gets for kubectl).
        async move {
            let t = self
                .chain
                .get_token(&[&format!("{AKS_SERVER_ID}/.default")], None)
                .await
                .map_err(|e| errors::from_azure("kube:token", &e))?;
            let expires = std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(
                    u64::try_from(t.expires_on.unix_timestamp()).unwrap_or(0),
                );
            Ok(KubeToken {
                token: crate::secret::Secret::new(t.token.secret()),
                expires: Some(expires),
            })
        }
        .boxed()
    }

    fn kube_access<'a>(&'a self, cluster: &'a ClusterFacts) -> CloudFuture<'a, KubeAccess> {
        async move {
            let op = "arm:ListClusterUserCredential";
            let creds: Credentials = self
                .arm
                .post(
                    op,
                    &format!(
                        "{}/listClusterUserCredential",
                        self.cluster_path(cluster.name())
                    ),
                    self.cs(),
                    &[("format", "exec")],
                )
                .await?;
            let first = creds.kubeconfigs.first().ok_or_else(|| {
                CloudError::new(CloudErrorKind::Invalid, op, "ARM returned no kubeconfig")
            })?;
            let (server, ca) = server_and_ca(&first.value)
                .map_err(|why| CloudError::new(CloudErrorKind::Invalid, op, why))?;
            let mode = login_mode(self.chain.answered());
            let mut args: Vec<String> = [
                "get-token",
                "--login",
                mode,
                "--server-id",
                AKS_SERVER_ID,
                "--tenant-id",
                &self.settings.tenant,
            ]
            .into_iter()
            .map(str::to_owned)
            .collect();
            if let (Some(client), "spn" | "workloadidentity" | "msi") =
                (&self.settings.env.client_id, mode)
            {
                args.extend(["--client-id".to_owned(), client.clone()]);
            }
            Ok(KubeAccess {
                name: cluster.name().to_owned(),
                server,
                certificate_authority: ca,
                command: "kubelogin".to_owned(),
                args,
                env: BTreeMap::new(),
            })
        }
        .boxed()
    }
}

impl Cloud for AksProvider {
    fn provider(&self) -> Provider {
        Provider::Aks
    }

    fn storage_credentials(&self) -> CloudFuture<'_, Option<super::StorageCredentials>> {
        async move {
            let t = self
                .chain
                .get_token(&[STORAGE_SCOPE], None)
                .await
                .map_err(|e| errors::from_azure("login:token", &e))?;
            Ok(Some(super::StorageCredentials::AzureBearer {
                token: crate::secret::Secret::new(t.token.secret()),
            }))
        }
        .boxed()
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "subscription {}, resource group {}, {}",
            self.settings.subscription, self.settings.resource_group, self.settings.region
        );
        if self.endpoint.as_str().trim_end_matches('/') != PUBLIC_ARM {
            s.push_str(&format!(
                " via {}",
                self.endpoint.as_str().trim_end_matches('/')
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_versions_load_and_are_dates() {
        let v = ApiVersions::embedded();
        assert_eq!(v.version, 1);
        for d in [
            &v.container_service,
            &v.subscriptions,
            &v.resources,
            &v.network,
            &v.compute,
            &v.authorization,
        ] {
            assert!(
                d.len() == 10 && d.chars().filter(|c| *c == '-').count() == 2,
                "{d} is a stable api-version date"
            );
        }
    }
}
