//! A realm's journal in the state database: the records of [`crate::engine::io::journal`],
//! the same columns and the same hash chain, keyed by realm.
//!
//! An append is one statement on the head the writer last saw ([`Db::append`]): the position
//! `(realm, seq)` is the primary key, so an `approve` on one machine and an install on another
//! never fork the chain — the one that loses the position reads the head again and appends
//! after it. An append carries one record, or two (a step's success and the next step's start,
//! written together by the engine: one statement, one commit, one round trip). A step's start
//! alone is committed with `synchronous_commit = off` (it survives the process, as with the
//! file's `NORMAL`, and the next durable commit makes it durable: the WAL is flushed in order),
//! everything else with a durable commit.
//! Reads come in pages of [`PAGE`] records, so verifying a long journal holds one page.

use std::sync::Arc;

use super::{Db, DbError, SESSION_DURABLE};
use crate::engine::model::record::Durability;
use crate::engine::model::record::Record;
use crate::signing::{Signature, SigningKey};

/// Records read per round trip.
pub const PAGE: i64 = 2_000;

/// The columns of a record, in [`row_record`]'s order.
const COLUMNS: &str = "seq, at, kind, payload, prev, hash, signer, sig";

fn row_record(r: &tokio_postgres::Row) -> Record {
    let signer: Option<String> = r.get(6);
    let sig: Option<String> = r.get(7);
    Record {
        seq: r.get::<_, i64>(0) as u64,
        at: r.get(1),
        kind: r.get(2),
        payload: r.get(3),
        prev: r.get(4),
        hash: r.get(5),
        signature: signer.zip(sig).map(|(key, sig)| Signature { key, sig }),
    }
}

/// One record of an append, before its position is known.
pub struct Entry {
    /// Record kind.
    pub kind: &'static str,
    /// Its time, as stored.
    pub at: String,
    /// The event's JSON.
    pub payload: String,
}

/// What an append writes: one or more records, in one statement and one commit.
pub struct Append {
    /// The records, in order.
    pub entries: Vec<Entry>,
    /// How durable the commit must be.
    pub durability: Durability,
    /// The lease's fencing token, when the writer holds the lease.
    pub fence: Option<i64>,
    /// Who signs them.
    pub signer: Option<Arc<SigningKey>>,
}

/// Records per append that have a statement (a step's success and the next step's start are
/// the most one append carries).
pub const MAX_ENTRIES: usize = 2;

/// How an append's commit gets its durability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// As the session's own `synchronous_commit` says, which is durable: the insert alone.
    AsSession,
    /// `synchronous_commit` set to this value for the append's own transaction (a CTE around
    /// the insert: `pgbench` measured it at ~50 µs of a ~350 µs durable append on this
    /// machine, so it is left out where the session already gives what is asked).
    Set(&'static str),
}

/// How an append of `durability` commits on a session whose default is durable or not (pure).
/// Every `synchronous_commit` but `off` flushes the WAL locally before the commit returns.
pub fn commit_for(durability: Durability, session_durable: bool) -> Commit {
    match (durability, session_durable) {
        (Durability::Sync, true) => Commit::AsSession,
        (Durability::Sync, false) => Commit::Set("on"),
        (Durability::Buffered, _) => Commit::Set("off"),
    }
}

