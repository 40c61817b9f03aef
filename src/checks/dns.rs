//! DNS checks: every required wildcard resolves, and CAA does not forbid the certificate's issuer.
//!
//! For each `*.<prefix>.<base>` a random label under it is resolved (A/AAAA, following CNAMEs)
//! through the spec's name servers or the system resolver. NXDOMAIN, NODATA, SERVFAIL, REFUSED
//! and timeouts are told apart ([`Outcome`]), because each has a different fix.
//! CAA follows RFC 8659: the relevant record set is the first non-empty one climbing from
//! `<prefix>.<base>` towards the root; for wildcard names `issuewild` takes precedence.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use futures::future::join_all;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::CAA;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

use super::{Category, CheckResult, Observer};
use crate::spec::Domains;

const CAT: Category = Category::Dns;

/// What one lookup produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Addresses (A/AAAA, after CNAMEs).
    Addresses(Vec<IpAddr>),
    /// The name does not exist.
    NxDomain,
    /// The name exists but has no record of the asked type.
    NoData,
    /// The server failed (SERVFAIL).
    ServFail,
    /// The server refused (REFUSED).
    Refused,
    /// No answer in time.
    Timeout,
    /// Anything else, described.
    Other(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Addresses(a) => write!(f, "{} address(es)", a.len()),
            Outcome::NxDomain => f.write_str("NXDOMAIN"),
            Outcome::NoData => f.write_str("NODATA"),
            Outcome::ServFail => f.write_str("SERVFAIL"),
            Outcome::Refused => f.write_str("REFUSED"),
            Outcome::Timeout => f.write_str("timeout"),
            Outcome::Other(e) => f.write_str(e),
        }
    }
}

/// Decides the status, message and fix of a resolution (pure).
pub fn classify(wildcard: &str, probe: &str, server: &str, outcome: &Outcome) -> CheckResult {
    let id = format!(
        "dns.resolve.{}",
        wildcard
            .trim_start_matches("*.")
            .split('.')
            .next()
            .unwrap_or("")
    );
    let fail = |msg: String, fix: &str| CheckResult::fail(&id, CAT, wildcard, msg, fix);
    match outcome {
        Outcome::Addresses(a) if !a.is_empty() => {
            let list: Vec<String> = a.iter().map(ToString::to_string).collect();
            CheckResult::pass(
                &id,
                CAT,
                wildcard,
                format!("{probe} resolves to {} via {server}", list.join(", ")),
            )
        }
        Outcome::Addresses(_) | Outcome::NoData => fail(
            format!("{probe} exists but has no A/AAAA record (NODATA) via {server}"),
            "give the wildcard record an address: *.<prefix>.<base> as CNAME or A/AAAA to the realm's ingress",
        ),
        Outcome::NxDomain => fail(
            format!("{probe} does not exist (NXDOMAIN) via {server}: there is no wildcard record"),
            "create the wildcard DNS record (CNAME or A/AAAA) for this name, pointing at the realm's ingress",
        ),
        Outcome::ServFail => fail(
            format!("{server} answered SERVFAIL for {probe}: it could not resolve the zone"),
            "fix the zone's delegation or DNSSEC, or use a resolver that can reach the authoritative servers",
        ),
        Outcome::Refused => fail(
            format!("{server} REFUSED the query for {probe}"),
            "allow this network to query the name server (recursion/ACL), or list one that serves the zone in domains.nameservers",
        ),
        Outcome::Timeout => fail(
            format!("no answer from {server} for {probe} within the deadline (timeout)"),
            "check that UDP and TCP port 53 to the name server are open from this network",
        ),
        Outcome::Other(e) => fail(
            format!("looking up {probe} via {server} failed: {e}"),
            "check the name server settings of this machine or domains.nameservers",
        ),
    }
}

/// Maps a resolver error to an [`Outcome`].
pub fn outcome_of(e: &NetError) -> Outcome {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr))
            if nr.response_code == ResponseCode::NXDomain =>
        {
            Outcome::NxDomain
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => Outcome::NoData,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => Outcome::ServFail,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => Outcome::Refused,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::NXDomain)) => Outcome::NxDomain,
        NetError::Timeout => Outcome::Timeout,
        NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => Outcome::Timeout,
        other => Outcome::Other(other.to_string()),
    }
}

