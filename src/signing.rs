//! Journal signing keys (Ed25519): why a journal can be trusted by someone who did not write it.
//!
//! The hash chain alone proves only that the records are consistent with each other: anyone who
//! can write the state folder can append a correctly hashed record after the head. A signature
//! over each record's hash, by a key the auditor holds the public half of, closes that gap (the
//! same idea as CloudTrail's signed digest files and RFC 6962's signed tree heads).
//!
//! Formats are the standard ones, so OpenSSL reads them too:
//! - private key: PEM `PRIVATE KEY`, PKCS#8 v1 (what `openssl genpkey -algorithm ed25519`
//!   writes), mode 0600; a key file that group or others may read is refused, as ssh does;
//! - public key: PEM `PUBLIC KEY` (X.509 SubjectPublicKeyInfo);
//! - key id: `ed25519:` and the first 16 hex digits of SHA-256 of the raw public key;
//! - signature: Ed25519 over `realmctl-journal-sig-v1` ‖ the record's hash (hex text), stored
//!   base64 in the record beside the key id.
//!
//! The private key lives only in memory ([`SigningKey`] has no `Serialize` and a redacting
//! `Debug`); nothing here writes it anywhere but the file `keygen` creates.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, ParsedPublicKey, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::fsutil;

/// What a journal signature is made over, before the record hash.
const CONTEXT: &[u8] = b"realmctl-journal-sig-v1";
/// What a customer's offline approval statement is signed over, before the statement's bytes
/// (a different context: an approval's signature can never pass for a record's, or back).
const STATEMENT_CONTEXT: &[u8] = b"realmctl-approval-sig-v1";
/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The key file could not be read.
    #[error("signing key: {0}")]
    Read(#[from] fsutil::ReadError),
    /// The private key file may be read by other users.
    #[error("{} has mode {mode:o}: a private signing key must be readable by its owner only\n  help: run `chmod 600 {}`", path.display(), path.display())]
    LoosePermissions {
        /// The key file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The file is not a key of the expected kind.
    #[error("{} is not {expected}\n  help: make one with `realmctl audit keygen -o FILE`", path.display())]
    NotAKey {
        /// The file.
        path: PathBuf,
        /// What it should have been.
        expected: &'static str,
    },
    /// `keygen` would overwrite a file.
    #[error("{} already exists; realmctl never overwrites a key\n  help: choose another path, or remove the old key if it is no longer needed", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Writing a new key failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A public key an auditor trusts, with where it came from.
#[derive(Clone)]
pub struct PublicKey {
    raw: [u8; 32],
    /// Decoded once: verifying thousands of records must not decode the curve point each time.
    parsed: std::sync::Arc<ParsedPublicKey>,
    id: String,
    /// Where the key was read from (for messages and reports).
    pub source: String,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({} from {})", self.id, self.source)
    }
}

/// The key id of a raw Ed25519 public key.
fn key_id(raw: &[u8]) -> String {
    format!("ed25519:{}", &crate::crypto::sha256_hex(raw)[..16])
}

/// The bytes a record's signature covers.
fn message(record_hash: &str) -> Vec<u8> {
    in_context(CONTEXT, record_hash.as_bytes())
}

/// `context` ‖ `bytes`: a signature made for one purpose never verifies for another.
fn in_context(context: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(context.len() + bytes.len());
    m.extend_from_slice(context);
    m.extend_from_slice(bytes);
    m
}

/// The body of the one PEM block labelled `label` in `text`.
fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    B64.decode(b64).ok()
}

/// A PEM block.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl PublicKey {
    /// Parses a PEM `PUBLIC KEY` (Ed25519 SubjectPublicKeyInfo); `source` names it in messages.
    pub fn parse(text: &str, source: &str) -> Option<Self> {
        let der = pem_body(text, "PUBLIC KEY")?;
        let raw: [u8; 32] = der.strip_prefix(&SPKI_PREFIX[..])?.try_into().ok()?;
        Self::from_raw(raw, source)
    }

    /// A key from its 32 raw bytes (`None` when they are not a point on the curve).
    fn from_raw(raw: [u8; 32], source: &str) -> Option<Self> {
        let parsed = UnparsedPublicKey::new(&ED25519, raw).parse().ok()?;
        Some(PublicKey {
            raw,
            parsed: std::sync::Arc::new(parsed),
            id: key_id(&raw),
            source: source.to_owned(),
        })
    }

    /// Reads a public key file.
    pub fn load(path: &Path) -> Result<Self, SigningError> {
        let text = fsutil::read_capped_string(path, fsutil::caps::KEY)?;
        Self::parse(&text, &path.display().to_string()).ok_or_else(|| SigningError::NotAKey {
            path: path.to_owned(),
            expected: "an Ed25519 public key (PEM `PUBLIC KEY`)",
        })
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as PEM.
    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.raw);
        pem("PUBLIC KEY", &der)
    }

    /// Whether `sig` (base64) is this key's signature of the record hash `record_hash`.
    pub fn verifies(&self, record_hash: &str, sig: &str) -> bool {
        let Ok(sig) = B64.decode(sig) else {
            return false;
        };
        self.parsed.verify_sig(&message(record_hash), &sig).is_ok()
    }

    /// Whether `sig` (base64) is this key's signature of the approval statement `statement`
    /// ([`SigningKey::sign_statement`]).
    pub fn verifies_statement(&self, statement: &[u8], sig: &str) -> bool {
        let Ok(sig) = B64.decode(sig) else {
            return false;
        };
        self.parsed
            .verify_sig(&in_context(STATEMENT_CONTEXT, statement), &sig)
            .is_ok()
    }
}

