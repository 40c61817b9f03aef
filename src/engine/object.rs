//! Object storage for artifacts (S3, Azure Blob, GCS) — filled in below.
