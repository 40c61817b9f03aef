//! The credential chain Azure tools use, built from what the CLI read of the environment (the
//! library reads none): in order, a service principal's client secret
//! (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`), workload identity
//! (`AZURE_FEDERATED_TOKEN_FILE` with `AZURE_CLIENT_ID`), managed identity, the Azure CLI.
//! azure_identity 1.x has no `DefaultAzureCredential`, so realmctl builds the chain and names
//! the link that answered.
//!
//! A link the environment configures explicitly (a secret, a federated token file) is final:
//! its failure (an invalid or expired secret) is reported, not hidden behind the next link.
//! Managed identity and the Azure CLI are probed: when unavailable, the next link is tried.
//! Token requests go to the authority host given (`AZURE_AUTHORITY_HOST`, which
//! azure_identity requires to be https) through the provider's guarded transport. The secret
//! and every token stay in memory; the identity is read from the token's claims.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientOptions, RetryOptions, Transport};
use base64::Engine;

use crate::cloud::{CloudError, CloudErrorKind};
use crate::secret::Secret;

/// What the CLI read of the environment, under the names Azure tools use.
#[derive(Clone, Default)]
pub struct AzureEnv {
    /// `AZURE_TENANT_ID`.
    pub tenant_id: Option<String>,
    /// `AZURE_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `AZURE_CLIENT_SECRET`.
    pub client_secret: Option<Secret>,
    /// `AZURE_FEDERATED_TOKEN_FILE`.
    pub federated_token_file: Option<PathBuf>,
    /// `AZURE_AUTHORITY_HOST`.
    pub authority_host: Option<String>,
}

/// A link of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A service principal's client secret.
    ClientSecret,
    /// Workload identity (a federated token).
    WorkloadIdentity,
    /// The managed identity of the machine or service realmctl runs on.
    ManagedIdentity,
    /// The Azure CLI's signed-in account.
    AzureCli,
}

impl Source {
    /// The link in words, with the variables that chose it.
    pub fn describe(self) -> &'static str {
        match self {
            Source::ClientSecret => {
                "client secret (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET)"
            }
            Source::WorkloadIdentity => "workload identity (AZURE_FEDERATED_TOKEN_FILE)",
            Source::ManagedIdentity => "managed identity",
            Source::AzureCli => "Azure CLI (az login)",
        }
    }
}

struct Link {
    source: Source,
    credential: Arc<dyn TokenCredential>,
    /// Its failure ends the chain (configured explicitly).
    last_word: bool,
}

/// The chain: the first link that answers is used from then on.
pub struct Chain {
    links: Vec<Link>,
    answered: Mutex<Option<usize>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let links: Vec<Source> = self.links.iter().map(|l| l.source).collect();
        f.debug_struct("Chain").field("links", &links).finish()
    }
}

/// The client options of the chain's token requests: the guarded transport, no retries of
/// azure_core's own, the authority host given.
pub fn options(transport: &Transport, authority: Option<&str>) -> ClientOptions {
    let mut o = ClientOptions {
        transport: Some(transport.clone()),
        retry: RetryOptions::none(),
        ..ClientOptions::default()
    };
    if let Some(host) = authority {
        let mut c = azure_core::cloud::CustomConfiguration::default();
        c.authority_host = host.to_owned();
        o.cloud = Some(Arc::new(c.into()));
    }
    o
}

fn setup_error(e: &azure_core::Error) -> CloudError {
    CloudError::new(
        CloudErrorKind::ExpiredCredentials,
        "login:credentials",
        crate::text::one_line(&e.to_string()),
    )
}

