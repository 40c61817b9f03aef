//! The realm's VPN instance on AWS (issue #23), against moto's server with the real AWS SDK
//! (EC2 instances, Elastic IPs, security groups, route tables, IAM, Secrets Manager are moto's;
//! the stand-in in front answers only what moto lacks). A VPN realm installs exactly one
//! instance with one address, a security group whose only internet ingress is UDP 500/4500 and
//! ESP from the /32, routes to each remote CIDR through it; the user data holds no key; the key
//! exists once in Secrets Manager and nowhere in the state, the artifacts or any output; the
//! install waits on the customer with what to configure, and the approval of exactly that lets
//! it finish; a re-run creates nothing; a same-named resource the realm did not create is
//! refused and left alone; SIGKILL at every step boundary and inside the instance step leaves
//! one of each.

use std::path::{Path, PathBuf};

use base64::Engine;

use crate::common::SpecOpts;
use crate::eks_moto::{Lab, install_once, moto_config};
use crate::engine_support::*;

const VPN: &str = "{enabled: true, peer: 198.51.100.7/32, routing: route-based, remoteCidrs: [192.168.10.0/24, 192.168.20.0/24]}";
const PEER: &str = "198.51.100.7/32";
const REMOTE: [&str; 2] = ["192.168.10.0/24", "192.168.20.0/24"];

/// The cloud playbook with the VPN steps at the end of phase 6.
fn vpn_playbook(dir: &Path) -> PathBuf {
    playbook(
        dir,
        [
            "steps: [{id: spec, action: spec.validate}, {id: cloud-account, action: cloud.account}, {id: vpn, action: vpn.prerequisites}, {id: node-image, action: node_image.acceptance}]",
            "steps: [{id: credentials, action: cloud.credentials}]",
            "steps: [{id: permissions, action: cloud.permissions}, {id: certificate, action: checks.certificate}]",
            "steps: [{id: artifacts, action: artifacts.render}]",
            ROLES_GATE,
            "steps: [{id: cluster, action: cluster.apply}, {id: cluster-ready, action: cluster.wait}, {id: vpn-instance, action: vpn.apply}, {id: vpn-customer, action: vpn.customer}]",
        ],
    )
}

fn vpn_spec(lab: &Lab, dir: &Path, cluster: &str) -> PathBuf {
    lab.spec(
        dir,
        SpecOpts {
            vpn: Some(VPN),
            cluster: Some(cluster.into()),
            ..SpecOpts::default()
        },
    )
}

/// What moto holds of one realm's VPN, read with the SDK straight from moto.
#[derive(Debug)]
struct Held {
    instances: Vec<aws_sdk_ec2::types::Instance>,
    addresses: Vec<aws_sdk_ec2::types::Address>,
    groups: Vec<aws_sdk_ec2::types::SecurityGroup>,
    tables: Vec<aws_sdk_ec2::types::RouteTable>,
    secrets: Vec<String>,
    vpc_cidrs: Vec<String>,
}

fn held(lab: &Lab, name: &str) -> Held {
    lab.rt.block_on(async {
        let conf = moto_config(&lab.moto.url(), "testing", "testing").await;
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        let tag = aws_sdk_ec2::types::Filter::builder()
            .name("tag:Name")
            .values(name)
            .build();
        let live = aws_sdk_ec2::types::Filter::builder()
            .name("instance-state-name")
            .values("pending")
            .values("running")
            .build();
        let r = ec2
            .describe_instances()
            .filters(tag.clone())
            .filters(live)
            .send()
            .await
            .unwrap();
        let instances = r
            .reservations()
            .iter()
            .flat_map(|r| r.instances().to_vec())
            .collect();
        let addresses = ec2
            .describe_addresses()
            .filters(tag)
            .send()
            .await
            .unwrap()
            .addresses()
            .to_vec();
        let groups = ec2
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-name")
                    .values(name)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .security_groups()
            .to_vec();
        let tables = ec2
            .describe_route_tables()
            .send()
            .await
            .unwrap()
            .route_tables()
            .to_vec();
        let vpc_cidrs = ec2
            .describe_vpcs()
            .send()
            .await
            .unwrap()
            .vpcs()
            .iter()
            .filter_map(|v| v.cidr_block().map(str::to_owned))
            .collect();
        let sm = aws_sdk_secretsmanager::Client::new(&conf);
        let secrets = sm
            .list_secrets()
            .send()
            .await
            .unwrap()
            .secret_list()
            .iter()
            .filter_map(|s| s.name().map(str::to_owned))
            .collect();
        Held {
            instances,
            addresses,
            groups,
            tables,
            secrets,
            vpc_cidrs,
        }
    })
}

