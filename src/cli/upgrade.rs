//! `realmctl upgrade`: the upgrade playbook on the command line. The target is the spec's
//! `kubernetesVersion` (the realm's one cluster definition); `--to` only confirms it. `--plan`
//! prints the pre-checks and what would move, changing nothing; without it the upgrade runs
//! (or resumes): its plan is journaled, the customer approves it (`realmctl approve --phase
//! 1`), and the next `upgrade` moves the control plane, then each pool. Exit codes as
//! `install`.

use std::io::IsTerminal;

use anyhow::anyhow;

use realmctl::checks::Status;
use realmctl::engine::model::playbook::{self, Workflow};
use realmctl::engine::run::{self, UpgradeAnswer};
use realmctl::text::one_line;

use super::engine::{RunArgs, engine_err, run_options, run_playbook};
use super::{BadInput, Format, Outcome, bad, env, print_json};

/// `realmctl upgrade`.
pub fn upgrade(
    args: &RunArgs,
    to: Option<&str>,
    plan_only: bool,
    yes: bool,
    signing: &env::SigningArgs,
) -> Result<Outcome, BadInput> {
    let pb = match args.playbook.as_deref() {
        None => playbook::embedded_upgrade(),
        Some(p) => playbook::load(p).map_err(|e| bad(anyhow!(e)))?,
    };
    run::check_workflow(&pb, Workflow::Upgrade).map_err(|e| bad(anyhow!(e)))?;
    let runtime = super::runtime()?;
    let (spec, mut opts) = run_options(&runtime, args, &pb, None, None)?;
    let target = realmctl::cloud::access::definition(&spec)
        .cluster
        .kubernetes_version;
    if let Some(to) = to
        && to != target
    {
        return Err(bad(anyhow!(
            "--to {} but the spec's kubernetesVersion is {}: the spec is the one definition the cluster is built and judged from\n  help: set kubernetesVersion: \"{}\" in {}, then run upgrade again",
            one_line(to),
            one_line(&target),
            one_line(to),
            args.file.display()
        )));
    }
    if plan_only || !yes {
        let answer = match runtime.block_on(run::upgrade_plan(&args.state, &spec, &opts)) {
            Ok(a) => a,
            Err(e) => return engine_err(e),
        };
        if plan_only {
            match args.output {
                Format::Json => print_json(&answer),
                Format::Text => print!("{}", plan_text(&answer)),
            }
            return Ok(if answer.plan.is_some() {
                Outcome::Success
            } else {
                Outcome::Failed
            });
        }
        print!("{}", plan_text(&answer));
        if answer.plan.is_none() {
            return Ok(Outcome::Failed);
        }
        if !std::io::stdin().is_terminal() {
            return Err(bad(anyhow!(
                "upgrade replaces the nodes of the realm's cluster; without a terminal to confirm on, pass --yes\n  help: review `realmctl upgrade --plan -f {} --state {}` first",
                args.file.display(),
                args.state
            )));
        }
        if !super::confirm(&format!("Proceed with the upgrade of realm {}?", spec.name)) {
            super::say_err("nothing done");
            return Ok(Outcome::Failed);
        }
    }
    opts.signing_key = signing.load(&args.state)?;
    run_playbook(args, &spec, &pb, &opts)
}

/// The upgrade plan for people; every cloud-given string made one terminal-safe line.
pub fn plan_text(a: &UpgradeAnswer) -> String {
    let mut s = String::new();
    match &a.plan {
        Some(p) if p.is_empty() => s.push_str(&format!(
            "Cluster {} and every node pool already run Kubernetes {}: nothing to upgrade\n",
            one_line(&p.cluster),
            one_line(&p.to)
        )),
        Some(p) => {
            s.push_str(&format!(
                "Upgrade of cluster {} to Kubernetes {} (definition {})\n",
                one_line(&p.cluster),
                one_line(&p.to),
                a.definition
            ));
            if p.control_plane {
                s.push_str(&format!(
                    "  1. control plane {} → {}\n",
                    one_line(&p.from),
                    one_line(&p.to)
                ));
            }
            for (i, pool) in p.pools.iter().enumerate() {
                s.push_str(&format!(
                    "  {}. node pool {} {} → {}\n",
                    i + 1 + usize::from(p.control_plane),
                    one_line(&pool.name),
                    one_line(&pool.from),
                    one_line(&p.to)
                ));
            }
        }
        None => s.push_str("The upgrade is refused before any change:\n"),
    }
    s.push_str("\nPre-checks:\n");
    for c in &a.checks {
        let mark = match c.status {
            Status::Pass => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        s.push_str(&format!("  [{mark}] {}: {}\n", c.id, one_line(&c.message)));
        if c.status == Status::Fail
            && let Some(fix) = &c.fix
        {
            s.push_str(&format!("         fix: {}\n", one_line(fix)));
        }
    }
    s
}
