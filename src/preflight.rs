//! `realmctl preflight`: runs the customer self-check for a validated spec.
//!
//! Categories run in report order; DNS and outbound run at the same time because both wait on
//! the network. The result is the brief's JSON shape ([`Report`]); rendering lives in
//! [`crate::report`].

use std::sync::Arc;
use std::time::Instant;

use ::time::OffsetDateTime;
use rustls_pki_types::TrustAnchor;
use serde::Serialize;
use x509_parser::prelude::*;

use crate::checks::dns::CertIssuer;
use crate::checks::outbound::{self, ProxyAuth};
use crate::checks::{
    self, Category, CheckResult, Observer, Status, certificate, dns, node_image, vpn,
};
use crate::requirements;
use crate::spec::Spec;

/// How to run a preflight.
pub struct Options {
    /// Categories to run; `None` runs all available.
    pub only: Option<Vec<Category>>,
    /// Outbound targets checked at once (`None`: all at once, bounded by the open-file limit).
    pub concurrency: Option<usize>,
    /// Proxy credentials read from the environment variable the spec names.
    pub proxy_auth: Option<ProxyAuth>,
    /// The time to judge certificate dates by.
    pub now: OffsetDateTime,
    /// Roots a served chain must verify to (default: Mozilla's public roots).
    pub public_roots: Option<Arc<Vec<TrustAnchor<'static>>>>,
    /// The realm's cloud, for the access checks (`None`: they cannot run).
    pub cloud: Option<Arc<dyn crate::cloud::Cloud>>,
    /// How long each of the three access steps (credentials, account, permissions) may take:
    /// the access category reports within three times this, whatever the cloud's endpoint
    /// does (default [`ACCESS_STEP_DEADLINE`]).
    pub access_step_deadline: std::time::Duration,
}

/// How long an access step of a preflight may take by default.
pub const ACCESS_STEP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Why a preflight could not run.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// A category this run cannot check was asked for.
    #[error(
        "the `{0}` checks need a cloud provider for the realm's cloud, and this run has none (not in this build)\n  help: run the other categories (--only certificate,dns,outbound,vpn,spec)"
    )]
    Unavailable(Category),
}

/// Pass/warn/fail counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Passed.
    pub pass: usize,
    /// Warnings.
    pub warn: usize,
    /// Failures.
    pub fail: usize,
}

/// The preflight result, exactly the brief's JSON object.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Realm name.
    pub realm: String,
    /// Counts.
    pub summary: Summary,
    /// Every result, in category order.
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// Builds a report and its summary from results.
    pub fn new(realm: impl Into<String>, checks: Vec<CheckResult>) -> Self {
        let mut summary = Summary::default();
        for c in &checks {
            match c.status {
                Status::Pass => summary.pass += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
            }
        }
        Report {
            realm: realm.into(),
            summary,
            checks,
        }
    }

    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.summary.fail > 0
    }
}

/// Runs the selected checks against `spec`.
pub async fn run(
    spec: &Spec,
    opts: &Options,
    observer: &dyn Observer,
) -> Result<Report, PreflightError> {
    let wanted = |c: Category| opts.only.as_ref().is_none_or(|o| o.contains(&c));
    if wanted(Category::Access) && opts.only.is_some() && opts.cloud.is_none() {
        return Err(PreflightError::Unavailable(Category::Access));
    }
    let mut results: Vec<CheckResult> = Vec::new();
    let emit = |rs: Vec<CheckResult>, results: &mut Vec<CheckResult>| {
        for r in &rs {
            observer.on_check(r);
        }
        results.extend(rs);
    };
    if wanted(Category::Spec) {
        observer.on_category_start(Category::Spec, 1);
        let t0 = Instant::now();
        let r = node_image::check(&spec.cloud.cluster.node_image).took(t0.elapsed());
        emit(vec![r], &mut results);
    }
    let required = spec.domains.required_names();
    if wanted(Category::Certificate) {
        observer.on_category_start(Category::Certificate, 7);
        let rs = certificate::run(&spec.certificate, &required, opts.now);
        emit(rs, &mut results);
    }
    let issuer = leaf_issuer(&spec.certificate.cert);
    let net_timeout = spec.outbound.timeout;
    let dns_fut = async {
        if wanted(Category::Dns) {
            dns::run(&spec.domains, issuer.as_ref(), net_timeout, observer).await
        } else {
            Vec::new()
        }
    };
    let out_fut = async {
        if !wanted(Category::Outbound) {
            return Vec::new();
        }
        let proxy = spec.outbound.proxy.as_ref().map(|p| outbound::Proxy {
            host: p.host.clone(),
            port: p.port,
            auth: opts.proxy_auth.clone(),
        });
        let mut o = outbound::Options::new(net_timeout, opts.concurrency, proxy);
        if let Some(roots) = &opts.public_roots {
            o.public_roots = roots.clone();
        }
        outbound::run(&spec.outbound.targets, &o, observer).await
    };
    let access_fut = async {
        match (&opts.cloud, wanted(Category::Access)) {
            (Some(cloud), true) => access(cloud.as_ref(), spec, opts, observer).await,
            _ => Vec::new(),
        }
    };
    let (dns_results, outbound_results, access_results) =
        tokio::join!(dns_fut, out_fut, access_fut);
    results.extend(dns_results);
    results.extend(outbound_results);
    if wanted(Category::Vpn) && spec.vpn.enabled {
        observer.on_category_start(Category::Vpn, 3);
        let rs = vpn::check(&spec.vpn, &requirements::embedded().vpn);
        emit(rs, &mut results);
    }
    results.extend(access_results);
    Ok(Report::new(&spec.name, results))
}

