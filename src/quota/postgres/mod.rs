//! The PostgreSQL ledger: several `quota serve` replicas on one database never over-admit.
//!
//! Every write (seed, deploy, undeploy) runs in one READ COMMITTED transaction that first takes
//! the realm's transaction-scoped advisory lock (`pg_advisory_xact_lock`, key derived from the
//! realm name), so writers of one realm — in any replica — go one at a time, and each statement
//! after the lock sees everything the previous holder committed (PostgreSQL makes a commit
//! visible before it releases the transaction's locks). Different realms never wait for each
//! other (a hash collision only serialises two realms, it never mixes their data). Reads
//! (what-if, status, the log) use a REPEATABLE READ READ ONLY snapshot and take no lock.
//! The decisions are the pure [`model`] functions, the same as the SQLite backend's.
//!
//! Bounds: a pool of [`StoreOptions::pool_size`] connections; waiting for one, creating one
//! (`connect_timeout`) and every operation end within [`StoreOptions::timeout`]; the server
//! cancels a statement or lock wait after the same time (`statement_timeout`, `lock_timeout`)
//! and a transaction left idle after twice that. Errors are classified by SQLSTATE class and
//! connection state, never by message text: a connection or availability problem is
//! [`LedgerError::Unavailable`] (HTTP 503), anything else [`LedgerError::Postgres`].
//!
//! TLS: `sslmode=disable` is allowed only to a loopback host or a Unix socket; elsewhere the
//! connection is TLS with the platform's root certificates and full verification (`prefer`
//! becomes `require`), so a password never crosses a network in the clear.

pub mod schema;
mod tx;

use tx::{Tx, run_op};

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::Config;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::ops::{Answer, LedgerError, Migrated, Op, Open, StoreOptions, now};
use crate::secret::Secret;

/// A PostgreSQL database to hold the ledger (parsed URL; the password never printed).
#[derive(Clone)]
pub struct PgTarget {
    config: Config,
    described: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.described)
    }
}

impl PgTarget {
    /// Parses a `postgres://user[:password]@host[:port]/dbname[?param=value…]` URL (libpq
    /// syntax); `password` is used when the URL carries none.
    pub fn parse(url: &str, password: Option<Secret>) -> Result<PgTarget, LedgerError> {
        let mut config = Config::from_str(url).map_err(|e| LedgerError::BadUrl {
            detail: e.to_string(),
        })?;
        if config.get_password().is_none()
            && let Some(p) = password
        {
            config.password(p.expose());
        }
        let described = describe(&config);
        let mode = tls_mode(config.get_hosts(), config.get_ssl_mode()).map_err(|why| {
            LedgerError::BadUrl {
                detail: format!("{described}: {why}"),
            }
        })?;
        config.ssl_mode(mode);
        if config.get_application_name().is_none() {
            config.application_name("realmctl-quota");
        }
        Ok(PgTarget { config, described })
    }

    /// `postgres://user@host:port/dbname`, without the password.
    pub fn describe(&self) -> String {
        self.described.clone()
    }

    /// The driver config with this store's timeouts.
    fn bounded(&self, o: &StoreOptions) -> Config {
        self.with_timeout(o.timeout)
    }

    /// The driver config bounded by `timeout`: connecting, TCP, and on the server every
    /// statement and lock wait (a transaction left idle: twice that). Shared with the install
    /// state on PostgreSQL ([`crate::engine::io::db`]).
    pub(crate) fn with_timeout(&self, timeout: Duration) -> Config {
        let mut c = self.config.clone();
        let ms = timeout.as_millis().max(1);
        c.connect_timeout(timeout);
        c.tcp_user_timeout(timeout);
        c.keepalives(true);
        c.keepalives_idle(Duration::from_secs(30));
        let ours = format!(
            "-c statement_timeout={ms} -c lock_timeout={ms} -c idle_in_transaction_session_timeout={}",
            ms * 2
        );
        let options = match c.get_options() {
            Some(theirs) if !theirs.is_empty() => format!("{theirs} {ours}"),
            _ => ours,
        };
        c.options(options);
        c
    }
}

/// `postgres://user@host:port/dbname` from a parsed config (pure; no password).
fn describe(c: &Config) -> String {
    let user = c.get_user().unwrap_or("");
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(h) if h.contains(':') => format!("[{h}]"),
                Host::Tcp(h) => h.clone(),
                Host::Unix(p) => p.display().to_string(),
            };
            match c.get_ports().get(i).or(c.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let at = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    format!(
        "postgres://{at}{}/{}",
        hosts.join(","),
        c.get_dbname().unwrap_or("")
    )
}

