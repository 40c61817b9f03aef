//! Talking to the realm's enforcement core where it runs: through the API server's service
//! proxy ([`KubeApi::proxy`]), with a token read from the Secret it is kept in. Used by
//! `quota.seed` and `realm.live` in an install, and by `realmctl quota --in-realm`. The token
//! travels in [`crate::quota::http::TOKEN_HEADER`] (the proxy strips `Authorization`), marked
//! sensitive; it is never returned to the caller except as a [`Secret`].

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::client::{KubeApi, KubeError, ProxyAnswer, ProxyRequest};
use super::quota::{self, ADMIN_SECRET, REALM_SECRET};
use crate::quota::Admission;
use crate::quota::http::TOKEN_HEADER;
use crate::quota::model::{Deployment, Key, RealmConfig};
use crate::quota::store::RealmStatus;
use crate::quota::{retire, seed};
use crate::secret::Secret;

/// Which token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The admin token (config changes).
    Admin,
    /// The realm token (what the platform's deployer presents).
    Realm,
}

impl Role {
    fn secret(self) -> &'static str {
        match self {
            Role::Admin => ADMIN_SECRET,
            Role::Realm => REALM_SECRET,
        }
    }
}

/// Why the core could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The Kubernetes API refused or failed (no endpoints yet, forbidden, unreachable).
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The core answered, but not with what was asked for.
    #[error("the realm's enforcement core answered HTTP {status}: {detail}")]
    Answer {
        /// HTTP status.
        status: u16,
        /// Its error text (one line).
        detail: String,
    },
    /// The token's Secret is missing or holds no token realmctl made.
    #[error(
        "Secret {}/{secret} holds no enforcement core token\n  help: run `realmctl install` for this realm; `platform.apply` makes the tokens once and keeps them there",
        quota::NAMESPACE
    )]
    NoToken {
        /// The Secret's name.
        secret: &'static str,
    },
}

/// The core of one realm's cluster, with one of its tokens.
pub struct Core<'a> {
    api: &'a dyn KubeApi,
    token: Secret,
}

impl<'a> Core<'a> {
    /// Reads the `role` token from its Secret.
    pub async fn connect(api: &'a dyn KubeApi, role: Role) -> Result<Core<'a>, CoreError> {
        let v = api.get(&quota::secret_ref(role.secret())).await?;
        let token = v
            .as_ref()
            .and_then(quota::token_in)
            .ok_or(CoreError::NoToken {
                secret: role.secret(),
            })?;
        Ok(Core { api, token })
    }

    /// One request to the core (`path` as in `docs/quota-openapi.yaml`, e.g.
    /// `/v1/realms/acme/usage`): the core's answer, whatever its status.
    pub async fn call(
        &self,
        method: http_1::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ProxyAnswer, CoreError> {
        let request = ProxyRequest {
            method,
            path: quota::proxy_path(path),
            credential: Some((TOKEN_HEADER, self.token.clone())),
            body: body.map(Value::to_string),
        };
        Ok(self.api.proxy(&request).await?)
    }

    /// `body` of a successful answer (or one of `also`) as `T`; anything else an error.
    fn decode<T: DeserializeOwned>(a: ProxyAnswer, also: &[u16]) -> Result<T, CoreError> {
        let wrong = |a: &ProxyAnswer| CoreError::Answer {
            status: a.status,
            detail: crate::text::one_line(
                &serde_json::from_str::<Value>(&a.body)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| a.body.chars().take(200).collect()),
            ),
        };
        if !(200..300).contains(&a.status) && !also.contains(&a.status) {
            return Err(wrong(&a));
        }
        serde_json::from_str(&a.body).map_err(|_| wrong(&a))
    }

    /// Asks to deploy (`record`: recorded when admitted) or what-if (nothing recorded). A
    /// refusal (409) is an answer, not an error.
    pub async fn deploy(
        &self,
        realm: &str,
        d: &Deployment,
        record: bool,
    ) -> Result<Admission, CoreError> {
        let path = if record {
            format!("/v1/realms/{realm}/deployments")
        } else {
            format!("/v1/realms/{realm}/what-if")
        };
        let body = json!({"environment": d.environment, "pipeline": d.pipeline,
                          "version": d.version.to_string(), "size": d.size, "replicas": d.replicas});
        let a = self.call(http_1::Method::POST, &path, Some(&body)).await?;
        Self::decode(a, &[409])
    }

    /// Removes the active version of `key`; the deployment removed.
    pub async fn undeploy(&self, realm: &str, key: &Key) -> Result<Deployment, CoreError> {
        let path = format!(
            "/v1/realms/{realm}/deployments/{}/{}/{}",
            key.environment.as_str(),
            key.pipeline,
            key.major
        );
        let v: Value = Self::decode(self.call(http_1::Method::DELETE, &path, None).await?, &[])?;
        serde_json::from_value(v["undeployed"].clone()).map_err(|e| CoreError::Answer {
            status: 200,
            detail: e.to_string(),
        })
    }

    /// The realm's usage, config and deployments.
    pub async fn status(&self, realm: &str) -> Result<RealmStatus, CoreError> {
        let path = format!("/v1/realms/{realm}/usage");
        Self::decode(self.call(http_1::Method::GET, &path, None).await?, &[])
    }

    /// Retires the realm (the admin token only) and reads its whole decision log back, page by
    /// page: the core's answers judged as any quota service's ([`retire`]).
    pub async fn retire(
        &self,
        realm: &str,
    ) -> Result<Result<retire::Export, seed::SeedError>, CoreError> {
        let a = self
            .call(http_1::Method::POST, &retire::retire_path(realm), None)
            .await?;
        let retirement = match retire::judge_retirement(seed::IN_REALM, a.status, &a.body) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let mut log = retire::LogReader::new(realm, seed::IN_REALM);
        while let Some(path) = log.next_path() {
            let a = self.call(http_1::Method::GET, &path, None).await?;
            if let Err(e) = log.take(a.status, &a.body) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(log.finish(retirement)))
    }

    /// Writes the realm's config (the admin token only): the core's answer judged as any
    /// quota service's ([`seed::judge`]).
    pub async fn seed(
        &self,
        realm: &str,
        config: &RealmConfig,
    ) -> Result<Result<(), seed::SeedError>, CoreError> {
        let body: Value = serde_json::from_str(&seed::config_body(config)).expect("a JSON object");
        let a = self
            .call(http_1::Method::PUT, &seed::config_path(realm), Some(&body))
            .await?;
        Ok(seed::judge(seed::IN_REALM, a.status, &a.body))
    }
}
