//! The realm's VPN instance on Azure (issue #23), through ARM: the key in a Key Vault of its
//! own (RBAC authorization; the secret `psk` written through ARM, whose value ARM never gives
//! back); a user-assigned managed identity with "Key Vault Secrets User" on that secret alone;
//! a network security group admitting only the definition's rules from the peer (Azure's
//! default rules already deny the internet and admit the virtual network); a Standard static
//! public IP; a NIC with IP forwarding, the NSG and the public IP; the VM (Ubuntu from the
//! Marketplace, the identity, the user data as `customData`, an SSH key nobody holds); and
//! routes to the customer's networks through the NIC's address in the route table of each
//! cluster subnet (the realm's own table, associated with the subnet, where it has none).
//!
//! The key is read for the one-time reveal from Key Vault's data plane at the vault's
//! `vaultUri`, with a token for Key Vault; the URI must be a Key Vault host, or the ARM
//! endpoint's own origin when that endpoint is overridden (a stand-in).

use std::collections::BTreeMap;

use azure_core::credentials::TokenCredential;
use base64::Engine;
use futures::FutureExt;
use serde_json::{Value, json};

use super::{AksProvider, errors};
use crate::cloud::facts::Status;
use crate::cloud::vpn::{
    BuildInputs, Built, Described, IngressRule, PartFacts, Protocol, RouteFacts, RouteTarget,
    VpnDef, VpnPart, string_map,
};
use crate::cloud::{CloudError, CloudErrorKind, CloudFuture, VpnManager};
use crate::secret::Secret;

/// "Key Vault Secrets User": reads secret values, nothing else.
const SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
/// The secret's name in the realm's vault.
const SECRET: &str = "psk";
/// Key Vault's data-plane API version.
const KEY_VAULT_DATA: &str = "7.4";
/// The hosts of Key Vault's data plane in Azure's clouds.
const VAULT_SUFFIXES: &[&str] = &[
    ".vault.azure.net",
    ".vault.azure.cn",
    ".vault.usgovcloudapi.net",
];

