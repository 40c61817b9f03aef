//! The read-only access checks of phases 1–3 (account, credentials, permissions), shared by the
//! install engine and `preflight --only access`: each gathers facts through a [`Cloud`] and
//! hands them to the pure [`super::judge`] with the rules of the spec's cloud profile. Also the
//! one place the realm's cluster definition is built from a spec.

use time::OffsetDateTime;

use super::definition::ClusterDefinition;
use super::facts::Identity;
use super::judge;
use super::permissions::{self, Vars};
use super::profile;
use super::sizing::{self, PoolSize};
use super::{Cloud, CloudError};
use crate::checks::CheckResult;
use crate::requirements::ForWorkflow;
use crate::spec::Spec;

/// The node pool size of the spec's realm (from its RTUs).
pub fn pool_size(spec: &Spec) -> PoolSize {
    sizing::for_realm(spec.cloud.provider, &spec.subscription)
}

/// The realm's cluster definition: what phase 4 renders, phase 5's approval binds to, phase 6
/// sends to the cloud and adoption is judged against.
pub fn definition(spec: &Spec) -> ClusterDefinition {
    let prof = profile::of(spec);
    let mut def = prof.definition(spec, &pool_size(spec));
    def.platform = Some(crate::platform::definition::definition(spec));
    def.vpn = crate::cloud::vpn::definition(
        spec,
        &prof.vpn_host(),
        (
            def.cluster.network.network.as_deref(),
            &def.cluster.network.subnets,
        ),
        &def.cluster.tags,
    );
    def
}

/// What the spec's cloud would refuse in the realm's definition (its published naming rules for
/// clusters, pools, tags or labels, node labels), one line each; empty when it would accept
/// it. The spec's own rules are stricter today, so this guards the definition's other sources
/// (the profile's tags and pool names, and the spec fields to come).
pub fn definition_problems(spec: &Spec) -> Vec<String> {
    profile::of(spec).problems(&definition(spec))
}

/// Phase 1: the account, its subnets, identities, services, versions and quotas.
pub async fn account(cloud: &dyn Cloud, spec: &Spec) -> Result<Vec<CheckResult>, CloudError> {
    let prof = profile::of(spec);
    let pool = pool_size(spec);
    let def = prof.definition(spec, &pool);
    let ask = prof.account(spec, &def, &pool);
    let facts = cloud.account(&ask.query).await?;
    Ok(judge::account(&facts, &ask))
}

/// Phase 2: who the install runs as, from where, and until when.
pub async fn credentials(
    cloud: &dyn Cloud,
    spec: &Spec,
    now: OffsetDateTime,
) -> Result<(Identity, Vec<CheckResult>), CloudError> {
    let id = cloud.identity().await?;
    let results = judge::credentials(&id, now, profile::of(spec).credential_renewal());
    Ok((id, results))
}

/// Phase 3: the permissions the caller lacks, each named.
pub async fn permissions(cloud: &dyn Cloud, spec: &Spec) -> Result<Vec<CheckResult>, CloudError> {
    permissions_for(cloud, spec, ForWorkflow::Install).await
}

/// The permissions `workflow` needs that the caller lacks, each named (`destroy.plan` checks
/// the destroy's before recording anything).
pub async fn permissions_for(
    cloud: &dyn Cloud,
    spec: &Spec,
    workflow: ForWorkflow,
) -> Result<Vec<CheckResult>, CloudError> {
    let roles = permissions::roles_for(spec, workflow);
    let required = permissions::required(&roles, &Vars::for_spec(spec));
    let facts = cloud.missing_permissions(&required).await?;
    let kind = profile::of(spec).policy().kind;
    Ok(judge::permissions(
        &facts,
        &match workflow {
            ForWorkflow::Install => {
                format!("{kind} of the roles-and-resources document (`realmctl plan` prints it)")
            }
            ForWorkflow::Destroy => {
                format!("destroy's {kind} (`realmctl destroy --policy` prints it)")
            }
        },
    ))
}
