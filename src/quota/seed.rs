//! Seeding a realm's config into the enforcement core: the local ledger, or a running core's
//! HTTP service with an admin token. This is the action the install's phase 6 ends with
//! (`quota.seed`), and what `realmctl quota seed` runs.

use std::path::{Path, PathBuf};
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
    /// The realm's own core, running in its cluster (`platform.apply` puts it there): reached
    /// through the API server's service proxy with the admin token kept in the cluster.
    InRealm,
}

impl Target {
    /// The default target of an install: the realm's own core when the playbook puts it into
    /// the cluster, else the local ledger `<state>/quota.db`.
    pub fn for_install(state_dir: &Path, platform_in_cluster: bool) -> Self {
        if platform_in_cluster {
            Target::InRealm
        } else {
            Self::default_for(state_dir)
        }
    }

    /// The local ledger `<state>/quota.db`.
    pub fn default_for(state_dir: &Path) -> Self {
        Target::Local {
            db: state_dir.join("quota.db"),
        }
    }

    /// A running quota service at `url` with an admin `token`. The token is only ever sent over
    /// https, or over plain http to a loopback address.
    pub fn remote(url: &str, token: Secret) -> Result<Self, SeedError> {
        check_url(url)?;
        Ok(Target::Remote {
            url: url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Where the config goes, in words (no secret).
    pub fn describe(&self) -> String {
        self.seeded().describe()
    }
}

/// Where an install seeded the realm's config, as `quota.seed` journals it (never a token): where
/// `realmctl destroy` retires the realm.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Seeded {
    /// The realm's own core, in its cluster.
    InRealm,
    /// A local ledger file.
    Local {
        /// The file.
        db: PathBuf,
    },
    /// A running quota service.
    Remote {
        /// Its base URL.
        url: String,
    },
}

/// The step-output fact `quota.seed` records [`Seeded`] under.
pub const SEEDED_FACT: &str = "seeded";

impl Seeded {
    /// Where, in words.
    pub fn describe(&self) -> String {
        match self {
            Seeded::Local { db } => format!("local ledger {}", db.display()),
            Seeded::Remote { url } => format!("quota service {url}"),
            Seeded::InRealm => IN_REALM.to_owned(),
        }
    }
}

impl Target {
    /// Where this target is, without its token.
    pub fn seeded(&self) -> Seeded {
        match self {
            Target::Local { db } => Seeded::Local { db: db.clone() },
            Target::Remote { url, .. } => Seeded::Remote { url: url.clone() },
            Target::InRealm => Seeded::InRealm,
        }
    }
}

/// The in-realm core, in words.
pub const IN_REALM: &str = "realm's enforcement core (Service digibee-system/digibee-quota, through the cluster's API server)";

/// The path of `realm`'s config on a quota service.
pub fn config_path(realm: &str) -> String {
    format!("/v1/realms/{realm}/config")
}

/// The body of a config change (pure).
pub fn config_body(config: &RealmConfig) -> String {
    serde_json::json!({
        "pipelineSubscriptions": config.pipeline_subscriptions,
        "extraTestRtus": config.extra_test_rtus,
        "extraProdRtus": config.extra_prod_rtus,
        "maxReplicas": config.max_replicas,
        "maxSize": config.max_size,
    })
    .to_string()
}

/// The service's answer to a config change as a result (pure): `at` names the service.
pub fn judge(at: &str, status: u16, text: &str) -> Result<(), SeedError> {
    match status {
        200..=299 => Ok(()),
        401 | 403 => Err(SeedError::Refused {
            url: at.to_owned(),
            status,
        }),
        _ => {
            let detail = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.to_owned());
            Err(SeedError::Rejected {
                url: at.to_owned(),
                status,
                detail: crate::text::one_line(&detail),
            })
        }
    }
}

/// Whether a bearer token may be sent to `url`: https, or http to a loopback address (pure).
pub fn check_url(url: &str) -> Result<(), SeedError> {
    crate::secret::may_carry_credentials(url).map_err(|why| SeedError::InsecureUrl {
        url: url.to_owned(),
        why,
    })
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
    /// The URL would send the token in the clear (or is not a URL).
    #[error(
        "refusing to send the admin token to {url}: {why}\n  help: use https://, or http:// only to a loopback address"
    )]
    InsecureUrl {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The realm's own core is reached through its cluster, which only an install (or a
    /// command given the realm's spec) connects to.
    #[error(
        "the realm's own enforcement core is reached through its cluster\n  help: run `realmctl install`, or `realmctl quota seed --in-realm -f SPEC`"
    )]
    NeedsCluster,
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

