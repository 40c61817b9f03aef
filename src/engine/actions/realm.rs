//! `realm.live`, the last step of phase 6: the record that says the realm is live, from what
//! the cluster and its edge answer now (not from what earlier steps reported):
//!
//! - **platform ready**: every object of the approved definition read again (one LIST per kind
//!   and namespace) and judged by the kstatus rules;
//! - **certificate served**: the Ingress's address, then a TLS handshake for each of the six
//!   wildcard names, passing only when the leaf served is the customer's own
//!   ([`crate::checks::edge`]);
//! - **quota enforced**: the realm's own core, asked with the realm token through the service
//!   proxy, holds the realm's config, and refuses a deployment beyond the realm's limit (a
//!   what-if, so nothing is recorded).
//!
//! Each is a check in the step's output, so the reports show the evidence.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use super::cluster_api::{ClusterConn, failure};
use super::platform::{Seen, read};
use super::quota::core_failure;
use super::{ActionDef, Input, Needs, SpecPart, run_fn};
use crate::checks::{Category, CheckResult, Owner, Status, edge};
use crate::engine::ctx::{Ctx, Failure, Outcome};
use crate::engine::model::output::{FailureKind, StepOutput};
use crate::platform::core::{Core, CoreError, Role};
use crate::platform::definition::{ObjectRef, desired};
use crate::platform::ready::{Readiness, readiness};
use crate::platform::{REALM_LABEL, realm};
use crate::quota::model::{Deployment, Env, Size, Version};
use crate::text::one_line;

/// `realm.live`.
pub const LIVE: ActionDef = ActionDef {
    name: "realm.live",
    summary: "records that the realm is live: the platform ready, the realm's certificate served at the ingress for every wildcard name, the enforcement core holding the realm's config and refusing what exceeds it",
    needs: Needs::Cloud,
    workflow: super::Workflow::Install,
    timeout: Duration::from_secs(10 * 60),
    retries: 2,
    params: &[],
    inputs: &[
        Input::Part(SpecPart::Name),
        Input::Part(SpecPart::Cloud),
        Input::Part(SpecPart::Domains),
        Input::Part(SpecPart::Subscription),
        Input::CertificateFiles,
        Input::Definition,
    ],
    run: run_fn!(live),
};

/// How long one TLS handshake with the edge may take.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The pipeline name of the what-if that must be refused.
pub const PROBE_PIPELINE: &str = "realmctl-live-check";

fn ingress_ref() -> ObjectRef {
    ObjectRef {
        api_version: "networking.k8s.io/v1".into(),
        kind: "Ingress".into(),
        namespace: Some(realm::EDGE_NAMESPACE.into()),
        name: realm::INGRESS.into(),
    }
}

