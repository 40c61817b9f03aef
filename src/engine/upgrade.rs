//! Gathering what an upgrade's pre-checks need (I/O only): the cluster and its pools as the
//! cloud describes them, the versions it offers, and — from the cluster's own API server — the
//! removed APIs still in use and the PodDisruptionBudgets that would block draining;
//! [`crate::engine::model::upgrade::judge`] decides. The same survey is what `upgrade --plan`
//! prints and what the `upgrade.plan` step journals for approval.

use crate::cloud::definition::{ClusterDefinition, compare_cluster, compare_pool};
use crate::cloud::facts::AccountQuery;
use crate::cloud::{Cloud, CloudError, CloudErrorKind};
use crate::engine::model::upgrade::{
    self, PoolNow, UpgradeFacts, blocking_budgets, removed_from_metrics, served_removals,
};
use crate::platform::client::{KubeApi, KubeErrorKind};
use crate::platform::session::{Connector, Session, SessionError};
use crate::text::one_line;

/// The facts of an upgrade of the cluster of `def` to its version (`None`: there is no such
/// cluster).
pub async fn survey(
    cloud: &dyn Cloud,
    def: &ClusterDefinition,
    connector: Connector,
) -> Result<Option<UpgradeFacts>, CloudError> {
    let name = def.name();
    let Some(cluster) = cloud.cluster(name).await? else {
        return Ok(None);
    };
    let mut differences =
        upgrade::beyond_version(compare_cluster(&def.cluster, &cluster.described));
    let mut pools = Vec::new();
    for p in &def.pools {
        let now = cloud.node_pool(name, &p.nodes.name).await?;
        if let Some(n) = &now {
            differences.extend(compare_pool(&p.nodes, &n.described));
        }
        pools.push((
            p.nodes.name.clone(),
            now.map(|n| PoolNow {
                name: p.nodes.name.clone(),
                version: n.version,
            }),
        ));
    }
    let offered = cloud.account(&AccountQuery::default()).await?.versions;
    let target = upgrade::minor(&def.cluster.kubernetes_version).unwrap_or((0, 0));
    let cluster_version = cluster.described.kubernetes_version.clone();
    let (removed, budgets) = match Session::of(cloud, cluster, connector).await {
        Ok(mut s) => match s.api().await {
            Ok(api) => in_cluster(api.as_ref(), target).await,
            Err(e) => unreadable(e),
        },
        Err(e) => unreadable(e),
    };
    Ok(Some(UpgradeFacts {
        cluster_version,
        differences,
        pools,
        offered,
        removed,
        budgets,
    }))
}

type InCluster = (
    Result<Vec<upgrade::RemovedApi>, String>,
    Result<Vec<upgrade::BlockingBudget>, String>,
);

fn unreadable(e: SessionError) -> InCluster {
    let why = format!(
        "the cluster's API server could not be reached: {}",
        one_line(&e.to_string())
    );
    (Err(why.clone()), Err(why))
}

/// The removed APIs in use (the metric, else the served versions against the deprecation
/// guide's table) and the blocking budgets, from the cluster's API server.
async fn in_cluster(api: &dyn KubeApi, target: (u32, u32)) -> InCluster {
    let removed = match api.metrics().await {
        Ok(text) => Ok(removed_from_metrics(&text, target)),
        Err(e) if matches!(e.kind, KubeErrorKind::Forbidden | KubeErrorKind::NotFound) => {
            match api.served_versions().await {
                Ok(served) => Ok(served_removals(&served, target)
                    .into_iter()
                    .flat_map(|r| {
                        r.resources.into_iter().map(move |res| upgrade::RemovedApi {
                            group_version: format!("{}/{}", r.group, r.version),
                            resource: res,
                            removed_in: r.removed_in.clone(),
                            evidence: "still served by the cluster (its /metrics could not be read to tell whether anything requests it)".into(),
                        })
                    })
                    .collect()),
                Err(e) => Err(one_line(&e.to_string())),
            }
        }
        Err(e) => Err(one_line(&e.to_string())),
    };
    let budgets = async {
        let b = api
            .list("policy/v1", "PodDisruptionBudget", None, "")
            .await?;
        if b.is_empty() {
            return Ok(Vec::new());
        }
        let pods = api.list("v1", "Pod", None, "").await?;
        Ok(blocking_budgets(&b, &pods))
    }
    .await
    .map_err(|e: crate::platform::client::KubeError| one_line(&e.to_string()));
    (removed, budgets)
}

/// The error `upgrade` gives when the realm has no cluster to upgrade.
pub fn no_cluster(name: &str) -> CloudError {
    CloudError::new(
        CloudErrorKind::NotFound,
        format!("cluster {name}"),
        "the realm's cluster does not exist: install it before upgrading it",
    )
}
