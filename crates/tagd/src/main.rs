//! The `tagd` binary: `serve` runs the gRPC service, `migrate` prepares a database.

mod settings;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tagd_grpc::ServerOptions;
use tagd_store::Store;
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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
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
    }
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
    let store = Store::open(&settings.database_url, settings.pool_size)
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
    let options = ServerOptions {
        keys,
        max_request_bytes: settings.max_request_bytes,
        contact_rules: settings.contact_rules()?,
        expiry_sweep_interval: Duration::from_secs(settings.expiry_sweep_secs),
    };
    tagd_grpc::serve(Arc::new(store), listener, options, shutdown_signal()).await?;
    tracing::info!("tagd stopped");
    Ok(())
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
