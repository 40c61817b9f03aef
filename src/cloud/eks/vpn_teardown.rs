//! Deleting the realm VPN's parts on AWS (`destroy`, issue #20): the routes through its
//! instance (`DeleteRoute`, only those), the instance (`TerminateInstances`), its Elastic IP
//! (`ReleaseAddress`), its security group, its IAM role with its inline policy and instance
//! profile, and the key's secret (deleted without a recovery window: a scheduled deletion would
//! keep the name, and a realm installed again would find it taken). What is deleted, and in
//! which order, is decided by the `destroy.vpn` step; already gone is done.

use super::EksProvider;
use super::errors::classify;
use super::vpn::POLICY;
use crate::cloud::vpn::def::VpnDef;
use crate::cloud::vpn::{Described, PartFacts, RouteTarget, VpnPart};
use crate::cloud::{CloudError, CloudErrorKind};

/// Deleting something already gone is done.
fn gone_is_done<T>(r: Result<T, CloudError>) -> Result<(), CloudError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.kind == CloudErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl EksProvider {
    pub(super) async fn delete_part(
        &self,
        def: &VpnDef,
        part: VpnPart,
        facts: &PartFacts,
    ) -> Result<(), CloudError> {
        let id = facts.id.as_str();
        match part {
            VpnPart::Routes => {
                let Described::Routes { routes, .. } = &facts.described else {
                    return Ok(());
                };
                for r in routes
                    .iter()
                    .filter(|r| matches!(r.target, RouteTarget::Host(_)))
                {
                    gone_is_done(
                        self.ec2
                            .delete_route()
                            .route_table_id(&r.table)
                            .destination_cidr_block(&r.destination)
                            .send()
                            .await
                            .map_err(|e| classify("ec2:DeleteRoute", &e)),
                    )?;
                }
                Ok(())
            }
            VpnPart::Host => gone_is_done(
                self.ec2
                    .terminate_instances()
                    .instance_ids(id)
                    .send()
                    .await
                    .map_err(|e| classify("ec2:TerminateInstances", &e)),
            ),
            VpnPart::Address => gone_is_done(
                self.ec2
                    .release_address()
                    .allocation_id(id)
                    .send()
                    .await
                    .map_err(|e| classify("ec2:ReleaseAddress", &e)),
            ),
            VpnPart::Firewall => gone_is_done(
                self.ec2
                    .delete_security_group()
                    .group_id(id)
                    .send()
                    .await
                    .map_err(|e| classify("ec2:DeleteSecurityGroup", &e)),
            ),
            VpnPart::Identity => {
                gone_is_done(
                    self.iam
                        .remove_role_from_instance_profile()
                        .instance_profile_name(&def.name)
                        .role_name(&def.name)
                        .send()
                        .await
                        .map_err(|e| classify("iam:RemoveRoleFromInstanceProfile", &e)),
                )?;
                gone_is_done(
                    self.iam
                        .delete_instance_profile()
                        .instance_profile_name(&def.name)
                        .send()
                        .await
                        .map_err(|e| classify("iam:DeleteInstanceProfile", &e)),
                )?;
                gone_is_done(
                    self.iam
                        .delete_role_policy()
                        .role_name(&def.name)
                        .policy_name(POLICY)
                        .send()
                        .await
                        .map_err(|e| classify("iam:DeleteRolePolicy", &e)),
                )?;
                gone_is_done(
                    self.iam
                        .delete_role()
                        .role_name(&def.name)
                        .send()
                        .await
                        .map_err(|e| classify("iam:DeleteRole", &e)),
                )
            }
            VpnPart::Secret => gone_is_done(
                self.secrets
                    .delete_secret()
                    .secret_id(id)
                    .force_delete_without_recovery(true)
                    .send()
                    .await
                    .map_err(|e| classify("secretsmanager:DeleteSecret", &e)),
            ),
        }
    }
}
