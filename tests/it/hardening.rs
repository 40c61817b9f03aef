//! Regression tests of the security and fault fixes of issue #8, through the real binary:
//! private state folders, read-only inspection, artifact locations that stay inside the store,
//! lock holders that are checked (not guessed), capped reads of regular files only, a journal
//! that cannot be silently emptied, cut error messages, timed-out steps that never overlap their
//! retry, and a full disk named as such.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::SpecOpts;
use crate::engine_support::*;
use realmctl::engine::io::journal::{Durability, Journal};
use realmctl::engine::model::event::{Event, RunSubject};
use realmctl::engine::model::output::{ArtifactRef, StepOutput};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("realmctl")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A realm whose install waits at the phase-5 gate (exit 3): (temp dir, spec, playbook, state).
fn waiting_realm() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    let (code, v, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 3, "{v} {err}");
    (dir, spec, pb, state)
}

/// A completed install (gate approved): (temp dir, state).
fn finished_realm() -> (tempfile::TempDir, PathBuf) {
    let (dir, spec, pb, state) = waiting_realm();
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    assert_eq!(install(&spec, &state, &pb, &[]).0, 0);
    (dir, state)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(p).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        }
        out.push(path);
    }
}

/// Every file under `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).unwrap();
            let bytes = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            (p, bytes, m.modified().unwrap())
        })
        .collect()
}

/// Regression (issue #8): state folders and their files were 0755/0644, so another local user
/// could read everything and hold `flock` on `<state>/lock`, blocking every install.
#[test]
fn the_state_folder_is_private_and_a_loose_one_is_warned_about() {
    let (_dir, state) = finished_realm();
    let mut all = vec![state.clone()];
    walk(&state, &mut all);
    for p in &all {
        let m = mode(p);
        if p.is_dir() {
            assert_eq!(m, 0o700, "{}", p.display());
        } else {
            assert_eq!(m & 0o022, 0, "{} is writable by others: {m:o}", p.display());
        }
    }
    assert_eq!(mode(&state.join("lock")), 0o600);
    if is_root() {
        // Another local user cannot even open the lock file, let alone hold it.
        let o = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "flock",
                "-n",
            ])
            .arg(state.join("lock"))
            .arg("true")
            .output()
            .unwrap();
        assert!(!o.status.success(), "another user took the lock: {o:?}");
    }
    // A folder others may write gets a warning (the install still runs).
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let spec = state.parent().unwrap().join("realm.yaml");
    let pb = state.parent().unwrap().join("playbook.yaml");
    let (code, v, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 0, "{v} {err}");
    assert!(
        err.contains("warning: the state folder") && err.contains("mode 777"),
        "{err}"
    );
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1, "{v}");
}

/// Regression (issue #8): `status`, `report` and `audit verify` opened the journal for writing;
/// they must work on a read-only copy of a state folder and change nothing.
#[test]
fn status_report_and_verify_work_on_a_read_only_copy_and_change_nothing() {
    let (dir, state) = finished_realm();
    let copy_root = dir.path().join("ro");
    std::fs::create_dir(&copy_root).unwrap();
    let ok = Command::new("cp")
        .arg("-a")
        .arg(&state)
        .arg(copy_root.join("state"))
        .status()
        .unwrap();
    assert!(ok.success());
    let copy = copy_root.join("state");
    let as_other = is_root();
    if as_other {
        // root ignores permissions: run the commands as nobody on a copy nobody owns.
        let ok = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&copy)
            .status()
            .unwrap();
        assert!(ok.success());
        for p in [dir.path(), copy_root.as_path()] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let ok = Command::new("chmod")
        .args(["-R", "a-w"])
        .arg(&copy)
        .status()
        .unwrap();
    assert!(ok.success());
    let before = snapshot(&copy);
    let run = |args: &[&str]| {
        let mut c = if as_other {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(bin());
            crate::common::isolate(&mut c);
            c
        } else {
            crate::common::realmctl_std()
        };
        let o = c.args(args).arg("--state").arg(&copy).output().unwrap();
        (o.status.code(), text(&o))
    };
    let (code, (out, err)) = run(&["status"]);
    assert_eq!(code, Some(0), "{out} {err}");
    assert!(out.contains("the install is complete"), "{out}");
    let (code, (out, err)) = run(&["report", "--format", "json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"realm\": \"acme\""), "{out}");
    let (code, (out, err)) = run(&["audit", "verify"]);
    assert_eq!(code, Some(0), "{out} {err}");
    assert!(out.starts_with("ok: "), "{out}");
    assert_eq!(
        snapshot(&copy),
        before,
        "a read-only command changed the folder"
    );
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(&copy)
        .status();
}

