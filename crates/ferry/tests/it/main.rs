//! ferry's end-to-end tests: a real server (in-process, or the `ferry`
//! binary) over HTTP, on SQLite and — when `FERRY_TEST_POSTGRES_URL` is set —
//! PostgreSQL. `support.rs` is the harness.

mod support;

mod agent;
mod auth;
mod blob_urls;
mod cli;
mod client_commands;
mod import_api;
mod import_processes;
mod import_xslt;
mod odata;
mod ops;
mod package_api;
mod recurring_export;
mod replication;
mod route_sweep;
mod throttle;
mod tidy;
