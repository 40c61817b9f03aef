//! Phase 4 and 5 actions: `artifacts.render` renders every install artifact and
//! `roles.render` the roles-and-resources document, from `templates/` with typed models, and
//! both store what they render with its SHA-256. Rendering is deterministic (no clock, no
//! randomness), so the same spec always yields the same bytes and the same SHA-256.

use std::time::Duration;

use serde::Serialize;

use super::{ActionDef, Input, Needs, SpecPart, run_fn};
use crate::engine::ctx::{Ctx, Failure, Outcome};
pub use crate::engine::io::store::Rendered;
use crate::engine::model::output::{FailureKind, StepOutput};
use crate::requirements::{self, Installer, Resource, Role};
use crate::spec::{CloudAccount, NodeImage, Spec};
use crate::templates::{self, TemplateError};

/// `artifacts.render`.
pub const ARTIFACTS: ActionDef = ActionDef {
    name: "artifacts.render",
    summary: "renders and stores every install artifact with its SHA-256",
    needs: Needs::Nothing,
    timeout: Duration::from_secs(5 * 60),
    retries: 3,
    params: &[],
    inputs: &[Input::Spec],
    run: run_fn!(render_artifacts),
};

/// `roles.render`.
pub const ROLES: ActionDef = ActionDef {
    name: "roles.render",
    summary: "renders and stores the roles-and-resources document",
    needs: Needs::Nothing,
    timeout: Duration::from_secs(5 * 60),
    retries: 0,
    params: &[],
    inputs: &[
        Input::Part(SpecPart::Name),
        Input::Part(SpecPart::Cloud),
        Input::Part(SpecPart::Vpn),
    ],
    run: run_fn!(render_roles),
};

async fn render_artifacts(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let files = install_artifacts(ctx.spec).map_err(|e| Failure::permanent(e.to_string()))?;
    store_all(ctx, files, "install artifacts").await
}

async fn render_roles(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let doc = roles_document(ctx.spec).map_err(|e| Failure::permanent(e.to_string()))?;
    store_all(ctx, vec![doc], "roles-and-resources document").await
}

async fn store_all(ctx: &Ctx<'_>, files: Vec<Rendered>, what: &str) -> Result<Outcome, Failure> {
    let mut refs = Vec::new();
    for f in files {
        let r = ctx
            .opts
            .store
            .put(&ctx.spec.name, ctx.run, f, ctx.blocking)
            .await
            .map_err(|e| Failure {
                kind: if e.retryable() {
                    FailureKind::Retryable
                } else {
                    FailureKind::Permanent
                },
                message: e.to_string(),
                output: None,
            })?;
        refs.push(r);
        // Crash tests: a kill with some artifacts stored and others not.
        ctx.record.kill_point(&format!("stored-{}", refs.len()));
    }
    Ok(Outcome::Done(StepOutput {
        summary: format!("{} {what} stored", refs.len()),
        artifacts: refs,
        ..StepOutput::default()
    }))
}

/// The worker node pool of the rendered cluster definition, sized from the realm's RTUs
/// (docs/sizing.md): the same numbers `cluster.apply` creates.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Nodes {
    min: u32,
    max: u32,
    desired: u32,
    /// Instance type (EKS), VM size (AKS) or machine type (GKE).
    shape: String,
}

