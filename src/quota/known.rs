//! What the SQLite ledger's connection already knows: each realm's config, its usage counters
//! and the active deployments it has looked up — so an admission decides without reading.
//!
//! Why: on SQLite every admission runs in the one writer thread, so whatever it costs there
//! bounds the whole service (issue #21: the fact read, the usage upsert and the decision-log
//! row were most of an admission's writer time). The facts themselves change only through
//! this connection's own writes, which update them here as they are made — unless another
//! connection (`realmctl quota deploy --db`, a second process) commits. SQLite tells exactly
//! that: `PRAGMA data_version` changes when, and only when, another connection has committed
//! (<https://sqlite.org/pragma.html#pragma_data_version>). So what is known is revalidated
//! under the write lock, once per transaction ([`Known::open`]): a changed version forgets
//! everything and the facts are read again.
//!
//! Changes made inside a transaction are kept only when it commits ([`Known::committed`]);
//! a transaction that fails or is rolled back leaves what is known marked stale, and the next
//! [`Known::open`] forgets it. Usage counters changed by admissions are written back once per
//! transaction ([`Known::flush`]) — before the commit and before any operation that reads the
//! tables itself — instead of once per admission; the counters on disk are therefore exactly
//! those of the committed deployments, as before.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::ledger_rows::{load_config, sql_err, store_usage};
use super::model::{self, Deployment, Env, EnvUsage, RealmConfig, Size, Version};
use super::ops::LedgerError;

/// Deployments remembered per realm (present or known absent) before they are forgotten and
/// read again on demand: bounds memory however many pipelines a realm runs.
const MAX_REMEMBERED: usize = 65_536;

/// The active version of one (environment, pipeline, major).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Active {
    minor: u32,
    size: Size,
    replicas: u32,
}

/// What is known about one realm.
#[derive(Debug)]
struct Realm {
    config: RealmConfig,
    /// (subscriptions used, RTUs used) per environment ([`slot`]).
    usage: [(u64, u64); 2],
    /// Usage changed here and not yet written back, per environment.
    dirty: [bool; 2],
    /// (environment, major) → pipeline → its active version, `None` when known absent.
    deployments: HashMap<(Env, u32), HashMap<String, Option<Active>>>,
    remembered: usize,
}

/// The connection's knowledge; see the module docs.
#[derive(Debug, Default)]
pub(super) struct Known {
    /// `data_version` at the last commit of this connection; `None` while a transaction is
    /// open (or after one failed): stale until proven otherwise.
    valid_at: Option<i64>,
    /// `data_version` read when the open transaction began.
    pending: i64,
    realms: HashMap<String, Realm>,
}

fn slot(env: Env) -> usize {
    match env {
        Env::Test => 0,
        Env::Prod => 1,
    }
}

impl Known {
    /// Called first in every transaction: keeps what is known only if no other connection has
    /// committed since this one last did.
    pub(super) fn open(&mut self, c: &Connection, path: &Path) -> Result<(), LedgerError> {
        let version: i64 = c
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(sql_err(path))?;
        if self.valid_at != Some(version) {
            self.realms.clear();
        }
        self.valid_at = None;
        self.pending = version;
        Ok(())
    }

    /// The transaction committed: what is known now is what is on disk.
    pub(super) fn committed(&mut self) {
        debug_assert!(self.realms.values().all(|r| r.dirty == [false; 2]));
        self.valid_at = Some(self.pending);
    }

    /// The realm's config and the facts an admission of `request` needs.
    pub(super) fn facts(
        &mut self,
        c: &Connection,
        path: &Path,
        realm: &str,
        request: &Deployment,
    ) -> Result<(RealmConfig, model::Facts), LedgerError> {
        let known = self.realm(c, path, realm)?;
        let (subscriptions_used, rtus_used) = known.usage[slot(request.environment)];
        let config = known.config;
        let by_key = known
            .deployments
            .entry((request.environment, request.version.major))
            .or_default();
        let active = match by_key.get(request.pipeline.as_str()) {
            Some(a) => *a,
            None => {
                let a = read_active(c, path, realm, request)?;
                by_key.insert(request.pipeline.clone(), a);
                known.remembered += 1;
                a
            }
        };
        if known.remembered > MAX_REMEMBERED {
            known.deployments.clear();
            known.remembered = 0;
        }
        let existing = active.map(|a| Deployment {
            environment: request.environment,
            pipeline: request.pipeline.clone(),
            version: Version {
                major: request.version.major,
                minor: a.minor,
            },
            size: a.size,
            replicas: a.replicas,
        });
        Ok((
            config,
            model::Facts {
                subscriptions_used,
                rtus_used,
                existing,
            },
        ))
    }

    /// `request` was admitted (and written): it is now the active version of its key and the
    /// environment's usage is `after` (absolute counters, to be written at the next flush).
    pub(super) fn admitted(
        &mut self,
        c: &Connection,
        path: &Path,
        realm: &str,
        request: &Deployment,
        after: &EnvUsage,
    ) -> Result<(), LedgerError> {
        let known = self.realm(c, path, realm)?;
        let env = slot(request.environment);
        known.usage[env] = (after.subscriptions_used, after.rtus_used);
        known.dirty[env] = true;
        let active = Active {
            minor: request.version.minor,
            size: request.size,
            replicas: request.replicas,
        };
        known
            .deployments
            .entry((request.environment, request.version.major))
            .or_default()
            .insert(request.pipeline.clone(), Some(active));
        Ok(())
    }

