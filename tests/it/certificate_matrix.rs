//! Certificate matrix (issue #2): every case a customer can hand us, checked through the
//! library's decision function with a test PKI made by rcgen (openssl for SHA-1 and RSA-1024,
//! which rcgen cannot produce).

use std::path::Path;

use crate::common::{BASE, Pki, openssl_leaf, required};
use realmctl::checks::certificate::{Inputs, Roots, check};
use realmctl::checks::{CheckResult, Status};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;

fn roots(pem: &str) -> Roots {
    Roots::new(
        "the test CA",
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(Result::unwrap)
            .collect(),
    )
}

fn run(cert: &str, key: &str, ca: &str) -> Vec<CheckResult> {
    let inputs = Inputs {
        cert_path: Path::new("wildcard.pem"),
        cert_pem: cert.as_bytes(),
        key_path: Path::new("wildcard.key"),
        key_pem: key.as_bytes(),
    };
    check(
        &inputs,
        &required(),
        30,
        OffsetDateTime::now_utc(),
        &roots(ca),
    )
}

fn get<'a>(rs: &'a [CheckResult], id: &str) -> &'a CheckResult {
    rs.iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no {id} in {rs:#?}"))
}

fn only_failure(rs: &[CheckResult], id: &str) -> String {
    let bad: Vec<_> = rs
        .iter()
        .filter(|r| r.status != Status::Pass)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(bad, [id], "{rs:#?}");
    let r = get(rs, id);
    assert!(
        r.fix.as_deref().is_some_and(|f| !f.is_empty()),
        "a finding must say how to fix it: {r:?}"
    );
    r.message.clone()
}

#[test]
fn valid_chain_passes_every_check() {
    let pki = Pki::new();
    let leaf = pki.leaf(&required());
    let rs = run(&leaf.cert_pem, &leaf.key_pem, &pki.root_pem());
    assert_eq!(rs.len(), 7);
    assert!(rs.iter().all(|r| r.status == Status::Pass), "{rs:#?}");
}

#[test]
fn one_prefix_missing_is_named() {
    let pki = Pki::new();
    let sans: Vec<String> = required()
        .into_iter()
        .filter(|n| !n.starts_with("*.portal."))
        .collect();
    let leaf = pki.leaf(&sans);
    let m = only_failure(
        &run(&leaf.cert_pem, &leaf.key_pem, &pki.root_pem()),
        "certificate.names",
    );
    assert!(
        m.contains(&format!("*.portal.{BASE}")) && m.starts_with("1 of 6"),
        "{m}"
    );
}

#[test]
fn only_base_wildcard_explains_the_one_label_rule() {
    let pki = Pki::new();
    let leaf = pki.leaf(&[format!("*.{BASE}")]);
    let m = only_failure(
        &run(&leaf.cert_pem, &leaf.key_pem, &pki.root_pem()),
        "certificate.names",
    );
    assert!(
        m.starts_with("6 of 6") && m.contains("exactly one label"),
        "{m}"
    );
}

#[test]
fn expired_not_yet_valid_and_expiring_soon() {
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let expired = pki.leaf_with(&required(), |p| {
        p.not_before = now - time::Duration::days(400);
        p.not_after = now - time::Duration::days(10);
    });
    let m = only_failure(
        &run(&expired.cert_pem, &expired.key_pem, &pki.root_pem()),
        "certificate.validity",
    );
    assert!(m.contains("expired"), "{m}");

    let future = pki.leaf_with(&required(), |p| {
        p.not_before = now + time::Duration::days(10);
        p.not_after = now + time::Duration::days(400);
    });
    let m = only_failure(
        &run(&future.cert_pem, &future.key_pem, &pki.root_pem()),
        "certificate.validity",
    );
    assert!(m.contains("not valid yet"), "{m}");

    let soon = pki.leaf_with(&required(), |p| {
        p.not_after = now + time::Duration::days(10)
    });
    let rs = run(&soon.cert_pem, &soon.key_pem, &pki.root_pem());
    let v = get(&rs, "certificate.validity");
    assert_eq!(v.status, Status::Warn, "{v:?}");
    assert!(v.message.contains("days left, minimum 30"), "{}", v.message);
}

#[test]
fn key_mismatch() {
    let pki = Pki::new();
    let a = pki.leaf(&required());
    let b = pki.leaf(&required());
    let m = only_failure(
        &run(&a.cert_pem, &b.key_pem, &pki.root_pem()),
        "certificate.key",
    );
    assert!(m.contains("does not belong"), "{m}");
}

#[test]
fn self_signed_leaf() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(required()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, "self");
    let cert = p.self_signed(&key).unwrap();
    let pki = Pki::new();
    let m = only_failure(
        &run(&cert.pem(), &key.serialize_pem(), &pki.root_pem()),
        "certificate.chain",
    );
    assert!(m.contains("self-signed"), "{m}");
}

#[test]
fn missing_intermediate_is_named() {
    let pki = Pki::new();
    let leaf = pki.leaf(&required());
    let leaf_only = leaf
        .cert_pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap()
        .to_owned();
    let m = only_failure(
        &run(&leaf_only, &leaf.key_pem, &pki.root_pem()),
        "certificate.chain",
    );
    assert!(
        m.contains("missing intermediate") && m.contains("Realmctl Test Intermediate CA"),
        "{m}"
    );
}