/// A journal of one run whose step recorded `artifacts`, written through the library.
fn journal_with(state: &Path, artifacts: Vec<ArtifactRef>, extra: Vec<Event>) {
    let spec_dir = state.parent().unwrap();
    let spec_path = spec(spec_dir, SpecOpts::default());
    let spec = realmctl::spec::load(&spec_path).unwrap();
    let mut j = Journal::create(state).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut events = vec![Event::RunStarted {
        run: 1,
        operator: "test".into(),
        version: "test".into(),
        host: "test".into(),
        lock_id: "test".into(),
        subject: RunSubject::of(&spec),
        spec_digest: "d".into(),
        spec: serde_json::json!({}),
        playbook: realmctl::engine::model::playbook::embedded(),
        until: None,
    }];
    events.push(Event::StepSucceeded {
        run: 1,
        step: "artifacts".into(),
        phase: 4,
        input_digest: "i".into(),
        output_digest: "o".into(),
        output: StepOutput {
            artifacts,
            ..StepOutput::default()
        },
        duration_ms: 1,
    });
    events.extend(extra);
    for e in &events {
        j.append(e, now, Durability::Sync).unwrap();
    }
}

/// Regression (issue #8): artifact locations read back from the journal were joined to the
/// state folder as they were, so a rewritten journal made `audit verify` read any file.
#[test]
fn audit_verify_never_reads_artifact_locations_outside_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("outside.txt");
    std::fs::write(&secret, "not an artifact").unwrap();
    let sha = realmctl::crypto::sha256_hex(b"not an artifact");
    let state = dir.path().join("state");
    let art = |location: String| ArtifactRef {
        name: "x".into(),
        location,
        sha256: sha.clone(),
        bytes: 15,
    };
    journal_with(
        &state,
        vec![
            art("../outside.txt".into()),
            art(secret.display().to_string()),
            art("artifacts/../../outside.txt".into()),
        ],
        vec![],
    );
    let (code, out) = verify(&state, None);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.matches("is not inside the artifact store").count(),
        3,
        "{out}"
    );
    assert!(!out.contains("ok:"), "{out}");
}

/// Regression (issue #8): runs that overlapped (a broken lock) interleaved their records and
/// `audit verify` said nothing.
#[test]
fn interleaved_runs_fail_audit_verify() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let second_run_started = Event::RunStarted {
        run: 2,
        operator: "other".into(),
        version: "test".into(),
        host: "test".into(),
        lock_id: "other".into(),
        subject: RunSubject {
            realm: "acme".into(),
            provider: realmctl::spec::Provider::Eks,
            region: "us-east-1".into(),
            artifacts_bucket: None,
            endpoint: None,
        },
        spec_digest: "d".into(),
        spec: serde_json::json!({}),
        playbook: realmctl::engine::model::playbook::embedded(),
        until: None,
    };
    let late_step_of_run_1 = Event::StepStarted {
        run: 1,
        step: "quota-seed".into(),
        phase: 6,
        attempt: 1,
        input_digest: "i".into(),
    };
    journal_with(&state, vec![], vec![second_run_started, late_step_of_run_1]);
    let (code, out) = verify(&state, None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("record 4 was written by run 1 after run 2 had started")
            && out.contains("two installs wrote this state folder at once"),
        "{out}"
    );
}

