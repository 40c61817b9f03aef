//! Customer approvals signed where the customer is: `approve --offline` on the customer's
//! machine, `approve --import` on the operator's.
//!
//! A customer on a locked-down network has neither the operator's state nor a way to reach it.
//! They get the phase-5 roles-and-resources document (`roles-and-resources.md`, rendered by
//! `roles.render`), read it, and sign a [`Statement`] with their own Ed25519 key (`audit
//! keygen`): realmctl reads the realm and the cluster definition's digest from the document
//! itself and hashes the document, so what is signed is exactly what the customer read. The
//! operator imports the signed file with the customer's public key, which they hold from
//! elsewhere (never from the file).
//!
//! The import is accepted only when the signature verifies under that key, the statement names
//! this realm and the phase that waits, the document is one the phase's current outputs
//! recorded (by SHA-256), and the definition digest is the one the phase rendered, which is the
//! one phase 6 builds. Otherwise it is refused, naming the difference, and nothing is written.
//! The journal keeps the signed statement verbatim ([`SignedStatement`] in the approval record),
//! so an auditor holding the customer's public key checks it without trusting the operator
//! (`audit verify --customer-key`, [`recorded`]).
//!
//! Everything here is pure; reading files and the journal is the CLI's and the engine's.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::output::ArtifactRef;
use crate::signing::{PublicKey, SigningKey};

/// The statement's `kind`.
pub const KIND: &str = "realmctl-approval";
/// The statement format this realmctl writes and reads.
pub const VERSION: u32 = 1;
/// The largest signed-statement file read (a statement is well under 2 KiB).
pub const MAX_FILE: u64 = 64 * 1024;
/// The phase whose document a customer approves offline.
pub const ROLES_PHASE: u8 = 5;
/// The first line of the roles-and-resources document, before the realm's name.
const ROLES_TITLE: &str = "# Roles and resources — realm ";
/// The line of that document naming the definition's digest, before the digest.
const DIGEST_LINE: &str = "Digest: `";

/// What a customer approves: signed as the exact text [`Statement::text`] gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Statement {
    /// Always [`KIND`].
    pub kind: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The realm the document names.
    pub realm: String,
    /// The phase approved.
    pub phase: u8,
    /// The document the customer read.
    pub document: Document,
    /// The cluster definition's digest the document shows, when it shows one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// Who approves.
    pub by: String,
    /// Their note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When they signed (RFC 3339, their clock: recorded, never trusted for a decision).
    pub at: String,
}

/// A document by name and content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document {
    /// The file's name, as the customer had it.
    pub name: String,
    /// SHA-256 hex of its bytes.
    pub sha256: String,
}

/// The file the customer hands over, and what the journal keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedStatement {
    /// The statement's exact signed text (JSON).
    pub statement: String,
    /// The signer's key id.
    pub key: String,
    /// The signer's public key (PEM), for an auditor to compare with the one they hold.
    pub public_key: String,
    /// Base64 Ed25519 signature over the statement's text.
    pub signature: String,
}

/// What realmctl reads from a roles-and-resources document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentFacts {
    /// The realm in its title.
    pub realm: String,
    /// The definition digest it shows.
    pub definition: String,
}

