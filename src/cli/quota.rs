//! `realmctl quota ...`: the enforcement core on the command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};

use realmctl::quota::model::RealmConfig;
use realmctl::quota::model::{Deployment, Env, EnvUsage, Key, Size, Version};
use realmctl::quota::store::{self, DbUrl, LedgerError, Open, RealmStatus, Store, StoreOptions};
use realmctl::quota::tokens::{self, Scope};
use realmctl::quota::{self, Admission, http, seed};
use realmctl::spec;

use super::{BadInput, Format, Outcome, bad, env, quota_realm};
use realmctl::platform::core::Role;

/// Quota subcommands.
#[derive(Debug, Subcommand)]
pub enum QuotaCmd {
    /// Create or update a realm's config from its spec (refuses to go below current use), in a
    /// local ledger (--db) or a running quota service (--url with an admin token).
    Seed {
        /// Ledger database: a SQLite file, or postgres://USER@HOST:PORT/DBNAME (password from
        /// PGPASSWORD). Created or migrated when needed.
        #[arg(long, required_unless_present_any = ["url", "in_realm"], conflicts_with_all = ["url", "in_realm"])]
        db: Option<String>,
        /// The realm's own enforcement core in its cluster (found through the spec's cloud,
        /// with its credential chain; the admin token is read from the cluster).
        #[arg(long, conflicts_with = "url")]
        in_realm: bool,
        /// A running quota service, e.g. https://quota.example:8443 (plain http only to loopback).
        #[arg(long, requires = "token_env")]
        url: Option<String>,
        /// Environment variable holding an admin token for --url.
        #[arg(long)]
        token_env: Option<String>,
        /// The realm spec.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
    /// Ask to deploy a pipeline version; records it when admitted.
    Deploy(DeployArgs),
    /// Would this deployment fit? Nothing is recorded.
    WhatIf(DeployArgs),
    /// Remove the active version of (pipeline, major) from an environment.
    Undeploy {
        #[command(flatten)]
        at: RealmDb,
        /// Environment.
        #[arg(long)]
        env: Env,
        /// Pipeline.
        #[arg(long)]
        pipeline: String,
        /// Major version.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        major: u32,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
    /// Create the ledger's schema, or bring it to this version's (refuses a newer one).
    Migrate {
        /// Ledger database: a SQLite file, or postgres://USER@HOST:PORT/DBNAME (password from
        /// PGPASSWORD).
        #[arg(long)]
        db: String,
    },
    /// Run the quota HTTP service. Several replicas may share one PostgreSQL database.
    Serve {
        /// Ledger database: a SQLite file, or postgres://USER@HOST:PORT/DBNAME (password from
        /// PGPASSWORD). Created or migrated on start.
        #[arg(long)]
        db: String,
        /// Every database operation (including waiting for a pooled connection) ends within
        /// this; beyond it the request gets 503 with Retry-After.
        #[arg(long, default_value = "5s", value_parser = duration)]
        db_timeout: Duration,
        /// PostgreSQL connections this process keeps open.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
        db_pool: u32,
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// Tokens file: SHA-256 hex digest of each token → realm name or `admin`.
        #[arg(long)]
        tokens: PathBuf,
        /// A request head must arrive within this (also the longest a keep-alive connection
        /// may sit idle), e.g. 10s.
        #[arg(long, default_value = "10s", value_parser = duration)]
        header_timeout: std::time::Duration,
        /// A request body must arrive within this.
        #[arg(long, default_value = "10s", value_parser = duration)]
        body_timeout: std::time::Duration,
        /// On SIGTERM/SIGINT, requests in flight get this long to finish.
        #[arg(long, default_value = "10s", value_parser = duration)]
        shutdown_grace: std::time::Duration,
        /// Connections open at once; when all are taken, the oldest idle one (sending nothing,
        /// trickling its request head, or between keep-alive requests) is closed for a newcomer.
        #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
        max_connections: u32,
    },
    /// Mint a bearer token; prints the token once and the line to add to the tokens file.
    Token {
        /// Token for this realm.
        #[arg(long, conflicts_with = "admin", required_unless_present = "admin")]
        realm: Option<String>,
        /// Administrator token (every realm, config changes).
        #[arg(long)]
        admin: bool,
    },
    /// Retire a realm (what `realmctl destroy` does before deleting its cluster): every later
    /// deployment is denied, its config is final, its decision log is kept. Safe to repeat.
    /// `--output json` prints the retirement and the whole decision log.
    Retire {
        #[command(flatten)]
        at: RealmDb,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
    /// Usage per environment and every deployment.
    Status {
        #[command(flatten)]
        at: RealmDb,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
    },
}

/// The ledger and the realm a command acts on, or the realm's own core.
#[derive(Debug, Args)]
pub struct RealmDb {
    /// Ledger database: a SQLite file, or postgres://USER@HOST:PORT/DBNAME (password from
    /// PGPASSWORD).
    #[arg(
        long,
        required_unless_present = "in_realm",
        conflicts_with = "in_realm"
    )]
    db: Option<String>,
    /// Realm.
    #[arg(
        long,
        required_unless_present = "in_realm",
        conflicts_with = "in_realm"
    )]
    realm: Option<String>,
    /// The realm spec: act on the realm's own enforcement core in its cluster instead (found
    /// through the spec's cloud with its credential chain; the realm token is read from the
    /// cluster).
    #[arg(long, value_name = "SPEC")]
    in_realm: Option<PathBuf>,
}

