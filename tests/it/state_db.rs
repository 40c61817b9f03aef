//! Install state on PostgreSQL (issue #22): `--state postgres://…?realm=NAME` through the
//! binary, against a throw-away PostgreSQL per test ([`crate::pg`]) on loopback.
//!
//! A whole install to the gate, approved, resumed and verified with its journal, lease and
//! artifacts in the database; two installs of one realm from two working folders racing: one
//! proceeds, the other names the holder; a writer frozen (SIGSTOP) past its lease, taken over,
//! then woken: the database refuses its next append (fencing); the database stopped mid-run:
//! a clear error, nothing half-written, and the install resumes once it is back; the journal
//! append-only for its owner (triggers) and for an install role (privileges); a canary
//! database password in no output and no file.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{SpecOpts, assert_nowhere};
use crate::engine_support::*;
use crate::pg::Pg;

/// The database password of these tests: a canary that must never be written down.
const PASSWORD: &str = "state-canary-pw/+=~never-written";

/// `--state` for `realm` in database `db` of `pg`, with a lease of `lease` seconds.
fn state_url(pg: &Pg, db: &str, realm: &str, lease: u64) -> String {
    format!("{}?realm={realm}&lease={lease}", pg.url(db))
}

/// `realmctl` with the database password in `PGPASSWORD`.
fn rc(pg: &Pg) -> Command {
    let mut c = crate::common::realmctl_std();
    c.env("PGPASSWORD", pg.password());
    c
}

/// `install --yes --output json` on a database state, seeding the quota ledger `quota` when
/// given: (exit code, JSON, stderr).
fn install_db(
    pg: &Pg,
    spec: &Path,
    state: &str,
    pb: &Path,
    quota: Option<&Path>,
) -> (i32, Value, String) {
    let mut c = rc(pg);
    c.args(["install", "--yes", "--output", "json", "-f"])
        .arg(spec)
        .args(["--state", state, "--playbook"])
        .arg(pb);
    if let Some(q) = quota {
        c.arg("--quota-db").arg(q);
    }
    let o = c.output().unwrap();
    let (out, err) = text(&o);
    (
        o.status.code().unwrap_or(-1),
        serde_json::from_str(&out).unwrap_or(Value::Null),
        err,
    )
}

/// `rc` with `args`: (exit code, stdout, stderr).
fn run(pg: &Pg, args: &[&str]) -> (i32, String, String) {
    let o = rc(pg).args(args).output().unwrap();
    let (out, err) = text(&o);
    (o.status.code().unwrap_or(-1), out, err)
}

