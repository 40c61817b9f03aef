//! Seeding a realm's config into the enforcement core: the local ledger, or a running core's
//! HTTP service with an admin token. This is the action the install's phase 6 ends with
//! (`quota.seed`), and what `realmctl quota seed` runs.

use std::path::PathBuf;
use std::time::Duration;

use super::ledger::{Ledger, LedgerError, Sync};
use super::model::RealmConfig;
use crate::secret::Secret;

/// Where the realm's config goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A local ledger file.
    Local {
        /// The SQLite database.
        db: PathBuf,
    },
    /// A running quota service.
    Remote {
        /// Base URL, e.g. `https://quota.example:8443`.
        url: String,
        /// An admin bearer token.
        token: Secret,
    },
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The local ledger refused or failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The service could not be reached.
    #[error(
        "cannot reach the quota service at {url}: {detail}\n  help: check the URL and that `realmctl quota serve` is running"
    )]
    Unreachable {
        /// The URL.
        url: String,
        /// The transport error.
        detail: String,
    },
    /// The token was refused (401/403).
    #[error(
        "the quota service at {url} refused the token (HTTP {status})\n  help: seeding needs an admin token (`realmctl quota token --admin`)"
    )]
    Refused {
        /// The URL.
        url: String,
        /// 401 or 403.
        status: u16,
    },
    /// The service refused the config (409: below current use) or the request (4xx/5xx).
    #[error("the quota service at {url} answered HTTP {status}: {detail}")]
    Rejected {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The service's error text.
        detail: String,
    },
}

/// Writes `config` for `realm` into `target`.
pub fn seed(
    target: &Target,
    realm: &str,
    config: RealmConfig,
    actor: &str,
) -> Result<(), SeedError> {
    match target {
        Target::Local { db } => Ok(Ledger::open(db, Sync::Full)?.seed(realm, config, actor)?),
        Target::Remote { url, token } => {
            let endpoint = format!("{}/v1/realms/{realm}/config", url.trim_end_matches('/'));
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into();
            let body = serde_json::json!({
                "pipelineSubscriptions": config.pipeline_subscriptions,
                "extraTestRtus": config.extra_test_rtus,
                "extraProdRtus": config.extra_prod_rtus,
                "maxReplicas": config.max_replicas,
                "maxSize": config.max_size,
            });
            let mut resp = agent
                .put(&endpoint)
                .header("Authorization", &format!("Bearer {}", token.expose()))
                .content_type("application/json")
                .send(body.to_string())
                .map_err(|e| SeedError::Unreachable {
                    url: url.clone(),
                    detail: e.to_string(),
                })?;
            let status = resp.status().as_u16();
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            match status {
                200..=299 => Ok(()),
                401 | 403 => Err(SeedError::Refused {
                    url: url.clone(),
                    status,
                }),
                _ => {
                    let detail = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["error"].as_str().map(str::to_owned))
                        .unwrap_or(text);
                    Err(SeedError::Rejected {
                        url: url.clone(),
                        status,
                        detail,
                    })
                }
            }
        }
    }
}
