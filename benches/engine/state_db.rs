//! The install state on PostgreSQL (issue #22), section `state-db` of `docs/benchmarks.md`:
//!
//! - journal append per step: `install` of 100 no-op steps on `--state postgres://…?realm=…`
//!   (each step journals its start with `synchronous_commit = off` and its success with a
//!   durable commit, under the realm's lease), per step, against a bare one-row INSERT commit
//!   (autocommit, durable) from one client to the same database, in the same run (goal ≤ 2×);
//! - `fleet --db` over 1,000 realms in one database: the release binary, wall time end to end
//!   (goal under a second).
//!
//! The database is a throw-away PostgreSQL on loopback (`tests/it/pg.rs`), fsync on.

use std::fmt::Write as _;
use std::time::Instant;

use realmctl::engine::io::state::StateRef;
use realmctl::engine::{Quiet, run};
use realmctl::secret::Secret;

use super::{install_options, median, multi_thread, noop_playbook, spec};
use crate::pg::Pg;

const STEPS: usize = 100;
const ROUNDS: usize = 5;
const REALMS: usize = 1_000;

fn state(pg: &Pg, realm: &str) -> StateRef {
    StateRef::parse(
        &format!("{}?realm={realm}", pg.url("realms")),
        Some(Secret::new(pg.password())),
    )
    .unwrap()
}

/// Seconds of a whole `steps`-step no-op install on a fresh database realm `name`: the run's
/// fixed costs (three connections, each with its SCRAM handshake: the lease's, the journal's,
/// the appender's; the schema check; the run's first and last records; the final read) and
/// its steps.
fn install_seconds(pg: &Pg, dir: &std::path::Path, name: &str, steps: usize) -> f64 {
    let spec = {
        let mut s = spec(dir);
        s.name = name.to_owned();
        s
    };
    let at = state(pg, &spec.name);
    let pb = noop_playbook(steps);
    let mut opts = install_options(&dir.join("unused"));
    opts.store = realmctl::engine::io::store::Store::of_state(&at).unwrap();
    let rt = multi_thread();
    // The schema exists (made by round 0's warm-up): the round measures steps.
    let t = Instant::now();
    let r = rt
        .block_on(run::install(&at, &spec, &pb, &opts, &Quiet))
        .unwrap();
    let el = t.elapsed().as_secs_f64();
    assert_eq!(r.executed.len(), steps);
    el
}

/// Seconds per step (what one more step costs: a run of 2×`STEPS` steps less one of `STEPS`,
/// over `STEPS`) and the run's fixed seconds, of round `round`.
fn engine_per_step(pg: &Pg, dir: &std::path::Path, round: usize) -> (f64, f64) {
    let short = install_seconds(pg, dir, &format!("short{round}"), STEPS);
    let long = install_seconds(pg, dir, &format!("long{round}"), 2 * STEPS);
    let per = (long - short) / STEPS as f64;
    (per, short - per * STEPS as f64)
}

/// Seconds per journal append alone (no engine), durable and buffered: (sync, buffered).
fn appends(pg: &Pg, n: usize) -> (f64, f64) {
    use realmctl::engine::io::journal::{Durability, Journal};
    use realmctl::engine::model::event::Event;
    let mut j = Journal::create(&state(pg, "appends")).unwrap();
    let ev = Event::Approved {
        phase: 5,
        by: "bench".into(),
        note: None,
        covers: "c".into(),
        definition: None,
        customer: None,
    };
    let now = time::OffsetDateTime::now_utc();
    let mut per = |d: Durability| {
        let t = Instant::now();
        for _ in 0..n {
            j.append(&ev, now, d).unwrap();
        }
        t.elapsed().as_secs_f64() / n as f64
    };
    (per(Durability::Sync), per(Durability::Buffered))
}

/// Seconds per bare one-row INSERT commit (autocommit) on the same database, one client.
fn bare_commit(pg: &Pg, n: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user={} password={} dbname=realms",
                pg.port(),
                crate::pg::USER,
                pg.password()
            ),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        c.batch_execute("DROP TABLE IF EXISTS bare; CREATE TABLE bare (id bigserial PRIMARY KEY, v text NOT NULL)")
            .await
            .unwrap();
        let stmt = c.prepare("INSERT INTO bare (v) VALUES ($1)").await.unwrap();
        let t = Instant::now();
        for i in 0..n {
            c.execute(&stmt, &[&format!("row {i}")]).await.unwrap();
        }
        t.elapsed().as_secs_f64() / n as f64
    })
}

