//! Install engine benchmarks (issue #4), written into `docs/benchmarks.md`:
//!
//! - journal overhead per step: `install` of a playbook of 100 no-op steps, per step, against a
//!   bare fsync'd single-row SQLite commit (WAL, `synchronous=FULL`) on the same disk, in the
//!   same run (goal ≤ 2×);
//! - `audit verify` throughput against `sha256sum` over the same bytes (goal ≥ 0.5×).
//!
//! - the EKS install against the AWS stand-in: API calls and polls, engine overhead
//!   (`engine/eks.rs`, section `eks`);
//! - the AKS install against the Azure stand-in: ARM calls, `Retry-After`, engine overhead
//!   (`engine/aks.rs`, section `aks`);
//! - the GKE install against the Google stand-in: operation polls, engine overhead
//!   (`engine/gke.rs`, section `gke`);
//! - `platform.apply` of a 200-object bundle: calls per object, wall time beyond readiness
//!   delays, a no-op re-apply (`engine/platform.rs`, section `platform`).
//!
//! - `fleet` over 1,000 state folders: wall time and peak memory (`engine/fleet.rs`, section
//!   `fleet`).
//! - the install state on PostgreSQL: journal append per step against a bare commit, and
//!   `fleet --db` over 1,000 realms (`engine/state_db.rs`, section `state-db`).
//! - `destroy` of a GKE realm with 50 leftovers on the Google stand-in: API calls, wall time
//!   beyond the deletion delay (`engine/destroy.rs`, section `destroy`).
//!
//! Run with `cargo bench --bench engine --features test-actions` (`-- eks`, `-- aks`, `-- gke` or
//! `-- journal` for one section).

#[cfg(feature = "aks")]
#[path = "engine/aks.rs"]
mod aks;
#[cfg(feature = "gke")]
#[path = "engine/destroy.rs"]
mod destroy;
#[cfg(feature = "eks")]
#[path = "engine/eks.rs"]
mod eks;
#[path = "engine/fleet.rs"]
mod fleet;
#[cfg(feature = "gke")]
#[path = "engine/gke.rs"]
mod gke;
#[allow(dead_code)]
#[path = "../tests/it/pg.rs"]
mod pg;
#[cfg(feature = "gke")]
#[path = "engine/platform.rs"]
mod platform;
#[path = "engine/state_db.rs"]
mod state_db;
mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use realmctl::checks::{Category, CheckResult};
use realmctl::crypto::sha256_hex;
use realmctl::engine::io::journal::{Durability, Journal};
use realmctl::engine::io::store::Store;
use realmctl::engine::model::event::{Event, RunSubject};
use realmctl::engine::model::output::{ArtifactRef, StepOutput};
use realmctl::engine::model::playbook;
use realmctl::engine::{CheckOptions, RunOptions, audit, run};
use realmctl::quota::seed;

fn spec(dir: &Path) -> realmctl::spec::Spec {
    let text =
        realmctl::spec::init::render(realmctl::spec::Provider::Eks, "bench", "digibee.bench.test")
            .unwrap();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("certs/wildcard.pem"), "x").unwrap();
    std::fs::write(dir.join("certs/wildcard.key"), "x").unwrap();
    std::fs::write(dir.join("realm.yaml"), text).unwrap();
    realmctl::spec::load(&dir.join("realm.yaml")).unwrap()
}

fn noop_playbook(steps: usize) -> playbook::Playbook {
    let mut s = String::from("apiVersion: realmctl/v1\nkind: Playbook\nname: bench\nphases:\n");
    s.push_str("  - number: 1\n    id: p1\n    title: P1\n    owner: digibee\n    steps:\n");
    for i in 0..steps {
        s.push_str(&format!("      - {{id: s{i}, action: test.noop}}\n"));
    }
    for n in 2..=6 {
        s.push_str(&format!(
            "  - {{number: {n}, id: p{n}, title: P{n}, owner: digibee}}\n"
        ));
    }
    playbook::parse(&s, "bench").unwrap()
}

