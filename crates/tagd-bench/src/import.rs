//! The `import` measurement: a generated customer file imported by tagd through the spreadsheet
//! plugin, followed with WatchJob, while the server's and its worker's memory and CPU are sampled
//! from `/proc`.

use std::{
    collections::HashMap,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use tagd_proto::v1::{
    JobState, StartImportRequest, WatchJobRequest, import_service_client::ImportServiceClient,
    job_service_client::JobServiceClient,
};
use tonic::transport::Channel;

/// The importer StartImport names.
pub const IMPORTER: &str = "spreadsheet";
/// The plugin library that must be in the plugins folder.
pub const PLUGIN_LIBRARY: &str = "libtagd_plugin_spreadsheet.so";
/// Header row: name, mobile, email, tags (headers the spreadsheet plugin recognises).
const HEADERS: [&str; 4] = ["客户名称", "手机号", "邮箱", "标签"];
/// Tags of the first kind (one per row).
const VALUE_TAGS: [&str; 3] = ["高价值", "中价值", "低价值"];
/// Tags of the second kind (one per row).
const ACTIVITY_TAGS: [&str; 4] = ["活跃", "沉睡", "新客", "流失风险"];
/// How often memory is sampled during an import…
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// …and during its first seconds, so that the worker of a small file is seen too.
const SAMPLE_EARLY_EVERY: Duration = Duration::from_millis(10);
const EARLY: Duration = Duration::from_secs(2);
/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Which generated file: the kinds use disjoint mobile numbers, so every row is a new customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Csv,
    Xlsx,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "CSV",
            Self::Xlsx => "XLSX",
        }
    }

    fn first_mobile(self) -> u64 {
        // 138… is taken by the set-up's customers (`workload::customer_fields`).
        match self {
            Self::Csv => 139_0000_0000,
            Self::Xlsx => 137_0000_0000,
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Self::Csv => "customers.csv",
            Self::Xlsx => "customers.xlsx",
        }
    }
}

/// One row of a generated file.
pub struct Person {
    pub name: String,
    /// 11 digits, no country code.
    pub phone: String,
    /// Lower-case.
    pub email: String,
    /// The tags cell: two tags separated by `；`.
    pub tags: String,
}

/// Row `i` (0-based) of a file of `kind`; the same for every run.
pub fn person(kind: FileKind, i: u64) -> Person {
    let prefix = match kind {
        FileKind::Csv => "c",
        FileKind::Xlsx => "x",
    };
    Person {
        name: format!("客户{i:07}"),
        phone: (kind.first_mobile() + i).to_string(),
        email: format!("{prefix}{i:07}@example.com"),
        tags: format!(
            "{}；{}",
            VALUE_TAGS[(i % 3) as usize],
            ACTIVITY_TAGS[(i / 3 % 4) as usize]
        ),
    }
}

/// The largest row count: mobile numbers must stay valid (137…/139… plus the row number).
pub const MAX_ROWS: u64 = 100_000_000;

/// Writes the file of `rows` rows into `dir`; returns its path and size in bytes.
pub fn generate(dir: &Path, kind: FileKind, rows: u64) -> Result<(PathBuf, u64)> {
    let path = dir.join(kind.file_name());
    match kind {
        FileKind::Csv => write_csv(&path, rows)?,
        FileKind::Xlsx => write_xlsx(&path, rows)?,
    }
    let size = std::fs::metadata(&path)
        .with_context(|| format!("reading the size of {}", path.display()))?
        .len();
    Ok((path, size))
}

fn write_csv(path: &Path, rows: u64) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let write = |out: &mut BufWriter<std::fs::File>| -> std::io::Result<()> {
        writeln!(out, "{}", HEADERS.join(","))?;
        for i in 0..rows {
            let p = person(FileKind::Csv, i);
            writeln!(out, "{},{},{},{}", p.name, p.phone, p.email, p.tags)?;
        }
        out.flush()
    };
    write(&mut out).with_context(|| format!("writing {}", path.display()))
}

