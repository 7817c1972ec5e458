//! The crate's one error type, for plugins (options) and the host (loading, workers).

use std::path::PathBuf;

/// Everything that can go wrong between the host and a plugin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A plugin option has a value the plugin cannot use.
    #[error("option `{name}`: {reason}")]
    BadOption { name: String, reason: String },

    /// The file could not be loaded as a shared library at all.
    #[error("{}: not a loadable plugin: {reason}", path.display())]
    NotAPlugin { path: PathBuf, reason: String },

    /// A shared library without the entry symbol.
    #[error("{}: not a tagd plugin: it exports no `tagd_plugin_entry` symbol", path.display())]
    MissingSymbol { path: PathBuf },

    /// The plugin was built for another ABI.
    #[error("plugin {} speaks plugin ABI version {plugin}, this host speaks version {host}", path.display())]
    AbiMismatch {
        path: PathBuf,
        plugin: u32,
        host: u32,
    },

    /// The table or metadata is malformed.
    #[error("plugin {}: bad plugin table: {reason}", path.display())]
    BadTable { path: PathBuf, reason: String },

    /// The plugin reported an error (a caught panic included).
    #[error("plugin {plugin}: {message}")]
    Plugin { plugin: String, message: String },

    /// The worker process died from a signal.
    #[error("plugin {plugin} crashed ({signal})")]
    Crashed { plugin: String, signal: String },

    /// No frame arrived within the stall timeout; the worker was killed.
    #[error("plugin {plugin} made no progress for {secs} s")]
    Stalled { plugin: String, secs: u64 },

    /// The worker ran out of its address-space limit.
    #[error("plugin {plugin} exceeded the memory limit of {limit_mib} MiB")]
    MemoryLimit { plugin: String, limit_mib: u64 },

    /// The worker exited with an error code without a failure frame.
    #[error(
        "plugin {plugin}: worker exited with {status}{}",
        detail_suffix(detail)
    )]
    WorkerExited {
        plugin: String,
        status: String,
        detail: String,
    },

    /// The frame stream broke the protocol.
    #[error("plugin {plugin}: worker protocol error: {reason}")]
    Protocol { plugin: String, reason: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

#[cfg(feature = "host")]
impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
