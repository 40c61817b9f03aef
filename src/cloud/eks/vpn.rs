//! The realm's VPN instance on AWS (issue #23), through the SDK's EC2, IAM and Secrets Manager
//! clients: the pre-shared key in Secrets Manager; an IAM role (in an instance profile of the
//! same name) whose only permission is reading that secret; a security group admitting only
//! the definition's rules from the internet (and anything from the VPC's own ranges, for the
//! traffic it forwards); an Elastic IP; the instance (source/destination check off, the
//! Elastic IP attached); and routes to the customer's networks through its network interface in
//! the route tables of the cluster's subnets.
//!
//! Every part is found by its name (and, for the address and the instance, its `Name` tag),
//! described in the neutral terms of [`crate::cloud::vpn`], and judged there. A create carries
//! the realm's tags in the same call (`TagSpecifications`, `Tags`), so nothing is ever untagged
//! for a moment; the instance's create has a client token derived from the definition, so a
//! create repeated after a lost answer returns the same instance.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, IamInstanceProfileSpecification, InstanceType,
    IpPermission, IpRange, ResourceType, Tag, TagSpecification,
};
use base64::Engine;
use futures::FutureExt;

use super::errors::classify;
use super::{EksProvider, absent_as_none, percent_decode};
use crate::cloud::facts::Status;
use crate::cloud::vpn::{
    BuildInputs, Built, Described, IngressRule, PartFacts, Protocol, RouteFacts, RouteTarget,
    VpnDef, VpnPart,
};
use crate::cloud::{CloudError, CloudErrorKind, CloudFuture, VpnManager};
use crate::secret::Secret;

/// The instance role's only inline policy.
pub(super) const POLICY: &str = "realmctl-read-vpn-key";

pub(super) fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| (*v).to_owned()).collect()))
        .build()
}

fn ec2_tags(def: &VpnDef) -> Vec<Tag> {
    let mut tags: Vec<Tag> = def
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    tags.push(Tag::builder().key("Name").value(&def.name).build());
    tags
}

fn spec_of(def: &VpnDef, kind: ResourceType) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(ec2_tags(def)))
        .build()
}

pub(super) fn ec2_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

fn missing(what: &str, part: VpnPart) -> CloudError {
    CloudError::new(
        CloudErrorKind::Invalid,
        format!("vpn:{part}"),
        format!("{what} is not built yet"),
    )
}

/// The ARN of the secret, the id of the instance, ... of a part built before.
fn id_of(built: &Built, part: VpnPart, needed_by: VpnPart) -> Result<&str, CloudError> {
    built
        .get(&part)
        .map(|f| f.id.as_str())
        .ok_or_else(|| missing(&format!("the VPN {part}"), needed_by))
}

/// The ingress rules of a security group from outside `internal` (the VPC's ranges), in the
/// definition's terms; a rule for all protocols or ports is kept as it is, so it differs.
fn internet_rules(perms: &[IpPermission], internal: &[String]) -> Vec<IngressRule> {
    let mut out = Vec::new();
    for p in perms {
        let proto = p.ip_protocol().unwrap_or_default();
        for r in p.ip_ranges() {
            let Some(cidr) = r.cidr_ip() else { continue };
            if internal.iter().any(|c| c == cidr) {
                continue;
            }
            let (protocol, port) = match (proto, p.from_port(), p.to_port()) {
                ("udp", Some(a), Some(b)) if a == b => (Protocol::Udp, u16::try_from(a).ok()),
                ("50" | "esp", _, _) => (Protocol::Esp, None),
                _ => (Protocol::Udp, None),
            };
            // Anything but one UDP port or ESP (TCP, all traffic, a port range) is reported as
            // a rule the definition cannot have, so it is a conflict, never adopted.
            let exact = matches!((proto, p.from_port(), p.to_port()), ("udp", Some(a), Some(b)) if a == b)
                || matches!(proto, "50" | "esp");
            out.push(IngressRule {
                protocol,
                port: if exact { port } else { None },
                source: if exact {
                    cidr.to_owned()
                } else {
                    format!("{cidr} ({proto} {:?}-{:?})", p.from_port(), p.to_port())
                },
            });
        }
    }
    out
}

