//! Realm VPN prerequisites (pure): single /32 peer, route-based tunnel, no overlapping networks.
//!
//! The rules and the platform ranges come from `playbooks/requirements/vpn.yaml`.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Category, CheckResult};
use crate::requirements::VpnRequirements;
use crate::spec::{Routing, VpnSpec};

const CAT: Category = Category::Vpn;

/// The VPN findings; empty when the VPN is not enabled.
pub fn check(vpn: &VpnSpec, rules: &VpnRequirements) -> Vec<CheckResult> {
    if !vpn.enabled {
        return Vec::new();
    }
    vec![peer(vpn, rules), routing(vpn), overlaps(vpn, rules)]
}

fn peer(vpn: &VpnSpec, rules: &VpnRequirements) -> CheckResult {
    let Some(p) = vpn.peer else {
        return CheckResult::fail(
            "vpn.peer",
            CAT,
            "vpn.peer",
            "no phase-1 peer given",
            "set vpn.peer to the customer gateway's public IPv4 address as a /32",
        );
    };
    let subject = p.to_string();
    match p {
        IpNet::V4(v4) if v4.prefix_len() == rules.peer_prefix_length => {
            let ip = IpAddr::V4(v4.addr());
            if is_non_public(ip) {
                CheckResult::fail(
                    "vpn.peer",
                    CAT,
                    subject,
                    format!("the peer {ip} is not a public address"),
                    "use the public address the customer gateway terminates IPSec on",
                )
            } else {
                CheckResult::pass("vpn.peer", CAT, subject, "the phase-1 peer is a single /32")
            }
        }
        IpNet::V4(v4) => CheckResult::fail(
            "vpn.peer",
            CAT,
            subject,
            format!(
                "the phase-1 peer is a /{} range, not a single /{}",
                v4.prefix_len(),
                rules.peer_prefix_length
            ),
            "set vpn.peer to exactly one gateway address, e.g. 198.51.100.7/32",
        ),
        IpNet::V6(_) => CheckResult::fail(
            "vpn.peer",
            CAT,
            subject,
            "the phase-1 peer is IPv6; the realm VPN peers with one IPv4 /32",
            "use the gateway's public IPv4 address as a /32",
        ),
    }
}

fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.is_multicast()
                || v.octets()[0] == 100 && (v.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(_) => false,
    }
}

fn routing(vpn: &VpnSpec) -> CheckResult {
    match vpn.routing {
        Some(Routing::RouteBased) => CheckResult::pass(
            "vpn.routing",
            CAT,
            "vpn.routing",
            "the tunnel is route-based",
        ),
        Some(Routing::PolicyBased) => CheckResult::fail(
            "vpn.routing",
            CAT,
            "vpn.routing",
            "policy-based tunnels are not supported",
            "configure a route-based (VTI) tunnel on the customer gateway and set routing: route-based",
        ),
        None => CheckResult::fail(
            "vpn.routing",
            CAT,
            "vpn.routing",
            "the tunnel routing mode is not stated",
            "set vpn.routing: route-based after confirming the gateway supports it",
        ),
    }
}

/// Every overlap between remote CIDRs and the platform ranges or each other (pure).
pub fn find_overlaps(remote: &[IpNet], platform: &[IpNet]) -> Vec<(IpNet, IpNet)> {
    let mut out = Vec::new();
    for (i, r) in remote.iter().enumerate() {
        for p in platform {
            if overlap(r, p) {
                out.push((*r, *p));
            }
        }
        for other in &remote[i + 1..] {
            if overlap(r, other) {
                out.push((*r, *other));
            }
        }
    }
    out
}

fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn overlaps(vpn: &VpnSpec, rules: &VpnRequirements) -> CheckResult {
    let subject = format!("{} remote CIDR(s)", vpn.remote_cidrs.len());
    if vpn.remote_cidrs.is_empty() {
        return CheckResult::fail(
            "vpn.cidrs",
            CAT,
            subject,
            "no remote CIDRs given",
            "list the customer networks the realm must reach in vpn.remoteCidrs",
        );
    }
    let platform: Vec<IpNet> = rules.platform_cidrs.iter().map(|p| p.cidr).collect();
    let found = find_overlaps(&vpn.remote_cidrs, &platform);
    if found.is_empty() {
        let ranges: Vec<String> = platform.iter().map(ToString::to_string).collect();
        return CheckResult::pass(
            "vpn.cidrs",
            CAT,
            subject,
            format!(
                "no overlap with each other or with the platform ranges {}",
                ranges.join(", ")
            ),
        );
    }
    let text: Vec<String> = found
        .iter()
        .map(|(a, b)| {
            if platform.contains(b) {
                format!("{a} overlaps the platform range {b}")
            } else {
                format!("{a} overlaps {b}")
            }
        })
        .collect();
    CheckResult::fail(
        "vpn.cidrs",
        CAT,
        subject,
        text.join("; "),
        "renumber or NAT the overlapping customer networks so every remote CIDR is unique and outside the platform ranges",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;
    use crate::requirements;

    fn spec(peer: &str, routing: Option<Routing>, cidrs: &[&str]) -> VpnSpec {
        VpnSpec {
            enabled: true,
            peer: Some(peer.parse().unwrap()),
            routing,
            remote_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            subnet: None,
        }
    }

    fn statuses(v: &VpnSpec) -> Vec<Status> {
        check(v, &requirements::embedded().vpn)
            .iter()
            .map(|r| r.status)
            .collect()
    }

    #[test]
    fn the_rules() {
        use Status::*;
        assert_eq!(
            statuses(&spec(
                "198.51.100.7/32",
                Some(Routing::RouteBased),
                &["192.168.10.0/24"]
            )),
            [Pass, Pass, Pass]
        );
        assert_eq!(
            statuses(&spec(
                "198.51.100.0/24",
                Some(Routing::RouteBased),
                &["192.168.10.0/24"]
            ))[0],
            Fail
        );
        assert_eq!(
            statuses(&spec(
                "10.1.2.3/32",
                Some(Routing::RouteBased),
                &["192.168.10.0/24"]
            ))[0],
            Fail
        );
        assert_eq!(
            statuses(&spec(
                "198.51.100.7/32",
                Some(Routing::PolicyBased),
                &["192.168.10.0/24"]
            ))[1],
            Fail
        );
        assert_eq!(
            statuses(&spec(
                "198.51.100.7/32",
                Some(Routing::RouteBased),
                &["10.2.0.0/16"]
            ))[2],
            Fail
        );
        assert_eq!(
            statuses(&spec(
                "198.51.100.7/32",
                Some(Routing::RouteBased),
                &["172.19.4.0/24"]
            ))[2],
            Fail
        );
        assert_eq!(
            statuses(&spec(
                "198.51.100.7/32",
                Some(Routing::RouteBased),
                &["192.168.0.0/16", "192.168.10.0/24"]
            ))[2],
            Fail
        );
        assert!(
            check(
                &VpnSpec {
                    enabled: false,
                    peer: None,
                    routing: None,
                    remote_cidrs: vec![],
                    subnet: None,
                },
                &requirements::embedded().vpn
            )
            .is_empty()
        );
    }

    #[test]
    fn overlap_pairs_are_named() {
        let r: Vec<IpNet> = vec![
            "10.3.0.0/16".parse().unwrap(),
            "192.168.0.0/24".parse().unwrap(),
            "192.168.0.128/25".parse().unwrap(),
        ];
        let p: Vec<IpNet> = vec!["10.0.0.0/14".parse().unwrap()];
        let found = find_overlaps(&r, &p);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0], (r[0], p[0]));
        assert_eq!(found[1], (r[1], r[2]));
    }
}
