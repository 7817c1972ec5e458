//! `bench`: measures tagd's GetCustomer, AssignTags, BatchAssignTags and imports against in-run
//! baselines.
//!
//! For each backend it starts `tagd serve` on a fresh database, creates data over gRPC, and
//! measures tagd next to a baseline taken in the same run: a bare tonic echo server for reads,
//! plain SQL through the same driver stack for writes. See `docs/BENCHMARKS.md`.

mod dedupe;
mod echo;
mod import;
mod load;
mod raw;
mod raw_import;
mod report;
mod rules;
mod segments;
mod segments_scale;
mod tagd;
mod workload;

use std::{
    io::Write,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use tagd_proto::v1::{
    AssignTagsRequest, Customer, GetCustomerRequest,
    customer_service_client::CustomerServiceClient, tagging_service_client::TaggingServiceClient,
};
use tonic::transport::{Channel, Endpoint};

use crate::{
    echo::EchoServer,
    import::FileKind,
    load::Limits,
    raw::RawDb,
    report::{Figure, ImportFigures, Machine, Report, thousands},
    tagd::TagdProcess,
    workload::Dataset,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Mysql,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Mysql => "mysql",
        }
    }
}

/// One of the measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Phase {
    /// GetCustomer against the echo server.
    Get,
    /// AssignTags against single-row upserts.
    Assign,
    /// BatchAssignTags against multi-row INSERTs.
    Batch,
    /// Imports of generated CSV and XLSX files against multi-row INSERTs of the same customers.
    Import,
    /// StartDedupe over generated customers with known duplicates: quality (F1) and time.
    Dedupe,
    /// CountSegment of a five-term condition (the in-memory index) against the same count in SQL.
    Segments,
    /// RunRules over the segments phase's customers (needs `segments`): customers evaluated per
    /// second, beside the same condition evaluated by SQL.
    Rules,
    /// The same at scale: `--segment-customers` customers × 15 tags written by SQL before tagd
    /// starts (so its start-up builds the index), three conditions, every member of a segment
    /// of everyone, index memory against the tables' size.
    SegmentsSql,
}

/// Measures tagd against same-run baselines on SQLite and MariaDB.
#[derive(Clone, Debug, Parser)]
#[command(name = "bench", version)]
struct Args {
    /// Backends to measure, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sqlite,mysql"
    )]
    backends: Vec<Backend>,
    /// Measurements to run (always in the order get, assign, batch, import). The default leaves
    /// out `import`, which takes several minutes per backend at its default sizes.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "get,assign,batch"
    )]
    phases: Vec<Phase>,
    /// MariaDB/MySQL server (no database); the bench creates and drops `tagd_bench_<random>`.
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306")]
    mysql_url: String,
    /// The tagd binary (default: `tagd` next to this executable).
    #[arg(long)]
    tagd: Option<PathBuf>,
    /// TAGD_POOL_SIZE for the server (default: the server's own default).
    #[arg(long)]
    pool_size: Option<u32>,
    /// Extra `TAGD_KEY=value` settings for the server, for diagnosis (e.g. TAGD_LOG_LEVEL=warn);
    /// repeatable. The figures of record use none.
    #[arg(long, value_name = "KEY=VALUE")]
    tagd_env: Vec<String>,
    /// Customers created before measuring.
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    /// Upper bound on calls in one measurement.
    #[arg(long, default_value_t = 200_000)]
    requests: u64,
    /// Upper bound on the duration of one measurement, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Unmeasured warm-up before each GetCustomer measurement, in seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup_seconds: f64,
    /// GetCustomer calls in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the GetCustomer generator spreads its calls over (same for echo and tagd).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// TCP_NODELAY on the echo server's connections; `false` shows what Nagle's algorithm costs.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    echo_nodelay: bool,
    /// Worker threads of the in-process echo server's runtime.
    #[arg(long, default_value_t = 2)]
    echo_threads: usize,
    /// Concurrent AssignTags callers; one measurement per value.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    assign_callers: Vec<usize>,
    /// BatchAssignTags calls (each on customers not used by another batch).
    #[arg(long, default_value_t = 5)]
    batches: usize,
    /// Customers per batch.
    #[arg(long, default_value_t = 2000)]
    batch_customers: usize,
    /// FLAG tags assigned to each customer of a batch (assignments per batch = customers × tags).
    #[arg(long, default_value_t = 5)]
    batch_tags: usize,
    /// Rows per multi-row INSERT of the batch baseline (default: as many as the placeholder limit
    /// allows: 7,281 on MySQL, 3,640 on SQLite).
    #[arg(long)]
    insert_rows: Option<usize>,
    /// Rows of the generated CSV file of the import measurement.
    #[arg(long, default_value_t = 1_000_000)]
    import_rows: u64,
    /// Rows of the generated XLSX file of the import measurement (0: no XLSX import).
    #[arg(long, default_value_t = 100_000)]
    import_xlsx_rows: u64,
    /// Imports link rows to the stored customers they duplicate at this score
    /// (`link_duplicates_at`; 0: off), to measure what linking costs.
    #[arg(long, default_value_t = 0.0)]
    import_link_duplicates_at: f64,
    /// Generated customers (tagd-datagen, with known duplicates) of the dedupe measurement.
    #[arg(long, default_value_t = 10_000)]
    dedupe_records: usize,
    /// Customers (with 15 flag tags each) of the segments measurement.
    #[arg(long, default_value_t = 100_000)]
    segment_customers: usize,
    /// CountSegment calls timed by the segments measurement.
    #[arg(long, default_value_t = 200)]
    segment_calls: usize,
    /// SQL counts timed per condition by `segments-sql` (each scans the tables).
    #[arg(long, default_value_t = 5)]
    segment_sql_calls: usize,
    /// Seed of the dedupe measurement's generator (the same seed gives the same customers).
    #[arg(long, default_value_t = 42)]
    dedupe_seed: u64,
    /// Folder holding `libtagd_plugin_spreadsheet.so`, passed to tagd as TAGD_PLUGINS_DIR
    /// (default: the folder of the tagd binary, where a workspace build puts the plugins).
    #[arg(long)]
    plugins_dir: Option<PathBuf>,
    /// `PRAGMA synchronous` of the raw SQLite baseline.
    #[arg(long, default_value = "FULL")]
    sqlite_synchronous: String,
    /// Seconds to wait for `tagd listening on`.
    #[arg(long, default_value_t = 120)]
    startup_timeout: u64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Skip tagd: measure only the baselines (echo, raw SQL) on synthetic ids.
    #[arg(long)]
    baselines_only: bool,
}

