//! The `tagd` binary: `serve` runs the gRPC service, `migrate` prepares a database.

mod heap;
mod settings;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tagd_grpc::ServerOptions;
use tagd_jobs::{Jobs, JobsConfig, WorkerLimits};
use tagd_rules::{Rules, Settings as RuleSettings};
use tagd_segments::{Segments, Settings as SegmentSettings};
use tagd_store::{PoolOptions, Store};
use tokio::net::TcpListener;

use crate::settings::{LogFormat, Settings};

#[derive(Parser)]
#[command(
    name = "tagd",
    version,
    about = "Customer tag management service (客户标签管理)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC server (applies pending migrations first).
    Serve {
        /// A TOML configuration file; `TAGD_*` environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Internal: runs one importer plugin in this process and writes its
    /// frames to stdout (the server starts it; see plugins/README.md).
    #[command(hide = true)]
    ImportWorker {
        /// Only load the plugin and report its metadata.
        #[arg(long)]
        probe: bool,
        plugin: PathBuf,
        source: Option<PathBuf>,
        /// Plugin options as key=value.
        options: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::ImportWorker {
        probe,
        plugin,
        source,
        options,
    } = cli.command
    {
        return import_worker(probe, &plugin, source.as_deref(), &options);
    }
    // Migrations use block_in_place, which needs the multi-thread runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve { config } => runtime.block_on(serve(Settings::load(config.as_deref())?)),
        Command::Migrate { config } => {
            runtime.block_on(migrate(Settings::load(config.as_deref())?))
        }
        Command::ImportWorker { .. } => Ok(()),
    }
}

/// The worker process of one import: no runtime, no logging on stdout (the
/// frames own it); a failure is already reported in a frame, the exit code repeats it.
fn import_worker(
    probe: bool,
    plugin: &std::path::Path,
    source: Option<&std::path::Path>,
    options: &[String],
) -> anyhow::Result<()> {
    use tagd_plugin_api::host::{frame_output, run_probe, run_worker};
    let out = frame_output().context("cannot take stdout for frames")?;
    if probe {
        run_probe(plugin, out)?;
        return Ok(());
    }
    let source = source.context("import-worker needs a source file")?;
    let mut parsed = std::collections::BTreeMap::new();
    for pair in options {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("option {pair:?} is not key=value"))?;
        parsed.insert(key.to_owned(), value.to_owned());
    }
    run_worker(plugin, source, &parsed, out)?;
    Ok(())
}

fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .with_context(|| format!("log_level {:?} is not a valid filter", settings.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    init_logging(&settings)?;
    let keys = settings.key_ring()?;
    if keys.is_open() {
        if !settings.listen.ip().is_loopback() {
            bail!(
                "refusing to listen on {} without API keys: configure [[auth.keys]] or listen on a loopback address",
                settings.listen
            );
        }
        tracing::warn!(
            listen = %settings.listen,
            "NO API KEYS CONFIGURED: every caller is admin. This is only allowed on loopback; configure [[auth.keys]] before exposing tagd"
        );
    }
    let pool = PoolOptions {
        size: settings.pool_size,
        sqlite_cache_mib: settings.sqlite_cache_mib,
    };
    let store = Store::open(&settings.database_url, pool)
        .await
        .with_context(|| {
            format!(
                "cannot open the database at {}",
                redact(&settings.database_url)
            )
        })?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let address = listener
        .local_addr()
        .context("cannot read the bound address")?;
    tracing::info!(%address, backend = store.backend(), "tagd serving");
    announce(&format!("tagd listening on {address}"))?;
    let store = Arc::new(store);
    heap::spawn_trimmer();
    let jobs = Jobs::new(store.clone(), jobs_config(&settings)?)
        .context("cannot set up the job runner")?;
    let interrupted = jobs.recover().await.context("cannot recover jobs")?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "jobs left running by the last server are marked failed"
        );
    }
    let segments = Segments::start(
        store.clone(),
        SegmentSettings {
            metric_windows_days: settings.metric_windows_days()?,
            poll_interval: Duration::from_millis(settings.segment_poll_millis),
            reconcile_interval: Duration::from_secs(settings.segment_reconcile_secs),
            rebuild_interval: Duration::from_secs(settings.segment_rebuild_secs),
        },
    )
    .await
    .context("cannot build the segment index")?;
    let rules = Rules::new(
        store.clone(),
        segments.clone(),
        RuleSettings {
            tick: Duration::from_secs(settings.rule_tick_secs),
            stale_after: Duration::from_secs(settings.rule_stale_secs),
            metric_windows_days: settings.metric_windows_days()?,
        },
    );
    let options = ServerOptions {
        keys,
        max_request_bytes: settings.max_request_bytes,
        contact_rules: settings.contact_rules()?,
        expiry_sweep_interval: Duration::from_secs(settings.expiry_sweep_secs),
        jobs: Arc::new(jobs),
        metric_windows_days: settings.metric_windows_days()?,
        segments,
        rules,
    };
    tagd_grpc::serve(store, listener, options, shutdown_signal()).await?;
    tracing::info!("tagd stopped");
    Ok(())
}

fn jobs_config(settings: &Settings) -> anyhow::Result<JobsConfig> {
    Ok(JobsConfig {
        plugins_dir: settings.plugins_dir()?,
        import_dirs: settings.import_dirs.iter().map(PathBuf::from).collect(),
        upload_dir: settings.upload_dir(),
        max_upload_bytes: settings.max_upload_mb << 20,
        worker_program: std::env::current_exe().context("cannot locate the tagd executable")?,
        worker_args: vec!["import-worker".to_owned()],
        limits: WorkerLimits {
            stall_timeout: Duration::from_secs(settings.import_stall_secs),
            memory_limit_bytes: Some(settings.import_memory_mb << 20),
            ..WorkerLimits::default()
        },
        phone_region: settings.phone_region.clone(),
    })
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    init_logging(&settings)?;
    let applied = Store::migrate(&settings.database_url)
        .await
        .with_context(|| format!("cannot migrate {}", redact(&settings.database_url)))?;
    if applied.is_empty() {
        announce("database is up to date")?;
    } else {
        announce(&format!("applied migrations: {}", applied.join(", ")))?;
    }
    Ok(())
}

/// One line on stdout for whoever started us (scripts and tests wait for it).
fn announce(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Resolves on Ctrl-C or SIGTERM; the server then stops accepting calls and
/// lets the ones in flight finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested; finishing calls in flight");
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_passwords() {
        assert_eq!(
            redact("mysql://root:secret@db:3306/tagd"),
            "mysql://root:***@db:3306/tagd"
        );
        assert_eq!(redact("mysql://root@db/tagd"), "mysql://root@db/tagd");
        assert_eq!(redact("sqlite://tagd.db"), "sqlite://tagd.db");
    }
}
