//! `platform.apply` (phase 6, after `cluster.wait`): applies the platform part of the approved
//! definition into the cluster through the Kubernetes API, with a token from the realm's own
//! cloud credential chain (no kubectl, no plugin).
//!
//! The decisions are pure ([`crate::platform::plan`], [`crate::platform::ready`]); this file
//! carries them out. Order: the foundation stage (CRDs, Namespaces, cluster-scoped RBAC),
//! waiting until each is ready (CRDs Established); then the workloads, waiting until every
//! object is ready or the step's deadline passes (naming what is not ready and why); then the
//! prune of objects this realm applied earlier that left the bundle (only those still carrying
//! the realm's label and realmctl's field manager; anything else is left and named). Each
//! stage's objects are journaled as an intent before the first apply, so a run killed
//! mid-stage is followed by one that knows what may exist; server-side apply is idempotent by
//! name, so a re-run never duplicates. The inventory (digest, uid, readiness of every object)
//! is the step's output. The TLS Secret's data is read at apply time and goes nowhere but the
//! request.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cluster_api::{ClusterConn, failure};
use super::{ActionDef, Input, Needs, SpecPart, run_fn};
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::{FailureKind, Intent, StepOutput};
use crate::platform::client::KubeApi;
use crate::platform::definition::{Desired, ObjectRef, Stage, desired};
use crate::platform::plan::{self, Inventory, InventoryEntry};
use crate::platform::quota;
use crate::platform::ready::{Readiness, readiness};
use crate::platform::realm::{SecretData, filled_at_apply};
use crate::platform::{FIELD_MANAGER, REALM_LABEL};
use crate::text::one_line;

/// `platform.apply`.
pub const APPLY: ActionDef = ActionDef {
    name: "platform.apply",
    summary: "applies the approved platform bundle and the realm's objects into the cluster (server-side apply), waits until they are ready, prunes what left the bundle",
    needs: Needs::Cloud,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(20 * 60),
    retries: 2,
    params: &[],
    inputs: &[
        Input::Part(SpecPart::Name),
        Input::Part(SpecPart::Cloud),
        Input::Part(SpecPart::Domains),
        Input::CertificateFiles,
        Input::Definition,
    ],
    run: run_fn!(apply),
};

/// What the step has seen of the objects: the latest answer not yet judged, and uids.
#[derive(Default)]
pub(super) struct Seen {
    live: BTreeMap<usize, Value>,
    uids: BTreeMap<usize, String>,
}

fn uid_of(v: &Value) -> Option<String> {
    v["metadata"]["uid"].as_str().map(str::to_owned)
}

/// Applies `indexes` of `want` (one stage), journaling them as one intent first.
async fn apply_stage(
    ctx: &Ctx<'_>,
    conn: &mut ClusterConn<'_>,
    want: &[Desired],
    indexes: &[usize],
    secret: &SecretData,
    label: &str,
    seen: &mut Seen,
) -> Result<(), Failure> {
    if indexes.is_empty() {
        return Ok(());
    }
    ctx.record
        .intent(&Intent::Apply {
            objects: indexes
                .iter()
                .map(|i| want[*i].planned.object.clone())
                .collect(),
        })
        .await?;
    ctx.record.kill_point(&format!("intent-{label}"));
    for (n, i) in indexes.iter().enumerate() {
        let d = &want[*i];
        let api = conn.api().await?;
        let Some(sent) = secret.fill(&d.manifest) else {
            return Err(Failure::permanent(format!(
                "{}: its data was not gathered, so it is not sent (sending it empty would delete the data in the cluster)",
                d.planned.object
            )));
        };
        let got = api
            .apply(&sent, ctx.opts.force_conflicts)
            .await
            .map_err(failure)?;
        if let Some(u) = uid_of(&got) {
            seen.uids.insert(*i, u);
        }
        seen.live.insert(*i, got);
        if n == 0 {
            ctx.record.kill_point(&format!("first-{label}"));
        }
    }
    ctx.record.kill_point(&format!("applied-{label}"));
    Ok(())
}

