//! Enforcement-core benchmarks (issue #3), measured side by side in one run; results go to
//! `docs/benchmarks.md` between the `bench:quota` markers.
//!
//! 1. Durable admissions per second against a bare single-row INSERT transaction on the same
//!    SQLite file and settings, for `synchronous=FULL` and `NORMAL` (goal ≥ 0.8×).
//! 2. In-memory decision latency p50/p99 (goal p99 ≤ 0.1 ms).
//! 3. HTTP admissions per second on loopback, client on the same machine.
#![allow(missing_docs)]

mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use realmctl::quota::http::{AppState, serve};
use realmctl::quota::ledger::{Ledger, Sync};
use realmctl::quota::model::{
    Deployment, Env, Facts, RealmConfig, Size, State, Version, apply, decide_with,
};
use realmctl::quota::tokens::{Scope, Tokens, mint};
use rusqlite::{Connection, params};

fn config() -> RealmConfig {
    RealmConfig {
        pipeline_subscriptions: 1_000_000,
        extra_test_rtus: 0,
        extra_prod_rtus: 0,
        max_replicas: 10,
        max_size: Size::Large,
    }
}

fn req(i: usize) -> Deployment {
    Deployment {
        environment: Env::Prod,
        pipeline: format!("p{i}"),
        version: Version { major: 1, minor: 0 },
        size: Size::Small,
        replicas: 1,
    }
}

/// Admissions per second through the ledger, and bare INSERT transactions per second on the same file.
fn durable(dir: &Path, sync: Sync, n: usize) -> (f64, f64) {
    let db = dir.join(format!("{sync:?}.db"));
    let mut ledger = Ledger::open(&db, sync).unwrap();
    ledger.seed("bench", config(), "bench").unwrap();
    let bare = Connection::open(&db).unwrap();
    bare.pragma_update(None, "journal_mode", "WAL").unwrap();
    bare.pragma_update(
        None,
        "synchronous",
        if sync == Sync::Full { "FULL" } else { "NORMAL" },
    )
    .unwrap();
    bare.execute_batch("CREATE TABLE IF NOT EXISTS bare (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .unwrap();
    let (mut best_ledger, mut best_bare) = (0f64, 0f64);
    let mut next = 0;
    for _round in 0..3 {
        let t0 = Instant::now();
        for _ in 0..n {
            assert!(
                ledger
                    .deploy("bench", &req(next), "bench")
                    .unwrap()
                    .admitted
            );
            next += 1;
        }
        best_ledger = best_ledger.max(n as f64 / t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        for i in 0..n {
            bare.execute_batch("BEGIN IMMEDIATE").unwrap();
            bare.prepare_cached("INSERT INTO bare (v) VALUES (?1)")
                .unwrap()
                .execute(params![format!("row {i}")])
                .unwrap();
            bare.execute_batch("COMMIT").unwrap();
        }
        best_bare = best_bare.max(n as f64 / t0.elapsed().as_secs_f64());
    }
    (best_ledger, best_bare)
}

fn latency(out: &mut String) {
    let cfg = config();
    let mut state = State::new();
    for i in 0..500 {
        apply(&mut state, &req(i));
    }
    let facts = Facts::from_state(&state, &req(10_000));
    let mut samples = Vec::with_capacity(200_000);
    for i in 0..200_000 {
        let r = req(i % 1000);
        let t0 = Instant::now();
        std::hint::black_box(decide_with(&cfg, std::hint::black_box(&facts), &r));
        samples.push(t0.elapsed());
    }
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6;
    let (p50, p99) = (p(0.50), p(0.99));
    let verdict = if p99 <= 100.0 { "met" } else { "MISSED" };
    let _ = writeln!(
        out,
        "### In-memory decision latency\n\n`model::decide_with` over 200,000 requests (realm with 500 active deployments).\n"
    );
    let _ = writeln!(
        out,
        "| p50 | p99 | goal p99 ≤ 100 µs |\n|---|---|---|\n| {p50:.2} µs | {p99:.2} µs | {verdict} |\n"
    );
}

async fn http(out: &mut String, dir: &Path) {
    let db = dir.join("http.db");
    let mut ledger = Ledger::open(&db, Sync::Full).unwrap();
    ledger.seed("bench", config(), "bench").unwrap();
    let (token, line) = mint(&Scope::Realm("bench".into()));
    let tokens = Tokens::parse(&line, Path::new("tokens.yaml")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        AppState::new(
            realmctl::quota::store::Store::Sqlite(Arc::new(
                realmctl::quota::batch::GroupCommit::start(ledger, Duration::from_secs(30)),
            )),
            tokens,
            Default::default(),
        ),
        async {
            let _ = rx.await;
        },
    ));
    let clients = 8;
    let per_client = 150;
    let url = format!("http://{addr}/v1/realms/bench/deployments");
    let barrier = Arc::new(Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (url, token, barrier) = (url.clone(), token.clone(), barrier.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into();
                barrier.wait();
                for i in 0..per_client {
                    let body = format!(r#"{{"environment":"prod","pipeline":"c{c}-{i}","version":"1.0","size":"small","replicas":1}}"#);
                    let r = agent.post(&url).header("Authorization", &format!("Bearer {token}")).content_type("application/json").send(&body).unwrap();
                    assert_eq!(r.status().as_u16(), 200);
                }
            })
        })
        .collect();
    let waiter = tokio::task::spawn_blocking(move || {
        barrier.wait();
        let t0 = Instant::now();
        for h in handles {
            h.join().unwrap();
        }
        t0.elapsed()
    });
    let elapsed = waiter.await.unwrap();
    let _ = tx.send(());
    server.await.unwrap().unwrap();
    let rate = (clients * per_client) as f64 / elapsed.as_secs_f64();
    let _ = writeln!(
        out,
        "### HTTP admissions on loopback\n\n`quota serve` in-process (axum, `synchronous=FULL`), client on the same machine: ureq 3 (blocking, keep-alive), {clients} threads × {per_client} admissions, every one a new unique pipeline.\n"
    );
    let _ = writeln!(
        out,
        "| admissions | wall time | admissions/s |\n|---|---|---|\n| {} | {:.0} ms | {rate:.0} |\n",
        clients * per_client,
        elapsed.as_secs_f64() * 1000.0
    );
}

fn main() {
    if !support::measuring() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Durable admissions vs a bare INSERT transaction (same file, same settings)\n"
    );
    let _ = writeln!(
        out,
        "Each admission: `BEGIN IMMEDIATE`, read the realm config and the environment's usage, decide, write the deployment and the decision-log row, `COMMIT`. Bare: `BEGIN IMMEDIATE; INSERT one row; COMMIT`. Best of 3 interleaved rounds.\n"
    );
    let _ = writeln!(
        out,
        "| synchronous | admissions/s | bare INSERT tx/s | ratio (goal ≥ 0.8×) |\n|---|---|---|---|"
    );
    for (sync, n) in [(Sync::Full, 300), (Sync::Normal, 3000)] {
        let (l, b) = durable(dir.path(), sync, n);
        let ratio = l / b;
        let verdict = if ratio >= 0.8 { "met" } else { "MISSED" };
        let _ = writeln!(
            out,
            "| {} | {l:.0} | {b:.0} | {ratio:.2}× ({verdict}) |",
            format!("{sync:?}").to_uppercase()
        );
    }
    let _ = writeln!(out);
    latency(&mut out);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(http(&mut out, dir.path()));
    println!("{out}");
    support::write_section(
        "docs/benchmarks.md",
        "quota",
        &format!("{}{out}", support::stamp("quota")),
    );
}
