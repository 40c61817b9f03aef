//! Whether an applied object is ready, by the rules kstatus (sigs.k8s.io/cli-utils) uses:
//! generation against observedGeneration first, then the `Stalled`/`Reconciling`/`Ready`
//! conditions, then the rules of each built-in kind (Deployment and StatefulSet rollouts,
//! LoadBalancer Services with an address, Jobs complete, CRDs Established, namespaces Active,
//! claims Bound). Anything else is ready once it exists. Pure; tested here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where an object stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "status", content = "why")]
pub enum Readiness {
    /// Ready (kstatus `Current`).
    Current,
    /// Not yet; why.
    InProgress(String),
    /// It will not become ready without a change; why.
    Failed(String),
}

impl Readiness {
    /// Whether it is ready.
    pub fn is_current(&self) -> bool {
        matches!(self, Readiness::Current)
    }
}

fn condition<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn said(c: &Value) -> String {
    let reason = c["reason"].as_str().unwrap_or("");
    let message = c["message"].as_str().unwrap_or("");
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_owned(),
        (true, false) => message.to_owned(),
        (true, true) => "no reason given".to_owned(),
    }
}

/// The readiness of `v` (an object as the API server answered it).
pub fn readiness(v: &Value) -> Readiness {
    use Readiness::*;
    if v["metadata"]["deletionTimestamp"].is_string() {
        return InProgress("being deleted".into());
    }
    let generation = v["metadata"]["generation"].as_i64();
    let observed = v["status"]["observedGeneration"].as_i64();
    if let (Some(g), Some(o)) = (generation, observed)
        && o < g
    {
        return InProgress(format!(
            "the controller has not seen generation {g} yet (observed {o})"
        ));
    }
    if let Some(c) = condition(v, "Stalled")
        && c["status"] == "True"
    {
        return Failed(format!("stalled: {}", said(c)));
    }
    if let Some(c) = condition(v, "Reconciling")
        && c["status"] == "True"
    {
        return InProgress(format!("reconciling: {}", said(c)));
    }
    let kind_rule = match v["kind"].as_str().unwrap_or("") {
        "Deployment" => deployment(v),
        "StatefulSet" => statefulset(v),
        "Service" => service(v),
        "Job" => job(v),
        "CustomResourceDefinition" => crd(v),
        "Namespace" => match v["status"]["phase"].as_str() {
            Some("Active") => Current,
            Some(p) => InProgress(format!("phase {p}")),
            None => InProgress("no phase yet".into()),
        },
        "PersistentVolumeClaim" => match v["status"]["phase"].as_str() {
            Some("Bound") => Current,
            Some("Lost") => Failed("the claim lost its volume".into()),
            Some(p) => InProgress(format!("phase {p}, not Bound yet")),
            None => InProgress("not Bound yet".into()),
        },
        _ => Current,
    };
    if !kind_rule.is_current() {
        return kind_rule;
    }
    if let Some(c) = condition(v, "Ready")
        && c["status"] == "False"
    {
        return InProgress(format!("not ready: {}", said(c)));
    }
    Current
}

fn deployment(v: &Value) -> Readiness {
    use Readiness::*;
    if v["status"]["observedGeneration"].is_null() {
        return InProgress("the controller has not seen it yet".into());
    }
    if let Some(c) = condition(v, "Progressing")
        && c["reason"] == "ProgressDeadlineExceeded"
    {
        return Failed(format!("rollout stopped: {}", said(c)));
    }
    let want = v["spec"]["replicas"].as_i64().unwrap_or(1);
    let s = &v["status"];
    if int(&s["updatedReplicas"]) < want {
        return InProgress(format!(
            "{}/{want} replicas updated",
            int(&s["updatedReplicas"])
        ));
    }
    if int(&s["replicas"]) > int(&s["updatedReplicas"]) {
        return InProgress(format!(
            "{} old replicas pending termination",
            int(&s["replicas"]) - int(&s["updatedReplicas"])
        ));
    }
    if int(&s["availableReplicas"]) < want {
        return InProgress(format!(
            "{}/{want} replicas available",
            int(&s["availableReplicas"])
        ));
    }
    Current
}

fn statefulset(v: &Value) -> Readiness {
    use Readiness::*;
    if v["status"]["observedGeneration"].is_null() {
        return InProgress("the controller has not seen it yet".into());
    }
    let want = v["spec"]["replicas"].as_i64().unwrap_or(1);
    let s = &v["status"];
    if int(&s["readyReplicas"]) < want {
        return InProgress(format!(
            "{}/{want} replicas ready",
            int(&s["readyReplicas"])
        ));
    }
    if s["updateRevision"] != s["currentRevision"] {
        return InProgress("a rolling update is in progress".into());
    }
    Current
}

