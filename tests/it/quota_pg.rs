//! The enforcement core on PostgreSQL (issue #10), against a real PostgreSQL started by each
//! test (`pg.rs`): the reference model and racing tasks on both backends, two `quota serve`
//! replicas on one database racing for the last RTUs and subscriptions, a replica SIGKILLed
//! under load, the database stopped and frozen under load (503 within the timeout, never a
//! wrong decision, nothing acknowledged lost), migrations, and a canary password.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use realmctl::quota::model::{Deployment, Env, RealmConfig, Size, Version};
use realmctl::quota::store::{DbUrl, Open, Store, StoreOptions};
use realmctl::quota::tokens::{Scope, mint};
use realmctl::secret::Secret;

use crate::common::{QuotaServe, files, forms, realmctl, url_encode};
use crate::pg::Pg;
use crate::quota::{check_against_reference, ops, runtime};

fn store(rt: &tokio::runtime::Runtime, url: &str, pg: &Pg) -> Store {
    let url = DbUrl::parse(url, Some(Secret::new(pg.password()))).unwrap();
    rt.block_on(Store::open(
        &url,
        Open::CreateOrMigrate,
        StoreOptions::default(),
    ))
    .unwrap()
}

#[test]
fn the_postgres_ledger_decides_like_the_reference_model() {
    // Decisions, not durability, are under test here: commits need not wait for the disk.
    let pg = Pg::start_with("pg-test-password", &["synchronous_commit=off"]);
    let url = pg.create_db("model");
    let rt = runtime();
    let store = store(&rt, &url, &pg);
    let case = AtomicUsize::new(0);
    let mut runner = TestRunner::new(ProptestConfig::with_cases(48));
    runner
        .run(&ops(), |ops| {
            // A fresh realm per case, so cases never see each other's state.
            let realm = format!("r{}", case.fetch_add(1, Ordering::Relaxed));
            check_against_reference(&store, &rt, &realm, ops)
        })
        .unwrap();
}

fn config(subs: u64, extra_test: u64, extra_prod: u64) -> RealmConfig {
    RealmConfig {
        pipeline_subscriptions: subs,
        extra_test_rtus: extra_test,
        extra_prod_rtus: extra_prod,
        max_replicas: 10,
        max_size: Size::Large,
    }
}

/// Several stores (as several replicas would hold) racing on one database.
#[test]
fn racing_stores_on_one_postgres_never_over_admit() {
    let pg = Pg::start();
    let url = pg.create_db("race");
    let rt = runtime();
    let stores: Vec<Store> = (0..4).map(|_| store(&rt, &url, &pg)).collect();
    rt.block_on(stores[0].seed("acme", config(60, 0, 0), "t"))
        .unwrap(); // Prod: 120 RTUs = 30 Large.
    let admitted = rt.block_on(async {
        let tasks: Vec<_> = (0..96)
            .map(|i| {
                let s = stores[i % stores.len()].clone();
                tokio::spawn(async move {
                    let req = Deployment {
                        environment: Env::Prod,
                        pipeline: format!("p{i}"),
                        version: Version { major: 1, minor: 0 },
                        size: Size::Large,
                        replicas: 1,
                    };
                    let d = s.deploy("acme", &req, "race").await.unwrap();
                    if !d.admitted {
                        assert_eq!(d.reason.map(|r| r.as_str()), Some("insufficient_rtu"));
                    }
                    d.admitted
                })
            })
            .collect();
        let mut n = 0;
        for t in tasks {
            n += usize::from(t.await.unwrap());
        }
        n
    });
    assert_eq!(admitted, 30);
    let st = rt.block_on(stores[1].status("acme")).unwrap();
    assert_eq!((st.prod.rtus_used, st.prod.subscriptions_used), (120, 30));
    let log = rt.block_on(stores[2].decisions("acme")).unwrap();
    let deploys: Vec<_> = log.iter().filter(|d| d.action == "deploy").collect();
    assert_eq!(deploys.iter().filter(|d| d.admitted).count(), 30);
    assert_eq!(deploys.len(), 96);
    // The log is append-only in PostgreSQL too.
    for sql in [
        "UPDATE decisions SET admitted = true",
        "DELETE FROM decisions",
        "TRUNCATE decisions",
    ] {
        let out = pg.psql_raw("race", sql);
        assert!(!out.status.success(), "{sql} was allowed");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("append-only"),
            "{sql}"
        );
    }
}