/// Regression (issue #8): an unreadable `lock.json` was silently taken over.
#[test]
fn a_corrupt_lock_holder_is_reported_and_cleared_only_by_unlock_unreadable() {
    let (_dir, spec, pb, state) = waiting_realm();
    std::fs::write(state.join("lock.json"), "{\"lockId\": tru").unwrap();
    let (code, _, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot be read") && err.contains("unlock --state"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(state.join("lock.json")).unwrap(),
        "{\"lockId\": tru",
        "left untouched"
    );
    let by_id = realmctl()
        .args(["unlock", "--lock-id", "x", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(by_id.status.code(), Some(1), "{:?}", text(&by_id));
    let o = realmctl()
        .args(["unlock", "--unreadable", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(install(&spec, &state, &pb, &[]).0, 3, "back at the gate");
    let v = status(&state);
    assert!(
        v["report"]["takeovers"][0]["holder"]
            .as_str()
            .unwrap()
            .contains("unreadable holder file")
    );
}

/// Regression (issue #8): removing `<state>/lock` during an install let a second install run,
/// and `unlock --lock-id` succeeded while the holder was alive.
#[cfg(feature = "test-actions")]
#[test]
fn a_removed_lock_file_lets_no_second_install_in_while_the_first_runs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let fx = dir.path().join("fx");
    std::fs::create_dir_all(&fx).unwrap();
    let slow = format!(
        "{{id: slow, action: test.effect, params: {{dir: \"{}\", sleepMs: 4000}}}}",
        fx.display()
    );
    let pb = sparse_playbook(dir.path(), &[(1, slow)]);
    let state = dir.path().join("state");
    let first = crate::common::realmctl_std()
        .args(["install", "--yes", "--output", "json", "-f"])
        .arg(&spec)
        .arg("--state")
        .arg(&state)
        .arg("--playbook")
        .arg(&pb)
        .env("REALMCTL_OPERATOR", "first")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !fx.join("invocations.log").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the first install never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let holder: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("lock.json")).unwrap()).unwrap();
    std::fs::remove_file(state.join("lock")).unwrap();
    let (code, _, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is locked") && err.contains("by first"),
        "{err}"
    );
    let o = realmctl()
        .args([
            "unlock",
            "--lock-id",
            holder["lockId"].as_str().unwrap(),
            "--state",
        ])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(text(&o).1.contains("is running"), "{:?}", text(&o));
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let (code, out) = verify(&state, None);
    assert_eq!(code, 0, "one writer at a time: {out}");
}

/// Regression (issue #8): a step that timed out kept its blocking work running in the
/// background, overlapping its retry.
#[cfg(feature = "test-actions")]
#[test]
fn a_timed_out_step_never_overlaps_its_retry() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let fx = dir.path().join("fx");
    std::fs::create_dir_all(&fx).unwrap();
    let blocking = format!(
        "{{id: block, action: test.blocking, timeout: 300ms, retries: 1, params: {{dir: \"{}\", sleepMs: 1200}}}}",
        fx.display()
    );
    let pb = sparse_playbook(dir.path(), &[(1, blocking)]);
    let state = dir.path().join("state");
    let (code, v, err) = install(&spec, &state, &pb, &["--retry-base-ms", "1"]);
    assert_eq!(code, 1, "{v} {err}");
    assert!(next_text(&v).contains("timeout of 0.3 s"), "{v}");
    let log = std::fs::read_to_string(fx.join("blocking-block")).unwrap();
    let lines: Vec<_> = log.lines().collect();
    assert_eq!(
        lines,
        ["start 1", "end 1", "start 2", "end 2"],
        "attempt 2 began before attempt 1's blocking work ended"
    );
}

fn validate(file: &Path) -> (Option<i32>, String, Duration) {
    let mut c = crate::common::realmctl_std();
    c.args(["validate", "-f"]).arg(file);
    crate::common::run_bounded(
        c,
        Duration::from_secs(10),
        &format!("validate -f {}", file.display()),
    )
}

