//! GKE end to end on the stand-in crate's Google adapter (issue #18): Google's own GKE client
//! and google-cloud-auth against a server that follows Google's published REST protocol, with
//! endpoints taken only from the spec and the credential file. Creations that take several
//! polls, an operation DONE with an error, throttling and quota (RESOURCE_EXHAUSTED), a denied
//! permission named, invalid and expired credentials, adoption, a same-named foreign cluster
//! (also one made between describe and create), a 404 on describe, impersonation, the metadata
//! server, SIGKILL anywhere, and a canary service-account key.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use realmctl::cloud::facts::{Lookup, Status};
use realmctl::cloud::gke::credential::{CredentialFile, GoogleEnv};
use realmctl::cloud::gke::{Endpoints, GkeProvider, GkeSettings};
use realmctl::cloud::poll::Backoff;
use realmctl::cloud::retry::{RetryPolicy, Retrying};
use realmctl::cloud::{
    AccountInspector, CloudErrorKind, ClusterManager, IdentitySource, PermissionChecker,
};
use realmctl_standins::{Cluster, StandIn, World, google};

use crate::common::{assert_nowhere, realmctl};
use crate::engine_support::{approve, cloud_playbook, text};

pub(crate) const PROJECT: &str = "digibee-acme-realm";
const REGION: &str = "europe-west1";
const CREATE: &str = "gke:CreateCluster";
const OPERATION: &str = "gke:GetOperation";

/// The Google stand-in on a runtime of its own, with the installer's key file.
pub(crate) struct Google {
    pub(crate) standin: StandIn,
    key: serde_json::Value,
    key_file: PathBuf,
    _dir: tempfile::TempDir,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Google {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A fast operation poll for tests: 100 ms doubling to 400 ms.
const FAST: Backoff = Backoff {
    first: Duration::from_millis(100),
    factor: 2,
    cap: Duration::from_millis(400),
};

impl Google {
    pub(crate) fn start(create_delay: Duration) -> Self {
        Self::with(create_delay, |_| {})
    }

    pub(crate) fn with(create_delay: Duration, shape: impl FnOnce(&mut World)) -> Self {
        let mut w = google::sample(PROJECT, REGION);
        w.create_delay = create_delay;
        shape(&mut w);
        let (rt, standin) = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let standin = rt.block_on(StandIn::google(w)).unwrap();
            (rt, standin)
        })
        .join()
        .unwrap();
        let key = google::service_account_key(
            &mut standin.world(),
            &google::installer(PROJECT),
            &format!("{}/token", standin.url()),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("installer-key.json");
        std::fs::write(&key_file, key.to_string()).unwrap();
        Google {
            standin,
            key,
            key_file,
            _dir: dir,
            rt: Some(rt),
        }
    }

    pub(crate) fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.standin.world()
    }

    fn settings(&self, file: Option<serde_json::Value>) -> GkeSettings {
        GkeSettings {
            endpoints: Endpoints::all_at(&self.standin.url()),
            env: GoogleEnv {
                file: file.map(|json| CredentialFile {
                    origin: "test".into(),
                    json,
                }),
                metadata_root: Some(self.standin.url()),
            },
            operation_poll: FAST,
            ..GkeSettings::new(PROJECT, REGION)
        }
    }

    pub(crate) async fn provider_now(&self) -> GkeProvider {
        self.provider().await
    }

    async fn provider(&self) -> GkeProvider {
        GkeProvider::new(self.settings(Some(self.key.clone()))).unwrap()
    }

    /// The private key's body: the canary that must never be written down.
    fn private_key(&self) -> String {
        let pem = self.key["private_key"].as_str().unwrap();
        pem.lines().filter(|l| !l.starts_with("-----")).collect()
    }

    /// The variables Google tools read, pointing the binary at the stand-in.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![(
            "GOOGLE_APPLICATION_CREDENTIALS",
            self.key_file.display().to_string(),
        )]
    }

    fn creates(&self) -> usize {
        self.world().count(CREATE)
    }
}