/// Why an offline approval cannot be made or is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfflineError {
    /// The file is not a roles-and-resources document rendered by realmctl.
    #[error(
        "{name} is not a phase-5 roles-and-resources document rendered by realmctl ({why})\n  help: approve the roles-and-resources.md the cloud team sent, unchanged"
    )]
    NotRolesDocument {
        /// The file's name.
        name: String,
        /// What is missing.
        why: &'static str,
    },
    /// Offline approvals are for the phase-5 document only.
    #[error(
        "an offline approval covers the phase-{ROLES_PHASE} roles-and-resources document, not phase {0}\n  help: approve other phases with `realmctl approve --state`"
    )]
    WrongPhase(u8),
    /// The file is not a signed statement.
    #[error(
        "not a signed approval statement: {0}\n  help: import the file `realmctl approve --offline` wrote, unchanged"
    )]
    Malformed(String),
    /// A statement of another kind or version.
    #[error(
        "the statement is {kind} version {version}; this realmctl reads {KIND} version {VERSION}"
    )]
    Unknown {
        /// Its kind.
        kind: String,
        /// Its version.
        version: u32,
    },
    /// The file's key is not the customer's key the operator gave.
    #[error(
        "the statement is signed by {signer}, not by the customer's key {customer}\n  help: give --customer-key the public key the customer handed over for this realm"
    )]
    OtherKey {
        /// The key the file names.
        signer: String,
        /// The key given.
        customer: String,
    },
    /// The signature does not verify.
    #[error(
        "the statement's signature does not verify with {key}: it was changed after it was signed"
    )]
    BadSignature {
        /// The key.
        key: String,
    },
    /// The statement is for another realm.
    #[error("the statement approves realm {statement}; this state is realm {state}")]
    OtherRealm {
        /// The statement's realm.
        statement: String,
        /// The state's realm.
        state: String,
    },
    /// The statement approves another phase than the one asked.
    #[error("the statement approves phase {statement}, not phase {asked}")]
    OtherPhase {
        /// The statement's phase.
        statement: u8,
        /// The phase asked.
        asked: u8,
    },
    /// The document the customer signed is not the phase's current one.
    #[error(
        "the customer approved {name} with SHA-256 {sha256}, which is not among phase {phase}'s current outputs: the document was rendered again since (the spec changed?)\n  help: send the customer the current roles-and-resources.md and import their new approval"
    )]
    StaleDocument {
        /// The document's name.
        name: String,
        /// Its SHA-256.
        sha256: String,
        /// The phase.
        phase: u8,
    },
    /// The definition the customer approved is not the one phase 6 would build.
    #[error(
        "the customer approved the cluster definition {approved}, but phase {phase} now renders {current}: that is what phase 6 would build\n  help: send the customer the current roles-and-resources.md and import their new approval"
    )]
    StaleDefinition {
        /// The digest approved.
        approved: String,
        /// The digest the phase renders now.
        current: String,
        /// The phase.
        phase: u8,
    },
    /// A journaled statement does not say what its approval record says.
    #[error("the customer's statement says {field} {statement:?}, the approval record {record:?}")]
    Disagrees {
        /// The field.
        field: &'static str,
        /// The statement's value.
        statement: String,
        /// The record's value.
        record: String,
    },
}

impl Statement {
    /// The statement for the document `name` with bytes `bytes`, approved by `by`.
    pub fn for_document(
        name: &str,
        bytes: &[u8],
        phase: u8,
        by: &str,
        note: Option<&str>,
        at: String,
    ) -> Result<Self, OfflineError> {
        if phase != ROLES_PHASE {
            return Err(OfflineError::WrongPhase(phase));
        }
        let not = |why| OfflineError::NotRolesDocument {
            name: name.to_owned(),
            why,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| not("it is not UTF-8 text"))?;
        let facts = read_document(text).map_err(not)?;
        Ok(Statement {
            kind: KIND.to_owned(),
            version: VERSION,
            realm: facts.realm,
            phase,
            document: Document {
                name: name.to_owned(),
                sha256: crate::crypto::sha256_hex(bytes),
            },
            definition: Some(facts.definition),
            by: by.to_owned(),
            note: note.map(str::to_owned),
            at,
        })
    }

    /// The exact text that is signed.
    pub fn text(&self) -> String {
        serde_json::to_string(self).expect("a statement serialises")
    }

    /// Signs the statement with the customer's key.
    pub fn sign(&self, key: &SigningKey) -> SignedStatement {
        let text = self.text();
        SignedStatement {
            signature: key.sign_statement(text.as_bytes()),
            statement: text,
            key: key.public().id().to_owned(),
            public_key: key.public().to_pem(),
        }
    }
}

/// The realm and the definition digest of a roles-and-resources document's text.
pub fn read_document(text: &str) -> Result<DocumentFacts, &'static str> {
    let first = text.lines().next().unwrap_or("");
    let realm = first
        .strip_prefix(ROLES_TITLE)
        .ok_or("its first line is not the document's title")?
        .trim_end();
    if realm.is_empty() || !realm.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("its title names no realm");
    }
    let mut digests = text.lines().filter_map(|l| {
        l.strip_prefix(DIGEST_LINE)
            .and_then(|rest| rest.trim_end().strip_suffix('`'))
    });
    let definition = digests
        .next()
        .ok_or("it shows no cluster definition digest")?;
    if digests.next().is_some() {
        return Err("it shows more than one cluster definition digest");
    }
    let hex = definition
        .strip_prefix("sha256:")
        .ok_or("its digest is not a SHA-256 digest")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("its digest is not a SHA-256 digest");
    }
    Ok(DocumentFacts {
        realm: realm.to_owned(),
        definition: definition.to_owned(),
    })
}

