//! Bearer tokens for the quota service: only SHA-256 digests are stored.
//!
//! The tokens file is YAML mapping the hex SHA-256 digest of each token to a realm name or
//! `admin`. A realm token may act on its own realm only; `admin` may act on every realm and is
//! the only scope that may change a realm's config. [`mint`] makes a token and its file line.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;

use crate::crypto::{random, sha256, sha256_from_hex, sha256_hex};
use crate::fsutil;

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
    #[error("cannot read the tokens file: {0}")]
    Read(#[from] fsutil::ReadError),
    /// Not a mapping of digests to scopes.
    #[error("tokens file {}: {detail}\n  help: each line is `<sha256 hex of the token>: <realm or admin>`; `realmctl quota token` prints one", path.display())]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Others may write it: whoever can write it can grant themselves `admin`.
    #[error("tokens file {} has mode {mode:o}: other users may write it and grant themselves admin\n  help: run `chmod go-w {}` (0600 or 0640 are fine)", path.display(), path.display())]
    Writable {
        /// The file.
        path: std::path::PathBuf,
        /// Its mode.
        mode: u32,
    },
}

/// What one token is granted, and the name its requests are logged under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// What it may do.
    pub scope: Scope,
    /// `admin:` or `REALM:` and the first 12 hex digits of the token's SHA-256 (never the
    /// token), made once when the file is read rather than on every request.
    pub name: String,
}

/// The loaded tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Keyed by the digest's bytes: a request hashes its token and looks it up without
    /// writing the digest out in hex.
    by_digest: HashMap<[u8; 32], Grant>,
}

/// SHA-256 hex digest of a token.
pub fn digest_hex(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// The entries of a YAML mapping in file order, duplicates kept (so they can be refused).
struct Entries(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of token digests to a realm name or `admin`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry::<String, String>()? {
                    out.push(kv);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl Tokens {
    /// Parses the YAML text of a tokens file.
    pub fn parse(text: &str, path: &Path) -> Result<Self, TokensError> {
        let invalid = |detail: String| TokensError::Invalid {
            path: path.to_owned(),
            detail,
        };
        if text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#')
        }) {
            return Err(invalid(
                "it lists no token, so the service would refuse every request".into(),
            ));
        }
        let Entries(entries) =
            serde_saphyr::from_str(text).map_err(|e| invalid(e.without_snippet().to_string()))?;
        let mut by_digest = HashMap::new();
        for (k, v) in entries {
            let shown = crate::spec::shorten(&k);
            let Some(digest) = sha256_from_hex(&k) else {
                return Err(invalid(format!(
                    "`{shown}` is not a SHA-256 hex digest (64 hex digits)"
                )));
            };
            let scope = if v == "admin" {
                Scope::Admin
            } else if crate::spec::is_valid_realm_name(&v) {
                Scope::Realm(v)
            } else {
                return Err(invalid(format!(
                    "`{}` (for digest {shown}) is neither `admin` nor a realm name ([a-z][a-z0-9-]{{1,30}})",
                    crate::spec::shorten(&v)
                )));
            };
            let name = format!(
                "{}:{}",
                match &scope {
                    Scope::Admin => "admin",
                    Scope::Realm(r) => r,
                },
                crate::crypto::hex(&digest[..6])
            );
            // Digests are hex: the same digest in another letter case is the same token.
            if by_digest.insert(digest, Grant { scope, name }).is_some() {
                return Err(invalid(format!(
                    "digest {shown} is listed twice (letter case does not matter); a token has exactly one scope"
                )));
            }
        }
        Ok(Tokens { by_digest })
    }

    /// Reads a tokens file; one that group or others may write is refused.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = fsutil::read_capped_string(path, fsutil::caps::TOKENS)?;
        if let Some(mode) = fsutil::loose_permissions(path) {
            return Err(TokensError::Writable {
                path: path.to_owned(),
                mode,
            });
        }
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
        self.grant(authorization.and_then(bearer_token), realm, admin_only)
            .map(|g| g.scope.clone())
    }

    /// Decides whether `token` (the bearer token itself) may act on `realm`, and gives its
    /// grant (pure). `admin_only` is for config changes.
    pub fn grant(
        &self,
        token: Option<&str>,
        realm: &str,
        admin_only: bool,
    ) -> Result<&Grant, Denied> {
        let token = token.ok_or(Denied::Unauthenticated)?;
        let grant = self
            .by_digest
            .get(&sha256(token.as_bytes()))
            .ok_or(Denied::Unauthenticated)?;
        match &grant.scope {
            Scope::Admin => Ok(grant),
            Scope::Realm(r) if r == realm && !admin_only => Ok(grant),
            Scope::Realm(_) => Err(Denied::Forbidden),
        }
    }
}

