//! The platform bundle: a versioned set of Kubernetes manifests, as data.
//!
//! A bundle is a folder with `bundle.yaml` (`name`, `version`, and `files`, the manifests in
//! the order they are listed) and those YAML files (several documents each). The default is
//! embedded from `playbooks/platform/`; a spec's `platform.bundle` names a folder that replaces
//! it. Each file's SHA-256 is part of the definition the customer approves, so a changed byte
//! voids the approval. Files are read capped, regular files only, names relative and plain
//! (no `..`, no absolute paths).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crypto::sha256_hex;

/// The largest bundle file read.
pub const FILE_CAP: u64 = 4 * 1024 * 1024;
/// The most files a bundle may list.
pub const MAX_FILES: usize = 256;

/// The embedded default bundle: `bundle.yaml` and the files it lists.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "bundle.yaml",
        include_str!("../../playbooks/platform/bundle.yaml"),
    ),
    (
        "00-crds.yaml",
        include_str!("../../playbooks/platform/00-crds.yaml"),
    ),
    (
        "10-rbac.yaml",
        include_str!("../../playbooks/platform/10-rbac.yaml"),
    ),
    (
        "20-platform.yaml",
        include_str!("../../playbooks/platform/20-platform.yaml"),
    ),
];

/// Where a bundle came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "from", content = "path")]
pub enum Source {
    /// Embedded in realmctl.
    Embedded,
    /// A folder.
    Folder(PathBuf),
}

/// One manifest file.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleFile {
    /// Its name in the bundle.
    pub path: String,
    /// `sha256:<hex>` of its bytes.
    pub digest: String,
    /// Its objects (documents that are not empty).
    pub objects: Vec<Value>,
}

/// A loaded bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// Where it came from.
    pub source: Source,
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its files, in order.
    pub files: Vec<BundleFile>,
    /// The image of the realm's enforcement core (`realmctl quota serve`), `name:tag`.
    pub quota_image: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    version: String,
    files: Vec<String>,
    quota: QuotaImage,
}

/// `quota:` in `bundle.yaml`: the enforcement core's image.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaImage {
    image: String,
    tag: String,
}

/// An image reference part: registry/path characters only (pure).
fn image_part(s: &str, extra: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c) || extra.contains(c))
}

/// Why a bundle cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: crate::fsutil::ReadError,
    },
    /// A file is not valid YAML or not what a bundle holds.
    #[error(
        "{path}: {why}\n  help: a bundle is a folder with bundle.yaml (name, version, files) and the Kubernetes manifests it lists"
    )]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

impl Bundle {
    /// The embedded default.
    pub fn embedded() -> Bundle {
        load_with(Source::Embedded, |name| {
            EMBEDDED
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| (*t).to_owned())
                .ok_or_else(|| BundleError::Invalid {
                    path: name.to_owned(),
                    why: "not in the embedded bundle".into(),
                })
        })
        .expect("the embedded bundle is tested")
    }

    /// The bundle in `dir`.
    pub fn from_folder(dir: &Path) -> Result<Bundle, BundleError> {
        load_with(Source::Folder(dir.to_owned()), |name| {
            let path = dir.join(name);
            crate::fsutil::read_capped_string(&path, FILE_CAP)
                .map_err(|source| BundleError::Read { path, source })
        })
    }

    /// `sha256:<hex>` over its name, version and file digests.
    pub fn digest(&self) -> String {
        let mut text = format!("{}\n{}\n{}\n", self.name, self.version, self.quota_image);
        for f in &self.files {
            text.push_str(&format!("{} {}\n", f.path, f.digest));
        }
        format!("sha256:{}", sha256_hex(text.as_bytes()))
    }
}

