//! The cloud actions, through the run's cloud provider ([`crate::cloud`]):
//!
//! - `cloud.account` (phase 1): the account, subnets, identities, services, offered versions
//!   and quotas, as the cloud's profile asks;
//! - `cloud.credentials` (phase 2): who, from which source, until when (never the secret);
//! - `cloud.permissions` (phase 3): every permission the identity lacks, by name;
//! - `cluster.apply` (phase 6): builds the realm's cluster definition — only one an approval
//!   named by its digest — creating or adopting the cluster (with its initial pools), waiting
//!   until it is active, then creating or adopting every other pool. Each create is journaled
//!   as an intent first; after a crash the step describes before it creates, so nothing is ever
//!   created twice; a same-named resource this realm did not create, or one that differs from
//!   the definition, is a conflict and is never changed;
//! - `cluster.wait` (phase 6): wait until the cluster and every pool are active (the backoff of
//!   [`crate::cloud::poll::WAIT`], throttling honoured, under the step's deadline; a resource
//!   being deleted or failed stops the wait at once), record the endpoint and CA, and write
//!   `<state>/kubeconfig` (0600) with the token command, no token.

use std::time::Duration;

use serde_json::json;

use super::{ActionDef, Input, Needs, SpecPart, run_fn};
use crate::checks::{Category, CheckResult};
use crate::cloud::definition::ClusterDefinition;
use crate::cloud::facts::{ClusterFacts, Status};
use crate::cloud::judge::Decision;
use crate::cloud::poll::{Wait, wait_on};
use crate::cloud::{CloudError, CloudErrorKind, access, judge, profile};
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::{FailureKind, Intent, StepOutput};
use crate::fsutil;

const INPUTS: &[Input] = &[Input::Part(SpecPart::Name), Input::Part(SpecPart::Cloud)];

/// `cloud.account`.
pub const ACCOUNT: ActionDef = ActionDef {
    name: "cloud.account",
    summary: "checks the cloud account, subnets, roles, Kubernetes version and vCPU quota",
    needs: Needs::Cloud,
    workflow: super::Workflow::Install,
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
    workflow: super::Workflow::Install,
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
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(5 * 60),
    retries: 2,
    params: &[],
    inputs: INPUTS,
    run: run_fn!(permissions),
};

/// `cluster.apply`.
pub const CLUSTER_APPLY: ActionDef = ActionDef {
    name: "cluster.apply",
    summary: "builds the approved cluster definition: creates or adopts the managed cluster and its node pools",
    needs: Needs::Cloud,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(45 * 60),
    retries: 2,
    params: &[],
    inputs: &[
        Input::Part(SpecPart::Name),
        Input::Part(SpecPart::Cloud),
        Input::Part(SpecPart::Subscription),
        Input::Definition,
    ],
    run: run_fn!(cluster_apply),
};

/// `cluster.wait`.
pub const CLUSTER_WAIT: ActionDef = ActionDef {
    name: "cluster.wait",
    summary: "waits until the cluster and its node pools are ready; writes the kubeconfig",
    needs: Needs::Cloud,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(45 * 60),
    retries: 2,
    params: &[],
    inputs: &[
        Input::Part(SpecPart::Name),
        Input::Part(SpecPart::Cloud),
        Input::Definition,
    ],
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
    let (id, results) = access::credentials(cloud, ctx.spec, (ctx.opts.clock)()).await?;
    let mut out = judged(results, "credential checks")?;
    if let Outcome::Done(o) = &mut out {
        o.summary = format!("{} as {} ({})", o.summary, id.principal, id.source);
        o.facts = Some(json!({"identity": id}));
    }
    Ok(out)
}

async fn permissions(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    let results = access::permissions(cloud, ctx.spec).await?;
    judged(results, "permission checks")
}

/// The permission checks of `workflow`; fails the step unless the identity holds every
/// permission it needs, naming each missing one (`command`: what needs them; `shown`: where the least-privilege document that
/// grants them is printed). One line: it is what `status` and the JSON answer show as the next
/// action.
pub(super) async fn require_permissions(
    ctx: &Ctx<'_>,
    workflow: crate::requirements::ForWorkflow,
    command: &str,
    shown: &str,
) -> Result<Vec<CheckResult>, Failure> {
    let checks = access::permissions_for(ctx.cloud()?, ctx.spec, workflow).await?;
    let missing: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == crate::checks::Status::Fail)
        .map(|c| c.subject.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(checks);
    }
    Err(Failure {
        kind: FailureKind::Permanent,
        message: format!(
            "the identity lacks {} permission(s) {command} needs: {} (grant the least-privilege {} {shown})",
            missing.len(),
            missing.join("; "),
            profile::of(ctx.spec).policy().kind
        ),
        output: Some(Box::new(StepOutput {
            summary: format!("{} {command} permission(s) missing", missing.len()),
            checks,
            ..StepOutput::default()
        })),
    })
}