fn write_xlsx(path: &Path, rows: u64) -> Result<()> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (col, header) in (0u16..).zip(HEADERS) {
        sheet.write_string(0, col, header)?;
    }
    for i in 0..rows {
        let row = u32::try_from(i + 1).context("too many rows for one XLSX sheet")?;
        let p = person(FileKind::Xlsx, i);
        sheet.write_string(row, 0, p.name)?;
        // Text, as exported sheets usually carry phone numbers (a number would do as well).
        sheet.write_string(row, 1, p.phone)?;
        sheet.write_string(row, 2, p.email)?;
        sheet.write_string(row, 3, p.tags)?;
    }
    workbook
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}

/// How one import went.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub state: String,
    pub error: String,
    pub rows_read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub tags_added: u64,
    /// The server's own figure (rows per second since the job started).
    pub server_rows_per_second: f64,
    /// From StartImport to the end of the WatchJob stream.
    pub elapsed: Duration,
    /// The server's VmHWM after the import (reset before it when the kernel allows), in KiB.
    pub server_peak_kib: Option<u64>,
    /// Whether the server's VmHWM was reset before the import (else it covers its whole life).
    pub server_peak_reset: bool,
    /// The largest VmHWM (or VmRSS) seen of any child of the server during the import, in KiB
    /// (None when no child was seen).
    pub worker_peak_kib: Option<u64>,
    /// Child processes seen during the import.
    pub workers_seen: usize,
    /// CPU seconds (user + system) during the import.
    pub server_cpu_s: Option<f64>,
    /// CPU of children the server reaped during the import (the worker), from its `cutime+cstime`.
    pub worker_cpu_s: Option<f64>,
    /// CPU of `mariadbd`/`mysqld` during the import, if such a process is visible.
    pub database_cpu_s: Option<f64>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.state == "SUCCEEDED"
    }
}

/// Imports `source` on the server behind `channel` and follows the job to its end; `server_pid`
/// is tagd's process id (for the memory and CPU figures).
pub async fn run(
    channel: Channel,
    source: &Path,
    server_pid: Option<u32>,
    link_duplicates_at: f64,
) -> Result<Outcome> {
    let mut imports = ImportServiceClient::new(channel.clone());
    let mut jobs = JobServiceClient::new(channel);

    let server_peak_reset = server_pid.is_some_and(reset_peak);
    let cpu_before = Cpu::read(server_pid);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = server_pid.map(|pid| {
        let stop = Arc::clone(&stop);
        tokio::spawn(sample_children(pid, stop))
    });

    let t0 = Instant::now();
    let watched = async {
        let job = imports
            .start_import(StartImportRequest {
                importer: IMPORTER.to_owned(),
                source_path: source
                    .to_str()
                    .context("import path is not UTF-8")?
                    .to_owned(),
                create_missing_tags: true,
                link_duplicates_at,
                ..StartImportRequest::default()
            })
            .await
            .context("StartImport")?
            .into_inner();
        let mut stream = jobs
            .watch_job(WatchJobRequest {
                job_id: job.id.clone(),
            })
            .await
            .context("WatchJob")?
            .into_inner();
        let mut last = job;
        while let Some(update) = stream.message().await.context("WatchJob stream")? {
            last = update;
        }
        anyhow::Ok(last)
    }
    .await;
    let elapsed = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let children = match sampler {
        Some(task) => Some(task.await.context("memory sampler panicked")?),
        None => None,
    };
    let cpu_after = Cpu::read(server_pid);
    let job = watched?;

    let progress = job.progress.unwrap_or_default();
    let state = JobState::try_from(job.state).map_or_else(
        |_| format!("state {}", job.state),
        |s| s.as_str_name().trim_start_matches("JOB_STATE_").to_owned(),
    );
    Ok(Outcome {
        state,
        error: job.error,
        rows_read: progress.rows_read,
        created: progress.created,
        updated: progress.updated,
        unchanged: progress.unchanged,
        rejected: progress.rejected,
        tags_added: progress.tags_added,
        server_rows_per_second: progress.rows_per_second,
        elapsed,
        server_peak_kib: server_pid.and_then(|pid| status_kib(pid, "VmHWM")),
        server_peak_reset,
        worker_peak_kib: children
            .as_ref()
            .and_then(|peaks| peaks.values().copied().filter(|&kib| kib > 0).max()),
        workers_seen: children.as_ref().map_or(0, HashMap::len),
        server_cpu_s: cpu_after.server.zip(cpu_before.server).map(|(a, b)| a - b),
        worker_cpu_s: cpu_after
            .children
            .zip(cpu_before.children)
            .map(|(a, b)| a - b),
        database_cpu_s: cpu_after
            .database
            .zip(cpu_before.database)
            .map(|(a, b)| a - b),
    })
}

