//! `realmctl demo`: the whole install of a sample realm on this machine alone — a simulation.
//!
//! [`prepare`] writes a demo realm (spec, a throw-away CA and a wildcard certificate for the six
//! required names) and starts its loopback stand-ins on the current runtime: a name server for
//! the demo zone ([`dns`]), outbound peers (a TLS server, a plain TCP service) and the cloud's
//! stand-in, started by the cloud's [`CloudDemo`] (the stand-in crate's wire adapter over its
//! neutral world, whose clusters take seconds to become active; the cloud's real client talks
//! to it with throw-away credentials). [`install`] then runs the embedded `dedicated-saas`
//! playbook — every phase, DNS and the cluster included — stops at the phase-5 gate, approves
//! it as the demo customer, resumes to the end and verifies the journal.
//!
//! Which clouds have a demo is the CLI registry's business; nothing here names a cloud.

#[cfg(feature = "aks")]
pub mod aks;
pub mod core;
pub mod dns;
#[cfg(feature = "eks")]
pub mod eks;
#[cfg(feature = "gke")]
pub mod gke;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

use futures::future::BoxFuture;
use realmctl_standins::StandIn;

use crate::cloud::Cloud;
use crate::spec::Provider;

/// The demo realm's base domain (`.test` is reserved, RFC 6761).
pub const BASE: &str = "digibee.demo.test";
/// How long a demo cluster or node pool stays creating.
pub const CREATE_DELAY: std::time::Duration = std::time::Duration::from_secs(4);

/// What a cloud's demo started: its stand-in, the client that talks to it, and the `cloud:`
/// block of the demo spec that names it.
pub struct DemoCloud {
    /// The cloud's real client, on the stand-in, with throw-away credentials.
    pub cloud: Arc<dyn Cloud>,
    /// The stand-in (runs as long as this value lives).
    pub standin: StandIn,
    /// The `cloud:` block of the demo spec (YAML).
    pub spec_block: String,
    /// How the client reaches the stand-in, for the SIMULATION notice.
    pub how: &'static str,
}

/// One cloud's part of the demo.
pub trait CloudDemo: Send + Sync {
    /// Which cloud.
    fn provider(&self) -> Provider;
    /// Starts the cloud's stand-in on the current runtime and its client.
    fn start(&self) -> BoxFuture<'_, Result<DemoCloud, DemoError>>;
}

/// Why the demo could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Writing a demo file failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Generating the demo certificates failed.
    #[error("cannot generate the demo certificates: {0}")]
    Certificates(#[from] rcgen::Error),
    /// Starting a loopback peer failed.
    #[error("cannot start a loopback peer: {0}")]
    Peer(String),
    /// The demo's cloud provider could not be set up.
    #[error("cannot set up the demo's cloud provider: {0}")]
    Cloud(#[from] crate::cloud::CloudError),
}

/// A prepared demo: the spec, the cloud provider on its stand-in, and the stand-in (which
/// runs as long as this value lives).
pub struct Demo {
    /// The spec file.
    pub spec: PathBuf,
    /// The provider of the demo's cloud (the real client, on the stand-in, with demo
    /// credentials).
    pub cloud: Arc<dyn Cloud>,
    /// The cloud's stand-in.
    pub standin: StandIn,
    /// How the client reaches the stand-in, for people.
    pub how: &'static str,
    /// How the install polls a creating cluster (`cluster.wait`'s policy unless a benchmark
    /// changes it).
    pub poll: crate::cloud::poll::Backoff,
}

fn write(path: PathBuf, text: &str) -> Result<(), DemoError> {
    write_mode(path, text, 0o644)
}

/// Writes a demo file with `mode` (the private key: 0600).
fn write_mode(path: PathBuf, text: &str, mode: u32) -> Result<(), DemoError> {
    crate::fsutil::write_atomic(&path, text.as_bytes(), mode).map_err(|e| DemoError::Write {
        path,
        source: e.source,
    })
}

fn ca(cn: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "realmctl demo");
    Ok(p)
}

fn leaf(
    names: Vec<String>,
    issuer: &CertifiedIssuer<'_, KeyPair>,
) -> Result<(String, KeyPair), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(names.clone())?;
    p.distinguished_name
        .push(DnType::CommonName, names[0].clone());
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    p.not_after = OffsetDateTime::now_utc() + Duration::days(90);
    Ok((
        format!("{}{}", p.signed_by(&key, issuer)?.pem(), issuer.pem()),
        key,
    ))
}

