//! The enforcement core: subscription and RTU admission for every pipeline deployment.
//!
//! [`model`] holds the rules as pure functions; [`ledger`] stores each realm's config,
//! active deployments and an append-only decision log in SQLite, one `BEGIN IMMEDIATE`
//! transaction per admission so concurrent requests can never over-admit.
//! See `docs/quota-model.md`.

pub mod ledger;
pub mod model;