impl Args {
    fn limits(&self, concurrency: usize) -> Limits {
        Limits {
            concurrency,
            max_calls: self.requests,
            duration: Duration::from_secs_f64(self.seconds),
        }
    }

    fn warmup(&self, concurrency: usize) -> Limits {
        Limits {
            concurrency,
            max_calls: self.requests,
            duration: Duration::from_secs_f64(self.warmup_seconds),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.customers == 0 || self.concurrency == 0 || self.connections == 0 {
            bail!("--customers, --concurrency and --connections must be at least 1");
        }
        if self.assign_callers.contains(&0) {
            bail!("--assign-callers must be at least 1");
        }
        if self.batches * self.batch_customers > self.customers {
            bail!(
                "--batches × --batch-customers ({}) exceeds --customers ({}): batches must cover \
                 distinct customers so every assignment is new",
                self.batches * self.batch_customers,
                self.customers
            );
        }
        if self.batch_customers * self.batch_tags > 10_000 {
            bail!("a batch may carry at most 10,000 assignments (BatchAssignTags limit)");
        }
        for pair in &self.tagd_env {
            match pair.split_once('=') {
                Some((key, _)) if key.starts_with("TAGD_") => {}
                _ => bail!("--tagd-env expects TAGD_KEY=VALUE, got {pair:?}"),
            }
        }
        if self.import_rows == 0
            || self.import_rows > import::MAX_ROWS
            || self.import_xlsx_rows > import::MAX_ROWS
        {
            bail!(
                "--import-rows must be 1..={} and --import-xlsx-rows at most that",
                import::MAX_ROWS
            );
        }
        if self.import_xlsx_rows >= 1 << 20 {
            bail!("--import-xlsx-rows must be under 1,048,576 (the rows of one XLSX sheet)");
        }
        if !(self.seconds > 0.0 && self.warmup_seconds >= 0.0) {
            bail!("--seconds must be positive and --warmup-seconds not negative");
        }
        Ok(())
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    args.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let report = runtime.block_on(Box::pin(run(args.clone())))?;

    let mut stdout = std::io::stdout().lock();
    report.write_markdown(&mut stdout)?;
    stdout.flush().context("writing the report")?;
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if !report.failures.is_empty() {
        bail!("{} backend(s) could not be measured", report.failures.len());
    }
    Ok(())
}

async fn run(args: Args) -> Result<Report> {
    let mut report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: Machine::probe(),
        ..Report::default()
    };
    if args.backends.contains(&Backend::Mysql) {
        match raw::mysql_scalar(&args.mysql_url, "VERSION()").await {
            Ok(version) => report.machine.mariadb = Some(version),
            Err(err) => eprintln!("bench: cannot read the MariaDB version: {err:#}"),
        }
        for var in [
            "innodb_flush_log_at_trx_commit",
            "sync_binlog",
            "log_bin",
            "innodb_buffer_pool_size",
        ] {
            if let Ok(value) = raw::mysql_scalar(&args.mysql_url, &format!("@@{var}")).await {
                report
                    .machine
                    .mariadb_settings
                    .push((var.to_owned(), value));
            }
        }
    }
    let tagd_binary = if args.baselines_only {
        None
    } else {
        let path = tagd::locate(args.tagd.as_deref())?;
        if !path.is_file() {
            bail!(
                "tagd binary not found at {} (build it with `cargo build --release -p tagd` or \
                 pass --tagd)",
                path.display()
            );
        }
        if args.phases.contains(&Phase::Import) {
            let plugins = plugins_dir(&args, &path)?;
            if !plugins.join(import::PLUGIN_LIBRARY).is_file() {
                bail!(
                    "{} not found in {} (build it with `cargo build --release -p \
                     tagd-plugin-spreadsheet` or pass --plugins-dir)",
                    import::PLUGIN_LIBRARY,
                    plugins.display()
                );
            }
        }
        Some(path)
    };

    for &backend in &args.backends {
        eprintln!("bench: === {} ===", backend.name());
        let outcome = Box::pin(run_backend(
            &args,
            backend,
            tagd_binary.as_deref(),
            &mut report,
        ))
        .await;
        if let Err(err) = outcome {
            eprintln!("bench: {} failed: {err:#}", backend.name());
            let interrupted = err.to_string() == "interrupted";
            report
                .failures
                .push((backend.name().to_owned(), format!("{err:#}")));
            if interrupted {
                break;
            }
        }
    }
    Ok(report)
}

/// The folder tagd loads importer plugins from: `--plugins-dir`, else the tagd binary's folder.
fn plugins_dir(args: &Args, tagd_binary: &std::path::Path) -> Result<PathBuf> {
    match &args.plugins_dir {
        Some(dir) => Ok(dir.clone()),
        None => Ok(tagd_binary
            .parent()
            .context("the tagd binary has no folder")?
            .to_path_buf()),
    }
}

/// Prepares the backend's database, measures, and always removes the database afterwards.
async fn run_backend(
    args: &Args,
    backend: Backend,
    tagd_binary: Option<&std::path::Path>,
    report: &mut Report,
) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("tagd-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    match backend {
        Backend::Sqlite => {
            let path = dir.path().join("bench.db");
            let url = format!(
                "sqlite://{}",
                path.to_str().context("temporary path is not UTF-8")?
            );
            let target = Target::Sqlite(raw::SqliteOptions {
                path,
                synchronous: args.sqlite_synchronous.clone(),
                busy_timeout_ms: 5000,
            });
            interruptible(measure_backend(
                args,
                backend,
                tagd_binary,
                &url,
                &target,
                dir.path(),
                report,
            ))
            .await
        }
        Backend::Mysql => {
            let name = format!("tagd_bench_{:08x}", rand::random::<u32>());
            raw::mysql_create_database(&args.mysql_url, &name).await?;
            let url = raw::mysql_database_url(&args.mysql_url, &name);
            eprintln!("bench: database {name}");
            let target = Target::Mysql(url.clone());
            let outcome = interruptible(measure_backend(
                args,
                backend,
                tagd_binary,
                &url,
                &target,
                dir.path(),
                report,
            ))
            .await;
            let dropped = raw::mysql_drop_database(&args.mysql_url, &name).await;
            outcome.and(dropped)
        }
    }
}