/// The options of an in-process install into `state`: local store and quota ledger, one
/// check at a time, 1 ms retry back-off.
fn install_options(state: &Path) -> RunOptions {
    let mut opts = RunOptions::new(
        "bench",
        Store::local(state),
        seed::Target::default_for(state),
    );
    opts.checks = CheckOptions {
        concurrency: Some(1),
        ..CheckOptions::default()
    };
    opts.retry_base = Duration::from_millis(1);
    opts
}

/// A multi-thread runtime, as the CLI runs installs on.
fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// When each step's success was reported (the engine reports one once it is durable).
#[derive(Default)]
struct Successes(std::sync::Mutex<Vec<Instant>>);

impl realmctl::checks::Observer for Successes {}

impl realmctl::engine::EngineObserver for Successes {
    fn on_step_end(
        &self,
        _: &realmctl::engine::model::playbook::StepDef,
        end: &realmctl::engine::StepEnd<'_>,
    ) {
        if matches!(end, realmctl::engine::StepEnd::Succeeded(_)) {
            self.0.lock().unwrap().push(Instant::now());
        }
    }
}

impl Successes {
    /// Seconds per step in the steady state of a one-phase run: from the first step's success
    /// to the second-to-last's, over the steps between. Each interval is one step: its action
    /// and the commit of its success with the next step's start (the phase's last success is
    /// written alone, so it is left out); the run's fixed costs (lock, first and last records,
    /// connections) are outside.
    fn per_step(self) -> f64 {
        let ts = self.0.into_inner().unwrap();
        let n = ts.len();
        assert!(n >= 3, "{n} successes");
        (ts[n - 2] - ts[0]).as_secs_f64() / (n - 2) as f64
    }
}

