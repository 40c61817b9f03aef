//! Crash and lock tests of the install engine (issues #4 and #11), with test-only actions that
//! count their side effects (`--features test-actions`).
//!
//! SIGKILL lands at every step boundary (after the start is journaled, after the action acted,
//! after the success is journaled), at a failed attempt and its retry, at a gate (before and
//! after it is journaled), around the run's stop record, after an approval, inside the real
//! `artifacts.render` (between two stored files) and around `quota.seed`, and at random points
//! inside steps. Every kill is checked to have landed where it was aimed (the journal's last
//! record shows it); random kills must include kills in the middle of a step. After unlocking
//! the stale lock (signed, like every record here) and resuming, the run ends in the same state
//! as an uninterrupted one, no step that had succeeded runs again, every effect exists exactly
//! once, and every record verifies against the operator's public key. Separately, processes
//! racing for one state folder never hold the lock together, and every racer but the winners
//! is refused because the folder is locked.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::SpecOpts;
use crate::engine_support::*;
use realmctl::engine::model::event::Event;

pub(crate) const STEPS: [&str; 10] = ["a1", "a2", "b1", "c1", "c2", "d1", "e1", "e2", "f1", "f2"];

pub(crate) fn effect_playbook(dir: &Path, sleep_ms: u64) -> std::path::PathBuf {
    let d = dir.join("fx");
    std::fs::create_dir_all(&d).unwrap();
    let step = |id: &str| {
        format!(
            "{{id: {id}, action: test.effect, params: {{dir: \"{}\", sleepMs: {sleep_ms}}}}}",
            d.display()
        )
    };
    let steps = |ids: &[&str]| {
        format!(
            "steps: [{}]",
            ids.iter().map(|i| step(i)).collect::<Vec<_>>().join(", ")
        )
    };
    playbook(
        dir,
        [
            &steps(&["a1", "a2"]),
            &steps(&["b1"]),
            &steps(&["c1", "c2"]),
            &steps(&["d1"]),
            &steps(&["e1", "e2"]),
            &steps(&["f1", "f2"]),
        ],
    )
}

pub(crate) fn invocations(dir: &Path) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    if let Ok(t) = std::fs::read_to_string(dir.join("fx/invocations.log")) {
        for l in t.lines() {
            *m.entry(l.trim_start_matches("invoke ").to_owned())
                .or_insert(0) += 1;
        }
    }
    m
}

