//! `realmctl plan|install|approve|status|report|audit|unlock`: the install engine on the
//! command line. Parses, reads the environment (operator, tokens, proxy credentials), calls
//! the library and prints; exit codes: 0 done, 1 failed or refused, 2 bad input, 3 waiting.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use realmctl::checks::{CheckResult, Observer};
use realmctl::engine::audit::{self, Checkpoint};
use realmctl::engine::event::StopOutcome;
use realmctl::engine::journal::Journal;
use realmctl::engine::plan::{GatePlan, Plan, StepPlan};
use realmctl::engine::playbook::{self, Phase, Playbook, StepDef};
use realmctl::engine::report::{self, ReportFormat};
use realmctl::engine::run::{self, EngineError};
use realmctl::engine::store::Store;
use realmctl::engine::{self, CheckOptions, EngineObserver, RunOptions, StepEnd, lock};
use realmctl::quota::seed;
use realmctl::report::DocFormat;
use realmctl::secret::Secret;

use super::{BadInput, Format, Outcome, bad};

/// Flags shared by `plan` and `install`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The realm spec.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// The realm's state folder (journal, lock, artifacts).
    #[arg(long)]
    pub state: PathBuf,
    /// A playbook replacing the embedded `playbooks/dedicated-saas.yaml`.
    #[arg(long)]
    pub playbook: Option<PathBuf>,
    /// Quota ledger `quota.seed` writes to (default: <state>/quota.db).
    #[arg(long, conflicts_with = "quota_url")]
    pub quota_db: Option<PathBuf>,
    /// A running quota service `quota.seed` writes to instead (needs --quota-token-env).
    #[arg(long, requires = "quota_token_env")]
    pub quota_url: Option<String>,
    /// Environment variable holding an admin token for --quota-url.
    #[arg(long)]
    pub quota_token_env: Option<String>,
    /// First retry back-off in milliseconds (doubles per attempt, up to a minute).
    #[arg(long, default_value_t = 2000)]
    pub retry_base_ms: u64,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Format,
}

/// `report --format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportArg {
    /// One self-contained HTML file.
    Html,
    /// Markdown.
    Md,
    /// JSON.
    Json,
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Verify the journal's hash chain and the artifact checksums (exit 1 on any problem).
    Verify {
        /// The state folder.
        #[arg(long)]
        state: PathBuf,
        /// A head kept earlier (SEQ:HASH from `audit checkpoint`): proves nothing was cut off.
        #[arg(long)]
        checkpoint: Option<Checkpoint>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
    /// Print the journal head (SEQ:HASH) for an auditor to keep.
    Checkpoint {
        /// The state folder.
        #[arg(long)]
        state: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
}

fn operator() -> String {
    std::env::var("REALMCTL_OPERATOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}

fn load_playbook(path: Option<&Path>) -> Result<Playbook, BadInput> {
    match path {
        None => Ok(playbook::embedded()),
        Some(p) => playbook::load(p).map_err(|e| bad(anyhow!(e))),
    }
}

fn run_options(
    args: &RunArgs,
    until: Option<u8>,
    concurrency: usize,
) -> Result<(realmctl::spec::Spec, RunOptions), BadInput> {
    let spec = super::load(&args.file)?;
    let proxy_auth = super::proxy_auth(&spec)?;
    let quota_target = match (&args.quota_db, &args.quota_url, &args.quota_token_env) {
        (_, Some(url), Some(var)) => {
            let token = std::env::var(var).map_err(|_| bad(anyhow!("the environment variable {var} (named by --quota-token-env) is not set\n  help: export {var}=<admin token from `realmctl quota token --admin`>")))?;
            seed::Target::Remote {
                url: url.clone(),
                token: Secret::new(token),
            }
        }
        (Some(db), _, _) => seed::Target::Local { db: db.clone() },
        _ => seed::Target::Local {
            db: args.state.join("quota.db"),
        },
    };
    #[cfg(feature = "test-actions")]
    let kill_at = std::env::var("REALMCTL_TEST_KILL_AT").ok().and_then(|v| {
        v.split_once(':').map(|(s, p)| engine::KillAt {
            step: s.to_owned(),
            point: p.to_owned(),
        })
    });
    let opts = RunOptions {
        operator: operator(),
        until,
        checks: CheckOptions {
            concurrency,
            proxy_auth,
            now: ::time::OffsetDateTime::now_utc(),
            public_roots: None,
        },
        quota_target,
        store: store_for(&args.state, spec.artifacts_bucket.as_deref())?,
        retry_base: Duration::from_millis(args.retry_base_ms),
        clock: engine::system_clock(),
        #[cfg(feature = "test-actions")]
        kill_at,
    };
    Ok((spec, opts))
}

/// The artifact store: the spec's bucket, or the state folder. Object storage credentials and
/// endpoints come from the provider's standard environment variables.
fn store_for(state: &Path, bucket: Option<&str>) -> Result<Store, BadInput> {
    let Some(bucket) = bucket else {
        return Ok(Store::Local {
            state_dir: state.to_owned(),
        });
    };
    #[cfg(feature = "object-store")]
    {
        let options = std::env::vars()
            .filter(|(k, _)| {
                ["AWS_", "AZURE_", "GOOGLE_"]
                    .iter()
                    .any(|p| k.starts_with(p))
            })
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        engine::object::ObjectStore::new(bucket, options, state)
            .map(Store::Object)
            .map_err(|e| bad(anyhow!(e)))
    }
    #[cfg(not(feature = "object-store"))]
    Err(bad(anyhow!(
        "artifacts.bucket {bucket}: this realmctl was built without object storage support\n  help: build with the default features (object-store)"
    )))
}

/// Maps engine errors: lock conflicts are refusals (exit 1), the rest bad input (exit 2).
fn engine_err(e: EngineError) -> Result<Outcome, BadInput> {
    match e {
        EngineError::Lock(e) => {
            eprintln!("error: {e}");
            Ok(Outcome::Failed)
        }
        other => Err(bad(anyhow!(other))),
    }
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("serialises"));
}

/// `realmctl plan`.
pub fn plan(args: &RunArgs) -> Result<Outcome, BadInput> {
    let pb = load_playbook(args.playbook.as_deref())?;
    let (spec, opts) = run_options(args, None, 32)?;
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
fn changes_text(changes: &[realmctl::engine::event::Change]) -> String {
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
            s.push_str("  (no steps in this build)\n");
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
                    format!("UNAVAILABLE in this build: {reason}; install stops here")
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
                GatePlan::Pending => format!(
                    "needs approval by the {} (`realmctl approve --phase {}`)",
                    g.owner.as_str(),
                    p.number
                ),
            };
            s.push_str(&format!("  gate {:<19} {st}\n", g.id));
        }
    }
    s
}

