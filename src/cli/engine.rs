//! `realmctl plan|install|unlock`: the install engine on the command line. Parses,
//! reads the environment (operator, tokens, proxy credentials, object storage), calls the
//! library and prints; exit codes: 0 done, 1 failed or refused, 2 bad input, 3 waiting.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;

use realmctl::engine::io::db::lease::LeaseError;
use realmctl::engine::io::state::StateRef;
use realmctl::engine::io::store::Store;
use realmctl::engine::model::event::{Change, StopOutcome};
use realmctl::engine::model::plan::{GatePlan, Plan, StepPlan};
use realmctl::engine::model::playbook::{self, Playbook, Workflow};
use realmctl::engine::run::{self, EngineError, UnlockTarget};
use realmctl::engine::{CheckOptions, RunOptions};
use realmctl::quota::seed;
use realmctl::spec::Spec;

use super::progress::Progress;
use super::{BadInput, Format, Outcome, bad, env, print_json};

/// Flags shared by `plan` and `install`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The realm spec.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// The realm's state folder (journal, lock, artifacts), or
    /// postgres://USER@HOST:PORT/DB?realm=NAME (password from PGPASSWORD).
    #[arg(long, value_parser = env::StateArg)]
    pub state: StateRef,
    /// A playbook replacing the embedded `playbooks/dedicated-saas.yaml`.
    #[arg(long)]
    pub playbook: Option<PathBuf>,
    /// Quota ledger `quota.seed` writes to instead of the realm's own enforcement core in its
    /// cluster (the default when the playbook applies the platform; else <state>/quota.db).
    #[arg(long, conflicts_with = "quota_url")]
    pub quota_db: Option<PathBuf>,
    /// A running quota service `quota.seed` writes to instead (https, or http to loopback;
    /// needs --quota-token-env).
    #[arg(long, requires = "quota_token_env")]
    pub quota_url: Option<String>,
    /// Environment variable holding an admin token for --quota-url.
    #[arg(long)]
    pub quota_token_env: Option<String>,
    /// The port the ingress address serves HTTPS on, where `realm.live` checks the realm's
    /// certificate is served (443 unless the edge listens elsewhere).
    #[arg(long, default_value_t = 443, value_parser = clap::value_parser!(u16).range(1..))]
    pub ingress_port: u16,
    /// First retry back-off in milliseconds (doubles per attempt, up to a minute).
    #[arg(long, default_value_t = 2000)]
    pub retry_base_ms: u64,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Format,
}

fn load_playbook(path: Option<&Path>) -> Result<Playbook, BadInput> {
    match path {
        None => Ok(playbook::embedded()),
        Some(p) => playbook::load(p).map_err(|e| bad(anyhow!(e))),
    }
}

/// The spec and the run options of `args`, with everything read from the environment.
pub(super) fn run_options(
    runtime: &tokio::runtime::Runtime,
    args: &RunArgs,
    pb: &Playbook,
    until: Option<u8>,
    concurrency: Option<usize>,
) -> Result<(Spec, RunOptions), BadInput> {
    let spec = super::spec::load(&args.file)?;
    let quota_target = match (&args.quota_db, &args.quota_url, &args.quota_token_env) {
        (_, Some(url), Some(var)) => {
            let token = env::secret(
                var,
                "--quota-token-env",
                "admin token from `realmctl quota token --admin`",
            )?;
            seed::Target::remote(url, token).map_err(bad)?
        }
        (Some(db), _, _) => seed::Target::Local { db: db.clone() },
        _ => match args.state.folder() {
            Some(dir) => seed::Target::for_install(dir, pb.applies_platform()),
            None if pb.applies_platform() || !pb.seeds_quota() => seed::Target::InRealm,
            None => {
                return Err(bad(anyhow!(
                    "this playbook seeds a local quota ledger (<state>/quota.db), and a state database has no folder for it\n  help: give --quota-db FILE or --quota-url URL"
                )));
            }
        },
    };
    let cloud = super::clouds::connect(runtime, &spec)?;
    #[cfg(feature = "object-store")]
    let access = env::cloud_access(
        cloud.as_ref(),
        &spec.cloud.region,
        spec.cloud.endpoint.as_deref(),
    );
    let store = Store::open(
        &args.state,
        spec.artifacts_bucket.as_deref(),
        env::object_options(),
        #[cfg(feature = "object-store")]
        access.as_ref(),
    )
    .map_err(bad)?;
    let mut opts = RunOptions::new(env::operator(), store, quota_target);
    opts.cloud = cloud;
    opts.until = until;
    opts.checks = CheckOptions {
        concurrency,
        proxy_auth: env::proxy_auth(&spec)?,
        ..CheckOptions::default()
    };
    opts.retry_base = Duration::from_millis(args.retry_base_ms);
    opts.ingress_port = args.ingress_port;
    #[cfg(feature = "test-actions")]
    {
        opts.kill_at = env::kill_at()?;
    }
    Ok((spec, opts))
}