impl SignedStatement {
    /// Parses the file `approve --offline` wrote.
    pub fn parse(bytes: &[u8]) -> Result<Self, OfflineError> {
        serde_json::from_slice(bytes).map_err(|e| OfflineError::Malformed(e.to_string()))
    }

    /// The statement, once its signature verifies under `customer` (the key the operator
    /// holds; the key in the file must be that very key).
    pub fn open(&self, customer: &PublicKey) -> Result<Statement, OfflineError> {
        let embedded = PublicKey::parse(&self.public_key, "the statement");
        if self.key != customer.id() || embedded.as_ref().map(PublicKey::id) != Some(customer.id())
        {
            return Err(OfflineError::OtherKey {
                signer: self.key.clone(),
                customer: customer.id().to_owned(),
            });
        }
        self.verified_by(customer)
    }

    /// The statement and its signer, checked against the public key the statement carries
    /// (what an auditor without the customer's key can still check).
    pub fn open_self(&self) -> Result<(Statement, PublicKey), OfflineError> {
        let key = PublicKey::parse(&self.public_key, "the statement")
            .filter(|k| k.id() == self.key)
            .ok_or_else(|| OfflineError::BadSignature {
                key: self.key.clone(),
            })?;
        Ok((self.verified_by(&key)?, key))
    }

    fn verified_by(&self, key: &PublicKey) -> Result<Statement, OfflineError> {
        if !key.verifies_statement(self.statement.as_bytes(), &self.signature) {
            return Err(OfflineError::BadSignature {
                key: key.id().to_owned(),
            });
        }
        let s: Statement = serde_json::from_str(&self.statement)
            .map_err(|e| OfflineError::Malformed(e.to_string()))?;
        if s.kind != KIND || s.version != VERSION {
            return Err(OfflineError::Unknown {
                kind: s.kind,
                version: s.version,
            });
        }
        Ok(s)
    }
}

/// What the operator's state says the waiting phase is.
#[derive(Debug, Clone, Copy)]
pub struct Waiting<'a> {
    /// The state's realm.
    pub realm: &'a str,
    /// The phase whose approval is asked for.
    pub phase: u8,
    /// The definition the phase renders now (what phase 6 would build).
    pub definition: Option<&'a str>,
    /// The artifacts of the phase's current outputs.
    pub artifacts: &'a [&'a ArtifactRef],
}

/// Whether a verified statement approves exactly what `waiting` is.
pub fn judge(s: &Statement, waiting: &Waiting<'_>) -> Result<(), OfflineError> {
    if s.realm != waiting.realm {
        return Err(OfflineError::OtherRealm {
            statement: s.realm.clone(),
            state: waiting.realm.to_owned(),
        });
    }
    if s.phase != waiting.phase {
        return Err(OfflineError::OtherPhase {
            statement: s.phase,
            asked: waiting.phase,
        });
    }
    if !waiting
        .artifacts
        .iter()
        .any(|a| a.sha256 == s.document.sha256)
    {
        return Err(OfflineError::StaleDocument {
            name: s.document.name.clone(),
            sha256: s.document.sha256.clone(),
            phase: s.phase,
        });
    }
    if s.definition.as_deref() != waiting.definition {
        return Err(OfflineError::StaleDefinition {
            approved: s.definition.clone().unwrap_or_else(|| "(none)".into()),
            current: waiting.definition.unwrap_or("(none)").to_owned(),
            phase: s.phase,
        });
    }
    Ok(())
}

/// An approval record as the journal holds it, for [`recorded`].
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    /// The realm of the journal's runs.
    pub realm: Option<&'a str>,
    /// The record's phase.
    pub phase: u8,
    /// Its approver.
    pub by: &'a str,
    /// Its note.
    pub note: Option<&'a str>,
    /// The definition it lets phase 6 build.
    pub definition: Option<&'a str>,
    /// SHA-256 of every artifact the journal recorded for that phase before the record.
    pub documents: &'a BTreeSet<String>,
}