fn permission(r: &IngressRule) -> IpPermission {
    let b = IpPermission::builder().ip_ranges(
        IpRange::builder()
            .cidr_ip(&r.source)
            .description("realm VPN peer")
            .build(),
    );
    match (r.protocol, r.port) {
        (Protocol::Udp, Some(p)) => b
            .ip_protocol("udp")
            .from_port(i32::from(p))
            .to_port(i32::from(p))
            .build(),
        (Protocol::Udp, None) => b.ip_protocol("udp").from_port(0).to_port(65535).build(),
        // EC2 ignores ports for protocols other than TCP, UDP and ICMP; `-1` says "all" the
        // way AWS's own examples do (and moto 5.2 fails on a protocol-50 rule without ports).
        (Protocol::Esp, _) => b.ip_protocol("50").from_port(-1).to_port(-1).build(),
    }
}

/// Resources of an IAM policy statement list (string or array).
fn policy_resources(doc: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&percent_decode(doc)) else {
        return vec!["(an unreadable policy)".into()];
    };
    let statements = match &v["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    for s in statements {
        match &s["Resource"] {
            serde_json::Value::String(r) => out.push(r.clone()),
            serde_json::Value::Array(a) => {
                out.extend(a.iter().filter_map(|r| r.as_str().map(str::to_owned)))
            }
            _ => {}
        }
    }
    out
}

impl EksProvider {
    async fn vpc_of(&self, subnet: &str) -> Result<(String, Vec<String>), CloudError> {
        let out = self
            .ec2
            .describe_subnets()
            .filters(filter("subnet-id", &[subnet]))
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeSubnets", &e))?;
        let vpc = out
            .subnets()
            .first()
            .and_then(|s| s.vpc_id())
            .ok_or_else(|| {
                CloudError::new(
                    CloudErrorKind::NotFound,
                    "ec2:DescribeSubnets",
                    format!("the VPN instance's subnet {subnet} does not exist"),
                )
            })?
            .to_owned();
        let vpcs = self
            .ec2
            .describe_vpcs()
            .vpc_ids(&vpc)
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeVpcs", &e))?;
        let mut cidrs: Vec<String> = vpcs
            .vpcs()
            .iter()
            .flat_map(|v| {
                v.cidr_block_association_set()
                    .iter()
                    .filter_map(|a| a.cidr_block().map(str::to_owned))
                    .chain(v.cidr_block().map(str::to_owned))
            })
            .collect();
        cidrs.sort();
        cidrs.dedup();
        Ok((vpc, cidrs))
    }

    async fn secret(&self, def: &VpnDef) -> Result<Option<PartFacts>, CloudError> {
        let sent = self
            .secrets
            .describe_secret()
            .secret_id(&def.secret)
            .send()
            .await;
        let Some(out) =
            absent_as_none(sent.map_err(|e| classify("secretsmanager:DescribeSecret", &e)))?
        else {
            return Ok(None);
        };
        Ok(Some(PartFacts {
            id: out.arn().unwrap_or_default().to_owned(),
            tags: out
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
            // A secret made without a value has no version yet.
            described: Described::Secret {
                has_value: out.version_ids_to_stages().is_some_and(|v| !v.is_empty()),
            },
        }))
    }

