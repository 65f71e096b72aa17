//! The integration test binary: the real app against real components on loopback
//! (SQLite files, a PostgreSQL server when `SCOREKEEPER_TEST_POSTGRES_URL` is set,
//! wiremock servers for the SaaS APIs, an SMTP server process (aiosmtpd) for email, the
//! compiled binary for end-to-end runs).

mod alerts;
mod api;
mod backfill;
mod browser;
mod csv;
mod dashboard;
mod declared;
mod delivery;
mod e2e;
mod email;
mod faults;
mod freshdesk;
mod helpers;
mod hubspot;
mod init;
mod limits;
mod moodle;
mod oauth;
mod openapi;
mod pipedrive;
mod quickbooks;
mod reconcile;
mod replicas;
mod secrets;
mod security;
mod shopify;
mod store;
mod stripe;
mod talentlms;
mod webhook;
mod xero;
mod zendesk;