/// Runs `work` unless Ctrl-C comes first; then `work` is dropped (killing tagd) and the caller
/// still cleans up.
async fn interruptible(work: impl Future<Output = Result<()>>) -> Result<()> {
    tokio::select! {
        outcome = Box::pin(work) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    }
}

/// Where the raw baselines write.
enum Target {
    Sqlite(raw::SqliteOptions),
    Mysql(String),
}

impl Target {
    async fn open(&self, callers: usize) -> Result<RawDb> {
        match self {
            Self::Sqlite(options) => RawDb::sqlite(options, callers).await,
            Self::Mysql(url) => RawDb::mysql(url, callers).await,
        }
    }
}

async fn connect(addr: std::net::SocketAddr) -> Result<Channel> {
    Endpoint::from_shared(format!("http://{addr}"))
        .context("endpoint")?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))
}

async fn connect_many(addr: std::net::SocketAddr, n: usize) -> Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n {
        channels.push(connect(addr).await?);
    }
    Ok(channels)
}

/// A synthetic data set for `--baselines-only` runs (ids look like tagd's UUIDs).
fn synthetic_dataset(args: &Args) -> Dataset {
    let id = |kind: u32, i: usize| format!("0194b3a2-{kind:04x}-7000-8000-{i:012x}");
    Dataset {
        category_id: id(1, 0),
        number_tag: id(2, 0),
        flag_tags: (0..args.batch_tags).map(|k| id(3, k)).collect(),
        customers: (0..args.customers).map(|i| id(4, i)).collect(),
    }
}