/// `fleet --db` over `REALMS` copies of one finished install's journal: seconds (median).
fn fleet(pg: &Pg, dir: &std::path::Path) -> (f64, u64) {
    let spec = {
        let mut s = spec(dir);
        s.name = "r0000".into();
        s
    };
    let at = state(pg, "r0000");
    let mut opts = install_options(&dir.join("unused"));
    opts.store = realmctl::engine::io::store::Store::of_state(&at).unwrap();
    multi_thread()
        .block_on(run::install(&at, &spec, &noop_playbook(40), &opts, &Quiet))
        .unwrap();
    // The same records under 999 more realm names (the realm is not part of a record's hash),
    // written as the tables' owner, around the fencing trigger.
    pg.psql(
        "realms",
        &format!(
            "ALTER TABLE realmctl_journal DISABLE TRIGGER USER;
             INSERT INTO realmctl_journal (realm, seq, at, kind, payload, prev, hash, signer, sig, fence)
               SELECT 'r' || lpad(n::text, 4, '0'), seq, at, kind, payload, prev, hash, signer, sig, fence
               FROM realmctl_journal, generate_series(1, {}) n WHERE realm = 'r0000';
             ALTER TABLE realmctl_journal ENABLE TRIGGER USER;",
            REALMS - 1
        ),
    );
    let records: u64 = pg
        .psql(
            "realms",
            "SELECT count(*) FROM realmctl_journal WHERE realm LIKE 'r%'",
        )
        .parse()
        .unwrap();
    let mut walls = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_realmctl"))
            .args(["fleet", "--output", "json", "--on", "2026-12-06", "--db"])
            .arg(pg.url("realms"))
            .env("PGPASSWORD", pg.password())
            .output()
            .unwrap();
        walls.push(t.elapsed().as_secs_f64());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let rows = v["rows"].as_array().unwrap();
        assert!(rows.len() >= REALMS, "{}", rows.len());
        assert!(
            rows.iter()
                .all(|r| r["journalLine"].as_str().unwrap().starts_with("verified"))
        );
    }
    (median(walls), records)
}

pub fn run(out: &mut String) {
    let pg = Pg::start();
    pg.create_db("realms");
    let dir = tempfile::tempdir().unwrap();
    // Warm-up: creates the schema.
    install_seconds(&pg, dir.path(), "warm", 1);
    let (mut eng, mut bare, mut sync, mut buffered, mut fixed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let (per, once) = engine_per_step(&pg, dir.path(), round);
        eng.push(per);
        fixed.push(once);
        bare.push(bare_commit(&pg, 200));
        let (s, b) = appends(&pg, 200);
        sync.push(s);
        buffered.push(b);
    }
    let (e, b) = (median(eng), median(bare));
    let (s, u, f) = (median(sync), median(buffered), median(fixed));
    let ratio = e / b;
    let _ = writeln!(
        out,
        "### Journal append per step on PostgreSQL (no-op steps)\n"
    );
    let _ = writeln!(
        out,
        "`install` on `--state postgres://…?realm=…` (a throw-away PostgreSQL on loopback, fsync on), per step: what a run of 200 no-op steps costs beyond one of 100, over 100 (a run's fixed costs — three connections with their SCRAM handshakes, the schema check, the run's first and last records, the final read — are per run, not per step, and given below). Each step journals its start (`synchronous_commit = off`) and its success (a durable commit), each one prepared `INSERT` on the head the writer last saw, checked by the fencing trigger, sent from the engine's own task (which polls the connection while it waits). The bare commit is one prepared `INSERT` of one row, autocommit, from one client to the same database. Median of {ROUNDS} interleaved rounds.\n"
    );
    let _ = writeln!(
        out,
        "| per step (engine) | bare one-row commit | ratio (goal ≤ 2×) |\n|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| {:.0} µs | {:.0} µs | {ratio:.2}× ({}) |\n",
        e * 1e6,
        b * 1e6,
        if ratio <= 2.0 { "met" } else { "MISSED" }
    );
    let _ = writeln!(
        out,
        "A run's fixed costs: {:.1} ms. The journal's appends alone (through the journal's connection thread, no engine): {:.0} µs durable, {:.0} µs buffered (`synchronous_commit = off`).\n",
        f * 1e3,
        s * 1e6,
        u * 1e6
    );
    let (wall, records) = fleet(&pg, dir.path());
    let _ = writeln!(
        out,
        "### `fleet --db` over {REALMS} realms in one database\n"
    );
    let _ = writeln!(
        out,
        "{REALMS} realms, each holding one finished install's journal (40 no-op steps); the release binary reads every realm (records in pages, chain check of every record, fold, lease row) over one connection per core and prints JSON; wall time of the whole process, median of {ROUNDS} rounds.\n"
    );
    let _ = writeln!(
        out,
        "| realms | records read | wall time (goal < 1 s) |\n|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| {REALMS} | {records} | {:.0} ms ({}) |\n",
        wall * 1000.0,
        if wall < 1.0 { "met" } else { "MISSED" }
    );
}