/// Where a command acts.
enum At {
    /// A ledger and a realm in it.
    Ledger { db: String, realm: String },
    /// The core of the realm a spec describes.
    InRealm(PathBuf),
}

impl RealmDb {
    fn at(self) -> Result<At, BadInput> {
        match (self.in_realm, self.db, self.realm) {
            (Some(spec), _, _) => Ok(At::InRealm(spec)),
            (None, Some(db), Some(realm)) => Ok(At::Ledger { db, realm }),
            _ => Err(bad(anyhow!(
                "give --db DB with --realm R, or --in-realm SPEC"
            ))),
        }
    }
}

/// Arguments of `deploy` and `what-if`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    at: RealmDb,
    /// Environment: test or prod.
    #[arg(long)]
    env: Env,
    /// Pipeline name.
    #[arg(long)]
    pipeline: String,
    /// Version MAJOR.MINOR (major ≥ 1).
    #[arg(long)]
    version: Version,
    /// small, medium or large.
    #[arg(long)]
    size: Size,
    /// Replicas (≥ 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    replicas: u32,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    output: Format,
}

/// A duration flag: `500ms`, `10s`, `2m`.
fn duration(s: &str) -> Result<std::time::Duration, String> {
    realmctl::engine::model::playbook::parse_duration(s)
        .ok_or_else(|| format!("`{s}` is not a duration; write e.g. 500ms, 10s or 2m"))
}

/// The ledger `db` names: a SQLite path or a PostgreSQL URL, with the password from
/// `PGPASSWORD` when the URL has none.
fn db_url(db: &str) -> Result<DbUrl, BadInput> {
    DbUrl::parse(db, env::optional_secret("PGPASSWORD")).map_err(ledger_err)
}

/// Runs `f` on the ledger at `db`; commands that read or change deployments use
/// [`Open::Existing`] and never create or migrate one.
fn with_store<T>(
    db: &str,
    mode: Open,
    f: impl AsyncFnOnce(Store) -> Result<T, LedgerError>,
) -> Result<T, BadInput> {
    let url = db_url(db)?;
    super::runtime()?.block_on(async {
        let store = Store::open(&url, mode, StoreOptions::default())
            .await
            .map_err(ledger_err)?;
        f(store).await.map_err(ledger_err)
    })
}

/// Prints what a seed stored.
fn seeded(realm: &str, config: &RealmConfig, output: Format) -> Outcome {
    match output {
        Format::Json => println!("{}", serde_json::json!({"realm": realm, "config": config})),
        Format::Text => println!(
            "seeded realm {realm}: {} pipeline subscriptions, {} Test RTU, {} Prod RTU, at most {} replicas of size {} per deployment",
            config.pipeline_subscriptions,
            config.rtus(Env::Test),
            config.rtus(Env::Prod),
            config.max_replicas,
            config.max_size.as_str()
        ),
    }
    Outcome::Success
}

/// Who is acting, for the decision log.
fn actor() -> String {
    format!("cli:{}", env::operator())
}

fn ledger_err(e: LedgerError) -> BadInput {
    bad(anyhow!(e))
}

fn usage_line(env: Env, u: &EnvUsage) -> String {
    format!(
        "{env}: {}/{} subscriptions, {}/{} RTU",
        u.subscriptions_used, u.subscriptions_total, u.rtus_used, u.rtus_total
    )
}

