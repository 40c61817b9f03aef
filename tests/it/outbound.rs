//! Outbound checks against loopback peers (issue #2): rustls servers, a closed port, a listener
//! that accepts and never answers, and a real proxy (tinyproxy) including a denied CONNECT and 407.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{Pki, closed_port, silent_listener, tinyproxy, tls_server};
use realmctl::checks::outbound::{self, Options, Proxy, ProxyAuth, Secret};
use realmctl::checks::{CheckResult, NoProgress, Status};
use realmctl::spec::Target;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

fn target(port: u16, tls: bool) -> Target {
    Target {
        host: "localhost".into(),
        port,
        tls,
    }
}

fn opts(pki: &Pki, timeout_ms: u64, proxy: Option<Proxy>) -> Options {
    let mut o = Options::new(Duration::from_millis(timeout_ms), Some(32), proxy);
    let root = CertificateDer::from_pem_slice(pki.root_pem().as_bytes()).unwrap();
    o.public_roots = Arc::new(vec![
        webpki::anchor_from_trusted_cert(&root).unwrap().to_owned(),
    ]);
    o
}

async fn one(t: Target, o: &Options) -> CheckResult {
    outbound::run(&[t], o, &NoProgress).await.remove(0)
}

#[tokio::test]
async fn direct_tls_plain_closed_and_hung_targets() {
    let pki = Pki::new();
    let tls_port = tls_server(&pki.leaf(&["localhost".into()])).await;
    let hung = silent_listener().await;
    let closed = closed_port();
    // A deadline long enough that scheduling noise is small beside it: the bounds below are
    // 0.9 × and 2 × the deadline, with no fixed slack.
    const DEADLINE: u64 = 1500;
    let o = opts(&pki, DEADLINE, None);
    let targets = vec![
        target(tls_port, true),
        target(tls_port, false),
        target(closed, true),
        target(hung, true),
    ];
    let t0 = Instant::now();
    let rs = outbound::run(&targets, &o, &NoProgress).await;
    let elapsed = t0.elapsed();

    assert_eq!(rs[0].status, Status::Pass, "{:?}", rs[0]);
    assert!(
        rs[0].message.contains("TLS 1.3") && rs[0].message.contains("public root"),
        "{}",
        rs[0].message
    );
    assert_eq!(rs[1].status, Status::Pass, "{:?}", rs[1]);
    assert_eq!(rs[2].status, Status::Fail);
    assert!(rs[2].message.contains("refused"), "{}", rs[2].message);
    assert_eq!(rs[3].status, Status::Fail);
    assert!(
        rs[3].message.contains(&format!(
            "no answer within {DEADLINE} ms during the TLS handshake"
        )),
        "{}",
        rs[3].message
    );
    assert!(
        rs[3].duration_ms >= DEADLINE * 9 / 10 && rs[3].duration_ms < 2 * DEADLINE,
        "the hung target is charged its deadline, not two: {:?}",
        rs[3]
    );
    // Order is kept.
    assert_eq!(
        rs.iter().map(|r| r.subject.clone()).collect::<Vec<_>>(),
        targets
            .iter()
            .map(|t| format!("localhost:{}", t.port))
            .collect::<Vec<_>>()
    );
    // Targets are checked at once: the whole run costs one deadline, not two.
    assert!(
        elapsed >= Duration::from_millis(DEADLINE * 9 / 10)
            && elapsed < Duration::from_millis(2 * DEADLINE),
        "took {elapsed:?}"
    );
}

#[tokio::test]
async fn tls_interception_is_a_warning_naming_the_issuer() {
    let public = Pki::new();
    let inspecting = Pki::new();
    let port = tls_server(&inspecting.leaf(&["localhost".into()])).await;
    let r = one(target(port, true), &opts(&public, 2000, None)).await;
    assert_eq!(r.status, Status::Warn, "{r:?}");
    assert!(
        r.message.contains("TLS interception")
            && r.message.contains("Realmctl Test Intermediate CA"),
        "{}",
        r.message
    );
    assert!(r.fix.unwrap().contains("exempt localhost"));
}

#[tokio::test]
async fn a_certificate_for_another_name_is_flagged() {
    let pki = Pki::new();
    let port = tls_server(&pki.leaf(&["other.example".into()])).await;
    let r = one(target(port, true), &opts(&pki, 2000, None)).await;
    assert_eq!(r.status, Status::Warn, "{r:?}");
}

