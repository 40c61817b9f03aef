//! A realm's journal in the state database: the records of [`crate::engine::io::journal`],
//! the same columns and the same hash chain, keyed by realm.
//!
//! An append is one statement on the head the writer last saw ([`Db::append`]): the position
//! `(realm, seq)` is the primary key, so an `approve` on one machine and an install on another
//! never fork the chain — the one that loses the position reads the head again and appends
//! after it. A step's start is committed with `synchronous_commit = off` (it survives the
//! process, as with the file's `NORMAL`, and the next durable commit makes it durable: the
//! WAL is flushed in order), everything else with the server's durable commit.
//! Reads come in pages of [`PAGE`] records, so verifying a long journal holds one page.

use std::sync::Arc;

use super::{Db, DbError};
use crate::engine::model::record::Durability;
use crate::engine::model::record::{GENESIS, Record, record_hash};
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

/// What an append writes.
pub struct Append {
    /// Record kind.
    pub kind: &'static str,
    /// Its time, as stored.
    pub at: String,
    /// The event's JSON.
    pub payload: String,
    /// How durable the commit must be.
    pub durability: Durability,
    /// The lease's fencing token, when the writer holds the lease.
    pub fence: Option<i64>,
    /// Who signs it.
    pub signer: Option<Arc<SigningKey>>,
}

/// One append: the record after `head`, in one statement — the commit's durability set for
/// its own transaction, then the insert (the fencing trigger checks its token).
const APPEND: &str = "WITH d AS (SELECT set_config('synchronous_commit', $11, true)) INSERT INTO realmctl_journal (realm, seq, at, kind, payload, prev, hash, signer, sig, fence) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM d";
/// The realm's head.
const HEAD: &str =
    "SELECT seq, hash FROM realmctl_journal WHERE realm = $1 ORDER BY seq DESC LIMIT 1";
/// How often an append tries again after another writer took its position.
const RACES: usize = 16;

/// The append itself, on any connection (see [`Db::append`]).
async fn append_on(
    c: &tokio_postgres::Client,
    insert: &tokio_postgres::Statement,
    read_head: &tokio_postgres::Statement,
    realm: &str,
    a: Append,
    mut head: Option<(u64, String)>,
) -> Result<Record, tokio_postgres::Error> {
    let sync = match a.durability {
        Durability::Sync => "on",
        Durability::Buffered => "off",
    };
    let mut tries = 0;
    loop {
        let (seq, prev) = match &head {
            Some((s, h)) => (s + 1, h.clone()),
            None => match c.query_opt(read_head, &[&realm]).await? {
                Some(r) => (r.get::<_, i64>(0) as u64 + 1, r.get::<_, String>(1)),
                None => (1, GENESIS.to_owned()),
            },
        };
        let hash = record_hash(&prev, seq, &a.at, a.kind, &a.payload);
        let signature = a.signer.as_ref().map(|k| k.sign(&hash));
        let done = c
            .execute(
                insert,
                &[
                    &realm,
                    &(seq as i64),
                    &a.at,
                    &a.kind,
                    &a.payload,
                    &prev,
                    &hash,
                    &signature.as_ref().map(|s| s.key.as_str()),
                    &signature.as_ref().map(|s| s.sig.as_str()),
                    &a.fence,
                    &sync,
                ],
            )
            .await;
        match done {
            Ok(_) => {
                return Ok(Record {
                    seq,
                    at: a.at,
                    kind: a.kind.to_owned(),
                    payload: a.payload,
                    prev,
                    hash,
                    signature,
                });
            }
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
    insert: tokio_postgres::Statement,
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
        let insert = drive(&mut driver, &mut ended, client.prepare(APPEND))
            .await
            .map_err(err)?;
        let read_head = drive(&mut driver, &mut ended, client.prepare(HEAD))
            .await
            .map_err(err)?;
        Ok(Appender {
            client,
            driver,
            ended,
            insert,
            read_head,
            db: db.as_str().into(),
            realm: realm.as_str().into(),
            head: None,
            fence,
            signer,
        })
    }

    /// Appends `payload` as a record of `kind` at `at`.
    pub async fn append(
        &mut self,
        kind: &'static str,
        at: String,
        payload: String,
        durability: Durability,
    ) -> Result<Record, DbError> {
        let a = Append {
            kind,
            at,
            payload,
            durability,
            fence: self.fence,
            signer: self.signer.clone(),
        };
        let appended = append_on(
            &self.client,
            &self.insert,
            &self.read_head,
            &self.realm,
            a,
            self.head.take(),
        );
        let rec = drive(&mut self.driver, &mut self.ended, appended)
            .await
            .map_err(|e| super::classify(&self.db, &self.realm, &e))?;
        self.head = Some((rec.seq, rec.hash.clone()));
        Ok(rec)
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
    /// Appends a record after the realm's head, as `head` (the caller's last known head; read
    /// when `None`) says it stands, and returns it with the new head.
    ///
    /// One round trip when `head` is right: the record's position is the primary key, so an
    /// append from elsewhere in between (an approval from another machine) makes the insert
    /// fail on that key instead of forking the chain; the head is then read again and the
    /// record rebuilt on it. The chain is the same as with a lock around read-and-insert.
    pub fn append(&self, a: Append, head: Option<(u64, String)>) -> Result<Record, DbError> {
        let realm = self.realm.to_string();
        self.call(move |rt, c| {
            rt.block_on(async {
                let insert = c.prepared(APPEND).await?;
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
