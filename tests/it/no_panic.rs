//! Property tests (issue #2): no spec text and no PEM input makes realmctl panic.

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
  aks: {subscriptionId: 00000000-0000-0000-0000-000000000000, resourceGroup: rg, tenantId: 00000000-0000-0000-0000-000000000000}
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

fn real_chain() -> (Vec<u8>, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["*.core.a.b".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.der().to_vec(), key.serialize_pem())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn corrupted_certificates_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        use base64::Engine;
        let (mut der, key) = real_chain();
        for (i, b) in flips {
            let at = i.index(der.len());
            der[at] ^= b;
        }
        der.truncate(cut.index(der.len()) + 1);
        let pem_text = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", base64::engine::general_purpose::STANDARD.encode(&der));
        let inputs = Inputs { cert_path: Path::new("c"), cert_pem: pem_text.as_bytes(), key_path: Path::new("k"), key_pem: key.as_bytes() };
        let rs = check(&inputs, &["*.core.a.b".into()], 30, OffsetDateTime::now_utc(), &Roots::new("none", vec![]));
        prop_assert!(!rs.is_empty());
    }
}
