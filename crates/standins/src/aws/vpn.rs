//! The realm VPN's AWS calls over the neutral [`crate::vpn::VpnWorld`] (issue #23), as the
//! Amazon EC2 API Reference, the IAM API Reference and the AWS Secrets Manager API Reference
//! write them: EC2's query dialect (`Filter.N.Name`, `TagSpecification.N.Tag.M.Key`,
//! `IpPermissions.N.IpRanges.M.CidrIp`, answers with `<item>` lists), IAM's query protocol
//! (`<XResponse><XResult>`), Secrets Manager's JSON 1.1 (`X-Amz-Target: secretsmanager.X`,
//! `__type` errors). Only what realmctl's EKS client calls for the VPN instance.

use std::collections::BTreeMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::query::{EC2_DENIED, IAM_DENIED, get, list, ok, url_encode, xml};
use super::{AwsError, authorize};
use crate::vpn::{Address, Firewall, Host, Role, Route, Rule};
use crate::world::World;

/// The EC2 and IAM actions answered here.
const EC2: &[&str] = &[
    "DescribeVpcs",
    "DescribeImages",
    "DescribeSecurityGroups",
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "DescribeAddresses",
    "AllocateAddress",
    "AssociateAddress",
    "DescribeInstances",
    "RunInstances",
    "ModifyInstanceAttribute",
    "DescribeRouteTables",
    "CreateRoute",
];
const IAM: &[&str] = &[
    "CreateRole",
    "PutRolePolicy",
    "GetRolePolicy",
    "CreateInstanceProfile",
    "GetInstanceProfile",
    "AddRoleToInstanceProfile",
];

/// Whether the query-protocol request `form` of `service` is a VPN call answered here (the
/// VPN instance's role is read here too; other roles by the account's own adapter).
pub(crate) fn handles(w: &World, service: &str, form: &[(String, String)]) -> bool {
    let action = get(form, "Action").unwrap_or_default();
    match service {
        "ec2" => EC2.contains(&action),
        "iam" => {
            IAM.contains(&action)
                || action == "GetRole"
                    && w.vpn
                        .roles
                        .contains_key(get(form, "RoleName").unwrap_or_default())
        }
        _ => false,
    }
}

/// `Filter.N.Name` → its values.
fn filters(form: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for n in 1.. {
        let Some(name) = get(form, &format!("Filter.{n}.Name")) else {
            break;
        };
        out.insert(name.to_owned(), list(form, &format!("Filter.{n}.Value")));
    }
    out
}

/// The tags of `TagSpecification.N` for `kind`.
fn tag_spec(form: &[(String, String)], kind: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for n in 1.. {
        let Some(rt) = get(form, &format!("TagSpecification.{n}.ResourceType")) else {
            break;
        };
        if rt != kind {
            continue;
        }
        for m in 1.. {
            let Some(k) = get(form, &format!("TagSpecification.{n}.Tag.{m}.Key")) else {
                break;
            };
            let v = get(form, &format!("TagSpecification.{n}.Tag.{m}.Value")).unwrap_or_default();
            out.insert(k.to_owned(), v.to_owned());
        }
    }
    out
}

/// Whether `tags` pass the `tag:KEY` filters.
fn tagged(tags: &BTreeMap<String, String>, f: &BTreeMap<String, Vec<String>>) -> bool {
    f.iter().all(|(k, vals)| match k.strip_prefix("tag:") {
        Some(key) => tags.get(key).is_some_and(|v| vals.contains(v)),
        None => true,
    })
}

fn tag_set(tags: &BTreeMap<String, String>) -> String {
    let items: String = tags
        .iter()
        .map(|(k, v)| {
            format!(
                "<item><key>{}</key><value>{}</value></item>",
                xml(k),
                xml(v)
            )
        })
        .collect();
    format!("<tagSet>{items}</tagSet>")
}

fn not_found(code: &'static str, what: &str) -> AwsError {
    AwsError::new(400, code, format!("{what} does not exist"))
}

/// The network of `subnet` and its range.
fn network_of(w: &World, subnet: &str) -> Option<(String, String)> {
    w.subnets
        .iter()
        .find(|s| s.id == subnet)
        .map(|s| (s.network.clone(), s.cidr.clone()))
}