/// Maps engine errors: lock conflicts are refusals (exit 1), the rest bad input (exit 2).
pub(super) fn engine_err(e: EngineError) -> Result<Outcome, BadInput> {
    match e {
        EngineError::Lock(e) => {
            super::say_err(format!("error: {e}"));
            Ok(Outcome::Failed)
        }
        EngineError::Lease(e @ (LeaseError::Held { .. } | LeaseError::Expired { .. })) => {
            super::say_err(format!("error: {e}"));
            Ok(Outcome::Failed)
        }
        other => Err(bad(anyhow!(other))),
    }
}

/// `realmctl plan`.
pub fn plan(args: &RunArgs) -> Result<Outcome, BadInput> {
    let pb = load_playbook(args.playbook.as_deref())?;
    let runtime = super::runtime()?;
    let (spec, opts) = run_options(&runtime, args, &pb, None, None)?;
    let plan = match run::plan(&args.state, &spec, &pb, &opts) {
        Ok(p) => p,
        Err(e) => return engine_err(e),
    };
    match args.output {
        Format::Json => print_json(&plan),
        Format::Text => print!("{}", plan_text(&plan)),
    }
    Ok(Outcome::Success)
}

/// One line per changed spec path: `  path: before -> after`.
fn changes_text(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| {
            format!(
                "  {}: {} -> {}\n",
                c.path,
                c.before.as_deref().unwrap_or("(absent)"),
                c.after.as_deref().unwrap_or("(absent)")
            )
        })
        .collect()
}