async fn measure_backend(
    args: &Args,
    backend: Backend,
    tagd_binary: Option<&std::path::Path>,
    database_url: &str,
    target: &Target,
    work_dir: &std::path::Path,
    report: &mut Report,
) -> Result<()> {
    let name = backend.name();
    // The import measurement's files go here; tagd may import from this folder only.
    let import_dir = work_dir.join("imports");
    let scale = match tagd_binary {
        Some(binary) if args.phases.contains(&Phase::SegmentsSql) => Some(
            segments_scale::preload(binary, database_url, args.segment_customers, report, name)
                .await?,
        ),
        _ => None,
    };
    let mut startup = Duration::ZERO;
    let server = match tagd_binary {
        Some(binary) => {
            let mut env = args.tagd_env.clone();
            if args.phases.contains(&Phase::Import) {
                std::fs::create_dir_all(&import_dir)
                    .with_context(|| format!("creating {}", import_dir.display()))?;
                let import_dir = import_dir
                    .canonicalize()
                    .with_context(|| format!("resolving {}", import_dir.display()))?;
                let plugins = plugins_dir(args, binary)?;
                env.push(format!("TAGD_IMPORT_DIRS={}", import_dir.display()));
                env.push(format!("TAGD_PLUGINS_DIR={}", plugins.display()));
            }
            let t0 = Instant::now();
            let server = TagdProcess::start(
                binary,
                database_url,
                args.pool_size,
                &env,
                work_dir.join(format!("tagd-{name}.log")),
                Duration::from_secs(args.startup_timeout),
            )
            .await?;
            startup = t0.elapsed();
            report.note(format!(
                "{name}: tagd listening on {} after {:.2} s (migrations included; it binds \
                 before building the segment index, whose time its log reports)",
                server.addr,
                startup.as_secs_f64()
            ));
            Some(server)
        }
        None => None,
    };

    // Data set and the customer the echo server will return.
    let (dataset, canned, tagd_channels) = match &server {
        Some(server) => {
            let channels = connect_many(server.addr, args.connections).await?;
            let t0 = Instant::now();
            let dataset = workload::setup(channels[0].clone(), args.customers, args.batch_tags)
                .await
                .context("setting up data over gRPC")?;
            report.note(format!(
                "{name}: set-up created {} customers with UpsertCustomers in {:.2} s ({} customers/s)",
                dataset.customers.len(),
                t0.elapsed().as_secs_f64(),
                thousands(dataset.customers.len() as f64 / t0.elapsed().as_secs_f64())
            ));
            let stored = CustomerServiceClient::new(channels[0].clone())
                .get_customer(GetCustomerRequest {
                    id: dataset.customers[0].clone(),
                })
                .await
                .context("GetCustomer of the first customer")?
                .into_inner();
            (dataset, stored, Some(channels))
        }
        None => (
            synthetic_dataset(args),
            workload::synthetic_stored_customer(),
            None,
        ),
    };
    report.note(format!(
        "{name}: GetCustomer response is {} bytes (protobuf); the echo server returns the same \
         customer",
        prost::Message::encoded_len(&canned)
    ));
    let dataset = Arc::new(dataset);

    if args.phases.contains(&Phase::Get) {
        measure_get_customer(
            args,
            name,
            &dataset,
            canned,
            tagd_channels.as_deref(),
            report,
        )
        .await?;
    }
    if args.phases.contains(&Phase::Assign) {
        // Sequence numbers run on across the caller counts, so every call sets a new value.
        let seqs = Sequences::default();
        for &callers in &args.assign_callers {
            let on = Subjects {
                dataset: &dataset,
                tagd_channels: tagd_channels.as_deref(),
                target,
            };
            measure_assign(args, name, &on, callers, &seqs, report).await?;
        }
    }
    if args.phases.contains(&Phase::Batch) {
        measure_batches(
            args,
            backend,
            &dataset,
            tagd_channels.as_deref(),
            target,
            report,
        )
        .await?;
    }

    if args.phases.contains(&Phase::Import) {
        std::fs::create_dir_all(&import_dir)
            .with_context(|| format!("creating {}", import_dir.display()))?;
        let import_dir = import_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", import_dir.display()))?;
        let on = ImportOn {
            channel: tagd_channels.as_ref().map(|channels| channels[0].clone()),
            server_pid: server.as_ref().and_then(TagdProcess::pid),
            target,
            dir: &import_dir,
            link_duplicates_at: args.import_link_duplicates_at,
        };
        let mut kinds = vec![(FileKind::Csv, args.import_rows)];
        if args.import_xlsx_rows > 0 {
            kinds.push((FileKind::Xlsx, args.import_xlsx_rows));
        }
        for (kind, rows) in kinds {
            measure_import(backend, &on, kind, rows, report).await?;
        }
    }

    if args.phases.contains(&Phase::Dedupe)
        && let Some(channels) = &tagd_channels
    {
        let on = dedupe::DedupeOn {
            channel: channels[0].clone(),
            server_pid: server.as_ref().and_then(TagdProcess::pid),
            log_path: server
                .as_ref()
                .map(|server| server.log_path.clone())
                .unwrap_or_default(),
        };
        dedupe::measure_dedupe(name, &on, args.dedupe_records, args.dedupe_seed, report).await?;
    }

    if args.phases.contains(&Phase::Segments)
        && let Some(channels) = &tagd_channels
    {
        let on = segments::SegmentsOn {
            channel: channels[0].clone(),
            database_url,
        };
        segments::measure_segments(
            name,
            &on,
            args.segment_customers,
            args.segment_calls,
            report,
        )
        .await?;
        if args.phases.contains(&Phase::Rules) {
            rules::measure_rules(name, &on, args.segment_customers, report).await?;
        }
    }

    if let (Some(loaded), Some(channels), Some(server)) = (&scale, &tagd_channels, &server) {
        let on = segments_scale::ScaleOn {
            channel: channels[0].clone(),
            database_url,
            server_pid: server.pid(),
            log_path: &server.log_path,
            startup,
        };
        segments_scale::measure(
            name,
            &on,
            loaded,
            args.segment_calls,
            args.segment_sql_calls,
            report,
        )
        .await?;
    }

    if let Some(server) = server {
        drop(tagd_channels);
        let log_path = server.log_path.clone();
        server.stop().await?;
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines = log.lines().count();
        let warnings = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .count();
        if lines > 0 {
            report.note(format!(
                "{name}: tagd wrote {lines} log line(s) to stderr ({warnings} WARN/ERROR); last: {}",
                strip_ansi(log.lines().last().unwrap_or_default())
            ));
        }
        if let Some(first) = log
            .lines()
            .find(|l| l.contains("WARN") || l.contains("ERROR"))
        {
            report.note(format!(
                "{name}: tagd's first WARN/ERROR line: {}",
                strip_ansi(first)
            ));
        }
    }
    Ok(())
}

