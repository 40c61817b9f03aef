//! Everything the CLI reads from the environment, in one place: the operator's name, secrets
//! from the variables the user names, proxy credentials, object storage settings, and (test
//! builds) the crash tests' kill point. The library never reads the environment.

use anyhow::anyhow;
use realmctl::engine::io::state::StateRef;

use realmctl::checks::outbound::ProxyAuth;
use realmctl::engine::io::store::ObjectOptions;
use realmctl::secret::Secret;
use realmctl::spec::Spec;

use super::{BadInput, bad};

/// The variable naming the signing key file when `--signing-key` is not given.
pub const SIGNING_KEY_VAR: &str = "REALMCTL_SIGNING_KEY";

/// `--signing-key`, shared by `install`, `approve` and `unlock`.
#[derive(Debug, clap::Args)]
pub struct SigningArgs {
    /// Sign every journal record this command writes with this Ed25519 private key (from
    /// `realmctl audit keygen`); default: the file named by $REALMCTL_SIGNING_KEY, else unsigned.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<std::path::PathBuf>,
}

impl SigningArgs {
    /// The signing key to use for a command on the state folder `state`: `--signing-key`, else
    /// the file `$REALMCTL_SIGNING_KEY` names, else none. A key inside the state folder, or one
    /// other users may read, is refused. Only the key id is ever printed.
    pub fn load(
        &self,
        state: &StateRef,
    ) -> Result<Option<std::sync::Arc<realmctl::signing::SigningKey>>, BadInput> {
        let path = match (&self.signing_key, std::env::var_os(SIGNING_KEY_VAR)) {
            (Some(p), _) => p.clone(),
            (None, Some(v)) if !v.is_empty() => std::path::PathBuf::from(v),
            _ => return Ok(None),
        };
        if let Some(folder) = state.folder() {
            realmctl::signing::refuse_inside(&path, folder).map_err(|e| bad(anyhow!(e)))?;
        }
        let key = realmctl::signing::SigningKey::load(&path).map_err(|e| bad(anyhow!(e)))?;
        eprintln!(
            "signing journal records with {} ({})",
            key.public().id(),
            path.display()
        );
        Ok(Some(std::sync::Arc::new(key)))
    }

    /// The key a customer signs an offline approval with: `--signing-key`, else the file
    /// `$REALMCTL_SIGNING_KEY` names; required. Only the key id is ever printed.
    pub fn load_own(&self) -> Result<realmctl::signing::SigningKey, BadInput> {
        let path = match (&self.signing_key, std::env::var_os(SIGNING_KEY_VAR)) {
            (Some(p), _) => p.clone(),
            (None, Some(v)) if !v.is_empty() => std::path::PathBuf::from(v),
            _ => {
                return Err(bad(anyhow!(
                    "an offline approval is signed with your own key: give --signing-key FILE (or set {SIGNING_KEY_VAR})\n  help: make one with `realmctl audit keygen -o FILE` and give the cloud team FILE.pub"
                )));
            }
        };
        realmctl::signing::SigningKey::load(&path).map_err(|e| bad(anyhow!(e)))
    }
}

/// Who runs the command: `$REALMCTL_OPERATOR`, else `$USER`.
pub fn operator() -> String {
    std::env::var("REALMCTL_OPERATOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}

/// A secret from the environment variable `var`, which the user named with `flag`; `what` says
/// what it must hold.
pub fn secret(var: &str, flag: &str, what: &str) -> Result<Secret, BadInput> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
        _ => Err(bad(anyhow!(
            "the environment variable {var} (named by {flag}) is not set\n  help: export {var}=<{what}>"
        ))),
    }
}

/// Proxy credentials from the variable the spec names (`outbound.proxyCredentialsEnv`).
pub fn proxy_auth(spec: &Spec) -> Result<Option<ProxyAuth>, BadInput> {
    let Some(var) = spec
        .outbound
        .proxy
        .as_ref()
        .and_then(|p| p.credentials_env.as_ref())
    else {
        return Ok(None);
    };
    let value = std::env::var(var).map_err(|_| {
        bad(anyhow!("{}: the environment variable {var} (named by outbound.proxyCredentialsEnv) is not set\n  help: export {var}=user:password before running preflight", spec.path.display()))
    })?;
    let Some((user, password)) = value.split_once(':') else {
        return Err(bad(anyhow!(
            "the environment variable {var} must hold user:password (no `:` found)\n  help: export {var}=user:password"
        )));
    };
    Ok(Some(ProxyAuth {
        user: user.to_owned(),
        password: Secret::new(password),
        source: var.clone(),
    }))
}