/// A replica process and its output.
struct Replica(QuotaServe);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

struct Setup {
    dir: tempfile::TempDir,
    admin: String,
    acme: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (admin, a) = mint(&Scope::Admin);
    let (acme, b) = mint(&Scope::Realm("acme".into()));
    std::fs::write(dir.path().join("tokens.yaml"), format!("{a}\n{b}\n")).unwrap();
    Setup { dir, admin, acme }
}

fn replica(s: &Setup, url: &str, pg: &Pg, extra: &[&str]) -> Replica {
    Replica(QuotaServe::start(
        url.as_ref(),
        &s.dir.path().join("tokens.yaml"),
        extra,
        &[("PGPASSWORD", pg.password())],
    ))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// One HTTP answer: status, body, `Retry-After`, and how long it took.
struct Answer {
    status: u16,
    body: serde_json::Value,
    retry_after: Option<String>,
    took: Duration,
}

fn post(a: &ureq::Agent, url: &str, token: &str, body: &str) -> Result<Answer, ureq::Error> {
    let t0 = Instant::now();
    let mut r = a
        .post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .content_type("application/json")
        .send(body)?;
    answer(&mut r, t0)
}

fn get(a: &ureq::Agent, url: &str) -> Result<Answer, ureq::Error> {
    let t0 = Instant::now();
    let mut r = a.get(url).call()?;
    answer(&mut r, t0)
}

fn answer(r: &mut ureq::http::Response<ureq::Body>, t0: Instant) -> Result<Answer, ureq::Error> {
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string()?;
    Ok(Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        retry_after,
        took: t0.elapsed(),
    })
}

fn deploy_body(env: &str, pipeline: &str, size: &str) -> String {
    format!(
        r#"{{"environment":"{env}","pipeline":"{pipeline}","version":"1.0","size":"{size}","replicas":1}}"#
    )
}

fn seed_over_http(base: &str, admin: &str, body: &str) {
    let mut r = agent()
        .put(&format!("{base}/v1/realms/acme/config"))
        .header("Authorization", &format!("Bearer {admin}"))
        .content_type("application/json")
        .send(body)
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.body_mut().read_to_string().unwrap()
    );
}

