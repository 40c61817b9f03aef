//! Talking to the realm's enforcement core where it runs: through the API server's service
//! proxy ([`KubeApi::proxy`]), with a token read from the Secret it is kept in. Used by
//! `quota.seed` and `realm.live` in an install, and by `realmctl quota --in-realm`. The token
//! travels in [`crate::quota::http::TOKEN_HEADER`] (the proxy strips `Authorization`), marked
//! sensitive; it is never returned to the caller except as a [`Secret`].

use serde_json::Value;

use super::client::{KubeApi, KubeError, ProxyAnswer, ProxyRequest};
use super::quota::{self, ADMIN_SECRET, REALM_SECRET};
use crate::quota::http::TOKEN_HEADER;
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
}