/// Progress of an install on a terminal, and one line per finished step on stderr.
struct Progress {
    bar: ProgressBar,
    checks: Mutex<usize>,
}

impl Observer for Progress {
    fn on_check(&self, _r: &CheckResult) {
        let mut n = self.checks.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        self.bar.set_prefix(format!("{n} checks"));
    }
}

impl EngineObserver for Progress {
    fn on_phase_start(&self, phase: &Phase) {
        self.bar.println(format!(
            "phase {} {} ({})",
            phase.number,
            phase.title,
            phase.owner.as_str()
        ));
    }
    fn on_step_start(&self, step: &StepDef, attempt: u32) {
        *self.checks.lock().unwrap_or_else(|e| e.into_inner()) = 0;
        self.bar.set_prefix("");
        let again = if attempt > 1 {
            format!(" (attempt {attempt})")
        } else {
            String::new()
        };
        self.bar
            .set_message(format!("{} {}{again}", step.id, step.action));
    }
    fn on_step_end(&self, step: &StepDef, end: &StepEnd<'_>) {
        let line = match end {
            StepEnd::Succeeded(o) => format!("  ok       {:<24} {}", step.id, o.summary),
            StepEnd::Skipped(r) => format!("  skipped  {:<24} {r}", step.id),
            StepEnd::AlreadyDone => format!("  done     {:<24} (earlier run)", step.id),
            StepEnd::Failed {
                kind,
                message,
                retry_in,
            } => {
                let first = message.lines().next().unwrap_or("");
                match retry_in {
                    Some(d) => format!(
                        "  retry    {:<24} {first} ({kind:?}; again in {} ms)",
                        step.id,
                        d.as_millis()
                    ),
                    None => format!("  FAILED   {:<24} {message}", step.id),
                }
            }
            StepEnd::Waiting { owner, reason } => {
                format!("  waiting  {:<24} on the {owner}: {reason}", step.id)
            }
        };
        self.bar.println(line);
    }
}

