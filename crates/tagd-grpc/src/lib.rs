//! Tagd's gRPC adapter: the only crate that implements tonic services.
//!
//! Each service module (`tags`, `customers`, `tagging`, `imports`, `jobs`,
//! `purchases`, `interactions`, `metrics`, `cleanse`, `dedupe`, `segments`, `rules`) turns requests into
//! domain values (validated by `tagd-core`), calls the store, and maps results
//! back; `error` maps every store error to a status in one place; `middleware`
//! authenticates callers, enforces roles and logs one line per RPC.

mod cleanse;
mod condition;
mod convert;
mod customers;
mod dedupe;
mod error;
mod imports;
mod interactions;
mod jobs;
mod metrics;
mod middleware;
mod purchases;
mod rules;
mod segments;
mod server;
mod tagging;
mod tags;

pub use crate::middleware::{ApiKey, KeyRing};
pub use crate::server::{ServeError, ServerOptions, serve};
