//! Crash and lock tests of the install engine (issue #4), with test-only actions that count
//! their side effects (`--features test-actions`).
//!
//! SIGKILL lands at every step boundary (after the start is journaled, after the action acted,
//! after the success is journaled) and at random points inside steps; after unlocking the
//! stale lock and resuming, the run ends in the same state as an uninterrupted one, no step
//! that had succeeded runs again, and every effect exists exactly once. Separately, processes
//! racing for one state folder never hold the lock together.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use crate::common::SpecOpts;
use crate::engine_support::*;

const STEPS: [&str; 10] = ["a1", "a2", "b1", "c1", "c2", "d1", "e1", "e2", "f1", "f2"];

fn effect_playbook(dir: &Path, sleep_ms: u64) -> std::path::PathBuf {
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

fn invocations(dir: &Path) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    if let Ok(t) = std::fs::read_to_string(dir.join("fx/invocations.log")) {
        for l in t.lines() {
            *m.entry(l.trim_start_matches("invoke ").to_owned())
                .or_insert(0) += 1;
        }
    }
    m
}

fn effects(dir: &Path) -> Vec<String> {
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

fn unlock(state: &Path) {
    if let Some(id) = stale_lock_id(state) {
        let o = realmctl()
            .args(["unlock", "--lock-id", &id, "--state"])
            .arg(state)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    }
}

struct Realm {
    dir: tempfile::TempDir,
    spec: std::path::PathBuf,
    pb: std::path::PathBuf,
}

impl Realm {
    fn new(sleep_ms: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), SpecOpts::default());
        let pb = effect_playbook(dir.path(), sleep_ms);
        Realm { dir, spec, pb }
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
            .arg(&self.pb);
        c
    }
    /// Final (step, status) list, the effects and the audit result.
    fn outcome(&self) -> (Vec<(String, String)>, Vec<String>, i32) {
        (
            step_statuses(&self.state()),
            effects(self.dir.path()),
            verify(&self.state(), None).0,
        )
    }
}

fn baseline() -> (Vec<(String, String)>, Vec<String>, i32) {
    let r = Realm::new(0);
    let o = r.cmd().output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let inv = invocations(r.dir.path());
    assert!(inv.values().all(|n| *n == 1), "{inv:?}");
    r.outcome()
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
            unlock(&r.state());
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
    unlock(&r.state());
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
            let inv = invocations(r.dir.path());
            for s in succeeded(&r.state()) {
                guarded.entry(s.clone()).or_insert(inv[&s]);
            }
            unlock(&r.state());
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
}

#[test]
fn racing_installs_never_hold_the_lock_together() {
    for round in 0..4 {
        let r = Realm::new(15);
        let children: Vec<_> = (0..6)
            .map(|_| r.spawn("racer", std::process::Stdio::piped()))
            .collect();
        let mut winners = 0;
        for c in children {
            let o = c.wait_with_output().unwrap();
            match o.status.code() {
                Some(0) => winners += 1,
                Some(1) => {
                    let err = String::from_utf8_lossy(&o.stderr);
                    assert!(err.contains("is locked"), "round {round}: {err}");
                }
                other => panic!("round {round}: exit {other:?}"),
            }
        }
        assert!(winners >= 1, "round {round}");
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
        assert_eq!(verify(&r.state(), None).0, 0);
        assert_eq!(
            invocations(r.dir.path()).values().sum::<usize>(),
            STEPS.len()
        );
    }
}
