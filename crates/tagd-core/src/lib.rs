//! Tagd's domain rules, free of I/O: what a valid name, phone, email, tag value
//! or page request is, and the canonical form each is stored in.
//!
//! Every function here is pure (ids and clocks aside) and unit-tested; the store
//! and the gRPC layer call into it and never re-implement a rule.

pub mod auth;
pub mod customers;
pub mod error;
pub mod ids;
pub mod interactions;
pub mod jobs;
pub mod merges;
pub mod metrics;
pub mod paging;
pub mod purchases;
pub mod rule_templates;
pub mod rules;
pub mod segments;
pub mod tag_stats;
pub mod tagging;
pub mod tags;
pub mod text;

pub use error::DomainError;
