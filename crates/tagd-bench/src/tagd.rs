//! Starting the real `tagd serve` as a child process and waiting until it listens.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
};

/// The line `tagd serve` prints on stdout once it accepts connections.
const READY_PREFIX: &str = "tagd listening on ";

/// A running `tagd serve`; the process is killed when this is dropped.
pub struct TagdProcess {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its stderr (and any further stdout) goes here.
    pub log_path: PathBuf,
    child: Child,
}

/// Finds the `tagd` binary: `explicit` if given, else next to the running bench executable.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe().context("locating the bench executable")?;
    let dir = exe
        .parent()
        .context("the bench executable has no parent directory")?;
    Ok(dir.join("tagd"))
}

impl TagdProcess {
    /// Runs `tagd serve` against `database_url` and waits (up to `timeout`) for its ready line.
    ///
    /// Only TAGD_LISTEN, TAGD_DATABASE_URL, TAGD_POOL_SIZE (if `pool_size`) and `extra_env`
    /// (`KEY=VALUE`) reach the server; other `TAGD_*` variables of this process are removed.
    pub async fn start(
        binary: &Path,
        database_url: &str,
        pool_size: Option<u32>,
        extra_env: &[String],
        log_path: PathBuf,
        timeout: Duration,
    ) -> Result<Self> {
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("TAGD_LISTEN", "127.0.0.1:0")
            .env("TAGD_DATABASE_URL", database_url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        // Settings the caller's environment may carry must not leak into the measured server.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("TAGD_")
                && key != "TAGD_LISTEN"
                && key != "TAGD_DATABASE_URL"
            {
                command.env_remove(&key);
            }
        }
        match pool_size {
            Some(size) => command.env("TAGD_POOL_SIZE", size.to_string()),
            None => command.env_remove("TAGD_POOL_SIZE"),
        };
        for pair in extra_env {
            if let Some((key, value)) = pair.split_once('=') {
                command.env(key, value);
            }
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} serve", binary.display()))?;
        let stdout = child.stdout.take().context("tagd stdout was not piped")?;
        let mut lines = BufReader::new(stdout).lines();

        let ready = tokio::time::timeout(timeout, async {
            while let Some(line) = lines.next_line().await.context("reading tagd stdout")? {
                if let Some(addr) = line.trim().strip_prefix(READY_PREFIX) {
                    return addr
                        .parse::<SocketAddr>()
                        .with_context(|| format!("tagd printed an unparsable address: {line:?}"));
                }
            }
            bail!("tagd closed stdout without printing {READY_PREFIX:?}")
        })
        .await;
        let addr = match ready {
            Ok(Ok(addr)) => addr,
            Ok(Err(err)) => {
                let status = child.try_wait().ok().flatten();
                return Err(err.context(format!(
                    "tagd did not start (exit status {status:?}); log:\n{}",
                    log_tail(&log_path)
                )));
            }
            Err(_) => bail!(
                "tagd did not print {READY_PREFIX:?} within {timeout:?}; log:\n{}",
                log_tail(&log_path)
            ),
        };

        // Keep draining stdout so the server never blocks on a full pipe.
        let drain_path = log_path.clone();
        tokio::spawn(async move {
            let Ok(mut file) = tokio::fs::OpenOptions::new()
                .append(true)
                .open(&drain_path)
                .await
            else {
                return;
            };
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = file.write_all(format!("stdout: {line}\n").as_bytes()).await;
            }
        });

        Ok(Self {
            addr,
            log_path,
            child,
        })
    }

    /// The server's process id (None once it has been reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the server and waits for it to exit.
    pub async fn stop(mut self) -> Result<()> {
        if self.child.try_wait().context("polling tagd")?.is_some() {
            bail!(
                "tagd exited during the benchmark; log:\n{}",
                log_tail(&self.log_path)
            );
        }
        self.child.kill().await.context("killing tagd")?;
        Ok(())
    }
}

/// The last lines of the server log, for error messages.
pub fn log_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        }
        Err(err) => format!("(cannot read {}: {err})", path.display()),
    }
}
