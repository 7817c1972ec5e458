//! Tagd's long-running jobs, free of gRPC: the registry that records every job,
//! streams its progress and lets one store-wide maintenance job (cleanse, dedupe)
//! run at a time; importer discovery, the import runner and the cleanse runner.
//!
//! The runner never loads a plugin itself: each import (and each discovery
//! probe) runs in a worker process — the `tagd import-worker` subcommand — whose
//! frames the supervisor of `tagd-plugin-api` turns into events or a failure.

mod cleanse;
mod dedupe;
mod error;
mod importers;
mod imports;
mod records;
mod registry;
mod uploads;

pub use cleanse::{CLEANSED_FIELDS, CleanseReportPage, CleanseRequest};
pub use dedupe::{DedupeRequest, DuplicateMatch, Explanation, FieldExplanation, MAX_FIND_LIMIT};
pub use error::{JobError, JobResult};
pub use importers::Importer;
pub use imports::{ExistingCustomers, ImportRequest};
pub use records::DEFAULT_TAG_CATEGORY;
pub use registry::{Jobs, JobsConfig};
pub use tagd_match::BlockingKey;
pub use tagd_plugin_api::host::Limits as WorkerLimits;
pub use uploads::Upload;