/// The token of an `Authorization` header value: the `Bearer` scheme in any letter case
/// (RFC 7235 §2.1), one or more spaces, then the token.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether `t` looks like a token [`mint`] makes: `rq_` and 43 base64url characters (pure).
pub fn well_formed(t: &str) -> bool {
    t.strip_prefix("rq_").is_some_and(|b| {
        b.len() == 43
            && b.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// A new random token (256 bits, base64url) and the tokens-file line for `scope`.
pub fn mint(scope: &Scope) -> (String, String) {
    let mut b = [0u8; 32];
    random(&mut b);
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
    fn a_grant_is_named_by_its_scope_and_its_tokens_digest() {
        let (acme, line) = mint(&Scope::Realm("acme".into()));
        let (admin, admin_line) = mint(&Scope::Admin);
        let t = Tokens::parse(
            &format!("{line}\n{admin_line}\n"),
            std::path::Path::new("t.yaml"),
        )
        .unwrap();
        let g = t.grant(Some(&acme), "acme", false).unwrap();
        assert_eq!(g.scope, Scope::Realm("acme".into()));
        assert_eq!(g.name, format!("acme:{}", &digest_hex(&acme)[..12]));
        let g = t.grant(Some(&admin), "acme", true).unwrap();
        assert_eq!(g.name, format!("admin:{}", &digest_hex(&admin)[..12]));
        assert_eq!(
            t.grant(Some("nope"), "acme", false),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(t.grant(None, "acme", false), Err(Denied::Unauthenticated));
        assert_eq!(t.grant(Some(&acme), "other", false), Err(Denied::Forbidden));
    }

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

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        // Regression (issue #8): `Authorization: bearer …` was refused.
        let (t, line) = mint(&Scope::Realm("acme".into()));
        let tokens = Tokens::parse(&line, Path::new("t.yaml")).unwrap();
        for h in [
            format!("Bearer {t}"),
            format!("bearer {t}"),
            format!("BEARER  {t}"),
        ] {
            assert!(tokens.authorize(Some(&h), "acme", false).is_ok(), "{h}");
        }
        assert_eq!(
            tokens.authorize(Some(&format!("Basic {t}")), "acme", false),
            Err(Denied::Unauthenticated)
        );
    }

    #[test]
    fn a_digest_twice_in_any_case_bad_realms_and_empty_files_are_refused() {
        // Regression (issue #8): a digest listed once for a realm and once (upper case) for
        // admin was accepted and the last won, giving a realm token admin rights.
        let d = digest_hex("some token");
        let twice = format!("{d}: acme\n{}: admin\n", d.to_ascii_uppercase());
        let e = Tokens::parse(&twice, Path::new("t.yaml")).unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
        for realm in ["../etc", "ADMIN", "Acme", "a", "x y"] {
            let e = Tokens::parse(&format!("{d}: \"{realm}\"\n"), Path::new("t.yaml")).unwrap_err();
            assert!(
                e.to_string().contains("neither `admin` nor a realm name"),
                "{realm}: {e}"
            );
        }
        for empty in ["", "\n  \n", "# no tokens yet\n"] {
            let e = Tokens::parse(empty, Path::new("t.yaml")).unwrap_err();
            assert!(e.to_string().contains("lists no token"), "{e}");
        }
        let upper = format!("{}: acme\n", d.to_ascii_uppercase());
        let t = Tokens::parse(&upper, Path::new("t.yaml")).unwrap();
        assert!(
            t.authorize(Some("Bearer some token"), "acme", false)
                .is_ok(),
            "an upper-case digest matches"
        );
    }
}
