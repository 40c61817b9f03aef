//! The real AWS SDK for Rust, through the EKS client, against the stand-in crate's AWS adapter
//! (issues #9 and #16): every fact the client gathers, the create calls from the one cluster
//! definition and what describe gives back, CREATING → ACTIVE, injected throttling and
//! denials classified by kind, the retry decorator, permission simulation evaluated per action
//! and resource against a real policy document, and the transport's refusals (credentials to
//! a non-loopback http endpoint, oversized or never-ending answers).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use realmctl::cloud::definition::{ClusterDefinition, NodeImageDef, compare_cluster, compare_pool};
use realmctl::cloud::eks::{EksProvider, EksSettings};
use realmctl::cloud::facts::{AccountQuery, IdentityQuery, Lookup, QuotaQuery, Status};
use realmctl::cloud::retry::{RetryPolicy, Retrying};
use realmctl::cloud::{
    AccountInspector, CloudErrorKind, ClusterManager, IdentitySource, PermissionChecker,
};
use realmctl::secret::Secret;
use realmctl_standins::{Policy, StandIn, World, aws};

const ACCOUNT: &str = "123456789012";

async fn provider_at(endpoint: &str) -> EksProvider {
    EksProvider::with_static_credentials(
        EksSettings {
            endpoint: Some(endpoint.to_owned()),
            ..EksSettings::new("us-east-1")
        },
        "AKIDSTANDINTEST00000",
        &Secret::new("stand-in-secret"),
        None,
    )
    .await
    .unwrap()
}

async fn provider(s: &StandIn) -> EksProvider {
    provider_at(&s.url()).await
}

fn query(w: &World) -> AccountQuery {
    AccountQuery {
        subnets: w
            .subnets
            .iter()
            .map(|s| s.id.clone())
            .chain(["subnet-missing".to_owned()])
            .collect(),
        identities: vec![
            IdentityQuery {
                purpose: "cloud.eks.clusterRoleArn".into(),
                id: aws::role_arn(ACCOUNT, "digibee-eks-cluster"),
                trusts: Some("eks.amazonaws.com".into()),
            },
            IdentityQuery {
                purpose: "cloud.eks.nodeRoleArn".into(),
                id: aws::role_arn(ACCOUNT, "digibee-eks-node"),
                trusts: Some("ec2.amazonaws.com".into()),
            },
            IdentityQuery {
                purpose: "other".into(),
                id: aws::role_arn(ACCOUNT, "no-such-role"),
                trusts: None,
            },
        ],
        services: vec![],
        quotas: vec![QuotaQuery {
            code: aws::STANDARD_VCPU_QUOTA.into(),
            name: aws::STANDARD_VCPU_QUOTA_NAME.into(),
        }],
        secondary_ranges: Vec::new(),
    }
}

