//! Import jobs: checks a request, starts a worker process for the plugin, and
//! turns its batches into cleansed, upserted customers and tags — batch by
//! batch, each batch one transaction — while publishing progress.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tagd_core::customers::CustomerFields;
use tagd_core::jobs::{Job, JobKind, JobProgress, RejectedRow};
use tagd_plugin_api::RecordBatch;
use tagd_plugin_api::host::{Event, WorkerRun, spawn};
use tagd_store::{ImportEntry, ImportSettings, NewJob};
use tokio::sync::mpsc;

use crate::error::{JobError, JobResult};
use crate::importers::Importer;
use crate::records::{RecordRules, rejected_from_plugin};
use crate::registry::{Ending, Jobs, RunningJob};
use crate::uploads::Upload;

/// Rows written per transaction.
const ROWS_PER_TRANSACTION: usize = 1_000;
/// Progress is saved to the database at most this often (watchers see every batch).
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// What to do with a customer the store already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExistingCustomers {
    #[default]
    Update,
    Skip,
}

#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub importer: String,
    pub source_path: String,
    pub options: BTreeMap<String, String>,
    pub dry_run: bool,
    pub existing: ExistingCustomers,
    pub create_missing_tags: bool,
    /// Link a row that no stored identity holds to its best duplicate scoring
    /// at least this (FindDuplicates' score), instead of creating a twin.
    pub link_duplicates_at: Option<f64>,
}

impl Jobs {
    /// Checks the request, records the job and starts it; returns at once.
    pub async fn start_import(
        self: &Arc<Self>,
        request: ImportRequest,
        actor: &str,
    ) -> JobResult<Job> {
        let importer = self.importer(&request.importer).await?;
        let source = self.allowed_source(&request.source_path).await?;
        self.launch(importer, request, source, None, actor).await
    }

    /// Starts importing a file the caller sent; the file is removed when the job ends.
    pub async fn start_uploaded_import(
        self: &Arc<Self>,
        request: ImportRequest,
        mut upload: Upload,
        actor: &str,
    ) -> JobResult<Job> {
        let importer = self.importer(&request.importer).await?;
        let source = upload.finish().await?;
        self.launch(importer, request, source, Some(upload), actor)
            .await
    }

    async fn launch(
        self: &Arc<Self>,
        importer: Importer,
        request: ImportRequest,
        source: PathBuf,
        upload: Option<Upload>,
        actor: &str,
    ) -> JobResult<Job> {
        let bytes_total = tokio::fs::metadata(&source)
            .await
            .map(|meta| meta.len())
            .unwrap_or(0);
        let params = serde_json::json!({
            "importer": importer.name,
            "source_path": source,
            "options": request.options,
            "dry_run": request.dry_run,
            "existing": match request.existing {
                ExistingCustomers::Update => "update",
                ExistingCustomers::Skip => "skip",
            },
            "create_missing_tags": request.create_missing_tags,
            "link_duplicates_at": request.link_duplicates_at,
        });
        let (job, running) = self
            .begin(NewJob {
                kind: JobKind::Import,
                created_by: actor.to_owned(),
                subject: format!("{}: {}", importer.name, source.display()),
                dry_run: request.dry_run,
                params: params.to_string(),
                bytes_total,
            })
            .await?;
        let run = ImportRun {
            jobs: Arc::clone(self),
            running,
            job: job.clone(),
            importer,
            source,
            settings: ImportSettings {
                job_id: job.id.clone(),
                actor: actor.to_owned(),
                skip_existing: request.existing == ExistingCustomers::Skip,
                create_missing_tags: request.create_missing_tags,
                dry_run: request.dry_run,
            },
            options: request.options,
            link_duplicates_at: request.link_duplicates_at,
            rehearsed: HashSet::new(),
            upload,
        };
        tokio::spawn(run.run());
        Ok(job)
    }

