//! The realm's enforcement core as cluster objects: `realmctl quota serve` (image from the
//! bundle) as a Deployment with its Service, the PersistentVolumeClaim its SQLite ledger lives
//! on, its database settings (a ConfigMap) and its tokens.
//!
//! Tokens are made once per realm and kept in the cluster: the admin token (the only one that
//! may change the realm's config: `quota.seed` and `realmctl quota --in-realm` read it from its
//! Secret) and the realm token (what the platform's deployer presents; `realm.live` asks with
//! it). The Secret the core mounts holds only their SHA-256 digests. None of the three
//! Secrets has data in its manifest: [`QuotaTokens`] fills them at apply time, reusing the
//! tokens already in the cluster, so re-running an install never changes a token, and nothing
//! but the request carries one (not the journal, the artifacts or the reports).
//!
//! The core is reached through the API server's service proxy
//! (`/api/v1/namespaces/{ns}/services/http:{name}:http/proxy/…`), which authenticates the
//! caller with its own token and strips `Authorization` before forwarding; the quota token
//! therefore travels in [`crate::quota::http::TOKEN_HEADER`].

use base64::Engine as _;
use serde_json::{Value, json};

use super::object::ObjectRef;
use crate::quota::tokens::{self, Scope};
use crate::secret::Secret;
use crate::spec::Spec;

/// The namespace of the core.
pub const NAMESPACE: &str = "digibee-system";
/// The Deployment's and the Service's name.
pub const SERVICE: &str = "digibee-quota";
/// The Service's port (and its name, `http`).
pub const PORT: u16 = 8080;
/// The Secret holding the admin token.
pub const ADMIN_SECRET: &str = "digibee-quota-admin";
/// The Secret holding the realm token.
pub const REALM_SECRET: &str = "digibee-quota-realm";
/// The Secret the core mounts: token digests → scope (`quota serve --tokens`).
pub const TOKENS_SECRET: &str = "digibee-quota-tokens";
/// The ConfigMap of the core's database settings.
pub const SETTINGS: &str = "digibee-quota-settings";
/// The claim the ledger lives on.
pub const DATA: &str = "digibee-quota-data";

const TOKENS_DIR: &str = "/etc/realmctl-quota";
const DATA_DIR: &str = "/var/lib/realmctl-quota";
/// The user the core runs as (also the group owning its volume).
const RUN_AS: u32 = 65532;

/// The service proxy path of `path` (which starts with `/`) on the core.
pub fn proxy_path(path: &str) -> String {
    format!("/api/v1/namespaces/{NAMESPACE}/services/http:{SERVICE}:http/proxy{path}")
}

fn secret(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"name": name, "namespace": NAMESPACE}})
}

/// The core's objects for `spec`, in apply order (Secrets without data).
pub fn objects(spec: &Spec) -> Vec<Value> {
    let app = json!({"app.kubernetes.io/name": SERVICE});
    vec![
        secret(ADMIN_SECRET),
        secret(REALM_SECRET),
        secret(TOKENS_SECRET),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": SETTINGS, "namespace": NAMESPACE},
               "data": {"db": format!("{DATA_DIR}/quota.db"), "db-timeout": "5s"}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": DATA, "namespace": NAMESPACE},
               "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE},
        "spec": {
          // One writer of the SQLite ledger: never two pods at once.
          "replicas": 1,
          "strategy": {"type": "Recreate"},
          "selector": {"matchLabels": app},
          "template": {
            "metadata": {"labels": app},
            "spec": {
              "automountServiceAccountToken": false,
              "securityContext": {"runAsNonRoot": true, "runAsUser": RUN_AS,
                                  "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
                                  "seccompProfile": {"type": "RuntimeDefault"}},
              "containers": [{
                "name": "quota",
                "image": spec.platform.quota_image,
                "command": ["realmctl"],
                "args": ["quota", "serve", "--db", "$(QUOTA_DB)",
                         "--db-timeout", "$(QUOTA_DB_TIMEOUT)",
                         "--listen", format!("0.0.0.0:{PORT}"),
                         "--tokens", format!("{TOKENS_DIR}/tokens.yaml")],
                "env": [
                  {"name": "QUOTA_DB", "valueFrom": {"configMapKeyRef": {"name": SETTINGS, "key": "db"}}},
                  {"name": "QUOTA_DB_TIMEOUT", "valueFrom": {"configMapKeyRef": {"name": SETTINGS, "key": "db-timeout"}}}
                ],
                "ports": [{"name": "http", "containerPort": PORT}],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                              "limits": {"memory": "256Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false,
                                    "readOnlyRootFilesystem": true,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [
                  {"name": "tokens", "mountPath": TOKENS_DIR, "readOnly": true},
                  {"name": "data", "mountPath": DATA_DIR}
                ]
              }],
              "volumes": [
                // 0440: readable by the core's group, writable by nobody (the core
                // refuses a tokens file others may write).
                {"name": "tokens", "secret": {"secretName": TOKENS_SECRET, "defaultMode": 0o440}},
                {"name": "data", "persistentVolumeClaim": {"claimName": DATA}}
              ]
            }
          }
        }}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": SERVICE, "namespace": NAMESPACE},
               "spec": {"selector": app,
                        "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]}}),
    ]
}

/// The reference of the core's Secret `name`.
pub fn secret_ref(name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "Secret".into(),
        namespace: Some(NAMESPACE.into()),
        name: name.into(),
    }
}

