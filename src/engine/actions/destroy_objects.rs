//! `destroy.in_cluster` (issue #20), the first deleting step of a destroy: in each cluster the
//! approved plan deletes, the objects that own cloud resources are deleted through the
//! Kubernetes API before the cluster goes — every `LoadBalancer` Service and every Ingress (in
//! all namespaces), and every PersistentVolumeClaim only when the plan deletes volumes — one
//! intent journaled first; then the step waits, up to `releaseWaitSeconds` (default 300) and the
//! step's deadline, until no load balancer carrying the cluster's ownership tags is listed any
//! more, so the cloud's controllers release what they made while they still run. Whatever is
//! still listed then is the sweep's, after the cluster (`destroy.sweep`), and the output says
//! how many.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cluster_api::ClusterConn;
use super::destroy::{REPORT_MARGIN, approved_plan};
use super::{ActionDef, Input, Needs, ParamDef, ParamKind, SpecPart, Workflow, run_fn};
use crate::cloud::facts::Status;
use crate::cloud::teardown::ResourceKind;
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::{Intent, StepOutput};
use crate::engine::teardown as survey;
use crate::platform::ObjectRef;

/// `destroy.in_cluster`.
pub const IN_CLUSTER: ActionDef = ActionDef {
    name: "destroy.in_cluster",
    summary: "deletes the LoadBalancer Services and Ingresses (and, with --delete-volumes, the PersistentVolumeClaims) of each cluster the approved plan deletes, and waits until the cloud has released their load balancers",
    needs: Needs::Cloud,
    workflow: Workflow::Destroy,
    timeout: Duration::from_secs(20 * 60),
    retries: 2,
    params: &[ParamDef {
        name: "releaseWaitSeconds",
        kind: ParamKind::Count,
        required: false,
    }],
    inputs: &[
        Input::Part(SpecPart::Name),
        Input::Part(SpecPart::Cloud),
        Input::Teardown,
    ],
    run: run_fn!(in_cluster),
};

/// How long the step waits for the cloud to release load balancers, by default.
const RELEASE_WAIT: Duration = Duration::from_secs(300);

/// The objects of `items` that own cloud resources (pure): Services of type `LoadBalancer`,
/// every Ingress, and PersistentVolumeClaims when `volumes`.
pub fn owning_objects(items: &[Value], volumes: bool) -> Vec<ObjectRef> {
    items
        .iter()
        .filter(|o| match o["kind"].as_str() {
            Some("Service") => o["spec"]["type"].as_str() == Some("LoadBalancer"),
            Some("Ingress") => true,
            Some("PersistentVolumeClaim") => volumes,
            _ => false,
        })
        .filter_map(|o| {
            Some(ObjectRef {
                api_version: o["apiVersion"].as_str()?.to_owned(),
                kind: o["kind"].as_str()?.to_owned(),
                namespace: o["metadata"]["namespace"].as_str().map(str::to_owned),
                name: o["metadata"]["name"].as_str()?.to_owned(),
            })
        })
        .collect()
}

async fn in_cluster(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let approved = approved_plan(ctx)?;
    let clusters: Vec<String> = approved
        .delete
        .iter()
        .filter(|f| f.kind == ResourceKind::Cluster)
        .map(|f| f.id.clone())
        .collect();
    if clusters.is_empty() {
        return Ok(Outcome::Skipped(
            "the approved destroy plan deletes no cluster".into(),
        ));
    }
    let cloud = ctx.cloud()?;
    let mut deleted = Vec::new();
    for name in &clusters {
        // A cluster already gone or going has nothing left to ask.
        match cloud.cluster(name).await? {
            Some(c) if c.status == Status::Active => {}
            _ => continue,
        }
        let mut conn = ClusterConn::open(ctx, name).await?;
        let api = conn.api().await?;
        let mut items = Vec::new();
        for (version, kind) in [
            ("v1", "Service"),
            ("networking.k8s.io/v1", "Ingress"),
            ("v1", "PersistentVolumeClaim"),
        ] {
            items.extend(
                api.list(version, kind, None, "")
                    .await
                    .map_err(super::cluster_api::failure)?,
            );
        }
        let objects = owning_objects(&items, approved.options.delete_volumes);
        if objects.is_empty() {
            continue;
        }
        ctx.record
            .intent(&Intent::Remove {
                objects: objects.clone(),
            })
            .await?;
        ctx.record.kill_point("intent-remove");
        for o in &objects {
            api.delete(o).await.map_err(super::cluster_api::failure)?;
            deleted.push(o.to_string());
        }
        ctx.record.kill_point("removed");
    }
    // The controllers release what those objects made while the cluster still runs.
    let wait = ctx
        .count_param("releaseWaitSeconds")
        .map_or(RELEASE_WAIT, Duration::from_secs);
    let until = Instant::now() + wait.min(ctx.remaining().saturating_sub(REPORT_MARGIN));
    let mut n = 0;
    let listed = loop {
        n += 1;
        let lbs: Vec<String> = survey::leftovers(cloud, &approved.swept_clusters, &approved.marks)
            .await?
            .into_iter()
            .filter(|f| f.kind == ResourceKind::LoadBalancer)
            .map(|f| f.to_string())
            .collect();
        let left = until.saturating_duration_since(Instant::now());
        let next = ctx.opts.poll.next(n, false, left);
        match next {
            Some(d) if !lbs.is_empty() && !deleted.is_empty() => {
                ctx.record.progress(&format!(
                    "waiting for the cloud to release {} load balancer(s)",
                    lbs.len()
                ));
                tokio::time::sleep(d).await;
            }
            _ => break lbs,
        }
    };
    Ok(Outcome::Done(StepOutput {
        summary: format!(
            "deleted {} object(s) owning cloud resources; {} load balancer(s) still listed{}",
            deleted.len(),
            listed.len(),
            if listed.is_empty() {
                ""
            } else {
                " (the sweep deletes them after the cluster)"
            }
        ),
        facts: Some(json!({ "deleted": deleted, "stillListed": listed })),
        ..StepOutput::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_that_own_cloud_resources_are_deleted_and_claims_only_when_asked() {
        let items = vec![
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "edge", "name": "lb"}, "spec": {"type": "LoadBalancer"}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "edge", "name": "internal"}, "spec": {"type": "ClusterIP"}}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"namespace": "edge", "name": "web"}}),
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"namespace": "db", "name": "data"}}),
        ];
        let names = |v: bool| -> Vec<String> {
            owning_objects(&items, v)
                .iter()
                .map(|o| o.name.clone())
                .collect()
        };
        assert_eq!(names(false), ["lb", "web"]);
        assert_eq!(names(true), ["lb", "web", "data"]);
    }
}
