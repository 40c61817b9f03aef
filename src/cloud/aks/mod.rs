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

pub mod arm;
pub mod credential;
pub mod errors;
pub mod model;
pub mod rbac;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{ClientOptions, Pipeline, RetryOptions, Transport, Url};
use futures::FutureExt;
use serde::Deserialize;

use super::definition::{ClusterDefinition, PoolDefinition};
use super::facts::{
    AccountFacts, AccountQuery, ClusterFacts, Identity, KubeAccess, Lookup, NodePoolFacts,
    PermissionFacts, QuotaFacts, RequiredPermission, ServiceFacts, SubnetFacts,
};
use super::{
    AccountInspector, Cloud, CloudError, CloudErrorKind, CloudFuture, ClusterManager,
    IdentitySource, PermissionChecker,
};
use crate::spec::Provider;
use credential::{AzureEnv, Chain, Source};

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
struct Group {
    #[allow(dead_code)]
    location: String,
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
            let group: Option<Group> = self
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

#[derive(Deserialize)]
struct Credentials {
    kubeconfigs: Vec<Kubeconfig>,
}

#[derive(Deserialize)]
struct Kubeconfig {
    value: String,
}

#[derive(Deserialize)]
struct KubeconfigDoc {
    clusters: Vec<NamedCluster>,
}

#[derive(Deserialize)]
struct NamedCluster {
    cluster: KubeCluster,
}

#[derive(Deserialize)]
struct KubeCluster {
    server: String,
    #[serde(rename = "certificate-authority-data", default)]
    certificate_authority_data: Option<String>,
}

/// The API server and CA of the kubeconfig `listClusterUserCredential` answers (pure).
pub fn server_and_ca(base64_kubeconfig: &str) -> Result<(String, String), String> {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD
        .decode(base64_kubeconfig.trim())
        .map_err(|e| format!("the kubeconfig is not base64: {e}"))?;
    let text = String::from_utf8(text).map_err(|_| "the kubeconfig is not UTF-8".to_owned())?;
    let doc: KubeconfigDoc =
        serde_saphyr::from_str(&text).map_err(|e| format!("the kubeconfig does not parse: {e}"))?;
    let c = doc
        .clusters
        .into_iter()
        .next()
        .ok_or("the kubeconfig names no cluster")?;
    let ca = c
        .cluster
        .certificate_authority_data
        .ok_or("the kubeconfig has no certificate-authority-data")?;
    if !c.cluster.server.starts_with("https://") {
        return Err(format!(
            "the API server {} is not https",
            crate::text::one_line(&c.cluster.server)
        ));
    }
    Ok((c.cluster.server, ca))
}

/// `kubelogin`'s login mode for the chain's link (the credentials whoever runs kubectl has).
fn login_mode(source: Option<Source>) -> &'static str {
    match source {
        Some(Source::ClientSecret) => "spn",
        Some(Source::WorkloadIdentity) => "workloadidentity",
        Some(Source::ManagedIdentity) => "msi",
        Some(Source::AzureCli) | None => "azurecli",
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
                    &format!("{}/agentPools/{name}", self.cluster_path(cluster)),
                    self.cs(),
                )
                .await?;
            Ok(got.map(|p| NodePoolFacts {
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
                    &format!(
                        "{}/agentPools/{}",
                        self.cluster_path(def.name()),
                        pool.nodes.name
                    ),
                    self.cs(),
                    &body,
                )
                .await
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

    #[test]
    fn free_addresses_leave_out_azures_five() {
        assert_eq!(free_addresses("10.240.0.0/24", 0), Some(251));
        assert_eq!(free_addresses("10.240.0.0/24", 10), Some(241));
        assert_eq!(free_addresses("10.240.0.0/29", 10), Some(0));
        assert_eq!(free_addresses("nonsense", 0), None);
    }

    #[test]
    fn the_kubeconfig_gives_server_and_ca_and_refuses_plain_http() {
        use base64::Engine;
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let ok = enc(
            "apiVersion: v1\nclusters:\n- name: c\n  cluster:\n    server: https://c-dns.hcp.eastus.azmk8s.io:443\n    certificate-authority-data: Q0E=\n",
        );
        assert_eq!(
            server_and_ca(&ok).unwrap(),
            (
                "https://c-dns.hcp.eastus.azmk8s.io:443".into(),
                "Q0E=".into()
            )
        );
        let http = enc(
            "clusters:\n- cluster:\n    server: http://x\n    certificate-authority-data: Q0E=\n",
        );
        assert!(server_and_ca(&http).is_err());
        assert!(server_and_ca("!!!").is_err());
        assert!(server_and_ca(&enc("clusters: []\n")).is_err());
    }
}
