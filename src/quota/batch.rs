//! Group commit for the SQLite ledger.
//!
//! One writer thread owns the connection. Requests queue on a channel; the writer takes the
//! first, then every request that arrived meanwhile (while the previous batch was being
//! committed), up to [`MAX_BATCH`], and runs them one after another in one `BEGIN IMMEDIATE`
//! transaction with one `COMMIT` — one fsync under `synchronous=FULL` for the whole batch
//! ([`Ledger::batch`]). Each request sees the effects of the ones before it, so the decisions
//! are exactly those of the serial order. Answers are sent only after the commit returned:
//! an acknowledged admission is durable, and a batch whose commit fails (or never happens
//! because the process died) acknowledged nothing. A request whose caller has already given up
//! (its timeout passed) — also while the writer waited for the write lock — is dropped from the
//! batch rather than decided for nobody.
//!
//! No artificial delay: a lone request is committed at once; batches form only when requests
//! arrive faster than commits complete, which is exactly when batching pays.
//!
//! Test builds (`--features test-actions`) can break the rule on purpose
//! ([`StoreOptions::ack_before_commit`](super::store::StoreOptions)): the writer then sends
//! each batch's answers before its commit, so the durability test can show that its check
//! fails on a server that acknowledges first (`tests/it/durability.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::ledger::Ledger;
use super::ops::{Answer, LedgerError, Op};

/// Most operations committed together.
pub const MAX_BATCH: usize = 512;
/// Requests waiting for the writer; senders wait (within their timeout) when it is full.
const QUEUE: usize = 8192;

enum Job {
    Op(Op, oneshot::Sender<Result<Answer, LedgerError>>),
    Ping(oneshot::Sender<Result<(), LedgerError>>),
}

/// Counters of the writer (for tests and benchmarks).
#[derive(Debug, Default)]
pub struct BatchStats {
    commits: AtomicU64,
    ops: AtomicU64,
}

impl BatchStats {
    /// Transactions committed.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
    /// Operations run in them.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }
}

/// The SQLite ledger behind its group-commit writer.
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    db: String,
    timeout: Duration,
    stats: Arc<BatchStats>,
}

impl GroupCommit {
    /// Starts the writer thread over `ledger`; each operation is answered within `timeout`.
    pub fn start(ledger: Ledger, timeout: Duration) -> Result<Self, LedgerError> {
        Self::start_with(ledger, timeout, false)
    }

    /// [`GroupCommit::start`]; `ack_first` is the test-only fault (answers before the commit),
    /// always `false` outside test builds.
    pub(crate) fn start_with(
        ledger: Ledger,
        timeout: Duration,
        ack_first: bool,
    ) -> Result<Self, LedgerError> {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(BatchStats::default());
        let db = ledger.path().display().to_string();
        let s = stats.clone();
        std::thread::Builder::new()
            .name("quota-ledger".into())
            .spawn(move || writer(ledger, rx, &s, ack_first))
            .map_err(|e| LedgerError::Unavailable {
                db: db.clone(),
                detail: format!("cannot start the ledger's writer thread: {e}"),
            })?;
        Ok(GroupCommit {
            jobs,
            db,
            timeout,
            stats,
        })
    }

    /// Runs one operation (batched with whatever else is waiting).
    pub async fn run(&self, op: Op) -> Result<Answer, LedgerError> {
        let (reply, answer) = oneshot::channel();
        self.within(async {
            self.jobs
                .send(Job::Op(op, reply))
                .await
                .map_err(|_| self.stopped())?;
            answer.await.map_err(|_| self.stopped())?
        })
        .await
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), LedgerError> {
        let (reply, answer) = oneshot::channel();
        self.within(async {
            self.jobs
                .send(Job::Ping(reply))
                .await
                .map_err(|_| self.stopped())?;
            answer.await.map_err(|_| self.stopped())?
        })
        .await
    }

