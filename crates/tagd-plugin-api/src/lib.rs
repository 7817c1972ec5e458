//! The importer plugin ABI shared by plugins (the guest side, always built) and
//! the host (the `host` feature: loader, worker process, supervisor).
//!
//! A plugin is a `cdylib` that implements [`Importer`] and calls
//! [`export_plugin!`]; the host never loads it into the server process but in a
//! worker process that streams [`pb::WorkerFrame`]s back over a pipe. The ABI
//! is described in `plugins/README.md`.

pub mod abi;
mod error;
pub mod guest;
pub mod lines;
mod options;
pub mod pb;
mod records;

#[cfg(feature = "host")]
pub mod host;

pub use error::Error;
pub use guest::{BoxError, Importer};
pub use options::Options;
pub use pb::{
    Customer, ExternalId, ImportRecord, Interaction, OptionSpec, PluginInfo, Purchase,
    PurchaseItem, RecordBatch, RowError, Tag,
};
pub use records::truncate_raw;
