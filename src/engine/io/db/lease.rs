//! One writer per realm across machines: the realm's lease in the state database.
//!
//! A lease is a row of `realmctl_lease`: who holds it ([`Holder`]: operator, host, command,
//! lock id), since when, until when (by the database's clock, so two machines' clocks never
//! disagree about it), and a fencing token that grows by one with every new holder. While the
//! holder runs, a thread renews it every third of its length; a holder that stops (killed,
//! frozen, cut off from the database) stops renewing, and its lease expires. An expired lease
//! is taken over only by `realmctl unlock --lock-id ID`, because a killed install may have left
//! work half done that an operator should look at first; the new holder's token is higher, and
//! the database refuses every append that carries an older one ([`super::schema`]), so a
//! frozen writer that wakes up cannot write a single record after a takeover.

use std::sync::mpsc;
use std::time::Duration;

use super::{Db, DbError};
use crate::engine::io::lock::Holder;

/// The lease as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// Who holds (or held) it.
    pub holder: Holder,
    /// Whether it is still within its time.
    pub live: bool,
    /// Until when (RFC 3339, the database's clock).
    pub expires: String,
}

/// Why a lease cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Someone holds it, renewing.
    #[error(
        "realm {realm} in {db} is held by {holder}; its lease runs until {expires} and is renewed while that runs\n  help: wait for it to finish; only one install may write a realm's state at a time"
    )]
    Held {
        /// The database.
        db: String,
        /// The realm.
        realm: String,
        /// Who.
        holder: Box<Holder>,
        /// Until when.
        expires: String,
    },
    /// The holder stopped renewing.
    #[error(
        "realm {realm} in {db} has an expired lease: {holder}, not renewed since {expires}\n  help: check the journal (`realmctl status --state {db}?realm={realm}`), then run `realmctl unlock --state {db}?realm={realm} --lock-id {}`", holder.lock_id
    )]
    Expired {
        /// The database.
        db: String,
        /// The realm.
        realm: String,
        /// Who held it.
        holder: Box<Holder>,
        /// When it expired.
        expires: String,
    },
    /// `unlock` named another lock id.
    #[error(
        "the lease of realm {realm} has lock id {actual}, not {given}\n  help: copy the lock id from the error that reported the expired lease"
    )]
    WrongId {
        /// The realm.
        realm: String,
        /// Given.
        given: String,
        /// Actual.
        actual: String,
    },
    /// `unlock` found no lease.
    #[error("realm {realm} in {db} is not locked")]
    NotLocked {
        /// The database.
        db: String,
        /// The realm.
        realm: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What the lease row said when a take was tried (the decision is [`decide`]).
enum Found {
    Free,
    Live(LeaseRow),
    Expired(LeaseRow),
}

/// A held lease: renewed by a thread until dropped, then released.
#[derive(Debug)]
pub struct Lease {
    db: Db,
    holder: Holder,
    fence: i64,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl Lease {
    /// Who holds it (this process).
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// Its fencing token: every append of this holder carries it.
    pub fn fence(&self) -> i64 {
        self.fence
    }

    fn start(db: Db, holder: Holder, fence: i64) -> Lease {
        let (stop, stopped) = mpsc::channel::<()>();
        let every = renewal(db.lease());
        let (d, id) = (db.clone(), holder.lock_id.clone());
        let renewer = std::thread::Builder::new()
            .name("realmctl-lease".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    match renew(&d, &id, fence) {
                        Ok(true) => {}
                        // Taken over: the fencing token refuses this holder's appends.
                        Ok(false) => return,
                        // The database is away: try again at the next beat; the lease
                        // expires if it stays away, and the fencing token decides.
                        Err(_) => {}
                    }
                }
            })
            .ok();
        Lease {
            db,
            holder,
            fence,
            stop: Some(stop),
            renewer,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        let _ = self.db.execute(
            "UPDATE realmctl_lease SET lock_id = NULL, holder = NULL, since = NULL, expires = NULL WHERE realm = $1 AND lock_id = $2 AND fence = $3",
            vec![
                Box::new(self.db.realm().to_owned()),
                Box::new(self.holder.lock_id.clone()),
                Box::new(self.fence),
            ],
        );
    }
}

/// Extends the lease by its length from now; `false` when it is no longer ours.
fn renew(db: &Db, lock_id: &str, fence: i64) -> Result<bool, DbError> {
    let secs = db.lease().as_secs_f64();
    db.execute(
        "UPDATE realmctl_lease SET expires = now() + make_interval(secs => $4) WHERE realm = $1 AND lock_id = $2 AND fence = $3",
        vec![
            Box::new(db.realm().to_owned()),
            Box::new(lock_id.to_owned()),
            Box::new(fence),
            Box::new(secs),
        ],
    )
    .map(|n| n == 1)
}

/// How a take of realm `realm` in `db` goes, decided from what was found (pure): the old
/// holder on a takeover, or why not.
fn decide(
    found: Found,
    takeover: Option<&str>,
    db: &str,
    realm: &str,
) -> Result<Option<Holder>, LeaseError> {
    let (db, realm) = (db.to_owned(), realm.to_owned());
    match (found, takeover) {
        (Found::Free, None) => Ok(None),
        (Found::Free, Some(_)) => Err(LeaseError::NotLocked { db, realm }),
        (Found::Live(row), _) => Err(LeaseError::Held {
            db,
            realm,
            holder: Box::new(row.holder),
            expires: row.expires,
        }),
        (Found::Expired(row), None) => Err(LeaseError::Expired {
            db,
            realm,
            holder: Box::new(row.holder),
            expires: row.expires,
        }),
        (Found::Expired(row), Some(id)) if row.holder.lock_id != id => Err(LeaseError::WrongId {
            realm,
            given: id.to_owned(),
            actual: row.holder.lock_id,
        }),
        (Found::Expired(row), Some(_)) => Ok(Some(row.holder)),
    }
}

impl Db {
    /// What the realm's lease row says (`None`: nobody holds it).
    pub fn lease_row(&self) -> Result<Option<LeaseRow>, DbError> {
        let realm = self.realm().to_owned();
        self.call(move |rt, c| {
            rt.block_on(async {
                c.query_opt(
                    "SELECT holder, now() < expires, to_char(expires AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM realmctl_lease WHERE realm = $1 AND lock_id IS NOT NULL",
                    &[&realm],
                )
                .await
                .map(|r| r.map(|r| (r.get::<_, String>(0), r.get::<_, bool>(1), r.get::<_, String>(2))))
            })
        })
        .map(|row| {
            row.and_then(|(holder, live, expires)| {
                Some(LeaseRow {
                    holder: serde_json::from_str(&holder).ok()?,
                    live,
                    expires,
                })
            })
        })
    }

    /// Takes the realm's lease for `holder`, or says who has it.
    pub fn acquire(&self, holder: Holder) -> Result<Lease, LeaseError> {
        self.take(holder, None).map(|(_, l)| l)
    }

    /// Takes over an expired lease whose lock id is `lock_id`; returns the old holder.
    pub fn take_over(&self, lock_id: &str, by: Holder) -> Result<(Holder, Lease), LeaseError> {
        let (old, lease) = self.take(by, Some(lock_id))?;
        Ok((old.expect("a takeover has an old holder"), lease))
    }

    fn take(
        &self,
        holder: Holder,
        takeover: Option<&str>,
    ) -> Result<(Option<Holder>, Lease), LeaseError> {
        let realm = self.realm().to_owned();
        let text = serde_json::to_string(&holder).expect("a holder serialises");
        let lock_id = holder.lock_id.clone();
        let secs = self.lease().as_secs_f64();
        let takeover_id = takeover.map(str::to_owned);
        let db = self.describe().to_owned();
        let answer = self.call(move |rt, c| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                tx.execute(
                    "INSERT INTO realmctl_lease (realm) VALUES ($1) ON CONFLICT (realm) DO NOTHING",
                    &[&realm],
                )
                .await?;
                let row = tx
                    .query_one(
                        "SELECT holder, now() < expires, to_char(expires AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM realmctl_lease WHERE realm = $1 FOR UPDATE",
                        &[&realm],
                    )
                    .await?;
                let found = match row.get::<_, Option<String>>(0) {
                    None => Found::Free,
                    Some(h) => {
                        let row = LeaseRow {
                            holder: serde_json::from_str(&h).unwrap_or_else(|_| unreadable(&h)),
                            live: row.get::<_, Option<bool>>(1).unwrap_or(false),
                            expires: row.get::<_, Option<String>>(2).unwrap_or_default(),
                        };
                        if row.live {
                            Found::Live(row)
                        } else {
                            Found::Expired(row)
                        }
                    }
                };
                let decided = decide(found, takeover_id.as_deref(), &db, &realm);
                if decided.is_err() {
                    tx.rollback().await?;
                    return Ok(decided.map(|_| (None, 0)));
                }
                let fence: i64 = tx
                    .query_one(
                        "UPDATE realmctl_lease SET fence = fence + 1, lock_id = $2, holder = $3, since = now(), expires = now() + make_interval(secs => $4) WHERE realm = $1 RETURNING fence",
                        &[&realm, &lock_id, &text, &secs],
                    )
                    .await?
                    .get(0);
                tx.commit().await?;
                Ok(decided.map(|old| (old, fence)))
            })
        })?;
        let (old, fence) = answer?;
        Ok((old, Lease::start(self.clone(), holder, fence)))
    }
}