/// The TLS mode to use (pure): plain connections only to loopback hosts or Unix sockets;
/// elsewhere TLS is required (`prefer` is upgraded, `disable` refused).
fn tls_mode(hosts: &[Host], asked: SslMode) -> Result<SslMode, String> {
    let local = !hosts.is_empty()
        && hosts.iter().all(|h| match h {
            Host::Tcp(h) => crate::secret::is_loopback_host(h.trim_matches(['[', ']'])),
            Host::Unix(_) => true,
        });
    match asked {
        _ if local => Ok(asked),
        SslMode::Disable => Err(
            "sslmode=disable would send credentials and admissions in the clear to a non-loopback host\n  help: drop sslmode=disable (realmctl then requires TLS with a verified certificate)"
                .into(),
        ),
        _ => Ok(SslMode::Require),
    }
}

/// How a PostgreSQL failure is handled (pure classification of its SQLSTATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The database is unreachable, shutting down, overloaded or too slow: 503, retry.
    Unavailable,
    /// The statement itself failed: a bug or a broken database, 500.
    Failed,
}

/// Whether a failure with this SQLSTATE (`None`: no server error, the connection failed) is
/// the database being unavailable rather than the statement failing.
pub(crate) fn unavailable(code: Option<&str>) -> bool {
    kind_of(code) == Kind::Unavailable
}

/// Classifies a SQLSTATE code (`None`: no server error, i.e. the connection failed).
fn kind_of(code: Option<&str>) -> Kind {
    let Some(code) = code else {
        return Kind::Unavailable;
    };
    // 08: connection exception; 53: insufficient resources; 57P0x: shutdown / cannot connect
    // now; 57014: statement timeout (query canceled); 55P03: lock timeout; 40001/40P01:
    // serialization failure / deadlock (retrying is safe: nothing was committed).
    let transient = code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P0")
        || matches!(code, "57014" | "55P03" | "40001" | "40P01");
    if transient {
        Kind::Unavailable
    } else {
        Kind::Failed
    }
}

/// The ledger on PostgreSQL.
pub struct PgLedger {
    pool: Pool,
    db: String,
    timeout: Duration,
}

/// The TLS connector: the platform's roots (else webpki's), full verification.
pub(crate) fn tls() -> MakeRustlsConnect {
    let mut roots = rustls::RootCertStore::empty();
    // Certificates the platform cannot parse are skipped, as every TLS client does.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("aws-lc-rs supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    MakeRustlsConnect::new(config)
}

impl PgLedger {
    /// Connects (bounded pool) and migrates or checks the schema.
    pub async fn connect(t: &PgTarget, mode: Open, o: StoreOptions) -> Result<Self, LedgerError> {
        let ledger = Self::pool(t, o)?;
        match mode {
            Open::CreateOrMigrate => {
                ledger.migrate().await?;
            }
            Open::Existing => {
                let found = ledger.within(ledger.schema_version()).await?;
                let known = schema::latest();
                match schema::plan(found, known) {
                    schema::Plan::Current => {}
                    schema::Plan::Apply { .. } => {
                        return Err(LedgerError::NotMigrated {
                            db: ledger.db.clone(),
                            found,
                            known,
                        });
                    }
                    schema::Plan::Newer { found } => {
                        return Err(LedgerError::NewerSchema {
                            db: ledger.db.clone(),
                            found,
                            known,
                        });
                    }
                }
            }
        }
        Ok(ledger)
    }

    /// The bounded pool; connections are made on first use.
    fn pool(t: &PgTarget, o: StoreOptions) -> Result<Self, LedgerError> {
        let manager = Manager::from_config(
            t.bounded(&o),
            tls(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(o.pool_size.max(1))
            .wait_timeout(Some(o.timeout))
            .create_timeout(Some(o.timeout))
            .recycle_timeout(Some(o.timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| LedgerError::Postgres {
                db: t.describe(),
                detail: e.to_string(),
            })?;
        Ok(PgLedger {
            pool,
            db: t.describe(),
            timeout: o.timeout,
        })
    }

    /// The database, without the password.
    pub fn describe(&self) -> String {
        self.db.clone()
    }

    fn err(&self) -> impl Fn(tokio_postgres::Error) -> LedgerError + '_ {
        |e| classify(&self.db, &e)
    }

    async fn within<T>(
        &self,
        f: impl Future<Output = Result<T, LedgerError>>,
    ) -> Result<T, LedgerError> {
        super::ops::within(&self.db, self.timeout, f).await
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, LedgerError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => classify(&self.db, &e),
            PoolError::Timeout(_) => LedgerError::Unavailable {
                db: self.db.clone(),
                detail: format!(
                    "no database connection within {} s",
                    self.timeout.as_secs_f64()
                ),
            },
            other => LedgerError::Unavailable {
                db: self.db.clone(),
                detail: other.to_string(),
            },
        })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), LedgerError> {
        self.within(async {
            let c = self.client().await?;
            c.simple_query("SELECT 1").await.map_err(self.err())?;
            Ok(())
        })
        .await
    }