/// A UUID-shaped name derived from `seed` (role assignments are named by GUID; the same
/// assignment always gets the same name, so a repeated PUT is the same assignment).
fn guid(seed: &str) -> String {
    let h = crate::crypto::sha256_hex(seed.as_bytes());
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// An OpenSSH public key line of a fresh Ed25519 key whose private half is dropped at once:
/// Azure requires a key for a Linux VM; nobody logs in to the VPN instance.
fn throwaway_ssh_key() -> String {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    let pair = Ed25519KeyPair::generate().expect("the random source works");
    let public = pair.public_key().as_ref();
    let mut blob = Vec::new();
    for part in [b"ssh-ed25519".as_slice(), public] {
        blob.extend_from_slice(&u32::try_from(part.len()).unwrap_or(0).to_be_bytes());
        blob.extend_from_slice(part);
    }
    format!(
        "ssh-ed25519 {} realmctl-vpn-nobody",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// The rules of a network security group in the definition's terms: its inbound allows from
/// anything but the virtual network and Azure's load balancer.
fn ingress_of(nsg: &Value) -> Vec<IngressRule> {
    let mut out = Vec::new();
    for r in nsg["properties"]["securityRules"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let p = &r["properties"];
        if p["direction"] != "Inbound" || p["access"] != "Allow" {
            continue;
        }
        let source = p["sourceAddressPrefix"].as_str().unwrap_or_default();
        if matches!(source, "VirtualNetwork" | "AzureLoadBalancer") {
            continue;
        }
        let ports: Vec<String> = p["destinationPortRanges"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(std::iter::once(&p["destinationPortRange"]))
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect();
        match p["protocol"].as_str().unwrap_or_default() {
            "Esp" => out.push(IngressRule {
                protocol: Protocol::Esp,
                port: None,
                source: source.to_owned(),
            }),
            "Udp" if !ports.is_empty() && ports.iter().all(|x| x.parse::<u16>().is_ok()) => {
                for x in ports {
                    out.push(IngressRule {
                        protocol: Protocol::Udp,
                        port: x.parse().ok(),
                        source: source.to_owned(),
                    });
                }
            }
            other => out.push(IngressRule {
                protocol: Protocol::Udp,
                port: None,
                source: format!("{source} ({other} {})", ports.join(",")),
            }),
        }
    }
    out
}

fn security_rules(rules: &[IngressRule]) -> Value {
    let mut out = Vec::new();
    let mut priority = 100;
    for r in rules {
        let (name, protocol, ports) = match (r.protocol, r.port) {
            (Protocol::Udp, Some(p)) => (format!("ike-udp-{p}"), "Udp", json!([p.to_string()])),
            (Protocol::Udp, None) => continue,
            (Protocol::Esp, _) => ("esp".to_owned(), "Esp", json!(["*"])),
        };
        out.push(json!({"name": name, "properties": {
            "priority": priority, "direction": "Inbound", "access": "Allow", "protocol": protocol,
            "sourceAddressPrefix": r.source, "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRanges": ports,
            "description": "realm VPN: the customer gateway only"}}));
        priority += 10;
    }
    Value::Array(out)
}

impl AksProvider {
    pub(super) fn rid(&self, provider_path: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{provider_path}",
            self.settings.subscription, self.settings.resource_group
        )
    }

    pub(super) fn vault_id(&self, def: &VpnDef) -> String {
        self.rid(&format!("Microsoft.KeyVault/vaults/{}", def.secret))
    }

    pub(super) fn secret_id(&self, def: &VpnDef) -> String {
        format!("{}/secrets/{SECRET}", self.vault_id(def))
    }

    pub(super) fn nic_id(&self, def: &VpnDef) -> String {
        self.rid(&format!(
            "Microsoft.Network/networkInterfaces/{}-nic",
            def.name
        ))
    }

    pub(super) fn own_table(&self, def: &VpnDef) -> String {
        self.rid(&format!(
            "Microsoft.Network/routeTables/{}-routes",
            def.name
        ))
    }

    async fn get(&self, op: &str, id: &str, api: &str) -> Result<Option<Value>, CloudError> {
        self.arm.get(op, id, api).await
    }

    async fn secret(&self, def: &VpnDef) -> Result<Option<PartFacts>, CloudError> {
        let kv = &self.api.key_vault;
        let Some(vault) = self.get("arm:GetVault", &self.vault_id(def), kv).await? else {
            return Ok(None);
        };
        let secret = self.get("arm:GetSecret", &self.secret_id(def), kv).await?;
        Ok(Some(PartFacts {
            id: vault["id"].as_str().unwrap_or_default().to_owned(),
            tags: string_map(&vault["tags"]),
            described: Described::Secret {
                has_value: secret.is_some(),
            },
        }))
    }

    /// The role assignments on the realm's secret (none when the vault is gone).
    pub(super) async fn role_assignments(&self, def: &VpnDef) -> Result<Vec<Value>, CloudError> {
        self.arm
            .list(
                "arm:ListRoleAssignments",
                &format!(
                    "{}/providers/Microsoft.Authorization/roleAssignments",
                    self.secret_id(def)
                ),
                &self.api.authorization,
            )
            .await
            .or_else(|e| {
                if e.status == Some(404) {
                    Ok(Vec::new())
                } else {
                    Err(e)
                }
            })
    }

    async fn identity(&self, def: &VpnDef) -> Result<Option<PartFacts>, CloudError> {
        let id = self.rid(&format!(
            "Microsoft.ManagedIdentity/userAssignedIdentities/{}",
            def.name
        ));
        let Some(mi) = self
            .get("arm:GetIdentity", &id, &self.api.managed_identity)
            .await?
        else {
            return Ok(None);
        };
        let principal = mi["properties"]["principalId"].as_str().unwrap_or_default();
        let list = self.role_assignments(def).await?;
        let reads = list.iter().any(|a| {
            a["properties"]["principalId"] == principal
                && a["properties"]["roleDefinitionId"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(SECRETS_USER))
        });
        Ok(Some(PartFacts {
            id: mi["id"].as_str().unwrap_or(&id).to_owned(),
            tags: string_map(&mi["tags"]),
            described: Described::Identity {
                reads: if reads {
                    vec![def.secret.clone()]
                } else {
                    Vec::new()
                },
                complete: true,
            },
        }))
    }

    async fn firewall(&self, def: &VpnDef) -> Result<Option<PartFacts>, CloudError> {
        let id = self.rid(&format!(
            "Microsoft.Network/networkSecurityGroups/{}",
            def.name
        ));
        Ok(self
            .get("arm:GetNetworkSecurityGroup", &id, &self.api.network)
            .await?
            .map(|n| PartFacts {
                id: n["id"].as_str().unwrap_or(&id).to_owned(),
                tags: string_map(&n["tags"]),
                described: Described::Firewall {
                    ingress: ingress_of(&n),
                    // AllowVnetInBound, a default rule of every NSG, admits the virtual
                    // network (realmctl adds no deny before it).
                    forwards: true,
                },
            }))
    }

    async fn address(&self, def: &VpnDef) -> Result<Option<PartFacts>, CloudError> {
        let id = self.rid(&format!("Microsoft.Network/publicIPAddresses/{}", def.name));
        Ok(self
            .get("arm:GetPublicIPAddress", &id, &self.api.network)
            .await?
            .map(|a| PartFacts {
                id: a["id"].as_str().unwrap_or(&id).to_owned(),
                tags: string_map(&a["tags"]),
                described: Described::Address {
                    ip: a["properties"]["ipAddress"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    attached_to: a["properties"]["ipConfiguration"]["id"]
                        .as_str()
                        .map(|c| c.split("/ipConfigurations/").next().unwrap_or(c).to_owned()),
                },
            }))
    }

    async fn host(&self, def: &VpnDef) -> Result<Option<PartFacts>, CloudError> {
        let id = self.rid(&format!("Microsoft.Compute/virtualMachines/{}", def.name));
        let Some(vm) = self
            .get("arm:GetVirtualMachine", &id, &self.api.compute)
            .await?
        else {
            return Ok(None);
        };
        let nic = self
            .get(
                "arm:GetNetworkInterface",
                &self.nic_id(def),
                &self.api.network,
            )
            .await?
            .unwrap_or(Value::Null);
        let cfg = &nic["properties"]["ipConfigurations"][0]["properties"];
        let subnet = cfg["subnet"]["id"].as_str().unwrap_or_default().to_owned();
        let public_ip = match cfg["publicIPAddress"]["id"].as_str() {
            Some(p) => self
                .get("arm:GetPublicIPAddress", p, &self.api.network)
                .await?
                .and_then(|a| a["properties"]["ipAddress"].as_str().map(str::to_owned)),
            None => None,
        };
        let network_cidrs = match self
            .get("arm:GetSubnet", &subnet, &self.api.network)
            .await?
        {
            Some(s) => s["properties"]["addressPrefix"]
                .as_str()
                .map(|p| vec![p.to_owned()])
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let status = match vm["properties"]["provisioningState"].as_str().unwrap_or("") {
            "Succeeded" => Status::Active,
            "Creating" | "Updating" => Status::Creating,
            "Failed" => Status::Failed("Azure reports the VM's provisioning failed".into()),
            other => Status::Other(other.to_owned()),
        };
        Ok(Some(PartFacts {
            id: vm["id"].as_str().unwrap_or(&id).to_owned(),
            tags: string_map(&vm["tags"]),
            described: Described::Host {
                size: vm["properties"]["hardwareProfile"]["vmSize"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                subnet,
                forwarding: nic["properties"]["enableIPForwarding"]
                    .as_bool()
                    .unwrap_or(false),
                status,
                private_ip: cfg["privateIPAddress"].as_str().map(str::to_owned),
                public_ip,
                network_cidrs,
            },
        }))
    }

    /// The route table each route subnet uses: its own, or the realm's (to be associated).
    pub(super) async fn tables(
        &self,
        def: &VpnDef,
    ) -> Result<Vec<(String, Option<Value>)>, CloudError> {
        let mut out: Vec<(String, Option<Value>)> = Vec::new();
        for s in &def.route_subnets {
            let subnet = self
                .get("arm:GetSubnet", s, &self.api.network)
                .await?
                .ok_or_else(|| {
                    CloudError::new(
                        CloudErrorKind::NotFound,
                        "arm:GetSubnet",
                        format!("the subnet {s} does not exist"),
                    )
                })?;
            let table = subnet["properties"]["routeTable"]["id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| self.own_table(def));
            if !out.iter().any(|(t, _)| t.eq_ignore_ascii_case(&table)) {
                out.push((table, Some(subnet)));
            }
        }
        Ok(out)
    }

    async fn routes(&self, def: &VpnDef, built: &Built) -> Result<Option<PartFacts>, CloudError> {
        let host_ip = match built.get(&VpnPart::Host).map(|f| &f.described) {
            Some(Described::Host { private_ip, .. }) => private_ip.clone(),
            _ => None,
        };
        let host = built.get(&VpnPart::Host).map(|f| f.id.clone());
        let mut tables = Vec::new();
        let mut routes = Vec::new();
        for (t, _) in self.tables(def).await? {
            if let Some(table) = self.get("arm:GetRouteTable", &t, &self.api.network).await? {
                for r in table["properties"]["routes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let p = &r["properties"];
                    let Some(dest) = p["addressPrefix"].as_str() else {
                        continue;
                    };
                    if !def.remote_cidrs.iter().any(|c| c == dest) {
                        continue;
                    }
                    let hop = p["nextHopIpAddress"]
                        .as_str()
                        .or(p["nextHopType"].as_str())
                        .unwrap_or("another next hop");
                    let target = match (&host_ip, &host) {
                        (Some(ip), Some(h)) if ip == hop => RouteTarget::Host(h.clone()),
                        _ => RouteTarget::Other(hop.to_owned()),
                    };
                    routes.push(RouteFacts {
                        table: t.clone(),
                        destination: dest.to_owned(),
                        target,
                    });
                }
            }
            tables.push(t);
        }
        Ok(Some(PartFacts {
            id: tables.first().cloned().unwrap_or_default(),
            tags: BTreeMap::new(),
            described: Described::Routes { tables, routes },
        }))
    }

    async fn build_secret(
        &self,
        def: &VpnDef,
        built: &Built,
        key: Option<&Secret>,
    ) -> Result<(), CloudError> {
        let key = key.ok_or_else(|| {
            CloudError::new(CloudErrorKind::Invalid, "vpn:secret", "no key to store")
        })?;
        let kv = &self.api.key_vault;
        if !built.contains_key(&VpnPart::Secret) {
            self.arm
                .create(
                    "arm:CreateVault",
                    &self.vault_id(def),
                    kv,
                    &json!({"location": def.location, "tags": def.tags, "properties": {
                        "tenantId": self.settings.tenant, "sku": {"family": "A", "name": "standard"},
                        "enableRbacAuthorization": true}}),
                )
                .await?;
        }
        // The value goes to ARM once, in this body; ARM never returns it.
        self.arm
            .put(
                "arm:SetSecret",
                &self.secret_id(def),
                kv,
                &json!({"properties": {"value": key.expose(), "contentType": "realm VPN pre-shared key"}}),
            )
            .await
    }

    async fn build_identity(&self, def: &VpnDef, built: &Built) -> Result<(), CloudError> {
        let id = self.rid(&format!(
            "Microsoft.ManagedIdentity/userAssignedIdentities/{}",
            def.name
        ));
        if !built.contains_key(&VpnPart::Identity) {
            self.arm
                .create(
                    "arm:CreateIdentity",
                    &id,
                    &self.api.managed_identity,
                    &json!({"location": def.location, "tags": def.tags}),
                )
                .await?;
        }
        let mi = self
            .get("arm:GetIdentity", &id, &self.api.managed_identity)
            .await?
            .ok_or_else(|| {
                CloudError::new(CloudErrorKind::NotFound, "arm:GetIdentity", "identity gone")
            })?;
        let principal = mi["properties"]["principalId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let scope = self.secret_id(def);
        let name = guid(&format!("{scope}\n{principal}\n{SECRETS_USER}"));
        match self
            .arm
            .put(
                "arm:CreateRoleAssignment",
                &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
                &self.api.authorization,
                &json!({"properties": {
                    "roleDefinitionId": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER}", self.settings.subscription),
                    "principalId": principal, "principalType": "ServicePrincipal"}}),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind == CloudErrorKind::Conflict => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn build_firewall(&self, def: &VpnDef, built: &Built) -> Result<(), CloudError> {
        let id = self.rid(&format!(
            "Microsoft.Network/networkSecurityGroups/{}",
            def.name
        ));
        let body = json!({"location": def.location, "tags": def.tags,
            "properties": {"securityRules": security_rules(&def.ingress)}});
        if built.contains_key(&VpnPart::Firewall) {
            // This realm's own group, missing some of its rules: written whole.
            self.arm
                .put(
                    "arm:UpdateNetworkSecurityGroup",
                    &id,
                    &self.api.network,
                    &body,
                )
                .await
        } else {
            self.arm
                .create(
                    "arm:CreateNetworkSecurityGroup",
                    &id,
                    &self.api.network,
                    &body,
                )
                .await
        }
    }

    async fn build_host(
        &self,
        def: &VpnDef,
        built: &Built,
        user_data: &str,
    ) -> Result<(), CloudError> {
        let need = |p: VpnPart| {
            built.get(&p).map(|f| f.id.clone()).ok_or_else(|| {
                CloudError::new(
                    CloudErrorKind::Invalid,
                    "vpn:instance",
                    format!("the VPN {p} is not built yet"),
                )
            })
        };
        let (nsg, pip, identity) = (
            need(VpnPart::Firewall)?,
            need(VpnPart::Address)?,
            need(VpnPart::Identity)?,
        );
        // The NIC is this realm's (named after the VM); writing it whole also finishes a VM
        // whose forwarding or address is missing.
        self.arm
            .put(
                "arm:PutNetworkInterface",
                &self.nic_id(def),
                &self.api.network,
                &json!({"location": def.location, "tags": def.tags, "properties": {
                    "enableIPForwarding": true,
                    "networkSecurityGroup": {"id": nsg},
                    "ipConfigurations": [{"name": "ipconfig1", "properties": {
                        "subnet": {"id": def.subnet}, "publicIPAddress": {"id": pip},
                        "privateIPAllocationMethod": "Dynamic"}}]}}),
            )
            .await?;
        if built.contains_key(&VpnPart::Host) {
            return Ok(());
        }
        let mut image = def.image.split(':');
        let mut next = || image.next().unwrap_or_default().to_owned();
        let (publisher, offer, sku, version) = (next(), next(), next(), next());
        self.arm
            .create(
                "arm:CreateVirtualMachine",
                &self.rid(&format!("Microsoft.Compute/virtualMachines/{}", def.name)),
                &self.api.compute,
                &json!({"location": def.location, "tags": def.tags,
                    "identity": {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}},
                    "properties": {
                        "hardwareProfile": {"vmSize": def.size},
                        "storageProfile": {
                            "imageReference": {"publisher": publisher, "offer": offer, "sku": sku, "version": version},
                            "osDisk": {"createOption": "FromImage", "deleteOption": "Delete"}},
                        "osProfile": {"computerName": def.name, "adminUsername": "realmvpn",
                            "customData": base64::engine::general_purpose::STANDARD.encode(user_data),
                            "linuxConfiguration": {"disablePasswordAuthentication": true, "ssh": {"publicKeys": [
                                {"path": "/home/realmvpn/.ssh/authorized_keys", "keyData": throwaway_ssh_key()}]}}},
                        "networkProfile": {"networkInterfaces": [{"id": self.nic_id(def), "properties": {"primary": true}}]}}}),
            )
            .await
    }

    async fn build_routes(&self, def: &VpnDef, built: &Built) -> Result<(), CloudError> {
        let ip = match built.get(&VpnPart::Host).map(|f| &f.described) {
            Some(Described::Host {
                private_ip: Some(ip),
                ..
            }) => ip.clone(),
            _ => {
                return Err(CloudError::new(
                    CloudErrorKind::Invalid,
                    "vpn:routes",
                    "the VPN instance has no private address yet",
                ));
            }
        };
        let net = &self.api.network;
        let own = self.own_table(def);
        for (table, subnet) in self.tables(def).await? {
            if table.eq_ignore_ascii_case(&own) {
                if self.get("arm:GetRouteTable", &own, net).await?.is_none() {
                    self.arm
                        .create(
                            "arm:CreateRouteTable",
                            &own,
                            net,
                            &json!({"location": def.location, "tags": def.tags, "properties": {}}),
                        )
                        .await?;
                }
                // Associate the realm's table with the subnet that has none.
                if let Some(mut s) = subnet
                    && s["properties"]["routeTable"].is_null()
                {
                    let sid = s["id"].as_str().unwrap_or_default().to_owned();
                    s["properties"]["routeTable"] = json!({"id": own});
                    self.arm
                        .put(
                            "arm:PutSubnet",
                            &sid,
                            net,
                            &json!({"properties": s["properties"]}),
                        )
                        .await?;
                }
            }
            for (n, cidr) in def.remote_cidrs.iter().enumerate() {
                self.arm
                    .put(
                        "arm:PutRoute",
                        &format!("{table}/routes/{}-{n}", def.name),
                        net,
                        &json!({"properties": {"addressPrefix": cidr,
                            "nextHopType": "VirtualAppliance", "nextHopIpAddress": ip}}),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Whether a vault URI may receive a Key Vault token.
    fn vault_uri_allowed(&self, uri: &url::Url) -> bool {
        let host = uri.host_str().unwrap_or_default();
        let overridden = self.settings.endpoint.is_some() && uri.origin() == self.endpoint.origin();
        uri.scheme() == "https" && (VAULT_SUFFIXES.iter().any(|s| host.ends_with(s)) || overridden)
    }

    async fn read_key(&self, def: &VpnDef) -> Result<Secret, CloudError> {
        let op = "keyvault:GetSecret";
        let vault = self
            .get("arm:GetVault", &self.vault_id(def), &self.api.key_vault)
            .await?
            .ok_or_else(|| CloudError::new(CloudErrorKind::NotFound, op, "no vault"))?;
        let uri = vault["properties"]["vaultUri"].as_str().unwrap_or_default();
        let base = url::Url::parse(uri)
            .map_err(|e| CloudError::new(CloudErrorKind::Invalid, op, e.to_string()))?;
        if !self.vault_uri_allowed(&base) {
            return Err(CloudError::new(
                CloudErrorKind::RefusedDestination,
                op,
                format!(
                    "the vault's URI {} is not a Key Vault host; no token is sent there",
                    crate::text::one_line(uri)
                ),
            ));
        }
        let url = base
            .join(&format!("secrets/{SECRET}?api-version={KEY_VAULT_DATA}"))
            .map_err(|e| CloudError::new(CloudErrorKind::Invalid, op, e.to_string()))?;
        let token = self
            .chain
            .get_token(&["https://vault.azure.net/.default"], None)
            .await
            .map_err(|e| errors::from_azure("login:token", &e))?;
        let http = crate::cloud::guard::http_client(
            &self.settings.extra_roots,
            self.settings.connect_timeout,
            self.settings.call_timeout,
        )
        .map_err(|e| CloudError::new(CloudErrorKind::Invalid, op, e))?;
        let resp = http
            .get(url.as_str())
            .bearer_auth(token.token.secret())
            .send()
            .await
            .map_err(|e| CloudError::new(CloudErrorKind::Unavailable, op, e.to_string()))?;
        let status = resp.status().as_u16();
        let body = crate::cloud::guard::read_capped(resp, 64 * 1024)
            .await
            .map_err(|e| CloudError::new(CloudErrorKind::TooLarge, op, e.to_string()))?;
        if status != 200 {
            return Err(errors::arm_error(
                op,
                status,
                None,
                format!("Key Vault answered {status}"),
                None,
            ));
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| CloudError::new(CloudErrorKind::Invalid, op, e.to_string()))?;
        v["value"]
            .as_str()
            .map(Secret::new)
            .ok_or_else(|| CloudError::new(CloudErrorKind::Invalid, op, "no value in the answer"))
    }
}

impl VpnManager for AksProvider {
    fn delete_vpn_part<'a>(
        &'a self,
        def: &'a VpnDef,
        part: VpnPart,
        facts: &'a PartFacts,
    ) -> CloudFuture<'a, ()> {
        self.delete_part(def, part, facts).boxed()
    }

    fn vpn_part<'a>(
        &'a self,
        def: &'a VpnDef,
        part: VpnPart,
        built: &'a Built,
    ) -> CloudFuture<'a, Option<PartFacts>> {
        async move {
            match part {
                VpnPart::Secret => self.secret(def).await,
                VpnPart::Identity => self.identity(def).await,
                VpnPart::Firewall => self.firewall(def).await,
                VpnPart::Address => self.address(def).await,
                VpnPart::Host => self.host(def).await,
                VpnPart::Routes => self.routes(def, built).await,
            }
        }
        .boxed()
    }

    fn build_vpn_part<'a>(
        &'a self,
        def: &'a VpnDef,
        part: VpnPart,
        built: &'a Built,
        with: &'a BuildInputs<'a>,
    ) -> CloudFuture<'a, ()> {
        async move {
            match part {
                VpnPart::Secret => self.build_secret(def, built, with.key).await,
                VpnPart::Identity => self.build_identity(def, built).await,
                VpnPart::Firewall => self.build_firewall(def, built).await,
                VpnPart::Address => {
                    self.arm
                        .create(
                            "arm:CreatePublicIPAddress",
                            &self.rid(&format!("Microsoft.Network/publicIPAddresses/{}", def.name)),
                            &self.api.network,
                            &json!({"location": def.location, "tags": def.tags,
                                "sku": {"name": "Standard"},
                                "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"}}),
                        )
                        .await
                }
                VpnPart::Host => self.build_host(def, built, with.user_data).await,
                VpnPart::Routes => self.build_routes(def, built).await,
            }
        }
        .boxed()
    }

    fn vpn_key<'a>(&'a self, def: &'a VpnDef) -> CloudFuture<'a, Secret> {
        self.read_key(def).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_rules_read_back_as_the_definition_writes_them() {
        let peer = "198.51.100.7/32".to_owned();
        let rules = vec![
            IngressRule {
                protocol: Protocol::Udp,
                port: Some(500),
                source: peer.clone(),
            },
            IngressRule {
                protocol: Protocol::Udp,
                port: Some(4500),
                source: peer.clone(),
            },
            IngressRule {
                protocol: Protocol::Esp,
                port: None,
                source: peer,
            },
        ];
        let nsg = json!({"properties": {"securityRules": security_rules(&rules)}});
        assert_eq!(ingress_of(&nsg), rules);
        let open = json!({"properties": {"securityRules": [{"properties": {"direction": "Inbound",
            "access": "Allow", "protocol": "Tcp", "sourceAddressPrefix": "*", "destinationPortRange": "22"}}]}});
        assert!(ingress_of(&open)[0].source.contains("Tcp 22"));
    }

    #[test]
    fn role_assignment_names_are_stable_guids_and_ssh_keys_are_openssh_lines() {
        let a = guid("scope\nprincipal\nrole");
        assert_eq!(a, guid("scope\nprincipal\nrole"));
        assert_ne!(a, guid("scope\nother\nrole"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        let k = throwaway_ssh_key();
        assert!(k.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"), "{k}");
    }
}
