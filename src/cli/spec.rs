//! `realmctl init|validate|schema`: writing and checking the realm spec.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow};
use serde_json::json;

use realmctl::spec::{self, Provider, Spec, SpecError};

use super::{BadInput, Format, Outcome, bad};

/// Loads a spec, or bad input naming the file, line and fix.
pub fn load(file: &Path) -> Result<Spec, BadInput> {
    spec::load(file).map_err(|e| bad(anyhow!(e)))
}

/// `realmctl init`.
pub fn init(
    provider: Provider,
    name: &str,
    domain: &str,
    out: Option<&Path>,
) -> Result<Outcome, BadInput> {
    let text = spec::init::render(provider, name, domain).map_err(bad)?;
    match out {
        None => print!("{text}"),
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| {
                    format!("cannot create {} (it must not exist yet)", path.display())
                })
                .map_err(bad)?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))
                .map_err(bad)?;
            eprintln!(
                "wrote {}; edit the REPLACE lines, then run `realmctl validate -f {}`",
                path.display(),
                path.display()
            );
        }
    }
    Ok(Outcome::Success)
}

/// `realmctl schema`.
pub fn schema() -> Result<Outcome, BadInput> {
    super::print_json(&spec::json_schema());
    Ok(Outcome::Success)
}

/// `realmctl validate`.
pub fn validate(file: &Path, output: Format) -> Result<Outcome, BadInput> {
    let loaded = spec::load(file);
    // The cluster definition the spec makes must be one its cloud accepts.
    if let Ok(s) = &loaded {
        let problems = realmctl::cloud::access::definition_problems(s);
        if !problems.is_empty() {
            return Err(bad(anyhow!(
                "{}: the {} cluster definition this spec makes would be refused by the cloud: {}\n  help: change the names the spec gives (cloud.cluster.name, the realm name)",
                file.display(),
                s.cloud.provider,
                problems.join("; ")
            )));
        }
    }
    match (loaded, output) {
        (Ok(s), Format::Text) => {
            println!(
                "{}: valid: realm {} on {} {} ({} required names, {} outbound targets)",
                file.display(),
                s.name,
                s.cloud.provider,
                s.cloud.region,
                s.domains.required_names().len(),
                s.outbound.targets.len()
            );
            Ok(Outcome::Success)
        }
        (Ok(s), Format::Json) => {
            println!(
                "{}",
                json!({"file": file, "valid": true, "realm": s.name, "errors": []})
            );
            Ok(Outcome::Success)
        }
        (Err(SpecError::Invalid { diagnostics, .. }), Format::Json) => {
            println!(
                "{}",
                json!({"file": file, "valid": false, "realm": null, "errors": diagnostics})
            );
            Err(bad(anyhow!(
                "{} is not a valid realm spec ({} problem(s))",
                file.display(),
                diagnostics.len()
            )))
        }
        (Err(e), _) => Err(bad(anyhow!(e))),
    }
}