/// The ranges of network `vpc` (its subnets' /16).
fn vpc_cidr(w: &World, vpc: &str) -> String {
    w.subnets
        .iter()
        .find(|s| s.network == vpc)
        .and_then(|s| {
            let mut parts = s.cidr.split('.');
            Some(format!("{}.{}.0.0/16", parts.next()?, parts.next()?))
        })
        .unwrap_or_else(|| "10.0.0.0/16".into())
}

fn state_of(w: &World, h: &Host) -> (&'static str, u8) {
    if h.created.elapsed() >= w.create_delay {
        ("running", 16)
    } else {
        ("pending", 0)
    }
}

fn instance_xml(w: &World, h: &Host) -> String {
    let (state, code) = state_of(w, h);
    let vpc = network_of(w, &h.subnet).map(|n| n.0).unwrap_or_default();
    let public = w
        .vpn
        .address_of(&h.id)
        .map(|a| format!("<ipAddress>{}</ipAddress>", xml(&a.ip)))
        .unwrap_or_default();
    let profile = h
        .identity
        .as_ref()
        .map(|i| {
            format!(
                "<iamInstanceProfile><arn>arn:aws:iam::{}:instance-profile/{}</arn><id>AIPA{:0>17}</id></iamInstanceProfile>",
                xml(&w.account),
                xml(i),
                i.len()
            )
        })
        .unwrap_or_default();
    format!(
        "<item><instanceId>{id}</instanceId><imageId>{image}</imageId><instanceState><code>{code}</code><name>{state}</name></instanceState><instanceType>{size}</instanceType><subnetId>{subnet}</subnetId><vpcId>{vpc}</vpcId><privateIpAddress>{ip}</privateIpAddress>{public}<sourceDestCheck>{sdc}</sourceDestCheck><networkInterfaceSet><item><networkInterfaceId>{eni}</networkInterfaceId><subnetId>{subnet}</subnetId></item></networkInterfaceSet>{profile}{tags}</item>",
        id = xml(&h.id),
        image = xml(&h.image),
        size = xml(&h.size),
        subnet = xml(&h.subnet),
        vpc = xml(&vpc),
        ip = xml(&h.private_ip),
        sdc = !h.forwarding,
        eni = xml(&h.interface),
        tags = tag_set(&h.tags),
    )
}

