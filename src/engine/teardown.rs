//! Surveying a realm for `destroy` (I/O only): describes every cluster and node pool of the
//! journal's inventory and lists the leftovers carrying the ownership marks of the clusters this
//! realm created, and every part of the realm VPN; [`crate::engine::model::teardown::plan`]
//! decides. The same survey is what
//! `destroy --plan` prints and what the `destroy.plan` step journals for approval.

use crate::cloud::profile;
use crate::cloud::teardown::{Found, Mark, ResourceKind, SweepOptions, SweepQuery};
use crate::cloud::vpn::def::VpnDef;
use crate::cloud::vpn::{Built, Described, PartFacts, RouteTarget, VpnPart};
use crate::cloud::{Cloud, CloudError};
use crate::engine::model::teardown::{self, CreatedBy, DestroyPlan, Owned, RealmFacts};
use crate::spec::Spec;

/// What the cloud reports now for one inventory item (`None`: gone), with its status.
pub async fn describe(
    cloud: &dyn Cloud,
    owned: &Owned,
) -> Result<Option<(Found, crate::cloud::facts::Status)>, CloudError> {
    let found = |tags, status| {
        Some((
            Found {
                kind: owned.kind,
                id: owned.id(),
                name: owned.id(),
                tags,
                within: None,
            },
            status,
        ))
    };
    Ok(match (&owned.kind, &owned.pool) {
        (ResourceKind::NodePool, Some(pool)) => cloud
            .node_pool(&owned.cluster, pool)
            .await?
            .and_then(|p| found(p.described.tags, p.status)),
        _ => cloud
            .cluster(&owned.cluster)
            .await?
            .and_then(|c| found(c.described.tags, c.status)),
    })
}

/// The marks of the realm's swept clusters (its profile's data).
pub fn marks(spec: &Spec, clusters: &[String]) -> Vec<Mark> {
    let prof = profile::of(spec);
    clusters
        .iter()
        .flat_map(|c| prof.leftover_marks(c))
        .collect()
}

/// Every leftover carrying one of `marks`, kind by kind in deletion order.
pub async fn leftovers(
    cloud: &dyn Cloud,
    clusters: &[String],
    marks: &[Mark],
) -> Result<Vec<Found>, CloudError> {
    let mut out = Vec::new();
    if marks.is_empty() {
        return Ok(out);
    }
    let query = SweepQuery {
        cluster: clusters.join(","),
        marks: marks.to_vec(),
    };
    for kind in ResourceKind::SWEPT {
        out.extend(cloud.leftovers(kind, &query).await?);
    }
    Ok(out)
}

/// The destroy plan of `spec`'s realm from its journal's `state` and the cloud now.
pub async fn survey(
    cloud: &dyn Cloud,
    spec: &Spec,
    realm: &RealmFacts,
    options: SweepOptions,
) -> Result<DestroyPlan, CloudError> {
    let key = profile::of(spec).tag_keys().realm;
    let mut described = Vec::new();
    for owned in realm.inventory.iter().cloned() {
        let found = describe(cloud, &owned).await?.map(|(f, _)| f);
        described.push(teardown::Described { owned, found });
    }
    if let Some((def, created)) = &realm.vpn {
        let built = vpn_parts(cloud, def).await?;
        for part in VpnPart::ORDER.into_iter().rev() {
            described.push(teardown::Described {
                owned: Owned {
                    kind: ResourceKind::Vpn(part),
                    cluster: def.name.clone(),
                    pool: None,
                    created: if created.contains(&part) {
                        CreatedBy::ThisRealm
                    } else {
                        CreatedBy::Adoption
                    },
                },
                found: built.get(&part).and_then(|f| found_of(def, part, f)),
            });
        }
    }
    let clusters = teardown::swept(&described, key, &spec.name);
    let marks = marks(spec, &clusters);
    let found = leftovers(cloud, &clusters, &marks).await?;
    Ok(DestroyPlan {
        retire: realm.seeded.clone(),
        ..teardown::plan(&spec.name, key, &described, &found, &marks, options)
    })
}

/// The realm VPN's parts as the cloud describes them now, in build order (each described with
/// the ones before it, as `vpn.apply` does: the routes are found through the instance).
pub async fn vpn_parts(cloud: &dyn Cloud, def: &VpnDef) -> Result<Built, CloudError> {
    let mut built = Built::new();
    for part in VpnPart::ORDER {
        if let Some(f) = cloud.vpn_part(def, part, &built).await? {
            built.insert(part, f);
        }
    }
    Ok(built)
}

/// A described VPN part as a resource of the plan; routes only when some go through this
/// realm's instance (the others are not the realm's).
pub fn found_of(def: &VpnDef, part: VpnPart, facts: &PartFacts) -> Option<Found> {
    if let Described::Routes { routes, .. } = &facts.described
        && !routes
            .iter()
            .any(|r| matches!(r.target, RouteTarget::Host(_)))
    {
        return None;
    }
    Some(Found {
        kind: ResourceKind::Vpn(part),
        id: facts.id.clone(),
        name: def.name.clone(),
        tags: facts.tags.clone(),
        within: None,
    })
}
