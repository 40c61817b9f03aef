//! Durability proven from the system calls of the real binary (issue #11).
//!
//! SIGKILL cannot tell `synchronous=FULL` from `OFF`: a killed process leaves its writes in
//! the page cache, and they survive. What survives a power loss is what was fsync'd. So these
//! tests run `realmctl` under `strace` (Debian's) and read, in order, every write to a SQLite
//! WAL, every fsync/fdatasync, and every write to stdout or to a socket:
//!
//! - a WAL frame header is the 24-byte write at the start of each frame; its bytes 4..8 (the
//!   database size after the commit) are non-zero only on the last frame of a transaction, so
//!   each such write marks one commit (<https://www.sqlite.org/fileformat2.html#walformat>);
//! - a commit is durable at commit time when an fsync or fdatasync of its WAL completes while
//!   the commit still holds the WAL's write lock (an `fcntl` unlock of byte 120 of the `-shm`
//!   file ends the commit; SQLite's `WAL_WRITE_LOCK`). Under `synchronous=NORMAL` the lock is
//!   released first and only a later checkpoint syncs the WAL, which a looser check (a sync
//!   anywhere before the output) would wrongly accept.
//!
//! Checked: every journal record `install` and `approve` write is fsync'd before anything
//! follows except step starts written alone, which are the only `NORMAL` commits (a step's
//! success and the next step's start of the same phase are one commit; docs/engine.md); an
//! approval is fsync'd before `approve` prints it; on the AWS stand-in, the intent before each
//! cloud create is fsync'd before the create call leaves, a retry record before anything
//! follows, and `unlock`'s takeover before it says so; every quota decision, admitted or denied, is
//! fsync'd before the CLI prints it, and `quota serve` sends its j-th answer only after
//! j + 1 commits beyond its schema's were fsync'd (a check shown to fail on a build that answers
//! before committing).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{SpecOpts, realmctl_std};
use crate::engine_support::{local_playbook, spec};
use realmctl::engine::io::journal::Journal;

/// One traced system call, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
enum Sys {
    /// A write (write, pwrite64, writev, sendto) to `path`: its first bytes and its length.
    Write {
        path: String,
        head: Vec<u8>,
        len: usize,
    },
    /// An fsync or fdatasync of `path` that completed.
    Sync { path: String },
    /// The release of a WAL's write lock (byte 120 of its `-shm` file): the end of a commit.
    WriteUnlock { shm: String },
}

const TRACED: &str = "trace=write,pwrite64,writev,sendto,sendmsg,fsync,fdatasync,fcntl";

/// `strace` arguments: follow threads and children, name each fd's file, every byte in hex.
fn strace_args(out: &Path) -> Vec<String> {
    ["-f", "-qq", "-y", "-xx", "-s", "24", "-e", TRACED, "-o"]
        .iter()
        .map(|s| s.to_string())
        .chain([out.display().to_string()])
        .collect()
}

/// The realmctl binary's path and isolated environment, as a command run under strace.
fn traced(trace: &Path) -> Command {
    let inner = realmctl_std();
    let mut c = Command::new("strace");
    c.args(strace_args(trace))
        .arg("--")
        .arg(inner.get_program())
        .env_clear();
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    for k in ["PATH", "HOME", "TMPDIR"] {
        if let (Some(v), true) = (std::env::var_os(k), inner.get_envs().all(|(e, _)| e != k)) {
            c.env(k, v);
        }
    }
    c
}

/// Decodes strace's `\xNN` escapes (`-xx` prints every byte that way).
fn unhex(s: &str) -> Vec<u8> {
    s.split("\\x")
        .filter(|p| !p.is_empty())
        .map(|p| u8::from_str_radix(&p[..2], 16).unwrap())
        .collect()
}

/// The fd's path in `name(FD<PATH>, ...`.
fn fd_path(args: &str) -> Option<String> {
    let start = args.find('<')? + 1;
    let end = start + args[start..].find('>')?;
    Some(String::from_utf8_lossy(&unhex(&args[start..end])).into_owned())
}

/// The first string argument (`"\x..."`) and the number after it (the length, for write and
/// pwrite64; for writev the iov_len).
fn first_string(args: &str) -> (Vec<u8>, usize) {
    let Some(q) = args.find('"') else {
        return (Vec::new(), 0);
    };
    let rest = &args[q + 1..];
    let end = rest.find('"').unwrap_or(rest.len());
    let head = unhex(&rest[..end]);
    let after = rest[end..]
        .trim_start_matches('"')
        .trim_start_matches("...");
    let len = after
        .trim_start_matches([',', ' '])
        .trim_start_matches("iov_len=")
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(head.len());
    (head, len)
}

