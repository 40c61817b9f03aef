//! `realmctl destroy` of EKS realms against moto (issue #20, item 1), through the AWS stand-in in
//! front of it (which forwards every call moto answers and counts them). Load balancers,
//! security groups, network interfaces and volumes the test makes with the cluster's ownership
//! tag stand in for what controllers make. A full destroy leaves no resource carrying the tag
//! but the volume it keeps by default; an untagged same-named resource, one tagged for another
//! purpose (`shared`) and an adopted cluster survive; a dependency error is retried then
//! reported with the resource named; SIGKILL at every step boundary and around every delete,
//! then `destroy` again: nothing left, nothing deleted twice, nothing foreign touched.

use std::path::{Path, PathBuf};

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

use crate::cloud_install::{kill_points, unlock};
use crate::common::SpecOpts;
use crate::eks_moto::{Lab, cloud_playbook, install_on, moto_config};
use crate::engine_support::*;

const OWNED: &str = "owned";

/// The ownership tag of cluster `c` the AWS cloud provider puts on what it makes.
fn cluster_tag(c: &str) -> String {
    format!("kubernetes.io/cluster/{c}")
}

fn aws(c: &mut assert_cmd::Command) -> &mut assert_cmd::Command {
    c.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
}

/// The embedded destroy playbook without `destroy.in_cluster`, written beside `spec`: moto's
/// clusters have no API server to delete objects from (and their endpoints are not loopback).
pub(crate) fn moto_playbook(spec: &Path) -> PathBuf {
    let path = spec.with_file_name("destroy-moto.yaml");
    let pb = realmctl::engine::model::playbook::EMBEDDED_DESTROY.replace(
        "      - id: destroy-in-cluster\n        action: destroy.in_cluster\n",
        "",
    );
    assert!(!pb.contains("destroy.in_cluster"));
    std::fs::write(&path, pb).unwrap();
    path
}

/// moto's test keys, and `env`.
fn aws_env(env: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut e = vec![
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
    ];
    e.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
    e
}

