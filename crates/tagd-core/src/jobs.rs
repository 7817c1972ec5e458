//! Long-running jobs (imports and cleansing; dedupe later): their kinds, which
//! of them exclude each other, states and progress counters, and the rows an
//! import rejected.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDateTime;

use crate::customers::CustomerField;

/// The longest raw value a rejected-row report keeps, in characters.
pub const MAX_REPORTED_VALUE_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    Import,
    Dedupe,
    /// Standardises every stored customer's fields (see `tagd-cleanse`).
    Cleanse,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Import => "import",
            JobKind::Dedupe => "dedupe",
            JobKind::Cleanse => "cleanse",
        }
    }

    /// Whether the job rewrites customers across the whole store, so that two
    /// such jobs at once would fight over the same rows (and one would judge
    /// data the other is halfway through changing): at most one of these kinds
    /// runs at a time, whichever it is. The job registry enforces it; a new
    /// kind of the sort (dedupe) says `true` here and needs nothing else.
    pub fn is_exclusive_maintenance(self) -> bool {
        match self {
            JobKind::Import => false,
            JobKind::Cleanse | JobKind::Dedupe => true,
        }
    }
}

impl FromStr for JobKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "import" => Ok(JobKind::Import),
            "dedupe" => Ok(JobKind::Dedupe),
            "cleanse" => Ok(JobKind::Cleanse),
            other => Err(format!("unknown job kind {other:?}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// A finished import whose changes were undone.
    Reverted,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Reverted => "reverted",
        }
    }

    pub fn is_finished(self) -> bool {
        self != JobState::Running
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(JobState::Running),
            "succeeded" => Ok(JobState::Succeeded),
            "failed" => Ok(JobState::Failed),
            "cancelled" => Ok(JobState::Cancelled),
            "reverted" => Ok(JobState::Reverted),
            other => Err(format!("unknown job state {other:?}")),
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counters every kind of job reports (a kind leaves the ones it has no use for at 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobProgress {
    pub rows_read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub tags_added: u64,
    pub purchases_added: u64,
    pub interactions_added: u64,
    /// Size of the source, when known (bytes); for a cleanse, the customers to scan.
    pub bytes_total: u64,
    /// How far into the source the reader is (bytes), when it can be seen; for a
    /// cleanse, the customers scanned.
    pub bytes_read: u64,
    /// Dedupe: candidate pairs scored.
    pub comparisons: u64,
    /// Dedupe: clusters of duplicates found.
    pub clusters: u64,
    /// Dedupe: customers merged into another.
    pub merged: u64,
    /// Dedupe: pairs queued for review.
    pub queued_for_review: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub kind: JobKind,
    pub state: JobState,
    pub created_by: String,
    /// What the job works on, for people: "spreadsheet: /imports/a.csv".
    pub subject: String,
    pub dry_run: bool,
    pub progress: JobProgress,
    /// Why a failed job failed ("" otherwise).
    pub error: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

impl Job {
    /// Rows per second from the start to the last update.
    pub fn rows_per_second(&self) -> f64 {
        let end = self.finished_at.unwrap_or(self.updated_at);
        let seconds = (end - self.created_at).as_seconds_f64();
        if seconds <= 0.0 {
            return 0.0;
        }
        self.progress.rows_read as f64 / seconds
    }

    /// Seconds left at the pace so far, when the source's size and the reader's
    /// position are known; `None` otherwise.
    pub fn eta_seconds(&self) -> Option<i64> {
        let progress = &self.progress;
        if self.state.is_finished() {
            return Some(0);
        }
        if progress.bytes_total == 0 || progress.bytes_read == 0 {
            return None;
        }
        let seconds = (self.updated_at - self.created_at).as_seconds_f64();
        let left = progress.bytes_total.saturating_sub(progress.bytes_read) as f64;
        let eta = left * seconds / progress.bytes_read as f64;
        Some(eta.ceil() as i64)
    }
}

/// A source row an import did not take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// Row or line number in the source, 1-based.
    pub row: u64,
    /// The field at fault ("" for the whole row).
    pub field: String,
    pub reason: String,
    /// The offending value as read, cut to [`MAX_REPORTED_VALUE_CHARS`].
    pub raw_value: String,
}

impl RejectedRow {
    pub fn new(row: u64, field: impl Into<String>, reason: impl Into<String>, raw: &str) -> Self {
        Self {
            row,
            field: field.into(),
            reason: reason.into(),
            raw_value: raw.chars().take(MAX_REPORTED_VALUE_CHARS).collect(),
        }
    }
}

/// What a cleanse did to one field over every customer it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanseFieldCounts {
    pub field: CustomerField,
    /// Values rewritten in standard form.
    pub changed: u64,
    /// Values dropped because they equalled another after standardising.
    pub duplicates_removed: u64,
    /// Values kept as they were: not standardisable, or not written (see [`UnfixableValue`]).
    pub unfixable: u64,
}

/// A value a cleanse left as it was, and why: it cannot be standardised, or its
/// standard form belongs to another customer, or the customer changed meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfixableValue {
    pub customer_id: String,
    pub field: CustomerField,
    /// The value as stored, cut to [`MAX_REPORTED_VALUE_CHARS`].
    pub value: String,
    pub reason: String,
}

impl UnfixableValue {
    pub fn new(
        customer_id: impl Into<String>,
        field: CustomerField,
        value: &str,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            customer_id: customer_id.into(),
            field,
            value: value.chars().take(MAX_REPORTED_VALUE_CHARS).collect(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for state in [
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
            JobState::Reverted,
        ] {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
        }
        assert!("done".parse::<JobState>().is_err());
        assert!(!JobState::Running.is_finished());
        assert!(JobState::Cancelled.is_finished());
    }

    #[test]
    fn kinds_round_trip_and_maintenance_kinds_are_exclusive() {
        for kind in [JobKind::Import, JobKind::Cleanse] {
            assert_eq!(kind.as_str().parse::<JobKind>(), Ok(kind));
        }
        assert!(JobKind::Cleanse.is_exclusive_maintenance());
        // Imports run beside each other and beside maintenance: they are keyed by identity.
        assert!(!JobKind::Import.is_exclusive_maintenance());
    }

    #[test]
    fn the_time_left_follows_the_pace_so_far() {
        let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let mut job = Job {
            id: "j".to_owned(),
            kind: JobKind::Import,
            state: JobState::Running,
            created_by: "ops".to_owned(),
            subject: String::new(),
            dry_run: false,
            progress: JobProgress {
                bytes_total: 1_000,
                bytes_read: 250,
                rows_read: 100,
                ..JobProgress::default()
            },
            error: String::new(),
            created_at: start,
            updated_at: start + chrono::Duration::seconds(10),
            finished_at: None,
        };
        assert_eq!(job.eta_seconds(), Some(30));
        assert!((job.rows_per_second() - 10.0).abs() < 1e-9);
        job.progress.bytes_read = 0;
        assert_eq!(job.eta_seconds(), None);
        job.state = JobState::Succeeded;
        assert_eq!(job.eta_seconds(), Some(0));
    }

    #[test]
    fn rejected_values_are_cut_to_the_report_limit() {
        let long = "值".repeat(500);
        let row = RejectedRow::new(7, "phones[0]", "not a phone number", &long);
        assert_eq!(row.raw_value.chars().count(), MAX_REPORTED_VALUE_CHARS);
    }
}
