//! Property tests (issues #2 and #11): no spec text and no PEM input makes realmctl panic, and
//! certificate fuzzing reaches the X.509 parser: full-length corpus certificates (tests/corpus)
//! mutated by bit flips and DER length rewrites far more often than cut short.

use std::path::Path;

use proptest::prelude::*;
use realmctl::checks::certificate::{Inputs, Roots, check, pem};
use realmctl::spec;
use time::OffsetDateTime;

const VALID: &str = r#"apiVersion: realmctl/v1
kind: Realm
name: acme
cloud:
  provider: aks
  region: eastus
  aks: {subscriptionId: 00000000-0000-0000-0000-000000000000, resourceGroup: rg, tenantId: 00000000-0000-0000-0000-000000000000, subnetId: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/nodes}
  cluster: {name: digibee-acme, kubernetesVersion: "1.31", nodeImage: {type: custom, image: x, acceptedBy: J, acceptedAt: 2026-11-20T14:00:00Z}}
domains: {base: digibee.acme.com, nameservers: ["127.0.0.1:53"]}
certificate: {cert: c.pem, key: k.pem, ca: null, minDaysValid: 30}
outbound: {proxy: "http://127.0.0.1:3128", proxyCredentialsEnv: P, timeoutMs: 5000, targets: [{host: a.b, port: 443}]}
vpn: {enabled: true, peer: 198.51.100.7/32, routing: route-based, remoteCidrs: [192.168.0.0/24]}
subscription: {pipelineSubscriptions: 10, extraTestRtus: 0, extraProdRtus: 0}
"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,400}") {
        let _ = spec::parse(&s, Path::new("fuzz.yaml"));
    }

    #[test]
    fn mutated_valid_specs_never_panic(pos in 0usize..1400, len in 0usize..20, insert in "[ -~\\n\\t]{0,12}") {
        let mut s = VALID.to_owned();
        let start = pos.min(s.len());
        let end = (start + len).min(s.len());
        if s.is_char_boundary(start) && s.is_char_boundary(end) {
            s.replace_range(start..end, &insert);
        }
        let _ = spec::parse(&s, Path::new("fuzz.yaml"));
    }

    #[test]
    fn arbitrary_pem_never_panics(body in proptest::collection::vec(any::<u8>(), 0..600), header in prop::sample::select(vec!["CERTIFICATE", "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY"])) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&body);
        let pem_text = format!("-----BEGIN {header}-----\n{b64}\n-----END {header}-----\n");
        for input in [pem_text.as_bytes(), &body[..]] {
            let _ = pem::parse_chain(input);
            let _ = pem::parse_key(input);
            let inputs = Inputs { cert_path: Path::new("c"), cert_pem: input, key_path: Path::new("k"), key_pem: input };
            let _ = check(&inputs, &["*.core.a.b".into()], 30, OffsetDateTime::now_utc(), &Roots::new("none", vec![]));
        }
    }
}

