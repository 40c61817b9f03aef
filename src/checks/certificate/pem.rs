//! Reading the certificate chain and private key from PEM, with errors a customer can act on.
//!
//! Uses `rustls-pki-types`' PEM parser; this module only recognises the common wrong inputs
//! (DER, encrypted keys, empty files, certificates given as keys) to say how to fix them.

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a PEM input was rejected; the `Display` text is the one-line finding.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PemProblem {
    /// The file is empty.
    #[error("the file is empty")]
    Empty,
    /// The file looks like binary DER.
    #[error("the file is DER (binary), not PEM")]
    Der,
    /// No PEM block of the wanted kind.
    #[error("no {wanted} found in the file")]
    NotFound {
        /// What was looked for.
        wanted: &'static str,
    },
    /// A PEM block is malformed.
    #[error("malformed PEM: {0}")]
    Malformed(String),
    /// The private key is encrypted.
    #[error("the private key is encrypted")]
    EncryptedKey,
    /// More than one private key.
    #[error("the key file holds {0} private keys; exactly one is expected")]
    ManyKeys(usize),
}

impl PemProblem {
    /// One line saying how to fix it, for the file `path`.
    pub fn fix(&self, path: &str, is_key: bool) -> String {
        match self {
            PemProblem::Der if is_key => {
                format!("convert it to PEM: openssl pkey -inform der -in {path} -out {path}.pem")
            }
            PemProblem::Der => {
                format!("convert it to PEM: openssl x509 -inform der -in {path} -out {path}.pem")
            }
            PemProblem::EncryptedKey => format!(
                "provide the key without a passphrase (e.g. openssl pkey -in {path} -out <new file>) and keep that file private"
            ),
            PemProblem::ManyKeys(_) => format!("keep only the leaf certificate's key in {path}"),
            _ if is_key => {
                format!("put the leaf's private key in PEM (-----BEGIN PRIVATE KEY-----) in {path}")
            }
            _ => format!(
                "put the PEM chain in {path}: the leaf first, then each intermediate (-----BEGIN CERTIFICATE-----)"
            ),
        }
    }
}

fn precheck(bytes: &[u8]) -> Result<(), PemProblem> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(PemProblem::Empty);
    }
    // DER starts with a SEQUENCE tag; PEM is text.
    if bytes[0] == 0x30 && std::str::from_utf8(bytes).is_err() {
        return Err(PemProblem::Der);
    }
    Ok(())
}

/// Parses a PEM chain; keeps the order (leaf first).
pub fn parse_chain(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemProblem> {
    precheck(bytes)?;
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemProblem::Malformed(describe(e)))?;
    if certs.is_empty() {
        return Err(PemProblem::NotFound {
            wanted: "certificate (-----BEGIN CERTIFICATE-----)",
        });
    }
    Ok(certs)
}

/// Parses exactly one unencrypted private key (PKCS#8, PKCS#1 or SEC1).
pub fn parse_key(bytes: &[u8]) -> Result<PrivateKeyDer<'static>, PemProblem> {
    precheck(bytes)?;
    let text = String::from_utf8_lossy(bytes);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(PemProblem::EncryptedKey);
    }
    let mut keys = Vec::new();
    for item in pem::PemObject::pem_slice_iter(bytes) {
        let key: PrivateKeyDer<'static> = item.map_err(|e| PemProblem::Malformed(describe(e)))?;
        keys.push(key);
    }
    match keys.len() {
        0 => Err(PemProblem::NotFound {
            wanted: "private key (-----BEGIN PRIVATE KEY-----)",
        }),
        1 => Ok(keys.remove(0)),
        n => Err(PemProblem::ManyKeys(n)),
    }
}

fn describe(e: pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!(
                "a block is not closed (missing {})",
                String::from_utf8_lossy(&end_marker)
            )
        }
        pem::Error::IllegalSectionStart { line } => {
            format!(
                "bad BEGIN line `{}`",
                String::from_utf8_lossy(&line)
                    .chars()
                    .take(60)
                    .collect::<String>()
            )
        }
        pem::Error::Base64Decode(_) => "a block is not valid base64".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_wrong_inputs() {
        assert_eq!(parse_chain(b"  \n"), Err(PemProblem::Empty));
        assert_eq!(
            parse_chain(&[0x30, 0x82, 0xff, 0xfe, 0x00]),
            Err(PemProblem::Der)
        );
        assert!(matches!(
            parse_chain(b"hello world"),
            Err(PemProblem::NotFound { .. })
        ));
        assert!(matches!(
            parse_chain(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
            Err(PemProblem::Malformed(_))
        ));
        assert!(matches!(
            parse_chain(b"-----BEGIN CERTIFICATE-----\nAAAA\n"),
            Err(PemProblem::Malformed(_))
        ));
        assert_eq!(
            parse_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"),
            Err(PemProblem::EncryptedKey)
        );
        assert_eq!(
            parse_key(b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"),
            Err(PemProblem::EncryptedKey)
        );
        assert!(matches!(
            parse_key(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Err(PemProblem::NotFound { .. })
        ));
    }
}