/// The read-only access checks of phases 1–3: credentials, account, permissions. A cloud error
/// (no credentials, no network) or a step that outlives its deadline is one failed check naming
/// it, so the other categories still report.
async fn access(
    cloud: &dyn crate::cloud::Cloud,
    spec: &Spec,
    opts: &Options,
    observer: &dyn Observer,
) -> Vec<CheckResult> {
    use crate::cloud::access as a;
    use crate::cloud::{CloudError, CloudErrorKind};
    observer.on_category_start(Category::Access, 12);
    let t0 = Instant::now();
    let deadline = opts.access_step_deadline;
    let failed = |step: &str, e: CloudError| {
        let owner = match e.kind {
            CloudErrorKind::Unavailable | CloudErrorKind::Throttled => checks::Owner::Digibee,
            _ => checks::Owner::Customer,
        };
        vec![
            CheckResult::fail(
                format!("access.{step}"),
                Category::Access,
                cloud.describe(),
                e.to_string(),
                e.kind
                    .help()
                    .unwrap_or("check the credentials and the network path to the cloud's API"),
            )
            .owned_by(owner),
        ]
    };
    let bounded = async |step: &str, f: crate::cloud::CloudFuture<'_, Vec<CheckResult>>| {
        match tokio::time::timeout(deadline, f).await {
            Ok(r) => r,
            Err(_) => Err(CloudError::new(
                CloudErrorKind::Unavailable,
                format!("access.{step}"),
                format!(
                    "{} gave no complete answer within {} s",
                    cloud.describe(),
                    deadline.as_secs_f64()
                ),
            )),
        }
    };
    let mut out = Vec::new();
    let creds = bounded(
        "credentials",
        Box::pin(async {
            let (_, rs) = a::credentials(cloud, spec, opts.now).await?;
            Ok(rs)
        }),
    )
    .await;
    match creds {
        Err(e) => out.extend(failed("credentials", e)),
        Ok(rs) => {
            out.extend(rs);
            match bounded("account", Box::pin(a::account(cloud, spec))).await {
                Ok(rs) => out.extend(rs),
                Err(e) => out.extend(failed("account", e)),
            }
            match bounded("permissions", Box::pin(a::permissions(cloud, spec))).await {
                Ok(rs) => out.extend(rs),
                Err(e) => out.extend(failed("permissions", e)),
            }
        }
    }
    let per = t0.elapsed() / out.len().max(1) as u32;
    for r in &mut out {
        *r = r.clone().took(per);
        observer.on_check(r);
    }
    out
}

/// The leaf's issuer names, for the CAA check; `None` when the chain cannot be read.
fn leaf_issuer(path: &std::path::Path) -> Option<CertIssuer> {
    let bytes = crate::fsutil::read_capped(path, crate::fsutil::caps::CERTIFICATE).ok()?;
    let chain = certificate::pem::parse_chain(&bytes).ok()?;
    let (_, leaf) = X509Certificate::from_der(&chain[0]).ok()?;
    let issuer = leaf.issuer();
    let names = issuer
        .iter_organization()
        .chain(issuer.iter_common_name())
        .filter_map(|a| a.as_str().ok().map(str::to_owned))
        .collect();
    Some(CertIssuer {
        display: issuer.to_string(),
        names,
    })
}

/// The categories a full preflight runs with (`cloud`) or without a cloud provider.
pub fn available(cloud: bool) -> Vec<Category> {
    checks::Category::ALL
        .into_iter()
        .filter(|c| cloud || *c != Category::Access)
        .collect()
}
