//! Google Kubernetes Engine (feature `gke`) through Google's own Rust crates: the GKE API v1
//! client (`google-cloud-container-v1`, REST over reqwest/rustls) for clusters, node pools,
//! operations and the offered versions, with credentials from google-cloud-auth as Application
//! Default Credentials find them ([`credential`]); the few Resource Manager, Service Usage and
//! Compute Engine reads go through a small typed REST reader on the same credentials
//! ([`rest`]). SDK types stay in this folder; the engine sees the neutral facts of
//! [`crate::cloud::facts`].
//!
//! gax retries nothing here (`NeverRetry`): read-only calls are retried by realmctl's own
//! decorator ([`crate::cloud::retry`]), creates never blindly. `clusters.create` and
//! `nodePools.create` answer with GKE's own `Operation`, which [`GkeProvider`] polls with
//! backoff until DONE (an error in a DONE operation is classified from its google.rpc.Status
//! code); the step's deadline bounds the whole wait. The kubeconfig runs
//! `gke-gcloud-auth-plugin` for a token: no credential is written down.

mod account;
pub mod credential;
pub mod errors;
pub mod model;
pub mod rest;
mod teardown;
mod vpn;
mod vpn_teardown;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::FutureExt;
use google_cloud_auth::credentials::Credentials;
use google_cloud_container_v1::client::ClusterManager as GkeClient;
use google_cloud_gax::retry_policy::NeverRetry;

use super::definition::{ClusterDefinition, PoolDefinition};
use super::facts::{ClusterFacts, KubeAccess, KubeToken, NodePoolFacts};
use super::poll::Backoff;
use super::{Cloud, CloudError, CloudErrorKind, CloudFuture, ClusterManager};
use crate::spec::Provider;
use credential::{Chain, GoogleEnv};

/// Where each Google API realmctl calls is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// GKE API v1.
    pub container: String,
    /// Resource Manager v3.
    pub resource_manager: String,
    /// Service Usage v1.
    pub service_usage: String,
    /// Compute Engine v1 (paths start with `/compute/v1`).
    pub compute: String,
    /// IAM Service Account Credentials v1 (impersonation).
    pub iam_credentials: String,
    /// Secret Manager v1 (the realm VPN's key).
    pub secret_manager: String,
    /// IAM v1 (the realm VPN instance's service account).
    pub iam: String,
}

impl Endpoints {
    /// Google's public endpoints.
    pub fn public() -> Self {
        Endpoints {
            container: "https://container.googleapis.com".into(),
            resource_manager: "https://cloudresourcemanager.googleapis.com".into(),
            service_usage: "https://serviceusage.googleapis.com".into(),
            compute: "https://compute.googleapis.com".into(),
            iam_credentials: credential::IAM_CREDENTIALS.into(),
            secret_manager: "https://secretmanager.googleapis.com".into(),
            iam: "https://iam.googleapis.com".into(),
        }
    }

    /// Every API at one base URL (`cloud.endpoint`: an emulator or stand-in serving them all;
    /// their paths do not overlap).
    pub fn all_at(base: &str) -> Self {
        let b = base.trim_end_matches('/').to_owned();
        Endpoints {
            container: b.clone(),
            resource_manager: b.clone(),
            service_usage: b.clone(),
            compute: b.clone(),
            iam_credentials: b.clone(),
            secret_manager: b.clone(),
            iam: b,
        }
    }

    fn all(&self) -> [&str; 7] {
        [
            &self.container,
            &self.resource_manager,
            &self.service_usage,
            &self.compute,
            &self.iam_credentials,
            &self.secret_manager,
            &self.iam,
        ]
    }
}

/// Where and as whom to reach Google Cloud.
#[derive(Clone)]
pub struct GkeSettings {
    /// The project.
    pub project: String,
    /// The region (the cluster is regional).
    pub region: String,
    /// The APIs' endpoints.
    pub endpoints: Endpoints,
    /// What Application Default Credentials start from.
    pub env: GoogleEnv,
    /// The service account to impersonate, if any (`cloud.gke.impersonate`).
    pub impersonate: Option<String>,
    /// Roots trusted besides the platform's (PEM), for the REST reader.
    pub extra_roots: Vec<String>,
    /// How long a connection may take to open.
    pub connect_timeout: Duration,
    /// How long one call may take.
    pub call_timeout: Duration,
    /// How a create's operation is polled.
    pub operation_poll: Backoff,
}

/// How GKE operations are polled: 2 s, doubling, at most 20 s.
pub const OPERATION_POLL: Backoff = Backoff {
    first: Duration::from_secs(2),
    factor: 2,
    cap: Duration::from_secs(20),
};