#[test]
fn a_chain_that_only_verifies_to_another_ca_fails() {
    let pki = Pki::new();
    let other = Pki::new();
    let leaf = pki.leaf(&required());
    let rs = run(&leaf.cert_pem, &leaf.key_pem, &other.root_pem());
    assert_eq!(get(&rs, "certificate.chain").status, Status::Fail);
}

#[test]
fn sha1_signature_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = openssl_leaf(dir.path(), 2048, "sha1", &required());
    let rs = run(&cert, &key, &ca);
    let s = get(&rs, "certificate.strength");
    assert_eq!(s.status, Status::Fail);
    assert!(s.message.contains("SHA-1"), "{}", s.message);
    assert_eq!(
        get(&rs, "certificate.key").status,
        Status::Pass,
        "RSA keys from openssl must match: {rs:#?}"
    );
}

#[test]
fn rsa_1024_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = openssl_leaf(dir.path(), 1024, "sha256", &required());
    let rs = run(&cert, &key, &ca);
    let s = get(&rs, "certificate.strength");
    assert_eq!(s.status, Status::Fail);
    assert!(s.message.contains("RSA-1024"), "{}", s.message);
    assert_eq!(get(&rs, "certificate.key").status, Status::Pass, "{rs:#?}");
}

#[test]
fn openssl_rsa_2048_chain_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = openssl_leaf(dir.path(), 2048, "sha256", &required());
    let rs = run(&cert, &key, &ca);
    assert!(rs.iter().all(|r| r.status == Status::Pass), "{rs:#?}");
}

#[test]
fn garbage_der_encrypted_and_missing_keys() {
    let pki = Pki::new();
    let leaf = pki.leaf(&required());
    let root = pki.root_pem();

    let rs = run("this is not a certificate", &leaf.key_pem, &root);
    assert_eq!(get(&rs, "certificate.pem").status, Status::Fail);
    assert!(
        get(&rs, "certificate.pem")
            .message
            .contains("no certificate")
    );

    let der = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    let inputs = Inputs {
        cert_path: Path::new("w.der"),
        cert_pem: &der,
        key_path: Path::new("k"),
        key_pem: leaf.key_pem.as_bytes(),
    };
    let rs = check(
        &inputs,
        &required(),
        30,
        OffsetDateTime::now_utc(),
        &roots(&root),
    );
    let r = get(&rs, "certificate.pem");
    assert!(
        r.message.contains("DER")
            && r.fix
                .as_deref()
                .unwrap()
                .contains("openssl x509 -inform der"),
        "{r:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.pem"), &leaf.key_pem).unwrap();
    crate::common::openssl(
        dir.path(),
        &[
            "pkey",
            "-in",
            "k.pem",
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "enc.pem",
        ],
    );
    let enc = std::fs::read_to_string(dir.path().join("enc.pem")).unwrap();
    let m = only_failure(&run(&leaf.cert_pem, &enc, &root), "certificate.key");
    assert!(m.contains("encrypted"), "{m}");

    let m = only_failure(&run(&leaf.cert_pem, "", &root), "certificate.key");
    assert!(m.contains("empty"), "{m}");
    let m = only_failure(
        &run(&leaf.cert_pem, &leaf.cert_pem, &root),
        "certificate.key",
    );
    assert!(m.contains("no private key"), "{m}");
}

#[test]
fn sec1_and_pkcs1_keys_match() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let leaf = pki.leaf(&required());
    std::fs::write(dir.path().join("k.pem"), &leaf.key_pem).unwrap();
    crate::common::openssl(dir.path(), &["ec", "-in", "k.pem", "-out", "sec1.pem"]);
    let sec1 = std::fs::read_to_string(dir.path().join("sec1.pem")).unwrap();
    assert!(sec1.contains("BEGIN EC PRIVATE KEY"));
    assert_eq!(
        get(
            &run(&leaf.cert_pem, &sec1, &pki.root_pem()),
            "certificate.key"
        )
        .status,
        Status::Pass
    );

    let (cert, key, ca) = openssl_leaf(dir.path(), 2048, "sha256", &required());
    std::fs::write(dir.path().join("rsa.pem"), &key).unwrap();
    crate::common::openssl(
        dir.path(),
        &["rsa", "-in", "rsa.pem", "-traditional", "-out", "pkcs1.pem"],
    );
    let pkcs1 = std::fs::read_to_string(dir.path().join("pkcs1.pem")).unwrap();
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"));
    assert_eq!(
        get(&run(&cert, &pkcs1, &ca), "certificate.key").status,
        Status::Pass
    );
}

#[test]
fn leaf_must_come_first() {
    let pki = Pki::new();
    let leaf = pki.leaf(&required());
    let mut parts: Vec<&str> = leaf
        .cert_pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .collect();
    parts.reverse();
    let rs = run(&parts.concat(), &leaf.key_pem, &pki.root_pem());
    let r = get(&rs, "certificate.pem");
    assert_eq!(r.status, Status::Fail);
    assert!(r.message.contains("not the leaf"), "{r:?}");
}

#[test]
fn missing_server_auth_usage() {
    let pki = Pki::new();
    let leaf = pki.leaf_with(&required(), |p| {
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth]
    });
    let rs = run(&leaf.cert_pem, &leaf.key_pem, &pki.root_pem());
    assert_eq!(get(&rs, "certificate.usage").status, Status::Fail);
}
