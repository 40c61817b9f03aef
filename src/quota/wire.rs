//! The JSON written on every admission, by hand: the HTTP answer ([`Admission`]), the log row's
//! request ([`Deployment`]) and its usage texts ([`EnvUsage`]).
//!
//! Why by hand: through serde, each field is a call chain that escapes its constant key byte by
//! byte; on the admission path that was about 12k of its 80k instructions (callgrind,
//! `docs/benchmarks.md`). Here the keys are literals, numbers go through `itoa`, and only the
//! strings that can hold anything (realm, pipeline, detail) are escaped, by serde_json's own
//! escaper. [`Admission`] has no other encoder. `EnvUsage` and `Deployment` keep their derived
//! `Serialize` for the other answers, and the tests below hold both encoders to the same bytes.

use super::Admission;
use super::model::{Deployment, Env, EnvUsage, Size, Version};

/// Appends `s` as a JSON string (quoted and escaped).
fn string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail, and a &str is always valid to serialise.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends `n` as a JSON number.
fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `v` as its JSON string, `"MAJOR.MINOR"`.
fn version(out: &mut Vec<u8>, v: Version) {
    let mut b = itoa::Buffer::new();
    out.push(b'"');
    out.extend_from_slice(b.format(v.major).as_bytes());
    out.push(b'.');
    out.extend_from_slice(b.format(v.minor).as_bytes());
    out.push(b'"');
}