/// `realmctl install`.
pub fn install(
    args: &RunArgs,
    until: Option<u8>,
    yes: bool,
    concurrency: usize,
) -> Result<Outcome, BadInput> {
    let pb = load_playbook(args.playbook.as_deref())?;
    let (spec, opts) = run_options(args, until, concurrency)?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(bad(anyhow!(
                "install changes the customer's cloud; without a terminal to confirm on, pass --yes\n  help: review `realmctl plan -f {} --state {}` first",
                args.file.display(),
                args.state.display()
            )));
        }
        let plan = match run::plan(&args.state, &spec, &pb, &opts) {
            Ok(p) => p,
            Err(e) => return engine_err(e),
        };
        print!("{}", plan_text(&plan));
        eprint!("\nProceed with the install of realm {}? [y/N] ", spec.name);
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing done");
            return Ok(Outcome::Failed);
        }
    }
    let bar = if args.output == Format::Text && std::io::stderr().is_terminal() {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {msg} {prefix}").expect("static template"),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        b
    } else {
        ProgressBar::hidden()
    };
    let quiet_lines = args.output == Format::Json || !std::io::stderr().is_terminal();
    let progress = Progress {
        bar,
        checks: Mutex::new(0),
    };
    let runtime = super::runtime()?;
    let result = if quiet_lines && args.output == Format::Json {
        runtime.block_on(run::install(&args.state, &spec, &pb, &opts, &engine::Quiet))
    } else if quiet_lines {
        runtime.block_on(run::install(&args.state, &spec, &pb, &opts, &LinePrinter))
    } else {
        runtime.block_on(run::install(&args.state, &spec, &pb, &opts, &progress))
    };
    progress.bar.finish_and_clear();
    let result = match result {
        Ok(r) => r,
        Err(e) => return engine_err(e),
    };
    match args.output {
        Format::Json => print_json(&result),
        Format::Text => {
            if !result.plan.spec_changes.is_empty() {
                println!(
                    "the spec changed since the last run; re-planned: {}",
                    result.plan.replanned.join(", ")
                );
                print!("{}", changes_text(&result.plan.spec_changes));
            }
            println!(
                "run {}: {:?}: {}",
                result.run, result.outcome, result.message
            );
            if let Some(n) = &result.next {
                println!("next: {n}");
            }
        }
    }
    Ok(match result.outcome {
        StopOutcome::Completed | StopOutcome::Until => Outcome::Success,
        StopOutcome::Waiting => Outcome::Waiting,
        StopOutcome::Failed => Outcome::Failed,
    })
}

/// Without a terminal: one plain line per finished step on stderr.
struct LinePrinter;
impl Observer for LinePrinter {}
impl EngineObserver for LinePrinter {
    fn on_step_end(&self, step: &StepDef, end: &StepEnd<'_>) {
        let status = match end {
            StepEnd::Succeeded(_) => "ok",
            StepEnd::Skipped(_) => "skipped",
            StepEnd::AlreadyDone => "done",
            StepEnd::Failed {
                retry_in: Some(_), ..
            } => "retry",
            StepEnd::Failed { .. } => "failed",
            StepEnd::Waiting { .. } => "waiting",
        };
        eprintln!("{status} {}", step.id);
    }
}

/// `realmctl approve`.
pub fn approve(
    state: &Path,
    phase: u8,
    by: &str,
    note: Option<&str>,
    output: Format,
) -> Result<Outcome, BadInput> {
    let a = run::approve(state, phase, by, note, ::time::OffsetDateTime::now_utc())
        .map_err(|e| bad(anyhow!(e)))?;
    match output {
        Format::Json => print_json(&a),
        Format::Text => println!(
            "phase {} approved by {} at {} (journal record {}); run `realmctl install` to continue",
            a.phase, a.by, a.at, a.seq
        ),
    }
    Ok(Outcome::Success)
}

fn open_state(state: &Path) -> Result<(Journal, realmctl::engine::state::State), BadInput> {
    let j = Journal::open(state).map_err(|e| bad(anyhow!(e)))?;
    let s = run::load_state(&j).map_err(|e| bad(anyhow!(e)))?;
    Ok((j, s))
}

fn head(j: &Journal) -> Result<Option<Checkpoint>, BadInput> {
    Ok(j.head()
        .map_err(|e| bad(anyhow!(e)))?
        .map(|(seq, hash)| Checkpoint { seq, hash }))
}

/// `realmctl status`.
pub fn status(state: &Path, output: Format) -> Result<Outcome, BadInput> {
    let (j, s) = open_state(state)?;
    let rep = report::build(&s, head(&j)?)
        .ok_or_else(|| bad(anyhow!("no install has run in {} yet", state.display())))?;
    let holder = lock::read_holder(state).ok().flatten();
    match output {
        Format::Json => print_json(&serde_json::json!({"report": rep, "lock": holder})),
        Format::Text => {
            println!(
                "realm {} ({}), playbook {}",
                rep.realm, rep.cloud, rep.playbook
            );
            for p in &rep.phases {
                println!(
                    "  phase {} {:<36} {:<10} {:?}",
                    p.number, p.title, p.owner, p.status
                );
            }
            println!("{}", rep.summary);
            if let Some(n) = &rep.next {
                println!("next: {n}");
            }
            if let Some(h) = holder {
                println!("lock: {h}");
            }
        }
    }
    Ok(Outcome::Success)
}

