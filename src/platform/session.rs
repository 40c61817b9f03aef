//! A session with one realm's cluster API: found through the realm's cloud (the API server and
//! CA the cloud describes), authenticated with a token from the same credential chain,
//! renewed before it expires. The install's in-cluster steps and `realmctl quota --in-realm`
//! both reach the cluster this way.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::client::{Endpoint, KubeApi, KubeError, decode_ca};
use crate::cloud::facts::ClusterFacts;
use crate::cloud::{Cloud, CloudError};

/// A token is renewed this long before it expires.
pub const RENEW_BEFORE: Duration = Duration::from_secs(120);
/// A token whose expiry the provider does not say (GKE's ADC token) is renewed this often.
pub const RENEW_UNKNOWN: Duration = Duration::from_secs(5 * 60);

/// Makes the Kubernetes client for a cluster endpoint.
pub type Connector = Arc<dyn Fn(&Endpoint) -> Result<Arc<dyn KubeApi>, KubeError> + Send + Sync>;

/// The shipped connector: kube-rs ([`super::client::KubeClient`]).
pub fn kube_rs() -> Connector {
    Arc::new(|e| Ok(Arc::new(super::client::KubeClient::new(e)?) as Arc<dyn KubeApi>))
}

/// Why the cluster cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The realm's cluster does not exist.
    #[error("cluster {name} does not exist\n  help: `realmctl install` creates it")]
    NoCluster {
        /// Its name.
        name: String,
    },
    /// A cloud call failed.
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// The cluster's CA or client is unusable.
    #[error(transparent)]
    Kube(#[from] KubeError),
}

/// One cluster's API, with a fresh token on demand.
pub struct Session<'c> {
    cloud: &'c dyn Cloud,
    cluster: ClusterFacts,
    server: String,
    ca_pem: String,
    connector: Connector,
    api: Option<(Arc<dyn KubeApi>, SystemTime)>,
}

impl<'c> Session<'c> {
    /// The session with cluster `name` (which must exist); makes no Kubernetes call.
    pub async fn open(
        cloud: &'c dyn Cloud,
        name: &str,
        connector: Connector,
    ) -> Result<Session<'c>, SessionError> {
        let Some(cluster) = cloud.cluster(name).await? else {
            return Err(SessionError::NoCluster {
                name: name.to_owned(),
            });
        };
        Self::of(cloud, cluster, connector).await
    }

    /// The session with the cluster `cluster` describes (already described by the caller);
    /// makes no Kubernetes call.
    pub async fn of(
        cloud: &'c dyn Cloud,
        cluster: ClusterFacts,
        connector: Connector,
    ) -> Result<Session<'c>, SessionError> {
        let access = cloud.kube_access(&cluster).await?;
        let ca_pem = decode_ca(&access.certificate_authority)?;
        Ok(Session {
            cloud,
            cluster,
            server: access.server.clone(),
            ca_pem,
            connector,
            api: None,
        })
    }

    /// The API, with a token that is not about to expire.
    pub async fn api(&mut self) -> Result<Arc<dyn KubeApi>, SessionError> {
        let fresh = self
            .api
            .as_ref()
            .is_some_and(|(_, exp)| SystemTime::now() + RENEW_BEFORE < *exp);
        if !fresh {
            let t = self.cloud.kube_token(&self.cluster).await?;
            let endpoint = Endpoint {
                server: self.server.clone(),
                ca_pem: self.ca_pem.clone(),
                token: t.token,
            };
            let api = (self.connector)(&endpoint)?;
            let expires = t
                .expires
                .unwrap_or_else(|| SystemTime::now() + RENEW_UNKNOWN + RENEW_BEFORE);
            self.api = Some((api, expires));
        }
        Ok(self.api.as_ref().expect("set above").0.clone())
    }
}
