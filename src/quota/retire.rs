//! Retiring a realm in its enforcement core, and taking its decision log out with it: what
//! `realmctl destroy` does before the cluster the core runs in goes (`destroy.retire`), and what
//! `realmctl quota retire` runs.
//!
//! Retiring is final and safe to repeat: the core denies every later deployment with reason
//! `realm_retired`, refuses a new config, keeps its log, and answers a second retirement with
//! the first one's time. The log is read back whole (page by page from a running core, so no
//! answer outgrows what a proxy passes) into an [`Export`] the destroy stores as an artifact:
//! the realm's decisions outlive its cluster and its volume.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ledger::{Ledger, Sync};
use super::ops::{DecisionRecord, Retirement};
use super::seed::{self, Method, SeedError, Target, judge};

/// A retired realm's decision log, as the destroy keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Export {
    /// Realm.
    pub realm: String,
    /// Its retirement.
    pub retirement: Retirement,
    /// The whole log, oldest first (the retirement last).
    pub decisions: Vec<DecisionRecord>,
}

/// One page of `GET /v1/realms/{realm}/decisions`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Page {
    /// The entries, oldest first.
    pub decisions: Vec<DecisionRecord>,
    /// The `after` of the next page; `None` on the last.
    pub next: Option<i64>,
}

/// The path of a retirement.
pub fn retire_path(realm: &str) -> String {
    format!("/v1/realms/{realm}/retire")
}

/// The path of the page of the log after entry `after`.
pub fn page_path(realm: &str, after: i64) -> String {
    format!(
        "/v1/realms/{realm}/decisions?after={after}&limit={}",
        super::request::PAGE_LIMIT
    )
}

/// A quota service's answer to a retirement, judged (pure).
pub fn judge_retirement(at: &str, status: u16, text: &str) -> Result<Retirement, SeedError> {
    judge(at, status, text)?;
    serde_json::from_str(text).map_err(|e| malformed(at, status, &e))
}

/// A quota service's answer to a page of the log, judged (pure). A page whose `next` does not
/// move forward is refused, so a reader of pages always ends.
pub fn judge_page(at: &str, after: i64, status: u16, text: &str) -> Result<Page, SeedError> {
    judge(at, status, text)?;
    let page: Page = serde_json::from_str(text).map_err(|e| malformed(at, status, &e))?;
    if page.next.is_some_and(|n| n <= after) || page.decisions.iter().any(|d| d.id <= after) {
        return Err(SeedError::Rejected {
            url: at.to_owned(),
            status,
            detail: format!("the page after entry {after} goes backwards"),
        });
    }
    Ok(page)
}

fn malformed(at: &str, status: u16, e: &serde_json::Error) -> SeedError {
    SeedError::Rejected {
        url: at.to_owned(),
        status,
        detail: format!("the answer is not what the quota service sends: {e}"),
    }
}

/// Reads a realm's log page by page from a quota service, whatever carries the calls: ask
/// [`LogReader::next_path`], hand its answer to [`LogReader::take`], until there is no next path.
#[derive(Debug)]
pub struct LogReader {
    realm: String,
    at: String,
    after: Option<i64>,
    decisions: Vec<DecisionRecord>,
}

impl LogReader {
    /// A reader of `realm`'s log at the service named `at` (for errors).
    pub fn new(realm: &str, at: &str) -> Self {
        LogReader {
            realm: realm.to_owned(),
            at: at.to_owned(),
            after: Some(0),
            decisions: Vec::new(),
        }
    }

    /// The path of the next page to ask for; `None` once the last page was read.
    pub fn next_path(&self) -> Option<String> {
        self.after.map(|a| page_path(&self.realm, a))
    }

    /// The answer to [`LogReader::next_path`].
    pub fn take(&mut self, status: u16, text: &str) -> Result<(), SeedError> {
        let after = self.after.unwrap_or_default();
        let page = judge_page(&self.at, after, status, text)?;
        self.decisions.extend(page.decisions);
        self.after = page.next;
        Ok(())
    }

    /// The export, with the realm's `retirement`.
    pub fn finish(self, retirement: Retirement) -> Export {
        Export {
            realm: self.realm,
            retirement,
            decisions: self.decisions,
        }
    }
}