    async fn importer(&self, name: &str) -> JobResult<Importer> {
        let importers = self.importers().await;
        match importers.iter().find(|importer| importer.name == name) {
            Some(importer) if importer.error.is_empty() => Ok(importer.clone()),
            Some(importer) => Err(JobError::FailedPrecondition(format!(
                "importer {name:?} cannot be used: {}",
                importer.error
            ))),
            None => {
                let usable: Vec<&str> = importers
                    .iter()
                    .filter(|importer| importer.error.is_empty())
                    .map(|importer| importer.name.as_str())
                    .collect();
                Err(JobError::NotFound {
                    field: "importer",
                    what: format!("importer {name:?}"),
                    hint: format!("; available: {}", usable.join(", ")),
                })
            }
        }
    }

    /// The canonical source path, if it is a file below one of `import_dirs`.
    async fn allowed_source(&self, raw: &str) -> JobResult<PathBuf> {
        if raw.trim().is_empty() {
            return Err(tagd_core::DomainError::invalid("source_path", "must not be empty").into());
        }
        if self.config.import_dirs.is_empty() {
            return Err(JobError::FailedPrecondition(
                "this server reads no files: set import_dirs in its configuration".to_owned(),
            ));
        }
        let source = tokio::fs::canonicalize(raw).await.map_err(|error| {
            tagd_core::DomainError::invalid("source_path", format!("cannot open {raw:?}: {error}"))
        })?;
        let mut allowed = false;
        for dir in &self.config.import_dirs {
            if let Ok(dir) = tokio::fs::canonicalize(dir).await
                && source.starts_with(&dir)
            {
                allowed = true;
            }
        }
        if !allowed {
            return Err(JobError::PermissionDenied(format!(
                "source_path: {raw:?} is outside the folders this server imports from (import_dirs)"
            )));
        }
        if !tokio::fs::metadata(&source)
            .await
            .is_ok_and(|meta| meta.is_file())
        {
            return Err(tagd_core::DomainError::invalid(
                "source_path",
                format!("{raw:?} is not a file"),
            )
            .into());
        }
        Ok(source)
    }
}

/// One import in progress.
struct ImportRun {
    jobs: Arc<Jobs>,
    running: Arc<RunningJob>,
    job: Job,
    importer: Importer,
    source: PathBuf,
    settings: ImportSettings,
    options: BTreeMap<String, String>,
    /// See [`ImportRequest::link_duplicates_at`].
    link_duplicates_at: Option<f64>,
    /// Dry runs only: hashes of the identities whose customers the run would
    /// have created. Each batch rolls back, so a later row of the same customer
    /// would count as created again; with this it counts as an update.
    rehearsed: HashSet<u64>,
    /// The uploaded source, removed when the run ends (dropped with it).
    upload: Option<Upload>,
}

impl ImportRun {
    async fn run(mut self) {
        let (state, error) = self.drive().await.outcome();
        let job_id = self.job.id.clone();
        self.jobs
            .conclude(&self.running, &mut self.job, state, error)
            .await;
        // An uploaded source is of no further use: dropping it removes the file.
        drop(self.upload.take());
        tracing::info!(job = %job_id, state = %state, rows = self.job.progress.rows_read, "import finished");
    }