/// Builds a resolver for the given name servers (empty: the system configuration).
pub fn resolver(nameservers: &[SocketAddr], timeout: Duration) -> Result<TokioResolver, NetError> {
    let mut builder = if nameservers.is_empty() {
        Resolver::builder_tokio()?
    } else {
        let servers = nameservers
            .iter()
            .map(|a| {
                let mut udp = ConnectionConfig::udp();
                udp.port = a.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = a.port();
                NameServerConfig::new(a.ip(), true, vec![udp, tcp])
            })
            .collect();
        Resolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    let opts = builder.options_mut();
    opts.timeout = timeout;
    opts.attempts = 1;
    opts.cache_size = 0;
    builder.build()
}

fn server_label(nameservers: &[SocketAddr]) -> String {
    match nameservers {
        [] => "the system resolver".into(),
        [one] => one.to_string(),
        many => many
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A random DNS label such as `rc-3f9a0c1d2b4e5f60`.
fn random_label() -> String {
    let mut b = [0u8; 8];
    // The OS RNG never fails on supported platforms; fall back to the clock if it does.
    if SystemRandom::new().fill(&mut b).is_err() {
        b = (Instant::now().elapsed().as_nanos() as u64 ^ std::process::id() as u64).to_be_bytes();
    }
    format!(
        "rc-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// The issuer of the certificate, as names to compare with CAA issuer domains.
#[derive(Debug, Clone, Default)]
pub struct CertIssuer {
    /// The issuer DN as text, for messages.
    pub display: String,
    /// Organisation and common-name values of the issuer DN.
    pub names: Vec<String>,
}

/// Runs the resolution checks and the CAA check.
pub async fn run(
    domains: &Domains,
    issuer: Option<&CertIssuer>,
    timeout: Duration,
    observer: &dyn Observer,
) -> Vec<CheckResult> {
    let required = domains.required_names();
    observer.on_category_start(CAT, required.len() + 1);
    let server = server_label(&domains.nameservers);
    let started = Instant::now();
    let resolver = match resolver(&domains.nameservers, timeout) {
        Ok(r) => r,
        Err(e) => {
            let r = CheckResult::fail(
                "dns.resolver",
                CAT,
                &server,
                format!("cannot set up DNS resolution: {e}"),
                "check /etc/resolv.conf or set domains.nameservers",
            )
            .took(started.elapsed());
            observer.on_check(&r);
            return vec![r];
        }
    };
    let lookups = required.iter().map(|w| {
        let (resolver, server) = (&resolver, &server);
        async move {
            let t0 = Instant::now();
            let probe = format!("{}.{}", random_label(), w.trim_start_matches("*."));
            let outcome = match tokio::time::timeout(
                timeout + Duration::from_millis(250),
                resolver.lookup_ip(format!("{probe}.")),
            )
            .await
            {
                Ok(Ok(ips)) => Outcome::Addresses(ips.iter().collect()),
                Ok(Err(e)) => outcome_of(&e),
                Err(_) => Outcome::Timeout,
            };
            let r = classify(w, &probe, server, &outcome).took(t0.elapsed());
            observer.on_check(&r);
            r
        }
    });
    let mut out = join_all(lookups).await;
    let t0 = Instant::now();
    let caa = caa_check(&resolver, domains, issuer, timeout)
        .await
        .took(t0.elapsed());
    observer.on_check(&caa);
    out.push(caa);
    out
}

/// The relevant CAA set for `name` (RFC 8659 §3): the first non-empty one climbing to the root.
async fn relevant_caa(
    resolver: &TokioResolver,
    name: &str,
    timeout: Duration,
) -> Result<Option<(String, Vec<CAA>)>, Outcome> {
    let mut current = name.to_owned();
    loop {
        let lookup = tokio::time::timeout(
            timeout + Duration::from_millis(250),
            resolver.lookup(format!("{current}."), RecordType::CAA),
        )
        .await;
        match lookup {
            Ok(Ok(l)) => {
                let set: Vec<CAA> = l
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::CAA(c) => Some(c.clone()),
                        _ => None,
                    })
                    .collect();
                if !set.is_empty() {
                    return Ok(Some((current, set)));
                }
            }
            Ok(Err(e)) => match outcome_of(&e) {
                Outcome::NxDomain | Outcome::NoData => {}
                other => return Err(other),
            },
            Err(_) => return Err(Outcome::Timeout),
        }
        match current.split_once('.') {
            Some((_, parent)) if parent.contains('.') => current = parent.to_owned(),
            _ => return Ok(None),
        }
    }
}

/// What a CAA set says about a wildcard certificate from `issuer` (pure).
#[derive(Debug, PartialEq, Eq)]
pub enum CaaVerdict {
    /// No restriction for wildcard issuance.
    Unrestricted,
    /// The issuer appears to be allowed.
    Allowed(Vec<String>),
    /// Issuance is allowed for other CAs only.
    NotListed(Vec<String>),
    /// No CA may issue a wildcard certificate.
    ForbidsAll,
}

/// Applies RFC 8659 to a CAA set for wildcard names.
pub fn caa_verdict(set: &[CAA], issuer: Option<&CertIssuer>) -> CaaVerdict {
    let tagged = |tag: &str| {
        set.iter()
            .filter(|c| c.tag.eq_ignore_ascii_case(tag))
            .collect::<Vec<_>>()
    };
    let wild = tagged("issuewild");
    let relevant = if wild.is_empty() {
        tagged("issue")
    } else {
        wild
    };
    if relevant.is_empty() {
        return CaaVerdict::Unrestricted;
    }
    let domains: Vec<String> = relevant
        .iter()
        .filter_map(|c| c.value_as_issue().ok().and_then(|(name, _)| name))
        .map(|n| n.to_ascii().trim_end_matches('.').to_ascii_lowercase())
        .collect();
    if domains.is_empty() {
        return CaaVerdict::ForbidsAll;
    }
    let Some(issuer) = issuer else {
        return CaaVerdict::Allowed(domains);
    };
    let issuer_keys: Vec<String> = issuer.names.iter().map(|n| squash(n)).collect();
    let matches = domains.iter().any(|d| {
        let labels: Vec<&str> = d.split('.').collect();
        // The CA's brand is the label before the public suffix: letsencrypt.org -> letsencrypt.
        let brand = squash(
            labels
                .len()
                .checked_sub(2)
                .map_or(d.as_str(), |i| labels[i]),
        );
        brand.len() >= 3 && issuer_keys.iter().any(|k| k.contains(&brand))
    });
    if matches {
        CaaVerdict::Allowed(domains)
    } else {
        CaaVerdict::NotListed(domains)
    }
}

fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

async fn caa_check(
    resolver: &TokioResolver,
    domains: &Domains,
    issuer: Option<&CertIssuer>,
    timeout: Duration,
) -> CheckResult {
    let subject = format!("CAA for *.<prefix>.{}", domains.base);
    let mut sets: Vec<(String, Vec<CAA>)> = Vec::new();
    for p in domains.design_time.iter().chain(&domains.run_time) {
        match relevant_caa(resolver, &format!("{p}.{}", domains.base), timeout).await {
            Ok(Some((owner, set))) if !sets.iter().any(|(o, _)| *o == owner) => {
                sets.push((owner, set))
            }
            Ok(_) => {}
            Err(o) => {
                return CheckResult::warn(
                    "dns.caa",
                    CAT,
                    subject,
                    format!(
                        "the CAA lookup for {p}.{} failed ({o}); CAs refuse to issue when CAA cannot be read",
                        domains.base
                    ),
                    "make CAA queries for the domain answer (NOERROR), so certificates can be renewed",
                );
            }
        }
    }
    if sets.is_empty() {
        return CheckResult::pass(
            "dns.caa",
            CAT,
            subject,
            "no CAA records: any CA may issue the wildcard certificate",
        );
    }
    let issuer_text = issuer.map_or("the certificate's issuer".to_owned(), |i| i.display.clone());
    let mut problems = Vec::new();
    let mut fails = false;
    let mut allowed = Vec::new();
    for (owner, set) in &sets {
        match caa_verdict(set, issuer) {
            CaaVerdict::Unrestricted => allowed.push(format!("{owner}: no wildcard restriction")),
            CaaVerdict::Allowed(d) => allowed.push(format!("{owner}: allows {}", d.join(", "))),
            CaaVerdict::NotListed(d) => problems.push(format!("CAA at {owner} allows only {} for wildcards, which does not appear to include {issuer_text}", d.join(", "))),
            CaaVerdict::ForbidsAll => {
                fails = true;
                problems.push(format!("CAA at {owner} forbids every CA from issuing wildcard certificates"));
            }
        }
    }
    match (problems.is_empty(), fails) {
        (true, _) => CheckResult::pass("dns.caa", CAT, subject, allowed.join("; ")),
        (false, true) => CheckResult::fail(
            "dns.caa",
            CAT,
            subject,
            problems.join("; "),
            "add a CAA issuewild record for your CA (e.g. 0 issuewild \"your-ca.example\"), or the wildcard certificate cannot be issued or renewed",
        ),
        (false, false) => CheckResult::warn(
            "dns.caa",
            CAT,
            subject,
            problems.join("; "),
            "add a CAA issuewild record for the CA that issued the certificate, or renewals will be refused",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::Name;

    fn issuer(names: &[&str]) -> CertIssuer {
        CertIssuer {
            display: names.join(", "),
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn outcomes_map_to_distinct_findings() {
        let outcomes = [
            Outcome::NxDomain,
            Outcome::NoData,
            Outcome::ServFail,
            Outcome::Refused,
            Outcome::Timeout,
        ];
        let messages: Vec<String> = outcomes
            .iter()
            .map(|o| classify("*.core.d.acme.com", "x.core.d.acme.com", "127.0.0.1:53", o).message)
            .collect();
        for (m, word) in messages
            .iter()
            .zip(["NXDOMAIN", "NODATA", "SERVFAIL", "REFUSED", "timeout"])
        {
            assert!(m.contains(word), "{m}");
        }
        let pass = classify(
            "*.core.d.acme.com",
            "x",
            "s",
            &Outcome::Addresses(vec!["127.0.0.1".parse().unwrap()]),
        );
        assert_eq!(pass.status, super::super::Status::Pass);
        assert_eq!(pass.id, "dns.resolve.core");
        assert!(
            classify("*.core.d", "x", "s", &Outcome::NxDomain)
                .fix
                .is_some()
        );
    }

    #[test]
    fn caa_issuewild_takes_precedence_and_semicolon_forbids() {
        let le = Name::from_ascii("letsencrypt.org").unwrap();
        let dc = Name::from_ascii("digicert.com").unwrap();
        let issue_le = CAA::new_issue(false, Some(le.clone()), vec![]);
        let wild_none = CAA::new_issuewild(false, None, vec![]);
        let wild_dc = CAA::new_issuewild(false, Some(dc), vec![]);
        let lets = issuer(&["Let's Encrypt", "R11"]);
        assert_eq!(
            caa_verdict(std::slice::from_ref(&issue_le), Some(&lets)),
            CaaVerdict::Allowed(vec!["letsencrypt.org".into()])
        );
        assert_eq!(
            caa_verdict(&[issue_le.clone(), wild_none], Some(&lets)),
            CaaVerdict::ForbidsAll
        );
        assert_eq!(
            caa_verdict(&[issue_le, wild_dc], Some(&lets)),
            CaaVerdict::NotListed(vec!["digicert.com".into()])
        );
        assert_eq!(
            caa_verdict(
                &[CAA::new_iodef(false, "mailto:x@acme.com".parse().unwrap())],
                Some(&lets)
            ),
            CaaVerdict::Unrestricted
        );
    }
}