    /// The schema version recorded in the database (0: none).
    async fn schema_version(&self) -> Result<i64, LedgerError> {
        let c = self.client().await?;
        let exists: bool = c
            .query_one("SELECT to_regclass('realmctl_schema') IS NOT NULL", &[])
            .await
            .map_err(self.err())?
            .get(0);
        if !exists {
            return Ok(0);
        }
        let row = c
            .query_one(
                "SELECT coalesce(max(version), 0)::bigint FROM realmctl_schema",
                &[],
            )
            .await
            .map_err(self.err())?;
        Ok(row.get(0))
    }

    /// Applies the migrations this database lacks, under the migration lock.
    pub async fn migrate(&self) -> Result<Migrated, LedgerError> {
        // Migrations may take longer than one request: they get four times the timeout.
        let limit = self.timeout * 4;
        let work = async {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(self.err())?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&schema::MIGRATION_LOCK],
            )
            .await
            .map_err(self.err())?;
            tx.batch_execute(schema::VERSION_TABLE)
                .await
                .map_err(self.err())?;
            let found: i64 = tx
                .query_one(
                    "SELECT coalesce(max(version), 0)::bigint FROM realmctl_schema",
                    &[],
                )
                .await
                .map_err(self.err())?
                .get(0);
            let known = schema::latest();
            match schema::plan(found, known) {
                schema::Plan::Newer { found } => Err(LedgerError::NewerSchema {
                    db: self.db.clone(),
                    found,
                    known,
                }),
                schema::Plan::Current => Ok(Migrated {
                    from: found,
                    to: found,
                }),
                schema::Plan::Apply { from } => {
                    for (v, sql) in schema::MIGRATIONS.iter().filter(|(v, _)| *v > from) {
                        tx.batch_execute(sql).await.map_err(self.err())?;
                        tx.execute(
                            "INSERT INTO realmctl_schema (version, applied_at) VALUES ($1, $2)",
                            &[v, &now()],
                        )
                        .await
                        .map_err(self.err())?;
                    }
                    tx.commit().await.map_err(self.err())?;
                    Ok(Migrated { from, to: known })
                }
            }
        };
        super::ops::within(&self.db, limit, work).await
    }

    /// Runs one operation in its own transaction, within the timeout.
    pub async fn run(&self, op: Op) -> Result<Answer, LedgerError> {
        self.within(async {
            let mut session = Session(Some(self.client().await?), true);
            let c = session.client();
            // One round trip opens the transaction and, for a write, waits for the realm's lock
            // (the key is our own integer, formatted, never user text). Statements after it
            // take their snapshots after the lock was granted.
            let begin = if op.writes() {
                format!(
                    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({})",
                    realm_lock(op.realm())
                )
            } else {
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".to_owned()
            };
            let t = Tx {
                client: c,
                db: &self.db,
                committed: std::sync::atomic::AtomicBool::new(false),
            };
            let answer = run_op(&t, &begin, &op).await;
            let keep = matches!(
                answer,
                Ok(_) | Err(LedgerError::SeedRefused { .. } | LedgerError::Retired { .. })
            );
            if !t.committed.load(std::sync::atomic::Ordering::Relaxed) {
                // Acknowledged only once the commit returned (`synchronous_commit=on`, the
                // default, waits for the WAL flush).
                let end = if keep { "COMMIT" } else { "ROLLBACK" };
                c.batch_execute(end).await.map_err(self.err())?;
            }
            session.1 = false;
            answer
        })
        .await
    }
}

/// A pooled connection inside a transaction this code opened. If the work is abandoned
/// midway (an error or the timeout dropping the future) the connection is closed instead of
/// going back to the pool, so PostgreSQL rolls the transaction back and no later request
/// inherits it.
struct Session(Option<deadpool_postgres::Object>, bool);