/// Writes the HTML install report of `state` to `out` (used by `demo`).
pub fn write_install_report(state: &Path, out: &Path) -> Result<(), BadInput> {
    report_cmd(state, ReportArg::Html, Some(out)).map(|_| ())
}

/// `realmctl report`.
pub fn report_cmd(
    state: &Path,
    format: ReportArg,
    out: Option<&Path>,
) -> Result<Outcome, BadInput> {
    let (j, s) = open_state(state)?;
    let rep = report::build(&s, head(&j)?)
        .ok_or_else(|| bad(anyhow!("no install has run in {} yet", state.display())))?;
    let fmt = match format {
        ReportArg::Html => ReportFormat::Doc(DocFormat::Html),
        ReportArg::Md => ReportFormat::Doc(DocFormat::Markdown),
        ReportArg::Json => ReportFormat::Json,
    };
    let text = report::render(&rep, fmt).map_err(bad)?;
    match out {
        None => print!("{text}"),
        Some(p) => std::fs::write(p, text)
            .with_context(|| format!("cannot write the report {}", p.display()))
            .map_err(bad)?,
    }
    Ok(Outcome::Success)
}

/// `realmctl audit ...`.
pub fn audit(cmd: AuditCmd) -> Result<Outcome, BadInput> {
    match cmd {
        AuditCmd::Verify {
            state,
            checkpoint,
            output,
        } => {
            let j = Journal::open(&state).map_err(|e| bad(anyhow!(e)))?;
            // The bucket the last run stored artifacts in (the verification itself reads every record).
            let last_run = j
                .last_of_kind("runStarted")
                .map_err(|e| bad(anyhow!(e)))?
                .and_then(|r| r.event().ok());
            let bucket = match &last_run {
                Some(realmctl::engine::event::Event::RunStarted { spec, .. }) => {
                    spec["artifactsBucket"].as_str()
                }
                _ => None,
            };
            let store = store_for(&state, bucket)?;
            let v = super::runtime()?
                .block_on(audit::verify(&j, &store, checkpoint))
                .map_err(|e| bad(anyhow!(e)))?;
            match output {
                Format::Json => print_json(&v),
                Format::Text => {
                    if let Some(m) = &v.message {
                        println!("FAILED: {m}");
                    }
                    for p in &v.artifact_problems {
                        println!(
                            "FAILED: artifact {} ({}, recorded in record {}): {}",
                            p.name, p.location, p.seq, p.problem
                        );
                    }
                    if v.ok {
                        let head = v
                            .head
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_else(|| "empty".into());
                        println!(
                            "ok: {} records chained, {} artifact checksums hold; head {head}",
                            v.records, v.artifacts
                        );
                    }
                }
            }
            Ok(if v.ok {
                Outcome::Success
            } else {
                Outcome::Failed
            })
        }
        AuditCmd::Checkpoint { state, output } => {
            let j = Journal::open(&state).map_err(|e| bad(anyhow!(e)))?;
            let records = j.records().map_err(|e| bad(anyhow!(e)))?;
            match audit::verify_chain(&records, None) {
                Err(b) => {
                    eprintln!(
                        "error: the journal does not verify, so its head proves nothing: {b}"
                    );
                    Ok(Outcome::Failed)
                }
                Ok(None) => Err(bad(anyhow!("the journal of {} is empty", state.display()))),
                Ok(Some(c)) => {
                    match output {
                        Format::Json => print_json(&c),
                        Format::Text => println!("{c}"),
                    }
                    Ok(Outcome::Success)
                }
            }
        }
    }
}

/// `realmctl unlock`.
pub fn unlock(state: &Path, lock_id: &str, by: Option<String>) -> Result<Outcome, BadInput> {
    let by = by.unwrap_or_else(operator);
    match run::unlock(state, lock_id, &by, ::time::OffsetDateTime::now_utc()) {
        Ok(old) => {
            println!(
                "cleared the stale lock {} ({old}); run `realmctl install` to resume",
                old.lock_id
            );
            Ok(Outcome::Success)
        }
        Err(EngineError::Lock(
            e @ (lock::LockError::WrongId { .. } | lock::LockError::NotLocked { .. }),
        )) => Err(bad(anyhow!(e))),
        Err(e) => engine_err(e),
    }
}
