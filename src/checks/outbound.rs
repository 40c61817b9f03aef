//! Outbound checks: can this network reach every host the platform needs?
//!
//! Each target is resolved, connected (directly or through an HTTP CONNECT proxy) and, when
//! `tls` is set, a TLS handshake with SNI is made. A target gets one hard deadline for all of it,
//! so a peer that accepts and never answers costs exactly the deadline. The served chain is then
//! verified against public roots: a chain that does not verify means something in the path
//! (a TLS-inspecting proxy or firewall) replaced the certificate, reported as a warning naming
//! the issuer. [`decide`] turns what happened into a finding and is unit-tested.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use x509_parser::prelude::*;

use super::{Category, CheckResult, Observer};
pub use crate::secret::Secret;
use crate::spec::Target;

const CAT: Category = Category::Outbound;

/// Basic-auth credentials for the proxy.
#[derive(Debug, Clone)]
pub struct ProxyAuth {
    /// User name.
    pub user: String,
    /// Password.
    pub password: Secret,
    /// The environment variable they came from (for messages).
    pub source: String,
}

/// The proxy to tunnel through.
#[derive(Debug, Clone)]
pub struct Proxy {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Credentials, if any.
    pub auth: Option<ProxyAuth>,
}

/// How to run the outbound checks.
#[derive(Clone)]
pub struct Options {
    /// Hard deadline per target.
    pub timeout: Duration,
    /// Targets checked at once; `None`: all of them at once, bounded by the open-file limit
    /// ([`default_concurrency`]), so a list with silent hosts costs one deadline, not several.
    pub concurrency: Option<usize>,
    /// Optional CONNECT proxy.
    pub proxy: Option<Proxy>,
    /// Roots a served chain must verify to; anything else is reported as interception.
    pub public_roots: Arc<Vec<TrustAnchor<'static>>>,
}

impl Options {
    /// Options with the Mozilla public roots (`webpki-roots`).
    pub fn new(timeout: Duration, concurrency: Option<usize>, proxy: Option<Proxy>) -> Self {
        Options {
            timeout,
            concurrency: concurrency.map(|c| c.max(1)),
            proxy,
            public_roots: Arc::new(webpki_roots::TLS_SERVER_ROOTS.to_vec()),
        }
    }
}

/// How far a probe got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    /// Resolving the target (or proxy) name.
    Resolve = 0,
    /// TCP connect.
    Connect = 1,
    /// Waiting for the proxy's CONNECT answer.
    ProxyConnect = 2,
    /// TLS handshake.
    Tls = 3,
}

impl Stage {
    fn from_u8(v: u8) -> Stage {
        match v {
            0 => Stage::Resolve,
            1 => Stage::Connect,
            2 => Stage::ProxyConnect,
            _ => Stage::Tls,
        }
    }
    fn describe(self) -> &'static str {
        match self {
            Stage::Resolve => "resolving the name",
            Stage::Connect => "the TCP connect",
            Stage::ProxyConnect => "the proxy's answer to CONNECT",
            Stage::Tls => "the TLS handshake",
        }
    }
}

/// Whether a served chain is publicly trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Chains to a public root and matches the host.
    Public,
    /// Does not; `issuer` is the served leaf's issuer.
    NotPublic {
        /// Issuer DN of the served leaf.
        issuer: String,
        /// Why verification failed.
        reason: String,
    },
}

/// What a successful probe measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    /// Time to TCP connect (through the proxy: until the tunnel was up).
    pub connect: Duration,
    /// TLS facts, when a handshake was made.
    pub tls: Option<(Duration, String, Trust)>,
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The name did not resolve.
    Resolve(String),
    /// The peer refused the connection.
    Refused(String),
    /// Another connect error.
    Connect(String),
    /// The deadline passed during a stage.
    Deadline(Stage),
    /// The proxy wants credentials (407).
    ProxyAuth {
        /// Whether credentials were sent.
        sent: bool,
    },
    /// The proxy answered CONNECT with another status.
    ProxyStatus(u16),
    /// The proxy's answer was not HTTP.
    ProxyProtocol(String),
    /// The TLS handshake failed.
    Tls(String),
}