/// Appends a quoted name that needs no escaping (an enum's wire name).
fn name(out: &mut Vec<u8>, s: &'static str) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

impl EnvUsage {
    /// Appends this usage's JSON object (the same bytes as its derived `Serialize`).
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"subscriptionsUsed\":");
        number(out, self.subscriptions_used);
        out.extend_from_slice(b",\"subscriptionsTotal\":");
        number(out, self.subscriptions_total);
        out.extend_from_slice(b",\"rtusUsed\":");
        number(out, self.rtus_used);
        out.extend_from_slice(b",\"rtusTotal\":");
        number(out, self.rtus_total);
        out.push(b'}');
    }

    /// This usage's JSON text, as the decision log stores it.
    pub(crate) fn to_json_string(self) -> String {
        let mut out = Vec::with_capacity(96);
        self.write_json(&mut out);
        // Only ASCII literals and digits were written.
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Appends a deployment's five fields, `"environment":…,"replicas":N`, in the order of
/// [`Deployment`]'s derived `Serialize` (the answer repeats them in the same order).
fn deployment_fields(
    out: &mut Vec<u8>,
    environment: Env,
    pipeline: &str,
    v: Version,
    size: Size,
    replicas: u32,
) {
    out.extend_from_slice(b"\"environment\":");
    name(out, environment.as_str());
    out.extend_from_slice(b",\"pipeline\":");
    string(out, pipeline);
    out.extend_from_slice(b",\"version\":");
    version(out, v);
    out.extend_from_slice(b",\"size\":");
    name(out, size.as_str());
    out.extend_from_slice(b",\"replicas\":");
    number(out, u64::from(replicas));
}

impl Deployment {
    /// This deployment's JSON text, as the decision log stores the request (the same bytes as
    /// its derived `Serialize`).
    pub(crate) fn to_json_string(&self) -> String {
        let mut out = Vec::with_capacity(96 + self.pipeline.len());
        out.push(b'{');
        deployment_fields(
            &mut out,
            self.environment,
            &self.pipeline,
            self.version,
            self.size,
            self.replicas,
        );
        out.push(b'}');
        // serde_json writes valid UTF-8 and the rest is ASCII.
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Admission {
    /// The answer's JSON (HTTP body and `--output json`), field by field as
    /// `docs/quota-openapi.yaml` describes it.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(448 + self.detail.len() + self.pipeline.len());
        out.extend_from_slice(if self.admitted {
            b"{\"admitted\":true,\"reason\":"
        } else {
            b"{\"admitted\":false,\"reason\":"
        });
        match self.reason {
            Some(r) => name(&mut out, r.as_str()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"detail\":");
        string(&mut out, &self.detail);
        out.extend_from_slice(b",\"realm\":");
        string(&mut out, &self.realm);
        out.push(b',');
        deployment_fields(
            &mut out,
            self.environment,
            &self.pipeline,
            self.version,
            self.size,
            self.replicas,
        );
        out.extend_from_slice(b",\"rtusRequested\":");
        number(&mut out, self.rtus_requested);
        out.extend_from_slice(b",\"replaces\":");
        match self.replaces {
            Some(v) => version(&mut out, v),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"usageBefore\":");
        self.usage_before.write_json(&mut out);
        out.extend_from_slice(b",\"usageAfter\":");
        self.usage_after.write_json(&mut out);
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::model::Reason;
    use proptest::prelude::*;

    fn usage() -> impl Strategy<Value = EnvUsage> {
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(a, b, c, d)| EnvUsage {
            subscriptions_used: a,
            subscriptions_total: b,
            rtus_used: c,
            rtus_total: d,
        })
    }

    fn version_s() -> impl Strategy<Value = Version> {
        // The versions `Version` parses back: up to nine digits each.
        (1..=999_999_999u32, 0..=999_999_999u32).prop_map(|(major, minor)| Version { major, minor })
    }

    fn env() -> impl Strategy<Value = Env> {
        prop_oneof![Just(Env::Test), Just(Env::Prod)]
    }

    fn size() -> impl Strategy<Value = Size> {
        prop_oneof![Just(Size::Small), Just(Size::Medium), Just(Size::Large)]
    }

    fn reason() -> impl Strategy<Value = Option<Reason>> {
        prop_oneof![
            Just(None),
            Just(Some(Reason::NoPipelineSubscription)),
            Just(Some(Reason::InsufficientRtu)),
            Just(Some(Reason::QuotaExceeded)),
            Just(Some(Reason::RealmRetired)),
        ]
    }

    fn deployment() -> impl Strategy<Value = Deployment> {
        // Any text, not only valid pipeline names: the writer must escape whatever it is given.
        (env(), any::<String>(), version_s(), size(), any::<u32>()).prop_map(
            |(environment, pipeline, version, size, replicas)| Deployment {
                environment,
                pipeline,
                version,
                size,
                replicas,
            },
        )
    }

    proptest! {
        #[test]
        fn env_usage_matches_its_derived_serialize(u in usage()) {
            prop_assert_eq!(u.to_json_string(), serde_json::to_string(&u).unwrap());
        }

        #[test]
        fn deployment_matches_its_derived_serialize(d in deployment()) {
            prop_assert_eq!(d.to_json_string(), serde_json::to_string(&d).unwrap());
        }

        #[test]
        fn admission_reads_back_as_itself(
            admitted in any::<bool>(),
            reason in reason(),
            detail in any::<String>(),
            realm in any::<String>(),
            d in deployment(),
            rtus_requested in any::<u64>(),
            replaces in proptest::option::of(version_s()),
            before in usage(),
            after in usage(),
        ) {
            let a = Admission {
                admitted, reason, detail, realm,
                environment: d.environment, pipeline: d.pipeline, version: d.version,
                size: d.size, replicas: d.replicas, rtus_requested, replaces,
                usage_before: before, usage_after: after,
            };
            let bytes = a.to_json();
            let back: Admission = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(format!("{back:?}"), format!("{a:?}"));
            // Every key once, none missing: the document's field list.
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            prop_assert_eq!(keys.len(), 13);
        }
    }

    #[test]
    fn admission_answer_bytes() {
        let a = Admission {
            admitted: false,
            reason: Some(Reason::InsufficientRtu),
            detail: "needs 8 RTU, \"prod\" has 4\n".into(),
            realm: "acme".into(),
            environment: Env::Prod,
            pipeline: "orders-sync".into(),
            version: Version {
                major: 2,
                minor: 10,
            },
            size: Size::Large,
            replicas: 2,
            rtus_requested: 8,
            replaces: Some(Version { major: 2, minor: 9 }),
            usage_before: EnvUsage {
                subscriptions_used: 3,
                subscriptions_total: 10,
                rtus_used: 16,
                rtus_total: 20,
            },
            usage_after: EnvUsage {
                subscriptions_used: 3,
                subscriptions_total: 10,
                rtus_used: 16,
                rtus_total: 20,
            },
        };
        insta::assert_snapshot!(String::from_utf8(a.to_json()).unwrap());
    }
}