/// A holder row that does not parse (written by something else): shown as such, and taken
/// over only with its lock id, which is then unknown.
fn unreadable(text: &str) -> Holder {
    Holder {
        lock_id: "unreadable".into(),
        host: "?".into(),
        pid: 0,
        start_ticks: None,
        boot_id: None,
        since: "?".into(),
        operator: "?".into(),
        command: format!("an unreadable holder ({} bytes)", text.len()),
    }
}

/// How long to wait between renewals of a lease of `lease` (a third of it).
pub fn renewal(lease: Duration) -> Duration {
    lease / 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, live: bool) -> LeaseRow {
        let mut h = Holder::me("ann", "install", "t".into());
        h.lock_id = id.into();
        LeaseRow {
            holder: h,
            live,
            expires: "t".into(),
        }
    }

    #[test]
    fn a_lease_is_taken_when_free_and_taken_over_only_expired_and_by_its_lock_id() {
        assert!(matches!(decide(Found::Free, None, "db", "r"), Ok(None)));
        assert!(matches!(
            decide(Found::Free, Some("a"), "db", "r"),
            Err(LeaseError::NotLocked { .. })
        ));
        assert!(matches!(
            decide(Found::Live(row("a", true)), None, "db", "r"),
            Err(LeaseError::Held { .. })
        ));
        assert!(matches!(
            decide(Found::Live(row("a", true)), Some("a"), "db", "r"),
            Err(LeaseError::Held { .. })
        ));
        assert!(matches!(
            decide(Found::Expired(row("a", false)), None, "db", "r"),
            Err(LeaseError::Expired { .. })
        ));
        assert!(matches!(
            decide(Found::Expired(row("a", false)), Some("b"), "db", "r"),
            Err(LeaseError::WrongId { .. })
        ));
        match decide(Found::Expired(row("a", false)), Some("a"), "db", "r") {
            Ok(Some(old)) => assert_eq!(old.lock_id, "a"),
            _ => panic!("an expired lease is taken over with its id"),
        }
        assert_eq!(renewal(Duration::from_secs(30)), Duration::from_secs(10));
    }
}