/// Writes the demo realm into `dir` and starts its loopback stand-ins on the current runtime,
/// the cloud's through `cloud`.
pub async fn prepare(dir: &Path, cloud: &dyn CloudDemo) -> Result<Demo, DemoError> {
    // The demo folder holds a private key: it is private (0700) like a state folder.
    let mkdir = |p: PathBuf| {
        crate::fsutil::create_private_dir(&p).map_err(|e| DemoError::Write {
            path: p,
            source: e.source,
        })
    };
    mkdir(dir.join("certs"))?;
    let root = CertifiedIssuer::self_signed(ca("realmctl demo root CA")?, KeyPair::generate()?)?;
    let inter = CertifiedIssuer::signed_by(
        ca("realmctl demo intermediate CA")?,
        KeyPair::generate()?,
        &root,
    )?;
    let names: Vec<String> = crate::requirements::embedded()
        .domains
        .all()
        .map(|p| format!("*.{}.{BASE}", p.prefix))
        .collect();
    let (chain, key) = leaf(names, &inter)?;
    write(dir.join("certs/wildcard.pem"), &chain)?;
    write_mode(
        dir.join("certs/wildcard.key"),
        &key.serialize_pem(),
        crate::fsutil::PRIVATE_FILE,
    )?;
    write(dir.join("certs/ca.pem"), &root.pem())?;

    let (server_chain, server_key) = leaf(vec!["localhost".into()], &inter)?;
    let tls = tls_server(&server_chain, &server_key.serialize_pem()).await?;
    let plain = listener().await?;
    let peer = |e: std::io::Error| DemoError::Peer(e.to_string());
    let dns = dns::start(BASE).await.map_err(peer)?;
    let started = cloud.start().await?;
    let spec = crate::templates::render(
        "demo.yaml",
        &serde_json::json!({
            "base": BASE, "tls": tls, "plain": plain, "dns": dns,
            "cloud": started.spec_block,
        }),
    )
    .map_err(|e| DemoError::Peer(e.to_string()))?;
    let path = dir.join("realm.yaml");
    write(path.clone(), &spec)?;
    Ok(Demo {
        spec: path,
        cloud: started.cloud,
        standin: started.standin,
        how: started.how,
        poll: crate::cloud::poll::WAIT,
    })
}

/// A TLS server on 127.0.0.1 presenting `chain` (PEM, leaf first) with `key`; it completes
/// handshakes and closes. Returns its port; it runs until the tokio runtime ends.
pub async fn tls_server(chain: &str, key: &str) -> Result<u16, DemoError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| DemoError::Peer(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
        .map_err(|e| DemoError::Peer(e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(crate::crypto::tls_provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| DemoError::Peer(e.to_string()))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (l, port) = bind_loopback().await?;
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let a = acceptor.clone();
            tokio::spawn(async move {
                let _ = a.accept(s).await;
            });
        }
    });
    Ok(port)
}

async fn bind_loopback() -> Result<(tokio::net::TcpListener, u16), DemoError> {
    let peer = |e: std::io::Error| DemoError::Peer(e.to_string());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(peer)?;
    let port = l.local_addr().map_err(peer)?.port();
    Ok((l, port))
}

/// A loopback listener that accepts connections and closes them.
async fn listener() -> Result<u16, DemoError> {
    let (l, port) = bind_loopback().await?;
    tokio::spawn(async move { while l.accept().await.is_ok() {} });
    Ok(port)
}

/// What the demo install did.
#[derive(Debug)]
pub struct InstallDemo {
    /// The first run (stops at the phase-5 gate).
    pub first: crate::engine::run::RunResult,
    /// The demo customer's approval.
    pub approval: crate::engine::model::state::Approval,
    /// The resumed run.
    pub second: crate::engine::run::RunResult,
    /// The demo customer's confirmation of their side of the realm VPN, when the resumed run
    /// waited for it, and the run after it.
    pub vpn: Option<(
        crate::engine::model::state::Approval,
        crate::engine::run::RunResult,
    )>,
    /// The journal verification afterwards.
    pub verified: crate::engine::audit::Verification,
    /// The state folder.
    pub state: PathBuf,
}