/// Who must resolve a conflict: Digibee's cloud team picks another name or reconciles the spec.
pub(super) fn conflict(what: &str, why: String) -> Failure {
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

/// What one look at a resource came to, for [`poll`].
pub(super) enum Polled<T> {
    /// What was waited for.
    Done(T),
    /// Not yet: where it stands, for the progress line.
    Wait(String),
    /// It never will: why.
    Stop(Failure),
}

/// Looks with `look` under the run's backoff (by default [`crate::cloud::poll::WAIT`]) until it
/// says done or stop, under the step's deadline (`until`: what it waits to be, for the timeout's
/// message). Throttling waits as long as the cloud asks; an unanswered look is looked again.
pub(super) async fn poll<T>(
    ctx: &Ctx<'_>,
    what: &str,
    until: &str,
    mut look: impl AsyncFnMut() -> Result<Polled<T>, CloudError>,
) -> Result<T, Failure> {
    let started = std::time::Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let mut asked = None;
        let (throttled, status) = match look().await {
            Ok(Polled::Done(t)) => return Ok(t),
            Ok(Polled::Stop(f)) => return Err(f),
            Ok(Polled::Wait(s)) => (false, s),
            Err(e) if e.kind == CloudErrorKind::Throttled => {
                asked = e.retry_after;
                (true, "throttled".to_owned())
            }
            Err(e) if e.kind.retryable() => (false, format!("no answer ({})", e.kind)),
            Err(e) => return Err(e.into()),
        };
        ctx.record.progress(&format!(
            "{what}: {status} ({} s)",
            started.elapsed().as_secs()
        ));
        let Some(delay) = ctx
            .opts
            .poll
            .next_asked(n, throttled, asked, ctx.remaining())
        else {
            return Err(Failure {
                kind: FailureKind::Timeout,
                message: format!("{what} was not {until} within the step's timeout"),
                output: None,
            });
        };
        tokio::time::sleep(delay).await;
    }
}

