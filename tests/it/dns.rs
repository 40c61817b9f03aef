//! DNS checks against real loopback peers (issue #2): dnsmasq for resolving names, NXDOMAIN and
//! CAA; a silent loopback server for timeouts; a minimal RFC 1035 responder for SERVFAIL/REFUSED.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::{BASE, PREFIXES, dnsmasq};
use realmctl::checks::dns::{self, CertIssuer};
use realmctl::checks::{NoProgress, Status};
use realmctl::spec::Domains;

fn domains(ns: SocketAddr) -> Domains {
    Domains {
        base: BASE.into(),
        design_time: PREFIXES[..4].iter().map(|s| s.to_string()).collect(),
        run_time: PREFIXES[4..].iter().map(|s| s.to_string()).collect(),
        nameservers: vec![ns],
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// CAA RDATA for dnsmasq's --dns-rr (flags, tag length, tag, value) in hex.
fn caa_rr(name: &str, tag: &str, value: &str) -> String {
    let mut b = vec![0u8, tag.len() as u8];
    b.extend_from_slice(tag.as_bytes());
    b.extend_from_slice(value.as_bytes());
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("--dns-rr={name},257,{hex}")
}

#[tokio::test]
async fn resolving_and_nxdomain_are_told_apart() {
    let peer = dnsmasq(&["core", "static", "portal", "auth", "test"], &[]);
    let rs = dns::run(
        &domains(addr(peer.port)),
        None,
        Duration::from_secs(2),
        &NoProgress,
    )
    .await;
    for p in ["core", "static", "portal", "auth", "test"] {
        let r = rs
            .iter()
            .find(|r| r.id == format!("dns.resolve.{p}"))
            .unwrap();
        assert_eq!(r.status, Status::Pass, "{r:?}");
        assert!(r.message.contains("127.0.0.1"), "{}", r.message);
    }
    let api = rs.iter().find(|r| r.id == "dns.resolve.api").unwrap();
    assert_eq!(api.status, Status::Fail);
    assert!(api.message.contains("NXDOMAIN"), "{}", api.message);
    assert!(api.fix.is_some());
    let caa = rs.iter().find(|r| r.id == "dns.caa").unwrap();
    assert_eq!(caa.status, Status::Pass, "{caa:?}");
}

#[tokio::test]
async fn caa_forbidding_wildcards_or_the_issuer_is_flagged() {
    let forbid = dnsmasq(&PREFIXES, &[caa_rr(BASE, "issuewild", ";")]);
    let rs = dns::run(
        &domains(addr(forbid.port)),
        None,
        Duration::from_secs(2),
        &NoProgress,
    )
    .await;
    let caa = rs.iter().find(|r| r.id == "dns.caa").unwrap();
    assert_eq!(caa.status, Status::Fail, "{caa:?}");
    assert!(caa.message.contains("forbids every CA"), "{}", caa.message);

    let other = dnsmasq(&PREFIXES, &[caa_rr(BASE, "issue", "digicert.com")]);
    let issuer = CertIssuer {
        display: "CN=R11, O=Let's Encrypt".into(),
        names: vec!["Let's Encrypt".into(), "R11".into()],
    };
    let rs = dns::run(
        &domains(addr(other.port)),
        Some(&issuer),
        Duration::from_secs(2),
        &NoProgress,
    )
    .await;
    let caa = rs.iter().find(|r| r.id == "dns.caa").unwrap();
    assert_eq!(caa.status, Status::Warn, "{caa:?}");
    assert!(
        caa.message.contains("digicert.com") && caa.message.contains("Let's Encrypt"),
        "{}",
        caa.message
    );

    let allowed = CertIssuer {
        display: "CN=DigiCert TLS, O=DigiCert Inc".into(),
        names: vec!["DigiCert Inc".into()],
    };
    let rs = dns::run(
        &domains(addr(other.port)),
        Some(&allowed),
        Duration::from_secs(2),
        &NoProgress,
    )
    .await;
    assert_eq!(
        rs.iter().find(|r| r.id == "dns.caa").unwrap().status,
        Status::Pass
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout_within_the_deadline() {
    // UDP socket and TCP listener on loopback that receive and never reply.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = udp.local_addr().unwrap().port();
    let tcp = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            tokio::select! {
                _ = udp.recv_from(&mut buf) => {}
                Ok((s, _)) = tcp.accept() => held.push(s),
            }
        }
    });
    let t0 = Instant::now();
    let rs = dns::run(
        &domains(addr(port)),
        None,
        Duration::from_millis(500),
        &NoProgress,
    )
    .await;
    let elapsed = t0.elapsed();
    let core = rs.iter().find(|r| r.id == "dns.resolve.core").unwrap();
    assert_eq!(core.status, Status::Fail);
    assert!(core.message.contains("timeout"), "{}", core.message);
    // Each lookup's deadline is the resolver timeout + 250 ms (750 ms). The six lookups run at
    // once, then the CAA lookup (its first timeout ends it): two deadlines, 1.5 s. Bounded at
    // 1.5 × that + 0.5 s, and charged at least the resolver's timeout twice.
    let deadline = 2 * (Duration::from_millis(500) + Duration::from_millis(250));
    assert!(
        elapsed <= deadline.mul_f64(1.5) + Duration::from_millis(500),
        "took {elapsed:?} for a deadline of {deadline:?}"
    );
    assert!(elapsed >= Duration::from_millis(1000), "took {elapsed:?}");
    for r in &rs[..6] {
        assert!(
            r.duration_ms <= 750 * 3 / 2 + 500,
            "{} took {} ms",
            r.id,
            r.duration_ms
        );
    }
    let caa = rs.iter().find(|r| r.id == "dns.caa").unwrap();
    assert_eq!(caa.status, Status::Warn, "{caa:?}");
}

/// Answers every UDP query with the given RCODE (RFC 1035 §4.1.1 header, question echoed).
async fn rcode_server(rcode: u8) -> u16 {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = udp.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            if n < 12 {
                continue;
            }
            let mut resp = buf[..n].to_vec();
            resp[2] = 0x80 | (buf[2] & 0x01); // QR=1, keep RD
            resp[3] = 0x80 | rcode; // RA=1, RCODE
            resp[6..12].fill(0); // no answer/authority/additional records (drops any EDNS OPT)
            // keep only the header and the question
            let mut end = 12;
            while end < n && buf[end] != 0 {
                end += usize::from(buf[end]) + 1;
            }
            resp.truncate((end + 5).min(n));
            let _ = udp.send_to(&resp, from).await;
        }
    });
    port
}

#[tokio::test]
async fn servfail_and_refused_are_reported_as_such() {
    for (rcode, word) in [(2u8, "SERVFAIL"), (5u8, "REFUSED")] {
        let port = rcode_server(rcode).await;
        let rs = dns::run(
            &domains(addr(port)),
            None,
            Duration::from_millis(800),
            &NoProgress,
        )
        .await;
        let core = rs.iter().find(|r| r.id == "dns.resolve.core").unwrap();
        assert_eq!(core.status, Status::Fail);
        assert!(core.message.contains(word), "{word}: {}", core.message);
    }
}
