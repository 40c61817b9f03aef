//! Whether the realm's edge serves the customer's certificate: a TLS handshake with the
//! ingress address for each of the realm's wildcard names (SNI a name under the wildcard),
//! passing only when the leaf served is exactly the leaf of the customer's chain. This pins
//! the certificate rather than trusting a CA, so it also proves the ingress uses the realm's
//! Secret and not a controller's default certificate, and works for private CAs. No data is
//! sent after the handshake, so nothing secret crosses the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use x509_parser::prelude::*;

use super::{Category, CheckResult, Owner};

/// The label put under a wildcard to name a host in it.
pub const PROBE_LABEL: &str = "realmctl-live";

/// The name to ask for under `pattern` (`*.test.acme.com` → `realmctl-live.test.acme.com`).
pub fn probe_name(pattern: &str) -> String {
    match pattern.strip_prefix("*.") {
        Some(rest) => format!("{PROBE_LABEL}.{rest}"),
        None => pattern.to_owned(),
    }
}

/// Whether the served chain's leaf is `expected` (pure); otherwise what was served.
pub fn judge(expected: &CertificateDer<'_>, served: &[CertificateDer<'_>]) -> Result<(), String> {
    match served.first() {
        Some(leaf) if leaf.as_ref() == expected.as_ref() => Ok(()),
        Some(leaf) => Err(match X509Certificate::from_der(leaf) {
            Ok((_, c)) => format!(
                "it serves another certificate (subject {}, issuer {})",
                c.subject(),
                c.issuer()
            ),
            Err(_) => "it serves another certificate (unparsable)".into(),
        }),
        None => Err("it serves no certificate".into()),
    }
}

/// The chain `addr` serves for `name`, within `deadline`.
pub async fn served_chain(
    addr: SocketAddr,
    name: &str,
    deadline: Duration,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|_| format!("`{}` is not a DNS name", crate::text::one_line(name)))?;
    let connector = TlsConnector::from(Arc::new(super::outbound::tls_config()));
    let attempt = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let tls = connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {addr} failed: {e}"))?;
        let (_, conn) = tls.get_ref();
        Ok(conn
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default())
    };
    tokio::time::timeout(deadline, attempt).await.map_err(|_| {
        format!(
            "no TLS handshake with {addr} within {} s",
            deadline.as_secs()
        )
    })?
}

/// One check per name: does `addr` serve `expected` for it?
pub async fn check(
    addr: SocketAddr,
    names: &[String],
    expected: &CertificateDer<'_>,
    deadline: Duration,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for pattern in names {
        let name = probe_name(pattern);
        let started = Instant::now();
        let verdict = served_chain(addr, &name, deadline)
            .await
            .and_then(|chain| judge(expected, &chain));
        let subject = format!("{pattern} at {addr}");
        out.push(
            match verdict {
                Ok(()) => CheckResult::pass(
                    "edge.certificate",
                    Category::Certificate,
                    subject,
                    format!("{addr} serves the realm's certificate for {name}"),
                ),
                Err(why) => CheckResult::fail(
                    "edge.certificate",
                    Category::Certificate,
                    subject,
                    format!("{addr} for {name}: {}", crate::text::one_line(&why)),
                    "check that the ingress controller serves the Ingress digibee-system/digibee-edge with the Secret digibee-wildcard-tls, and that this machine reaches the ingress address on 443",
                )
                .owned_by(Owner::Digibee),
            }
            .took(started.elapsed()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_is_probed_one_label_below_and_only_the_exact_leaf_passes() {
        assert_eq!(probe_name("*.test.acme.com"), "realmctl-live.test.acme.com");
        assert_eq!(probe_name("api.acme.com"), "api.acme.com");
        let a = CertificateDer::from(vec![1u8, 2, 3]);
        let b = CertificateDer::from(vec![1u8, 2, 4]);
        assert!(judge(&a, &[a.clone(), b.clone()]).is_ok());
        assert!(judge(&a, &[b.clone(), a.clone()]).is_err());
        assert_eq!(judge(&a, &[]).unwrap_err(), "it serves no certificate");
    }
}