/// Waits until every object of `indexes` is ready: reads each object not yet ready (the
/// answer of its apply counts as the first read), with the run's backoff, under the deadline.
async fn wait_ready(
    ctx: &Ctx<'_>,
    conn: &mut ClusterConn<'_>,
    want: &[Desired],
    indexes: &[usize],
    seen: &mut Seen,
    (stage, secret): (&str, &SecretData),
) -> Result<BTreeMap<usize, Readiness>, Failure> {
    let started = Instant::now();
    let mut state: BTreeMap<usize, Readiness> = BTreeMap::new();
    let mut n = 0;
    let selector = format!("{REALM_LABEL}={}", ctx.spec.name);
    loop {
        n += 1;
        let api = conn.api().await?;
        let pending: Vec<usize> = indexes
            .iter()
            .copied()
            .filter(|i| !state.get(i).is_some_and(Readiness::is_current))
            .collect();
        let answers = read(api.as_ref(), want, &pending, seen, &selector).await?;
        for (i, v) in answers {
            let r = match v {
                Some(v) => {
                    if let Some(u) = uid_of(&v) {
                        seen.uids.insert(i, u);
                    }
                    readiness(&v)
                }
                // Gone since it was applied (deleted by someone, or the inventory is of an
                // earlier cluster): applied again, since it is part of the approved platform.
                None => {
                    let Some(sent) = secret.fill(&want[i].manifest) else {
                        return Err(Failure::permanent(format!(
                            "{} is missing from the cluster and its data was not gathered; run install again",
                            want[i].planned.object
                        )));
                    };
                    let got = api
                        .apply(&sent, ctx.opts.force_conflicts)
                        .await
                        .map_err(failure)?;
                    if let Some(u) = uid_of(&got) {
                        seen.uids.insert(i, u);
                    }
                    seen.live.insert(i, got);
                    Readiness::InProgress("was missing from the cluster; applied again".into())
                }
            };
            if let Readiness::Failed(why) = &r {
                return Err(Failure::permanent(format!(
                    "{} will not become ready: {}",
                    want[i].planned.object,
                    one_line(why)
                )));
            }
            state.insert(i, r);
        }
        let waiting: Vec<String> = state
            .iter()
            .filter_map(|(i, r)| match r {
                Readiness::InProgress(why) => {
                    Some(format!("{} ({})", want[*i].planned.object, one_line(why)))
                }
                _ => None,
            })
            .collect();
        if waiting.is_empty() {
            return Ok(state);
        }
        ctx.record.progress(&format!(
            "{stage}: {} of {} ready ({} s); waiting for {}",
            indexes.len() - waiting.len(),
            indexes.len(),
            started.elapsed().as_secs(),
            waiting.first().map_or("", String::as_str)
        ));
        let Some(delay) = ctx.opts.poll.next_asked(n, false, None, ctx.remaining()) else {
            return Err(Failure {
                kind: FailureKind::Timeout,
                message: format!(
                    "not ready within the step's timeout: {}",
                    waiting.join("; ")
                ),
                output: None,
            });
        };
        tokio::time::sleep(delay).await;
    }
}

