//! Over-the-wire tests: each starts the real server on a free port with a
//! fresh database and speaks HTTP to it. Every test runs twice, on SQLite
//! and on PostgreSQL (a new database each, dropped afterwards).

#![expect(clippy::expect_used, reason = "a test fails loudly on the first broken step")]

mod helpers;

mod admin;
mod attack;
mod burst;
mod chromium;
mod cli;
mod cluster;
mod console;
mod console_clients;
mod eddsa;
mod flows;
mod hardening;
mod import;
mod login;
mod observability;
mod oidc;
mod oidc_browser;
mod oidc_cluster;
mod oidc_codes;
mod oidc_codes_browser;
mod oidc_helpers;
mod oidc_page;
mod oidc_refusals;
mod oidc_sessions;
mod oidc_tickets;
mod openapi;
mod operations;
mod proxy;
mod retention;
mod robustness;
mod scaling;
mod sms;
mod sms_cluster;
mod sms_helpers;
mod sms_limits;
mod sms_logs;
mod tls_client;

pub use ciam_testdb::on_both_backends;