/// Resets the peak resident set size (VmHWM) of `pid` (`echo 5 > /proc/<pid>/clear_refs`).
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// A `kB` line (`VmHWM`, `VmRSS`, …) of `/proc/<pid>/status`.
pub(crate) fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, key)
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Children of `pid`, from every thread's `children` file (a child belongs to the thread that
/// forked it).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// Polls the children of `pid` until `stop`; returns each child's largest VmHWM/VmRSS in KiB.
async fn sample_children(pid: u32, stop: Arc<AtomicBool>) -> HashMap<u32, u64> {
    let mut peaks: HashMap<u32, u64> = HashMap::new();
    let started = Instant::now();
    loop {
        for child in children_of(pid) {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{child}/status")) else {
                continue;
            };
            let peak = parse_status_kib(&status, "VmHWM")
                .max(parse_status_kib(&status, "VmRSS"))
                .unwrap_or(0);
            let entry = peaks.entry(child).or_default();
            *entry = (*entry).max(peak);
        }
        if stop.load(Ordering::Relaxed) {
            return peaks;
        }
        tokio::time::sleep(if started.elapsed() < EARLY {
            SAMPLE_EARLY_EVERY
        } else {
            SAMPLE_EVERY
        })
        .await;
    }
}

/// CPU seconds used so far.
#[derive(Clone, Copy, Debug, Default)]
struct Cpu {
    server: Option<f64>,
    /// Reaped children of the server.
    children: Option<f64>,
    database: Option<f64>,
}

impl Cpu {
    fn read(server_pid: Option<u32>) -> Self {
        let (server, children) = server_pid
            .and_then(stat_times)
            .map_or((None, None), |(own, children)| (Some(own), Some(children)));
        let database = database_pid().and_then(stat_times).map(|(own, _)| own);
        Self {
            server,
            children,
            database,
        }
    }
}

/// (utime + stime, cutime + cstime) of `pid` in seconds.
fn stat_times(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_times(&stat)
}

fn parse_stat_times(stat: &str) -> Option<(f64, f64)> {
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [utime, stime, cutime, cstime] = fields.as_slice() else {
        return None;
    };
    Some((
        (utime + stime) as f64 / TICKS_PER_SECOND,
        (cutime + cstime) as f64 / TICKS_PER_SECOND,
    ))
}

/// The local MariaDB/MySQL server process, if one is visible.
fn database_pid() -> Option<u32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        matches!(comm.trim(), "mariadbd" | "mysqld").then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_valid_and_distinct() {
        let a = person(FileKind::Csv, 0);
        let b = person(FileKind::Csv, 999_999);
        let x = person(FileKind::Xlsx, 0);
        assert_eq!(a.phone, "13900000000");
        assert_eq!(b.phone, "13900999999");
        assert_eq!(x.phone, "13700000000");
        assert_ne!(a.email, x.email);
        assert_eq!(a.tags, "高价值；活跃");
        assert_eq!(person(FileKind::Csv, MAX_ROWS - 1).phone.len(), 11);
    }

    #[test]
    fn files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let (csv, size) = generate(dir.path(), FileKind::Csv, 3).unwrap();
        let text = std::fs::read_to_string(csv).unwrap();
        assert_eq!(size, text.len() as u64);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "客户名称,手机号,邮箱,标签",
                "客户0000000,13900000000,c0000000@example.com,高价值；活跃",
                "客户0000001,13900000001,c0000001@example.com,中价值；活跃",
                "客户0000002,13900000002,c0000002@example.com,低价值；活跃",
            ]
        );
        let (_, size) = generate(dir.path(), FileKind::Xlsx, 10).unwrap();
        assert!(size > 0);
    }

    #[test]
    fn proc_files_are_parsed() {
        let status = "Name:\ttagd\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(51_234));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(40_000));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        let stat = "123 (tagd serve) S 1 123 123 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 4 0";
        assert_eq!(parse_stat_times(stat), Some((3.0, 0.1)));
        assert!(stat_times(std::process::id()).is_some());
        assert!(status_kib(std::process::id(), "VmRSS").is_some());
    }
}
