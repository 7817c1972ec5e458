//! The worker side: runs inside a disposable child process, loads the plugin
//! and writes frames (info, batches, then done or failure) to `out`.
#![expect(
    unsafe_code,
    reason = "moving the stdout file descriptor needs dup/dup2"
)]

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufWriter, Write},
    os::fd::FromRawFd,
    path::Path,
};

use super::{frame::write_frame, loader::Plugin};
use crate::{
    Error,
    pb::{Done, Failure, PluginInfo, Stage, WorkerFrame, worker_frame::Frame},
};

/// Records and row errors asked of the plugin per batch (and so per frame).
pub const BATCH_RECORDS: u32 = 1_000;

/// Takes the process's stdout for frames and points file descriptor 1 at
/// stderr, so a plugin that prints cannot corrupt the frame stream.
/// Call once, first thing in the worker process.
pub fn frame_output() -> std::io::Result<File> {
    std::io::stdout().flush()?;
    // SAFETY: dup of a descriptor we own; checked for failure.
    let frames = unsafe { libc::dup(libc::STDOUT_FILENO) };
    if frames < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are open; dup2 atomically repoints 1 at stderr's file.
    if unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `frames` is a fresh descriptor owned by nothing else.
    Ok(unsafe { File::from_raw_fd(frames) })
}

fn frame(frame: Frame) -> WorkerFrame {
    WorkerFrame { frame: Some(frame) }
}

fn fail(out: &mut impl Write, stage: Stage, error: Error) -> Error {
    let failure = Failure {
        stage: stage.into(),
        message: error.to_string(),
    };
    // The error is returned either way; a closed pipe just means the supervisor is gone.
    let _ = write_frame(out, &frame(Frame::Failure(failure)));
    error
}

fn write(out: &mut impl Write, f: Frame) -> Result<(), Error> {
    write_frame(out, &frame(f)).map_err(Error::io("writing a frame to the supervisor"))
}

fn load(plugin_path: &Path, out: &mut impl Write) -> Result<Plugin, Error> {
    match Plugin::load(plugin_path) {
        Ok(plugin) => {
            write(out, Frame::Info(plugin.info().clone()))?;
            Ok(plugin)
        }
        Err(e) => Err(fail(out, Stage::Load, e)),
    }
}

/// Loads the plugin and reports its metadata only: an Info frame, then Done.
pub fn run_probe(plugin_path: &Path, out: impl Write) -> Result<PluginInfo, Error> {
    let mut out = BufWriter::new(out);
    let plugin = load(plugin_path, &mut out)?;
    write(&mut out, Frame::Done(Done::default()))?;
    Ok(plugin.info().clone())
}

/// Runs one import: loads `plugin_path`, opens `source_path` with `options`
/// and streams every batch to `out` (the worker's stdout, see [`frame_output`]).
/// A failure is written as a Failure frame and also returned, so the caller can
/// exit non-zero.
pub fn run_worker(
    plugin_path: &Path,
    source_path: &Path,
    options: &BTreeMap<String, String>,
    out: impl Write,
) -> Result<Done, Error> {
    let mut out = BufWriter::new(out);
    let plugin = load(plugin_path, &mut out)?;
    let mut session = match plugin.open(source_path, options) {
        Ok(session) => session,
        Err(e) => return Err(fail(&mut out, Stage::Open, e)),
    };
    let mut done = Done::default();
    loop {
        match session.next_batch(BATCH_RECORDS) {
            Ok(Some(batch)) => {
                done.records += batch.records.len() as u64;
                done.row_errors += batch.errors.len() as u64;
                write(&mut out, Frame::Batch(batch))?;
            }
            Ok(None) => break,
            Err(e) => return Err(fail(&mut out, Stage::Read, e)),
        }
    }
    drop(session);
    write(&mut out, Frame::Done(done))?;
    Ok(done)
}
