//! The platform inside the realm's cluster: what phase 6 applies once the cluster is active.
//!
//! - [`bundle`]: the versioned platform bundle as data (embedded under `playbooks/platform/`,
//!   or a folder `platform.bundle` names), each file's digest part of the definition;
//! - [`realm`]: the realm's own objects made from the spec (namespaces, the TLS Secret whose
//!   data is read only at apply time, the ingress for the wildcard hosts) and [`quota`], the
//!   realm's enforcement core (Deployment, Service, volume, settings, tokens made once);
//! - [`definition`]: the one typed list of every object, its stage and digest, that the
//!   customer approves in phase 5 (inside the cluster definition) and `platform.apply` applies;
//! - [`object`]: which object (the reference the others share);
//! - [`plan`]: pure decisions — what to apply (changed since the last inventory), what to prune
//!   (applied earlier by this realm, no longer in the bundle);
//! - [`ready`]: pure readiness by the rules kstatus uses;
//! - [`client`]: the narrow Kubernetes API trait and its kube-rs implementation (server-side
//!   apply under one field manager). The staged apply itself is the `platform.apply` step
//!   (`engine/actions/platform.rs`), which carries out these decisions.
//!
//! The library never prints: progress goes through the step's recorder.

pub mod bundle;
pub mod client;
pub mod core;
pub mod definition;
pub mod object;
pub mod plan;
pub mod quota;
pub mod ready;
pub mod realm;
pub mod session;

pub use definition::{PlannedObject, PlatformDef, Stage};
pub use object::ObjectRef;

/// The field manager every apply is made under.
pub const FIELD_MANAGER: &str = "realmctl";

/// The label every object realmctl applies carries: the realm's name. Prune deletes only
/// objects carrying it (with this realm's value) that the inventory names.
pub const REALM_LABEL: &str = "digibee.io/realm";

/// The label saying who manages an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
