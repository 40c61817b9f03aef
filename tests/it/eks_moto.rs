//! EKS installs against moto's server (issue #9): the real AWS SDK, through the AWS stand-in in
//! front of moto for the three calls moto 5.2 lacks (`SimulatePrincipalPolicy`, the vCPU
//! service quota, `DescribeClusterVersions`); everything else — roles, subnets, clusters, node
//! groups, IAM enforcement — is moto's. A full install creates exactly one cluster and node
//! group and a re-run nothing; a cluster of this realm is adopted; one of someone else (or of
//! another version) is refused and left untouched; a bad role fails clearly; an identity without
//! `eks:CreateCluster` gets moto's real AccessDenied, named.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aws_sdk_eks::types::VpcConfigRequest;

pub(crate) use crate::cloud_install::{kill_points, unlock};
use crate::common::{AwsStandIn, Moto, SpecOpts, moto, moto_with};
use crate::engine_support::*;

const ACCOUNT: &str = "123456789012";

/// An SDK config for moto with its test credentials.
pub(crate) async fn moto_config(url: &str, key: &str, secret: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_credential_types::Credentials::new(
            key, secret, None, None, "test",
        ))
        .load()
        .await
}

/// moto with the two roles and a VPC with two subnets, and the stand-in in front of it.
pub(crate) struct Lab {
    pub moto: Moto,
    pub front: AwsStandIn,
    pub rt: tokio::runtime::Runtime,
    pub subnets: Vec<String>,
}

/// Creates the roles `c` (trusting EKS) and `n` (trusting EC2) and a VPC with subnets in two
/// zones; returns the subnet ids.
async fn prepare(conf: &aws_config::SdkConfig) -> Vec<String> {
    let iam = aws_sdk_iam::Client::new(conf);
    for (name, service) in [("c", "eks.amazonaws.com"), ("n", "ec2.amazonaws.com")] {
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}"#
        );
        iam.create_role()
            .role_name(name)
            .assume_role_policy_document(trust)
            .send()
            .await
            .unwrap();
    }
    let ec2 = aws_sdk_ec2::Client::new(conf);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.20.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_owned();
    let mut subnets = Vec::new();
    for (zone, cidr) in [
        ("us-east-1a", "10.20.0.0/20"),
        ("us-east-1b", "10.20.16.0/20"),
    ] {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .availability_zone(zone)
            .cidr_block(cidr)
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_owned());
    }
    subnets
}

impl Lab {
    pub fn new() -> Self {
        Self::with_moto(moto())
    }

    fn with_moto(moto: Moto) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let conf = rt.block_on(moto_config(&moto.url(), "testing", "testing"));
        let subnets = rt.block_on(prepare(&conf));
        let front = AwsStandIn::in_front_of(&moto.url());
        Lab {
            moto,
            front,
            rt,
            subnets,
        }
    }

    pub fn spec(&self, dir: &Path, opts: SpecOpts) -> PathBuf {
        spec(
            dir,
            SpecOpts {
                endpoint: Some(self.front.url()),
                subnets: self.subnets.clone(),
                ..opts
            },
        )
    }

    pub fn eks(&self) -> aws_sdk_eks::Client {
        let conf = self
            .rt
            .block_on(moto_config(&self.moto.url(), "testing", "testing"));
        aws_sdk_eks::Client::new(&conf)
    }

    /// Every cluster in moto, with its node groups.
    pub fn clusters(&self) -> HashMap<String, Vec<String>> {
        let eks = self.eks();
        self.rt.block_on(async {
            let mut out = HashMap::new();
            let list = eks.list_clusters().send().await.unwrap();
            for c in list.clusters() {
                let ng = eks.list_nodegroups().cluster_name(c).send().await.unwrap();
                out.insert(c.clone(), ng.nodegroups().to_vec());
            }
            out
        })
    }

    /// Creates a cluster directly in moto (someone else's, or this realm's from before).
    pub fn precreate(&self, name: &str, version: &str, tags: &[(&str, &str)]) {
        let eks = self.eks();
        let subnets = self.subnets.clone();
        self.rt.block_on(async {
            eks.create_cluster()
                .name(name)
                .version(version)
                .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/c"))
                .resources_vpc_config(
                    // As realmctl creates them: a private endpoint only.
                    VpcConfigRequest::builder()
                        .set_subnet_ids(Some(subnets))
                        .endpoint_private_access(true)
                        .endpoint_public_access(false)
                        .build(),
                )
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ))
                .send()
                .await
                .unwrap();
        });
    }
}

