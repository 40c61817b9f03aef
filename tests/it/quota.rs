//! Enforcement core (issue #3): the ledger against a small reference model, and many threads
//! (each with its own connection) racing for the last RTUs. The reference model and its driver
//! are shared with the PostgreSQL tests (`quota_pg`, issue #10).

use std::path::Path;
use std::sync::{Arc, Barrier};

use proptest::prelude::*;
use realmctl::quota::ledger::{Ledger, LedgerError, Sync};
use realmctl::quota::model::{Deployment, Env, Key, RealmConfig, Size, Version};
use realmctl::quota::store::{DbUrl, Open, Store, StoreOptions};

/// An independent, deliberately naive statement of the seed's rules.
#[derive(Debug, Clone, Default)]
struct Reference {
    config: Option<(u64, u64, u64, u32, u8)>, // subs, extra test, extra prod, max replicas, max size rtus
    active: Vec<(Env, String, u32, u32, u8, u32)>, // env, pipeline, major, minor, size rtus, replicas
}

fn size_rtus(s: Size) -> u8 {
    match s {
        Size::Small => 1,
        Size::Medium => 2,
        Size::Large => 4,
    }
}

impl Reference {
    fn pool(&self, env: Env, cfg: (u64, u64, u64, u32, u8)) -> u64 {
        if env == Env::Test {
            cfg.0 + cfg.1
        } else {
            2 * cfg.0 + cfg.2
        }
    }
    fn used(&self, env: Env) -> (u64, u64) {
        let mine: Vec<_> = self.active.iter().filter(|a| a.0 == env).collect();
        (
            mine.len() as u64,
            mine.iter().map(|a| u64::from(a.4) * u64::from(a.5)).sum(),
        )
    }
    fn seed(&mut self, cfg: (u64, u64, u64, u32, u8)) -> bool {
        for env in [Env::Test, Env::Prod] {
            let (n, rtus) = self.used(env);
            if n > cfg.0 || rtus > self.pool(env, cfg) {
                return false;
            }
        }
        self.config = Some(cfg);
        true
    }
    fn deploy(
        &mut self,
        env: Env,
        p: &str,
        v: Version,
        size: Size,
        replicas: u32,
    ) -> Result<Option<&'static str>, ()> {
        let cfg = self.config.ok_or(())?;
        if replicas > cfg.3 || size_rtus(size) > cfg.4 {
            return Ok(Some("quota_exceeded"));
        }
        let existing = self
            .active
            .iter()
            .position(|a| a.0 == env && a.1 == p && a.2 == v.major);
        let (n, used) = self.used(env);
        if existing.is_none() && n >= cfg.0 {
            return Ok(Some("no_pipeline_subscription"));
        }
        let freed = existing.map_or(0, |i| {
            u64::from(self.active[i].4) * u64::from(self.active[i].5)
        });
        if used - freed + u64::from(size_rtus(size)) * u64::from(replicas) > self.pool(env, cfg) {
            return Ok(Some("insufficient_rtu"));
        }
        if let Some(i) = existing {
            self.active.remove(i);
        }
        self.active.push((
            env,
            p.to_owned(),
            v.major,
            v.minor,
            size_rtus(size),
            replicas,
        ));
        Ok(None)
    }
    fn undeploy(&mut self, env: Env, p: &str, major: u32) -> bool {
        match self
            .active
            .iter()
            .position(|a| a.0 == env && a.1 == p && a.2 == major)
        {
            Some(i) => {
                self.active.remove(i);
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Op {
    Seed(u64, u64, u64, u32, Size),
    Deploy(Env, u8, u32, u32, Size, u32),
    Undeploy(Env, u8, u32),
}

fn env() -> impl Strategy<Value = Env> {
    prop_oneof![Just(Env::Test), Just(Env::Prod)]
}
fn size() -> impl Strategy<Value = Size> {
    prop_oneof![Just(Size::Small), Just(Size::Medium), Just(Size::Large)]
}
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u64..5, 0u64..4, 0u64..6, 1u32..5, size()).prop_map(|(a, b, c, d, e)| Op::Seed(a, b, c, d, e)),
        6 => (env(), 0u8..4, 1u32..3, 0u32..4, size(), 1u32..5).prop_map(|(a, b, c, d, e, f)| Op::Deploy(a, b, c, d, e, f)),
        2 => (env(), 0u8..4, 1u32..3).prop_map(|(a, b, c)| Op::Undeploy(a, b, c)),
    ]
}

