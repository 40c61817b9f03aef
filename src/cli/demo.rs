//! `realmctl demo`: the preflight and the install of a sample realm on this machine alone.

use std::path::Path;

use realmctl::engine::model::event::StopOutcome;

use super::{BadInput, Format, Outcome, bad};

/// Runs the demo in `dir`.
pub fn run(dir: &Path, output: Format) -> Result<Outcome, BadInput> {
    let runtime = super::runtime()?;
    let demo = runtime
        .block_on(realmctl::demo::prepare(dir))
        .map_err(bad)?;
    let report = dir.join("report.html");
    let outcome = super::preflight::run(
        &runtime,
        &demo.spec,
        Some(demo.only),
        output,
        Some(&report),
        None,
    )?;
    let walk = runtime
        .block_on(realmctl::demo::install(dir, &demo.spec))
        .map_err(bad)?;
    let install_report = dir.join("install-report.html");
    super::inspect::write_report(
        &walk.state,
        super::inspect::ReportArg::Html,
        &install_report,
    )?;
    let installed = walk.second.outcome == StopOutcome::Completed && walk.verified.ok;
    if output == Format::Text {
        println!(
            "Demo realm in {}: spec {}, report {}",
            dir.display(),
            demo.spec.display(),
            report.display()
        );
        println!(
            "Demo install in {}: run {} {} ({}); approved by {} (journal record {}); run {}: {}; journal verified ({} records, head {}); report {}",
            walk.state.display(),
            walk.first.run,
            format!("{:?}", walk.first.outcome).to_lowercase(),
            walk.first.message,
            walk.approval.by,
            walk.approval.seq,
            walk.second.run,
            walk.second.message,
            walk.verified.records,
            walk.verified
                .head
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            install_report.display()
        );
        println!(
            "DNS is not part of the demo (it needs a name server for {}); try `realmctl preflight --only dns -f <your spec>`.",
            realmctl::demo::BASE
        );
    }
    Ok(if installed { outcome } else { Outcome::Failed })
}
