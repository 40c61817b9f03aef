//! Sizing the worker node pool from the realm's RTUs (pure, over `playbooks/requirements/
//! sizing.yaml`; the rules are explained in `docs/sizing.md`).
//!
//! Demand = RTUs × (vCPU, memory) of one RTU + the platform's own services, times (1 +
//! headroom). Each node offers its shape's vCPU and memory times the allocatable share. The
//! desired node count covers the larger of the two demands and is never below the minimum (one
//! node per zone); the pool may grow to `maxFactor` × desired. The smallest shape that needs at
//! most `preferAtMost` nodes is chosen, else the largest shape.

use serde::Serialize;

use crate::requirements::{QuotaRequirements, Shape, SizingRequirements};
use crate::spec::{Provider, SubscriptionSpec};

/// The node pool a realm gets.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolSize {
    /// The shape (instance type, VM size, machine type).
    pub shape: Shape,
    /// Fewest nodes.
    pub min: u32,
    /// Nodes to start with.
    pub desired: u32,
    /// Most nodes.
    pub max: u32,
    /// The realm's RTUs (Test and Prod together).
    pub rtus: u64,
    /// vCPU the realm needs, headroom included.
    pub vcpu_needed: f64,
    /// Memory the realm needs in GiB, headroom included.
    pub memory_gib_needed: f64,
}

impl PoolSize {
    /// vCPU of the pool at its maximum size (what the region's vCPU quota must cover).
    pub fn max_vcpu(&self) -> u64 {
        u64::from(self.max) * u64::from(self.shape.vcpu)
    }

    /// Subnet addresses the pool may take at its maximum size (EKS VPC CNI).
    pub fn max_pod_addresses(&self) -> u64 {
        u64::from(self.max) * u64::from(self.shape.pod_addresses)
    }
}

/// The realm's RTUs in both environments: subscriptions × RTUs per subscription + extras.
pub fn rtus(sub: &SubscriptionSpec, quota: &QuotaRequirements) -> u64 {
    let per = &quota.rtus_per_subscription;
    u64::from(sub.pipeline_subscriptions) * (per.test + per.prod)
        + u64::from(sub.extra_test_rtus)
        + u64::from(sub.extra_prod_rtus)
}

fn nodes_for(need: f64, per_node: f64) -> u32 {
    if per_node <= 0.0 {
        return u32::MAX;
    }
    let n = (need / per_node).ceil();
    if n >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        n.max(0.0) as u32
    }
}

/// Sizes one shape for a demand (pure).
fn size_with(shape: &Shape, vcpu: f64, mem: f64, s: &SizingRequirements) -> (u32, u32) {
    let desired = nodes_for(vcpu, f64::from(shape.vcpu) * s.allocatable)
        .max(nodes_for(mem, f64::from(shape.memory_gib) * s.allocatable))
        .max(s.nodes.min);
    let max = (f64::from(desired) * s.nodes.max_factor).ceil();
    let max = if max >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        (max as u32).max(desired)
    };
    (desired, max)
}

/// The node pool for `sub` on `provider`.
pub fn pool(
    provider: Provider,
    sub: &SubscriptionSpec,
    quota: &QuotaRequirements,
    s: &SizingRequirements,
) -> PoolSize {
    let rtus = rtus(sub, quota);
    let grow = 1.0 + s.headroom;
    let vcpu = (rtus as f64 * s.rtu.vcpu + s.platform.vcpu) * grow;
    let mem = (rtus as f64 * s.rtu.memory_gib + s.platform.memory_gib) * grow;
    let shapes = s.shapes.for_provider(provider);
    let chosen = shapes
        .iter()
        .find(|sh| size_with(sh, vcpu, mem, s).0 <= s.nodes.prefer_at_most)
        .or(shapes.last())
        .expect("every cloud has shapes (unit-tested)");
    let (desired, max) = size_with(chosen, vcpu, mem, s);
    PoolSize {
        shape: chosen.clone(),
        min: s.nodes.min,
        desired,
        max,
        rtus,
        vcpu_needed: vcpu,
        memory_gib_needed: mem,
    }
}

