//! Certificate checks: the one wildcard certificate must be usable for all six required names.
//!
//! [`check`] is the whole decision over bytes already read (pure but for the clock passed in),
//! so it is unit-tested and benchmarked without files; [`run`] reads the files and the system
//! roots. Findings: PEM chain and order, key (encrypted, missing, mismatched), name coverage,
//! validity dates, chain to the CA or system roots (naming a missing intermediate), serverAuth
//! usage, and weak keys or SHA-1 signatures.

pub mod keys;
pub mod names;
pub mod pem;

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ::time::OffsetDateTime;
use ::time::macros::format_description;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::*;

use super::{Category, CheckResult};
use crate::fsutil;
use crate::spec::CertificateSpec;
use keys::KeyMatch;

const CAT: Category = Category::Certificate;
const SHA1_SIGNATURES: [&str; 4] = [
    "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
    "1.2.840.10045.4.1",    // ecdsa-with-SHA1
    "1.2.840.10040.4.3",    // dsa-with-sha1
    "1.3.14.3.2.29",        // sha1WithRSASignature (OIW)
];

/// Trusted roots to verify the chain against, with a description for messages.
pub struct Roots {
    /// Where the roots came from ("the CA file x", "the system roots").
    pub source: String,
    /// The root certificates.
    pub certs: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
}

impl Roots {
    /// Roots from certificate DERs; certificates that are not usable anchors are skipped.
    pub fn new(source: impl Into<String>, certs: Vec<CertificateDer<'static>>) -> Self {
        let anchors = certs
            .iter()
            .filter_map(|c| {
                webpki::anchor_from_trusted_cert(c)
                    .ok()
                    .map(|a| a.to_owned())
            })
            .collect();
        Roots {
            source: source.into(),
            certs,
            anchors,
        }
    }

    /// The operating system's trust store, loaded once per process.
    pub fn system() -> &'static Roots {
        static CELL: OnceLock<Roots> = OnceLock::new();
        CELL.get_or_init(|| {
            Roots::new(
                "the system roots",
                rustls_native_certs::load_native_certs().certs,
            )
        })
    }
}

/// The certificate inputs as bytes, with their paths for messages.
pub struct Inputs<'a> {
    /// Chain path.
    pub cert_path: &'a Path,
    /// Chain PEM.
    pub cert_pem: &'a [u8],
    /// Key path.
    pub key_path: &'a Path,
    /// Key PEM.
    pub key_pem: &'a [u8],
}

/// Reads the files named in the spec and checks them.
pub fn run(spec: &CertificateSpec, required: &[String], now: OffsetDateTime) -> Vec<CheckResult> {
    let started = Instant::now();
    let read =
        |p: &Path, cap| fsutil::read_capped(p, cap).map_err(|e| (p.display().to_string(), e));
    let (cert, key) = match (
        read(&spec.cert, fsutil::caps::CERTIFICATE),
        read(&spec.key, fsutil::caps::KEY),
    ) {
        (Ok(c), Ok(k)) => (c, k),
        (Err((path, e)), _) | (_, Err((path, e))) => {
            let fix = match e {
                fsutil::ReadError::NotRegular { .. } | fsutil::ReadError::TooLarge { .. } => {
                    "point certificate.cert and certificate.key at the PEM files themselves"
                }
                fsutil::ReadError::NotFound { .. } => "fix the path in the spec or create the file",
                _ => "make the file readable by the user running realmctl",
            };
            return vec![
                CheckResult::fail("certificate.files", CAT, &path, e.to_string(), fix)
                    .took(started.elapsed()),
            ];
        }
    };
    let ca_roots;
    let roots = match &spec.ca {
        None => Roots::system(),
        Some(p) => {
            let certs = match fsutil::read_capped(p, fsutil::caps::CERTIFICATE)
                .map_err(|e| e.to_string())
                .and_then(|b| pem::parse_chain(&b).map_err(|e| e.to_string()))
            {
                Ok(c) => c,
                Err(e) => {
                    let path = p.display().to_string();
                    return vec![CheckResult::fail("certificate.ca", CAT, &path, format!("cannot use the CA file: {e}"), format!("put the issuing CA's root certificate(s) in PEM in {path}, or remove certificate.ca to use the system roots")).took(started.elapsed())];
                }
            };
            ca_roots = Roots::new(format!("the CA file {}", p.display()), certs);
            &ca_roots
        }
    };
    let inputs = Inputs {
        cert_path: &spec.cert,
        cert_pem: &cert,
        key_path: &spec.key,
        key_pem: &key,
    };
    let mut out = check(&inputs, required, spec.min_days_valid, now, roots);
    let per = started.elapsed() / out.len().max(1) as u32;
    for r in &mut out {
        r.duration_ms = u64::try_from(per.as_millis()).unwrap_or(u64::MAX);
    }
    out
}