/// Object storage settings from the providers' standard variables (`AWS_*`, `AZURE_*`,
/// `GOOGLE_*`), as `object_store` options.
pub fn object_options() -> ObjectOptions {
    std::env::vars()
        .filter(|(k, _)| {
            ["AWS_", "AZURE_", "GOOGLE_"]
                .iter()
                .any(|p| k.starts_with(p))
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// Test builds: where to kill the process (`REALMCTL_TEST_KILL_AT=opened|STEP:POINT`).
#[cfg(feature = "test-actions")]
pub fn kill_at() -> Result<Option<realmctl::engine::options::KillPoint>, BadInput> {
    match std::env::var("REALMCTL_TEST_KILL_AT") {
        Ok(v) => v.parse().map(Some).map_err(|e: String| bad(anyhow!(e))),
        Err(_) => Ok(None),
    }
}

/// Test builds: `REALMCTL_TEST_FAULT=ack-before-commit` makes `quota serve`'s SQLite writer
/// answer before it commits (the durability test shows its check catches that).
#[cfg(feature = "test-actions")]
pub fn ack_before_commit() -> bool {
    std::env::var("REALMCTL_TEST_FAULT").is_ok_and(|v| v == "ack-before-commit")
}

/// The realm's cloud as the source of credentials for a bucket in it.
#[cfg(feature = "object-store")]
pub fn cloud_access(
    cloud: Option<&std::sync::Arc<dyn realmctl::cloud::Cloud>>,
    region: &str,
    endpoint: Option<&str>,
) -> Option<realmctl::engine::io::store::object::CloudAccess> {
    cloud.map(|c| realmctl::engine::io::store::object::CloudAccess {
        cloud: c.clone(),
        region: region.to_owned(),
        endpoint: endpoint.map(str::to_owned),
        extra_roots: Vec::new(),
    })
}

/// A secret from a conventional variable (e.g. `PGPASSWORD`), when set and not empty.
/// `--state`: a state folder, or `postgres://USER@HOST:PORT/DB?realm=NAME` with the password
/// from `PGPASSWORD` (never from the command line). Its own parser, not a plain function: clap
/// quotes a refused value in its message, and a URL with a password must not be echoed.
#[derive(Debug, Clone, Copy)]
pub struct StateArg;

impl clap::builder::TypedValueParser for StateArg {
    type Value = StateRef;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<StateRef, clap::Error> {
        let Some(s) = value.to_str() else {
            return Ok(StateRef::Folder(std::path::PathBuf::from(value)));
        };
        StateRef::parse(s, optional_secret("PGPASSWORD")).map_err(|e| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{e}\n"))
        })
    }
}

pub fn optional_secret(var: &str) -> Option<Secret> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret::new)
}

/// The Azure credential chain's settings, from the variables Azure tools read.
#[cfg(feature = "aks")]
pub fn azure() -> realmctl::cloud::aks::credential::AzureEnv {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    realmctl::cloud::aks::credential::AzureEnv {
        tenant_id: var("AZURE_TENANT_ID"),
        client_id: var("AZURE_CLIENT_ID"),
        client_secret: optional_secret("AZURE_CLIENT_SECRET"),
        federated_token_file: var("AZURE_FEDERATED_TOKEN_FILE").map(Into::into),
        authority_host: var("AZURE_AUTHORITY_HOST"),
    }
}

/// Where Application Default Credentials start, from the variables Google tools read:
/// `GOOGLE_APPLICATION_CREDENTIALS` (the file must exist), else gcloud's
/// `application_default_credentials.json` (under `$CLOUDSDK_CONFIG`, else `~/.config/gcloud`)
/// if there is one, else the metadata server (at `GCE_METADATA_HOST` when set). The file is read
/// here (a regular file, at most 256 KiB); its contents are never printed.
#[cfg(feature = "gke")]
pub fn google() -> Result<realmctl::cloud::gke::credential::GoogleEnv, String> {
    use realmctl::cloud::gke::credential::{CredentialFile, GoogleEnv};
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let read = |path: std::path::PathBuf, origin: String| -> Result<CredentialFile, String> {
        let text = realmctl::fsutil::read_capped_string(&path, realmctl::fsutil::caps::KEY)
            .map_err(|e| format!("{origin}: {e}"))?;
        let json = serde_json::from_str(&text)
            .map_err(|e| format!("{origin}: not a credential file (JSON): line {}", e.line()))?;
        Ok(CredentialFile { origin, json })
    };
    let file = match var("GOOGLE_APPLICATION_CREDENTIALS") {
        Some(p) => Some(read(
            p.clone().into(),
            format!("GOOGLE_APPLICATION_CREDENTIALS={p}"),
        )?),
        None => {
            let dir = var("CLOUDSDK_CONFIG")
                .map(std::path::PathBuf::from)
                .or_else(|| var("HOME").map(|h| std::path::Path::new(&h).join(".config/gcloud")));
            match dir.map(|d| d.join("application_default_credentials.json")) {
                Some(p) if p.exists() => {
                    let origin = format!("gcloud's {}", p.display());
                    Some(read(p, origin)?)
                }
                _ => None,
            }
        }
    };
    Ok(GoogleEnv {
        file,
        metadata_root: var("GCE_METADATA_HOST").map(|h| format!("http://{h}")),
    })
}