/// A spec of realm `acme` on the stand-in's sample project.
pub(crate) fn write_spec(g: &Google, dir: &Path, cluster: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("certs/wildcard.pem"), "x").unwrap();
    std::fs::write(dir.join("certs/wildcard.key"), TLS_KEY).unwrap();
    let text = format!(
        r#"apiVersion: realmctl/v1
kind: Realm
name: acme
cloud:
  provider: gke
  region: {REGION}
  endpoint: "{url}"
  gke: {{project: {PROJECT}, network: digibee-vpc, subnetwork: nodes, podsRange: pods, servicesRange: services{extra}}}
  cluster: {{name: {cluster}, kubernetesVersion: "1.31"}}
domains: {{base: digibee.acme.test}}
certificate: {{cert: certs/wildcard.pem, key: certs/wildcard.key}}
subscription: {{pipelineSubscriptions: 2}}
"#,
        url = g.standin.url(),
    );
    let path = dir.join("realm.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn definition(
    g: &Google,
    dir: &Path,
    cluster: &str,
) -> realmctl::cloud::definition::ClusterDefinition {
    let spec = write_spec(g, dir, cluster, "");
    realmctl::cloud::access::definition(&realmctl::spec::load(&spec).unwrap())
}

fn required(spec: &realmctl::spec::Spec) -> Vec<realmctl::cloud::facts::RequiredPermission> {
    realmctl::cloud::permissions::required(
        &realmctl::cloud::permissions::roles_of(spec),
        &realmctl::cloud::permissions::Vars::for_spec(spec),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reads_identity_project_and_permissions() {
    let g = Google::start(Duration::from_millis(100));
    let p = g.provider().await;
    let id = p.identity().await.unwrap();
    assert_eq!(id.principal, google::installer(PROJECT));
    assert!(id.source.contains("client_email"), "{}", id.source);
    assert_eq!(id.account, PROJECT);

    let dir = tempfile::tempdir().unwrap();
    let spec = realmctl::spec::load(&write_spec(&g, dir.path(), "digibee-acme", "")).unwrap();
    let def = realmctl::cloud::access::definition(&spec);
    let ask = realmctl::cloud::profile::of(&spec).account(
        &spec,
        &def,
        &realmctl::cloud::sizing::for_realm(realmctl::spec::Provider::Gke, &spec.subscription),
    );
    let f = p.account(&ask.query).await.unwrap();
    assert_eq!(f.subnets.len(), 1);
    assert_eq!(f.subnets[0].network, "digibee-vpc");
    assert_eq!(f.subnets[0].free_addresses, 4092);
    assert_eq!(f.subnets[0].secondary_ranges, ["pods", "services"]);
    assert!(f.services.iter().all(|s| s.enabled == Lookup::Found(true)));
    assert!(matches!(&f.versions, Lookup::Found(v) if v.iter().any(|x| x.starts_with("1.31."))));
    let cpus = f.quotas.iter().find(|q| q.code == "CPUS").unwrap();
    assert_eq!(cpus.limit, Lookup::Found(96.0));

    // A disabled API is reported, not an error; a project that is not ACTIVE is an error.
    g.world()
        .services
        .insert("container.googleapis.com".into(), false);
    let f = p.account(&ask.query).await.unwrap();
    let c = f
        .services
        .iter()
        .find(|s| s.name == "container.googleapis.com")
        .unwrap();
    assert_eq!(c.enabled, Lookup::Found(false));
    g.world().account_state = "DELETE_REQUESTED".into();
    let e = p.account(&ask.query).await.unwrap_err();
    assert!(e.message.contains("DELETE_REQUESTED"), "{e}");
    g.world().account_state = "ACTIVE".into();

    // testIamPermissions: everything, then one permission taken away.
    let req = required(&spec);
    let facts = p.missing_permissions(&req).await.unwrap();
    assert!(facts.missing.is_empty(), "{:?}", facts.missing);
    assert_eq!(facts.checked, req.len());
    g.world().deny("container.clusters.create");
    let facts = p.missing_permissions(&req).await.unwrap();
    let missing: Vec<&str> = facts.missing.iter().map(|m| m.action.as_str()).collect();
    assert_eq!(missing, ["container.clusters.create"]);

    // A denied call names the permission Google checked.
    let def = definition(&g, dir.path(), "digibee-acme");
    let e = p.create_cluster(&def).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::AccessDenied);
    assert!(e.message.contains("container.clusters.create"), "{e}");
    assert_eq!(e.code.as_deref(), Some("PERMISSION_DENIED"));

    // A 404 on describe is "no such cluster", for the cluster and its pools alike.
    assert!(p.cluster("nope").await.unwrap().is_none());
    assert!(p.node_pool("nope", "workers").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_takes_several_polls_and_describes_back_as_its_definition() {
    let g = Google::start(Duration::from_millis(900));
    let dir = tempfile::tempdir().unwrap();
    let def = definition(&g, dir.path(), "digibee-acme");
    let p = g.provider().await;
    let t = Instant::now();
    p.create_cluster(&def).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(900), "waited for DONE");
    let polls: Vec<Duration> = g
        .world()
        .calls
        .iter()
        .filter(|c| c.op == OPERATION)
        .map(|c| c.at)
        .collect();
    assert!(polls.len() >= 3, "several polls: {polls:?}");
    // Backoff: each interval at least the policy's, never shorter.
    for (i, w) in polls.windows(2).enumerate() {
        let want = FAST.delay(u32::try_from(i + 1).unwrap(), false);
        assert!(
            w[1] - w[0] >= want,
            "poll {i}: {:?} < {want:?}",
            w[1] - w[0]
        );
    }
    let c = p.cluster("digibee-acme").await.unwrap().unwrap();
    assert_eq!(c.status, Status::Active);
    assert_eq!(
        realmctl::cloud::definition::compare_cluster(&def.cluster, &c.described),
        vec![]
    );
    assert!(c.endpoint.as_deref().unwrap().starts_with("https://"));
    assert!(c.certificate_authority.is_some());
    let pool = p
        .node_pool("digibee-acme", "workers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        realmctl::cloud::definition::compare_pool(&def.pools[0].nodes, &pool.described),
        vec![]
    );
    // What was sent: a VPC-native cluster on the named ranges, with the realm's labels.
    let w = g.world();
    let sent = &w.documents["gke:cluster:digibee-acme"];
    assert_eq!(
        sent["ipAllocationPolicy"]["clusterSecondaryRangeName"],
        "pods"
    );
    assert_eq!(sent["resourceLabels"]["realmctl-realm"], "acme");
    assert_eq!(sent["initialClusterVersion"], "1.31");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_done_with_an_error_brings_its_status_to_the_user() {
    let g = Google::with(Duration::from_millis(200), |w| {
        w.fail_next_create = Some("FAILED_PRECONDITION: the subnetwork has no room".into());
    });
    let dir = tempfile::tempdir().unwrap();
    let def = definition(&g, dir.path(), "digibee-acme");
    let e = g.provider().await.create_cluster(&def).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::Invalid);
    assert_eq!(e.code.as_deref(), Some("FAILED_PRECONDITION"));
    assert!(e.message.contains("the subnetwork has no room"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_exhausted_is_a_wait_for_rates_and_a_quota_when_a_quota_failed() {
    let g = Google::start(Duration::ZERO);
    g.world().throttle.insert("gke:GetCluster".into(), 2);
    let p = Retrying::new(
        g.provider().await,
        RetryPolicy {
            base: Duration::from_millis(10),
            ..RetryPolicy::default()
        },
    );
    assert!(p.cluster("digibee-acme").await.unwrap().is_none());
    assert_eq!(
        g.world()
            .calls
            .iter()
            .filter(|c| c.op == "gke:GetCluster" && c.throttled)
            .count(),
        2
    );
    // A quota too small for the pools at their maximum.
    g.world().quotas.get_mut("CPUS").unwrap().limit = 8.0;
    let dir = tempfile::tempdir().unwrap();
    let def = definition(&g, dir.path(), "digibee-acme");
    let e = p.create_cluster(&def).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::QuotaExceeded, "{e}");
    assert!(g.world().clusters.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_and_expired_credentials_are_credential_errors() {
    let g = Google::start(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let spec = realmctl::spec::load(&write_spec(&g, dir.path(), "digibee-acme", "")).unwrap();
    let req = required(&spec);
    // A service-account key that was disabled: every call is UNAUTHENTICATED.
    for k in g.world().service_account_keys.values_mut() {
        k.disabled = true;
    }
    let e = g
        .provider()
        .await
        .missing_permissions(&req)
        .await
        .unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::ExpiredCredentials, "{e}");
    // gcloud's user credentials whose refresh token the token endpoint refuses (its
    // `token_uri` from the file).
    g.world().refresh_tokens.insert(
        "1//refresh-canary".into(),
        ("user@example.com".into(), true),
    );
    let user = serde_json::json!({"type": "authorized_user", "client_id": "c", "client_secret": "s",
        "refresh_token": "1//refresh-canary", "token_uri": format!("{}/token", g.standin.url())});
    let p = GkeProvider::new(g.settings(Some(user))).unwrap();
    let e = p.identity().await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::ExpiredCredentials, "{e}");
    // Issued tokens that expired.
    g.world().refresh_tokens.insert(
        "1//refresh-canary".into(),
        ("user@example.com".into(), false),
    );
    g.world().tokens_expired = true;
    let e = p.missing_permissions(&req).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::ExpiredCredentials, "{e}");
}

fn foreign(name: &str) -> Cluster {
    Cluster {
        name: name.into(),
        version: "1.31".into(),
        api: realmctl_standins::ApiEndpoint {
            private: true,
            public: false,
            public_cidrs: vec![],
        },
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
async fn a_cluster_made_between_describe_and_create_is_a_conflict_and_untouched() {
    let g = Google::with(Duration::ZERO, |w| w.ambush = Some(foreign("digibee-acme")));
    let dir = tempfile::tempdir().unwrap();
    let def = definition(&g, dir.path(), "digibee-acme");
    let e = g.provider().await.create_cluster(&def).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::Conflict);
    assert_eq!(
        g.world().clusters["digibee-acme"].tags["owner"],
        "someone-else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_file_naming_plain_http_off_loopback_is_refused_before_any_call() {
    let g = Google::start(Duration::ZERO);
    let user = serde_json::json!({"type": "authorized_user", "client_id": "c", "client_secret": "s",
        "refresh_token": "r", "token_uri": "http://oauth2.example.com/token"});
    let e = GkeProvider::new(g.settings(Some(user))).err().unwrap();
    assert_eq!(e.kind, CloudErrorKind::RefusedDestination);
    let mut s = g.settings(Some(g.key.clone()));
    s.endpoints.container = "http://container.example.com".into();
    let e = GkeProvider::new(s).err().unwrap();
    assert_eq!(e.kind, CloudErrorKind::RefusedDestination);
    assert!(g.world().calls.is_empty(), "nothing was sent");
}

use crate::cloud_install::report_of;

pub(crate) fn install_cmd(
    g: &Google,
    spec: &Path,
    state: &Path,
    pb: &Path,
) -> std::process::Command {
    crate::cloud_install::install_cmd(&g.env(), spec, state, pb)
}

fn install(g: &Google, spec: &Path, state: &Path, pb: &Path) -> (i32, String, String) {
    crate::cloud_install::install(&g.env(), spec, state, pb)
}

fn install_approved(g: &Google, spec: &Path, state: &Path, pb: &Path) -> (i32, String, String) {
    crate::cloud_install::install_approved(&g.env(), spec, state, pb)
}

/// The realm's TLS private key (a canary: it must reach the cluster's Secret and nothing else).
const TLS_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\ncanary-tls-private-key-6f1e2d\n-----END PRIVATE KEY-----\n";

#[test]
fn the_binary_installs_on_the_stand_in_writes_no_key_and_a_rerun_adopts() {
    let g = Google::start(Duration::from_millis(1500));
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&g, dir.path(), "digibee-acme", "");
    let pb = cloud_playbook(dir.path());
    let state = dir.path().join("state");
    let mut printed = String::new();
    let (code, out, err) = install(&g, &spec, &state, &pb);
    printed.push_str(&out);
    printed.push_str(&err);
    assert_eq!(code, 3, "stops at the gate: {out}\n{err}");
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    let (code, out, err) = install(&g, &spec, &state, &pb);
    printed.push_str(&out);
    printed.push_str(&err);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(g.standin.clusters(), ["digibee-acme (node pools: workers)"]);
    assert_eq!(g.creates(), 1);
    // The platform is in the cluster, applied with the install's own Google identity, and the
    // TLS Secret holds the customer's key.
    {
        let kube = g.standin.kube();
        let mut w = kube.world();
        let names: Vec<String> = w.cluster.keys().into_iter().map(|k| k.name).collect();
        for n in [
            "digibee-system",
            "digibee-edge",
            "digibee-platform-operator",
            "realmconfigs.platform.digibee.io",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
        }
        assert!(w.calls.iter().all(|c| c.user == google::installer(PROJECT)));
        let t = w.cluster.find("", "secrets").unwrap();
        let secret = w
            .cluster
            .get(&t, "digibee-system", "digibee-wildcard-tls")
            .unwrap();
        use base64::Engine as _;
        assert_eq!(
            secret["data"]["tls.key"],
            base64::engine::general_purpose::STANDARD.encode(TLS_KEY)
        );
    }
    assert!(
        report_of(&state, "md").contains("objects of digibee-platform"),
        "the report names the platform step"
    );
    let kubeconfig = std::fs::read_to_string(state.join("kubeconfig")).unwrap();
    assert!(
        kubeconfig.contains("command: \"gke-gcloud-auth-plugin\""),
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
    let report = report_of(&state, "md");
    assert!(
        report.contains(&google::installer(PROJECT)),
        "the principal is in the report"
    );
    printed.push_str(&report);
    // A second state folder adopts what the first built.
    let state2 = dir.path().join("state2");
    let (code, out, err) = install_approved(&g, &spec, &state2, &pb);
    printed.push_str(&out);
    printed.push_str(&err);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(g.creates(), 1, "adopted, not created again");
    let report2 = report_of(&state2, "md");
    assert!(
        report2.contains("cluster digibee-acme adopted"),
        "{report2}"
    );
    printed.push_str(&report2);
    // The key file is the user's; everything realmctl wrote is scanned.
    assert_nowhere(&g.private_key(), &[&printed], &[dir.path()]);
    assert_nowhere(
        "canary-tls-private-key-6f1e2d",
        &[&printed],
        &[&state, &state2],
    );
}

#[test]
fn a_same_named_foreign_cluster_is_refused_and_left_untouched() {
    let g = Google::with(Duration::ZERO, |w| {
        w.clusters
            .insert("digibee-acme".into(), foreign("digibee-acme"));
    });
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&g, dir.path(), "digibee-acme", "");
    let pb = cloud_playbook(dir.path());
    let (code, out, err) = install_approved(&g, &spec, &dir.path().join("state"), &pb);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("already exists and it has no realmctl-realm tag"),
        "{out}\n{err}"
    );
    assert_eq!(g.creates(), 0, "never written to");
    assert_eq!(
        g.world().clusters["digibee-acme"].tags["owner"],
        "someone-else"
    );
}

#[test]
fn an_impersonated_account_acts_and_is_named_as_the_principal() {
    let target = format!("realm-builder@{PROJECT}.iam.gserviceaccount.com");
    let g = Google::with(Duration::ZERO, |w| {
        w.service_accounts
            .insert(format!("realm-builder@{PROJECT}.iam.gserviceaccount.com"));
    });
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        &g,
        dir.path(),
        "digibee-acme",
        &format!(", impersonate: \"{target}\""),
    );
    let pb = cloud_playbook(dir.path());
    let state = dir.path().join("state");
    // With every log on (-vv: also the SDKs' and HTTP clients'), the key stays out of them.
    let o = install_cmd(&g, &spec, &state, &pb)
        .args(["--until", "3", "-vv"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(g.world().count("iam:GenerateAccessToken") >= 1);
    // No bearer token in the logs either: neither the key's signed JWTs nor issued tokens.
    let issued: Vec<String> = g.world().tokens.keys().cloned().collect();
    assert!(!issued.is_empty());
    for t in &issued {
        assert!(!err.contains(t.as_str()), "an issued token was logged");
    }
    assert!(!err.contains("eyJ"), "a JWT was logged");
    assert!(err.contains("DEBUG"), "the logs were on: {err}");
    let report = report_of(&state, "json");
    assert!(report.contains(&target), "{report}");
    assert!(report.contains("cloud.gke.impersonate"), "{report}");
    assert_nowhere(&g.private_key(), &[&out, &err, &report], &[dir.path()]);
}

#[test]
fn the_metadata_server_answers_when_no_credential_file_is_given() {
    let sa = format!("node-default@{PROJECT}.iam.gserviceaccount.com");
    let g = Google::with(Duration::ZERO, |w| {
        w.managed_identity = Some((
            String::new(),
            format!("node-default@{PROJECT}.iam.gserviceaccount.com"),
        ));
    });
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&g, dir.path(), "digibee-acme", "");
    let pb = cloud_playbook(dir.path());
    let state = dir.path().join("state");
    let host = g.standin.url().trim_start_matches("http://").to_owned();
    let mut c = install_cmd(&g, &spec, &state, &pb);
    c.env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env("GCE_METADATA_HOST", host)
        .args(["--until", "3"]);
    let o = c.output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(g.world().count("metadata:get") >= 2, "token and email");
    let report = report_of(&state, "json");
    assert!(report.contains(&sa), "{report}");
    assert!(report.contains("metadata server"), "{report}");
}

#[test]
fn demo_cloud_gke_runs_every_phase_and_says_it_is_a_simulation() {
    let dir = tempfile::tempdir().unwrap();
    let o = realmctl()
        .args(["demo", "--cloud", "gke", "--dir"])
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
        out.contains("Simulated gke cluster(s): digibee-demo (node pools: workers)"),
        "{out}"
    );
}

/// SIGKILL at every step boundary, at the points around the create, and while the creation's
/// operation is polled: exactly one cluster with one pool, made by exactly one
/// `clusters.create`.
#[cfg(feature = "test-actions")]
#[test]
fn sigkill_anywhere_leaves_exactly_one_cluster_on_the_stand_in() {
    // Room in the quota for one cluster per case.
    let g = Google::with(Duration::from_millis(1200), |w| {
        w.quotas.get_mut("CPUS").unwrap().limit = 100_000.0;
    });
    crate::cloud_install::sigkill_anywhere(&g.standin, &g.env(), CREATE, &|dir, name| {
        write_spec(&g, dir, name, "")
    });
}

/// `plan` builds the GKE client and stays offline: with no credential file, the metadata
/// server (a listener that counts connections) is never asked, not even for the universe
/// domain, and no Google API is called.
#[test]
fn plan_makes_no_call_even_on_metadata_server_credentials() {
    let g = Google::start(Duration::ZERO);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&g, dir.path(), "digibee-acme", "");
    let o = realmctl_std_plan(&spec, &dir.path().join("state"))
        .env("GCE_METADATA_HOST", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("IAM custom role"), "{out}");
    assert!(
        listener.accept().is_err(),
        "the metadata server was contacted"
    );
    assert!(g.world().calls.is_empty(), "{:?}", g.world().calls);
}

fn realmctl_std_plan(spec: &Path, state: &Path) -> std::process::Command {
    let mut c = crate::common::realmctl_std();
    c.args(["plan", "-f"]).arg(spec).arg("--state").arg(state);
    c
}