impl GkeSettings {
    /// Settings with Google's public endpoints and the default deadlines (connect 10 s, one call
    /// 60 s).
    pub fn new(project: &str, region: &str) -> Self {
        GkeSettings {
            project: project.to_owned(),
            region: region.to_owned(),
            endpoints: Endpoints::public(),
            env: GoogleEnv::default(),
            impersonate: None,
            extra_roots: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(60),
            operation_poll: OPERATION_POLL,
        }
    }
}

/// GKE and the Google APIs around it. The credentials and clients are built at the first call,
/// not before: google-cloud-auth starts fetching a token as soon as credentials are built (from
/// the metadata server or a token endpoint), and `plan` must stay offline.
pub struct GkeProvider {
    settings: GkeSettings,
    endpoints: Endpoints,
    connected: tokio::sync::OnceCell<Connected>,
}

/// The credential chain and the clients on it.
struct Connected {
    chain: Chain,
    rest: rest::Rest,
    gke: GkeClient,
}

impl Connected {
    async fn build(settings: &GkeSettings) -> Result<Connected, CloudError> {
        let chain = credential::chain(
            &settings.env,
            settings.impersonate.as_deref(),
            &settings.endpoints.iam_credentials,
        )?;
        let http = crate::cloud::guard::http_client(
            &settings.extra_roots,
            settings.connect_timeout,
            settings.call_timeout,
        )
        .map_err(|e| CloudError::new(CloudErrorKind::Invalid, "gke:transport", e))?;
        let gke = GkeClient::builder()
            .with_endpoint(settings.endpoints.container.clone())
            .with_credentials(Credentials::from(chain.credentials.clone()))
            .with_retry_policy(NeverRetry)
            .with_attempt_timeout(settings.call_timeout)
            .build()
            .await
            .map_err(|e| {
                CloudError::new(
                    CloudErrorKind::Invalid,
                    "gke:client",
                    crate::text::one_line(&e.to_string()),
                )
            })?;
        Ok(Connected {
            rest: rest::Rest::new(http, chain.credentials.clone()),
            chain,
            gke,
        })
    }
}

fn refused(why: String) -> CloudError {
    CloudError::new(CloudErrorKind::RefusedDestination, "gke:endpoint", why)
}

impl GkeProvider {
    /// A provider on the credentials `settings.env` starts. Makes no call: it checks the
    /// endpoints (its own and those the credential file names) and builds nothing that fetches.
    pub fn new(settings: GkeSettings) -> Result<Self, CloudError> {
        for e in settings.endpoints.all() {
            crate::secret::may_carry_credentials(e)
                .map_err(|why| refused(format!("endpoint {}: {why}", crate::text::one_line(e))))?;
        }
        credential::check(
            &settings.env,
            settings.impersonate.as_deref(),
            &settings.endpoints.iam_credentials,
        )?;
        Ok(GkeProvider {
            endpoints: settings.endpoints.clone(),
            connected: tokio::sync::OnceCell::new(),
            settings,
        })
    }

    /// The chain and clients, built at the first call.
    async fn connected(&self) -> Result<&Connected, CloudError> {
        self.connected
            .get_or_try_init(|| Connected::build(&self.settings))
            .await
    }

    async fn rest(&self) -> Result<&rest::Rest, CloudError> {
        Ok(&self.connected().await?.rest)
    }

    async fn gke(&self) -> Result<&GkeClient, CloudError> {
        Ok(&self.connected().await?.gke)
    }

    fn location(&self) -> String {
        format!(
            "projects/{}/locations/{}",
            self.settings.project, self.settings.region
        )
    }

    fn cluster_path(&self, name: &str) -> String {
        format!("{}/clusters/{name}", self.location())
    }

    /// The Kubernetes versions GKE offers for control planes in the region.
    async fn offered_versions(&self) -> Result<Vec<String>, CloudError> {
        let op = "gke:GetServerConfig";
        let c = self
            .gke()
            .await?
            .get_server_config()
            .set_name(self.location())
            .send()
            .await
            .map_err(|e| errors::from_gax(op, &e))?;
        Ok(c.valid_master_versions)
    }