    /// The database file.
    pub fn describe(&self) -> String {
        self.db.clone()
    }

    /// The writer's counters.
    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }

    async fn within<T>(
        &self,
        f: impl Future<Output = Result<T, LedgerError>>,
    ) -> Result<T, LedgerError> {
        super::ops::within(&self.db, self.timeout, f).await
    }

    fn stopped(&self) -> LedgerError {
        LedgerError::Unavailable {
            db: self.db.clone(),
            detail: "the ledger's writer stopped".into(),
        }
    }
}

/// The writer loop: ends when every sender is gone.
fn writer(mut ledger: Ledger, mut rx: mpsc::Receiver<Job>, stats: &BatchStats, ack_first: bool) {
    while let Some(first) = rx.blocking_recv() {
        let mut ops = Vec::new();
        let mut replies = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Ping(reply) => {
                    let _ = reply.send(ledger.ping());
                }
                // The caller gave up: deciding now would record a request nobody hears of.
                Job::Op(_, reply) if reply.is_closed() => {}
                Job::Op(op, reply) => {
                    ops.push(op);
                    replies.push(reply);
                }
            }
            if ops.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if ops.is_empty() {
            continue;
        }
        let refs: Vec<&Op> = ops.iter().collect();
        let answers = if ack_first {
            answer_before_commit(&mut ledger, &refs, &mut replies)
        } else {
            // Whether each caller still waits is asked again once the write lock is held: a
            // request that timed out while another process held the lock is never decided.
            ledger.batch_where(&refs, |i| !replies[i].is_closed())
        };
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.ops.fetch_add(ops.len() as u64, Ordering::Relaxed);
        match answers {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.for_each_of_batch()));
                }
            }
        }
    }
}