/// Whether `v` is one of the core's Secrets (filled at apply time).
pub fn filled_at_apply(v: &Value) -> bool {
    v["kind"] == "Secret"
        && v["metadata"]["namespace"] == NAMESPACE
        && [ADMIN_SECRET, REALM_SECRET, TOKENS_SECRET]
            .contains(&v["metadata"]["name"].as_str().unwrap_or_default())
}

/// The token a token Secret read from the cluster holds, if it is one realmctl made.
pub fn token_in(secret: &Value) -> Option<Secret> {
    let b64 = secret["data"]["token"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let t = String::from_utf8(bytes).ok()?;
    tokens::well_formed(&t).then(|| Secret::new(t))
}

/// The realm's two tokens.
pub struct QuotaTokens {
    admin: Secret,
    realm: Secret,
    realm_name: String,
}

impl QuotaTokens {
    /// The tokens already in the cluster (the admin and realm Secrets as read, if they exist),
    /// each made anew only when absent.
    pub fn keep_or_mint(realm_name: &str, admin: Option<&Value>, realm: Option<&Value>) -> Self {
        let mint = |s: Scope| Secret::new(tokens::mint(&s).0);
        QuotaTokens {
            admin: admin
                .and_then(token_in)
                .unwrap_or_else(|| mint(Scope::Admin)),
            realm: realm
                .and_then(token_in)
                .unwrap_or_else(|| mint(Scope::Realm(realm_name.to_owned()))),
            realm_name: realm_name.to_owned(),
        }
    }

    /// The admin token.
    pub fn admin(&self) -> &Secret {
        &self.admin
    }

    /// The realm token.
    pub fn realm(&self) -> &Secret {
        &self.realm
    }

    /// The tokens file the core mounts: digests only.
    fn tokens_file(&self) -> String {
        format!(
            "# realmctl: the realm's enforcement core tokens (SHA-256 digests)\n{}: admin\n{}: {}\n",
            tokens::digest_hex(self.admin.expose()),
            tokens::digest_hex(self.realm.expose()),
            self.realm_name
        )
    }

    /// `manifest` with its data, if it is one of the core's Secrets.
    pub fn fill(&self, manifest: &Value) -> Option<Value> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let data = match manifest["metadata"]["name"].as_str()? {
            ADMIN_SECRET => json!({"token": b64(self.admin.expose())}),
            REALM_SECRET => json!({"token": b64(self.realm.expose())}),
            TOKENS_SECRET => json!({"tokens.yaml": b64(&self.tokens_file())}),
            _ => return None,
        };
        let mut v = manifest.clone();
        v["data"] = data;
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::tokens::Tokens;

    #[test]
    fn tokens_are_kept_once_made_and_the_core_mounts_only_their_digests() {
        let first = QuotaTokens::keep_or_mint("acme", None, None);
        let objs: Vec<Value> = objects(
            &crate::engine::test_support::spec(crate::spec::Provider::Eks, "digibee.acme.com").1,
        );
        let filled: Vec<Value> = objs.iter().filter_map(|o| first.fill(o)).collect();
        assert_eq!(filled.len(), 3);
        assert!(
            objs.iter()
                .filter(|o| filled_at_apply(o))
                .all(|o| o.get("data").is_none())
        );
        // Read back from the cluster: the same tokens.
        let again = QuotaTokens::keep_or_mint("acme", Some(&filled[0]), Some(&filled[1]));
        assert_eq!(again.admin().expose(), first.admin().expose());
        assert_eq!(again.realm().expose(), first.realm().expose());
        assert_ne!(first.admin().expose(), first.realm().expose());
        // The mounted file names digests that the core accepts, and no token.
        let file = base64::engine::general_purpose::STANDARD
            .decode(filled[2]["data"]["tokens.yaml"].as_str().unwrap())
            .unwrap();
        let file = String::from_utf8(file).unwrap();
        assert!(!file.contains(first.admin().expose()));
        let t = Tokens::parse(&file, std::path::Path::new("tokens.yaml")).unwrap();
        let bearer = |s: &Secret| format!("Bearer {}", s.expose());
        assert_eq!(
            t.authorize(Some(&bearer(first.admin())), "acme", true),
            Ok(Scope::Admin)
        );
        assert_eq!(
            t.authorize(Some(&bearer(first.realm())), "acme", false),
            Ok(Scope::Realm("acme".into()))
        );
        assert!(
            t.authorize(Some(&bearer(first.realm())), "acme", true)
                .is_err()
        );
        // A Secret holding something else is not a token: a new one is made.
        let foreign = json!({"data": {"token": "bm90IGEgdG9rZW4="}});
        assert_ne!(
            QuotaTokens::keep_or_mint("acme", Some(&foreign), None)
                .admin()
                .expose(),
            first.admin().expose()
        );
    }

    #[test]
    fn the_core_runs_one_non_root_replica_from_the_bundle_image() {
        let (_d, spec) =
            crate::engine::test_support::spec(crate::spec::Provider::Gke, "digibee.acme.com");
        let objs = objects(&spec);
        let dep = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        let pod = &dep["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["image"],
            spec.platform.quota_image.as_str()
        );
        assert_eq!(dep["spec"]["replicas"], 1);
        assert_eq!(dep["spec"]["strategy"]["type"], "Recreate");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["volumes"][0]["secret"]["defaultMode"], 0o440);
        assert_eq!(
            proxy_path("/readyz"),
            "/api/v1/namespaces/digibee-system/services/http:digibee-quota:http/proxy/readyz"
        );
    }
}
