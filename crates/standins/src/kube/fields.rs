//! Field ownership for server-side apply, as the API server's structured-merge-diff tracks it
//! (<https://kubernetes.io/docs/reference/using-api/server-side-apply/>), simplified where the
//! stand-in says so in `docs/kube-standin.md`: every list is atomic (owned and replaced whole,
//! like a list marked `x-kubernetes-list-type: atomic`), maps are granular.
//!
//! A field is a path of map keys from the object's root. An object's managers each own a set of
//! leaf paths; `managedFields` writes each set in the `FieldsV1` form (`{"f:spec": {"f:replicas":
//! {}}}`). Pure functions, tested here.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// A field: the map keys from the root.
pub type Path = Vec<String>;

/// The top-level keys that are never owned (identity and server-set metadata).
fn ignored(path: &[String]) -> bool {
    match path {
        [top] => top == "apiVersion" || top == "kind",
        [m, k, ..] if m == "metadata" => matches!(
            k.as_str(),
            "name"
                | "namespace"
                | "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "deletionTimestamp"
                | "managedFields"
                | "selfLink"
        ),
        _ => false,
    }
}

/// The leaf fields `v` sets: every path to a scalar, a list or an empty map.
pub fn leaves(v: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn walk(v: &Value, at: &mut Path, out: &mut BTreeSet<Path>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                at.push(k.clone());
                if !ignored(at) {
                    walk(child, at, out);
                }
                at.pop();
            }
        }
        _ if at.is_empty() => {}
        _ => {
            out.insert(at.clone());
        }
    }
}

/// The value at `path`, if there is one.
pub fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// Sets `path` to `value`, making maps on the way.
pub fn set(v: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = v;
    for k in parents {
        if !at.get(k).is_some_and(Value::is_object) {
            at[k] = Value::Object(Map::new());
        }
        at = &mut at[k];
    }
    at[last] = value;
}

/// Removes `path`, and every map it leaves empty on the way up.
pub fn remove(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let Some(parent) = parents
        .iter()
        .try_fold(&mut *v, |v, k| v.get_mut(k))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    parent.remove(last);
    if parent.is_empty() && !parents.is_empty() {
        remove(v, parents);
    }
}

/// The paths in `fields` whose values differ between `a` and `b`.
pub fn differing(fields: &BTreeSet<Path>, a: &Value, b: &Value) -> Vec<Path> {
    fields
        .iter()
        .filter(|p| get(a, p) != get(b, p))
        .cloned()
        .collect()
}

/// A path as the API server writes it in conflicts: `.spec.replicas`.
pub fn dotted(path: &[String]) -> String {
    path.iter().map(|k| format!(".{k}")).collect()
}

/// A set in the `FieldsV1` form.
pub fn to_fields_v1(set: &BTreeSet<Path>) -> Value {
    let mut root = Value::Object(Map::new());
    for p in set {
        let keys: Path = p.iter().map(|k| format!("f:{k}")).collect();
        set_path_empty(&mut root, &keys);
    }
    root
}

fn set_path_empty(root: &mut Value, keys: &[String]) {
    let mut at = root;
    for k in keys {
        if !at.get(k).is_some_and(Value::is_object) {
            at[k] = Value::Object(Map::new());
        }
        at = &mut at[k];
    }
}

/// Writes `from`'s value of every field in `fields` into `into` (maps merged, lists and scalars
/// replaced whole).
pub fn merge(into: &mut Value, from: &Value, fields: &BTreeSet<Path>) {
    for p in fields {
        if let Some(v) = get(from, p) {
            set(into, p, v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Path {
        s.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn leaves_skip_identity_and_server_fields_and_keep_lists_whole() {
        let v = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "namespace": "n", "labels": {"app": "a"}, "resourceVersion": "3"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c"}]}}, "empty": {}}});
        let got: Vec<String> = leaves(&v).iter().map(|p| dotted(p)).collect();
        assert_eq!(
            got,
            [
                ".metadata.labels.app",
                ".spec.empty",
                ".spec.replicas",
                ".spec.template.spec.containers"
            ]
        );
    }

    #[test]
    fn fields_v1_writes_the_leaves_as_nested_keys() {
        let set: BTreeSet<Path> = [p("spec.replicas"), p("metadata.labels.app")].into();
        let v = to_fields_v1(&set);
        assert_eq!(
            v,
            json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}}})
        );
    }

    #[test]
    fn remove_prunes_emptied_maps_and_differing_compares_values() {
        let mut v = json!({"spec": {"a": {"b": 1}, "c": 2}});
        remove(&mut v, &p("spec.a.b"));
        assert_eq!(v, json!({"spec": {"c": 2}}));
        let fields: BTreeSet<Path> = [p("spec.c"), p("spec.d")].into();
        assert_eq!(
            differing(&fields, &v, &json!({"spec": {"c": 3}})),
            [p("spec.c")]
        );
        assert!(differing(&fields, &v, &v).is_empty());
    }
}
