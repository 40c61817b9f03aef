//! The quota service's request bodies and path values, read field by field (pure).
//!
//! A refusal names the field and its rule in the product's words — never a Rust type or a
//! parser's position inside a struct — and the rules are exactly those
//! `docs/quota-openapi.yaml` states: every bound, pattern and enumeration there is one of
//! the [`Rule`]s here, and a test reads the document back and compares.
//!
//! Whole numbers are accepted as JSON integers or as numbers without a fraction (`2.0`), as
//! JSON Schema's `integer` allows; `null` is never a value (the document marks nothing
//! nullable in a request).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use super::model::{Deployment, Env, Key, RealmConfig, Size, Version};
use super::valid_pipeline;

/// The largest count of anything: replicas, subscriptions, extra RTUs (what a spec accepts,
/// and small enough that no RTU pool can overflow the ledger's signed 64-bit columns).
pub const MAX_COUNT: u64 = u32::MAX as u64;

/// A field's rule, as the document states it and a refusal names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `test` or `prod`.
    Environment,
    /// 1–128 letters, digits, `-`, `_` or `.`.
    Pipeline,
    /// MAJOR.MINOR.
    Version,
    /// `small`, `medium` or `large`.
    Size,
    /// A whole number in `min..=max`.
    Count {
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Environment => f.write_str("test or prod"),
            Rule::Pipeline => f.write_str("1-128 letters, digits, `-`, `_` or `.`"),
            Rule::Version => f.write_str(
                "MAJOR.MINOR, e.g. 1.2: whole numbers of at most 9 digits without leading zeros, major at least 1",
            ),
            Rule::Size => f.write_str("small, medium or large"),
            Rule::Count { min, max } => write!(f, "a whole number from {min} to {max}"),
        }
    }
}

/// A whole number from 1 to [`MAX_COUNT`].
const AT_LEAST_ONE: Rule = Rule::Count {
    min: 1,
    max: MAX_COUNT,
};
/// Replicas of a deployment.
pub const REPLICAS: Rule = AT_LEAST_ONE;
/// A deployment's major version in a path.
pub const MAJOR: Rule = AT_LEAST_ONE;
/// A realm's pipeline subscriptions.
pub const SUBSCRIPTIONS: Rule = AT_LEAST_ONE;
/// Most replicas of one deployment.
pub const MAX_REPLICAS: Rule = AT_LEAST_ONE;
/// Extra Test or Prod RTUs.
pub const EXTRA_RTUS: Rule = Rule::Count {
    min: 0,
    max: MAX_COUNT,
};

/// Why a request was refused: the field and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The body is not a JSON object.
    NotAnObject {
        /// What the JSON parser said, when the body is not JSON at all.
        detail: Option<String>,
    },
    /// A required field is missing.
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A field this request does not have.
    Unknown {
        /// The field as sent (escaped when shown).
        field: String,
        /// The fields it has.
        known: &'static [&'static str],
    },
    /// A value that breaks its field's rule.
    Invalid {
        /// The field.
        field: &'static str,
        /// Its rule.
        rule: Rule,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotAnObject { detail: None } => f.write_str("the body must be a JSON object"),
            Refusal::NotAnObject { detail: Some(d) } => {
                write!(f, "the body must be a JSON object; it is not JSON ({d})")
            }
            Refusal::Missing { field } => write!(f, "{field}: required"),
            Refusal::Unknown { field, known } => write!(
                f,
                "{}: not a field of this request (it has {})",
                serde_json::Value::String(field.clone()),
                known.join(", ")
            ),
            Refusal::Invalid { field, rule } => write!(f, "{field}: {rule}"),
        }
    }
}

const DEPLOY_FIELDS: &[&str] = &["environment", "pipeline", "version", "size", "replicas"];
const CONFIG_FIELDS: &[&str] = &[
    "pipelineSubscriptions",
    "extraTestRtus",
    "extraProdRtus",
    "maxReplicas",
    "maxSize",
];

/// A field's value as the rules see it: a string, a number (as the whole number in `0..2^64`
/// it is, if it is one: `2` and `2.0` alike), or anything else (which breaks every rule).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent<'a> {
    Text(Cow<'a, str>),
    Number(Option<u64>),
    Other,
}

