//! The server side: spawns a worker process and turns its frames into
//! [`Event`]s, and its deaths and silences into one clear [`Error`].
//!
//! Async on tokio so a server can drive many imports without a thread each:
//! `spawn(...)` then `next().await` until `Ok(None)` or an `Err`. Dropping a
//! [`WorkerRun`] kills the worker.
#![expect(
    unsafe_code,
    reason = "resource limits are applied in the child between fork and exec"
)]

use std::{
    os::unix::process::{CommandExt, ExitStatusExt},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use prost::Message;
use tokio::{
    io::{AsyncRead, AsyncReadExt, BufReader},
    process::{Child, ChildStdout},
    task::JoinHandle,
};

use super::frame::decode_len;
use crate::{
    Error,
    pb::{Done, PluginInfo, RecordBatch, WorkerFrame, worker_frame::Frame},
};

/// How much of the worker's stderr is kept for diagnostics.
const STDERR_TAIL_BYTES: usize = 16 << 10;
/// How long a worker gets to exit after its last frame before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// What Rust's default allocation-failure handler prints before aborting.
const ALLOC_FAILURE_TEXT: &str = "memory allocation of";

/// What a worker may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// No frame for this long kills the worker ("made no progress").
    pub stall_timeout: Duration,
    /// Address-space limit (`RLIMIT_AS`) of the worker; `None` for none.
    /// Virtual, not resident, memory: leave room for thread stacks and mappings.
    pub memory_limit_bytes: Option<u64>,
    /// A longer frame is a protocol error (a plugin batch is at most ~4 MiB plus one record).
    pub max_frame_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            stall_timeout: Duration::from_secs(60),
            memory_limit_bytes: Some(2 << 30),
            max_frame_bytes: 64 << 20,
        }
    }
}

/// One step of an import.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The plugin loaded; always first.
    Info(PluginInfo),
    /// Records and row errors, in source order.
    Batch(RecordBatch),
    /// The import finished; always last.
    Done(Done),
}

/// A running worker process.
#[derive(Debug)]
pub struct WorkerRun {
    plugin: String,
    limits: Limits,
    child: Child,
    frames: BufReader<ChildStdout>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_task: Option<JoinHandle<()>>,
    finished: bool,
}

/// Spawns `command` (a worker: `tagd import-worker …` or `tagd-plugin-worker …`)
/// with piped stdout/stderr and `limits` applied. `plugin` names the plugin in errors.
/// Must be called within a tokio runtime.
pub fn spawn(
    mut command: std::process::Command,
    plugin: impl Into<String>,
    limits: Limits,
) -> Result<WorkerRun, Error> {
    let plugin = plugin.into();
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let memory = limits.memory_limit_bytes;
    // SAFETY: the closure runs in the forked child before exec and only calls
    // setrlimit, which is async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            set_limit(libc::RLIMIT_CORE, 0)?;
            if let Some(bytes) = memory {
                set_limit(libc::RLIMIT_AS, bytes)?;
            }
            Ok(())
        });
    }
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    let mut child = command.spawn().map_err(Error::io(format!(
        "spawning the worker for plugin {plugin}"
    )))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Error::Protocol {
            plugin,
            reason: "worker spawned without pipes".to_owned(),
        });
    };
    let tail = Arc::new(Mutex::new(Vec::new()));
    let stderr_task = tokio::spawn(keep_tail(stderr, Arc::clone(&tail)));
    Ok(WorkerRun {
        plugin,
        limits,
        child,
        frames: BufReader::new(stdout),
        stderr: tail,
        stderr_task: Some(stderr_task),
        finished: false,
    })
}

fn set_limit(resource: libc::__rlimit_resource_t, bytes: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: a plain syscall with a valid pointer to a local struct.
    if unsafe { libc::setrlimit(resource, &raw const limit) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Drains the worker's stderr (so it never blocks on a full pipe), keeping the end.
async fn keep_tail(mut stderr: impl AsyncRead + Unpin, tail: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = vec![0; 4096];
    while let Ok(n @ 1..) = stderr.read(&mut chunk).await {
        let Ok(mut tail) = tail.lock() else { return };
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > STDERR_TAIL_BYTES {
            let excess = tail.len() - STDERR_TAIL_BYTES;
            tail.drain(..excess);
        }
    }
}

/// Reads one frame: `Ok(None)` on a clean end of stream before a frame.
async fn read_frame(
    reader: &mut (impl AsyncRead + Unpin),
    max_bytes: usize,
) -> Result<Option<WorkerFrame>, String> {
    let mut prefix = Vec::with_capacity(10);
    let len = loop {
        match reader.read_u8().await {
            Ok(byte) => prefix.push(byte),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && prefix.is_empty() => {
                return Ok(None);
            }
            Err(e) => return Err(format!("reading a frame length: {e}")),
        }
        if let Some(len) = decode_len(&prefix)? {
            break len;
        }
    };
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > max_bytes {
        return Err(format!(
            "frame of {len} bytes exceeds the limit of {max_bytes}"
        ));
    }
    let mut body = vec![0; len];
    reader
        .read_exact(&mut body)
        .await
        .map_err(|e| format!("reading a frame of {len} bytes: {e}"))?;
    WorkerFrame::decode(body.as_slice())
        .map(Some)
        .map_err(|e| format!("undecodable frame: {e}"))
}

/// `SIGSEGV` for 11, etc.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        other => return format!("signal {other}"),
    };
    name.to_owned()
}