/// A spec of realm `acme` on the stand-in's sample account (its roles and subnets).
fn spec_for(w: &World) -> (tempfile::TempDir, realmctl::spec::Spec) {
    let dir = tempfile::tempdir().unwrap();
    let subnets: Vec<String> = w.subnets.iter().map(|s| s.id.clone()).collect();
    let text = format!(
        r#"apiVersion: realmctl/v1
kind: Realm
name: acme
cloud:
  provider: eks
  region: us-east-1
  eks: {{accountId: "{ACCOUNT}", clusterRoleArn: "{c}", nodeRoleArn: "{n}", subnetIds: [{s}]}}
  cluster: {{name: digibee-acme, kubernetesVersion: "1.31", apiAccess: {{access: both, allowedCidrs: [203.0.113.0/24]}}}}
domains: {{base: digibee.acme.test}}
certificate: {{cert: certs/wildcard.pem, key: certs/wildcard.key}}
subscription: {{pipelineSubscriptions: 10}}
"#,
        c = aws::role_arn(ACCOUNT, "digibee-eks-cluster"),
        n = aws::role_arn(ACCOUNT, "digibee-eks-node"),
        s = subnets.join(", ")
    );
    std::fs::create_dir_all(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/wildcard.pem"), "x").unwrap();
    std::fs::write(dir.path().join("certs/wildcard.key"), "x").unwrap();
    std::fs::write(dir.path().join("realm.yaml"), text).unwrap();
    let spec = realmctl::spec::load(&dir.path().join("realm.yaml")).unwrap();
    (dir, spec)
}

fn required(spec: &realmctl::spec::Spec) -> Vec<realmctl::cloud::facts::RequiredPermission> {
    realmctl::cloud::permissions::required(
        &realmctl::cloud::permissions::roles_of(spec),
        &realmctl::cloud::permissions::Vars::for_spec(spec),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reads_identity_and_account_through_the_sdk() {
    let s = StandIn::aws(aws::sample(ACCOUNT, "us-east-1"))
        .await
        .unwrap();
    let p = provider(&s).await;
    let id = p.identity().await.unwrap();
    assert_eq!(id.account, ACCOUNT);
    assert_eq!(
        id.principal,
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/realmctl-installer/demo")
    );
    assert_eq!(id.expires_at, None);
    let q = query(&s.world());
    let f = p.account(&q).await.unwrap();
    assert_eq!(f.account, ACCOUNT);
    assert_eq!(
        f.subnets.len(),
        3,
        "the missing subnet is absent, not an error"
    );
    assert!(f.subnets.iter().all(|s| s.free_addresses == 4091
        && s.network == "vpc-0demo0000000000a"
        && s.zone.is_some()));
    assert_eq!(f.identities[0].trusted_services, ["eks.amazonaws.com"]);
    assert_eq!(f.identities[1].trusted_services, ["ec2.amazonaws.com"]);
    assert!(!f.identities[2].exists);
    assert_eq!(
        f.versions,
        Lookup::Found(
            ["1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35"]
                .map(String::from)
                .to_vec()
        )
    );
    assert_eq!(f.quotas[0].limit, Lookup::Found(640.0));
    // No such quota: unknown, not an error.
    s.world().quotas.clear();
    assert!(matches!(
        p.account(&q).await.unwrap().quotas[0].limit,
        Lookup::Unknown(_)
    ));
}

/// `SimulatePrincipalPolicy` evaluates each action against each resource: the installer's own
/// least-privilege policy (rendered by realmctl) grants exactly what the permission check asks,
/// and a policy written for another cluster leaves the cluster's actions missing, each named
/// with the resource it was asked on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_least_privilege_policy_grants_exactly_the_checked_permissions() {
    let s = StandIn::aws(aws::sample(ACCOUNT, "us-east-1"))
        .await
        .unwrap();
    let (_d, spec) = spec_for(&s.world());
    let p = provider(&s).await;
    let required = required(&spec);
    let facts = p.missing_permissions(&required).await.unwrap();
    assert!(facts.missing.is_empty(), "{facts:?}");
    assert_eq!(
        facts.principal,
        format!("arn:aws:iam::{ACCOUNT}:role/realmctl-installer"),
        "an assumed role's permissions are its role's"
    );
    // The stand-in's caller holds exactly realmctl's own least-privilege policy.
    let doc = realmctl::cloud::permissions::policy_document(&spec).unwrap();
    s.world().policy = Policy::from_iam_json(&doc).unwrap();
    let facts = p.missing_permissions(&required).await.unwrap();
    assert!(
        facts.missing.is_empty(),
        "the policy grants all it lists: {facts:?}"
    );
    // The same policy written for another cluster: the cluster's own actions are missing.
    let other = doc.replace(":cluster/digibee-acme", ":cluster/digibee-other");
    assert_ne!(other, doc);
    s.world().policy = Policy::from_iam_json(&other).unwrap();
    let facts = p.missing_permissions(&required).await.unwrap();
    let missing: Vec<(&str, &str)> = facts
        .missing
        .iter()
        .map(|m| (m.action.as_str(), m.resource.as_str()))
        .collect();
    let cluster = format!("arn:aws:eks:us-east-1:{ACCOUNT}:cluster/digibee-acme");
    for action in [
        "eks:CreateCluster",
        "eks:DescribeCluster",
        "eks:TagResource",
        "eks:CreateNodegroup",
    ] {
        assert!(
            missing.contains(&(action, cluster.as_str())),
            "{action} on {cluster} missing from {missing:?}"
        );
    }
    assert!(
        missing.iter().all(|(_, r)| r.contains("digibee-acme")),
        "{missing:?}"
    );
    // An explicit deny of one action names just that one.
    let mut w = aws::sample(ACCOUNT, "us-east-1");
    w.deny("iam:PassRole");
    *s.world() = w;
    let facts = p.missing_permissions(&required).await.unwrap();
    let names: Vec<_> = facts.missing.iter().map(|m| m.action.as_str()).collect();
    assert_eq!(
        names,
        ["iam:PassRole", "iam:PassRole"],
        "both roles, by resource"
    );
    assert!(
        s.world().count("iam:SimulatePrincipalPolicy") > 2,
        "one call per resource group"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_created_from_the_definition_is_described_back_as_the_definition() {
    let mut w = aws::sample(ACCOUNT, "us-east-1");
    w.create_delay = Duration::from_millis(600);
    let (_d, spec) = spec_for(&w);
    let s = StandIn::aws(w).await.unwrap();
    let p = provider(&s).await;
    let def: ClusterDefinition = realmctl::cloud::access::definition(&spec);
    let pool = &def.pools[0];
    assert_eq!(p.cluster("digibee-acme").await.unwrap(), None);
    p.create_cluster(&def).await.unwrap();
    let c = p.cluster("digibee-acme").await.unwrap().unwrap();
    assert_eq!(c.status, Status::Creating);
    assert_eq!(
        compare_cluster(&def.cluster, &c.described),
        [],
        "every field round-trips"
    );
    // A second create is a conflict (moto does the same; idempotency is the engine's job).
    let e = p.create_cluster(&def).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::Conflict, "{e}");
    // A node group on a cluster still CREATING is refused, as on EKS.
    let e = p.create_node_pool(&def, pool).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::Invalid, "{e}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let c = p.cluster("digibee-acme").await.unwrap().unwrap();
    assert_eq!(c.status, Status::Active);
    assert!(c.endpoint.as_deref().unwrap().starts_with("https://"));
    assert!(c.certificate_authority.is_some());
    p.create_node_pool(&def, pool).await.unwrap();
    let n = p
        .node_pool("digibee-acme", "workers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n.status, Status::Creating);
    assert_eq!(
        compare_pool(&pool.nodes, &n.described),
        [],
        "every field round-trips"
    );
    assert_eq!(
        n.described.image,
        NodeImageDef::Default("AL2023_x86_64_STANDARD".into())
    );
    // A bad role ARN is an invalid request naming it.
    let mut bad = def.clone();
    bad.cluster.name = "other".into();
    bad.cluster.control_plane_identity = Some(format!("arn:aws:iam::{ACCOUNT}:role/nope"));
    let e = p.create_cluster(&bad).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::Invalid);
    assert!(e.to_string().contains("role/nope"), "{e}");
    // A cluster EKS would open to everyone by default is described as such, and differs.
    let mut open = def.clone();
    open.cluster.name = "digibee-open".into();
    open.cluster.api_access = realmctl::spec::ApiAccess::Public { cidrs: vec![] };
    p.create_cluster(&open).await.unwrap();
    let c = p.cluster("digibee-open").await.unwrap().unwrap();
    assert_eq!(
        c.described.api_access,
        realmctl::spec::ApiAccess::Public {
            cidrs: vec!["0.0.0.0/0".parse().unwrap()]
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_classified_by_code_and_throttling_is_retried_by_the_decorator() {
    let s = StandIn::aws(aws::sample(ACCOUNT, "us-east-1"))
        .await
        .unwrap();
    let p = provider(&s).await;
    s.world().deny("eks:DescribeCluster");
    let e = p.cluster("x").await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::AccessDenied, "{e}");
    assert_eq!(e.code.as_deref(), Some("AccessDeniedException"));
    assert_eq!(e.status, Some(403));
    assert!(e.to_string().contains("eks:DescribeCluster"), "{e}");
    s.world().policy = Policy::allow_all();
    // Throttling, in each protocol's own words, is one kind. (The world's lock is never held
    // across an await: the stand-in needs it to answer.)
    let q = query(&s.world());
    for (op, call) in [
        ("eks:DescribeCluster", 0),
        ("sts:GetCallerIdentity", 1),
        ("ec2:DescribeSubnets", 2),
    ] {
        s.world().throttle.insert(op.into(), 1);
        let e = match call {
            0 => p.cluster("x").await.map(|_| ()).unwrap_err(),
            1 => p.identity().await.map(|_| ()).unwrap_err(),
            _ => p.account(&q).await.map(|_| ()).unwrap_err(),
        };
        assert_eq!(e.kind, CloudErrorKind::Throttled, "{op}: {e}");
    }
    // The retry decorator absorbs two throttled answers.
    let r = Retrying::new(
        provider(&s).await,
        RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(10),
        },
    );
    s.world().throttle.insert("eks:DescribeCluster".into(), 2);
    let before = s.world().count("eks:DescribeCluster");
    assert_eq!(r.cluster("x").await.unwrap(), None);
    assert_eq!(s.world().count("eks:DescribeCluster") - before, 3);
    // Unreachable endpoint: unavailable (a loopback port nobody listens on).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let gone = provider_at(&format!("http://127.0.0.1:{closed}")).await;
    let e = gone.cluster("x").await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::Unavailable, "{e}");
}

/// A loopback listener that records whether anything connected, answering each connection
/// with `answer` (or holding it open when `None`).
fn listener(answer: Option<Vec<u8>>) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = c.set_read_timeout(Some(Duration::from_millis(300)));
                let _ = c.read(&mut buf);
                match answer {
                    Some(a) => {
                        let _ = c.write_all(&a);
                        std::thread::sleep(Duration::from_secs(30));
                    }
                    None => std::thread::sleep(Duration::from_secs(30)),
                }
            });
        }
    });
    (port, hits)
}

