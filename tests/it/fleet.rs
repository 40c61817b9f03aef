//! `realmctl fleet` (issue #20, item 3) over a folder of realms in every state the engine can
//! leave one in — complete, waiting on the customer's gate, failed, interrupted by SIGKILL, a
//! journal someone edited — plus a folder with no journal: one row each, read from the real
//! binary's journals, the tampered one flagged (exit 1) and shown only as far as it verifies;
//! the HTML page self-contained and rendered in Chromium; a read-only copy read without a
//! byte or a timestamp changing.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{SpecOpts, chromium, files};
use crate::engine_support::*;

/// A spec for realm `name` on Kubernetes `version` in `dir`.
fn realm_spec(dir: &Path, name: &str, version: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = spec(dir, SpecOpts::default());
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replacen("name: acme", &format!("name: {name}"), 1)
        .replace(
            "kubernetesVersion: \"1.31\"",
            &format!("kubernetesVersion: \"{version}\""),
        );
    std::fs::write(&path, text).unwrap();
    path
}

struct Realms {
    _dir: tempfile::TempDir,
    root: PathBuf,
    nothing: PathBuf,
}

/// Realms in every state under `root/realms`, and `root/nothing` (no journal).
fn realms() -> Realms {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("realms");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let pb = local_playbook(&work);

    // Complete (Kubernetes 1.35: under standard support on 2026-12-06).
    let s = realm_spec(&work.join("done"), "done", "1.35");
    let (code, _, err) = install_approved(&s, &root.join("done"), &pb, &[]);
    assert_eq!(code, 0, "{err}");

    // Waiting on the customer's phase-5 gate (1.33: EKS extended support).
    let s = realm_spec(&work.join("waiting"), "waiting", "1.33");
    let (code, _, err) = install(&s, &root.join("waiting"), &pb, &[]);
    assert_eq!(code, 3, "{err}");

    // Failed in phase 1 (1.31: EKS support ended 2026-11-26).
    let s = realm_spec(&work.join("failed"), "failed", "1.31");
    let flaky = work.join("flaky");
    std::fs::create_dir_all(&flaky).unwrap();
    let failing = sparse_playbook(
        &flaky,
        &[(
            1,
            format!(
                "{{id: flaky, action: test.flaky, retries: 0, params: {{dir: \"{}\", failures: 1}}}}",
                flaky.display()
            ),
        )],
    );
    let (code, _, err) = install(&s, &root.join("failed"), &failing, &[]);
    assert_eq!(code, 1, "{err}");

    // Interrupted: SIGKILL inside the certificate step.
    let s = realm_spec(&work.join("killed"), "killed", "1.34");
    let o = realmctl()
        .env("REALMCTL_TEST_KILL_AT", "certificate:started")
        .args(["install", "--yes", "-f"])
        .arg(&s)
        .arg("--state")
        .arg(root.join("killed"))
        .arg("--playbook")
        .arg(&pb)
        .output()
        .unwrap();
    assert!(o.status.code().is_none(), "the kill landed: {:?}", text(&o));
    assert_kill_landed(&root.join("killed"), "certificate:started");

    // Tampered: a finished install whose approval someone rewrote.
    let s = realm_spec(&work.join("tampered"), "tampered", "1.35");
    let (code, _, err) = install_approved(&s, &root.join("tampered"), &pb, &[]);
    assert_eq!(code, 0, "{err}");
    crate::engine_audit::attacker(&root.join("tampered"))
        .execute(
            "UPDATE records SET payload = replace(payload, 'Ann Customer', 'Mallory') WHERE kind = 'approved'",
            [],
        )
        .unwrap();

    let nothing = dir.path().join("nothing");
    std::fs::create_dir_all(&nothing).unwrap();
    Realms {
        _dir: dir,
        root,
        nothing,
    }
}

fn fleet(args: &[&Path], extra: &[&str]) -> (i32, String, String) {
    let o = realmctl()
        .arg("fleet")
        .args(args)
        .args(["--on", "2026-12-06"])
        .args(extra)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    (o.status.code().unwrap_or(-1), out, err)
}

fn row<'a>(v: &'a Value, realm: &str) -> &'a Value {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["realm"] == realm)
        .unwrap_or_else(|| panic!("no row for {realm}: {v}"))
}

