//! Preflight benchmarks (issue #2), measured side by side in one run; results are written to
//! `docs/benchmarks.md` between the `bench:preflight` markers.
//!
//! 1. Outbound: 200 loopback targets, 40 of which accept and never answer, `timeoutMs: 500`,
//!    at the default concurrency (all at once, bounded by the open-file limit), 32, and 1.
//!    Also the real `realmctl preflight` process on those 200 targets: wall time and peak RSS.
//! 2. Certificate check of the six-name chain against x509-parser's parse-only time.
//!
//! Run with `cargo bench --bench preflight`.
#![allow(missing_docs)]

#[path = "../tests/it/common.rs"]
#[allow(dead_code)]
mod common;
mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use ::time::OffsetDateTime;
use realmctl::checks::certificate::{Inputs, Roots, check};
use realmctl::checks::outbound::{self, Options};
use realmctl::checks::{NoProgress, Status};
use realmctl::spec::Target;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::*;

const TIMEOUT_MS: u64 = 500;

async fn outbound_bench(out: &mut String) {
    let pki = common::Pki::new();
    let tls_port = common::tls_server(&pki.leaf(&["localhost".into()])).await;
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    tokio::spawn(async move { while plain.accept().await.is_ok() {} });
    let mut targets = Vec::new();
    for i in 0..200 {
        let t = match i % 5 {
            0 => Target {
                host: "127.0.0.1".into(),
                port: common::silent_listener().await,
                tls: true,
            },
            1 | 2 => Target {
                host: "localhost".into(),
                port: tls_port,
                tls: true,
            },
            _ => Target {
                host: "127.0.0.1".into(),
                port: plain_port,
                tls: false,
            },
        };
        targets.push(t);
    }
    let root = CertificateDer::from_pem_slice(pki.root_pem().as_bytes()).unwrap();
    let anchors = std::sync::Arc::new(vec![
        webpki::anchor_from_trusted_cert(&root).unwrap().to_owned(),
    ]);
    let mut rows = Vec::new();
    for concurrency in [None, Some(32usize), Some(1)] {
        let mut o = Options::new(Duration::from_millis(TIMEOUT_MS), concurrency, None);
        o.public_roots = anchors.clone();
        let t0 = Instant::now();
        let rs = outbound::run(&targets, &o, &NoProgress).await;
        let wall = t0.elapsed();
        let fails = rs.iter().filter(|r| r.status == Status::Fail).count();
        let passes = rs.iter().filter(|r| r.status == Status::Pass).count();
        assert_eq!((passes, fails), (160, 40), "benchmark peers misbehaved");
        rows.push((concurrency, wall));
    }
    let base = rows[0].1.as_secs_f64();
    let _ = writeln!(
        out,
        "### Outbound: 200 loopback targets, 40 never answer, timeoutMs {TIMEOUT_MS}\n"
    );
    let _ = writeln!(
        out,
        "80 TLS handshakes, 80 plain TCP connects, 40 listeners that accept and never answer (every 5th target).\n"
    );
    let _ = writeln!(
        out,
        "| concurrency | wall time | × timeout | × default run | goal |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (c, wall) in &rows {
        let x_timeout = wall.as_secs_f64() / (TIMEOUT_MS as f64 / 1000.0);
        let goal = match c {
            None => {
                if x_timeout <= 1.2 {
                    "≤ 1.2 × timeout: met"
                } else {
                    "≤ 1.2 × timeout: MISSED"
                }
            }
            Some(32) => "lower bound 2 × timeout (40 hung targets need two rounds of 32 slots)",
            Some(_) => "reported (sequential)",
        };
        let label = match c {
            None => format!("default ({})", outbound::default_concurrency()),
            Some(n) => n.to_string(),
        };
        let _ = writeln!(
            out,
            "| {label} | {:.0} ms | {x_timeout:.2} | {:.1} | {goal} |",
            wall.as_secs_f64() * 1000.0,
            wall.as_secs_f64() / base
        );
    }
    let _ = writeln!(out);
    process_preflight(out, &pki, &targets).await;
}

/// `realmctl preflight --only outbound` as its own process on a spec listing the same 200
/// targets, under GNU time: wall time and peak RSS.
async fn process_preflight(out: &mut String, pki: &common::Pki, targets: &[Target]) {
    let dir = tempfile::tempdir().unwrap();
    let opts = common::SpecOpts {
        targets: targets
            .iter()
            .map(|t| (t.host.clone(), t.port, t.tls))
            .collect(),
        timeout_ms: TIMEOUT_MS,
        ..Default::default()
    };
    let spec = common::write_spec(
        dir.path(),
        &pki.leaf(&common::required()),
        &pki.root_pem(),
        &opts,
    );
    let rss = dir.path().join("preflight.rss");
    let mut cmd = support::under_time(env!("CARGO_BIN_EXE_realmctl").as_ref(), &rss);
    cmd.args(["preflight", "--only", "outbound", "--output", "json", "-f"])
        .arg(&spec)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let t0 = Instant::now();
    // The peers run on this runtime: wait for the process off it.
    let o = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let wall = t0.elapsed();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    let fails = checks.iter().filter(|c| c["status"] == "fail").count();
    assert_eq!(
        (checks.len(), fails),
        (200, 40),
        "benchmark peers misbehaved"
    );
    let mib = support::peak_rss_mib(&rss);
    let _ = writeln!(
        out,
        "The real binary (`realmctl preflight --only outbound --output json` on a spec listing the same 200 targets, `timeoutMs: {TIMEOUT_MS}`, default concurrency; the TLS peers' test CA is not a public root, so those 80 are warnings): wall time from process start to exit, and peak resident set size from GNU time's `ru_maxrss`.\n\n| wall time | peak RSS |\n|---|---|\n| {:.0} ms | {mib:.1} MiB |\n",
        wall.as_secs_f64() * 1000.0
    );
}

