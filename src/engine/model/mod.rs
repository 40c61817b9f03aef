//! The engine's pure model and decisions: no I/O here (but for reading the certificate files
//! whose contents are step inputs).
//!
//! - [`playbook`]: the validated phases, steps and gates;
//! - [`event`], [`output`], [`approval`], [`record`]: what the journal records, and how;
//! - [`state`]: the fold of the journal into where each step stands;
//! - [`inputs`]: what each step depends on, digested;
//! - [`plan`]: what `install` will do, the spec diff, the retry policy;
//! - [`next`]: where an install stands and who acts next;
//! - [`chain`]: the journal's tamper-evidence check;
//! - [`report`]: the status and auditor report model;
//! - [`fleet`]: one row per realm over many state folders;
//! - [`inventory`]: what the journal says the realm holds (for `destroy`);
//! - [`teardown`]: the destroy plan.

pub mod approval;
pub mod chain;
pub mod event;
pub mod fleet;
pub mod inputs;
pub mod inventory;
pub mod next;
pub mod offline;
pub mod output;
pub mod plan;
pub mod playbook;
pub mod record;
pub mod report;
pub mod state;
pub mod teardown;
pub mod upgrade;