/// `line` without ANSI colour escapes.
pub(crate) fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            // Skip to the end of the escape sequence (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// GetCustomer against the echo server, then against tagd, with the same generator settings.
async fn measure_get_customer(
    args: &Args,
    name: &str,
    dataset: &Arc<Dataset>,
    canned: Customer,
    tagd_channels: Option<&[Channel]>,
    report: &mut Report,
) -> Result<()> {
    let echo = EchoServer::start(canned, args.echo_threads, args.echo_nodelay)?;
    let echo_channels = connect_many(echo.addr, args.connections).await?;
    eprintln!("bench: {name}: GetCustomer on echo ({})", echo.addr);
    let echo_m = get_customer_load(args, dataset, &echo_channels).await?;
    drop(echo_channels);
    tokio::task::spawn_blocking(move || echo.stop())
        .await
        .context("stopping echo")??;
    let echo_fig = Figure::new("echo", &echo_m, 1);

    let tagd_fig = match tagd_channels {
        Some(channels) => {
            eprintln!("bench: {name}: GetCustomer on tagd");
            Figure::new(
                "tagd",
                &get_customer_load(args, dataset, channels).await?,
                1,
            )
        }
        None => {
            report_baseline_only(report, name, "GetCustomer", &echo_fig);
            return Ok(());
        }
    };

    let row = report::Row::new(
        name,
        "GetCustomer",
        args.concurrency,
        "req/s",
        tagd_fig.clone(),
        echo_fig,
    );
    report.check(
        name,
        "GetCustomer throughput",
        "≥ 20,000 req/s",
        format!("{} req/s", thousands(tagd_fig.rate)),
        tagd_fig.rate >= 20_000.0,
    );
    report.check(
        name,
        "GetCustomer vs echo",
        "≥ 0.5× echo",
        format!("{:.3}×", row.ratio),
        row.ratio >= 0.5,
    );
    report.check(
        name,
        "GetCustomer p99",
        "≤ 5 ms",
        format!("{:.2} ms", tagd_fig.p99_ms),
        tagd_fig.p99_ms <= 5.0,
    );
    check_errors(report, name, "GetCustomer", &tagd_fig);
    report.rows.push(row);
    Ok(())
}

fn report_baseline_only(report: &mut Report, name: &str, what: &str, fig: &Figure) {
    report.note(format!(
        "{name}: {what} baseline {}: {} /s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
        fig.subject,
        thousands(fig.rate),
        fig.p50_ms,
        fig.p99_ms,
        fig.errors
    ));
}

fn check_errors(report: &mut Report, name: &str, what: &str, fig: &Figure) {
    if fig.errors > 0 {
        report.check(
            name,
            &format!("{what} errors"),
            "0",
            fig.errors.to_string(),
            false,
        );
    }
}

/// Warm-up then measurement of GetCustomer over `channels` on customers round-robin.
async fn get_customer_load(
    args: &Args,
    dataset: &Arc<Dataset>,
    channels: &[Channel],
) -> Result<load::Measurement> {
    let clients: Arc<Vec<CustomerServiceClient<Channel>>> = Arc::new(
        channels
            .iter()
            .cloned()
            .map(CustomerServiceClient::new)
            .collect(),
    );
    let make = |clients: Arc<Vec<CustomerServiceClient<Channel>>>, dataset: Arc<Dataset>| {
        move |caller: usize, i: u64| {
            let mut client = clients[caller % clients.len()].clone();
            let id = dataset.customers[(i % dataset.customers.len() as u64) as usize].clone();
            async move {
                let customer = client
                    .get_customer(GetCustomerRequest { id })
                    .await?
                    .into_inner();
                anyhow::ensure!(!customer.name.is_empty(), "GetCustomer returned no name");
                Ok(())
            }
        }
    };
    if args.warmup_seconds > 0.0 {
        load::run(
            args.warmup(args.concurrency),
            make(Arc::clone(&clients), Arc::clone(dataset)),
        )
        .await?;
    }
    load::run(
        args.limits(args.concurrency),
        make(clients, Arc::clone(dataset)),
    )
    .await
}