/// Retires `realm` at `target` (a local ledger or a running core; the realm's own core is
/// reached through its cluster by the caller) and reads its whole log back.
pub fn retire(
    target: &Target,
    realm: &str,
    actor: &str,
    limit: Duration,
) -> Result<Export, SeedError> {
    match target {
        Target::Local { db } => {
            let mut l = Ledger::open_existing(db, Sync::Full)?;
            let retirement = l.retire(realm, actor)?;
            let decisions = l.decisions(realm)?;
            Ok(Export {
                realm: realm.to_owned(),
                retirement,
                decisions,
            })
        }
        Target::Remote { url, token } => {
            let (status, text) =
                seed::remote_call(url, token, Method::Post, &retire_path(realm), None, limit)?;
            let retirement = judge_retirement(url, status, &text)?;
            let mut log = LogReader::new(realm, url);
            while let Some(path) = log.next_path() {
                let (status, text) =
                    seed::remote_call(url, token, Method::Get, &path, None, limit)?;
                log.take(status, &text)?;
            }
            Ok(log.finish(retirement))
        }
        Target::InRealm => Err(SeedError::NeedsCluster),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64) -> serde_json::Value {
        serde_json::json!({"id": id, "at": "t", "actor": "a", "action": "deploy",
                           "request": {}, "admitted": true, "reason": null, "detail": "d"})
    }

    #[test]
    fn a_page_must_move_forward() {
        let ok = serde_json::json!({"realm": "acme", "decisions": [entry(3), entry(4)], "next": 4});
        let p = judge_page("u", 2, 200, &ok.to_string()).unwrap();
        assert_eq!((p.decisions.len(), p.next), (2, Some(4)));
        let last = serde_json::json!({"decisions": [entry(5)], "next": null});
        assert_eq!(
            judge_page("u", 4, 200, &last.to_string()).unwrap().next,
            None
        );
        for bad in [
            serde_json::json!({"decisions": [entry(3)], "next": 2}),
            serde_json::json!({"decisions": [entry(2)], "next": null}),
        ] {
            let e = judge_page("u", 2, 200, &bad.to_string()).unwrap_err();
            assert!(e.to_string().contains("goes backwards"), "{e}");
        }
        assert!(matches!(
            judge_page("u", 0, 403, "{}"),
            Err(SeedError::Refused { status: 403, .. })
        ));
        assert!(judge_page("u", 0, 200, "[]").is_err());
    }

    #[test]
    fn a_retirement_answer_is_read_or_refused() {
        let r = judge_retirement(
            "u",
            200,
            r#"{"realm":"acme","retiredAt":"2026-12-06T10:00:00Z","now":false}"#,
        )
        .unwrap();
        assert_eq!(r.retired_at, "2026-12-06T10:00:00Z");
        assert!(!r.now);
        let e =
            judge_retirement("u", 404, r#"{"error":"realm `acme` is not seeded"}"#).unwrap_err();
        assert!(e.to_string().contains("not seeded"), "{e}");
        assert!(judge_retirement("u", 200, "{}").is_err());
    }

    #[test]
    fn a_local_ledger_is_retired_once_and_its_log_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let mut l = Ledger::open(&db, Sync::Full).unwrap();
        let config = crate::quota::model::RealmConfig {
            pipeline_subscriptions: 1,
            extra_test_rtus: 0,
            extra_prod_rtus: 0,
            max_replicas: 1,
            max_size: crate::quota::model::Size::Small,
        };
        l.seed("acme", config, "t").unwrap();
        drop(l);
        let t = Target::Local { db: db.clone() };
        let first = retire(&t, "acme", "destroy", Duration::from_secs(5)).unwrap();
        assert!(first.retirement.now);
        let actions: Vec<_> = first.decisions.iter().map(|d| d.action.as_str()).collect();
        assert_eq!(actions, ["seed", "retire"]);
        let again = retire(&t, "acme", "destroy", Duration::from_secs(5)).unwrap();
        assert!(!again.retirement.now);
        assert_eq!(again.retirement.retired_at, first.retirement.retired_at);
        assert_eq!(
            again.decisions, first.decisions,
            "a second retirement logs nothing"
        );
        let missing = Target::Local {
            db: dir.path().join("none.db"),
        };
        assert!(matches!(
            retire(&missing, "acme", "destroy", Duration::from_secs(5)),
            Err(SeedError::Ledger(
                crate::quota::ledger::LedgerError::Missing { .. }
            ))
        ));
    }
}