/// Answers an EC2 or IAM VPN call.
pub(crate) fn query(
    w: &mut World,
    service: &str,
    form: &[(String, String)],
) -> Result<Response, AwsError> {
    let action = get(form, "Action").unwrap_or_default().to_owned();
    let action = action.as_str();
    if service == "iam" {
        return iam(w, action, form);
    }
    authorize(w, EC2_DENIED, &format!("ec2:{action}"), "*", &[])?;
    let f = filters(form);
    let body = match action {
        "DescribeVpcs" => {
            let mut vpcs: Vec<String> = w.subnets.iter().map(|s| s.network.clone()).collect();
            vpcs.sort();
            vpcs.dedup();
            let wanted = list(form, "VpcId");
            let items: String = vpcs
                .iter()
                .filter(|v| wanted.is_empty() || wanted.contains(v))
                .map(|v| {
                    let cidr = vpc_cidr(w, v);
                    format!(
                        "<item><vpcId>{}</vpcId><cidrBlock>{c}</cidrBlock><cidrBlockAssociationSet><item><cidrBlock>{c}</cidrBlock><associationId>vpc-cidr-assoc-1</associationId><cidrBlockState><state>associated</state></cidrBlockState></item></cidrBlockAssociationSet><state>available</state><isDefault>false</isDefault></item>",
                        xml(v),
                        c = xml(&cidr)
                    )
                })
                .collect();
            format!("<vpcSet>{items}</vpcSet>")
        }
        "DescribeImages" => {
            let owners = list(form, "Owner");
            let pattern = f.get("name").and_then(|v| v.first()).cloned();
            let items: String = w
                .vpn
                .images
                .iter()
                .filter(|i| owners.is_empty() || owners.contains(&i.owner))
                .filter(|i| pattern.as_deref().is_none_or(|p| glob(p, &i.name)))
                .map(|i| {
                    format!(
                        "<item><imageId>{}</imageId><name>{}</name><imageOwnerId>137112412989</imageOwnerId><imageOwnerAlias>{}</imageOwnerAlias><creationDate>{}</creationDate><imageState>available</imageState><architecture>x86_64</architecture></item>",
                        xml(&i.id),
                        xml(&i.name),
                        xml(&i.owner),
                        xml(&i.created)
                    )
                })
                .collect();
            format!("<imagesSet>{items}</imagesSet>")
        }
        "DescribeSecurityGroups" => {
            let names = f.get("group-name").cloned().unwrap_or_default();
            let vpcs = f.get("vpc-id").cloned().unwrap_or_default();
            let items: String = w
                .vpn
                .firewalls
                .iter()
                .filter(|(n, g)| {
                    (names.is_empty() || names.contains(n))
                        && (vpcs.is_empty() || vpcs.contains(&g.network))
                })
                .map(|(n, g)| {
                    let perms: String = g
                        .rules
                        .iter()
                        .map(|r| {
                            let ports = match (r.from, r.to) {
                                (Some(a), Some(b)) => {
                                    format!("<fromPort>{a}</fromPort><toPort>{b}</toPort>")
                                }
                                _ => String::new(),
                            };
                            format!(
                                "<item><ipProtocol>{}</ipProtocol>{ports}<ipRanges><item><cidrIp>{}</cidrIp></item></ipRanges></item>",
                                xml(&r.protocol),
                                xml(&r.source)
                            )
                        })
                        .collect();
                    format!(
                        "<item><ownerId>{}</ownerId><groupId>{}</groupId><groupName>{}</groupName><groupDescription>realm VPN</groupDescription><vpcId>{}</vpcId><ipPermissions>{perms}</ipPermissions>{}</item>",
                        xml(&w.account),
                        xml(&g.id),
                        xml(n),
                        xml(&g.network),
                        tag_set(&g.tags)
                    )
                })
                .collect();
            format!("<securityGroupInfo>{items}</securityGroupInfo>")
        }
        "CreateSecurityGroup" => {
            let name = get(form, "GroupName").unwrap_or_default().to_owned();
            let vpc = get(form, "VpcId").unwrap_or_default().to_owned();
            if w.vpn.firewalls.contains_key(&name) {
                return Err(AwsError::new(
                    400,
                    "InvalidGroup.Duplicate",
                    format!("The security group '{name}' already exists for VPC '{vpc}'"),
                ));
            }
            let id = w.vpn.id("sg");
            let tags = tag_spec(form, "security-group");
            w.vpn.firewalls.insert(
                name,
                Firewall {
                    id: id.clone(),
                    network: vpc,
                    tags,
                    rules: Vec::new(),
                    description: String::new(),
                    targets: Vec::new(),
                },
            );
            format!("<return>true</return><groupId>{}</groupId>", xml(&id))
        }
        "AuthorizeSecurityGroupIngress" => {
            let id = get(form, "GroupId").unwrap_or_default().to_owned();
            let Some(g) = w.vpn.firewalls.values_mut().find(|g| g.id == id) else {
                return Err(not_found(
                    "InvalidGroup.NotFound",
                    &format!("The security group '{id}'"),
                ));
            };
            for n in 1.. {
                let Some(proto) = get(form, &format!("IpPermissions.{n}.IpProtocol")) else {
                    break;
                };
                let port = |k: &str| {
                    get(form, &format!("IpPermissions.{n}.{k}")).and_then(|p| p.parse().ok())
                };
                for cidr in (1..)
                    .map_while(|m| get(form, &format!("IpPermissions.{n}.IpRanges.{m}.CidrIp")))
                {
                    let rule = Rule {
                        protocol: proto.to_owned(),
                        from: port("FromPort"),
                        to: port("ToPort"),
                        source: cidr.to_owned(),
                    };
                    if g.rules.contains(&rule) {
                        return Err(AwsError::new(
                            400,
                            "InvalidPermission.Duplicate",
                            "the specified rule already exists",
                        ));
                    }
                    g.rules.push(rule);
                }
            }
            "<return>true</return>".to_owned()
        }
        "DescribeAddresses" => {
            let items: String = w
                .vpn
                .addresses
                .values()
                .filter(|a| tagged(&a.tags, &f))
                .map(|a| {
                    format!(
                        "<item><publicIp>{}</publicIp><allocationId>{}</allocationId><domain>vpc</domain>{}{}</item>",
                        xml(&a.ip),
                        xml(&a.id),
                        a.attached_to
                            .as_ref()
                            .map(|i| format!("<instanceId>{}</instanceId>", xml(i)))
                            .unwrap_or_default(),
                        tag_set(&a.tags)
                    )
                })
                .collect();
            format!("<addressesSet>{items}</addressesSet>")
        }
        "AllocateAddress" => {
            let id = w.vpn.id("eipalloc");
            let ip = w.vpn.public_ip();
            let tags = tag_spec(form, "elastic-ip");
            w.vpn.addresses.insert(
                id.clone(),
                Address {
                    id: id.clone(),
                    ip: ip.clone(),
                    tags,
                    attached_to: None,
                },
            );
            format!(
                "<publicIp>{}</publicIp><domain>vpc</domain><allocationId>{}</allocationId>",
                xml(&ip),
                xml(&id)
            )
        }
        "AssociateAddress" => {
            let alloc = get(form, "AllocationId").unwrap_or_default().to_owned();
            let instance = get(form, "InstanceId").unwrap_or_default().to_owned();
            let running = w
                .vpn
                .hosts
                .get(&instance)
                .map(|h| state_of(w, h).0 == "running");
            match running {
                None => {
                    return Err(not_found(
                        "InvalidInstanceID.NotFound",
                        &format!("The instance ID '{instance}'"),
                    ));
                }
                Some(false) => {
                    return Err(AwsError::new(
                        400,
                        "IncorrectInstanceState",
                        format!(
                            "The instance '{instance}' is not in a valid state for this operation."
                        ),
                    ));
                }
                Some(true) => {}
            }
            let Some(a) = w.vpn.addresses.get_mut(&alloc) else {
                return Err(not_found(
                    "InvalidAllocationID.NotFound",
                    &format!("The allocation ID '{alloc}'"),
                ));
            };
            if a.attached_to.as_deref().is_some_and(|i| i != instance) {
                return Err(AwsError::new(
                    400,
                    "Resource.AlreadyAssociated",
                    format!("resource {alloc} is already associated"),
                ));
            }
            a.attached_to = Some(instance);
            "<return>true</return><associationId>eipassoc-1</associationId>".to_owned()
        }
        "DescribeInstances" => {
            let states = f.get("instance-state-name").cloned().unwrap_or_default();
            let items: String = w
                .vpn
                .hosts
                .values()
                .filter(|h| tagged(&h.tags, &f))
                .filter(|h| {
                    states.is_empty() || states.iter().any(|s| s == state_of(w, h).0)
                })
                .map(|h| {
                    format!(
                        "<item><reservationId>r-{}</reservationId><ownerId>{}</ownerId><instancesSet>{}</instancesSet></item>",
                        xml(&h.id),
                        xml(&w.account),
                        instance_xml(w, h)
                    )
                })
                .collect();
            format!("<reservationSet>{items}</reservationSet>")
        }
        "RunInstances" => {
            let token = get(form, "ClientToken").map(str::to_owned);
            let existing = token
                .as_ref()
                .and_then(|t| w.vpn.hosts.values().find(|h| h.token.as_ref() == Some(t)));
            let host = match existing {
                Some(h) => h.clone(),
                None => {
                    let id = w.vpn.id("i");
                    let interface = w.vpn.id("eni");
                    let subnet = get(form, "SubnetId").unwrap_or_default().to_owned();
                    let private_ip = format!("10.42.0.{}", 10 + w.vpn.serial % 200);
                    let h = Host {
                        id: id.clone(),
                        name: tag_spec(form, "instance")
                            .get("Name")
                            .cloned()
                            .unwrap_or_default(),
                        size: get(form, "InstanceType").unwrap_or_default().to_owned(),
                        image: get(form, "ImageId").unwrap_or_default().to_owned(),
                        subnet,
                        forwarding: false,
                        private_ip,
                        interface,
                        identity: get(form, "IamInstanceProfile.Name").map(str::to_owned),
                        firewalls: list(form, "SecurityGroupId"),
                        user_data: get(form, "UserData").unwrap_or_default().to_owned(),
                        tags: tag_spec(form, "instance"),
                        token,
                        created: std::time::Instant::now(),
                    };
                    w.vpn.hosts.insert(id, h.clone());
                    h
                }
            };
            format!(
                "<reservationId>r-{}</reservationId><ownerId>{}</ownerId><instancesSet>{}</instancesSet>",
                xml(&host.id),
                xml(&w.account),
                instance_xml(w, &host)
            )
        }
        "ModifyInstanceAttribute" => {
            let id = get(form, "InstanceId").unwrap_or_default().to_owned();
            let Some(h) = w.vpn.hosts.get_mut(&id) else {
                return Err(not_found(
                    "InvalidInstanceID.NotFound",
                    &format!("The instance ID '{id}'"),
                ));
            };
            if let Some(v) = get(form, "SourceDestCheck.Value") {
                h.forwarding = v == "false";
            }
            "<return>true</return>".to_owned()
        }
        "DescribeRouteTables" => {
            let vpcs = f.get("vpc-id").cloned().unwrap_or_default();
            let mut nets: Vec<String> = w.subnets.iter().map(|s| s.network.clone()).collect();
            nets.sort();
            nets.dedup();
            let items: String = nets
                .iter()
                .filter(|v| vpcs.is_empty() || vpcs.contains(v))
                .map(|v| {
                    let table = main_table(v);
                    let routes: String = w
                        .vpn
                        .routes
                        .iter()
                        .filter(|r| r.table == table)
                        .map(|r| {
                            let target = if r.target.starts_with("eni-") {
                                "networkInterfaceId"
                            } else if r.target.starts_with("i-") {
                                "instanceId"
                            } else {
                                "gatewayId"
                            };
                            format!(
                                "<item><destinationCidrBlock>{}</destinationCidrBlock><{target}>{}</{target}><state>active</state><origin>CreateRoute</origin></item>",
                                xml(&r.destination),
                                xml(&r.target)
                            )
                        })
                        .collect();
                    format!(
                        "<item><routeTableId>{t}</routeTableId><vpcId>{}</vpcId><routeSet><item><destinationCidrBlock>{}</destinationCidrBlock><gatewayId>local</gatewayId><state>active</state><origin>CreateRouteTable</origin></item>{routes}</routeSet><associationSet><item><routeTableAssociationId>rtbassoc-{v}</routeTableAssociationId><routeTableId>{t}</routeTableId><main>true</main></item></associationSet><tagSet/></item>",
                        xml(v),
                        xml(&vpc_cidr(w, v)),
                        t = xml(&table),
                        v = xml(v),
                    )
                })
                .collect();
            format!("<routeTableSet>{items}</routeTableSet>")
        }
        "CreateRoute" => {
            let table = get(form, "RouteTableId").unwrap_or_default().to_owned();
            let destination = get(form, "DestinationCidrBlock")
                .unwrap_or_default()
                .to_owned();
            let target = get(form, "NetworkInterfaceId")
                .or_else(|| get(form, "InstanceId"))
                .or_else(|| get(form, "GatewayId"))
                .unwrap_or_default()
                .to_owned();
            if w.vpn
                .routes
                .iter()
                .any(|r| r.table == table && r.destination == destination)
            {
                return Err(AwsError::new(
                    400,
                    "RouteAlreadyExists",
                    format!("The route identified by {destination} already exists."),
                ));
            }
            w.vpn.routes.push(Route {
                name: String::new(),
                table,
                destination,
                target,
            });
            "<return>true</return>".to_owned()
        }
        other => {
            return Err(AwsError::new(
                400,
                "InvalidAction",
                format!("The action {other} is not valid for this web service (ec2)."),
            ));
        }
    };
    Ok(ok(action, &body, false))
}