fn plan_text(plan: &Plan) -> String {
    let mut s = format!(
        "Plan for realm {} (playbook {})\n",
        plan.realm, plan.playbook
    );
    if !plan.spec_changes.is_empty() {
        s.push_str("The spec changed since the last run:\n");
        s.push_str(&changes_text(&plan.spec_changes));
    }
    for p in &plan.phases {
        s.push_str(&format!(
            "\nPhase {} {} (owner: {})\n",
            p.number,
            p.title,
            p.owner.as_str()
        ));
        if let Some(n) = &p.note {
            s.push_str(&format!("  note: {n}\n"));
        }
        if p.steps.is_empty() {
            s.push_str("  (no steps)\n");
        }
        for st in &p.steps {
            let what = match &st.plan {
                StepPlan::Done { at, skipped: false } => format!("done {at}; will not run again"),
                StepPlan::Done { at, skipped: true } => format!("skipped {at}; nothing to do"),
                StepPlan::Run => "will run".into(),
                StepPlan::Resume => "was interrupted; will run again".into(),
                StepPlan::Retry { error } => format!(
                    "failed last time; will run again ({})",
                    error.lines().next().unwrap_or("")
                ),
                StepPlan::Recheck { .. } => "waits on someone; will check again".into(),
                StepPlan::Rerun => "its inputs changed; will run again".into(),
                StepPlan::Unavailable { reason } => {
                    format!("UNAVAILABLE: {reason}; install stops here")
                }
            };
            s.push_str(&format!(
                "  {:<24} {:<22} {what}\n",
                st.id,
                st.action.name()
            ));
        }
        for g in &p.gates {
            let st = match &g.plan {
                GatePlan::Approved { by, at } => format!("approved by {by} at {at}"),
                GatePlan::Pending { reason } => format!(
                    "needs approval by the {} (`realmctl approve --phase {}`){}",
                    g.owner.as_str(),
                    p.number,
                    reason
                        .as_deref()
                        .map(|r| format!("\n{:<28}{r}", ""))
                        .unwrap_or_default()
                ),
            };
            s.push_str(&format!("  gate {:<19} {st}\n", g.id));
        }
    }
    if let Some(c) = &plan.cloud {
        s.push_str(&format!(
            "\nCloud: {} ({})\n",
            c.provider,
            c.via
                .as_deref()
                .unwrap_or("no provider for this cloud in this build")
        ));
        let d = &c.definition;
        s.push_str(&format!(
            "  cluster definition {} (what phase 5's approval binds to and phase 6 builds):\n    cluster {} in {} ({}), Kubernetes {}, API server: {}\n",
            c.digest,
            d.cluster.name,
            d.scope,
            d.location,
            d.cluster.kubernetes_version,
            d.cluster.api_access.describe()
        ));
        if !d.cluster.network.subnets.is_empty() {
            s.push_str(&format!(
                "    network: {}\n",
                d.cluster.network.subnets.join(", ")
            ));
        }
        if let Some(id) = &d.cluster.control_plane_identity {
            s.push_str(&format!("    control plane identity: {id}\n"));
        }
        let tags: Vec<String> = d
            .cluster
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        s.push_str(&format!("    tags: {}\n", tags.join(", ")));
        for p in &d.pools {
            s.push_str(&format!(
                "    node pool {}: {} × {}–{} (desired {}), {}{}\n",
                p.nodes.name,
                p.nodes.shape,
                p.nodes.min,
                p.nodes.max,
                p.nodes.desired,
                if p.with_cluster {
                    "created with the cluster"
                } else {
                    "created once the cluster is active"
                },
                p.nodes
                    .node_identity
                    .as_deref()
                    .map(|i| format!(", nodes run as {i}"))
                    .unwrap_or_default()
            ));
        }
        if let Some(p) = &d.platform {
            s.push_str(&format!(
                "    platform {}: {} objects ({} to apply, {} unchanged, {} to prune)\n",
                realmctl::text::one_line(&p.bundle),
                p.objects.len(),
                c.platform.apply.len(),
                c.platform.unchanged,
                c.platform.prune.len()
            ));
            for (stage, o) in &c.platform.apply {
                let stage = match stage {
                    realmctl::platform::Stage::Foundation => "foundation",
                    realmctl::platform::Stage::Workloads => "workloads",
                };
                s.push_str(&format!(
                    "      apply ({stage}): {}\n",
                    realmctl::text::one_line(&o.to_string())
                ));
            }
            for o in &c.platform.prune {
                s.push_str(&format!(
                    "      prune: {}\n",
                    realmctl::text::one_line(&o.to_string())
                ));
            }
            for o in &c.platform.left {
                s.push_str(&format!(
                    "      left for you to delete once empty (no longer in the bundle): {}\n",
                    realmctl::text::one_line(&o.to_string())
                ));
            }
        }
        if let Some(v) = &d.vpn {
            let one = |x: &str| realmctl::text::one_line(x);
            s.push_str(&format!(
                "    VPN instance {}: {}, image {}, in subnet {}, IP forwarding on, a static public address
",
                one(&v.name),
                one(&v.size),
                one(&v.image),
                one(&v.subnet)
            ));
            let rules: Vec<String> = v.ingress.iter().map(|r| one(&r.to_string())).collect();
            s.push_str(&format!(
                "      admits from outside the realm's network only: {}
",
                rules.join("; ")
            ));
            s.push_str(&format!(
                "      routes {} through it from the route tables of {}\n      IKEv{} {} / ESP {} with the customer gateway {}; key in secret {} (never written down)\n",
                one(&v.remote_cidrs.join(", ")),
                one(&v.route_subnets.join(", ")),
                v.ike_version,
                one(&v.ike),
                one(&v.esp),
                one(&v.peer),
                one(&v.secret)
            ));
        }
        let pool = &c.pool;
        s.push_str(&format!(
            "  sized from {} RTUs ({:.1} vCPU, {:.1} GiB with headroom; docs/sizing.md); the region's vCPU quota must cover {} vCPU\n",
            pool.rtus,
            pool.vcpu_needed,
            pool.memory_gib_needed,
            d.max_vcpu()
        ));
        if let Some(policy) = &c.policy {
            s.push_str(&format!(
                "  least-privilege {} of the install identity (grant it before the install starts):\n",
                c.policy_kind
            ));
            for line in policy.lines() {
                s.push_str(&format!("    {line}\n"));
            }
        }
    }
    s
}

