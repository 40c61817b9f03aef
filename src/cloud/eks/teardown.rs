//! Tearing an EKS realm down: deleting its managed node groups and cluster (EKS), and listing
//! and deleting what controllers made for the cluster, found by its ownership tags: load
//! balancers (Elastic Load Balancing v2, tags read with `DescribeTags`), network interfaces,
//! EBS volumes and security groups (EC2 `tag:KEY` filters). What is deleted is decided by
//! [`crate::cloud::teardown`]; this file only lists and deletes.

use std::collections::BTreeMap;

use futures::FutureExt;

use super::EksProvider;
use super::errors::classify;
use super::vpn::{ec2_map, filter};
use crate::cloud::teardown::{Found, Mark, ResourceKind, SweepQuery, Teardown};
use crate::cloud::{CloudError, CloudErrorKind, CloudFuture};

/// The most ARNs one `DescribeTags` call takes.
const TAGS_PER_CALL: usize = 20;

/// The EC2 filter that finds a mark: `tag:KEY=VALUE`, or `tag-key=KEY` for any value.
fn mark_filter(m: &Mark) -> aws_sdk_ec2::types::Filter {
    match &m.value {
        Some(v) => filter(&format!("tag:{}", m.key), &[v]),
        None => filter("tag-key", &[&m.key]),
    }
}

/// Deleting something already gone is done.
fn gone_is_done(r: Result<(), CloudError>) -> Result<(), CloudError> {
    match r {
        Err(e) if e.kind == CloudErrorKind::NotFound => Ok(()),
        r => r,
    }
}

impl EksProvider {
    async fn security_groups(&self, m: &Mark) -> Result<Vec<Found>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self
            .ec2
            .describe_security_groups()
            .filters(mark_filter(m))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ec2:DescribeSecurityGroups", &e))?;
            for g in page.security_groups() {
                let id = g.group_id().unwrap_or_default().to_owned();
                out.push(Found {
                    kind: ResourceKind::SecurityGroup,
                    name: g.group_name().map_or_else(|| id.clone(), str::to_owned),
                    id,
                    tags: ec2_map(g.tags()),
                    within: None,
                });
            }
        }
        Ok(out)
    }

    async fn interfaces(&self, m: &Mark) -> Result<Vec<Found>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self
            .ec2
            .describe_network_interfaces()
            .filters(mark_filter(m))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ec2:DescribeNetworkInterfaces", &e))?;
            for n in page.network_interfaces() {
                let id = n.network_interface_id().unwrap_or_default().to_owned();
                out.push(Found {
                    kind: ResourceKind::NetworkInterface,
                    name: id.clone(),
                    id,
                    tags: ec2_map(n.tag_set()),
                    within: None,
                });
            }
        }
        Ok(out)
    }

    async fn volumes(&self, m: &Mark) -> Result<Vec<Found>, CloudError> {
        let mut out = Vec::new();
        let mut pages = self
            .ec2
            .describe_volumes()
            .filters(mark_filter(m))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ec2:DescribeVolumes", &e))?;
            for v in page.volumes() {
                let id = v.volume_id().unwrap_or_default().to_owned();
                out.push(Found {
                    kind: ResourceKind::Volume,
                    name: id.clone(),
                    id,
                    tags: ec2_map(v.tags()),
                    within: None,
                });
            }
        }
        Ok(out)
    }

    /// Every load balancer of the region with its tags (ELBv2 cannot filter by tag); the caller
    /// keeps those carrying a mark.
    async fn load_balancers(&self) -> Result<Vec<Found>, CloudError> {
        let mut all = Vec::new();
        let mut pages = self.elb.describe_load_balancers().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| classify("elasticloadbalancing:DescribeLoadBalancers", &e))?;
            for lb in page.load_balancers() {
                let arn = lb.load_balancer_arn().unwrap_or_default().to_owned();
                all.push((arn, lb.load_balancer_name().unwrap_or_default().to_owned()));
            }
        }
        let mut tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for chunk in all.chunks(TAGS_PER_CALL) {
            let out = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.iter().map(|(a, _)| a.clone()).collect()))
                .send()
                .await
                .map_err(|e| classify("elasticloadbalancing:DescribeTags", &e))?;
            for d in out.tag_descriptions() {
                let map = d
                    .tags()
                    .iter()
                    .filter_map(|t| {
                        Some((
                            t.key()?.to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        ))
                    })
                    .collect();
                tags.insert(d.resource_arn().unwrap_or_default().to_owned(), map);
            }
        }
        Ok(all
            .into_iter()
            .map(|(arn, name)| Found {
                kind: ResourceKind::LoadBalancer,
                tags: tags.remove(&arn).unwrap_or_default(),
                within: None,
                id: arn,
                name,
            })
            .collect())
    }
}