    /// Runs the worker and writes what it sends. Three stages overlap: the
    /// worker parses, a reader task cleanses the next batches (up to
    /// [`PREPARED_AHEAD`]) and this task writes the current one.
    async fn drive(&mut self) -> Ending {
        let mut command = self.jobs.config.worker_command();
        command.arg(&self.importer.path).arg(&self.source);
        for (key, value) in &self.options {
            command.arg(format!("{key}={value}"));
        }
        let worker = match spawn(command, self.importer.name.clone(), self.jobs.config.limits) {
            Ok(worker) => worker,
            Err(error) => return Ending::Failed(error.to_string()),
        };
        let (sender, mut prepared) = mpsc::channel(PREPARED_AHEAD);
        let reader = Reader {
            jobs: Arc::clone(&self.jobs),
            channel: self.importer.channel.clone(),
            source: self.source.clone(),
            cancel: self.running.cancel.subscribe(),
        };
        // Aborting the reader drops the worker, which kills it; so does dropping this run.
        let mut reading = AbortOnDrop(tokio::spawn(reader.run(worker, sender)));
        let mut last_saved = Instant::now();
        let mut rejected_seq = 0_u64;
        while let Some(batch) = prepared.recv().await {
            if *self.running.cancel.borrow() {
                // The reader stops the worker and answers Cancelled.
                break;
            }
            if let Err(error) = self.take(batch, &mut rejected_seq).await {
                return Ending::Failed(error.to_string());
            }
            self.publish();
            if last_saved.elapsed() >= SAVE_EVERY {
                last_saved = Instant::now();
                if let Err(error) = self
                    .jobs
                    .store
                    .save_job_progress(&self.job.id, &self.job.progress)
                    .await
                {
                    tracing::warn!(job = %self.job.id, %error, "cannot save import progress");
                }
            }
        }
        drop(prepared);
        match (&mut reading.0).await {
            Ok(ending) => ending,
            Err(error) => Ending::Failed(format!("the import's reader stopped: {error}")),
        }
    }

    fn publish(&mut self) {
        self.job.updated_at = chrono::Utc::now().naive_utc();
        self.running.updates.send_replace(self.job.clone());
    }

    /// Writes and reports one cleansed batch.
    async fn take(&mut self, batch: Prepared, rejected_seq: &mut u64) -> JobResult<()> {
        let Prepared {
            rows_read,
            bytes_read,
            chunks,
            mut rejected,
        } = batch;
        self.job.progress.rows_read += rows_read;
        if let Some(position) = bytes_read {
            self.job.progress.bytes_read = position;
        }
        for mut chunk in chunks {
            self.link_duplicates(&mut chunk).await?;
            self.write(&chunk, &mut rejected).await?;
        }
        rejected.sort_by_key(|row| row.row);
        self.job.progress.rejected += rejected.len() as u64;
        self.jobs
            .store
            .add_rejected_rows(&self.job.id, *rejected_seq, &rejected)
            .await?;
        *rejected_seq += rejected.len() as u64;
        Ok(())
    }

    /// Points each row at the stored customer it duplicates, when linking is on:
    /// the store then updates that customer unless another holds the row's
    /// identity already. Customers created by earlier batches of this import
    /// count as stored, so a file's own repeats are linked too.
    async fn link_duplicates(&self, entries: &mut [ImportEntry]) -> JobResult<()> {
        let Some(threshold) = self.link_duplicates_at else {
            return Ok(());
        };
        let drafts: Vec<&CustomerFields> = entries.iter().map(|entry| &entry.fields).collect();
        let best = self.jobs.best_duplicates(&drafts, threshold).await?;
        for (entry, link_to) in entries.iter_mut().zip(best) {
            entry.link_to = link_to;
        }
        Ok(())
    }

    /// Writes rows in one transaction; if the batch fails as a whole, row by
    /// row, so that only the rows at fault are rejected.
    async fn write(
        &mut self,
        entries: &[ImportEntry],
        rejected: &mut Vec<RejectedRow>,
    ) -> JobResult<()> {
        let store = &self.jobs.store;
        let outcomes = match store.import_batch(entries, &self.settings).await {
            Ok(outcome) => vec![outcome],
            Err(error) if entries.len() == 1 => {
                rejected.push(row_failure(&entries[0], &error)?);
                return Ok(());
            }
            Err(_) => {
                let mut outcomes = Vec::with_capacity(entries.len());
                for entry in entries {
                    match store
                        .import_batch(std::slice::from_ref(entry), &self.settings)
                        .await
                    {
                        Ok(outcome) => outcomes.push(outcome),
                        Err(error) => rejected.push(row_failure(entry, &error)?),
                    }
                }
                outcomes
            }
        };
        for mut outcome in outcomes {
            if self.settings.dry_run {
                for key in &outcome.created_keys {
                    let mut hasher = std::hash::DefaultHasher::new();
                    std::hash::Hash::hash(key, &mut hasher);
                    if !self.rehearsed.insert(std::hash::Hasher::finish(&hasher)) {
                        outcome.created -= 1;
                        outcome.updated += 1;
                    }
                }
            }
            add(&mut self.job.progress, &outcome);
            rejected.extend(outcome.rejected);
        }
        Ok(())
    }
}

