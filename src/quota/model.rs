//! The subscription/RTU admission rules (pure), from the subscription model's "Main rules".
//!
//! - A pipeline subscription brings 1 Test RTU and 2 Prod RTUs; extra RTUs may be bought per
//!   environment. Test and Prod pools never mix.
//! - A deployment consumes `size × replicas` RTUs (Small 1, Medium 2, Large 4).
//! - A unique pipeline is (pipeline, major version) in one environment; two majors are two
//!   unique pipelines. One version per (pipeline, major, environment) is active: deploying 1.3
//!   over 1.2 replaces it and needs only the RTU difference.
//! - Check order before every deployment: platform usage quotas (`quota_exceeded`), then
//!   subscriptions (`no_pipeline_subscription`: unique pipelines deployed < subscriptions, a
//!   pipeline already counted passes), then RTUs of that environment (`insufficient_rtu`).
//!   Spare RTUs never run a pipeline without a subscription.
//!
//! [`decide`] is the whole decision; the ledger only gathers the realm's state and stores it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A platform environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Env {
    /// Test environment (Test RTUs).
    Test,
    /// Production environment (Prod RTUs).
    Prod,
}

impl Env {
    /// Both environments.
    pub const ALL: [Env; 2] = [Env::Test, Env::Prod];
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Env::Test => "test",
            Env::Prod => "prod",
        }
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Env {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "test" => Ok(Env::Test),
            "prod" => Ok(Env::Prod),
            _ => Err(format!("unknown environment `{s}` (use test or prod)")),
        }
    }
}

/// A deployment size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// 1 RTU per replica.
    Small,
    /// 2 RTUs per replica.
    Medium,
    /// 4 RTUs per replica.
    Large,
}

impl Size {
    /// RTUs one replica consumes.
    pub fn rtus(self) -> u64 {
        match self {
            Size::Small => 1,
            Size::Medium => 2,
            Size::Large => 4,
        }
    }
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Medium => "medium",
            Size::Large => "large",
        }
    }
}

impl FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "small" => Ok(Size::Small),
            "medium" => Ok(Size::Medium),
            "large" => Ok(Size::Large),
            _ => Err(format!("unknown size `{s}` (use small, medium or large)")),
        }
    }
}

/// A pipeline version: MAJOR.MINOR only, major ≥ 1 (the seed's simplified SemVer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major (≥ 1).
    pub major: u32,
    /// Minor.
    pub minor: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid version `{s}`: use MAJOR.MINOR with major ≥ 1, e.g. 1.2 (no patch, no labels)"
            )
        };
        let (maj, min) = s.split_once('.').ok_or_else(bad)?;
        let num = |p: &str| {
            if p.is_empty()
                || p.len() > 9
                || !p.bytes().all(|c| c.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
            {
                None
            } else {
                p.parse::<u32>().ok()
            }
        };
        match (num(maj), num(min)) {
            (Some(major), Some(minor)) if major >= 1 => Ok(Version { major, minor }),
            _ => Err(bad()),
        }
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The admission path writes its versions itself (`wire.rs`); the other answers need
        // nothing faster than the `Display` text.
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A realm's commercial limits and platform usage quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RealmConfig {
    /// Pipeline subscriptions (each usable once per environment).
    pub pipeline_subscriptions: u64,
    /// Test RTUs bought on top.
    pub extra_test_rtus: u64,
    /// Prod RTUs bought on top.
    pub extra_prod_rtus: u64,
    /// Platform quota: most replicas of one deployment.
    pub max_replicas: u32,
    /// Platform quota: largest size of one deployment.
    pub max_size: Size,
}

impl RealmConfig {
    /// The RTU pool of an environment (saturating: the service and the spec accept counts up
    /// to `u32::MAX` only, far below the edge; see `quota::request`).
    pub fn rtus(&self, env: Env) -> u64 {
        match env {
            Env::Test => self
                .pipeline_subscriptions
                .saturating_add(self.extra_test_rtus),
            Env::Prod => self
                .pipeline_subscriptions
                .saturating_mul(2)
                .saturating_add(self.extra_prod_rtus),
        }
    }
}

