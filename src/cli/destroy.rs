//! `realmctl destroy`: the destroy playbook on the command line. `--plan` prints what would be
//! deleted and kept, and why, from the journal and the cloud now, changing nothing; without it
//! the destroy runs (or resumes): its plan is journaled, the customer approves it
//! (`realmctl approve --phase 1`), and the next `destroy` deletes. Exit codes as `install`.

use std::io::IsTerminal;

use anyhow::anyhow;

use realmctl::cloud::teardown::SweepOptions;
use realmctl::engine::model::playbook::{self, Workflow};
use realmctl::engine::model::teardown::DestroyPlan;
use realmctl::engine::run;
use realmctl::text::one_line;

use super::engine::{RunArgs, engine_err, run_options, run_playbook};
use super::{BadInput, Format, Outcome, bad, env, print_json};

/// `realmctl destroy`.
pub fn destroy(
    args: &RunArgs,
    plan_only: bool,
    delete_volumes: bool,
    yes: bool,
    signing: &env::SigningArgs,
) -> Result<Outcome, BadInput> {
    let pb = match args.playbook.as_deref() {
        None => playbook::embedded_destroy(),
        Some(p) => playbook::load(p).map_err(|e| bad(anyhow!(e)))?,
    };
    run::check_workflow(&pb, Workflow::Destroy).map_err(|e| bad(anyhow!(e)))?;
    let runtime = super::runtime()?;
    let (spec, mut opts) = run_options(&runtime, args, &pb, None, None)?;
    opts.teardown = SweepOptions { delete_volumes };
    if plan_only || !yes {
        let plan = match runtime.block_on(run::destroy_plan(&args.state, &spec, &opts)) {
            Ok(p) => p,
            Err(e) => return engine_err(e),
        };
        if plan_only {
            let doc = destroy_policy(&spec)?;
            match args.output {
                Format::Json => {
                    let mut v = serde_json::to_value(&plan).expect("the plan is JSON");
                    v["policy"] = serde_json::json!({"kind": doc.0, "document": doc.1});
                    print_json(&v)
                }
                Format::Text => print!(
                    "{}\nLeast-privilege {} destroy needs (`destroy --policy` prints it alone):\n{}",
                    plan_text(&plan),
                    doc.0,
                    doc.1
                ),
            }
            return Ok(Outcome::Success);
        }
        if !std::io::stdin().is_terminal() {
            return Err(bad(anyhow!(
                "destroy deletes the realm's resources in the customer's cloud; without a terminal to confirm on, pass --yes\n  help: review `realmctl destroy --plan -f {} --state {}` first",
                args.file.display(),
                args.state
            )));
        }
        print!("{}", plan_text(&plan));
        if !super::confirm(&format!("Proceed with the destroy of realm {}?", spec.name)) {
            super::say_err("nothing done");
            return Ok(Outcome::Failed);
        }
    }
    opts.signing_key = signing.load(&args.state)?;
    run_playbook(args, &spec, &pb, &opts)
}

/// `realmctl destroy --policy`: the least-privilege document destroy needs, from the spec
/// alone (the identity may not yet hold what `--plan` asks the cloud with).
pub fn policy(args: &RunArgs) -> Result<Outcome, BadInput> {
    let spec = super::spec::load(&args.file)?;
    let (kind, doc) = destroy_policy(&spec)?;
    match args.output {
        Format::Json => print_json(&serde_json::json!({"kind": kind, "document": doc})),
        Format::Text => print!("{doc}"),
    }
    Ok(Outcome::Success)
}

/// What the destroy's least-privilege document is, and the document.
fn destroy_policy(spec: &realmctl::spec::Spec) -> Result<(&'static str, String), BadInput> {
    let doc = realmctl::cloud::permissions::policy_document_for(
        spec,
        realmctl::requirements::ForWorkflow::Destroy,
    )
    .map_err(|e| bad(anyhow!(e)))?;
    Ok((realmctl::cloud::profile::of(spec).policy().kind, doc))
}

/// The destroy plan for people; every cloud-given string made one terminal-safe line.
pub fn plan_text(p: &DestroyPlan) -> String {
    let mut s = format!("Destroy plan for realm {}\n", one_line(&p.realm));
    s.push_str(&format!("\nDeleted ({}):\n", p.delete.len()));
    if p.delete.is_empty() {
        s.push_str("  nothing\n");
    }
    for f in &p.delete {
        s.push_str(&format!("  {}\n", one_line(&f.to_string())));
    }
    if !p.swept_clusters.is_empty() {
        let marks: Vec<String> = p.marks.iter().map(|m| one_line(&m.to_string())).collect();
        s.push_str(&format!(
            "  and, when the sweep runs, whatever else carries one of these tags of cluster {}: {}{}\n",
            one_line(&p.swept_clusters.join(", ")),
            marks.join(", "),
            if p.options.delete_volumes {
                " (volumes included: --delete-volumes)"
            } else {
                " (volumes kept)"
            }
        ));
    }
    s.push_str(&format!("\nKept ({}):\n", p.keep.len()));
    if p.keep.is_empty() {
        s.push_str("  nothing found to keep\n");
    }
    for k in &p.keep {
        s.push_str(&format!(
            "  {}: {}\n",
            one_line(&k.resource.to_string()),
            one_line(&k.why)
        ));
    }
    if !p.gone.is_empty() {
        s.push_str(&format!(
            "\nAlready gone: {}\n",
            one_line(&p.gone.join(", "))
        ));
    }
    s.push_str(&match &p.retire {
        Some(at) => format!(
            "\nRetired first: the realm in the {} (every later deployment denied, its config final); its decision log is exported to the artifacts before anything is deleted\n",
            one_line(&at.describe())
        ),
        None => "\nNo enforcement core to retire: the install never seeded one\n".to_owned(),
    });
    s.push_str("\nNever deleted by destroy:\n");
    for n in &p.never {
        s.push_str(&format!("  {}\n", one_line(n)));
    }
    s
}