impl Sent<'_> {
    /// A value of the whole-document parse.
    fn of(v: &Value) -> Sent<'static> {
        match v {
            Value::String(s) => Sent::Text(Cow::Owned(s.clone())),
            Value::Number(n) => Sent::Number(n.as_u64().or_else(|| {
                // 2.0 is a whole number (JSON Schema's `integer`); 2^53 and above are not exact.
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9_007_199_254_740_992.0)
                    .map(|f| f as u64)
            })),
            _ => Sent::Other,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Sent::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// A body's fields: the value of each field of `known` that was sent (the last, when one is
/// sent twice, as in a JSON object read into a map).
struct Fields<'a> {
    known: &'static [&'static str],
    values: Vec<Option<Sent<'a>>>,
}

impl Fields<'_> {
    fn get(&self, field: &str) -> Option<&Sent<'_>> {
        let i = self.known.iter().position(|k| *k == field)?;
        self.values[i].as_ref()
    }
}

/// The body as an object whose fields are all in `known`.
///
/// The usual body — a flat object of known fields whose values are plain strings and whole
/// numbers — is read in one pass over its bytes, borrowing every string ([`scan`]). Every
/// other body, and every body refused, is read the plain way ([`object_slow`]), so a refusal is
/// word for word the one a whole-document parse gives (a syntax error's position, the first
/// unknown field in name order), and what a body means never depends on the path it took
/// (tests below compare the two on any body).
fn object<'a>(body: &'a [u8], known: &'static [&'static str]) -> Result<Fields<'a>, Refusal> {
    match scan(body, known) {
        Some(f) => Ok(f),
        None => object_slow(body, known).map(|m| Fields {
            known,
            values: known.iter().map(|k| m.get(*k).map(Sent::of)).collect(),
        }),
    }
}

/// [`object`]'s one pass: `None` for anything but a JSON object of fields in `known` whose
/// values are strings without escapes or control characters, or whole numbers written as
/// plain digits (no sign, fraction, exponent or leading zero) below 2^64.
fn scan<'a>(body: &'a [u8], known: &'static [&'static str]) -> Option<Fields<'a>> {
    // Checked once for the whole body: every string is then a slice of it between two `"`.
    let text = std::str::from_utf8(body).ok()?;
    let mut values = vec![None; known.len()];
    let mut at = Scan { text, i: 0 };
    at.eat(b'{')?;
    if !at.next_is(b'}') {
        loop {
            let name = at.string()?;
            at.eat(b':')?;
            let slot = known.iter().position(|k| *k == name)?;
            values[slot] = Some(at.value()?);
            if at.next_is(b'}') {
                break;
            }
            at.eat(b',')?;
        }
    }
    at.blank();
    (at.i == body.len()).then_some(Fields { known, values })
}

/// [`scan`]'s position in the body.
struct Scan<'a> {
    text: &'a str,
    i: usize,
}

impl<'a> Scan<'a> {
    /// The body's bytes.
    fn b(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Skips JSON's whitespace (RFC 8259 §2).
    fn blank(&mut self) {
        while matches!(self.b().get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// After whitespace, `c` (taken).
    fn eat(&mut self, c: u8) -> Option<()> {
        self.next_is(c).then_some(())
    }

    /// Whether, after whitespace, `c` comes next (taken if so).
    fn next_is(&mut self, c: u8) -> bool {
        self.blank();
        let hit = self.b().get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    /// After whitespace, a string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let n = self.b()[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if self.b()[start + n] != b'"' {
            return None;
        }
        self.i += n + 1;
        // Both ends are ASCII, so on character boundaries.
        self.text.get(start..start + n)
    }

    /// After whitespace, a string or a whole number in plain digits.
    fn value(&mut self) -> Option<Sent<'a>> {
        self.blank();
        match self.b().get(self.i)? {
            b'"' => self.string().map(|s| Sent::Text(Cow::Borrowed(s))),
            b'0'..=b'9' => {
                let digits = self.b()[self.i..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                let text = &self.b()[self.i..self.i + digits];
                self.i += digits;
                let plain = (digits == 1 || text[0] != b'0')
                    && !matches!(self.b().get(self.i), Some(b'.' | b'e' | b'E'));
                let n = text.iter().try_fold(0u64, |n, d| {
                    n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                })?;
                plain.then_some(Sent::Number(Some(n)))
            }
            _ => None,
        }
    }
}

/// [`object`]'s refusals: the whole body parsed as a JSON value first.
fn object_slow(body: &[u8], known: &'static [&'static str]) -> Result<Map<String, Value>, Refusal> {
    let v: Value = serde_json::from_slice(body).map_err(|e| Refusal::NotAnObject {
        // serde_json's syntax errors name a position, never a type: "EOF while parsing an
        // object at line 1 column 9".
        detail: Some(e.to_string()),
    })?;
    let Value::Object(m) = v else {
        return Err(Refusal::NotAnObject { detail: None });
    };
    if let Some(field) = m.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Refusal::Unknown {
            field: field.clone(),
            known,
        });
    }
    Ok(m)
}

