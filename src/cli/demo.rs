//! `realmctl demo`: the preflight and the install of a sample realm on this machine alone — a
//! simulation, said so plainly before anything runs.

use std::io::Write;
use std::path::Path;

use realmctl::engine::model::event::StopOutcome;
use realmctl::spec::Provider;

use super::preflight::CloudFrom;
use super::progress::Progress;
use super::{BadInput, Format, Outcome, bad};

/// Runs the demo of `cloud` in `dir`.
pub fn run(dir: &Path, cloud: Provider, output: Format) -> Result<Outcome, BadInput> {
    let Some(cloud_demo) = super::clouds::entry(cloud).demo else {
        let have: Vec<String> = Provider::ALL
            .into_iter()
            .filter(|p| super::clouds::entry(*p).demo.is_some())
            .map(|p| p.to_string())
            .collect();
        return Err(bad(anyhow::anyhow!(
            "this realmctl has no {cloud} client, so it has no {cloud} demo either (the {cloud} stand-in arrives with the {cloud} client)\n  help: {}",
            if have.is_empty() {
                "build with the default features".to_owned()
            } else {
                format!(
                    "run `realmctl demo --cloud {}`",
                    have.join("` or `realmctl demo --cloud ")
                )
            }
        )));
    };
    let runtime = super::runtime()?;
    let demo = runtime
        .block_on(realmctl::demo::prepare(dir, cloud_demo))
        .map_err(bad)?;
    if output == Format::Text {
        println!(
            "SIMULATION: nothing here touches a real cloud. The {} API, DNS for {} and the outbound hosts \
             are stand-ins on this machine's loopback ({}); {}.",
            realmctl::cloud::profile::for_provider(cloud).title(),
            realmctl::demo::BASE,
            demo.standin.url(),
            demo.how
        );
    }
    let report = dir.join("report.html");
    let checked = super::preflight::check(
        &runtime,
        &demo.spec,
        None,
        output,
        Some(&report),
        None,
        CloudFrom::Given(demo.cloud.clone()),
        realmctl::preflight::ACCESS_STEP_DEADLINE,
    )?;
    if output == Format::Text {
        let _ = write!(anstream::stdout(), "{}", realmctl::report::text(&checked));
    }
    let progress = Progress::new(output == Format::Text);
    let walk = runtime.block_on(realmctl::demo::install(dir, &demo, &progress));
    progress.finish();
    let walk = walk.map_err(bad)?;
    let install_report = dir.join("install-report.html");
    super::inspect::write_report(
        &walk.state.clone().into(),
        super::inspect::ReportArg::Html,
        &install_report,
    )?;
    let last = walk.vpn.as_ref().map_or(&walk.second, |(_, r)| r);
    let installed = last.outcome == StopOutcome::Completed && walk.verified.ok;
    let clusters = demo.standin.clusters();
    match output {
        Format::Text => {
            println!(
                "Demo realm in {}: spec {}, preflight report {}",
                dir.display(),
                demo.spec.display(),
                report.display()
            );
            println!(
                "Demo install in {}: run {} {} ({}); approved by {} (journal record {}{}); run {}: {}",
                walk.state.display(),
                walk.first.run,
                format!("{:?}", walk.first.outcome).to_lowercase(),
                walk.first.message,
                walk.approval.by,
                walk.approval.seq,
                walk.approval
                    .customer_key
                    .as_ref()
                    .map(|k| format!(", signed offline by the customer with {k}"))
                    .unwrap_or_default(),
                walk.second.run,
                walk.second.message,
            );
            if let Some((a, r)) = &walk.vpn {
                println!(
                    "Realm VPN: the customer's side confirmed by {} (journal record {}); run {}: {}",
                    a.by, a.seq, r.run, r.message
                );
            }
            println!(
                "Simulated {} cluster(s): {}; journal {} ({} records, each signed: {}; head {}); install report {}",
                cloud,
                if clusters.is_empty() {
                    "none".to_owned()
                } else {
                    clusters.join(", ")
                },
                if walk.verified.ok {
                    "verified"
                } else {
                    "FAILED verification"
                },
                walk.verified.records,
                walk.verified
                    .signed_by
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                walk.verified
                    .head
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                install_report.display()
            );
        }
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "simulation": true,
                "preflight": checked,
                "cloud": cloud.to_string(),
                "spec": demo.spec,
                "state": walk.state,
                "installed": installed,
                "clusters": clusters,
                "journal": {"ok": walk.verified.ok, "records": walk.verified.records, "signaturesChecked": walk.verified.signatures_checked, "signedBy": walk.verified.signed_by, "customerKeysChecked": walk.verified.customer_keys_checked, "customerApprovals": walk.verified.customer_approvals},
                "reports": {"preflight": report, "install": install_report},
            })
        ),
    }
    Ok(if installed && !checked.failed() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}