/// A task aborted when its handle is dropped: an import's reader never outlives the run.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Batches cleansed while the one before is being written.
const PREPARED_AHEAD: usize = 2;

/// A plugin batch, cleansed and split into transactions.
struct Prepared {
    rows_read: u64,
    /// The worker's offset in the source file when the batch arrived.
    bytes_read: Option<u64>,
    chunks: Vec<Vec<ImportEntry>>,
    rejected: Vec<RejectedRow>,
}

/// The import's first stage: takes the worker's batches and cleanses them.
struct Reader {
    jobs: Arc<Jobs>,
    channel: String,
    source: PathBuf,
    cancel: tokio::sync::watch::Receiver<bool>,
}

impl Reader {
    async fn run(mut self, mut worker: WorkerRun, prepared: mpsc::Sender<Prepared>) -> Ending {
        loop {
            let event = tokio::select! {
                event = worker.next() => Some(event),
                _ = self.cancel.wait_for(|cancelled| *cancelled) => None,
            };
            let Some(event) = event else {
                worker.kill().await;
                return Ending::Cancelled;
            };
            match event {
                Ok(Some(Event::Batch(batch))) => {
                    let bytes_read = worker
                        .pid()
                        .and_then(|pid| reader_position(pid, &self.source));
                    let jobs = Arc::clone(&self.jobs);
                    let channel = self.channel.clone();
                    // Cleansing is CPU work (NFKC, phone and date parsing): off the async workers.
                    let cleansed =
                        tokio::task::spawn_blocking(move || cleanse(&jobs, &channel, batch)).await;
                    let mut batch = match cleansed {
                        Ok(batch) => batch,
                        Err(error) => {
                            worker.kill().await;
                            return Ending::Failed(format!("cleansing a batch failed: {error}"));
                        }
                    };
                    batch.bytes_read = bytes_read;
                    if prepared.send(batch).await.is_err() {
                        // The writer stopped (it failed or saw the cancel) and says why.
                        worker.kill().await;
                        return Ending::Cancelled;
                    }
                }
                Ok(Some(Event::Info(_) | Event::Done(_))) => {}
                Ok(None) => return Ending::Finished,
                Err(error) => return Ending::Failed(error.to_string()),
            }
        }
    }
}

/// Cleanses a plugin batch: rows to entries (or rejections), split into transactions.
fn cleanse(jobs: &Jobs, channel: &str, batch: RecordBatch) -> Prepared {
    let rules = RecordRules {
        cleanser: &jobs.cleanser,
        contact: &jobs.contact,
        channel,
    };
    let rows_read = (batch.records.len() + batch.errors.len()) as u64;
    let mut rejected: Vec<RejectedRow> =
        batch.errors.into_iter().map(rejected_from_plugin).collect();
    let mut entries = Vec::with_capacity(batch.records.len());
    for record in batch.records {
        match rules.entry(record) {
            Ok(entry) => entries.push(entry),
            Err(row) => rejected.push(row),
        }
    }
    Prepared {
        rows_read,
        bytes_read: None,
        chunks: distinct_key_chunks(entries),
        rejected,
    }
}

