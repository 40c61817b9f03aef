//! What each step depends on, digested: the part of the spec its action reads, its
//! parameters, and for certificate-reading actions the certificate files' contents. A step
//! whose digest changed since it succeeded is re-planned; all others are never re-run.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::action::Action;
use super::journal::sha256_hex;
use super::playbook::{Playbook, StepDef};
use crate::quota::seed;
use crate::spec::Spec;

/// The resolved spec as JSON (paths and names; specs hold no secrets).
pub fn spec_json(spec: &Spec) -> Value {
    serde_json::to_value(spec).expect("specs serialise")
}

fn file_digest(path: &std::path::Path) -> String {
    std::fs::read(path)
        .map(|b| sha256_hex(&b))
        .unwrap_or_else(|e| format!("unreadable: {}", e.kind()))
}

fn certificate_files(spec: &Spec) -> Value {
    let c = &spec.certificate;
    json!({
        "cert": file_digest(&c.cert),
        "key": file_digest(&c.key),
        "ca": c.ca.as_deref().map(file_digest),
    })
}

/// The inputs of one step, as JSON (what its digest covers).
pub fn step_inputs(spec: &Spec, doc: &Value, step: &StepDef, quota: &seed::Target) -> Value {
    let pick = |keys: &[&str]| {
        Value::Object(
            keys.iter()
                .map(|k| ((*k).to_owned(), doc[*k].clone()))
                .collect(),
        )
    };
    let mut inputs = match step.action {
        Action::SpecValidate | Action::ArtifactsRender => doc.clone(),
        Action::VpnPrerequisites => pick(&["vpn"]),
        Action::NodeImageAcceptance => doc["cloud"]["cluster"]["nodeImage"].clone(),
        Action::ChecksCertificate | Action::ChecksDns => pick(&["certificate", "domains"]),
        Action::ChecksOutbound => pick(&["outbound"]),
        Action::RolesRender => pick(&["name", "cloud", "vpn"]),
        Action::QuotaSeed => {
            let target = match quota {
                seed::Target::Local { db } => format!("local:{}", db.display()),
                seed::Target::Remote { url, .. } => format!("remote:{url}"),
            };
            json!({"name": doc["name"], "subscription": doc["subscription"], "target": target})
        }
        Action::CloudAccount
        | Action::CloudCredentials
        | Action::CloudPermissions
        | Action::ClusterApply
        | Action::ClusterWait => pick(&["name", "cloud"]),
        #[cfg(feature = "test-actions")]
        Action::TestEffect | Action::TestFlaky | Action::TestNoop => Value::Null,
    };
    if step.action.reads_certificate_files() {
        inputs["files"] = certificate_files(spec);
    }
    if step.action == Action::ChecksDns {
        inputs["timeoutMs"] = doc["outbound"]["timeout"].clone();
    }
    json!({"action": step.action.name(), "params": step.params, "inputs": inputs})
}

/// The input digest of every step of `playbook`.
pub fn digests(spec: &Spec, playbook: &Playbook, quota: &seed::Target) -> BTreeMap<String, String> {
    let doc = spec_json(spec);
    playbook
        .steps()
        .map(|(_, s)| {
            let v = step_inputs(spec, &doc, s, quota);
            (s.id.clone(), sha256_hex(v.to_string().as_bytes()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::playbook;
    use crate::engine::test_support;
    use crate::spec::Provider;

    #[test]
    fn a_domain_change_touches_only_the_steps_that_read_domains() {
        let pb = playbook::embedded();
        let q = seed::Target::Local { db: "q.db".into() };
        let (_d1, s1) = test_support::spec(Provider::Eks, "digibee.acme.com");
        let (_d2, s2) = test_support::spec(Provider::Eks, "digibee.acme.org");
        let (a, b) = (digests(&s1, &pb, &q), digests(&s2, &pb, &q));
        let changed: Vec<_> = a
            .keys()
            .filter(|k| a[*k] != b[*k])
            .map(String::as_str)
            .collect();
        assert_eq!(changed, ["artifacts", "certificate", "dns", "spec"]);
        assert_eq!(a, digests(&s1, &pb, &q), "stable");
    }
}