/// Turns a probe's outcome into a finding (pure).
pub fn decide(
    target: &Target,
    via: Option<&str>,
    timeout: Duration,
    outcome: &Result<Reached, Failure>,
) -> CheckResult {
    let id = format!("outbound.{}:{}", target.host, target.port);
    let subject = match via {
        Some(p) => format!("{}:{} via proxy {p}", target.host, target.port),
        None => format!("{}:{}", target.host, target.port),
    };
    let allow = format!(
        "allow outbound TCP {} to {} on the firewall{}",
        target.port,
        target.host,
        if via.is_some() {
            " and the proxy's allow-list"
        } else {
            ""
        }
    );
    let ms = |d: &Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    match outcome {
        Ok(r) => match &r.tls {
            None => CheckResult::pass(
                &id,
                CAT,
                subject,
                format!("reachable: connected in {}", ms(&r.connect)),
            ),
            Some((hs, version, Trust::Public)) => CheckResult::pass(
                &id,
                CAT,
                subject,
                format!(
                    "reachable: connected in {}, {version} handshake in {}, certificate chains to a public root",
                    ms(&r.connect),
                    ms(hs)
                ),
            ),
            Some((hs, version, Trust::NotPublic { issuer, reason })) => CheckResult::warn(
                &id,
                CAT,
                subject,
                format!(
                    "reachable (connected in {}, {version} in {}), but TLS interception is likely: the served certificate is issued by {issuer} and does not verify against public roots ({reason})",
                    ms(&r.connect),
                    ms(hs)
                ),
                format!(
                    "exempt {} from TLS inspection on the proxy/firewall",
                    target.host
                ),
            ),
        },
        Err(f) => {
            let (message, fix) = match f {
                Failure::Resolve(e) => (format!("{} does not resolve: {e}", target.host), "make public DNS names resolvable from this network (or use the proxy)".to_owned()),
                Failure::Refused(addr) => (format!("connection refused by {addr}"), allow),
                Failure::Connect(e) => (format!("cannot connect: {e}"), allow),
                Failure::Deadline(stage) => (format!("no answer within {} ms during {} (dropped or filtered)", timeout.as_millis(), stage.describe()), allow),
                Failure::ProxyAuth { sent: false } => ("the proxy requires authentication (407)".to_owned(), "set outbound.proxyCredentialsEnv and export that variable as user:password".to_owned()),
                Failure::ProxyAuth { sent: true } => ("the proxy rejected the credentials (407)".to_owned(), "check the user:password in the environment variable named by outbound.proxyCredentialsEnv".to_owned()),
                Failure::ProxyStatus(code @ (500 | 502..=504)) => (format!("the proxy could not reach the target (HTTP {code})"), allow),
                Failure::ProxyStatus(code) => (format!("the proxy denied CONNECT (HTTP {code})"), format!("allow CONNECT to {}:{} on the proxy", target.host, target.port)),
                Failure::ProxyProtocol(e) => (format!("the proxy's answer is not HTTP: {e}"), "check outbound.proxy: it must be an HTTP CONNECT proxy".to_owned()),
                Failure::Tls(e) => (format!("TLS handshake failed: {e}"), format!("make sure nothing in the path blocks or rewrites TLS to {}", target.host)),
            };
            CheckResult::fail(&id, CAT, subject, message, fix)
        }
    }
}

/// How many targets to check at once by default: half the process's open-file limit (each
/// probe holds one socket; the rest is left for everything else), at least 16, at most 4096.
pub fn default_concurrency() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(4096 * 2);
    usize::try_from(soft / 2).unwrap_or(4096).clamp(16, 4096)
}

