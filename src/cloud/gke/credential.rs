//! Google credentials as Application Default Credentials find them, built with
//! google-cloud-auth from what the CLI read ([`GoogleEnv`]): the credential file's JSON
//! (`GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's `application_default_credentials.json`) by
//! its `type` — a service-account key, gcloud's authorized user, an impersonated service
//! account, or an external account (workload identity federation) — else the metadata server.
//! When the spec names a service account to impersonate, the chain's credentials are the source
//! of an impersonated credential for it.
//!
//! Google access tokens carry no principal, so the chain says who it is from what it was built
//! from, and how it knows: the key file's `client_email`, the impersonated account, or the
//! metadata server's default service account. Every endpoint a credential file names (its
//! `token_uri`, `token_url`, `service_account_impersonation_url`) is checked before anything
//! is built: credentials go only over https or to loopback. The key never leaves this module's
//! builders; nothing here prints, stores or logs it.

use google_cloud_auth::credentials::{
    AccessTokenCredentials, external_account, impersonated, mds, service_account, user_account,
};
use serde_json::{Value, json};

use crate::cloud::guard::check_destination;
use crate::cloud::{CloudError, CloudErrorKind};

/// The OAuth scope of every Google Cloud API.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The metadata server of Compute Engine, GKE and Cloud Run.
pub const METADATA_ROOT: &str = "http://metadata.google.internal";
/// Google Cloud's public universe. Named for metadata-server credentials, which would otherwise
/// ask the metadata server for it when a client is built: building makes no call (`plan` stays
/// offline).
const UNIVERSE: &str = "googleapis.com";
/// The IAM Service Account Credentials API (impersonation).
pub const IAM_CREDENTIALS: &str = "https://iamcredentials.googleapis.com";

/// A credential file as the CLI read it.
#[derive(Clone)]
pub struct CredentialFile {
    /// Where it was read from, for people (`GOOGLE_APPLICATION_CREDENTIALS=/path`).
    pub origin: String,
    /// Its JSON (holds a private key or refresh token: never printed).
    pub json: Value,
}

impl std::fmt::Debug for CredentialFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialFile")
            .field("origin", &self.origin)
            .field("json", &"[not shown]")
            .finish()
    }
}

/// What Application Default Credentials start from, as the CLI read the environment.
#[derive(Debug, Clone, Default)]
pub struct GoogleEnv {
    /// The credential file, if there is one.
    pub file: Option<CredentialFile>,
    /// The metadata server's root (`http://` + `GCE_METADATA_HOST`), default [`METADATA_ROOT`].
    pub metadata_root: Option<String>,
}

/// Who the credentials are, and how realmctl knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Named by what the chain was built from (`how`).
    Named {
        /// The account.
        email: String,
        /// Where the name came from.
        how: String,
    },
    /// The metadata server's default service account, asked at `root`.
    Metadata {
        /// The metadata server's root.
        root: String,
    },
    /// Not knowable without a call the install does not make (`why`).
    Unnamed {
        /// Why.
        why: String,
    },
}

/// The credentials the install acts with.
pub struct Chain {
    /// The credentials (google-cloud-auth refreshes them).
    pub credentials: AccessTokenCredentials,
    /// Where they came from, for people.
    pub source: String,
    /// Who they are.
    pub principal: Principal,
    /// The link's name (`service_account`, `authorized_user`, `metadata`, …, `+impersonated`).
    pub link: String,
}

fn invalid(why: impl Into<String>) -> CloudError {
    CloudError::new(CloudErrorKind::Invalid, "login:credentials", why)
}

fn refused(e: crate::cloud::guard::RefusedDestination) -> CloudError {
    CloudError::new(
        CloudErrorKind::RefusedDestination,
        "login:credentials",
        e.to_string(),
    )
}

/// The account an impersonation URL (`…/serviceAccounts/<email>:generateAccessToken`) names.
pub fn impersonated_email(url: &str) -> Option<String> {
    let tail = url.rsplit_once("/serviceAccounts/")?.1;
    let email = tail.split(':').next()?;
    (!email.is_empty()).then(|| email.to_owned())
}

