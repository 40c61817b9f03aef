//! The realm's own objects, made from the spec: the platform's namespaces, the TLS Secret of
//! the wildcard certificate (its manifest here has no data: [`SecretData`] reads the
//! customer's files at apply time, and the data is never written anywhere else), and the
//! ingress that serves the six wildcard hosts with it, and the enforcement core
//! ([`super::quota`]). Phase 4's `namespaces.yaml` and
//! `ingress-tls.yaml` are rendered from these same objects.

use std::path::Path;

use base64::Engine as _;
use serde_json::{Value, json};

use super::quota::{self, QuotaTokens};
use crate::secret::Secret;
use crate::spec::Spec;

/// The platform's namespaces.
pub const NAMESPACES: [&str; 3] = ["digibee-system", "digibee-test", "digibee-prod"];
/// The namespace of the edge (ingress and TLS Secret).
pub const EDGE_NAMESPACE: &str = "digibee-system";
/// The TLS Secret's name.
pub const TLS_SECRET: &str = "digibee-wildcard-tls";
/// The ingress's name.
pub const INGRESS: &str = "digibee-edge";

/// The namespaces.
pub fn namespaces() -> Vec<Value> {
    NAMESPACES
        .iter()
        .map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .collect()
}

/// The TLS Secret without its data.
pub fn tls_secret() -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
           "metadata": {"name": TLS_SECRET, "namespace": EDGE_NAMESPACE}})
}

/// The ingress for every wildcard host of the realm, with the TLS Secret.
pub fn ingress(spec: &Spec) -> Value {
    let hosts = spec.domains.required_names();
    let rules: Vec<Value> = hosts.iter().map(|h| json!({"host": h})).collect();
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": INGRESS, "namespace": EDGE_NAMESPACE},
           "spec": {"tls": [{"secretName": TLS_SECRET, "hosts": hosts}], "rules": rules}})
}

/// Every realm object, in the order they are listed in the definition: namespaces, the TLS
/// Secret, the ingress, the enforcement core ([`quota::objects`]).
pub fn objects(spec: &Spec) -> Vec<Value> {
    let mut v = namespaces();
    v.push(tls_secret());
    v.push(ingress(spec));
    v.extend(quota::objects(spec));
    v
}

fn is_tls_secret(v: &Value) -> bool {
    v["kind"] == "Secret"
        && v["metadata"]["name"] == TLS_SECRET
        && v["metadata"]["namespace"] == EDGE_NAMESPACE
}

/// Whether a manifest is a Secret whose data realmctl fills at apply time (the TLS Secret and
/// the enforcement core's token Secrets).
pub fn filled_at_apply(v: &Value) -> bool {
    is_tls_secret(v) || quota::filled_at_apply(v)
}

/// The data of the Secrets filled at apply time: the customer's chain and key, read capped at
/// apply time, and the enforcement core's tokens. Never logged, never journaled; `fill` puts
/// it into the manifest that is sent and nowhere else.
#[derive(Default)]
pub struct SecretData {
    tls: Option<(Secret, Secret)>,
    quota: Option<QuotaTokens>,
}

impl SecretData {
    /// Reads the certificate chain and key the spec names.
    pub fn read(spec: &Spec) -> Result<SecretData, crate::fsutil::ReadError> {
        let read = |p: &Path, cap: u64| {
            crate::fsutil::read_capped(p, cap)
                .map(|b| Secret::new(base64::engine::general_purpose::STANDARD.encode(b)))
        };
        Ok(SecretData {
            tls: Some((
                read(&spec.certificate.cert, crate::fsutil::caps::CERTIFICATE)?,
                read(&spec.certificate.key, crate::fsutil::caps::KEY)?,
            )),
            quota: None,
        })
    }

    /// With the enforcement core's tokens.
    pub fn with_quota(mut self, tokens: QuotaTokens) -> SecretData {
        self.quota = Some(tokens);
        self
    }

    /// The manifest with its data in it (the value that is sent); `None` when it is a Secret
    /// whose data was not gathered (sending it without would delete the data in the cluster).
    pub fn fill(&self, manifest: &Value) -> Option<Value> {
        if is_tls_secret(manifest) {
            let (crt, key) = self.tls.as_ref()?;
            let mut v = manifest.clone();
            v["data"] = json!({"tls.crt": crt.expose(), "tls.key": key.expose()});
            return Some(v);
        }
        if quota::filled_at_apply(manifest) {
            return self.quota.as_ref()?.fill(manifest);
        }
        Some(manifest.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ingress_serves_every_wildcard_name_with_the_tls_secret() {
        let (_dir, spec) =
            crate::engine::test_support::spec(crate::spec::Provider::Eks, "digibee.acme.com");
        let ing = ingress(&spec);
        let hosts = ing["spec"]["tls"][0]["hosts"].as_array().unwrap();
        assert_eq!(hosts.len(), spec.domains.required_names().len());
        assert_eq!(ing["spec"]["rules"].as_array().unwrap().len(), hosts.len());
        assert!(tls_secret().get("data").is_none());
        assert!(filled_at_apply(&tls_secret()));
        let data = SecretData::read(&spec).unwrap();
        let sent = data.fill(&tls_secret()).unwrap();
        // Without the core's tokens, its Secrets are not sent at all.
        let admin = quota::objects(&spec)
            .into_iter()
            .find(quota::filled_at_apply)
            .unwrap();
        assert!(filled_at_apply(&admin));
        assert!(data.fill(&admin).is_none());
        assert!(SecretData::default().fill(&tls_secret()).is_none());
        let key = std::fs::read(&spec.certificate.key).unwrap();
        assert_eq!(
            sent["data"]["tls.key"],
            base64::engine::general_purpose::STANDARD.encode(key)
        );
    }
}
