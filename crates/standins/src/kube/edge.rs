//! The cluster's edge: what an ingress controller does with the realm's Ingress. The
//! stand-in's controller gives every Ingress the address `127.0.0.1` (after the load-balancer
//! delay) and serves TLS on one loopback port, choosing the certificate by SNI from the
//! Ingresses' `spec.tls` entries (a `*.` host covers one label) and the `kubernetes.io/tls`
//! Secrets they name, as the Kubernetes Ingress documentation describes. A name no Ingress
//! covers gets no certificate (the handshake fails), where a real controller would serve its
//! default one.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde_json::Value;

use super::KubeWorld;
use super::store::Cluster;

/// Whether the Ingress host `pattern` covers `name` (pure).
fn covers(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.to_ascii_lowercase(), name.to_ascii_lowercase());
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == name,
    }
}

/// The (namespace, Secret name) serving `name`, from the cluster's Ingresses.
fn secret_for(c: &Cluster, name: &str) -> Option<(String, String)> {
    let t = c.find("networking.k8s.io", "ingresses")?;
    let list = c.list(&t, None, None, None).ok()?;
    list["items"].as_array()?.iter().find_map(|ing| {
        let ns = ing["metadata"]["namespace"].as_str()?;
        ing["spec"]["tls"].as_array()?.iter().find_map(|tls| {
            let hosts = tls["hosts"].as_array()?;
            hosts
                .iter()
                .any(|h| h.as_str().is_some_and(|h| covers(h, name)))
                .then(|| Some((ns.to_owned(), tls["secretName"].as_str()?.to_owned())))?
        })
    })
}

fn certified(secret: &Value) -> Option<Arc<CertifiedKey>> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let field = |k: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(secret["data"][k].as_str()?)
            .ok()
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&field("tls.crt")?)
        .collect::<Result<_, _>>()
        .ok()?;
    let key = PrivateKeyDer::from_pem_slice(&field("tls.key")?).ok()?;
    let key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).ok()?;
    Some(Arc::new(CertifiedKey::new(chain, key)))
}

/// Picks the certificate by SNI from the world's Ingresses and Secrets.
#[derive(Debug)]
pub struct EdgeCerts(pub Arc<Mutex<KubeWorld>>);

impl std::fmt::Debug for KubeWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeWorld").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for EdgeCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_owned();
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (ns, secret) = secret_for(&w.cluster, &name)?;
        let t = w.cluster.find("", "secrets")?;
        let v = w.cluster.get(&t, &ns, &secret).ok()?;
        certified(&v)
    }
}

/// The edge's TLS configuration over `world`.
pub fn server_config(world: Arc<Mutex<KubeWorld>>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(EdgeCerts(world))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_host_covers_exactly_one_label() {
        assert!(covers("*.test.acme.com", "x.test.acme.com"));
        assert!(covers("*.TEST.acme.com", "x.test.acme.com"));
        assert!(!covers("*.test.acme.com", "test.acme.com"));
        assert!(!covers("*.test.acme.com", "a.b.test.acme.com"));
        assert!(covers("api.acme.com", "api.acme.com"));
        assert!(!covers("api.acme.com", "x.api.acme.com"));
    }
}