/// A whole number within `rule`'s bounds.
fn count(v: &Sent<'_>, field: &'static str, rule: Rule) -> Result<u64, Refusal> {
    let n = match v {
        Sent::Number(n) => *n,
        _ => None,
    };
    within(n, field, rule)
}

/// `n` when it is within `rule`'s bounds.
fn within(n: Option<u64>, field: &'static str, rule: Rule) -> Result<u64, Refusal> {
    let Rule::Count { min, max } = rule else {
        unreachable!("within() is given count rules")
    };
    n.filter(|n| (min..=max).contains(n))
        .ok_or(Refusal::Invalid { field, rule })
}

fn text<'a>(v: &'a Sent<'_>, field: &'static str, rule: Rule) -> Result<&'a str, Refusal> {
    v.as_str().ok_or(Refusal::Invalid { field, rule })
}

fn required<'a>(m: &'a Fields<'_>, field: &'static str) -> Result<&'a Sent<'a>, Refusal> {
    m.get(field).ok_or(Refusal::Missing { field })
}

/// A string read by its type's own parser (environment, size, version).
fn parsed<T: FromStr>(s: Option<&str>, field: &'static str, rule: Rule) -> Result<T, Refusal> {
    s.and_then(|s| s.parse().ok())
        .ok_or(Refusal::Invalid { field, rule })
}

/// A pipeline name (body or path).
pub fn pipeline(name: &str) -> Result<String, Refusal> {
    if valid_pipeline(name) {
        Ok(name.to_owned())
    } else {
        Err(Refusal::Invalid {
            field: "pipeline",
            rule: Rule::Pipeline,
        })
    }
}

/// A deployment request (`POST …/deployments`, `POST …/what-if`).
pub fn deployment(body: &[u8]) -> Result<Deployment, Refusal> {
    let m = object(body, DEPLOY_FIELDS)?;
    let string = |field: &'static str| required(&m, field).map(Sent::as_str);
    let environment: Env = parsed(string("environment")?, "environment", Rule::Environment)?;
    let pipeline = pipeline(text(required(&m, "pipeline")?, "pipeline", Rule::Pipeline)?)?;
    let version: Version = parsed(string("version")?, "version", Rule::Version)?;
    let size: Size = parsed(string("size")?, "size", Rule::Size)?;
    let replicas = count(required(&m, "replicas")?, "replicas", REPLICAS)? as u32;
    Ok(Deployment {
        environment,
        pipeline,
        version,
        size,
        replicas,
    })
}

/// A realm config (`PUT …/config`); absent platform quotas take `defaults`' values.
pub fn config(body: &[u8], defaults: (u32, Size)) -> Result<RealmConfig, Refusal> {
    let m = object(body, CONFIG_FIELDS)?;
    let optional = |field: &'static str, rule: Rule, default: u64| {
        m.get(field).map_or(Ok(default), |v| count(v, field, rule))
    };
    Ok(RealmConfig {
        pipeline_subscriptions: count(
            required(&m, "pipelineSubscriptions")?,
            "pipelineSubscriptions",
            SUBSCRIPTIONS,
        )?,
        extra_test_rtus: optional("extraTestRtus", EXTRA_RTUS, 0)?,
        extra_prod_rtus: optional("extraProdRtus", EXTRA_RTUS, 0)?,
        max_replicas: optional("maxReplicas", MAX_REPLICAS, u64::from(defaults.0))? as u32,
        max_size: m.get("maxSize").map_or(Ok(defaults.1), |v| {
            parsed(v.as_str(), "maxSize", Rule::Size)
        })?,
    })
}

