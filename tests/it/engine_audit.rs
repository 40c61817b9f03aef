//! Mutation tests of the tamper-evident journal (issues #4 and #11): every single-record
//! modify, delete, reorder and insert on a real, signed journal is detected and named with the
//! exact kind of break, at every position including the last; a record rehashed on its own is
//! caught by the link check alone; an append after the head (which a hash chain cannot catch)
//! is caught by the signatures; a cut-off end or a rewritten tail is caught with the auditor's
//! checkpoint; a changed artifact fails its checksum. The attacker edits the SQLite file
//! directly (dropping the append-only triggers first), as someone with the file would.

use std::path::{Path, PathBuf};

use crate::common::SpecOpts;
use crate::engine_support::*;
use realmctl::engine::audit;
use realmctl::engine::io::journal::Journal;
use realmctl::engine::io::state::StateRef;
use realmctl::engine::io::store::Store;
use realmctl::engine::model::chain::{self, Break};
use realmctl::engine::model::event::Event;
use realmctl::engine::model::record::{Record, record_hash};
use realmctl::signing::{PublicKey, SigningKey};
use rusqlite::{Connection, params};

/// The signing keys of a fixture: the cloud team's (install) and the customer's (approve).
pub struct Keys {
    /// Private key files.
    pub operator: PathBuf,
    pub customer: PathBuf,
    /// The public keys an auditor trusts.
    pub trusted: Vec<PublicKey>,
}