/// The secret's value and the instance's user data, as moto holds them.
fn key_and_user_data(lab: &Lab, secret: &str, instance: &str) -> (String, String) {
    lab.rt.block_on(async {
        let conf = moto_config(&lab.moto.url(), "testing", "testing").await;
        let sm = aws_sdk_secretsmanager::Client::new(&conf);
        let key = sm
            .get_secret_value()
            .secret_id(secret)
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_owned();
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        let ud = ec2
            .describe_instance_attribute()
            .instance_id(instance)
            .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
            .send()
            .await
            .unwrap();
        let b64 = ud.user_data().and_then(|v| v.value()).unwrap_or_default();
        let ud = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        (key, String::from_utf8(ud).unwrap())
    })
}

/// Exactly one of each, as the definition wants it.
fn assert_one_vpn(h: &Held) {
    assert_eq!(h.instances.len(), 1, "one instance: {:?}", h.instances);
    let i = &h.instances[0];
    let id = i.instance_id().unwrap();
    assert_eq!(i.instance_type().unwrap().as_str(), "t3.small");
    assert_eq!(i.source_dest_check(), Some(false), "it forwards");
    assert!(
        i.iam_instance_profile()
            .and_then(|p| p.arn())
            .is_some_and(|a| a.ends_with("/acme-vpn")),
        "it runs as its own identity: {:?}",
        i.iam_instance_profile()
    );
    assert_eq!(h.addresses.len(), 1, "one address: {:?}", h.addresses);
    assert_eq!(h.addresses[0].instance_id(), Some(id), "attached to it");
    assert_eq!(h.groups.len(), 1, "one security group: {:?}", h.groups);
    let mut internet: Vec<String> = Vec::new();
    for p in h.groups[0].ip_permissions() {
        for r in p.ip_ranges() {
            let cidr = r.cidr_ip().unwrap();
            if h.vpc_cidrs.iter().any(|c| c == cidr) {
                continue;
            }
            // Ports mean nothing for ESP (protocol 50).
            internet.push(match p.ip_protocol().unwrap() {
                "50" => format!("esp {cidr}"),
                proto => format!("{proto} {:?} {:?} {cidr}", p.from_port(), p.to_port()),
            });
        }
    }
    internet.sort();
    // What the instance forwards comes from the realm's VPC, which it admits.
    assert!(
        h.groups[0].ip_permissions().iter().any(|p| {
            p.ip_protocol() == Some("-1")
                && p.ip_ranges()
                    .iter()
                    .any(|r| r.cidr_ip() == Some("10.20.0.0/16"))
        }),
        "the VPC's range reaches the instance: {:?}",
        h.groups[0].ip_permissions()
    );
    assert_eq!(
        internet,
        [
            format!("esp {PEER}"),
            format!("udp Some(4500) Some(4500) {PEER}"),
            format!("udp Some(500) Some(500) {PEER}"),
        ],
        "the only internet ingress is IKE and ESP from the /32"
    );
    let eni = i.network_interfaces()[0].network_interface_id().unwrap();
    for cidr in REMOTE {
        let to_it: Vec<_> = h
            .tables
            .iter()
            .flat_map(|t| t.routes())
            .filter(|r| r.destination_cidr_block() == Some(cidr))
            .collect();
        assert_eq!(to_it.len(), 1, "one route to {cidr}: {to_it:?}");
        assert_eq!(to_it[0].network_interface_id(), Some(eni), "{cidr}");
    }
    assert_eq!(h.secrets, ["acme-vpn-psk"], "the key is stored once");
}