/// How far the worker has read into `source`: the offset of its open file
/// description (`/proc/<pid>/fdinfo`). `None` where that cannot be seen (not
/// Linux, the file already closed, a plugin that reads the whole file at once).
fn reader_position(pid: u32, source: &std::path::Path) -> Option<u64> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    for fd in fds.flatten() {
        if std::fs::read_link(fd.path()).ok().as_deref() != Some(source) {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
        .ok()?;
        return info
            .lines()
            .find_map(|line| line.strip_prefix("pos:"))
            .and_then(|pos| pos.trim().parse().ok());
    }
    None
}

fn add(progress: &mut JobProgress, outcome: &tagd_store::ImportOutcome) {
    progress.created += outcome.created;
    progress.updated += outcome.updated;
    progress.unchanged += outcome.unchanged;
    progress.tags_added += outcome.tags_added;
    progress.purchases_added += outcome.purchases_added;
    progress.interactions_added += outcome.interactions_added;
}

/// A row the store refused: the row is rejected with the store's reason,
/// unless the failure is the database's rather than the row's.
fn row_failure(entry: &ImportEntry, error: &tagd_store::StoreError) -> JobResult<RejectedRow> {
    use tagd_store::StoreError;
    match error {
        StoreError::Invalid(domain) => {
            let (field, reason) = domain.parts();
            Ok(RejectedRow::new(
                entry.row,
                strip_entry_prefix(field),
                reason,
                "",
            ))
        }
        StoreError::AlreadyExists(reason) | StoreError::FailedPrecondition(reason) => Ok(
            RejectedRow::new(entry.row, "", reason.clone(), &entry.key.external_id),
        ),
        StoreError::NotFound { .. } => Ok(RejectedRow::new(entry.row, "", error.to_string(), "")),
        other => Err(JobError::Worker(format!("the database failed: {other}"))),
    }
}

/// "entries[0].customer.name" → "name": the store names the field by its request path.
fn strip_entry_prefix(field: &str) -> &str {
    let field = field.strip_prefix("entries[0].").unwrap_or(field);
    field.strip_prefix("customer.").unwrap_or(field)
}

/// Splits rows into transactions of at most [`ROWS_PER_TRANSACTION`] whose keys
/// are distinct: a row repeating an earlier key starts a new transaction, so it
/// updates the customer the earlier row created.
fn distinct_key_chunks(entries: Vec<ImportEntry>) -> Vec<Vec<ImportEntry>> {
    let mut chunks = Vec::new();
    let mut current: Vec<ImportEntry> = Vec::new();
    let mut keys = HashSet::new();
    for entry in entries {
        if current.len() >= ROWS_PER_TRANSACTION || keys.contains(&entry.key) {
            chunks.push(std::mem::take(&mut current));
            keys.clear();
        }
        keys.insert(entry.key.clone());
        current.push(entry);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use tagd_core::customers::{CustomerFields, ExternalId};

    use super::*;

    fn entry(row: u64, id: &str) -> ImportEntry {
        ImportEntry {
            row,
            key: ExternalId {
                channel: "crm".to_owned(),
                external_id: id.to_owned(),
            },
            fields: CustomerFields::default(),
            tags: Vec::new(),
            purchases: Vec::new(),
            interactions: Vec::new(),
            link_to: None,
        }
    }

    #[test]
    fn a_repeated_key_starts_a_new_transaction() {
        let chunks = distinct_key_chunks(vec![
            entry(1, "a"),
            entry(2, "b"),
            entry(3, "a"),
            entry(4, "c"),
        ]);
        let rows: Vec<Vec<u64>> = chunks
            .iter()
            .map(|chunk| chunk.iter().map(|e| e.row).collect())
            .collect();
        assert_eq!(rows, vec![vec![1, 2], vec![3, 4]]);
    }

    #[test]
    fn store_field_paths_are_reported_as_record_fields() {
        assert_eq!(strip_entry_prefix("entries[0].customer.name"), "name");
        assert_eq!(strip_entry_prefix("tags[1]"), "tags[1]");
    }
}
