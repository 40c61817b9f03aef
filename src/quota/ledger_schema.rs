//! The SQLite ledger's schema as numbered migrations: `MIGRATIONS[i]` takes a ledger from
//! version `i` to `i + 1` (`PRAGMA user_version`); a new ledger runs them all. A migration is
//! never edited once released — a change is a new one.
//!
//! Version 2 exists for speed (issue #21): SQLite evaluates `size IN ('small', 'medium',
//! 'large')` in a `CHECK` constraint by building a temporary B-tree (`OpenEphemeral`) on every
//! insert and update (a two-item list it turns into comparisons itself), which was the largest
//! single cost of an admission in the writer thread. The same rule written as `size = 'small'
//! OR …` is plain comparisons. `deployments` (written by every admission) is rebuilt with it;
//! `realms` changes only on a seed and keeps its form.

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1: the first schema.
const V1: &str = r#"
CREATE TABLE IF NOT EXISTS realms (
    name TEXT PRIMARY KEY,
    pipeline_subscriptions INTEGER NOT NULL CHECK (pipeline_subscriptions >= 0),
    extra_test_rtus INTEGER NOT NULL CHECK (extra_test_rtus >= 0),
    extra_prod_rtus INTEGER NOT NULL CHECK (extra_prod_rtus >= 0),
    max_replicas INTEGER NOT NULL CHECK (max_replicas >= 1),
    max_size TEXT NOT NULL CHECK (max_size IN ('small','medium','large')),
    updated_at TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS deployments (
    realm TEXT NOT NULL REFERENCES realms(name),
    environment TEXT NOT NULL CHECK (environment IN ('test','prod')),
    pipeline TEXT NOT NULL,
    major INTEGER NOT NULL CHECK (major >= 1),
    minor INTEGER NOT NULL CHECK (minor >= 0),
    size TEXT NOT NULL CHECK (size IN ('small','medium','large')),
    replicas INTEGER NOT NULL CHECK (replicas >= 1),
    rtus INTEGER NOT NULL CHECK (rtus >= 1),
    deployed_at TEXT NOT NULL,
    PRIMARY KEY (realm, environment, pipeline, major)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (
    realm TEXT NOT NULL REFERENCES realms(name),
    environment TEXT NOT NULL CHECK (environment IN ('test','prod')),
    subscriptions_used INTEGER NOT NULL CHECK (subscriptions_used >= 0),
    rtus_used INTEGER NOT NULL CHECK (rtus_used >= 0),
    PRIMARY KEY (realm, environment)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    realm TEXT NOT NULL,
    action TEXT NOT NULL,
    request TEXT NOT NULL,
    admitted INTEGER NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL,
    usage_before TEXT,
    usage_after TEXT
) STRICT;
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
"#;

/// Version 2: `deployments`' `CHECK` constraints without `IN` lists (see the module docs);
/// rows are copied as they are.
const V2: &str = r#"
CREATE TABLE deployments_v2 (
    realm TEXT NOT NULL REFERENCES realms(name),
    environment TEXT NOT NULL CHECK (environment = 'test' OR environment = 'prod'),
    pipeline TEXT NOT NULL,
    major INTEGER NOT NULL CHECK (major >= 1),
    minor INTEGER NOT NULL CHECK (minor >= 0),
    size TEXT NOT NULL CHECK (size = 'small' OR size = 'medium' OR size = 'large'),
    replicas INTEGER NOT NULL CHECK (replicas >= 1),
    rtus INTEGER NOT NULL CHECK (rtus >= 1),
    deployed_at TEXT NOT NULL,
    PRIMARY KEY (realm, environment, pipeline, major)
) STRICT, WITHOUT ROWID;
INSERT INTO deployments_v2 (realm, environment, pipeline, major, minor, size, replicas, rtus, deployed_at)
    SELECT realm, environment, pipeline, major, minor, size, replicas, rtus, deployed_at FROM deployments;
DROP TABLE deployments;
ALTER TABLE deployments_v2 RENAME TO deployments;
"#;

/// Version 3: the decision log becomes what admissions write (issue #21). An admission writes
/// its decision-log row only; `deployments` and `usage` are folded in from the log behind it
/// (`known.rs`), and `folded.through` names the last decision they include. An existing ledger
/// is fully folded: its tables already hold everything.
const V3: &str = r#"
CREATE TABLE folded (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    through INTEGER NOT NULL CHECK (through >= 0)
) STRICT;
INSERT INTO folded (one, through) VALUES (1, (SELECT coalesce(max(id), 0) FROM decisions));
"#;

/// Version 4: a realm can be retired (`realmctl destroy`, issue #20): `retired_at` is set once
/// and never cleared; a retired realm admits nothing and its config is final.
const V4: &str = r#"
ALTER TABLE realms ADD COLUMN retired_at TEXT;
"#;

/// Every migration, in order.
pub const MIGRATIONS: [&str; 4] = [V1, V2, V3, V4];

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn at(version: usize) -> Connection {
        let c = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..version] {
            c.execute_batch(sql).unwrap();
        }
        c
    }

    /// The point of version 2: an admission's writes build no temporary B-tree (they did at
    /// version 1), and the rules still refuse what they refused.
    #[test]
    fn admission_writes_build_no_temporary_btree_and_keep_their_rules() {
        let ephemeral = |c: &Connection, sql: &str| {
            let mut st = c.prepare(&format!("EXPLAIN {sql}")).unwrap();
            let unbound = vec![rusqlite::types::Null; st.parameter_count()];
            let ops: Vec<String> = st
                .query_map(rusqlite::params_from_iter(unbound), |r| {
                    r.get::<_, String>(1)
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            ops.iter().filter(|o| *o == "OpenEphemeral").count()
        };
        // The statement the ledger runs (`deploy_in`), with its parameters.
        let deploy = "INSERT INTO deployments (realm, environment, pipeline, major, minor, size, replicas, rtus, deployed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(realm, environment, pipeline, major) DO UPDATE SET minor = excluded.minor,
               size = excluded.size, replicas = excluded.replicas, rtus = excluded.rtus, deployed_at = excluded.deployed_at";
        let (v1, v2) = (at(1), at(2));
        assert!(ephemeral(&v1, deploy) > 0);
        assert_eq!(ephemeral(&v2, deploy), 0);
        v2.execute_batch("PRAGMA foreign_keys = ON; INSERT INTO realms VALUES ('acme', 1, 0, 0, 1, 'small', 'now')")
            .unwrap();
        let row = |env: &str, size: &str, realm: &str| {
            v2.execute(
                deploy,
                rusqlite::params![realm, env, "p", 1, 0, size, 1, 1, "now"],
            )
        };
        row("prod", "small", "acme").unwrap();
        row("test", "large", "acme").unwrap();
        for (env, size, realm) in [
            ("staging", "small", "acme"),
            ("prod", "huge", "acme"),
            ("prod", "Small", "acme"),
            ("prod", "small", "other"),
        ] {
            assert!(row(env, size, realm).is_err(), "{env} {size} {realm}");
        }
    }

    /// A version-3 ledger keeps its realms through version 4, none of them retired; a
    /// retirement is then a value of the realm's row.
    #[test]
    fn version_4_keeps_every_realm_live() {
        let c = at(3);
        c.execute_batch("INSERT INTO realms VALUES ('acme', 3, 0, 0, 2, 'large', 'now');")
            .unwrap();
        c.execute_batch(MIGRATIONS[3]).unwrap();
        let row = |c: &Connection| -> (i64, Option<String>) {
            c.query_row(
                "SELECT pipeline_subscriptions, retired_at FROM realms WHERE name = 'acme'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
        };
        assert_eq!(row(&c), (3, None));
        c.execute_batch("UPDATE realms SET retired_at = 'then' WHERE name = 'acme'")
            .unwrap();
        assert_eq!(row(&c), (3, Some("then".into())));
    }

    /// A version-1 ledger keeps every row through version 2.
    #[test]
    fn version_2_keeps_every_row() {
        let c = at(1);
        c.execute_batch(
            "INSERT INTO realms VALUES ('acme', 3, 0, 0, 2, 'large', 'now');
             INSERT INTO deployments VALUES ('acme', 'prod', 'a', 1, 2, 'medium', 2, 4, 'then');
             INSERT INTO deployments VALUES ('acme', 'test', 'b', 3, 0, 'small', 1, 1, 'then');
             INSERT INTO usage VALUES ('acme', 'prod', 1, 4), ('acme', 'test', 1, 1);",
        )
        .unwrap();
        let dump = |c: &Connection| {
            let rows = |sql: &str| crate::quota::ledger_rows::rows_as_text(c, sql, "|");
            (
                rows("SELECT * FROM deployments ORDER BY 1, 2, 3, 4"),
                rows("SELECT * FROM usage ORDER BY 1, 2"),
                rows("SELECT * FROM realms"),
            )
        };
        let before = dump(&c);
        c.execute_batch(MIGRATIONS[1]).unwrap();
        assert_eq!(dump(&c), before);
        assert_eq!(before.0.len(), 2);
    }
}
