//! Deleting the realm VPN's parts on Azure (`destroy`, issue #20), through ARM: the routes
//! through its NIC in each cluster subnet's table (and the realm's own table, first taken off
//! the subnet it was associated with); the VM (its OS disk goes with it: it was created with
//! `deleteOption: Delete`) and then its NIC; the public IP; the network security group; the
//! role assignment on the secret and the managed identity; and the Key Vault, purged from
//! soft-delete so a realm installed again can take its name. Every delete is followed through
//! ARM's asynchronous-operation protocol; already gone is done.

use serde_json::{Value, json};

use super::AksProvider;
use crate::cloud::CloudError;
use crate::cloud::vpn::def::VpnDef;
use crate::cloud::vpn::{PartFacts, VpnPart};

impl AksProvider {
    pub(super) async fn delete_part(
        &self,
        def: &VpnDef,
        part: VpnPart,
        _facts: &PartFacts,
    ) -> Result<(), CloudError> {
        let net = &self.api.network;
        match part {
            VpnPart::Routes => {
                let own = self.own_table(def);
                for (table, subnet) in self.tables(def).await? {
                    for n in 0..def.remote_cidrs.len() {
                        self.arm
                            .delete(
                                "arm:DeleteRoute",
                                &format!("{table}/routes/{}-{n}", def.name),
                                net,
                            )
                            .await?;
                    }
                    if !table.eq_ignore_ascii_case(&own) {
                        continue;
                    }
                    // The realm's own table: off the subnet, then gone.
                    if let Some(mut s) = subnet
                        && s["properties"]["routeTable"]["id"]
                            .as_str()
                            .is_some_and(|t| t.eq_ignore_ascii_case(&own))
                    {
                        let sid = s["id"].as_str().unwrap_or_default().to_owned();
                        if let Some(p) = s["properties"].as_object_mut() {
                            p.remove("routeTable");
                        }
                        self.arm
                            .put(
                                "arm:PutSubnet",
                                &sid,
                                net,
                                &json!({"properties": s["properties"]}),
                            )
                            .await?;
                    }
                    self.arm.delete("arm:DeleteRouteTable", &own, net).await?;
                }
                Ok(())
            }
            VpnPart::Host => {
                self.arm
                    .delete(
                        "arm:DeleteVirtualMachine",
                        &self.rid(&format!("Microsoft.Compute/virtualMachines/{}", def.name)),
                        &self.api.compute,
                    )
                    .await?;
                self.arm
                    .delete("arm:DeleteNetworkInterface", &self.nic_id(def), net)
                    .await
            }
            VpnPart::Address => {
                self.arm
                    .delete(
                        "arm:DeletePublicIp",
                        &self.rid(&format!("Microsoft.Network/publicIPAddresses/{}", def.name)),
                        net,
                    )
                    .await
            }
            VpnPart::Firewall => {
                self.arm
                    .delete(
                        "arm:DeleteNetworkSecurityGroup",
                        &self.rid(&format!(
                            "Microsoft.Network/networkSecurityGroups/{}",
                            def.name
                        )),
                        net,
                    )
                    .await
            }
            VpnPart::Identity => {
                let assignments = self.role_assignments(def).await?;
                let identity = self.rid(&format!(
                    "Microsoft.ManagedIdentity/userAssignedIdentities/{}",
                    def.name
                ));
                let principal = self
                    .arm
                    .get::<Value>("arm:GetIdentity", &identity, &self.api.managed_identity)
                    .await?
                    .and_then(|mi| mi["properties"]["principalId"].as_str().map(str::to_owned));
                for a in assignments.iter().filter(|a| {
                    principal
                        .as_deref()
                        .is_some_and(|p| a["properties"]["principalId"] == p)
                }) {
                    if let Some(id) = a["id"].as_str() {
                        self.arm
                            .delete("arm:DeleteRoleAssignment", id, &self.api.authorization)
                            .await?;
                    }
                }
                self.arm
                    .delete("arm:DeleteIdentity", &identity, &self.api.managed_identity)
                    .await
            }
            VpnPart::Secret => {
                self.arm
                    .delete("arm:DeleteVault", &self.vault_id(def), &self.api.key_vault)
                    .await?;
                // Soft-delete keeps the vault's name for its retention period: purge it.
                let purge = format!(
                    "/subscriptions/{}/providers/Microsoft.KeyVault/locations/{}/deletedVaults/{}/purge",
                    self.settings.subscription, def.location, def.secret
                );
                self.arm
                    .act("arm:PurgeDeletedVault", &purge, &self.api.key_vault)
                    .await
            }
        }
    }
}
