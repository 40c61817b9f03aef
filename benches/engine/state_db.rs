//! The install state on PostgreSQL (issue #22), section `state-db` of `docs/benchmarks.md`:
//!
//! - journal append per step: `install` of 100 no-op steps on `--state postgres://…?realm=…`
//!   (each step's success goes out with the next step's start, two rows in one statement and
//!   one durable commit, under the realm's lease), per step, against a bare one-row INSERT
//!   commit (autocommit, durable) from one client to the same database, in the same round
//!   (goal ≤ 2×);
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

const STEPS: usize = 200;
/// Bare commits per round.
const BARE: usize = 1_000;
const ROUNDS: usize = 5;
const REALMS: usize = 1_000;

fn state(pg: &Pg, realm: &str) -> StateRef {
    StateRef::parse(
        &format!("{}?realm={realm}", pg.url("realms")),
        Some(Secret::new(pg.password())),
    )
    .unwrap()
}

/// A `steps`-step no-op install on a fresh database realm `name`: seconds per step in the
/// steady state (from the first step's success to the second-to-last's, over the steps
/// between: each interval is one step's action and its one commit, with the success of the
/// step before; the last success is written alone at the phase's end) and the run's fixed
/// seconds (the rest of the wall time: three connections with their SCRAM handshakes — the
/// lease's, the journal's, the appender's —, the schema check, the run's first and last
/// records, the final read).
fn install_per_step(pg: &Pg, dir: &std::path::Path, name: &str, steps: usize) -> (f64, f64) {
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
    let seen = super::Successes::default();
    // The schema exists (made by the warm-up): the round measures steps.
    let t = Instant::now();
    let r = rt
        .block_on(run::install(&at, &spec, &pb, &opts, &seen))
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert_eq!(r.executed.len(), steps);
    let per = seen.per_step();
    (per, wall - per * steps as f64)
}

/// Seconds per journal append alone (no engine): durable, buffered, and a durable pair (two
/// records in one statement, as a step's success and the next start go out).
fn appends(pg: &Pg, n: usize) -> (f64, f64, f64) {
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
    let (sync, buffered) = (per(Durability::Sync), per(Durability::Buffered));
    let t = Instant::now();
    for _ in 0..n {
        j.append_all(&[&ev, &ev], now, Durability::Sync).unwrap();
    }
    (sync, buffered, t.elapsed().as_secs_f64() / n as f64)
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
    install_per_step(&pg, dir.path(), "warm", 3);
    let (mut rounds, mut sync, mut buffered, mut pair, mut fixed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        // The bare commits bracket the install in time (half before, half after), so both
        // sides see the same moment of this machine.
        let before = bare_commit(&pg, BARE / 2);
        let (per, once) = install_per_step(&pg, dir.path(), &format!("steps{round}"), STEPS);
        let after = bare_commit(&pg, BARE / 2);
        fixed.push(once);
        rounds.push((per, (before + after) / 2.0));
        let (s, b, p) = appends(&pg, 200);
        sync.push(s);
        buffered.push(b);
        pair.push(p);
    }
    let ratios: Vec<f64> = rounds.iter().map(|(e, b)| e / b).collect();
    let (ratio, worst) = (
        median(ratios.clone()),
        ratios.iter().copied().fold(0.0, f64::max),
    );
    let (s, u, p, f) = (median(sync), median(buffered), median(pair), median(fixed));
    let _ = writeln!(
        out,
        "### Journal append per step on PostgreSQL (no-op steps)\n"
    );
    let _ = writeln!(
        out,
        "`install` on `--state postgres://…?realm=…` (a throw-away PostgreSQL on loopback, fsync on), per step in the steady state of a run of {STEPS} no-op steps: from the first step's success to the second-to-last's (the engine reports a success once it is durable), over the steps between (a run's fixed costs — three connections with their SCRAM handshakes, the schema check, the run's first and last records, the final read — are per run, not per step, and given below). The steps are in one phase, so each step's success goes out with the next step's start: one prepared `INSERT` of two rows on the head the writer last saw, one durable commit (the session's `synchronous_commit` is `on`, so the insert sets nothing), checked by the fencing trigger on each row, sent from the engine's own task (which polls the connection while it waits). The bare commit is one prepared `INSERT` of one row, autocommit, from one client to the same database: {BARE} per round, half just before the install and half just after. {ROUNDS} interleaved rounds; the ratio is each round's own.\n"
    );
    let _ = writeln!(
        out,
        "| round | per step (engine) | bare one-row commit | ratio |\n|---|---|---|---|"
    );
    for (i, ((e, b), r)) in rounds.iter().zip(&ratios).enumerate() {
        let _ = writeln!(
            out,
            "| {} | {:.0} µs | {:.0} µs | {r:.2}× |",
            i + 1,
            e * 1e6,
            b * 1e6
        );
    }
    let _ = writeln!(
        out,
        "\nMedian ratio **{ratio:.2}×** (goal ≤ 2×: {}); highest {worst:.2}×; {} of {ROUNDS} rounds above 2×.\n",
        if ratio <= 2.0 { "met" } else { "MISSED" },
        ratios.iter().filter(|r| **r > 2.0).count()
    );
    let _ = writeln!(
        out,
        "A run's fixed costs: {:.1} ms. The journal's appends alone (through the journal's connection thread, no engine): {:.0} µs durable, {:.0} µs buffered (`synchronous_commit = off`), {:.0} µs for a durable pair (two records, one statement).\n",
        f * 1e3,
        s * 1e6,
        u * 1e6,
        p * 1e6
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