/// Pipelines of the realm's active deployments, read from the database itself.
fn deployed(pg: &Pg, db: &str) -> BTreeSet<String> {
    pg.psql(db, "SELECT pipeline FROM deployments WHERE realm = 'acme'")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn two_replicas_on_one_postgres_admit_exactly_what_fits() {
    let pg = Pg::start();
    let url = pg.create_db("replicas");
    let s = setup();
    // Both start at once: their migrations race under the migration lock.
    let (a, b) = std::thread::scope(|sc| {
        let a = sc.spawn(|| replica(&s, &url, &pg, &[]));
        let b = sc.spawn(|| replica(&s, &url, &pg, &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(
        pg.psql("replicas", "SELECT count(*) FROM realmctl_schema"),
        realmctl::quota::postgres::schema::latest().to_string(),
        "each migration applied once"
    );
    // Test: 20 subscriptions with 120 RTUs (subscription-bound: 20 Small fit).
    // Prod: 40 RTUs (RTU-bound: 10 Large fit).
    seed_over_http(
        &a.0.base,
        &s.admin,
        r#"{"pipelineSubscriptions": 20, "extraTestRtus": 100, "extraProdRtus": 0}"#,
    );
    let clients = 64;
    let per_client = 3;
    let barrier = Arc::new(Barrier::new(clients));
    let answers = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|sc| {
        for c in 0..clients {
            let base = if c % 2 == 0 { &a.0.base } else { &b.0.base };
            let (barrier, answers, token) = (barrier.clone(), answers.clone(), &s.acme);
            sc.spawn(move || {
                let agent = agent();
                let url = format!("{base}/v1/realms/acme/deployments");
                barrier.wait();
                for i in 0..per_client {
                    let (env, size) = if (c + i) % 2 == 0 {
                        ("prod", "large")
                    } else {
                        ("test", "small")
                    };
                    let pipeline = format!("c{c}-{i}");
                    let r = post(&agent, &url, token, &deploy_body(env, &pipeline, size)).unwrap();
                    answers
                        .lock()
                        .unwrap()
                        .push((env, pipeline, r.status, r.body));
                }
            });
        }
    });
    let answers = answers.lock().unwrap();
    assert_eq!(answers.len(), clients * per_client);
    let mut admitted = BTreeSet::new();
    let (mut prod, mut test) = (0, 0);
    for (env, pipeline, status, body) in answers.iter() {
        match (*status, *env) {
            (200, "prod") => prod += 1,
            (200, "test") => test += 1,
            (409, "prod") => assert_eq!(body["reason"], "insufficient_rtu", "{body}"),
            (409, "test") => assert_eq!(body["reason"], "no_pipeline_subscription", "{body}"),
            (other, _) => panic!("{pipeline}: status {other}: {body}"),
        }
        if *status == 200 {
            assert_eq!(body["admitted"], true);
            admitted.insert(pipeline.clone());
        }
    }
    assert_eq!((prod, test), (10, 20), "exactly what fits, per environment");
    // The database agrees: the deployments are exactly the admitted ones, the counters match,
    // and the decision log holds every decision once.
    assert_eq!(deployed(&pg, "replicas"), admitted);
    assert_eq!(
        pg.psql(
            "replicas",
            "SELECT environment || ':' || subscriptions_used || ':' || rtus_used FROM usage WHERE realm = 'acme' ORDER BY environment"
        ),
        "prod:10:40\ntest:20:20"
    );
    assert_eq!(
        pg.psql(
            "replicas",
            "SELECT count(*) FILTER (WHERE admitted) || ':' || count(*) FILTER (WHERE NOT admitted) FROM decisions WHERE realm = 'acme' AND action = 'deploy'"
        ),
        format!("30:{}", clients * per_client - 30)
    );
}

#[test]
fn sigkill_of_one_replica_under_load_loses_nothing_and_the_other_keeps_serving() {
    let pg = Pg::start();
    let url = pg.create_db("kill");
    let s = setup();
    let mut a = replica(&s, &url, &pg, &[]);
    let b = replica(&s, &url, &pg, &[]);
    seed_over_http(&b.0.base, &s.admin, r#"{"pipelineSubscriptions": 1000000}"#);
    let killed = AtomicBool::new(false);
    let acked = Mutex::new(Vec::<String>::new());
    let (a_errors, b_after_kill) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|sc| {
        for c in 0..16 {
            let on_a = c % 2 == 0;
            let base = if on_a {
                a.0.base.clone()
            } else {
                b.0.base.clone()
            };
            let (killed, acked, a_errors, b_after_kill, token) =
                (&killed, &acked, &a_errors, &b_after_kill, &s.acme);
            sc.spawn(move || {
                let agent = agent();
                let url = format!("{base}/v1/realms/acme/deployments");
                let mut after = 0;
                for i in 0.. {
                    let pipeline = format!("c{c}-{i}");
                    let was_killed = killed.load(Ordering::SeqCst);
                    match post(
                        &agent,
                        &url,
                        token,
                        &deploy_body("prod", &pipeline, "small"),
                    ) {
                        Ok(r) => {
                            assert_eq!(r.status, 200, "{}", r.body);
                            acked.lock().unwrap().push(pipeline);
                            if !on_a && was_killed {
                                after += 1;
                                b_after_kill.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(_) if on_a => {
                            assert!(
                                killed.load(Ordering::SeqCst),
                                "replica A failed before the kill"
                            );
                            a_errors.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        Err(e) => panic!("replica B failed: {e}"),
                    }
                    if !on_a && after >= 40 {
                        return;
                    }
                }
            });
        }
        // Kill A while every client is mid-stream.
        let t0 = Instant::now();
        while acked.lock().unwrap().len() < 300 {
            assert!(t0.elapsed() < Duration::from_secs(60), "no load");
            std::thread::sleep(Duration::from_millis(5));
        }
        killed.store(true, Ordering::SeqCst);
        a.0.child.kill().unwrap();
        a.0.child.wait().unwrap();
    });
    // The kill landed under load: every A client saw its connection fail.
    assert_eq!(a_errors.load(Ordering::SeqCst), 8);
    assert_eq!(
        b_after_kill.load(Ordering::SeqCst),
        8 * 40,
        "B kept serving"
    );
    let acked = acked.into_inner().unwrap();
    let stored = deployed(&pg, "kill");
    let lost: Vec<_> = acked.iter().filter(|p| !stored.contains(*p)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    // Every stored deployment has its admitted decision (A may have committed a few whose
    // answers never left it: stored, logged, but not acknowledged).
    assert_eq!(
        pg.psql(
            "kill",
            "SELECT count(*) FROM decisions WHERE realm = 'acme' AND action = 'deploy' AND admitted"
        ),
        stored.len().to_string()
    );
}

/// Bound of a request that must end by the store timeout: 1.5 × timeout + slack.
fn bound(timeout: Duration) -> Duration {
    timeout * 3 / 2 + Duration::from_millis(500)
}

#[test]
fn a_stopped_database_gets_503_within_the_timeout_and_service_resumes_after_restart() {
    let mut pg = Pg::start();
    let url = pg.create_db("outage");
    let s = setup();
    let timeout = Duration::from_secs(1);
    let r = replica(&s, &url, &pg, &["--db-timeout", "1s"]);
    seed_over_http(&r.0.base, &s.admin, r#"{"pipelineSubscriptions": 1000000}"#);
    let ready = |want: u16| {
        let a = get(&agent(), &format!("{}/readyz", r.0.base)).unwrap();
        assert_eq!(a.status, want, "{}", a.body);
        assert!(a.took <= bound(timeout), "/readyz took {:?}", a.took);
        if want == 503 {
            assert_eq!(a.retry_after.as_deref(), Some("1"));
        }
    };
    ready(200);
    let stop = AtomicBool::new(false);
    let answers = Mutex::new(Vec::new());
    let (mut down_at, mut restart_at, mut up_at) = (None, None, None);
    std::thread::scope(|sc| {
        for c in 0..8 {
            let (stop, answers, base, token) = (&stop, &answers, &r.0.base, &s.acme);
            sc.spawn(move || {
                let agent = agent();
                let url = format!("{base}/v1/realms/acme/deployments");
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let pipeline = format!("c{c}-{i}");
                    let sent = Instant::now();
                    let a = post(
                        &agent,
                        &url,
                        token,
                        &deploy_body("prod", &pipeline, "small"),
                    )
                    .unwrap();
                    answers.lock().unwrap().push((sent, pipeline, a));
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
        std::thread::sleep(Duration::from_millis(800));
        pg.stop();
        down_at = Some(Instant::now());
        std::thread::sleep(Duration::from_millis(1500));
        ready(503);
        restart_at = Some(Instant::now());
        pg.restart();
        up_at = Some(Instant::now());
        // Service resumes: a fresh admission is acknowledged within a few seconds.
        let t0 = Instant::now();
        loop {
            let fresh =
                answers
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|(sent, _, a): &(Instant, String, Answer)| {
                        *sent > up_at.unwrap() && a.status == 200
                    });
            if fresh {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "no admission after the restart"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::SeqCst);
    });
    ready(200);
    let (down_at, restart_at) = (down_at.unwrap(), restart_at.unwrap());
    let answers = answers.into_inner().unwrap();
    let mut during = 0;
    for (sent, pipeline, a) in &answers {
        assert!(
            matches!(a.status, 200 | 503),
            "{pipeline}: {} {}",
            a.status,
            a.body
        );
        assert!(a.took <= bound(timeout), "{pipeline} took {:?}", a.took);
        if a.status == 503 {
            assert_eq!(a.retry_after.as_deref(), Some("1"), "{pipeline}");
        }
        // Sent after the database was down and answered before it was started again.
        if *sent > down_at && *sent + a.took < restart_at {
            during += 1;
            assert_eq!(
                a.status, 503,
                "{pipeline} was decided while the database was down"
            );
        }
    }
    assert!(during > 0, "no request fell into the outage");
    assert!(
        answers
            .iter()
            .any(|(s, _, a)| *s < down_at && a.status == 200)
    );
    let stored = deployed(&pg, "outage");
    for (_, pipeline, a) in &answers {
        if a.status == 200 {
            assert!(
                stored.contains(pipeline),
                "acknowledged {pipeline} was lost"
            );
        }
    }
}

/// Every process of the cluster whose postmaster is `pid` (itself and its children).
fn cluster_pids(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // Field 4 (after the parenthesised command name) is the parent pid.
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        if after
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok())
            == Some(pid)
        {
            pids.push(p);
        }
    }
    pids
}

#[test]
fn a_frozen_database_gets_503_within_the_timeout_not_a_hang() {
    let pg = Pg::start();
    let url = pg.create_db("frozen");
    let s = setup();
    let timeout = Duration::from_millis(800);
    let r = replica(&s, &url, &pg, &["--db-timeout", "800ms"]);
    seed_over_http(&r.0.base, &s.admin, r#"{"pipelineSubscriptions": 100}"#);
    let url_deploy = format!("{}/v1/realms/acme/deployments", r.0.base);
    let ok = post(
        &agent(),
        &url_deploy,
        &s.acme,
        &deploy_body("prod", "before", "small"),
    )
    .unwrap();
    assert_eq!(ok.status, 200);
    // SIGSTOP every process of the cluster: connections stay open, nothing answers.
    let pids = cluster_pids(pg.postmaster_pid());
    assert!(pids.len() > 2, "postmaster and its workers: {pids:?}");
    let signal = |sig: rustix::process::Signal| {
        for p in &pids {
            if let Some(pid) = rustix::process::Pid::from_raw(*p as i32) {
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
    };
    signal(rustix::process::Signal::STOP);
    let frozen = std::panic::catch_unwind(|| {
        for i in 0..3 {
            let a = post(
                &agent(),
                &url_deploy,
                &s.acme,
                &deploy_body("prod", &format!("frozen-{i}"), "small"),
            )
            .unwrap();
            assert_eq!(a.status, 503, "{}", a.body);
            assert!(
                a.took >= timeout * 9 / 10,
                "answered before the timeout: {:?}",
                a.took
            );
            assert!(a.took <= bound(timeout), "took {:?}", a.took);
            assert_eq!(a.retry_after.as_deref(), Some("1"));
        }
        let ready = get(&agent(), &format!("{}/readyz", r.0.base)).unwrap();
        assert_eq!(ready.status, 503);
        assert!(
            ready.took <= bound(timeout),
            "/readyz took {:?}",
            ready.took
        );
    });
    signal(rustix::process::Signal::CONT);
    if let Err(p) = frozen {
        std::panic::resume_unwind(p);
    }
    // Thawed: the service decides again.
    let t0 = Instant::now();
    loop {
        let a = post(
            &agent(),
            &url_deploy,
            &s.acme,
            &deploy_body("prod", "after", "small"),
        )
        .unwrap();
        if a.status == 200 {
            break;
        }
        assert_eq!(a.status, 503);
        assert!(t0.elapsed() < Duration::from_secs(15), "no recovery");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(deployed(&pg, "frozen").contains("after"));
}

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = realmctl();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn migrations_are_explicit_idempotent_and_refuse_a_newer_schema() {
    let pg = Pg::start();
    let url = pg.create_db("mig");
    let pw = [("PGPASSWORD", pg.password())];
    // Commands that only read or decide never create the schema.
    let o = run(&["quota", "status", "--db", &url, "--realm", "acme"], &pw);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("schema version 0") && err.contains("realmctl quota migrate"),
        "{err}"
    );
    let o = run(&["quota", "migrate", "--db", &url], &pw);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let latest = realmctl::quota::postgres::schema::latest();
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains(&format!("migrated from schema version 0 to {latest}"))
    );
    let o = run(&["quota", "migrate", "--db", &url], &pw);
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to do"));
    let o = run(&["quota", "status", "--db", &url, "--realm", "acme"], &pw);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not seeded"));
    // A newer realmctl migrated it: refused by every command, never used.
    pg.psql("mig", "INSERT INTO realmctl_schema VALUES (99, 'later')");
    for args in [
        vec!["quota", "migrate", "--db", &url],
        vec!["quota", "status", "--db", &url, "--realm", "acme"],
    ] {
        let o = run(&args, &pw);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("schema version 99, newer"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let s = setup();
    let o = realmctl()
        .args([
            "quota",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &url,
            "--tokens",
        ])
        .arg(s.dir.path().join("tokens.yaml"))
        .env("PGPASSWORD", pg.password())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("newer"));
    // The same rule on SQLite.
    let db = s.dir.path().join("q.db");
    let o = run(&["quota", "migrate", "--db", db.to_str().unwrap()], &[]);
    assert!(o.status.success());
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let o = run(&["quota", "migrate", "--db", db.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("schema version 99, newer"));
}

#[test]
fn a_plain_connection_to_a_remote_database_is_refused() {
    let o = run(
        &[
            "quota",
            "migrate",
            "--db",
            "postgres://quota@db.example.com:5432/realms?sslmode=disable",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("sslmode=disable") && err.contains("help:"),
        "{err}"
    );
}

/// The database password (issue #10's new credential source) never appears in any output of
/// `quota migrate`, `seed`, `serve`, `status`, in any answer, or in any file the commands
/// wrote — given through `PGPASSWORD` or inside the URL, and on failures too.
#[test]
fn the_database_password_never_appears_anywhere() {
    let canary = "pg-canary-7Hq2/x+Vb=";
    let pg = Pg::start_with(canary, &[]);
    let url = pg.create_db("canary");
    let in_url = pg
        .url_with_password("canary")
        .replace(canary, &url_encode(canary));
    let s = setup();
    let spec = crate::quota_cli::spec(s.dir.path(), 3);
    let mut outputs: Vec<Vec<u8>> = Vec::new();
    let pw = [("PGPASSWORD", canary)];
    for (args, env) in [
        (vec!["quota", "migrate", "--db", url.as_str()], &pw[..]),
        (vec!["quota", "migrate", "--db", in_url.as_str()], &[][..]),
        (
            vec![
                "quota",
                "seed",
                "--db",
                url.as_str(),
                "-f",
                spec.to_str().unwrap(),
            ],
            &pw[..],
        ),
        (
            vec![
                "quota",
                "status",
                "--db",
                in_url.as_str(),
                "--realm",
                "acme",
            ],
            &[][..],
        ),
        (
            vec!["quota", "status", "--db", url.as_str(), "--realm", "nope"],
            &pw[..],
        ),
        // Failures: a wrong database name, a wrong password, a dead port.
        (
            vec![
                "quota",
                "status",
                "--db",
                &in_url.replace("/canary", "/missing"),
                "--realm",
                "acme",
            ],
            &[][..],
        ),
        (
            vec!["quota", "status", "--db", &url, "--realm", "acme"],
            &[("PGPASSWORD", "wrong")][..],
        ),
        (
            vec![
                "quota",
                "status",
                "--db",
                &in_url.replace(
                    &pg.port().to_string(),
                    &crate::common::closed_port().to_string(),
                ),
                "--realm",
                "acme",
            ],
            &[][..],
        ),
    ] {
        let o = run(&args, env);
        outputs.push(o.stdout);
        outputs.push(o.stderr);
    }
    let r = replica(&s, &url, &pg, &[]);
    let usage = agent()
        .get(&format!("{}/v1/realms/acme/usage", r.0.base))
        .header("Authorization", &format!("Bearer {}", s.acme))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    outputs.push(usage.into_bytes());
    outputs.push(
        get(&agent(), &format!("{}/readyz", r.0.base))
            .unwrap()
            .body
            .to_string()
            .into_bytes(),
    );
    let r2 = Replica(QuotaServe::start(
        in_url.as_ref(),
        &s.dir.path().join("tokens.yaml"),
        &[],
        &[],
    ));
    std::thread::sleep(Duration::from_millis(200));
    outputs.push(r.0.printed());
    outputs.push(r2.0.printed());
    // The database server is a process this test started too: its log is scanned as well.
    let pg_log = pg.log();
    assert!(!pg_log.is_empty(), "the PostgreSQL log was kept");
    outputs.push(pg_log);
    let written = files(&[s.dir.path()]);
    for form in forms(canary) {
        for (i, o) in outputs.iter().enumerate() {
            assert!(
                !String::from_utf8_lossy(o).contains(&form),
                "output {i} holds the password ({form})"
            );
        }
        for (path, bytes) in &written {
            assert!(
                !String::from_utf8_lossy(bytes).contains(&form),
                "{} holds the password",
                path.display()
            );
        }
    }
    // The commands did reach the database (the scan is not vacuous).
    assert_eq!(pg.psql("canary", "SELECT count(*) FROM realms"), "1");
}

/// TLS to PostgreSQL is verified: the server's certificate must chain to a trusted root (here
/// a test CA given through `SSL_CERT_FILE`, which the platform trust store honours) and name the
/// host. The server accepts only TLS connections, so success proves TLS was used.
#[test]
fn tls_to_postgres_is_verified_against_the_trust_store() {
    let pki = crate::common::Pki::new();
    let leaf = pki.leaf(&["localhost".to_owned()]);
    let pg = Pg::start_tls("pg-test-password", &leaf.cert_pem, &leaf.key_pem);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.root_pem()).unwrap();
    let url = format!(
        "postgres://{}@localhost:{}/postgres?sslmode=require",
        crate::pg::USER,
        pg.port()
    );
    let trusted = [
        ("PGPASSWORD", pg.password()),
        ("SSL_CERT_FILE", ca.to_str().unwrap()),
    ];
    let o = run(&["quota", "migrate", "--db", &url], &trusted);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // An untrusted CA (the platform store only): refused, nothing written.
    let other = crate::common::Pki::new();
    std::fs::write(&ca, other.root_pem()).unwrap();
    let o = run(
        &["quota", "status", "--db", &url, "--realm", "acme"],
        &trusted,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(
        err.contains("invalid peer certificate") && err.contains("help:"),
        "{err}"
    );
    // The right CA but the wrong name (127.0.0.1 is not in the certificate): refused.
    std::fs::write(&ca, pki.root_pem()).unwrap();
    let by_ip = url.replace("@localhost:", "@127.0.0.1:");
    let o = run(
        &["quota", "status", "--db", &by_ip, "--realm", "acme"],
        &trusted,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(
        err.contains("invalid peer certificate") && err.contains("name"),
        "{err}"
    );
    // Plain text is refused by this server: the success above was over TLS.
    let plain = url.replace("sslmode=require", "sslmode=disable");
    let o = run(
        &["quota", "status", "--db", &plain, "--realm", "acme"],
        &trusted,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("pg_hba.conf"));
}

/// A retirement racing admissions and other retirements on several stores of one ledger: one
/// retirement retires (`now`), every other answers the same time; every admission decided
/// after it in the log is denied `realm_retired` and none before it is; a new config is
/// refused; the status names the time; the log pages back whole.
fn retirement_race(rt: &tokio::runtime::Runtime, stores: &[Store]) {
    rt.block_on(stores[0].seed("acme", config(500, 0, 0), "t"))
        .unwrap();
    let (retirements, _) = rt.block_on(async {
        let retire: Vec<_> = (0..4)
            .map(|i| {
                let s = stores[i % stores.len()].clone();
                tokio::spawn(async move { s.retire("acme", "destroy").await.unwrap() })
            })
            .collect();
        let admit: Vec<_> = (0..64)
            .map(|i| {
                let s = stores[i % stores.len()].clone();
                tokio::spawn(async move {
                    let req = Deployment {
                        environment: Env::Test,
                        pipeline: format!("p{i}"),
                        version: Version { major: 1, minor: 0 },
                        size: Size::Small,
                        replicas: 1,
                    };
                    s.deploy("acme", &req, "race").await.unwrap()
                })
            })
            .collect();
        let mut r = Vec::new();
        for t in retire {
            r.push(t.await.unwrap());
        }
        let mut d = Vec::new();
        for t in admit {
            d.push(t.await.unwrap());
        }
        (r, d)
    });
    assert_eq!(
        retirements.iter().filter(|r| r.now).count(),
        1,
        "{retirements:?}"
    );
    for r in &retirements {
        assert_eq!(r.retired_at, retirements[0].retired_at, "{retirements:?}");
    }
    let log = rt.block_on(stores[0].decisions("acme")).unwrap();
    let at = log.iter().position(|d| d.action == "retire").unwrap();
    assert_eq!(log.iter().filter(|d| d.action == "retire").count(), 1);
    for (i, d) in log.iter().enumerate().filter(|(_, d)| d.action == "deploy") {
        if i < at {
            assert!(d.admitted, "{d:?}");
        } else {
            assert!(!d.admitted, "{d:?}");
            assert_eq!(d.reason.as_deref(), Some("realm_retired"), "{d:?}");
        }
    }
    let e = rt
        .block_on(stores[stores.len() - 1].seed("acme", config(9, 0, 0), "t"))
        .unwrap_err();
    assert!(e.to_string().contains("was retired"), "{e}");
    let st = rt
        .block_on(stores[stores.len() - 1].status("acme"))
        .unwrap();
    assert_eq!(
        st.retired_at.as_deref(),
        Some(retirements[0].retired_at.as_str())
    );
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = rt
            .block_on(stores[0].decisions_page("acme", after, 7))
            .unwrap();
        paged.extend(page.iter().map(|d| d.id));
        match page.last() {
            Some(d) if page.len() == 7 => after = d.id,
            _ => break,
        }
    }
    let all: Vec<i64> = rt
        .block_on(stores[0].decisions("acme"))
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(paged, all);
}

#[test]
fn a_retirement_racing_admissions_ends_them_on_postgres_and_sqlite() {
    let pg = Pg::start();
    let url = pg.create_db("retire");
    let rt = runtime();
    let stores: Vec<Store> = (0..4).map(|_| store(&rt, &url, &pg)).collect();
    retirement_race(&rt, &stores);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = DbUrl::parse(dir.path().join("q.db").to_str().unwrap(), None).unwrap();
    let one = rt
        .block_on(Store::open(
            &sqlite,
            Open::CreateOrMigrate,
            StoreOptions::default(),
        ))
        .unwrap();
    retirement_race(&rt, &[one]);
}
