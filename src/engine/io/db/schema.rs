//! The install state's tables in PostgreSQL, created once under a migration lock.
//!
//! `realmctl_journal` holds every realm's records (the same columns as a folder's
//! `journal.db`, plus the fencing token each append carried); `realmctl_lease` one row per
//! realm (its holder, its fencing token, when it expires, by the database's clock);
//! `realmctl_artifacts` the rendered files. Triggers make the journal append-only for every
//! role, the owner included, and refuse an append whose fencing token is not the realm's
//! current lease; [`grants`] gives an install role only SELECT and INSERT on the journal.

use tokio_postgres::Client;

/// The schema version this realmctl writes.
pub const VERSION: i32 = 1;

/// Version 1.
pub const SCHEMA: &str = r#"
CREATE TABLE realmctl_journal (
  realm text NOT NULL,
  seq bigint NOT NULL CHECK (seq > 0),
  at text NOT NULL,
  kind text NOT NULL,
  payload text NOT NULL,
  prev text NOT NULL,
  hash text NOT NULL,
  signer text,
  sig text,
  fence bigint,
  PRIMARY KEY (realm, seq)
);
CREATE INDEX realmctl_journal_kind ON realmctl_journal (realm, kind, seq);
CREATE TABLE realmctl_lease (
  realm text PRIMARY KEY,
  fence bigint NOT NULL DEFAULT 0,
  lock_id text,
  holder text,
  since timestamptz,
  expires timestamptz
);
CREATE TABLE realmctl_artifacts (
  realm text NOT NULL,
  location text NOT NULL,
  bytes bytea NOT NULL,
  PRIMARY KEY (realm, location)
);
CREATE FUNCTION realmctl_journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the journal is append-only' USING ERRCODE = 'RJ001';
END $$;
CREATE TRIGGER realmctl_journal_no_change BEFORE UPDATE OR DELETE ON realmctl_journal
  FOR EACH ROW EXECUTE FUNCTION realmctl_journal_append_only();
CREATE TRIGGER realmctl_journal_no_truncate BEFORE TRUNCATE ON realmctl_journal
  FOR EACH STATEMENT EXECUTE FUNCTION realmctl_journal_append_only();
CREATE FUNCTION realmctl_journal_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  current bigint;
  held text;
BEGIN
  -- Approvals and reveals are written by people, not by the lease holder.
  IF NEW.fence IS NULL AND NEW.kind IN ('approved', 'secretRevealed') THEN
    RETURN NEW;
  END IF;
  SELECT fence, lock_id INTO current, held FROM realmctl_lease WHERE realm = NEW.realm;
  IF held IS NULL OR NEW.fence IS DISTINCT FROM current THEN
    RAISE EXCEPTION 'stale fencing token % for realm % (the lease is at %)',
      NEW.fence, NEW.realm, current USING ERRCODE = 'RJ002';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER realmctl_journal_fenced BEFORE INSERT ON realmctl_journal
  FOR EACH ROW EXECUTE FUNCTION realmctl_journal_fence();
"#;

/// Creates the schema when the database has none; returns the version found (or made).
pub async fn migrate(c: &mut Client) -> Result<i32, tokio_postgres::Error> {
    // Read first: an install role may read the schema but not create anything in it (even
    // `CREATE TABLE IF NOT EXISTS` needs the right to create).
    let made: bool = c
        .query_one(
            "SELECT to_regclass('realmctl_state_schema') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if made {
        let found: i32 = c
            .query_one(
                "SELECT coalesce(max(version), 0) FROM realmctl_state_schema",
                &[],
            )
            .await?
            .get(0);
        if found >= VERSION {
            return Ok(found);
        }
    }
    let tx = c.transaction().await?;
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('realmctl_state_schema', 0));
         CREATE TABLE IF NOT EXISTS realmctl_state_schema (version int PRIMARY KEY);",
    )
    .await?;
    let found: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM realmctl_state_schema",
            &[],
        )
        .await?
        .get(0);
    if found == 0 {
        tx.batch_execute(SCHEMA).await?;
        tx.execute(
            "INSERT INTO realmctl_state_schema (version) VALUES ($1)",
            &[&VERSION],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(if found == 0 { VERSION } else { found })
}

/// The statements giving `role` an install's rights (its name quoted as an identifier).
pub fn grants(role: &str) -> String {
    let r = format!("\"{}\"", role.replace('"', "\"\""));
    format!(
        "GRANT SELECT ON realmctl_state_schema TO {r};
         GRANT SELECT, INSERT ON realmctl_journal TO {r};
         GRANT SELECT, INSERT, UPDATE ON realmctl_lease TO {r};
         GRANT SELECT, INSERT ON realmctl_artifacts TO {r};"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_name_is_quoted_as_an_identifier() {
        let g = grants("in\"staller; DROP TABLE x");
        assert!(g.contains("TO \"in\"\"staller; DROP TABLE x\";"), "{g}");
        assert!(!g.contains("UPDATE ON realmctl_journal") && !g.contains("DELETE"));
    }
}