impl SeedError {
    /// Whether another attempt may succeed (unreachable, or a 5xx).
    pub fn retryable(&self) -> bool {
        match self {
            SeedError::Unreachable { .. } => true,
            SeedError::Rejected { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Writes `config` for `realm` into `target`, giving up on a remote target after `limit`.
pub fn seed(
    target: &Target,
    realm: &str,
    config: RealmConfig,
    actor: &str,
    limit: Duration,
) -> Result<(), SeedError> {
    match target {
        Target::Local { db } => Ok(Ledger::open(db, Sync::Full)?.seed(realm, config, actor)?),
        Target::Remote { url, token } => {
            let (status, text) = remote_call(
                url,
                token,
                Method::Put,
                &config_path(realm),
                Some(config_body(&config)),
                limit,
            )?;
            judge(url, status, &text)
        }
        Target::InRealm => Err(SeedError::NeedsCluster),
    }
}

/// The HTTP method of a [`remote_call`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Method {
    /// GET.
    Get,
    /// POST (no body).
    Post,
    /// PUT with a JSON body.
    Put,
}

/// Largest answer read from a quota service (a page of the decision log is far below it).
const REMOTE_ANSWER_CAP: u64 = 4 * 1024 * 1024;

/// One call to a running quota service with an admin token (https, or http to loopback,
/// checked here): its status and body, within `limit` (at most 30 s).
pub(crate) fn remote_call(
    url: &str,
    token: &Secret,
    method: Method,
    path: &str,
    body: Option<String>,
    limit: Duration,
) -> Result<(u16, String), SeedError> {
    check_url(url)?;
    let endpoint = format!("{}{path}", url.trim_end_matches('/'));
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .unversioned_rustls_crypto_provider(crate::crypto::tls_provider())
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .tls_config(tls)
        .timeout_global(Some(limit.min(Duration::from_secs(30))))
        .build()
        .into();
    let bearer = format!("Bearer {}", token.expose());
    let unreachable = |e: ureq::Error| SeedError::Unreachable {
        url: url.to_owned(),
        detail: e.to_string(),
    };
    let mut resp = match method {
        Method::Get => agent
            .get(&endpoint)
            .header("Authorization", &bearer)
            .call()
            .map_err(unreachable)?,
        Method::Post => agent
            .post(&endpoint)
            .header("Authorization", &bearer)
            .send_empty()
            .map_err(unreachable)?,
        Method::Put => agent
            .put(&endpoint)
            .header("Authorization", &bearer)
            .content_type("application/json")
            .send(body.unwrap_or_default())
            .map_err(unreachable)?,
    };
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(REMOTE_ANSWER_CAP)
        .read_to_string()
        .map_err(|e| SeedError::Unreachable {
            url: url.to_owned(),
            detail: format!("reading the answer: {e}"),
        })?;
    Ok((status, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_goes_only_over_https_or_to_loopback() {
        // Regression (issue #8): the admin token was sent over plain http anywhere.
        for ok in [
            "https://quota.example:8443",
            "HTTPS://quota.example",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:9000/",
            "http://localhost:80",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://quota.example:8080",
            "http://10.0.0.1",
            "http://[2001:db8::1]:80",
            "http://127.0.0.1.evil.example",
            "https://user:pass@quota.example",
            "ftp://127.0.0.1",
            "quota.example",
        ] {
            assert!(
                matches!(check_url(bad), Err(SeedError::InsecureUrl { .. })),
                "{bad}"
            );
        }
    }
}
