//! Version upgrades in the neutral world, with the rules every managed Kubernetes service
//! enforces (EKS `UpdateClusterVersion`/`UpdateNodegroupVersion`, AKS's managed cluster and agent
//! pool `PUT`s, GKE `updateMaster`/`nodePools.update`): only a ready resource, only an offered
//! version, the control plane one minor at a time and never down, never leaving a pool more
//! than three minors behind it (the Kubernetes version skew policy for kubelets), and a pool
//! never newer than its control plane. Each cloud's adapter maps a [`Refused`] onto its own
//! error shape.

use std::time::Instant;

use crate::world::{Phase, World};

/// Why an upgrade was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No such cluster or pool.
    NotFound(String),
    /// It is not ready (being created, changed or deleted).
    Busy(String),
    /// The version may not be asked for.
    Invalid(String),
}

/// `MAJOR.MINOR` as numbers (a patch or a suffix is ignored).
pub fn minor_of(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split(['.', '-']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

impl World {
    /// Starts upgrading the control plane of `cluster` to `version` (`MAJOR.MINOR`).
    pub fn upgrade_cluster(&mut self, cluster: &str, version: &str) -> Result<(), Refused> {
        let c = self
            .clusters
            .get(cluster)
            .ok_or_else(|| Refused::NotFound(format!("cluster {cluster}")))?;
        if self.cluster_phase(c) != Phase::Ready {
            return Err(Refused::Busy(format!(
                "cluster {cluster} is not ready for an update"
            )));
        }
        if minor_of(version).is_none()
            || !self
                .versions
                .iter()
                .any(|v| minor_of(v) == minor_of(version))
        {
            return Err(Refused::Invalid(format!(
                "unsupported Kubernetes version {version}"
            )));
        }
        let (Some(from), Some(to)) = (minor_of(&c.version), minor_of(version)) else {
            return Err(Refused::Invalid(format!("version {version} is malformed")));
        };
        if to.0 != from.0 || to.1 != from.1 + 1 {
            return Err(Refused::Invalid(format!(
                "unsupported Kubernetes minor version update from {} to {version}",
                c.version
            )));
        }
        for p in self.pools.values().filter(|p| p.cluster == cluster) {
            if minor_of(&p.version).is_none_or(|m| m.1 + 3 < to.1) {
                return Err(Refused::Invalid(format!(
                    "node pool {} runs Kubernetes {}, more than three minor versions behind {version}",
                    p.name, p.version
                )));
            }
        }
        let c = self.clusters.get_mut(cluster).expect("looked up above");
        c.version = version.to_owned();
        c.updating = Some(Instant::now());
        Ok(())
    }

    /// Starts upgrading node pool `pool` of `cluster` to `version`.
    pub fn upgrade_pool(
        &mut self,
        cluster: &str,
        pool: &str,
        version: &str,
    ) -> Result<(), Refused> {
        let c = self
            .clusters
            .get(cluster)
            .ok_or_else(|| Refused::NotFound(format!("cluster {cluster}")))?;
        let key = (cluster.to_owned(), pool.to_owned());
        let p = self
            .pools
            .get(&key)
            .ok_or_else(|| Refused::NotFound(format!("node pool {pool}")))?;
        if self.cluster_phase(c) != Phase::Ready || self.pool_phase(p) != Phase::Ready {
            return Err(Refused::Busy(format!(
                "node pool {pool} or its cluster is not ready for an update"
            )));
        }
        let (Some(cp), Some(now), Some(to)) = (
            minor_of(&c.version),
            minor_of(&p.version),
            minor_of(version),
        ) else {
            return Err(Refused::Invalid(format!("version {version} is malformed")));
        };
        if to > cp {
            return Err(Refused::Invalid(format!(
                "node pool version {version} is newer than the control plane's {}",
                c.version
            )));
        }
        if to < now {
            return Err(Refused::Invalid(format!(
                "node pool {pool} runs {}; it cannot be downgraded to {version}",
                p.version
            )));
        }
        let p = self.pools.get_mut(&key).expect("looked up above");
        p.version = version.to_owned();
        p.updating = Some(Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{ApiEndpoint, Cluster, Pool};
    use std::time::Duration;

    fn world() -> World {
        let mut w = World::new("a", "r", "p");
        w.versions = vec!["1.33".into(), "1.34".into(), "1.35".into()];
        w.create_delay = Duration::ZERO;
        let at = Instant::now();
        w.clusters.insert(
            "c".into(),
            Cluster {
                name: "c".into(),
                version: "1.34".into(),
                api: ApiEndpoint::default(),
                subnets: vec![],
                identity: None,
                tags: Default::default(),
                created: at,
                created_epoch: 0.0,
                fail: None,
                deleting: false,
                updating: None,
            },
        );
        w.pools.insert(
            ("c".into(), "p".into()),
            Pool {
                cluster: "c".into(),
                name: "p".into(),
                identity: None,
                subnets: vec![],
                shape: "s".into(),
                scaling: (1, 1, 1),
                image: "i".into(),
                labels: Default::default(),
                tags: Default::default(),
                created: at,
                created_epoch: 0.0,
                fail: None,
                version: "1.34".into(),
                updating: None,
            },
        );
        w
    }

    #[test]
    fn the_control_plane_moves_one_offered_minor_up_then_the_pool_follows() {
        let mut w = world();
        assert!(matches!(
            w.upgrade_cluster("c", "1.33"),
            Err(Refused::Invalid(_))
        ));
        assert!(matches!(
            w.upgrade_cluster("c", "1.36"),
            Err(Refused::Invalid(_))
        ));
        assert!(matches!(
            w.upgrade_pool("c", "p", "1.35"),
            Err(Refused::Invalid(_))
        ));
        w.upgrade_cluster("c", "1.35").unwrap();
        assert_eq!(w.clusters["c"].version, "1.35");
        assert!(matches!(
            w.upgrade_pool("c", "p", "1.33"),
            Err(Refused::Invalid(_))
        ));
        w.upgrade_pool("c", "p", "1.35").unwrap();
        assert_eq!(w.pools[&("c".into(), "p".into())].version, "1.35");
    }

    #[test]
    fn an_updating_cluster_refuses_another_update_and_a_lagging_pool_blocks_the_skew() {
        let mut w = world();
        w.create_delay = Duration::from_secs(60);
        w.clusters.get_mut("c").unwrap().created = Instant::now() - Duration::from_secs(120);
        w.pools.get_mut(&("c".into(), "p".into())).unwrap().created =
            Instant::now() - Duration::from_secs(120);
        w.upgrade_cluster("c", "1.35").unwrap();
        assert_eq!(w.cluster_phase(&w.clusters["c"]), Phase::Updating);
        assert!(matches!(
            w.upgrade_pool("c", "p", "1.35"),
            Err(Refused::Busy(_))
        ));
        let mut w = world();
        w.pools.get_mut(&("c".into(), "p".into())).unwrap().version = "1.31".into();
        let e = w.upgrade_cluster("c", "1.35").unwrap_err();
        assert!(
            matches!(&e, Refused::Invalid(m) if m.contains("node pool p")),
            "{e:?}"
        );
    }
}