/// The main route table of network `vpc`.
pub fn main_table(vpc: &str) -> String {
    format!("rtb-{}", vpc.trim_start_matches("vpc-"))
}

/// A DescribeImages name pattern (`*` and `?`) against `name`.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

fn role_xml(w: &World, name: &str, r: &Role) -> String {
    let tags: String = r
        .tags
        .iter()
        .map(|(k, v)| {
            format!(
                "<member><Key>{}</Key><Value>{}</Value></member>",
                xml(k),
                xml(v)
            )
        })
        .collect();
    format!(
        "<Path>/</Path><RoleName>{n}</RoleName><RoleId>AROAVPN{id:0>13}</RoleId><Arn>{arn}</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate><AssumeRolePolicyDocument>{trust}</AssumeRolePolicyDocument><Tags>{tags}</Tags>",
        n = xml(name),
        id = name.len(),
        arn = xml(&super::role_arn(&w.account, name)),
        trust = url_encode(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#
        ),
    )
}

fn profile_xml(w: &World, name: &str, r: &Role) -> String {
    let roles = if r.in_profile {
        format!("<member>{}</member>", role_xml(w, name, r))
    } else {
        String::new()
    };
    format!(
        "<InstanceProfile><Path>/</Path><InstanceProfileName>{n}</InstanceProfileName><InstanceProfileId>AIPA{id:0>17}</InstanceProfileId><Arn>arn:aws:iam::{a}:instance-profile/{n}</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate><Roles>{roles}</Roles></InstanceProfile>",
        n = xml(name),
        id = name.len(),
        a = xml(&w.account),
    )
}