fn nodes(spec: &Spec) -> Nodes {
    let p = crate::cloud::access::pool_size(spec);
    Nodes {
        min: p.min,
        max: p.max,
        desired: p.desired,
        shape: p.shape.name,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VpnModel {
    peer: String,
    remote_cidrs: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactModel<'a> {
    realm: &'a str,
    version: &'static str,
    provider: String,
    region: &'a str,
    cluster: &'a crate::spec::ClusterSpec,
    eks: Option<serde_json::Value>,
    aks: Option<serde_json::Value>,
    gke: Option<serde_json::Value>,
    nodes: Nodes,
    custom_image: Option<&'a str>,
    namespaces: [&'static str; 3],
    names: Vec<String>,
    vpn: Option<VpnModel>,
    cert_file: String,
    key_file: String,
}

/// Only the file name: artifacts are used on other machines, and must not depend on where the
/// spec happens to live.
fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn custom_image(spec: &Spec) -> Option<&str> {
    match &spec.cloud.cluster.node_image {
        NodeImage::Custom { image, .. } => Some(image),
        NodeImage::Default => None,
    }
}

fn vpn(spec: &Spec) -> Option<VpnModel> {
    spec.vpn.enabled.then(|| VpnModel {
        peer: spec
            .vpn
            .peer
            .map(|p| p.addr().to_string())
            .unwrap_or_default(),
        remote_cidrs: spec
            .vpn
            .remote_cidrs
            .iter()
            .map(|c| c.to_string())
            .collect(),
    })
}

/// Renders every install artifact of phase 4: the cluster definition for the spec's cloud,
/// the namespaces and ingress manifests, the VPN configuration (when a VPN is wanted) and the
/// install script.
pub fn install_artifacts(spec: &Spec) -> Result<Vec<Rendered>, TemplateError> {
    let account = serde_json::to_value(&spec.cloud.account).expect("account serialises");
    let (eks, aks, gke) = match &spec.cloud.account {
        CloudAccount::Eks { .. } => (Some(account), None, None),
        CloudAccount::Aks { .. } => (None, Some(account), None),
        CloudAccount::Gke { .. } => (None, None, Some(account)),
    };
    let provider = spec.cloud.provider.to_string();
    let model = ArtifactModel {
        realm: &spec.name,
        version: env!("CARGO_PKG_VERSION"),
        provider: provider.clone(),
        region: &spec.cloud.region,
        cluster: &spec.cloud.cluster,
        eks,
        aks,
        gke,
        nodes: nodes(spec),
        custom_image: custom_image(spec),
        namespaces: ["digibee-system", "digibee-test", "digibee-prod"],
        names: spec.domains.required_names(),
        vpn: vpn(spec),
        cert_file: file_name(&spec.certificate.cert),
        key_file: file_name(&spec.certificate.key),
    };
    let mut files = vec![
        (
            format!("cluster-{provider}.json"),
            format!("artifacts/cluster-{provider}.json"),
        ),
        ("namespaces.yaml".into(), "artifacts/namespaces.yaml".into()),
        (
            "ingress-tls.yaml".into(),
            "artifacts/ingress-tls.yaml".into(),
        ),
    ];
    if spec.vpn.enabled {
        files.push(("vpn-ipsec.conf".into(), "artifacts/vpn-ipsec.conf".into()));
    }
    files.push(("install.sh".into(), "artifacts/install.sh".into()));
    files
        .into_iter()
        .map(|(name, template)| {
            Ok(Rendered {
                bytes: templates::render(&template, &model)?.into_bytes(),
                name,
            })
        })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RolesModel<'a> {
    realm: &'a str,
    version: &'static str,
    provider: String,
    region: &'a str,
    cluster: &'a str,
    installer: &'a Installer,
    roles: &'a [Role],
    resources: &'a [Resource],
    custom_image: Option<&'a str>,
    vpn: Option<VpnModel>,
    nodes: Nodes,
    rtus: u64,
    policy: Option<String>,
}

/// Renders the phase-5 roles-and-resources document (Markdown).
pub fn roles_document(spec: &Spec) -> Result<Rendered, TemplateError> {
    let r = requirements::embedded()
        .roles
        .for_provider(spec.cloud.provider);
    let model = RolesModel {
        realm: &spec.name,
        version: env!("CARGO_PKG_VERSION"),
        provider: spec.cloud.provider.to_string(),
        region: &spec.cloud.region,
        cluster: &spec.cloud.cluster.name,
        installer: &r.installer,
        roles: &r.roles,
        resources: &r.resources,
        custom_image: custom_image(spec),
        vpn: vpn(spec),
        nodes: nodes(spec),
        rtus: crate::cloud::access::pool_size(spec).rtus,
        policy: crate::cloud::permissions::policy_document(spec)?,
    };
    Ok(Rendered {
        name: "roles-and-resources.md".into(),
        bytes: templates::render("roles.md", &model)?.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support;
    use crate::spec::Provider;

    #[test]
    fn every_cloud_renders_valid_json_and_yaml_deterministically() {
        for p in [Provider::Eks, Provider::Aks, Provider::Gke] {
            let (_dir, s) = test_support::spec(p, "digibee.acme.com");
            let a = install_artifacts(&s).unwrap();
            assert_eq!(a, install_artifacts(&s).unwrap(), "deterministic");
            let cluster = &a[0];
            assert_eq!(cluster.name, format!("cluster-{p}.json"));
            let v: serde_json::Value = serde_json::from_slice(&cluster.bytes).unwrap_or_else(|e| {
                panic!("{p}: {e}\n{}", String::from_utf8_lossy(&cluster.bytes))
            });
            assert!(v.to_string().contains("acme"));
            // Every YAML artifact parses as YAML (each document of a stream) into what
            // kubectl expects: an apiVersion, a kind and a name.
            let yaml: Vec<_> = a.iter().filter(|f| f.name.ends_with(".yaml")).collect();
            assert!(yaml.len() >= 2, "{p}");
            for f in &yaml {
                let text = std::str::from_utf8(&f.bytes).unwrap();
                let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text)
                    .unwrap_or_else(|e| panic!("{p} {}: not YAML: {e}\n{text}", f.name));
                assert!(!docs.is_empty(), "{p} {}", f.name);
                for d in &docs {
                    assert!(
                        d["apiVersion"].is_string()
                            && d["kind"].is_string()
                            && d["metadata"]["name"].is_string(),
                        "{p} {}: {d}",
                        f.name
                    );
                    assert_eq!(
                        d["metadata"]["labels"]["digibee.io/realm"], "acme",
                        "{p} {d}"
                    );
                }
            }
            let ns = yaml.iter().find(|f| f.name == "namespaces.yaml").unwrap();
            let docs: Vec<serde_json::Value> =
                serde_saphyr::from_multiple(std::str::from_utf8(&ns.bytes).unwrap()).unwrap();
            assert!(docs.len() >= 2 && docs.iter().all(|d| d["kind"] == "Namespace"));
            let ingress = yaml.iter().find(|f| f.name == "ingress-tls.yaml").unwrap();
            let doc: serde_json::Value =
                serde_saphyr::from_str(std::str::from_utf8(&ingress.bytes).unwrap()).unwrap();
            let hosts = doc["spec"]["tls"][0]["hosts"].as_array().unwrap();
            assert!(
                hosts.iter().any(|h| h == "*.core.digibee.acme.com"),
                "{doc}"
            );
            assert_eq!(hosts.len(), doc["spec"]["rules"].as_array().unwrap().len());
            let doc = roles_document(&s).unwrap();
            let text = String::from_utf8(doc.bytes).unwrap();
            assert!(text.contains("| Permission | Why |"));
        }
    }

    /// Regression (issue #8): certificate and key file names from the spec went into a shell
    /// string of `install.sh`, so `x$(touch pwned).pem` ran a command on the operator's machine.
    #[test]
    fn hostile_file_names_stay_data_when_install_sh_runs() {
        use std::os::unix::fs::PermissionsExt;
        let hostile_cert = "x$(touch pwned).pem";
        let hostile_key = r#"k'`touch pwned2`'"; rm -f pwned3; echo "$(id).key"#;
        let (dir, mut s) = test_support::spec(Provider::Eks, "digibee.acme.com");
        s.certificate.cert = dir.path().join("certs").join(hostile_cert);
        s.certificate.key = dir.path().join("certs").join(hostile_key);
        let files = install_artifacts(&s).unwrap();
        let script = files.iter().find(|f| f.name == "install.sh").unwrap();
        let run = tempfile::tempdir().unwrap();
        std::fs::write(run.path().join("install.sh"), &script.bytes).unwrap();
        // A fake kubectl that records its arguments, one per line.
        let bin = run.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let kubectl = bin.join("kubectl");
        std::fs::write(
            &kubectl,
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> \"$KUBECTL_LOG\"; done\ncat >/dev/null\n",
        )
        .unwrap();
        std::fs::set_permissions(&kubectl, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(run.path().join("pwned3"), "must survive").unwrap();
        let log = run.path().join("kubectl.log");
        let out = std::process::Command::new("sh")
            .arg("install.sh")
            .current_dir(run.path())
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .env("KUBECTL_LOG", &log)
            .env_remove("REALM_CERT")
            .env_remove("REALM_KEY")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        for pwned in ["pwned", "pwned2"] {
            assert!(!run.path().join(pwned).exists(), "{pwned} was created");
        }
        assert!(run.path().join("pwned3").exists(), "a command ran");
        let args = std::fs::read_to_string(&log).unwrap();
        assert!(
            args.lines().any(|l| l == format!("--cert={hostile_cert}")),
            "{args}"
        );
        assert!(
            args.lines().any(|l| l == format!("--key={hostile_key}")),
            "{args}"
        );
    }
}