/// Credentials go only over https or to loopback, whatever set the endpoint. `0.0.0.0` is not
/// a loopback address, but a connection to it stays on this host (Linux connects it to the
/// local host), so a listener on 127.0.0.1 proves nothing was sent; no packet leaves loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_to_a_plain_http_non_loopback_endpoint_are_never_sent() {
    let (port, hits) = listener(Some(
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec(),
    ));
    let url = format!("http://0.0.0.0:{port}");
    // Through the constructor: refused at once, with the fix.
    let e = EksProvider::with_static_credentials(
        EksSettings {
            endpoint: Some(url.clone()),
            ..EksSettings::new("us-east-1")
        },
        "AKIDSTANDINTEST00000",
        &Secret::new("stand-in-secret"),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::RefusedDestination, "{e}");
    assert!(e.to_string().contains("help: use an https://"), "{e}");
    // Through the SDK's own variable (read by the SDK itself, past the constructor): the
    // transport refuses every signed call.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_realmctl"))
        .args(["preflight", "--only", "access", "--output", "json", "-f"])
        .arg(write_spec_file(
            &std::env::temp_dir().join(format!("refuse-{port}")),
        ))
        .env("AWS_ENDPOINT_URL", &url)
        .env("AWS_ACCESS_KEY_ID", "AKIDREFUSED000000000")
        .env("AWS_SECRET_ACCESS_KEY", "refused-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("refused to send credentials there"),
        "{stdout}"
    );
    assert!(!stdout.contains("refused-secret"));
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing was sent"
    );
}

