//! Does the private key belong to the leaf certificate?
//!
//! RSA keys are compared by modulus and exponent read from the key's DER (so small, weak keys
//! still get a clear answer; the crypto library refuses RSA keys under 2048 bits). ECDSA
//! P-256/P-384 and Ed25519 keys are loaded with aws-lc-rs, which checks the key's consistency,
//! and their public key is compared with the certificate's.

use aws_lc_rs::signature::{self, KeyPair};
use rustls_pki_types::PrivateKeyDer;
use x509_parser::der_parser::ber::BerObject;
use x509_parser::der_parser::parse_der;
use x509_parser::prelude::*;

/// Result of comparing a key with a certificate.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyMatch {
    /// The key is the certificate's.
    Matches,
    /// The key belongs to another certificate.
    Mismatch,
    /// The key could not be interpreted; the text says why.
    Unsupported(String),
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// Compares `key` with the public key of `leaf`.
pub fn key_matches(key: &PrivateKeyDer<'_>, leaf: &X509Certificate<'_>) -> KeyMatch {
    let spki = leaf.public_key();
    let cert_pub: &[u8] = &spki.subject_public_key.data;
    let derived = match key {
        PrivateKeyDer::Pkcs1(k) => return rsa_matches(k.secret_pkcs1_der(), leaf),
        PrivateKeyDer::Pkcs8(k) => {
            let der = k.secret_pkcs8_der();
            if let Some(inner) = pkcs8_rsa_inner(der) {
                return rsa_matches(&inner, leaf);
            }
            derived_public_key(der)
        }
        PrivateKeyDer::Sec1(k) => {
            // Keys are read as PKCS#8: wrap the SEC1 key for each supported curve and let the
            // library decide which one it is.
            [OID_P256, OID_P384]
                .iter()
                .find_map(|curve| derived_public_key(&sec1_to_pkcs8(k.secret_sec1_der(), curve)))
        }
        _ => None,
    };
    match derived {
        Some(public) if public == cert_pub => KeyMatch::Matches,
        Some(_) => KeyMatch::Mismatch,
        None => KeyMatch::Unsupported(
            "unsupported or invalid private key (supported: RSA, ECDSA P-256/P-384, Ed25519)"
                .into(),
        ),
    }
}

fn derived_public_key(pkcs8: &[u8]) -> Option<Vec<u8>> {
    for alg in [
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
    ] {
        if let Ok(kp) = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8) {
            return Some(kp.public_key().as_ref().to_vec());
        }
    }
    signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
        .ok()
        .map(|kp| kp.public_key().as_ref().to_vec())
}

/// The RSAPrivateKey inside a PKCS#8 RSA key, if it is one.
fn pkcs8_rsa_inner(der: &[u8]) -> Option<Vec<u8>> {
    let (_, obj) = parse_der(der).ok()?;
    let seq = obj.as_sequence().ok()?;
    let alg = seq.get(1)?.as_sequence().ok()?;
    let oid = alg.first()?.as_oid().ok()?;
    if oid.to_id_string() != OID_RSA {
        return None;
    }
    Some(seq.get(2)?.as_slice().ok()?.to_vec())
}

fn rsa_matches(pkcs1: &[u8], leaf: &X509Certificate<'_>) -> KeyMatch {
    let parts = parse_der(pkcs1).ok().and_then(|(_, obj)| {
        let seq: &Vec<BerObject> = obj.as_sequence().ok()?;
        Some((
            trim(seq.get(1)?.as_slice().ok()?).to_vec(),
            trim(seq.get(2)?.as_slice().ok()?).to_vec(),
        ))
    });
    let Some((n, e)) = parts else {
        return KeyMatch::Unsupported("the RSA private key is not valid DER".into());
    };
    if leaf.public_key().algorithm.algorithm.to_id_string() != OID_RSA {
        return KeyMatch::Mismatch;
    }
    match leaf.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa))
            if trim(rsa.modulus) == n && trim(rsa.exponent) == e =>
        {
            KeyMatch::Matches
        }
        Ok(_) => KeyMatch::Mismatch,
        Err(_) => KeyMatch::Unsupported("the certificate's RSA public key cannot be read".into()),
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

fn sec1_to_pkcs8(sec1: &[u8], curve_oid: &[u8]) -> Vec<u8> {
    let ec_oid = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let alg = der(0x30, &[&ec_oid[..], curve_oid].concat());
    let version = [0x02, 0x01, 0x00];
    der(0x30, &[&version[..], &alg, &der(0x04, sec1)].concat())
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(der(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der(0x04, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(trim(&[0, 0, 5, 0]), &[5, 0]);
    }
}