    /// Writes back every usage counter changed since the last flush.
    pub(super) fn flush(&mut self, c: &Connection) -> rusqlite::Result<()> {
        for (name, known) in &mut self.realms {
            for env in Env::ALL {
                let i = slot(env);
                if known.dirty[i] {
                    let (subscriptions_used, rtus_used) = known.usage[i];
                    let usage = EnvUsage {
                        subscriptions_used,
                        subscriptions_total: 0,
                        rtus_used,
                        rtus_total: 0,
                    };
                    store_usage(c, name, env, &usage)?;
                    known.dirty[i] = false;
                }
            }
        }
        Ok(())
    }

    /// Forgets a realm (its config or deployments were changed by SQL directly: a seed, an
    /// undeploy). Flush first.
    pub(super) fn forget(&mut self, realm: &str) {
        self.realms.remove(realm);
    }

    fn realm(
        &mut self,
        c: &Connection,
        path: &Path,
        realm: &str,
    ) -> Result<&mut Realm, LedgerError> {
        if !self.realms.contains_key(realm) {
            let config = load_config(c, realm, path)?;
            let mut usage = [(0, 0); 2];
            let mut st = c
                .prepare_cached(
                    "SELECT environment, subscriptions_used, rtus_used FROM usage WHERE realm = ?1",
                )
                .map_err(sql_err(path))?;
            let rows = st
                .query_map(params![realm], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(sql_err(path))?;
            for row in rows {
                let (env, n, rtus) = row.map_err(sql_err(path))?;
                let env: Env = env.parse().map_err(|detail| LedgerError::Corrupt {
                    db: path.display().to_string(),
                    detail,
                })?;
                usage[slot(env)] = (n as u64, rtus as u64);
            }
            let known = Realm {
                config,
                usage,
                dirty: [false; 2],
                deployments: HashMap::new(),
                remembered: 0,
            };
            self.realms.insert(realm.to_owned(), known);
        }
        Ok(self.realms.get_mut(realm).expect("inserted above"))
    }
}

/// The active version of the request's (environment, pipeline, major), read by primary key.
fn read_active(
    c: &Connection,
    path: &Path,
    realm: &str,
    request: &Deployment,
) -> Result<Option<Active>, LedgerError> {
    let row: Option<(u32, String, u32)> = c
        .prepare_cached(
            "SELECT minor, size, replicas FROM deployments
             WHERE realm = ?1 AND environment = ?2 AND pipeline = ?3 AND major = ?4",
        )
        .and_then(|mut st| {
            st.query_row(
                params![
                    realm,
                    request.environment.as_str(),
                    request.pipeline,
                    request.version.major
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })
        .map_err(sql_err(path))?;
    row.map(|(minor, size, replicas)| {
        Ok(Active {
            minor,
            size: size.parse().map_err(|detail| LedgerError::Corrupt {
                db: path.display().to_string(),
                detail,
            })?,
            replicas,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::ledger::{Ledger, Sync};

    fn dep(p: &str) -> Deployment {
        Deployment {
            environment: Env::Prod,
            pipeline: p.into(),
            version: Version { major: 1, minor: 0 },
            size: Size::Small,
            replicas: 1,
        }
    }

    fn after(n: u64) -> EnvUsage {
        EnvUsage {
            subscriptions_used: n,
            subscriptions_total: 2,
            rtus_used: n,
            rtus_total: 4,
        }
    }

    /// An admission remembered in a transaction that never committed is forgotten by the next
    /// one; one that committed is kept (and nothing is read again).
    #[test]
    fn only_committed_admissions_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let config = RealmConfig {
            pipeline_subscriptions: 2,
            extra_test_rtus: 0,
            extra_prod_rtus: 0,
            max_replicas: 1,
            max_size: Size::Small,
        };
        Ledger::open(&path, Sync::Normal)
            .unwrap()
            .seed("acme", config, "t")
            .unwrap();
        let mut c = Connection::open(&path).unwrap();
        let mut known = Known::default();

        let tx = c.transaction().unwrap();
        known.open(&tx, &path).unwrap();
        assert_eq!(
            known
                .facts(&tx, &path, "acme", &dep("a"))
                .unwrap()
                .1
                .subscriptions_used,
            0
        );
        known
            .admitted(&tx, &path, "acme", &dep("a"), &after(1))
            .unwrap();
        drop(tx); // rolled back: never committed

        let tx = c.transaction().unwrap();
        known.open(&tx, &path).unwrap();
        assert!(
            known.realms.is_empty(),
            "a rolled-back admission is forgotten"
        );
        let (_, facts) = known.facts(&tx, &path, "acme", &dep("a")).unwrap();
        assert_eq!((facts.subscriptions_used, facts.existing), (0, None));
        known
            .admitted(&tx, &path, "acme", &dep("a"), &after(1))
            .unwrap();
        known.flush(&tx).unwrap();
        tx.commit().unwrap();
        known.committed();

        let tx = c.transaction().unwrap();
        known.open(&tx, &path).unwrap();
        assert!(
            known.realms.contains_key("acme"),
            "kept across its own commit"
        );
        let (_, facts) = known.facts(&tx, &path, "acme", &dep("a")).unwrap();
        assert_eq!(facts.subscriptions_used, 1);
        assert_eq!(facts.existing, Some(dep("a")));
    }
}