#[tokio::test]
async fn through_tinyproxy_allowed_denied_and_unreachable() {
    let pki = Pki::new();
    let tls_port = tls_server(&pki.leaf(&["localhost".into()])).await;
    let closed = closed_port();
    let other = tls_server(&pki.leaf(&["localhost".into()])).await;
    // Only the first TLS server's port and the closed port may be tunnelled to.
    let proxy = tinyproxy(&[
        format!("ConnectPort {tls_port}"),
        format!("ConnectPort {closed}"),
    ]);
    let p = Proxy {
        host: "127.0.0.1".into(),
        port: proxy.port,
        auth: None,
    };
    let o = opts(&pki, 3000, Some(p));
    let rs = outbound::run(
        &[
            target(tls_port, true),
            target(other, true),
            target(closed, true),
        ],
        &o,
        &NoProgress,
    )
    .await;
    assert_eq!(rs[0].status, Status::Pass, "{:?}", rs[0]);
    assert!(
        rs[0].subject.contains("via proxy 127.0.0.1"),
        "{}",
        rs[0].subject
    );
    assert_eq!(rs[1].status, Status::Fail);
    assert!(
        rs[1].message.contains("denied CONNECT (HTTP 403)"),
        "{}",
        rs[1].message
    );
    assert_eq!(rs[2].status, Status::Fail);
    assert!(
        rs[2].message.contains("could not reach"),
        "{}",
        rs[2].message
    );
}

#[tokio::test]
async fn proxy_authentication_407_and_basic_auth() {
    let pki = Pki::new();
    let tls_port = tls_server(&pki.leaf(&["localhost".into()])).await;
    let proxy = tinyproxy(&["BasicAuth realm s3cr3t-canary".into()]);
    let with = |auth: Option<(&str, &str)>| {
        let auth = auth.map(|(u, p)| ProxyAuth {
            user: u.into(),
            password: Secret::new(p),
            source: "REALM_PROXY_AUTH".into(),
        });
        opts(
            &pki,
            3000,
            Some(Proxy {
                host: "127.0.0.1".into(),
                port: proxy.port,
                auth,
            }),
        )
    };
    let none = one(target(tls_port, true), &with(None)).await;
    assert_eq!(none.status, Status::Fail);
    assert!(
        none.message.contains("requires authentication (407)"),
        "{}",
        none.message
    );
    let wrong = one(target(tls_port, true), &with(Some(("realm", "wrong")))).await;
    assert!(
        wrong.message.contains("rejected the credentials (407)"),
        "{}",
        wrong.message
    );
    let right = one(
        target(tls_port, true),
        &with(Some(("realm", "s3cr3t-canary"))),
    )
    .await;
    assert_eq!(right.status, Status::Pass, "{right:?}");
    // The results (what reports and output are made of) hold the credential in no form: the
    // password or the Basic-auth `user:password`, plain, base64 or URL-encoded.
    let mut leaks = crate::common::forms("s3cr3t-canary");
    leaks.extend(crate::common::forms("realm:s3cr3t-canary"));
    for r in [&none, &wrong, &right] {
        let shown = format!("{r:?} {}", serde_json::to_string(r).unwrap());
        for form in &leaks {
            assert!(!shown.contains(form.as_str()), "{form} leaked: {shown}");
        }
    }
}

#[tokio::test]
async fn a_hung_proxy_is_bounded_by_the_deadline() {
    let pki = Pki::new();
    let hung = silent_listener().await;
    const DEADLINE: u64 = 1500;
    let o = opts(
        &pki,
        DEADLINE,
        Some(Proxy {
            host: "127.0.0.1".into(),
            port: hung,
            auth: None,
        }),
    );
    let t0 = Instant::now();
    let r = one(target(443, true), &o).await;
    let took = t0.elapsed();
    assert_eq!(r.status, Status::Fail);
    assert!(
        r.message.contains("the proxy's answer to CONNECT"),
        "{}",
        r.message
    );
    // The proxy accepts and never answers: the check waits its deadline, at least 0.9 × it
    // and less than two deadlines.
    let within = |ms: u64| (DEADLINE * 9 / 10..2 * DEADLINE).contains(&ms);
    assert!(within(took.as_millis() as u64), "took {took:?}");
    assert!(within(r.duration_ms), "{r:?}");
}