fn no_entity(what: &str) -> AwsError {
    AwsError::new(404, "NoSuchEntity", format!("{what} cannot be found."))
}

/// Answers an IAM call about the VPN instance's role and instance profile.
fn iam(w: &mut World, action: &str, form: &[(String, String)]) -> Result<Response, AwsError> {
    let role = get(form, "RoleName").map(str::to_owned);
    let profile = get(form, "InstanceProfileName").map(str::to_owned);
    let name = role.clone().or(profile.clone()).unwrap_or_default();
    let arn = if role.is_some() {
        super::role_arn(&w.account, &name)
    } else {
        format!("arn:aws:iam::{}:instance-profile/{name}", w.account)
    };
    authorize(w, IAM_DENIED, &format!("iam:{action}"), &arn, &[])?;
    let result = match action {
        "GetRole" => {
            let r = w
                .vpn
                .roles
                .get(&name)
                .ok_or_else(|| no_entity(&format!("The role with name {name}")))?;
            format!("<Role>{}</Role>", role_xml(w, &name, r))
        }
        "CreateRole" => {
            if w.vpn.roles.contains_key(&name) || w.identities.contains_key(&name) {
                return Err(AwsError::new(
                    409,
                    "EntityAlreadyExists",
                    format!("Role with name {name} already exists."),
                ));
            }
            let mut tags = BTreeMap::new();
            for m in 1.. {
                let Some(k) = get(form, &format!("Tags.member.{m}.Key")) else {
                    break;
                };
                let v = get(form, &format!("Tags.member.{m}.Value")).unwrap_or_default();
                tags.insert(k.to_owned(), v.to_owned());
            }
            let r = Role {
                id: arn.clone(),
                tags,
                ..Role::default()
            };
            let out = format!("<Role>{}</Role>", role_xml(w, &name, &r));
            w.vpn.roles.insert(name, r);
            out
        }
        "PutRolePolicy" => {
            let policy = get(form, "PolicyName").unwrap_or_default().to_owned();
            let doc = get(form, "PolicyDocument").unwrap_or_default().to_owned();
            let r = w
                .vpn
                .roles
                .get_mut(&name)
                .ok_or_else(|| no_entity(&format!("The role with name {name}")))?;
            r.policies.insert(policy, doc);
            String::new()
        }
        "GetRolePolicy" => {
            let policy = get(form, "PolicyName").unwrap_or_default().to_owned();
            let doc = w
                .vpn
                .roles
                .get(&name)
                .and_then(|r| r.policies.get(&policy))
                .ok_or_else(|| no_entity(&format!("The role policy with name {policy}")))?;
            format!(
                "<RoleName>{}</RoleName><PolicyName>{}</PolicyName><PolicyDocument>{}</PolicyDocument>",
                xml(&name),
                xml(&policy),
                url_encode(doc)
            )
        }
        "CreateInstanceProfile" => {
            let r = w.vpn.roles.entry(name.clone()).or_default();
            if r.profile {
                return Err(AwsError::new(
                    409,
                    "EntityAlreadyExists",
                    format!("Instance Profile {name} already exists."),
                ));
            }
            r.profile = true;
            let r = r.clone();
            profile_xml(w, &name, &r)
        }
        "GetInstanceProfile" => {
            let r = w
                .vpn
                .roles
                .get(&name)
                .filter(|r| r.profile)
                .ok_or_else(|| no_entity(&format!("Instance Profile {name}")))?;
            profile_xml(w, &name, r)
        }
        "AddRoleToInstanceProfile" => {
            let r = w
                .vpn
                .roles
                .get_mut(&name)
                .filter(|r| r.profile)
                .ok_or_else(|| no_entity(&format!("Instance Profile {name}")))?;
            r.in_profile = true;
            String::new()
        }
        other => {
            return Err(AwsError::new(
                400,
                "InvalidAction",
                format!("The action {other} is not valid for this web service (iam)."),
            ));
        }
    };
    Ok(ok(action, &result, true))
}

