//! What the customer approves is what gets built (issue #16), through the binary against the
//! AWS stand-in, with boto3 (an AWS client nobody here wrote) reading back what the cloud holds:
//! the cluster and node pool equal, field by field, the definition the customer approved; and
//! after an approval, a change of size, version, network or API exposure stops the install at
//! the phase-5 gate (exit 3) with nothing created until the new definition is approved.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::AwsStandIn;
use crate::engine_support::*;
use realmctl::cloud::definition::ClusterDefinition;

/// The cluster and node group as boto3 describes them (`describeCluster`,
/// `describeNodegroup`), with test keys; `endpoint` is the stand-in or moto.
pub(crate) fn boto3_describe(endpoint: &str, cluster: &str, pool: &str) -> (Value, Value) {
    let script = r#"
import json, sys, boto3
eks = boto3.client("eks", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
c = eks.describe_cluster(name=sys.argv[2])["cluster"]
n = eks.describe_nodegroup(clusterName=sys.argv[2], nodegroupName=sys.argv[3])["nodegroup"]
print(json.dumps({"cluster": c, "nodegroup": n}, default=str))
"#;
    let o = std::process::Command::new("python3")
        .args(["-c", script, endpoint, cluster, pool])
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    (v["cluster"].clone(), v["nodegroup"].clone())
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Every field of the approved definition, as boto3 reads it from the cloud.
pub(crate) fn assert_cloud_holds(def: &ClusterDefinition, cluster: &Value, ng: &Value) {
    let vpc = &cluster["resourcesVpcConfig"];
    assert_eq!(cluster["name"], def.cluster.name.as_str());
    assert_eq!(cluster["version"], def.cluster.kubernetes_version.as_str());
    assert_eq!(
        cluster["roleArn"].as_str(),
        def.cluster.control_plane_identity.as_deref()
    );
    let mut subnets = def.cluster.network.subnets.clone();
    subnets.sort();
    assert_eq!(strings(&vpc["subnetIds"]), subnets);
    assert_eq!(
        vpc["endpointPrivateAccess"],
        def.cluster.api_access.private(),
        "{vpc}"
    );
    assert_eq!(
        vpc["endpointPublicAccess"],
        def.cluster.api_access.public_cidrs().is_some(),
        "{vpc}"
    );
    if let Some(cidrs) = def.cluster.api_access.public_cidrs() {
        let mut want: Vec<String> = cidrs.iter().map(ToString::to_string).collect();
        want.sort();
        assert_eq!(strings(&vpc["publicAccessCidrs"]), want);
    }
    for (k, v) in &def.cluster.tags {
        assert_eq!(cluster["tags"][k], v.as_str(), "cluster tag {k}");
    }
    let p = &def.pools[0];
    assert_eq!(ng["nodegroupName"], p.nodes.name.as_str());
    assert_eq!(ng["nodeRole"].as_str(), p.nodes.node_identity.as_deref());
    let mut want = p.nodes.subnets.clone();
    want.sort();
    assert_eq!(strings(&ng["subnets"]), want);
    assert_eq!(ng["instanceTypes"], serde_json::json!([p.nodes.shape]));
    let sc = &ng["scalingConfig"];
    assert_eq!(
        (
            sc["minSize"].as_u64(),
            sc["maxSize"].as_u64(),
            sc["desiredSize"].as_u64()
        ),
        (
            Some(u64::from(p.nodes.min)),
            Some(u64::from(p.nodes.max)),
            Some(u64::from(p.nodes.desired))
        )
    );
    let realmctl::cloud::definition::NodeImageDef::Default(ami) = &p.nodes.image else {
        panic!("a custom image");
    };
    assert_eq!(ng["amiType"], ami.as_str());
    for (k, v) in &p.nodes.labels {
        assert_eq!(ng["labels"][k], v.as_str(), "node label {k}");
    }
    for (k, v) in &p.nodes.tags {
        assert_eq!(ng["tags"][k], v.as_str(), "node group tag {k}");
    }
}

/// The definition the last phase-5 approval of `state` named, from the journal.
pub(crate) fn approved_definition(state: &Path) -> ClusterDefinition {
    let j = realmctl::engine::io::journal::Journal::open_read_only(state).unwrap();
    let st = realmctl::engine::run::load_state(&j).unwrap();
    let digest = st
        .approvals
        .iter()
        .rev()
        .find_map(|a| a.definition.clone())
        .expect("an approval names a definition");
    st.definitions[&digest].clone()
}

#[test]
fn after_approval_a_change_of_size_version_network_or_exposure_stops_at_the_gate() {
    let aws = AwsStandIn::start(Duration::from_millis(100));
    {
        // A third subnet, in a third zone, for the network change.
        let mut w = aws.world();
        w.subnets.push(realmctl_standins::Subnet {
            id: "subnet-0aaaaaaaaaaaaaaa2".into(),
            network: "vpc-0test000000000000".into(),
            zone: Some("us-east-1c".into()),
            cidr: "10.9.32.0/20".into(),
            free: 4091,
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let (spec, pb, state) = crate::eks_install::case(&aws, dir.path(), "digibee-acme");
    let env_install = || crate::eks_moto::install_once(&spec, &state, &pb);
    let (code, v, err) = env_install();
    assert_eq!(code, 3, "{v} {err}");
    assert_eq!(approve(&state, 5).status.code(), Some(0));
    let edit = |from: &str, to: &str| {
        let t = std::fs::read_to_string(&spec).unwrap();
        assert!(t.contains(from), "{from} not in {t}");
        std::fs::write(&spec, t.replacen(from, to, 1)).unwrap();
    };
    // Each change in turn: the approval no longer holds, install stops at the gate, nothing is
    // created, and plan says which field changed.
    let changes: [(&str, &str, &str); 4] = [
        (
            "pipelineSubscriptions: 10",
            "pipelineSubscriptions: 40",
            "pools.workers.max: 14 → 46",
        ),
        (
            "kubernetesVersion: \"1.31\"",
            "kubernetesVersion: \"1.32\"",
            "kubernetesVersion: \"1.31\" → \"1.32\"",
        ),
        (
            "subnetIds: [subnet-0123456789abcdef0, subnet-0fedcba9876543210]",
            "subnetIds: [subnet-0123456789abcdef0, subnet-0fedcba9876543210, subnet-0aaaaaaaaaaaaaaa2]",
            "network.subnets",
        ),
        (
            "nodeImage: {type: default}",
            "nodeImage: {type: default}, apiAccess: {access: both, allowedCidrs: [203.0.113.0/24]}",
            "apiAccess.access: \"private\" → \"both\"",
        ),
    ];
    for (from, to, why) in changes {
        edit(from, to);
        let o = realmctl()
            .args(["plan", "-f"])
            .arg(&spec)
            .arg("--state")
            .arg(&state)
            .arg("--playbook")
            .arg(&pb)
            .output()
            .unwrap();
        let plan = text(&o).0;
        assert!(
            plan.contains("is no longer what the spec asks for") && plan.contains(why),
            "{why}: {plan}"
        );
        let (code, v, err) = env_install();
        assert_eq!(code, 3, "{why}: {v} {err}");
        assert!(
            v["message"].as_str().unwrap().contains("phase 5 waits"),
            "{v}"
        );
        assert!(
            aws.world().clusters.is_empty(),
            "{why}: created before approval"
        );
        assert_eq!(aws.world().count("eks:CreateCluster"), 0);
        assert_eq!(approve(&state, 5).status.code(), Some(0));
    }
    let (code, v, err) = env_install();
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(aws.world().count("eks:CreateCluster"), 1);
    // What the cloud holds is the last approved definition, field by field, as boto3 reads it.
    let def = approved_definition(&state);
    assert_eq!(def.cluster.kubernetes_version, "1.32");
    assert_eq!(def.pools[0].nodes.max, 46);
    assert_eq!(def.cluster.network.subnets.len(), 3);
    let (cluster, ng) = boto3_describe(&aws.url(), &def.cluster.name, &def.pools[0].nodes.name);
    assert_cloud_holds(&def, &cluster, &ng);
    // The report shows the approved digest next to the built one, equal.
    let o = realmctl()
        .args(["report", "--format", "json", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let rep: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["definition"]["approved"], def.digest().as_str());
    assert_eq!(rep["definition"]["built"], def.digest().as_str());
    assert_eq!(rep["definition"]["matches"], true);
}
