//! The read-only access checks of phases 1–3 (account, credentials, permissions), shared by the
//! install engine and `preflight --only access`: each gathers facts through a [`Cloud`] and
//! hands them to the pure [`super::judge`]. Also what the spec asks of the cloud: the cluster and
//! node pool definitions, built once from the spec and the sizing data.

use std::time::Duration;

use time::OffsetDateTime;

use super::facts::{AccountQuery, ClusterDef, Identity, NodeImageDef, NodePoolDef};
use super::judge::{self, AccountExpectations};
use super::permissions::{self, Vars};
use super::sizing::{self, PoolSize};
use super::{Cloud, CloudError};
use crate::checks::CheckResult;
use crate::spec::{CloudAccount, NodeImage, Provider, Spec};

/// How long temporary credentials must last at least: long enough to create a cluster and wait
/// for it (EKS takes 10–20 minutes for a cluster and a few more for its node group).
pub const CREDENTIALS_NEEDED: Duration = Duration::from_secs(60 * 60);

/// The name of the realm's worker node pool.
pub fn pool_name(spec: &Spec) -> String {
    format!("{}-workers", spec.name)
}

/// What the account step asks and expects: the query, each role's purpose with the service it
/// must trust, and the name of the vCPU quota.
struct AccountAsk {
    query: AccountQuery,
    trust: Vec<(&'static str, &'static str)>,
    quota_name: &'static str,
}

/// The account query and expectations of `spec` (EKS; the other clouds arrive with their own
/// providers). `None` for a cloud without a provider in this build.
fn account_query(spec: &Spec) -> Option<AccountAsk> {
    match &spec.cloud.account {
        #[cfg(feature = "eks")]
        CloudAccount::Eks {
            subnet_ids,
            cluster_role_arn,
            node_role_arn,
            ..
        } => Some(AccountAsk {
            query: AccountQuery {
                subnets: subnet_ids.clone(),
                roles: vec![
                    ("cloud.eks.clusterRoleArn".into(), cluster_role_arn.clone()),
                    ("cloud.eks.nodeRoleArn".into(), node_role_arn.clone()),
                ],
            },
            trust: vec![
                ("cloud.eks.clusterRoleArn", "eks.amazonaws.com"),
                ("cloud.eks.nodeRoleArn", "ec2.amazonaws.com"),
            ],
            quota_name: super::eks::STANDARD_VCPU_QUOTA_NAME,
        }),
        _ => None,
    }
}

fn expected_account(spec: &Spec) -> &str {
    match &spec.cloud.account {
        CloudAccount::Eks { account_id, .. } => account_id,
        CloudAccount::Aks {
            subscription_id, ..
        } => subscription_id,
        CloudAccount::Gke { project } => project,
    }
}

/// The node pool of the spec's realm.
pub fn pool_size(spec: &Spec) -> PoolSize {
    sizing::for_realm(spec.cloud.provider, &spec.subscription)
}

/// Phase 1: the account, its subnets, roles, versions and vCPU quota.
pub async fn account(cloud: &dyn Cloud, spec: &Spec) -> Result<Vec<CheckResult>, CloudError> {
    let Some(ask) = account_query(spec) else {
        return Err(no_provider(spec.cloud.provider));
    };
    let facts = cloud.account(&ask.query).await?;
    let pool = pool_size(spec);
    Ok(judge::account(
        &facts,
        &AccountExpectations {
            account: expected_account(spec),
            subnets: &ask.query.subnets,
            kubernetes_version: &spec.cloud.cluster.kubernetes_version,
            pool: &pool,
            quota_name: ask.quota_name,
            role_trust: &ask.trust,
        },
    ))
}

/// Phase 2: who the install runs as, from where, and until when.
pub async fn credentials(
    cloud: &dyn Cloud,
    now: OffsetDateTime,
) -> Result<(Identity, Vec<CheckResult>), CloudError> {
    let id = cloud.identity().await?;
    let results = judge::credentials(&id, now, CREDENTIALS_NEEDED);
    Ok((id, results))
}

/// Phase 3: the permissions the identity lacks, each named.
pub async fn permissions(
    cloud: &dyn Cloud,
    spec: &Spec,
    identity: &Identity,
) -> Result<Vec<CheckResult>, CloudError> {
    let Some(vars) = Vars::for_spec(spec) else {
        return Err(no_provider(spec.cloud.provider));
    };
    let roles = crate::requirements::embedded()
        .roles
        .for_provider(spec.cloud.provider);
    let required = permissions::required(roles, &vars);
    let facts = cloud
        .missing_permissions(&identity.policy_subject, &required)
        .await?;
    Ok(judge::permissions(
        &facts,
        "the installer policy in the roles-and-resources document, or `realmctl plan`",
    ))
}

fn no_provider(p: Provider) -> CloudError {
    CloudError::new(
        super::CloudErrorKind::Invalid,
        format!("{p}:access"),
        format!("this realmctl has no {p} provider"),
    )
}

/// The cluster the spec wants.
pub fn cluster_def(spec: &Spec) -> ClusterDef {
    let (subnets, role) = match &spec.cloud.account {
        CloudAccount::Eks {
            subnet_ids,
            cluster_role_arn,
            ..
        } => (subnet_ids.clone(), cluster_role_arn.clone()),
        _ => (Vec::new(), String::new()),
    };
    ClusterDef {
        name: spec.cloud.cluster.name.clone(),
        kubernetes_version: spec.cloud.cluster.kubernetes_version.clone(),
        subnets,
        role,
        tags: super::realm_tags(spec.cloud.provider, &spec.name),
    }
}

/// The node pool the spec wants, sized from its RTUs.
pub fn node_pool_def(spec: &Spec) -> NodePoolDef {
    let size = pool_size(spec);
    let (subnets, role) = match &spec.cloud.account {
        CloudAccount::Eks {
            subnet_ids,
            node_role_arn,
            ..
        } => (subnet_ids.clone(), node_role_arn.clone()),
        _ => (Vec::new(), String::new()),
    };
    NodePoolDef {
        name: pool_name(spec),
        role,
        subnets,
        shape: size.shape.name.clone(),
        min: size.min,
        desired: size.desired,
        max: size.max,
        image: match &spec.cloud.cluster.node_image {
            NodeImage::Default => NodeImageDef::Default,
            NodeImage::Custom { image, .. } => NodeImageDef::Custom(image.clone()),
        },
        tags: super::realm_tags(spec.cloud.provider, &spec.name),
    }
}