/// Why the demo install failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallDemoError {
    /// The demo spec did not load.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] crate::engine::run::EngineError),
    /// The journal could not be read.
    #[error(transparent)]
    Journal(#[from] crate::engine::io::journal::JournalError),
    /// A demo signing key could not be made or read.
    #[error(transparent)]
    Key(#[from] crate::signing::SigningError),
    /// The phase-5 document could not be read back for the customer.
    #[error(transparent)]
    Store(#[from] crate::engine::io::store::StoreError),
}

/// The demo's signing key `<dir>/keys/<who>.key`, made on first use.
fn demo_key(
    dir: &Path,
    who: &str,
) -> Result<std::sync::Arc<crate::signing::SigningKey>, InstallDemoError> {
    let keys = dir.join("keys");
    crate::fsutil::create_private_dir(&keys)
        .map_err(crate::engine::io::journal::JournalError::Dir)?;
    let path = keys.join(format!("{who}.key"));
    if !path.exists() {
        crate::signing::SigningKey::generate_to(&path)?;
    }
    Ok(std::sync::Arc::new(crate::signing::SigningKey::load(
        &path,
    )?))
}

/// The demo customer's offline approval of the phase-5 document `state` holds now, signed
/// with `key`; `None` when no phase-5 document is there yet.
async fn customer_signs_offline(
    state: &Path,
    store: &crate::engine::io::store::Store,
    key: &crate::signing::SigningKey,
) -> Result<Option<crate::engine::model::offline::SignedStatement>, InstallDemoError> {
    use crate::engine::model::{offline, state as st};
    let j = crate::engine::io::journal::Journal::open_read_only(state)?;
    let s = crate::engine::run::load_state(&j)?;
    let Some(phase) = s
        .playbook
        .as_ref()
        .and_then(|p| p.phases.iter().find(|p| p.number == offline::ROLES_PHASE))
    else {
        return Ok(None);
    };
    let Some(doc) = st::phase_artifacts(phase, &s)
        .into_iter()
        .find(|a| a.name.ends_with(".md"))
    else {
        return Ok(None);
    };
    let bytes = store.get(&doc.location).await?;
    let statement = offline::Statement::for_document(
        &doc.name,
        &bytes,
        offline::ROLES_PHASE,
        "demo customer",
        Some("approved by realmctl demo, offline"),
        crate::engine::model::record::timestamp(OffsetDateTime::now_utc()),
    )
    .map_err(crate::engine::run::EngineError::from)?;
    Ok(Some(statement.sign(key)))
}

/// Walks the demo realm through the embedded `dedicated-saas` playbook in `<dir>/state`: runs
/// to the phase-5 gate, approves as the demo customer (signed offline and imported), resumes (creating the cluster and node
/// group in the stand-in, seeding the realm's core, building the realm VPN), confirms the
/// customer's side of the VPN as the demo customer when the run waits for it, runs to the end,
/// and verifies the journal. Progress goes to `observer`.
pub async fn install(
    dir: &Path,
    demo: &Demo,
    observer: &dyn crate::engine::EngineObserver,
) -> Result<InstallDemo, InstallDemoError> {
    use crate::engine::io::{journal, store};
    use crate::engine::model::playbook;
    use crate::engine::{RunOptions, audit, run};
    let spec = crate::spec::load(&demo.spec)?;
    let playbook = playbook::embedded();
    let state = dir.join("state");
    let mut opts = RunOptions::new(
        "realmctl demo",
        store::Store::local(&state),
        crate::quota::seed::Target::for_install(&state, playbook.applies_platform()),
    );
    // The cluster runs no Pods: the enforcement core's Service is answered by this build's own
    // quota service; the edge serves on a loopback port instead of 443.
    demo.standin.kube().world().serve_service(
        crate::platform::quota::NAMESPACE,
        crate::platform::quota::SERVICE,
        core::quota_backend(dir.join("realm-core-quota.db")),
    );
    opts.ingress_port = demo.standin.kube().edge_port();
    opts.retry_base = std::time::Duration::from_millis(200);
    opts.cloud = Some(demo.cloud.clone());
    opts.poll = demo.poll;
    // The cloud team signs the install, the customer signs the approval; the auditor trusts
    // both public keys. The keys live beside the state folder, never inside it.
    let operator_key = demo_key(dir, "operator")?;
    let customer_key = demo_key(dir, "customer")?;
    let keys = vec![operator_key.public().clone(), customer_key.public().clone()];
    opts.signing_key = Some(operator_key);
    let customer_public = customer_key.public().clone();
    let at = crate::engine::io::state::StateRef::from(state.clone());
    let first = run::install(&at, &spec, &playbook, &opts, observer).await?;
    // The customer approves where they are: they sign the phase-5 document they were sent
    // (`approve --offline`), and the cloud team imports the statement with their public key.
    let signed = customer_signs_offline(&state, &opts.store, &customer_key).await?;
    let approval = match signed.map(|signed| {
        run::import_approval(
            &at,
            Some(5),
            signed,
            &customer_public,
            OffsetDateTime::now_utc(),
            opts.signing_key.clone(),
        )
    }) {
        Some(Ok(a)) => a,
        None | Some(Err(run::EngineError::Approve(_))) => {
            // Already approved in an earlier demo run over the same folder: nothing waits.
            let j = journal::Journal::open(&state)?;
            let s = run::load_state(&j)?;
            s.approvals
                .last()
                .cloned()
                .ok_or(run::EngineError::NoRun { at: at.to_string() })?
        }
        Some(Err(e)) => return Err(e.into()),
    };
    let second = run::install(&at, &spec, &playbook, &opts, observer).await?;
    // A VPN realm then waits on the customer's side of the tunnel: the demo customer
    // "configures" it and confirms what they were asked, signed with their key.
    let vpn = match second.outcome {
        crate::engine::model::event::StopOutcome::Waiting => {
            let confirmed = run::approve(
                &at,
                6,
                "demo customer",
                Some("the demo customer configured their side of the realm VPN"),
                OffsetDateTime::now_utc(),
                Some(demo_key(dir, "customer")?),
            )?;
            let third = run::install(&at, &spec, &playbook, &opts, observer).await?;
            Some((confirmed, third))
        }
        _ => None,
    };
    let j = journal::Journal::open_read_only(&state)?;
    let verified = audit::verify(&j, &opts.store, None, keys, &[customer_public]).await?;
    Ok(InstallDemo {
        first,
        approval,
        second,
        vpn,
        verified,
        state,
    })
}