/// The cloud phases plus the local ones, without DNS/outbound peers: 1 spec, account, vpn,
/// image · 2 credentials · 3 permissions, certificate · 4 artifacts · 5 roles, behind the
/// customer's gate · 6 cluster, ready, seed.
pub(crate) fn cloud_playbook(dir: &Path) -> PathBuf {
    playbook(
        dir,
        [
            "steps: [{id: spec, action: spec.validate}, {id: cloud-account, action: cloud.account}, {id: vpn, action: vpn.prerequisites}, {id: node-image, action: node_image.acceptance}]",
            "steps: [{id: credentials, action: cloud.credentials}]",
            "steps: [{id: permissions, action: cloud.permissions}, {id: certificate, action: checks.certificate}]",
            "steps: [{id: artifacts, action: artifacts.render}]",
            ROLES_GATE,
            "steps: [{id: cluster, action: cluster.apply}, {id: cluster-ready, action: cluster.wait}, {id: quota-seed, action: quota.seed}]",
        ],
    )
}

fn aws_env(c: &mut assert_cmd::Command) -> &mut assert_cmd::Command {
    c.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
}

/// `install` with moto's test keys, approved at the phase-5 gate when it stops there.
pub(crate) fn install_on(spec: &Path, state: &Path, pb: &Path) -> (i32, serde_json::Value, String) {
    let (code, v, err) = install_once(spec, state, pb);
    if code != 3 {
        return (code, v, err);
    }
    let o = approve(state, 5);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    install_once(spec, state, pb)
}

/// One `install` with moto's test keys (no approval).
pub(crate) fn install_once(
    spec: &Path,
    state: &Path,
    pb: &Path,
) -> (i32, serde_json::Value, String) {
    let mut c = install_cmd(spec, state, pb, &[]);
    aws_env(&mut c);
    let o = c.args(["--output", "json"]).output().unwrap();
    let (out, err) = text(&o);
    let v = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    (o.status.code().unwrap_or(-1), v, err)
}

/// `install --yes` of `spec` into `state` with `pb`, quick retries, and `env` set.
fn install_cmd(spec: &Path, state: &Path, pb: &Path, env: &[(&str, &str)]) -> assert_cmd::Command {
    let mut c = realmctl();
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(["install", "--yes", "--retry-base-ms", "10", "-f"])
        .arg(spec)
        .arg("--state")
        .arg(state)
        .arg("--playbook")
        .arg(pb);
    c
}

