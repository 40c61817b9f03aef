//! Install state on PostgreSQL: `--state postgres://USER@HOST:PORT/DB?realm=NAME`.
//!
//! An install runs for days and is resumed from other machines; a state folder's lock holds
//! only on one machine. Here the journal's records (hash chain and signatures as in the file,
//! byte for byte), the realm's lease and the artifacts live in one database the team already
//! runs, one realm per `realm` key:
//!
//! - [`journal`]: the records, each append one statement whose position is the primary key, so
//!   the chain never forks; triggers refuse UPDATE, DELETE and TRUNCATE, and refuse an append
//!   whose fencing token is not the realm's current lease (a writer whose lease was taken over is fenced
//!   off by the database itself, not by its own good behaviour);
//! - [`lease`]: one writer per realm across machines — a lease renewed while the holder runs,
//!   taken over once expired only with its lock id, each holder with a higher fencing token;
//! - artifacts ([`Db::put_artifact`]): the rendered files, at the same locations a folder
//!   records (`artifacts/run-N/<file>`), so a realm moves between a folder and the database
//!   without changing one hash (`realmctl state export|import`).
//!
//! The database is reached from a thread of its own ([`Db`]) with a current-thread runtime:
//! the engine's journal calls are synchronous and may come from inside an async runtime,
//! where blocking on another runtime is not allowed. The password comes from `PGPASSWORD`,
//! never from the URL (a URL with one is refused: it would be on a command line), and is never
//! printed: [`DbRef`]'s `Display` has none. TLS as for the quota ledger: plain only to
//! loopback, elsewhere required with full verification. Errors are classified by SQLSTATE.

pub mod journal;
pub mod lease;
mod schema;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::quota::postgres::PgTarget;
use crate::secret::Secret;

/// The URL parameter naming the realm.
const REALM_PARAM: &str = "realm";
/// The URL parameter setting the lease, in seconds.
const LEASE_PARAM: &str = "lease";
/// The lease when the URL sets none: renewed every third of it while the holder runs.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Every statement, connection and lock wait ends within this.
const TIMEOUT: Duration = Duration::from_secs(30);
/// SQLSTATE the append-only triggers raise.
const APPEND_ONLY: &str = "RJ001";
/// SQLSTATE the fencing trigger raises.
const FENCED: &str = "RJ002";

/// A realm's state in a PostgreSQL database, as `--state` names it.
#[derive(Clone)]
pub struct DbRef {
    target: PgTarget,
    realm: String,
    lease: Duration,
}

impl std::fmt::Debug for DbRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// The URL without the password (there is none: [`DbRef::parse`] refuses one).
impl std::fmt::Display for DbRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}?realm={}", self.target.describe(), self.realm)
    }
}

/// Why the state database cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// The URL does not parse, or names no realm.
    #[error(
        "--state {url}: {detail}\n  help: postgres://USER@HOST:PORT/DBNAME?realm=NAME (password from PGPASSWORD)"
    )]
    BadUrl {
        /// The URL, without any password.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The database cannot be reached or is not answering.
    #[error(
        "the state database {db} is unavailable: {detail}\n  help: check that it runs and is reachable; nothing was recorded by the failed write, so run the command again once it is back"
    )]
    Unavailable {
        /// The database.
        db: String,
        /// What failed.
        detail: String,
    },
    /// A statement failed.
    #[error("the state database {db}: {detail}")]
    Failed {
        /// The database.
        db: String,
        /// What failed.
        detail: String,
    },
    /// An append carried a fencing token that is no longer the realm's lease.
    #[error(
        "realm {realm} in {db}: this install no longer holds the realm's lease (someone took it over after it expired), so the database refused its write\n  help: `realmctl status --state {db}?realm={realm}` shows who holds it now; this run stops here"
    )]
    Fenced {
        /// The database.
        db: String,
        /// The realm.
        realm: String,
    },
    /// Someone tried to change or remove a record.
    #[error("the state database {db}: the journal is append-only")]
    AppendOnly {
        /// The database.
        db: String,
    },
    /// The schema was made by a newer realmctl.
    #[error(
        "the state database {db} has schema version {found}; this realmctl knows {known}\n  help: use the realmctl version that wrote it"
    )]
    Newer {
        /// The database.
        db: String,
        /// Its version.
        found: i32,
        /// Ours.
        known: i32,
    },
}