/// Runs a quota subcommand.
pub fn run(cmd: QuotaCmd) -> Result<Outcome, BadInput> {
    match cmd {
        QuotaCmd::Seed {
            db,
            in_realm,
            url,
            token_env,
            file,
            output,
        } => {
            let spec = spec::load(&file).map_err(|e| bad(anyhow!(e)))?;
            let config = quota::config_from_spec(&spec.subscription);
            if in_realm {
                quota_realm::with_core(&file, Role::Admin, async |core, realm| {
                    core.seed(realm, &config).await
                })?
                .map_err(bad)?;
                return Ok(seeded(&spec.name, &config, output));
            }
            let target = match (db, url, token_env) {
                (Some(db), _, _) => {
                    let (realm, who) = (spec.name.clone(), actor());
                    with_store(&db, Open::CreateOrMigrate, async move |s| {
                        s.seed(&realm, config, &who).await
                    })?;
                    return Ok(seeded(&spec.name, &config, output));
                }
                (None, Some(url), Some(var)) => {
                    let token = env::secret(
                        &var,
                        "--token-env",
                        "admin token from `realmctl quota token --admin`",
                    )?;
                    seed::Target::remote(&url, token).map_err(bad)?
                }
                _ => {
                    return Err(bad(anyhow!(
                        "give --db FILE, or --url URL with --token-env VAR"
                    )));
                }
            };
            seed::seed(
                &target,
                &spec.name,
                config,
                &actor(),
                std::time::Duration::from_secs(30),
            )
            .map_err(bad)?;
            Ok(seeded(&spec.name, &config, output))
        }
        QuotaCmd::Migrate { db } => {
            let url = db_url(&db)?;
            let m = super::runtime()?
                .block_on(store::migrate(&url, StoreOptions::default()))
                .map_err(ledger_err)?;
            if m.from == m.to {
                println!(
                    "ledger {} is at schema version {}: nothing to do",
                    url.describe(),
                    m.to
                );
            } else {
                println!(
                    "ledger {} migrated from schema version {} to {}",
                    url.describe(),
                    m.from,
                    m.to
                );
            }
            Ok(Outcome::Success)
        }
        QuotaCmd::Deploy(a) => deploy(a, true),
        QuotaCmd::WhatIf(a) => deploy(a, false),
        QuotaCmd::Undeploy {
            at,
            env,
            pipeline,
            major,
            output,
        } => {
            let key = Key {
                environment: env,
                pipeline,
                major,
            };
            let (realm, old) = match at.at()? {
                At::Ledger { db, realm } => {
                    let (r, who) = (realm.clone(), actor());
                    let old = with_store(&db, Open::Existing, async move |s| {
                        s.undeploy(&r, &key, &who).await
                    })?;
                    (realm, old)
                }
                At::InRealm(file) => {
                    quota_realm::with_core(&file, Role::Realm, async |core, realm| {
                        Ok((realm.to_owned(), core.undeploy(realm, &key).await?))
                    })?
                }
            };
            match output {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({"realm": realm, "undeployed": old, "rtusReleased": old.rtus()})
                ),
                Format::Text => println!(
                    "undeployed {} {} from {env} of realm {realm}: 1 subscription and {} RTU released",
                    old.pipeline,
                    old.version,
                    old.rtus()
                ),
            }
            Ok(Outcome::Success)
        }
        QuotaCmd::Serve {
            db,
            db_timeout,
            db_pool,
            listen,
            tokens,
            header_timeout,
            body_timeout,
            shutdown_grace,
            max_connections,
        } => serve(
            &db,
            StoreOptions {
                timeout: db_timeout,
                pool_size: db_pool as usize,
                #[cfg(feature = "test-actions")]
                ack_before_commit: super::env::ack_before_commit(),
                ..StoreOptions::default()
            },
            listen,
            &tokens,
            http::Limits {
                header_read: header_timeout,
                body_read: body_timeout,
                shutdown_grace,
                max_connections: max_connections as usize,
            },
        ),
        QuotaCmd::Token { realm, admin } => {
            let scope = match (realm, admin) {
                (_, true) => Scope::Admin,
                (Some(r), false) if spec::is_valid_realm_name(&r) => Scope::Realm(r),
                (Some(r), false) => return Err(bad(anyhow!("invalid realm name `{r}`"))),
                (None, false) => return Err(bad(anyhow!("give --realm R or --admin"))),
            };
            let (token, line) = tokens::mint(&scope);
            println!(
                "token (shown once; give it to the client, store it nowhere else):\n  {token}"
            );
            println!("add this line to the tokens file:\n  {line}");
            Ok(Outcome::Success)
        }
        QuotaCmd::Retire { at, output } => {
            let export = match at.at()? {
                At::Ledger { db, realm } => {
                    let who = actor();
                    with_store(&db, Open::Existing, async move |s| {
                        let retirement = s.retire(&realm, &who).await?;
                        let decisions = s.decisions(&realm).await?;
                        Ok(quota::retire::Export {
                            realm,
                            retirement,
                            decisions,
                        })
                    })?
                }
                At::InRealm(file) => {
                    quota_realm::with_core(&file, Role::Admin, async |core, realm| {
                        core.retire(realm).await
                    })?
                    .map_err(bad)?
                }
            };
            match output {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&export).expect("the export is JSON")
                ),
                Format::Text => println!(
                    "realm {} {} at {}; its decision log ({} entries) is kept",
                    export.realm,
                    if export.retirement.now {
                        "retired"
                    } else {
                        "was already retired"
                    },
                    export.retirement.retired_at,
                    export.decisions.len()
                ),
            }
            Ok(Outcome::Success)
        }
        QuotaCmd::Status { at, output } => {
            let st = match at.at()? {
                At::Ledger { db, realm } => {
                    with_store(&db, Open::Existing, async move |s| s.status(&realm).await)?
                }
                At::InRealm(file) => {
                    quota_realm::with_core(&file, Role::Realm, async |core, realm| {
                        core.status(realm).await
                    })?
                }
            };
            match output {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&st).expect("status is JSON")
                ),
                Format::Text => print!("{}", status_text(&st)),
            }
            Ok(Outcome::Success)
        }
    }
}