/// The test-only fault: runs the batch, sends every answer, waits long enough for them to
/// leave, and only then commits. `replies` is left empty.
fn answer_before_commit(
    ledger: &mut Ledger,
    ops: &[&Op],
    replies: &mut Vec<oneshot::Sender<Result<Answer, LedgerError>>>,
) -> Result<Vec<Result<Answer, LedgerError>>, LedgerError> {
    ledger.batch_then(
        ops,
        |_| true,
        |answers| {
            for (reply, answer) in replies.drain(..).zip(answers.drain(..)) {
                let _ = reply.send(answer);
            }
            std::thread::sleep(Duration::from_millis(50));
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::ledger::Sync;
    use crate::quota::model::{Deployment, Env, RealmConfig, Size, Version};

    fn cfg(subs: u64) -> RealmConfig {
        RealmConfig {
            pipeline_subscriptions: subs,
            extra_test_rtus: 0,
            extra_prod_rtus: 0,
            max_replicas: 10,
            max_size: Size::Large,
        }
    }

    fn dep(p: &str) -> Deployment {
        Deployment {
            environment: Env::Prod,
            pipeline: p.into(),
            version: Version { major: 1, minor: 0 },
            size: Size::Large,
            replicas: 1,
        }
    }

    /// A task asking `g` to admit Large pipeline `p{i}` in realm `acme`: admitted or not.
    fn admit(g: &Arc<GroupCommit>, i: usize) -> tokio::task::JoinHandle<bool> {
        let g = g.clone();
        tokio::spawn(async move {
            g.run(Op::deploy("acme", &dep(&format!("p{i}")), "t"))
                .await
                .unwrap()
                .decision()
                .unwrap()
                .admitted
        })
    }

    /// Everything an answer says, as text to compare.
    fn reasons(answers: &[Result<Answer, LedgerError>]) -> Vec<String> {
        answers
            .iter()
            .map(|a| match a {
                Ok(Answer::Decided(d)) => {
                    format!("decided {:?} {:?} {:?}", d.reason, d.before, d.after)
                }
                Ok(Answer::Seeded) => "seeded".into(),
                Ok(Answer::Undeployed(d)) => format!("undeployed {} {}", d.pipeline, d.version),
                Ok(Answer::Status(s)) => {
                    format!("status {:?} {:?} {}", s.test, s.prod, s.deployments.len())
                }
                Ok(Answer::Decisions(d)) => format!("log {}", d.len()),
                Ok(Answer::Retired(r)) => format!("retired {}", r.now),
                // A refused seed of a retired realm names the time it was retired.
                Err(LedgerError::Retired { realm, .. }) => format!("retired {realm}"),
                Err(e) => format!("error {e}"),
            })
            .collect()
    }

    #[test]
    fn a_batch_decides_exactly_like_the_serial_order() {
        let dir = tempfile::tempdir().unwrap();
        // 3 subscriptions, 6 Prod RTUs: one Large (4 RTU) fits, the second does not.
        let ops = [
            Op::deploy("acme", &dep("x"), "t"),
            Op::seed("acme", cfg(3), "t"),
            Op::deploy("acme", &dep("a"), "t"),
            Op::deploy("acme", &dep("b"), "t"),
            Op::seed("acme", cfg(0), "t"),
            Op::undeploy(
                "acme",
                &crate::quota::model::Key {
                    environment: Env::Prod,
                    pipeline: "a".into(),
                    major: 1,
                },
                "t",
            ),
            Op::deploy("acme", &dep("b"), "t"),
        ];
        let mut serial = Ledger::open(&dir.path().join("serial.db"), Sync::Normal).unwrap();
        let one_by_one: Vec<_> = ops.iter().map(|op| serial.one(op)).collect();
        let mut batched = Ledger::open(&dir.path().join("batched.db"), Sync::Normal).unwrap();
        let refs: Vec<&Op> = ops.iter().collect();
        let together = batched.batch(&refs).unwrap();
        assert_eq!(reasons(&one_by_one), reasons(&together));
        // The failed operations (unknown realm, refused seed) left exactly the traces the serial
        // run left: the refused seed's log entry, nothing for the unknown realm.
        let log = |l: &mut Ledger| {
            l.decisions("acme")
                .unwrap()
                .into_iter()
                .map(|d| (d.action, d.admitted, d.reason))
                .collect::<Vec<_>>()
        };
        assert_eq!(log(&mut serial), log(&mut batched));
        assert_eq!(log(&mut batched).len(), 6);
        let st = batched.status("acme").unwrap();
        assert_eq!((st.prod.subscriptions_used, st.prod.rtus_used), (1, 4));
    }

    /// A connection that remembers what it logged folds from memory only while no other
    /// connection has committed: an admission another one logged in between reaches the
    /// tables too.
    #[test]
    fn a_fold_after_another_connection_committed_reads_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut first = Ledger::open(&path, Sync::Normal).unwrap();
        first.seed("acme", cfg(3), "t").unwrap();
        let small = |p: &str| Deployment {
            size: Size::Small,
            ..dep(p)
        };
        let deploy = |l: &mut Ledger, p: &str| {
            assert!(l.deploy("acme", &small(p), "t").unwrap().admitted);
        };
        deploy(&mut first, "a");
        deploy(&mut Ledger::open(&path, Sync::Normal).unwrap(), "b");
        deploy(&mut first, "c");
        let st = first.status("acme").unwrap();
        let mut names: Vec<_> = st.deployments.iter().map(|d| d.pipeline.as_str()).collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(st.prod.subscriptions_used, 3);
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let size = prop_oneof![Just(Size::Small), Just(Size::Medium), Just(Size::Large)];
        let env = prop_oneof![Just(Env::Test), Just(Env::Prod)];
        prop_oneof![
            4 => (0u64..4, 0u64..3).prop_map(|(subs, extra)| Op::seed("acme", RealmConfig { extra_prod_rtus: extra, ..cfg(subs) }, "t")),
            24 => (env.clone(), 0u8..4, 1u32..3, 0u32..3, size, 1u32..4).prop_map(|(environment, p, major, minor, size, replicas)| {
                Op::deploy("acme", &Deployment { environment, pipeline: format!("p{p}"), version: Version { major, minor }, size, replicas }, "t")
            }),
            8 => (env, 0u8..4, 1u32..3).prop_map(|(environment, p, major)| {
                Op::undeploy("acme", &crate::quota::model::Key { environment, pipeline: format!("p{p}"), major }, "t")
            }),
            4 => Just(Op::Status { realm: "acme".into() }),
            // Rare: a retirement ends every admission after it.
            1 => Just(Op::retire("acme", "t")),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any sequence, cut into batches anywhere, decides exactly as one by one — one by
        /// one on a new connection each time, which knows nothing and reads every fact from
        /// the tables, so what the batching connection remembers is checked against them.
        #[test]
        fn batches_decide_like_the_serial_order(
            ops in proptest::collection::vec(op(), 1..30),
            cuts in proptest::collection::vec(1usize..8, 1..10),
        ) {
            batches_agree_with_one_by_one(&ops, &cuts);
        }
    }

    /// `ops`, cut into batches of the sizes in `cuts` (repeated), decide exactly as one by one —
    /// one by one on a new connection each time, which knows nothing and reads every fact from
    /// the tables, so what the batching connection remembers is checked against them — and
    /// leave the same log and, once folded, the same tables.
    fn batches_agree_with_one_by_one(ops: &[Op], cuts: &[usize]) {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("s.db");
        let one_by_one: Vec<_> = ops
            .iter()
            .map(|op| Ledger::open(&s, Sync::Normal).unwrap().one(op))
            .collect();
        let mut serial = Ledger::open(&s, Sync::Normal).unwrap();
        let mut batched = Ledger::open(&dir.path().join("b.db"), Sync::Normal).unwrap();
        let mut together = Vec::new();
        let mut rest: &[Op] = ops;
        for n in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at((*n).min(rest.len()));
            let refs: Vec<&Op> = now.iter().collect();
            together.extend(batched.batch(&refs).unwrap());
            rest = later;
        }
        assert_eq!(reasons(&one_by_one), reasons(&together));
        let log = |l: &mut Ledger| {
            l.decisions("acme")
                .map(|d| {
                    d.into_iter()
                        .map(|d| (d.id, d.action, d.request, d.admitted, d.reason, d.detail))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        assert_eq!(log(&mut serial), log(&mut batched));
        // A last status folds: the batching connection from what it logged itself, a new
        // one from the log read back. The tables they leave are the same.
        let status = Op::Status {
            realm: "acme".into(),
        };
        let _ = Ledger::open(&s, Sync::Normal).unwrap().one(&status);
        let _ = batched.batch(&[&status]).unwrap();
        let tables = |db: &std::path::Path| {
            let c = rusqlite::Connection::open(db).unwrap();
            let rows = |sql: &str| crate::quota::ledger_rows::rows_as_text(&c, sql, " ");
            (
                rows(
                    "SELECT realm, environment, pipeline, major, minor, size, replicas, rtus FROM deployments ORDER BY 1, 2, 3, 4",
                ),
                rows("SELECT * FROM usage ORDER BY 1, 2"),
                rows("SELECT through = (SELECT coalesce(max(id), 0) FROM decisions) FROM folded"),
            )
        };
        assert_eq!(tables(&s), tables(&dir.path().join("b.db")));
    }

    /// Batches far larger than the property test's: their log rows go in as statements of 64,
    /// 16, 4 and 1 rows, and a realm remembering more than `MAX_REMEMBERED` deployments (64 in
    /// tests) forgets them mid-batch — after the rows queued so far are written and folded.
    #[test]
    fn large_batches_decide_and_log_like_the_serial_order() {
        let mut ops = vec![Op::seed("acme", cfg(1000), "t")];
        for i in 0..300usize {
            // 150 pipelines deployed, then each redeployed with more replicas; every tenth
            // asks for more replicas than the realm allows and is denied (and logged).
            let mut d = dep(&format!("p{}", i % 150));
            d.size = Size::Small;
            d.version.minor = (i / 150) as u32;
            d.replicas = if i % 10 == 9 {
                11
            } else {
                1 + (i / 150) as u32
            };
            ops.push(Op::deploy("acme", &d, "t"));
        }
        ops.push(Op::undeploy(
            "acme",
            &crate::quota::model::Key {
                environment: Env::Prod,
                pipeline: "p7".into(),
                major: 1,
            },
            "t",
        ));
        ops.push(Op::deploy("acme", &dep("late"), "t"));
        batches_agree_with_one_by_one(&ops, &[1, 120, 87, 100]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_admissions_never_over_admit() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("q.db"), Sync::Full).unwrap();
        l.seed("acme", cfg(100), "t").unwrap(); // 200 Prod RTUs: 50 Large.
        let g = Arc::new(GroupCommit::start(l, Duration::from_secs(30)).unwrap());
        let tasks: Vec<_> = (0..200).map(|i| admit(&g, i)).collect();
        let mut admitted = 0;
        for t in tasks {
            admitted += usize::from(t.await.unwrap());
        }
        assert_eq!(admitted, 50);
        assert_eq!(g.stats().ops(), 200);
        let st = g
            .run(Op::Status {
                realm: "acme".into(),
            })
            .await
            .unwrap()
            .status()
            .unwrap();
        assert_eq!((st.prod.subscriptions_used, st.prod.rtus_used), (50, 200));
    }

    /// One fsync per batch, shown exactly: while another connection holds the write lock, the
    /// writer waits with its first request and every other request queues behind it; once the
    /// lock is free, those 199 are one batch. 200 admissions, at most two commits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_queued_behind_the_write_lock_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut l = Ledger::open(&path, Sync::Full).unwrap();
        l.seed("acme", cfg(100), "t").unwrap(); // 200 Prod RTUs: 50 Large.
        let g = Arc::new(GroupCommit::start(l, Duration::from_secs(30)).unwrap());
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let spawn = |i: usize| admit(&g, i);
        let mut tasks = vec![spawn(0)];
        // The writer takes the first request and waits for the lock (if it has not yet, the
        // first batch only grows, and the bound below still holds).
        tokio::time::sleep(Duration::from_millis(100)).await;
        tasks.extend((1..200).map(spawn));
        let queued = || QUEUE - g.jobs.capacity();
        let t = std::time::Instant::now();
        while queued() < 199 {
            assert!(t.elapsed() < Duration::from_secs(10), "{} queued", queued());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            g.stats().commits(),
            0,
            "nothing committed while the lock was held"
        );
        other.execute_batch("COMMIT").unwrap();
        let mut admitted = 0;
        for t in tasks {
            admitted += usize::from(t.await.unwrap());
        }
        assert_eq!(admitted, 50);
        assert_eq!(g.stats().ops(), 200);
        assert!(
            g.stats().commits() <= 2,
            "200 admissions, all but one queued together, took {} commits",
            g.stats().commits()
        );
    }

    #[tokio::test]
    async fn a_request_not_answered_in_time_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let l = Ledger::open(&path, Sync::Full).unwrap();
        // Another connection holds the write lock: the writer waits on SQLite's busy timeout.
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let g = GroupCommit::start(l, Duration::from_millis(300)).unwrap();
        let t0 = std::time::Instant::now();
        let r = g.run(Op::seed("acme", cfg(1), "t")).await;
        let waited = t0.elapsed();
        assert!(matches!(r, Err(LedgerError::Unavailable { .. })), "{r:?}");
        assert!(
            waited <= Duration::from_millis(300 * 3 / 2 + 100),
            "{waited:?}"
        );
        other.execute_batch("ROLLBACK").unwrap();
    }
}