pub(crate) fn effects(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("fx/effects"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn succeeded(state: &Path) -> Vec<String> {
    // Killed before the run's first record: no journal, or an empty one ("no install has run").
    let o = realmctl()
        .args(["status", "--output", "json", "--state"])
        .arg(state)
        .output()
        .unwrap();
    if o.status.code() == Some(2) {
        let err = text(&o).1;
        assert!(
            err.contains("no install has run") || err.contains("holds no install journal"),
            "{err}"
        );
        return Vec::new();
    }
    step_statuses(state)
        .into_iter()
        .filter(|(_, s)| s == "succeeded")
        .map(|(id, _)| id)
        .collect()
}

fn stale_lock_id(state: &Path) -> Option<String> {
    let t = std::fs::read_to_string(state.join("lock.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&t).ok()?;
    Some(v["lockId"].as_str()?.to_owned())
}

/// Takes over the stale lock, signing the takeover record with `key`.
fn unlock(state: &Path, key: &Path) {
    if let Some(id) = stale_lock_id(state) {
        let o = realmctl()
            .args(["unlock", "--lock-id", &id, "--state"])
            .arg(state)
            .arg("--signing-key")
            .arg(key)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    }
}

/// The kind of the journal's last record.
fn last_kind(state: &Path) -> String {
    events(state)
        .last()
        .map(|e| e.kind().as_str().to_owned())
        .unwrap_or_default()
}

struct Realm {
    dir: tempfile::TempDir,
    spec: std::path::PathBuf,
    pb: std::path::PathBuf,
    /// The operator's signing key (outside the state folder).
    key: std::path::PathBuf,
}

/// A signing key made with `audit keygen` in `dir/keys`.
fn keygen(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    let key = dir.join("keys/operator.key");
    let o = realmctl()
        .args(["audit", "keygen", "-o"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    key
}

impl Realm {
    fn new(sleep_ms: u64) -> Self {
        Self::with(|dir| effect_playbook(dir, sleep_ms))
    }
    /// A realm with a fresh spec, signing key and the playbook `playbook` writes in its folder.
    fn with(playbook: impl FnOnce(&Path) -> PathBuf) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), SpecOpts::default());
        let pb = playbook(dir.path());
        let key = keygen(dir.path());
        Realm { dir, spec, pb, key }
    }
    /// `audit verify --public-key` of the operator's key: (exit code, stdout).
    fn verify_signed(&self) -> (i32, String) {
        let o = realmctl()
            .args(["audit", "verify", "--state"])
            .arg(self.state())
            .arg("--public-key")
            .arg(realmctl::signing::public_path(&self.key))
            .output()
            .unwrap();
        (o.status.code().unwrap_or(-1), text(&o).0)
    }
    /// `approve --phase 5`, signed; `kill_at` for the crash tests.
    fn approve(&self, kill_at: Option<&str>) -> std::process::Output {
        let mut c = realmctl();
        c.args(["approve", "--by", "Ann Customer", "--phase", "5", "--state"])
            .arg(self.state())
            .arg("--signing-key")
            .arg(&self.key);
        if let Some(k) = kill_at {
            c.env("REALMCTL_TEST_KILL_AT", k);
        }
        c.output().unwrap()
    }
    fn state(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }
    /// The install command as a plain process (for killing and racing).
    fn spawn(&self, operator: &str, stderr: std::process::Stdio) -> std::process::Child {
        crate::common::realmctl_std()
            .env("REALMCTL_OPERATOR", operator)
            .args(["install", "--yes", "--output", "json", "-f"])
            .arg(&self.spec)
            .arg("--state")
            .arg(self.state())
            .arg("--playbook")
            .arg(&self.pb)
            .arg("--signing-key")
            .arg(&self.key)
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap()
    }
    fn cmd(&self) -> assert_cmd::Command {
        let mut c = realmctl();
        c.args(["install", "--yes", "--output", "json", "-f"])
            .arg(&self.spec)
            .arg("--state")
            .arg(self.state())
            .arg("--playbook")
            .arg(&self.pb)
            .arg("--signing-key")
            .arg(&self.key);
        c
    }
    /// Final (step, status) list, the effects and the audit result (every record signed by
    /// the operator's key).
    fn outcome(&self) -> (Vec<(String, String)>, Vec<String>, i32) {
        let (code, out) = self.verify_signed();
        assert!(code != 0 || out.contains("every record signed"), "{out}");
        (step_statuses(&self.state()), effects(self.dir.path()), code)
    }
}

fn baseline() -> (Vec<(String, String)>, Vec<String>, i32) {
    let r = Realm::new(0);
    let o = r.cmd().output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let inv = invocations(r.dir.path());
    assert!(inv.values().all(|n| *n == 1), "{inv:?}");
    let outcome = r.outcome();
    // What every resumed run is compared with verifies, every record signed.
    assert_eq!(outcome.2, 0, "the uninterrupted run's journal verifies");
    outcome
}

#[test]
fn sigkill_at_every_step_boundary_resumes_to_the_same_state_without_repeating_effects() {
    let base = baseline();
    assert_eq!(
        base.1,
        STEPS.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
    for step in STEPS {
        for point in ["started", "acted", "succeeded"] {
            let r = Realm::new(0);
            let o = r
                .cmd()
                .env("REALMCTL_TEST_KILL_AT", format!("{step}:{point}"))
                .output()
                .unwrap();
            assert_eq!(o.status.signal(), Some(9), "{step}:{point} {:?}", text(&o));
            let done_before = succeeded(&r.state());
            let inv_before = invocations(r.dir.path());
            // The kill landed where it was aimed.
            crate::engine_support::assert_kill_landed(&r.state(), &format!("{step}:{point}"));
            unlock(&r.state(), &r.key);
            let o = r.cmd().output().unwrap();
            assert_eq!(o.status.code(), Some(0), "{step}:{point} {:?}", text(&o));
            assert_eq!(r.outcome(), base, "{step}:{point}");
            let inv = invocations(r.dir.path());
            for s in &done_before {
                assert_eq!(
                    inv[s], inv_before[s],
                    "{s} succeeded before the kill at {step}:{point} and ran again"
                );
            }
            for (s, n) in &inv {
                let expected = if s == step && point == "acted" { 2 } else { 1 };
                assert_eq!(*n, expected, "{s} after a kill at {step}:{point}: {inv:?}");
            }
            let first =
                std::fs::read_to_string(r.dir.path().join("fx/effects").join(step)).unwrap();
            let expected_run = if point == "started" { "run 2" } else { "run 1" };
            assert_eq!(
                first.trim(),
                expected_run,
                "{step}:{point}: effect made once, by the right run"
            );
        }
    }
}

/// Regression (seen in CI): a kill after the journal file exists but before the run's first
/// record leaves an empty journal; status says no run happened, and the resume completes.
#[test]
fn sigkill_before_the_first_record_resumes() {
    let base = baseline();
    let r = Realm::new(0);
    let o = r
        .cmd()
        .env("REALMCTL_TEST_KILL_AT", "opened")
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(9), "{:?}", text(&o));
    assert!(succeeded(&r.state()).is_empty());
    assert!(
        events(&r.state()).is_empty(),
        "killed before the first record"
    );
    unlock(&r.state(), &r.key);
    let o = r.cmd().output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(r.outcome(), base);
}

/// A tiny deterministic generator, so a failure can be replayed from its seed.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn sigkill_at_random_points_inside_steps_never_repeats_a_succeeded_step() {
    let base = baseline();
    let (mut all_kills, mut mid_step) = (0, 0);
    for seed in 1..=6u64 {
        let mut rng = Lcg(seed);
        let r = Realm::new(40);
        let mut kills = 0;
        let mut guarded: BTreeMap<String, usize> = BTreeMap::new();
        loop {
            let mut child = r.spawn("test-operator", std::process::Stdio::null());
            let finished = if kills < 4 {
                std::thread::sleep(Duration::from_millis(rng.below(300)));
                match child.try_wait().unwrap() {
                    Some(s) => Some(s),
                    None => {
                        child.kill().unwrap();
                        child.wait().unwrap();
                        kills += 1;
                        None
                    }
                }
            } else {
                Some(child.wait().unwrap())
            };
            if let Some(s) = finished {
                assert_eq!(s.code(), Some(0), "seed {seed}");
                break;
            }
            all_kills += 1;
            if unfinished_step(&events(&r.state())).is_some() {
                mid_step += 1;
            }
            let inv = invocations(r.dir.path());
            for s in succeeded(&r.state()) {
                guarded.entry(s.clone()).or_insert(inv[&s]);
            }
            unlock(&r.state(), &r.key);
        }
        assert_eq!(r.outcome(), base, "seed {seed}");
        let inv = invocations(r.dir.path());
        for (s, n) in &guarded {
            assert_eq!(
                inv[s], *n,
                "seed {seed}: {s} ran again after it had succeeded"
            );
        }
        let total: usize = inv.values().sum();
        assert!(
            total <= STEPS.len() + kills,
            "seed {seed}: {inv:?} with {kills} kills"
        );
    }
    // Steps sleep 40 ms around their effect, so most random kills land inside one; a test
    // whose kills all fell between steps (or before the first record) would prove little.
    assert!(
        mid_step * 2 >= all_kills && mid_step > 0,
        "only {mid_step} of {all_kills} kills landed in the middle of a step"
    );
}

#[test]
fn racing_installs_never_hold_the_lock_together() {
    for round in 0..4 {
        let r = Realm::new(15);
        let children: Vec<_> = (0..6)
            .map(|_| r.spawn("racer", std::process::Stdio::piped()))
            .collect();
        let (mut winners, mut refused) = (0, 0);
        for c in children {
            let o = c.wait_with_output().unwrap();
            match o.status.code() {
                Some(0) => winners += 1,
                Some(1) => {
                    let err = String::from_utf8_lossy(&o.stderr);
                    assert!(err.contains("is locked"), "round {round}: {err}");
                    refused += 1;
                }
                other => panic!("round {round}: exit {other:?}"),
            }
        }
        assert!(winners >= 1, "round {round}");
        // Six start together and an install takes 150 ms or more: some must have been refused.
        assert!(refused >= 1, "round {round}: no racer was refused");
        assert_eq!(winners + refused, 6);
        // Never two holders: in the journal, every run stops before the next one starts.
        let conn = rusqlite::Connection::open(r.state().join("journal.db")).unwrap();
        let kinds: Vec<String> = conn
            .prepare("SELECT kind FROM records ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .filter(|k: &String| k == "runStarted" || k == "runStopped")
            .collect();
        assert_eq!(kinds.len(), 2 * winners, "round {round}: {kinds:?}");
        for pair in kinds.chunks(2) {
            assert_eq!(
                pair,
                ["runStarted", "runStopped"],
                "round {round}: {kinds:?}"
            );
        }
        assert_eq!(r.verify_signed().0, 0);
        assert_eq!(
            invocations(r.dir.path()).values().sum::<usize>(),
            STEPS.len()
        );
    }
}

/// A playbook of effect steps with a flaky step (one retryable failure, then success) in
/// phase 3 and a customer gate in phase 5.
fn gated_playbook(dir: &Path) -> PathBuf {
    let d = dir.join("fx");
    std::fs::create_dir_all(&d).unwrap();
    let fx = |id: &str| {
        format!(
            "{{id: {id}, action: test.effect, params: {{dir: \"{}\", sleepMs: 0}}}}",
            d.display()
        )
    };
    let flaky = format!(
        "{{id: c1, action: test.flaky, retries: 3, params: {{dir: \"{}\", failures: 1}}}}",
        d.display()
    );
    playbook(
        dir,
        [
            &format!("steps: [{}]", fx("a1")),
            &format!("steps: [{}]", fx("b1")),
            &format!("steps: [{flaky}, {}]", fx("c2")),
            &format!("steps: [{}]", fx("d1")),
            &format!(
                "steps: [{}], gates: [{{id: ack, owner: customer, description: The customer accepts.}}]",
                fx("e1")
            ),
            &format!("steps: [{}]", fx("f1")),
        ],
    )
}

/// Drives a realm to the end: install, approve at the gate, install again; `kill` names the
/// one command (by its order: `install` runs and `approve`) that gets `REALMCTL_TEST_KILL_AT`.
/// Returns the journal's events right after the kill; `on_kill` looks at the realm then.
fn drive(
    r: &Realm,
    kill_at: &str,
    kill_approve: bool,
    on_kill: &mut dyn FnMut(&Realm),
) -> Vec<Event> {
    let mut after_kill = None;
    for _ in 0..6 {
        let mut c = r.cmd();
        if after_kill.is_none() && !kill_approve {
            c.env("REALMCTL_TEST_KILL_AT", kill_at);
        }
        let o = c.output().unwrap();
        match (o.status.code(), o.status.signal()) {
            (None, Some(9)) => {
                after_kill = Some(events(&r.state()));
                on_kill(r);
                unlock(&r.state(), &r.key);
            }
            (Some(3), _) => {
                let kill = (after_kill.is_none() && kill_approve).then_some(kill_at);
                let a = r.approve(kill);
                if kill.is_some() {
                    assert_eq!(a.status.signal(), Some(9), "{:?}", text(&a));
                    after_kill = Some(events(&r.state()));
                    on_kill(r);
                } else {
                    assert!(a.status.success(), "{:?}", text(&a));
                }
            }
            (Some(0), _) => break,
            other => panic!("{kill_at}: {other:?} {:?}", text(&o)),
        }
    }
    after_kill.unwrap_or_else(|| panic!("{kill_at}: the kill never happened"))
}

#[test]
fn sigkill_at_gates_approvals_retries_and_the_stop_record_resumes_to_the_same_state() {
    let fresh = || Realm::with(gated_playbook);
    // The uninterrupted run: install (waits at the gate), approve, install.
    let base = {
        let r = fresh();
        drive_plain(&r);
        r.outcome()
    };
    assert_eq!(base.2, 0);
    let kind = |e: &Event| e.kind().as_str().to_owned();
    // (kill point, on approve?, what the journal's last record must be right after the kill)
    let cases: [(&str, bool, &str); 8] = [
        ("c1:failed", false, "stepFailed"),
        ("c1:retried", false, "stepRetry"),
        ("gate:5:checked", false, "stepSucceeded"),
        ("gate:5:waiting", false, "gateWaiting"),
        ("stopping", false, "gateWaiting"),
        ("stopped", false, "runStopped"),
        ("approved", true, "approved"),
        ("f1:started", false, "stepStarted"),
    ];
    for (point, on_approve, last) in cases {
        let r = fresh();
        let evs = drive(&r, point, on_approve, &mut |_| {});
        assert_eq!(
            evs.last().map(kind).as_deref(),
            Some(last),
            "{point}: the kill did not land where it was aimed"
        );
        if point == "c1:retried" {
            // Killed during the back-off: the retry is recorded, its attempt never started.
            assert_eq!(unfinished_step(&evs), None, "{point}");
        }
        if point == "stopping" {
            assert!(
                !evs.iter().any(|e| matches!(e, Event::RunStopped { .. })),
                "{point}: the stop record was written before the kill"
            );
        }
        assert_eq!(r.outcome(), base, "{point}");
        let inv = invocations(r.dir.path());
        for (s, n) in &inv {
            assert_eq!(*n, 1, "{point}: {s} ran {n} times: {inv:?}");
        }
        // The approval made before a kill is not asked for again.
        let approvals = events(&r.state())
            .iter()
            .filter(|e| matches!(e, Event::Approved { .. }))
            .count();
        assert_eq!(approvals, 1, "{point}");
    }
}

/// The real actions under SIGKILL: `artifacts.render` killed between two stored files and
/// around its journal records, `quota.seed` around its ledger write. After the resume the
/// artifact checksums hold (`audit verify`), the quota ledger holds the realm's config once,
/// and the steps end as in an uninterrupted run.
#[test]
fn sigkill_inside_the_real_artifacts_and_quota_steps_resumes_to_the_same_state() {
    let fresh = || Realm::with(local_playbook);
    let quota = |r: &Realm| {
        let o = realmctl()
            .args([
                "quota", "status", "--output", "json", "--realm", "acme", "--db",
            ])
            .arg(r.state().join("quota.db"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{:?}", text(&o));
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_object_mut().unwrap().remove("decisions");
        v
    };
    let artifacts = |r: &Realm| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(r.state().join("artifacts/run-1"))
            .map(|d| {
                d.map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let base = {
        let r = fresh();
        drive_plain(&r);
        (r.outcome(), quota(&r), artifacts(&r))
    };
    assert_eq!(base.0.2, 0);
    assert!(base.2.len() >= 5, "{:?}", base.2.len());
    for (point, check) in [
        ("artifacts:started", "started"),
        ("artifacts:at:stored-1", "partial"),
        ("artifacts:at:stored-3", "partial"),
        ("artifacts:acted", "acted"),
        ("artifacts:succeeded", "succeeded"),
        ("quota-seed:started", "started"),
        ("quota-seed:acted", "acted"),
        ("quota-seed:succeeded", "succeeded"),
    ] {
        let r = fresh();
        let mut stored_at_kill = 0;
        let evs = drive(&r, point, false, &mut |r| {
            let dir = r.state().join("artifacts");
            if dir.exists() {
                stored_at_kill = crate::common::files(&[&dir]).len();
            }
        });
        crate::engine_support::assert_kill_landed_in(&evs, point);
        if check == "partial" {
            // Some artifacts were stored before the kill, not all (or the kill would prove
            // nothing about a half-done step).
            let n: usize = point.rsplit('-').next().unwrap().parse().unwrap();
            assert_eq!(stored_at_kill, n, "{point}: stored at the kill");
            assert!(n < base.2.len());
        }
        assert_eq!(r.outcome(), base.0, "{point}");
        assert_eq!(quota(&r), base.1, "{point}");
        // Rendering is deterministic: whichever run stored them, the same bytes.
        let mut got = Vec::new();
        for run in std::fs::read_dir(r.state().join("artifacts")).unwrap() {
            let run = run.unwrap().path();
            for f in std::fs::read_dir(&run).unwrap() {
                let f = f.unwrap();
                let name = f.file_name().to_string_lossy().into_owned();
                if let Some((_, bytes)) = base.2.iter().find(|(n, _)| *n == name) {
                    assert_eq!(&std::fs::read(f.path()).unwrap(), bytes, "{point}: {name}");
                    got.push(name);
                }
            }
        }
        got.sort();
        got.dedup();
        assert_eq!(got.len(), base.2.len(), "{point}: {got:?}");
    }
}

/// install, approve at the gate, install: no kills.
fn drive_plain(r: &Realm) {
    let o = r.cmd().output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    assert!(r.approve(None).status.success());
    let o = r.cmd().output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
}
