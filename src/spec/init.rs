//! `realmctl init`: a commented, valid starting spec for one cloud.

use serde::Serialize;

use super::raw::Provider;
use super::syntax::{is_dns_name, is_realm_name};
use crate::templates::{self, TemplateError};

/// Why `init` refused its input.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The realm name does not fit the pattern.
    #[error(
        "invalid realm name `{0}`\n  help: use 2 to 31 characters: a lowercase letter, then lowercase letters, digits or `-`"
    )]
    Name(String),
    /// The base domain is not a DNS name.
    #[error(
        "invalid base domain `{0}`\n  help: use a DNS name with at least two labels, e.g. digibee.acme.com"
    )]
    Domain(String),
    /// Rendering failed (a build defect).
    #[error(transparent)]
    Template(#[from] TemplateError),
}

#[derive(Serialize)]
struct Model<'a> {
    name: &'a str,
    cloud: String,
    domain: &'a str,
}

/// Renders the starting spec for `provider`, realm `name` and base `domain`.
pub fn render(provider: Provider, name: &str, domain: &str) -> Result<String, InitError> {
    if !is_realm_name(name) {
        return Err(InitError::Name(name.to_owned()));
    }
    let domain = domain.trim_end_matches('.');
    if !is_dns_name(domain) || !domain.contains('.') {
        return Err(InitError::Domain(domain.to_owned()));
    }
    Ok(templates::render(
        "realm.yaml",
        &Model {
            name,
            cloud: provider.to_string(),
            domain,
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{self, SpecError};

    /// A folder holding the (empty) certificate files the rendered spec names.
    fn with_certificate_files() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        std::fs::write(dir.path().join("certs/wildcard.pem"), "").unwrap();
        std::fs::write(dir.path().join("certs/wildcard.key"), "").unwrap();
        dir
    }

    #[test]
    fn rendered_specs_validate_for_every_cloud() {
        let dir = with_certificate_files();
        for p in [Provider::Eks, Provider::Aks, Provider::Gke] {
            let text = render(p, "acme", "digibee.acme.com").unwrap();
            let path = dir.path().join("realm.yaml");
            let s = spec::parse(&text, &path).unwrap_or_else(|e| panic!("{p}: {e}\n{text}"));
            assert_eq!(s.cloud.provider, p);
            assert_eq!(s.domains.required_names().len(), 6);
        }
    }

    /// The version `init` writes is under its cloud's standard support on the day the support
    /// calendars were read: refreshing the calendars (`src/cloud/profile/versions/`) fails this
    /// test until the default moves on, so `init` never starts a realm on a retired version.
    #[test]
    fn the_default_kubernetes_version_is_in_standard_support_on_every_cloud() {
        let dir = with_certificate_files();
        for p in [Provider::Eks, Provider::Aks, Provider::Gke] {
            let text = render(p, "acme", "digibee.acme.com").unwrap();
            let s = spec::parse(&text, &dir.path().join("realm.yaml")).unwrap();
            let cal = crate::cloud::profile::of(&s).kubernetes_support();
            let read = time::Date::parse(
                &cal.read,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .unwrap();
            let v = &s.cloud.cluster.kubernetes_version;
            assert!(
                matches!(
                    cal.judge(v, read),
                    crate::cloud::profile::support::Support::Standard { .. }
                ),
                "{p}: {v} on {read}: {:?}",
                cal.judge(v, read)
            );
        }
    }

    #[test]
    fn without_certificate_files_only_the_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let text = render(Provider::Eks, "acme", "digibee.acme.com").unwrap();
        match spec::parse(&text, &dir.path().join("realm.yaml")) {
            Err(SpecError::Invalid { diagnostics, .. }) => {
                assert_eq!(diagnostics.len(), 2, "{diagnostics:?}");
                assert!(
                    diagnostics
                        .iter()
                        .all(|d| d.message.contains("file not found"))
                );
            }
            other => panic!("expected missing files, got {other:?}"),
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(matches!(
            render(Provider::Gke, "A", "x.com"),
            Err(InitError::Name(_))
        ));
        assert!(matches!(
            render(Provider::Gke, "acme", "com"),
            Err(InitError::Domain(_))
        ));
    }
}
