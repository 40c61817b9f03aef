//! Phase 4 and 5 actions: `artifacts.render` renders every install artifact and
//! `roles.render` the roles-and-resources document, from `templates/` with typed models, and
//! both store what they render with its SHA-256. Rendering is deterministic (no clock, no
//! randomness), so the same spec always yields the same bytes and the same SHA-256.
//!
//! Both render the realm's one cluster definition ([`crate::cloud::definition`]) and record it
//! in their output: the phase-5 approval names its digest, and `cluster.apply` builds only a
//! definition an approval named.

use std::time::Duration;

use serde::Serialize;

use super::{ActionDef, Input, Needs, SpecPart, run_fn};
use crate::cloud::definition::{ClusterDefinition, NodeImageDef, PoolDefinition};
use crate::engine::ctx::{Ctx, Failure, Outcome};
pub use crate::engine::io::store::Rendered;
use crate::engine::model::output::StepOutput;
use crate::requirements::{Installer, Resource, Role};
use crate::spec::{NodeImage, Spec};
use crate::templates::{self, TemplateError};

/// `artifacts.render`.
pub const ARTIFACTS: ActionDef = ActionDef {
    name: "artifacts.render",
    summary: "renders and stores every install artifact with its SHA-256",
    needs: Needs::Nothing,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(5 * 60),
    retries: 3,
    params: &[],
    inputs: &[Input::Spec, Input::Definition],
    run: run_fn!(render_artifacts),
};

/// `roles.render`.
pub const ROLES: ActionDef = ActionDef {
    name: "roles.render",
    summary: "renders and stores the roles-and-resources document",
    needs: Needs::Nothing,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(5 * 60),
    retries: 0,
    params: &[],
    inputs: &[
        Input::Part(SpecPart::Name),
        Input::Part(SpecPart::Cloud),
        Input::Part(SpecPart::Vpn),
        Input::Part(SpecPart::Subscription),
        Input::Definition,
    ],
    run: run_fn!(render_roles),
};

async fn render_artifacts(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let def = crate::cloud::access::definition(ctx.spec);
    let files = install_artifacts(ctx.spec, &def).map_err(|e| Failure::permanent(e.to_string()))?;
    store_all(ctx, files, "install artifacts", def).await
}

async fn render_roles(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let def = crate::cloud::access::definition(ctx.spec);
    let doc = roles_document(ctx.spec, &def).map_err(|e| Failure::permanent(e.to_string()))?;
    store_all(ctx, vec![doc], "roles-and-resources document", def).await
}

async fn store_all(
    ctx: &Ctx<'_>,
    files: Vec<Rendered>,
    what: &str,
    def: ClusterDefinition,
) -> Result<Outcome, Failure> {
    let mut refs = Vec::new();
    for f in files {
        let r = ctx
            .opts
            .store
            .put(&ctx.spec.name, ctx.run, f, ctx.blocking)
            .await
            .map_err(store_failure)?;
        refs.push(r);
        // Crash tests: a kill with some artifacts stored and others not.
        ctx.record.kill_point(&format!("stored-{}", refs.len()));
    }
    Ok(Outcome::Done(StepOutput {
        summary: format!(
            "{} {what} stored (cluster definition {})",
            refs.len(),
            def.digest()
        ),
        artifacts: refs,
        definition: Some(Box::new(def)),
        ..StepOutput::default()
    }))
}

/// A failure to store an artifact as a step failure.
pub(super) fn store_failure(e: crate::engine::io::store::StoreError) -> Failure {
    Failure::judged(e.retryable(), e.to_string())
}

/// Who may reach the API server, as the templates write it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiModel {
    private: bool,
    public: bool,
    cidrs: Vec<String>,
    describe: String,
}

fn api(def: &ClusterDefinition) -> ApiModel {
    ApiModel {
        private: def.cluster.api_access.private(),
        public: def.cluster.api_access.public_cidrs().is_some(),
        cidrs: def
            .cluster
            .api_access
            .public_cidrs()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect(),
        describe: def.cluster.api_access.describe(),
    }
}

/// A pool of the definition, as the templates write it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PoolModel<'a> {
    #[serde(flatten)]
    pool: &'a PoolDefinition,
    /// The default image's name, or `None` for a custom image.
    default_image: Option<&'a str>,
    /// The custom image's id, or `None`.
    custom_image: Option<&'a str>,
}

/// The definition as the templates write it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DefinitionModel<'a> {
    #[serde(flatten)]
    def: &'a ClusterDefinition,
    digest: String,
    api: ApiModel,
    initial_pools: Vec<PoolModel<'a>>,
    later_pools: Vec<PoolModel<'a>>,
    all_pools: Vec<PoolModel<'a>>,
}