/// The node pool of a realm with the embedded requirement data.
pub fn for_realm(provider: Provider, sub: &SubscriptionSpec) -> PoolSize {
    let r = crate::requirements::embedded();
    pool(provider, sub, &r.quota, &r.sizing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(subs: u32, test: u32, prod: u32) -> SubscriptionSpec {
        SubscriptionSpec {
            pipeline_subscriptions: subs,
            extra_test_rtus: test,
            extra_prod_rtus: prod,
        }
    }

    /// (subscriptions, extra Test, extra Prod) → (RTUs, shape, desired, max) for EKS.
    #[test]
    fn eks_table() {
        let rows = [
            ((1, 0, 0), (3, "m6i.xlarge", 3, 6)),
            ((10, 0, 0), (30, "m6i.xlarge", 7, 14)),
            ((10, 5, 5), (40, "m6i.xlarge", 9, 18)),
            ((40, 0, 0), (120, "m6i.xlarge", 23, 46)),
            ((50, 0, 0), (150, "m6i.2xlarge", 14, 28)),
            ((60, 0, 0), (180, "m6i.2xlarge", 17, 34)),
            ((200, 0, 0), (600, "m6i.4xlarge", 27, 54)),
            ((1000, 0, 0), (3000, "m6i.4xlarge", 131, 262)),
        ];
        for ((s, t, p), (rtus, shape, desired, max)) in rows {
            let got = for_realm(Provider::Eks, &sub(s, t, p));
            assert_eq!(
                (got.rtus, got.shape.name.as_str(), got.desired, got.max),
                (rtus, shape, desired, max),
                "{s} subscriptions, +{t} Test, +{p} Prod"
            );
            assert!(got.min <= got.desired && got.desired <= got.max);
            assert_eq!(
                got.max_vcpu(),
                u64::from(got.max) * u64::from(got.shape.vcpu)
            );
        }
    }

    #[test]
    fn every_cloud_has_shapes_of_the_same_sizes() {
        for p in [Provider::Eks, Provider::Aks, Provider::Gke] {
            for (s, (desired, max)) in [(1, (3, 6)), (10, (7, 14)), (40, (23, 46))] {
                let got = for_realm(p, &sub(s, 0, 0));
                assert_eq!((got.desired, got.max), (desired, max), "{p} {s}");
                assert_eq!(got.shape.vcpu, 4, "{p}: smallest shape first");
            }
        }
    }

    #[test]
    fn extra_rtus_count_like_subscription_rtus_and_memory_can_decide() {
        let a = for_realm(Provider::Eks, &sub(10, 0, 0));
        let b = for_realm(Provider::Eks, &sub(1, 13, 14));
        assert_eq!(a.rtus, b.rtus);
        assert_eq!(a.desired, b.desired);
        // A memory-heavy RTU definition makes memory the deciding demand.
        let r = crate::requirements::embedded();
        let mut s = r.sizing.clone();
        s.rtu.memory_gib = 4.0;
        let m = pool(Provider::Eks, &sub(10, 0, 0), &r.quota, &s);
        let cpu_only = nodes_for(m.vcpu_needed, 4.0 * s.allocatable);
        assert!(m.desired > cpu_only, "{m:?}");
    }

    #[test]
    fn the_minimum_holds_for_tiny_realms_and_huge_ones_do_not_overflow() {
        let r = crate::requirements::embedded();
        let tiny = pool(Provider::Gke, &sub(1, 0, 0), &r.quota, &r.sizing);
        assert_eq!(tiny.desired, r.sizing.nodes.min);
        let huge = for_realm(Provider::Aks, &sub(u32::MAX, u32::MAX, u32::MAX));
        assert!(huge.max >= huge.desired);
        assert_eq!(huge.shape.name, "Standard_D16s_v5");
    }
}
