//! Routes the Google APIs' REST paths and answers the reads: Resource Manager v3
//! `projects.get` and `projects.testIamPermissions`, Service Usage v1 `services.batchGet`,
//! Compute Engine v1 `regions.get` (with its quotas) and `subnetworks.get`, IAM credentials
//! `generateAccessToken`. GKE's own resources are in [`super::container`].

use axum::http::Method;
use serde_json::{Value, json};

use super::{GoogleError, Route, auth, container};
use crate::policy::Decision;
use crate::world::World;

/// What a request asks for.
pub(crate) enum Kind {
    Project(String),
    TestPermissions(String),
    Services(String),
    Region(String, String),
    Subnetwork(String, String, String),
    Impersonate(String),
    Gke(container::Gke),
    Vpn(super::vpn::Req),
    Sweep(super::teardown::Req),
}

fn r(
    op: &'static str,
    permission: Option<&'static str>,
    resource: String,
    domain: &'static str,
) -> Route {
    Route {
        op,
        permission,
        resource,
        domain,
    }
}

/// Routes `method` `path`.
pub(crate) fn route(method: &Method, path: &str, _w: &World) -> Option<(Route, Kind)> {
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let crm = "cloudresourcemanager.googleapis.com";
    Some(match seg.as_slice() {
        ["v3", "projects", p] if get && !p.contains(':') => (
            r(
                "crm:GetProject",
                Some("resourcemanager.projects.get"),
                format!("projects/{p}"),
                crm,
            ),
            Kind::Project((*p).to_owned()),
        ),
        ["v3", "projects", p] if post && p.ends_with(":testIamPermissions") => {
            let p = p.trim_end_matches(":testIamPermissions");
            (
                r("crm:TestIamPermissions", None, format!("projects/{p}"), crm),
                Kind::TestPermissions(p.to_owned()),
            )
        }
        ["v1", "projects", p, "services:batchGet"] if get => (
            r(
                "serviceusage:BatchGetServices",
                Some("serviceusage.services.get"),
                format!("projects/{p}"),
                "serviceusage.googleapis.com",
            ),
            Kind::Services((*p).to_owned()),
        ),
        ["compute", "v1", "projects", p, "regions", region] if get => (
            r(
                "compute:GetRegion",
                Some("compute.regions.get"),
                format!("projects/{p}/regions/{region}"),
                "compute.googleapis.com",
            ),
            Kind::Region((*p).to_owned(), (*region).to_owned()),
        ),
        [
            "compute",
            "v1",
            "projects",
            p,
            "regions",
            region,
            "subnetworks",
            s,
        ] if get => (
            r(
                "compute:GetSubnetwork",
                Some("compute.subnetworks.get"),
                format!("projects/{p}/regions/{region}/subnetworks/{s}"),
                "compute.googleapis.com",
            ),
            Kind::Subnetwork((*p).to_owned(), (*region).to_owned(), (*s).to_owned()),
        ),
        ["v1", "projects", "-", "serviceAccounts", target]
            if post && target.ends_with(":generateAccessToken") =>
        {
            let t = target.trim_end_matches(":generateAccessToken");
            (
                r(
                    "iam:GenerateAccessToken",
                    Some("iam.serviceAccounts.getAccessToken"),
                    format!("projects/-/serviceAccounts/{t}"),
                    "iamcredentials.googleapis.com",
                ),
                Kind::Impersonate(t.to_owned()),
            )
        }
        _ if super::teardown::route(method, &seg).is_some() => {
            let (route, t) = super::teardown::route(method, &seg)?;
            (route, Kind::Sweep(t))
        }
        _ => match super::vpn::route(method, &seg) {
            Some((route, v)) => (route, Kind::Vpn(v)),
            None => {
                let (route, g) = container::route(method, &seg)?;
                (route, Kind::Gke(g))
            }
        },
    })
}

fn project_of(w: &World, p: &str) -> Result<(), GoogleError> {
    if p == w.account {
        Ok(())
    } else {
        // Google answers a project the caller cannot see, or that does not exist, alike.
        Err(GoogleError::denied(
            "resourcemanager.projects.get",
            &format!("projects/{p}"),
            "cloudresourcemanager.googleapis.com",
        ))
    }
}

/// Answers a routed request by `caller` with the parsed JSON `body`.
pub(crate) fn answer(
    w: &mut World,
    base: &str,
    _caller: &str,
    kind: Kind,
    query: &str,
    body: Value,
) -> Result<Value, GoogleError> {
    match kind {
        Kind::Project(p) => {
            project_of(w, &p)?;
            Ok(json!({"name": "projects/100000000001", "projectId": p,
                "state": w.account_state, "displayName": p}))
        }
        Kind::TestPermissions(p) => {
            project_of(w, &p)?;
            let asked: Vec<String> = body
                .get("permissions")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let resource = format!("projects/{p}");
            let granted: Vec<&String> = asked
                .iter()
                .filter(|a| {
                    w.policy
                        .decide(a, &resource, &std::collections::BTreeMap::new())
                        == Decision::Allowed
                })
                .collect();
            Ok(json!({"permissions": granted}))
        }
        Kind::Services(p) => {
            project_of(w, &p)?;
            let services: Vec<Value> = url::form_urlencoded::parse(query.as_bytes())
                .filter(|(k, _)| k == "names")
                .map(|(_, v)| {
                    let api = v.rsplit('/').next().unwrap_or_default().to_owned();
                    let on = w.services.get(&api).copied().unwrap_or(false);
                    json!({"name": format!("projects/100000000001/services/{api}"),
                        "state": if on { "ENABLED" } else { "DISABLED" },
                        "parent": "projects/100000000001"})
                })
                .collect();
            Ok(json!({"services": services}))
        }
        Kind::Region(p, region) => {
            project_of(w, &p)?;
            if region != w.region {
                return Err(GoogleError::not_found(format!(
                    "The resource 'projects/{p}/regions/{region}' was not found"
                )));
            }
            let quotas: Vec<Value> = w
                .quotas
                .iter()
                .map(|(metric, q)| json!({"metric": metric, "limit": q.limit, "usage": q.usage}))
                .collect();
            Ok(
                json!({"kind": "compute#region", "name": region, "status": "UP",
                "quotas": quotas,
                "selfLink": format!("{base}/compute/v1/projects/{p}/regions/{region}")}),
            )
        }
        Kind::Subnetwork(p, region, s) => {
            project_of(w, &p)?;
            let found = w
                .subnets
                .iter()
                .find(|x| x.id == s)
                .filter(|_| region == w.region)
                .ok_or_else(|| {
                    GoogleError::not_found(format!(
                        "The resource 'projects/{p}/regions/{region}/subnetworks/{s}' was not found"
                    ))
                })?;
            let ranges = w
                .documents
                .get(&format!("gke:secondary-ranges:{s}"))
                .cloned()
                .unwrap_or_else(|| json!([]));
            Ok(json!({"kind": "compute#subnetwork", "name": found.id,
                "network": format!("https://www.googleapis.com/compute/v1/projects/{p}/global/networks/{}", found.network),
                "ipCidrRange": found.cidr, "region": region, "secondaryIpRanges": ranges}))
        }
        Kind::Impersonate(target) => auth::generate_access_token(w, &target),
        Kind::Gke(g) => container::answer(w, base, g, body),
        Kind::Vpn(v) => super::vpn::answer(w, base, v, query, body),
        Kind::Sweep(t) => super::teardown::answer(w, base, t, query),
    }
}