/// `realmctl install`.
pub fn install(
    args: &RunArgs,
    until: Option<u8>,
    yes: bool,
    concurrency: Option<usize>,
    force_conflicts: bool,
    signing: &env::SigningArgs,
) -> Result<Outcome, BadInput> {
    let pb = load_playbook(args.playbook.as_deref())?;
    run::check_workflow(&pb, Workflow::Install).map_err(|e| bad(anyhow!(e)))?;
    let runtime = super::runtime()?;
    let (spec, mut opts) = run_options(&runtime, args, &pb, until, concurrency)?;
    opts.signing_key = signing.load(&args.state)?;
    opts.force_conflicts = force_conflicts;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(bad(anyhow!(
                "install changes the customer's cloud; without a terminal to confirm on, pass --yes\n  help: review `realmctl plan -f {} --state {}` first",
                args.file.display(),
                args.state
            )));
        }
        let plan = match run::plan(&args.state, &spec, &pb, &opts) {
            Ok(p) => p,
            Err(e) => return engine_err(e),
        };
        print!("{}", plan_text(&plan));
        if !super::confirm(&format!("Proceed with the install of realm {}?", spec.name)) {
            super::say_err("nothing done");
            return Ok(Outcome::Failed);
        }
    }
    run_playbook(args, &spec, &pb, &opts)
}

/// Runs `pb` (install or destroy) and prints how it stopped.
pub(super) fn run_playbook(
    args: &RunArgs,
    spec: &Spec,
    pb: &Playbook,
    opts: &RunOptions,
) -> Result<Outcome, BadInput> {
    let progress = Progress::new(args.output == Format::Text);
    let result = super::runtime()?.block_on(run::install(&args.state, spec, pb, opts, &progress));
    progress.finish();
    let result = match result {
        Ok(r) => r,
        Err(e) => return engine_err(e),
    };
    match args.output {
        Format::Json => print_json(&result),
        Format::Text => {
            if !result.plan.spec_changes.is_empty() {
                super::say(format!(
                    "the spec changed since the last run; re-planned: {}",
                    result.plan.replanned.join(", ")
                ));
                print!("{}", changes_text(&result.plan.spec_changes));
            }
            super::say(format!(
                "run {}: {:?}: {}",
                result.run, result.outcome, result.message
            ));
            if let Some(n) = &result.next {
                super::say(format!("next: {n}"));
            }
        }
    }
    Ok(match result.outcome {
        StopOutcome::Completed | StopOutcome::Until => Outcome::Success,
        StopOutcome::Waiting => Outcome::Waiting,
        StopOutcome::Failed => Outcome::Failed,
    })
}

/// `realmctl unlock`.
pub fn unlock(
    state: &StateRef,
    lock_id: Option<&str>,
    unreadable: bool,
    by: Option<String>,
    signing: &env::SigningArgs,
) -> Result<Outcome, BadInput> {
    use realmctl::engine::io::lock::LockError;
    let key = signing.load(state)?;
    let by = by.unwrap_or_else(env::operator);
    let target = match (lock_id, unreadable) {
        (Some(id), false) => UnlockTarget::LockId(id),
        _ => UnlockTarget::Unreadable,
    };
    match run::unlock(state, target, &by, ::time::OffsetDateTime::now_utc(), key) {
        Ok(old) => {
            super::say(format!(
                "cleared the stale lock of {old}; run `realmctl install` to resume"
            ));
            Ok(Outcome::Success)
        }
        Err(EngineError::Lock(
            e @ (LockError::WrongId { .. }
            | LockError::NotLocked { .. }
            | LockError::Readable { .. }),
        )) => Err(bad(anyhow!(e))),
        Err(EngineError::Lease(
            e @ (LeaseError::WrongId { .. } | LeaseError::NotLocked { .. }),
        )) => Err(bad(anyhow!(e))),
        Err(e) => engine_err(e),
    }
}
