//! The loading side (feature `host`): [`loader`] opens a plugin with
//! libloading, [`worker`] runs one import inside a child process and writes
//! frames, [`supervisor`] spawns that process from the server and turns its
//! frames, exit status and silences into events or a clear failure.
//!
//! The server itself never calls [`loader`]: a plugin that crashes must take
//! down only its worker.

pub mod frame;
pub mod loader;
pub mod supervisor;
pub mod worker;

pub use loader::{Plugin, Session};
pub use supervisor::{Event, Limits, WorkerRun, spawn};
pub use worker::{frame_output, run_probe, run_worker};
