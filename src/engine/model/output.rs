//! What a step attempt produces: its output (summary, check evidence, stored artifacts) and, when
//! it fails, how. These are the leaf types every other part of the engine shares.

use serde::{Deserialize, Serialize};

use crate::checks::CheckResult;
use crate::cloud::definition::ClusterDefinition;

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
    /// The cluster definition the step rendered for approval (phases 4 and 5): an approval of
    /// the step's phase binds to its digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<Box<ClusterDefinition>>,
    /// The cluster definition the step built or adopted in the cloud (phase 6): what the
    /// report shows next to the approved one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built: Option<Box<ClusterDefinition>>,
    /// The objects the step applied into the cluster, with digests and readiness (phase 6's
    /// `platform.apply`): what the next run compares against and prunes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Box<crate::platform::plan::Inventory>>,
    /// The realm VPN instance the step built or adopted (phase 6's `vpn.apply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpn: Option<Box<crate::cloud::vpn::VpnBuilt>>,
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
        crate::crypto::sha256_hex(
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

/// A change a step is about to make in the cloud, journaled (fsync'd) before the call, so that
/// after a crash an auditor sees what was attempted and the resumed step knows to describe
/// before creating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "create",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Intent {
    /// Create a managed cluster.
    Cluster {
        /// Its name.
        name: String,
    },
    /// Create a node pool of a cluster.
    NodePool {
        /// The cluster.
        cluster: String,
        /// The pool's name.
        name: String,
    },
    /// Server-side apply of these objects into the cluster (one stage).
    Apply {
        /// The objects.
        objects: Vec<crate::platform::ObjectRef>,
    },
    /// Delete these objects realmctl applied earlier that left the bundle.
    Prune {
        /// The objects.
        objects: Vec<crate::platform::ObjectRef>,
    },
    /// Create a part of the realm's VPN instance, or finish this realm's own (`work` says
    /// what: never a secret).
    VpnPart {
        /// Which part.
        part: crate::cloud::vpn::VpnPart,
        /// Its name.
        name: String,
        /// What is done to it.
        work: Vec<String>,
    },
    /// Delete these objects from the cluster before it goes (`destroy`): those that own cloud
    /// resources.
    Remove {
        /// The objects.
        objects: Vec<crate::platform::ObjectRef>,
    },
    /// Upgrade a cluster's control plane (`pool` `None`) or one of its node pools to `to`
    /// (`upgrade`).
    Upgrade {
        /// The cluster.
        cluster: String,
        /// The pool, if it is a pool.
        pool: Option<String>,
        /// The Kubernetes version asked for.
        to: String,
    },
    /// Delete a resource of the realm (`destroy`).
    Delete {
        /// What.
        resource: crate::cloud::teardown::Found,
    },
}

impl std::fmt::Display for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Intent::Cluster { name } => write!(f, "create cluster {name}"),
            Intent::NodePool { cluster, name } => {
                write!(f, "create node pool {name} of cluster {cluster}")
            }
            Intent::Apply { objects } => write!(f, "apply {} objects", objects.len()),
            Intent::Prune { objects } => {
                let names: Vec<String> = objects.iter().map(ToString::to_string).collect();
                write!(f, "prune {}", names.join(", "))
            }
            Intent::VpnPart { part, name, work } => {
                write!(f, "VPN {part} {name}: {}", work.join("; "))
            }
            Intent::Delete { resource } => write!(f, "delete {resource}"),
            Intent::Upgrade {
                cluster,
                pool: None,
                to,
            } => write!(f, "upgrade the control plane of cluster {cluster} to {to}"),
            Intent::Upgrade {
                cluster,
                pool: Some(p),
                to,
            } => write!(f, "upgrade node pool {p} of cluster {cluster} to {to}"),
            Intent::Remove { objects } => {
                let names: Vec<String> = objects.iter().map(ToString::to_string).collect();
                write!(f, "delete from the cluster {}", names.join(", "))
            }
        }
    }
}