/// `destroy --yes --output json` with moto's keys, `extra` and `env` (moto's playbook unless
/// `extra` names one); (exit code, JSON or Null, stderr).
pub(crate) fn destroy(
    spec: &Path,
    state: &Path,
    extra: &[&str],
    env: &[(&'static str, &str)],
) -> (i32, serde_json::Value, String) {
    let pb = moto_playbook(spec);
    let mut args = extra.to_vec();
    if !extra.contains(&"--playbook") {
        args.extend(["--playbook", pb.to_str().unwrap()]);
    }
    crate::cloud_install::destroy(&aws_env(env), spec, state, &args)
}

/// `destroy --plan --output json` with moto's keys.
pub(crate) fn plan(spec: &Path, state: &Path, extra: &[&str]) -> serde_json::Value {
    crate::cloud_install::destroy_plan(&aws_env(&[]), spec, state, extra)
}

/// `destroy` until the gate, the customer's approval, `destroy` again.
pub(crate) fn destroy_approved(
    spec: &Path,
    state: &Path,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let (code, v, err) = destroy(spec, state, extra, &[]);
    if code != 3 {
        return (code, v, err);
    }
    let o = approve(state, 1);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    destroy(spec, state, extra, &[])
}

/// What the test made in moto: the cluster's leftovers, and what is not the realm's.
struct Made {
    lb: String,
    eni: String,
    sg: String,
    volume: String,
    /// Same `Name` as the tagged volume, no ownership tag.
    foreign_volume: String,
    /// No tags at all.
    foreign_sg: String,
    /// `kubernetes.io/cluster/<c>=shared`: used by the cluster, not made for it.
    shared_sg: String,
}

fn tags(kind: ResourceType, t: &[(&str, &str)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            t.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .build()
}

/// Makes, in moto, what controllers of cluster `c` would leave, and resources that are not its.
fn make_leftovers(lab: &Lab, c: &str) -> Made {
    let key = cluster_tag(c);
    lab.rt.block_on(async {
        let conf = moto_config(&lab.moto.url(), "testing", "testing").await;
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
        let subnet = ec2
            .describe_subnets()
            .subnet_ids(&lab.subnets[0])
            .send()
            .await
            .unwrap();
        let vpc = subnet.subnets()[0].vpc_id().unwrap().to_owned();
        let sg = |name: &'static str, t: Vec<(&'static str, String)>| {
            let ec2 = ec2.clone();
            let vpc = vpc.clone();
            async move {
                let mut call = ec2
                    .create_security_group()
                    .group_name(format!("{c}-{name}"))
                    .description("test")
                    .vpc_id(&vpc);
                if !t.is_empty() {
                    let t: Vec<(&str, &str)> = t.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    call = call.tag_specifications(tags(ResourceType::SecurityGroup, &t));
                }
                call.send().await.unwrap().group_id().unwrap().to_owned()
            }
        };
        let leak: &'static str = Box::leak(key.clone().into_boxed_str());
        let owned_sg = sg("k8s-elb", vec![(leak, OWNED.to_owned())]).await;
        let shared_sg = sg("shared", vec![(leak, "shared".to_owned())]).await;
        let foreign_sg = sg("foreign", vec![]).await;
        let eni = ec2
            .create_network_interface()
            .subnet_id(&lab.subnets[0])
            .groups(&owned_sg)
            .tag_specifications(tags(ResourceType::NetworkInterface, &[(&key, OWNED)]))
            .send()
            .await
            .unwrap()
            .network_interface()
            .unwrap()
            .network_interface_id()
            .unwrap()
            .to_owned();
        let volume = |t: Vec<(String, String)>| {
            let ec2 = ec2.clone();
            async move {
                let t: Vec<(&str, &str)> =
                    t.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                ec2.create_volume()
                    .availability_zone("us-east-1a")
                    .size(10)
                    .tag_specifications(tags(ResourceType::Volume, &t))
                    .send()
                    .await
                    .unwrap()
                    .volume_id()
                    .unwrap()
                    .to_owned()
            }
        };
        let name = ("Name".to_owned(), "kubernetes-dynamic-pvc-1".to_owned());
        let vol = volume(vec![(key.clone(), OWNED.to_owned()), name.clone()]).await;
        let foreign_volume = volume(vec![name]).await;
        let lb = elb
            .create_load_balancer()
            .name(format!("{c}-lb"))
            .set_subnets(Some(lab.subnets.clone()))
            .security_groups(&owned_sg)
            .tags(
                aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                    .key(&key)
                    .value(OWNED)
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .load_balancers()[0]
            .load_balancer_arn()
            .unwrap()
            .to_owned();
        Made {
            lb,
            eni,
            sg: owned_sg,
            volume: vol,
            foreign_volume,
            foreign_sg,
            shared_sg,
        }
    })
}

/// The ids of every load balancer, interface, volume and security group in moto now.
fn existing(lab: &Lab) -> Vec<String> {
    lab.rt.block_on(async {
        let conf = moto_config(&lab.moto.url(), "testing", "testing").await;
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
        let mut ids = Vec::new();
        for lb in elb
            .describe_load_balancers()
            .send()
            .await
            .unwrap()
            .load_balancers()
        {
            ids.push(lb.load_balancer_arn().unwrap().to_owned());
        }
        for n in ec2
            .describe_network_interfaces()
            .send()
            .await
            .unwrap()
            .network_interfaces()
        {
            ids.push(n.network_interface_id().unwrap().to_owned());
        }
        for v in ec2.describe_volumes().send().await.unwrap().volumes() {
            ids.push(v.volume_id().unwrap().to_owned());
        }
        for g in ec2
            .describe_security_groups()
            .send()
            .await
            .unwrap()
            .security_groups()
        {
            ids.push(g.group_id().unwrap().to_owned());
        }
        ids
    })
}

pub(crate) fn ids(v: &serde_json::Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|f| {
            f.get("resource")
                .unwrap_or(f)
                .get("id")
                .and_then(|i| i.as_str())
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// A realm installed on moto (phases 1-6 of the cloud playbook): (spec, state).
fn installed(lab: &Lab, dir: &Path, cluster: &str) -> (PathBuf, PathBuf) {
    let spec = lab.spec(
        dir,
        SpecOpts {
            cluster: Some(cluster.into()),
            ..SpecOpts::default()
        },
    );
    let pb = cloud_playbook(dir);
    let state = dir.join("state");
    let (code, v, err) = install_on(&spec, &state, &pb);
    assert_eq!(code, 0, "{v} {err}");
    (spec, state)
}

#[test]
fn a_full_destroy_deletes_what_the_realm_made_and_keeps_volumes_and_what_is_not_its() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let (spec, state) = installed(&lab, dir.path(), "digibee-acme");
    let made = make_leftovers(&lab, "digibee-acme");
    let from = lab.front.world().calls.len();

    // The plan: node group, cluster and the tagged leftovers; kept: the volume. Resources
    // without the tag `owned` (none, or `shared`) are not even listed.
    let p = plan(&spec, &state, &[]);
    let delete = ids(&p, "delete");
    assert_eq!(delete[..2], ["digibee-acme/workers", "digibee-acme"], "{p}");
    for id in [&made.lb, &made.eni, &made.sg] {
        assert!(delete.contains(id), "{id} in {p}");
    }
    let keep = ids(&p, "keep");
    assert_eq!(keep, std::slice::from_ref(&made.volume), "{p}");
    assert!(!delete.contains(&made.volume) && !delete.contains(&made.shared_sg));
    assert!(!delete.contains(&made.foreign_sg) && !delete.contains(&made.foreign_volume));
    assert_eq!(
        lab.front.world().count("eks:DeleteCluster"),
        0,
        "--plan deletes nothing"
    );
    // The install seeded the realm into the local ledger: the plan retires it there.
    assert_eq!(p["retire"]["kind"], "local", "{p}");

    // Nothing is deleted before the customer approves the plan.
    let (code, v, err) = destroy(&spec, &state, &[], &[]);
    assert_eq!(code, 3, "{v} {err}");
    assert_eq!(lab.clusters().len(), 1);
    assert!(next_text(&v).contains("approve phase 1"), "{v}");
    assert_eq!(approve(&state, 1).status.code(), Some(0));
    let (code, v, err) = destroy(&spec, &state, &[], &[]);
    assert_eq!(code, 0, "{v} {err}");
    assert!(lab.clusters().is_empty(), "{:?}", lab.clusters());
    let now = existing(&lab);
    for gone in [&made.lb, &made.eni, &made.sg] {
        assert!(!now.contains(gone), "{gone} left: {now:?}");
    }
    for kept in [
        &made.volume,
        &made.foreign_volume,
        &made.foreign_sg,
        &made.shared_sg,
    ] {
        assert!(now.contains(kept), "{kept} deleted: {now:?}");
    }
    let w = lab.front.world();
    assert_eq!(w.count("eks:DeleteNodegroup"), 1);
    assert_eq!(w.count("eks:DeleteCluster"), 1);
    assert_eq!(w.count("elasticloadbalancing:DeleteLoadBalancer"), 1);
    assert_eq!(w.count("ec2:DeleteSecurityGroup"), 1);
    assert_eq!(w.count("ec2:DeleteVolume"), 0);
    drop(w);
    // Every delete was journaled as an intent first.
    let intents = events(&state)
        .iter()
        .filter(|e| {
            matches!(
                e,
                realmctl::engine::model::event::Event::StepIntent {
                    intent: realmctl::engine::model::output::Intent::Delete { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(intents, 5);
    assert_retired(&spec, &state);

    // A second destroy is a no-op; an install on the destroyed realm is refused.
    let (code, v, err) = destroy(&spec, &state, &[], &[]);
    assert_eq!(code, 0, "{v} {err}");
    assert!(executed(&v).is_empty(), "{v}");
    assert_eq!(lab.front.world().count("eks:DeleteCluster"), 1);
    let mut c = realmctl();
    aws(&mut c);
    let o = c
        .args(["install", "--yes", "-f"])
        .arg(&spec)
        .arg("--state")
        .arg(&state)
        .arg("--playbook")
        .arg(cloud_playbook(dir.path()))
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o).1.contains("is being destroyed"), "{:?}", text(&o));
    assert_eq!(
        status(&state)["report"]["summary"],
        "the realm is destroyed"
    );

    // --delete-volumes is a new plan, approved again; then the tagged volume goes too.
    let (code, v, err) = destroy(&spec, &state, &["--delete-volumes"], &[]);
    assert_eq!(code, 3, "a changed option needs a new approval: {v} {err}");
    let (code, v, err) = destroy_approved(&spec, &state, &["--delete-volumes"]);
    assert_eq!(code, 0, "{v} {err}");
    let now = existing(&lab);
    assert!(!now.contains(&made.volume));
    assert!(now.contains(&made.foreign_volume));
    assert_destroy_policy_grants_every_call(&lab, &spec, from);
}

/// Every call the destroys made through the stand-in since call `from` is an action of the
/// destroy's own least-privilege policy (`destroy --policy`): the policy names all destroy
/// does, whatever moto (which enforces no policy) would have let through.
pub(crate) fn assert_destroy_policy_grants_every_call(lab: &Lab, spec: &Path, from: usize) {
    let spec = realmctl::spec::load(spec).unwrap();
    let doc = realmctl::cloud::permissions::policy_document_for(
        &spec,
        realmctl::requirements::ForWorkflow::Destroy,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    let granted: std::collections::BTreeSet<String> = v["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_lowercase())
        .collect();
    let w = lab.front.world();
    let made: std::collections::BTreeSet<&str> =
        w.calls[from..].iter().map(|c| c.op.as_str()).collect();
    assert!(made.contains("eks:DeleteCluster"), "{made:?}");
    for op in made {
        assert!(
            granted.contains(&op.to_lowercase()),
            "destroy called {op}, which its least-privilege policy does not grant:\n{doc}"
        );
    }
}

/// The realm is retired in the ledger its install seeded: a deployment that would fit is denied
/// with `realm_retired`, a new config is refused, and the whole decision log (the seed, then
/// the retirement) is stored as the destroy's artifact `decision-log.json`.
pub(crate) fn assert_retired(spec: &Path, state: &Path) {
    let realm = realmctl::spec::load(spec).unwrap().name;
    let db = state.join("quota.db");
    let o = realmctl()
        .args([
            "quota", "deploy", "--output", "json", "--realm", &realm, "--db",
        ])
        .arg(&db)
        .args([
            "--env",
            "test",
            "--pipeline",
            "p",
            "--version",
            "1.0",
            "--size",
            "small",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(v["admitted"], false, "{v} {:?}", text(&o));
    assert_eq!(v["reason"], "realm_retired", "{v}");
    let o = realmctl()
        .args(["quota", "seed", "--db"])
        .arg(&db)
        .arg("-f")
        .arg(spec)
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o).1.contains("was retired"), "{:?}", text(&o));
    let logs: Vec<PathBuf> = walkdir(state)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "decision-log.json"))
        .collect();
    // One per run of the step that stored it (a kill after the store and before the step's
    // success runs it again): each the same log, with the first retirement's time.
    assert!(!logs.is_empty() && logs.len() <= 2, "{logs:?}");
    for path in &logs {
        let log: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(log["realm"], realm.as_str());
        let actions: Vec<&str> = log["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["seed", "retire"], "{log}");
        assert_eq!(
            log["retirement"]["retiredAt"], log["decisions"][1]["at"],
            "{log}"
        );
    }
}

/// Every file under `dir`.
fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn an_adopted_cluster_is_kept_with_its_leftovers_and_only_the_realms_node_group_goes() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    // The cluster existed before this state folder: the install adopts it.
    lab.precreate(
        "digibee-adopted",
        "1.31",
        &[
            ("realmctl.digibee.com/realm", "acme"),
            ("realmctl.digibee.com/managed-by", "realmctl"),
        ],
    );
    let (spec, state) = installed(&lab, dir.path(), "digibee-adopted");
    let made = make_leftovers(&lab, "digibee-adopted");
    let p = plan(&spec, &state, &[]);
    assert_eq!(ids(&p, "delete"), ["digibee-adopted/workers"], "{p}");
    assert_eq!(ids(&p, "keep"), ["digibee-adopted"], "{p}");
    assert!(
        p["keep"][0]["why"].as_str().unwrap().starts_with("adopted"),
        "{p}"
    );
    assert!(p["sweptClusters"].as_array().unwrap().is_empty(), "{p}");
    let (code, v, err) = destroy_approved(&spec, &state, &[]);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(lab.clusters()["digibee-adopted"], Vec::<String>::new());
    let now = existing(&lab);
    for kept in [&made.lb, &made.eni, &made.sg, &made.volume] {
        assert!(now.contains(kept), "{kept} deleted: {now:?}");
    }
    assert_eq!(lab.front.world().count("eks:DeleteCluster"), 0);
}

#[test]
fn a_dependency_error_is_retried_and_one_that_persists_is_reported_naming_the_resource() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let (spec, state) = installed(&lab, dir.path(), "digibee-dep");
    let made = make_leftovers(&lab, "digibee-dep");
    let (code, _, _) = destroy(&spec, &state, &[], &[]);
    assert_eq!(code, 3);
    assert_eq!(approve(&state, 1).status.code(), Some(0));
    // The security group is still held twice: the sweep waits and deletes it on the third try.
    lab.front
        .world()
        .in_use
        .insert("ec2:DeleteSecurityGroup".into(), 2);
    let (code, v, err) = destroy(&spec, &state, &[], &[]);
    assert_eq!(code, 0, "{v} {err}");
    assert!(!existing(&lab).contains(&made.sg));
    assert_eq!(lab.front.world().count("ec2:DeleteSecurityGroup"), 3);

    // Held for good: the step's retries run out and the failure names the group and why.
    let dir2 = tempfile::tempdir().unwrap();
    let (spec2, state2) = installed(&lab, dir2.path(), "digibee-held");
    let held = make_leftovers(&lab, "digibee-held");
    let pb = dir2.path().join("destroy.yaml");
    std::fs::write(
        &pb,
        std::fs::read_to_string(moto_playbook(&spec2))
            .unwrap()
            .replace(
                "action: destroy.sweep",
                "action: destroy.sweep\n        timeout: 5s\n        retries: 1",
            ),
    )
    .unwrap();
    let pbs = pb.to_str().unwrap();
    let (code, _, _) = destroy(&spec2, &state2, &["--playbook", pbs], &[]);
    assert_eq!(code, 3);
    assert_eq!(approve(&state2, 1).status.code(), Some(0));
    lab.front
        .world()
        .in_use
        .insert("ec2:DeleteSecurityGroup".into(), 1000);
    let t0 = std::time::Instant::now();
    let (code, v, err) = destroy(&spec2, &state2, &["--playbook", pbs], &[]);
    assert_eq!(code, 1, "{v} {err}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(30));
    let failure = status(&state2).to_string();
    assert!(failure.contains(&held.sg), "{failure}");
    assert!(failure.contains("still in use"), "{failure}");
    assert!(existing(&lab).contains(&held.sg));
    assert!(!existing(&lab).contains(&held.lb), "the rest was deleted");
    lab.front.world().in_use.clear();
}

/// SIGKILL at every step boundary of the destroy, after each delete's intent and after each
/// delete call, and between two sweep rounds; after unlocking and running `destroy` again:
/// nothing tagged for the cluster left, no delete call twice, the foreign resources kept.
#[cfg(feature = "test-actions")]
#[test]
fn sigkill_anywhere_in_a_destroy_then_destroy_again_converges_deleting_nothing_twice() {
    let lab = Lab::new();
    let root = tempfile::tempdir().unwrap();
    let steps = [
        "destroy-plan",
        "destroy-retire",
        "destroy-node-pools",
        "destroy-cluster",
        "destroy-sweep",
    ];
    let mut points = kill_points(&steps, &[]);
    for (step, label) in [
        ("destroy-retire", "retired"),
        ("destroy-node-pools", "intent-delete-node-pool"),
        ("destroy-node-pools", "deleted-node-pool"),
        ("destroy-cluster", "intent-delete-cluster"),
        ("destroy-cluster", "deleted-cluster"),
        ("destroy-sweep", "intent-delete-load-balancer"),
        ("destroy-sweep", "deleted-load-balancer"),
        ("destroy-sweep", "deleted-network-interface"),
        ("destroy-sweep", "intent-delete-security-group"),
        ("destroy-sweep", "round-1"),
    ] {
        points.push(format!("{step}:at:{label}"));
    }
    let calls = |lab: &Lab| {
        let w = lab.front.world();
        [
            "eks:DeleteNodegroup",
            "eks:DeleteCluster",
            "elasticloadbalancing:DeleteLoadBalancer",
            "ec2:DeleteNetworkInterface",
            "ec2:DeleteSecurityGroup",
        ]
        .map(|op| w.count(op))
    };
    for (i, point) in points.iter().enumerate() {
        let name = format!("d{i:02}");
        let dir = root.path().join(&name);
        let (spec, state) = installed(&lab, &dir, &name);
        let made = make_leftovers(&lab, &name);
        let before = calls(&lab);
        if !point.starts_with("destroy-plan:") {
            let (code, v, err) = destroy(&spec, &state, &[], &[]);
            assert_eq!(code, 3, "{point}: {v} {err}");
            assert_eq!(approve(&state, 1).status.code(), Some(0));
        }
        let mut c = realmctl();
        aws(&mut c);
        let o = c
            .env("REALMCTL_TEST_KILL_AT", point)
            .args(["destroy", "--yes", "--retry-base-ms", "10", "-f"])
            .arg(&spec)
            .arg("--state")
            .arg(&state)
            .arg("--playbook")
            .arg(moto_playbook(&spec))
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            o.status.signal(),
            Some(9),
            "{point}: not killed: {:?}",
            text(&o)
        );
        assert_kill_landed(&state, point);
        unlock(&state);
        let (code, v, err) = destroy_approved(&spec, &state, &[]);
        assert_eq!(code, 0, "{point}: {v} {err}");
        assert!(!lab.clusters().contains_key(&name), "{point}");
        let now = existing(&lab);
        for gone in [&made.lb, &made.eni, &made.sg] {
            assert!(!now.contains(gone), "{point}: {gone} left");
        }
        for kept in [
            &made.volume,
            &made.foreign_volume,
            &made.foreign_sg,
            &made.shared_sg,
        ] {
            assert!(now.contains(kept), "{point}: {kept} deleted");
        }
        assert_retired(&spec, &state);
        let after = calls(&lab);
        for (k, (a, b)) in after.iter().zip(before).enumerate() {
            // A kill between an intent and its call leaves the call to the resumed run: still
            // one call per resource.
            assert_eq!(a - b, 1, "{point}: call {k} made {} times", a - b);
        }
    }
}

/// A realm whose install never finished: one that stopped at the phase-5 gate has nothing in the
/// cloud, and its destroy plans nothing and completes; one killed right after the cluster's
/// create call (its intent journaled, no success recorded) has its cluster deleted.
#[cfg(feature = "test-actions")]
#[test]
fn a_destroy_of_a_realm_whose_install_never_finished_deletes_what_its_intents_name() {
    let lab = Lab::new();
    let root = tempfile::tempdir().unwrap();
    // Stopped at the gate: nothing was created.
    let (spec, pb, state) = crate::eks_moto::crash_case(&lab, root.path(), "gate");
    let env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let (code, _, _) = crate::eks_moto::install_once(&spec, &state, &pb);
    assert_eq!(code, 3);
    let p = plan(&spec, &state, &[]);
    assert!(ids(&p, "delete").is_empty(), "{p}");
    let (code, v, err) = destroy_approved(&spec, &state, &[]);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(
        status(&state)["report"]["summary"],
        "the realm is destroyed"
    );

    // Killed right after the create call: the cluster exists, only its intent says whose.
    let (spec, pb, state) = crate::eks_moto::crash_case(&lab, root.path(), "killed");
    crate::eks_moto::to_gate_and_approve(&spec, &state, &pb, &env);
    crate::eks_moto::killed_at(&spec, &state, &pb, "cluster:at:created-cluster", &env);
    assert!(lab.clusters().contains_key("killed"));
    unlock(&state);
    let p = plan(&spec, &state, &[]);
    assert_eq!(ids(&p, "delete"), ["killed"], "{p}");
    let (code, v, err) = destroy_approved(&spec, &state, &[]);
    assert_eq!(code, 0, "{v} {err}");
    assert!(!lab.clusters().contains_key("killed"));
}
