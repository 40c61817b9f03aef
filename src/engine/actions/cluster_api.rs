//! The connection to the realm's cluster that the in-cluster steps share (`platform.apply`,
//! `quota.seed` into the realm, `realm.live`): the API server and CA the cloud describes, a
//! token from the realm's own credential chain renewed before it expires, and the mapping of
//! Kubernetes errors to step failures (conflicts name manager and field; a refused identity is
//! the customer's to fix).

use std::sync::Arc;

use crate::checks::{Category, CheckResult, Owner};
use crate::engine::ctx::{Ctx, Failure};
use crate::engine::model::output::{FailureKind, StepOutput};
use crate::platform::client::{KubeApi, KubeError, KubeErrorKind};
use crate::platform::session::{Session, SessionError};
use crate::text::one_line;

/// The connection to the cluster ([`Session`]), its failures as step failures.
pub(super) struct ClusterConn<'c> {
    session: Session<'c>,
}

/// A session failure as a step failure.
fn session_failure(e: SessionError) -> Failure {
    match e {
        SessionError::NoCluster { name } => Failure::permanent(format!(
            "cluster {name} does not exist: run cluster.apply first"
        )),
        SessionError::Cloud(c) => c.into(),
        SessionError::Kube(k) => failure(k),
    }
}

impl<'c> ClusterConn<'c> {
    /// The connection to cluster `name` (which must exist); makes no Kubernetes call.
    pub(super) async fn open(ctx: &Ctx<'c>, name: &str) -> Result<ClusterConn<'c>, Failure> {
        let session = Session::open(ctx.cloud()?, name, ctx.opts.kube.clone())
            .await
            .map_err(session_failure)?;
        Ok(ClusterConn { session })
    }

    /// The API, with a fresh token.
    pub(super) async fn api(&mut self) -> Result<Arc<dyn KubeApi>, Failure> {
        self.session.api().await.map_err(session_failure)
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