/// One active deployment: the version of (pipeline, major) running in an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Environment.
    pub environment: Env,
    /// Pipeline name.
    pub pipeline: String,
    /// Active version.
    pub version: Version,
    /// Size.
    pub size: Size,
    /// Replicas (≥ 1).
    pub replicas: u32,
}

impl Deployment {
    /// RTUs it consumes.
    pub fn rtus(&self) -> u64 {
        self.size.rtus() * u64::from(self.replicas)
    }
    /// Its unique-pipeline key within the realm.
    pub fn key(&self) -> Key {
        Key {
            environment: self.environment,
            pipeline: self.pipeline.clone(),
            major: self.version.major,
        }
    }
}

/// A unique pipeline in an environment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    /// Environment.
    pub environment: Env,
    /// Pipeline name.
    pub pipeline: String,
    /// Major version.
    pub major: u32,
}

/// A realm's active deployments.
pub type State = BTreeMap<Key, Deployment>;

/// Usage of one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvUsage {
    /// Unique pipelines deployed.
    pub subscriptions_used: u64,
    /// Subscriptions available to the environment.
    pub subscriptions_total: u64,
    /// RTUs consumed.
    pub rtus_used: u64,
    /// RTU pool.
    pub rtus_total: u64,
}

/// Unique pipelines and RTUs deployed in one environment.
fn env_totals(state: &State, env: Env) -> (u64, u64) {
    state
        .values()
        .filter(|d| d.environment == env)
        .fold((0, 0), |(n, r), d| (n + 1, r + d.rtus()))
}

/// Usage of one environment, computed from the state.
pub fn usage(config: &RealmConfig, state: &State, env: Env) -> EnvUsage {
    let (n, rtus) = env_totals(state, env);
    EnvUsage {
        subscriptions_used: n,
        subscriptions_total: config.pipeline_subscriptions,
        rtus_used: rtus,
        rtus_total: config.rtus(env),
    }
}

/// Why a deployment was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No pipeline subscription left in the environment.
    NoPipelineSubscription,
    /// Not enough free RTUs in the environment.
    InsufficientRtu,
    /// A platform usage quota (size, replicas) is exceeded.
    QuotaExceeded,
    /// The realm was retired (`realmctl destroy`): nothing new is admitted.
    RealmRetired,
}

impl Reason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoPipelineSubscription => "no_pipeline_subscription",
            Reason::InsufficientRtu => "insufficient_rtu",
            Reason::QuotaExceeded => "quota_exceeded",
            Reason::RealmRetired => "realm_retired",
        }
    }
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Admitted or not.
    pub admitted: bool,
    /// Why not.
    pub reason: Option<Reason>,
    /// A sentence explaining the decision.
    pub detail: String,
    /// RTUs the request needs in total.
    pub rtus_requested: u64,
    /// The active version this one replaces, if any.
    pub replaces: Option<Deployment>,
    /// Usage of the environment before.
    pub before: EnvUsage,
    /// Usage of the environment after (equal to `before` when denied).
    pub after: EnvUsage,
}

/// What the decision needs to know about an environment: how much is used there, and the
/// active version of the requested (pipeline, major), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Unique pipelines deployed in the environment.
    pub subscriptions_used: u64,
    /// RTUs consumed in the environment.
    pub rtus_used: u64,
    /// The active deployment with the request's key.
    pub existing: Option<Deployment>,
    /// When the realm was retired (RFC 3339), if it was: nothing new is admitted.
    pub retired: Option<String>,
}

impl Facts {
    /// The facts for `request` from a full state.
    pub fn from_state(state: &State, request: &Deployment) -> Self {
        let env = request.environment;
        let (n, rtus) = env_totals(state, env);
        Facts {
            subscriptions_used: n,
            rtus_used: rtus,
            existing: state.get(&request.key()).cloned(),
            retired: None,
        }
    }
}

/// Why a retired realm admits nothing (its denials' and refused seeds' sentence).
pub fn retired_detail() -> String {
    "the realm was retired (its install was destroyed): no deployment is admitted and its config is final"
        .to_owned()
}