/// The endpoints a credential file sends credentials to, checked (pure): https, or http to
/// loopback.
pub fn check_file_endpoints(json: &Value) -> Result<(), CloudError> {
    for key in [
        "token_uri",
        "token_url",
        "service_account_impersonation_url",
    ] {
        if let Some(u) = json.get(key).and_then(Value::as_str) {
            check_destination(u, true).map_err(refused)?;
        }
    }
    if let Some(src) = json.get("source_credentials") {
        check_file_endpoints(src)?;
    }
    Ok(())
}

fn type_of(json: &Value) -> Result<&str, CloudError> {
    json.get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the credential file has no `type`"))
}

/// Who a credential file's JSON is (pure).
pub fn principal_of(json: &Value) -> Principal {
    let ty = json.get("type").and_then(Value::as_str).unwrap_or_default();
    let imp = json
        .get("service_account_impersonation_url")
        .and_then(Value::as_str)
        .and_then(impersonated_email);
    match (ty, imp) {
        (_, Some(email)) => Principal::Named {
            email,
            how: "the service account the credential file impersonates".into(),
        },
        ("service_account", None) => match json.get("client_email").and_then(Value::as_str) {
            Some(e) => Principal::Named {
                email: e.to_owned(),
                how: "the service-account key's client_email".into(),
            },
            None => Principal::Unnamed {
                why: "the service-account key names no client_email".into(),
            },
        },
        ("authorized_user", None) => Principal::Unnamed {
            why: "gcloud's user credentials name no account (`gcloud auth list` shows it)".into(),
        },
        ("external_account", None) => Principal::Unnamed {
            why: format!(
                "a workload identity pool principal (audience {})",
                crate::text::one_line(
                    json.get("audience")
                        .and_then(Value::as_str)
                        .unwrap_or("not given")
                )
            ),
        },
        (other, None) => Principal::Unnamed {
            why: format!("credentials of type {}", crate::text::one_line(other)),
        },
    }
}

fn from_json(json: Value) -> Result<AccessTokenCredentials, CloudError> {
    let scopes = [CLOUD_PLATFORM];
    let built = match type_of(&json)? {
        "service_account" => service_account::Builder::new(json)
            .with_access_specifier(service_account::AccessSpecifier::from_scopes(scopes))
            .build_access_token_credentials(),
        "authorized_user" => user_account::Builder::new(json)
            .with_scopes(scopes)
            .build_access_token_credentials(),
        "impersonated_service_account" => impersonated::Builder::new(json)
            .with_scopes(scopes)
            .build_access_token_credentials(),
        "external_account" => external_account::Builder::new(json)
            .with_scopes(scopes)
            .build_access_token_credentials(),
        other => {
            return Err(invalid(format!(
                "credential files of type {} are not supported (service_account, authorized_user, impersonated_service_account, external_account are)",
                crate::text::one_line(other)
            )));
        }
    };
    built.map_err(|e| invalid(format!("the credential file: {e}")))
}

/// Checks, without building anything, what [`chain`] would send credentials to: every endpoint
/// the credential file names and the impersonation URL (pure).
pub fn check(
    env: &GoogleEnv,
    impersonate: Option<&str>,
    iam_endpoint: &str,
) -> Result<(), CloudError> {
    if let Some(f) = &env.file {
        check_file_endpoints(&f.json)?;
        type_of(&f.json)?;
    }
    if let Some(target) = impersonate {
        check_destination(&impersonation_url(iam_endpoint, target), true).map_err(refused)?;
    }
    Ok(())
}

fn impersonation_url(iam_endpoint: &str, target: &str) -> String {
    format!(
        "{}/v1/projects/-/serviceAccounts/{target}:generateAccessToken",
        iam_endpoint.trim_end_matches('/')
    )
}

