//! `realmctl quota … --in-realm SPEC`: the quota commands against the realm's own enforcement
//! core, in its cluster. The spec names the cloud and the cluster; the cloud's standard
//! credential chain (the one `install` uses) gives the token for the API server, and the
//! core's own token is read from the Secret `platform.apply` keeps it in. Nothing is written
//! locally.

use std::path::Path;

use anyhow::anyhow;

use realmctl::platform::core::{Core, CoreError, Role};
use realmctl::platform::session::{self, Session};

use super::{BadInput, bad};

/// Runs `f` with the core of the realm `spec_path` describes, asking with the `role` token;
/// `f` gets the core and the realm's name.
pub fn with_core<T>(
    spec_path: &Path,
    role: Role,
    f: impl AsyncFnOnce(&Core<'_>, &str) -> Result<T, CoreError>,
) -> Result<T, BadInput> {
    let spec = super::spec::load(spec_path)?;
    let runtime = super::runtime()?;
    let cloud = super::clouds::connect(&runtime, &spec)?.ok_or_else(|| {
        bad(anyhow!(
            "this build has no client for {} clusters, so it cannot reach the realm's core",
            spec.cloud.provider
        ))
    })?;
    let name = realmctl::cloud::access::definition(&spec).name().to_owned();
    runtime.block_on(async {
        let mut s = Session::open(cloud.as_ref(), &name, session::kube_rs())
            .await
            .map_err(|e| bad(anyhow!(e)))?;
        let api = s.api().await.map_err(|e| bad(anyhow!(e)))?;
        let core = Core::connect(api.as_ref(), role)
            .await
            .map_err(|e| bad(anyhow!(e)))?;
        f(&core, &spec.name).await.map_err(|e| bad(anyhow!(e)))
    })
}
