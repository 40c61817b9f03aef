//! Shared test helpers: a test PKI (rcgen, openssl for what rcgen cannot make), spec files,
//! and loopback peers (dnsmasq, tinyproxy, rustls servers, silent listeners).
//! Every peer listens on 127.0.0.1 and is started and stopped by the test that uses it.
use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;

pub const BASE: &str = "digibee.acme.test";

/// A loopback port, bound for the life of the test process, that accepts connections and
/// closes them at once: where every AWS call of a test goes unless its spec names a stand-in.
fn aws_dead_end() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming() {
                drop(s);
            }
        });
        port
    })
}

/// Isolates a `realmctl` run from this machine's cloud configuration: no inherited `AWS_*`
/// setting, fake static credentials (a canary for leak tests), no instance metadata, no shared
/// config files, and every AWS call sent to a loopback dead end unless the spec names an
/// endpoint. Tests never reach a cloud.
pub fn isolate(c: &mut std::process::Command) -> &mut std::process::Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_")
            || k.starts_with("AZURE_")
            || k.starts_with("GOOGLE_")
            || k.starts_with("IDENTITY_")
            || k.starts_with("MSI_")
            || k == "IMDS_ENDPOINT"
            || k.starts_with("GCE_")
            || k.starts_with("CLOUDSDK_")
        {
            c.env_remove(k);
        }
    }
    c.env("AWS_ACCESS_KEY_ID", AWS_TEST_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", AWS_TEST_SECRET)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/realmctl-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/realmctl-test/credentials",
        )
        .env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", aws_dead_end()),
        )
        // Azure: a canary service principal whose token requests go to a loopback dead end
        // (never the instance metadata service, never a real authority).
        .env("AZURE_TENANT_ID", "00000000-0000-4000-8000-00000000dead")
        .env("AZURE_CLIENT_ID", "00000000-0000-4000-8000-00000000beef")
        .env("AZURE_CLIENT_SECRET", AZURE_TEST_SECRET)
        .env(
            "AZURE_AUTHORITY_HOST",
            format!("https://127.0.0.1:{}", aws_dead_end()),
        )
        // Google: no credential file, gcloud's folder absent, the metadata server a loopback
        // dead end (never metadata.google.internal).
        .env("CLOUDSDK_CONFIG", "/nonexistent/realmctl-test/gcloud")
        .env("GCE_METADATA_HOST", format!("127.0.0.1:{}", aws_dead_end()))
        .env("REALMCTL_OPERATOR", "test-operator")
        .env_remove("REALM_PROXY_AUTH")
        .env_remove("REALMCTL_TEST_KILL_AT")
}

/// The fake Azure client secret every test run gets (leak tests look for it).
pub const AZURE_TEST_SECRET: &str = "aZuRe-realmctl-test-CLIENT-secret~never.printed";

/// The fake AWS access key id every test run gets.
pub const AWS_TEST_KEY_ID: &str = "AKIAREALMCTLTEST0001";
/// The fake AWS secret every test run gets (leak tests look for it).
pub const AWS_TEST_SECRET: &str = "rEaLmCtL-test-secret-KEY-never-printed-42";

/// The binary, isolated ([`isolate`]).
pub fn realmctl() -> assert_cmd::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("realmctl"));
    isolate(&mut c);
    assert_cmd::Command::from_std(c)
}

/// The binary as a plain `std` command, isolated ([`isolate`]).
pub fn realmctl_std() -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("realmctl"));
    isolate(&mut c);
    c
}
/// Runs `c` (stdout discarded, stderr kept) and waits at most `limit`; a command still running
/// then is killed and the test fails with `what`. Returns the exit code, stderr and the time taken.
pub fn run_bounded(mut c: Command, limit: Duration, what: &str) -> (Option<i32>, String, Duration) {
    use std::io::Read;
    let t0 = std::time::Instant::now();
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), err, t0.elapsed());
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("{what} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub const PREFIXES: [&str; 6] = ["core", "static", "portal", "auth", "test", "api"];

/// The six required wildcard names under `BASE`.
pub fn required() -> Vec<String> {
    PREFIXES.iter().map(|p| format!("*.{p}.{BASE}")).collect()
}

/// A root and an intermediate CA.
pub struct Pki {
    pub root: CertifiedIssuer<'static, KeyPair>,
    pub inter: CertifiedIssuer<'static, KeyPair>,
}

pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Realmctl Test PKI");
    p.not_before = OffsetDateTime::now_utc() - time::Duration::days(3650);
    p.not_after = OffsetDateTime::now_utc() + time::Duration::days(3650);
    p
}