/// Answers a Secrets Manager call (JSON 1.1).
pub(crate) fn secrets(w: &mut World, op: &str, body: &[u8]) -> Result<Response, AwsError> {
    let input: Value = serde_json::from_slice(body)
        .map_err(|e| AwsError::new(400, "InvalidRequestException", e.to_string()))?;
    let name = input["SecretId"]
        .as_str()
        .or(input["Name"].as_str())
        .unwrap_or_default()
        .to_owned();
    let arn = format!(
        "arn:aws:secretsmanager:{}:{}:secret:{name}-AbCdEf",
        w.region, w.account
    );
    authorize(w, (400, "AccessDeniedException"), op, &arn, &[])?;
    let missing = || {
        AwsError::new(
            400,
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        )
    };
    let out = match op {
        "secretsmanager:DescribeSecret" => {
            let s = w.vpn.secrets.get(&name).ok_or_else(missing)?;
            let tags: Vec<Value> = s
                .tags
                .iter()
                .map(|(k, v)| json!({"Key": k, "Value": v}))
                .collect();
            let versions = if s.value.is_some() {
                json!({"v1": ["AWSCURRENT"]})
            } else {
                json!({})
            };
            json!({"ARN": s.id, "Name": name, "Tags": tags, "VersionIdsToStages": versions})
        }
        "secretsmanager:CreateSecret" => {
            if w.vpn.secrets.contains_key(&name) {
                return Err(AwsError::new(
                    400,
                    "ResourceExistsException",
                    format!("The operation failed because the secret {name} already exists."),
                ));
            }
            let tags = input["Tags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| {
                            Some((
                                t["Key"].as_str()?.to_owned(),
                                t["Value"].as_str().unwrap_or_default().to_owned(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            w.vpn.secrets.insert(
                name.clone(),
                crate::vpn::Secret {
                    id: arn.clone(),
                    value: input["SecretString"].as_str().map(str::to_owned),
                    tags,
                    readers: Vec::new(),
                },
            );
            json!({"ARN": arn, "Name": name, "VersionId": "v1"})
        }
        "secretsmanager:PutSecretValue" => {
            let s = w.vpn.secrets.get_mut(&name).ok_or_else(missing)?;
            s.value = input["SecretString"].as_str().map(str::to_owned);
            json!({"ARN": s.id, "Name": name, "VersionId": "v2"})
        }
        "secretsmanager:GetSecretValue" => {
            let s = w.vpn.secrets.get(&name).ok_or_else(missing)?;
            let value = s.value.clone().ok_or_else(missing)?;
            json!({"ARN": s.id, "Name": name, "SecretString": value, "VersionId": "v1"})
        }
        other => {
            return Err(AwsError::new(
                400,
                "UnknownOperationException",
                format!("{other} is not an operation of this stand-in"),
            ));
        }
    };
    Ok((
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        out.to_string(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_match_like_describe_images() {
        assert!(glob(
            "al2023-ami-2023.*-kernel-6.1-x86_64",
            "al2023-ami-2023.11.20260427.1-kernel-6.1-x86_64"
        ));
        assert!(!glob(
            "al2023-ami-2023.*-kernel-6.1-x86_64",
            "al2023-ami-minimal-2023.11.20260427.1-kernel-6.1-x86_64"
        ));
        assert!(glob("a?c", "abc") && !glob("a?c", "ac"));
    }

    #[test]
    fn tag_specifications_and_filters_decode() {
        let f = super::super::query::form(
            b"TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=acme-vpn&TagSpecification.2.ResourceType=volume&TagSpecification.2.Tag.1.Key=x&TagSpecification.2.Tag.1.Value=y&Filter.1.Name=tag%3AName&Filter.1.Value.1=acme-vpn",
        );
        assert_eq!(tag_spec(&f, "instance")["Name"], "acme-vpn");
        assert_eq!(tag_spec(&f, "volume")["x"], "y");
        let fl = filters(&f);
        assert!(tagged(
            &[("Name".to_owned(), "acme-vpn".to_owned())].into(),
            &fl
        ));
        assert!(!tagged(&BTreeMap::new(), &fl));
    }
}