/// The Ingress's address (`ip` or `hostname`), if it has one (pure).
pub fn ingress_address(v: &Value) -> Option<String> {
    let first = v["status"]["loadBalancer"]["ingress"].as_array()?.first()?;
    first["ip"]
        .as_str()
        .or_else(|| first["hostname"].as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Every object of the definition, read again: a check per object not ready, one pass for the
/// rest.
async fn platform_ready(
    ctx: &Ctx<'_>,
    conn: &mut ClusterConn<'_>,
) -> Result<Vec<CheckResult>, Failure> {
    let want = desired(ctx.spec);
    let api = conn.api().await?;
    let all: Vec<usize> = (0..want.len()).collect();
    let selector = format!("{REALM_LABEL}={}", ctx.spec.name);
    let answers = read(api.as_ref(), &want, &all, &mut Seen::default(), &selector).await?;
    let mut out = Vec::new();
    let mut ready = 0;
    for (i, v) in answers {
        let r = v
            .as_ref()
            .map_or_else(|| Readiness::InProgress("not found".into()), readiness);
        match r {
            Readiness::Current => ready += 1,
            Readiness::InProgress(why) | Readiness::Failed(why) => out.push(
                CheckResult::fail(
                    "platform.ready",
                    Category::Access,
                    want[i].planned.object.to_string(),
                    format!(
                        "{} is not ready: {}",
                        want[i].planned.object,
                        one_line(&why)
                    ),
                    "run install again; platform.apply waits for it and names why it is not ready",
                )
                .owned_by(Owner::Digibee),
            ),
        }
    }
    if out.is_empty() {
        out.push(CheckResult::pass(
            "platform.ready",
            Category::Access,
            format!("{} objects", want.len()),
            format!("all {ready} objects of the approved platform are ready"),
        ));
    }
    Ok(out)
}

/// The ingress address (waiting for one, under the step's deadline), then the certificate
/// check for every wildcard name.
async fn certificate_served(
    ctx: &Ctx<'_>,
    conn: &mut ClusterConn<'_>,
) -> Result<Vec<CheckResult>, Failure> {
    let expected = {
        let spec = ctx.spec.clone();
        ctx.blocking
            .run(move || {
                let bytes = crate::fsutil::read_capped(
                    &spec.certificate.cert,
                    crate::fsutil::caps::CERTIFICATE,
                )
                .map_err(|e| e.to_string())?;
                crate::checks::certificate::pem::parse_chain(&bytes)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .next()
                    .ok_or_else(|| "the certificate file holds no certificate".to_owned())
            })
            .await?
            .map_err(|e| Failure::permanent(format!("cannot read the certificate: {e}")))?
    };
    let mut n = 0;
    let address = loop {
        n += 1;
        let api = conn.api().await?;
        let ing = api.get(&ingress_ref()).await.map_err(failure)?;
        if let Some(a) = ing.as_ref().and_then(ingress_address) {
            break a;
        }
        ctx.record.progress(&format!(
            "waiting for the ingress {} to get an address",
            ingress_ref()
        ));
        let Some(delay) = ctx.opts.poll.next_asked(n, false, None, ctx.remaining()) else {
            return Err(Failure {
                kind: FailureKind::Timeout,
                message: format!(
                    "{} got no address within the step's timeout\n  help: check that the cluster has an ingress controller that serves it",
                    ingress_ref()
                ),
                output: None,
            });
        };
        tokio::time::sleep(delay).await;
    };
    let port = ctx.opts.ingress_port;
    let addr: SocketAddr = match tokio::net::lookup_host((address.as_str(), port)).await {
        Ok(mut a) => a.next(),
        Err(_) => None,
    }
    .ok_or_else(|| {
        Failure::retryable(format!(
            "the ingress address {} does not resolve",
            one_line(&address)
        ))
    })?;
    Ok(edge::check(
        addr,
        &ctx.spec.domains.required_names(),
        &expected,
        HANDSHAKE,
    )
    .await)
}

/// The realm's core, asked with the realm token: its config is the spec's, and a deployment
/// beyond the realm's replica limit is refused.
async fn quota_enforced(
    ctx: &Ctx<'_>,
    conn: &mut ClusterConn<'_>,
) -> Result<Vec<CheckResult>, Failure> {
    let api = conn.api().await?;
    let core = Core::connect(api.as_ref(), Role::Realm)
        .await
        .map_err(core_failure)?;
    let realm = &ctx.spec.name;
    let config = crate::quota::config_from_spec(&ctx.spec.subscription);
    let subject = format!("realm {realm}");
    let mut out = Vec::new();
    let held = match core.status(realm).await {
        Ok(st) => Ok(st.config),
        Err(CoreError::Answer { status, detail }) => Err(format!("HTTP {status}: {detail}")),
        Err(e) => return Err(core_failure(e)),
    };
    if held.as_ref().ok() != Some(&config) {
        let said = match held {
            Ok(c) => format!(
                "it holds {} pipeline subscriptions, {} extra Test RTUs, {} extra Prod RTUs",
                c.pipeline_subscriptions, c.extra_test_rtus, c.extra_prod_rtus
            ),
            Err(e) => e,
        };
        out.push(
            CheckResult::fail(
                "quota.config",
                Category::Access,
                subject,
                format!(
                    "the realm's enforcement core does not hold the realm's config: {}",
                    one_line(&said)
                ),
                "run install again: quota.seed writes the config",
            )
            .owned_by(Owner::Digibee),
        );
        return Ok(out);
    }
    out.push(CheckResult::pass(
        "quota.config",
        Category::Access,
        subject.clone(),
        format!(
            "the realm's enforcement core holds its config: {} pipeline subscriptions, {} extra Test RTUs, {} extra Prod RTUs",
            config.pipeline_subscriptions, config.extra_test_rtus, config.extra_prod_rtus
        ),
    ));
    let beyond = config.max_replicas.saturating_add(1);
    let probe = Deployment {
        environment: Env::Test,
        pipeline: PROBE_PIPELINE.into(),
        version: Version { major: 1, minor: 0 },
        size: Size::Small,
        replicas: beyond,
    };
    let answer = core
        .deploy(realm, &probe, false)
        .await
        .map_err(core_failure)?;
    out.push(if !answer.admitted {
        CheckResult::pass(
            "quota.enforced",
            Category::Access,
            subject,
            format!(
                "a what-if of {beyond} replicas (the limit is {}) was refused: {}",
                config.max_replicas,
                answer.reason.map_or("refused", |r| r.as_str())
            ),
        )
    } else {
        CheckResult::fail(
            "quota.enforced",
            Category::Access,
            subject,
            format!(
                "a what-if of {beyond} replicas (the limit is {}) was admitted: the core does not enforce the realm's limits",
                config.max_replicas
            ),
            "check the enforcement core's version in the bundle",
        )
        .owned_by(Owner::Digibee)
    });
    Ok(out)
}

async fn live(ctx: &Ctx<'_>) -> Result<Outcome, Failure> {
    let (def, _) = super::cloud::approved_definition(ctx)?;
    let mut conn = ClusterConn::open(ctx, def.name()).await?;
    let mut checks = platform_ready(ctx, &mut conn).await?;
    checks.extend(certificate_served(ctx, &mut conn).await?);
    checks.extend(quota_enforced(ctx, &mut conn).await?);
    let failed: Vec<&CheckResult> = checks.iter().filter(|c| c.status == Status::Fail).collect();
    if failed.is_empty() {
        let names = ctx.spec.domains.required_names().len();
        return Ok(Outcome::Done(StepOutput {
            summary: format!(
                "the realm is live: the platform is ready, the realm's certificate is served for all {names} names, quota is enforced"
            ),
            checks,
            ..StepOutput::default()
        }));
    }
    let message = failed
        .iter()
        .map(|c| c.message.clone())
        .collect::<Vec<_>>()
        .join("; ");
    Err(Failure {
        kind: FailureKind::Retryable,
        message: format!("the realm is not live yet: {message}"),
        output: Some(Box::new(StepOutput {
            summary: "the realm is not live yet".into(),
            checks,
            ..StepOutput::default()
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_ingress_address_is_its_first_ip_or_hostname() {
        assert_eq!(ingress_address(&json!({})), None);
        assert_eq!(
            ingress_address(
                &json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}]}}})
            ),
            Some("192.0.2.7".into())
        );
        assert_eq!(
            ingress_address(
                &json!({"status": {"loadBalancer": {"ingress": [{"hostname": "a.elb.example"}]}}})
            ),
            Some("a.elb.example".into())
        );
        assert_eq!(
            ingress_address(&json!({"status": {"loadBalancer": {"ingress": [{"ip": ""}]}}})),
            None
        );
    }
}

#[cfg(test)]
mod live_tests {
    use base64::Engine as _;
    use serde_json::json;

    use super::super::cloud::tests::{Run, approved_install, phase6};
    use super::super::platform::tests::setup;
    use crate::checks::Status;
    use crate::engine::io::journal::Journal;
    use crate::engine::model::event::StopOutcome;
    use crate::platform::quota;
    use realmctl_standins::KubeStandIn;

    const STEPS: &str = "[{id: cluster, action: cluster.apply}, {id: ready, action: cluster.wait}, {id: platform, action: platform.apply, timeout: 20s}, {id: seed, action: quota.seed, retries: 0}, {id: live, action: realm.live, timeout: 20s, retries: 0}]";

    /// A cluster whose core answers (this build's quota service) and whose edge serves on
    /// loopback; the install seeds the realm's own core.
    async fn live_setup() -> (Run, KubeStandIn) {
        let (mut r, api) = setup().await;
        let db = r._dir.path().join("core.db");
        api.world().serve_service(
            quota::NAMESPACE,
            quota::SERVICE,
            crate::demo::core::quota_backend(db),
        );
        r.opts.quota_target = crate::quota::seed::Target::InRealm;
        r.opts.ingress_port = api.edge_port();
        // A real certificate for the six names, which the edge serves from the TLS Secret.
        let cert = rcgen::generate_simple_self_signed(r.spec.domains.required_names()).unwrap();
        std::fs::write(&r.spec.certificate.cert, cert.cert.pem()).unwrap();
        std::fs::write(&r.spec.certificate.key, cert.signing_key.serialize_pem()).unwrap();
        (r, api)
    }

    fn step_checks(r: &Run, id: &str) -> Vec<crate::checks::CheckResult> {
        let st = crate::engine::run::load_state(&Journal::open(&r.state).unwrap()).unwrap();
        st.steps[id].output.as_ref().unwrap().checks.clone()
    }

    fn token_in_cluster(api: &KubeStandIn, secret: &str) -> String {
        let mut w = api.world();
        let t = w.cluster.find("", "secrets").unwrap();
        let v = w.cluster.get(&t, quota::NAMESPACE, secret).unwrap();
        quota::token_in(&v).unwrap().expose().to_owned()
    }

    /// Every file under `dir`, as bytes.
    fn every_file(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(every_file(&p));
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_install_ends_with_the_realm_live_and_its_tokens_only_in_the_cluster() {
        let (r, api) = live_setup().await;
        let res = approved_install(&r, &phase6(STEPS)).await;
        assert_eq!(res.outcome, StopOutcome::Completed, "{}", res.message);
        let checks = step_checks(&r, "live");
        let names = r.spec.domains.required_names();
        let count = |id: &str| {
            checks
                .iter()
                .filter(|c| c.id == id && c.status == Status::Pass)
                .count()
        };
        assert_eq!(count("platform.ready"), 1);
        assert_eq!(count("edge.certificate"), names.len());
        assert_eq!(count("quota.config"), 1);
        assert_eq!(count("quota.enforced"), 1);
        // The config went through the service proxy with the admin token in X-Quota-Token.
        let proxied = api
            .world()
            .calls
            .iter()
            .filter(|c| c.path.contains("/services/http:digibee-quota:http/proxy/"))
            .count();
        assert_eq!(proxied, 3, "seed, usage, what-if");
        // The tokens made in the cluster appear nowhere in the state, in any encoding.
        for secret in [quota::ADMIN_SECRET, quota::REALM_SECRET] {
            let token = token_in_cluster(&api, secret);
            let forms = [
                token.clone(),
                base64::engine::general_purpose::STANDARD.encode(&token),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&token),
                url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>(),
            ];
            for (path, bytes) in every_file(&r.state) {
                let text = String::from_utf8_lossy(&bytes);
                for f in &forms {
                    assert!(!text.contains(f.as_str()), "{secret} in {}", path.display());
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_ingress_serving_a_realm_name_with_its_own_certificate_is_named() {
        let (r, api) = live_setup().await;
        let names = r.spec.domains.required_names();
        // Another team's Ingress claims the first name with its own certificate.
        let other = rcgen::generate_simple_self_signed(vec![names[0].clone()]).unwrap();
        let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
        {
            let mut w = api.world();
            let now = std::time::Instant::now();
            let ns = w.cluster.find("", "namespaces").unwrap();
            w.cluster
                .create(&ns, "", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "aaa-other"}}), "kubectl", now)
                .unwrap();
            let secrets = w.cluster.find("", "secrets").unwrap();
            w.cluster
                .create(&secrets, "aaa-other", json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                    "metadata": {"name": "theirs", "namespace": "aaa-other"},
                    "data": {"tls.crt": b64(other.cert.pem()), "tls.key": b64(other.signing_key.serialize_pem())}}), "kubectl", now)
                .unwrap();
            let ing = w.cluster.find("networking.k8s.io", "ingresses").unwrap();
            w.cluster
                .create(
                    &ing,
                    "aaa-other",
                    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                    "metadata": {"name": "theirs", "namespace": "aaa-other"},
                    "spec": {"tls": [{"hosts": [names[0]], "secretName": "theirs"}]}}),
                    "kubectl",
                    now,
                )
                .unwrap();
        }
        let res = approved_install(&r, &phase6(STEPS)).await;
        assert_eq!(res.outcome, StopOutcome::Failed, "{}", res.message);
        assert!(
            res.message.contains("serves another certificate"),
            "{}",
            res.message
        );
        let checks = step_checks(&r, "live");
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.subject.as_str())
            .collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].starts_with(&names[0]), "{failed:?}");
    }
}