/// What a write measurement runs against.
#[derive(Clone, Copy)]
struct Subjects<'a> {
    dataset: &'a Arc<Dataset>,
    /// None with `--baselines-only`.
    tagd_channels: Option<&'a [Channel]>,
    target: &'a Target,
}

/// Next NUMBER value (and customer, round-robin) for AssignTags on tagd and on the raw table.
#[derive(Default)]
struct Sequences {
    tagd: Arc<AtomicU64>,
    raw: Arc<AtomicU64>,
}

/// The raw row matching one AssignTags call of the NUMBER tag.
fn number_row(dataset: &Dataset, seq: u64) -> raw::Row {
    raw::Row {
        customer_id: dataset.customers[(seq % dataset.customers.len() as u64) as usize].clone(),
        tag_id: dataset.number_tag.clone(),
        category_id: dataset.category_id.clone(),
        value: Some(seq.to_string()),
        source: "MANUAL".to_owned(),
        source_ref: String::new(),
        assigned_by: "anonymous".to_owned(),
        assigned_at: raw::now(),
        expires_at: None,
    }
}

/// AssignTags (one customer, one NUMBER tag with a new value) against the raw upsert.
async fn measure_assign(
    args: &Args,
    name: &str,
    on: &Subjects<'_>,
    callers: usize,
    seqs: &Sequences,
    report: &mut Report,
) -> Result<()> {
    let Subjects {
        dataset,
        tagd_channels,
        target,
    } = *on;
    let limits = args.limits(callers);

    eprintln!("bench: {name}: raw upsert, {callers} caller(s)");
    let db = Arc::new(target.open(callers).await?);
    let seq = Arc::clone(&seqs.raw);
    let raw_m = {
        let db = Arc::clone(&db);
        let dataset = Arc::clone(dataset);
        load::run(limits, move |caller, _| {
            let db = Arc::clone(&db);
            let row = number_row(&dataset, seq.fetch_add(1, Ordering::Relaxed));
            async move { db.upsert(caller, row).await }
        })
        .await?
    };
    drop(db);
    let raw_fig = Figure::new("raw upsert", &raw_m, 1);

    let Some(channels) = tagd_channels else {
        report_baseline_only(
            report,
            name,
            &format!("AssignTags ({callers} callers)"),
            &raw_fig,
        );
        return Ok(());
    };
    eprintln!("bench: {name}: AssignTags on tagd, {callers} caller(s)");
    let client = TaggingServiceClient::new(channels[0].clone());
    let seq = Arc::clone(&seqs.tagd);
    let dataset_c = Arc::clone(dataset);
    let tagd_m = load::run(limits, move |_, _| {
        let mut client = client.clone();
        let n = seq.fetch_add(1, Ordering::Relaxed);
        let request = AssignTagsRequest {
            customer_id: dataset_c.customers[(n % dataset_c.customers.len() as u64) as usize]
                .clone(),
            assignments: vec![workload::number_assignment(&dataset_c, n)],
        };
        async move {
            let response = client.assign_tags(request).await?.into_inner();
            anyhow::ensure!(
                response.assigned + response.changed == 1,
                "AssignTags wrote nothing: {response:?}"
            );
            Ok(())
        }
    })
    .await?;
    let tagd_fig = Figure::new("tagd", &tagd_m, 1);

    let row = report::Row::new(
        name,
        "AssignTags",
        callers,
        "calls/s",
        tagd_fig.clone(),
        raw_fig,
    );
    report.check(
        name,
        &format!("AssignTags vs raw upsert, {callers} caller(s)"),
        "≥ 0.9× raw",
        format!("{:.3}×", row.ratio),
        row.ratio >= 0.9,
    );
    check_errors(
        report,
        name,
        &format!("AssignTags ({callers} callers)"),
        &tagd_fig,
    );
    report.rows.push(row);
    Ok(())
}

