//! Deleting the realm VPN's parts on Google Cloud (`destroy`, issue #20): the routes through its
//! instance (`routes.delete`, only those whose next hop is the realm's instance), the instance,
//! its static address, its two firewall rules (`<name>` and `<name>-internal`), its service
//! account, and the key's secret. Compute deletes answer an operation, followed to its end;
//! already gone is done. What is deleted, and in which order, is decided by `destroy.vpn`.

use serde_json::Value;

use super::GkeProvider;
use super::vpn::Operation;
use crate::cloud::CloudError;
use crate::cloud::vpn::def::VpnDef;
use crate::cloud::vpn::{PartFacts, VpnPart};

impl GkeProvider {
    /// DELETE `url` of Compute Engine, its operation followed; gone is done.
    async fn compute_delete(&self, op: &str, url: &str) -> Result<(), CloudError> {
        match self.rest().await?.delete::<Operation>(op, url).await? {
            Some(o) => self.finished(op, o).await,
            None => Ok(()),
        }
    }

    /// DELETE `url` of another API (Secret Manager, IAM: an empty answer); gone is done.
    async fn plain_delete(&self, op: &str, url: &str) -> Result<(), CloudError> {
        self.rest().await?.delete::<Value>(op, url).await.map(drop)
    }

    pub(super) async fn delete_part(
        &self,
        def: &VpnDef,
        part: VpnPart,
        _facts: &PartFacts,
    ) -> Result<(), CloudError> {
        match part {
            VpnPart::Routes => {
                let list: Value = self
                    .rest()
                    .await?
                    .get("compute:ListRoutes", &self.compute("global/routes"))
                    .await?
                    .unwrap_or(Value::Null);
                let hop = format!("/instances/{}", def.name);
                for r in list["items"].as_array().into_iter().flatten() {
                    let ours = r["nextHopInstance"]
                        .as_str()
                        .is_some_and(|h| h.ends_with(&hop))
                        && r["destRange"]
                            .as_str()
                            .is_some_and(|d| def.remote_cidrs.iter().any(|c| c == d));
                    if let (true, Some(name)) = (ours, r["name"].as_str()) {
                        self.compute_delete(
                            "compute:DeleteRoute",
                            &self.compute(&format!("global/routes/{name}")),
                        )
                        .await?;
                    }
                }
                Ok(())
            }
            VpnPart::Host => {
                let zone = Self::zone(def)?;
                self.compute_delete(
                    "compute:DeleteInstance",
                    &self.compute(&format!("zones/{zone}/instances/{}", def.name)),
                )
                .await
            }
            VpnPart::Address => {
                self.compute_delete(
                    "compute:DeleteAddress",
                    &self.compute(&format!(
                        "regions/{}/addresses/{}",
                        self.settings.region, def.name
                    )),
                )
                .await
            }
            VpnPart::Firewall => {
                for name in [def.name.clone(), format!("{}-internal", def.name)] {
                    self.compute_delete(
                        "compute:DeleteFirewall",
                        &self.compute(&format!("global/firewalls/{name}")),
                    )
                    .await?;
                }
                Ok(())
            }
            VpnPart::Identity => {
                let url = format!(
                    "{}/v1/projects/{}/serviceAccounts/{}",
                    self.endpoints.iam,
                    self.settings.project,
                    self.account_email(def)
                );
                self.plain_delete("iam:DeleteServiceAccount", &url).await
            }
            VpnPart::Secret => {
                self.plain_delete("secretmanager:DeleteSecret", &self.secret_url(def, ""))
                    .await
            }
        }
    }
}