/// Regression (issue #8): `validate -f /dev/zero` grew to 4 GB, a FIFO blocked forever, a
/// directory was "file not found", and a 2 GB certificate was read whole.
#[test]
fn inputs_that_are_not_regular_files_or_too_large_are_refused_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err, took) = validate(Path::new("/dev/zero"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("is a character device, not a regular file"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    let fifo = dir.path().join("fifo.yaml");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let (code, err, _) = validate(&fifo);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("named pipe"), "{err}");
    let (code, err, _) = validate(dir.path());
    assert_eq!(code, Some(2));
    assert!(err.contains("is a directory"), "{err}");
    let big = dir.path().join("big.yaml");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 * 1024 * 1024)
        .unwrap();
    let (code, err, _) = validate(&big);
    assert_eq!(code, Some(2));
    assert!(err.contains("more than the 1048576 bytes"), "{err}");

    // The certificate named in the spec is a folder: the spec says so, not "file not found".
    let realm = dir.path().join("realm");
    let spec_path = spec(&realm, SpecOpts::default());
    let text = std::fs::read_to_string(&spec_path).unwrap();
    std::fs::create_dir(realm.join("certs/folder.pem")).unwrap();
    std::fs::write(
        &spec_path,
        text.replace("certs/wildcard.pem", "certs/folder.pem"),
    )
    .unwrap();
    let (code, err, _) = validate(&spec_path);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("is a directory, not a regular file") && !err.contains("not found"),
        "{err}"
    );
    // A 2 GB (sparse) certificate: refused by size at once by preflight and plan.
    std::fs::write(&spec_path, &text).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(realm.join("certs/wildcard.pem"))
        .unwrap()
        .set_len(2 * 1024 * 1024 * 1024)
        .unwrap();
    let t0 = Instant::now();
    let o = realmctl()
        .args([
            "preflight",
            "--only",
            "certificate",
            "--output",
            "json",
            "-f",
        ])
        .arg(&spec_path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{:?}", text_of(&o));
    assert!(
        text_of(&o).0.contains("more than the 1048576 bytes"),
        "{:?}",
        text_of(&o)
    );
    let o = realmctl()
        .args(["plan", "-f"])
        .arg(&spec_path)
        .arg("--state")
        .arg(realm.join("state"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text_of(&o));
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
}

fn text_of(o: &std::process::Output) -> (String, String) {
    text(o)
}

/// Regression (issue #8): a 50 MB value in the spec was echoed whole in the error message.
#[test]
fn a_huge_value_in_the_spec_is_cut_in_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = spec(dir.path(), SpecOpts::default());
    let text = std::fs::read_to_string(&spec_path).unwrap();
    let huge = "A".repeat(900 * 1024);
    std::fs::write(
        &spec_path,
        text.replace("name: acme", &format!("name: {huge}")),
    )
    .unwrap();
    let (code, err, _) = validate(&spec_path);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("invalid realm name"),
        "{}",
        &err[..err.len().min(500)]
    );
    assert!(err.len() < 4096, "{} bytes of error", err.len());
}