/// Parses an strace output file into the calls, in completion order for syncs and start order
/// for writes.
fn parse(trace: &Path) -> Vec<Sys> {
    let text = std::fs::read_to_string(trace).unwrap();
    let mut out = Vec::new();
    let mut pending_sync: HashMap<String, String> = HashMap::new();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(resumed) = rest.strip_prefix("<... ") {
            if resumed.starts_with("fsync") || resumed.starts_with("fdatasync") {
                let path = pending_sync
                    .remove(pid)
                    .expect("a resumed sync was started");
                if resumed.trim_end().ends_with("= 0") {
                    out.push(Sys::Sync { path });
                }
            }
            continue;
        }
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        let Some(path) = fd_path(args) else {
            continue;
        };
        match name {
            "fcntl" => {
                if args.contains("F_UNLCK")
                    && args.contains("l_start=120,")
                    && path.ends_with("-shm")
                {
                    out.push(Sys::WriteUnlock { shm: path });
                }
            }
            "fsync" | "fdatasync" => {
                if args.ends_with("<unfinished ...>") {
                    pending_sync.insert(pid.to_owned(), path);
                } else if args.trim_end().ends_with("= 0") {
                    out.push(Sys::Sync { path });
                }
            }
            _ => {
                let (head, len) = first_string(args);
                out.push(Sys::Write { path, head, len });
            }
        }
    }
    out
}

/// Whether the call at `i` is a WAL commit of `wal`: a 24-byte frame header whose "database
/// size after commit" field is non-zero.
fn is_commit(s: &Sys, wal: &str) -> bool {
    matches!(s, Sys::Write { path, head, len: 24 } if path == wal && head.len() == 24 && head[4..8] != [0, 0, 0, 0])
}

fn is_frame(s: &Sys, wal: &str) -> bool {
    matches!(s, Sys::Write { path, len: 24, .. } if path == wal)
}

/// The positions of the commits to `wal`.
fn commits(calls: &[Sys], wal: &str) -> Vec<usize> {
    (0..calls.len())
        .filter(|&i| is_commit(&calls[i], wal))
        .collect()
}

/// The position of the fsync that makes the commit at `i` durable, if the commit itself makes
/// it so: the sync of its WAL must complete while the commit still holds the WAL's write lock
/// (SQLite's `wal_write_lock`, byte 120 of the `-shm` file), before the next frame and before
/// any write to the database file. Under `synchronous=NORMAL` the lock is released with the WAL
/// unsynced, and only a later checkpoint syncs it: durable later, not at commit.
fn synced(calls: &[Sys], i: usize, wal: &str) -> Option<usize> {
    let db = wal.trim_end_matches("-wal");
    let shm = format!("{db}-shm");
    for (j, c) in calls.iter().enumerate().skip(i + 1) {
        match c {
            Sys::Sync { path } if path == wal => return Some(j),
            Sys::WriteUnlock { shm: s } if *s == shm => return None,
            Sys::Write { path, .. } if path == db => return None,
            c if is_frame(c, wal) => return None,
            _ => {}
        }
    }
    None
}

fn wal_of(db: &Path) -> String {
    let db = std::fs::canonicalize(db).unwrap();
    format!("{}-wal", db.display())
}

/// Runs `realmctl ARGS` under strace; returns the exit code and the calls.
fn run_traced(dir: &Path, name: &str, args: &[&str]) -> (Option<i32>, Vec<Sys>, String) {
    let trace = dir.join(format!("{name}.strace"));
    let o = traced(&trace)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("strace is installed by scripts/test.sh (apt-get install strace)");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    (o.status.code(), parse(&trace), err)
}

/// A journal record as these checks see it: its kind and, for a step's records, its phase.
#[derive(Debug)]
struct Rec {
    kind: String,
    phase: Option<u64>,
}

impl PartialEq<&str> for Rec {
    fn eq(&self, kind: &&str) -> bool {
        self.kind == *kind
    }
}

/// The journal's records after position `from`.
fn kinds_after(state: &Path, from: usize) -> Vec<Rec> {
    Journal::open_read_only(state)
        .unwrap()
        .records()
        .unwrap()
        .into_iter()
        .skip(from)
        .map(|r| Rec {
            phase: serde_json::from_str::<serde_json::Value>(&r.payload).unwrap()["phase"].as_u64(),
            kind: r.kind,
        })
        .collect()
}