/// The current state of each object of `pending`: the answer of its apply when there is one,
/// else one LIST (by the realm label) per kind and namespace holding two or more of them, else
/// a GET (also for an object missing from its list).
pub(super) async fn read(
    api: &dyn KubeApi,
    want: &[Desired],
    pending: &[usize],
    seen: &mut Seen,
    selector: &str,
) -> Result<Vec<(usize, Option<Value>)>, Failure> {
    let mut out = Vec::new();
    let mut groups: BTreeMap<(String, String, Option<String>), Vec<usize>> = BTreeMap::new();
    for &i in pending {
        match seen.live.remove(&i) {
            Some(v) => out.push((i, Some(v))),
            None => {
                let o = &want[i].planned.object;
                groups
                    .entry((o.api_version.clone(), o.kind.clone(), o.namespace.clone()))
                    .or_default()
                    .push(i);
            }
        }
    }
    for ((api_version, kind, namespace), members) in groups {
        if let [i] = members[..] {
            out.push((i, api.get(&want[i].planned.object).await.map_err(failure)?));
            continue;
        }
        let mut items: BTreeMap<String, Value> = api
            .list(&api_version, &kind, namespace.as_deref(), selector)
            .await
            .map_err(failure)?
            .into_iter()
            .filter_map(|v| Some((v["metadata"]["name"].as_str()?.to_owned(), v)))
            .collect();
        for i in members {
            // One that lost the realm label is not in the list: read it by name.
            let v = match items.remove(&want[i].planned.object.name) {
                Some(v) => Some(v),
                None => api.get(&want[i].planned.object).await.map_err(failure)?,
            };
            out.push((i, v));
        }
    }
    Ok(out)
}

/// Deletes each object of `prune` that still carries this realm's label and realmctl's field
/// manager; names those left alone.
async fn prune(
    ctx: &Ctx<'_>,
    conn: &mut ClusterConn<'_>,
    objects: &[ObjectRef],
) -> Result<(Vec<ObjectRef>, Vec<String>), Failure> {
    let mut pruned = Vec::new();
    let mut left = Vec::new();
    if objects.is_empty() {
        return Ok((pruned, left));
    }
    ctx.record
        .intent(&Intent::Prune {
            objects: objects.to_vec(),
        })
        .await?;
    ctx.record.kill_point("intent-prune");
    for r in objects {
        let api = conn.api().await?;
        let Some(v) = api.get(r).await.map_err(failure)? else {
            continue;
        };
        let ours = v["metadata"]["labels"][REALM_LABEL] == ctx.spec.name.as_str()
            && v["metadata"]["managedFields"]
                .as_array()
                .is_some_and(|m| m.iter().any(|f| f["manager"] == FIELD_MANAGER));
        if !ours {
            left.push(format!(
                "{r}: left alone (it no longer carries {REALM_LABEL}={} and realmctl's field manager)",
                ctx.spec.name
            ));
            continue;
        }
        api.delete(r).await.map_err(failure)?;
        pruned.push(r.clone());
    }
    Ok((pruned, left))
}

/// The data of the Secrets filled at apply time that this run applies: the customer's
/// certificate files, and the enforcement core's tokens (those already in the cluster, made
/// only when absent).
async fn secret_data(
    ctx: &Ctx<'_>,
    conn: &mut ClusterConn<'_>,
    want: &[Desired],
    apply: &[usize],
) -> Result<SecretData, Failure> {
    let filled = |f: fn(&Value) -> bool| apply.iter().any(|i| f(&want[*i].manifest));
    let mut data = if filled(|v| filled_at_apply(v) && !quota::filled_at_apply(v)) {
        let spec = ctx.spec.clone();
        ctx.blocking
            .run(move || SecretData::read(&spec))
            .await?
            .map_err(|e| Failure::permanent(format!("cannot read the certificate files: {e}")))?
    } else {
        SecretData::default()
    };
    if filled(quota::filled_at_apply) {
        let api = conn.api().await?;
        let admin = api
            .get(&quota::secret_ref(quota::ADMIN_SECRET))
            .await
            .map_err(failure)?;
        let realm = api
            .get(&quota::secret_ref(quota::REALM_SECRET))
            .await
            .map_err(failure)?;
        data = data.with_quota(quota::QuotaTokens::keep_or_mint(
            &ctx.spec.name,
            admin.as_ref(),
            realm.as_ref(),
        ));
    }
    Ok(data)
}

