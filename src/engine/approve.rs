//! `approve`: records an approval in the journal, either by someone who holds the state
//! ([`approve`]) or from a customer's statement signed offline ([`import_approval`]).
//!
//! Both ask the journal's state what the phase waits for ([`state::approval_subject`]: the
//! digest of its outputs and the definition they render) and record exactly that; an import is
//! accepted only when the customer's statement names that very realm, phase, document and
//! definition ([`offline::judge`]), and keeps the statement in the record.

use std::sync::Arc;

use super::io::journal::{Durability, Journal};
use super::io::state::StateRef;
use super::model::event::Event;
use super::model::offline::{self, SignedStatement, Waiting};
use super::model::state::{self, Approval, State};
use super::run::{EngineError, load_state};
use crate::signing::{PublicKey, SigningKey};

/// Records an approval of `phase` by `by`, signed with `key` when given.
pub fn approve(
    dir: &StateRef,
    phase: u8,
    by: &str,
    note: Option<&str>,
    now: ::time::OffsetDateTime,
    key: Option<Arc<SigningKey>>,
) -> Result<Approval, EngineError> {
    let (mut journal, state) = open(dir, key)?;
    let (covers, definition) = subject(dir, &state, phase)?;
    let approval = Approver {
        phase,
        by: by.to_owned(),
        note: note.map(str::to_owned),
        covers,
        definition,
        customer: None,
    };
    approval.record(&mut journal, now)
}

/// Records the approval a customer signed offline (`approve --offline`), once the statement's
/// signature verifies under `customer` (the customer's public key the operator holds) and it
/// approves exactly what the phase waits for; `phase`, when given, must be the statement's.
/// The operator's record is signed with `key` when given; the customer's statement is kept in
/// it verbatim.
pub fn import_approval(
    dir: &StateRef,
    phase: Option<u8>,
    signed: SignedStatement,
    customer: &PublicKey,
    now: ::time::OffsetDateTime,
    key: Option<Arc<SigningKey>>,
) -> Result<Approval, EngineError> {
    let statement = signed.open(customer)?;
    if let Some(asked) = phase.filter(|p| *p != statement.phase) {
        return Err(offline::OfflineError::OtherPhase {
            statement: statement.phase,
            asked,
        }
        .into());
    }
    let (mut journal, state) = open(dir, key)?;
    let (covers, definition) = subject(dir, &state, statement.phase)?;
    let playbook = state.playbook.as_ref().expect("subject checked the run");
    let p = playbook
        .phases
        .iter()
        .find(|p| p.number == statement.phase)
        .expect("subject checked the phase");
    let artifacts = state::phase_artifacts(p, &state);
    let waiting = Waiting {
        realm: state.subject.as_ref().map_or("", |s| s.realm.as_str()),
        phase: statement.phase,
        definition: definition.as_deref(),
        artifacts: &artifacts,
    };
    offline::judge(&statement, &waiting)?;
    let approval = Approver {
        phase: statement.phase,
        by: statement.by,
        note: statement.note,
        covers,
        definition,
        customer: Some(Box::new(signed)),
    };
    approval.record(&mut journal, now)
}

/// The journal of `dir`, signing with `key`, and its state.
fn open(dir: &StateRef, key: Option<Arc<SigningKey>>) -> Result<(Journal, State), EngineError> {
    let mut journal = Journal::open(dir)?;
    journal.sign_with(key);
    let state = load_state(&journal)?;
    Ok((journal, state))
}

/// What an approval of `phase` covers now, and the definition it lets phase 6 build.
fn subject(
    dir: &StateRef,
    state: &State,
    phase: u8,
) -> Result<(String, Option<String>), EngineError> {
    let playbook = state.playbook.as_ref().ok_or_else(|| EngineError::NoRun {
        at: dir.to_string(),
    })?;
    Ok(state::approval_subject(playbook, state, phase)?)
}

/// One approval about to be recorded.
struct Approver {
    phase: u8,
    by: String,
    note: Option<String>,
    covers: String,
    definition: Option<String>,
    customer: Option<Box<SignedStatement>>,
}

impl Approver {
    /// Appends the approval (fsync'd before this returns).
    fn record(
        self,
        journal: &mut Journal,
        now: ::time::OffsetDateTime,
    ) -> Result<Approval, EngineError> {
        let customer_key = self.customer.as_ref().map(|c| c.key.clone());
        let rec = journal.append(
            &Event::Approved {
                phase: self.phase,
                by: self.by.clone(),
                note: self.note.clone(),
                covers: self.covers.clone(),
                definition: self.definition.clone(),
                customer: self.customer,
            },
            now,
            Durability::Sync,
        )?;
        Ok(Approval {
            phase: self.phase,
            by: self.by,
            note: self.note,
            covers: self.covers,
            definition: self.definition,
            customer_key,
            at: rec.at,
            seq: rec.seq,
        })
    }
}
