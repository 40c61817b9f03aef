//! `realmctl preflight`: the customer self-check, as a table, JSON, and an HTML or Markdown
//! report.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::anyhow;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use realmctl::checks::Category;
use realmctl::preflight::{self, Options};
use realmctl::report::{self, DocFormat};

use super::progress::Progress;
use super::{BadInput, Format, Outcome, bad, env};

/// Where the access checks get their cloud provider.
pub enum CloudFrom {
    /// The spec's cloud on its standard credential chain.
    Spec,
    /// This provider (the demo's, on its stand-in).
    Given(Arc<dyn realmctl::cloud::Cloud>),
}

/// Runs the self-check of the spec `file`, prints the result in `output` and tells whether it
/// passed.
#[allow(clippy::too_many_arguments)]
pub fn run(
    runtime: &tokio::runtime::Runtime,
    file: &Path,
    only: Option<Vec<Category>>,
    output: Format,
    report_path: Option<&Path>,
    concurrency: Option<usize>,
    cloud_from: CloudFrom,
    access_timeout: std::time::Duration,
) -> Result<Outcome, BadInput> {
    let report = check(
        runtime,
        file,
        only,
        output,
        report_path,
        concurrency,
        cloud_from,
        access_timeout,
    )?;
    match output {
        Format::Text => {
            let mut out = anstream::stdout();
            let _ = write!(out, "{}", report::text(&report));
        }
        Format::Json => println!("{}", report::json(&report)),
    }
    Ok(if report.failed() {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

/// Runs the self-check of the spec `file` (progress on stderr for `output` text) and writes the
/// report document to `report_path`; prints nothing on stdout.
#[allow(clippy::too_many_arguments)]
pub fn check(
    runtime: &tokio::runtime::Runtime,
    file: &Path,
    only: Option<Vec<Category>>,
    output: Format,
    report_path: Option<&Path>,
    concurrency: Option<usize>,
    cloud_from: CloudFrom,
    access_timeout: std::time::Duration,
) -> Result<preflight::Report, BadInput> {
    let doc_format = match report_path {
        None => None,
        Some(p) => Some(DocFormat::for_path(p).ok_or_else(|| {
            bad(anyhow!(
                "--report {}: unknown report type\n  help: name the file .html or .md",
                p.display()
            ))
        })?),
    };
    let spec = super::spec::load(file)?;
    let now = OffsetDateTime::now_utc();
    let wants_access = only.as_ref().is_none_or(|o| o.contains(&Category::Access));
    let cloud = match cloud_from {
        CloudFrom::Given(c) => Some(c),
        CloudFrom::Spec if wants_access => super::clouds::connect(runtime, &spec)?,
        CloudFrom::Spec => None,
    };
    let opts = Options {
        only,
        concurrency,
        proxy_auth: env::proxy_auth(&spec)?,
        now,
        public_roots: None,
        cloud,
        access_step_deadline: access_timeout,
    };
    let progress = Progress::new(output == Format::Text);
    let result = runtime.block_on(preflight::run(&spec, &opts, &progress));
    progress.finish();
    let report = result.map_err(bad)?;
    if let (Some(path), Some(fmt)) = (report_path, doc_format) {
        let stamp = now
            .replace_nanosecond(0)
            .unwrap_or(now)
            .format(&Rfc3339)
            .unwrap_or_default();
        let doc = report::document(&report, fmt, &stamp).map_err(bad)?;
        super::emit(&doc, Some(path))?;
    }
    Ok(report)
}
