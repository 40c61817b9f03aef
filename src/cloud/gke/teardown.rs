//! Tearing a GKE realm down: `nodePools.delete` and `clusters.delete` through the GKE API
//! (each GKE `Operation` followed until DONE), and the sweep over Compute Engine of what the
//! cluster's controllers leave behind when the cluster goes: forwarding rules (regional and
//! global) and persistent disks labelled `goog-k8s-cluster-name=<cluster>` (Compute's
//! `filter=labels.KEY="VALUE"`), and the firewall rules the service controller made for the
//! cluster (`k8s-…`, targeting only the cluster's node tag `gke-<cluster>-…-node`; firewall
//! rules carry no labels). Each is deleted by its `selfLink`, on the Compute endpoint only.
//! What is deleted is decided by [`crate::cloud::teardown`].

use std::collections::BTreeMap;

use futures::FutureExt;
use serde::Deserialize;
use serde_json::Value;

use super::vpn::Operation;
use super::{GkeProvider, errors};
use crate::cloud::teardown::{Found, Mark, ResourceKind, SweepQuery, Teardown};
use crate::cloud::{CloudError, CloudErrorKind, CloudFuture};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    name: String,
    self_link: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    target_tags: Vec<String>,
}

#[derive(Deserialize)]
struct List {
    #[serde(default)]
    items: Vec<Item>,
}