/// Runs `ops` on `realm` through `store` and against the reference model; any divergence fails.
pub fn check_against_reference(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    realm: &str,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let mut reference = Reference::default();
    for op in ops {
        match op {
            Op::Seed(subs, et, ep, maxr, maxs) => {
                let cfg = RealmConfig {
                    pipeline_subscriptions: subs,
                    extra_test_rtus: et,
                    extra_prod_rtus: ep,
                    max_replicas: maxr,
                    max_size: maxs,
                };
                let ours = rt.block_on(store.seed(realm, cfg, "t"));
                let theirs = reference.seed((subs, et, ep, maxr, size_rtus(maxs)));
                prop_assert_eq!(ours.is_ok(), theirs, "seed {:?}: {:?}", cfg, ours);
            }
            Op::Deploy(env, p, major, minor, size, replicas) => {
                let req = Deployment {
                    environment: env,
                    pipeline: format!("p{p}"),
                    version: Version { major, minor },
                    size,
                    replicas,
                };
                let ours = rt.block_on(store.deploy(realm, &req, "t"));
                let theirs = reference.deploy(env, &req.pipeline, req.version, size, replicas);
                match (ours, theirs) {
                    (Ok(d), Ok(reason)) => {
                        prop_assert_eq!(d.reason.map(|r| r.as_str()), reason, "{:?}", req)
                    }
                    (Err(LedgerError::UnknownRealm(_)), Err(())) => {}
                    (o, t) => prop_assert!(
                        false,
                        "diverged on {:?}: {:?} vs {:?}",
                        req,
                        o.map(|d| d.reason),
                        t
                    ),
                }
            }
            Op::Undeploy(env, p, major) => {
                let key = Key {
                    environment: env,
                    pipeline: format!("p{p}"),
                    major,
                };
                let ours = rt.block_on(store.undeploy(realm, &key, "t"));
                let theirs = reference.undeploy(env, &key.pipeline, major);
                prop_assert_eq!(ours.is_ok(), theirs, "undeploy {:?}", key);
            }
        }
    }
    if reference.config.is_some() {
        let st = rt.block_on(store.status(realm)).unwrap();
        for (env, u) in [(Env::Test, st.test), (Env::Prod, st.prod)] {
            prop_assert_eq!((u.subscriptions_used, u.rtus_used), reference.used(env));
            prop_assert!(
                u.subscriptions_used <= u.subscriptions_total && u.rtus_used <= u.rtus_total
            );
        }
    }
    Ok(())
}

/// A current-thread runtime for driving a [`Store`] from a synchronous test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The operations the property tests draw.
pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_sqlite_ledger_decides_like_the_reference_model(ops in ops()) {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let url = DbUrl::Sqlite(dir.path().join("q.db"));
        let options = StoreOptions { sync: Sync::Normal, ..StoreOptions::default() };
        let store = rt.block_on(Store::open(&url, Open::CreateOrMigrate, options)).unwrap();
        check_against_reference(&store, &rt, "r", ops)?;
    }
}

fn seed(db: &Path, subs: u64) {
    let cfg = RealmConfig {
        pipeline_subscriptions: subs,
        extra_test_rtus: 0,
        extra_prod_rtus: 0,
        max_replicas: 10,
        max_size: Size::Large,
    };
    Ledger::open(db, Sync::Full)
        .unwrap()
        .seed("acme", cfg, "test")
        .unwrap();
}

#[test]
fn racing_threads_never_over_admit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    seed(&db, 60); // Prod pool: 120 RTUs = 30 Large deployments; 60 subscriptions.
    let threads = 12;
    let per_thread = 8; // 96 requests of 4 RTUs for 30 slots.
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (db, barrier) = (db.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut l = Ledger::open(&db, Sync::Full).unwrap();
                barrier.wait();
                (0..per_thread)
                    .filter(|i| {
                        let req = Deployment {
                            environment: Env::Prod,
                            pipeline: format!("t{t}-{i}"),
                            version: Version { major: 1, minor: 0 },
                            size: Size::Large,
                            replicas: 1,
                        };
                        let d = l.deploy("acme", &req, "race").unwrap();
                        // Every loser is refused for the one reason that applies.
                        assert!(
                            d.admitted || d.reason.map(|r| r.as_str()) == Some("insufficient_rtu"),
                            "{d:?}"
                        );
                        d.admitted
                    })
                    .count()
            })
        })
        .collect();
    let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(admitted, 30);
    let mut l = Ledger::open(&db, Sync::Full).unwrap();
    let st = l.status("acme").unwrap();
    assert_eq!((st.prod.rtus_used, st.prod.subscriptions_used), (120, 30));
    let log = l.decisions("acme").unwrap();
    assert_eq!(
        log.iter()
            .filter(|d| d.action == "deploy" && d.admitted)
            .count(),
        30
    );
    assert_eq!(
        log.iter()
            .filter(|d| d.action == "deploy" && !d.admitted)
            .count(),
        threads * per_thread - 30
    );
}

/// Issue #11: separate processes (not threads of one) racing on one SQLite ledger. Every
/// process either is admitted (exit 0) or refused with 409's reason `insufficient_rtu` (exit 1);
/// anything else fails the test; exactly what fits is admitted.
#[test]
fn racing_processes_never_over_admit_and_every_loser_gets_the_right_reason() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    seed(&db, 6); // Prod pool: 2 × 6 = 12 RTUs = three Large (4 RTU) deployments.
    let procs = 24;
    let children: Vec<_> = (0..procs)
        .map(|i| {
            crate::common::realmctl_std()
                .args([
                    "quota", "deploy", "--output", "json", "--realm", "acme", "--db",
                ])
                .arg(&db)
                .args([
                    "--env",
                    "prod",
                    "--pipeline",
                    &format!("p{i}"),
                    "--version",
                    "1.0",
                    "--size",
                    "large",
                    "--replicas",
                    "1",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut admitted = 0;
    for c in children {
        let o = c.wait_with_output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
            panic!(
                "not a decision: {} / {}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        });
        match o.status.code() {
            Some(0) => {
                assert_eq!(v["admitted"], true, "{v}");
                admitted += 1;
            }
            Some(1) => {
                assert_eq!(v["admitted"], false, "{v}");
                assert_eq!(v["reason"], "insufficient_rtu", "{v}");
            }
            other => panic!("exit {other:?}: {v}"),
        }
    }
    let mut l = Ledger::open(&db, Sync::Full).unwrap();
    let st = l.status("acme").unwrap();
    assert_eq!(admitted as u64, st.prod.subscriptions_used, "{st:?}");
    assert_eq!(admitted, 3, "{st:?}");
    assert_eq!(st.prod.rtus_used, 12);
    let log = l.decisions("acme").unwrap();
    assert_eq!(log.iter().filter(|d| d.action == "deploy").count(), procs);
}
