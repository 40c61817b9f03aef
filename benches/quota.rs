//! Enforcement-core benchmarks (issues #3 and #10), measured side by side in one run; results
//! go to `docs/benchmarks.md` between the `bench:quota` markers.
//!
//! 1. SQLite durable admissions against a bare one-row commit on the same file and settings, at
//!    the same concurrency: one client (one commit each), and 64 concurrent clients (admissions
//!    through the group-commit writer, bare rows through the same batching); goal ≥ 0.8× at both.
//! 2. In-memory decision latency p50/p99, facts computed per request over realms of 500 and
//!    10,000 deployments (goal p99 ≤ 0.1 ms).
//! 3. SQLite over HTTP: admissions/s with 64 concurrent clients against the same server's
//!    `GET /healthz` requests/s with the same clients — the HTTP ceiling (goal ≥ 0.5×); and the
//!    real `realmctl quota serve` process under the same load: admissions/s and peak RSS.
//! 4. The same with `wrk` against the real binary (`quota/wrk.rs`): admissions/s against
//!    `/healthz` requests/s, round by round (goal ≥ 0.5×).
//! 5. PostgreSQL: admissions/s through two replicas against `pgbench`'s built-in TPC-B-like
//!    script on the same server with the same client count (goal ≥ 0.8×).
#![allow(missing_docs)]

#[path = "../tests/it/pg.rs"]
#[allow(dead_code)]
mod pg;
mod support;
#[path = "quota/wrk.rs"]
mod wrk;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use realmctl::quota::batch::MAX_BATCH;
use realmctl::quota::http::{AppState, serve};
use realmctl::quota::ledger::{Ledger, Sync};
use realmctl::quota::model::{Deployment, Env, RealmConfig, Size, State, Version, apply, decide};
use realmctl::quota::store::{DbUrl, Open, Store, StoreOptions};
use realmctl::quota::tokens::{Scope, Tokens, mint};
use realmctl::secret::Secret;
use rusqlite::{Connection, params};

const CLIENTS: usize = 64;