/// Compute's list filter for one label (pure).
pub fn label_filter(m: &Mark) -> Option<String> {
    let v = m.value.as_ref()?;
    Some(format!(
        "labels.{}=\"{}\"",
        m.key,
        v.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// Whether a firewall rule is one the cluster's controllers made for it (pure): named `k8s…`
/// and targeting only the cluster's node tag `gke-<cluster>-<hash>-node`.
pub fn clusters_firewall(name: &str, targets: &[String], cluster: &str) -> bool {
    let prefix = format!("gke-{cluster}-");
    name.starts_with("k8s")
        && !targets.is_empty()
        && targets.iter().all(|t| {
            t.strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix("-node"))
                .is_some_and(|hash| !hash.is_empty() && !hash.contains('-'))
        })
}

fn found(kind: ResourceKind, i: Item, within: Option<String>) -> Found {
    Found {
        kind,
        id: i.self_link,
        name: i.name,
        tags: i.labels,
        within,
    }
}

impl GkeProvider {
    async fn listed(&self, op: &str, url: &str) -> Result<Vec<Item>, CloudError> {
        Ok(self
            .rest()
            .await?
            .get::<List>(op, url)
            .await?
            .map(|l| l.items)
            .unwrap_or_default())
    }

    /// Disks of every zone (`aggregated/disks`), filtered.
    async fn disks(&self, filter: &str) -> Result<Vec<Item>, CloudError> {
        let url = format!(
            "{}?filter={}",
            self.compute("aggregated/disks"),
            url_escape(filter)
        );
        let v: Option<Value> = self
            .rest()
            .await?
            .get("compute:AggregatedListDisks", &url)
            .await?;
        let mut out = Vec::new();
        if let Some(items) = v
            .as_ref()
            .and_then(|v| v.get("items"))
            .and_then(Value::as_object)
        {
            for scoped in items.values() {
                if let Some(d) = scoped.get("disks") {
                    let list: Vec<Item> = serde_json::from_value(d.clone()).map_err(|e| {
                        CloudError::new(
                            CloudErrorKind::Invalid,
                            "compute:AggregatedListDisks",
                            e.to_string(),
                        )
                    })?;
                    out.extend(list);
                }
            }
        }
        Ok(out)
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Teardown for GkeProvider {
    fn leftovers<'a>(
        &'a self,
        kind: ResourceKind,
        query: &'a SweepQuery,
    ) -> CloudFuture<'a, Vec<Found>> {
        async move {
            let mut out = Vec::new();
            match kind {
                ResourceKind::LoadBalancer => {
                    for m in &query.marks {
                        let Some(f) = label_filter(m) else { continue };
                        for (op, path) in [
                            (
                                "compute:ListForwardingRules",
                                format!("regions/{}/forwardingRules", self.settings.region),
                            ),
                            (
                                "compute:ListGlobalForwardingRules",
                                "global/forwardingRules".into(),
                            ),
                        ] {
                            let url = format!("{}?filter={}", self.compute(&path), url_escape(&f));
                            out.extend(
                                self.listed(op, &url)
                                    .await?
                                    .into_iter()
                                    .map(|i| found(kind, i, None)),
                            );
                        }
                    }
                }
                ResourceKind::Volume => {
                    for m in &query.marks {
                        let Some(f) = label_filter(m) else { continue };
                        out.extend(
                            self.disks(&f)
                                .await?
                                .into_iter()
                                .map(|i| found(kind, i, None)),
                        );
                    }
                }
                ResourceKind::SecurityGroup => {
                    let all = self
                        .listed("compute:ListFirewalls", &self.compute("global/firewalls"))
                        .await?;
                    for i in all {
                        if let Some(c) = query.cluster.split(',').find(|c| {
                            !c.is_empty() && clusters_firewall(&i.name, &i.target_tags, c)
                        }) {
                            let why = format!("firewall rule for cluster {c}'s nodes only");
                            out.push(found(kind, i, Some(why)));
                        }
                    }
                }
                _ => {}
            }
            out.sort();
            out.dedup_by(|a, b| a.id == b.id);
            Ok(out)
        }
        .boxed()
    }

    fn delete<'a>(&'a self, f: &'a Found) -> CloudFuture<'a, ()> {
        async move {
            match f.kind {
                ResourceKind::Cluster => {
                    let op = "gke:DeleteCluster";
                    let sent = self
                        .gke()
                        .await?
                        .delete_cluster()
                        .set_name(self.cluster_path(&f.id))
                        .send()
                        .await;
                    match sent {
                        Ok(o) => self.follow(op, &o.name).await,
                        Err(e) => gone_is_done(errors::from_gax(op, &e)),
                    }
                }
                ResourceKind::NodePool => {
                    let op = "gke:DeleteNodePool";
                    let (cluster, pool) = f.id.split_once('/').ok_or_else(|| {
                        CloudError::new(
                            CloudErrorKind::Invalid,
                            op,
                            format!("node pool id `{}` is not CLUSTER/POOL", f.id),
                        )
                    })?;
                    let sent = self
                        .gke()
                        .await?
                        .delete_node_pool()
                        .set_name(format!("{}/nodePools/{pool}", self.cluster_path(cluster)))
                        .send()
                        .await;
                    match sent {
                        Ok(o) => self.follow(op, &o.name).await,
                        Err(e) => gone_is_done(errors::from_gax(op, &e)),
                    }
                }
                ResourceKind::Vpn(part) => Err(CloudError::new(
                    CloudErrorKind::Invalid,
                    "destroy:delete",
                    format!("the VPN {part} is deleted with its definition"),
                )),
                _ => {
                    let op = "compute:Delete";
                    // The selfLink a list answered: sent only to this project's Compute API.
                    if !f
                        .id
                        .starts_with(&format!("{}/", self.compute("").trim_end_matches('/')))
                    {
                        return Err(CloudError::new(
                            CloudErrorKind::Invalid,
                            op,
                            format!(
                                "{} is not in project {}'s Compute Engine API",
                                crate::text::one_line(&f.id),
                                self.settings.project
                            ),
                        ));
                    }
                    match self.rest().await?.delete::<Operation>(op, &f.id).await? {
                        Some(o) => self.finished(op, o).await,
                        None => Ok(()),
                    }
                }
            }
        }
        .boxed()
    }
}

fn gone_is_done(e: CloudError) -> Result<(), CloudError> {
    if e.kind == CloudErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rules_aimed_at_the_clusters_own_nodes_are_its() {
        let t = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert!(clusters_firewall(
            "k8s-fw-a1",
            &t(&["gke-c1-1a2b3c4d-node"]),
            "c1"
        ));
        assert!(!clusters_firewall(
            "k8s-fw-a1",
            &t(&["gke-c10-1a2b3c4d-node"]),
            "c1"
        ));
        assert!(!clusters_firewall(
            "k8s-fw-a1",
            &t(&["gke-c1-1a2b3c4d-node", "web"]),
            "c1"
        ));
        assert!(!clusters_firewall(
            "allow-ssh",
            &t(&["gke-c1-1a2b3c4d-node"]),
            "c1"
        ));
        assert!(!clusters_firewall("k8s-fw-a1", &[], "c1"));
        // A cluster named `c1-x` does not make `gke-c1-x-…-node` the cluster c1's.
        assert!(!clusters_firewall(
            "k8s-fw-a1",
            &t(&["gke-c1-x-1a2b3c4d-node"]),
            "c1"
        ));
    }

    #[test]
    fn label_filters_quote_their_value() {
        assert_eq!(
            label_filter(&Mark::exactly("goog-k8s-cluster-name", "c\"1")).unwrap(),
            "labels.goog-k8s-cluster-name=\"c\\\"1\""
        );
    }
}