fn cert_bench(out: &mut String) {
    let pki = common::Pki::new();
    let leaf = pki.leaf(&common::required());
    let roots = Roots::new(
        "bench CA",
        vec![CertificateDer::from_pem_slice(pki.root_pem().as_bytes()).unwrap()],
    );
    let required = common::required();
    let now = OffsetDateTime::now_utc();
    let inputs = Inputs {
        cert_path: Path::new("c"),
        cert_pem: leaf.cert_pem.as_bytes(),
        key_path: Path::new("k"),
        key_pem: leaf.key_pem.as_bytes(),
    };
    assert!(
        check(&inputs, &required, 30, now, &roots)
            .iter()
            .all(|r| r.status == Status::Pass)
    );

    let parse_only = || {
        let ders: Vec<CertificateDer<'_>> =
            CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
                .map(Result::unwrap)
                .collect();
        let mut n = 0;
        for d in &ders {
            let (_, c) = X509Certificate::from_der(d).unwrap();
            n += c.extensions().len();
        }
        std::hint::black_box(n);
    };
    let full = || {
        std::hint::black_box(check(&inputs, &required, 30, now, &roots));
    };
    // Breakdown: the two parts parse-only does not do.
    let ders: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
            .map(Result::unwrap)
            .collect();
    let anchors = vec![
        webpki::anchor_from_trusted_cert(&roots.certs[0])
            .unwrap()
            .to_owned(),
    ];
    let verify_only = || {
        let ee = webpki::EndEntityCert::try_from(&ders[0]).unwrap();
        let t = rustls_pki_types::UnixTime::now();
        std::hint::black_box(
            ee.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &ders[1..],
                t,
                webpki::KeyUsage::server_auth(),
                None,
                None,
            )
            .is_ok(),
        );
    };
    let key = realmctl::checks::certificate::pem::parse_key(leaf.key_pem.as_bytes()).unwrap();
    let (_, parsed_leaf) = X509Certificate::from_der(&ders[0]).unwrap();
    let key_only = || {
        std::hint::black_box(realmctl::checks::certificate::keys::key_matches(
            &key,
            &parsed_leaf,
        ));
    };
    // Interleave rounds so both see the same machine conditions; keep the best round of each.
    let (mut best_parse, mut best_full, mut best_verify, mut best_key) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    const N: u32 = 300;
    for _ in 0..7 {
        let t0 = Instant::now();
        for _ in 0..N {
            parse_only();
        }
        best_parse = best_parse.min(t0.elapsed().as_secs_f64() / f64::from(N));
        let t0 = Instant::now();
        for _ in 0..N {
            full();
        }
        best_full = best_full.min(t0.elapsed().as_secs_f64() / f64::from(N));
        let t0 = Instant::now();
        for _ in 0..N {
            verify_only();
        }
        best_verify = best_verify.min(t0.elapsed().as_secs_f64() / f64::from(N));
        let t0 = Instant::now();
        for _ in 0..N {
            key_only();
        }
        best_key = best_key.min(t0.elapsed().as_secs_f64() / f64::from(N));
    }
    let ratio = best_full / best_parse;
    let _ = writeln!(out, "### Certificate check of the six-name chain\n");
    let _ = writeln!(
        out,
        "Leaf (ECDSA P-256, six wildcard SANs) + intermediate, verified to the test root; best of 7 interleaved rounds of {N}.\n"
    );
    let _ = writeln!(out, "| measurement | per chain |");
    let _ = writeln!(out, "|---|---|");
    let _ = writeln!(
        out,
        "| x509-parser parse only (PEM decode + parse both certificates) | {:.1} µs |",
        best_parse * 1e6
    );
    let _ = writeln!(
        out,
        "| realmctl certificate check (all 7 findings) | {:.1} µs |",
        best_full * 1e6
    );
    let _ = writeln!(
        out,
        "| of which: webpki chain verification alone (two ECDSA signatures) | {:.1} µs |",
        best_verify * 1e6
    );
    let _ = writeln!(
        out,
        "| of which: private key ↔ leaf match alone (aws-lc-rs derives the public key) | {:.1} µs |",
        best_key * 1e6
    );
    let rest = best_full - best_verify - best_key;
    let _ = writeln!(
        out,
        "| the rest (PEM, parsing, names, dates, usage, strength) | {:.1} µs ({:.1}× parse-only) |",
        rest * 1e6,
        rest / best_parse
    );
    let verdict = if ratio <= 2.0 { "met" } else { "MISSED" };
    let _ = writeln!(out, "| ratio (goal ≤ 2×) | {ratio:.1}× ({verdict}) |\n");
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent; only measure under `cargo bench`.
    if !support::measuring() {
        return;
    }
    let mut out = String::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(outbound_bench(&mut out));
    cert_bench(&mut out);
    println!("{out}");
    let stamp = support::stamp("preflight");
    support::write_section("docs/benchmarks.md", "preflight", &format!("{stamp}{out}"));
}