#[test]
fn a_full_install_creates_one_cluster_and_node_group_and_a_rerun_creates_nothing() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let spec = lab.spec(dir.path(), SpecOpts::default());
    let pb = cloud_playbook(dir.path());
    let state = dir.path().join("state");
    let (code, v, err) = install_on(&spec, &state, &pb);
    assert_eq!(code, 0, "{v} {err}");
    let clusters = lab.clusters();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert_eq!(clusters["digibee-acme"], ["workers"]);
    // The facts moto holds are the ones the realm asked for.
    let eks = lab.eks();
    let (c, ng) = lab.rt.block_on(async {
        let c = eks
            .describe_cluster()
            .name("digibee-acme")
            .send()
            .await
            .unwrap();
        let ng = eks
            .describe_nodegroup()
            .cluster_name("digibee-acme")
            .nodegroup_name("workers")
            .send()
            .await
            .unwrap();
        (
            c.cluster().unwrap().clone(),
            ng.nodegroup().unwrap().clone(),
        )
    });
    assert_eq!(c.version(), Some("1.31"));
    assert_eq!(c.tags().unwrap()["realmctl.digibee.com/realm"], "acme");
    let sc = ng.scaling_config().unwrap();
    assert_eq!(
        (sc.min_size(), sc.desired_size(), sc.max_size()),
        (Some(3), Some(7), Some(14))
    );
    assert_eq!(ng.instance_types(), ["m6i.xlarge"]);
    // Issue #16: what moto holds is the approved definition, field by field, as boto3 reads it.
    let def = crate::approved_definition::approved_definition(&state);
    let (bc, bng) =
        crate::approved_definition::boto3_describe(&lab.moto.url(), "digibee-acme", "workers");
    crate::approved_definition::assert_cloud_holds(&def, &bc, &bng);
    // The calls moto lacks went to the stand-in; the rest reached moto.
    assert!(lab.front.world().count("iam:SimulatePrincipalPolicy") > 0);
    assert!(lab.front.world().count("eks:CreateCluster") == 1);
    // A re-run creates nothing.
    let (code, v, _) = install_on(&spec, &state, &pb);
    assert_eq!(code, 0);
    assert!(executed(&v).is_empty(), "{v}");
    assert_eq!(lab.front.world().count("eks:CreateCluster"), 1);
    assert_eq!(lab.clusters().len(), 1);
    // A lost state folder over the same cloud: everything is adopted, nothing created twice.
    let state2 = dir.path().join("state2");
    let (code, v, err) = install_on(&spec, &state2, &pb);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(lab.front.world().count("eks:CreateCluster"), 1);
    assert_eq!(lab.front.world().count("eks:CreateNodegroup"), 1);
}

#[test]
fn a_cluster_this_realm_created_before_is_adopted_and_foreign_ones_are_refused_untouched() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let pb = gated_playbook(
        dir.path(),
        &[(
            6,
            "{id: cluster, action: cluster.apply}, {id: cluster-ready, action: cluster.wait}"
                .into(),
        )],
    );
    // Ours (the realm's tags, same version, subnets and role): adopted, its node group created.
    lab.precreate(
        "digibee-ours",
        "1.31",
        &[
            ("realmctl.digibee.com/realm", "acme"),
            ("realmctl.digibee.com/managed-by", "realmctl"),
        ],
    );
    let spec = lab.spec(
        &dir.path().join("a"),
        SpecOpts {
            cluster: Some("digibee-ours".into()),
            ..SpecOpts::default()
        },
    );
    let (code, v, err) = install_on(&spec, &dir.path().join("sa"), &pb);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(
        lab.front.world().count("eks:CreateCluster"),
        0,
        "adopted, not created"
    );
    assert_eq!(lab.clusters()["digibee-ours"], ["workers"]);

    // Someone else's (no realm tag), and ours but of another Kubernetes version: refused.
    lab.precreate("digibee-theirs", "1.31", &[("team", "payments")]);
    lab.precreate(
        "digibee-old",
        "1.29",
        &[("realmctl.digibee.com/realm", "acme")],
    );
    for (name, why) in [
        ("digibee-theirs", "has no realmctl.digibee.com/realm tag"),
        (
            "digibee-old",
            "kubernetesVersion: the cloud has \"1.29\", the approved definition says \"1.31\"",
        ),
    ] {
        let spec = lab.spec(
            &dir.path().join(name),
            SpecOpts {
                cluster: Some(name.into()),
                ..SpecOpts::default()
            },
        );
        let (code, v, _) = install_on(&spec, &dir.path().join(format!("s-{name}")), &pb);
        assert_eq!(code, 1, "{v}");
        let next = next_text(&v);
        assert!(
            next.contains(why) && next.contains("changes nothing"),
            "{name}: {next}"
        );
        assert!(lab.clusters()[name].is_empty(), "{name} got a node group");
    }
    let eks = lab.eks();
    let tags = lab.rt.block_on(async {
        eks.describe_cluster()
            .name("digibee-theirs")
            .send()
            .await
            .unwrap()
            .cluster()
            .unwrap()
            .tags()
            .cloned()
            .unwrap()
    });
    assert_eq!(tags.len(), 1, "left untouched: {tags:?}");
    assert_eq!(lab.front.world().count("eks:CreateCluster"), 0);
}