    /// Polls the operation `name` until it is DONE, with backoff; a DONE operation with an
    /// error is that error. The step's deadline bounds the wait.
    async fn follow(&self, op: &str, name: &str) -> Result<(), CloudError> {
        let path = format!("{}/operations/{name}", self.location());
        let mut n = 0u32;
        loop {
            n += 1;
            let (throttled, wait) = match self
                .gke()
                .await?
                .get_operation()
                .set_name(&path)
                .send()
                .await
            {
                Ok(o) => {
                    let status = o.status.name().unwrap_or("STATUS_UNSPECIFIED");
                    if status == "DONE" {
                        return match o.error {
                            None => Ok(()),
                            Some(s) => Err(operation_error(
                                op,
                                s.code,
                                &s.message,
                                &serde_json::to_value(&s.details).unwrap_or_default(),
                            )),
                        };
                    }
                    (false, None)
                }
                Err(e) => {
                    let e = errors::from_gax(op, &e);
                    if !e.kind.retryable() {
                        return Err(e);
                    }
                    (e.kind == CloudErrorKind::Throttled, e.retry_after)
                }
            };
            let delay = self
                .settings
                .operation_poll
                .next_asked(n, throttled, wait, Duration::MAX)
                .unwrap_or(self.settings.operation_poll.cap);
            tokio::time::sleep(delay).await;
        }
    }
}

/// The error a DONE operation carries (pure): its google.rpc.Status code names the kind, a
/// `QuotaFailure` among its `details` makes RESOURCE_EXHAUSTED a quota.
fn operation_error(op: &str, code: i32, message: &str, details: &serde_json::Value) -> CloudError {
    let name = errors::code_name(code);
    let quota = details.as_array().is_some_and(|a| {
        a.iter()
            .any(|x| x.get("@type").and_then(|t| t.as_str()) == Some(errors::QUOTA_FAILURE))
    });
    let mut e = CloudError::new(
        errors::kind_of(None, Some(name), quota),
        op,
        format!(
            "the operation ended with {name}: {}",
            crate::text::one_line(message)
        ),
    );
    e.code = Some(name.to_owned());
    e
}

/// Why a cluster is where it is: its conditions' messages (GKE's replacement of
/// `statusMessage`), else `statusMessage`.
fn status_message(c: &google_cloud_container_v1::model::Cluster) -> String {
    let from_conditions: Vec<&str> = c.conditions.iter().map(|x| x.message.as_str()).collect();
    if from_conditions.iter().any(|m| !m.is_empty()) {
        return from_conditions.join("; ");
    }
    #[allow(deprecated)]
    c.status_message.clone()
}

/// Why a node pool is where it is (as [`status_message`]).
fn pool_message(p: &google_cloud_container_v1::model::NodePool) -> String {
    let from_conditions: Vec<&str> = p.conditions.iter().map(|x| x.message.as_str()).collect();
    if from_conditions.iter().any(|m| !m.is_empty()) {
        return from_conditions.join("; ");
    }
    #[allow(deprecated)]
    p.status_message.clone()
}