/// The decision-log sentence of a retirement.
pub fn retire_detail() -> String {
    "realm retired: no deployment is admitted any more and its config is final; the log is kept"
        .to_owned()
}

/// Decides whether `request` may be deployed given `config` and the realm's `state` (pure).
pub fn decide(config: &RealmConfig, state: &State, request: &Deployment) -> Decision {
    decide_with(config, &Facts::from_state(state, request), request)
}

/// Why an admission fits, for the log and the answer: "replaces p 1.2 (4 RTUs → 6)" or "new
/// unique pipeline p v1 in prod". Written piece by piece rather than through `format!`: every
/// admission writes one in the ledger's single writer thread (issue #21).
fn admitted_detail(request: &Deployment, replaces: Option<&Deployment>, rtus: u64) -> String {
    let mut n = itoa::Buffer::new();
    let mut d = String::with_capacity(48 + request.pipeline.len());
    match replaces {
        Some(old) => {
            d.push_str("replaces ");
            d.push_str(&request.pipeline);
            d.push(' ');
            d.push_str(n.format(old.version.major));
            d.push('.');
            d.push_str(n.format(old.version.minor));
            d.push_str(" (");
            d.push_str(n.format(old.rtus()));
            d.push_str(" RTUs → ");
            d.push_str(n.format(rtus));
            d.push(')');
        }
        None => {
            d.push_str("new unique pipeline ");
            d.push_str(&request.pipeline);
            d.push_str(" v");
            d.push_str(n.format(request.version.major));
            d.push_str(" in ");
            d.push_str(request.environment.as_str());
        }
    }
    d
}

/// Decides from the environment's facts (pure); the ledger gathers them with two indexed reads.
pub fn decide_with(config: &RealmConfig, facts: &Facts, request: &Deployment) -> Decision {
    let env = request.environment;
    let before = EnvUsage {
        subscriptions_used: facts.subscriptions_used,
        subscriptions_total: config.pipeline_subscriptions,
        rtus_used: facts.rtus_used,
        rtus_total: config.rtus(env),
    };
    let rtus_requested = request.rtus();
    let replaces = facts.existing.clone();
    let deny = |reason: Reason, detail: String| Decision {
        admitted: false,
        reason: Some(reason),
        detail,
        rtus_requested,
        replaces: replaces.clone(),
        before,
        after: before,
    };

    if facts.retired.is_some() {
        // The time is in the realm's status; the sentence is the same in every log.
        return deny(Reason::RealmRetired, retired_detail());
    }
    if request.replicas > config.max_replicas {
        return deny(
            Reason::QuotaExceeded,
            format!(
                "{} replicas exceed the realm's quota of {} per deployment",
                request.replicas, config.max_replicas
            ),
        );
    }
    if request.size > config.max_size {
        return deny(
            Reason::QuotaExceeded,
            format!(
                "size {} exceeds the realm's quota ({} at most)",
                request.size.as_str(),
                config.max_size.as_str()
            ),
        );
    }
    if replaces.is_none() && before.subscriptions_used >= config.pipeline_subscriptions {
        return deny(
            Reason::NoPipelineSubscription,
            format!(
                "{} unique pipelines already deployed in {env} and the realm has {} pipeline subscriptions",
                before.subscriptions_used, config.pipeline_subscriptions
            ),
        );
    }
    let freed = replaces.as_ref().map_or(0, Deployment::rtus);
    let free = before.rtus_total.saturating_sub(before.rtus_used) + freed;
    if rtus_requested > free {
        return deny(
            Reason::InsufficientRtu,
            format!(
                "{rtus_requested} {env} RTUs requested, {free} free of {}",
                before.rtus_total
            ),
        );
    }
    let after = EnvUsage {
        subscriptions_used: before.subscriptions_used + u64::from(replaces.is_none()),
        rtus_used: before.rtus_used - freed + rtus_requested,
        ..before
    };
    let detail = admitted_detail(request, replaces.as_ref(), rtus_requested);
    Decision {
        admitted: true,
        reason: None,
        detail,
        rtus_requested,
        replaces,
        before,
        after,
    }
}

