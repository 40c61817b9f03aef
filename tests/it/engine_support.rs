//! Shared helpers of the install-engine tests (issue #4): a loopback-only realm, playbooks,
//! and running the binary.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use realmctl::engine::io::journal::Journal;
use realmctl::engine::model::event::Event;
use serde_json::Value;

use crate::common::{Pki, SpecOpts, required, write_spec};

/// The binary, with a fixed operator and no inherited proxy credentials.
pub fn realmctl() -> Command {
    crate::common::realmctl()
}

/// stdout and stderr as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A realm spec (certificates from a fresh test CA) in `dir`.
pub fn spec(dir: &Path, opts: SpecOpts) -> PathBuf {
    let pki = Pki::new();
    write_spec(dir, &pki.leaf(&required()), &pki.root_pem(), &opts)
}

/// The phases of a playbook as YAML, one line each: `(number, owner, steps, gates)`.
pub fn playbook(dir: &Path, phases: [&str; 6]) -> PathBuf {
    let titles = [
        "Subscription preparation",
        "Sharing credentials",
        "Validation of access",
        "File and script storage",
        "Explanation of roles and resources",
        "Execution of installation steps",
    ];
    let owners = [
        "customer", "customer", "digibee", "digibee", "digibee", "digibee",
    ];
    let mut s = String::from("apiVersion: realmctl/v1\nkind: Playbook\nname: test\nphases:\n");
    for (i, body) in phases.iter().enumerate() {
        s.push_str(&format!(
            "  - {{number: {n}, id: p{n}, title: {t}, owner: {o}{sep}{body}}}\n",
            n = i + 1,
            t = titles[i],
            o = owners[i],
            sep = if body.is_empty() { "" } else { ", " },
        ));
    }
    let path = dir.join("playbook.yaml");
    std::fs::write(&path, s).unwrap();
    path
}

/// A playbook whose phases are empty except the given `(phase number, steps YAML)`.
pub fn sparse_playbook(dir: &Path, phases: &[(usize, String)]) -> PathBuf {
    let mut all: [String; 6] = Default::default();
    for (n, body) in phases {
        all[n - 1] = format!("steps: [{body}]");
    }
    playbook(dir, all.each_ref().map(String::as_str))
}

/// Phase 5 as every playbook that builds a cluster has it: the roles-and-resources document
/// (which renders the cluster definition) behind the customer's gate.
pub const ROLES_GATE: &str = "steps: [{id: roles, action: roles.render}], gates: [{id: ack, owner: customer, description: The customer accepts the roles and resources.}]";

/// A playbook whose phases are empty except phase 5 ([`ROLES_GATE`]) and the given `(phase
/// number, steps YAML)`: what a cloud step needs for its definition to be approved.
pub fn gated_playbook(dir: &Path, phases: &[(usize, String)]) -> PathBuf {
    let mut all: [String; 6] = Default::default();
    all[4] = ROLES_GATE.to_owned();
    for (n, body) in phases {
        all[n - 1] = format!("steps: [{body}]");
    }
    playbook(dir, all.each_ref().map(String::as_str))
}

/// The loopback-only version of the real playbook: everything but DNS/outbound (which need
/// peers) and the cloud steps (not in this build).
pub fn local_playbook(dir: &Path) -> PathBuf {
    playbook(
        dir,
        [
            "steps: [{id: spec, action: spec.validate}, {id: vpn, action: vpn.prerequisites}, {id: node-image, action: node_image.acceptance}]",
            "",
            "steps: [{id: certificate, action: checks.certificate}]",
            "steps: [{id: artifacts, action: artifacts.render}]",
            ROLES_GATE,
            "steps: [{id: quota-seed, action: quota.seed}]",
        ],
    )
}

/// `install --yes --output json` with extra args; returns (exit code, JSON or Null, stderr).
pub fn install(spec: &Path, state: &Path, pb: &Path, extra: &[&str]) -> (i32, Value, String) {
    let o = realmctl()
        .args(["install", "--yes", "--output", "json", "-f"])
        .arg(spec)
        .arg("--state")
        .arg(state)
        .arg("--playbook")
        .arg(pb)
        .args(extra)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    let v = serde_json::from_str(&out).unwrap_or(Value::Null);
    (o.status.code().unwrap_or(-1), v, err)
}

/// `install` as the cloud team and customer run it together: a run that stops at the phase-5
/// gate is approved by the customer and run again. Returns the last run's result.
pub fn install_approved(
    spec: &Path,
    state: &Path,
    pb: &Path,
    extra: &[&str],
) -> (i32, Value, String) {
    let (code, v, err) = install(spec, state, pb, extra);
    if code != 3 {
        return (code, v, err);
    }
    let o = approve(state, 5);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    install(spec, state, pb, extra)
}

/// `approve --phase N`.
pub fn approve(state: &Path, phase: u8) -> Output {
    realmctl()
        .args([
            "approve",
            "--by",
            "Ann Customer",
            "--phase",
            &phase.to_string(),
            "--state",
        ])
        .arg(state)
        .output()
        .unwrap()
}

