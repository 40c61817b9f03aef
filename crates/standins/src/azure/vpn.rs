//! The realm VPN's Azure calls over the neutral [`crate::vpn::VpnWorld`] (issue #23), as the ARM
//! REST references write them: `Microsoft.KeyVault/vaults` and `vaults/secrets` (the value is
//! write-only through ARM), `Microsoft.ManagedIdentity/userAssignedIdentities`,
//! `Microsoft.Authorization/roleAssignments` (PUT at a scope, list at a scope),
//! `Microsoft.Network/networkSecurityGroups`, `publicIPAddresses`, `networkInterfaces`,
//! `routeTables` and `routeTables/routes`, a subnet's PUT (its route table association),
//! `Microsoft.Compute/virtualMachines`; and Key Vault's data plane `GET
//! {vaultUri}secrets/{name}` (the vault's URI points back at this stand-in). Creates honour
//! `If-None-Match: *`.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ArmError;
use crate::vpn::string_map;
use crate::vpn::{Address, Firewall, Host, Role, Route as NetRoute, Rule};
use crate::world::World;

/// A VPN request: the resource type (lower case) and the resource id as sent.
pub(crate) struct Req {
    kind: &'static str,
    id: String,
    /// Names after the provider namespace (type/name/child/name).
    names: Vec<String>,
}

/// The resource types served here: (namespace/type path, read action, write action).
const TYPES: &[(&[&str], &str, &str)] = &[
    (
        &["microsoft.keyvault", "vaults"],
        "Microsoft.KeyVault/vaults/read",
        "Microsoft.KeyVault/vaults/write",
    ),
    (
        &["microsoft.keyvault", "vaults", "secrets"],
        "Microsoft.KeyVault/vaults/secrets/read",
        "Microsoft.KeyVault/vaults/secrets/write",
    ),
    (
        &["microsoft.managedidentity", "userassignedidentities"],
        "Microsoft.ManagedIdentity/userAssignedIdentities/read",
        "Microsoft.ManagedIdentity/userAssignedIdentities/write",
    ),
    (
        &["microsoft.network", "networksecuritygroups"],
        "Microsoft.Network/networkSecurityGroups/read",
        "Microsoft.Network/networkSecurityGroups/write",
    ),
    (
        &["microsoft.network", "publicipaddresses"],
        "Microsoft.Network/publicIPAddresses/read",
        "Microsoft.Network/publicIPAddresses/write",
    ),
    (
        &["microsoft.network", "networkinterfaces"],
        "Microsoft.Network/networkInterfaces/read",
        "Microsoft.Network/networkInterfaces/write",
    ),
    (
        &["microsoft.network", "routetables"],
        "Microsoft.Network/routeTables/read",
        "Microsoft.Network/routeTables/write",
    ),
    (
        &["microsoft.network", "routetables", "routes"],
        "Microsoft.Network/routeTables/routes/read",
        "Microsoft.Network/routeTables/routes/write",
    ),
    (
        &["microsoft.network", "virtualnetworks", "subnets"],
        "Microsoft.Network/virtualNetworks/subnets/read",
        "Microsoft.Network/virtualNetworks/subnets/write",
    ),
    (
        &["microsoft.compute", "virtualmachines"],
        "Microsoft.Compute/virtualMachines/read",
        "Microsoft.Compute/virtualMachines/write",
    ),
];