#[test]
fn a_bad_role_arn_fails_the_account_step_with_a_clear_message() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let spec = lab.spec(
        dir.path(),
        SpecOpts {
            cluster_role: Some(format!("arn:aws:iam::{ACCOUNT}:role/not-created")),
            ..SpecOpts::default()
        },
    );
    let pb = cloud_playbook(dir.path());
    let (code, v, _) = install_on(&spec, &dir.path().join("state"), &pb);
    assert_eq!(code, 1, "{v}");
    assert_eq!(executed(&v), ["spec", "cloud-account"]);
    assert!(
        v["message"].as_str().unwrap().contains("account checks")
            && next_text(&v).starts_with("customer:"),
        "{v}"
    );
    let st = status(&dir.path().join("state"));
    let checks = st["report"]["phases"][0]["steps"][1]["checks"]
        .as_array()
        .unwrap()
        .clone();
    let bad = checks
        .iter()
        .find(|c| c["status"] == "fail")
        .unwrap_or_else(|| panic!("{checks:?}"));
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("arn:aws:iam::123456789012:role/not-created does not exist"),
        "{bad}"
    );
    assert!(lab.clusters().is_empty());
}

/// moto enforcing IAM (`INITIAL_NO_AUTH_ACTION_COUNT`): the first calls set up a user whose
/// policy lacks `eks:CreateCluster`; realmctl then runs as that user and gets moto's real
/// AccessDenied, classified and naming the permission. (moto 5.2 miscomputes the signature of
/// EKS GET requests while enforcing IAM — `ListClusters` from boto3 gets `SignatureDoesNotMatch`
/// too — so the stand-in in front of it answers `DescribeCluster`; the create goes to moto.)
#[test]
fn an_identity_without_eks_create_cluster_gets_a_real_access_denied_naming_it() {
    // Setup calls before enforcement: 2 roles + VPC + 2 subnets + user + policy + key = 8.
    let m = moto_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "8")]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (subnets, key, secret) = rt.block_on(async {
        let conf = moto_config(&m.url(), "testing", "testing").await;
        let subnets = prepare(&conf).await;
        let iam = aws_sdk_iam::Client::new(&conf);
        iam.create_user().user_name("installer").send().await.unwrap();
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:GetCallerIdentity","eks:DescribeCluster","eks:DescribeNodegroup","eks:CreateNodegroup"],"Resource":"*"}]}"#;
        iam.put_user_policy()
            .user_name("installer")
            .policy_name("almost")
            .policy_document(policy)
            .send()
            .await
            .unwrap();
        let k = iam.create_access_key().user_name("installer").send().await.unwrap();
        let k = k.access_key().unwrap();
        (
            subnets,
            k.access_key_id().to_owned(),
            k.secret_access_key().to_owned(),
        )
    });
    let front = AwsStandIn::in_front_of(&m.url());
    front.world().local.insert("eks:DescribeCluster".into());
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        SpecOpts {
            endpoint: Some(front.url()),
            subnets,
            ..SpecOpts::default()
        },
    );
    let pb = gated_playbook(
        dir.path(),
        &[(6, "{id: cluster, action: cluster.apply}".into())],
    );
    // The customer approves the definition first (no cloud call before phase 6).
    let (code, v, err) = install(&spec, &dir.path().join("state"), &pb, &[]);
    assert_eq!(code, 3, "{v} {err}");
    assert_eq!(approve(&dir.path().join("state"), 5).status.code(), Some(0));
    let o = realmctl()
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .args(["install", "--yes", "--output", "json", "-f"])
        .arg(&spec)
        .arg("--state")
        .arg(dir.path().join("state"))
        .arg("--playbook")
        .arg(&pb)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let next = v["next"].clone();
    assert_eq!(next["owner"], "customer", "{v}");
    let action = next["action"].as_str().unwrap();
    assert!(
        action.contains("eks:CreateCluster failed (access denied"),
        "classified as access denied: {action}"
    );
    assert!(
        action.contains("eks:CreateCluster"),
        "names the permission: {action}"
    );
    assert!(!out.contains(&secret) && !err.contains(&secret));
    assert_eq!(
        front.world().count("eks:CreateCluster"),
        1,
        "moto answered the create"
    );
}

