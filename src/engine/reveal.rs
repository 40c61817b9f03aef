//! `realmctl vpn reveal-key`: the one-time reveal of the realm VPN's pre-shared key (issue #23).
//!
//! The key lives only in the cloud's secret store. The customer receives it through the store's
//! own sharing, or once through this: the key is read with the operator's cloud credentials,
//! the journal records — signed like every record — that it was revealed, which secret and to
//! whom (never the key), and only then is it handed back to be printed. A second reveal is
//! refused and names the first. The journal is read and verified before anything is trusted.

use std::sync::Arc;

use time::OffsetDateTime;

use super::actions::Action;
use super::io::journal::{Durability, Journal, JournalError};
use super::model::event::Event;
use super::model::state::StepStatus;
use super::run::load_state;
use crate::cloud::{Cloud, CloudError};
use crate::secret::Secret;
use crate::signing::SigningKey;
use crate::spec::Spec;

/// Why the key was not revealed.
#[derive(Debug, thiserror::Error)]
pub enum RevealError {
    /// The journal.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The state folder is another realm's.
    #[error("the state {at} belongs to realm `{state}`, but the spec is for realm `{spec}`")]
    RealmMismatch {
        /// The state.
        at: String,
        /// Its realm.
        state: String,
        /// The spec's.
        spec: String,
    },
    /// The spec has no VPN.
    #[error("realm `{realm}` has no VPN in its spec (vpn.enabled is false)")]
    NoVpn {
        /// The realm.
        realm: String,
    },
    /// The VPN is not built.
    #[error(
        "the realm VPN of `{realm}` is not built yet, so there is no key to reveal\n  help: run `realmctl install` until its step vpn.apply has succeeded"
    )]
    NotBuilt {
        /// The realm.
        realm: String,
    },
    /// Already revealed once.
    #[error(
        "the pre-shared key `{secret}` was already revealed to {by} at {at} (journal record {seq}); it is shown once\n  help: share it through the secret store's own access control instead"
    )]
    AlreadyRevealed {
        /// The secret.
        secret: String,
        /// To whom.
        by: String,
        /// When.
        at: String,
        /// Journal record.
        seq: u64,
    },
    /// The cloud could not give it.
    #[error("reading the pre-shared key from the secret store failed: {0}")]
    Cloud(#[from] CloudError),
}

/// Reads the realm VPN's key from the cloud's secret store, records the reveal in the journal of
/// `dir` (signed with `key` when given), and returns the key to be shown once.
pub async fn vpn_key(
    dir: &crate::engine::io::state::StateRef,
    spec: &Spec,
    cloud: &dyn Cloud,
    by: &str,
    now: OffsetDateTime,
    key: Option<Arc<SigningKey>>,
) -> Result<Secret, RevealError> {
    let mut journal = Journal::open(dir)?;
    journal.sign_with(key);
    let state = load_state(&journal)?;
    if let Some(s) = &state.subject
        && s.realm != spec.name
    {
        return Err(RevealError::RealmMismatch {
            at: dir.to_string(),
            state: s.realm.clone(),
            spec: spec.name.clone(),
        });
    }
    let def = crate::cloud::access::definition(spec)
        .vpn
        .ok_or_else(|| RevealError::NoVpn {
            realm: spec.name.clone(),
        })?;
    let built = state.playbook.iter().flat_map(|p| &p.phases).any(|p| {
        p.steps.iter().any(|s| {
            s.action == Action::VpnApply
                && state
                    .step_state(&s.id)
                    .is_some_and(|st| st.status == StepStatus::Succeeded)
        })
    });
    if !built {
        return Err(RevealError::NotBuilt {
            realm: spec.name.clone(),
        });
    }
    if let Some(r) = state.reveals.iter().find(|r| r.secret == def.secret) {
        return Err(RevealError::AlreadyRevealed {
            secret: r.secret.clone(),
            by: r.by.clone(),
            at: r.at.clone(),
            seq: r.seq,
        });
    }
    let secret = cloud.vpn_key(&def).await?;
    journal.append(
        &Event::SecretRevealed {
            secret: def.secret.clone(),
            by: by.to_owned(),
        },
        now,
        Durability::Sync,
    )?;
    Ok(secret)
}
