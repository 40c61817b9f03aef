//! Artifacts in Azure Blob storage with the identity of the AKS calls (issue #17), against
//! Azurite (npm `azurite`, pinned in `scripts/test.sh`), the storage emulator nobody here wrote:
//! HTTPS with a test CA, OAuth on (`--oauth basic`: Azurite checks each bearer token's issuer,
//! audience and lifetime). The tokens come from azure_identity's client-secret credential
//! against the stand-in's token endpoint, through the AKS provider's credential chain.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use realmctl::cloud::aks::credential::AzureEnv;
use realmctl::cloud::aks::{AksProvider, AksSettings};
use realmctl::cloud::{Cloud, StorageCredentials};
use realmctl::engine::io::store::object::{CloudAccess, ObjectStore};
use realmctl_standins::{StandIn, azure};

use crate::common::{Pki, free_port};

const SECRET: &str = "blob-canary-client-secret";
const ACCOUNT: &str = "devstoreaccount1";

/// Azurite's blob service, killed on drop.
struct Azurite {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `scripts/test.sh` installs Azurite.
fn azurite_bin() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-peers/node_modules/.bin/azurite-blob");
    assert!(
        p.exists(),
        "{} is missing: run ./scripts/test.sh, which installs Azurite",
        p.display()
    );
    p
}

