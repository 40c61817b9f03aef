//! The cloud actions, through the run's cloud provider ([`crate::cloud`]):
//!
//! - `cloud.account` (phase 1): the account, subnets, roles, offered versions and vCPU quota;
//! - `cloud.credentials` (phase 2): who, from which source, until when (never the secret);
//! - `cloud.permissions` (phase 3): every permission the identity lacks, by name;
//! - `cluster.apply` (phase 6): create or adopt the cluster, wait until it is active, create or
//!   adopt its node pool. Each create is journaled as an intent first; after a crash the step
//!   describes before it creates, so nothing is ever created twice; a same-named resource this
//!   realm did not create, or that differs, is a conflict and is never changed;
//! - `cluster.wait` (phase 6): wait until cluster and node pool are active (the backoff of
//!   [`crate::cloud::poll::WAIT`], throttling honoured, under the step's deadline), record the
//!   endpoint and CA, and write `<state>/kubeconfig` (0600) with the token command, no token.

use std::time::Duration;

use serde_json::json;

use super::{ActionDef, Input, Needs, SpecPart, run_fn};
use crate::checks::{Category, CheckResult};
use crate::cloud::facts::{ClusterFacts, Status};
use crate::cloud::judge::Decision;
use crate::cloud::{self, CloudError, CloudErrorKind, access, judge};
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::{FailureKind, Intent, StepOutput};
use crate::fsutil;

const INPUTS: &[Input] = &[Input::Part(SpecPart::Name), Input::Part(SpecPart::Cloud)];

/// `cloud.account`.
pub const ACCOUNT: ActionDef = ActionDef {
    name: "cloud.account",
    summary: "checks the cloud account, subnets, roles, Kubernetes version and vCPU quota",
    needs: Needs::Cloud,
    timeout: Duration::from_secs(5 * 60),
    retries: 2,
    params: &[],
    inputs: &[
        Input::Part(SpecPart::Name),
        Input::Part(SpecPart::Cloud),
        Input::Part(SpecPart::Subscription),
    ],
    run: run_fn!(account),
};

