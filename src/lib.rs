//! scorekeeper keeps a Balanced Scorecard current by itself: scheduled connectors pull
//! records from SaaS APIs, measures turn them into one value per period, and each value
//! is judged against its target.
//!
//! Start with `ARCHITECTURE.md` at the repository root: it maps these modules onto the
//! pipeline (sources → records → measures → status) and lists the invariants.

pub mod alerts;
pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod http;
pub mod measures;
pub mod notify;
pub mod recompute;
pub mod records;
pub mod scheduler;
pub mod scorecard;
pub mod secret;
pub mod shutdown;
pub mod sources;
pub mod status;
pub mod store;
pub mod strategy;
pub mod telemetry;
pub mod templates;
pub mod tls;