/// BatchAssignTags (sequential batches of fresh assignments) against multi-row INSERTs.
async fn measure_batches(
    args: &Args,
    backend: Backend,
    dataset: &Arc<Dataset>,
    tagd_channels: Option<&[Channel]>,
    target: &Target,
    report: &mut Report,
) -> Result<()> {
    let name = backend.name();
    let per_batch = (args.batch_customers * args.batch_tags) as u64;
    // Sequential, all batches: bounded by count, with a generous time cap.
    let limits = Limits {
        concurrency: 1,
        max_calls: args.batches as u64,
        duration: Duration::from_secs(3600),
    };
    let requests: Arc<Vec<_>> = Arc::new(
        (0..args.batches)
            .map(|b| workload::batch_request(dataset, b, args.batch_customers))
            .collect(),
    );

    eprintln!(
        "bench: {name}: raw multi-row INSERT, {} batches of {per_batch}",
        args.batches
    );
    let assigned_at = raw::now();
    let rows: Arc<Vec<Arc<Vec<raw::Row>>>> = Arc::new(
        requests
            .iter()
            .map(|request| {
                Arc::new(
                    request
                        .entries
                        .iter()
                        .flat_map(|entry| {
                            entry.assignments.iter().map(|a| raw::Row {
                                customer_id: entry.customer_id.clone(),
                                tag_id: a.tag_id.clone(),
                                category_id: dataset.category_id.clone(),
                                value: None,
                                source: "IMPORT".to_owned(),
                                source_ref: a.source_ref.clone(),
                                assigned_by: "anonymous".to_owned(),
                                assigned_at,
                                expires_at: None,
                            })
                        })
                        .collect(),
                )
            })
            .collect(),
    );
    let db = Arc::new(target.open(1).await?);
    let insert_rows = args.insert_rows;
    let raw_m = {
        let db = Arc::clone(&db);
        load::run(limits, move |caller, i| {
            let db = Arc::clone(&db);
            let batch = Arc::clone(&rows[i as usize]);
            async move { db.insert_batch(caller, batch, insert_rows).await }
        })
        .await?
    };
    let written: i64 = {
        let mut total = 0;
        for tag in &dataset.flag_tags {
            total += db.count_tag(tag).await?;
        }
        total
    };
    drop(db);
    let raw_fig = Figure::new("multi-row INSERT", &raw_m, per_batch);
    if raw_m.errors == 0 && written as u64 != per_batch * args.batches as u64 {
        report.note(format!(
            "{name}: raw batches wrote {written} rows, expected {}",
            per_batch * args.batches as u64
        ));
    }

    let Some(channels) = tagd_channels else {
        report_baseline_only(report, name, "BatchAssignTags", &raw_fig);
        return Ok(());
    };
    eprintln!(
        "bench: {name}: BatchAssignTags on tagd, {} batches of {per_batch}",
        args.batches
    );
    let client = TaggingServiceClient::new(channels[0].clone())
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let tagd_m = load::run(limits, move |_, i| {
        let mut client = client.clone();
        let request = requests[i as usize].clone();
        async move {
            let response = client.batch_assign_tags(request).await?.into_inner();
            anyhow::ensure!(
                response.assigned == per_batch,
                "BatchAssignTags assigned {} of {per_batch}: {response:?}",
                response.assigned
            );
            Ok(())
        }
    })
    .await?;
    let tagd_fig = Figure::new("tagd", &tagd_m, per_batch);

    let row = report::Row::new(
        name,
        &format!("BatchAssignTags ({per_batch}/batch)"),
        1,
        "assignments/s",
        tagd_fig.clone(),
        raw_fig,
    );
    if backend == Backend::Mysql {
        report.check(
            name,
            "BatchAssignTags throughput",
            "≥ 100,000 assignments/s",
            format!("{} assignments/s", thousands(tagd_fig.rate)),
            tagd_fig.rate >= 100_000.0,
        );
    }
    report.check(
        name,
        "BatchAssignTags vs multi-row INSERT",
        "≥ 0.4× INSERT",
        format!("{:.3}×", row.ratio),
        row.ratio >= 0.4,
    );
    check_errors(report, name, "BatchAssignTags", &tagd_fig);
    report.rows.push(row);
    Ok(())
}

/// What an import measurement runs against.
struct ImportOn<'a> {
    /// None with `--baselines-only`.
    channel: Option<Channel>,
    server_pid: Option<u32>,
    target: &'a Target,
    /// Where the generated files go (one of tagd's import_dirs).
    dir: &'a std::path::Path,
    /// `StartImportRequest.link_duplicates_at`.
    link_duplicates_at: f64,
}