/// Regression (issue #8): a journal cut to 0 bytes was taken as a fresh state: `audit verify`
/// said "ok: 0 records" and `install` started over as run 1, losing history and approvals.
#[test]
fn a_journal_cut_to_zero_bytes_is_an_error_never_a_fresh_start() {
    let (_dir, spec, pb, state) = waiting_realm();
    for f in ["journal.db-wal", "journal.db-shm"] {
        let _ = std::fs::remove_file(state.join(f));
    }
    std::fs::write(state.join("journal.db"), b"").unwrap();
    let (code, out) = verify(&state, None);
    assert_eq!(code, 1, "{out}");
    let (code, _, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is empty (0 bytes)"), "{err}");
    assert_eq!(
        std::fs::metadata(state.join("journal.db")).unwrap().len(),
        0
    );
    // Artifacts but no journal at all.
    std::fs::remove_file(state.join("journal.db")).unwrap();
    let (code, _, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("holds install artifacts"), "{err}");
    assert!(!state.join("journal.db").exists());
}

/// Regression (issue #8): on a full disk SQLite's "disk I/O error" reached the operator, a
/// `lock.json.tmp` stayed behind, and `quota status --db NEW_PATH` created an empty ledger.
/// Runs in a private mount namespace with a small tmpfs (as root, or with user namespaces).
#[test]
fn a_full_disk_is_named_and_read_only_commands_still_work() {
    let (dir, _spec, _pb, state) = waiting_realm();
    let script = dir.path().join("full.sh");
    let out = dir.path().join("full.out");
    std::fs::write(
        &script,
        r#"set -u
mnt="$1"; state="$2"; bin="$3"; spec="$4"; out="$5"
mkdir -p "$mnt" && mount -t tmpfs -o size=2m tmpfs "$mnt" || { echo "MOUNT FAILED" > "$out"; exit 0; }
cp -a "$state" "$mnt/state"
dd if=/dev/zero of="$mnt/fill" bs=4k >/dev/null 2>&1
run() { name="$1"; shift; "$@" > "$mnt/../$name.stdout" 2> "$mnt/../$name.stderr"; echo "$name $?" >> "$out"; }
: > "$out"
run approve "$bin" approve --state "$mnt/state" --phase 5 --by x
run install "$bin" install --yes -f "$spec" --state "$mnt/state"
run status "$bin" status --state "$mnt/state"
run report "$bin" report --format md --state "$mnt/state"
run verify "$bin" audit verify --state "$mnt/state"
run quota "$bin" quota status --db "$mnt/new.db" --realm acme
ls -a "$mnt/state" > "$mnt/../listing"
if [ -e "$mnt/new.db" ]; then echo "new.db created" >> "$out"; fi
"#,
    )
    .unwrap();
    // As root a private mount namespace is enough; otherwise a user namespace maps us to root.
    let mut cmd = Command::new("unshare");
    cmd.arg(if is_root() { "-m" } else { "-rm" });
    crate::common::isolate(&mut cmd);
    let mnt = dir.path().join("mnt");
    let status = cmd
        .arg("sh")
        .arg(&script)
        .arg(&mnt)
        .arg(&state)
        .arg(bin())
        .arg(dir.path().join("realm.yaml"))
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let results = std::fs::read_to_string(&out).unwrap();
    eprintln!("{results}");
    assert!(
        !results.contains("MOUNT FAILED"),
        "this test needs root or user namespaces to mount a tmpfs"
    );
    let code = |name: &str| -> i32 {
        results
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} did not run: {results}"))
            .parse()
            .unwrap()
    };
    let stderr =
        |name: &str| std::fs::read_to_string(dir.path().join(format!("{name}.stderr"))).unwrap();
    // A full disk is the environment's failure, not bad input: exit 1 (issue #16).
    assert_eq!(code("approve"), 1, "{}", stderr("approve"));
    assert!(
        stderr("approve").contains("no space left on device"),
        "{}",
        stderr("approve")
    );
    assert_eq!(code("install"), 1, "{}", stderr("install"));
    assert!(
        stderr("install").contains("no space left on device"),
        "{}",
        stderr("install")
    );
    for name in ["status", "report", "verify"] {
        assert_eq!(code(name), 0, "{name}: {}", stderr(name));
    }
    assert_eq!(code("quota"), 2, "{}", stderr("quota"));
    assert!(
        stderr("quota").contains("no quota ledger at"),
        "{}",
        stderr("quota")
    );
    assert!(!results.contains("new.db created"), "{results}");
    let listing = std::fs::read_to_string(dir.path().join("listing")).unwrap();
    assert!(
        !listing
            .lines()
            .any(|l| l.ends_with(".tmp") || l == "lock.json"),
        "left behind: {listing}"
    );
}