/// Which commit each record belongs to, by the engine's rule (docs/engine.md): a step's start
/// right after a success of the same phase is written in that success's commit; every other
/// record is a commit of its own.
fn commit_of(recs: &[Rec]) -> Vec<usize> {
    let mut out = Vec::with_capacity(recs.len());
    let mut n = 0;
    for (i, r) in recs.iter().enumerate() {
        let joins = i > 0
            && r.kind == "stepStarted"
            && recs[i - 1].kind == "stepSucceeded"
            && recs[i - 1].phase == r.phase;
        if i > 0 && !joins {
            n += 1;
        }
        out.push(n);
    }
    out
}

fn record_count(state: &Path) -> usize {
    Journal::open_read_only(state)
        .map(|j| j.records().unwrap().len())
        .unwrap_or(0)
}

/// Checks one traced command that appended `recs` to the journal: one WAL commit per commit
/// of [`commit_of`], fsync'd unless it holds nothing but a step start. Returns the position in
/// `calls` of each record's commit.
fn check_journal_commits(calls: &[Sys], wal: &str, recs: &[Rec], what: &str) -> Vec<usize> {
    let cs = commits(calls, wal);
    let of = commit_of(recs);
    assert_eq!(
        cs.len(),
        of.last().map_or(0, |n| n + 1),
        "{what}: one WAL commit per commit of the journal's records ({recs:?})"
    );
    for (k, r) in recs.iter().enumerate() {
        let alone = of.iter().filter(|&&c| c == of[k]).count() == 1;
        let sync = synced(calls, cs[of[k]], wal);
        if r.kind == "stepStarted" && alone {
            assert_eq!(sync, None, "{what}: record {k} ({r:?}) is a NORMAL commit");
        } else {
            assert!(
                sync.is_some(),
                "{what}: record {k} ({r:?}) was not fsync'd before the next write"
            );
        }
    }
    of.iter().map(|&c| cs[c]).collect()
}

#[test]
fn every_journal_record_but_step_starts_is_fsynced_and_approvals_before_they_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    let (s, sp, p) = (
        state.to_str().unwrap(),
        spec.to_str().unwrap(),
        pb.to_str().unwrap(),
    );
    let install = ["install", "--yes", "-f", sp, "--state", s, "--playbook", p];

    // First run: to the phase-5 gate.
    let (code, calls, err) = run_traced(dir.path(), "install-1", &install);
    assert_eq!(code, Some(3), "{err}");
    let wal = wal_of(&state.join("journal.db"));
    let first = kinds_after(&state, 0);
    assert!(first.iter().filter(|k| **k == "stepStarted").count() >= 5);
    assert!(first.iter().any(|k| *k == "gateWaiting"));
    assert!(
        commit_of(&first).windows(2).any(|w| w[0] == w[1]),
        "some step's success shares its commit with the next start: {first:?}"
    );
    check_journal_commits(&calls, &wal, &first, "install to the gate");

    // The approval: one record, fsync'd before `approve` says it is recorded.
    let before = record_count(&state);
    let (code, calls, err) = run_traced(
        dir.path(),
        "approve",
        &["approve", "--phase", "5", "--by", "Ann", "--state", s],
    );
    assert_eq!(code, Some(0), "{err}");
    let kinds = kinds_after(&state, before);
    assert!(kinds.len() == 1 && kinds[0] == "approved", "{kinds:?}");
    check_journal_commits(&calls, &wal, &kinds, "approve");
    let commit = commits(&calls, &wal)[0];
    let sync = synced(&calls, commit, &wal).unwrap();
    let printed = calls
        .iter()
        .position(|c| matches!(c, Sys::Write { head, .. } if head.starts_with(b"phase 5 approved")))
        .expect("approve printed its confirmation");
    assert!(
        sync < printed,
        "the approval was printed (call {printed}) before it was fsync'd (call {sync})"
    );

    // Second run: to the end, including the quota seed (its own ledger, fsync'd too).
    let before = record_count(&state);
    let (code, calls, err) = run_traced(dir.path(), "install-2", &install);
    assert_eq!(code, Some(0), "{err}");
    let kinds = kinds_after(&state, before);
    assert!(kinds.iter().any(|k| *k == "stepSucceeded"));
    check_journal_commits(&calls, &wal, &kinds, "install to the end");
    let quota_wal = wal_of(&state.join("quota.db"));
    let seeds = commits(&calls, &quota_wal);
    assert!(!seeds.is_empty(), "quota.seed committed to the ledger");
    for i in seeds {
        assert!(
            synced(&calls, i, &quota_wal).is_some(),
            "the quota seed was not fsync'd"
        );
    }
}