impl WorkerRun {
    /// The plugin's name as given to [`spawn`].
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The worker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The last 16 KiB the worker wrote to stderr (panic messages, plugin noise).
    pub fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .map(|t| String::from_utf8_lossy(&t).into_owned())
            .unwrap_or_default()
    }

    /// The next event; `Ok(None)` after [`Event::Done`]. Any `Err` is final and
    /// the worker is gone by the time it is returned.
    pub async fn next(&mut self) -> Result<Option<Event>, Error> {
        if self.finished {
            return Ok(None);
        }
        let read = tokio::time::timeout(
            self.limits.stall_timeout,
            read_frame(&mut self.frames, self.limits.max_frame_bytes),
        )
        .await;
        let frame = match read {
            Err(_elapsed) => {
                self.kill().await;
                return Err(Error::Stalled {
                    plugin: self.plugin.clone(),
                    secs: self.limits.stall_timeout.as_secs(),
                });
            }
            Ok(Err(reason)) => {
                // A broken stream usually means the worker died mid-frame: its exit says why.
                return Err(match self.wait_exit().await {
                    Some(status) if !status.success() => self.exit_error(status),
                    _ => {
                        self.kill().await;
                        Error::Protocol {
                            plugin: self.plugin.clone(),
                            reason,
                        }
                    }
                });
            }
            Ok(Ok(None)) => {
                let status = self.wait_exit().await;
                return Err(match status {
                    Some(status) => self.exit_error(status),
                    None => Error::Protocol {
                        plugin: self.plugin.clone(),
                        reason: "the worker closed its output but did not exit".to_owned(),
                    },
                });
            }
            Ok(Ok(Some(frame))) => frame,
        };
        match frame.frame {
            Some(Frame::Info(info)) => Ok(Some(Event::Info(info))),
            Some(Frame::Batch(batch)) => Ok(Some(Event::Batch(batch))),
            Some(Frame::Done(done)) => {
                // Every record is in; how the worker exits no longer matters.
                let _ = self.wait_exit().await;
                Ok(Some(Event::Done(done)))
            }
            Some(Frame::Failure(failure)) => {
                let _ = self.wait_exit().await;
                Err(Error::Plugin {
                    plugin: self.plugin.clone(),
                    message: failure.message,
                })
            }
            None => {
                self.kill().await;
                Err(Error::Protocol {
                    plugin: self.plugin.clone(),
                    reason: "an empty frame".to_owned(),
                })
            }
        }
    }

    /// Kills the worker (e.g. the import was cancelled) and reaps it.
    pub async fn kill(&mut self) {
        self.finished = true;
        // Already exited is fine: kill only fails then.
        let _ = self.child.kill().await;
        self.finish_stderr().await;
    }

    /// Waits for the worker to exit on its own, killing it after the grace period.
    async fn wait_exit(&mut self) -> Option<ExitStatus> {
        self.finished = true;
        let status = match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = self.child.kill().await;
                None
            }
        };
        self.finish_stderr().await;
        status
    }

    async fn finish_stderr(&mut self) {
        if let Some(task) = self.stderr_task.take() {
            // A grandchild holding the pipe open must not stall us.
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }

    fn exit_error(&self, status: ExitStatus) -> Error {
        let plugin = self.plugin.clone();
        let stderr = self.stderr_tail();
        if let Some(signal) = status.signal() {
            if let (libc::SIGABRT, Some(limit)) = (signal, self.limits.memory_limit_bytes)
                && stderr.contains(ALLOC_FAILURE_TEXT)
            {
                return Error::MemoryLimit {
                    plugin,
                    limit_mib: limit >> 20,
                };
            }
            return Error::Crashed {
                plugin,
                signal: signal_name(signal),
            };
        }
        Error::WorkerExited {
            plugin,
            status: status
                .code()
                .map_or_else(|| status.to_string(), |c| format!("exit code {c}")),
            detail: stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default()
                .trim()
                .to_owned(),
        }
    }
}
