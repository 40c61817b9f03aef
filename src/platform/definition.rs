//! The one list of what goes into the cluster: every object of the bundle and of the realm,
//! labelled as realmctl's, with its stage and digest. [`desired`] builds the objects;
//! [`PlatformDef`] is their typed summary inside the cluster definition the customer approves
//! (so an approval binds to every file's digest and every object's), and `platform.apply`
//! applies exactly the objects [`desired`] returns for the same spec.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bundle::Bundle;
pub use super::object::ObjectRef;
use super::{MANAGED_BY_LABEL, REALM_LABEL, realm};
use crate::spec::Spec;

/// When an object is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// CustomResourceDefinitions, Namespaces and every other cluster-scoped object (RBAC):
    /// applied first; CRDs must be Established before the next stage.
    Foundation,
    /// Everything else.
    Workloads,
}

impl Stage {
    /// The stage of an object of `kind` (`namespaced`: whether it names a namespace).
    pub fn of(kind: &str, namespaced: bool) -> Stage {
        if kind == "CustomResourceDefinition" || kind == "Namespace" || !namespaced {
            Stage::Foundation
        } else {
            Stage::Workloads
        }
    }
}

/// One object of the definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedObject {
    /// Which object.
    #[serde(flatten)]
    pub object: ObjectRef,
    /// Its stage.
    pub stage: Stage,
    /// Where it comes from: a bundle file, or `realm` (made from the spec).
    pub source: String,
    /// `sha256:<hex>` of its manifest as sent (a Secret's without its data, which is read at
    /// apply time and never recorded).
    pub digest: String,
}

/// The platform part of the cluster definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformDef {
    /// `name version` of the bundle.
    pub bundle: String,
    /// Each bundle file and its digest.
    pub files: Vec<(String, String)>,
    /// The field manager of every apply.
    pub field_manager: String,
    /// Every object, foundation stage first, in apply order.
    pub objects: Vec<PlannedObject>,
}

/// A desired object: its entry in the definition and the manifest to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// The definition's entry.
    pub planned: PlannedObject,
    /// The manifest (a Secret's data comes from [`realm::SecretData`] at apply time).
    pub manifest: Value,
}

/// Whether an object of `kind` is namespaced, as far as a manifest tells: it names a
/// namespace.
fn namespaced(v: &Value) -> bool {
    v["metadata"]["namespace"].is_string()
}

/// `sha256:<hex>` of a manifest's canonical JSON.
pub fn manifest_digest(v: &Value) -> String {
    format!(
        "sha256:{}",
        crate::crypto::sha256_hex(crate::crypto::canonical_json(v).as_bytes())
    )
}

/// Adds realmctl's labels to a manifest.
fn labelled(mut v: Value, realm_name: &str) -> Value {
    let labels = &mut v["metadata"]["labels"];
    if !labels.is_object() {
        *labels = Value::Object(serde_json::Map::new());
    }
    labels[REALM_LABEL] = Value::String(realm_name.to_owned());
    labels[MANAGED_BY_LABEL] = Value::String("realmctl".into());
    v
}

/// Every object for `spec`: the realm's own (namespaces, TLS Secret, ingress), then the
/// bundle's, each labelled; ordered by stage (stable within a stage).
pub fn desired(spec: &Spec) -> Vec<Desired> {
    desired_from(spec, &spec.platform)
}

fn desired_from(spec: &Spec, bundle: &Bundle) -> Vec<Desired> {
    let mut out = Vec::new();
    let realm_objects = realm::objects(spec)
        .into_iter()
        .map(|v| ("realm".to_owned(), v));
    let bundle_objects = bundle
        .files
        .iter()
        .flat_map(|f| f.objects.iter().map(|o| (f.path.clone(), o.clone())));
    for (source, v) in realm_objects.chain(bundle_objects) {
        let manifest = labelled(v, &spec.name);
        let kind = manifest["kind"].as_str().unwrap_or_default().to_owned();
        out.push(Desired {
            planned: PlannedObject {
                object: ObjectRef::of(&manifest),
                stage: Stage::of(&kind, namespaced(&manifest)),
                source,
                digest: manifest_digest(&manifest),
            },
            manifest,
        });
    }
    out.sort_by_key(|d| d.planned.stage);
    out
}

/// The platform part of `spec`'s definition.
pub fn definition(spec: &Spec) -> PlatformDef {
    let b = &spec.platform;
    PlatformDef {
        bundle: format!("{} {}", b.name, b.version),
        files: b
            .files
            .iter()
            .map(|f| (f.path.clone(), f.digest.clone()))
            .collect(),
        field_manager: super::FIELD_MANAGER.to_owned(),
        objects: desired(spec).into_iter().map(|d| d.planned).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_put_crds_namespaces_and_cluster_scoped_objects_first() {
        assert_eq!(
            Stage::of("CustomResourceDefinition", false),
            Stage::Foundation
        );
        assert_eq!(Stage::of("Namespace", false), Stage::Foundation);
        assert_eq!(Stage::of("ClusterRole", false), Stage::Foundation);
        assert_eq!(Stage::of("Deployment", true), Stage::Workloads);
    }

    #[test]
    fn every_object_is_labelled_staged_and_digested_and_a_changed_byte_changes_the_definition() {
        let (_dir, spec) =
            crate::engine::test_support::spec(crate::spec::Provider::Eks, "digibee.acme.com");
        let want = desired(&spec);
        assert!(
            want.iter()
                .all(|d| d.manifest["metadata"]["labels"][REALM_LABEL] == "acme")
        );
        let stages: Vec<Stage> = want.iter().map(|d| d.planned.stage).collect();
        let mut sorted = stages.clone();
        sorted.sort();
        assert_eq!(stages, sorted);
        let first_workload = stages.iter().position(|s| *s == Stage::Workloads).unwrap();
        assert!(
            want[..first_workload]
                .iter()
                .any(|d| d.planned.object.kind == "CustomResourceDefinition")
        );
        let def = definition(&spec);
        assert_eq!(def.objects.len(), want.len());
        // One changed byte in a bundle file: a different file digest and object digest.
        let mut other = spec.clone();
        let f = &mut other.platform.files[2];
        f.digest = "sha256:changed".into();
        f.objects[0]["data"]["version"] = "2026.12.1".into();
        let def2 = definition(&other);
        assert_ne!(def.files, def2.files);
        assert_ne!(def.objects, def2.objects);
    }
}