impl DbError {
    /// Whether the database was unreachable (as opposed to refusing something).
    pub fn unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable { .. })
    }
}

/// Classifies a driver error by its SQLSTATE and connection state, never by message text.
fn classify(db: &str, realm: &str, e: &tokio_postgres::Error) -> DbError {
    let code = e.code().map(|c| c.code());
    match code {
        Some(APPEND_ONLY) => DbError::AppendOnly { db: db.to_owned() },
        Some(FENCED) => DbError::Fenced {
            db: db.to_owned(),
            realm: realm.to_owned(),
        },
        _ if crate::quota::postgres::unavailable(code) || e.is_closed() => DbError::Unavailable {
            db: db.to_owned(),
            detail: detail(e),
        },
        _ => DbError::Failed {
            db: db.to_owned(),
            detail: detail(e),
        },
    }
}

/// The server's message when there is one (the driver's `Display` says only "db error").
fn detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

impl DbRef {
    /// Parses `postgres://USER@HOST:PORT/DBNAME?realm=NAME[&lease=SECONDS][&sslmode=…]`;
    /// `password` (from `PGPASSWORD`) is the only way to give a password.
    pub fn parse(url: &str, password: Option<Secret>) -> Result<DbRef, DbError> {
        Self::parse_inner(url, password, true)
    }

    /// The same for a whole database (`fleet --db`, `state init`): no realm needed.
    pub fn parse_database(url: &str, password: Option<Secret>) -> Result<DbRef, DbError> {
        Self::parse_inner(url, password, false)
    }

    fn parse_inner(
        url: &str,
        password: Option<Secret>,
        need_realm: bool,
    ) -> Result<DbRef, DbError> {
        let bad = |detail: String| DbError::BadUrl {
            url: redacted(url),
            detail,
        };
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut realm = None;
        let mut lease = DEFAULT_LEASE;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((REALM_PARAM, v)) => realm = Some(v.to_owned()),
                Some((LEASE_PARAM, v)) => {
                    let secs: u64 = v
                        .parse()
                        .ok()
                        .filter(|s| (2..=3600).contains(s))
                        .ok_or_else(|| bad(format!("lease={v} is not 2 to 3600 seconds")))?;
                    lease = Duration::from_secs(secs);
                }
                _ => rest.push(pair),
            }
        }
        let realm = match realm {
            Some(r) => r,
            None if !need_realm => "-".to_owned(),
            None => return Err(bad("no ?realm=NAME".into())),
        };
        if need_realm && realm.is_empty()
            || realm.len() > 63
            || need_realm
                && !realm
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad(format!(
                "realm={realm} is not a realm name (lowercase letters, digits and '-')"
            )));
        }
        let url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let parsed = tokio_postgres::Config::from_str(&url).map_err(|e| bad(e.to_string()))?;
        if parsed.get_password().is_some() {
            return Err(bad(
                "the URL holds a password, which would be on the command line and in shell history; give it in PGPASSWORD instead".into(),
            ));
        }
        let target = PgTarget::parse(&url, password).map_err(|e| bad(e.to_string()))?;
        Ok(DbRef {
            target,
            realm,
            lease,
        })
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The driver's config: bounded by [`TIMEOUT`], named `realmctl-state` in the server's
    /// activity view.
    fn config(&self) -> tokio_postgres::Config {
        let mut config = self.target.with_timeout(TIMEOUT);
        config.application_name("realmctl-state");
        config
    }

    /// How long a lease lasts without renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The database without the realm or password (`postgres://user@host:port/db`).
    pub fn database(&self) -> String {
        self.target.describe()
    }

    /// The same database, another realm.
    pub fn with_realm(&self, realm: &str) -> DbRef {
        DbRef {
            realm: realm.to_owned(),
            ..self.clone()
        }
    }

    /// Connects, and creates or checks the schema.
    pub fn connect(&self) -> Result<Db, DbError> {
        let db = Db::start(self)?;
        db.migrate()?;
        Ok(db)
    }
}

/// A URL with any password replaced, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Whether a session's `synchronous_commit` is durable (read once per connection; anything
/// but `off` flushes the WAL locally before a commit returns).
pub const SESSION_DURABLE: &str = "SELECT current_setting('synchronous_commit') <> 'off'";