impl Pki {
    pub fn new() -> Self {
        let root = CertifiedIssuer::self_signed(
            ca_params("Realmctl Test Root CA"),
            KeyPair::generate().unwrap(),
        )
        .unwrap();
        let inter = CertifiedIssuer::signed_by(
            ca_params("Realmctl Test Intermediate CA"),
            KeyPair::generate().unwrap(),
            &root,
        )
        .unwrap();
        Pki { root, inter }
    }

    pub fn root_pem(&self) -> String {
        self.root.pem()
    }

    /// Leaf params for `sans`, valid for a year, serverAuth; `edit` may change them.
    pub fn leaf_with(&self, sans: &[String], edit: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(sans.to_vec()).unwrap();
        p.distinguished_name.push(
            DnType::CommonName,
            sans.first().cloned().unwrap_or_default(),
        );
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.not_before = OffsetDateTime::now_utc() - time::Duration::days(1);
        p.not_after = OffsetDateTime::now_utc() + time::Duration::days(365);
        edit(&mut p);
        let cert = p.signed_by(&key, &self.inter).unwrap();
        Leaf {
            cert_pem: format!("{}{}", cert.pem(), self.inter.pem()),
            key_pem: key.serialize_pem(),
        }
    }

    pub fn leaf(&self, sans: &[String]) -> Leaf {
        self.leaf_with(sans, |_| {})
    }
}

/// Runs openssl (a peer nobody on the team wrote) for certificates rcgen cannot make.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed (the README test command installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA-signed leaf made by openssl with an RSA key of `bits` and signature digest `digest`.
/// Returns (chain PEM, key PEM, root PEM).
pub fn openssl_leaf(
    dir: &Path,
    bits: u32,
    digest: &str,
    sans: &[String],
) -> (String, String, String) {
    let rsa = format!("rsa:{bits}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            // Well past the checks' 30-day minimum: a certificate made for exactly 30 days
            // has 29 whole days left one second later (a flaky boundary).
            "-days",
            "90",
            "-subj",
            "/CN=OpenSSL Test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            &rsa,
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=openssl leaf",
        ],
    );
    let san = sans
        .iter()
        .map(|s| format!("DNS:{s}"))
        .collect::<Vec<_>>()
        .join(",");
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName={san}\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    let md = format!("-{digest}");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "90",
            &md,
            "-extfile",
            "ext.cnf",
        ],
    );
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    (read("leaf.pem"), read("leaf.key"), read("ca.pem"))
}

/// An AWS stand-in whose account is the test spec's ([`write_spec`]): account 123456789012,
/// roles `c` (trusting EKS) and `n` (trusting EC2), the spec's two subnets in two zones. It runs
/// on a runtime of its own and stops when dropped.
#[cfg(feature = "eks")]
pub struct AwsStandIn {
    pub standin: realmctl_standins::StandIn,
    _rt: tokio::runtime::Runtime,
}

#[cfg(feature = "eks")]
impl AwsStandIn {
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    pub fn start(create_delay: Duration) -> Self {
        use realmctl_standins::{Identity, StandIn, Subnet, aws};
        let rt = Self::runtime();
        let mut w = aws::sample("123456789012", "us-east-1");
        w.identities = [
            ("c", "eks.amazonaws.com"),
            ("n", "ec2.amazonaws.com"),
            ("realmctl-installer", "ec2.amazonaws.com"),
        ]
        .into_iter()
        .map(|(r, s)| {
            (
                r.to_owned(),
                Identity {
                    trusts: vec![s.to_owned()],
                },
            )
        })
        .collect();
        w.subnets = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
            .iter()
            .zip(['a', 'b'])
            .enumerate()
            .map(|(i, (id, z))| Subnet {
                id: (*id).to_owned(),
                network: "vpc-0test000000000000".into(),
                zone: Some(format!("us-east-1{z}")),
                cidr: format!("10.9.{}.0/20", i * 16),
                free: 4091,
            })
            .collect();
        w.create_delay = create_delay;
        let standin = rt.block_on(StandIn::aws(w)).unwrap();
        AwsStandIn { standin, _rt: rt }
    }