/// A file name a bundle may list: relative, plain, YAML.
fn plain_name(name: &str) -> bool {
    let p = Path::new(name);
    !name.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
        && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

fn load_with(
    source: Source,
    mut read: impl FnMut(&str) -> Result<String, BundleError>,
) -> Result<Bundle, BundleError> {
    let text = read("bundle.yaml")?;
    let m: Manifest = serde_saphyr::from_str(&text).map_err(|e| BundleError::Invalid {
        path: "bundle.yaml".into(),
        why: e.to_string(),
    })?;
    if m.files.is_empty() || m.files.len() > MAX_FILES {
        return Err(BundleError::Invalid {
            path: "bundle.yaml".into(),
            why: format!("lists {} files (1 to {MAX_FILES})", m.files.len()),
        });
    }
    if !image_part(&m.quota.image, "/:") || !image_part(&m.quota.tag, "") {
        return Err(BundleError::Invalid {
            path: "bundle.yaml".into(),
            why: format!(
                "quota.image `{}` and quota.tag `{}` must be an image name and a tag (letters, digits, `.`, `_`, `-`; `/` and a registry port in the name)",
                crate::text::one_line(&m.quota.image),
                crate::text::one_line(&m.quota.tag)
            ),
        });
    }
    let mut files = Vec::new();
    for name in &m.files {
        if !plain_name(name) || name == "bundle.yaml" {
            return Err(BundleError::Invalid {
                path: "bundle.yaml".into(),
                why: format!(
                    "`{}` is not a plain relative .yaml file name",
                    crate::text::one_line(name)
                ),
            });
        }
        let text = read(name)?;
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&text).map_err(|e| BundleError::Invalid {
                path: name.clone(),
                why: e.to_string(),
            })?;
        let mut objects = Vec::new();
        for (i, d) in docs.into_iter().enumerate() {
            if d.is_null() {
                continue;
            }
            check_object(&d).map_err(|why| BundleError::Invalid {
                path: name.clone(),
                why: format!("document {}: {why}", i + 1),
            })?;
            objects.push(d);
        }
        files.push(BundleFile {
            path: name.clone(),
            digest: format!("sha256:{}", sha256_hex(text.as_bytes())),
            objects,
        });
    }
    Ok(Bundle {
        source,
        name: m.name,
        version: m.version,
        files,
        quota_image: format!("{}:{}", m.quota.image, m.quota.tag),
    })
}

/// What every object of a bundle must have: apiVersion, kind, metadata.name; no status, no
/// server-set metadata (they are the server's).
fn check_object(v: &Value) -> Result<(), String> {
    if !v.is_object() {
        return Err("not a mapping".into());
    }
    for f in ["apiVersion", "kind"] {
        if v[f].as_str().is_none_or(str::is_empty) {
            return Err(format!("has no {f}"));
        }
    }
    if v["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        return Err("has no metadata.name".into());
    }
    for f in ["resourceVersion", "uid", "managedFields", "generateName"] {
        if v["metadata"].get(f).is_some() {
            return Err(format!("sets metadata.{f}, which the API server owns"));
        }
    }
    if v.get("status").is_some() {
        return Err("sets status, which the cluster's controllers own".into());
    }
    if v["kind"] == "Secret" {
        return Err("is a Secret: secrets never travel in a bundle (the realm's TLS Secret is made from the customer's files at apply time)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_bundle_loads_and_digests_each_file() {
        let b = Bundle::embedded();
        assert_eq!(b.name, "digibee-platform");
        assert!(!b.files.is_empty());
        for f in &b.files {
            assert!(f.digest.starts_with("sha256:"), "{}", f.path);
            assert!(!f.objects.is_empty(), "{}", f.path);
        }
        assert_eq!(b.digest(), Bundle::embedded().digest());
    }

    const QUOTA: &str = "quota: {image: registry.example:5000/realmctl, tag: '1.0'}\n";

    #[test]
    fn a_folder_bundle_is_checked_file_by_file() {
        let dir = tempfile::tempdir().unwrap();
        let w = |n: &str, t: &str| std::fs::write(dir.path().join(n), t).unwrap();
        w(
            "bundle.yaml",
            &format!("name: b\nversion: '1'\nfiles: [a.yaml]\n{QUOTA}"),
        );
        w(
            "a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: digibee-system}\n---\n",
        );
        let b = Bundle::from_folder(dir.path()).unwrap();
        assert_eq!(b.files[0].objects.len(), 1);
        assert_eq!(b.source, Source::Folder(dir.path().to_owned()));
        for (files, text, want) in [
            ("[../a.yaml]", "", "not a plain relative"),
            (
                "[a.yaml]",
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
                "never travel",
            ),
            (
                "[a.yaml]",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\nstatus: {}\n",
                "status",
            ),
            (
                "[a.yaml]",
                "kind: ConfigMap\nmetadata: {name: s}\n",
                "no apiVersion",
            ),
        ] {
            w(
                "bundle.yaml",
                &format!("name: b\nversion: '1'\nfiles: {files}\n{QUOTA}"),
            );
            w("a.yaml", text);
            let e = Bundle::from_folder(dir.path()).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        w(
            "bundle.yaml",
            &format!("name: b\nversion: '1'\nfiles: [missing.yaml]\n{QUOTA}"),
        );
        assert!(matches!(
            Bundle::from_folder(dir.path()),
            Err(BundleError::Read { .. })
        ));
        w("a.yaml", "");
        for quota in [
            "",
            "quota: {image: 'evil image', tag: '1'}\n",
            "quota: {image: r/q, tag: 'a:b'}\n",
        ] {
            w(
                "bundle.yaml",
                &format!("name: b\nversion: '1'\nfiles: [a.yaml]\n{quota}"),
            );
            assert!(
                matches!(
                    Bundle::from_folder(dir.path()),
                    Err(BundleError::Invalid { .. })
                ),
                "{quota}"
            );
        }
    }
}