/// Routes a VPN resource request (`seg` as sent, `l` lower-cased).
/// Routes a VPN resource request (`seg` as sent, `l` lower-cased): the action ARM authorizes it
/// by, its scope, and the request.
pub(crate) fn route(method: &Method, seg: &[&str], l: &[&str]) -> Option<(String, String, Req)> {
    if let Some(i) = l
        .windows(3)
        .position(|w| w == ["providers", "microsoft.authorization", "roleassignments"])
    {
        let scope = format!("/{}", seg[..i].join("/"));
        let write = *method == Method::PUT;
        return Some((
            if write {
                "Microsoft.Authorization/roleAssignments/write".into()
            } else {
                "Microsoft.Authorization/roleAssignments/read".into()
            },
            scope,
            Req {
                kind: "roleassignments",
                id: format!("/{}", seg.join("/")),
                names: seg[i + 3..].iter().map(|s| (*s).to_owned()).collect(),
            },
        ));
    }
    // /subscriptions/S/resourceGroups/G/providers/NS/TYPE/NAME[/CHILD/NAME]
    if l.len() < 8 || l[0] != "subscriptions" || l[2] != "resourcegroups" || l[4] != "providers" {
        return None;
    }
    let rest = &l[5..];
    let types: Vec<&str> = std::iter::once(rest[0])
        .chain(rest[1..].iter().step_by(2).copied())
        .collect();
    let (t, read, write) = TYPES.iter().find(|(t, _, _)| *t == types.as_slice())?;
    if rest.len().is_multiple_of(2) {
        return None;
    }
    Some((
        if *method == Method::PUT {
            (*write).into()
        } else {
            (*read).into()
        },
        format!("/{}", seg.join("/")),
        Req {
            kind: t.last().copied().unwrap_or_default(),
            id: format!("/{}", seg.join("/")),
            names: seg[7..]
                .iter()
                .step_by(2)
                .map(|s| (*s).to_owned())
                .collect(),
        },
    ))
}

fn missing(id: &str) -> ArmError {
    ArmError::new(
        404,
        "ResourceNotFound",
        format!("The Resource '{id}' was not found."),
    )
}

fn exists(id: &str) -> ArmError {
    ArmError::new(
        412,
        "PreconditionFailed",
        format!("The resource '{id}' already exists and If-None-Match: * was sent."),
    )
}

/// A deterministic UUID-shaped id from `seed`.
fn uuid_of(seed: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 20) & 0xfff,
        h & 0xffff_ffff_ffff
    )
}

fn doc_key(id: &str) -> String {
    format!("azure:vpn:{}", id.to_ascii_lowercase())
}

/// Whether any document of `kind` (a lower-case type, e.g. `networkinterfaces`) names `id`.
fn referenced_by(w: &World, kind: &str, id: &str) -> Option<String> {
    let needle = id.to_ascii_lowercase();
    w.documents
        .iter()
        .filter(|(k, _)| k.starts_with("azure:vpn:") && k.contains(&format!("/{kind}/")))
        .find(|(_, v)| v.to_string().to_ascii_lowercase().contains(&needle))
        .map(|(k, _)| k.trim_start_matches("azure:vpn:").to_owned())
}