async fn apply(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let (def, approved_by) = super::cloud::approved_definition(ctx)?;
    let Some(platform) = def.platform.as_ref() else {
        return Err(Failure::permanent(
            "the approved definition has no platform part",
        ));
    };
    let want = desired(ctx.spec);
    let decided = plan::decide(&want, ctx.history.inventory, &ctx.history.announced);

    let mut conn = ClusterConn::open(ctx, def.name()).await?;
    let secret = secret_data(ctx, &mut conn, &want, &decided.apply).await?;

    let mut seen = Seen::default();
    let mut ready = BTreeMap::new();
    for (stage, label) in [
        (Stage::Foundation, "foundation"),
        (Stage::Workloads, "workloads"),
    ] {
        let in_stage = |i: &&usize| want[**i].planned.stage == stage;
        let to_apply: Vec<usize> = decided.apply.iter().filter(in_stage).copied().collect();
        apply_stage(ctx, &mut conn, &want, &to_apply, &secret, label, &mut seen).await?;
        let all: Vec<usize> = (0..want.len())
            .filter(|i| want[*i].planned.stage == stage)
            .collect();
        ready.extend(wait_ready(ctx, &mut conn, &want, &all, &mut seen, (label, &secret)).await?);
    }
    let (pruned, mut left) = prune(ctx, &mut conn, &decided.prune).await?;
    // Deleting a namespace or a CRD deletes everything in it or of its kind, which realmctl
    // did not necessarily create: those are left for a person.
    left.extend(decided.left.iter().map(|r| {
        format!("{r}: no longer in the bundle, left alone (deleting it would delete everything in it; delete it once it is empty)")
    }));

    let inventory = Inventory {
        bundle: platform.bundle.clone(),
        objects: want
            .iter()
            .enumerate()
            .map(|(i, d)| InventoryEntry {
                object: d.planned.object.clone(),
                stage: d.planned.stage,
                digest: d.planned.digest.clone(),
                uid: seen.uids.get(&i).cloned(),
                readiness: ready.get(&i).cloned().unwrap_or(Readiness::Current),
            })
            .collect(),
        pruned: pruned.clone(),
    };
    let mut summary = format!(
        "{} objects of {} ready in cluster {} ({} applied, {} unchanged, {} pruned); definition {} approved by {approved_by}",
        want.len(),
        platform.bundle,
        def.name(),
        decided.apply.len(),
        decided.unchanged.len(),
        pruned.len(),
        def.digest(),
    );
    if !left.is_empty() {
        summary.push_str(&format!("; {}", left.join("; ")));
    }
    Ok(Outcome::Done(StepOutput {
        summary,
        inventory: Some(Box::new(inventory)),
        ..StepOutput::default()
    }))
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use realmctl_standins::KubeStandIn;
    use realmctl_standins::kube::KubeWorld;

    use super::super::cloud::tests::{
        Run, approve, approved_install, install, intents, phase6, setup_for,
    };
    use crate::cloud::testing::FakeCloud;
    use crate::engine::model::event::StopOutcome;
    use crate::engine::model::output::Intent;
    use crate::platform::REALM_LABEL;
    use crate::spec::Provider;

    const STEPS: &str = "[{id: cluster, action: cluster.apply}, {id: ready, action: cluster.wait}, {id: platform, action: platform.apply, timeout: 20s}]";

    pub(crate) async fn setup() -> (Run, KubeStandIn) {
        let world = KubeWorld::with_tokens(BTreeMap::from([(
            "fake-kube-token".to_owned(),
            "installer".to_owned(),
        )]));
        let api = KubeStandIn::start(world).await.unwrap();
        {
            let mut w = api.world();
            w.cluster.delays.rollout = Duration::from_millis(50);
            w.cluster.delays.crd = Duration::from_millis(20);
        }
        let fake = Arc::new(FakeCloud::default());
        fake.set_kube_api(&api.url(), api.ca_pem());
        (setup_for(Provider::Eks, fake), api)
    }

    /// A realm installed to the end (the platform applied), ready for someone to change it.
    async fn installed() -> (Run, KubeStandIn, crate::engine::model::playbook::Playbook) {
        let (r, api) = setup().await;
        let pb = phase6(STEPS);
        assert_eq!(
            approved_install(&r, &pb).await.outcome,
            StopOutcome::Completed
        );
        (r, api, pb)
    }

    /// Someone else (`manager`) merge-patches an object in the cluster.
    fn edit(
        api: &KubeStandIn,
        (group, plural, name): (&str, &str, &str),
        patch: serde_json::Value,
        manager: &str,
    ) {
        let mut w = api.world();
        let t = w.cluster.find(group, plural).unwrap();
        w.cluster
            .merge_patch(
                &t,
                "digibee-system",
                name,
                &patch,
                realmctl_standins::kube::By {
                    manager,
                    now: std::time::Instant::now(),
                },
                false,
            )
            .unwrap();
    }

    /// The objects of the embedded bundle's `20-platform.yaml`, to change.
    fn platform_file(r: &mut Run) -> &mut Vec<serde_json::Value> {
        &mut r
            .spec
            .platform
            .files
            .iter_mut()
            .find(|f| f.path == "20-platform.yaml")
            .unwrap()
            .objects
    }

    fn patches(api: &KubeStandIn) -> usize {
        api.world()
            .calls
            .iter()
            .filter(|c| c.method == "PATCH")
            .count()
    }

    fn live(api: &KubeStandIn, name: &str) -> bool {
        api.world().cluster.keys().iter().any(|k| k.name == name)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_apply_then_only_changes_are_applied_and_removed_objects_pruned() {
        let (mut r, api) = setup().await;
        let pb = phase6(STEPS);
        let res = approved_install(&r, &pb).await;
        assert_eq!(res.outcome, StopOutcome::Completed, "{}", res.message);
        let want = crate::platform::definition::desired(&r.spec);
        assert_eq!(patches(&api), want.len(), "one apply per object");
        for d in &want {
            assert!(live(&api, &d.planned.object.name), "{}", d.planned.object);
        }
        assert!(matches!(
            &intents(&r.state)[..],
            [_, _, Intent::Apply { .. }, Intent::Apply { .. }]
        ));
        let st = crate::engine::run::load_state(
            &crate::engine::io::journal::Journal::open(&r.state).unwrap(),
        )
        .unwrap();
        let inv = st.steps["platform"]
            .output
            .as_ref()
            .unwrap()
            .inventory
            .clone()
            .unwrap();
        assert_eq!(inv.objects.len(), want.len());
        assert!(
            inv.objects
                .iter()
                .all(|e| e.readiness.is_current() && e.uid.is_some())
        );

        // The bundle changes: one object edited, one removed. Approve again, apply again.
        let objects = platform_file(&mut r);
        objects[0]["data"]["version"] = "2026.12.1".into();
        objects.retain(|o| o["kind"] != "Service");
        let before = patches(&api);
        let res = install(&r, &pb).await;
        assert_eq!(
            res.outcome,
            StopOutcome::Waiting,
            "a changed bundle voids the approval"
        );
        approve(&r);
        let res = install(&r, &pb).await;
        assert_eq!(res.outcome, StopOutcome::Completed, "{}", res.message);
        // The edited ConfigMap, and the Secrets whose data is gathered at apply time (the TLS
        // Secret and the enforcement core's three).
        let filled = want
            .iter()
            .filter(|d| super::filled_at_apply(&d.manifest))
            .count();
        assert_eq!(filled, 4);
        assert_eq!(patches(&api) - before, 1 + filled);
        let services: Vec<String> = api
            .world()
            .cluster
            .keys()
            .into_iter()
            .filter(|k| k.plural == "services")
            .map(|k| k.name)
            .collect();
        assert_eq!(
            services,
            [super::quota::SERVICE],
            "the bundle's Service pruned"
        );
        assert!(
            matches!(intents(&r.state).last(), Some(Intent::Prune { objects }) if objects.len() == 1)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unchanged_object_missing_from_the_cluster_is_applied_again() {
        let (mut r, api, pb) = installed().await;
        // Someone deletes the operator's Service; the inventory still names it unchanged.
        {
            let mut w = api.world();
            let t = w.cluster.find("", "services").unwrap();
            w.cluster
                .delete(&t, "digibee-system", "digibee-platform-operator")
                .unwrap();
        }
        assert!(
            !api.world()
                .cluster
                .keys()
                .iter()
                .any(|k| k.plural == "services" && k.name == "digibee-platform-operator")
        );
        // A bundle change makes phase 6 run again.
        platform_file(&mut r)[0]["data"]["version"] = "2026.12.1".into();
        assert_eq!(install(&r, &pb).await.outcome, StopOutcome::Waiting);
        approve(&r);
        let res = install(&r, &pb).await;
        assert_eq!(res.outcome, StopOutcome::Completed, "{}", res.message);
        assert!(
            api.world()
                .cluster
                .keys()
                .iter()
                .any(|k| k.plural == "services" && k.name == "digibee-platform-operator"),
            "the deleted Service is back"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_field_another_manager_owns_is_a_named_conflict_unless_forced() {
        let (mut r, api, pb) = installed().await;
        // Someone scales the operator by hand with their own manager.
        edit(
            &api,
            ("apps", "deployments", "digibee-platform-operator"),
            serde_json::json!({"spec": {"replicas": 5}}),
            "kubectl-edit",
        );
        // The bundle now sets 3 replicas.
        platform_file(&mut r)[1]["spec"]["replicas"] = 3.into();
        assert_eq!(install(&r, &pb).await.outcome, StopOutcome::Waiting);
        approve(&r);
        let res = install(&r, &pb).await;
        assert_eq!(res.outcome, StopOutcome::Failed, "{}", res.message);
        assert!(
            res.message.contains("kubectl-edit") && res.message.contains(".spec.replicas"),
            "{}",
            res.message
        );
        let next = res.next.unwrap();
        assert!(next.action.contains("--force-conflicts"), "{next}");
        assert_eq!(next.owner, crate::checks::Owner::Digibee);
        r.opts.force_conflicts = true;
        let res = install(&r, &pb).await;
        assert_eq!(res.outcome, StopOutcome::Completed, "{}", res.message);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deployment_that_never_becomes_available_is_named_at_the_deadline() {
        let (r, api) = setup().await;
        api.world()
            .cluster
            .never_ready
            .insert("digibee-system/digibee-platform-operator".into());
        let steps = "[{id: cluster, action: cluster.apply}, {id: ready, action: cluster.wait}, {id: platform, action: platform.apply, timeout: 2s, retries: 0}]";
        let started = std::time::Instant::now();
        let res = approved_install(&r, &phase6(steps)).await;
        assert_eq!(res.outcome, StopOutcome::Failed, "{}", res.message);
        assert!(
            res.message.contains("digibee-platform-operator")
                && res.message.contains("timed out progressing"),
            "{}",
            res.message
        );
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_object_that_lost_the_realm_label_is_not_pruned() {
        let (mut r, api, pb) = installed().await;
        // Someone takes the ConfigMap over: the realm label removed by their own manager.
        edit(
            &api,
            ("", "configmaps", "digibee-platform"),
            serde_json::json!({"metadata": {"labels": {REALM_LABEL: null}}}),
            "team-b",
        );
        platform_file(&mut r).retain(|o| o["kind"] != "ConfigMap");
        assert_eq!(install(&r, &pb).await.outcome, StopOutcome::Waiting);
        approve(&r);
        let res = install(&r, &pb).await;
        assert_eq!(res.outcome, StopOutcome::Completed, "{}", res.message);
        assert!(
            live(&api, "digibee-platform"),
            "a foreign object is left alone"
        );
        let st = crate::engine::run::load_state(
            &crate::engine::io::journal::Journal::open(&r.state).unwrap(),
        )
        .unwrap();
        let out = st.steps["platform"].output.as_ref().unwrap();
        assert!(out.summary.contains("left alone"), "{}", out.summary);
    }
}