/// Checks every target, at most `concurrency` at once, each within its deadline; keeps the order.
pub async fn run(targets: &[Target], opts: &Options, observer: &dyn Observer) -> Vec<CheckResult> {
    let at_once = opts.concurrency.unwrap_or_else(default_concurrency);
    observer.on_category_start(CAT, targets.len());
    let tls = Arc::new(tls_config());
    let via = opts
        .proxy
        .as_ref()
        .map(|p| format!("{}:{}", p.host, p.port));
    let mut results: Vec<(usize, CheckResult)> = futures::stream::iter(targets.iter().enumerate())
        .map(|(i, t)| {
            let (tls, via) = (tls.clone(), via.as_deref());
            async move {
                let started = Instant::now();
                let stage = AtomicU8::new(Stage::Resolve as u8);
                let outcome =
                    match tokio::time::timeout(opts.timeout, probe(t, opts, &tls, &stage)).await {
                        Ok(o) => o,
                        Err(_) => Err(Failure::Deadline(Stage::from_u8(
                            stage.load(Ordering::Relaxed),
                        ))),
                    };
                let r = decide(t, via, opts.timeout, &outcome).took(started.elapsed());
                observer.on_check(&r);
                (i, r)
            }
        })
        .buffer_unordered(at_once)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

async fn connect_any(host: &str, port: u16, stage: &AtomicU8) -> Result<TcpStream, Failure> {
    stage.store(Stage::Resolve as u8, Ordering::Relaxed);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Failure::Resolve(e.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(Failure::Resolve("no addresses".into()));
    }
    stage.store(Stage::Connect as u8, Ordering::Relaxed);
    let mut last = Failure::Connect("no address tried".into());
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = Failure::Refused(a.to_string())
            }
            Err(e) => last = Failure::Connect(format!("{a}: {e}")),
        }
    }
    Err(last)
}

async fn probe(
    t: &Target,
    opts: &Options,
    tls: &Arc<ClientConfig>,
    stage: &AtomicU8,
) -> Result<Reached, Failure> {
    let t0 = Instant::now();
    let stream = match &opts.proxy {
        None => connect_any(&t.host, t.port, stage).await?,
        Some(p) => {
            let mut s = connect_any(&p.host, p.port, stage).await?;
            stage.store(Stage::ProxyConnect as u8, Ordering::Relaxed);
            s.write_all(connect_request(&t.host, t.port, p.auth.as_ref()).as_bytes())
                .await
                .map_err(|e| Failure::ProxyProtocol(e.to_string()))?;
            let head = read_head(&mut s).await?;
            match parse_status(&head) {
                Ok(200..=299) => s,
                // Some proxies (tinyproxy) answer bad credentials with 401 instead of 407.
                Ok(407) | Ok(401) => {
                    return Err(Failure::ProxyAuth {
                        sent: p.auth.is_some(),
                    });
                }
                Ok(code) => return Err(Failure::ProxyStatus(code)),
                Err(e) => return Err(Failure::ProxyProtocol(e)),
            }
        }
    };
    let connect = t0.elapsed();
    if !t.tls {
        return Ok(Reached { connect, tls: None });
    }
    stage.store(Stage::Tls as u8, Ordering::Relaxed);
    let name = ServerName::try_from(t.host.clone()).map_err(|e| Failure::Tls(e.to_string()))?;
    let t1 = Instant::now();
    let conn = TlsConnector::from(tls.clone())
        .connect(name.clone(), stream)
        .await
        .map_err(|e| Failure::Tls(e.to_string()))?;
    let handshake = t1.elapsed();
    let (_, session) = conn.get_ref();
    let version = session.protocol_version().map_or("TLS".to_owned(), |v| {
        format!("{v:?}").replace("TLSv1_", "TLS 1.")
    });
    let chain: Vec<CertificateDer<'static>> = session
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.clone().into_owned())
        .collect();
    let trust = public_trust(&chain, &name, &opts.public_roots);
    Ok(Reached {
        connect,
        tls: Some((handshake, version, trust)),
    })
}

/// The CONNECT request; credentials only ever go into this header.
fn connect_request(host: &str, port: u16, auth: Option<&ProxyAuth>) -> String {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut req = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: realmctl/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(a) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            a.user,
            a.password.expose()
        ));
        req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// Reads the proxy's response head (up to the blank line), byte by byte so no tunnel data is eaten.
async fn read_head(s: &mut TcpStream) -> Result<Vec<u8>, Failure> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte).await {
            Ok(0) => {
                return Err(Failure::ProxyProtocol(
                    "the proxy closed the connection".into(),
                ));
            }
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(Failure::ProxyProtocol(e.to_string())),
        }
        if head.len() > 16 * 1024 {
            return Err(Failure::ProxyProtocol(
                "response head larger than 16 KiB".into(),
            ));
        }
    }
    Ok(head)
}

