//! The real AWS SDK for Rust, through the EKS provider, against the loopback AWS stand-in
//! (issue #9): every fact the provider gathers, the create calls, CREATING → ACTIVE, injected
//! throttling and denials classified by kind, and the retry decorator over them.

use std::time::Duration;

use realmctl::cloud::eks::standin::{StandIn, World};
use realmctl::cloud::eks::{EksProvider, EksSettings};
use realmctl::cloud::facts::{AccountQuery, Lookup, NodeImageDef, NodePoolDef, Status};
use realmctl::cloud::retry::{RetryPolicy, Retrying};
use realmctl::cloud::{
    AccountInspector, CloudErrorKind, ClusterManager, IdentitySource, PermissionChecker,
};
use realmctl::secret::Secret;

const ACCOUNT: &str = "123456789012";

async fn provider(s: &StandIn) -> EksProvider {
    EksProvider::with_static_credentials(
        EksSettings {
            region: "us-east-1".into(),
            endpoint: Some(s.url()),
            profile: None,
        },
        "AKIDSTANDINTEST00000",
        &Secret::new("stand-in-secret"),
        None,
    )
    .await
    .unwrap()
}

fn query(w: &World) -> AccountQuery {
    AccountQuery {
        subnets: w
            .subnets
            .iter()
            .map(|s| s.id.clone())
            .chain(["subnet-missing".to_owned()])
            .collect(),
        roles: vec![
            (
                "cloud.eks.clusterRoleArn".into(),
                w.role_arn("digibee-eks-cluster"),
            ),
            (
                "cloud.eks.nodeRoleArn".into(),
                w.role_arn("digibee-eks-node"),
            ),
            ("other".into(), w.role_arn("no-such-role")),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_reads_identity_account_and_permissions_through_the_sdk() {
    let s = StandIn::start(World::sample(ACCOUNT, "us-east-1"))
        .await
        .unwrap();
    let p = provider(&s).await;
    let id = p.identity().await.unwrap();
    assert_eq!(id.account, ACCOUNT);
    assert_eq!(
        id.principal,
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/realmctl-installer/demo")
    );
    assert_eq!(
        id.policy_subject,
        format!("arn:aws:iam::{ACCOUNT}:role/realmctl-installer"),
        "an assumed role's permissions are its role's"
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
    assert!(
        f.subnets
            .iter()
            .all(|s| s.free_addresses == 4091 && s.network == "vpc-0demo0000000000a")
    );
    assert_eq!(f.roles[0].trusted_services, ["eks.amazonaws.com"]);
    assert_eq!(f.roles[1].trusted_services, ["ec2.amazonaws.com"]);
    assert!(!f.roles[2].exists);
    assert_eq!(
        f.versions,
        Lookup::Found(
            ["1.29", "1.30", "1.31", "1.32", "1.33"]
                .map(String::from)
                .to_vec()
        )
    );
    assert_eq!(f.vcpu_quota, Lookup::Found(640.0));
    // No such quota: unknown, not an error.
    s.world().vcpu_quota = None;
    assert!(matches!(
        p.account(&q).await.unwrap().vcpu_quota,
        Lookup::Unknown(_)
    ));

    // Permissions: the denied ones, by name.
    let (_d, spec) = realmctl_spec();
    let required = realmctl::cloud::permissions::required(
        realmctl::requirements::embedded()
            .roles
            .for_provider(realmctl::spec::Provider::Eks),
        &realmctl::cloud::permissions::Vars::for_spec(&spec).unwrap(),
    );
    let facts = p
        .missing_permissions(&id.policy_subject, &required)
        .await
        .unwrap();
    assert!(facts.missing.is_empty(), "{facts:?}");
    s.world().denied.insert("eks:CreateCluster".into());
    let facts = p
        .missing_permissions(&id.policy_subject, &required)
        .await
        .unwrap();
    let names: Vec<_> = facts.missing.iter().map(|m| m.action.as_str()).collect();
    assert_eq!(names, ["eks:CreateCluster"]);
    assert!(
        s.world().count("iam:SimulatePrincipalPolicy") > 2,
        "one call per resource group"
    );
}

fn realmctl_spec() -> (tempfile::TempDir, realmctl::spec::Spec) {
    let dir = tempfile::tempdir().unwrap();
    let text =
        realmctl::spec::init::render(realmctl::spec::Provider::Eks, "acme", "digibee.acme.test")
            .unwrap();
    std::fs::create_dir_all(dir.path().join("certs")).unwrap();
    std::fs::write(dir.path().join("certs/wildcard.pem"), "x").unwrap();
    std::fs::write(dir.path().join("certs/wildcard.key"), "x").unwrap();
    std::fs::write(dir.path().join("realm.yaml"), text).unwrap();
    let spec = realmctl::spec::load(&dir.path().join("realm.yaml")).unwrap();
    (dir, spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_go_creating_to_active_and_node_groups_need_an_active_cluster() {
    let mut w = World::sample(ACCOUNT, "us-east-1");
    w.create_delay = Duration::from_millis(600);
    let s = StandIn::start(w).await.unwrap();
    let p = provider(&s).await;
    let (def, pool) = {
        let w = s.world();
        let def = realmctl::cloud::facts::ClusterDef {
            name: "digibee-acme".into(),
            kubernetes_version: "1.31".into(),
            subnets: w.subnets.iter().map(|s| s.id.clone()).collect(),
            role: w.role_arn("digibee-eks-cluster"),
            tags: realmctl::cloud::realm_tags(realmctl::spec::Provider::Eks, "acme"),
        };
        let pool = NodePoolDef {
            name: "acme-workers".into(),
            role: w.role_arn("digibee-eks-node"),
            subnets: def.subnets.clone(),
            shape: "m6i.xlarge".into(),
            min: 3,
            desired: 7,
            max: 14,
            image: NodeImageDef::Default,
            tags: def.tags.clone(),
        };
        (def, pool)
    };
    assert_eq!(p.cluster("digibee-acme").await.unwrap(), None);
    p.create_cluster(&def).await.unwrap();
    let c = p.cluster("digibee-acme").await.unwrap().unwrap();
    assert_eq!(c.status, Status::Creating);
    assert_eq!(c.tags, def.tags, "tags round-trip");
    assert_eq!(c.subnets, def.subnets);
    assert_eq!(c.role, def.role);
    // A second create is a conflict (moto does the same; idempotency is the engine's job).
    let e = p.create_cluster(&def).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::Conflict, "{e}");
    // A node group on a cluster still CREATING is refused, as on EKS.
    let e = p.create_node_pool("digibee-acme", &pool).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::Invalid, "{e}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let c = p.cluster("digibee-acme").await.unwrap().unwrap();
    assert_eq!(c.status, Status::Active);
    assert!(c.endpoint.as_deref().unwrap().starts_with("https://"));
    assert!(c.certificate_authority.is_some());
    p.create_node_pool("digibee-acme", &pool).await.unwrap();
    let n = p
        .node_pool("digibee-acme", "acme-workers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (n.min, n.desired, n.max, n.shape.as_str()),
        (3, 7, 14, "m6i.xlarge")
    );
    assert_eq!(n.status, Status::Creating);
    // A bad role ARN is an invalid request naming it.
    let mut bad = def.clone();
    bad.name = "other".into();
    bad.role = format!("arn:aws:iam::{ACCOUNT}:role/nope");
    let e = p.create_cluster(&bad).await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::Invalid);
    assert!(e.to_string().contains("role/nope"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_classified_by_code_and_throttling_is_retried_by_the_decorator() {
    let s = StandIn::start(World::sample(ACCOUNT, "us-east-1"))
        .await
        .unwrap();
    let p = provider(&s).await;
    s.world().denied.insert("eks:DescribeCluster".into());
    let e = p.cluster("x").await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::AccessDenied, "{e}");
    assert_eq!(e.code.as_deref(), Some("AccessDeniedException"));
    assert_eq!(e.status, Some(403));
    assert!(e.to_string().contains("eks:DescribeCluster"), "{e}");
    s.world().denied.clear();
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
    let gone = EksProvider::with_static_credentials(
        EksSettings {
            region: "us-east-1".into(),
            endpoint: Some(format!("http://127.0.0.1:{closed}")),
            profile: None,
        },
        "AKIDSTANDINTEST00000",
        &Secret::new("stand-in-secret"),
        None,
    )
    .await
    .unwrap();
    let e = gone.cluster("x").await.unwrap_err();
    assert_eq!(e.kind, CloudErrorKind::Unavailable, "{e}");
}