/// An append of `n` records after the head, in one statement, committed as `commit` says (the
/// fencing trigger checks each row's token). Parameters: `$1` realm, `$2` fence, then per
/// record seq, at, kind, payload, prev, hash, signer, sig.
pub fn append_sql(n: usize, commit: Commit) -> String {
    const COLUMNS: &str = "realm, seq, at, kind, payload, prev, hash, signer, sig, fence";
    let row = |i: usize, typed: bool| {
        let p = |k: usize| 3 + 8 * i + k;
        let t = |ty: &str| {
            if typed {
                format!("::{ty}")
            } else {
                String::new()
            }
        };
        let fields: Vec<String> = (0..8)
            .map(|k| format!("${}{}", p(k), t(if k == 0 { "bigint" } else { "text" })))
            .collect();
        fields.join(", ")
    };
    match commit {
        Commit::AsSession => format!(
            "INSERT INTO realmctl_journal ({COLUMNS}) VALUES {}",
            (0..n)
                .map(|i| format!("($1, {}, $2)", row(i, false)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Commit::Set(value) => format!(
            "WITH d AS (SELECT set_config('synchronous_commit', '{value}', true)) INSERT INTO realmctl_journal ({COLUMNS}) SELECT $1::text, v.seq, v.at, v.kind, v.payload, v.prev, v.hash, v.signer, v.sig, $2::bigint FROM d, (VALUES {}) AS v (seq, at, kind, payload, prev, hash, signer, sig)",
            (0..n)
                .map(|i| format!("({})", row(i, true)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The ways an append commits, in [`statement_index`]'s order.
const COMMITS: [Commit; 3] = [Commit::AsSession, Commit::Set("on"), Commit::Set("off")];

/// [`append_sql`] of 1 to [`MAX_ENTRIES`] records and each way of committing, made once (the
/// connections' statement caches are keyed by the text).
static APPENDS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    (1..=MAX_ENTRIES)
        .flat_map(|n| COMMITS.iter().map(move |c| append_sql(n, *c)))
        .collect()
});

/// The index of the statement appending `n` records committed as `commit` (an append carries
/// 1 to [`MAX_ENTRIES`]; anything else is a bug in the caller).
fn statement_index(n: usize, commit: Commit) -> usize {
    assert!(
        (1..=MAX_ENTRIES).contains(&n),
        "an append carries 1 to {MAX_ENTRIES} records, not {n}"
    );
    let c = COMMITS
        .iter()
        .position(|c| *c == commit)
        .expect("every commit has statements");
    (n - 1) * COMMITS.len() + c
}

/// The statement appending `n` records committed as `commit`.
fn append_statement(n: usize, commit: Commit) -> &'static str {
    &APPENDS[statement_index(n, commit)]
}

/// The realm's head.
const HEAD: &str =
    "SELECT seq, hash FROM realmctl_journal WHERE realm = $1 ORDER BY seq DESC LIMIT 1";
/// How often an append tries again after another writer took its position.
const RACES: usize = 16;

/// The append itself, on any connection (see [`Db::append`]); `insert` is [`append_sql`] of
/// `a`'s records, prepared.
async fn append_on(
    c: &tokio_postgres::Client,
    insert: &tokio_postgres::Statement,
    read_head: &tokio_postgres::Statement,
    realm: &str,
    a: Append,
    mut head: Option<(u64, String)>,
) -> Result<Vec<Record>, tokio_postgres::Error> {
    use tokio_postgres::types::ToSql;
    let mut tries = 0;
    loop {
        let mut last = match &head {
            Some((s, h)) => Some((*s, h.clone())),
            None => c
                .query_opt(read_head, &[&realm])
                .await?
                .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, String>(1))),
        };
        let mut recs = Vec::with_capacity(a.entries.len());
        for e in &a.entries {
            let rec = Record::after(
                last.as_ref().map(|(s, h)| (*s, h.as_str())),
                e.at.clone(),
                e.kind.to_owned(),
                e.payload.clone(),
                a.signer.as_deref(),
            );
            last = Some((rec.seq, rec.hash.clone()));
            recs.push(rec);
        }
        let seqs: Vec<i64> = recs.iter().map(|r| r.seq as i64).collect();
        let keys: Vec<Option<&str>> = recs
            .iter()
            .map(|r| r.signature.as_ref().map(|s| s.key.as_str()))
            .collect();
        let sigs: Vec<Option<&str>> = recs
            .iter()
            .map(|r| r.signature.as_ref().map(|s| s.sig.as_str()))
            .collect();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&realm, &a.fence];
        for (i, r) in recs.iter().enumerate() {
            params.extend_from_slice(&[
                &seqs[i] as &(dyn ToSql + Sync),
                &r.at,
                &r.kind,
                &r.payload,
                &r.prev,
                &r.hash,
                &keys[i],
                &sigs[i],
            ]);
        }
        match c.execute(insert, &params).await {
            Ok(_) => return Ok(recs),
            Err(e)
                if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
                    && tries < RACES =>
            {
                tries += 1;
                head = None;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The connection's own future (its socket I/O), polled by whoever waits on it.
type Driver =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send>>;

/// An install's appends sent from the engine's own task: the connection is polled by the task
/// that waits for the answer, so an append is the database's round trip and nothing else — no
/// hand-off to another thread or task and back, no `block_in_place`. Everything else (reads,
/// approvals, intents) goes through [`Db`].
pub struct Appender {
    client: tokio_postgres::Client,
    driver: Driver,
    /// The connection ended (its future must not be polled again).
    ended: bool,
    /// [`append_sql`]'s statements, prepared when first used, by [`statement_index`].
    inserts: Vec<Option<tokio_postgres::Statement>>,
    /// The session's `synchronous_commit` is durable.
    session_durable: bool,
    read_head: tokio_postgres::Statement,
    db: std::sync::Arc<str>,
    realm: std::sync::Arc<str>,
    head: Option<(u64, String)>,
    fence: Option<i64>,
    signer: Option<Arc<SigningKey>>,
}

impl Appender {
    /// Connects on the current runtime (the connection is a task of it, ending with this).
    pub async fn connect(
        r: &super::DbRef,
        fence: Option<i64>,
        signer: Option<Arc<SigningKey>>,
    ) -> Result<Self, DbError> {
        let (db, realm) = (r.database(), r.realm().to_owned());
        let err = |e: tokio_postgres::Error| super::classify(&db, &realm, &e);
        let (client, conn) = r
            .config()
            .connect(crate::quota::postgres::tls())
            .await
            .map_err(err)?;
        let mut driver: Driver = Box::pin(conn);
        let mut ended = false;
        let session_durable: bool = drive(
            &mut driver,
            &mut ended,
            client.query_one(SESSION_DURABLE, &[]),
        )
        .await
        .map_err(err)?
        .get(0);
        let read_head = drive(&mut driver, &mut ended, client.prepare(HEAD))
            .await
            .map_err(err)?;
        Ok(Appender {
            client,
            driver,
            ended,
            inserts: vec![None; APPENDS.len()],
            session_durable,
            read_head,
            db: db.as_str().into(),
            realm: realm.as_str().into(),
            head: None,
            fence,
            signer,
        })
    }

    /// Appends `entries` (one, or [`MAX_ENTRIES`]) in order, in one statement and one commit.
    pub async fn append_all(
        &mut self,
        entries: Vec<Entry>,
        durability: Durability,
    ) -> Result<Vec<Record>, DbError> {
        let commit = commit_for(durability, self.session_durable);
        let i = statement_index(entries.len(), commit);
        if self.inserts[i].is_none() {
            let sql = append_statement(entries.len(), commit);
            let prepared = drive(&mut self.driver, &mut self.ended, self.client.prepare(sql))
                .await
                .map_err(|e| super::classify(&self.db, &self.realm, &e))?;
            self.inserts[i] = Some(prepared);
        }
        let insert = self.inserts[i].as_ref().expect("prepared above");
        let a = Append {
            entries,
            durability,
            fence: self.fence,
            signer: self.signer.clone(),
        };
        let appended = append_on(
            &self.client,
            insert,
            &self.read_head,
            &self.realm,
            a,
            self.head.take(),
        );
        let recs = drive(&mut self.driver, &mut self.ended, appended)
            .await
            .map_err(|e| super::classify(&self.db, &self.realm, &e))?;
        self.head = recs.last().map(|r| (r.seq, r.hash.clone()));
        Ok(recs)
    }
}

/// Awaits `request` while polling the connection's `driver` (its socket I/O) in the same task.
async fn drive<T>(
    driver: &mut Driver,
    ended: &mut bool,
    request: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    tokio::pin!(request);
    loop {
        if *ended {
            return request.await;
        }
        tokio::select! {
            biased;
            r = &mut request => return r,
            c = driver.as_mut() => {
                *ended = true;
                c?;
            }
        }
    }
}

impl Db {
    /// Appends `a`'s records after the realm's head, as `head` (the caller's last known head;
    /// read when `None`) says it stands, and returns them (the last is the new head).
    ///
    /// One round trip when `head` is right: the record's position is the primary key, so an
    /// append from elsewhere in between (an approval from another machine) makes the insert
    /// fail on that key instead of forking the chain; the head is then read again and the
    /// record rebuilt on it. The chain is the same as with a lock around read-and-insert.
    pub fn append(&self, a: Append, head: Option<(u64, String)>) -> Result<Vec<Record>, DbError> {
        let realm = self.realm.to_string();
        self.call(move |rt, c| {
            rt.block_on(async {
                let sql = append_statement(a.entries.len(), commit_for(a.durability, c.durable));
                let insert = c.prepared(sql).await?;
                let read_head = c.prepared(HEAD).await?;
                append_on(c, &insert, &read_head, &realm, a, head).await
            })
        })
    }

    /// Copies records verbatim (`state import`), in one transaction, under the realm's lease
    /// token `fence`. Refuses a realm that already has records.
    pub fn copy_in(&self, records: Vec<Record>, fence: i64) -> Result<(), DbError> {
        let realm = self.realm.to_string();
        self.call(move |rt, c| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                let stmt = tx
                    .prepare(
                        "INSERT INTO realmctl_journal (realm, seq, at, kind, payload, prev, hash, signer, sig, fence) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .await?;
                for r in &records {
                    tx.execute(
                        &stmt,
                        &[
                            &realm,
                            &(r.seq as i64),
                            &r.at,
                            &r.kind,
                            &r.payload,
                            &r.prev,
                            &r.hash,
                            &r.signature.as_ref().map(|s| s.key.as_str()),
                            &r.signature.as_ref().map(|s| s.sig.as_str()),
                            &Some(fence),
                        ],
                    )
                    .await?;
                }
                tx.commit().await
            })
        })
    }

    /// Up to [`PAGE`] records after `after`, in order.
    pub fn page(&self, after: u64) -> Result<Vec<Record>, DbError> {
        let realm = self.realm.to_string();
        self.call(move |rt, c| {
            rt.block_on(async {
                let rows = c
                    .query(
                        &format!(
                            "SELECT {COLUMNS} FROM realmctl_journal WHERE realm = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                        ),
                        &[&realm, &(after as i64), &PAGE],
                    )
                    .await?;
                Ok(rows.iter().map(row_record).collect())
            })
        })
    }

    /// The last record of `kind`.
    pub fn last_of_kind(&self, kind: &'static str) -> Result<Option<Record>, DbError> {
        let realm = self.realm.to_string();
        self.call(move |rt, c| {
            rt.block_on(async {
                let row = c
                    .query_opt(
                        &format!(
                            "SELECT {COLUMNS} FROM realmctl_journal WHERE realm = $1 AND kind = $2 ORDER BY seq DESC LIMIT 1"
                        ),
                        &[&realm, &kind],
                    )
                    .await?;
                Ok(row.as_ref().map(row_record))
            })
        })
    }

    /// The last record's position and hash.
    pub fn head(&self) -> Result<Option<(u64, String)>, DbError> {
        let realm = self.realm.to_string();
        self.call(move |rt, c| {
            rt.block_on(async {
                let head = c.prepared(HEAD).await?;
                let row = c.query_opt(&head, &[&realm]).await?;
                Ok(row.map(|r| (r.get::<_, i64>(0) as u64, r.get(1))))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_numbers_each_records_parameters_after_the_shared_two() {
        let one = append_sql(1, Commit::AsSession);
        assert_eq!(
            one,
            "INSERT INTO realmctl_journal (realm, seq, at, kind, payload, prev, hash, signer, sig, fence) VALUES ($1, $3, $4, $5, $6, $7, $8, $9, $10, $2)"
        );
        let two = append_sql(2, Commit::Set("off"));
        assert!(
            two.starts_with("WITH d AS (SELECT set_config('synchronous_commit', 'off', true))"),
            "{two}"
        );
        assert!(two.contains("$10::text), ($11::bigint, $12::text"), "{two}");
        assert!(two.contains("$18::text)") && !two.contains("$19"), "{two}");
        assert_eq!(append_statement(2, Commit::Set("off")), two);
        let distinct: std::collections::BTreeSet<&String> = APPENDS.iter().collect();
        assert_eq!(distinct.len(), MAX_ENTRIES * COMMITS.len());
    }

    #[test]
    fn a_durable_append_sets_nothing_only_where_the_session_is_durable() {
        assert_eq!(commit_for(Durability::Sync, true), Commit::AsSession);
        assert_eq!(commit_for(Durability::Sync, false), Commit::Set("on"));
        assert_eq!(commit_for(Durability::Buffered, true), Commit::Set("off"));
        assert_eq!(commit_for(Durability::Buffered, false), Commit::Set("off"));
    }

    #[test]
    #[should_panic(expected = "an append carries 1 to 2 records, not 3")]
    fn an_append_of_more_records_than_a_statement_has_is_a_bug() {
        statement_index(3, Commit::AsSession);
    }
}
