//! The kubeconfig of an AKS cluster: the API server and CA from the exec-form kubeconfig
//! `listClusterUserCredential` answers, and the `kubelogin` login mode that matches the link of
//! the credential chain that answered.

use serde::Deserialize;

use super::credential::Source;

#[derive(Deserialize)]
pub(crate) struct Credentials {
    pub(crate) kubeconfigs: Vec<Kubeconfig>,
}

#[derive(Deserialize)]
pub(crate) struct Kubeconfig {
    pub(crate) value: String,
}

#[derive(Deserialize)]
struct KubeconfigDoc {
    clusters: Vec<NamedCluster>,
}

#[derive(Deserialize)]
struct NamedCluster {
    cluster: KubeCluster,
}

#[derive(Deserialize)]
struct KubeCluster {
    server: String,
    #[serde(rename = "certificate-authority-data", default)]
    certificate_authority_data: Option<String>,
}

/// The API server and CA of the kubeconfig `listClusterUserCredential` answers (pure).
pub fn server_and_ca(base64_kubeconfig: &str) -> Result<(String, String), String> {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD
        .decode(base64_kubeconfig.trim())
        .map_err(|e| format!("the kubeconfig is not base64: {e}"))?;
    let text = String::from_utf8(text).map_err(|_| "the kubeconfig is not UTF-8".to_owned())?;
    let doc: KubeconfigDoc =
        serde_saphyr::from_str(&text).map_err(|e| format!("the kubeconfig does not parse: {e}"))?;
    let c = doc
        .clusters
        .into_iter()
        .next()
        .ok_or("the kubeconfig names no cluster")?;
    let ca = c
        .cluster
        .certificate_authority_data
        .ok_or("the kubeconfig has no certificate-authority-data")?;
    if !c.cluster.server.starts_with("https://") {
        return Err(format!(
            "the API server {} is not https",
            crate::text::one_line(&c.cluster.server)
        ));
    }
    Ok((c.cluster.server, ca))
}

/// `kubelogin`'s login mode for the chain's link (the credentials whoever runs kubectl has).
pub(crate) fn login_mode(source: Option<Source>) -> &'static str {
    match source {
        Some(Source::ClientSecret) => "spn",
        Some(Source::WorkloadIdentity) => "workloadidentity",
        Some(Source::ManagedIdentity) => "msi",
        Some(Source::AzureCli) | None => "azurecli",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeconfig_gives_server_and_ca_and_refuses_plain_http() {
        use base64::Engine;
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let ok = enc(
            "apiVersion: v1\nclusters:\n- name: c\n  cluster:\n    server: https://c-dns.hcp.eastus.azmk8s.io:443\n    certificate-authority-data: Q0E=\n",
        );
        assert_eq!(
            server_and_ca(&ok).unwrap(),
            (
                "https://c-dns.hcp.eastus.azmk8s.io:443".into(),
                "Q0E=".into()
            )
        );
        let http = enc(
            "clusters:\n- cluster:\n    server: http://x\n    certificate-authority-data: Q0E=\n",
        );
        assert!(server_and_ca(&http).is_err());
        assert!(server_and_ca("!!!").is_err());
        assert!(server_and_ca(&enc("clusters: []\n")).is_err());
    }
}
