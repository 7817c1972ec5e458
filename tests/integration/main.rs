//! tagd's integration tests: one binary; every scenario runs against the real
//! `tagd` server over gRPC, once on SQLite and once on MariaDB, each on a
//! fresh database.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod fixtures;
mod harness;

mod activity;
mod auth;
mod catalogue;
mod cleanse;
mod cli;
mod customers;
mod dedupe;
mod imports;
mod operations;
mod rules;
mod segments;
mod tagging;
