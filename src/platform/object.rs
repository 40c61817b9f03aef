//! Which Kubernetes object: the reference every part of the platform speaks of (the
//! definition, the plan and its inventory, the client, the realm's own objects). Pure, and
//! below all of them, so none has to import another for it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which object: apiVersion, kind, namespace, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `group/version` or `v1`.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (`None`: cluster-scoped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// The reference of a manifest.
    pub fn of(v: &Value) -> ObjectRef {
        ObjectRef {
            api_version: v["apiVersion"].as_str().unwrap_or_default().to_owned(),
            kind: v["kind"].as_str().unwrap_or_default().to_owned(),
            namespace: v["metadata"]["namespace"].as_str().map(str::to_owned),
            name: v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// The API group.
    pub fn group(&self) -> &str {
        self.api_version.split_once('/').map_or("", |(g, _)| g)
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.group().is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group())
        };
        match &self.namespace {
            Some(ns) => write!(f, "{kind} {ns}/{}", self.name),
            None => write!(f, "{kind} {}", self.name),
        }
    }
}