fn serve(
    db: &str,
    options: StoreOptions,
    listen: std::net::SocketAddr,
    tokens_path: &Path,
    limits: http::Limits,
) -> Result<Outcome, BadInput> {
    let tokens = tokens::Tokens::load(tokens_path).map_err(bad)?;
    let url = db_url(db)?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        // The service may start on a new ledger (realms are seeded through it); the schema is
        // created or migrated first, and a newer one is refused.
        let ledger = Store::open(&url, Open::CreateOrMigrate, options)
            .await
            .map_err(ledger_err)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))
            .map_err(bad)?;
        let addr = listener.local_addr().map_err(bad)?;
        eprintln!("realmctl quota service listening on http://{addr}");
        eprintln!("ledger: {}", ledger.describe());
        http::serve(
            listener,
            http::AppState::new(ledger, tokens, limits),
            shutdown_signal(),
        )
        .await
        .map_err(bad)?;
        // stderr may be gone by now (a supervisor closed it); stopping cleanly matters more.
        let _ = writeln!(std::io::stderr(), "realmctl quota service stopped");
        Ok(Outcome::Success)
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn status_text(st: &RealmStatus) -> String {
    let mut out = format!(
        "realm {}{}\n  {}\n  {}\n",
        st.realm,
        st.retired_at
            .as_ref()
            .map(|at| format!(" (retired at {at}: nothing new is admitted)"))
            .unwrap_or_default(),
        usage_line(Env::Test, &st.test),
        usage_line(Env::Prod, &st.prod)
    );
    for d in &st.deployments {
        out.push_str(&format!(
            "  {:<4} {} {} {} × {} = {} RTU\n",
            d.environment.as_str(),
            d.pipeline,
            d.version,
            d.size.as_str(),
            d.replicas,
            d.rtus()
        ));
    }
    out
}

fn deploy(a: DeployArgs, record: bool) -> Result<Outcome, BadInput> {
    if !quota::valid_pipeline(&a.pipeline) {
        return Err(bad(anyhow!(
            "invalid pipeline name `{}`\n  help: use 1-128 letters, digits, `-`, `_` or `.`",
            a.pipeline
        )));
    }
    let request = Deployment {
        environment: a.env,
        pipeline: a.pipeline,
        version: a.version,
        size: a.size,
        replicas: a.replicas,
    };
    let view = match a.at.at()? {
        At::Ledger { db, realm } => {
            let (r, req, who) = (realm.clone(), request.clone(), actor());
            let decision = with_store(&db, Open::Existing, async move |s| {
                if record {
                    s.deploy(&r, &req, &who).await
                } else {
                    s.what_if(&r, &req).await
                }
            })?;
            Admission::new(&realm, &request, &decision)
        }
        At::InRealm(file) => quota_realm::with_core(&file, Role::Realm, async |core, realm| {
            core.deploy(realm, &request, record).await
        })?,
    };
    match a.output {
        Format::Json => println!("{}", String::from_utf8_lossy(&view.to_json())),
        Format::Text => {
            let verb = match (view.admitted, record) {
                (true, true) => "admitted",
                (true, false) => "would be admitted",
                (false, true) => "denied",
                (false, false) => "would be denied",
            };
            let reason = view
                .reason
                .map_or(String::new(), |r| format!(" ({})", r.as_str()));
            println!(
                "{verb}{reason}: {} {} in {}, {} × {} = {} RTU; {}",
                view.pipeline,
                view.version,
                view.environment,
                view.size.as_str(),
                view.replicas,
                view.rtus_requested,
                view.detail
            );
            println!("  {}", usage_line(view.environment, &view.usage_after));
        }
    }
    Ok(if view.admitted {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}