/// Applies an admitted decision to the state.
pub fn apply(state: &mut State, request: &Deployment) {
    state.insert(request.key(), request.clone());
}

/// What removing one deployment changes: the deployment, its environment's usage before and
/// after, and the decision-log text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The deployment removed.
    pub removed: Deployment,
    /// Usage of its environment before.
    pub before: EnvUsage,
    /// Usage of its environment after.
    pub after: EnvUsage,
    /// Explanation for the decision log.
    pub detail: String,
}

/// Removing the active version under `key`; `None` when nothing is deployed there.
pub fn undeploy(config: &RealmConfig, state: &State, key: &Key) -> Option<Removal> {
    let removed = state.get(key)?.clone();
    let before = usage(config, state, key.environment);
    let mut rest = state.clone();
    rest.remove(key);
    let after = usage(config, &rest, key.environment);
    let detail = format!(
        "undeployed {} {} from {} ({} RTUs released)",
        removed.pipeline,
        removed.version,
        key.environment,
        removed.rtus()
    );
    Some(Removal {
        removed,
        before,
        after,
        detail,
    })
}

/// The decision-log text of an accepted seed.
pub fn seed_detail(config: &RealmConfig) -> String {
    format!(
        "{} subscriptions, {} Test RTUs, {} Prod RTUs",
        config.pipeline_subscriptions,
        config.rtus(Env::Test),
        config.rtus(Env::Prod)
    )
}

