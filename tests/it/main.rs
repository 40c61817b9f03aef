//! The integration tests, in one test binary (one link of the library, axum and object_store
//! instead of thirteen). Each module is one area; `common` and `engine_support` are shared
//! helpers. Everything a test talks to listens on loopback and is started by the test.

#![allow(dead_code)]

mod cloud_install;
mod common;
mod engine_support;

#[cfg(feature = "aks")]
mod aks;
#[cfg(all(feature = "aks", feature = "object-store"))]
mod aks_blob;
#[cfg(all(feature = "eks", feature = "object-store"))]
mod approved_definition;
mod certificate_matrix;
mod cli;
#[cfg(all(feature = "eks", feature = "object-store"))]
mod destroy_eks;
#[cfg(any(feature = "aks", feature = "gke"))]
mod destroy_standins;
mod dns;
mod durability;
#[cfg(all(feature = "eks", feature = "object-store"))]
mod eks_install;
#[cfg(all(feature = "eks", feature = "object-store"))]
mod eks_moto;
#[cfg(feature = "eks")]
mod eks_standin;
mod engine;
mod engine_audit;
#[cfg(feature = "test-actions")]
mod engine_crash;
mod engine_report;
#[cfg(feature = "object-store")]
mod engine_s3;
#[cfg(feature = "test-actions")]
mod fleet;
#[cfg(feature = "gke")]
mod gke;
#[cfg(all(feature = "gke", feature = "object-store"))]
mod gke_gcs;
mod hardening;
mod kube_standin;
mod no_panic;
mod offline_approval;
mod outbound;
mod pg;
#[cfg(all(feature = "eks", feature = "object-store"))]
mod probe_findings;
mod quota;
mod quota_cli;
mod quota_contract;
mod quota_http;
mod quota_pg;
#[cfg(feature = "gke")]
mod realm_live;
mod state_db;
mod upgrade;
#[cfg(all(feature = "eks", feature = "object-store"))]
mod vpn_eks;
#[cfg(all(feature = "aks", feature = "gke"))]
mod vpn_standins;
