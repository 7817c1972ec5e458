//! Results of a run: the figures, the targets they are checked against, and how they are printed.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::load::Measurement;

/// One side (tagd or a baseline) of one measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// What was measured, e.g. "tagd" or "echo".
    pub subject: String,
    /// Successful calls.
    pub calls: u64,
    /// Failed calls.
    pub errors: u64,
    pub seconds: f64,
    /// Units of work per second (requests, calls or assignments, see `Row::unit`).
    pub rate: f64,
    /// Per-call latency.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub first_error: Option<String>,
}

impl Figure {
    /// A figure from a measurement where each successful call did `units_per_call` units of work.
    pub fn new(subject: &str, m: &Measurement, units_per_call: u64) -> Self {
        Self {
            subject: subject.to_owned(),
            calls: m.ok,
            errors: m.errors,
            seconds: m.elapsed.as_secs_f64(),
            rate: m.rate() * units_per_call as f64,
            p50_ms: m.latency_ms(0.50),
            p99_ms: m.latency_ms(0.99),
            max_ms: m.latency_us.max() as f64 / 1000.0,
            first_error: m.first_error.clone(),
        }
    }
}

/// One line of the table: tagd against its baseline.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub backend: String,
    pub measurement: String,
    pub callers: usize,
    /// What `rate` counts: "req/s", "calls/s", "assignments/s".
    pub unit: String,
    pub tagd: Figure,
    pub baseline: Figure,
    /// tagd rate / baseline rate.
    pub ratio: f64,
}

impl Row {
    pub fn new(
        backend: &str,
        measurement: &str,
        callers: usize,
        unit: &str,
        tagd: Figure,
        baseline: Figure,
    ) -> Self {
        let ratio = if baseline.rate > 0.0 {
            tagd.rate / baseline.rate
        } else {
            0.0
        };
        Self {
            backend: backend.to_owned(),
            measurement: measurement.to_owned(),
            callers,
            unit: unit.to_owned(),
            tagd,
            baseline,
            ratio,
        }
    }
}

/// A target and whether it was met.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub backend: String,
    pub what: String,
    pub target: String,
    pub actual: String,
    pub pass: bool,
}

/// One import (tagd's side of an `import` row), with what the figures in `Row` leave out.
#[derive(Clone, Debug, Serialize)]
pub struct ImportFigures {
    pub backend: String,
    /// "CSV" or "XLSX".
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    /// Rows per multi-row INSERT statement of the baseline.
    pub baseline_rows_per_statement: usize,
    /// The job's final state and counts.
    pub state: String,
    pub error: String,
    pub rows_read: u64,
    pub created: u64,
    pub rejected: u64,
    pub tags_added: u64,
    /// rows_read / wall time (StartImport to the end of WatchJob).
    pub rows_per_second: f64,
    /// The job's own rows_per_second.
    pub server_rows_per_second: f64,
    /// Peak resident memory (VmHWM) of the server and of its worker process, in MiB.
    pub server_peak_mib: Option<f64>,
    pub server_peak_reset: bool,
    pub worker_peak_mib: Option<f64>,
    /// CPU seconds during the import: server, worker (reaped children), MariaDB server.
    pub server_cpu_s: Option<f64>,
    pub worker_cpu_s: Option<f64>,
    pub database_cpu_s: Option<f64>,
}

impl ImportFigures {
    /// Server + worker peak, in MiB (None when either is unknown).
    pub fn total_peak_mib(&self) -> Option<f64> {
        self.server_peak_mib
            .zip(self.worker_peak_mib)
            .map(|(a, b)| a + b)
    }
}

/// Facts about the machine the figures come from.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory: String,
    pub mariadb: Option<String>,
    /// Durability-relevant MariaDB settings (innodb_flush_log_at_trx_commit, ...).
    pub mariadb_settings: Vec<(String, String)>,
}

impl Machine {
    /// Reads CPU and memory facts from /proc (best effort).
    pub fn probe() -> Self {
        let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().strip_suffix(" kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())
            .map_or_else(
                || "unknown".to_owned(),
                |kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0),
            );
        Self {
            cpus,
            cpu_model,
            memory,
            ..Self::default()
        }
    }
}

/// Everything one run produced.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub command: String,
    pub machine: Machine,
    pub rows: Vec<Row>,
    pub checks: Vec<Check>,
    /// Memory and CPU of the `import` measurements.
    pub imports: Vec<ImportFigures>,
    /// Other observations (set-up speed, server log warnings, ...).
    pub notes: Vec<String>,
    /// Backends that could not be measured, with the reason.
    pub failures: Vec<(String, String)>,
}