/// The chain `env` starts, impersonating `impersonate` (through the IAM credentials API at
/// `iam_endpoint`) when given. Makes no call.
pub fn chain(
    env: &GoogleEnv,
    impersonate: Option<&str>,
    iam_endpoint: &str,
) -> Result<Chain, CloudError> {
    let root = env
        .metadata_root
        .clone()
        .unwrap_or_else(|| METADATA_ROOT.to_owned());
    if let Some(target) = impersonate {
        let url = impersonation_url(iam_endpoint, target);
        check_destination(&url, true).map_err(refused)?;
        let how = "cloud.gke.impersonate".to_owned();
        return match &env.file {
            Some(f) => {
                check_file_endpoints(&f.json)?;
                let source = json!({
                    "type": "impersonated_service_account",
                    "service_account_impersonation_url": url,
                    "source_credentials": f.json,
                });
                Ok(Chain {
                    credentials: from_json(source)?,
                    source: format!("{} impersonating {target}", f.origin),
                    principal: Principal::Named {
                        email: target.to_owned(),
                        how,
                    },
                    link: format!("{}+impersonated", type_of(&f.json)?),
                })
            }
            None => {
                let base = mds::Builder::default()
                    .with_endpoint(root.clone())
                    .with_universe_domain(UNIVERSE)
                    .with_scopes([CLOUD_PLATFORM])
                    .build()
                    .map_err(|e| invalid(format!("the metadata server: {e}")))?;
                let credentials = impersonated::Builder::from_source_credentials(base)
                    .with_target_principal(target)
                    .with_universe_domain(UNIVERSE)
                    .with_scopes([CLOUD_PLATFORM])
                    .build_access_token_credentials()
                    .map_err(|e| invalid(format!("impersonation: {e}")))?;
                Ok(Chain {
                    credentials,
                    source: format!("the metadata server ({root}) impersonating {target}"),
                    principal: Principal::Named {
                        email: target.to_owned(),
                        how,
                    },
                    link: "metadata+impersonated".into(),
                })
            }
        };
    }
    match &env.file {
        Some(f) => {
            check_file_endpoints(&f.json)?;
            Ok(Chain {
                credentials: from_json(f.json.clone())?,
                source: f.origin.clone(),
                principal: principal_of(&f.json),
                link: type_of(&f.json)?.to_owned(),
            })
        }
        None => {
            let credentials = mds::Builder::default()
                .with_endpoint(root.clone())
                .with_universe_domain(UNIVERSE)
                .with_scopes([CLOUD_PLATFORM])
                .build_access_token_credentials()
                .map_err(|e| invalid(format!("the metadata server: {e}")))?;
            Ok(Chain {
                credentials,
                source: format!("the metadata server ({root})"),
                principal: Principal::Metadata { root },
                link: "metadata".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_principal_comes_from_the_file_and_says_how() {
        let sa = json!({"type": "service_account", "client_email": "i@p.iam.gserviceaccount.com"});
        assert_eq!(
            principal_of(&sa),
            Principal::Named {
                email: "i@p.iam.gserviceaccount.com".into(),
                how: "the service-account key's client_email".into()
            }
        );
        let ext = json!({"type": "external_account", "audience": "//iam/x",
            "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/t@p.iam.gserviceaccount.com:generateAccessToken"});
        assert!(
            matches!(principal_of(&ext), Principal::Named { email, .. } if email == "t@p.iam.gserviceaccount.com")
        );
        assert!(matches!(
            principal_of(&json!({"type": "authorized_user"})),
            Principal::Unnamed { .. }
        ));
    }

    #[test]
    fn a_file_naming_a_plain_http_token_endpoint_off_loopback_is_refused() {
        let bad =
            json!({"type": "authorized_user", "token_uri": "http://oauth2.example.com/token"});
        assert_eq!(
            check_file_endpoints(&bad).unwrap_err().kind,
            CloudErrorKind::RefusedDestination
        );
        let nested = json!({"type": "impersonated_service_account",
            "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/x",
            "source_credentials": {"type": "authorized_user", "token_uri": "http://10.0.0.1/token"}});
        assert!(check_file_endpoints(&nested).is_err());
        let ok = json!({"type": "authorized_user", "token_uri": "http://127.0.0.1:9/token"});
        assert!(check_file_endpoints(&ok).is_ok());
    }

    #[test]
    fn a_chain_impersonating_through_plain_http_off_loopback_is_refused() {
        let env = GoogleEnv {
            file: Some(CredentialFile {
                origin: "test".into(),
                json: json!({"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}),
            }),
            metadata_root: None,
        };
        let e = chain(
            &env,
            Some("t@p.iam.gserviceaccount.com"),
            "http://iam.example.com",
        )
        .err()
        .unwrap();
        assert_eq!(e.kind, CloudErrorKind::RefusedDestination);
    }
}