/// Polls `describe` until it reports active ([`poll`]); a resource that is gone, being deleted
/// or failed ends the wait at once ([`wait_on`]).
pub(super) async fn until_active<T>(
    ctx: &Ctx<'_>,
    what: &str,
    mut describe: impl AsyncFnMut() -> Result<Option<(Status, T)>, CloudError>,
) -> Result<T, Failure> {
    poll(ctx, what, "ready", async || {
        Ok(match describe().await? {
            Some((status, t)) => match wait_on(&status) {
                Wait::Ready => Polled::Done(t),
                Wait::Stop(why) => Polled::Stop(Failure::permanent(format!(
                    "{what} will not become ready: {why}"
                ))),
                Wait::Poll(s) => Polled::Wait(s.to_owned()),
            },
            None => Polled::Stop(Failure::permanent(format!(
                "{what} does not exist (deleted while the install waited?)"
            ))),
        })
    })
    .await
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

/// The definition `cluster.apply` may build: the spec's, and only if an approval named its
/// digest (the phase-5 gate records it). Without one, nothing is created.
pub(super) fn approved_definition(ctx: &Ctx<'_>) -> Result<(ClusterDefinition, String), Failure> {
    let def = access::definition(ctx.spec);
    let digest = def.digest();
    match ctx
        .approvals
        .iter()
        .rev()
        .find(|a| a.definition.as_deref() == Some(digest.as_str()))
    {
        Some(a) => {
            let by = format!("{} at {}", crate::text::one_line(&a.by), a.at);
            Ok((def, by))
        }
        None => {
            let evidence = CheckResult::fail(
                "cluster.definition.approved",
                Category::Access,
                &digest,
                format!("no approval names the cluster definition {digest}, so it is not built"),
                "approve the roles-and-resources document of phase 5, which shows this definition (`realmctl approve --phase 5`), then run install again",
            )
            .owned_by(crate::checks::Owner::Customer);
            Err(Failure {
                kind: FailureKind::Permanent,
                message: format!(
                    "the cluster definition {digest} has not been approved; nothing was created\n  help: approve phase 5, whose document shows this definition, then run install again"
                ),
                output: Some(Box::new(StepOutput {
                    summary: "cluster definition not approved".into(),
                    checks: vec![evidence],
                    ..StepOutput::default()
                })),
            })
        }
    }
}

async fn cluster_apply(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    let (def, approved_by) = approved_definition(ctx)?;
    let realm = &ctx.spec.name;
    let key = profile::of(ctx.spec).tag_keys().realm;
    let existing = cloud.cluster(&def.cluster.name).await?;
    let cluster_created = create_or_adopt(
        ctx,
        "cluster",
        "cluster",
        judge::cluster(existing.as_ref(), &def, key, realm),
        Intent::Cluster {
            name: def.cluster.name.clone(),
        },
        async || cloud.create_cluster(&def).await,
        async || {
            let now = cloud.cluster(&def.cluster.name).await?;
            Ok(judge::cluster(now.as_ref(), &def, key, realm))
        },
    )
    .await?;
    let what = format!("cluster {}", def.cluster.name);
    until_active(ctx, &what, async || {
        Ok(cloud
            .cluster(&def.cluster.name)
            .await?
            .map(|c| (c.status.clone(), ())))
    })
    .await?;

    let mut pools = Vec::new();
    for pool in &def.pools {
        let existing = cloud.node_pool(&def.cluster.name, &pool.nodes.name).await?;
        let created = create_or_adopt(
            ctx,
            "node pool",
            "pool",
            judge::node_pool(existing.as_ref(), pool, key, realm),
            Intent::NodePool {
                cluster: def.cluster.name.clone(),
                name: pool.nodes.name.clone(),
            },
            async || cloud.create_node_pool(&def, pool).await,
            async || {
                let now = cloud.node_pool(&def.cluster.name, &pool.nodes.name).await?;
                Ok(judge::node_pool(now.as_ref(), pool, key, realm))
            },
        )
        .await?;
        pools.push(json!({"name": pool.nodes.name, "created": created || (cluster_created && pool.with_cluster)}));
    }
    let verb = |created: bool| if created { "created" } else { "adopted" };
    let pool_text: Vec<String> = def
        .pools
        .iter()
        .map(|p| {
            format!(
                "node pool {}: {} × {} to {} (desired {})",
                p.nodes.name, p.nodes.min, p.nodes.shape, p.nodes.max, p.nodes.desired
            )
        })
        .collect();
    Ok(Outcome::Done(StepOutput {
        summary: format!(
            "cluster {} {} ({}, Kubernetes {}, {}); {}; definition {} approved by {approved_by}",
            def.cluster.name,
            verb(cluster_created),
            cloud.describe(),
            def.cluster.kubernetes_version,
            def.cluster.api_access.describe(),
            pool_text.join("; "),
            def.digest(),
        ),
        facts: Some(json!({
            "cluster": {"name": def.cluster.name, "created": cluster_created},
            "nodePools": pools,
        })),
        built: Some(Box::new(def)),
        ..StepOutput::default()
    }))
}

async fn cluster_wait(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let cloud = ctx.cloud()?;
    let def = access::definition(ctx.spec);
    let name = def.cluster.name.clone();
    let cluster: ClusterFacts = until_active(ctx, &format!("cluster {name}"), async || {
        Ok(cloud.cluster(&name).await?.map(|c| (c.status.clone(), c)))
    })
    .await?;
    if cluster.name() != name {
        return Err(Failure::permanent(format!(
            "the cloud described a cluster named `{}` when asked for {name}: it is not the realm's cluster",
            crate::text::one_line(cluster.name())
        )));
    }
    for pool in &def.pools {
        until_active(ctx, &format!("node pool {}", pool.nodes.name), async || {
            Ok(cloud
                .node_pool(&name, &pool.nodes.name)
                .await?
                .map(|p| (p.status, ())))
        })
        .await?;
    }
    let access = cloud.kube_access(&cluster).await?;
    let text = crate::templates::render("kubeconfig.yaml", &access)
        .map_err(|e| Failure::permanent(e.to_string()))?;
    // A state folder gets the kubeconfig beside the journal; a state database has no folder,
    // and the same file is what `realmctl report` and the cloud's own CLI give from the facts.
    let written = match ctx.state_dir {
        Some(dir) => {
            let at = dir.join("kubeconfig");
            ctx.blocking
                .run(move || fsutil::write_atomic(&at, text.as_bytes(), fsutil::PRIVATE_FILE))
                .await?
                .map_err(|e| Failure::permanent(format!("cannot write the kubeconfig: {e}")))?;
            "kubeconfig written (mode 0600, no token"
        }
        None => "no kubeconfig file (the state is in a database; credentials",
    };
    let pool_names: Vec<&str> = def.pools.iter().map(|p| p.nodes.name.as_str()).collect();
    Ok(Outcome::Done(StepOutput {
        summary: format!(
            "cluster {name} and node pools {} are active; API server {}; {written}: `{} {}`)",
            pool_names.join(", "),
            crate::text::one_line(&access.server),
            crate::text::one_line(&access.command),
            crate::text::one_line(&access.args.join(" "))
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
pub(super) mod tests {
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

    /// A playbook whose phase 5 renders the roles document behind the customer's gate and
    /// whose phase 6 holds `steps` (YAML flow list).
    pub(crate) fn phase6(steps: &str) -> playbook::Playbook {
        let mut s = String::from("apiVersion: realmctl/v1\nkind: Playbook\nname: t\nphases:\n");
        for n in 1..=6 {
            let extra = match n {
                5 => ", steps: [{id: roles, action: roles.render}], gates: [{id: ack, owner: customer, description: d}]".to_owned(),
                6 => format!(", steps: {steps}"),
                _ => String::new(),
            };
            s.push_str(&format!(
                "  - {{number: {n}, id: p{n}, title: P{n}, owner: digibee{extra}}}\n"
            ));
        }
        playbook::parse(&s, "t").unwrap()
    }

    /// The same phase 6 without the gate: nothing approves the definition.
    fn ungated(steps: &str) -> playbook::Playbook {
        let mut s = String::from("apiVersion: realmctl/v1\nkind: Playbook\nname: t\nphases:\n");
        for n in 1..=6 {
            let extra = match n {
                5 => ", steps: [{id: roles, action: roles.render}]".to_owned(),
                6 => format!(", steps: {steps}"),
                _ => String::new(),
            };
            s.push_str(&format!(
                "  - {{number: {n}, id: p{n}, title: P{n}, owner: digibee{extra}}}\n"
            ));
        }
        playbook::parse(&s, "t").unwrap()
    }

    pub(crate) struct Run {
        pub(crate) _dir: tempfile::TempDir,
        pub(crate) state: std::path::PathBuf,
        pub(crate) spec: crate::spec::Spec,
        pub(crate) opts: RunOptions,
    }

    pub(crate) fn setup_for(provider: Provider, cloud: Arc<FakeCloud>) -> Run {
        let (dir, spec) = crate::engine::test_support::spec(provider, "digibee.acme.com");
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

    fn setup(cloud: Arc<FakeCloud>) -> Run {
        setup_for(Provider::Eks, cloud)
    }

    pub(crate) async fn install(r: &Run, pb: &playbook::Playbook) -> run::RunResult {
        run::install(&r.state.clone().into(), &r.spec, pb, &r.opts, &Quiet)
            .await
            .unwrap()
    }

    pub(crate) fn approve(r: &Run) {
        run::approve(
            &r.state.clone().into(),
            5,
            "ann",
            None,
            time::OffsetDateTime::now_utc(),
            None,
        )
        .unwrap();
    }

    /// Install to the gate, approve as the customer, install to the end.
    pub(crate) async fn approved_install(r: &Run, pb: &playbook::Playbook) -> run::RunResult {
        let first = install(r, pb).await;
        assert_eq!(first.outcome, StopOutcome::Waiting, "{}", first.message);
        approve(r);
        install(r, pb).await
    }

    pub(crate) fn intents(state: &std::path::Path) -> Vec<Intent> {
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
        let res = approved_install(&r, &pb).await;
        assert_eq!(res.outcome, StopOutcome::Completed, "{}", res.message);
        assert_eq!(fake.cluster_names(), ["digibee-acme"]);
        assert_eq!(fake.pool_names(), ["digibee-acme/workers"]);
        assert_eq!(fake.calls("create_cluster"), 1);
        assert_eq!(fake.calls("create_node_pool"), 1);
        // What was sent is the definition the customer approved, whole.
        let st = run::load_state(&Journal::open(&r.state).unwrap()).unwrap();
        let approved = st.approvals[0].definition.clone().unwrap();
        assert_eq!(fake.sent()[0].digest(), approved);
        assert_eq!(fake.sent()[0], crate::cloud::access::definition(&r.spec));
        let built = st.steps["cluster"]
            .output
            .as_ref()
            .unwrap()
            .built
            .as_ref()
            .unwrap();
        assert_eq!(built.digest(), approved);
        // The report shows the approved digest next to the built one.
        let rep = run::report(&r.state.clone().into()).unwrap();
        let row = rep.definition.unwrap();
        assert_eq!(row.approved.as_deref(), Some(approved.as_str()));
        assert_eq!(row.built.as_deref(), Some(approved.as_str()));
        assert_eq!(row.matches, Some(true));
        assert!(row.approved_by.unwrap().starts_with("ann at "));
        assert_eq!(
            intents(&r.state),
            [
                Intent::Cluster {
                    name: "digibee-acme".into()
                },
                Intent::NodePool {
                    cluster: "digibee-acme".into(),
                    name: "workers".into()
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
        let res = approved_install(&r2, &pb).await;
        assert_eq!(res.outcome, StopOutcome::Completed, "{}", res.message);
        assert_eq!(fake.calls("create_cluster"), 1, "nothing created twice");
        assert_eq!(fake.calls("create_node_pool"), 1);
        assert!(intents(&r2.state).is_empty(), "adoption announces nothing");
    }

    #[tokio::test]
    async fn a_definition_no_approval_names_is_never_built() {
        let fake = Arc::new(FakeCloud::default());
        let r = setup(fake.clone());
        let res = install(&r, &ungated("[{id: cluster, action: cluster.apply}]")).await;
        assert_eq!(res.outcome, StopOutcome::Failed);
        assert!(
            res.message.contains("has not been approved"),
            "{}",
            res.message
        );
        assert_eq!(res.next.unwrap().owner, crate::checks::Owner::Customer);
        assert_eq!(fake.calls("cluster"), 0, "not even described");
        assert_eq!(fake.calls("create_cluster"), 0);
    }

    #[tokio::test]
    async fn a_changed_size_voids_the_approval_and_stops_at_the_gate() {
        let fake = Arc::new(FakeCloud::default());
        let mut r = setup(fake.clone());
        let pb = phase6("[{id: cluster, action: cluster.apply}]");
        let first = install(&r, &pb).await;
        assert_eq!(first.outcome, StopOutcome::Waiting);
        approve(&r);
        // The customer approved 10 subscriptions' worth of nodes; the spec now says 40.
        r.spec.subscription.pipeline_subscriptions = 40;
        let res = install(&r, &pb).await;
        assert_eq!(res.outcome, StopOutcome::Waiting, "{}", res.message);
        assert_eq!(fake.calls("create_cluster"), 0, "nothing created");
        assert!(
            res.plan.replanned.contains(&"roles".to_owned()),
            "{:?}",
            res.plan.replanned
        );
        approve(&r);
        let res = install(&r, &pb).await;
        assert_eq!(res.outcome, StopOutcome::Completed, "{}", res.message);
        let sent = fake.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].pools[0].nodes.max,
            crate::cloud::access::definition(&r.spec).pools[0].nodes.max
        );
    }

    #[tokio::test]
    async fn a_same_named_cluster_of_someone_else_is_refused_and_untouched() {
        let fake = Arc::new(FakeCloud::default());
        let r = setup(fake.clone());
        let mut def = crate::cloud::access::definition(&r.spec);
        def.cluster.tags.clear();
        def.cluster.tags.insert("team".into(), "payments".into());
        let (described, _) = crate::cloud::definition::tests::described(&def);
        fake.insert_cluster(crate::cloud::facts::ClusterFacts {
            id: "arn:other".into(),
            status: Status::Active,
            described,
            endpoint: None,
            certificate_authority: None,
        });
        let res = approved_install(&r, &phase6("[{id: cluster, action: cluster.apply}]")).await;
        assert_eq!(res.outcome, StopOutcome::Failed);
        let next = res.next.unwrap();
        assert!(next.action.contains("already exists"), "{next}");
        assert_eq!(next.owner, crate::checks::Owner::Digibee);
        assert_eq!(fake.calls("create_cluster"), 0);
        assert_eq!(fake.calls("create_node_pool"), 0);
    }

    #[tokio::test]
    async fn a_cluster_being_deleted_or_failed_stops_the_wait_at_once() {
        for (status, words) in [
            (Status::Deleting, "being deleted"),
            (
                Status::Failed("no capacity".into()),
                "it failed: no capacity",
            ),
        ] {
            let fake = Arc::new(FakeCloud::ready_after(1000));
            let r = setup(fake.clone());
            let pb = phase6("[{id: cluster, action: cluster.apply, timeout: 600s}]");
            let first = install(&r, &pb).await;
            assert_eq!(first.outcome, StopOutcome::Waiting);
            approve(&r);
            // The cluster is created, then the cloud starts deleting (or fails) it.
            let started = std::time::Instant::now();
            let cloud = fake.clone();
            let flip = tokio::spawn(async move {
                for _ in 0..200 {
                    if !cloud.cluster_names().is_empty() {
                        cloud.set_cluster_status("digibee-acme", status.clone());
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            });
            let res = install(&r, &pb).await;
            flip.await.unwrap();
            assert_eq!(res.outcome, StopOutcome::Failed, "{}", res.message);
            assert!(res.message.contains(words), "{}", res.message);
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{:?}",
                started.elapsed()
            );
        }
    }

    #[tokio::test]
    async fn wait_polls_until_active_and_throttling_is_retried_by_the_step() {
        let fake = Arc::new(FakeCloud::ready_after(2));
        let r = setup(fake.clone());
        let res = approved_install(
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
        let res = approved_install(&r, &phase6("[{id: cluster, action: cluster.apply}]")).await;
        assert_eq!(res.outcome, StopOutcome::Failed);
        assert_eq!(res.next.unwrap().owner, crate::checks::Owner::Customer);
        assert_eq!(fake.calls("create_cluster"), 1, "not retried");
        // Throttled on create: the step retries (describe first, then create).
        let fake = Arc::new(FakeCloud::default());
        fake.fail_next("create_cluster", CloudErrorKind::Throttled, 1);
        let r = setup(fake.clone());
        let res = approved_install(
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
        // Phase 5's gate comes first: approve, then phase 6 checks the permissions.
        assert_eq!(res.outcome, StopOutcome::Waiting);
        approve(&r);
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

    /// The AKS and GKE profiles through the same engine paths: their permission checks can
    /// fail (a denied action named), and their clusters are built with the pools the cloud
    /// creates inline, from the definition their profile builds.
    #[tokio::test]
    async fn aks_and_gke_realms_check_their_own_permissions_and_build_their_definition() {
        for (provider, account, denied) in [
            (
                Provider::Aks,
                "00000000-0000-0000-0000-000000000000",
                "Microsoft.ContainerService/managedClusters/write",
            ),
            (Provider::Gke, "digibee-acme", "container.clusters.create"),
        ] {
            let fake = Arc::new(FakeCloud::for_provider(provider, account));
            fake.deny(denied);
            let r = setup_for(provider, fake.clone());
            let pb = phase6("[{id: perms, action: cloud.permissions}]");
            assert_eq!(install(&r, &pb).await.outcome, StopOutcome::Waiting);
            approve(&r);
            let res = install(&r, &pb).await;
            assert_eq!(res.outcome, StopOutcome::Failed, "{provider}");
            let st = run::load_state(&Journal::open(&r.state).unwrap()).unwrap();
            let checks = &st.steps["perms"].output.as_ref().unwrap().checks;
            assert!(
                checks
                    .iter()
                    .any(|c| c.id == format!("access.permission.{denied}")),
                "{provider}: {checks:?}"
            );

            let fake = Arc::new(FakeCloud::for_provider(provider, account));
            let r = setup_for(provider, fake.clone());
            let pb = phase6(
                "[{id: account, action: cloud.account}, {id: cluster, action: cluster.apply}, {id: ready, action: cluster.wait}]",
            );
            let res = approved_install(&r, &pb).await;
            assert_eq!(
                res.outcome,
                StopOutcome::Completed,
                "{provider}: {}",
                res.message
            );
            assert_eq!(fake.calls("create_cluster"), 1);
            assert_eq!(
                fake.calls("create_node_pool"),
                0,
                "{provider}: the pool came with the cluster"
            );
            assert_eq!(fake.pool_names(), ["digibee-acme/workers"]);
            let sent = &fake.sent()[0];
            assert_eq!(
                sent.cluster.tags,
                crate::cloud::profile::for_provider(provider).realm_tags("acme")
            );
        }
    }
}
