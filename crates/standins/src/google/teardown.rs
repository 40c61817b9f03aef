//! What `destroy` asks of Google (issue #20), as the GKE and Compute Engine v1 references
//! describe it: `clusters.delete` and `nodePools.delete` answered with a GKE `Operation` that
//! stays RUNNING until the target is gone; the lists a sweep reads —
//! `regions/{r}/forwardingRules`, `global/forwardingRules` and `aggregated/disks` with
//! `filter=labels.KEY="VALUE"`, and `global/firewalls` — and the `DELETE` of each by its
//! `selfLink`, answered with a Compute operation (DONE at once; `resourceInUseByAnotherResource`
//! while something the test named still holds it). Leftovers are keyed by their path under
//! `projects/{p}/` (`zones/{z}/disks/{name}`); a firewall's target tags are kept as the tags
//! `targetTag:<tag>`.

use axum::http::Method;
use serde_json::{Value, json};

use super::{GoogleError, Route};
use crate::world::World;

const CE: &str = "compute.googleapis.com";

/// A Compute request of the sweep.
pub(crate) enum Req {
    /// List the leftovers of a type (`forwardingRules`, `globalForwardingRules`, `firewalls`).
    List(&'static str),
    /// `aggregated/disks`.
    Disks,
    /// Delete the leftover at this key.
    Delete(String),
}

/// Routes a Compute path of the sweep (`/compute/v1/projects/{p}/…`).
pub(crate) fn route(method: &Method, seg: &[&str]) -> Option<(Route, Req)> {
    let ["compute", "v1", "projects", p, rest @ ..] = seg else {
        return None;
    };
    let get = *method == Method::GET;
    let r = |op, permission, resource: String| Route {
        op,
        permission: Some(permission),
        resource,
        domain: CE,
    };
    let project = format!("projects/{p}");
    if *method == Method::DELETE {
        let key = rest.join("/");
        let (op, perm) = match rest {
            ["zones", _, "disks", _] => ("compute:DeleteDisk", "compute.disks.delete"),
            ["regions", _, "forwardingRules", _] => (
                "compute:DeleteForwardingRule",
                "compute.forwardingRules.delete",
            ),
            ["global", "forwardingRules", _] => (
                "compute:DeleteGlobalForwardingRule",
                "compute.globalForwardingRules.delete",
            ),
            ["global", "firewalls", _] => ("compute:DeleteFirewall", "compute.firewalls.delete"),
            _ => return None,
        };
        return Some((r(op, perm, format!("{project}/{key}")), Req::Delete(key)));
    }
    if !get {
        return None;
    }
    Some(match rest {
        ["aggregated", "disks"] => (
            r("compute:AggregatedListDisks", "compute.disks.list", project),
            Req::Disks,
        ),
        ["regions", _, "forwardingRules"] => (
            r(
                "compute:ListForwardingRules",
                "compute.forwardingRules.list",
                project,
            ),
            Req::List("forwardingRules"),
        ),
        ["global", "forwardingRules"] => (
            r(
                "compute:ListGlobalForwardingRules",
                "compute.globalForwardingRules.list",
                project,
            ),
            Req::List("globalForwardingRules"),
        ),
        ["global", "firewalls"] => (
            r("compute:ListFirewalls", "compute.firewalls.list", project),
            Req::List("firewalls"),
        ),
        _ => return None,
    })
}

/// `(key, value)` of a `filter=labels.KEY="VALUE"` (absent: no filter).
fn label_filter(query: &str) -> Option<(String, String)> {
    let f = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "filter")?
        .1
        .into_owned();
    let rest = f.trim().strip_prefix("labels.")?;
    let (k, v) = rest.split_once('=')?;
    let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
    Some((k.trim().to_owned(), v.replace("\\\"", "\"")))
}

fn item(w: &World, base: &str, key: &str, l: &crate::world::Leftover) -> Value {
    let labels: serde_json::Map<String, Value> = l
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with("targetTag:"))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let targets: Vec<&str> = l
        .tags
        .keys()
        .filter_map(|k| k.strip_prefix("targetTag:"))
        .collect();
    let mut v = json!({"name": l.name, "labels": labels,
        "selfLink": format!("{base}/compute/v1/projects/{}/{key}", w.account)});
    if l.kind == "firewalls" {
        v["targetTags"] = json!(targets);
    }
    v
}

/// Answers a routed sweep request.
pub(crate) fn answer(
    w: &mut World,
    base: &str,
    req: Req,
    query: &str,
) -> Result<Value, GoogleError> {
    let filter = label_filter(query);
    let matches = |l: &crate::world::Leftover| {
        filter
            .as_ref()
            .is_none_or(|(k, v)| l.tags.get(k) == Some(v))
    };
    match req {
        Req::List(kind) => {
            let items: Vec<Value> = w
                .leftovers
                .iter()
                .filter(|(_, l)| l.kind == kind && matches(l))
                .map(|(k, l)| item(w, base, k, l))
                .collect();
            Ok(json!({"kind": format!("compute#{kind}List"), "items": items}))
        }
        Req::Disks => {
            let mut items = serde_json::Map::new();
            for (k, l) in w
                .leftovers
                .iter()
                .filter(|(_, l)| l.kind == "disks" && matches(l))
            {
                let zone = l.group.clone().unwrap_or_default();
                let e = items
                    .entry(format!("zones/{zone}"))
                    .or_insert_with(|| json!({"disks": []}));
                if let Some(a) = e["disks"].as_array_mut() {
                    a.push(item(w, base, k, l));
                }
            }
            Ok(json!({"kind": "compute#diskAggregatedList", "items": items}))
        }
        Req::Delete(key) => {
            // The realm VPN's own firewall rules live in the VPN world.
            if let Some(f) = key.strip_prefix("global/firewalls/")
                && !w.leftovers.contains_key(&key)
                && w.vpn.firewalls.remove(f).is_some()
            {
                return Ok(
                    json!({"kind": "compute#operation", "name": format!("operation-delete-{f}"),
                    "operationType": "delete", "status": "DONE", "progress": 100,
                    "selfLink": format!("{base}/compute/v1/projects/{}/global/operations/operation-delete-{f}", w.account)}),
                );
            }
            let Some(l) = w.leftovers.get(&key).cloned() else {
                return Err(GoogleError::not_found(format!(
                    "The resource 'projects/{}/{key}' was not found",
                    w.account
                )));
            };
            if let Some(h) = l.held_by.as_ref().filter(|h| w.leftovers.contains_key(*h)) {
                return Err(GoogleError::new(
                    400,
                    "FAILED_PRECONDITION",
                    format!(
                        "The {} resource 'projects/{}/{key}' is already being used by 'projects/{}/{h}'",
                        l.kind, w.account, w.account
                    ),
                )
                .reason("resourceInUseByAnotherResource"));
            }
            w.leftovers.remove(&key);
            Ok(
                json!({"kind": "compute#operation", "name": format!("operation-delete-{}", l.name),
                "operationType": "delete", "status": "DONE", "progress": 100,
                "targetLink": format!("{base}/compute/v1/projects/{}/{key}", w.account),
                "selfLink": format!("{base}/compute/v1/projects/{}/global/operations/operation-delete-{}", w.account, l.name)}),
            )
        }
    }
}
