//! The SQLite ledger's rows that more than one part of it reads or writes: a realm's config,
//! an environment's usage counters, and how SQLite errors on the ledger are named. Both the
//! ledger's operations (`ledger.rs`) and what its connection remembers (`known.rs`) use them,
//! so each statement exists once.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::model::{Deployment, Env, EnvUsage, Key, RealmConfig, Size, State, Version};
use super::ops::LedgerError;

/// Maps SQLite errors on the ledger at `path`, naming a full disk as such.
pub(super) fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> LedgerError + Copy + '_ {
    move |source| {
        if crate::fsutil::sqlite_disk_full(path.parent(), &source) {
            LedgerError::NoSpace {
                path: path.to_owned(),
            }
        } else {
            LedgerError::Sqlite {
                path: path.to_owned(),
                source,
            }
        }
    }
}

/// The realm's config; [`LedgerError::UnknownRealm`] when it is not seeded.
pub(super) fn load_config(
    tx: &Connection,
    realm: &str,
    path: &Path,
) -> Result<RealmConfig, LedgerError> {
    let row = tx
        .prepare_cached("SELECT pipeline_subscriptions, extra_test_rtus, extra_prod_rtus, max_replicas, max_size FROM realms WHERE name = ?1")
        .and_then(|mut st| st.query_row(params![realm], config_columns).optional())
        .map_err(sql_err(path))?;
    let Some(columns) = row else {
        return Err(LedgerError::UnknownRealm(realm.to_owned()));
    };
    config_from(columns, path)
}

/// When the realm was retired, if it was (it must be seeded).
pub(super) fn load_retired(
    tx: &Connection,
    realm: &str,
    path: &Path,
) -> Result<Option<String>, LedgerError> {
    tx.prepare_cached("SELECT retired_at FROM realms WHERE name = ?1")
        .and_then(|mut st| st.query_row(params![realm], |r| r.get(0)).optional())
        .map_err(sql_err(path))?
        .ok_or_else(|| LedgerError::UnknownRealm(realm.to_owned()))
}

/// A realm config as read: the first five columns of every `realms` read
/// (`pipeline_subscriptions, extra_test_rtus, extra_prod_rtus, max_replicas, max_size`).
type ConfigColumns = (i64, i64, i64, u32, String);

fn config_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConfigColumns> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn config_from(
    (subs, et, ep, max_replicas, max_size): ConfigColumns,
    path: &Path,
) -> Result<RealmConfig, LedgerError> {
    Ok(RealmConfig {
        pipeline_subscriptions: subs as u64,
        extra_test_rtus: et as u64,
        extra_prod_rtus: ep as u64,
        max_replicas,
        max_size: max_size
            .parse::<Size>()
            .map_err(|detail| LedgerError::Corrupt {
                db: path.display().to_string(),
                detail,
            })?,
    })
}

/// A realm's usage counters as stored: (environment, subscriptions used, RTUs used).
pub(super) fn load_usage(
    c: &Connection,
    realm: &str,
    path: &Path,
) -> Result<Vec<(Env, u64, u64)>, LedgerError> {
    let sql = sql_err(path);
    let mut st = c
        .prepare_cached(
            "SELECT environment, subscriptions_used, rtus_used FROM usage WHERE realm = ?1",
        )
        .map_err(sql)?;
    let rows = st
        .query_map(params![realm], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(sql)?;
    let mut usage = Vec::with_capacity(2);
    for row in rows {
        let (env, n, rtus) = row.map_err(sql)?;
        let env: Env = env.parse().map_err(|detail| LedgerError::Corrupt {
            db: path.display().to_string(),
            detail,
        })?;
        usage.push((env, n as u64, rtus as u64));
    }
    Ok(usage)
}

/// Stores an environment's usage counters (kept in the same transaction as the deployments).
pub(super) fn store_usage(
    tx: &Connection,
    realm: &str,
    env: Env,
    u: &EnvUsage,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "INSERT INTO usage (realm, environment, subscriptions_used, rtus_used) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(realm, environment) DO UPDATE SET subscriptions_used = excluded.subscriptions_used, rtus_used = excluded.rtus_used",
    )?
    .execute(params![realm, env.as_str(), u.subscriptions_used as i64, u.rtus_used as i64])
}

/// A realm's active deployments.
pub(super) fn load_state(tx: &Connection, realm: &str, path: &Path) -> Result<State, LedgerError> {
    let sql = sql_err(path);
    let mut stmt = tx.prepare_cached("SELECT environment, pipeline, major, minor, size, replicas FROM deployments WHERE realm = ?1").map_err(sql)?;
    let rows = stmt
        .query_map(params![realm], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, u32>(5)?,
            ))
        })
        .map_err(sql)?;
    let mut state = State::new();
    for row in rows {
        let (env, pipeline, major, minor, size, replicas) = row.map_err(sql)?;
        let corrupt = |detail: String| LedgerError::Corrupt {
            db: path.display().to_string(),
            detail,
        };
        let d = Deployment {
            environment: env.parse().map_err(corrupt)?,
            pipeline,
            version: Version { major, minor },
            size: size.parse().map_err(corrupt)?,
            replicas,
        };
        state.insert(d.key(), d);
    }
    Ok(state)
}

/// Records `d` as the active version of its (environment, pipeline, major), deployed `at`.
pub(super) fn store_deployment(
    c: &Connection,
    realm: &str,
    d: &Deployment,
    at: &str,
) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "INSERT INTO deployments (realm, environment, pipeline, major, minor, size, replicas, rtus, deployed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(realm, environment, pipeline, major) DO UPDATE SET minor = excluded.minor,
           size = excluded.size, replicas = excluded.replicas, rtus = excluded.rtus, deployed_at = excluded.deployed_at",
    )?
    .execute(params![realm, d.environment.as_str(), d.pipeline, d.version.major, d.version.minor, d.size.as_str(), d.replicas, d.rtus() as i64, at])
}

/// Removes the active version of `key`, if any.
pub(super) fn remove_deployment(c: &Connection, realm: &str, key: &Key) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "DELETE FROM deployments WHERE realm = ?1 AND environment = ?2 AND pipeline = ?3 AND major = ?4",
    )?
    .execute(params![realm, key.environment.as_str(), key.pipeline, key.major])
}

/// Every row `sql` returns, each as its values' debug text joined by `sep` (tests compare
/// whole tables with it).
#[cfg(test)]
pub(super) fn rows_as_text(c: &Connection, sql: &str, sep: &str) -> Vec<String> {
    let mut st = c.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        Ok((0..n)
            .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
            .collect::<Vec<_>>()
            .join(sep))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}