fn config() -> RealmConfig {
    RealmConfig {
        pipeline_subscriptions: 1_000_000_000,
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

fn sqlite(path: &Path, sync: Sync) -> Store {
    let o = StoreOptions {
        sync,
        timeout: Duration::from_secs(60),
        ..StoreOptions::default()
    };
    let rt = rt();
    rt.block_on(Store::open(
        &DbUrl::Sqlite(path.to_owned()),
        Open::CreateOrMigrate,
        o,
    ))
    .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A connection for the bare baseline: the ledger's journal mode and `synchronous`, one table.
fn bare_conn(db: &Path, sync: Sync) -> Connection {
    let bare = Connection::open(db).unwrap();
    bare.pragma_update(None, "journal_mode", "WAL").unwrap();
    bare.pragma_update(
        None,
        "synchronous",
        if sync == Sync::Full { "FULL" } else { "NORMAL" },
    )
    .unwrap();
    bare.execute_batch("CREATE TABLE IF NOT EXISTS bare (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .unwrap();
    bare
}

/// Bare one-row commits per second on `db` with `sync`, one client.
fn bare(db: &Path, sync: Sync, n: usize) -> f64 {
    let bare = bare_conn(db, sync);
    let t0 = Instant::now();
    for i in 0..n {
        bare.execute_batch("BEGIN IMMEDIATE").unwrap();
        bare.prepare_cached("INSERT INTO bare (v) VALUES (?1)")
            .unwrap()
            .execute(params![format!("row {i}")])
            .unwrap();
        bare.execute_batch("COMMIT").unwrap();
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

/// Bare one-row commits per second with `CLIENTS` concurrent clients, committed the way
/// admissions are: one writer thread takes the first insert and every one that arrived
/// meanwhile (up to the same [`MAX_BATCH`]) and commits them in one transaction, answering each
/// client after the commit — the same batching and hand-offs, without an admission's work.
/// Also the average batch.
fn bare_grouped(db: &Path, sync: Sync, n: usize) -> (f64, f64) {
    use tokio::sync::{mpsc, oneshot};
    let conn = bare_conn(db, sync);
    let (tx, mut rx) = mpsc::channel::<(usize, oneshot::Sender<()>)>(8192);
    let commits = Arc::new(AtomicUsize::new(0));
    let c = commits.clone();
    let writer = std::thread::spawn(move || {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            {
                let mut st = conn
                    .prepare_cached("INSERT INTO bare (v) VALUES (?1)")
                    .unwrap();
                for (i, _) in &batch {
                    st.execute(params![format!("row {i}")]).unwrap();
                }
            }
            conn.execute_batch("COMMIT").unwrap();
            c.fetch_add(1, Ordering::Relaxed);
            for (_, reply) in batch {
                let _ = reply.send(());
            }
        }
    });
    let rate = clients(n, move |i| {
        let tx = tx.clone();
        async move {
            let (reply, done) = oneshot::channel();
            tx.send((i, reply)).await.unwrap();
            done.await.unwrap();
        }
    });
    writer.join().unwrap();
    (
        rate,
        n as f64 / commits.load(Ordering::Relaxed).max(1) as f64,
    )
}

/// `n` calls of `call(i)`, `i` in `0..n`, from [`CLIENTS`] concurrent tasks that each take the
/// next `i` when their last call returned; calls per second.
fn clients<F, Fut>(n: usize, call: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let rt = rt();
    let t0 = Instant::now();
    rt.block_on(async {
        let counter = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (call, counter) = (call.clone(), counter.clone());
                tokio::spawn(async move {
                    loop {
                        let i = counter.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return;
                        }
                        call(i).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    n as f64 / t0.elapsed().as_secs_f64()
}

/// Admissions per second: one client, one commit each (the ledger used directly).
fn serial(db: &Path, sync: Sync, n: usize, next: &mut usize) -> f64 {
    let mut ledger = Ledger::open(db, sync).unwrap();
    let t0 = Instant::now();
    for _ in 0..n {
        assert!(
            ledger
                .deploy("bench", &req(*next), "bench")
                .unwrap()
                .admitted
        );
        *next += 1;
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

/// Admissions per second: `CLIENTS` tasks through the group-commit writer; and the average
/// batch size.
fn grouped(store: &Store, n: usize, next: &mut usize) -> (f64, f64) {
    let Store::Sqlite(g) = store else {
        unreachable!()
    };
    let (c0, o0) = (g.stats().commits(), g.stats().ops());
    let first = *next;
    *next += n;
    let store = store.clone();
    let rate = clients(n, move |i| {
        let s = store.clone();
        async move {
            assert!(
                s.deploy("bench", &req(first + i), "bench")
                    .await
                    .unwrap()
                    .admitted
            );
        }
    });
    let batch = (g.stats().ops() - o0) as f64 / (g.stats().commits() - c0).max(1) as f64;
    (rate, batch)
}

fn durable(out: &mut String, dir: &Path) {
    let _ = writeln!(
        out,
        "### SQLite: durable admissions vs a bare one-row commit (same file, same settings, same clients)\n\nEach admission: the realm config, the environment's usage and the pipeline's current version (read once, then remembered by the writer's connection and revalidated by `PRAGMA data_version` in every transaction), decide, write the decision-log row (since ledger schema 3 the deployments and usage counters follow from the log, folded in every 16,384 admissions). Bare: `BEGIN IMMEDIATE; INSERT one row; COMMIT`. *1 client*: one commit per admission, and per bare row. *{CLIENTS} clients*: {CLIENTS} concurrent tasks; admissions go through the group-commit writer, bare rows through the same batching (one writer thread commits every row that arrived during the previous commit), so each ratio compares the same concurrency and the same commit discipline. Best of 3 interleaved rounds.\n"
    );
    let _ = writeln!(
        out,
        "| synchronous | clients | bare commits/s | admissions/s | avg batch (bare / admissions) | ratio (goal ≥ 0.8×) |\n|---|---|---|---|---|---|"
    );
    for (sync, n_serial, n_group) in [(Sync::Full, 300, 6000), (Sync::Normal, 3000, 20000)] {
        let db = dir.join(format!("{sync:?}.db"));
        let store = sqlite(&db, sync);
        rt().block_on(store.seed("bench", config(), "bench"))
            .unwrap();
        let (mut b1, mut a1) = (0f64, 0f64);
        let (mut b64, mut bb, mut a64, mut ab) = (0f64, 0f64, 0f64, 0f64);
        let mut next = 0;
        for _ in 0..3 {
            b1 = b1.max(bare(&db, sync, n_serial));
            a1 = a1.max(serial(&db, sync, n_serial, &mut next));
            let (rate, avg) = bare_grouped(&db, sync, n_group);
            if rate > b64 {
                (b64, bb) = (rate, avg);
            }
            let (rate, avg) = grouped(&store, n_group, &mut next);
            if rate > a64 {
                (a64, ab) = (rate, avg);
            }
        }
        let name = format!("{sync:?}").to_uppercase();
        for (clients, b, a, batch) in [
            (1, b1, a1, "1 / 1".to_owned()),
            (CLIENTS, b64, a64, format!("{bb:.1} / {ab:.1}")),
        ] {
            let ratio = a / b;
            let verdict = if ratio >= 0.8 { "met" } else { "MISSED" };
            let _ = writeln!(
                out,
                "| {name} | {clients} | {b:.0} | {a:.0} | {batch} | {ratio:.2}× ({verdict}) |"
            );
        }
    }
    let _ = writeln!(out);
}

fn latency(out: &mut String) {
    let cfg = config();
    let _ = writeln!(
        out,
        "### In-memory decision latency\n\n`model::decide` per request: the facts (the environment's totals and the request's active version) computed from the realm's deployments for every request, then the decision; 200,000 requests over realms of 500 and 10,000 active deployments (both environments, mixed sizes). The ledger gathers the same facts with indexed SQL reads instead.\n"
    );
    let _ = writeln!(
        out,
        "| active deployments | p50 | p99 | goal p99 ≤ 100 µs |\n|---|---|---|---|"
    );
    for deployments in [500, 10_000] {
        let mut state = State::new();
        for i in 0..deployments {
            let mut d = req(i);
            d.environment = if i % 3 == 0 { Env::Test } else { Env::Prod };
            d.size = [Size::Small, Size::Medium, Size::Large][i % 3];
            apply(&mut state, &d);
        }
        let mut samples = Vec::with_capacity(200_000);
        for i in 0..200_000 {
            // Half replace an active version (its facts include it), half are new pipelines.
            let r = req(if i % 2 == 0 {
                i % deployments
            } else {
                deployments + i
            });
            let t0 = Instant::now();
            std::hint::black_box(decide(&cfg, std::hint::black_box(&state), &r));
            samples.push(t0.elapsed());
        }
        samples.sort();
        let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6;
        let (p50, p99) = (p(0.50), p(0.99));
        let verdict = if p99 <= 100.0 { "met" } else { "MISSED" };
        let _ = writeln!(
            out,
            "| {deployments} | {p50:.2} µs | {p99:.2} µs | {verdict} |"
        );
    }
    let _ = writeln!(out);
}

/// A running in-process `quota serve`: its base URL and a stop handle.
struct Server {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(store: Store, tokens_line: &str) -> Server {
    let tokens = Tokens::parse(tokens_line, Path::new("tokens.yaml")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        AppState::new(store, tokens, Default::default()),
        async {
            let _ = rx.await;
        },
    ));
    Server {
        base: format!("http://{addr}"),
        stop,
        task,
    }
}

/// What one client sends: `(method, path, body)` for client `c`, request `i`.
type MakeRequest = fn(usize, usize, &str) -> (&'static str, String, String);

/// `CLIENTS` keep-alive HTTP/1.1 connections driven from one current-thread runtime on its own
/// thread (a lean load generator, like pgbench's client: no thread per connection), client `c`
/// on `bases[c % len]`, each sending `per_client` requests that must answer `want`. Returns
/// requests per second.
fn load(
    bases: &[String],
    per_client: usize,
    tag: &str,
    make: MakeRequest,
    want: u16,
    bearer: &str,
) -> f64 {
    let bases: Vec<String> = bases
        .iter()
        .map(|b| b.trim_start_matches("http://").to_owned())
        .collect();
    let (tag, bearer) = (tag.to_owned(), bearer.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut conns = Vec::new();
            for c in 0..CLIENTS {
                let s = tokio::net::TcpStream::connect(&bases[c % bases.len()])
                    .await
                    .unwrap();
                s.set_nodelay(true).unwrap();
                conns.push(s);
            }
            let t0 = Instant::now();
            let tasks: Vec<_> = conns
                .into_iter()
                .enumerate()
                .map(|(c, mut s)| {
                    let (tag, bearer) = (tag.clone(), bearer.clone());
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = Vec::with_capacity(4096);
                        for i in 0..per_client {
                            let (method, path, body) = make(c, i, &tag);
                            let head = format!(
                                "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {bearer}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            s.write_all(head.as_bytes()).await.unwrap();
                            buf.clear();
                            // Read the head, then exactly Content-Length bytes of body.
                            let (status, end, length) = loop {
                                let mut chunk = [0u8; 4096];
                                let n = s.read(&mut chunk).await.unwrap();
                                assert!(n > 0, "connection closed");
                                buf.extend_from_slice(&chunk[..n]);
                                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                    let head = String::from_utf8_lossy(&buf[..p]).to_ascii_lowercase();
                                    let status: u16 = head[9..12].parse().unwrap();
                                    let length: usize = head
                                        .lines()
                                        .find_map(|l| l.strip_prefix("content-length:"))
                                        .map_or(0, |v| v.trim().parse().unwrap());
                                    break (status, p + 4, length);
                                }
                            };
                            while buf.len() < end + length {
                                let mut chunk = [0u8; 4096];
                                let n = s.read(&mut chunk).await.unwrap();
                                assert!(n > 0, "connection closed");
                                buf.extend_from_slice(&chunk[..n]);
                            }
                            assert_eq!(status, want, "{}", String::from_utf8_lossy(&buf));
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            (CLIENTS * per_client) as f64 / t0.elapsed().as_secs_f64()
        })
    })
    .join()
    .unwrap()
}

/// An admission of a new unique pipeline in one of `REALMS_ROUND` realms.
fn admission(c: usize, i: usize, tag: &str) -> (&'static str, String, String) {
    let realm = format!("bench{}", (c + i) % REALMS.load(Ordering::Relaxed));
    (
        "POST",
        format!("/v1/realms/{realm}/deployments"),
        format!(
            r#"{{"environment":"prod","pipeline":"{tag}{c}-{i}","version":"1.0","size":"small","replicas":1}}"#
        ),
    )
}

/// Realms the admissions are spread over.
static REALMS: AtomicUsize = AtomicUsize::new(1);

fn healthz(_: usize, _: usize, _: &str) -> (&'static str, String, String) {
    ("GET", "/healthz".into(), String::new())
}

fn http_sqlite(out: &mut String, dir: &Path) {
    let store = sqlite(&dir.join("http.db"), Sync::Full);
    let rt = rt();
    rt.block_on(store.seed("bench0", config(), "bench"))
        .unwrap();
    let (token, line) = mint(&Scope::Admin);
    let Store::Sqlite(writer) = &store else {
        unreachable!()
    };
    let writer = writer.clone();
    let server = rt.block_on(start(store, &line));
    let bases = [server.base.clone()];
    let per_client = 150;
    let (mut adm, mut hz) = (0f64, 0f64);
    REALMS.store(1, Ordering::Relaxed);
    for round in 0..3 {
        hz = hz.max(load(&bases, per_client * 2, "", healthz, 200, &token));
        let tag = format!("r{round}-");
        adm = adm.max(load(&bases, per_client, &tag, admission, 200, &token));
    }
    let _ = server.stop.send(());
    rt.block_on(server.task).unwrap().unwrap();
    let (proc_adm, proc_rss) = process_serve(dir, per_client);
    let batch = writer.stats().ops() as f64 / writer.stats().commits().max(1) as f64;
    let ratio = adm / hz;
    let verdict = if ratio >= 0.5 { "met" } else { "MISSED" };
    let _ = writeln!(
        out,
        "### SQLite over HTTP: admissions vs the HTTP ceiling\n\n`quota serve` in-process (axum, SQLite `synchronous=FULL`, group commit); load: {CLIENTS} keep-alive HTTP/1.1 connections driven from one async thread on the same machine (a lean generator, like pgbench's client); one realm, every admission a new unique pipeline. Ceiling: the same server's `GET /healthz` with the same connections. Best of 3 interleaved rounds.\n"
    );
    let _ = writeln!(
        out,
        "| admissions/s | avg batch | `/healthz` requests/s | ratio (goal ≥ 0.5×) |\n|---|---|---|---|\n| {adm:.0} | {batch:.1} | {hz:.0} | {ratio:.2}× ({verdict}) |\n"
    );
    let _ = writeln!(
        out,
        "The real binary under the same load (`realmctl quota serve --db FILE`, a separate process; peak resident set size from GNU time's `ru_maxrss`, over startup, 3 rounds of {CLIENTS} × {per_client} admissions and shutdown):\n\n| admissions/s | peak RSS |\n|---|---|\n| {proc_adm:.0} | {proc_rss:.1} MiB |\n"
    );
}

/// `realmctl quota serve --listen 127.0.0.1:0` run by `cmd` (the binary, or a wrapper around
/// it) on a new ledger `db` whose realm `bench0` is seeded: the child, an admin token and the
/// base URL it printed.
fn spawn_serve(mut cmd: std::process::Command, db: &Path) -> (std::process::Child, String, String) {
    use std::io::{BufRead, BufReader};
    let rt = rt();
    let store = sqlite(db, Sync::Full);
    rt.block_on(store.seed("bench0", config(), "bench"))
        .unwrap();
    drop(store);
    let (token, line) = mint(&Scope::Admin);
    let tokens = db.with_extension("tokens.yaml");
    std::fs::write(&tokens, format!("{line}\n")).unwrap();
    let mut child = cmd
        .args(["quota", "serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .arg("--tokens")
        .arg(&tokens)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let base = first.trim().rsplit(' ').next().unwrap().to_owned();
    (child, token, base)
}

/// `realmctl quota serve` as its own process, under GNU time, with the same load as the
/// in-process run: best admissions/s of 3 rounds, and its peak RSS in MiB.
fn process_serve(dir: &Path, per_client: usize) -> (f64, f64) {
    let rss = dir.join("serve.rss");
    let (mut child, token, base) = spawn_serve(
        support::under_time(env!("CARGO_BIN_EXE_realmctl").as_ref(), &rss),
        &dir.join("process.db"),
    );
    REALMS.store(1, Ordering::Relaxed);
    let mut best = 0f64;
    for round in 0..3 {
        best = best.max(load(
            std::slice::from_ref(&base),
            per_client,
            &format!("p{round}-"),
            admission,
            200,
            &token,
        ));
    }
    let server = support::only_child(child.id());
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    (best, support::peak_rss_mib(&rss))
}

/// `pgbench` TPS with the TPC-B-like script at `scale`, `CLIENTS` clients, for `secs`.
fn pgbench(pg: &pg::Pg, db: &str, scale: usize, secs: u64) -> f64 {
    let bench = pg.bin().join("pgbench");
    let common = |c: &mut std::process::Command| {
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port().to_string(),
            "-U",
            pg::USER,
        ])
        .env("PGPASSWORD", pg.password());
    };
    let mut init = std::process::Command::new(&bench);
    common(&mut init);
    let o = init
        .args(["-i", "-q", "-s", &scale.to_string(), db])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut run = std::process::Command::new(&bench);
    common(&mut run);
    let o = run
        .args([
            "-n",
            "-c",
            &CLIENTS.to_string(),
            "-j",
            "2",
            "-T",
            &secs.to_string(),
            db,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench output:\n{text}"))
}

fn postgres(out: &mut String) {
    let pg = pg::Pg::start();
    let scale = 10;
    let url = pg.create_db("quota");
    pg.create_db("pgbench");
    let rt = rt();
    let o = StoreOptions {
        pool_size: CLIENTS / 2,
        timeout: Duration::from_secs(30),
        ..StoreOptions::default()
    };
    let target = DbUrl::parse(&url, Some(Secret::new(pg.password()))).unwrap();
    let stores: Vec<Store> = (0..2)
        .map(|_| {
            rt.block_on(Store::open(&target, Open::CreateOrMigrate, o))
                .unwrap()
        })
        .collect();
    for r in 0..scale {
        rt.block_on(stores[0].seed(&format!("bench{r}"), config(), "bench"))
            .unwrap();
    }
    let (token, line) = mint(&Scope::Admin);
    let servers: Vec<Server> = stores
        .into_iter()
        .map(|s| rt.block_on(start(s, &line)))
        .collect();
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let (mut adm, mut tps) = (0f64, 0f64);
    REALMS.store(scale, Ordering::Relaxed);
    for round in 0..2 {
        tps = tps.max(pgbench(&pg, "pgbench", scale, 10));
        adm = adm.max(load(
            &bases,
            250,
            &format!("r{round}-"),
            admission,
            200,
            &token,
        ));
    }
    for s in servers {
        let _ = s.stop.send(());
        rt.block_on(s.task).unwrap().unwrap();
    }
    let ratio = adm / tps;
    let verdict = if ratio >= 0.8 { "met" } else { "MISSED" };
    let version = pg.psql("postgres", "SHOW server_version");
    let _ = writeln!(
        out,
        "### PostgreSQL: admissions through two replicas vs pgbench\n\nPostgreSQL {version} on loopback (a throw-away cluster, default settings: `fsync=on`, `synchronous_commit=on`). Two `quota serve` replicas in-process, {} pooled connections each; {CLIENTS} keep-alive HTTP connections (the same lean generator) split between them; {scale} realms (each admission takes its realm's advisory lock, as each TPC-B transaction updates one of {scale} branch rows). pgbench: built-in TPC-B-like script, scale {scale}, `-c {CLIENTS} -j 2 -T 10`, same server. Best of 2 interleaved rounds.\n",
        CLIENTS / 2
    );
    let _ = writeln!(
        out,
        "| admissions/s (2 replicas, HTTP) | pgbench TPS | ratio (goal ≥ 0.8×) |\n|---|---|---|\n| {adm:.0} | {tps:.0} | {ratio:.2}× ({verdict}) |\n"
    );
}

fn main() {
    if !support::measuring() {
        return;
    }
    // `cargo bench --bench quota -- postgres` runs only the sections named; the results file
    // is written only when every section ran.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let dir = tempfile::tempdir().unwrap();
    let mut out = String::new();
    if wanted("durable") {
        durable(&mut out, dir.path());
    }
    if wanted("latency") {
        latency(&mut out);
    }
    if wanted("http") {
        http_sqlite(&mut out, dir.path());
    }
    if wanted("wrk") {
        wrk::measure(&mut out, dir.path());
    }
    if wanted("postgres") {
        postgres(&mut out);
    }
    println!("{out}");
    if only.is_empty() {
        support::write_section(
            "docs/benchmarks.md",
            "quota",
            &format!("{}{out}", support::stamp("quota")),
        );
    }
}