impl Chain {
    /// The chain for tenant `tenant` (the spec's, unless `AZURE_TENANT_ID` names one).
    // azure_identity's option structs have private fields: they can only be defaulted, then set.
    #[allow(clippy::field_reassign_with_default)]
    pub fn new(env: &AzureEnv, tenant: &str, transport: &Transport) -> Result<Chain, CloudError> {
        let tenant = env.tenant_id.as_deref().unwrap_or(tenant);
        let opts = || options(transport, env.authority_host.as_deref());
        let mut links = Vec::new();
        if let (Some(client), Some(secret)) = (&env.client_id, &env.client_secret) {
            let c = azure_identity::ClientSecretCredential::new(
                tenant,
                client.clone(),
                secret.expose().to_owned().into(),
                Some(azure_identity::ClientSecretCredentialOptions {
                    client_options: opts(),
                }),
            )
            .map_err(|e| setup_error(&e))?;
            links.push(Link {
                source: Source::ClientSecret,
                credential: c,
                last_word: true,
            });
        } else if let (Some(client), Some(file)) = (&env.client_id, &env.federated_token_file) {
            let mut o = azure_identity::WorkloadIdentityCredentialOptions::default();
            o.client_id = Some(client.clone());
            o.tenant_id = Some(tenant.to_owned());
            o.token_file_path = Some(file.clone());
            o.credential_options.client_options = opts();
            let c = azure_identity::WorkloadIdentityCredential::new(Some(o))
                .map_err(|e| setup_error(&e))?;
            links.push(Link {
                source: Source::WorkloadIdentity,
                credential: c,
                last_word: true,
            });
        }
        if links.is_empty() {
            let mut o = azure_identity::ManagedIdentityCredentialOptions::default();
            o.client_options = opts();
            if let Some(client) = &env.client_id {
                o.user_assigned_id = Some(azure_identity::UserAssignedId::ClientId(client.clone()));
            }
            if let Ok(c) = azure_identity::ManagedIdentityCredential::new(Some(o)) {
                links.push(Link {
                    source: Source::ManagedIdentity,
                    credential: c,
                    last_word: false,
                });
            }
            let mut o = azure_identity::AzureCliCredentialOptions::default();
            o.tenant_id = env.tenant_id.clone();
            if let Ok(c) = azure_identity::AzureCliCredential::new(Some(o)) {
                links.push(Link {
                    source: Source::AzureCli,
                    credential: c,
                    last_word: true,
                });
            }
        }
        Ok(Chain {
            links,
            answered: Mutex::new(None),
        })
    }

    /// The link that answered, once one has.
    pub fn answered(&self) -> Option<Source> {
        let i = (*self.answered.lock().unwrap_or_else(|p| p.into_inner()))?;
        self.links.get(i).map(|l| l.source)
    }
}

#[async_trait::async_trait]
impl TokenCredential for Chain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let known = *self.answered.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = known {
            return self.links[i].credential.get_token(scopes, options).await;
        }
        let mut last = None;
        for (i, link) in self.links.iter().enumerate() {
            match link.credential.get_token(scopes, None).await {
                Ok(t) => {
                    *self.answered.lock().unwrap_or_else(|p| p.into_inner()) = Some(i);
                    return Ok(t);
                }
                Err(e) if link.last_word => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "no Azure credentials: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE), run on a managed identity, or `az login`",
            )
        }))
    }
}

/// The claims of an access token that say who it is for (never verified here: a client
/// cannot verify an access token, and ARM does).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Claims {
    /// Object id of the principal.
    #[serde(default)]
    pub oid: Option<String>,
    /// Tenant.
    #[serde(default)]
    pub tid: Option<String>,
    /// Application (client) id (v1 tokens).
    #[serde(default)]
    pub appid: Option<String>,
    /// Application (client) id (v2 tokens).
    #[serde(default)]
    pub azp: Option<String>,
    /// A user's sign-in name.
    #[serde(default)]
    pub upn: Option<String>,
}

/// The claims of a JWT access token (pure); `None` for a token that is not a JWT.
pub fn claims(token: &str) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_read_from_the_payload() {
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let t = format!(
            "{}.{}.sig",
            enc(r#"{"alg":"RS256"}"#),
            enc(r#"{"oid":"o-1","tid":"t-1","appid":"a-1","exp":1}"#)
        );
        let c = claims(&t).unwrap();
        assert_eq!(c.oid.as_deref(), Some("o-1"));
        assert_eq!(c.tid.as_deref(), Some("t-1"));
        assert_eq!(c.appid.as_deref(), Some("a-1"));
        assert_eq!(claims("opaque-token"), None);
        assert_eq!(claims("a.!!!.c"), None);
    }
}