fn write_spec_file(dir: &std::path::Path) -> std::path::PathBuf {
    let (d, _) = spec_for(&aws::sample(ACCOUNT, "us-east-1"));
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    for f in ["realm.yaml", "certs/wildcard.pem", "certs/wildcard.key"] {
        std::fs::copy(d.path().join(f), dir.join(f)).unwrap();
    }
    dir.join("realm.yaml")
}

/// An answer that declares 1.5 GB is refused before its body is read; one that streams past
/// the cap is cut off; both say so, as their own kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_answers_are_refused_and_said_so() {
    let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1610612736\r\n\r\n{\"cluster\": {".to_vec();
    let (port, _) = listener(Some(head));
    let p = provider_at(&format!("http://127.0.0.1:{port}")).await;
    let t = Instant::now();
    let e = p.cluster("x").await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::TooLarge, "{e}");
    assert!(e.to_string().contains("larger than"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // Chunked, no length: 20 MiB of JSON whitespace, past the 16 MiB cap.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = l.accept() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n");
            let chunk = vec![b' '; 1 << 20];
            for _ in 0..20 {
                if c.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .is_err()
                    || c.write_all(&chunk).is_err()
                    || c.write_all(b"\r\n").is_err()
                {
                    return;
                }
            }
        }
    });
    let p = provider_at(&format!("http://127.0.0.1:{port}")).await;
    let e = p.cluster("x").await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::TooLarge, "{e}");
}