type Job = Box<dyn FnOnce(&tokio::runtime::Runtime, &mut Conn) + Send>;

/// The connection as the jobs see it: the client and its prepared statements (one round
/// trip per statement instead of two).
pub struct Conn {
    client: Client,
    prepared: std::collections::HashMap<&'static str, tokio_postgres::Statement>,
    /// The session's `synchronous_commit` is durable (read at connect).
    pub durable: bool,
}

impl Conn {
    /// The prepared statement for `sql`, prepared on first use.
    pub async fn prepared(
        &mut self,
        sql: &'static str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).await?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
    }
}

impl std::ops::Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// A connection to the state database, on a thread of its own; cheap to clone.
#[derive(Clone)]
pub struct Db {
    jobs: mpsc::Sender<Job>,
    db: Arc<str>,
    realm: Arc<str>,
    lease: Duration,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({}?realm={})", self.db, self.realm)
    }
}

impl Db {
    fn start(r: &DbRef) -> Result<Db, DbError> {
        let config = r.config();
        let db: Arc<str> = r.target.describe().into();
        let realm: Arc<str> = r.realm.as_str().into();
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::sync_channel(1);
        let (db2, realm2) = (db.clone(), realm.clone());
        std::thread::Builder::new()
            .name("realmctl-state-db".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(DbError::Unavailable {
                            db: db2.to_string(),
                            detail: format!("cannot start a runtime: {e}"),
                        }));
                        return;
                    }
                };
                let connected = rt.block_on(async {
                    let (client, conn) = config
                        .connect(crate::quota::postgres::tls())
                        .await
                        .map_err(|e| classify(&db2, &realm2, &e))?;
                    tokio::spawn(conn);
                    let durable: bool = client
                        .query_one(SESSION_DURABLE, &[])
                        .await
                        .map_err(|e| classify(&db2, &realm2, &e))?
                        .get(0);
                    Ok::<_, DbError>((client, durable))
                });
                let mut client = match connected {
                    Ok((client, durable)) => {
                        let _ = ready_tx.send(Ok(()));
                        Conn {
                            client,
                            prepared: std::collections::HashMap::new(),
                            durable,
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for job in rx {
                    job(&rt, &mut client);
                }
            })
            .map_err(|e| DbError::Unavailable {
                db: db.to_string(),
                detail: format!("cannot start a thread: {e}"),
            })?;
        ready.recv().map_err(|_| DbError::Unavailable {
            db: db.to_string(),
            detail: "the connection thread ended".into(),
        })??;
        Ok(Db {
            jobs,
            db,
            realm,
            lease: r.lease,
        })
    }

    /// The database, without password.
    pub fn describe(&self) -> &str {
        &self.db
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The lease length.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Runs `f` on the connection's thread and waits for its answer.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&tokio::runtime::Runtime, &mut Conn) -> Result<T, tokio_postgres::Error>
        + Send
        + 'static,
    ) -> Result<T, DbError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |rt, c| {
            let _ = tx.send(f(rt, c));
        });
        let gone = || DbError::Unavailable {
            db: self.db.to_string(),
            detail: "the connection thread ended".into(),
        };
        self.jobs.send(job).map_err(|_| gone())?;
        rx.recv()
            .map_err(|_| gone())?
            .map_err(|e| classify(&self.db, &self.realm, &e))
    }

    /// Runs one statement with parameters; the number of rows it changed.
    fn execute(
        &self,
        sql: &'static str,
        params: Vec<Box<dyn ToSql + Sync + Send>>,
    ) -> Result<u64, DbError> {
        self.call(move |rt, c| {
            rt.block_on(async {
                let p: Vec<&(dyn ToSql + Sync)> = params
                    .iter()
                    .map(|b| b.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                c.execute(sql, &p).await
            })
        })
    }

    fn migrate(&self) -> Result<(), DbError> {
        let found = self.call(|rt, c| rt.block_on(schema::migrate(c)))?;
        if found > schema::VERSION {
            return Err(DbError::Newer {
                db: self.db.to_string(),
                found,
                known: schema::VERSION,
            });
        }
        Ok(())
    }

    /// Grants `role` what an install needs and nothing more: reading and appending records
    /// (never changing or removing one), reading and writing the realm's lease, reading and
    /// adding artifacts. Run by the schema's owner.
    pub fn grant(&self, role: &str) -> Result<(), DbError> {
        let statements = schema::grants(role);
        self.call(move |rt, c| rt.block_on(c.batch_execute(&statements)))
    }

    /// Stores an artifact at `location` (a new location; the same bytes again are fine).
    pub fn put_artifact(&self, location: &str, bytes: Vec<u8>) -> Result<(), DbError> {
        self.execute(
            "INSERT INTO realmctl_artifacts (realm, location, bytes) VALUES ($1, $2, $3) ON CONFLICT (realm, location) DO NOTHING",
            vec![
                Box::new(self.realm.to_string()),
                Box::new(location.to_owned()),
                Box::new(bytes),
            ],
        )
        .map(drop)
    }

    /// Reads an artifact (`None`: there is none at `location`), refusing one over `max` bytes.
    pub fn get_artifact(&self, location: &str, max: u64) -> Result<Option<Vec<u8>>, DbError> {
        let (realm, at) = (self.realm.to_string(), location.to_owned());
        self.call(move |rt, c| {
            rt.block_on(async {
                let row = c
                    .query_opt(
                        "SELECT CASE WHEN octet_length(bytes) <= $3::bigint THEN bytes END, octet_length(bytes)::bigint FROM realmctl_artifacts WHERE realm = $1 AND location = $2",
                        &[&realm, &at, &(max as i64)],
                    )
                    .await?;
                Ok(row.map(|r| (r.get::<_, Option<Vec<u8>>>(0), r.get::<_, i64>(1))))
            })
        })
        .and_then(|found| match found {
            None => Ok(None),
            Some((Some(b), _)) => Ok(Some(b)),
            Some((None, size)) => Err(DbError::Failed {
                db: self.db.to_string(),
                detail: format!("artifact {location} is {size} bytes, over the {max}-byte cap"),
            }),
        })
    }

    /// Every realm with at least one record, in name order.
    pub fn realms(&self) -> Result<Vec<String>, DbError> {
        self.call(|rt, c| {
            rt.block_on(async {
                let rows = c
                    .query(
                        "SELECT DISTINCT realm FROM realmctl_journal ORDER BY realm",
                        &[],
                    )
                    .await?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            })
        })
    }

    /// The same connection, for another realm of the database.
    pub fn for_realm(&self, realm: &str) -> Db {
        Db {
            realm: realm.into(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_url_names_its_realm_and_never_holds_a_password() {
        let r = DbRef::parse("postgres://ops@127.0.0.1:5432/realms?realm=acme", None).unwrap();
        assert_eq!(r.realm(), "acme");
        assert_eq!(r.lease(), DEFAULT_LEASE);
        assert_eq!(
            r.to_string(),
            "postgres://ops@127.0.0.1:5432/realms?realm=acme"
        );
        let r = DbRef::parse(
            "postgres://ops@127.0.0.1:5432/realms?sslmode=disable&realm=acme&lease=5",
            Some(Secret::new("canary-pw")),
        )
        .unwrap();
        assert_eq!(r.lease(), Duration::from_secs(5));
        assert!(!format!("{r} {r:?}").contains("canary-pw"));
        for (url, why) in [
            ("postgres://ops@127.0.0.1/realms", "no ?realm"),
            (
                "postgres://ops@127.0.0.1/realms?realm=Acme!",
                "not a realm name",
            ),
            (
                "postgres://ops@127.0.0.1/realms?realm=a&lease=1",
                "not 2 to 3600",
            ),
            (
                "postgres://ops:hunter2@127.0.0.1/realms?realm=a",
                "holds a password",
            ),
        ] {
            let e = DbRef::parse(url, None).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        // Plain connections only to loopback (the quota ledger's rule).
        let e = DbRef::parse(
            "postgres://ops@db.example.com/realms?realm=a&sslmode=disable",
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("in the clear"), "{e}");
    }

    #[test]
    fn errors_are_classified_by_their_sqlstate() {
        // The custom codes the triggers raise are the ones classify looks for.
        assert!(schema::SCHEMA.contains(&format!("ERRCODE = '{APPEND_ONLY}'")));
        assert!(schema::SCHEMA.contains(&format!("ERRCODE = '{FENCED}'")));
    }
}
