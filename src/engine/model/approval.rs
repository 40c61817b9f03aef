//! A recorded approval: a phase's gate, or a customer action a step waits for (such as the
//! acceptance of a custom node image). Its own leaf module because both the journal's state
//! ([`super::state`]) and the steps that look approvals up ([`crate::engine::ctx`]) use it.

use serde::Serialize;

/// A recorded approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// Phase.
    pub phase: u8,
    /// Who.
    pub by: String,
    /// Their note.
    pub note: Option<String>,
    /// What it covers (a digest of the phase's outputs or of the waiting step's inputs).
    pub covers: String,
    /// The digest of the cluster definition it approved, when the phase rendered one.
    pub definition: Option<String>,
    /// The customer's key that signed the statement this approval was imported from
    /// (`approve --offline`), when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_key: Option<String>,
    /// When.
    pub at: String,
    /// Journal record.
    pub seq: u64,
}
