//! The PostgreSQL schema, as numbered migrations, and the rules for applying them.
//!
//! `realmctl_schema` records each applied version. Migrations run in one transaction under a
//! fixed advisory lock, so replicas starting together apply each migration exactly once; a
//! database at a newer version than this build knows is refused, never downgraded or used.
//! Same semantics as the SQLite schema: realm configs, active deployments, per-environment
//! usage counters kept in the same transaction as the deployments, and an append-only decision
//! log (triggers refuse UPDATE, DELETE and TRUNCATE).

/// Numbered migrations, oldest first; the last number is the version this build needs.
pub const MIGRATIONS: &[(i64, &str)] = &[(1, V1), (2, V2)];

/// The schema version this build needs.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Advisory-lock key taken by every migration (any fixed number; this is "realmctl" in ASCII).
pub const MIGRATION_LOCK: i64 = 0x7265_616c_6d63_746c;

/// The version table (created before anything else, idempotently).
pub const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS realmctl_schema (
    version BIGINT PRIMARY KEY,
    applied_at TEXT NOT NULL
)";

/// What to do about a database at schema version `found` (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing: it is current.
    Current,
    /// Apply the migrations after `found`.
    Apply {
        /// Version found.
        from: i64,
    },
    /// Refuse: written by a newer realmctl.
    Newer {
        /// Version found.
        found: i64,
    },
}

/// Decides what to do with a database at `found` when this build knows `known`.
pub fn plan(found: i64, known: i64) -> Plan {
    match found.cmp(&known) {
        std::cmp::Ordering::Equal => Plan::Current,
        std::cmp::Ordering::Less => Plan::Apply { from: found },
        std::cmp::Ordering::Greater => Plan::Newer { found },
    }
}

const V1: &str = r#"
CREATE TABLE realms (
    name TEXT PRIMARY KEY,
    pipeline_subscriptions BIGINT NOT NULL CHECK (pipeline_subscriptions >= 0),
    extra_test_rtus BIGINT NOT NULL CHECK (extra_test_rtus >= 0),
    extra_prod_rtus BIGINT NOT NULL CHECK (extra_prod_rtus >= 0),
    max_replicas BIGINT NOT NULL CHECK (max_replicas >= 1),
    max_size TEXT NOT NULL CHECK (max_size IN ('small','medium','large')),
    updated_at TEXT NOT NULL
);
CREATE TABLE deployments (
    realm TEXT NOT NULL REFERENCES realms(name),
    environment TEXT NOT NULL CHECK (environment IN ('test','prod')),
    pipeline TEXT NOT NULL,
    major BIGINT NOT NULL CHECK (major >= 1),
    minor BIGINT NOT NULL CHECK (minor >= 0),
    size TEXT NOT NULL CHECK (size IN ('small','medium','large')),
    replicas BIGINT NOT NULL CHECK (replicas >= 1),
    rtus BIGINT NOT NULL CHECK (rtus >= 1),
    deployed_at TEXT NOT NULL,
    PRIMARY KEY (realm, environment, pipeline, major)
);
CREATE TABLE usage (
    realm TEXT NOT NULL REFERENCES realms(name),
    environment TEXT NOT NULL CHECK (environment IN ('test','prod')),
    subscriptions_used BIGINT NOT NULL CHECK (subscriptions_used >= 0),
    rtus_used BIGINT NOT NULL CHECK (rtus_used >= 0),
    PRIMARY KEY (realm, environment)
);
CREATE TABLE decisions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    realm TEXT NOT NULL,
    action TEXT NOT NULL,
    request TEXT NOT NULL,
    admitted BOOLEAN NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL,
    usage_before TEXT,
    usage_after TEXT
);
CREATE INDEX decisions_by_realm ON decisions (realm, id);
CREATE FUNCTION realmctl_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the decision log is append-only';
END
$$;
CREATE TRIGGER decisions_no_change BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION realmctl_append_only();
CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions
    FOR EACH STATEMENT EXECUTE FUNCTION realmctl_append_only();
"#;

/// Version 2: a realm can be retired (`realmctl destroy`, issue #20): `retired_at` is set once
/// and never cleared; a retired realm admits nothing and its config is final.
const V2: &str = r#"
ALTER TABLE realms ADD COLUMN retired_at TEXT;
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbered_one_up_from_one() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v, i as i64 + 1);
        }
        assert_eq!(latest(), MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_newer_schema_is_refused_and_an_older_one_migrated() {
        assert_eq!(plan(1, 1), Plan::Current);
        assert_eq!(plan(0, 1), Plan::Apply { from: 0 });
        assert_eq!(plan(3, 2), Plan::Newer { found: 3 });
    }
}