/// The step ids an install run executed.
pub fn executed(v: &Value) -> Vec<String> {
    v["executed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// `status --output json`.
pub fn status(state: &Path) -> Value {
    let o = realmctl()
        .args(["status", "--output", "json", "--state"])
        .arg(state)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `(step id, status)` of every step, from `status`.
pub fn step_statuses(state: &Path) -> Vec<(String, String)> {
    statuses_of(&status(state))
}

/// `(step id, status)` of every step of a `status --output json` answer.
pub fn statuses_of(v: &Value) -> Vec<(String, String)> {
    v["report"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["steps"].as_array().unwrap().clone())
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `audit verify`: (exit code, stdout).
pub fn verify(state: &Path, checkpoint: Option<&str>) -> (i32, String) {
    let mut c = realmctl();
    c.args(["audit", "verify", "--state"]).arg(state);
    if let Some(cp) = checkpoint {
        c.args(["--checkpoint", cp]);
    }
    let o = c.output().unwrap();
    (o.status.code().unwrap_or(-1), text(&o).0)
}

/// Who acts next, from `install --output json`, as `owner: action`.
pub fn next_text(v: &Value) -> String {
    format!(
        "{}: {}",
        v["next"]["owner"].as_str().unwrap_or("(none)"),
        v["next"]["action"].as_str().unwrap_or("")
    )
}

/// The cloud phases without DNS, outbound or certificate peers, phase 6 being `phase6`.
fn cloud_phases(dir: &Path, phase6: &str) -> PathBuf {
    playbook(
        dir,
        [
            "steps: [{id: spec, action: spec.validate}, {id: cloud-account, action: cloud.account}, {id: node-image, action: node_image.acceptance}]",
            "steps: [{id: credentials, action: cloud.credentials}]",
            "steps: [{id: permissions, action: cloud.permissions}]",
            "steps: [{id: artifacts, action: artifacts.render}]",
            ROLES_GATE,
            phase6,
        ],
    )
}

/// [`cloud_playbook`] ending as the embedded one does: the realm's own core seeded, the realm
/// live.
pub fn cloud_playbook_live(dir: &Path) -> PathBuf {
    cloud_phases(
        dir,
        "steps: [{id: cluster, action: cluster.apply}, {id: cluster-ready, action: cluster.wait}, {id: platform, action: platform.apply}, {id: quota-seed, action: quota.seed}, {id: realm-live, action: realm.live}]",
    )
}

/// Cloud phases without DNS, outbound or certificate peers.
pub fn cloud_playbook(dir: &Path) -> PathBuf {
    cloud_phases(
        dir,
        "steps: [{id: cluster, action: cluster.apply}, {id: cluster-ready, action: cluster.wait}, {id: platform, action: platform.apply}, {id: quota-seed, action: quota.seed}]",
    )
}

/// The journal's events, in order (empty when there is no journal yet).
pub fn events<S: realmctl::engine::io::state::AsState + ?Sized>(state: &S) -> Vec<Event> {
    match Journal::open_read_only(state) {
        Ok(j) => j
            .records()
            .unwrap()
            .iter()
            .map(|r| r.event().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The step started last and never ended (no success, skip, wait or failure after its start):
/// where a kill "in the middle of a step" leaves the journal.
pub fn unfinished_step(events: &[Event]) -> Option<String> {
    let mut open: Option<String> = None;
    for e in events {
        match e {
            Event::StepStarted { step, .. } => open = Some(step.clone()),
            Event::StepSucceeded { step, .. }
            | Event::StepSkipped { step, .. }
            | Event::StepWaiting { step, .. }
            | Event::StepFailed { step, .. }
                if open.as_ref() == Some(step) =>
            {
                open = None
            }
            Event::RunStarted { .. } => open = None,
            _ => {}
        }
    }
    open
}

/// Asserts that a kill at `point` (`STEP:started|acted|succeeded`, `STEP:at:LABEL`) landed
/// where it was aimed, as the journal shows: inside the step (started, never ended) for a kill
/// after its start, after its action or at a label inside it; right after its success record
/// (or its skip record: the same kill point follows both) for `succeeded` — with the next
/// step's start when the success went out in one commit with it.
pub fn assert_kill_landed<S: realmctl::engine::io::state::AsState + ?Sized>(
    state: &S,
    point: &str,
) {
    assert_kill_landed_in(&events(state), point);
}

/// [`assert_kill_landed`] on the events a journal held right after the kill.
pub fn assert_kill_landed_in(evs: &[Event], point: &str) {
    let (step, at) = match point.split_once(":at:") {
        Some((step, _)) => (step, "at"),
        None => point
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("no rule for the kill point {point}")),
    };
    match at {
        "started" | "acted" | "at" => assert_eq!(
            unfinished_step(evs).as_deref(),
            Some(step),
            "the kill at {point} landed inside {step}"
        ),
        "succeeded" => {
            // The step's success (or skip) is the last record, or the one before the next
            // step's first start, which a success shares its commit with (docs/engine.md).
            let tail = match evs {
                [
                    ..,
                    Event::StepSucceeded { phase, .. },
                    Event::StepStarted {
                        step: next,
                        phase: p,
                        attempt: 1,
                        ..
                    },
                ] if p == phase && next != step => {
                    assert_eq!(
                        unfinished_step(evs).as_deref(),
                        Some(next.as_str()),
                        "{point}"
                    );
                    &evs[..evs.len() - 1]
                }
                _ => {
                    assert_eq!(unfinished_step(evs), None, "{point}");
                    evs
                }
            };
            assert!(
                matches!(tail.last(), Some(Event::StepSucceeded { step: s, .. } | Event::StepSkipped { step: s, .. }) if s == step),
                "the kill at {point} landed right after {step}'s success (or skip): {:?}",
                evs.iter()
                    .rev()
                    .take(2)
                    .map(|e| e.kind())
                    .collect::<Vec<_>>()
            );
        }
        _ => panic!("no rule for the kill point {point}"),
    }
}
