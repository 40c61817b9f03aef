//! What a step attempt produces: its output (summary, check evidence, stored artifacts) and, when
//! it fails, how. These are the leaf types every other part of the engine shares.

use serde::{Deserialize, Serialize};

use crate::checks::CheckResult;

/// What a step produced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOutput {
    /// One line for people.
    pub summary: String,
    /// Check evidence.
    pub checks: Vec<CheckResult>,
    /// Stored artifacts.
    pub artifacts: Vec<ArtifactRef>,
    /// Facts a later step or the report needs (typed per action, e.g. the cluster endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<serde_json::Value>,
}

impl StepOutput {
    /// An output with only a summary.
    pub fn summary(summary: impl Into<String>) -> Self {
        StepOutput {
            summary: summary.into(),
            ..StepOutput::default()
        }
    }

    /// SHA-256 of the output's JSON: what an approval of its phase covers.
    pub fn digest(&self) -> String {
        crate::digest::sha256_hex(
            serde_json::to_string(self)
                .expect("outputs serialise")
                .as_bytes(),
        )
    }
}

/// An artifact in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRef {
    /// File name, e.g. `cluster.json`.
    pub name: String,
    /// Where it is: a path relative to the state folder, or an object URL.
    pub location: String,
    /// SHA-256 hex of its bytes.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// How a step attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureKind {
    /// Worth another attempt (network, throttling, a 5xx).
    Retryable,
    /// Will fail the same way until someone fixes something.
    Permanent,
    /// The attempt ran out of time.
    Timeout,
    /// This run cannot carry out the action (e.g. no cloud provider).
    Unavailable,
}
