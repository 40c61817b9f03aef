//! What `destroy` asks of ARM (issue #20), as the ARM REST references describe it: `DELETE` of
//! a managed cluster or an agent pool (202 Accepted with an `Azure-AsyncOperation` status
//! resource, done once the resource is gone; 204 when there is none), `DELETE` of a resource
//! group (with everything in it) and of a resource by its id, and the lists a sweep reads —
//! `GET /subscriptions/{id}/resources` and `GET /subscriptions/{id}/resourcegroups` with
//! `$filter=tagName eq '…' and tagValue eq '…'`. A managed cluster's node resource group
//! (`MC_{group}_{cluster}_{region}`, tagged `aks-managed-cluster-name`) is made with the
//! cluster and deleted with it, as AKS does, with every resource in it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ArmError;
use crate::world::{Leftover, Target, World};

/// The type of a resource group, as a [`Leftover`]'s kind.
pub const GROUP: &str = "Microsoft.Resources/resourceGroups";

/// The node resource group of `cluster` in `group`.
pub fn node_group(w: &World, group: &str, cluster: &str) -> String {
    format!("MC_{group}_{cluster}_{}", w.region)
}

/// The id of resource group `name`.
pub fn group_id(w: &World, name: &str) -> String {
    format!("/subscriptions/{}/resourceGroups/{name}", w.account)
}

/// Makes the node resource group of a new cluster.
pub fn make_node_group(w: &mut World, group: &str, cluster: &str) {
    let name = node_group(w, group, cluster);
    let region = w.region.clone();
    w.resource_groups.insert(name.clone(), region);
    let id = group_id(w, &name);
    w.leftovers.insert(
        id,
        Leftover {
            kind: GROUP.into(),
            name,
            group: None,
            tags: [
                ("aks-managed-cluster-name".to_owned(), cluster.to_owned()),
                ("aks-managed-cluster-rg".to_owned(), group.to_owned()),
            ]
            .into(),
            held_by: None,
        },
    );
}

/// The node resource group of `cluster`, if the world holds one (what [`World::purge`] deletes
/// with the cluster).
pub fn node_group_of(w: &World, cluster: &str) -> Option<String> {
    w.leftovers
        .values()
        .find(|l| {
            l.kind == GROUP
                && l.tags.get("aks-managed-cluster-name").map(String::as_str) == Some(cluster)
        })
        .map(|l| l.name.clone())
}

/// Removes what has finished deleting.
pub fn purge(w: &mut World) {
    let groups: std::collections::BTreeMap<String, String> = w
        .clusters
        .keys()
        .filter_map(|c| node_group_of(w, c).map(|g| (c.clone(), g)))
        .collect();
    w.purge(|c| groups.get(c).cloned());
    // A node resource group goes with its cluster.
    let present: std::collections::BTreeSet<String> = w.resource_groups.keys().cloned().collect();
    w.leftovers
        .retain(|_, l| l.kind != GROUP || present.contains(&l.name));
}

fn accepted(w: &mut World, base: &str, target: Target) -> Response {
    let headers = super::start_operation(w, base, target);
    (StatusCode::ACCEPTED, headers).into_response()
}

/// `DELETE` of a managed cluster.
pub fn delete_cluster(w: &mut World, base: &str, name: &str) -> Response {
    if !w.clusters.contains_key(name) {
        return StatusCode::NO_CONTENT.into_response();
    }
    w.delete_cluster(name);
    accepted(w, base, Target::DeleteCluster(name.to_owned()))
}

/// `DELETE` of an agent pool.
pub fn delete_pool(w: &mut World, base: &str, cluster: &str, name: &str) -> Response {
    if !w.pools.contains_key(&(cluster.to_owned(), name.to_owned())) {
        return StatusCode::NO_CONTENT.into_response();
    }
    w.delete_pool(cluster, name);
    accepted(
        w,
        base,
        Target::DeletePool(cluster.to_owned(), name.to_owned()),
    )
}

/// ARM's code when something still uses the resource, by its type.
fn in_use_code(kind: &str) -> &'static str {
    match kind.to_ascii_lowercase().as_str() {
        "microsoft.network/publicipaddresses" => "PublicIPAddressInUse",
        "microsoft.network/networksecuritygroups" => "InUseNetworkSecurityGroupCannotBeDeleted",
        "microsoft.network/networkinterfaces" => "InUseNetworkInterfaceCannotBeDeleted",
        _ => "ResourceInUse",
    }
}

/// `DELETE` of a resource by id (a resource group: with everything in it).
pub fn delete_resource(w: &mut World, id: &str) -> Result<Response, ArmError> {
    let Some((key, l)) = w
        .leftovers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(id))
        .map(|(k, l)| (k.clone(), l.clone()))
    else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    if let Some(holder) = l.held_by.as_ref().filter(|h| w.leftovers.contains_key(*h)) {
        return Err(ArmError::new(
            400,
            in_use_code(&l.kind),
            format!(
                "{} {} is in use by {holder} and cannot be deleted.",
                l.kind, l.name
            ),
        ));
    }
    w.leftovers.remove(&key);
    if l.kind == GROUP {
        w.resource_groups.remove(&l.name);
        w.leftovers
            .retain(|_, x| x.group.as_deref() != Some(l.name.as_str()));
    }
    Ok(StatusCode::OK.into_response())
}

/// `(tagName, tagValue)` of a `$filter=tagName eq 'K' and tagValue eq 'V'`.
fn tag_filter(query: &str) -> Option<(String, String)> {
    let f = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "$filter")?
        .1
        .into_owned();
    let quoted = |s: &str, key: &str| -> Option<String> {
        let rest = s.split(key).nth(1)?.trim_start();
        let rest = rest.strip_prefix("eq")?.trim_start().strip_prefix('\'')?;
        Some(rest.split('\'').next()?.to_owned())
    };
    Some((quoted(&f, "tagName")?, quoted(&f, "tagValue")?))
}

fn listed(w: &World, query: &str, groups: bool) -> Result<Value, ArmError> {
    let (k, v) = tag_filter(query).ok_or_else(|| {
        ArmError::new(
            400,
            "InvalidFilterInQueryString",
            "this stand-in lists by tag only: $filter=tagName eq '…' and tagValue eq '…'".into(),
        )
    })?;
    let value: Vec<Value> = w
        .leftovers
        .iter()
        .filter(|(_, l)| (l.kind == GROUP) == groups)
        .filter(|(_, l)| l.tags.get(&k) == Some(&v))
        .map(|(id, l)| {
            json!({"id": id, "name": l.name, "type": l.kind, "location": w.region, "tags": l.tags})
        })
        .collect();
    Ok(json!({ "value": value }))
}

/// `GET /subscriptions/{id}/resources?$filter=…`.
pub fn resources(w: &World, query: &str) -> Result<Value, ArmError> {
    listed(w, query, false)
}

/// `GET /subscriptions/{id}/resourcegroups?$filter=…`.
pub fn groups(w: &World, query: &str) -> Result<Value, ArmError> {
    listed(w, query, true)
}

/// `GET /subscriptions/{id}/resourceGroups/{group}/resources`.
pub fn in_group(w: &World, group: &str) -> Value {
    let value: Vec<Value> = w
        .leftovers
        .iter()
        .filter(|(_, l)| {
            l.group
                .as_deref()
                .is_some_and(|g| g.eq_ignore_ascii_case(group))
        })
        .map(|(id, l)| {
            json!({"id": id, "name": l.name, "type": l.kind, "location": w.region, "tags": l.tags})
        })
        .collect();
    json!({ "value": value })
}
