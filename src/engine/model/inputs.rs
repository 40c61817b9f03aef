//! What each step depends on, digested (pure but for reading the certificate files): the
//! inputs its action's definition declares ([`crate::engine::actions::Input`]) plus its name and
//! parameters. A step whose digest changed since it succeeded is re-planned; all others are
//! never re-run.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::playbook::{Playbook, StepDef};
use crate::cloud::teardown::SweepOptions;
use crate::crypto::sha256_hex;
use crate::engine::actions::Input;
use crate::fsutil;
use crate::quota::seed;
use crate::spec::Spec;

/// The resolved spec as JSON (paths and names; specs hold no secrets).
pub fn spec_json(spec: &Spec) -> Value {
    serde_json::to_value(spec).expect("specs serialise")
}

fn file_digest(path: &std::path::Path, cap: u64) -> String {
    fsutil::read_capped(path, cap)
        .map(|b| sha256_hex(&b))
        .unwrap_or_else(|e| format!("unreadable: {e}"))
}

/// The value of one input.
fn input_value(
    input: Input,
    spec: &Spec,
    quota: &seed::Target,
    teardown: SweepOptions,
) -> (&'static str, Value) {
    match input {
        Input::Spec => ("spec", spec_json(spec)),
        Input::Part(p) => p.value(spec),
        Input::CertificateFiles => {
            let c = &spec.certificate;
            (
                "certificateFiles",
                json!({
                    "cert": file_digest(&c.cert, fsutil::caps::CERTIFICATE),
                    "key": file_digest(&c.key, fsutil::caps::KEY),
                    "ca": c.ca.as_deref().map(|p| file_digest(p, fsutil::caps::CERTIFICATE)),
                }),
            )
        }
        Input::QuotaTarget => ("quotaTarget", json!(quota.describe())),
        Input::Teardown => ("teardown", json!(teardown)),
        Input::Definition => (
            "definition",
            crate::cloud::access::definition(spec).to_json(),
        ),
    }
}

/// The inputs of one step, as JSON (what its digest covers).
pub fn step_inputs(
    spec: &Spec,
    step: &StepDef,
    quota: &seed::Target,
    teardown: SweepOptions,
) -> Value {
    let inputs: Map<String, Value> = step
        .action
        .def()
        .inputs
        .iter()
        .map(|i| {
            let (k, v) = input_value(*i, spec, quota, teardown);
            (k.to_owned(), v)
        })
        .collect();
    json!({"action": step.action.name(), "params": step.params, "inputs": inputs})
}

/// The input digest of every step of `playbook`.
pub fn digests(
    spec: &Spec,
    playbook: &Playbook,
    quota: &seed::Target,
    teardown: SweepOptions,
) -> BTreeMap<String, String> {
    playbook
        .steps()
        .map(|(_, s)| {
            let v = step_inputs(spec, s, quota, teardown);
            (s.id.clone(), sha256_hex(v.to_string().as_bytes()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::playbook;
    use crate::engine::test_support;
    use crate::spec::Provider;

    const T: SweepOptions = SweepOptions {
        delete_volumes: false,
    };

    #[test]
    fn a_domain_change_touches_only_the_steps_that_read_domains() {
        let pb = playbook::embedded();
        let q = seed::Target::Local { db: "q.db".into() };
        let (_d1, s1) = test_support::spec(Provider::Eks, "digibee.acme.com");
        let (_d2, s2) = test_support::spec(Provider::Eks, "digibee.acme.org");
        let (a, b) = (digests(&s1, &pb, &q, T), digests(&s2, &pb, &q, T));
        let changed: Vec<_> = a
            .keys()
            .filter(|k| a[*k] != b[*k])
            .map(String::as_str)
            .collect();
        // The ingress for the wildcard hosts is part of the definition: the cluster steps, the
        // in-cluster steps (which find the cluster through it) and the roles document (a new
        // approval) follow the domains.
        assert_eq!(
            changed,
            [
                "artifacts",
                "certificate",
                "cluster",
                "cluster-ready",
                "dns",
                "platform",
                "quota-seed",
                "realm-live",
                "roles-document",
                "spec",
                "vpn",
                "vpn-customer"
            ]
        );
        assert_eq!(a, digests(&s1, &pb, &q, T), "stable");
    }

    #[test]
    fn a_certificate_file_change_touches_the_certificate_reading_steps() {
        let pb = playbook::embedded();
        let q = seed::Target::Local { db: "q.db".into() };
        let (_d, s) = test_support::spec(Provider::Eks, "digibee.acme.com");
        let before = digests(&s, &pb, &q, T);
        std::fs::write(&s.certificate.cert, "renewed").unwrap();
        let after = digests(&s, &pb, &q, T);
        let changed: Vec<_> = before
            .keys()
            .filter(|k| before[*k] != after[*k])
            .map(String::as_str)
            .collect();
        // The TLS Secret is made from the files: platform.apply sends it again, and realm.live
        // checks the new one is served.
        assert_eq!(changed, ["certificate", "dns", "platform", "realm-live"]);
    }
}
