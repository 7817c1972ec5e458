//! Tagd's long-running jobs, free of gRPC: the registry that records every job
//! and streams its progress, importer discovery, and the import runner.
//!
//! The runner never loads a plugin itself: each import (and each discovery
//! probe) runs in a worker process — the `tagd import-worker` subcommand — whose
//! frames the supervisor of `tagd-plugin-api` turns into events or a failure.

mod dedupe;
mod error;
mod importers;
mod imports;
mod records;
mod registry;
mod uploads;

pub use dedupe::{DedupeRequest, DuplicateMatch, Explanation, FieldExplanation, MAX_FIND_LIMIT};
pub use error::{JobError, JobResult};
pub use importers::Importer;
pub use imports::{ExistingCustomers, ImportRequest};
pub use records::DEFAULT_TAG_CATEGORY;
pub use registry::{Jobs, JobsConfig};
pub use tagd_match::BlockingKey;
pub use tagd_plugin_api::host::Limits as WorkerLimits;
pub use uploads::Upload;