/// Whether `config` still covers everything deployed in `state`; the offending deployments otherwise.
pub fn covers(config: &RealmConfig, state: &State) -> Result<(), String> {
    let mut problems = Vec::new();
    for env in Env::ALL {
        let u = usage(config, state, env);
        let names = || {
            state
                .values()
                .filter(|d| d.environment == env)
                .map(|d| format!("{} {} ({} RTU)", d.pipeline, d.version, d.rtus()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if u.subscriptions_used > u.subscriptions_total {
            problems.push(format!(
                "{env}: {} unique pipelines deployed but only {} subscriptions ({})",
                u.subscriptions_used,
                u.subscriptions_total,
                names()
            ));
        } else if u.rtus_used > u.rtus_total {
            problems.push(format!(
                "{env}: {} RTUs in use but the pool would be {} ({})",
                u.rtus_used,
                u.rtus_total,
                names()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The detail written piece by piece says what `format!` would.
    #[test]
    fn an_admissions_detail_reads_as_before() {
        let d = |major, minor, replicas| Deployment {
            environment: Env::Prod,
            pipeline: "orders.v2".into(),
            version: Version { major, minor },
            size: Size::Medium,
            replicas,
        };
        let old = d(3, 14, 2);
        let new = d(3, 15, 5);
        assert_eq!(
            admitted_detail(&new, Some(&old), new.rtus()),
            format!(
                "replaces orders.v2 {} ({} RTUs → {})",
                old.version,
                old.rtus(),
                new.rtus()
            )
        );
        assert_eq!(
            admitted_detail(&new, None, new.rtus()),
            format!("new unique pipeline orders.v2 v3 in {}", Env::Prod)
        );
    }

    fn cfg(subs: u64) -> RealmConfig {
        RealmConfig {
            pipeline_subscriptions: subs,
            extra_test_rtus: 0,
            extra_prod_rtus: 0,
            max_replicas: 10,
            max_size: Size::Large,
        }
    }

    fn dep(env: Env, p: &str, v: &str, size: Size, replicas: u32) -> Deployment {
        Deployment {
            environment: env,
            pipeline: p.into(),
            version: v.parse().unwrap(),
            size,
            replicas,
        }
    }

    /// Runs requests in order, applying admitted ones; returns each reason (None = admitted).
    fn run(c: &RealmConfig, reqs: &[Deployment]) -> (State, Vec<Option<Reason>>) {
        let mut s = State::new();
        let mut out = Vec::new();
        for r in reqs {
            let d = decide(c, &s, r);
            if d.admitted {
                apply(&mut s, r);
            }
            out.push(d.reason);
        }
        (s, out)
    }

    /// A retired realm admits nothing, even what would fit, and says so; the usage is unchanged.
    #[test]
    fn a_retired_realm_admits_nothing_and_says_when() {
        let c = cfg(5);
        let r = dep(Env::Test, "p", "1.0", Size::Small, 1);
        let mut facts = Facts::from_state(&State::new(), &r);
        assert!(decide_with(&c, &facts, &r).admitted);
        facts.retired = Some("2026-12-06T10:00:00Z".into());
        let d = decide_with(&c, &facts, &r);
        assert!(!d.admitted);
        assert_eq!(d.reason, Some(Reason::RealmRetired));
        assert_eq!(Reason::RealmRetired.as_str(), "realm_retired");
        assert_eq!(d.detail, retired_detail());
        assert_eq!(d.before, d.after);
    }

    #[test]
    fn versions_are_major_minor_with_major_at_least_one() {
        assert_eq!("1.2".parse::<Version>(), Ok(Version { major: 1, minor: 2 }));
        assert_eq!("10.0".parse::<Version>().unwrap().to_string(), "10.0");
        for bad in [
            "0.1", "1", "1.2.3", "1.2-beta", "v1.2", "", ".", "1.", "01.2", "a.b", "1.-1",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad} must be rejected");
        }
    }

    #[test]
    fn one_subscription_is_one_test_rtu_and_two_prod_rtus() {
        let c = RealmConfig {
            extra_test_rtus: 3,
            extra_prod_rtus: 1,
            ..cfg(2)
        };
        assert_eq!(c.rtus(Env::Test), 5);
        assert_eq!(c.rtus(Env::Prod), 5);
    }

    #[test]
    fn sizes_and_replicas_multiply() {
        assert_eq!(dep(Env::Prod, "p", "1.0", Size::Large, 3).rtus(), 12);
        assert_eq!(dep(Env::Prod, "p", "1.0", Size::Medium, 1).rtus(), 2);
        assert_eq!(dep(Env::Prod, "p", "1.0", Size::Small, 2).rtus(), 2);
    }

    #[test]
    fn seed_example_one_subscription() {
        // One subscription: a Small pipeline fits in Test (1 RTU); a Medium one does not.
        let c = cfg(1);
        let (_, r) = run(&c, &[dep(Env::Test, "orders", "1.0", Size::Medium, 1)]);
        assert_eq!(r, [Some(Reason::InsufficientRtu)]);
        let (_, r) = run(
            &c,
            &[
                dep(Env::Test, "orders", "1.0", Size::Small, 1),
                dep(Env::Prod, "orders", "1.0", Size::Medium, 1),
            ],
        );
        assert_eq!(
            r,
            [None, None],
            "subscriptions are consumed per environment"
        );
    }

    #[test]
    fn two_majors_are_two_unique_pipelines() {
        let c = RealmConfig {
            extra_prod_rtus: 10,
            ..cfg(1)
        };
        let (_, r) = run(
            &c,
            &[
                dep(Env::Prod, "orders", "1.0", Size::Small, 1),
                dep(Env::Prod, "orders", "2.0", Size::Small, 1),
            ],
        );
        assert_eq!(r, [None, Some(Reason::NoPipelineSubscription)]);
        let (s, r) = run(
            &cfg(2),
            &[
                dep(Env::Prod, "orders", "1.0", Size::Small, 1),
                dep(Env::Prod, "orders", "2.0", Size::Small, 1),
            ],
        );
        assert_eq!(r, [None, None]);
        assert_eq!(s.len(), 2, "both majors stay active");
    }

    #[test]
    fn a_minor_upgrade_replaces_and_needs_only_the_difference() {
        let c = cfg(1); // 2 Prod RTUs
        let (s, r) = run(
            &c,
            &[
                dep(Env::Prod, "orders", "1.2", Size::Small, 2),
                dep(Env::Prod, "orders", "1.3", Size::Medium, 1),
            ],
        );
        assert_eq!(r, [None, None], "1.3 over 1.2 fits: 2 RTUs freed, 2 needed");
        assert_eq!(s.len(), 1);
        assert_eq!(s.values().next().unwrap().version.to_string(), "1.3");
        let (_, r) = run(
            &c,
            &[
                dep(Env::Prod, "orders", "1.2", Size::Small, 2),
                dep(Env::Prod, "orders", "1.3", Size::Large, 1),
            ],
        );
        assert_eq!(
            r,
            [None, Some(Reason::InsufficientRtu)],
            "4 RTUs do not fit in 2"
        );
    }

    #[test]
    fn test_and_prod_pools_never_mix() {
        let c = RealmConfig {
            extra_prod_rtus: 100,
            ..cfg(1)
        }; // Test: 1 RTU, Prod: 102
        let (_, r) = run(&c, &[dep(Env::Test, "a", "1.0", Size::Medium, 1)]);
        assert_eq!(r, [Some(Reason::InsufficientRtu)]);
    }

    #[test]
    fn spare_rtus_never_run_a_pipeline_without_a_subscription() {
        let c = RealmConfig {
            extra_test_rtus: 50,
            ..cfg(1)
        };
        let (_, r) = run(
            &c,
            &[
                dep(Env::Test, "a", "1.0", Size::Small, 1),
                dep(Env::Test, "b", "1.0", Size::Small, 1),
            ],
        );
        assert_eq!(r, [None, Some(Reason::NoPipelineSubscription)]);
    }

    /// Regression (issue #16): counts whose Prod pool (2 × subscriptions + extra) passed
    /// 2^64 wrapped the pool to almost nothing; pools saturate, never wrap (and the service
    /// and the spec bound every count far below that: `quota::request`).
    #[test]
    fn pools_never_wrap() {
        let most = i64::MAX as u64;
        let wrapping = RealmConfig {
            pipeline_subscriptions: most,
            extra_test_rtus: 0,
            extra_prod_rtus: most,
            max_replicas: 1,
            max_size: Size::Small,
        };
        assert_eq!(
            wrapping.rtus(Env::Prod),
            u64::MAX,
            "saturates, never wraps to 0"
        );
    }

    #[test]
    fn subscription_is_checked_before_rtus_and_quota_before_both() {
        let c = cfg(1);
        let (_, r) = run(
            &c,
            &[
                dep(Env::Test, "a", "1.0", Size::Small, 1),
                dep(Env::Test, "b", "1.0", Size::Large, 9),
            ],
        );
        assert_eq!(r[1], Some(Reason::NoPipelineSubscription));
        let c = RealmConfig {
            max_replicas: 2,
            max_size: Size::Medium,
            ..cfg(0)
        };
        let (_, r) = run(
            &c,
            &[
                dep(Env::Test, "a", "1.0", Size::Small, 3),
                dep(Env::Test, "a", "1.0", Size::Large, 1),
            ],
        );
        assert_eq!(
            r,
            [Some(Reason::QuotaExceeded), Some(Reason::QuotaExceeded)]
        );
    }

    #[test]
    fn usage_before_and_after() {
        let c = cfg(3);
        let s = State::new();
        let d = decide(&c, &s, &dep(Env::Prod, "a", "1.0", Size::Medium, 2));
        assert!(d.admitted);
        assert_eq!(
            d.before,
            EnvUsage {
                subscriptions_used: 0,
                subscriptions_total: 3,
                rtus_used: 0,
                rtus_total: 6
            }
        );
        assert_eq!(
            d.after,
            EnvUsage {
                subscriptions_used: 1,
                subscriptions_total: 3,
                rtus_used: 4,
                rtus_total: 6
            }
        );
    }

    #[test]
    fn lowering_the_config_below_use_is_named() {
        let (s, _) = run(&cfg(2), &[dep(Env::Prod, "orders", "1.0", Size::Medium, 2)]);
        let e = covers(&cfg(1), &s).unwrap_err();
        assert!(e.contains("orders 1.0") && e.contains("prod"), "{e}");
        assert!(covers(&cfg(2), &s).is_ok());
    }
}
