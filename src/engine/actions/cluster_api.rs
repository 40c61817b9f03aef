//! The connection to the realm's cluster that the in-cluster steps share (`platform.apply`,
//! `quota.seed` into the realm, `realm.live`): the API server and CA the cloud describes, a
//! token from the realm's own credential chain renewed before it expires, and the mapping of
//! Kubernetes errors to step failures (conflicts name manager and field; a refused identity is
//! the customer's to fix).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::checks::{Category, CheckResult, Owner};
use crate::engine::ctx::{Ctx, Failure};
use crate::engine::model::output::{FailureKind, StepOutput};
use crate::platform::client::{Endpoint, KubeApi, KubeError, KubeErrorKind};
use crate::text::one_line;

/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(120);
/// A token whose expiry the provider does not say (GKE's ADC token) is renewed this often.
const RENEW_UNKNOWN: Duration = Duration::from_secs(5 * 60);

/// The connection to the cluster, renewed before its token expires.
pub(super) struct ClusterConn<'c> {
    ctx: &'c Ctx<'c>,
    cluster: crate::cloud::facts::ClusterFacts,
    server: String,
    ca_pem: String,
    api: Option<(Arc<dyn KubeApi>, Option<SystemTime>)>,
}

impl<'c> ClusterConn<'c> {
    /// The connection to cluster `name` (which must exist); makes no Kubernetes call.
    pub(super) async fn open(ctx: &'c Ctx<'c>, name: &str) -> Result<ClusterConn<'c>, Failure> {
        let cloud = ctx.cloud()?;
        let Some(cluster) = cloud.cluster(name).await? else {
            return Err(Failure::permanent(format!(
                "cluster {name} does not exist: run cluster.apply first"
            )));
        };
        let access = cloud.kube_access(&cluster).await?;
        let ca_pem =
            crate::platform::client::decode_ca(&access.certificate_authority).map_err(failure)?;
        Ok(ClusterConn {
            ctx,
            cluster,
            server: access.server.clone(),
            ca_pem,
            api: None,
        })
    }

    /// The API, with a fresh token.
    pub(super) async fn api(&mut self) -> Result<Arc<dyn KubeApi>, Failure> {
        let fresh = self
            .api
            .as_ref()
            .is_some_and(|(_, exp)| exp.is_none_or(|e| SystemTime::now() + RENEW_BEFORE < e));
        if !fresh {
            let cloud = self.ctx.cloud()?;
            let t = cloud.kube_token(&self.cluster).await?;
            let endpoint = Endpoint {
                server: self.server.clone(),
                ca_pem: self.ca_pem.clone(),
                token: t.token,
            };
            let api = (self.ctx.opts.kube)(&endpoint).map_err(failure)?;
            let expires = t
                .expires
                .unwrap_or_else(|| SystemTime::now() + RENEW_UNKNOWN + RENEW_BEFORE);
            self.api = Some((api, Some(expires)));
        }
        Ok(self.api.as_ref().expect("set above").0.clone())
    }
}

/// A Kubernetes error as a step failure: conflicts name the manager and field (the fix is a
/// person's), a refused token or permission is the customer's, the rest may be retried.
pub(super) fn failure(e: KubeError) -> Failure {
    let object = one_line(&e.object);
    match &e.kind {
        KubeErrorKind::Conflict(fields) => {
            let list: Vec<String> = fields
                .iter()
                .map(|(m, f)| format!("{} (owned by field manager `{}`)", one_line(f), one_line(m)))
                .collect();
            let why = format!(
                "{object}: server-side apply conflicts with another field manager: {}; nothing was forced (install --force-conflicts takes these fields)",
                list.join(", ")
            );
            let evidence = CheckResult::fail(
                "platform.conflict",
                Category::Access,
                &object,
                why.clone(),
                "find out why another manager set these fields; change the bundle to match, or run install again with --force-conflicts to take them",
            )
            .owned_by(Owner::Digibee);
            Failure {
                kind: FailureKind::Permanent,
                message: format!(
                    "{why}\n  help: nothing was forced; rerun with --force-conflicts to take these fields"
                ),
                output: Some(Box::new(StepOutput {
                    summary: format!("{object}: conflict"),
                    checks: vec![evidence],
                    ..StepOutput::default()
                })),
            }
        }
        KubeErrorKind::Unauthorized | KubeErrorKind::Forbidden => {
            let evidence = CheckResult::fail(
                "platform.access",
                Category::Access,
                &object,
                format!("{object}: {}", one_line(&e.message)),
                "grant the install identity cluster admin in the realm's cluster (the roles-and-resources document names the role for this cloud: \"installer identity inside the cluster\")",
            )
            .owned_by(Owner::Customer);
            Failure {
                kind: FailureKind::Permanent,
                message: format!("{object}: {}", one_line(&e.message)),
                output: Some(Box::new(StepOutput {
                    summary: "the cluster refused the install identity".into(),
                    checks: vec![evidence],
                    ..StepOutput::default()
                })),
            }
        }
        _ if e.retryable() => Failure::retryable(format!("{object}: {}", one_line(&e.message))),
        _ => Failure::permanent(format!("{object}: {}", one_line(&e.message))),
    }
}