fn azurite(pki: &Pki) -> Azurite {
    let dir = tempfile::tempdir().unwrap();
    let leaf = pki.leaf(&["127.0.0.1".to_owned(), "localhost".to_owned()]);
    std::fs::write(dir.path().join("cert.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &leaf.key_pem).unwrap();
    let port = free_port();
    let mut child = Command::new(azurite_bin())
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .args([
            "--oauth",
            "basic",
            "--silent",
            "--skipApiVersionCheck",
            "--location",
        ])
        .arg(dir.path().join("data"))
        .arg("--cert")
        .arg(dir.path().join("cert.pem"))
        .arg("--key")
        .arg(dir.path().join("key.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Azurite {
                child,
                port,
                _dir: dir,
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("Azurite did not listen on 127.0.0.1:{port}");
}

/// Creates the container `artifacts` (the customer's, before the install) with the storage
/// token of `cloud`'s identity.
async fn create_container(cloud: &dyn Cloud, http: &reqwest::Client, endpoint: &str) {
    let Some(StorageCredentials::AzureBearer { token }) =
        cloud.storage_credentials().await.unwrap()
    else {
        panic!("the AKS provider gives Azure Storage tokens");
    };
    let r = http
        .put(format!("{endpoint}/artifacts?restype=container"))
        .bearer_auth(token.expose())
        .header("x-ms-version", "2025-11-05")
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_go_to_azure_blob_with_the_tokens_of_the_aks_identity() {
    let pki = Pki::new();
    let blob = azurite(&pki);
    let standin = StandIn::azure(azure::sample(
        "00000000-0000-4000-8000-0000000000a5",
        "00000000-0000-4000-8000-00000000d1e0",
        "eastus",
        "digibee-acme",
        SECRET,
    ))
    .await
    .unwrap();
    let provider = AksProvider::new(AksSettings {
        endpoint: Some(standin.url()),
        env: AzureEnv {
            tenant_id: Some("00000000-0000-4000-8000-00000000d1e0".into()),
            client_id: Some(azure::INSTALLER_APP.into()),
            client_secret: Some(realmctl::secret::Secret::new(SECRET)),
            federated_token_file: None,
            authority_host: Some(standin.url()),
        },
        extra_roots: vec![standin.ca_pem().unwrap().to_owned()],
        ..AksSettings::new(
            "eastus",
            "00000000-0000-4000-8000-0000000000a5",
            "digibee-acme",
            "00000000-0000-4000-8000-00000000d1e0",
        )
    })
    .unwrap();
    let cloud: Arc<dyn Cloud> = Arc::new(provider);
    let endpoint = format!("https://127.0.0.1:{}/{ACCOUNT}", blob.port);
    let http = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(pki.root_pem().as_bytes()).unwrap()])
        .build()
        .unwrap();

    // The customer's container (created here with the same identity's storage token).
    create_container(cloud.as_ref(), &http, &endpoint).await;

    let access = CloudAccess {
        cloud: cloud.clone(),
        region: "eastus".into(),
        endpoint: None,
        extra_roots: vec![pki.root_pem()],
    };
    let options = vec![
        ("azure_storage_account_name".to_owned(), ACCOUNT.to_owned()),
        ("azure_storage_endpoint".to_owned(), endpoint.clone()),
        // Credential keys are ignored: the store acts only as the cloud's identity.
        (
            "azure_storage_account_key".to_owned(),
            "bm90LXVzZWQ=".to_owned(),
        ),
    ];
    let store = ObjectStore::with_cloud("az://artifacts/realms", options, &access).unwrap();
    let location = store
        .put(
            "acme",
            "run-1/cluster-definition.json",
            b"{\"cluster\": 1}".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(
        location,
        "az://artifacts/realms/acme/run-1/cluster-definition.json"
    );
    assert_eq!(store.get(&location).await.unwrap(), b"{\"cluster\": 1}");

    // Azurite checks the tokens: one issued for ARM's audience is refused, and so is none.
    let to_standin = reqwest::Client::builder()
        .tls_certs_merge([
            reqwest::Certificate::from_pem(standin.ca_pem().unwrap().as_bytes()).unwrap(),
        ])
        .build()
        .unwrap();
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={SECRET}&scope=https%3A%2F%2Fmanagement.azure.com%2F.default",
        azure::INSTALLER_APP
    );
    let answer = to_standin
        .post(format!(
            "{}/00000000-0000-4000-8000-00000000d1e0/oauth2/v2.0/token",
            standin.url()
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    let arm_token = v["access_token"].as_str().unwrap().to_owned();
    for auth in [Some(arm_token.as_str()), None] {
        let mut req = http
            .get(format!(
                "{endpoint}/artifacts/realms/acme/run-1/cluster-definition.json"
            ))
            .header("x-ms-version", "2025-11-05");
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        let status = req.send().await.unwrap().status().as_u16();
        assert!(matches!(status, 401 | 403), "{auth:?} → {status}");
    }
}

/// The binary stores the phase-4 and phase-5 artifacts in an `az://` container with the AKS
/// identity's tokens (the account and emulator endpoint from `AZURE_STORAGE_*`, the CAs through
/// `SSL_CERT_FILE`), nothing locally, and `audit verify` reads every one back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_stores_artifacts_in_an_az_container_and_audit_reads_them_back() {
    use crate::aks::{Azure, install_cmd, write_spec};
    use crate::engine_support::cloud_playbook;
    use crate::engine_support::{approve, text};
    let pki = Pki::new();
    let blob = azurite(&pki);
    let a = Azure::start(Duration::ZERO);
    let endpoint = format!("https://127.0.0.1:{}/{ACCOUNT}", blob.port);
    let http = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(pki.root_pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    create_container(&a.provider(), &http, &endpoint).await;

    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(&a, dir.path(), "digibee-acme");
    let mut text_of_spec = std::fs::read_to_string(&spec).unwrap();
    text_of_spec.push_str("artifacts: {bucket: \"az://artifacts/realms\"}\n");
    std::fs::write(&spec, text_of_spec).unwrap();
    let bundle = dir.path().join("roots.pem");
    std::fs::write(
        &bundle,
        format!("{}{}", a.standin.ca_pem().unwrap(), pki.root_pem()),
    )
    .unwrap();
    let pb = cloud_playbook(dir.path());
    let state = dir.path().join("state");
    let storage = |c: &mut Command| {
        c.env("SSL_CERT_FILE", &bundle)
            .env("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT)
            .env("AZURE_STORAGE_ENDPOINT", &endpoint);
    };
    let mut c = install_cmd(&a, &spec, &state, &pb);
    storage(&mut c);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    let mut c = install_cmd(&a, &spec, &state, &pb);
    storage(&mut c);
    let o = c.args(["--until", "5"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(!state.join("artifacts").exists(), "nothing stored locally");
    let mut c = crate::common::realmctl_std();
    for (k, v) in a.env() {
        c.env(k, v);
    }
    storage(&mut c);
    let o = c
        .args(["audit", "verify", "--state"])
        .arg(&state)
        .arg("-f")
        .arg(&spec)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("5 artifact checksums hold"), "{out}");
}