/// A `DELETE` of a VPN resource: refused while another resource uses it (ARM's in-use codes),
/// 204 when there is none; a vault is soft-deleted (its name kept until purged).
fn delete(w: &mut World, req: Req) -> Result<Response, ArmError> {
    let id = req.id;
    let key = doc_key(&id);
    let name = req.names.last().cloned().unwrap_or_default();
    if !w.documents.contains_key(&key) {
        // Not the VPN's: a leftover of the same type (a public IP a controller made), if any.
        return super::teardown::delete_resource(w, &id);
    }
    let in_use = |code: &'static str, by: String| {
        Err(ArmError::new(
            400,
            code,
            format!("{id} is in use by {by} and cannot be deleted."),
        ))
    };
    match req.kind {
        "networksecuritygroups" => {
            if let Some(by) = referenced_by(w, "networkinterfaces", &id) {
                return in_use("InUseNetworkSecurityGroupCannotBeDeleted", by);
            }
            w.vpn.firewalls.remove(&name);
        }
        "publicipaddresses" => {
            if let Some(by) = referenced_by(w, "networkinterfaces", &id) {
                return in_use("PublicIPAddressInUse", by);
            }
            w.vpn.addresses.remove(&name);
        }
        "networkinterfaces" => {
            if let Some(by) = referenced_by(w, "virtualmachines", &id) {
                return in_use("NicInUse", by);
            }
        }
        "virtualmachines" => {
            w.vpn.hosts.retain(|h, _| !h.eq_ignore_ascii_case(&id));
        }
        "routetables" => {
            let table = id.to_ascii_lowercase();
            if w.documents.iter().any(|(k, v)| {
                k.starts_with("azure:subnet-rt:")
                    && v.as_str().is_some_and(|t| t.eq_ignore_ascii_case(&table))
            }) {
                return in_use("InUseRouteTableCannotBeDeleted", "a subnet".into());
            }
            w.vpn.routes.retain(|r| !r.table.eq_ignore_ascii_case(&id));
        }
        "routes" => {
            let table_id = id
                .rsplit_once("/routes/")
                .map(|x| x.0.to_owned())
                .unwrap_or_default();
            w.vpn
                .routes
                .retain(|r| !(r.table.eq_ignore_ascii_case(&table_id) && r.name == name));
            if let Some(list) = w
                .documents
                .get_mut(&doc_key(&table_id))
                .and_then(|t| t["properties"]["routes"].as_array_mut())
            {
                list.retain(|r| r["name"] != json!(name));
            }
        }
        "roleassignments" => {
            let principal = w.documents[&key]["properties"]["principalId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            for s in w.vpn.secrets.values_mut() {
                s.readers.retain(|r| r != &principal);
            }
        }
        "userassignedidentities" => {
            if let Some(r) = w.vpn.roles.remove(&name) {
                for s in w.vpn.secrets.values_mut() {
                    s.readers.retain(|x| x != &r.description);
                }
            }
        }
        "vaults" => {
            w.vpn.secrets.remove(&name);
            let prefix = format!("{key}/");
            w.documents.retain(|k, _| !k.starts_with(&prefix));
            w.documents.insert(
                format!("azure:deletedvault:{}", name.to_ascii_lowercase()),
                json!(id),
            );
        }
        other => {
            return Err(ArmError::new(
                405,
                "MethodNotAllowed",
                format!("a {other} is not deleted here"),
            ));
        }
    }
    w.documents.remove(&key);
    Ok(StatusCode::OK.into_response())
}

/// `POST …/locations/{l}/deletedVaults/{name}/purge`: a soft-deleted vault gone for good.
pub(crate) fn purge(w: &mut World, name: &str) -> Result<Response, ArmError> {
    match w
        .documents
        .remove(&format!("azure:deletedvault:{}", name.to_ascii_lowercase()))
    {
        Some(_) => Ok(StatusCode::ACCEPTED.into_response()),
        None => Err(missing(name)),
    }
}

