//! The install workflow engine: walks a realm through the six phases of a playbook, journaling
//! every step in a hash-chained SQLite journal under the state folder.
//!
//! The folder shows the layers:
//!
//! - [`model`]: pure model and decisions (playbook, events, state, inputs, plan, who acts next,
//!   chain check, report model), unit-tested in place;
//! - [`actions`]: the catalogue — one definition per action, with its implementation;
//! - [`ctx`]: what a step is given and what it returns (shared by actions and engine);
//! - [`io`]: the journal, the lock and the artifact store;
//! - [`run`]: `install`, `unlock` — plan, then execute, under the realm's lock;
//! - [`approve`]: `approve`, here or imported from a customer's offline statement;
//! - [`audit`]: `audit verify` over the journal and the store;
//! - [`fleet`]: one row per realm over many state folders (or one state database), read-only;
//! - [`state_copy`]: a realm moved between a folder and a database, every hash kept;
//! - [`reveal`]: the one-time reveal of the realm VPN's key, recorded;
//! - [`options`], [`observer`]: how a front end configures a run and follows it.

pub mod actions;
pub mod approve;
pub mod audit;
pub mod blocking;
pub mod ctx;
pub mod fleet;
pub mod io;
pub mod model;
pub mod observer;
pub mod options;
pub mod reveal;
pub mod run;
pub mod state_copy;
pub mod teardown;
pub mod upgrade;

pub use observer::{EngineObserver, Quiet, StepEnd};
pub use options::{CheckOptions, Clock, RunOptions, system_clock};

/// Specs for unit tests: a spec from `realmctl init` in a temporary folder with certificate
/// files present.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::spec::{Provider, Spec};

    /// Writes the init spec for `provider` with `base` and loads it.
    pub fn spec(provider: Provider, base: &str) -> (tempfile::TempDir, Spec) {
        let dir = tempfile::tempdir().unwrap();
        let text = crate::spec::init::render(provider, "acme", base).unwrap();
        std::fs::create_dir_all(dir.path().join("certs")).unwrap();
        std::fs::write(dir.path().join("certs/wildcard.pem"), "cert").unwrap();
        std::fs::write(dir.path().join("certs/wildcard.key"), "key").unwrap();
        let path = dir.path().join("realm.yaml");
        std::fs::write(&path, text).unwrap();
        let spec = crate::spec::load(&path).unwrap();
        (dir, spec)
    }
}