    async fn identity(&self, def: &VpnDef, built: &Built) -> Result<Option<PartFacts>, CloudError> {
        let sent = self.iam.get_role().role_name(&def.name).send().await;
        let Some(out) = absent_as_none(sent.map_err(|e| classify("iam:GetRole", &e)))? else {
            return Ok(None);
        };
        let Some(role) = out.role() else {
            return Ok(None);
        };
        let secret_arn = built.get(&VpnPart::Secret).map(|f| f.id.as_str());
        let sent = self
            .iam
            .get_role_policy()
            .role_name(&def.name)
            .policy_name(POLICY)
            .send()
            .await;
        let reads = absent_as_none(sent.map_err(|e| classify("iam:GetRolePolicy", &e)))?
            .map(|p| policy_resources(p.policy_document()))
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                if Some(r.as_str()) == secret_arn {
                    def.secret.clone()
                } else {
                    r
                }
            })
            .collect();
        let sent = self
            .iam
            .get_instance_profile()
            .instance_profile_name(&def.name)
            .send()
            .await;
        let complete = absent_as_none(sent.map_err(|e| classify("iam:GetInstanceProfile", &e)))?
            .and_then(|p| p.instance_profile().cloned())
            .is_some_and(|p| p.roles().iter().any(|r| r.role_name() == def.name));
        Ok(Some(PartFacts {
            id: role.arn().to_owned(),
            tags: role
                .tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
            described: Described::Identity { reads, complete },
        }))
    }

    /// The realm's security group, with the VPC's ranges it does not admit yet.
    async fn group(
        &self,
        def: &VpnDef,
    ) -> Result<(String, Option<(PartFacts, Vec<String>)>), CloudError> {
        let (vpc, internal) = self.vpc_of(&def.subnet).await?;
        let out = self
            .ec2
            .describe_security_groups()
            .filters(filter("group-name", &[&def.name]))
            .filters(filter("vpc-id", &[&vpc]))
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeSecurityGroups", &e))?;
        let found = out.security_groups().first().map(|g| {
            let unforwarded: Vec<String> = internal
                .iter()
                .filter(|cidr| {
                    !g.ip_permissions().iter().any(|p| {
                        p.ip_protocol() == Some("-1")
                            && p.ip_ranges()
                                .iter()
                                .any(|r| r.cidr_ip() == Some(cidr.as_str()))
                    })
                })
                .cloned()
                .collect();
            let facts = PartFacts {
                id: g.group_id().unwrap_or_default().to_owned(),
                tags: ec2_map(g.tags()),
                described: Described::Firewall {
                    ingress: internet_rules(g.ip_permissions(), &internal),
                    forwards: unforwarded.is_empty(),
                },
            };
            (facts, unforwarded)
        });
        Ok((vpc, found))
    }

    async fn firewall(&self, def: &VpnDef) -> Result<Option<PartFacts>, CloudError> {
        Ok(self.group(def).await?.1.map(|(f, _)| f))
    }

    async fn address(&self, def: &VpnDef) -> Result<Option<PartFacts>, CloudError> {
        let out = self
            .ec2
            .describe_addresses()
            .filters(filter("tag:Name", &[&def.name]))
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeAddresses", &e))?;
        Ok(out.addresses().first().map(|a| PartFacts {
            id: a.allocation_id().unwrap_or_default().to_owned(),
            tags: ec2_map(a.tags()),
            described: Described::Address {
                ip: a.public_ip().unwrap_or_default().to_owned(),
                // An empty id is no attachment (as some EC2 implementations write it).
                attached_to: a.instance_id().filter(|i| !i.is_empty()).map(str::to_owned),
            },
        }))
    }

    /// The instance and the id of its primary network interface.
    async fn host(&self, def: &VpnDef) -> Result<Option<(PartFacts, String)>, CloudError> {
        let out = self
            .ec2
            .describe_instances()
            .filters(filter("tag:Name", &[&def.name]))
            .filters(filter(
                "instance-state-name",
                &["pending", "running", "stopping", "stopped"],
            ))
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeInstances", &e))?;
        let Some(i) = out.reservations().iter().flat_map(|r| r.instances()).next() else {
            return Ok(None);
        };
        let (_, network_cidrs) = self.vpc_of(&def.subnet).await?;
        let state = i
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default();
        let status = match state.as_str() {
            "running" => Status::Active,
            "pending" => Status::Creating,
            other => Status::Other(other.to_owned()),
        };
        let eni = i
            .network_interfaces()
            .first()
            .and_then(|n| n.network_interface_id())
            .unwrap_or_default()
            .to_owned();
        Ok(Some((
            PartFacts {
                id: i.instance_id().unwrap_or_default().to_owned(),
                tags: ec2_map(i.tags()),
                described: Described::Host {
                    size: i
                        .instance_type()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                    subnet: i.subnet_id().unwrap_or_default().to_owned(),
                    forwarding: i.source_dest_check() == Some(false),
                    status,
                    private_ip: i.private_ip_address().map(str::to_owned),
                    public_ip: i
                        .public_ip_address()
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned),
                    network_cidrs,
                },
            },
            eni,
        )))
    }

    /// The route tables the route subnets use (their own association, else the VPC's main
    /// table) and the routes in them to the customer's networks.
    async fn routes(&self, def: &VpnDef, built: &Built) -> Result<Option<PartFacts>, CloudError> {
        let (vpc, _) = self.vpc_of(&def.subnet).await?;
        let host = built.get(&VpnPart::Host).map(|f| f.id.clone());
        let eni = match &host {
            Some(_) => self.host(def).await?.map(|(_, eni)| eni),
            None => None,
        };
        let out = self
            .ec2
            .describe_route_tables()
            .filters(filter("vpc-id", &[&vpc]))
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeRouteTables", &e))?;
        let tables = out.route_tables();
        let mut used = Vec::new();
        for subnet in &def.route_subnets {
            let own = tables.iter().find(|t| {
                t.associations()
                    .iter()
                    .any(|a| a.subnet_id() == Some(subnet.as_str()))
            });
            let main = || {
                tables
                    .iter()
                    .find(|t| t.associations().iter().any(|a| a.main() == Some(true)))
            };
            if let Some(t) = own.or_else(main).and_then(|t| t.route_table_id())
                && !used.iter().any(|u| u == t)
            {
                used.push(t.to_owned());
            }
        }
        let mut routes = Vec::new();
        for t in tables {
            let Some(id) = t.route_table_id() else {
                continue;
            };
            if !used.iter().any(|u| u == id) {
                continue;
            }
            for r in t.routes() {
                let Some(dest) = r.destination_cidr_block() else {
                    continue;
                };
                if !def.remote_cidrs.iter().any(|c| c == dest) {
                    continue;
                }
                let to_host = matches!((r.instance_id(), &host), (Some(i), Some(h)) if i == h)
                    || matches!((r.network_interface_id(), &eni), (Some(n), Some(e)) if n == e);
                let target = if to_host {
                    RouteTarget::Host(host.clone().unwrap_or_default())
                } else {
                    RouteTarget::Other(
                        [
                            r.instance_id(),
                            r.network_interface_id(),
                            r.gateway_id(),
                            r.nat_gateway_id(),
                            r.transit_gateway_id(),
                            r.vpc_peering_connection_id(),
                        ]
                        .into_iter()
                        .flatten()
                        .find(|t| !t.is_empty())
                        .unwrap_or("another target")
                        .to_owned(),
                    )
                };
                routes.push(RouteFacts {
                    table: id.to_owned(),
                    destination: dest.to_owned(),
                    target,
                });
            }
        }
        Ok(Some(PartFacts {
            id: vpc,
            tags: BTreeMap::new(),
            described: Described::Routes {
                tables: used,
                routes,
            },
        }))
    }

    async fn create_secret(
        &self,
        def: &VpnDef,
        built: &Built,
        key: Option<&Secret>,
    ) -> Result<(), CloudError> {
        let key = key.ok_or_else(|| missing("the pre-shared key", VpnPart::Secret))?;
        if built.contains_key(&VpnPart::Secret) {
            self.secrets
                .put_secret_value()
                .secret_id(&def.secret)
                .secret_string(key.expose())
                .send()
                .await
                .map_err(|e| classify("secretsmanager:PutSecretValue", &e))?;
            return Ok(());
        }
        let tags = def
            .tags
            .iter()
            .map(|(k, v)| {
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
            })
            .collect();
        self.secrets
            .create_secret()
            .name(&def.secret)
            .description(format!(
                "pre-shared key of the realm VPN of {} (realmctl)",
                def.realm
            ))
            .secret_string(key.expose())
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| classify("secretsmanager:CreateSecret", &e))?;
        Ok(())
    }

    async fn build_identity(&self, def: &VpnDef, built: &Built) -> Result<(), CloudError> {
        let secret = id_of(built, VpnPart::Secret, VpnPart::Identity)?;
        let tags = || {
            def.tags
                .iter()
                .filter_map(|(k, v)| {
                    aws_sdk_iam::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>()
        };
        let trust = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
        });
        let read = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret}]
        });
        let role = self.iam.get_role().role_name(&def.name).send().await;
        if absent_as_none(role.map_err(|e| classify("iam:GetRole", &e)))?.is_none() {
            self.iam
                .create_role()
                .role_name(&def.name)
                .description("the realm VPN instance: reads its pre-shared key only (realmctl)")
                .assume_role_policy_document(trust.to_string())
                .set_tags(Some(tags()))
                .send()
                .await
                .map_err(|e| classify("iam:CreateRole", &e))?;
        }
        self.iam
            .put_role_policy()
            .role_name(&def.name)
            .policy_name(POLICY)
            .policy_document(read.to_string())
            .send()
            .await
            .map_err(|e| classify("iam:PutRolePolicy", &e))?;
        let sent = self
            .iam
            .get_instance_profile()
            .instance_profile_name(&def.name)
            .send()
            .await;
        let profile = absent_as_none(sent.map_err(|e| classify("iam:GetInstanceProfile", &e)))?;
        let has_role = match profile.and_then(|p| p.instance_profile().cloned()) {
            Some(p) => p.roles().iter().any(|r| r.role_name() == def.name),
            None => {
                self.iam
                    .create_instance_profile()
                    .instance_profile_name(&def.name)
                    .set_tags(Some(tags()))
                    .send()
                    .await
                    .map_err(|e| classify("iam:CreateInstanceProfile", &e))?;
                false
            }
        };
        if !has_role {
            self.iam
                .add_role_to_instance_profile()
                .instance_profile_name(&def.name)
                .role_name(&def.name)
                .send()
                .await
                .map_err(|e| classify("iam:AddRoleToInstanceProfile", &e))?;
        }
        Ok(())
    }

    async fn build_firewall(&self, def: &VpnDef) -> Result<(), CloudError> {
        let (vpc, found) = self.group(def).await?;
        let (id, have, unforwarded) = match found {
            Some((
                PartFacts {
                    id,
                    described: Described::Firewall { ingress, .. },
                    ..
                },
                unforwarded,
            )) => (id, ingress, unforwarded),
            _ => {
                let out = self
                    .ec2
                    .create_security_group()
                    .group_name(&def.name)
                    .description(format!(
                        "realm VPN of {}: IKE and ESP from the customer gateway only (realmctl)",
                        def.realm
                    ))
                    .vpc_id(&vpc)
                    .tag_specifications(spec_of(def, ResourceType::SecurityGroup))
                    .send()
                    .await
                    .map_err(|e| classify("ec2:CreateSecurityGroup", &e))?;
                let (_, internal) = self.vpc_of(&def.subnet).await?;
                (
                    out.group_id().unwrap_or_default().to_owned(),
                    Vec::new(),
                    internal,
                )
            }
        };
        let mut perms: Vec<IpPermission> = def
            .ingress
            .iter()
            .filter(|r| !have.contains(r))
            .map(permission)
            .collect();
        // What the instance forwards comes from the VPC's own ranges.
        for cidr in &unforwarded {
            perms.push(
                IpPermission::builder()
                    .ip_protocol("-1")
                    .ip_ranges(
                        IpRange::builder()
                            .cidr_ip(cidr)
                            .description("the realm's network, forwarded to the customer")
                            .build(),
                    )
                    .build(),
            );
        }
        if perms.is_empty() {
            return Ok(());
        }
        match self
            .ec2
            .authorize_security_group_ingress()
            .group_id(&id)
            .set_ip_permissions(Some(perms))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already there (a run that died after authorising): the describe judges again.
            Err(e) => match classify("ec2:AuthorizeSecurityGroupIngress", &e) {
                c if c.kind == CloudErrorKind::Conflict => Ok(()),
                c => Err(c),
            },
        }
    }

    async fn newest_image(&self, def: &VpnDef) -> Result<String, CloudError> {
        let (owner, pattern) = def.image.split_once('/').unwrap_or(("amazon", &def.image));
        let out = self
            .ec2
            .describe_images()
            .owners(owner)
            .filters(filter("name", &[pattern]))
            .filters(filter("state", &["available"]))
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeImages", &e))?;
        out.images()
            .iter()
            .filter(|i| i.image_id().is_some())
            .max_by(|a, b| (a.creation_date(), a.name()).cmp(&(b.creation_date(), b.name())))
            .and_then(|i| i.image_id())
            .map(str::to_owned)
            .ok_or_else(|| {
                CloudError::new(
                    CloudErrorKind::NotFound,
                    "ec2:DescribeImages",
                    format!("no available image of {owner} matches {pattern} in this region"),
                )
            })
    }

    async fn build_host(
        &self,
        def: &VpnDef,
        built: &Built,
        user_data: &str,
    ) -> Result<(), CloudError> {
        let id = match built.get(&VpnPart::Host) {
            Some(f) => f.id.clone(),
            None => {
                let image = self.newest_image(def).await?;
                let firewall = id_of(built, VpnPart::Firewall, VpnPart::Host)?;
                // The same definition always sends the same token: a create repeated after
                // a lost answer returns the instance the first one made.
                let token = crate::crypto::sha256_hex(
                    format!("{}\n{}\n{}", def.realm, def.name, def.subnet).as_bytes(),
                );
                let sent = self
                    .ec2
                    .run_instances()
                    .image_id(image)
                    .instance_type(InstanceType::from(def.size.as_str()))
                    .min_count(1)
                    .max_count(1)
                    .subnet_id(&def.subnet)
                    .security_group_ids(firewall)
                    .iam_instance_profile(
                        IamInstanceProfileSpecification::builder()
                            .name(&def.name)
                            .build(),
                    )
                    .user_data(
                        base64::engine::general_purpose::STANDARD.encode(user_data.as_bytes()),
                    )
                    .tag_specifications(spec_of(def, ResourceType::Instance))
                    .tag_specifications(spec_of(def, ResourceType::Volume))
                    .client_token(&token[..64])
                    .send()
                    .await
                    .map_err(|e| classify("ec2:RunInstances", &e))?;
                sent.instances()
                    .first()
                    .and_then(|i| i.instance_id())
                    .unwrap_or_default()
                    .to_owned()
            }
        };
        self.ec2
            .modify_instance_attribute()
            .instance_id(&id)
            .source_dest_check(AttributeBooleanValue::builder().value(false).build())
            .send()
            .await
            .map_err(|e| classify("ec2:ModifyInstanceAttribute", &e))?;
        // The address is attached once the instance exists (the engine waits until it runs
        // before finishing it: EC2 refuses a pending instance).
        if let Some(PartFacts {
            described: Described::Host { public_ip, .. },
            ..
        }) = built.get(&VpnPart::Host)
            && let Some(PartFacts {
                described: Described::Address { ip, .. },
                ..
            }) = built.get(&VpnPart::Address)
            && public_ip.as_deref() != Some(ip.as_str())
        {
            self.attach_address(built).await?;
        }
        Ok(())
    }

    async fn attach_address(&self, built: &Built) -> Result<(), CloudError> {
        let Some(PartFacts {
            id: allocation,
            described: Described::Address { attached_to, .. },
            ..
        }) = built.get(&VpnPart::Address)
        else {
            return Err(missing("the VPN address", VpnPart::Host));
        };
        let host = id_of(built, VpnPart::Host, VpnPart::Host)?;
        if attached_to.as_deref() == Some(host) {
            return Ok(());
        }
        self.ec2
            .associate_address()
            .allocation_id(allocation)
            .instance_id(host)
            .send()
            .await
            .map_err(|e| classify("ec2:AssociateAddress", &e))?;
        Ok(())
    }

    async fn build_routes(&self, def: &VpnDef, built: &Built) -> Result<(), CloudError> {
        let Some((_, eni)) = self.host(def).await? else {
            return Err(missing("the VPN instance", VpnPart::Routes));
        };
        let Some(PartFacts {
            described: Described::Routes { tables, routes },
            ..
        }) = built.get(&VpnPart::Routes)
        else {
            return Err(missing("the route tables", VpnPart::Routes));
        };
        for t in tables {
            for cidr in &def.remote_cidrs {
                if routes
                    .iter()
                    .any(|r| &r.table == t && &r.destination == cidr)
                {
                    continue;
                }
                match self
                    .ec2
                    .create_route()
                    .route_table_id(t)
                    .destination_cidr_block(cidr)
                    .network_interface_id(&eni)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e) => {
                        let c = classify("ec2:CreateRoute", &e);
                        if c.kind != CloudErrorKind::Conflict {
                            return Err(c);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl VpnManager for EksProvider {
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
                VpnPart::Identity => self.identity(def, built).await,
                VpnPart::Firewall => self.firewall(def).await,
                VpnPart::Address => self.address(def).await,
                VpnPart::Host => Ok(self.host(def).await?.map(|(f, _)| f)),
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
                VpnPart::Secret => self.create_secret(def, built, with.key).await,
                VpnPart::Identity => self.build_identity(def, built).await,
                VpnPart::Firewall => self.build_firewall(def).await,
                VpnPart::Address => {
                    self.ec2
                        .allocate_address()
                        .domain(DomainType::Vpc)
                        .tag_specifications(spec_of(def, ResourceType::ElasticIp))
                        .send()
                        .await
                        .map_err(|e| classify("ec2:AllocateAddress", &e))?;
                    Ok(())
                }
                VpnPart::Host => self.build_host(def, built, with.user_data).await,
                VpnPart::Routes => self.build_routes(def, built).await,
            }
        }
        .boxed()
    }

    fn vpn_key<'a>(&'a self, def: &'a VpnDef) -> CloudFuture<'a, Secret> {
        async move {
            let out = self
                .secrets
                .get_secret_value()
                .secret_id(&def.secret)
                .send()
                .await
                .map_err(|e| classify("secretsmanager:GetSecretValue", &e))?;
            out.secret_string()
                .map(Secret::new)
                .ok_or_else(|| missing("the pre-shared key's value", VpnPart::Secret))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internet_rules_keep_only_exact_udp_ports_and_esp() {
        let range = |c: &str| IpRange::builder().cidr_ip(c).build();
        let perms = vec![
            IpPermission::builder()
                .ip_protocol("udp")
                .from_port(500)
                .to_port(500)
                .ip_ranges(range("198.51.100.7/32"))
                .build(),
            IpPermission::builder()
                .ip_protocol("50")
                .ip_ranges(range("198.51.100.7/32"))
                .build(),
            IpPermission::builder()
                .ip_protocol("-1")
                .ip_ranges(range("10.0.0.0/16"))
                .build(),
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(range("0.0.0.0/0"))
                .build(),
        ];
        let rules = internet_rules(&perms, &["10.0.0.0/16".to_owned()]);
        assert_eq!(rules.len(), 3, "{rules:?}");
        assert_eq!(rules[0].to_string(), "udp/500 from 198.51.100.7/32");
        assert_eq!(rules[1].to_string(), "esp from 198.51.100.7/32");
        assert!(rules[2].source.contains("0.0.0.0/0 (tcp"), "{rules:?}");
    }

    #[test]
    fn policy_resources_are_read_from_the_url_encoded_document() {
        let doc = "%7B%22Statement%22%3A%5B%7B%22Resource%22%3A%22arn%3Aaws%3Asecretsmanager%3Ax%22%7D%5D%7D";
        assert_eq!(policy_resources(doc), ["arn:aws:secretsmanager:x"]);
        assert_eq!(policy_resources("not json"), ["(an unreadable policy)"]);
    }
}