/// Most decision-log entries one `GET …/decisions` answers (a page stays well under the
/// Kubernetes service proxy's answer cap).
pub const PAGE_LIMIT: u32 = 1000;
/// `after` of `GET …/decisions`: an entry id (JSON-safe whole numbers).
pub const AFTER: Rule = Rule::Count {
    min: 0,
    max: 9_007_199_254_740_991,
};
/// `limit` of `GET …/decisions`.
pub const LIMIT: Rule = Rule::Count {
    min: 1,
    max: PAGE_LIMIT as u64,
};
const PAGE_FIELDS: &[&str] = &["after", "limit"];

/// The page `GET …/decisions?after=ID&limit=N` asks for: (after, limit), by default from the
/// start and [`PAGE_LIMIT`] entries.
pub fn page(query: Option<&str>) -> Result<(i64, u32), Refusal> {
    let (mut after, mut limit) = (0, PAGE_LIMIT);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let digits = || {
            Some(v)
                .filter(|v| !v.is_empty() && v.len() <= 16 && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
        };
        match k {
            "after" => after = within(digits(), "after", AFTER)? as i64,
            "limit" => limit = within(digits(), "limit", LIMIT)? as u32,
            other => {
                return Err(Refusal::Unknown {
                    field: other.to_owned(),
                    known: PAGE_FIELDS,
                });
            }
        }
    }
    Ok((after, limit))
}

