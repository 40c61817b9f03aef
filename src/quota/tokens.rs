//! Bearer tokens for the quota service: only SHA-256 digests are stored.
//!
//! The tokens file is YAML mapping the hex SHA-256 digest of each token to a realm name or
//! `admin`. A realm token may act on its own realm only; `admin` may act on every realm and is
//! the only scope that may change a realm's config. [`mint`] makes a token and its file line.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every realm, including config changes.
    Admin,
    /// One realm's deployments and usage.
    Realm(String),
}

/// Why a request is not authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No or unknown token (HTTP 401).
    Unauthenticated,
    /// A valid token without the right (HTTP 403).
    Forbidden,
}

/// A problem with the tokens file.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// Unreadable.
    #[error("cannot read the tokens file {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not a mapping of digests to scopes.
    #[error("tokens file {}: {detail}\n  help: each line is `<sha256 hex of the token>: <realm or admin>`; `realmctl quota token` prints one", path.display())]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// The loaded tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_digest: HashMap<String, Scope>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 hex digest of a token.
pub fn digest_hex(token: &str) -> String {
    hex(digest(&SHA256, token.as_bytes()).as_ref())
}

impl Tokens {
    /// Parses the YAML text of a tokens file.
    pub fn parse(text: &str, path: &Path) -> Result<Self, TokensError> {
        let invalid = |detail: String| TokensError::Invalid {
            path: path.to_owned(),
            detail,
        };
        let map: HashMap<String, String> = if text.trim().is_empty() {
            HashMap::new()
        } else {
            serde_saphyr::from_str(text).map_err(|e| invalid(e.without_snippet().to_string()))?
        };
        let mut by_digest = HashMap::new();
        for (k, v) in map {
            let k = k.to_ascii_lowercase();
            if k.len() != 64 || !k.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(invalid(format!(
                    "`{k}` is not a SHA-256 hex digest (64 hex digits)"
                )));
            }
            let scope = if v == "admin" {
                Scope::Admin
            } else {
                Scope::Realm(v)
            };
            by_digest.insert(k, scope);
        }
        Ok(Tokens { by_digest })
    }

    /// Reads a tokens file.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Decides whether `authorization` (the header value) may act on `realm` (pure).
    /// `admin_only` is for config changes.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        realm: &str,
        admin_only: bool,
    ) -> Result<Scope, Denied> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Unauthenticated)?;
        let scope = self
            .by_digest
            .get(&digest_hex(token))
            .ok_or(Denied::Unauthenticated)?;
        match scope {
            Scope::Admin => Ok(Scope::Admin),
            Scope::Realm(r) if r == realm && !admin_only => Ok(scope.clone()),
            Scope::Realm(_) => Err(Denied::Forbidden),
        }
    }
}

/// A new random token (256 bits, base64url) and the tokens-file line for `scope`.
pub fn mint(scope: &Scope) -> (String, String) {
    let mut b = [0u8; 32];
    SystemRandom::new()
        .fill(&mut b)
        .expect("the operating system's random source is available");
    let token = format!(
        "rq_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    );
    let name = match scope {
        Scope::Admin => "admin",
        Scope::Realm(r) => r.as_str(),
    };
    let line = format!("{}: {name}", digest_hex(&token));
    (token, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let (admin, admin_line) = mint(&Scope::Admin);
        let (acme, acme_line) = mint(&Scope::Realm("acme".into()));
        assert_ne!(admin, acme);
        assert!(
            !admin_line.contains(&admin),
            "the file never holds the token"
        );
        let t =
            Tokens::parse(&format!("{admin_line}\n{acme_line}\n"), Path::new("t.yaml")).unwrap();
        let h = |t: &str| format!("Bearer {t}");
        assert_eq!(
            t.authorize(Some(&h(&acme)), "acme", false),
            Ok(Scope::Realm("acme".into()))
        );
        assert_eq!(
            t.authorize(Some(&h(&acme)), "other", false),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            t.authorize(Some(&h(&acme)), "acme", true),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            t.authorize(Some(&h(&admin)), "other", true),
            Ok(Scope::Admin)
        );
        assert_eq!(
            t.authorize(Some("Bearer nope"), "acme", false),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            t.authorize(None, "acme", false),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            t.authorize(Some(&acme), "acme", false),
            Err(Denied::Unauthenticated),
            "the scheme is required"
        );
        assert!(Tokens::parse("abc: acme", Path::new("t.yaml")).is_err());
    }
}