#[test]
fn an_install_on_a_database_runs_to_the_gate_is_approved_resumes_and_verifies() {
    let pg = Pg::start_with(PASSWORD, &[]);
    pg.create_db("realms");
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = state_url(&pg, "realms", "acme", 30);
    let quota = dir.path().join("quota.db");
    let mut printed = String::new();
    let (code, v, err) = install_db(&pg, &spec, &state, &pb, Some(&quota));
    assert_eq!(code, 3, "{v} {err}");
    printed.push_str(&format!("{v}{err}"));
    // No state folder anywhere: the journal, the lease and the artifacts are in the database.
    let records: i64 = pg
        .psql(
            "realms",
            "SELECT count(*) FROM realmctl_journal WHERE realm = 'acme'",
        )
        .parse()
        .unwrap();
    assert!(records > 5, "{records}");
    let artifacts = pg.psql(
        "realms",
        "SELECT string_agg(location, ',') FROM realmctl_artifacts WHERE realm = 'acme'",
    );
    assert!(artifacts.contains("roles-and-resources.md"), "{artifacts}");
    assert_eq!(
        pg.psql(
            "realms",
            "SELECT count(*) FROM realmctl_lease WHERE lock_id IS NOT NULL"
        ),
        "0",
        "the lease is released when the run stops"
    );
    let (code, out, err) = run(&pg, &["status", "--state", &state]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("next: customer: approve phase 5"), "{out}");
    printed.push_str(&out);
    let (code, out, err) = run(
        &pg,
        &[
            "approve",
            "--state",
            &state,
            "--phase",
            "5",
            "--by",
            "Ann Customer",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, v, err) = install_db(&pg, &spec, &state, &pb, Some(&quota));
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(executed(&v), ["quota-seed"]);
    printed.push_str(&format!("{v}{err}"));
    // The same proofs as a folder's: the chain and every artifact checksum.
    let (code, out, err) = run(&pg, &["audit", "verify", "--state", &state]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok: "), "{out}");
    printed.push_str(&out);
    let (code, head, _) = run(&pg, &["audit", "checkpoint", "--state", &state]);
    assert_eq!(code, 0);
    let db_head = pg.psql(
        "realms",
        "SELECT seq || ':' || hash FROM realmctl_journal WHERE realm = 'acme' ORDER BY seq DESC LIMIT 1",
    );
    assert_eq!(head.trim(), db_head);
    let (code, report, _) = run(&pg, &["report", "--format", "md", "--state", &state]);
    assert_eq!(code, 0);
    assert!(report.contains("Approved by **Ann Customer**"), "{report}");
    printed.push_str(&report);
    // A changed artifact is caught by audit verify, read from the database.
    pg.psql(
        "realms",
        "UPDATE realmctl_artifacts SET bytes = 'x' WHERE location LIKE '%roles-and-resources.md'",
    );
    let (code, out, _) = run(&pg, &["audit", "verify", "--state", &state]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAILED: artifact roles-and-resources.md"),
        "{out}"
    );
    // The journal is append-only in the database itself, for its owner too.
    for sql in [
        "UPDATE realmctl_journal SET kind = 'x' WHERE seq = 1",
        "DELETE FROM realmctl_journal WHERE seq = 1",
        "TRUNCATE realmctl_journal",
    ] {
        let o = pg.psql_raw("realms", sql);
        assert!(!o.status.success(), "{sql}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("append-only"),
            "{sql}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // A password in the URL is refused (it would be on the command line), never echoed.
    let with_pw = format!("{}?realm=acme", pg.url_with_password("realms"));
    let (code, out, err) = run(&pg, &["status", "--state", &with_pw]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("PGPASSWORD"), "{err}");
    printed.push_str(&out);
    printed.push_str(&err);
    // Nor in what the database holds: records, leases, artifacts.
    let held = pg.psql(
        "realms",
        "SELECT coalesce(string_agg(payload || prev || hash, ''), '') FROM realmctl_journal",
    ) + &pg.psql(
        "realms",
        "SELECT coalesce(string_agg(coalesce(holder, ''), ''), '') FROM realmctl_lease",
    ) + &pg.psql(
        "realms",
        "SELECT coalesce(string_agg(encode(bytes, 'escape'), ''), '') FROM realmctl_artifacts",
    );
    assert!(held.len() > 1000);
    assert_nowhere(PASSWORD, &[&printed, &held], &[dir.path()]);
}

/// A playbook of one slow step per phase (`test.effect` sleeping `sleep_ms`), no gate.
fn slow_playbook(dir: &Path, sleep_ms: u64) -> std::path::PathBuf {
    let fx = dir.join("fx");
    std::fs::create_dir_all(&fx).unwrap();
    let step = |id: &str| {
        format!(
            "steps: [{{id: {id}, action: test.effect, params: {{dir: \"{}\", sleepMs: {sleep_ms}}}}}]",
            fx.display()
        )
    };
    playbook(
        dir,
        [
            &step("s1"),
            &step("s2"),
            &step("s3"),
            &step("s4"),
            &step("s5"),
            &step("s6"),
        ],
    )
}

/// `install` of `pb` on `state`, as a child process.
fn spawn_install(pg: &Pg, spec: &Path, state: &str, pb: &Path) -> std::process::Child {
    rc(pg)
        .args(["install", "--yes", "--output", "json", "-f"])
        .arg(spec)
        .args(["--state", state, "--playbook"])
        .arg(pb)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `f` holds (at most `limit`).
fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lease's lock id and fencing token, while someone holds it.
fn lease(pg: &Pg, db: &str, realm: &str) -> Option<(String, i64)> {
    let o = pg.psql_raw(
        db,
        &format!(
            "SELECT lock_id || ' ' || fence FROM realmctl_lease WHERE realm = '{realm}' AND lock_id IS NOT NULL"
        ),
    );
    let row = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    let (id, fence) = row.split_once(' ')?;
    Some((id.to_owned(), fence.parse().unwrap()))
}

#[test]
fn two_installs_of_one_realm_from_two_folders_race_and_one_names_the_holder() {
    let pg = Pg::start_with(PASSWORD, &[]);
    pg.create_db("realms");
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let state = state_url(&pg, "realms", "acme", 30);
    let specs = [one.path(), two.path()].map(|d| spec(d, SpecOpts::default()));
    let pbs = [one.path(), two.path()].map(|d| slow_playbook(d, 300));
    let a = spawn_install(&pg, &specs[0], &state, &pbs[0]);
    let b = spawn_install(&pg, &specs[1], &state, &pbs[1]);
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let outs = [&oa, &ob];
    let winners: Vec<_> = outs.iter().filter(|o| o.status.code() == Some(0)).collect();
    let losers: Vec<_> = outs.iter().filter(|o| o.status.code() != Some(0)).collect();
    assert_eq!(winners.len(), 1, "{:?} {:?}", text(&oa), text(&ob));
    let loser = text(losers[0]).1;
    assert!(
        loser.contains("realm acme in")
            && loser.contains("is held by `install` by")
            && loser.contains("lock id"),
        "the loser names the holder: {loser}"
    );
    // The winner ran every step once; the loser wrote nothing.
    let effects: usize = [one.path(), two.path()]
        .iter()
        .map(|d| {
            std::fs::read_to_string(d.join("fx/invocations.log"))
                .map(|t| t.lines().count())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(effects, 6);
    let (code, out, _) = run(&pg, &["audit", "verify", "--state", &state]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_writer_frozen_past_its_lease_is_fenced_off_after_a_takeover() {
    let pg = Pg::start_with(PASSWORD, &[]);
    pg.create_db("realms");
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = slow_playbook(dir.path(), 1500);
    let state = state_url(&pg, "realms", "acme", 2);
    let first = spawn_install(&pg, &spec, &state, &pb);
    wait_until(Duration::from_secs(20), "the first install's lease", || {
        lease(&pg, "realms", "acme").is_some()
    });
    let (old_id, old_fence) = lease(&pg, "realms", "acme").unwrap();
    let pid = rustix::process::Pid::from_raw(first.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    // While the lease is live, nobody takes it.
    let (code, _, err) = run(&pg, &["unlock", "--state", &state, "--lock-id", &old_id]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("is held by"), "{err}");
    // Past the lease (not renewed: the holder is frozen), the operator takes it over.
    wait_until(Duration::from_secs(20), "the lease to expire", || {
        pg.psql(
            "realms",
            "SELECT now() > expires FROM realmctl_lease WHERE realm = 'acme'",
        ) == "t"
    });
    let (code, _, err) = install_db(&pg, &spec, &state, &pb, None);
    assert_eq!(code, 1, "an expired lease is not taken silently: {err}");
    assert!(
        err.contains("expired lease") && err.contains(&old_id),
        "{err}"
    );
    let (code, out, err) = run(&pg, &["unlock", "--state", &state, "--lock-id", &old_id]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, v, err) = install_db(&pg, &spec, &state, &pb, None);
    assert_eq!(code, 0, "the new holder resumes: {v} {err}");
    let head_before_wake = pg.psql(
        "realms",
        "SELECT max(seq) FROM realmctl_journal WHERE realm = 'acme'",
    );
    // The frozen writer wakes up: the database refuses its next append.
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
    let o = first.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_ne!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        err.contains("no longer holds the realm's lease")
            || out.contains("no longer holds the realm's lease"),
        "{out}{err}"
    );
    assert_eq!(
        pg.psql(
            "realms",
            "SELECT max(seq) FROM realmctl_journal WHERE realm = 'acme'",
        ),
        head_before_wake,
        "not one record after the takeover"
    );
    let stale: i64 = pg
        .psql(
            "realms",
            &format!(
                "SELECT count(*) FROM realmctl_journal WHERE realm = 'acme' AND fence = {old_fence} AND seq > (SELECT min(seq) FROM realmctl_journal WHERE realm = 'acme' AND kind = 'lockTakenOver')"
            ),
        )
        .parse()
        .unwrap();
    assert_eq!(stale, 0);
    let (code, out, _) = run(&pg, &["audit", "verify", "--state", &state]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn the_database_stopped_mid_run_is_a_clear_error_and_the_install_resumes_once_it_is_back() {
    let mut pg = Pg::start_with(PASSWORD, &[]);
    pg.create_db("realms");
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = slow_playbook(dir.path(), 700);
    let state = state_url(&pg, "realms", "acme", 2);
    let first = spawn_install(&pg, &spec, &state, &pb);
    wait_until(Duration::from_secs(20), "two steps journaled", || {
        let o = pg.psql_raw(
            "realms",
            "SELECT count(*) FROM realmctl_journal WHERE realm = 'acme' AND kind = 'stepSucceeded'",
        );
        String::from_utf8_lossy(&o.stdout).trim() == "2"
    });
    let lock_id = lease(&pg, "realms", "acme").unwrap().0;
    pg.stop();
    let o = first.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("the state database") && err.contains("is unavailable"),
        "{err}"
    );
    assert!(
        err.contains("nothing was recorded by the failed write"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD));
    pg.restart();
    // Nothing half-written: the chain verifies as it stood.
    let (code, out, _) = run(&pg, &["audit", "verify", "--state", &state]);
    assert_eq!(code, 0, "{out}");
    // The run that died could not release its lease: once expired, the operator takes it over.
    wait_until(Duration::from_secs(20), "the lease to expire", || {
        pg.psql(
            "realms",
            "SELECT coalesce(now() > expires, true) FROM realmctl_lease WHERE realm = 'acme'",
        ) == "t"
    });
    let (code, _, err) = run(&pg, &["unlock", "--state", &state, "--lock-id", &lock_id]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = install_db(&pg, &spec, &state, &pb, None);
    assert_eq!(code, 0, "{err}");
    let lines = std::fs::read_to_string(dir.path().join("fx/invocations.log")).unwrap();
    for s in ["s1", "s2"] {
        assert_eq!(
            lines.lines().filter(|l| l.ends_with(s)).count(),
            1,
            "{s} succeeded before the outage and did not run again: {lines}"
        );
    }
    let (code, out, _) = run(&pg, &["audit", "verify", "--state", &state]);
    assert_eq!(code, 0, "{out}");
}

/// Fresh database realms holding the fixture's journal (moved in with `state_copy`), edited by
/// someone with the database owner's rights (the append-only triggers disabled first).
struct DbRealms<'p> {
    pg: &'p Pg,
    fixture: std::path::PathBuf,
    next: u32,
}

/// A text as a dollar-quoted SQL literal.
fn lit(s: &str) -> String {
    assert!(!s.contains("$q$"));
    format!("$q${s}$q$")
}

impl crate::engine_audit::Mutable for DbRealms<'_> {
    fn fresh(&mut self) -> realmctl::engine::io::state::StateRef {
        self.next += 1;
        let url = state_url(self.pg, "realms", &format!("w{}", self.next), 30);
        let state = realmctl::engine::io::state::StateRef::parse(
            &url,
            Some(realmctl::secret::Secret::new(self.pg.password())),
        )
        .unwrap();
        let holder = realmctl::engine::io::lock::Holder::me("test", "copy", "t".into());
        realmctl::engine::state_copy::copy(&self.fixture.clone().into(), &state, holder).unwrap();
        state
    }

    fn mutate(
        &self,
        state: &realmctl::engine::io::state::StateRef,
        m: crate::engine_audit::Mutation<'_>,
    ) {
        use crate::engine_audit::Mutation;
        let realm = state.database().unwrap().realm().to_owned();
        let w = format!("realm = '{realm}'");
        let sql = match m {
            Mutation::Payload(seq, p) => format!(
                "UPDATE realmctl_journal SET payload = {} WHERE {w} AND seq = {seq}",
                lit(p)
            ),
            Mutation::At(seq, at) => format!(
                "UPDATE realmctl_journal SET at = {} WHERE {w} AND seq = {seq}",
                lit(at)
            ),
            Mutation::Delete(seq) => {
                format!("DELETE FROM realmctl_journal WHERE {w} AND seq = {seq}")
            }
            Mutation::Rewrite(rs) => {
                let rows: Vec<String> = rs
                    .iter()
                    .map(|r| {
                        let (k, s) = match &r.signature {
                            Some(s) => (lit(&s.key), lit(&s.sig)),
                            None => ("NULL".into(), "NULL".into()),
                        };
                        format!(
                            "('{realm}', {}, {}, {}, {}, {}, {}, {k}, {s})",
                            r.seq,
                            lit(&r.at),
                            lit(&r.kind),
                            lit(&r.payload),
                            lit(&r.prev),
                            lit(&r.hash)
                        )
                    })
                    .collect();
                format!(
                    "DELETE FROM realmctl_journal WHERE {w}; INSERT INTO realmctl_journal (realm, seq, at, kind, payload, prev, hash, signer, sig) VALUES {}",
                    rows.join(", ")
                )
            }
        };
        self.pg.psql("realms", &sql);
    }

    fn verify_cli(
        &self,
        state: &realmctl::engine::io::state::StateRef,
        args: &[&str],
    ) -> (i32, String) {
        let url = state.to_string();
        let mut all = vec!["audit", "verify", "--state", &url];
        all.extend(args);
        let (code, out, _) = run(self.pg, &all);
        (code, out)
    }
}

#[test]
fn every_journal_mutation_test_of_a_folder_passes_on_a_database() {
    let pg = Pg::start_with(PASSWORD, &[]);
    pg.create_db("realms");
    let (_dir, fixture, keys) = crate::engine_audit::journal();
    let mut realms = DbRealms {
        pg: &pg,
        fixture: fixture.clone(),
        next: 0,
    };
    // The first copy creates the schema; the attacker then turns the triggers off, as the
    // tables' owner can.
    crate::engine_audit::Mutable::fresh(&mut realms);
    pg.psql(
        "realms",
        "ALTER TABLE realmctl_journal DISABLE TRIGGER USER",
    );
    crate::engine_audit::every_mutation(&fixture, &keys, &mut realms);
    crate::engine_audit::append_after_head(&fixture, &keys, &mut realms);
    crate::engine_audit::rewritten_or_cut_tail(&fixture, &mut realms);
}

#[test]
fn export_and_import_move_a_realm_between_a_folder_and_a_database_keeping_every_hash() {
    let pg = Pg::start_with(PASSWORD, &[]);
    pg.create_db("realms");
    let (dir, fixture, keys) = crate::engine_audit::journal();
    let (code, head, _) = run(
        &pg,
        &["audit", "checkpoint", "--state", fixture.to_str().unwrap()],
    );
    assert_eq!(code, 0);
    let head = head.trim().to_owned();
    let state = state_url(&pg, "realms", "acme", 30);
    let (code, out, err) = run(
        &pg,
        &[
            "state",
            "import",
            "--from",
            fixture.to_str().unwrap(),
            "--state",
            &state,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("head {head} on both")), "{out}");
    assert_eq!(keys.trusted.len(), 2);
    // Every record signed by the operator or the customer, the head the kept checkpoint.
    let verify = |s: &str| {
        let o = rc(&pg)
            .args(["audit", "verify", "--state", s, "--checkpoint", &head])
            .args([
                "--public-key",
                "operator.key.pub",
                "--public-key",
                "customer.key.pub",
            ])
            .current_dir(dir.path().join("keys"))
            .output()
            .unwrap();
        (o.status.code(), text(&o).0)
    };
    let (code, out) = verify(&state);
    assert_eq!(
        code,
        Some(0),
        "every record signed and chained in the database: {out}"
    );
    // A second import into the same realm is refused: it holds records.
    let (code, _, err) = run(
        &pg,
        &[
            "state",
            "import",
            "--from",
            fixture.to_str().unwrap(),
            "--state",
            &state,
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already holds"), "{err}");
    // Back to a new folder: the same head, the same artifacts, verifying.
    let back = dir.path().join("back");
    let (code, out, err) = run(
        &pg,
        &[
            "state",
            "export",
            "--state",
            &state,
            "--to",
            back.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out) = verify(back.to_str().unwrap());
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        crate::engine_audit::records(&back),
        crate::engine_audit::records(&fixture),
        "every record as it was"
    );
    // The moved realm goes on: status and report read from the database.
    let (code, out, _) = run(&pg, &["status", "--state", &state]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("realm acme"), "{out}");
    // A broken chain is not moved.
    let c = crate::engine_audit::attacker(&back);
    c.execute("UPDATE records SET at = 'x' WHERE seq = 3", [])
        .unwrap();
    drop(c);
    let other = state_url(&pg, "realms", "other", 30);
    let (code, _, err) = run(
        &pg,
        &[
            "state",
            "import",
            "--from",
            back.to_str().unwrap(),
            "--state",
            &other,
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not verify, so it is not moved"), "{err}");
}

#[test]
fn an_install_role_appends_but_can_never_change_or_remove_a_record() {
    let pg = Pg::start_with(PASSWORD, &[]);
    pg.create_db("realms");
    pg.psql(
        "realms",
        &format!("CREATE ROLE installer LOGIN PASSWORD '{PASSWORD}'"),
    );
    let (code, out, err) = run(
        &pg,
        &[
            "state",
            "init",
            "--db",
            &pg.url("realms"),
            "--grant",
            "installer",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = slow_playbook(dir.path(), 0);
    let state = format!(
        "postgres://installer@127.0.0.1:{}/realms?realm=acme",
        pg.port()
    );
    let (code, v, err) = install_db(&pg, &spec, &state, &pb, None);
    assert_eq!(code, 0, "{v} {err}");
    for sql in [
        "UPDATE realmctl_journal SET kind = 'x'",
        "DELETE FROM realmctl_journal",
        "TRUNCATE realmctl_journal",
        "ALTER TABLE realmctl_journal DISABLE TRIGGER USER",
    ] {
        let o = Command::new(pg.bin().join("psql"))
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
            .arg(pg.port().to_string())
            .args(["-U", "installer", "-d", "realms", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{sql}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("permission denied") || e.contains("must be owner"),
            "{sql}: {e}"
        );
    }
}

#[test]
fn fleet_reads_every_realm_of_a_database() {
    let pg = Pg::start_with(PASSWORD, &[]);
    pg.create_db("realms");
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = slow_playbook(dir.path(), 0);
    // The spec must be the database realm's.
    let state = state_url(&pg, "realms", "beta", 30);
    let (code, _, err) = install_db(&pg, &spec, &state, &pb, None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("belongs to realm `beta`, but the spec is for realm `acme`"),
        "{err}"
    );
    let beta = dir.path().join("beta.yaml");
    std::fs::write(
        &beta,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replacen("name: acme", "name: beta", 1),
    )
    .unwrap();
    for (realm, spec) in [("acme", &spec), ("beta", &beta)] {
        let state = state_url(&pg, "realms", realm, 30);
        let (code, v, err) = install_db(&pg, spec, &state, &pb, None);
        assert_eq!(code, 0, "{v} {err}");
    }
    let (code, out, err) = run(
        &pg,
        &["fleet", "--db", &pg.url("realms"), "--output", "json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let f: Value = serde_json::from_str(&out).unwrap();
    let rows = f["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{out}");
    for (row, realm) in rows.iter().zip(["acme", "beta"]) {
        assert!(
            row["folder"]
                .as_str()
                .unwrap()
                .ends_with(&format!("?realm={realm}")),
            "{row}"
        );
        assert_eq!(row["realm"], realm, "{row}");
        assert!(
            row["journalLine"].as_str().unwrap().starts_with("verified"),
            "{row}"
        );
    }
    // A broken journal in the database is named and fails the fleet.
    pg.psql(
        "realms",
        "ALTER TABLE realmctl_journal DISABLE TRIGGER USER",
    );
    pg.psql(
        "realms",
        "UPDATE realmctl_journal SET at = 'x' WHERE realm = 'beta' AND seq = 2",
    );
    let (code, out, _) = run(&pg, &["fleet", "--db", &pg.url("realms")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN"), "{out}");
}

/// `(step id, status)` of every step of a database realm, from `status --output json`.
fn db_step_statuses(pg: &Pg, state: &str) -> Vec<(String, String)> {
    let (code, out, err) = run(pg, &["status", "--output", "json", "--state", state]);
    assert_eq!(code, 0, "{err}");
    statuses_of(&serde_json::from_str(&out).unwrap())
}

#[test]
fn sigkill_at_every_step_boundary_on_a_database_resumes_to_the_same_state() {
    use crate::engine_crash::{STEPS, effect_playbook, effects, invocations};
    use std::os::unix::process::ExitStatusExt;
    let pg = Pg::start_with(PASSWORD, &[]);
    // One database per run (each holds realm acme, the spec's), so the kills run side by side
    // and their waits for an expired lease overlap.
    let install = |db: &str, dir: &Path, kill: Option<&str>| {
        let spec = dir.join("realm.yaml");
        let mut c = rc(&pg);
        c.args(["install", "--yes", "--output", "json", "-f"])
            .arg(&spec)
            .args(["--state", &state_url(&pg, db, "acme", 2), "--playbook"])
            .arg(dir.join("playbook.yaml"));
        if let Some(k) = kill {
            c.env("REALMCTL_TEST_KILL_AT", k);
        }
        c.output().unwrap()
    };
    let setup = |db: &str| {
        pg.create_db(db);
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), SpecOpts::default());
        std::fs::rename(&s, dir.path().join("realm.yaml")).unwrap();
        let pb = effect_playbook(dir.path(), 0);
        std::fs::rename(&pb, dir.path().join("playbook.yaml")).unwrap();
        dir
    };
    let base_dir = setup("base");
    let o = install("base", base_dir.path(), None);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let base = (
        db_step_statuses(&pg, &state_url(&pg, "base", "acme", 2)),
        effects(base_dir.path()),
    );
    let points: Vec<(usize, &str, &str)> = STEPS
        .iter()
        .flat_map(|s| ["started", "acted", "succeeded"].map(|p| (*s, p)))
        .enumerate()
        .map(|(i, (s, p))| (i, s, p))
        .collect();
    std::thread::scope(|scope| {
        for (i, step, point) in points {
            let (pg, install, setup, base) = (&pg, &install, &setup, &base);
            scope.spawn(move || {
                let db = format!("k{i}");
                let dir = setup(&db);
                let url = state_url(pg, &db, "acme", 2);
                let kill = format!("{step}:{point}");
                let o = install(&db, dir.path(), Some(&kill));
                assert_eq!(o.status.signal(), Some(9), "{kill} {:?}", text(&o));
                let state = realmctl::engine::io::state::StateRef::parse(
                    &url,
                    Some(realmctl::secret::Secret::new(pg.password())),
                )
                .unwrap();
                assert_kill_landed(&state, &kill);
                let before = invocations(dir.path());
                // The killed run's lease expires (nobody renews it); the operator takes it over.
                let (lock_id, _) = lease(pg, &db, "acme").expect("the killed run's lease");
                wait_until(Duration::from_secs(20), "the lease to expire", || {
                    pg.psql(&db, "SELECT now() > expires FROM realmctl_lease") == "t"
                });
                let (code, _, err) = run(pg, &["unlock", "--state", &url, "--lock-id", &lock_id]);
                assert_eq!(code, 0, "{kill}: {err}");
                let o = install(&db, dir.path(), None);
                assert_eq!(o.status.code(), Some(0), "{kill} {:?}", text(&o));
                assert_eq!(
                    (db_step_statuses(pg, &url), effects(dir.path())),
                    *base,
                    "{kill}: the same outcome as an uninterrupted run"
                );
                let inv = invocations(dir.path());
                for (s, n) in &inv {
                    let expected = if s == step && point == "acted" { 2 } else { 1 };
                    assert_eq!(
                        *n, expected,
                        "{s} after a kill at {kill}: {inv:?} (before: {before:?})"
                    );
                }
                let (code, out, _) = run(pg, &["audit", "verify", "--state", &url]);
                assert_eq!(code, 0, "{kill}: {out}");
            });
        }
    });
}

#[test]
fn appends_from_two_machines_on_a_stale_head_never_fork_the_chain() {
    use realmctl::engine::io::journal::{Durability, Journal};
    use realmctl::engine::model::event::Event;
    let pg = Pg::start_with(PASSWORD, &[]);
    pg.create_db("realms");
    let state = realmctl::engine::io::state::StateRef::parse(
        &state_url(&pg, "realms", "acme", 30),
        Some(realmctl::secret::Secret::new(pg.password())),
    )
    .unwrap();
    let approval = |by: &str| Event::Approved {
        phase: 5,
        by: by.into(),
        note: None,
        covers: "c".into(),
        definition: None,
        customer: None,
    };
    // Two connections, as two machines: each remembers the head after its own append.
    let (mut a, mut b) = (
        Journal::create(&state).unwrap(),
        Journal::create(&state).unwrap(),
    );
    let now = time::OffsetDateTime::now_utc();
    let mut seqs = Vec::new();
    for i in 0..6 {
        let (j, who) = if i % 2 == 0 {
            (&mut a, "a")
        } else {
            (&mut b, "b")
        };
        seqs.push(j.append(&approval(who), now, Durability::Sync).unwrap().seq);
    }
    // Every append after the first of each found its remembered head taken and appended after
    // the real one.
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let records = Journal::open_read_only(&state).unwrap().records().unwrap();
    assert_eq!(
        realmctl::engine::model::chain::verify_chain(&records, None)
            .unwrap()
            .unwrap()
            .seq,
        6
    );
}

/// A durable append is flushed before it returns even where the role's default is
/// `synchronous_commit = off`, and a step start (buffered) is not: after each append, another
/// session reads how far the WAL's flush lags its insert position (the WAL writer, which
/// would flush on its own, set to wait 10 s).
#[test]
fn a_durable_append_is_flushed_even_where_the_role_defaults_to_synchronous_commit_off() {
    use realmctl::engine::io::journal::{Durability, Journal};
    use realmctl::engine::model::event::Event;
    let pg = Pg::start_with(PASSWORD, &["wal_writer_delay=10000"]);
    pg.create_db("realms");
    pg.psql(
        "realms",
        &format!(
            "ALTER ROLE {} SET synchronous_commit = off",
            crate::pg::USER
        ),
    );
    let state = realmctl::engine::io::state::StateRef::parse(
        &state_url(&pg, "realms", "acme", 30),
        Some(realmctl::secret::Secret::new(pg.password())),
    )
    .unwrap();
    let mut j = Journal::create(&state).unwrap();
    let ev = Event::Approved {
        phase: 5,
        by: "ann".into(),
        note: None,
        covers: "c".into(),
        definition: None,
        customer: None,
    };
    let now = time::OffsetDateTime::now_utc();
    let lag = || -> i64 {
        pg.psql(
            "realms",
            "SELECT (pg_current_wal_insert_lsn() - pg_current_wal_flush_lsn())::bigint",
        )
        .parse()
        .unwrap()
    };
    j.append(&ev, now, Durability::Buffered).unwrap();
    assert!(lag() > 0, "a buffered append is not flushed at once");
    j.append(&ev, now, Durability::Sync).unwrap();
    assert_eq!(lag(), 0, "a durable append is flushed before it returns");
    j.append(&ev, now, Durability::Buffered).unwrap();
    assert!(lag() > 0);
    j.append_all(&[&ev, &ev], now, Durability::Sync).unwrap();
    assert_eq!(lag(), 0, "a durable pair is flushed before it returns");
    assert_eq!(j.records().unwrap().len(), 5);
}