fn pool_model(p: &PoolDefinition) -> PoolModel<'_> {
    let (default_image, custom_image) = match &p.nodes.image {
        NodeImageDef::Default(n) => (Some(n.as_str()), None),
        NodeImageDef::Custom(i) => (None, Some(i.as_str())),
    };
    PoolModel {
        pool: p,
        default_image,
        custom_image,
    }
}

fn definition_model(def: &ClusterDefinition) -> DefinitionModel<'_> {
    DefinitionModel {
        def,
        digest: def.digest(),
        api: api(def),
        initial_pools: def.initial_pools().map(pool_model).collect(),
        later_pools: def.later_pools().map(pool_model).collect(),
        all_pools: def.pools.iter().map(pool_model).collect(),
    }
}

/// The VPN of the definition, as the roles document shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VpnModel<'a> {
    #[serde(flatten)]
    def: &'a crate::cloud::vpn::VpnDef,
    ingress: Vec<String>,
    store: &'static str,
}

fn vpn_model<'a>(spec: &Spec, def: &'a ClusterDefinition) -> Option<VpnModel<'a>> {
    let v = def.vpn.as_ref()?;
    Some(VpnModel {
        def: v,
        ingress: v.ingress.iter().map(ToString::to_string).collect(),
        store: crate::cloud::profile::of(spec).vpn_host().store,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactModel<'a> {
    realm: &'a str,
    version: &'static str,
    provider: String,
    definition: DefinitionModel<'a>,
    custom_image: Option<&'a str>,
    /// The realm's Namespace objects, exactly as `platform.apply` sends them (JSON, which is
    /// YAML).
    namespace_objects: Vec<String>,
    /// The realm's Ingress, likewise.
    ingress_object: String,
    tls_secret: &'static str,
    edge_namespace: &'static str,
    names: Vec<String>,
    cert_file: String,
    key_file: String,
}

/// The realm's own objects of `kind`, as `platform.apply` sends them, each as pretty JSON.
fn realm_objects(spec: &Spec, kind: &str) -> Vec<String> {
    crate::platform::definition::desired(spec)
        .into_iter()
        .filter(|d| d.planned.source == "realm" && d.planned.object.kind == kind)
        .map(|d| serde_json::to_string_pretty(&d.manifest).expect("manifests serialise"))
        .collect()
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

/// Renders every install artifact of phase 4: the cluster definition for the spec's cloud
/// (as the cloud's create requests write it), the namespaces and ingress manifests, the VPN
/// configuration (when a VPN is wanted) and the install script.
pub fn install_artifacts(
    spec: &Spec,
    def: &ClusterDefinition,
) -> Result<Vec<Rendered>, TemplateError> {
    let provider = spec.cloud.provider.to_string();
    let model = ArtifactModel {
        realm: &spec.name,
        version: env!("CARGO_PKG_VERSION"),
        provider: provider.clone(),
        definition: definition_model(def),
        custom_image: custom_image(spec),
        namespace_objects: realm_objects(spec, "Namespace"),
        ingress_object: realm_objects(spec, "Ingress").concat(),
        tls_secret: crate::platform::realm::TLS_SECRET,
        edge_namespace: crate::platform::realm::EDGE_NAMESPACE,
        names: spec.domains.required_names(),
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
    files.push(("install.sh".into(), "artifacts/install.sh".into()));
    let mut out = files
        .into_iter()
        .map(|(name, template)| {
            Ok(Rendered {
                bytes: templates::render(&template, &model)?.into_bytes(),
                name,
            })
        })
        .collect::<Result<Vec<_>, TemplateError>>()?;
    // The VPN instance's files exactly as phase 6 sends them: rendered from the definition by
    // the same functions (no key in either).
    if let Some(v) = &def.vpn {
        let host = crate::cloud::profile::of(spec).vpn_host();
        let install = out.pop().expect("install.sh is rendered last");
        out.push(Rendered {
            name: "vpn-ipsec.conf".into(),
            bytes: crate::cloud::vpn::ipsec_conf(v)?.into_bytes(),
        });
        out.push(Rendered {
            name: "vpn-cloud-init.yaml".into(),
            bytes: crate::cloud::vpn::user_data(v, &host)?.into_bytes(),
        });
        out.push(install);
    }
    Ok(out)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyModel {
    kind: &'static str,
    language: &'static str,
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RolesModel<'a> {
    realm: &'a str,
    version: &'static str,
    provider: String,
    title: &'static str,
    region: &'a str,
    cluster: &'a str,
    installer: &'a Installer,
    roles: &'a [Role],
    resources: &'a [Resource],
    custom_image: Option<&'a str>,
    vpn: Option<VpnModel<'a>>,
    definition: DefinitionModel<'a>,
    rtus: u64,
    policy: PolicyModel,
}

/// Renders the phase-5 roles-and-resources document (Markdown): every role, permission and
/// resource, the least-privilege document, and the cluster definition the customer approves
/// (with its digest).
pub fn roles_document(spec: &Spec, def: &ClusterDefinition) -> Result<Rendered, TemplateError> {
    let r = crate::cloud::permissions::roles_of(spec);
    let prof = crate::cloud::profile::of(spec);
    let policy = prof.policy();
    let model = RolesModel {
        realm: &spec.name,
        version: env!("CARGO_PKG_VERSION"),
        provider: spec.cloud.provider.to_string(),
        title: prof.title(),
        region: &spec.cloud.region,
        cluster: &spec.cloud.cluster.name,
        installer: &r.installer,
        roles: &r.roles,
        resources: &r.resources,
        custom_image: custom_image(spec),
        vpn: vpn_model(spec, def),
        definition: definition_model(def),
        rtus: crate::cloud::access::pool_size(spec).rtus,
        policy: PolicyModel {
            kind: policy.kind,
            language: policy.language,
            text: crate::cloud::permissions::policy_document(spec)?,
        },
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
            let def = crate::cloud::access::definition(&s);
            let a = install_artifacts(&s, &def).unwrap();
            assert_eq!(a, install_artifacts(&s, &def).unwrap(), "deterministic");
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
            let doc = roles_document(&s, &def).unwrap();
            let text = String::from_utf8(doc.bytes).unwrap();
            assert!(text.contains("| Permission | Why |"));
            // What a customer's offline approval reads from this very document: the realm
            // and the digest of the definition phase 6 builds.
            let facts = crate::engine::model::offline::read_document(&text).unwrap();
            assert_eq!(facts.realm, s.name);
            assert_eq!(facts.definition, def.digest());
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
        let files = install_artifacts(&s, &crate::cloud::access::definition(&s)).unwrap();
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

#[cfg(test)]
mod vpn_tests {
    use super::*;
    use crate::engine::test_support;
    use crate::spec::Provider;

    fn vpn_spec(p: Provider) -> (tempfile::TempDir, Spec) {
        let (d, mut s) = test_support::spec(p, "digibee.acme.com");
        s.vpn = crate::spec::VpnSpec {
            enabled: true,
            peer: Some("198.51.100.7/32".parse().unwrap()),
            routing: Some(crate::spec::Routing::RouteBased),
            remote_cidrs: vec!["192.168.10.0/24".parse().unwrap()],
            subnet: None,
        };
        (d, s)
    }

    /// The roles document shows the instance, its only internet ingress, the routes and where
    /// the key lives; the artifacts are the instance's own files, rendered from the definition.
    #[test]
    fn a_vpn_realm_shows_its_instance_for_approval_and_renders_its_files() {
        for p in [Provider::Eks, Provider::Aks, Provider::Gke] {
            let (_d, s) = vpn_spec(p);
            let def = crate::cloud::access::definition(&s);
            let v = def
                .vpn
                .as_ref()
                .expect("a VPN realm's definition has its VPN");
            let doc = roles_document(&s, &def).unwrap();
            let doc = String::from_utf8(doc.bytes).unwrap();
            let size = crate::templates::md_escape(&v.size);
            for needle in [
                "acme-vpn",
                "udp/500 from 198.51.100.7/32; udp/4500 from 198.51.100.7/32; esp from 198.51.100.7/32",
                "192.168.10.0/24",
                "acme-vpn-psk",
                size.as_str(),
                "realmctl vpn reveal-key",
            ] {
                assert!(doc.contains(needle), "{p}: {needle} missing from\n{doc}");
            }
            let files = install_artifacts(&s, &def).unwrap();
            let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
            assert!(names.contains(&"vpn-ipsec.conf"), "{p}: {names:?}");
            let ci = files
                .iter()
                .find(|f| f.name == "vpn-cloud-init.yaml")
                .unwrap();
            let text = std::str::from_utf8(&ci.bytes).unwrap();
            assert_eq!(
                text,
                crate::cloud::vpn::user_data(v, &crate::cloud::profile::of(&s).vpn_host()).unwrap(),
                "{p}: the artifact is what the instance receives"
            );
            let yaml: serde_json::Value = serde_saphyr::from_str(text)
                .unwrap_or_else(|e| panic!("{p}: not YAML: {e}\n{text}"));
            let files = yaml["write_files"].as_array().unwrap();
            let conf = files
                .iter()
                .find(|f| f["path"] == "/etc/ipsec.d/digibee-acme.conf")
                .unwrap();
            assert_eq!(
                conf["content"].as_str().unwrap(),
                crate::cloud::vpn::ipsec_conf(v).unwrap(),
                "{p}"
            );
            assert_eq!(names.last(), Some(&"install.sh"));
        }
        // Without a VPN: no VPN files, no VPN section.
        let (_d, s) = test_support::spec(Provider::Eks, "digibee.acme.com");
        let def = crate::cloud::access::definition(&s);
        assert!(def.vpn.is_none());
        let files = install_artifacts(&s, &def).unwrap();
        assert!(files.iter().all(|f| !f.name.starts_with("vpn-")));
    }
}
