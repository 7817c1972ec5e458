//! `tagctl`: the admin CLI of tagd, a gRPC client of the server.
//!
//! Exit codes (also in `tagctl --help`): 0 ok; 1 usage or input error; 2 the server
//! refused the request (`INVALID_ARGUMENT`, `NOT_FOUND`, `ALREADY_EXISTS`,
//! `FAILED_PRECONDITION`) or a followed job failed or was cancelled; 3 the key was
//! refused (`UNAUTHENTICATED`, `PERMISSION_DENIED`); 4 server unreachable,
//! `UNAVAILABLE` or anything else; 130 Ctrl-C while watching a job. See [`exit`].

mod categories;
mod cleanse;
mod cli;
mod connect;
mod customers;
mod dedupe;
mod exit;
mod imports;
mod input;
mod interactions;
mod jobs;
mod metrics;
mod output;
mod paging;
mod purchases;
mod rules;
mod segments;
mod settings;
mod tagging;
mod tags;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::connect::Connection;
use crate::exit::Failure;
use crate::output::Output;
use crate::settings::Settings;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap exits 2 on bad usage; 2 means "the server refused" here.
            let code = if error.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Unreachable(format!("cannot start the runtime: {e}")))
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    // `vars()` panics on a non-UTF-8 variable; such a variable is not one of ours anyway.
    let env = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    let settings = Settings::load(&cli.global, &env)?;
    let out = Output::new(cli.global.json);
    let connection = Connection::open(&settings).await?;
    match cli.command {
        Command::Categories(command) => categories::run(command, &connection, out).await,
        Command::Tags(command) => tags::run(command, &connection, out).await,
        Command::Customers(command) => customers::run(*command, &connection, out).await,
        Command::Tagging(command) => tagging::run(command, &connection, out).await,
        Command::Purchases(command) => purchases::run(command, &connection, out).await,
        Command::Interactions(command) => interactions::run(command, &connection, out).await,
        Command::Importers { verbose } => imports::importers(verbose, &connection, out).await,
        Command::Import(args) => imports::import(*args, &connection, out).await,
        Command::ImportReport { job_id, paging } => {
            imports::report(job_id, paging.limit, &connection, out).await
        }
        Command::ImportRevert { job_id } => imports::revert(job_id, &connection, out).await,
        Command::Jobs(command) => jobs::run(command, &connection, out).await,
        Command::Dedupe(command) => dedupe::run(command, &connection, out).await,
        Command::Cleanse(command) => cleanse::run(command, &connection, out).await,
        Command::Segments(command) => segments::run(command, &connection, out).await,
        Command::Rules(command) => rules::run(command, &connection, out).await,
    }
}