/// Seconds per step of a `steps`-step no-op install in the steady state (fresh state each
/// round).
fn engine_per_step(
    dir: &Path,
    spec: &realmctl::spec::Spec,
    steps: usize,
    key: Option<std::sync::Arc<realmctl::signing::SigningKey>>,
) -> f64 {
    let state = dir.join(format!("state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let pb = noop_playbook(steps);
    let mut opts = install_options(&state);
    opts.signing_key = key;
    let rt = multi_thread();
    // Create the journal first so the round measures steps, not file creation.
    drop(Journal::create(&state).unwrap());
    let seen = Successes::default();
    let r = rt
        .block_on(run::install(&state.clone().into(), spec, &pb, &opts, &seen))
        .unwrap();
    assert_eq!(r.executed.len(), steps);
    let _ = std::fs::remove_dir_all(&state);
    seen.per_step()
}

/// Seconds per bare single-row INSERT commit, WAL, synchronous=FULL.
fn bare_commit(dir: &Path, n: usize) -> f64 {
    let path = dir.join("bare.db");
    let _ = std::fs::remove_file(&path);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .unwrap();
    let t = Instant::now();
    for i in 0..n {
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        c.execute("INSERT INTO t (v) VALUES (?1)", [format!("row {i}")])
            .unwrap();
        c.execute_batch("COMMIT").unwrap();
    }
    t.elapsed().as_secs_f64() / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn journal_overhead(out: &mut String) {
    let dir = tempfile::tempdir_in(".").unwrap();
    let spec = spec(dir.path());
    let key = std::sync::Arc::new(realmctl::signing::SigningKey::generate());
    let (mut eng, mut signed, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        // The bare commits bracket the installs in time, so both sides see the same moment.
        let before = bare_commit(dir.path(), 500);
        eng.push(engine_per_step(dir.path(), &spec, 200, None));
        signed.push(engine_per_step(dir.path(), &spec, 200, Some(key.clone())));
        bare.push((before + bare_commit(dir.path(), 500)) / 2.0);
    }
    let (e, s, b) = (median(eng), median(signed), median(bare));
    let _ = writeln!(out, "### Journal overhead per step (200 no-op steps)\n");
    let _ = writeln!(
        out,
        "Per step in the steady state of a run of 200 no-op steps: from the first step's success to the second-to-last's (the engine reports a success once it is durable), over the steps between; the run's fixed costs (lock, first and last records) are outside. The steps are in one phase, so each step's success is committed with the next step's start in one fsync'd transaction (`FULL`); a start written alone is buffered (`synchronous=NORMAL`); signed, each of those records also carries an Ed25519 signature of its hash (`--signing-key`). The bare commit is `BEGIN IMMEDIATE; INSERT one row; COMMIT` with WAL and `synchronous=FULL` on the same disk: 1,000 per round, half before the two installs and half after. Median of 5 interleaved rounds.\n"
    );
    let _ = writeln!(
        out,
        "| journal | per step (engine) | bare fsync'd commit | ratio (goal ≤ 2×) |\n|---|---|---|---|"
    );
    for (what, v) in [("unsigned", e), ("signed (Ed25519)", s)] {
        let ratio = v / b;
        let verdict = if ratio <= 2.0 { "met" } else { "MISSED" };
        let _ = writeln!(
            out,
            "| {what} | {:.0} µs | {:.0} µs | {ratio:.2}× ({verdict}) |",
            v * 1e6,
            b * 1e6
        );
    }
    let _ = writeln!(out);
}

fn fat_output(i: usize) -> StepOutput {
    let checks = (0..7)
        .map(|k| {
            CheckResult::pass(
                format!("certificate.check{k}"),
                Category::Certificate,
                format!("/srv/realms/acme/certs/wildcard-{i}.pem"),
                "all required names are covered: *.core.digibee.acme.com, *.static.digibee.acme.com, *.portal.digibee.acme.com, *.auth.digibee.acme.com, *.test.digibee.acme.com, *.api.digibee.acme.com",
            )
        })
        .collect();
    StepOutput {
        summary: format!("step {i}: 7 pass, 0 warn, 0 fail"),
        checks,
        ..StepOutput::default()
    }
}

fn verify_throughput(out: &mut String) {
    let dir = tempfile::tempdir_in(".").unwrap();
    let state = dir.path().join("state");
    let mut j = Journal::create(&state).unwrap();
    // Signed records, verified against the key: the auditor's full check.
    let key = std::sync::Arc::new(realmctl::signing::SigningKey::generate());
    j.sign_with(Some(key.clone()));
    let now = time::OffsetDateTime::now_utc();
    // Artifacts of realistic size: 40 files of 256 KiB.
    let mut artifacts = Vec::new();
    let mut all_bytes: Vec<u8> = Vec::new();
    for k in 0..40 {
        let body: Vec<u8> = (0..256 * 1024)
            .map(|b| ((b * 31 + k * 7) % 251) as u8)
            .collect();
        let loc = format!("artifacts/run-1/file{k}.yaml");
        std::fs::create_dir_all(state.join("artifacts/run-1")).unwrap();
        std::fs::write(state.join(&loc), &body).unwrap();
        artifacts.push(ArtifactRef {
            name: format!("file{k}.yaml"),
            location: loc,
            sha256: sha256_hex(&body),
            bytes: body.len() as u64,
        });
        all_bytes.extend_from_slice(&body);
    }
    let spec = spec(dir.path());
    j.append(
        &Event::RunStarted {
            run: 1,
            operator: "bench".into(),
            version: "bench".into(),
            host: "bench".into(),
            lock_id: "bench".into(),
            subject: RunSubject::of(&spec),
            spec_digest: "bench".into(),
            spec: serde_json::json!({}),
            playbook: noop_playbook(1),
            until: None,
        },
        now,
        Durability::Buffered,
    )
    .unwrap();
    for i in 0..20_000usize {
        let output = if i == 10 {
            StepOutput {
                artifacts: artifacts.clone(),
                ..fat_output(i)
            }
        } else {
            fat_output(i)
        };
        let e = Event::StepSucceeded {
            run: 1,
            step: format!("s{i}"),
            phase: 3,
            input_digest: sha256_hex(&i.to_be_bytes()),
            output_digest: sha256_hex(&(i + 1).to_be_bytes()),
            output,
            duration_ms: 12,
        };
        j.append(&e, now, Durability::Buffered).unwrap();
    }
    let artifact_bytes = all_bytes.len();
    for r in j.records().unwrap() {
        for f in [&r.prev, &r.at, &r.kind, &r.payload] {
            all_bytes.extend_from_slice(f.as_bytes());
        }
    }
    let same = dir.path().join("same-bytes");
    std::fs::write(&same, &all_bytes).unwrap();
    let store = Store::local(&state);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut chain_only, mut signed, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        for (keys, times) in [
            (vec![], &mut chain_only),
            (vec![key.public().clone()], &mut signed),
        ] {
            let checked = !keys.is_empty();
            let t = Instant::now();
            let v = rt
                .block_on(audit::verify(&j, &store, None, keys, &[]))
                .unwrap();
            times.push(t.elapsed().as_secs_f64());
            assert!(v.ok && v.artifacts == 40 && v.signatures_checked == checked);
        }
        let t = Instant::now();
        let o = std::process::Command::new("sha256sum")
            .arg(&same)
            .output()
            .unwrap();
        theirs.push(t.elapsed().as_secs_f64());
        assert!(o.status.success());
    }
    let b = median(theirs);
    let mb = all_bytes.len() as f64 / 1e6;
    let _ = writeln!(
        out,
        "### `audit verify` throughput against `sha256sum` over the same bytes\n"
    );
    let per_record = (all_bytes.len() - artifact_bytes) / 20_000;
    let _ = writeln!(
        out,
        "A journal of 20,000 signed records (~{per_record} bytes each: a step success with seven check results) and 40 artifacts of 256 KiB; `sha256sum` hashes one file holding the same bytes (every record's hashed fields plus the artifacts). Verification reads each record from SQLite, re-hashes it, parses its event and re-hashes every artifact; with `--public-key` it also checks every record's Ed25519 signature (in batches on every core). Median of 5 interleaved rounds, warm page cache.\n"
    );
    let _ = writeln!(
        out,
        "| verification | bytes | audit verify | sha256sum | throughput ratio (goal ≥ 0.5×) |\n|---|---|---|---|---|"
    );
    for (what, times) in [
        ("chain and artifacts", chain_only),
        ("… and every signature (`--public-key`)", signed),
    ] {
        let a = median(times);
        let ratio = b / a;
        let verdict = if ratio >= 0.5 { "met" } else { "MISSED" };
        let _ = writeln!(
            out,
            "| {what} | {mb:.1} MB | {:.0} ms ({:.0} MB/s) | {:.0} ms ({:.0} MB/s) | {ratio:.2}× ({verdict}) |",
            a * 1e3,
            mb / a,
            b * 1e3,
            mb / b
        );
    }
    let _ = writeln!(out);
}

/// The cloud benchmarks' poll policy for measuring engine overhead: every 20 ms doubling to
/// 100 ms, so polling lag is not counted as engine time.
#[cfg(any(feature = "eks", feature = "aks", feature = "gke"))]
const FAST_POLL: realmctl::cloud::poll::Backoff = realmctl::cloud::poll::Backoff {
    first: std::time::Duration::from_millis(20),
    factor: 2,
    cap: std::time::Duration::from_millis(100),
};

/// The bound on a wait's polls both cloud benchmarks hold their clouds to:
/// ⌈log₂(deadline / first)⌉ + the polls at the cap after the ramp (first, first·factor, … <
/// cap), plus the one that sees the resource ready.
#[cfg(any(feature = "eks", feature = "aks", feature = "gke"))]
fn wait_bound(
    p: realmctl::cloud::poll::Backoff,
    ready_after: std::time::Duration,
    deadline: std::time::Duration,
) -> u32 {
    let ratio = deadline.as_secs_f64() / p.first.as_secs_f64();
    let log = ratio.log2().ceil() as u32;
    let mut ramp = std::time::Duration::ZERO;
    let mut n = 1;
    while p.delay(n, false) < p.cap {
        ramp += p.delay(n, false);
        n += 1;
    }
    let steady = ready_after
        .saturating_sub(ramp)
        .as_secs_f64()
        .div_euclid(p.cap.as_secs_f64()) as u32
        + 1;
    log + steady
}

/// One full demo install of `cloud` (fresh folder, fresh stand-in shaped by `shape`) with the
/// engine's poll policy `poll`: its wall time, the stand-in's world afterwards (its call log),
/// and every call counted by operation. The journal must verify and one cluster exist.
#[cfg(any(feature = "eks", feature = "aks", feature = "gke"))]
fn demo_install(
    rt: &tokio::runtime::Runtime,
    cloud: &dyn realmctl::demo::CloudDemo,
    shape: impl FnOnce(&mut realmctl_standins::World),
    poll: realmctl::cloud::poll::Backoff,
) -> (
    std::time::Duration,
    realmctl_standins::World,
    std::collections::BTreeMap<String, usize>,
) {
    let dir = tempfile::tempdir_in(".").unwrap();
    rt.block_on(async {
        let mut demo = realmctl::demo::prepare(dir.path(), cloud).await.unwrap();
        shape(&mut demo.standin.world());
        demo.poll = poll;
        let t = std::time::Instant::now();
        let walk = realmctl::demo::install(dir.path(), &demo, &realmctl::engine::Quiet)
            .await
            .unwrap();
        let wall = t.elapsed();
        assert!(walk.verified.ok, "journal verifies");
        assert_eq!(demo.standin.clusters().len(), 1);
        let w = demo.standin.world().clone();
        let mut calls = std::collections::BTreeMap::new();
        for c in &w.calls {
            *calls.entry(c.op.clone()).or_insert(0) += 1;
        }
        (wall, w, calls)
    })
}

/// The table of every call of one install, from a stand-in's call log.
#[cfg(any(feature = "eks", feature = "aks", feature = "gke"))]
fn call_table(
    out: &mut String,
    which: &str,
    note: &str,
    calls: &std::collections::BTreeMap<String, usize>,
) {
    let total: usize = calls.values().sum();
    let _ = writeln!(
        out,
        "\nEvery call of {which} ({total} in all, both runs: to the gate and after it{note}):\n\n| call | count |\n|---|---|"
    );
    for (op, n) in calls {
        let _ = writeln!(out, "| `{op}` | {n} |");
    }
    out.push('\n');
}

fn main() {
    if !support::measuring() {
        return;
    }
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |s: &str| only.is_empty() || only.iter().any(|o| o == s);
    if wanted("journal") {
        let mut out = support::stamp("engine --features test-actions");
        journal_overhead(&mut out);
        verify_throughput(&mut out);
        print!("{out}");
        support::write_section("docs/benchmarks.md", "engine", &out);
    }
    if wanted("state-db") {
        let mut out = support::stamp("engine --features test-actions -- state-db");
        state_db::run(&mut out);
        print!("{out}");
        support::write_section("docs/benchmarks.md", "state-db", &out);
    }
    if wanted("fleet") {
        let mut out = support::stamp("engine --features test-actions -- fleet");
        fleet::run(&mut out);
        print!("{out}");
        support::write_section("docs/benchmarks.md", "fleet", &out);
    }
    #[cfg(feature = "gke")]
    if wanted("gke") {
        let mut out = support::stamp("engine --features test-actions -- gke");
        gke::run(&mut out);
        print!("{out}");
        support::write_section("docs/benchmarks.md", "gke", &out);
    }
    #[cfg(feature = "gke")]
    if wanted("destroy") {
        let mut out = support::stamp("engine --features test-actions -- destroy");
        destroy::run(&mut out);
        print!("{out}");
        support::write_section("docs/benchmarks.md", "destroy", &out);
    }
    #[cfg(feature = "gke")]
    if wanted("platform") {
        let mut out = support::stamp("engine --features test-actions -- platform");
        platform::run(&mut out);
        print!("{out}");
        support::write_section("docs/benchmarks.md", "platform", &out);
    }
    #[cfg(feature = "aks")]
    if wanted("aks") {
        let mut out = support::stamp("engine --features test-actions -- aks");
        aks::run(&mut out);
        print!("{out}");
        support::write_section("docs/benchmarks.md", "aks", &out);
    }
    #[cfg(feature = "eks")]
    if wanted("eks") {
        let mut out = support::stamp("engine --features test-actions -- eks");
        eks::run(&mut out);
        print!("{out}");
        support::write_section("docs/benchmarks.md", "eks", &out);
    }
}