/// `cloud.credentials`.
pub const CREDENTIALS: ActionDef = ActionDef {
    name: "cloud.credentials",
    summary: "records which identity the install runs as and when its credentials expire",
    needs: Needs::Cloud,
    timeout: Duration::from_secs(5 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(credentials),
};

/// `cloud.permissions`.
pub const PERMISSIONS: ActionDef = ActionDef {
    name: "cloud.permissions",
    summary: "checks that the install identity has every permission the install needs",
    needs: Needs::Cloud,
    timeout: Duration::from_secs(5 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(permissions),
};

/// `cluster.apply`.
pub const CLUSTER_APPLY: ActionDef = ActionDef {
    name: "cluster.apply",
    summary: "creates or adopts the managed cluster and its node pool, sized from the RTUs",
    needs: Needs::Cloud,
    timeout: Duration::from_secs(45 * 60),
    retries: 2,
    params: &[],
    inputs: &[
        Input::Part(SpecPart::Name),
        Input::Part(SpecPart::Cloud),
        Input::Part(SpecPart::Subscription),
    ],
    run: run_fn!(cluster_apply),
};

/// `cluster.wait`.
pub const CLUSTER_WAIT: ActionDef = ActionDef {
    name: "cluster.wait",
    summary: "waits until the cluster and its node pool are ready; writes the kubeconfig",
    needs: Needs::Cloud,
    timeout: Duration::from_secs(45 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(cluster_wait),
};

/// Check results of the access category as a step's end (a failure is permanent: the fix is
/// someone's change in the account).
fn judged(results: Vec<CheckResult>, what: &str) -> Result<Outcome, Failure> {
    super::checks::outcome_of(results, what, Category::Access, FailureKind::Permanent)
}

async fn account(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    let results = access::account(cloud, ctx.spec).await?;
    judged(results, "account checks")
}

async fn credentials(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    let (id, results) = access::credentials(cloud, (ctx.opts.clock)()).await?;
    let mut out = judged(results, "credential checks")?;
    if let Outcome::Done(o) = &mut out {
        o.summary = format!("{} as {} ({})", o.summary, id.principal, id.source);
        o.facts = Some(json!({"identity": id}));
    }
    Ok(out)
}

async fn permissions(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    let id = cloud.identity().await?;
    let results = access::permissions(cloud, ctx.spec, &id).await?;
    judged(results, "permission checks")
}

/// Who must resolve a conflict: Digibee's cloud team picks another name or reconciles the spec.
fn conflict(what: &str, why: String) -> Failure {
    let evidence = CheckResult::fail(
        format!("cloud.conflict.{what}"),
        crate::checks::Category::Access,
        what,
        why.clone(),
        "choose another name in the spec, or make the spec match the existing resource",
    )
    .owned_by(crate::checks::Owner::Digibee);
    Failure {
        kind: FailureKind::Permanent,
        message: why,
        output: Some(Box::new(StepOutput {
            summary: format!("{what}: conflict"),
            checks: vec![evidence],
            ..StepOutput::default()
        })),
    }
}

/// Polls `describe` with the run's backoff (by default [`crate::cloud::poll::WAIT`]) until it reports active,
/// under the step's deadline.
async fn until_active<T>(
    ctx: &Ctx<'_>,
    what: &str,
    mut describe: impl AsyncFnMut() -> Result<Option<(Status, T)>, CloudError>,
) -> Result<T, Failure> {
    let started = std::time::Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let (throttled, status) = match describe().await {
            Ok(Some((Status::Active, t))) => return Ok(t),
            Ok(Some((Status::Failed(why), _))) => {
                return Err(Failure::permanent(format!("{what} failed: {why}")));
            }
            Ok(Some((s, _))) => (false, format!("{s:?}").to_uppercase()),
            Ok(None) => {
                return Err(Failure::permanent(format!(
                    "{what} does not exist (deleted while the install waited?)"
                )));
            }
            Err(e) if e.kind == CloudErrorKind::Throttled => (true, "throttled".to_owned()),
            Err(e) if e.kind.retryable() => (false, format!("no answer ({})", e.kind)),
            Err(e) => return Err(e.into()),
        };
        ctx.record.progress(&format!(
            "{what}: {status} ({} s)",
            started.elapsed().as_secs()
        ));
        let Some(delay) = ctx.opts.poll.next(n, throttled, ctx.remaining()) else {
            return Err(Failure {
                kind: FailureKind::Timeout,
                message: format!("{what} was not ready within the step's timeout"),
                output: None,
            });
        };
        tokio::time::sleep(delay).await;
    }
}

/// Creates or adopts one resource: `decision` was judged from a describe; a create is journaled
/// as `intent` first (kill points `intent-LABEL` and `created-LABEL` let the crash tests land on
/// either side of the call). A create answered "already exists" (a run that died before
/// journaling its create) is judged again from a fresh describe. Returns whether it created.
async fn create_or_adopt(
    ctx: &Ctx<'_>,
    what: &str,
    label: &str,
    decision: Decision,
    intent: Intent,
    create: impl AsyncFnOnce() -> Result<(), CloudError>,
    judge_again: impl AsyncFnOnce() -> Result<Decision, CloudError>,
) -> Result<bool, Failure> {
    match decision {
        Decision::Adopt => Ok(false),
        Decision::Conflict(why) => Err(conflict(what, why)),
        Decision::Create => {
            ctx.record.intent(&intent).await?;
            ctx.record.kill_point(&format!("intent-{label}"));
            match create().await {
                Ok(()) => {}
                Err(e) if e.kind == CloudErrorKind::Conflict => {
                    if let Decision::Conflict(why) = judge_again().await? {
                        return Err(conflict(what, why));
                    }
                }
                Err(e) => return Err(e.into()),
            }
            ctx.record.kill_point(&format!("created-{label}"));
            Ok(true)
        }
    }
}

async fn cluster_apply(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    let realm = &ctx.spec.name;
    let key = cloud::realm_tag_key(ctx.spec.cloud.provider);
    let want = access::cluster_def(ctx.spec);
    let existing = cloud.cluster(&want.name).await?;
    let cluster_created = create_or_adopt(
        ctx,
        "cluster",
        "cluster",
        judge::cluster(existing.as_ref(), &want, key, realm),
        Intent::Cluster {
            name: want.name.clone(),
        },
        async || cloud.create_cluster(&want).await,
        async || {
            let now = cloud.cluster(&want.name).await?;
            Ok(judge::cluster(now.as_ref(), &want, key, realm))
        },
    )
    .await?;
    let what = format!("cluster {}", want.name);
    until_active(ctx, &what, async || {
        Ok(cloud
            .cluster(&want.name)
            .await?
            .map(|c| (c.status.clone(), ())))
    })
    .await?;

    let pool = access::node_pool_def(ctx.spec);
    let existing = cloud.node_pool(&want.name, &pool.name).await?;
    let pool_created = create_or_adopt(
        ctx,
        "node pool",
        "pool",
        judge::node_pool(existing.as_ref(), &pool, key, realm),
        Intent::NodePool {
            cluster: want.name.clone(),
            name: pool.name.clone(),
        },
        async || cloud.create_node_pool(&want.name, &pool).await,
        async || {
            let now = cloud.node_pool(&want.name, &pool.name).await?;
            Ok(judge::node_pool(now.as_ref(), &pool, key, realm))
        },
    )
    .await?;
    let verb = |created: bool| if created { "created" } else { "adopted" };
    Ok(Outcome::Done(StepOutput {
        summary: format!(
            "cluster {} {} ({}, Kubernetes {}); node pool {} {}: {} × {} to {} (desired {})",
            want.name,
            verb(cluster_created),
            cloud.describe(),
            want.kubernetes_version,
            pool.name,
            verb(pool_created),
            pool.min,
            pool.shape,
            pool.max,
            pool.desired
        ),
        facts: Some(json!({
            "cluster": {"name": want.name, "created": cluster_created, "tags": want.tags},
            "nodePool": {"name": pool.name, "created": pool_created, "shape": pool.shape,
                         "min": pool.min, "desired": pool.desired, "max": pool.max},
        })),
        ..StepOutput::default()
    }))
}

async fn cluster_wait(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    let name = ctx.spec.cloud.cluster.name.clone();
    let pool = access::pool_name(ctx.spec);
    let cluster: ClusterFacts = until_active(ctx, &format!("cluster {name}"), async || {
        Ok(cloud.cluster(&name).await?.map(|c| (c.status.clone(), c)))
    })
    .await?;
    until_active(ctx, &format!("node pool {pool}"), async || {
        Ok(cloud.node_pool(&name, &pool).await?.map(|p| (p.status, ())))
    })
    .await?;
    let access = cloud.kube_access(&cluster)?;
    let text = crate::templates::render("kubeconfig.yaml", &access)
        .map_err(|e| Failure::permanent(e.to_string()))?;
    let path = ctx.state_dir.join("kubeconfig");
    let at = path.clone();
    ctx.blocking
        .run(move || fsutil::write_atomic(&at, text.as_bytes(), fsutil::PRIVATE_FILE))
        .await?
        .map_err(|e| Failure::permanent(format!("cannot write the kubeconfig: {e}")))?;
    Ok(Outcome::Done(StepOutput {
        summary: format!(
            "cluster {name} and node pool {pool} are active; API server {}; kubeconfig written (mode 0600, no token: `{} {}`)",
            access.server,
            access.command,
            access.args.join(" ")
        ),
        facts: Some(json!({
            "endpoint": access.server,
            "certificateAuthority": access.certificate_authority,
            "kubeconfig": "kubeconfig",
        })),
        ..StepOutput::default()
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::cloud::facts::Status;
    use crate::cloud::testing::FakeCloud;
    use crate::cloud::{Cloud, CloudErrorKind};
    use crate::engine::io::journal::Journal;
    use crate::engine::io::store::Store;
    use crate::engine::model::event::{Event, StopOutcome};
    use crate::engine::model::output::Intent;
    use crate::engine::model::playbook;
    use crate::engine::{Quiet, RunOptions, run};
    use crate::quota::seed;
    use crate::spec::Provider;

    /// A playbook whose phase 6 holds `steps` (YAML flow list) and nothing else.
    fn phase6(steps: &str) -> playbook::Playbook {
        let mut s = String::from("apiVersion: realmctl/v1\nkind: Playbook\nname: t\nphases:\n");
        for n in 1..=6 {
            s.push_str(&format!(
                "  - {{number: {n}, id: p{n}, title: P{n}, owner: digibee{}}}\n",
                if n == 6 {
                    format!(", steps: {steps}")
                } else {
                    String::new()
                }
            ));
        }
        playbook::parse(&s, "t").unwrap()
    }

    struct Run {
        _dir: tempfile::TempDir,
        state: std::path::PathBuf,
        spec: crate::spec::Spec,
        opts: RunOptions,
    }

    fn setup(cloud: Arc<FakeCloud>) -> Run {
        let (dir, spec) = crate::engine::test_support::spec(Provider::Eks, "digibee.acme.com");
        let state = dir.path().join("state");
        let mut opts =
            RunOptions::new("t", Store::local(&state), seed::Target::default_for(&state));
        opts.retry_base = Duration::from_millis(1);
        opts.cloud = Some(cloud as Arc<dyn Cloud>);
        opts.poll = crate::cloud::poll::Backoff {
            first: Duration::from_millis(5),
            factor: 2,
            cap: Duration::from_millis(20),
        };
        Run {
            _dir: dir,
            state,
            spec,
            opts,
        }
    }

    async fn install(r: &Run, pb: &playbook::Playbook) -> run::RunResult {
        run::install(&r.state, &r.spec, pb, &r.opts, &Quiet)
            .await
            .unwrap()
    }

    fn intents(state: &std::path::Path) -> Vec<Intent> {
        Journal::open(state)
            .unwrap()
            .records()
            .unwrap()
            .into_iter()
            .filter_map(|r| match r.event().unwrap() {
                Event::StepIntent { intent, .. } => Some(intent),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn apply_creates_once_journals_intents_first_and_a_rerun_adopts() {
        let fake = Arc::new(FakeCloud::default());
        let r = setup(fake.clone());
        let pb =
            phase6("[{id: cluster, action: cluster.apply}, {id: ready, action: cluster.wait}]");
        let res = install(&r, &pb).await;
        assert_eq!(res.outcome, StopOutcome::Completed, "{}", res.message);
        assert_eq!(fake.cluster_names(), ["digibee-acme"]);
        assert_eq!(fake.pool_names(), ["digibee-acme/acme-workers"]);
        assert_eq!(fake.calls("create_cluster"), 1);
        assert_eq!(fake.calls("create_node_pool"), 1);
        assert_eq!(
            intents(&r.state),
            [
                Intent::Cluster {
                    name: "digibee-acme".into()
                },
                Intent::NodePool {
                    cluster: "digibee-acme".into(),
                    name: "acme-workers".into()
                }
            ]
        );
        // The kubeconfig: 0600, the token command, no token.
        use std::os::unix::fs::PermissionsExt;
        let kc = r.state.join("kubeconfig");
        assert_eq!(
            std::fs::metadata(&kc).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = std::fs::read_to_string(&kc).unwrap();
        assert!(
            text.contains("command: \"fake-token\"")
                && text.contains("server: \"https://127.0.0.1:6443\""),
            "{text}"
        );
        // A fresh state folder over the same cloud (a lost journal, another operator): adopt.
        let r2 = setup(fake.clone());
        let res = install(&r2, &pb).await;
        assert_eq!(res.outcome, StopOutcome::Completed, "{}", res.message);
        assert_eq!(fake.calls("create_cluster"), 1, "nothing created twice");
        assert_eq!(fake.calls("create_node_pool"), 1);
        assert!(intents(&r2.state).is_empty(), "adoption announces nothing");
    }

    #[tokio::test]
    async fn a_same_named_cluster_of_someone_else_is_refused_and_untouched() {
        let fake = Arc::new(FakeCloud::default());
        let mut c = crate::cloud::facts::ClusterFacts {
            name: "digibee-acme".into(),
            id: "arn:other".into(),
            status: Status::Active,
            kubernetes_version: "1.31".into(),
            subnets: vec![],
            role: "arn:other-role".into(),
            tags: Default::default(),
            endpoint: None,
            certificate_authority: None,
        };
        c.tags.insert("team".into(), "payments".into());
        fake.insert_cluster(c);
        let r = setup(fake.clone());
        let res = install(&r, &phase6("[{id: cluster, action: cluster.apply}]")).await;
        assert_eq!(res.outcome, StopOutcome::Failed);
        let next = res.next.unwrap();
        assert!(next.action.contains("already exists"), "{next}");
        assert_eq!(next.owner, crate::checks::Owner::Digibee);
        assert_eq!(fake.calls("create_cluster"), 0);
        assert_eq!(fake.calls("create_node_pool"), 0);
    }

    #[tokio::test]
    async fn wait_polls_until_active_and_throttling_is_retried_by_the_step() {
        let fake = Arc::new(FakeCloud::ready_after(2));
        let r = setup(fake.clone());
        let res = install(
            &r,
            &phase6("[{id: cluster, action: cluster.apply, timeout: 60s}]"),
        )
        .await;
        assert_eq!(res.outcome, StopOutcome::Completed, "{}", res.message);
        // Two CREATING answers, then ACTIVE: three describes of the cluster after the first.
        assert!(fake.calls("cluster") >= 4, "{}", fake.calls("cluster"));
        // Access denied on create: permanent, owned by the customer.
        let fake = Arc::new(FakeCloud::default());
        fake.fail_next("create_cluster", CloudErrorKind::AccessDenied, 1);
        let r = setup(fake.clone());
        let res = install(&r, &phase6("[{id: cluster, action: cluster.apply}]")).await;
        assert_eq!(res.outcome, StopOutcome::Failed);
        assert_eq!(res.next.unwrap().owner, crate::checks::Owner::Customer);
        assert_eq!(fake.calls("create_cluster"), 1, "not retried");
        // Throttled on create: the step retries (describe first, then create).
        let fake = Arc::new(FakeCloud::default());
        fake.fail_next("create_cluster", CloudErrorKind::Throttled, 1);
        let r = setup(fake.clone());
        let res = install(
            &r,
            &phase6("[{id: cluster, action: cluster.apply, retries: 1}]"),
        )
        .await;
        assert_eq!(res.outcome, StopOutcome::Completed, "{}", res.message);
        assert_eq!(fake.calls("create_cluster"), 2);
        assert_eq!(fake.cluster_names().len(), 1);
    }

    #[tokio::test]
    async fn missing_permissions_are_each_named_and_stop_the_run() {
        let fake = Arc::new(FakeCloud::default());
        fake.deny("eks:CreateCluster");
        fake.deny("iam:PassRole");
        let r = setup(fake.clone());
        let res = install(&r, &phase6("[{id: perms, action: cloud.permissions}]")).await;
        assert_eq!(res.outcome, StopOutcome::Failed);
        let j = Journal::open(&r.state).unwrap();
        let st = run::load_state(&j).unwrap();
        let checks = &st.steps["perms"].output.as_ref().unwrap().checks;
        let failed: Vec<_> = checks
            .iter()
            .filter(|c| c.status == crate::checks::Status::Fail)
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "access.permission.eks:CreateCluster",
                "access.permission.iam:PassRole",
                "access.permission.iam:PassRole"
            ],
            "both roles' PassRole named"
        );
    }
}
