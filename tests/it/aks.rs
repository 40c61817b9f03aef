//! AKS end to end on the stand-in crate's Azure adapter over HTTPS (issue #17): realmctl's ARM
//! client and azure_identity's credentials against a server that follows ARM's published
//! protocol and the identity platform's token endpoint, trusting the stand-in's test CA only as
//! one more root (in process) or through `SSL_CERT_FILE` (the binary). Creations that take
//! several polls, `Retry-After` never cut short, failed operations, throttling, AADSTS errors,
//! a missing role, quota, adoption, a same-named foreign cluster (also one made between describe
//! and create), SIGKILL anywhere, and canary secrets.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use realmctl::cloud::aks::credential::AzureEnv;
use realmctl::cloud::aks::{AksProvider, AksSettings};
use realmctl::cloud::facts::{Lookup, Status};
use realmctl::cloud::retry::{RetryPolicy, Retrying};
use realmctl::cloud::{
    AccountInspector, CloudErrorKind, ClusterManager, IdentitySource, PermissionChecker,
};
use realmctl_standins::{Cluster, StandIn, World, azure};

use crate::common::{assert_nowhere, realmctl};
use crate::engine_support::{approve, cloud_playbook, text};

const SUB: &str = "00000000-0000-4000-8000-0000000000a5";
const TENANT: &str = "00000000-0000-4000-8000-00000000d1e0";
const GROUP: &str = "digibee-acme";
const REGION: &str = "eastus";
/// The stand-in's client secret: a canary that must never be written down.
const SECRET: &str = "aks-canary-client-secret/+=~never-written";
const WRITE: &str = "Microsoft.ContainerService/managedClusters/write";
const OPERATION_READ: &str = "Microsoft.ContainerService/locations/operations/read";
const CLUSTER_READ: &str = "Microsoft.ContainerService/managedClusters/read";

/// The Azure stand-in on a runtime of its own, and its CA in a file.
pub(crate) struct Azure {
    pub(crate) standin: StandIn,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Azure {
    fn drop(&mut self) {
        // Also from inside a test's own runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Azure {
    pub(crate) fn start(create_delay: Duration) -> Self {
        Self::with(create_delay, |_| {})
    }

    pub(crate) fn with(create_delay: Duration, shape: impl FnOnce(&mut World)) -> Self {
        let mut w = azure::sample(SUB, TENANT, REGION, GROUP, SECRET);
        w.create_delay = create_delay;
        shape(&mut w);
        // A runtime of its own, started off any test runtime's thread.
        let (rt, standin) = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let standin = rt.block_on(StandIn::azure(w)).unwrap();
            (rt, standin)
        })
        .join()
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, standin.ca_pem().unwrap()).unwrap();
        Azure {
            standin,
            ca_file,
            _dir: dir,
            rt: Some(rt),
        }
    }

    pub(crate) fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.standin.world()
    }

    pub(crate) fn settings(&self, secret: &str) -> AksSettings {
        AksSettings {
            endpoint: Some(self.standin.url()),
            env: AzureEnv {
                tenant_id: Some(TENANT.into()),
                client_id: Some(azure::INSTALLER_APP.into()),
                client_secret: Some(realmctl::secret::Secret::new(secret)),
                federated_token_file: None,
                authority_host: Some(self.standin.url()),
            },
            extra_roots: vec![self.standin.ca_pem().unwrap().to_owned()],
            ..AksSettings::new(REGION, SUB, GROUP, TENANT)
        }
    }

    pub(crate) fn provider(&self) -> AksProvider {
        AksProvider::new(self.settings(SECRET)).unwrap()
    }

    /// The variables Azure tools read, pointing the binary at the stand-in.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_TENANT_ID", TENANT.into()),
            ("AZURE_CLIENT_ID", azure::INSTALLER_APP.into()),
            ("AZURE_CLIENT_SECRET", SECRET.into()),
            ("AZURE_AUTHORITY_HOST", self.standin.url()),
            ("SSL_CERT_FILE", self.ca_file.display().to_string()),
        ]
    }

    fn subnet(&self) -> String {
        self.world().subnets[0].id.clone()
    }

    fn puts(&self) -> usize {
        self.world().count(WRITE)
    }

    /// Times of the operation polls.
    fn polls(&self) -> Vec<Duration> {
        self.world()
            .calls
            .iter()
            .filter(|c| c.op == OPERATION_READ)
            .map(|c| c.at)
            .collect()
    }
}

