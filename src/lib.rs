//! `realmctl`: installs the Digibee Integration Platform into a customer's own cloud account,
//! lets customers check their prerequisites themselves, and enforces realm subscription limits.
//!
//! The library never prints: commands return values, and progress reaches a front end through
//! [`checks::Observer`]. See `docs/architecture.md`.

pub mod checks;
pub mod cloud;
pub mod crypto;
pub mod demo;
pub mod engine;
pub mod fsutil;
pub mod platform;
pub mod preflight;
pub mod quota;
pub mod report;
pub mod requirements;
pub mod secret;
pub mod serve;
pub mod signing;
pub mod spec;
pub mod templates;
pub mod text;