impl Teardown for EksProvider {
    fn leftovers<'a>(
        &'a self,
        kind: ResourceKind,
        query: &'a SweepQuery,
    ) -> CloudFuture<'a, Vec<Found>> {
        async move {
            let mut out = Vec::new();
            if kind == ResourceKind::LoadBalancer {
                out = self.load_balancers().await?;
                out.retain(|f| query.marks.iter().any(|m| m.on(&f.tags)));
            } else {
                for m in &query.marks {
                    out.extend(match kind {
                        ResourceKind::SecurityGroup => self.security_groups(m).await?,
                        ResourceKind::NetworkInterface => self.interfaces(m).await?,
                        ResourceKind::Volume => self.volumes(m).await?,
                        // AWS load balancers hold no separate public address, and AWS has no
                        // resource groups: nothing of these kinds is swept.
                        ResourceKind::PublicAddress | ResourceKind::ResourceGroup => Vec::new(),
                        other => {
                            return Err(CloudError::new(
                                CloudErrorKind::Invalid,
                                "destroy:list",
                                format!("the sweep does not list {other}s"),
                            ));
                        }
                    });
                }
            }
            out.sort();
            out.dedup_by(|a, b| a.id == b.id);
            Ok(out)
        }
        .boxed()
    }

    fn delete<'a>(&'a self, found: &'a Found) -> CloudFuture<'a, ()> {
        async move {
            let id = found.id.as_str();
            gone_is_done(match found.kind {
                ResourceKind::Cluster => self
                    .eks
                    .delete_cluster()
                    .name(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| classify("eks:DeleteCluster", &e)),
                ResourceKind::NodePool => {
                    let (cluster, pool) = id.split_once('/').ok_or_else(|| {
                        CloudError::new(
                            CloudErrorKind::Invalid,
                            "eks:DeleteNodegroup",
                            format!("node pool id `{id}` is not CLUSTER/POOL"),
                        )
                    })?;
                    self.eks
                        .delete_nodegroup()
                        .cluster_name(cluster)
                        .nodegroup_name(pool)
                        .send()
                        .await
                        .map(drop)
                        .map_err(|e| classify("eks:DeleteNodegroup", &e))
                }
                ResourceKind::LoadBalancer => self
                    .elb
                    .delete_load_balancer()
                    .load_balancer_arn(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| classify("elasticloadbalancing:DeleteLoadBalancer", &e)),
                ResourceKind::NetworkInterface => self
                    .ec2
                    .delete_network_interface()
                    .network_interface_id(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| classify("ec2:DeleteNetworkInterface", &e)),
                ResourceKind::Volume => self
                    .ec2
                    .delete_volume()
                    .volume_id(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| classify("ec2:DeleteVolume", &e)),
                ResourceKind::SecurityGroup => self
                    .ec2
                    .delete_security_group()
                    .group_id(id)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| classify("ec2:DeleteSecurityGroup", &e)),
                ResourceKind::PublicAddress | ResourceKind::ResourceGroup => {
                    Err(CloudError::new(
                        CloudErrorKind::Invalid,
                        "destroy:delete",
                        format!("AWS has no {} to delete", found.kind),
                    ))
                }
                ResourceKind::Vpn(part) => Err(CloudError::new(
                    CloudErrorKind::Invalid,
                    "destroy:delete",
                    format!("the VPN {part} is deleted with its definition (VpnManager::delete_vpn_part)"),
                )),
            })
        }
        .boxed()
    }
}