fn definition(
    a: &Azure,
    dir: &Path,
    cluster: &str,
) -> realmctl::cloud::definition::ClusterDefinition {
    let spec = write_spec(a, dir, cluster);
    realmctl::cloud::access::definition(&realmctl::spec::load(&spec).unwrap())
}

/// A spec of realm `acme` on the stand-in's sample subscription.
pub(crate) fn write_spec(a: &Azure, dir: &Path, cluster: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("certs/wildcard.pem"), "x").unwrap();
    std::fs::write(dir.join("certs/wildcard.key"), "x").unwrap();
    let text = format!(
        r#"apiVersion: realmctl/v1
kind: Realm
name: acme
cloud:
  provider: aks
  region: {REGION}
  endpoint: "{url}"
  aks: {{subscriptionId: {SUB}, resourceGroup: {GROUP}, tenantId: {TENANT}, subnetId: "{subnet}"}}
  cluster: {{name: {cluster}, kubernetesVersion: "1.31"}}
domains: {{base: digibee.acme.test}}
certificate: {{cert: certs/wildcard.pem, key: certs/wildcard.key}}
subscription: {{pipelineSubscriptions: 2}}
"#,
        url = a.standin.url(),
        subnet = a.subnet(),
    );
    let path = dir.join("realm.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn required(spec: &realmctl::spec::Spec) -> Vec<realmctl::cloud::facts::RequiredPermission> {
    realmctl::cloud::permissions::required(
        &realmctl::cloud::permissions::roles_of(spec),
        &realmctl::cloud::permissions::Vars::for_spec(spec),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reads_identity_account_and_permissions_over_https() {
    let a = Azure::start(Duration::from_millis(100));
    let p = a.provider();
    let id = p.identity().await.unwrap();
    assert!(
        id.principal.contains(azure::INSTALLER_OBJECT),
        "{}",
        id.principal
    );
    assert!(
        id.principal.contains(azure::INSTALLER_APP),
        "{}",
        id.principal
    );
    assert!(id.principal.contains(TENANT), "{}", id.principal);
    assert_eq!(id.account, SUB);
    assert!(id.source.starts_with("client secret"), "{}", id.source);
    assert!(id.expires_at.is_some(), "tokens expire and are refreshed");

    let dir = tempfile::tempdir().unwrap();
    let spec = realmctl::spec::load(&write_spec(&a, dir.path(), "digibee-acme")).unwrap();
    let def = realmctl::cloud::access::definition(&spec);
    let ask = realmctl::cloud::profile::of(&spec).account(
        &spec,
        &def,
        &realmctl::cloud::sizing::for_realm(realmctl::spec::Provider::Aks, &spec.subscription),
    );
    let f = p.account(&ask.query).await.unwrap();
    assert_eq!(f.account, SUB);
    assert_eq!(f.subnets.len(), 1);
    assert_eq!(f.subnets[0].free_addresses, 65_000);
    assert!(
        f.subnets[0]
            .network
            .ends_with("/virtualNetworks/digibee-vnet")
    );
    assert!(f.services.iter().all(|s| s.enabled == Lookup::Found(true)));
    assert_eq!(f.services.len(), 3);
    assert!(matches!(&f.versions, Lookup::Found(v) if v.contains(&"1.31".to_owned())));
    let total = f.quotas.iter().find(|q| q.code == "cores").unwrap();
    assert_eq!(total.limit, Lookup::Found(100.0));
    assert!(f.quotas.iter().any(|q| q.code == "standardDSv5Family"));

    // A provider left unregistered is reported, not an error.
    a.world().services.insert("Microsoft.Network".into(), false);
    let f = p.account(&ask.query).await.unwrap();
    let net = f
        .services
        .iter()
        .find(|s| s.name == "Microsoft.Network")
        .unwrap();
    assert_eq!(net.enabled, Lookup::Found(false));

    // Permissions: everything, then one action taken back by a notAction.
    let req = required(&spec);
    let facts = p.missing_permissions(&req).await.unwrap();
    assert!(facts.missing.is_empty(), "{:?}", facts.missing);
    assert_eq!(facts.checked, req.len());
    a.world().deny(WRITE);
    let facts = p.missing_permissions(&req).await.unwrap();
    let missing: Vec<&str> = facts.missing.iter().map(|m| m.action.as_str()).collect();
    assert_eq!(missing, [WRITE]);
    assert_eq!(facts.principal, azure::INSTALLER_OBJECT);

    // A grant on a later page (`nextLink`) counts: a role that takes nothing back, paged
    // one entry per page after the first.
    {
        let mut w = a.world();
        w.policy.statements.insert(
            0,
            realmctl_standins::policy::Statement {
                effect: realmctl_standins::policy::Effect::Allow,
                actions: vec!["*/read".into()],
                resources: vec!["*".into()],
                conditions: vec![],
            },
        );
        w.policy
            .statements
            .retain(|s| s.effect == realmctl_standins::policy::Effect::Allow);
        w.policy
            .statements
            .push(realmctl_standins::policy::Statement {
                effect: realmctl_standins::policy::Effect::Allow,
                actions: vec![WRITE.into()],
                resources: vec!["*".into()],
                conditions: vec![],
            });
        w.page_size = Some(1);
    }
    let before = a.world().count("Microsoft.Authorization/permissions/read");
    let facts = p.missing_permissions(&req).await.unwrap();
    let missing: Vec<&str> = facts.missing.iter().map(|m| m.action.as_str()).collect();
    assert!(
        !missing.contains(&WRITE),
        "the grant on a later page was read: {missing:?}"
    );
    assert!(
        a.world().count("Microsoft.Authorization/permissions/read") - before > 3,
        "pages were followed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_takes_several_polls_never_sooner_than_retry_after() {
    let a = Azure::start(Duration::from_millis(3500));
    let dir = tempfile::tempdir().unwrap();
    let def = definition(&a, dir.path(), "digibee-acme");
    let p = a.provider();
    assert!(p.cluster("digibee-acme").await.unwrap().is_none());
    let t = Instant::now();
    p.create_cluster(&def).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(3500),
        "{:?}",
        t.elapsed()
    );
    let polls = a.polls();
    assert!(polls.len() >= 3, "several polls: {polls:?}");
    let put = a.world().calls.iter().find(|c| c.op == WRITE).unwrap().at;
    let mut last = put;
    for at in &polls {
        assert!(
            *at - last >= Duration::from_secs(1),
            "polled sooner than Retry-After: {polls:?}"
        );
        last = *at;
    }
    let c = p.cluster("digibee-acme").await.unwrap().unwrap();
    assert_eq!(c.status, Status::Active);
    let diffs = realmctl::cloud::definition::compare_cluster(&def.cluster, &c.described);
    assert!(diffs.is_empty(), "{diffs:?}");
    let pool = p
        .node_pool("digibee-acme", "workers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pool.status, Status::Active);
    assert!(
        realmctl::cloud::definition::compare_pool(&def.pools[0].nodes, &pool.described).is_empty()
    );
    // What was sent: local accounts off, Entra ID on.
    let doc = a
        .world()
        .documents
        .values()
        .find(|d| d.pointer("/properties/aadProfile").is_some())
        .cloned()
        .unwrap();
    assert_eq!(doc["properties"]["disableLocalAccounts"], true);
    assert_eq!(doc["properties"]["aadProfile"]["managed"], true);
    let access = p.kube_access(&c).await.unwrap();
    assert_eq!(access.command, "kubelogin");
    // The API server the cluster reports: the stand-in's Kubernetes API, with its CA.
    assert_eq!(access.server, a.standin.kube().url());
    assert!(access.args.windows(2).any(|w| w == ["--login", "spn"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_operation_brings_its_arm_error_to_the_user() {
    let a = Azure::with(Duration::from_millis(200), |w| {
        w.fail_next_create = Some("VMExtensionProvisioningError: node bootstrap failed".into());
    });
    let dir = tempfile::tempdir().unwrap();
    let def = definition(&a, dir.path(), "digibee-acme");
    let e = a.provider().create_cluster(&def).await.unwrap_err();
    assert_eq!(e.code.as_deref(), Some("VMExtensionProvisioningError"));
    assert!(e.message.contains("node bootstrap failed"), "{e}");
    assert!(!e.kind.retryable(), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_waits_as_long_as_retry_after_asks() {
    let a = Azure::with(Duration::ZERO, |w| {
        w.retry_after = 2;
        w.throttle.insert(CLUSTER_READ.into(), 1);
    });
    let p = Retrying::new(
        a.provider(),
        RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(10),
        },
    );
    let t = Instant::now();
    assert!(p.cluster("digibee-acme").await.unwrap().is_none());
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    let reads: Vec<_> = a
        .world()
        .calls
        .iter()
        .filter(|c| c.op == CLUSTER_READ)
        .map(|c| (c.at, c.throttled))
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert!(reads[0].1 && !reads[1].1);
    assert!(
        reads[1].0 - reads[0].0 >= Duration::from_secs(2),
        "{reads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_and_expired_client_secrets_are_credential_errors_by_aadsts_code() {
    let a = Azure::start(Duration::ZERO);
    let e = AksProvider::new(a.settings("wrong-secret"))
        .unwrap()
        .identity()
        .await
        .unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::ExpiredCredentials, "{e}");
    assert_eq!(e.code.as_deref(), Some("AADSTS7000215"), "{e}");
    a.world()
        .apps
        .get_mut(azure::INSTALLER_APP)
        .unwrap()
        .secret_expired = true;
    let e = a.provider().identity().await.unwrap_err();
    assert_eq!(e.code.as_deref(), Some("AADSTS7000222"), "{e}");
    assert!(
        e.to_string().contains("help: refresh the credentials"),
        "{e}"
    );
    let mut s = a.settings(SECRET);
    s.env.tenant_id = Some("00000000-0000-4000-8000-00000000ffff".into());
    let e = AksProvider::new(s).unwrap().identity().await.unwrap_err();
    assert_eq!(e.code.as_deref(), Some("AADSTS90002"), "{e}");
    // An ARM answer to a token it no longer takes.
    a.world()
        .apps
        .get_mut(azure::INSTALLER_APP)
        .unwrap()
        .secret_expired = false;
    let p = a.provider();
    p.cluster("x").await.unwrap();
    a.world().tokens_expired = true;
    let e = p.cluster("x").await.unwrap_err();
    assert_eq!(e.code.as_deref(), Some("ExpiredAuthenticationToken"));
    assert_eq!(e.kind, CloudErrorKind::ExpiredCredentials);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_role_and_a_quota_are_their_own_kinds_naming_the_action() {
    let a = Azure::start(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let def = definition(&a, dir.path(), "digibee-acme");
    a.world().deny(WRITE);
    let e = a.provider().create_cluster(&def).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::AccessDenied);
    assert_eq!(e.code.as_deref(), Some("AuthorizationFailed"));
    assert!(e.message.contains(WRITE), "{e}");
    let a = Azure::with(Duration::ZERO, |w| {
        w.quotas.get_mut("cores").unwrap().limit = 8.0;
    });
    let e = a.provider().create_cluster(&def).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::QuotaExceeded, "{e}");
    assert!(a.world().clusters.is_empty());
}

fn foreign(name: &str) -> Cluster {
    Cluster {
        name: name.into(),
        version: "1.30".into(),
        api: Default::default(),
        subnets: vec![],
        identity: None,
        tags: [("owner".to_owned(), "someone-else".to_owned())].into(),
        created: Instant::now(),
        created_epoch: 0.0,
        fail: None,
        deleting: false,
        updating: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_made_between_describe_and_create_is_never_overwritten() {
    let a = Azure::with(Duration::ZERO, |w| w.ambush = Some(foreign("digibee-acme")));
    let dir = tempfile::tempdir().unwrap();
    let def = definition(&a, dir.path(), "digibee-acme");
    let p = a.provider();
    assert!(p.cluster("digibee-acme").await.unwrap().is_none());
    let e = p.create_cluster(&def).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::Conflict, "{e}");
    assert_eq!(e.status, Some(412));
    let w = a.world();
    assert_eq!(w.clusters["digibee-acme"].tags["owner"], "someone-else");
    assert_eq!(w.clusters["digibee-acme"].version, "1.30");
    assert!(w.pools.is_empty(), "nothing of ours was added to it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_outside_the_trust_store_is_refused_before_any_secret_is_sent() {
    let a = Azure::start(Duration::ZERO);
    let mut s = a.settings(SECRET);
    s.extra_roots.clear();
    let e = AksProvider::new(s).unwrap().identity().await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::Unavailable, "{e}");
    assert_eq!(
        a.world().count("login:token"),
        0,
        "no token request arrived"
    );
    // And plain http to a host that is not loopback is refused where the client is built.
    let mut s = a.settings(SECRET);
    s.endpoint = Some("http://management.example.com".into());
    let e = AksProvider::new(s).err().unwrap();
    assert_eq!(e.kind, CloudErrorKind::RefusedDestination);
}

/// The auditor's report of `state` in `format`.
use crate::cloud_install::report_of;

pub(crate) fn install_cmd(
    a: &Azure,
    spec: &Path,
    state: &Path,
    pb: &Path,
) -> std::process::Command {
    crate::cloud_install::install_cmd(&a.env(), spec, state, pb)
}

fn install(a: &Azure, spec: &Path, state: &Path, pb: &Path) -> (i32, String, String) {
    crate::cloud_install::install(&a.env(), spec, state, pb)
}

fn install_approved(a: &Azure, spec: &Path, state: &Path, pb: &Path) -> (i32, String, String) {
    crate::cloud_install::install_approved(&a.env(), spec, state, pb)
}

#[test]
fn the_binary_installs_on_the_stand_in_writes_no_secret_and_a_rerun_adopts() {
    let a = Azure::start(Duration::from_millis(1500));
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&a, dir.path(), "digibee-acme");
    let pb = cloud_playbook(dir.path());
    let state = dir.path().join("state");
    let mut printed = String::new();
    let (code, out, err) = install(&a, &spec, &state, &pb);
    printed.push_str(&out);
    printed.push_str(&err);
    assert_eq!(code, 3, "stops at the gate: {out}\n{err}");
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    let (code, out, err) = install(&a, &spec, &state, &pb);
    printed.push_str(&out);
    printed.push_str(&err);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(a.standin.clusters(), ["digibee-acme (node pools: workers)"]);
    assert_eq!(a.puts(), 1);
    let kubeconfig = std::fs::read_to_string(state.join("kubeconfig")).unwrap();
    assert!(
        kubeconfig.contains("command: \"kubelogin\""),
        "{kubeconfig}"
    );
    assert!(
        !kubeconfig
            .lines()
            .any(|l| l.trim_start().starts_with("token:")),
        "{kubeconfig}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state.join("kubeconfig"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The identity is recorded, never the secret.
    let report = report_of(&state, "md");
    assert!(
        report.contains(azure::INSTALLER_OBJECT),
        "the principal is in the report"
    );
    printed.push_str(&report);
    // A second state folder adopts what the first built: nothing new is created.
    let state2 = dir.path().join("state2");
    let (code, out, err) = install_approved(&a, &spec, &state2, &pb);
    printed.push_str(&out);
    printed.push_str(&err);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(a.puts(), 1, "adopted, not created again");
    let report2 = report_of(&state2, "md");
    assert!(
        report2.contains("cluster digibee-acme adopted"),
        "{report2}"
    );
    printed.push_str(&report2);
    // The canary secret in no file and no output, plain, base64 or URL-encoded.
    assert_nowhere(SECRET, &[&printed], &[dir.path()]);
}

#[test]
fn a_same_named_foreign_cluster_is_refused_and_left_untouched() {
    let a = Azure::with(Duration::ZERO, |w| {
        w.clusters
            .insert("digibee-acme".into(), foreign("digibee-acme"));
    });
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&a, dir.path(), "digibee-acme");
    let pb = cloud_playbook(dir.path());
    let (code, out, err) = install_approved(&a, &spec, &dir.path().join("state"), &pb);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("already exists and it has no realmctl-realm tag"),
        "{out}\n{err}"
    );
    assert_eq!(a.puts(), 0, "never written to");
    assert_eq!(
        a.world().clusters["digibee-acme"].tags["owner"],
        "someone-else"
    );
}

#[test]
fn workload_identity_answers_and_its_federated_token_is_never_written() {
    const FEDERATED: &str = "eyJhbGciOiJSUzI1NiJ9.federated-canary-token.c2ln";
    let a = Azure::with(Duration::ZERO, |w| {
        w.apps.get_mut(azure::INSTALLER_APP).unwrap().federated = Some(FEDERATED.into());
    });
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("federated-token");
    std::fs::write(&token_file, FEDERATED).unwrap();
    let spec = write_spec(&a, dir.path(), "digibee-acme");
    let pb = cloud_playbook(dir.path());
    let state = dir.path().join("state");
    let mut c = install_cmd(&a, &spec, &state, &pb);
    c.env_remove("AZURE_CLIENT_SECRET")
        .env("AZURE_FEDERATED_TOKEN_FILE", &token_file)
        .args(["--until", "3"]);
    let o = c.output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let report = report_of(&state, "json");
    assert!(
        report.contains("workload identity (AZURE_FEDERATED_TOKEN_FILE)"),
        "{report}"
    );
    std::fs::remove_file(&token_file).unwrap();
    assert_nowhere(FEDERATED, &[&out, &err, &report], &[dir.path()]);
}

#[test]
fn a_managed_identity_answers_and_its_identity_header_is_never_written() {
    const HEADER: &str = "msi-canary-identity-header/+=";
    const MSI_OBJECT: &str = "00000000-0000-4000-8000-0000000000f1";
    let a = Azure::with(Duration::ZERO, |w| {
        w.managed_identity = Some((HEADER.into(), MSI_OBJECT.into()));
    });
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&a, dir.path(), "digibee-acme");
    let pb = cloud_playbook(dir.path());
    let state = dir.path().join("state");
    let mut c = install_cmd(&a, &spec, &state, &pb);
    // No secret, no federated token: the chain reaches managed identity (App Service's
    // endpoint protocol, which azure_identity reads from IDENTITY_ENDPOINT/IDENTITY_HEADER).
    c.env_remove("AZURE_CLIENT_SECRET")
        .env_remove("AZURE_CLIENT_ID")
        .env(
            "IDENTITY_ENDPOINT",
            format!("{}/msi/token", a.standin.url()),
        )
        .env("IDENTITY_HEADER", HEADER)
        .args(["--until", "3"]);
    let o = c.output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert_eq!(
        a.world().count("login:managed-identity"),
        1,
        "one token, cached"
    );
    assert_eq!(a.world().count("login:token"), 0);
    let report = report_of(&state, "json");
    assert!(report.contains("managed identity"), "{report}");
    assert!(report.contains(MSI_OBJECT), "{report}");
    assert_nowhere(HEADER, &[&out, &err, &report], &[dir.path()]);
}

#[test]
fn demo_cloud_aks_runs_every_phase_and_says_it_is_a_simulation() {
    let dir = tempfile::tempdir().unwrap();
    let o = realmctl()
        .args(["demo", "--cloud", "aks", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.starts_with("SIMULATION: nothing here touches a real cloud."),
        "{out}"
    );
    assert!(out.contains("0 failed"), "{out}");
    assert!(out.contains("all six phases are done"), "{out}");
    assert!(
        out.contains("Simulated aks cluster(s): digibee-demo (node pools: workers)"),
        "{out}"
    );
}

/// SIGKILL at every step boundary, at the points around the create, and while the creation's
/// operation is being polled: exactly one cluster with one pool, made by exactly one PUT.
#[cfg(feature = "test-actions")]
#[test]
fn sigkill_anywhere_leaves_exactly_one_cluster_on_the_stand_in() {
    let a = Azure::start(Duration::from_millis(1200));
    crate::cloud_install::sigkill_anywhere(&a.standin, &a.env(), WRITE, &|dir, name| {
        write_spec(&a, dir, name)
    });
}