#[test]
fn a_vpn_realm_builds_one_instance_address_firewall_routes_and_secret_and_waits_on_the_customer() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let spec = vpn_spec(&lab, dir.path(), "digibee-acme");
    let pb = vpn_playbook(dir.path());
    let state = dir.path().join("state");
    let mut outputs = Vec::new();
    // To the phase-5 gate, approved; then phase 6 builds and waits on the customer.
    let (code, v, err) = install_once(&spec, &state, &pb);
    assert_eq!(code, 3, "{v} {err}");
    outputs.push(format!("{v}{err}"));
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    let (code, v, err) = install_once(&spec, &state, &pb);
    outputs.push(format!("{v}{err}"));
    assert_eq!(code, 3, "waits on the customer's side: {v} {err}");
    let h = held(&lab, "acme-vpn");
    assert_one_vpn(&h);
    let address = h.addresses[0].public_ip().unwrap().to_owned();
    // Who acts next, and exactly what they configure.
    let st = status(&state);
    let waiting = st.to_string();
    for needle in [
        address.as_str(),
        "198.51.100.7/32",
        "192.168.10.0/24",
        "192.168.20.0/24",
        "10.20.0.0/16",
        "route-based",
        "IKEv2",
        "aes256-sha2_256-modp2048",
        "acme-vpn-psk",
    ] {
        assert!(waiting.contains(needle), "{needle} not in the status: {st}");
    }
    outputs.push(waiting);
    // The user data reads the key at boot and holds none; the key exists once, and nowhere
    // realmctl writes or prints.
    let (key, ud) = key_and_user_data(&lab, "acme-vpn-psk", h.instances[0].instance_id().unwrap());
    assert_eq!(key.len(), 43, "32 random bytes, base64url");
    assert!(!ud.contains(&key));
    assert!(ud.contains(
        "aws secretsmanager get-secret-value --region 'us-east-1' --secret-id 'acme-vpn-psk'"
    ));
    assert!(ud.contains("right=198.51.100.7"), "{ud}");
    // The customer confirms; the install finishes; a re-run creates nothing.
    let o = approve(&state, 6);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    outputs.push(format!("{:?}", text(&o)));
    let (code, v, err) = install_once(&spec, &state, &pb);
    outputs.push(format!("{v}{err}"));
    assert_eq!(code, 0, "{v} {err}");
    let creates = |lab: &Lab| {
        let w = lab.front.world();
        [
            "ec2:RunInstances",
            "ec2:AllocateAddress",
            "ec2:CreateSecurityGroup",
            "secretsmanager:CreateSecret",
            "iam:CreateRole",
            "ec2:CreateRoute",
        ]
        .map(|op| w.count(op))
    };
    assert_eq!(creates(&lab), [1, 1, 1, 1, 1, 2]);
    let (code, v, err) = install_once(&spec, &state, &pb);
    outputs.push(format!("{v}{err}"));
    assert_eq!(code, 0, "{v} {err}");
    assert!(executed(&v).is_empty(), "{v}");
    // A lost state folder over the same cloud: everything adopted, nothing created twice;
    // the customer's confirmation is asked again (it lives in the journal).
    let state2 = dir.path().join("state2");
    let (code, v, err) = install_once(&spec, &state2, &pb);
    assert_eq!(code, 3, "{v} {err}");
    assert_eq!(approve(&state2, 5).status.code(), Some(0));
    let (code, v, err) = install_once(&spec, &state2, &pb);
    outputs.push(format!("{v}{err}"));
    assert_eq!(code, 3, "{v} {err}");
    assert_eq!(creates(&lab), [1, 1, 1, 1, 1, 2]);
    assert_one_vpn(&held(&lab, "acme-vpn"));
    // The one-time reveal: the key on stdout, once; the journal records who, never the key;
    // a second reveal is refused and names the first.
    let reveal = || {
        realmctl()
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .args(["vpn", "reveal-key", "--by", "Carl Customer", "-f"])
            .arg(&spec)
            .arg("--state")
            .arg(&state)
            .output()
            .unwrap()
    };
    let o = reveal();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(
        String::from_utf8(o.stdout.clone()).unwrap(),
        format!("{key}\n")
    );
    assert!(!String::from_utf8_lossy(&o.stderr).contains(&key));
    let again = reveal();
    assert_eq!(again.status.code(), Some(1), "{:?}", text(&again));
    let (out, err) = text(&again);
    assert!(
        out.is_empty() && err.contains("already revealed to Carl Customer"),
        "{out} {err}"
    );
    outputs.push(format!("{out}{err}"));
    let audit = realmctl()
        .args(["audit", "verify", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(audit.status.code(), Some(0), "{:?}", text(&audit));
    for s in [&state, &state2] {
        for f in ["report", "status"] {
            let o = realmctl().arg(f).arg("--state").arg(s).output().unwrap();
            outputs.push(format!("{:?}", text(&o)));
        }
    }
    let md = realmctl()
        .args(["report", "--format", "md", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let report = String::from_utf8(md.stdout).unwrap();
    outputs.push(report.clone());
    assert!(
        [
            "Secrets revealed",
            "acme-vpn-psk",
            "Carl Customer",
            "Realm VPN",
            address.as_str(),
            "udp/500 from 198.51.100.7/32; udp/4500 from 198.51.100.7/32; esp from 198.51.100.7/32",
            "192.168.20.0/24 in rtb-",
        ]
        .iter()
        .all(|n| report.contains(n)),
        "the report names the reveal: {report}"
    );
    let printed: Vec<&str> = outputs.iter().map(String::as_str).collect();
    crate::common::assert_nowhere(&key, &printed, &[dir.path()]);
}

/// A spec of realm `realm` (its VPN parts are named after it) on the lab's moto, reaching
/// `remote` (realms sharing one VPC's route table need networks of their own).
fn realm_spec(lab: &Lab, dir: &Path, realm: &str, remote: [&str; 2]) -> PathBuf {
    let spec = vpn_spec(lab, dir, &format!("digibee-{realm}"));
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("\nname: acme\n", &format!("\nname: {realm}\n"))
        .replace(&REMOTE.join(", "), &remote.join(", "));
    std::fs::write(&spec, text).unwrap();
    spec
}

fn moto_sdk<T>(lab: &Lab, f: impl AsyncFnOnce(aws_sdk_ec2::Client) -> T) -> T {
    lab.rt.block_on(async {
        let conf = moto_config(&lab.moto.url(), "testing", "testing").await;
        f(aws_sdk_ec2::Client::new(&conf)).await
    })
}

/// The lab's VPC (the one with the realm's subnets).
async fn lab_vpc(ec2: &aws_sdk_ec2::Client) -> String {
    let v = ec2.describe_vpcs().send().await.unwrap();
    v.vpcs()
        .iter()
        .find(|v| v.cidr_block() == Some("10.20.0.0/16"))
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_owned()
}

/// Runs to the phase-5 gate, approves it, and returns why phase 6 then failed.
fn refused_in_phase_6(spec: &Path, state: &Path, pb: &Path) -> String {
    assert_eq!(install_once(spec, state, pb).0, 3);
    assert_eq!(approve(state, 5).status.code(), Some(0));
    let (code, v, err) = install_once(spec, state, pb);
    assert_eq!(code, 1, "{v} {err}");
    v["message"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn a_same_named_firewall_or_a_route_this_realm_did_not_make_is_refused_and_left_alone() {
    // A security group called like the realm's, made by someone else: refused, untouched,
    // nothing after it built.
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let spec = vpn_spec(&lab, dir.path(), "digibee-acme");
    let pb = vpn_playbook(dir.path());
    let state = dir.path().join("state");
    moto_sdk(&lab, async |ec2| {
        let vpc = lab_vpc(&ec2).await;
        ec2.create_security_group()
            .group_name("acme-vpn")
            .description("someone else's")
            .vpc_id(&vpc)
            .send()
            .await
            .unwrap();
    });
    let msg = refused_in_phase_6(&spec, &state, &pb);
    assert!(
        msg.contains("VPN firewall") && msg.contains("not created by realmctl"),
        "{msg}"
    );
    let h = held(&lab, "acme-vpn");
    assert!(h.groups[0].ip_permissions().is_empty(), "left alone");
    assert!(h.instances.is_empty() && h.addresses.is_empty());
    assert_eq!(
        lab.front.world().count("ec2:AuthorizeSecurityGroupIngress"),
        0
    );

    // A route to a customer network through something else: refused, never replaced.
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let spec = vpn_spec(&lab, dir.path(), "digibee-acme");
    let pb = vpn_playbook(dir.path());
    let state = dir.path().join("state");
    let igw = moto_sdk(&lab, async |ec2| {
        let vpc = lab_vpc(&ec2).await;
        let igw = ec2.create_internet_gateway().send().await.unwrap();
        let igw = igw
            .internet_gateway()
            .unwrap()
            .internet_gateway_id()
            .unwrap()
            .to_owned();
        ec2.attach_internet_gateway()
            .internet_gateway_id(&igw)
            .vpc_id(&vpc)
            .send()
            .await
            .unwrap();
        let tables = ec2.describe_route_tables().send().await.unwrap();
        let main = tables
            .route_tables()
            .iter()
            .find(|t| t.vpc_id() == Some(vpc.as_str()))
            .unwrap()
            .route_table_id()
            .unwrap()
            .to_owned();
        ec2.create_route()
            .route_table_id(main)
            .destination_cidr_block(REMOTE[0])
            .gateway_id(&igw)
            .send()
            .await
            .unwrap();
        igw
    });
    let msg = refused_in_phase_6(&spec, &state, &pb);
    assert!(msg.contains(REMOTE[0]) && msg.contains(&igw), "{msg}");
    let h = held(&lab, "acme-vpn");
    let to_remote: Vec<_> = h
        .tables
        .iter()
        .flat_map(|t| t.routes())
        .filter(|r| r.destination_cidr_block() == Some(REMOTE[0]))
        .collect();
    assert_eq!(to_remote.len(), 1);
    assert_eq!(
        to_remote[0].gateway_id(),
        Some(igw.as_str()),
        "never replaced"
    );
    assert_eq!(lab.front.world().count("ec2:CreateRoute"), 0, "none added");
}

/// SIGKILL at every boundary of the VPN steps and on both sides of every part's intent and
/// build inside `vpn.apply`: after unlocking and resuming, the realm has exactly one
/// instance, address, security group, secret and route per remote network; every part was
/// created once over all cases.
#[cfg(feature = "test-actions")]
#[test]
fn sigkill_at_every_vpn_step_boundary_and_inside_the_instance_step_leaves_one_of_each() {
    let lab = Lab::new();
    let root = tempfile::tempdir().unwrap();
    let mut points: Vec<String> = [
        "vpn-instance:started",
        "vpn-instance:acted",
        "vpn-instance:succeeded",
        "vpn-customer:started",
        "vpn-customer:acted",
    ]
    .map(str::to_owned)
    .to_vec();
    for part in [
        "secret", "identity", "firewall", "instance", "address", "routes",
    ] {
        points.push(format!("vpn-instance:at:intent-vpn-{part}"));
        points.push(format!("vpn-instance:at:built-vpn-{part}"));
    }
    let env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    for (i, point) in points.iter().enumerate() {
        let realm = format!("v{i:02}");
        let dir = root.path().join(&realm);
        let remote = [
            format!("172.31.{}.0/24", 2 * i),
            format!("172.31.{}.0/24", 2 * i + 1),
        ];
        let spec = realm_spec(&lab, &dir, &realm, [&remote[0], &remote[1]]);
        let pb = vpn_playbook(&dir);
        let state = dir.join("state");
        crate::eks_moto::to_gate_and_approve(&spec, &state, &pb, &env);
        crate::eks_moto::killed_at(&spec, &state, &pb, point, &env);
        crate::eks_moto::unlock(&state);
        let (code, v, err) = install_once(&spec, &state, &pb);
        assert_eq!(code, 3, "{point}: waits on the customer: {v} {err}");
        let h = held(&lab, &format!("{realm}-vpn"));
        assert_eq!(h.instances.len(), 1, "{point}");
        assert_eq!(h.addresses.len(), 1, "{point}");
        assert_eq!(
            h.addresses[0].instance_id(),
            h.instances[0].instance_id(),
            "{point}"
        );
        assert_eq!(h.groups.len(), 1, "{point}");
        assert_eq!(h.instances[0].source_dest_check(), Some(false), "{point}");
        let eni = h.instances[0].network_interfaces()[0].network_interface_id();
        for cidr in &remote {
            let to: Vec<_> = h
                .tables
                .iter()
                .flat_map(|t| t.routes())
                .filter(|r| r.destination_cidr_block() == Some(cidr))
                .collect();
            assert_eq!(to.len(), 1, "{point}: {cidr}");
            assert_eq!(to[0].network_interface_id(), eni, "{point}: {cidr}");
        }
    }
    let w = lab.front.world();
    for op in [
        "ec2:RunInstances",
        "ec2:AllocateAddress",
        "ec2:CreateSecurityGroup",
        "secretsmanager:CreateSecret",
        "iam:CreateRole",
    ] {
        assert_eq!(w.count(op), points.len(), "{op}: one per case, never two");
    }
}

/// `destroy` of a VPN realm (issue #20): the plan lists every part of the VPN, and once the
/// customer approves it, the routes through the instance, the instance, its address, security
/// group, IAM role and instance profile and the key's secret are all gone, each deleted once.
#[test]
fn destroy_deletes_every_part_of_the_realm_vpn_once() {
    use crate::destroy_eks::{destroy, destroy_approved, ids, plan};
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let spec = vpn_spec(&lab, dir.path(), "digibee-acme");
    let pb = vpn_playbook(dir.path());
    let state = dir.path().join("state");
    assert_eq!(install_once(&spec, &state, &pb).0, 3);
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    assert_eq!(install_once(&spec, &state, &pb).0, 3);
    assert_eq!(approve(&state, 6).status.code(), Some(0));
    let (code, v, err) = install_once(&spec, &state, &pb);
    assert_eq!(code, 0, "{v} {err}");
    assert_one_vpn(&held(&lab, "acme-vpn"));
    let from = lab.front.world().calls.len();

    let p = plan(&spec, &state, &[]);
    let kinds: Vec<String> = p["delete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].to_string())
        .collect();
    for part in [
        "routes", "instance", "address", "firewall", "identity", "secret",
    ] {
        assert!(
            kinds.contains(&format!(
                "{{\"vpn\":\"{}\"}}",
                if part == "instance" { "host" } else { part }
            )),
            "{part} in {p}"
        );
    }
    assert!(ids(&p, "keep").is_empty(), "{p}");
    let (code, v, err) = destroy_approved(&spec, &state, &[]);
    assert_eq!(code, 0, "{v} {err}");
    crate::destroy_eks::assert_destroy_policy_grants_every_call(&lab, &spec, from);
    let h = held(&lab, "acme-vpn");
    assert!(h.instances.is_empty(), "{:?}", h.instances);
    assert!(h.addresses.is_empty(), "{:?}", h.addresses);
    assert!(h.groups.is_empty(), "{:?}", h.groups);
    assert!(h.secrets.is_empty(), "{:?}", h.secrets);
    for cidr in REMOTE {
        assert!(
            !h.tables
                .iter()
                .flat_map(|t| t.routes())
                .any(|r| r.destination_cidr_block() == Some(cidr)),
            "the route to {cidr} is gone"
        );
    }
    let role = lab.rt.block_on(async {
        let conf = moto_config(&lab.moto.url(), "testing", "testing").await;
        aws_sdk_iam::Client::new(&conf)
            .get_role()
            .role_name("acme-vpn")
            .send()
            .await
    });
    assert!(role.is_err(), "the instance's role is gone");
    let w = lab.front.world();
    for op in [
        "ec2:TerminateInstances",
        "ec2:ReleaseAddress",
        "iam:DeleteRole",
        "secretsmanager:DeleteSecret",
    ] {
        assert_eq!(w.count(op), 1, "{op}");
    }
    drop(w);
    let (code, v, err) = destroy(&spec, &state, &[], &[]);
    assert_eq!(code, 0, "a second destroy does nothing: {v} {err}");
    assert!(executed(&v).is_empty());
}