#[test]
fn fleet_shows_every_state_flags_the_tampered_journal_and_renders_in_chromium() {
    let r = realms();
    let (code, out, err) = fleet(&[&r.root, &r.nothing], &["--output", "json"]);
    assert_eq!(
        code, 1,
        "a journal that does not verify fails the command: {err}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 6, "{v}");
    assert_eq!(v["today"], "2026-12-06");

    let done = row(&v, "done");
    assert_eq!(done["journal"]["verdict"], "verified", "{done}");
    assert!(
        done["next"].is_null() && done["phase"]["title"] == "complete",
        "{done}"
    );
    assert_eq!(done["cloud"], "eks");
    assert_eq!(done["kubernetes"]["version"], "1.35");
    assert_eq!(done["kubernetes"]["support"], "standard");
    assert_eq!(done["lastRun"]["outcome"], "completed", "{done}");

    let waiting = row(&v, "waiting");
    assert_eq!(waiting["next"]["owner"], "customer", "{waiting}");
    assert_eq!(waiting["phase"]["number"], 5);
    assert_eq!(waiting["phase"]["status"], "waiting");
    assert_eq!(
        waiting["since"], waiting["lastRun"]["stoppedAt"],
        "waiting since the run stopped: {waiting}"
    );
    assert_eq!(waiting["kubernetes"]["support"], "limited");

    let failed = row(&v, "failed");
    assert_eq!(failed["phase"]["status"], "failed", "{failed}");
    assert_eq!(failed["lastRun"]["outcome"], "failed");
    assert_eq!(failed["kubernetes"]["support"], "ended", "{failed}");
    assert!(
        failed["kubernetes"]["supportLine"]
            .as_str()
            .unwrap()
            .contains("2026-11-26"),
        "{failed}"
    );

    let killed = row(&v, "killed");
    assert!(killed["lastRun"]["outcome"].is_null(), "{killed}");
    assert!(
        killed["summary"].as_str().unwrap().contains("interrupted"),
        "{killed}"
    );
    assert_eq!(killed["journal"]["verdict"], "verified");
    assert!(
        killed["since"].is_string(),
        "since its last record: {killed}"
    );

    let tampered = row(&v, "tampered");
    assert_eq!(tampered["journal"]["verdict"], "broken", "{tampered}");
    let verified = tampered["journal"]["verified"].as_u64().unwrap();
    assert!(
        tampered["journalLine"]
            .as_str()
            .unwrap()
            .contains(&format!("record {} was modified", verified + 1)),
        "{tampered}"
    );
    assert!(
        tampered["summary"]
            .as_str()
            .unwrap()
            .starts_with(&format!("as of record {verified}")),
        "{tampered}"
    );
    assert!(!out.contains("Mallory"), "nothing past the break is shown");

    let nothing = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["folder"] == r.nothing.display().to_string())
        .unwrap();
    assert_eq!(nothing["journal"]["verdict"], "unreadable", "{nothing}");
    assert_eq!(
        v["broken"], 2,
        "the tampered journal and the folder without one"
    );
    assert_eq!(v["unsupported"], 1, "1.31 on EKS");

    // The table: one line per realm and the totals.
    let (code, table, _) = fleet(&[&r.root], &[]);
    assert_eq!(code, 1);
    assert_eq!(table.lines().count(), 1 + 5 + 1, "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("waiting") && l.contains("customer"))
    );
    assert!(table.contains("BROKEN"), "{table}");

    // The page: self-contained, every row, rendered by Chromium with its colours.
    let page = r.root.parent().unwrap().join("fleet.html");
    let (code, _, err) = fleet(
        &[&r.root, &r.nothing],
        &["--output", "html", "-o", page.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    crate::common::assert_self_contained(&html);
    for name in ["done", "waiting", "failed", "killed", "tampered"] {
        assert!(html.contains(&format!("<b>{name}</b>")), "{name} missing");
    }
    let png = r.root.parent().unwrap().join("fleet.png");
    chromium(&page, &[format!("--screenshot={}", png.display())]);
    let (ink, green, red) = crate::common::png_colours(&png);
    assert!(ink > 1000, "the page is blank ({ink} pixels of ink)");
    assert!(green > 200, "the green badges are not visible ({green})");
    assert!(
        red > 200,
        "the red badges (broken journal, ended support) are not visible ({red})"
    );
}

#[test]
fn fleet_reads_a_read_only_copy_without_changing_a_byte_and_lists_folders_from_a_file() {
    let r = realms();
    let before = snapshot(&r.root);
    let list = r.root.parent().unwrap().join("list.txt");
    std::fs::write(
        &list,
        format!(
            "# the realms of the test\n{}\n\n{}\n",
            r.root.join("done").display(),
            r.root.join("waiting").display()
        ),
    )
    .unwrap();
    // Read-only as far as permissions go (the tests may run as root, who ignores them: the
    // proof is that nothing changed below).
    set_mode(&r.root, 0o555, 0o444);
    let (code, out, err) = fleet(&[], &["--list", list.to_str().unwrap(), "--output", "json"]);
    set_mode(&r.root, 0o755, 0o644);
    assert_eq!(code, 0, "both listed journals verify: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let realms: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["realm"].as_str().unwrap())
        .collect();
    assert_eq!(realms, ["done", "waiting"]);
    let (code, _, _) = fleet(&[&r.root], &["--output", "json"]);
    assert_eq!(code, 1);
    let after = snapshot(&r.root);
    let changed: Vec<_> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .chain(before.keys().filter(|p| !after.contains_key(*p)).cloned())
        .collect();
    // Journals closed cleanly are read as immutable files: nothing at all is created. The
    // killed install left records in a WAL, which SQLite reads through a `-shm` index it
    // creates beside it (the next install run needs and recovers both anyway); no existing
    // file changes.
    let killed = r.root.join("killed/journal.db");
    assert!(before.contains_key(&killed.with_file_name("journal.db-wal")));
    assert!(
        changed
            .iter()
            .all(|p| *p == killed.with_file_name("journal.db-shm")),
        "fleet wrote into state folders: {changed:?}"
    );
}

/// Every file below `dir` with the digest of its bytes and its modification time.
fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, (String, std::time::SystemTime)> {
    files(&[dir])
        .into_iter()
        .map(|(p, b)| {
            let m = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, (realmctl::crypto::sha256_hex(&b), m))
        })
        .collect()
}

fn set_mode(dir: &Path, dirs: u32, files: u32) {
    use std::os::unix::fs::PermissionsExt;
    for e in walk(dir) {
        let mode = if e.is_dir() { dirs } else { files };
        std::fs::set_permissions(&e, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_owned()];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