/// A private signing key, in memory only.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, private part not shown)", self.public.id)
    }
}

/// A record's signature: who signed, and the signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signature {
    /// The signer's key id.
    pub key: String,
    /// Base64 Ed25519 signature.
    pub sig: String,
}

impl SigningKey {
    fn from_pair(pair: Ed25519KeyPair, source: &str) -> Self {
        let raw: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("Ed25519 public keys are 32 bytes");
        let public =
            PublicKey::from_raw(raw, source).expect("a key pair's public key is on the curve");
        SigningKey { pair, public }
    }

    /// A new random key.
    pub fn generate() -> Self {
        let pair = Ed25519KeyPair::generate().expect("the random source works");
        Self::from_pair(pair, "new key")
    }

    /// Parses a PEM `PRIVATE KEY` (PKCS#8 v1 or v2, Ed25519).
    pub fn parse(text: &str, source: &str) -> Option<Self> {
        let der = pem_body(text, "PRIVATE KEY")?;
        let pair = Ed25519KeyPair::from_pkcs8(&der).ok()?;
        Some(Self::from_pair(pair, source))
    }

    /// Reads a private key file: a regular file of at most 256 KiB that only its owner may read.
    pub fn load(path: &Path) -> Result<Self, SigningError> {
        let text = fsutil::read_capped_string(path, fsutil::caps::KEY)?;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        if mode & 0o077 != 0 {
            return Err(SigningError::LoosePermissions {
                path: path.to_owned(),
                mode,
            });
        }
        Self::parse(&text, &path.display().to_string()).ok_or_else(|| SigningError::NotAKey {
            path: path.to_owned(),
            expected: "an Ed25519 private key (PEM `PRIVATE KEY`)",
        })
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Signs a record hash.
    pub fn sign(&self, record_hash: &str) -> Signature {
        Signature {
            key: self.public.id.clone(),
            sig: B64.encode(self.pair.sign(&message(record_hash)).as_ref()),
        }
    }

    /// Signs a customer's approval statement (its exact bytes), base64.
    pub fn sign_statement(&self, statement: &[u8]) -> String {
        B64.encode(
            self.pair
                .sign(&in_context(STATEMENT_CONTEXT, statement))
                .as_ref(),
        )
    }

    /// The private key as PEM (PKCS#8 v1), for the key file only.
    fn to_pem(&self) -> String {
        let der = self.pair.to_pkcs8v1().expect("a key pair encodes");
        pem("PRIVATE KEY", der.as_ref())
    }

    /// Writes a new key pair: the private key to `path` (0600) and the public key beside it
    /// (`path` + `.pub`, 0644). Refuses to overwrite either file. Returns the public key.
    pub fn generate_to(path: &Path) -> Result<PublicKey, SigningError> {
        let key = Self::generate();
        let pub_path = public_path(path);
        for p in [path, pub_path.as_path()] {
            if std::fs::symlink_metadata(p).is_ok() {
                return Err(SigningError::Exists { path: p.to_owned() });
            }
        }
        write_new(path, key.to_pem().as_bytes(), fsutil::PRIVATE_FILE)?;
        if let Err(e) = write_new(&pub_path, key.public.to_pem().as_bytes(), 0o644) {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        let mut public = key.public.clone();
        public.source = pub_path.display().to_string();
        Ok(public)
    }
}

/// Where `keygen` writes the public half of the key at `path`.
pub fn public_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Creates `path` (never replacing anything) with `bytes` and `mode`, fsync'd.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SigningError> {
    let err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            SigningError::Exists {
                path: path.to_owned(),
            }
        } else {
            SigningError::Write {
                path: path.to_owned(),
                source,
            }
        }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fsutil::sync_dir(dir);
    }
    Ok(())
}

/// Checks a record's signature against trusted keys (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Signed by this trusted key.
    Valid(String),
    /// No signature.
    Unsigned,
    /// Signed by a key that is not trusted.
    UntrustedKey(String),
    /// The signature does not verify with the key it names.
    Invalid(String),
}