/// Answers a VPN resource request.
pub(crate) fn answer(
    w: &mut World,
    base: &str,
    method: &Method,
    headers: &HeaderMap,
    req: Req,
    body: &[u8],
) -> Result<Response, ArmError> {
    if *method == Method::DELETE {
        return delete(w, req);
    }
    let create_only = headers
        .get("if-none-match")
        .is_some_and(|v| v.as_bytes() == b"*");
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ArmError::new(400, "InvalidRequestContent", e.to_string()))?
    };
    let put = *method == Method::PUT;
    let ok = |v: Value| {
        Ok((
            if put {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            axum::Json(v),
        )
            .into_response())
    };
    let id = req.id.clone();
    let name = req.names.last().cloned().unwrap_or_default();
    let known = w.documents.contains_key(&doc_key(&id));
    if put && create_only && known {
        return Err(exists(&id));
    }
    match (req.kind, put) {
        ("roleassignments", true) => {
            let principal = body["properties"]["principalId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let scope = id
                .split("/providers/Microsoft.Authorization/")
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if let Some(s) = w
                .vpn
                .secrets
                .values_mut()
                .find(|s| scope.starts_with(&s.id.to_ascii_lowercase()))
                && !s.readers.contains(&principal)
            {
                s.readers.push(principal);
            }
            let v = json!({"id": id, "name": name, "type": "Microsoft.Authorization/roleAssignments", "properties": body["properties"]});
            w.documents.insert(doc_key(&id), v.clone());
            ok(v)
        }
        ("roleassignments", false) => {
            let scope = id
                .split("/providers/Microsoft.Authorization/")
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let items: Vec<Value> = w
                .documents
                .iter()
                .filter(|(k, _)| {
                    k.starts_with(&format!(
                        "azure:vpn:{scope}/providers/microsoft.authorization/roleassignments/"
                    ))
                })
                .map(|(_, v)| v.clone())
                .collect();
            ok(json!({"value": items}))
        }
        (_, false) if req.kind == "subnets" => Err(missing(&id)),
        (_, false) => {
            let mut v = w
                .documents
                .get(&doc_key(&id))
                .cloned()
                .ok_or_else(|| missing(&id))?;
            refresh(w, req.kind, &name, &mut v);
            ok(v)
        }
        ("vaults", true)
            if w.documents
                .contains_key(&format!("azure:deletedvault:{}", name.to_ascii_lowercase())) =>
        {
            Err(ArmError::new(
                409,
                "ConflictError",
                format!(
                    "A vault with the same name already exists in deleted state: {name}. Purge it, or recover it."
                ),
            ))
        }
        ("vaults", true) => {
            let uri = format!("{base}/keyvault/{name}/");
            let v = json!({"id": id, "name": name, "type": "Microsoft.KeyVault/vaults", "location": body["location"],
                "tags": body["tags"], "properties": {"vaultUri": uri, "tenantId": body["properties"]["tenantId"],
                "enableRbacAuthorization": body["properties"]["enableRbacAuthorization"], "provisioningState": "Succeeded"}});
            w.vpn
                .secrets
                .entry(name.clone())
                .or_insert_with(|| crate::vpn::Secret {
                    id: id.clone(),
                    value: None,
                    tags: string_map(&body["tags"]),
                    readers: Vec::new(),
                });
            w.documents.insert(doc_key(&id), v.clone());
            ok(v)
        }
        ("secrets", true) => {
            let vault = req.names.first().cloned().unwrap_or_default();
            let Some(s) = w.vpn.secrets.get_mut(&vault) else {
                return Err(missing(
                    &id.rsplit_once("/secrets/")
                        .map(|x| x.0.to_owned())
                        .unwrap_or_default(),
                ));
            };
            s.value = body["properties"]["value"].as_str().map(str::to_owned);
            let v = json!({"id": id, "name": name, "type": "Microsoft.KeyVault/vaults/secrets",
                "properties": {"secretUri": format!("{base}/keyvault/{vault}/secrets/{name}"), "attributes": {"enabled": true}}});
            w.documents.insert(doc_key(&id), v.clone());
            ok(v)
        }
        ("userassignedidentities", true) => {
            let principal = uuid_of(&format!("principal:{id}"));
            let v = json!({"id": id, "name": name, "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                "location": body["location"], "tags": body["tags"],
                "properties": {"principalId": principal, "clientId": uuid_of(&format!("client:{id}")), "tenantId": w.tenant}});
            w.vpn.roles.insert(
                name,
                Role {
                    id: id.clone(),
                    tags: string_map(&body["tags"]),
                    description: principal,
                    ..Role::default()
                },
            );
            w.documents.insert(doc_key(&id), v.clone());
            ok(v)
        }
        ("networksecuritygroups", true) => {
            let rules = body["properties"]["securityRules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| {
                    r["properties"]["direction"] == "Inbound"
                        && r["properties"]["access"] == "Allow"
                })
                .flat_map(|r| {
                    let p = &r["properties"];
                    let proto = p["protocol"]
                        .as_str()
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    let source = p["sourceAddressPrefix"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let ports: Vec<i32> = p["destinationPortRanges"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .chain(std::iter::once(&p["destinationPortRange"]))
                        .filter_map(|x| x.as_str()?.parse().ok())
                        .collect();
                    if ports.is_empty() {
                        vec![Rule {
                            protocol: proto,
                            from: None,
                            to: None,
                            source,
                        }]
                    } else {
                        ports
                            .into_iter()
                            .map(|port| Rule {
                                protocol: proto.clone(),
                                from: Some(port),
                                to: Some(port),
                                source: source.clone(),
                            })
                            .collect()
                    }
                })
                .collect();
            w.vpn.firewalls.insert(
                name.clone(),
                Firewall {
                    id: id.clone(),
                    network: String::new(),
                    tags: string_map(&body["tags"]),
                    rules,
                    description: String::new(),
                    targets: Vec::new(),
                },
            );
            let mut v = body.clone();
            v["id"] = json!(id);
            v["name"] = json!(name);
            v["properties"]["provisioningState"] = json!("Succeeded");
            w.documents.insert(doc_key(&id), v.clone());
            ok(v)
        }
        ("publicipaddresses", true) => {
            let ip = w.vpn.public_ip();
            w.vpn.addresses.insert(
                name.clone(),
                Address {
                    id: id.clone(),
                    ip: ip.clone(),
                    tags: string_map(&body["tags"]),
                    attached_to: None,
                },
            );
            let mut v = body.clone();
            v["id"] = json!(id);
            v["name"] = json!(name);
            v["properties"]["ipAddress"] = json!(ip);
            v["properties"]["provisioningState"] = json!("Succeeded");
            w.documents.insert(doc_key(&id), v.clone());
            ok(v)
        }
        ("networkinterfaces", true) => {
            let mut v = body.clone();
            v["id"] = json!(id);
            v["name"] = json!(name);
            w.vpn.serial += 1;
            let ip = format!("10.30.0.{}", 10 + w.vpn.serial % 200);
            v["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] = json!(ip);
            v["properties"]["ipConfigurations"][0]["id"] =
                json!(format!("{id}/ipConfigurations/ipconfig1"));
            v["properties"]["provisioningState"] = json!("Succeeded");
            if let Some(pip) =
                v["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]["id"]
                    .as_str()
            {
                let pip = pip.to_ascii_lowercase();
                if let Some(a) = w
                    .vpn
                    .addresses
                    .values_mut()
                    .find(|a| a.id.to_ascii_lowercase() == pip)
                {
                    if a.attached_to
                        .as_ref()
                        .is_some_and(|x| !x.eq_ignore_ascii_case(&id))
                    {
                        return Err(ArmError::new(
                            400,
                            "PublicIPAddressInUse",
                            format!("Public IP address {pip} is in use."),
                        ));
                    }
                    a.attached_to = Some(id.clone());
                }
            }
            w.documents.insert(doc_key(&id), v.clone());
            ok(v)
        }
        ("virtualmachines", true) => {
            let nic_id = body["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let nic = w.documents.get(&doc_key(&nic_id)).cloned().ok_or_else(|| {
                ArmError::new(
                    400,
                    "InvalidResourceReference",
                    format!("Resource {nic_id} referenced by resource {id} was not found."),
                )
            })?;
            let cfg = &nic["properties"]["ipConfigurations"][0]["properties"];
            let image = &body["properties"]["storageProfile"]["imageReference"];
            let host = Host {
                id: id.clone(),
                name: name.clone(),
                size: body["properties"]["hardwareProfile"]["vmSize"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                image: format!(
                    "{}:{}:{}:{}",
                    image["publisher"].as_str().unwrap_or_default(),
                    image["offer"].as_str().unwrap_or_default(),
                    image["sku"].as_str().unwrap_or_default(),
                    image["version"].as_str().unwrap_or_default()
                ),
                subnet: cfg["subnet"]["id"].as_str().unwrap_or_default().to_owned(),
                forwarding: nic["properties"]["enableIPForwarding"]
                    .as_bool()
                    .unwrap_or(false),
                private_ip: cfg["privateIPAddress"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                interface: nic_id.clone(),
                identity: body["identity"]["userAssignedIdentities"]
                    .as_object()
                    .and_then(|o| o.keys().next().cloned()),
                firewalls: nic["properties"]["networkSecurityGroup"]["id"]
                    .as_str()
                    .map(|s| vec![s.to_owned()])
                    .unwrap_or_default(),
                user_data: body["properties"]["osProfile"]["customData"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                tags: string_map(&body["tags"]),
                token: None,
                created: std::time::Instant::now(),
            };
            w.vpn.hosts.insert(id.clone(), host);
            let mut v = body.clone();
            v["id"] = json!(id);
            v["name"] = json!(name);
            if let Some(os) = v["properties"]["osProfile"].as_object_mut() {
                // ARM never returns customData.
                os.remove("customData");
            }
            w.documents.insert(doc_key(&id), v.clone());
            let mut out = v;
            refresh(w, "virtualmachines", &name, &mut out);
            ok(out)
        }
        ("routetables", true) => {
            let mut v = body.clone();
            v["id"] = json!(id);
            v["name"] = json!(name);
            if v["properties"]["routes"].is_null() {
                v["properties"]["routes"] = json!([]);
            }
            w.documents.insert(doc_key(&id), v.clone());
            ok(v)
        }
        ("routes", true) => {
            let table_id = id
                .rsplit_once("/routes/")
                .map(|x| x.0.to_owned())
                .unwrap_or_default();
            let Some(table) = w.documents.get_mut(&doc_key(&table_id)) else {
                return Err(missing(&table_id));
            };
            let route = json!({"id": id, "name": name, "properties": body["properties"]});
            let list = table["properties"]["routes"]
                .as_array_mut()
                .expect("a route table has routes");
            list.retain(|r| r["name"] != json!(name));
            list.push(route.clone());
            w.vpn
                .routes
                .retain(|r| !(r.table.eq_ignore_ascii_case(&table_id) && r.name == name));
            w.vpn.routes.push(NetRoute {
                name,
                table: table_id,
                destination: body["properties"]["addressPrefix"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                target: body["properties"]["nextHopIpAddress"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            });
            ok(route)
        }
        ("subnets", true) => {
            if !w.subnets.iter().any(|s| s.id.eq_ignore_ascii_case(&id)) {
                return Err(missing(&id));
            }
            let key = format!("azure:subnet-rt:{}", id.to_ascii_lowercase());
            // This stand-in changes only a subnet's route table: set, or taken off.
            match body["properties"]["routeTable"]["id"].as_str() {
                Some(rt) => {
                    w.documents.insert(key, json!(rt));
                }
                None => {
                    w.documents.remove(&key);
                }
            }
            ok(json!({"id": id, "name": name, "properties": body["properties"]}))
        }
        _ => Err(ArmError::new(
            400,
            "InvalidResourceType",
            format!("{} is not served", req.kind),
        )),
    }
}

/// What a GET reads that changes after the PUT: a VM's provisioning state, an address's
/// attachment.
fn refresh(w: &World, kind: &str, name: &str, v: &mut Value) {
    match kind {
        "virtualmachines" => {
            let ready = w
                .vpn
                .hosts
                .values()
                .find(|h| h.name == name)
                .is_some_and(|h| h.created.elapsed() >= w.create_delay);
            v["properties"]["provisioningState"] =
                json!(if ready { "Succeeded" } else { "Creating" });
        }
        "publicipaddresses" => {
            if let Some(a) = w
                .vpn
                .addresses
                .get(name)
                .and_then(|a| a.attached_to.clone())
            {
                v["properties"]["ipConfiguration"] =
                    json!({"id": format!("{a}/ipConfigurations/ipconfig1")});
            }
        }
        _ => {}
    }
}

/// The route table associated with `subnet`, if any (kept beside the neutral subnet).
pub(crate) fn subnet_route_table(w: &World, subnet: &str) -> Option<String> {
    w.documents
        .get(&format!("azure:subnet-rt:{}", subnet.to_ascii_lowercase()))
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// Key Vault's data plane: `GET /keyvault/{vault}/secrets/{name}` (the vault's `vaultUri`).
pub(crate) fn data_plane(w: &World, seg: &[&str]) -> Response {
    match seg {
        ["keyvault", vault, "secrets", _name] => match w.vpn.secrets.get(*vault).and_then(|s| s.value.clone()) {
            Some(value) => (StatusCode::OK, axum::Json(json!({"value": value, "id": format!("https://{vault}.vault.azure.net/secrets/psk/1")}))).into_response(),
            None => (StatusCode::NOT_FOUND, axum::Json(json!({"error": {"code": "SecretNotFound", "message": "A secret with (name/id) psk was not found in this key vault."}}))).into_response(),
        },
        _ => (StatusCode::NOT_FOUND, axum::Json(json!({"error": {"code": "NotFound", "message": "not found"}}))).into_response(),
    }
}