impl Report {
    pub fn check(&mut self, backend: &str, what: &str, target: &str, actual: String, pass: bool) {
        self.checks.push(Check {
            backend: backend.to_owned(),
            what: what.to_owned(),
            target: target.to_owned(),
            actual,
            pass,
        });
    }

    pub fn note(&mut self, note: String) {
        eprintln!("bench: {note}");
        self.notes.push(note);
    }

    /// Writes the report as Markdown tables.
    pub fn write_markdown(&self, out: &mut impl Write) -> Result<()> {
        let m = &self.machine;
        writeln!(out, "## Machine\n")?;
        writeln!(out, "- CPUs: {} × {}", m.cpus, m.cpu_model)?;
        writeln!(out, "- RAM: {}", m.memory)?;
        if let Some(version) = &m.mariadb {
            writeln!(out, "- MariaDB: {version}")?;
        }
        for (key, value) in &m.mariadb_settings {
            writeln!(out, "- MariaDB `{key}` = {value}")?;
        }
        writeln!(out, "\nCommand: `{}`\n", self.command)?;

        writeln!(out, "## Figures\n")?;
        writeln!(
            out,
            "| backend | measurement | callers | tagd | p50 ms | p99 ms | baseline | baseline rate | p50 ms | p99 ms | tagd/baseline | errors |"
        )?;
        writeln!(out, "|---|---|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|")?;
        for r in &self.rows {
            writeln!(
                out,
                "| {} | {} | {} | {} {} | {:.2} | {:.2} | {} | {} {} | {:.2} | {:.2} | {:.2}× | {} / {} |",
                r.backend,
                r.measurement,
                r.callers,
                thousands(r.tagd.rate),
                r.unit,
                r.tagd.p50_ms,
                r.tagd.p99_ms,
                r.baseline.subject,
                thousands(r.baseline.rate),
                r.unit,
                r.baseline.p50_ms,
                r.baseline.p99_ms,
                r.ratio,
                r.tagd.errors,
                r.baseline.errors,
            )?;
        }

        if !self.imports.is_empty() {
            write_imports(out, &self.imports)?;
        }

        writeln!(out, "\n## Targets\n")?;
        writeln!(out, "| backend | what | target | measured | result |")?;
        writeln!(out, "|---|---|---|--:|---|")?;
        for c in &self.checks {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                c.backend,
                c.what,
                c.target,
                c.actual,
                if c.pass { "PASS" } else { "**FAIL**" }
            )?;
        }

        if !self.notes.is_empty() {
            writeln!(out, "\n## Notes\n")?;
            for note in &self.notes {
                writeln!(out, "- {note}")?;
            }
        }
        for (backend, reason) in &self.failures {
            writeln!(out, "\n**{backend} could not be measured:** {reason}")?;
        }
        for row in &self.rows {
            for f in [&row.tagd, &row.baseline] {
                if let Some(err) = &f.first_error {
                    writeln!(
                        out,
                        "\nFirst error of {} {} ({} callers, {}): {err}",
                        row.backend, row.measurement, row.callers, f.subject
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// The import table: size, job counts, memory and CPU of each import.
fn write_imports(out: &mut impl Write, imports: &[ImportFigures]) -> Result<()> {
    let mib = |v: Option<f64>| v.map_or_else(|| "?".to_owned(), |v| format!("{v:.0}"));
    let secs = |v: Option<f64>| v.map_or_else(|| "?".to_owned(), |v| format!("{v:.1}"));
    writeln!(out, "\n## Imports\n")?;
    writeln!(
        out,
        "| backend | file | rows | MB | state | created | rejected | tags added | rows/s | job rows/s | server peak MiB | worker peak MiB | sum MiB | CPU s server / worker / mariadbd |"
    )?;
    writeln!(
        out,
        "|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    )?;
    for i in imports {
        writeln!(
            out,
            "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {}{} | {} | {} | {} / {} / {} |",
            i.backend,
            i.file,
            thousands(i.rows as f64),
            i.bytes as f64 / 1e6,
            i.state,
            thousands(i.created as f64),
            thousands(i.rejected as f64),
            thousands(i.tags_added as f64),
            thousands(i.rows_per_second),
            thousands(i.server_rows_per_second),
            mib(i.server_peak_mib),
            if i.server_peak_reset {
                ""
            } else {
                " (since start)"
            },
            mib(i.worker_peak_mib),
            mib(i.total_peak_mib()),
            secs(i.server_cpu_s),
            secs(i.worker_cpu_s),
            secs(i.database_cpu_s),
        )?;
    }
    Ok(())
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }
}