/// An import of a generated file by tagd against multi-row INSERTs of the same customers.
async fn measure_import(
    backend: Backend,
    on: &ImportOn<'_>,
    kind: FileKind,
    rows: u64,
    report: &mut Report,
) -> Result<()> {
    let name = backend.name();
    let file = kind.name();
    eprintln!("bench: {name}: generating a {file} file of {rows} rows");
    let t0 = Instant::now();
    let dir = on.dir.to_path_buf();
    let (path, bytes) = tokio::task::spawn_blocking(move || import::generate(&dir, kind, rows))
        .await
        .context("file generator panicked")??;
    eprintln!(
        "bench: {name}: {} ({:.1} MB) written in {:.1} s",
        path.display(),
        bytes as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );

    eprintln!("bench: {name}: raw multi-row INSERT of {rows} customers ({file} rows)");
    let raw = match on.target {
        Target::Sqlite(options) => raw_import::sqlite(options, kind, rows).await?,
        Target::Mysql(url) => raw_import::mysql(url, kind, rows).await?,
    };
    let raw_fig = whole_run_figure("multi-row INSERT", raw.rows, raw.elapsed);

    let Some(channel) = on.channel.clone() else {
        report_baseline_only(report, name, &format!("import of {file}"), &raw_fig);
        return Ok(());
    };
    eprintln!("bench: {name}: tagd imports {}", path.display());
    let outcome = import::run(channel, &path, on.server_pid, on.link_duplicates_at).await?;
    let _ = std::fs::remove_file(&path);
    let tagd_fig = whole_run_figure("tagd", outcome.rows_read, outcome.elapsed);
    let mib = |kib: Option<u64>| kib.map(|k| k as f64 / 1024.0);
    let figures = ImportFigures {
        backend: name.to_owned(),
        file: file.to_owned(),
        rows,
        bytes,
        baseline_rows_per_statement: raw.rows_per_statement,
        state: outcome.state.clone(),
        error: outcome.error.clone(),
        rows_read: outcome.rows_read,
        created: outcome.created,
        rejected: outcome.rejected,
        tags_added: outcome.tags_added,
        rows_per_second: tagd_fig.rate,
        server_rows_per_second: outcome.server_rows_per_second,
        server_peak_mib: mib(outcome.server_peak_kib),
        server_peak_reset: outcome.server_peak_reset,
        worker_peak_mib: mib(outcome.worker_peak_kib),
        server_cpu_s: outcome.server_cpu_s,
        worker_cpu_s: outcome.worker_cpu_s,
        database_cpu_s: outcome.database_cpu_s,
    };
    report.note(format!(
        "{name}: {file} import: job {} in {:.2} s, {} rows read, {} created, {} updated, {} \
         unchanged, {} rejected, {} tags added; {} child process(es) seen; baseline {} customers \
         per INSERT; link_duplicates_at {}",
        outcome.state,
        outcome.elapsed.as_secs_f64(),
        outcome.rows_read,
        outcome.created,
        outcome.updated,
        outcome.unchanged,
        outcome.rejected,
        outcome.tags_added,
        outcome.workers_seen,
        raw.rows_per_statement,
        on.link_duplicates_at,
    ));

    let row = report::Row::new(
        name,
        &format!("Import {file} ({} rows)", thousands(rows as f64)),
        1,
        "rows/s",
        tagd_fig.clone(),
        raw_fig,
    );
    let good = outcome.succeeded()
        && outcome.rejected == 0
        && outcome.rows_read == rows
        && outcome.created == rows;
    report.check(
        name,
        &format!("Import {file}: job succeeded, every row created"),
        &format!("SUCCEEDED, {} created, 0 rejected", thousands(rows as f64)),
        format!(
            "{}, {} created, {} rejected{}",
            outcome.state,
            thousands(outcome.created as f64),
            thousands(outcome.rejected as f64),
            if outcome.error.is_empty() {
                String::new()
            } else {
                format!(" ({})", outcome.error)
            }
        ),
        good,
    );
    if kind == FileKind::Csv {
        if backend == Backend::Mysql {
            report.check(
                name,
                "Import CSV throughput",
                "≥ 100,000 rows/s",
                format!("{} rows/s", thousands(tagd_fig.rate)),
                tagd_fig.rate >= 100_000.0,
            );
        }
        report.check(
            name,
            "Import CSV vs multi-row INSERT",
            "≥ 0.5× INSERT",
            format!("{:.3}×", row.ratio),
            row.ratio >= 0.5,
        );
    }
    let total = figures.total_peak_mib();
    report.check(
        name,
        &format!("Import {file}: server + worker peak memory"),
        "< 300 MB",
        total.map_or_else(
            || {
                format!(
                    "unknown (server {}, worker {})",
                    figures
                        .server_peak_mib
                        .map_or_else(|| "?".to_owned(), |m| format!("{m:.0} MiB")),
                    figures
                        .worker_peak_mib
                        .map_or_else(|| "not seen".to_owned(), |m| format!("{m:.0} MiB"))
                )
            },
            |t| {
                format!(
                    "{t:.0} MiB ({:.0} + {:.0})",
                    figures.server_peak_mib.unwrap_or_default(),
                    figures.worker_peak_mib.unwrap_or_default()
                )
            },
        ),
        total.is_some_and(|t| t * 1024.0 * 1024.0 < 300e6),
    );
    report.imports.push(figures);
    report.rows.push(row);
    Ok(())
}

/// A figure for one long operation that did `units` units of work in `elapsed`.
fn whole_run_figure(subject: &str, units: u64, elapsed: Duration) -> Figure {
    let ms = elapsed.as_secs_f64() * 1000.0;
    Figure {
        subject: subject.to_owned(),
        calls: 1,
        errors: 0,
        seconds: elapsed.as_secs_f64(),
        rate: load::per_second(units, elapsed),
        p50_ms: ms,
        p99_ms: ms,
        max_ms: ms,
        first_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_ansi_removes_colour_codes() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m rpc"),
            "2026  INFO rpc"
        );
    }

    #[test]
    fn default_arguments_are_valid() {
        let args = Args::parse_from(["bench"]);
        args.validate().unwrap();
        assert_eq!(args.backends, [Backend::Sqlite, Backend::Mysql]);
        assert_eq!(args.assign_callers, [1, 4, 16]);
        let bad = Args::parse_from(["bench", "--batches", "6"]);
        assert!(bad.validate().is_err());
    }
}