/// Two key pairs made with `audit keygen`, outside any state folder.
pub fn keys(dir: &Path) -> Keys {
    let kdir = dir.join("keys");
    std::fs::create_dir_all(&kdir).unwrap();
    let mut trusted = Vec::new();
    for who in ["operator", "customer"] {
        let path = kdir.join(format!("{who}.key"));
        let o = realmctl()
            .args(["audit", "keygen", "-o"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        trusted.push(PublicKey::load(&realmctl::signing::public_path(&path)).unwrap());
    }
    Keys {
        operator: kdir.join("operator.key"),
        customer: kdir.join("customer.key"),
        trusted,
    }
}

/// A finished install's state folder (about twenty records): the install signed with the
/// operator's `--signing-key`, the approval with the customer's key named by
/// `REALMCTL_SIGNING_KEY`.
pub(crate) fn journal() -> (tempfile::TempDir, PathBuf, Keys) {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys(dir.path());
    let spec = spec(dir.path(), SpecOpts::default());
    let pb = local_playbook(dir.path());
    let state = dir.path().join("state");
    let signing = ["--signing-key", keys.operator.to_str().unwrap()];
    assert_eq!(install(&spec, &state, &pb, &signing).0, 3);
    let o = realmctl()
        .env("REALMCTL_SIGNING_KEY", &keys.customer)
        .args(["approve", "--by", "Ann Customer", "--phase", "5", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(install(&spec, &state, &pb, &signing).0, 0);
    (dir, state, keys)
}

fn copy_state(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    // Checkpoint the WAL into the main file so a plain copy carries every record.
    Connection::open(from.join("journal.db"))
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    std::fs::copy(from.join("journal.db"), to.join("journal.db")).unwrap();
    copy_dir(&from.join("artifacts"), &to.join("artifacts"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

pub(crate) fn attacker(state: &Path) -> Connection {
    let c = Connection::open(state.join("journal.db")).unwrap();
    c.execute_batch(
        "DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete;",
    )
    .unwrap();
    c
}

pub(crate) fn records(state: &Path) -> Vec<Record> {
    Journal::open(state).unwrap().records().unwrap()
}

/// The first break `audit::verify` finds, requiring signatures by `keys` when any.
fn verdict(
    state: &Path,
    checkpoint: Option<chain::Checkpoint>,
    keys: &[PublicKey],
) -> Option<Break> {
    verdict_at(&StateRef::from(state), checkpoint, keys)
}

/// The same for a folder or a database realm.
pub(crate) fn verdict_at(
    state: &StateRef,
    checkpoint: Option<chain::Checkpoint>,
    keys: &[PublicKey],
) -> Option<Break> {
    let j = Journal::open(state).unwrap();
    let store = Store::of_state(state).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let v = rt
        .block_on(audit::verify(&j, &store, checkpoint, keys.to_vec(), &[]))
        .unwrap();
    assert_eq!(
        v.ok,
        v.chain_break.is_none() && v.artifact_problems.is_empty()
    );
    v.chain_break
}

pub(crate) fn put(c: &Connection, r: &Record) {
    c.execute(
        "INSERT INTO records (seq, at, kind, payload, prev, hash, signer, sig) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            r.seq as i64,
            r.at,
            r.kind,
            r.payload,
            r.prev,
            r.hash,
            r.signature.as_ref().map(|s| &s.key),
            r.signature.as_ref().map(|s| &s.sig)
        ],
    )
    .unwrap();
}

pub(crate) fn rewrite(c: &Connection, rs: &[Record]) {
    c.execute("DELETE FROM records", []).unwrap();
    for r in rs {
        put(c, r);
    }
}

pub(crate) fn own_hash(r: &Record) -> String {
    record_hash(&r.prev, r.seq, &r.at, &r.kind, &r.payload)
}

/// Recomputes every hash and link, as a careful forger would.
pub(crate) fn rechain(rs: &mut [Record]) {
    for i in 0..rs.len() {
        if i > 0 {
            rs[i].prev = rs[i - 1].hash.clone();
        }
        rs[i].hash = own_hash(&rs[i]);
    }
}

/// A correctly hashed forged approval at `seq` after `prev`.
fn forged_approval(seq: u64, prev: &Record) -> Record {
    let payload = serde_json::to_string(&Event::Approved {
        phase: 5,
        by: "mallory".into(),
        note: None,
        covers: "x".into(),
        definition: None,
        customer: None,
    })
    .unwrap();
    let mut r = Record {
        seq,
        at: prev.at.clone(),
        kind: "approved".into(),
        payload,
        prev: prev.hash.clone(),
        hash: String::new(),
        signature: None,
    };
    r.hash = own_hash(&r);
    r
}

#[test]
fn every_single_record_mutation_is_detected_with_its_exact_break() {
    let (dir, state, keys) = journal();
    let mut folders = Folders {
        fixture: state.clone(),
        work: dir.path().join("work"),
    };
    every_mutation(&state, &keys, &mut folders);
}

/// Where the mutation test works: fresh copies of the fixture, and an attacker's edits of one.
pub(crate) trait Mutable {
    /// A fresh copy of the fixture.
    fn fresh(&mut self) -> StateRef;
    /// Applies `m` to the journal of `state` as someone with write access to its storage.
    fn mutate(&self, state: &StateRef, m: Mutation<'_>);
    /// `audit verify --state STATE ARGS…` through the binary: (exit code, stdout).
    fn verify_cli(&self, state: &StateRef, args: &[&str]) -> (i32, String);
}

/// One edit of a journal's stored records.
pub(crate) enum Mutation<'a> {
    /// A record's payload replaced.
    Payload(u64, &'a str),
    /// A record's time replaced.
    At(u64, &'a str),
    /// A record deleted.
    Delete(u64),
    /// Every record replaced by these.
    Rewrite(&'a [Record]),
}

/// Fresh copies of a fixture's state folder.
struct Folders {
    fixture: PathBuf,
    work: PathBuf,
}

impl Mutable for Folders {
    fn fresh(&mut self) -> StateRef {
        let _ = std::fs::remove_dir_all(&self.work);
        copy_state(&self.fixture, &self.work);
        StateRef::from(self.work.clone())
    }

    fn mutate(&self, state: &StateRef, m: Mutation<'_>) {
        let c = attacker(state.folder().unwrap());
        match m {
            Mutation::Payload(seq, p) => c
                .execute(
                    "UPDATE records SET payload = ?1 WHERE seq = ?2",
                    params![p, seq as i64],
                )
                .map(drop),
            Mutation::At(seq, at) => c
                .execute(
                    "UPDATE records SET at = ?1 WHERE seq = ?2",
                    params![at, seq as i64],
                )
                .map(drop),
            Mutation::Delete(seq) => c
                .execute("DELETE FROM records WHERE seq = ?1", params![seq as i64])
                .map(drop),
            Mutation::Rewrite(rs) => {
                rewrite(&c, rs);
                Ok(())
            }
        }
        .unwrap();
    }

    fn verify_cli(&self, state: &StateRef, args: &[&str]) -> (i32, String) {
        let o = realmctl()
            .args(["audit", "verify", "--state"])
            .arg(state.folder().unwrap())
            .args(args)
            .output()
            .unwrap();
        (o.status.code().unwrap_or(-1), text(&o).0)
    }
}

/// Every single-record mutation at every position of the fixture `state`, made in fresh
/// copies by `copies`, is detected with its exact break.
pub(crate) fn every_mutation(state: &Path, keys: &Keys, copies: &mut dyn Mutable) {
    let original = records(state);
    let n = original.len();
    assert!(n >= 15, "{n} records");
    assert!(
        original.iter().all(|r| r.signature.is_some()),
        "the fixture signs every record"
    );
    let head = chain::verify_chain(&original, None).unwrap().unwrap();
    assert_eq!(verdict(state, Some(head.clone()), &keys.trusted), None);
    let w = copies.fresh();
    assert_eq!(
        verdict_at(&w, Some(head.clone()), &keys.trusted),
        None,
        "an unchanged copy verifies"
    );
    let mut positions = 0;
    for i in 0..n {
        positions += 1;
        let seq = original[i].seq;
        let last = i + 1 == n;
        // Modify one character of the payload.
        let w = copies.fresh();
        let m = original[i].payload.replacen('"', "\" ", 1);
        copies.mutate(&w, Mutation::Payload(seq, &m));
        assert_eq!(
            verdict_at(&w, None, &[]),
            Some(Break::Modified { seq }),
            "modify {seq}"
        );
        // Modify the timestamp only.
        let w = copies.fresh();
        copies.mutate(&w, Mutation::At(seq, "2020-01-01T00:00:00Z"));
        assert_eq!(
            verdict_at(&w, None, &[]),
            Some(Break::Modified { seq }),
            "modify at {seq}"
        );

        // Modify and recompute only this record's own hash: only the link check catches it,
        // at the next record; the last record has no next, and only its signature (or a kept
        // checkpoint) catches it.
        let w = copies.fresh();
        let mut rs = original.clone();
        rs[i].at = "2020-01-01T00:00:00.000Z".into();
        rs[i].hash = own_hash(&rs[i]);
        copies.mutate(&w, Mutation::Rewrite(&rs));
        if last {
            assert_eq!(verdict_at(&w, None, &[]), None, "rehashed head, no keys");
            assert!(
                matches!(
                    verdict_at(&w, Some(head.clone()), &[]),
                    Some(Break::CheckpointMissing { .. })
                ),
                "rehashed head vs checkpoint"
            );
        } else {
            assert_eq!(
                verdict_at(&w, None, &[]),
                Some(Break::Unchained { seq: seq + 1 }),
                "rehash {seq} alone"
            );
        }
        assert!(
            matches!(verdict_at(&w, None, &keys.trusted), Some(Break::BadSignature { seq: s, .. }) if s == seq),
            "rehash {seq}: its signature no longer verifies"
        );

        // Delete.
        let w = copies.fresh();
        copies.mutate(&w, Mutation::Delete(seq));
        if last {
            assert_eq!(
                verdict_at(&w, None, &keys.trusted),
                None,
                "a cut end needs the checkpoint"
            );
            assert_eq!(
                verdict_at(&w, Some(head.clone()), &[]),
                Some(Break::CheckpointMissing {
                    checkpoint: head.to_string(),
                    head: seq - 1
                }),
                "delete last"
            );
        } else {
            assert_eq!(
                verdict_at(&w, None, &[]),
                Some(Break::Missing {
                    seq,
                    found: seq + 1
                }),
                "delete {seq}"
            );
        }

        // Reorder with a neighbour (the next one; the last swaps with the one before it).
        let (a, b) = if last { (i - 1, i) } else { (i, i + 1) };
        let first_seq = original[a].seq;
        // Contents swapped, positions kept: the seq is hashed, so the first is modified.
        let w = copies.fresh();
        let mut rs = original.clone();
        let (ra, rb) = (rs[a].clone(), rs[b].clone());
        rs[a] = Record {
            seq: ra.seq,
            ..rb.clone()
        };
        rs[b] = Record { seq: rb.seq, ..ra };
        copies.mutate(&w, Mutation::Rewrite(&rs));
        assert_eq!(
            verdict_at(&w, None, &[]),
            Some(Break::Modified { seq: first_seq }),
            "reorder at {seq}"
        );
        // Swapped and each rehashed on its own: the moved record no longer chains.
        let w = copies.fresh();
        for r in rs.iter_mut() {
            r.hash = own_hash(r);
        }
        copies.mutate(&w, Mutation::Rewrite(&rs));
        assert_eq!(
            verdict_at(&w, None, &[]),
            Some(Break::Unchained { seq: first_seq }),
            "reorder+rehash at {seq}"
        );

        // Insert a correctly hashed record after this one.
        let w = copies.fresh();
        let mut rs = original.clone();
        let forged = forged_approval(seq + 1, &rs[i]);
        for r in rs.iter_mut().skip(i + 1) {
            r.seq += 1;
        }
        rs.insert(i + 1, forged.clone());
        copies.mutate(&w, Mutation::Rewrite(&rs));
        if last {
            // An append after the head: a consistent chain, caught only by signatures.
            assert_eq!(
                verdict_at(&w, None, &[]),
                None,
                "append after the head, no keys"
            );
            assert_eq!(
                verdict_at(&w, None, &keys.trusted),
                Some(Break::Unsigned { seq: seq + 1 }),
                "append after the head"
            );
        } else {
            // The record after the forgery was renumbered, so its own hash fails.
            assert_eq!(
                verdict_at(&w, None, &[]),
                Some(Break::Modified { seq: seq + 2 }),
                "insert after {seq}"
            );
            // Renumbered and rehashed on its own: it no longer chains to the forgery.
            let w = copies.fresh();
            for r in rs.iter_mut().skip(i + 2) {
                r.hash = own_hash(r);
            }
            copies.mutate(&w, Mutation::Rewrite(&rs));
            assert_eq!(
                verdict_at(&w, None, &[]),
                Some(Break::Unchained { seq: seq + 2 }),
                "insert+rehash after {seq}"
            );
        }
        // A careful forger who rechains everything after an insert: only signatures tell.
        let w = copies.fresh();
        rechain(&mut rs);
        copies.mutate(&w, Mutation::Rewrite(&rs));
        if !last {
            assert_eq!(verdict_at(&w, None, &[]), None, "rechained insert, no keys");
        }
        assert_eq!(
            verdict_at(&w, None, &keys.trusted),
            Some(Break::Unsigned { seq: seq + 1 }),
            "rechained insert after {seq}"
        );
    }
    assert_eq!(
        positions, n,
        "every position, the last included, was mutated"
    );
}

#[test]
fn an_append_after_the_head_is_caught_by_signatures_in_every_form() {
    let (dir, state, keys) = journal();
    let mut folders = Folders {
        fixture: state.clone(),
        work: dir.path().join("work"),
    };
    append_after_head(&state, &keys, &mut folders);
}

/// Issue #11: the chain alone cannot catch a correctly hashed record after the head; the
/// signatures catch it in every form, in fresh copies of the fixture `state` made by `copies`.
pub(crate) fn append_after_head(state: &Path, keys: &Keys, copies: &mut dyn Mutable) {
    let original = records(state);
    let head = original.last().unwrap().clone();
    let mallory = SigningKey::generate();
    type Expect = Box<dyn Fn(&Break) -> bool>;
    let cases: Vec<(&str, Record, Expect)> = vec![
        (
            "unsigned",
            forged_approval(head.seq + 1, &head),
            Box::new(move |b| *b == Break::Unsigned { seq: head.seq + 1 }),
        ),
        (
            "signed by an untrusted key",
            {
                let mut r = forged_approval(head.seq + 1, &head);
                r.signature = Some(mallory.sign(&r.hash));
                r
            },
            Box::new(|b| matches!(b, Break::UntrustedSigner { .. })),
        ),
        (
            "a trusted key's signature copied from another record",
            {
                let mut r = forged_approval(head.seq + 1, &head);
                r.signature = head.signature.clone();
                r
            },
            Box::new(|b| matches!(b, Break::BadSignature { .. })),
        ),
        (
            "relabelled with a trusted key id",
            {
                let mut r = forged_approval(head.seq + 1, &head);
                let mut s = mallory.sign(&r.hash);
                s.key = keys.trusted[0].id().to_owned();
                r.signature = Some(s);
                r
            },
            Box::new(|b| matches!(b, Break::BadSignature { .. })),
        ),
    ];
    let (op, cu) = (
        realmctl::signing::public_path(&keys.operator),
        realmctl::signing::public_path(&keys.customer),
    );
    for (what, forged, expect) in cases {
        let w = copies.fresh();
        let mut rs = original.clone();
        rs.push(forged);
        copies.mutate(&w, Mutation::Rewrite(&rs));
        assert_eq!(
            verdict_at(&w, None, &[]),
            None,
            "{what}: the chain alone accepts it"
        );
        let b = verdict_at(&w, None, &keys.trusted).unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(expect(&b), "{what}: {b:?}");
        assert_eq!(b.seq(), head.seq + 1, "{what}");
        // The CLI exits 1 and names the record.
        let (code, out) = copies.verify_cli(
            &w,
            &[
                "--public-key",
                op.to_str().unwrap(),
                "--public-key",
                cu.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 1, "{what}: {out}");
        assert!(
            out.contains(&format!("record {}", head.seq + 1)),
            "{what}: {out}"
        );
    }
}

#[test]
fn verify_requires_a_trusted_signature_on_every_record() {
    let (_dir, state, keys) = journal();
    let pubs = |ks: &[&Path]| {
        ks.iter()
            .flat_map(|k| ["--public-key".into(), realmctl::signing::public_path(k)])
            .collect::<Vec<PathBuf>>()
    };
    let run = |extra: Vec<PathBuf>| {
        let o = realmctl()
            .args(["audit", "verify", "--state"])
            .arg(&state)
            .args(extra)
            .output()
            .unwrap();
        (o.status.code().unwrap(), text(&o).0)
    };
    // Both keys: every record verifies, and the output says who signed how many.
    let (code, out) = run(pubs(&[&keys.operator, &keys.customer]));
    assert_eq!(code, 0, "{out}");
    let n = records(&state).len();
    let op = keys.trusted[0].id();
    let cu = keys.trusted[1].id();
    assert!(
        out.contains("every record signed by a trusted key"),
        "{out}"
    );
    let cu_pub = realmctl::signing::public_path(&keys.customer);
    let op_pub = realmctl::signing::public_path(&keys.operator);
    assert!(
        out.contains(&format!("{cu} [{}]: 1", cu_pub.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("{op} [{}]: {}", op_pub.display(), n - 1)),
        "{out}"
    );
    // Only the operator's key: the customer's approval is named as untrusted.
    let approval = records(&state)
        .into_iter()
        .find(|r| r.kind == "approved")
        .unwrap();
    let (code, out) = run(pubs(&[&keys.operator]));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "record {} is signed by {cu}, which is not one of the trusted",
            approval.seq
        )),
        "{out}"
    );
    // Without keys: it verifies, and says signatures were not checked.
    let (code, out) = run(vec![]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("signatures NOT checked"), "{out}");
    // JSON names the break and the signers.
    let mut args = pubs(&[&keys.operator]);
    args.push("--output".into());
    args.push("json".into());
    let o = realmctl()
        .args(["audit", "verify", "--state"])
        .arg(&state)
        .args(args)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["chainBreak"]["problem"], "untrustedSigner");
    assert_eq!(v["chainBreak"]["seq"], approval.seq);
    assert_eq!(v["signaturesChecked"], true);
    // A checkpoint is printed only when the signatures hold.
    let o = realmctl()
        .args(["audit", "checkpoint", "--state"])
        .arg(&state)
        .args(pubs(&[&keys.operator]))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("which is not one of the trusted"),
        "{o:?}"
    );
}

#[test]
fn unsigned_writes_are_named_by_a_verify_that_requires_signatures() {
    // An approval recorded without a key, between signed records.
    let (_dir, state, keys) = journal();
    // A writer without a key (the library's default), as an older realmctl would be.
    let mut j = Journal::open(&state).unwrap();
    j.append(
        &Event::Approved {
            phase: 5,
            by: "Bob".into(),
            note: None,
            covers: "x".into(),
            definition: None,
            customer: None,
        },
        ::time::OffsetDateTime::now_utc(),
        realmctl::engine::io::journal::Durability::Sync,
    )
    .unwrap();
    drop(j);
    let seq = records(&state).last().unwrap().seq;
    assert_eq!(verdict(&state, None, &[]), None);
    assert_eq!(
        verdict(&state, None, &keys.trusted),
        Some(Break::Unsigned { seq })
    );
}

#[test]
fn a_rewritten_or_cut_tail_is_caught_with_the_auditors_checkpoint() {
    let (dir, state, _keys) = journal();
    let mut folders = Folders {
        fixture: state.clone(),
        work: dir.path().join("work"),
    };
    rewritten_or_cut_tail(&state, &mut folders);
    // A bad checkpoint argument is bad input.
    let o = realmctl()
        .args(["audit", "verify", "--checkpoint", "12:xyz", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// A rewritten tail, and a cut one, are caught with the auditor's checkpoint, in fresh copies
/// of the fixture `state` made by `copies`.
pub(crate) fn rewritten_or_cut_tail(state: &Path, copies: &mut dyn Mutable) {
    let original = records(state);
    let o = realmctl()
        .args(["audit", "checkpoint", "--state"])
        .arg(state)
        .output()
        .unwrap();
    let cp = text(&o).0.trim().to_owned();
    assert_eq!(
        cp,
        format!(
            "{}:{}",
            original.last().unwrap().seq,
            original.last().unwrap().hash
        )
    );
    assert_eq!(verify(state, Some(&cp)).0, 0);
    let w = copies.fresh();
    assert_eq!(copies.verify_cli(&w, &["--checkpoint", &cp]).0, 0);

    // A forger changes who approved and recomputes every later hash: the chain is valid again...
    let mut rs = original.clone();
    let a = rs.iter().position(|r| r.kind == "approved").unwrap();
    rs[a].payload = rs[a].payload.replace("Ann Customer", "Mallory");
    rechain(&mut rs);
    copies.mutate(&w, Mutation::Rewrite(&rs));
    assert_eq!(
        copies.verify_cli(&w, &[]).0,
        0,
        "undetectable without a kept head"
    );
    // ...but not the auditor's checkpoint.
    let (code, out) = copies.verify_cli(&w, &["--checkpoint", &cp]);
    assert_eq!(code, 1);
    assert!(out.contains("is not in the journal"), "{out}");

    // Cutting the last three records.
    let w = copies.fresh();
    let last = original.last().unwrap().seq;
    for seq in last - 2..=last {
        copies.mutate(&w, Mutation::Delete(seq));
    }
    let (code, out) = copies.verify_cli(&w, &["--checkpoint", &cp]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("head is record {}", last - 3)),
        "{out}"
    );
}

#[test]
fn a_changed_or_missing_artifact_fails_its_checksum() {
    let (_dir, state, _keys) = journal();
    let roles = state.join("artifacts/run-1/roles-and-resources.md");
    let mut t = std::fs::read_to_string(&roles).unwrap();
    t.push_str("\n| iam:* | convenience |\n");
    std::fs::write(&roles, t).unwrap();
    std::fs::remove_file(state.join("artifacts/run-1/install.sh")).unwrap();
    let (code, out) = verify(&state, None);
    assert_eq!(code, 1);
    assert!(
        out.contains("artifact roles-and-resources.md") && out.contains("checksum is"),
        "{out}"
    );
    assert!(
        out.contains("artifact install.sh") && out.contains("missing"),
        "{out}"
    );
}

#[test]
fn cli_verify_names_the_first_bad_record() {
    let (_dir, state, _keys) = journal();
    attacker(&state)
        .execute("UPDATE records SET payload = replace(payload, 'Ann Customer', 'Mallory') WHERE kind = 'approved'", [])
        .unwrap();
    let seq: i64 = Connection::open(state.join("journal.db"))
        .unwrap()
        .query_row("SELECT seq FROM records WHERE kind = 'approved'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let (code, out) = verify(&state, None);
    assert_eq!(code, 1);
    assert!(out.contains(&format!("record {seq} was modified")), "{out}");
    let o = realmctl()
        .args(["audit", "verify", "--output", "json", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["chainBreak"]["seq"], seq);
}