fn service(v: &Value) -> Readiness {
    if v["spec"]["type"] != "LoadBalancer" {
        return Readiness::Current;
    }
    match v["status"]["loadBalancer"]["ingress"].as_array() {
        Some(a) if !a.is_empty() => Readiness::Current,
        _ => Readiness::InProgress("the load balancer has no address yet".into()),
    }
}

fn job(v: &Value) -> Readiness {
    if let Some(c) = condition(v, "Failed")
        && c["status"] == "True"
    {
        return Readiness::Failed(format!("the job failed: {}", said(c)));
    }
    match condition(v, "Complete") {
        Some(c) if c["status"] == "True" => Readiness::Current,
        _ => Readiness::InProgress(format!("{} succeeded", int(&v["status"]["succeeded"]))),
    }
}

fn crd(v: &Value) -> Readiness {
    if let Some(c) = condition(v, "NamesAccepted")
        && c["status"] == "False"
    {
        return Readiness::Failed(format!("names not accepted: {}", said(c)));
    }
    match condition(v, "Established") {
        Some(c) if c["status"] == "True" => Readiness::Current,
        _ => Readiness::InProgress("not Established yet".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(status: Value) -> Value {
        json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": status})
    }

    #[test]
    fn deployments_follow_generation_rollout_and_deadline() {
        assert!(matches!(
            readiness(&dep(json!({}))),
            Readiness::InProgress(_)
        ));
        let r = readiness(&dep(json!({"observedGeneration": 1})));
        assert!(
            matches!(&r, Readiness::InProgress(w) if w.contains("generation 2")),
            "{r:?}"
        );
        let r = readiness(&dep(
            json!({"observedGeneration": 2, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 1}),
        ));
        assert_eq!(r, Readiness::InProgress("1/2 replicas available".into()));
        let r = readiness(&dep(
            json!({"observedGeneration": 2, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 2}),
        ));
        assert_eq!(r, Readiness::Current);
        let r = readiness(&dep(json!({"observedGeneration": 2, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"x\" has timed out progressing."}]})));
        assert!(
            matches!(&r, Readiness::Failed(w) if w.contains("timed out")),
            "{r:?}"
        );
    }

    #[test]
    fn conditions_and_kinds_decide_the_rest() {
        let stalled = json!({"kind": "Widget", "status": {"conditions": [{"type": "Stalled", "status": "True", "reason": "Bad"}]}});
        assert_eq!(
            readiness(&stalled),
            Readiness::Failed("stalled: Bad".into())
        );
        let not_ready = json!({"kind": "Widget", "status": {"conditions": [{"type": "Ready", "status": "False", "message": "waiting"}]}});
        assert_eq!(
            readiness(&not_ready),
            Readiness::InProgress("not ready: waiting".into())
        );
        assert_eq!(readiness(&json!({"kind": "ConfigMap"})), Readiness::Current);
        let lb = json!({"kind": "Service", "spec": {"type": "LoadBalancer"}});
        assert!(!readiness(&lb).is_current());
        let lb = json!({"kind": "Service", "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}});
        assert!(readiness(&lb).is_current());
        let crd = json!({"kind": "CustomResourceDefinition", "status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert!(readiness(&crd).is_current());
        let job = json!({"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}});
        assert!(matches!(readiness(&job), Readiness::Failed(_)));
        let ns = json!({"kind": "Namespace", "metadata": {"deletionTimestamp": "x"}});
        assert_eq!(
            readiness(&ns),
            Readiness::InProgress("being deleted".into())
        );
        let sts = json!({"kind": "StatefulSet", "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "readyReplicas": 1, "currentRevision": "a", "updateRevision": "b"}});
        assert!(!readiness(&sts).is_current());
        let pvc = |phase: serde_json::Value| {
            readiness(&json!({"kind": "PersistentVolumeClaim", "status": {"phase": phase}}))
        };
        assert_eq!(pvc(json!("Bound")), Readiness::Current);
        assert_eq!(
            pvc(json!("Pending")),
            Readiness::InProgress("phase Pending, not Bound yet".into())
        );
        assert_eq!(
            pvc(serde_json::Value::Null),
            Readiness::InProgress("not Bound yet".into())
        );
        assert!(matches!(pvc(json!("Lost")), Readiness::Failed(_)));
    }
}