    /// The stand-in in front of moto at `upstream`: it answers only what moto lacks.
    pub fn in_front_of(upstream: &str) -> Self {
        use realmctl_standins::{StandIn, aws};
        let rt = Self::runtime();
        let w = aws::in_front_of(upstream, "123456789012", "us-east-1");
        let standin = rt.block_on(StandIn::aws(w)).unwrap();
        AwsStandIn { standin, _rt: rt }
    }

    pub fn url(&self) -> String {
        self.standin.url()
    }

    pub fn world(&self) -> std::sync::MutexGuard<'_, realmctl_standins::World> {
        self.standin.world()
    }
}

/// Options for a test spec.
pub struct SpecOpts {
    pub nameservers: Vec<SocketAddr>,
    pub targets: Vec<(String, u16, bool)>,
    pub proxy: Option<String>,
    pub proxy_env: Option<String>,
    pub timeout_ms: u64,
    pub vpn: Option<&'static str>,
    pub node_image: &'static str,
    /// `cloud.endpoint` (an AWS stand-in); `None`: the isolated dead end.
    pub endpoint: Option<String>,
    /// `cloud.eks.subnetIds` (default: two fixed ids the stand-in of [`AwsStandIn`] has).
    pub subnets: Vec<String>,
    /// `cloud.cluster.name` (default `digibee-acme`).
    pub cluster: Option<String>,
    /// `cloud.eks.clusterRoleArn` (default `arn:aws:iam::123456789012:role/c`).
    pub cluster_role: Option<String>,
}

impl Default for SpecOpts {
    fn default() -> Self {
        SpecOpts {
            nameservers: vec![],
            targets: vec![],
            proxy: None,
            proxy_env: None,
            timeout_ms: 2000,
            vpn: None,
            node_image: "{type: default}",
            endpoint: None,
            subnets: Vec::new(),
            cluster: None,
            cluster_role: None,
        }
    }
}