impl Session {
    fn client(&self) -> &deadpool_postgres::ClientWrapper {
        self.0
            .as_ref()
            .expect("the session holds its connection until dropped")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.1
            && let Some(o) = self.0.take()
        {
            drop(deadpool_postgres::Object::take(o));
        }
    }
}

/// The per-realm advisory-lock key: the first 8 bytes of SHA-256 of the realm name.
fn realm_lock(realm: &str) -> i64 {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("realmctl.quota.realm/{realm}").as_bytes(),
    );
    let mut first = [0u8; 8];
    first.copy_from_slice(&d.as_ref()[..8]);
    i64::from_be_bytes(first)
}

fn classify(db: &str, e: &tokio_postgres::Error) -> LedgerError {
    let db = db.to_owned();
    if let Some(d) = e.as_db_error() {
        let detail = format!("{} ({})", d.message(), d.code().code());
        return match kind_of(Some(d.code().code())) {
            Kind::Unavailable => LedgerError::Unavailable { db, detail },
            Kind::Failed => LedgerError::Postgres { db, detail },
        };
    }
    // No SQLSTATE: the connection failed (closed, I/O, timeout), TLS refused the server, or a
    // value could not be converted (a bug). The sources tell them apart by type, not by text.
    let detail = with_sources(e);
    let mut source = std::error::Error::source(e);
    let mut io = e.is_closed();
    while let Some(s) = source {
        if let Some(i) = s.downcast_ref::<std::io::Error>() {
            if i.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                return LedgerError::Tls { db, detail };
            }
            io = true;
        }
        if s.is::<rustls::Error>() {
            return LedgerError::Tls { db, detail };
        }
        source = s.source();
    }
    if io {
        LedgerError::Unavailable { db, detail }
    } else {
        LedgerError::Postgres { db, detail }
    }
}

/// An error and its sources, `a: b: c` (the driver's own text is often only the first).
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

/// Brings the database to this build's schema.
pub async fn migrate(t: &PgTarget, o: StoreOptions) -> Result<Migrated, LedgerError> {
    PgLedger::pool(t, o)?.migrate().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(hs: &[&str]) -> Vec<Host> {
        hs.iter()
            .map(|h| {
                if h.starts_with('/') {
                    Host::Unix(h.into())
                } else {
                    Host::Tcp((*h).to_owned())
                }
            })
            .collect()
    }

    #[test]
    fn plain_connections_only_to_loopback_or_a_socket() {
        assert_eq!(
            tls_mode(&hosts(&["127.0.0.1"]), SslMode::Disable),
            Ok(SslMode::Disable)
        );
        assert_eq!(
            tls_mode(&hosts(&["/run/postgresql"]), SslMode::Prefer),
            Ok(SslMode::Prefer)
        );
        assert_eq!(
            tls_mode(&hosts(&["db.example.com"]), SslMode::Prefer),
            Ok(SslMode::Require)
        );
        assert!(tls_mode(&hosts(&["db.example.com"]), SslMode::Disable).is_err());
        // One host that is not loopback among loopback ones is enough to need TLS.
        assert!(tls_mode(&hosts(&["::1", "db.example.com"]), SslMode::Disable).is_err());
    }

    #[test]
    fn the_url_is_described_without_its_password() {
        let t = PgTarget::parse(
            "postgres://quota:s3cr3t-canary@db.example.com:6543/realms",
            None,
        )
        .unwrap();
        assert_eq!(t.describe(), "postgres://quota@db.example.com:6543/realms");
        assert!(!format!("{t:?}").contains("s3cr3t"));
        let t = PgTarget::parse(
            "postgres://quota@127.0.0.1:5432/realms",
            Some(Secret::new("from-env")),
        )
        .unwrap();
        assert_eq!(t.config.get_password(), Some(&b"from-env"[..]));
    }

    #[test]
    fn sqlstates_are_classified_by_class() {
        assert_eq!(kind_of(None), Kind::Unavailable);
        for c in [
            "08006", "57P01", "57P03", "53300", "57014", "55P03", "40001",
        ] {
            assert_eq!(kind_of(Some(c)), Kind::Unavailable, "{c}");
        }
        for c in ["23505", "42P01", "P0001", "22003"] {
            assert_eq!(kind_of(Some(c)), Kind::Failed, "{c}");
        }
    }

    #[test]
    fn realm_locks_are_stable_and_distinct() {
        assert_eq!(realm_lock("acme"), realm_lock("acme"));
        assert_ne!(realm_lock("acme"), realm_lock("acme2"));
    }
}