/// The key in `DELETE …/deployments/{environment}/{pipeline}/{major}`.
pub fn key(environment: &str, pipeline_name: &str, major: &str) -> Result<Key, Refusal> {
    let environment = parsed(Some(environment), "environment", Rule::Environment)?;
    let pipeline = pipeline(pipeline_name)?;
    // Digits only (`u64`'s parser would take a `+`), at most ten of them.
    let digits = Some(major)
        .filter(|m| !m.is_empty() && m.len() <= 10 && m.bytes().all(|b| b.is_ascii_digit()));
    let major = within(digits.and_then(|m| m.parse().ok()), "major", MAJOR)? as u32;
    Ok(Key {
        environment,
        pipeline,
        major,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: (u32, Size) = (10, Size::Large);

    fn refused(body: &str) -> String {
        deployment(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn a_valid_deployment_is_read() {
        let d = deployment(
            br#"{"environment":"prod","pipeline":"orders.v2","version":"1.20","size":"medium","replicas":3}"#,
        )
        .unwrap();
        assert_eq!(d.environment, Env::Prod);
        assert_eq!(
            d.version,
            Version {
                major: 1,
                minor: 20
            }
        );
        assert_eq!(d.replicas, 3);
        let whole = deployment(
            br#"{"environment":"test","pipeline":"p","version":"1.0","size":"small","replicas":2.0}"#,
        )
        .unwrap();
        assert_eq!(whole.replicas, 2);
        let most = format!(
            r#"{{"environment":"test","pipeline":"p","version":"999999999.999999999","size":"small","replicas":{MAX_COUNT}}}"#
        );
        assert_eq!(deployment(most.as_bytes()).unwrap().replicas, u32::MAX);
    }

    #[test]
    fn every_refusal_names_the_field_and_its_rule_never_a_type() {
        let base = |field: &str, value: &str| {
            let mut v = serde_json::json!({"environment":"prod","pipeline":"p","version":"1.0","size":"small","replicas":1});
            v[field] = serde_json::from_str(value).unwrap();
            refused(&v.to_string())
        };
        assert_eq!(
            base("replicas", "1.5"),
            "replicas: a whole number from 1 to 4294967295"
        );
        assert_eq!(
            base("replicas", "4294967296"),
            "replicas: a whole number from 1 to 4294967295"
        );
        assert_eq!(
            base("replicas", "0"),
            "replicas: a whole number from 1 to 4294967295"
        );
        assert_eq!(
            base("replicas", "\"2\""),
            "replicas: a whole number from 1 to 4294967295"
        );
        assert_eq!(
            base("environment", "\"staging\""),
            "environment: test or prod"
        );
        assert_eq!(base("size", "null"), "size: small, medium or large");
        assert!(base("version", "\"1.2.3\"").starts_with("version: MAJOR.MINOR"));
        assert!(base("version", "\"1.0123456789\"").starts_with("version: MAJOR.MINOR"));
        assert_eq!(
            base("pipeline", "\"a b\""),
            "pipeline: 1-128 letters, digits, `-`, `_` or `.`"
        );
        assert_eq!(refused(r#"{"environment":"prod"}"#), "pipeline: required");
        assert_eq!(
            refused(r#"{"environment":"prod","colour":"red"}"#),
            "\"colour\": not a field of this request (it has environment, pipeline, version, size, replicas)"
        );
        assert_eq!(refused("[1]"), "the body must be a JSON object");
        let syntax = refused("{\"environment\":");
        assert!(
            syntax.starts_with("the body must be a JSON object; it is not JSON (EOF while parsing"),
            "{syntax}"
        );
        for r in [base("replicas", "1.5"), base("replicas", "-1"), syntax] {
            for rust in ["u32", "u64", "i64", "f64", "struct", "enum", "invalid type"] {
                assert!(!r.contains(rust), "{r}");
            }
        }
    }

    /// The one-pass read gives exactly what the whole-document parse gives, for bodies that
    /// repeat a field, escape a name, nest, add fields, are not objects or are not JSON.
    #[test]
    fn the_one_pass_read_agrees_with_the_whole_document_parse() {
        let bodies = [
            r#"{"environment":"prod","pipeline":"p","version":"1.0","size":"small","replicas":1}"#,
            r#"{"replicas":1,"replicas":2.0,"size":"large"}"#,
            r#"{"environ\u006dent":"test","pipeline":"a\"b"}"#,
            r#"{"pipeline":{"nested":[1,2,{"x":null}]},"version":[1]}"#,
            r#"{"zeta":1,"alpha":2,"size":"small"}"#,
            r#"{"size":"small","extra":{"deep":[1,2]}}"#,
            r#"[1,2]"#,
            r#"[1"#,
            r#""text""#,
            r#"{"size":"small"} trailing"#,
            r#"{"size":"small""#,
            r#"{"size":}"#,
            "",
            "{}",
            " { \"replicas\" : 1e0 } ",
            " {\t\"replicas\"\r:\n7 ,\"size\" :\"small\"\n}\n",
            r#"{"replicas":0}"#,
            r#"{"replicas":01}"#,
            r#"{"replicas":-1}"#,
            r#"{"replicas":1.0}"#,
            r#"{"replicas":1E2}"#,
            r#"{"replicas":18446744073709551615}"#,
            r#"{"replicas":18446744073709551616}"#,
            r#"{"replicas":9007199254740993}"#,
            r#"{"pipeline":"caf\u00e9","size":"é"}"#,
            r#"{"pipeline":"a	b"}"#,
            r#"{"pipeline":"p",}"#,
            r#"{,"pipeline":"p"}"#,
            r#"{"pipeline" "p"}"#,
            r#"{"pipeline":"p"}}"#,
            r#"{"replicas":1 2}"#,
            r#"{"replicas":true}"#,
        ];
        for body in bodies {
            assert_eq!(fast(body.as_bytes()), slow(body.as_bytes()), "{body}");
        }
        // Not UTF-8, inside a string and outside one.
        for body in [&b"{\"pipeline\":\"\xff\"}"[..], b"{\"pipeline\":\"p\"}\xff"] {
            assert_eq!(fast(body), slow(body));
            assert!(slow(body).is_err());
        }
    }

    /// The values of [`DEPLOY_FIELDS`] as [`object`] reads them.
    fn fast(body: &[u8]) -> Result<Vec<Option<Sent<'_>>>, Refusal> {
        object(body, DEPLOY_FIELDS).map(|f| f.values)
    }

    /// The same, from the whole-document parse alone.
    fn slow(body: &[u8]) -> Result<Vec<Option<Sent<'static>>>, Refusal> {
        object_slow(body, DEPLOY_FIELDS).map(|m| {
            DEPLOY_FIELDS
                .iter()
                .map(|k| m.get(*k).map(Sent::of))
                .collect()
        })
    }

    /// The one pass reads the usual body itself (no whole-document parse behind it).
    #[test]
    fn the_usual_body_is_read_in_one_pass() {
        let body = br#"{"environment":"prod","pipeline":"p-1","version":"1.2","size":"small","replicas":3}"#;
        let f = scan(body, DEPLOY_FIELDS).unwrap();
        assert_eq!(f.get("pipeline"), Some(&Sent::Text(Cow::Borrowed("p-1"))));
        assert_eq!(f.get("replicas"), Some(&Sent::Number(Some(3))));
        assert!(scan(br#"{"replicas":2.0}"#, DEPLOY_FIELDS).is_none());
        assert!(scan(br#"{"other":1}"#, DEPLOY_FIELDS).is_none());
    }

    proptest::proptest! {
        /// Objects built from known and unknown names, repeated, with values of every kind,
        /// cut short anywhere: the one-pass read and the whole-document parse agree.
        #[test]
        fn the_one_pass_read_agrees_on_any_body(
            members in proptest::collection::vec((0usize..8, 0usize..16), 0..8),
            cut in proptest::option::of(0usize..200),
        ) {
            const NAMES: [&str; 8] = ["environment", "pipeline", "version", "size", "replicas", "other", "envi\\u0072onment", "a\\\"b"];
            const VALUES: [&str; 16] = ["\"prod\"", "1", "2.5", "null", "[1,{\"a\":[]}]", "{\"x\":1}", "\"\\u00e9\"", "true", "0", "007", "-3", "4e1", "18446744073709551616", "\"a b\"", "\"\"", "\"\u{1}\""];
            const BLANKS: [&str; 4] = ["", " ", "\n\t", "\r "];
            let inner: Vec<String> = members.iter().map(|(k, v)| format!("\"{}\"{}:{}{}", NAMES[*k], BLANKS[v % 4], BLANKS[k % 4], VALUES[*v])).collect();
            let mut body = format!("{{{}}}", inner.join(&format!("{},", BLANKS[members.len() % 4])));
            if let Some(c) = cut {
                body.truncate(c.min(body.len()));
            }
            proptest::prop_assert_eq!(fast(body.as_bytes()), slow(body.as_bytes()), "{}", body);
        }
    }

    #[test]
    fn an_unknown_field_is_shown_escaped() {
        let r = refused("{\"\\u001b[31mred\":1}");
        assert!(r.starts_with("\"\\u001b[31mred\": not a field"), "{r}");
    }

    #[test]
    fn a_config_takes_defaults_and_bounds_every_count() {
        let c = config(br#"{"pipelineSubscriptions": 4}"#, D).unwrap();
        assert_eq!(
            (
                c.pipeline_subscriptions,
                c.extra_test_rtus,
                c.max_replicas,
                c.max_size
            ),
            (4, 0, 10, Size::Large)
        );
        let most = format!(
            r#"{{"pipelineSubscriptions":{MAX_COUNT},"extraTestRtus":{MAX_COUNT},"extraProdRtus":{MAX_COUNT},"maxReplicas":{MAX_COUNT},"maxSize":"small"}}"#
        );
        let c = config(most.as_bytes(), D).unwrap();
        // The largest pools fit the ledger's signed 64-bit columns with room to spare.
        assert!(c.rtus(Env::Prod) < i64::MAX as u64 / 2);
        for (body, msg) in [
            (r#"{}"#, "pipelineSubscriptions: required"),
            (
                r#"{"pipelineSubscriptions": 0}"#,
                "pipelineSubscriptions: a whole number from 1 to 4294967295",
            ),
            (
                r#"{"pipelineSubscriptions": 1, "extraProdRtus": 4294967296}"#,
                "extraProdRtus: a whole number from 0 to 4294967295",
            ),
            (
                r#"{"pipelineSubscriptions": 1, "maxReplicas": 0}"#,
                "maxReplicas: a whole number from 1 to 4294967295",
            ),
            (
                r#"{"pipelineSubscriptions": 1, "maxSize": "huge"}"#,
                "maxSize: small, medium or large",
            ),
        ] {
            assert_eq!(config(body.as_bytes(), D).unwrap_err().to_string(), msg);
        }
    }

    #[test]
    fn a_path_key_is_read_with_the_same_rules() {
        let k = key("test", "orders", "2").unwrap();
        assert_eq!((k.environment, k.major), (Env::Test, 2));
        assert_eq!(
            key("test", "orders", "0").unwrap_err().to_string(),
            "major: a whole number from 1 to 4294967295"
        );
        assert_eq!(
            key("test", "orders", "+1").unwrap_err().to_string(),
            "major: a whole number from 1 to 4294967295"
        );
        assert_eq!(
            key("test", "orders", "99999999999")
                .unwrap_err()
                .to_string(),
            "major: a whole number from 1 to 4294967295"
        );
        assert_eq!(
            key("qa", "orders", "1").unwrap_err().to_string(),
            "environment: test or prod"
        );
        assert!(key("test", "", "1").is_err());
    }
}