/// Writes `realm.yaml`, `certs/wildcard.pem`, `certs/wildcard.key` and `certs/ca.pem` into `dir`.
pub fn write_spec(dir: &Path, leaf: &Leaf, ca_pem: &str, o: &SpecOpts) -> PathBuf {
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("certs/wildcard.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("certs/wildcard.key"), &leaf.key_pem).unwrap();
    std::fs::write(dir.join("certs/ca.pem"), ca_pem).unwrap();
    let ns: Vec<String> = o.nameservers.iter().map(|a| format!("\"{a}\"")).collect();
    let targets = if o.targets.is_empty() {
        "[]".to_owned()
    } else {
        let t: Vec<String> = o
            .targets
            .iter()
            .map(|(h, p, tls)| format!("{{host: \"{h}\", port: {p}, tls: {tls}}}"))
            .collect();
        format!("[{}]", t.join(", "))
    };
    let proxy = o
        .proxy
        .as_ref()
        .map_or("null".to_owned(), |p| format!("\"{p}\""));
    let proxy_env = o
        .proxy_env
        .as_ref()
        .map_or(String::new(), |e| format!("\n  proxyCredentialsEnv: {e}"));
    let vpn = o.vpn.unwrap_or("{enabled: false}");
    let text = format!(
        r#"apiVersion: realmctl/v1
kind: Realm
name: acme
cloud:
  provider: eks
  region: us-east-1
  endpoint: {endpoint}
  eks: {{accountId: "123456789012", clusterRoleArn: "{cluster_role}", nodeRoleArn: "arn:aws:iam::123456789012:role/n", subnetIds: [{subnets}]}}
  cluster: {{name: {cluster}, kubernetesVersion: "1.31", nodeImage: {node_image}}}
domains:
  base: {BASE}
  designTime: [core, static, portal, auth]
  runTime: [test, api]
  nameservers: [{ns}]
certificate: {{cert: certs/wildcard.pem, key: certs/wildcard.key, ca: certs/ca.pem, minDaysValid: 30}}
outbound:
  proxy: {proxy}{proxy_env}
  timeoutMs: {timeout}
  targets: {targets}
vpn: {vpn}
subscription: {{pipelineSubscriptions: 10, extraTestRtus: 0, extraProdRtus: 0}}
"#,
        node_image = o.node_image,
        cluster_role = o
            .cluster_role
            .as_deref()
            .unwrap_or("arn:aws:iam::123456789012:role/c"),
        subnets = if o.subnets.is_empty() {
            "subnet-0123456789abcdef0, subnet-0fedcba9876543210".to_owned()
        } else {
            o.subnets.join(", ")
        },
        cluster = o.cluster.as_deref().unwrap_or("digibee-acme"),
        endpoint = o
            .endpoint
            .as_ref()
            .map_or("null".to_owned(), |e| format!("\"{e}\"")),
        ns = ns.join(", "),
        timeout = o.timeout_ms,
    );
    let path = dir.join("realm.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A free loopback port for both TCP and UDP (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A child process killed on drop.
pub struct Peer {
    pub child: Child,
    pub port: u16,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_tcp(port: u16, what: &str) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not start listening on 127.0.0.1:{port}");
}

fn which(bin: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/bin",
        "/usr/local/sbin",
    ] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{bin} is not installed; run the README test command, which installs it (apt-get install dnsmasq-base tinyproxy-bin openssl)"
    );
}

/// dnsmasq on 127.0.0.1 serving `BASE` locally: every prefix in `wildcards` resolves (to
/// 127.0.0.1 for every name under it), other names under `BASE` are NXDOMAIN; `extra` adds args.
pub fn dnsmasq(wildcards: &[&str], extra: &[String]) -> Peer {
    let port = free_port();
    let mut args = vec![
        "--keep-in-foreground".to_owned(),
        "--conf-file=/dev/null".into(),
        "--no-resolv".into(),
        "--no-hosts".into(),
        "--no-poll".into(),
        "--listen-address=127.0.0.1".into(),
        "--bind-interfaces".into(),
        format!("--port={port}"),
        "--pid-file=".into(),
        "--user=root".into(),
        format!("--local=/{BASE}/"),
        "--local=/acme.test/".into(),
    ];
    for w in wildcards {
        args.push(format!("--address=/{w}.{BASE}/127.0.0.1"));
    }
    args.extend(extra.iter().cloned());
    let child = Command::new(which("dnsmasq"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dnsmasq");
    wait_tcp(port, "dnsmasq");
    Peer {
        child,
        port,
        _dir: None,
    }
}

/// tinyproxy on 127.0.0.1 with extra config lines (e.g. `BasicAuth u p`, `ConnectPort 443`).
pub fn tinyproxy(extra: &[String]) -> Peer {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tinyproxy.conf");
    let mut f = std::fs::File::create(&conf).unwrap();
    writeln!(f, "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nMaxClients 256\nLogLevel Warning\nDisableViaHeader Yes").unwrap();
    for l in extra {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    let child = Command::new(which("tinyproxy"))
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tinyproxy");
    wait_tcp(port, "tinyproxy");
    Peer {
        child,
        port,
        _dir: Some(dir),
    }
}

/// A rustls TLS server on 127.0.0.1 presenting `leaf` (the same peer `realmctl demo` uses).
pub async fn tls_server(leaf: &Leaf) -> u16 {
    realmctl::demo::tls_server(&leaf.cert_pem, &leaf.key_pem)
        .await
        .unwrap()
}

/// A loopback listener that accepts connections and never answers (a "hung" peer).
pub async fn silent_listener() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    port
}

/// A loopback port with nothing listening (connections are refused).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `realmctl quota serve` on a free loopback port: the child and its base URL (read from the
/// first line it prints). Its stderr keeps being drained so it never writes into a closed pipe.
pub fn quota_serve(db: &Path, tokens: &Path) -> (Child, String) {
    quota_serve_with(db, tokens, &[])
}

/// `quota serve` with extra flags (timeouts, limits).
pub fn quota_serve_with(db: &Path, tokens: &Path, extra: &[&str]) -> (Child, String) {
    let s = QuotaServe::start(db.as_os_str(), tokens, extra, &[]);
    (s.child, s.base)
}

/// A `quota serve` process with everything it printed kept (for leak scans). Not killed on
/// drop: the caller owns the child.
pub struct QuotaServe {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its stderr so far (stdout is not used by `serve`, it is kept too).
    pub output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl QuotaServe {
    /// Starts `quota serve --db DB` with `extra` flags and `env` variables.
    pub fn start(
        db: &std::ffi::OsStr,
        tokens: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> QuotaServe {
        use std::io::{BufRead, BufReader, Read};
        let mut cmd = realmctl_std();
        cmd.args(["quota", "serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .arg("--tokens")
            .arg(tokens)
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut line = String::new();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        stderr.read_line(&mut line).unwrap();
        output.lock().unwrap().extend_from_slice(line.as_bytes());
        for mut r in [
            Box::new(stderr) as Box<dyn Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let out = output.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        let base = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "unexpected first line: {line}"
        );
        QuotaServe {
            child,
            base,
            output,
        }
    }

    /// What it printed so far.
    pub fn printed(&self) -> Vec<u8> {
        self.output.lock().unwrap().clone()
    }
}

/// moto's server (PyPI `moto[server]`) on a free loopback port, stopped when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto; `env` adds settings (e.g. `INITIAL_NO_AUTH_ACTION_COUNT`).
pub fn moto_with(env: &[(&str, &str)]) -> Moto {
    let port = free_port();
    let mut c = Command::new("python3");
    c.args([
        "-m",
        "moto.server",
        "-H",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c
        .spawn()
        .expect("python3 with moto[server] (the README test command installs it)");
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Moto { child, port };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("moto did not start; is moto[server] installed?");
}

/// Starts moto with its defaults.
pub fn moto() -> Moto {
    moto_with(&[])
}

/// Every file under `dirs` (recursively), with its bytes.
pub fn files(dirs: &[&Path]) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(p: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in std::fs::read_dir(p).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if let Ok(b) = std::fs::read(&path) {
                out.push((path, b));
            }
        }
    }
    let mut out = Vec::new();
    for d in dirs {
        walk(d, &mut out);
    }
    out
}

/// Asserts that `secret`, in none of its [`forms`], is in any of `printed` or in any file
/// under `dirs`.
pub fn assert_nowhere(secret: &str, printed: &[&str], dirs: &[&Path]) {
    let files = files(dirs);
    for form in forms(secret) {
        for text in printed {
            assert!(!text.contains(&form), "printed: {form}");
        }
        for (path, bytes) in &files {
            assert!(
                !String::from_utf8_lossy(bytes).contains(&form),
                "{} holds the secret ({form})",
                path.display()
            );
        }
    }
}

/// The forms a leaked secret could take.
pub fn forms(secret: &str) -> Vec<String> {
    use base64::Engine;
    vec![
        secret.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        url_encode(secret),
    ]
}

/// Percent-encoding of everything but unreserved characters (RFC 3986).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `PUT BASE/v1/realms/REALM/config` with the admin token and a JSON `body`: the status.
pub fn put_config(base: &str, admin: &str, realm: &str, body: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .put(format!("{base}/v1/realms/{realm}/config"))
        .header("Authorization", format!("Bearer {admin}"))
        .content_type("application/json")
        .send(body)
        .unwrap()
        .status()
        .as_u16()
}

/// Runs headless Chromium on the local `file` with `extra` flags (`--screenshot=PNG`,
/// `--print-to-pdf=PDF`), in a throw-away profile, with nothing fetched from the network.
pub fn chromium(file: &Path, extra: &[String]) {
    let profile = tempfile::tempdir().unwrap();
    let o = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,1800",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("chromium is installed by the README test command (apt-get install chromium)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Pixels of a screenshot with ink (not near-white), green (the status badges' green) and
/// red (the failure badges' red).
pub fn png_colours(png: &Path) -> (usize, usize, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let (mut ink, mut green, mut red) = (0usize, 0usize, 0usize);
    for px in buf[..info.buffer_size()].chunks(channels) {
        let (r, g, b) = (px[0], px[1], px[2]);
        if u16::from(r) + u16::from(g) + u16::from(b) < 600 {
            ink += 1;
        }
        if g > 100 && r < 60 && b < 90 {
            green += 1;
        }
        if r > 180 && g < 70 && b < 80 {
            red += 1;
        }
    }
    (ink, green, red)
}

/// An HTML page that loads nothing: no script, stylesheet link, remote source, import or URL.
pub fn assert_self_contained(html: &str) {
    for external in [
        "<script",
        "<link",
        "src=\"http",
        "href=\"http",
        "@import",
        "url(",
    ] {
        assert!(
            !html.contains(external),
            "external asset `{external}` in the page"
        );
    }
}