/// An auditor's check of a journaled customer statement: its signature (under one of
/// `customer_keys` when any is given, else under the key it carries), and that it says what
/// the approval record says. Returns the signer's key id.
pub fn recorded(
    signed: &SignedStatement,
    record: &Recorded<'_>,
    customer_keys: &[PublicKey],
) -> Result<String, OfflineError> {
    let s = if customer_keys.is_empty() {
        signed.open_self()?.0
    } else {
        let key = customer_keys
            .iter()
            .find(|k| k.id() == signed.key)
            .ok_or_else(|| OfflineError::OtherKey {
                signer: signed.key.clone(),
                customer: customer_keys
                    .iter()
                    .map(PublicKey::id)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        signed.open(key)?
    };
    let differs = |field, statement: &str, record: &str| {
        (statement != record).then(|| OfflineError::Disagrees {
            field,
            statement: statement.to_owned(),
            record: record.to_owned(),
        })
    };
    let none = "(none)";
    let problem = differs("phase", &s.phase.to_string(), &record.phase.to_string())
        .or_else(|| differs("by", &s.by, record.by))
        .or_else(|| {
            differs(
                "note",
                s.note.as_deref().unwrap_or(none),
                record.note.unwrap_or(none),
            )
        })
        .or_else(|| {
            differs(
                "definition",
                s.definition.as_deref().unwrap_or(none),
                record.definition.unwrap_or(none),
            )
        })
        .or_else(|| {
            record
                .realm
                .and_then(|realm| differs("realm", &s.realm, realm))
        })
        .or_else(|| {
            (!record.documents.contains(&s.document.sha256)).then(|| OfflineError::StaleDocument {
                name: s.document.name.clone(),
                sha256: s.document.sha256.clone(),
                phase: s.phase,
            })
        });
    match problem {
        Some(p) => Err(p),
        None => Ok(signed.key.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn doc(realm: &str, digest: &str) -> String {
        format!(
            "# Roles and resources — realm {realm}\n\nPhase 5 of the install.\n\n## The cluster definition\n\nDigest: `{digest}`\n\n| Field | Value |\n"
        )
    }

    fn artifact(bytes: &[u8]) -> ArtifactRef {
        ArtifactRef {
            name: "roles-and-resources.md".into(),
            location: "artifacts/roles-and-resources.md".into(),
            sha256: crate::crypto::sha256_hex(bytes),
            bytes: bytes.len() as u64,
        }
    }

    fn statement(bytes: &[u8]) -> Statement {
        Statement::for_document(
            "roles-and-resources.md",
            bytes,
            5,
            "Ann (ACME CISO)",
            Some("read v1"),
            "2026-12-06T10:00:00Z".into(),
        )
        .unwrap()
    }

    #[test]
    fn the_realm_and_digest_are_read_from_the_document_and_anything_else_is_refused() {
        let facts = read_document(&doc("acme", DIGEST)).unwrap();
        assert_eq!(facts.realm, "acme");
        assert_eq!(facts.definition, DIGEST);
        assert_eq!(
            read_document("# Something else\nDigest: `x`"),
            Err("its first line is not the document's title")
        );
        assert_eq!(
            read_document(&doc("acme", DIGEST).replace("Digest", "Hash")),
            Err("it shows no cluster definition digest")
        );
        let twice = format!("{}Digest: `{DIGEST}`\n", doc("acme", DIGEST));
        assert_eq!(
            read_document(&twice),
            Err("it shows more than one cluster definition digest")
        );
        assert_eq!(
            read_document(&doc("acme", "sha256:123")),
            Err("its digest is not a SHA-256 digest")
        );
        assert_eq!(
            read_document(&doc("", DIGEST)),
            Err("its title names no realm")
        );
        let e = Statement::for_document("x.md", b"\xff", 5, "a", None, "t".into()).unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        assert_eq!(
            Statement::for_document(
                "x.md",
                doc("a", DIGEST).as_bytes(),
                6,
                "a",
                None,
                "t".into()
            ),
            Err(OfflineError::WrongPhase(6))
        );
    }

    #[test]
    fn a_signed_statement_opens_only_with_the_customers_key_and_unchanged() {
        let customer = SigningKey::generate();
        let other = SigningKey::generate();
        let bytes = doc("acme", DIGEST);
        let s = statement(bytes.as_bytes());
        let signed = s.sign(&customer);
        let text = serde_json::to_vec(&signed).unwrap();
        let back = SignedStatement::parse(&text).unwrap();
        assert_eq!(back.open(customer.public()).unwrap(), s);
        assert_eq!(back.open_self().unwrap().0, s);
        assert!(matches!(
            back.open(other.public()),
            Err(OfflineError::OtherKey { .. })
        ));
        // The file relabelled with the other key's id and public key: still the customer's
        // signature, which the other key does not verify.
        let relabelled = SignedStatement {
            key: other.public().id().to_owned(),
            public_key: other.public().to_pem(),
            ..signed.clone()
        };
        assert!(matches!(
            relabelled.open(other.public()),
            Err(OfflineError::BadSignature { .. })
        ));
        assert!(matches!(
            relabelled.open_self(),
            Err(OfflineError::BadSignature { .. })
        ));
        // Any change to the statement's text breaks the signature.
        let changed = SignedStatement {
            statement: signed.statement.replace(DIGEST, &DIGEST.replace('0', "1")),
            ..signed.clone()
        };
        assert_ne!(changed.statement, signed.statement);
        assert!(matches!(
            changed.open(customer.public()),
            Err(OfflineError::BadSignature { .. })
        ));
        // Unknown fields and other formats are refused.
        assert!(matches!(
            SignedStatement::parse(b"{\"statement\":\"x\"}"),
            Err(OfflineError::Malformed(_))
        ));
        let mut v2 = s.clone();
        v2.version = 2;
        assert_eq!(
            v2.sign(&customer).open(customer.public()),
            Err(OfflineError::Unknown {
                kind: KIND.into(),
                version: 2
            })
        );
    }

    #[test]
    fn an_import_is_judged_against_the_realm_phase_document_and_definition_that_wait() {
        let bytes = doc("acme", DIGEST);
        let s = statement(bytes.as_bytes());
        let current = artifact(bytes.as_bytes());
        let arts = [&current];
        let waiting = Waiting {
            realm: "acme",
            phase: 5,
            definition: Some(DIGEST),
            artifacts: &arts,
        };
        assert_eq!(judge(&s, &waiting), Ok(()));
        assert!(matches!(
            judge(
                &s,
                &Waiting {
                    realm: "other",
                    ..waiting
                }
            ),
            Err(OfflineError::OtherRealm { .. })
        ));
        assert!(matches!(
            judge(
                &s,
                &Waiting {
                    phase: 6,
                    ..waiting
                }
            ),
            Err(OfflineError::OtherPhase {
                statement: 5,
                asked: 6
            })
        ));
        let newer = artifact(b"a document rendered again");
        let newer_arts = [&newer];
        assert!(matches!(
            judge(
                &s,
                &Waiting {
                    artifacts: &newer_arts,
                    ..waiting
                }
            ),
            Err(OfflineError::StaleDocument { .. })
        ));
        let other = DIGEST.replace('f', "e");
        let e = judge(
            &s,
            &Waiting {
                definition: Some(&other),
                ..waiting
            },
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(DIGEST) && e.to_string().contains(&other),
            "{e}"
        );
    }

    #[test]
    fn an_auditor_checks_the_journaled_statement_against_its_record_and_the_customers_key() {
        let customer = SigningKey::generate();
        let bytes = doc("acme", DIGEST);
        let signed = statement(bytes.as_bytes()).sign(&customer);
        let documents: BTreeSet<String> = [crate::crypto::sha256_hex(bytes.as_bytes())].into();
        let record = Recorded {
            realm: Some("acme"),
            phase: 5,
            by: "Ann (ACME CISO)",
            note: Some("read v1"),
            definition: Some(DIGEST),
            documents: &documents,
        };
        let id = customer.public().id().to_owned();
        assert_eq!(recorded(&signed, &record, &[]), Ok(id.clone()));
        assert_eq!(
            recorded(&signed, &record, &[customer.public().clone()]),
            Ok(id)
        );
        let stranger = SigningKey::generate();
        assert!(matches!(
            recorded(&signed, &record, &[stranger.public().clone()]),
            Err(OfflineError::OtherKey { .. })
        ));
        for (field, r) in [
            (
                "by",
                Recorded {
                    by: "Bob",
                    ..record
                },
            ),
            ("phase", Recorded { phase: 6, ..record }),
            (
                "note",
                Recorded {
                    note: None,
                    ..record
                },
            ),
            (
                "definition",
                Recorded {
                    definition: None,
                    ..record
                },
            ),
            (
                "realm",
                Recorded {
                    realm: Some("other"),
                    ..record
                },
            ),
        ] {
            match recorded(&signed, &r, &[]) {
                Err(OfflineError::Disagrees { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let none = BTreeSet::new();
        assert!(matches!(
            recorded(
                &signed,
                &Recorded {
                    documents: &none,
                    ..record
                },
                &[]
            ),
            Err(OfflineError::StaleDocument { .. })
        ));
    }
}