/// The shape of the crash tests' realm: a cluster name per case, on one moto.
pub(crate) fn crash_case(lab: &Lab, root: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = root.join(name);
    let spec = lab.spec(
        &dir,
        SpecOpts {
            cluster: Some(name.into()),
            ..SpecOpts::default()
        },
    );
    let pb = cloud_playbook(&dir);
    (spec, pb, dir.join("state"))
}

/// Runs the install to the phase-5 gate and approves it, so that a following run reaches
/// phase 6 (a kill point there, say).
pub(crate) fn to_gate_and_approve(spec: &Path, state: &Path, pb: &Path, env: &[(&str, &str)]) {
    let o = install_cmd(spec, state, pb, env).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    assert_eq!(approve(state, 5).status.code(), Some(0));
}

/// Runs an install that kills itself at `point`; asserts it died by SIGKILL where it was aimed.
pub(crate) fn killed_at(spec: &Path, state: &Path, pb: &Path, point: &str, env: &[(&str, &str)]) {
    use std::os::unix::process::ExitStatusExt;
    let o = install_cmd(spec, state, pb, env)
        .env("REALMCTL_TEST_KILL_AT", point)
        .output()
        .unwrap();
    assert_eq!(
        o.status.signal(),
        Some(9),
        "{point}: not killed: {:?}",
        text(&o)
    );
    crate::engine_support::assert_kill_landed(state, point);
}

/// SIGKILL at every step boundary and at the points inside `cluster.apply` (after each intent
/// is journaled, and between each create call and anything journaled after it): after
/// unlocking and resuming, exactly one cluster with one node group exists for the case.
#[cfg(feature = "test-actions")]
#[test]
fn sigkill_anywhere_leaves_exactly_one_cluster_and_node_group_on_moto() {
    let lab = Lab::new();
    let root = tempfile::tempdir().unwrap();
    let steps = [
        "spec",
        "cloud-account",
        "vpn",
        "node-image",
        "credentials",
        "permissions",
        "certificate",
        "artifacts",
        "roles",
        "cluster",
        "cluster-ready",
        "quota-seed",
    ];
    let points = kill_points(
        &steps,
        &[
            "intent-cluster",
            "created-cluster",
            "intent-pool",
            "created-pool",
        ],
    );
    for (i, point) in points.iter().enumerate() {
        let name = format!("k{i:02}");
        let (spec, pb, state) = crash_case(&lab, root.path(), &name);
        let env = [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ];
        // Phase 6 runs only once the customer approved the definition at the phase-5 gate.
        if ["cluster", "quota-seed"]
            .iter()
            .any(|s| point.starts_with(&format!("{s}:")) || point.starts_with("cluster-ready:"))
        {
            to_gate_and_approve(&spec, &state, &pb, &env);
        }
        killed_at(&spec, &state, &pb, point, &env);
        unlock(&state);
        let (code, v, err) = install_on(&spec, &state, &pb);
        assert_eq!(code, 0, "{point}: {v} {err}");
        let clusters = lab.clusters();
        assert_eq!(clusters[&name], ["workers"], "{point}");
    }
    let creates = lab.front.world().count("eks:CreateCluster");
    assert_eq!(creates, points.len(), "one create per case, never two");
    assert_eq!(lab.clusters().len(), points.len());
}