#[test]
fn the_fuzz_seed_is_valid_apart_from_files() {
    match spec::parse(VALID, Path::new("/nonexistent/fuzz.yaml")) {
        Err(spec::SpecError::Invalid { diagnostics, .. }) => {
            assert!(
                diagnostics
                    .iter()
                    .all(|d| d.message.contains("file not found")),
                "{diagnostics:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// The seed corpus (`tests/corpus/certificates`, made with OpenSSL; test-only keys): an ECDSA
/// leaf with six SANs and its intermediate, an RSA-2048 leaf, an Ed25519 leaf, a CA, each with
/// the private key the check compares against (`None`: a mismatching key).
const CORPUS: [(&str, &str); 5] = [
    ("ecdsa-chain.pem", "ecdsa-leaf.key"),
    ("rsa-leaf.pem", "rsa-leaf.key"),
    ("ed25519-leaf.pem", "ed25519-leaf.key"),
    ("inter.pem", "ecdsa-leaf.key"),
    ("root.pem", "ed25519-leaf.key"),
];

fn corpus_file(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus/certificates")
            .join(name),
    )
    .unwrap()
}

/// The DER certificates of a corpus PEM file, and its key.
fn seed(i: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let (cert, key) = CORPUS[i % CORPUS.len()];
    let ders = pem::parse_chain(&corpus_file(cert))
        .unwrap()
        .into_iter()
        .map(|d| d.as_ref().to_vec())
        .collect();
    (ders, corpus_file(key))
}

/// The offsets of every DER length field in `der` (walking constructed values recursively).
fn length_fields(der: &[u8]) -> Vec<usize> {
    fn walk(der: &[u8], base: usize, out: &mut Vec<usize>) {
        let mut i = 0;
        while i + 2 <= der.len() {
            let tag = der[i];
            let at = i + 1;
            let (len, header) = match der[at] {
                n if n < 0x80 => (n as usize, 2),
                0x81 if at + 1 < der.len() => (der[at + 1] as usize, 3),
                0x82 if at + 2 < der.len() => {
                    (((der[at + 1] as usize) << 8) | der[at + 2] as usize, 4)
                }
                _ => return,
            };
            out.push(base + at);
            let end = i + header + len;
            if end > der.len() {
                return;
            }
            if tag & 0x20 != 0 {
                walk(&der[i + header..end], base + i + header, out);
            }
            i = end;
        }
    }
    let mut out = Vec::new();
    walk(der, 0, &mut out);
    out
}

/// How a certificate is mutated: mostly at full length, rarely cut.
#[derive(Debug, Clone, Copy)]
enum Mutation {
    /// Flip `n` bits at chosen positions (full length kept).
    BitFlips,
    /// Rewrite one DER length field (short ±1, zero, indefinite, or a huge long form).
    Length,
    /// Overwrite one byte with a chosen value.
    Byte,
    /// Cut the certificate short.
    Truncate,
}

fn mutation(kind: u8) -> Mutation {
    match kind % 20 {
        0..=10 => Mutation::BitFlips, // 55 %
        11..=16 => Mutation::Length,  // 30 %
        17..=18 => Mutation::Byte,    // 10 %
        _ => Mutation::Truncate,      // 5 %
    }
}

/// Applies `m` to `der` with the random picks `r` (positions, values).
fn mutate(der: &mut Vec<u8>, m: Mutation, r: &[(usize, u8)]) {
    let n = der.len();
    match m {
        Mutation::BitFlips => {
            for &(i, b) in r.iter().take(1 + r.len() % 3) {
                der[i % n] ^= 1 << (b % 8);
            }
        }
        Mutation::Length => {
            let fields = length_fields(der);
            let at = fields[r[0].0 % fields.len()];
            let old = der[at];
            let new: Vec<u8> = match r[0].1 % 6 {
                0 => vec![old.wrapping_add(1)],
                1 => vec![old.wrapping_sub(1)],
                2 => vec![0],
                3 => vec![0x80],
                4 => vec![0x84, 0x7f, 0xff, 0xff, 0xff],
                _ => vec![0x81, 0xff],
            };
            let width = match old {
                0x81 => 2,
                0x82 => 3,
                _ => 1,
            };
            der.splice(at..(at + width).min(n), new);
        }
        Mutation::Byte => der[r[0].0 % n] = r[0].1,
        Mutation::Truncate => der.truncate(r[0].0 % n),
    }
}

fn to_pem(ders: &[Vec<u8>]) -> String {
    use base64::Engine;
    ders.iter()
        .map(|d| {
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64::engine::general_purpose::STANDARD.encode(d)
            )
        })
        .collect()
}

/// Runs the certificate check on a mutated corpus entry; returns whether the mutated
/// certificate still parsed as X.509 and the check's `certificate.pem` message.
fn run_mutated(i: usize, which: usize, kind: u8, picks: &[(usize, u8)]) -> (bool, String) {
    use x509_parser::prelude::FromDer;
    let (mut ders, key) = seed(i);
    let which = which % ders.len();
    mutate(&mut ders[which], mutation(kind), picks);
    let parses = x509_parser::certificate::X509Certificate::from_der(&ders[which]).is_ok();
    let cert_pem = to_pem(&ders);
    let inputs = Inputs {
        cert_path: Path::new("c"),
        cert_pem: cert_pem.as_bytes(),
        key_path: Path::new("k"),
        key_pem: &key,
    };
    let required: Vec<String> = ["core", "api"]
        .iter()
        .map(|p| format!("*.{p}.a.b"))
        .collect();
    let rs = check(
        &inputs,
        &required,
        30,
        OffsetDateTime::now_utc(),
        &Roots::new("none", vec![]),
    );
    let pem_result = rs
        .iter()
        .find(|r| r.id == "certificate.pem")
        .expect("a certificate.pem finding");
    // Parsed certificates get every finding; unparsable ones exactly the parse failure (and
    // the key's), naming the certificate's position in the file.
    let all_parse = ders
        .iter()
        .all(|d| x509_parser::certificate::X509Certificate::from_der(d).is_ok());
    if all_parse {
        assert_eq!(rs.len(), 7, "{rs:?}");
    } else {
        assert_eq!(rs.len(), 2, "{rs:?}");
        assert!(
            pem_result
                .message
                .contains("is not a valid X.509 certificate")
                || pem_result.message.starts_with("certificate chain:"),
            "{}",
            pem_result.message
        );
    }
    (parses, pem_result.message.clone())
}

#[test]
fn the_corpus_is_valid_and_passes_the_parser() {
    for (i, (name, _)) in CORPUS.iter().enumerate() {
        let (ders, key) = seed(i);
        assert!(!ders.is_empty() && !key.is_empty());
        let (parses, msg) = run_mutated(i, 0, 0, &[]);
        assert!(parses, "{name}: {msg}");
    }
    let (ders, _) = seed(0);
    assert_eq!(ders.len(), 2, "the ECDSA entry is a chain");
    assert!(
        length_fields(&ders[0]).len() > 40,
        "the DER walk finds the nested fields"
    );
}

/// The fuzzer reaches the X.509 parser and beyond: over a fixed sequence of mutations, a good
/// share still parse (so the checks behind the parser run on odd certificates) and a good share
/// fail in the parser with many different errors (not at the PEM or base64 layer).
#[test]
fn certificate_mutations_reach_the_x509_parser_and_the_checks_behind_it() {
    let mut x = 0x5eed_u64;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    let (mut parsed, mut failed) = (0, 0);
    let mut errors = std::collections::BTreeSet::new();
    let cases = 1500;
    for _ in 0..cases {
        let (i, which, kind) = (next(), next(), next() as u8);
        let picks: Vec<(usize, u8)> = (0..3).map(|_| (next(), next() as u8)).collect();
        let (parses, msg) = run_mutated(i, which, kind, &picks);
        if parses {
            parsed += 1;
        } else {
            failed += 1;
            errors.insert(msg.split(':').next_back().unwrap_or("").trim().to_owned());
        }
    }
    assert!(
        parsed * 10 >= cases,
        "only {parsed} of {cases} mutated certificates still parsed"
    );
    assert!(
        failed * 10 >= cases,
        "only {failed} of {cases} were rejected by the parser"
    );
    assert!(
        errors.len() >= 5,
        "the parser failed in only {} ways: {errors:?}",
        errors.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any mutation of any corpus certificate: no panic, and the findings are the full set
    /// when every certificate parses, the parse failure otherwise.
    #[test]
    fn mutated_certificates_never_panic_and_are_reported_by_kind(
        i in 0usize..CORPUS.len(),
        which in any::<usize>(),
        kind in any::<u8>(),
        picks in proptest::collection::vec((any::<usize>(), any::<u8>()), 3),
    ) {
        run_mutated(i, which, kind, &picks);
    }
}