/// On the AWS stand-in (plain http on loopback, so the create calls show in the trace): the
/// intent journaled before each cloud create is fsync'd before the create call leaves; a
/// failed attempt's retry record is fsync'd before anything follows; and a lock takeover
/// (`unlock` after a killed run) is fsync'd before `unlock` says the lock is cleared.
#[cfg(all(feature = "test-actions", feature = "eks", feature = "object-store"))]
#[test]
fn intents_before_cloud_creates_retries_and_takeovers_are_fsynced() {
    use crate::engine_support::{ROLES_GATE, approve, install, playbook};
    let aws = crate::common::AwsStandIn::start(std::time::Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        SpecOpts {
            endpoint: Some(aws.url()),
            cluster: Some("digibee-durable".into()),
            ..SpecOpts::default()
        },
    );
    let fx = dir.path().join("fx");
    std::fs::create_dir_all(&fx).unwrap();
    let phase6 = format!(
        "steps: [{{id: flaky, action: test.flaky, retries: 2, params: {{dir: \"{}\", failures: 1}}}}, {{id: cluster, action: cluster.apply}}, {{id: cluster-ready, action: cluster.wait}}]",
        fx.display()
    );
    let pb = playbook(
        dir.path(),
        [
            "steps: [{id: spec, action: spec.validate}, {id: cloud-account, action: cloud.account}]",
            "steps: [{id: credentials, action: cloud.credentials}]",
            "steps: [{id: permissions, action: cloud.permissions}]",
            "steps: [{id: artifacts, action: artifacts.render}]",
            ROLES_GATE,
            &phase6,
        ],
    );
    let state = dir.path().join("state");
    let (code, _, err) = install(&spec, &state, &pb, &[]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(approve(&state, 5).status.code(), Some(0));

    let (s, sp, p) = (
        state.to_str().unwrap(),
        spec.to_str().unwrap(),
        pb.to_str().unwrap(),
    );
    let before = record_count(&state);
    let (code, calls, err) = run_traced(
        dir.path(),
        "install-cloud",
        &[
            "install",
            "--yes",
            "--retry-base-ms",
            "10",
            "-f",
            sp,
            "--state",
            s,
            "--playbook",
            p,
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let wal = wal_of(&state.join("journal.db"));
    let kinds = kinds_after(&state, before);
    assert!(kinds.iter().any(|k| *k == "stepRetry"), "{kinds:?}");
    let cs = check_journal_commits(&calls, &wal, &kinds, "install on the AWS stand-in");
    let intents: Vec<usize> = kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| **k == "stepIntent")
        .map(|(i, _)| cs[i])
        .collect();
    let creates: Vec<usize> = (0..calls.len())
        .filter(|&i| {
            matches!(&calls[i], Sys::Write { path, head, .. } if path.starts_with("socket:") && head.starts_with(b"POST /clusters"))
        })
        .collect();
    assert_eq!(
        creates.len(),
        2,
        "the cluster's and the node group's create calls are in the trace"
    );
    assert!(intents.len() >= 2, "{kinds:?}");
    for &w in &creates {
        let intent = intents
            .iter()
            .copied()
            .rfind(|&c| c < w)
            .expect("an intent was committed before the create call");
        let sync = synced(&calls, intent, &wal).expect("the intent was fsync'd at commit");
        assert!(
            sync < w,
            "the create call (call {w}) left before its intent (call {intent}) was fsync'd"
        );
    }

    // A run killed while holding the lock, then `unlock`: the takeover record is fsync'd
    // before `unlock` says the lock is cleared.
    let o = crate::common::realmctl_std()
        .args(["install", "--yes", "-f", sp, "--state", s, "--playbook", p])
        .env("REALMCTL_TEST_KILL_AT", "opened")
        .output()
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&o.status),
        Some(9)
    );
    let id = crate::cloud_install::stale_lock_id(&state).expect("the killed run left its lock");
    let before = record_count(&state);
    let (code, calls, err) = run_traced(
        dir.path(),
        "unlock",
        &["unlock", "--lock-id", &id, "--state", s],
    );
    assert_eq!(code, Some(0), "{err}");
    let kinds = kinds_after(&state, before);
    assert!(kinds.len() == 1 && kinds[0] == "lockTakenOver", "{kinds:?}");
    check_journal_commits(&calls, &wal, &kinds, "unlock");
    let sync = synced(&calls, commits(&calls, &wal)[0], &wal).unwrap();
    let said = calls
        .iter()
        .position(
            |c| matches!(c, Sys::Write { head, .. } if head.starts_with(b"cleared the stale lock")),
        )
        .expect("unlock said it cleared the lock");
    assert!(
        sync < said,
        "unlock spoke (call {said}) before the takeover was fsync'd (call {sync})"
    );
}