/// All certificate findings for the given bytes, at time `now`.
pub fn check(
    inputs: &Inputs,
    required: &[String],
    min_days_valid: u32,
    now: OffsetDateTime,
    roots: &Roots,
) -> Vec<CheckResult> {
    let cert_path = inputs.cert_path.display().to_string();
    let key_path = inputs.key_path.display().to_string();
    let mut out = Vec::new();

    let ders = match pem::parse_chain(inputs.cert_pem) {
        Ok(d) => d,
        Err(p) => {
            out.push(CheckResult::fail(
                "certificate.pem",
                CAT,
                &cert_path,
                format!("certificate chain: {p}"),
                p.fix(&cert_path, false),
            ));
            out.push(key_result(inputs.key_pem, None, &key_path));
            return out;
        }
    };
    let mut parsed = Vec::with_capacity(ders.len());
    for (i, d) in ders.iter().enumerate() {
        match X509Certificate::from_der(d) {
            Ok((_, c)) => parsed.push(c),
            Err(e) => {
                out.push(CheckResult::fail("certificate.pem", CAT, &cert_path, format!("certificate #{} in the file is not a valid X.509 certificate: {e}", i + 1), format!("replace {cert_path} with the PEM chain your CA issued: leaf first, then intermediates")));
                out.push(key_result(inputs.key_pem, None, &key_path));
                return out;
            }
        }
    }
    let leaf = &parsed[0];
    out.push(order_result(&parsed, &cert_path));
    out.push(key_result(inputs.key_pem, Some(leaf), &key_path));
    out.push(names_result(leaf, required));
    out.push(validity_result(&parsed, now, min_days_valid));
    out.push(chain_result(&ders, &parsed, now, roots, &cert_path));
    out.push(usage_result(leaf));
    out.push(strength_result(&parsed, &cert_path));
    out
}

fn subject_of(c: &X509Certificate<'_>) -> String {
    c.subject().to_string()
}