/// Checks `signature` of `record_hash` against `trusted` keys.
pub fn check(
    record_hash: &str,
    signature: Option<&Signature>,
    trusted: &[PublicKey],
) -> SignatureCheck {
    let Some(s) = signature else {
        return SignatureCheck::Unsigned;
    };
    let mut named = trusted.iter().filter(|k| k.id == s.key).peekable();
    if named.peek().is_none() {
        return SignatureCheck::UntrustedKey(s.key.clone());
    }
    if named.any(|k| k.verifies(record_hash, &s.sig)) {
        SignatureCheck::Valid(s.key.clone())
    } else {
        SignatureCheck::Invalid(s.key.clone())
    }
}

/// Makes sure the key given to `install`, `approve` or `unlock` is not inside `state` (the
/// private key must never be part of the evidence it signs).
pub fn refuse_inside(key: &Path, state: &Path) -> Result<(), SigningError> {
    let (Ok(k), Ok(s)) = (std::fs::canonicalize(key), std::fs::canonicalize(state)) else {
        return Ok(());
    };
    if k.starts_with(&s) {
        return Err(SigningError::NotAKey {
            path: key.to_owned(),
            expected: "a key kept outside the state folder (a private key inside the evidence it signs protects nothing)",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "5f0c0e8b1f3b6f2f1d2a3c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5f6a7b8c9";

    #[test]
    fn a_statement_signature_verifies_only_for_its_bytes_and_never_as_a_record_signature() {
        let a = SigningKey::generate();
        let b = SigningKey::generate();
        let sig = a.sign_statement(HASH.as_bytes());
        assert!(a.public().verifies_statement(HASH.as_bytes(), &sig));
        assert!(!b.public().verifies_statement(HASH.as_bytes(), &sig));
        assert!(!a.public().verifies_statement(b"other", &sig));
        // The two contexts never meet: neither signature passes for the other kind.
        assert!(!a.public().verifies(HASH, &sig));
        let record = a.sign(HASH);
        assert!(!a.public().verifies_statement(HASH.as_bytes(), &record.sig));
        assert!(
            !a.public()
                .verifies_statement(HASH.as_bytes(), "not base64!")
        );
    }

    #[test]
    fn a_signature_verifies_only_for_its_hash_and_key() {
        let a = SigningKey::generate();
        let b = SigningKey::generate();
        let s = a.sign(HASH);
        assert_eq!(s.key, a.public().id());
        let trusted = [a.public().clone(), b.public().clone()];
        assert_eq!(
            check(HASH, Some(&s), &trusted),
            SignatureCheck::Valid(s.key.clone())
        );
        let other_hash = HASH.replace('5', "6");
        assert_eq!(
            check(&other_hash, Some(&s), &trusted),
            SignatureCheck::Invalid(s.key.clone())
        );
        assert_eq!(
            check(HASH, Some(&s), &[b.public().clone()]),
            SignatureCheck::UntrustedKey(s.key.clone())
        );
        // A's signature relabelled as B's does not verify with B's key.
        let relabelled = Signature {
            key: b.public().id().to_owned(),
            sig: s.sig.clone(),
        };
        assert_eq!(
            check(HASH, Some(&relabelled), &trusted),
            SignatureCheck::Invalid(b.public().id().to_owned())
        );
        assert_eq!(check(HASH, None, &trusted), SignatureCheck::Unsigned);
        let garbage = Signature {
            key: s.key.clone(),
            sig: "not base64!".into(),
        };
        assert_eq!(
            check(HASH, Some(&garbage), &trusted),
            SignatureCheck::Invalid(s.key.clone())
        );
    }

    #[test]
    fn keys_round_trip_through_pem() {
        let k = SigningKey::generate();
        let again = SigningKey::parse(&k.to_pem(), "t").unwrap();
        assert_eq!(again.public().id(), k.public().id());
        let p = PublicKey::parse(&k.public().to_pem(), "t").unwrap();
        assert!(p.verifies(HASH, &k.sign(HASH).sig));
        assert!(
            PublicKey::parse(&k.to_pem(), "t").is_none(),
            "a private key is not a public key"
        );
        assert!(SigningKey::parse(&k.public().to_pem(), "t").is_none());
    }

    #[test]
    fn keygen_writes_private_0600_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ops.key");
        let public = SigningKey::generate_to(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = SigningKey::load(&path).unwrap();
        assert_eq!(loaded.public().id(), public.id());
        assert_eq!(
            PublicKey::load(&public_path(&path)).unwrap().id(),
            public.id()
        );
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(
            SigningKey::generate_to(&path),
            Err(SigningError::Exists { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_private_key_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ops.key");
        SigningKey::generate_to(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = SigningKey::load(&path).unwrap_err();
        assert!(
            matches!(e, SigningError::LoosePermissions { mode: 0o640, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let k = SigningKey::generate();
        let pem = k.to_pem();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let shown = format!("{k:?}");
        assert!(!shown.contains(&body[..20]), "{shown}");
        assert!(shown.contains(k.public().id()));
    }
}