/// The quota CLI's decisions: admitted and denied, each fsync'd before it is printed.
#[test]
fn every_quota_decision_is_fsynced_before_the_cli_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let spec = crate::quota_cli::spec(dir.path(), 1); // 3 Prod RTUs: one Medium fits.
    let o = realmctl_std()
        .args(["quota", "seed", "--db"])
        .arg(&db)
        .arg("-f")
        .arg(&spec)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let wal = wal_of(&db);
    let dbs = db.to_str().unwrap();
    for (pipeline, expect) in [("p1", Some(0)), ("p2", Some(1))] {
        let (code, calls, err) = run_traced(
            dir.path(),
            pipeline,
            &[
                "quota",
                "deploy",
                "--output",
                "json",
                "--db",
                dbs,
                "--realm",
                "acme",
                "--env",
                "prod",
                "--pipeline",
                pipeline,
                "--version",
                "1.0",
                "--size",
                "medium",
            ],
        );
        assert_eq!(code, expect, "{pipeline}: {err}");
        let cs = commits(&calls, &wal);
        assert_eq!(cs.len(), 1, "{pipeline}: one commit per decision");
        let sync = synced(&calls, cs[0], &wal).expect("the decision was fsync'd");
        let printed = calls
            .iter()
            .position(|c| matches!(c, Sys::Write { head, .. } if head.starts_with(b"{")))
            .expect("the decision was printed");
        assert!(sync < printed, "{pipeline}: printed before it was fsync'd");
    }
}

/// A traced `quota serve` run: one config PUT, then twelve admissions sent one after another
/// by one client (4 admitted, 8 denied); the calls, the WAL, and the answers' statuses.
fn serve_traced(dir: &Path, fault: Option<&str>) -> (Vec<Sys>, String, Vec<u16>) {
    use realmctl::quota::tokens::{Scope, mint};
    use std::io::{BufRead, BufReader};
    let (admin, a) = mint(&Scope::Admin);
    let (acme, b) = mint(&Scope::Realm("acme".into()));
    let tokens = dir.join("tokens.yaml");
    std::fs::write(&tokens, format!("{a}\n{b}\n")).unwrap();
    let db = dir.join("core.db");
    let trace = dir.join("serve.strace");
    let mut cmd = traced(&trace);
    if let Some(f) = fault {
        cmd.env("REALMCTL_TEST_FAULT", f);
    }
    let mut child = cmd
        .args(["quota", "serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .arg("--tokens")
        .arg(&tokens)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    stderr.read_line(&mut line).unwrap();
    // Keep reading, so the server never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut statuses = vec![crate::common::put_config(
        &base,
        &admin,
        "acme",
        r#"{"pipelineSubscriptions": 4}"#,
    )];
    for i in 0..12 {
        let body = format!(
            r#"{{"environment": "prod", "pipeline": "p{i}", "version": "1.0", "size": "medium", "replicas": 1}}"#
        );
        let r = agent
            .post(format!("{base}/v1/realms/acme/deployments"))
            .header("Authorization", format!("Bearer {acme}"))
            .content_type("application/json")
            .send(body)
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    // SIGTERM to the server (strace's child): a graceful stop; strace then exits with it.
    let server =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
    let server = server
        .split_whitespace()
        .next()
        .expect("strace runs the server");
    let _ = Command::new("kill").args(["-TERM", server]).status();
    let _ = child.wait();
    (parse(&trace), wal_of(&db), statuses)
}

/// The positions of the answers `quota serve` wrote to its sockets, in order.
fn answers(calls: &[Sys]) -> Vec<usize> {
    (0..calls.len())
        .filter(|&i| {
            matches!(&calls[i], Sys::Write { path, head, .. } if path.starts_with("socket:") && head.starts_with(b"HTTP/1.1 "))
        })
        .collect()
}

/// Counts commits: the j-th answer (0-based, in the order sent) must follow at least
/// `base + j + 1` commits of `wal` whose fsync completed before it, where `base` counts those
/// made before the server said it listens (its schema). With one client sending one request
/// at a time, a server that answered a request before its own commit was synced falls one
/// short at that answer. Returns the answers checked, or the first that falls short.
fn answers_follow_their_own_synced_commits(calls: &[Sys], wal: &str) -> Result<usize, String> {
    let listening = calls
        .iter()
        .position(
            |c| matches!(c, Sys::Write { head, .. } if head.starts_with(b"realmctl quota service")),
        )
        .expect("the server said it listens");
    let synced_before = |at: usize| {
        commits(calls, wal)
            .into_iter()
            .filter(|&c| c < at && synced(calls, c, wal).is_some_and(|s| s < at))
            .count()
    };
    let base = synced_before(listening);
    let answers = answers(calls);
    for (j, &i) in answers.iter().enumerate() {
        let have = synced_before(i);
        if have < base + j + 1 {
            return Err(format!(
                "answer {j} (call {i}) follows {have} synced commits, fewer than {}: it was sent before its own commit was durable",
                base + j + 1
            ));
        }
    }
    Ok(answers.len())
}

/// `quota serve`: every answer, admitted or denied, leaves after its own commit was fsync'd
/// (counted, not taken from the last commit before it: that one may be the previous
/// request's).
#[test]
fn every_answer_quota_serve_sends_follows_its_own_fsynced_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (calls, wal, statuses) = serve_traced(dir.path(), None);
    // The config, then 8 Prod RTUs: four Medium (2 RTU) admissions, then denials.
    assert_eq!(statuses[0], 200);
    assert_eq!(
        statuses[1..].iter().filter(|s| **s == 200).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses[1..].iter().filter(|s| **s == 409).count(),
        8,
        "{statuses:?}"
    );
    assert_eq!(
        answers_follow_their_own_synced_commits(&calls, &wal),
        Ok(13)
    );
}