fn is_ca(c: &X509Certificate<'_>) -> bool {
    matches!(c.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

fn order_result(chain: &[X509Certificate<'_>], path: &str) -> CheckResult {
    let leaf = &chain[0];
    if is_ca(leaf) && chain.iter().skip(1).any(|c| !is_ca(c)) {
        return CheckResult::fail(
            "certificate.pem",
            CAT,
            path,
            format!(
                "the first certificate ({}) is a CA certificate, not the leaf",
                subject_of(leaf)
            ),
            format!("reorder {path}: the leaf (server) certificate first, then its intermediates"),
        );
    }
    CheckResult::pass(
        "certificate.pem",
        CAT,
        path,
        format!(
            "{} certificate(s) read; leaf is {}",
            chain.len(),
            subject_of(leaf)
        ),
    )
}

fn key_result(key_pem: &[u8], leaf: Option<&X509Certificate<'_>>, path: &str) -> CheckResult {
    let key = match pem::parse_key(key_pem) {
        Ok(k) => k,
        Err(p) => {
            return CheckResult::fail(
                "certificate.key",
                CAT,
                path,
                format!("private key: {p}"),
                p.fix(path, true),
            );
        }
    };
    let Some(leaf) = leaf else {
        return CheckResult::pass(
            "certificate.key",
            CAT,
            path,
            "private key read (not compared: the chain could not be read)",
        );
    };
    match keys::key_matches(&key, leaf) {
        KeyMatch::Matches => CheckResult::pass(
            "certificate.key",
            CAT,
            path,
            "the private key matches the leaf certificate",
        ),
        KeyMatch::Mismatch => CheckResult::fail(
            "certificate.key",
            CAT,
            path,
            format!(
                "the private key does not belong to the leaf certificate ({})",
                subject_of(leaf)
            ),
            format!("put the key that was used to request this certificate in {path}"),
        ),
        KeyMatch::Unsupported(why) => CheckResult::fail(
            "certificate.key",
            CAT,
            path,
            why,
            "use an RSA (2048+ bits), ECDSA P-256/P-384 or Ed25519 key in PEM",
        ),
    }
}

/// DNS names from the subjectAltName extension.
pub fn dns_sans(leaf: &X509Certificate<'_>) -> Option<Vec<String>> {
    match leaf.subject_alternative_name() {
        Ok(Some(ext)) => Some(
            ext.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    GeneralName::DNSName(n) => Some((*n).to_owned()),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

fn names_result(leaf: &X509Certificate<'_>, required: &[String]) -> CheckResult {
    let subject = format!("{} required names", required.len());
    let Some(sans) = dns_sans(leaf) else {
        return CheckResult::fail(
            "certificate.names",
            CAT,
            subject,
            "the certificate has no subjectAltName DNS names (the subject CN is not used for name matching)",
            format!(
                "request a certificate whose SANs include {}",
                required.join(", ")
            ),
        );
    };
    let missing = names::uncovered(required, &sans);
    if missing.is_empty() {
        return CheckResult::pass(
            "certificate.names",
            CAT,
            subject,
            format!("all required names are covered: {}", required.join(", ")),
        );
    }
    let only_base = sans.iter().any(|s| s.starts_with("*."))
        && sans
            .iter()
            .all(|s| required.iter().all(|r| !names::covers(s, r)));
    let hint = if only_base {
        " (a wildcard covers exactly one label: *.<base> does not cover x.core.<base>)"
    } else {
        ""
    };
    CheckResult::fail(
        "certificate.names",
        CAT,
        subject,
        format!(
            "{} of {} required names not covered: {}{hint}; the certificate has {}",
            missing.len(),
            required.len(),
            missing.join(", "),
            sans.join(", ")
        ),
        format!("reissue the certificate with SANs {}", missing.join(", ")),
    )
}

fn date(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

fn validity_result(
    chain: &[X509Certificate<'_>],
    now: OffsetDateTime,
    min_days: u32,
) -> CheckResult {
    let now_s = now.unix_timestamp();
    let leaf = &chain[0];
    let subject = subject_of(leaf);
    let nb = leaf.validity().not_before.timestamp();
    if now_s < nb {
        return CheckResult::fail(
            "certificate.validity",
            CAT,
            subject,
            format!("the leaf is not valid yet: valid from {}", date(nb)),
            "wait until the certificate becomes valid, or check the issuing system's clock and reissue",
        );
    }
    // The chain is only as good as its earliest expiry.
    let (first, na) = chain
        .iter()
        .map(|c| (c, c.validity().not_after.timestamp()))
        .min_by_key(|(_, t)| *t)
        .expect("chain is never empty");
    let which = if std::ptr::eq(first, leaf) {
        "the leaf".to_owned()
    } else {
        format!("the intermediate {}", subject_of(first))
    };
    if now_s > na {
        return CheckResult::fail(
            "certificate.validity",
            CAT,
            subject,
            format!("{which} expired on {}", date(na)),
            "renew the certificate and replace the chain file",
        );
    }
    let days_left = (na - now_s) / 86_400;
    if days_left < i64::from(min_days) {
        return CheckResult::warn(
            "certificate.validity",
            CAT,
            subject,
            format!(
                "{which} expires on {} ({days_left} days left, minimum {min_days})",
                date(na)
            ),
            "renew the certificate before handing over",
        );
    }
    CheckResult::pass(
        "certificate.validity",
        CAT,
        subject,
        format!("valid until {} ({days_left} days left)", date(na)),
    )
}

fn chain_result(
    ders: &[CertificateDer<'_>],
    chain: &[X509Certificate<'_>],
    now: OffsetDateTime,
    roots: &Roots,
    path: &str,
) -> CheckResult {
    let subject = format!("chain to {}", roots.source);
    let leaf = &chain[0];
    // Verify at a moment the leaf is valid so that dates are reported once, by the validity check.
    let (nb, na) = (
        leaf.validity().not_before.timestamp(),
        leaf.validity().not_after.timestamp(),
    );
    let now_s = now.unix_timestamp();
    let at = if (nb..=na).contains(&now_s) {
        now_s
    } else {
        nb + (na - nb) / 2
    };
    let time = UnixTime::since_unix_epoch(Duration::from_secs(at.max(0) as u64));
    let ee = match EndEntityCert::try_from(&ders[0]) {
        Ok(e) => e,
        Err(e) => {
            return CheckResult::fail(
                "certificate.chain",
                CAT,
                subject,
                format!("the leaf cannot be used for verification: {e}"),
                "reissue the certificate",
            );
        }
    };
    let verified = ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &roots.anchors,
        &ders[1..],
        time,
        KeyUsage::server_auth(),
        None,
        None,
    );
    match verified {
        Ok(_) => CheckResult::pass(
            "certificate.chain",
            CAT,
            subject,
            format!("the chain verifies to {}", roots.source),
        ),
        Err(webpki::Error::UnknownIssuer) => unknown_issuer(chain, roots, subject, path),
        Err(
            webpki::Error::UnsupportedSignatureAlgorithmContext(_)
            | webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_),
        ) => CheckResult::fail(
            "certificate.chain",
            CAT,
            subject,
            "a signature in the chain uses an algorithm that is not accepted (see certificate.strength)",
            "reissue with a SHA-256 (or stronger) signature",
        ),
        Err(webpki::Error::RequiredEkuNotFoundContext(_)) => CheckResult::fail(
            "certificate.chain",
            CAT,
            subject,
            "the chain is not valid for TLS server authentication (see certificate.usage)",
            "reissue the certificate with the serverAuth extended key usage",
        ),
        Err(e) => CheckResult::fail(
            "certificate.chain",
            CAT,
            subject,
            format!("the chain does not verify to {}: {e}", roots.source),
            format!("put the complete chain from your CA in {path}"),
        ),
    }
}

/// Explains an unknown issuer: self-signed leaf, untrusted root, or which intermediate is missing.
fn unknown_issuer(
    chain: &[X509Certificate<'_>],
    roots: &Roots,
    subject: String,
    path: &str,
) -> CheckResult {
    let root_subjects: Vec<Vec<u8>> = roots
        .certs
        .iter()
        .filter_map(|d| {
            X509Certificate::from_der(d)
                .ok()
                .map(|(_, c)| c.subject().as_raw().to_vec())
        })
        .collect();
    let mut current = 0;
    let mut visited = vec![0];
    loop {
        let c = &chain[current];
        let next = chain.iter().enumerate().position(|(i, p)| {
            !visited.contains(&i) && p.subject().as_raw() == c.issuer().as_raw()
        });
        match next {
            Some(i) => {
                visited.push(i);
                current = i;
            }
            None => break,
        }
    }
    let end = &chain[current];
    let self_signed = end.subject().as_raw() == end.issuer().as_raw();
    let (message, fix) = if self_signed && current == 0 {
        ("the leaf certificate is self-signed".to_owned(), "use a certificate issued by a CA the platform's users trust (or name the private CA in certificate.ca)".to_owned())
    } else if self_signed {
        (format!("the chain ends at the self-signed {}, which is not in {}", subject_of(end), roots.source), "name that root in certificate.ca if it is your private CA, or get a certificate from a trusted CA".to_owned())
    } else if root_subjects
        .iter()
        .any(|r| r.as_slice() == end.issuer().as_raw())
    {
        (
            format!(
                "{} names the trusted issuer {} but its signature does not verify",
                subject_of(end),
                end.issuer()
            ),
            format!("put the chain your CA issued in {path}"),
        )
    } else {
        (
            format!(
                "missing intermediate: no certificate for the issuer {} of {}",
                end.issuer(),
                subject_of(end)
            ),
            format!(
                "append the intermediate certificate \"{}\" after the leaf in {path}",
                end.issuer()
            ),
        )
    };
    CheckResult::fail("certificate.chain", CAT, subject, message, fix)
}

fn usage_result(leaf: &X509Certificate<'_>) -> CheckResult {
    let subject = subject_of(leaf);
    match leaf.extended_key_usage() {
        Ok(Some(eku)) if eku.value.server_auth || eku.value.any => CheckResult::pass(
            "certificate.usage",
            CAT,
            subject,
            "extended key usage includes serverAuth",
        ),
        Ok(Some(_)) => CheckResult::fail(
            "certificate.usage",
            CAT,
            subject,
            "extended key usage does not include serverAuth (TLS server)",
            "reissue the certificate with extendedKeyUsage serverAuth",
        ),
        Ok(None) => CheckResult::pass(
            "certificate.usage",
            CAT,
            subject,
            "no extended key usage restriction (serverAuth allowed)",
        ),
        Err(e) => CheckResult::fail(
            "certificate.usage",
            CAT,
            subject,
            format!("the extended key usage extension is invalid: {e}"),
            "reissue the certificate",
        ),
    }
}

fn strength_result(chain: &[X509Certificate<'_>], path: &str) -> CheckResult {
    let mut problems = Vec::new();
    for c in chain {
        if let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = c.public_key().parsed()
            && rsa.key_size() < 2048
        {
            problems.push(format!(
                "{} has a weak RSA-{} key",
                subject_of(c),
                rsa.key_size()
            ));
        }
        let self_signed = c.subject().as_raw() == c.issuer().as_raw();
        if !self_signed
            && SHA1_SIGNATURES.contains(&c.signature_algorithm.algorithm.to_id_string().as_str())
        {
            problems.push(format!("{} is signed with SHA-1", subject_of(c)));
        }
    }
    if problems.is_empty() {
        CheckResult::pass(
            "certificate.strength",
            CAT,
            path,
            "keys are at least RSA-2048 or ECDSA/Ed25519; no SHA-1 signatures",
        )
    } else {
        CheckResult::fail(
            "certificate.strength",
            CAT,
            path,
            problems.join("; "),
            "reissue with an RSA key of at least 2048 bits (or ECDSA P-256) and a SHA-256 signature",
        )
    }
}