/// The status code of an HTTP/1.x response head (pure).
fn parse_status(head: &[u8]) -> Result<u16, String> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code
            .parse()
            .map_err(|_| format!("bad status line `{}`", line.trim())),
        _ => Err(format!(
            "bad status line `{}`",
            line.trim().chars().take(80).collect::<String>()
        )),
    }
}

fn public_trust(
    chain: &[CertificateDer<'_>],
    name: &ServerName<'_>,
    roots: &[TrustAnchor<'_>],
) -> Trust {
    let Some(leaf) = chain.first() else {
        return Trust::NotPublic {
            issuer: "(no certificate)".into(),
            reason: "no certificate was served".into(),
        };
    };
    let issuer = X509Certificate::from_der(leaf).map_or_else(
        |_| "(unparsable certificate)".to_owned(),
        |(_, c)| c.issuer().to_string(),
    );
    let verdict = webpki::EndEntityCert::try_from(leaf).and_then(|ee| {
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            roots,
            &chain[1..],
            UnixTime::now(),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )?;
        ee.verify_is_valid_for_subject_name(name)
    });
    match verdict {
        Ok(()) => Trust::Public,
        Err(e) => Trust::NotPublic {
            issuer,
            reason: e.to_string(),
        },
    }
}

/// Accepts any server certificate during the handshake (it still checks the handshake signature);
/// the chain is judged afterwards by [`public_trust`], so an intercepted connection can be named.
#[derive(Debug)]
struct RecordOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for RecordOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS client that records whatever chain is served (the handshake signature is still
/// checked) for a caller that judges it afterwards; it never carries a credential.
pub(crate) fn tls_config() -> ClientConfig {
    let provider = crate::crypto::tls_provider();
    ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordOnly(provider)))
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;

    fn target() -> Target {
        Target {
            host: "api.digibee.io".into(),
            port: 443,
            tls: true,
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            Ok(200)
        );
        assert_eq!(
            parse_status(b"HTTP/1.0 407 Proxy Authentication Required\r\n\r\n"),
            Ok(407)
        );
        assert!(parse_status(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }

    #[test]
    fn connect_request_carries_credentials_only_in_the_header() {
        let auth = ProxyAuth {
            user: "u".into(),
            password: Secret::new("p4ss"),
            source: "X".into(),
        };
        let req = connect_request("api.digibee.io", 443, Some(&auth));
        assert!(req.starts_with("CONNECT api.digibee.io:443 HTTP/1.1\r\n"));
        assert!(req.contains("Proxy-Authorization: Basic dTpwNHNz\r\n"));
        assert!(!format!("{auth:?}").contains("p4ss"));
    }

    #[test]
    fn decisions() {
        let t = target();
        let d = Duration::from_millis(500);
        let deadline = decide(&t, None, d, &Err(Failure::Deadline(Stage::Tls)));
        assert_eq!(deadline.status, Status::Fail);
        assert!(deadline.message.contains("500 ms") && deadline.message.contains("TLS handshake"));
        let denied = decide(&t, Some("proxy:3128"), d, &Err(Failure::ProxyStatus(403)));
        assert!(
            denied.message.contains("denied CONNECT (HTTP 403)"),
            "{}",
            denied.message
        );
        assert!(denied.subject.ends_with("via proxy proxy:3128"));
        let auth = decide(&t, Some("p:1"), d, &Err(Failure::ProxyAuth { sent: false }));
        assert!(auth.fix.unwrap().contains("proxyCredentialsEnv"));
        let intercepted = Reached {
            connect: d,
            tls: Some((
                d,
                "TLS 1.3".into(),
                Trust::NotPublic {
                    issuer: "CN=Corp Inspection CA".into(),
                    reason: "UnknownIssuer".into(),
                },
            )),
        };
        let w = decide(&t, None, d, &Ok(intercepted));
        assert_eq!(w.status, Status::Warn);
        assert!(w.message.contains("CN=Corp Inspection CA"));
        let ok = decide(
            &t,
            None,
            d,
            &Ok(Reached {
                connect: d,
                tls: None,
            }),
        );
        assert_eq!(ok.status, Status::Pass);
    }
}