/// The check above fails on a build that answers each request before committing it (a
/// test-only fault), while the check it replaced (the last commit before each answer was
/// fsync'd) does not notice: that commit is the previous request's.
#[cfg(feature = "test-actions")]
#[test]
fn the_serve_durability_check_fails_on_a_server_that_answers_before_committing() {
    let dir = tempfile::tempdir().unwrap();
    let (calls, wal, statuses) = serve_traced(dir.path(), Some("ack-before-commit"));
    assert_eq!(statuses.len(), 13);
    let err = answers_follow_their_own_synced_commits(&calls, &wal).unwrap_err();
    assert!(err.contains("before its own commit was durable"), "{err}");
    let last_commit_synced = answers(&calls).into_iter().all(|i| {
        (0..i)
            .rev()
            .find(|&j| is_commit(&calls[j], &wal))
            .and_then(|c| synced(&calls, c, &wal))
            .is_some_and(|s| s < i)
    });
    assert!(
        last_commit_synced,
        "the replaced check would have passed this server"
    );
}

#[test]
fn the_trace_parser_reads_frames_syncs_and_resumed_calls() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t");
    let hex = |s: &str| s.bytes().map(|b| format!("\\x{b:02x}")).collect::<String>();
    let wal = "/s/j.db-wal";
    let commit_hdr = "\\x00\\x00\\x00\\x04\\x00\\x00\\x00\\x07\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00";
    let frame_hdr = "\\x00\\x00\\x00\\x04\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00";
    std::fs::write(
        &t,
        format!(
            "1 pwrite64(5<{w}>, \"{frame_hdr}\", 24, 32) = 24\n\
             1 pwrite64(5<{w}>, \"{commit_hdr}\", 24, 4152) = 24\n\
             2 fsync(5<{w}> <unfinished ...>\n\
             1 write(1<{o}>, \"{p}\"..., 40) = 40\n\
             2 <... fsync resumed>) = 0\n",
            w = hex(wal),
            o = hex("/dev/null"),
            p = hex("phase 5 approved")
        ),
    )
    .unwrap();
    let calls = parse(&t);
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert!(!is_commit(&calls[0], wal) && is_frame(&calls[0], wal));
    assert!(is_commit(&calls[1], wal));
    assert_eq!(commits(&calls, wal), vec![1]);
    // The sync completed after the write to stdout started: not before it.
    assert_eq!(synced(&calls, 1, wal), Some(3));
    assert!(matches!(&calls[2], Sys::Write { head, len: 40, .. } if head.starts_with(b"phase 5")));
}
