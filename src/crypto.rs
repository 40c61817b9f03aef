//! The one crypto provider of the binary, aws-lc-rs, in one place: SHA-256 and hex (journal
//! hashes, input and output digests, artifact checksums, token digests), randomness, and the
//! rustls provider every TLS client and server of realmctl uses. The AWS SDK (and the Azure and
//! Google crates to come) use aws-lc-rs too, so the binary carries one provider, not two. Also the
//! canonical JSON text that definitions and manifests are digested over.

use std::sync::Arc;

use aws_lc_rs::digest;

/// JSON text with every object's keys sorted, so equal values have equal text whatever map
/// type serde_json was built with (its `preserve_order` keeps insertion order).
pub fn canonical_json(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical_json).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// Lowercase hex of bytes (by table: this runs for every token a request presents and every
/// journal record, and `write!` per byte cost more than the digest itself).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// SHA-256 of bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// The bytes of a SHA-256 hex digest (either letter case); `None` unless [`is_sha256_hex`].
pub fn sha256_from_hex(s: &str) -> Option<[u8; 32]> {
    if !is_sha256_hex(s) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    };
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *o = (nibble(pair[0]) << 4) | nibble(pair[1]);
    }
    Some(out)
}

/// SHA-256 hex of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// An incremental SHA-256.
pub struct Sha256(digest::Context);

impl Default for Sha256 {
    fn default() -> Self {
        Sha256(digest::Context::new(&digest::SHA256))
    }
}

impl Sha256 {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    /// The digest as lowercase hex.
    pub fn finish_hex(self) -> String {
        hex(self.0.finish().as_ref())
    }
}

/// Fills `buf` from the operating system's random source.
pub fn random(buf: &mut [u8]) {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    SystemRandom::new()
        .fill(buf)
        .expect("the operating system's random source is available");
}

/// The rustls crypto provider (aws-lc-rs) for every TLS client and server of realmctl.
pub fn tls_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Installs [`tls_provider`] as the process default, for libraries that look it up (the AWS
/// SDK's HTTPS client, reqwest). Called once by `main`; a second call changes nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Whether `s` is 64 hex digits (a SHA-256 in hex, either case).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hex_digest_reads_back_in_either_case() {
        let d = sha256(b"abc");
        let h = sha256_hex(b"abc");
        assert_eq!(sha256_from_hex(&h), Some(d));
        assert_eq!(sha256_from_hex(&h.to_ascii_uppercase()), Some(d));
        assert_eq!(hex(&d), h);
        assert_eq!(sha256_from_hex(&h[1..]), None);
        assert_eq!(sha256_from_hex(&format!("g{}", &h[1..])), None);
    }

    #[test]
    fn known_answers() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Sha256::default();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finish_hex(), sha256_hex(b"abc"));
        assert_eq!(hex(&[0, 255]), "00ff");
        let all: Vec<u8> = (0..=255).collect();
        let by_fmt: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), by_fmt, "every byte as the formatter writes it");
        assert!(is_sha256_hex(&sha256_hex(b"")));
        assert!(!is_sha256_hex("abc"));
    }
}