impl ClusterManager for GkeProvider {
    fn cluster<'a>(&'a self, name: &'a str) -> CloudFuture<'a, Option<ClusterFacts>> {
        async move {
            let op = "gke:GetCluster";
            let c = match self
                .gke()
                .await?
                .get_cluster()
                .set_name(self.cluster_path(name))
                .send()
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    let e = errors::from_gax(op, &e);
                    return if e.kind == CloudErrorKind::NotFound {
                        Ok(None)
                    } else {
                        Err(e)
                    };
                }
            };
            let ca = c
                .master_auth
                .as_ref()
                .map(|m| m.cluster_ca_certificate.clone())
                .filter(|s| !s.is_empty());
            Ok(Some(ClusterFacts {
                id: if c.self_link.is_empty() {
                    self.cluster_path(name)
                } else {
                    c.self_link.clone()
                },
                status: model::cluster_status(c.status.name(), &status_message(&c)),
                described: model::describe_cluster(&c),
                endpoint: (!c.endpoint.is_empty()).then(|| format!("https://{}", c.endpoint)),
                certificate_authority: ca,
            }))
        }
        .boxed()
    }

    fn create_cluster<'a>(&'a self, def: &'a ClusterDefinition) -> CloudFuture<'a, ()> {
        async move {
            let op = "gke:CreateCluster";
            let o = self
                .gke()
                .await?
                .create_cluster()
                .set_parent(self.location())
                .set_cluster(model::cluster(def))
                .send()
                .await
                .map_err(|e| errors::from_gax(op, &e))?;
            self.follow(op, &o.name).await
        }
        .boxed()
    }

    fn node_pool<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, Option<NodePoolFacts>> {
        async move {
            let op = "gke:GetNodePool";
            match self
                .gke()
                .await?
                .get_node_pool()
                .set_name(format!("{}/nodePools/{name}", self.cluster_path(cluster)))
                .send()
                .await
            {
                Ok(p) => Ok(Some(NodePoolFacts {
                    version: model::minor(&p.version),
                    status: model::pool_status(p.status.name(), &pool_message(&p)),
                    described: model::describe_pool(&p),
                })),
                Err(e) => {
                    let e = errors::from_gax(op, &e);
                    if e.kind == CloudErrorKind::NotFound {
                        Ok(None)
                    } else {
                        Err(e)
                    }
                }
            }
        }
        .boxed()
    }

    fn create_node_pool<'a>(
        &'a self,
        def: &'a ClusterDefinition,
        pool: &'a PoolDefinition,
    ) -> CloudFuture<'a, ()> {
        async move {
            let op = "gke:CreateNodePool";
            let o = self
                .gke()
                .await?
                .create_node_pool()
                .set_parent(self.cluster_path(def.name()))
                .set_node_pool(model::node_pool(pool))
                .send()
                .await
                .map_err(|e| errors::from_gax(op, &e))?;
            self.follow(op, &o.name).await
        }
        .boxed()
    }

    fn upgrade_cluster<'a>(&'a self, def: &'a ClusterDefinition) -> CloudFuture<'a, ()> {
        async move {
            let op = "gke:UpdateMaster";
            // `1.35` asks for that minor's newest patch GKE offers.
            let o = self
                .gke()
                .await?
                .update_master()
                .set_name(self.cluster_path(def.name()))
                .set_master_version(&def.cluster.kubernetes_version)
                .send()
                .await
                .map_err(|e| errors::from_gax(op, &e))?;
            self.follow(op, &o.name).await
        }
        .boxed()
    }

    fn upgrade_node_pool<'a>(
        &'a self,
        def: &'a ClusterDefinition,
        pool: &'a PoolDefinition,
    ) -> CloudFuture<'a, ()> {
        async move {
            let op = "gke:UpdateNodePool";
            let image = match &pool.nodes.image {
                crate::cloud::definition::NodeImageDef::Default(t)
                | crate::cloud::definition::NodeImageDef::Custom(t) => t.clone(),
            };
            let o = self
                .gke()
                .await?
                .update_node_pool()
                .set_name(format!(
                    "{}/nodePools/{}",
                    self.cluster_path(def.name()),
                    pool.nodes.name
                ))
                .set_node_version(&def.cluster.kubernetes_version)
                .set_image_type(image)
                .send()
                .await
                .map_err(|e| errors::from_gax(op, &e))?;
            self.follow(op, &o.name).await
        }
        .boxed()
    }

    fn kube_token<'a>(&'a self, _cluster: &'a ClusterFacts) -> CloudFuture<'a, KubeToken> {
        // GKE's API server takes the ADC access token itself (what gke-gcloud-auth-plugin
        // hands kubectl); google-cloud-auth refreshes it before it expires.
        async move {
            let t = self.rest().await?.token("kube:token").await?;
            Ok(KubeToken {
                token: crate::secret::Secret::new(&t),
                expires: None,
            })
        }
        .boxed()
    }

    fn kube_access<'a>(&'a self, cluster: &'a ClusterFacts) -> CloudFuture<'a, KubeAccess> {
        async move {
            let op = "gke:kubeconfig";
            let server = cluster.endpoint.clone().ok_or_else(|| {
                CloudError::new(
                    CloudErrorKind::Invalid,
                    op,
                    "the cluster has no endpoint yet",
                )
            })?;
            let ca = cluster.certificate_authority.clone().ok_or_else(|| {
                CloudError::new(CloudErrorKind::Invalid, op, "the cluster has no CA yet")
            })?;
            Ok(KubeAccess {
                name: cluster.name().to_owned(),
                server,
                certificate_authority: ca,
                command: "gke-gcloud-auth-plugin".to_owned(),
                // The same identity as the install: Application Default Credentials.
                args: vec!["--use_application_default_credentials".to_owned()],
                env: BTreeMap::new(),
            })
        }
        .boxed()
    }
}

impl Cloud for GkeProvider {
    fn provider(&self) -> Provider {
        Provider::Gke
    }

    fn storage_credentials(&self) -> CloudFuture<'_, Option<super::StorageCredentials>> {
        async move {
            let t = self.rest().await?.token("login:token").await?;
            Ok(Some(super::StorageCredentials::GoogleBearer {
                token: crate::secret::Secret::new(&t),
            }))
        }
        .boxed()
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "project {}, {}",
            self.settings.project, self.settings.region
        );
        if self.endpoints != Endpoints::public() {
            s.push_str(&format!(" via {}", self.endpoints.container));
        }
        s
    }
}
