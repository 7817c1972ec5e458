//! The job registry: starts jobs, keeps a watch channel per running job (so
//! any number of `WatchJob` streams follow it), cancels, and answers for
//! finished jobs from the store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use tagd_cleanse::{CleanseOptions, Cleanser};
use tagd_core::customers::ContactRules;
use tagd_core::jobs::{Job, JobKind, JobState, RejectedRow};
use tagd_core::paging::PageRequest;
use tagd_plugin_api::host::Limits;
use tagd_store::{NewJob, Page, Store};
use tokio::sync::watch;

use crate::error::{JobError, JobResult};
use crate::importers::{Importer, ImporterCache};

/// Where plugins and import files are, and how workers run.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Plugin libraries (`lib*.so`) are found here.
    pub plugins_dir: PathBuf,
    /// Files the server may import; a source path must resolve below one of them.
    pub import_dirs: Vec<PathBuf>,
    /// Where uploaded sources are kept while their import runs.
    pub upload_dir: PathBuf,
    /// The largest upload accepted.
    pub max_upload_bytes: u64,
    /// The worker: this program with `worker_args`, then the plugin and its arguments.
    pub worker_program: PathBuf,
    pub worker_args: Vec<String>,
    pub limits: Limits,
    /// ISO region of phone numbers written without a country code.
    pub phone_region: String,
}

impl JobsConfig {
    pub(crate) fn worker_command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.worker_program);
        command.args(&self.worker_args);
        command
    }
}

/// What a running job's owner holds: the progress it publishes and the cancel signal it obeys.
pub(crate) struct RunningJob {
    pub kind: JobKind,
    pub updates: watch::Sender<Job>,
    pub cancel: watch::Sender<bool>,
}

/// How a job's run ended; every runner's `drive` returns one.
pub(crate) enum Ending {
    Finished,
    Cancelled,
    Failed(String),
}

impl Ending {
    /// The job's final state and error text.
    pub(crate) fn outcome(self) -> (JobState, String) {
        match self {
            Ending::Finished => (JobState::Succeeded, String::new()),
            Ending::Cancelled => (JobState::Cancelled, String::new()),
            Ending::Failed(error) => (JobState::Failed, error),
        }
    }
}

/// The server's jobs. Share it behind an `Arc`.
pub struct Jobs {
    pub(crate) store: Arc<Store>,
    pub(crate) config: JobsConfig,
    pub(crate) cleanser: Cleanser,
    pub(crate) contact: ContactRules,
    pub(crate) importers: ImporterCache,
    running: Mutex<HashMap<String, Arc<RunningJob>>>,
    /// Held while a job of an exclusive kind is checked, recorded and registered:
    /// without it two starts could both see no such job running and both begin.
    exclusive_start: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Jobs {
    pub fn new(store: Arc<Store>, config: JobsConfig) -> JobResult<Self> {
        let cleanser = Cleanser::new(CleanseOptions {
            phone_region: config.phone_region.clone(),
            // Identities must match what CreateCustomer stores: the domain is lower-cased, not the local part.
            lowercase_email_local_part: false,
            ..CleanseOptions::default()
        })
        .map_err(|error| JobError::FailedPrecondition(error.to_string()))?;
        let contact =
            ContactRules::for_region(&config.phone_region).map_err(JobError::FailedPrecondition)?;
        Ok(Self {
            store,
            config,
            cleanser,
            contact,
            importers: ImporterCache::default(),
            running: Mutex::new(HashMap::new()),
            exclusive_start: tokio::sync::Mutex::new(()),
        })
    }

    /// Marks jobs a previous server left running as failed; call once at start-up.
    pub async fn recover(&self) -> JobResult<usize> {
        Ok(self.store.fail_interrupted_jobs().await?)
    }

    pub async fn importers(&self) -> Vec<Importer> {
        self.importers.discover(&self.config).await
    }

    /// Records a new job and registers it as running. A job of an exclusive kind
    /// ([`JobKind::is_exclusive_maintenance`]) is refused, naming the other, while
    /// one of any exclusive kind runs; check and registration happen under one lock,
    /// so of two simultaneous starts exactly one wins.
    pub(crate) async fn begin(&self, new: NewJob) -> JobResult<(Job, Arc<RunningJob>)> {
        let exclusive = new.kind.is_exclusive_maintenance();
        let _start = if exclusive {
            Some(self.exclusive_start.lock().await)
        } else {
            None
        };
        if exclusive && let Some((id, kind)) = self.running_exclusive() {
            return Err(JobError::FailedPrecondition(format!(
                "a {} job is already running (job {id}); jobs that rewrite customers \
                 across the store run one at a time: wait for it to finish or cancel it",
                kind.as_str()
            )));
        }
        let job = self.store.create_job(new).await?;
        let running = self.register(&job);
        Ok((job, running))
    }

    /// A running job of an exclusive kind, if there is one: its id and kind.
    fn running_exclusive(&self) -> Option<(String, JobKind)> {
        self.running_jobs()
            .iter()
            .find(|(_, running)| running.kind.is_exclusive_maintenance())
            .map(|(id, running)| (id.clone(), running.kind))
    }

    fn register(&self, job: &Job) -> Arc<RunningJob> {
        let (updates, _) = watch::channel(job.clone());
        let (cancel, _) = watch::channel(false);
        let running = Arc::new(RunningJob {
            kind: job.kind,
            updates,
            cancel,
        });
        self.running_jobs()
            .insert(job.id.clone(), Arc::clone(&running));
        running
    }

    /// The last step of every run: records how the job ended, sends that to its watchers
    /// (the job as it stands when the record cannot be written) and forgets the running job.
    pub(crate) async fn conclude(
        &self,
        running: &RunningJob,
        job: &mut Job,
        state: JobState,
        error: String,
    ) {
        match self
            .store
            .finish_job(&job.id, state, &job.progress, &error)
            .await
        {
            Ok(finished) => {
                running.updates.send_replace(finished);
            }
            Err(store_error) => {
                tracing::error!(job = %job.id, kind = job.kind.as_str(), %store_error, "cannot record the end of a job");
                job.state = state;
                job.error = error;
                running.updates.send_replace(job.clone());
            }
        }
        self.unregister(&job.id);
    }

    pub(crate) fn unregister(&self, job_id: &str) {
        self.running_jobs().remove(job_id);
    }

    fn running_jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<RunningJob>>> {
        // The map holds no invariant a panic could break halfway.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn running_job(&self, job_id: &str) -> Option<Arc<RunningJob>> {
        self.running_jobs().get(job_id).cloned()
    }

    pub async fn get(&self, job_id: &str) -> JobResult<Job> {
        if let Some(running) = self.running_job(job_id) {
            return Ok(running.updates.borrow().clone());
        }
        Ok(self.store.get_job(job_id).await?)
    }

    pub async fn list(&self, page: &PageRequest) -> JobResult<Page<Job>> {
        let mut page = self.store.list_jobs(page).await?;
        // Running jobs' stored progress lags; show the live one.
        for job in &mut page.items {
            if let Some(running) = self.running_job(&job.id) {
                *job = running.updates.borrow().clone();
            }
        }
        Ok(page)
    }

    /// The job's updates: the current state at once, then each change; the
    /// sender closes when the job finishes.
    pub async fn watch(&self, job_id: &str) -> JobResult<watch::Receiver<Job>> {
        if let Some(running) = self.running_job(job_id) {
            return Ok(running.updates.subscribe());
        }
        let job = self.store.get_job(job_id).await?;
        // A finished job: one value, then the stream ends.
        let (_, receiver) = watch::channel(job);
        Ok(receiver)
    }

    /// Asks a running job to stop; returns it as it is now.
    pub async fn cancel(&self, job_id: &str) -> JobResult<Job> {
        match self.running_job(job_id) {
            Some(running) => {
                running.cancel.send_replace(true);
                Ok(running.updates.borrow().clone())
            }
            None => {
                let job = self.store.get_job(job_id).await?;
                Err(JobError::FailedPrecondition(format!(
                    "job {} already finished ({})",
                    job.id, job.state
                )))
            }
        }
    }

    /// Undoes a finished import (see `Store::revert_import`).
    pub async fn revert_import(
        &self,
        job_id: &str,
        actor: &str,
    ) -> JobResult<(Job, tagd_store::RevertOutcome)> {
        if self.running_job(job_id).is_some() {
            return Err(JobError::FailedPrecondition(format!(
                "job {job_id} is still running; cancel it first"
            )));
        }
        Ok(self.store.revert_import(job_id, actor).await?)
    }

    pub async fn import_report(
        &self,
        job_id: &str,
        page: &PageRequest,
    ) -> JobResult<Page<RejectedRow>> {
        Ok(self.store.rejected_rows(job_id, page).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn jobs(dir: &tempfile::TempDir) -> Arc<Jobs> {
        let url = format!("sqlite://{}", dir.path().join("tagd.db").display());
        let store = Arc::new(
            Store::open(
                &url,
                tagd_store::PoolOptions {
                    size: 2,
                    ..Default::default()
                },
            )
            .await
            .unwrap(),
        );
        let config = JobsConfig {
            plugins_dir: dir.path().to_owned(),
            import_dirs: Vec::new(),
            upload_dir: dir.path().to_owned(),
            max_upload_bytes: 1,
            worker_program: PathBuf::from("/bin/false"),
            worker_args: Vec::new(),
            limits: Limits::default(),
            phone_region: "CN".to_owned(),
        };
        Arc::new(Jobs::new(store, config).unwrap())
    }

    fn new_job(kind: JobKind) -> NewJob {
        NewJob {
            kind,
            created_by: "ops".to_owned(),
            subject: String::new(),
            dry_run: true,
            params: "{}".to_owned(),
            bytes_total: 0,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_simultaneous_maintenance_starts_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = jobs(&dir).await;
        let starts: Vec<_> = (0..8)
            .map(|_| {
                let jobs = Arc::clone(&jobs);
                tokio::spawn(async move { jobs.begin(new_job(JobKind::Cleanse)).await })
            })
            .collect();
        let mut won = Vec::new();
        let mut refused = Vec::new();
        for start in starts {
            match start.await.unwrap() {
                Ok((job, _)) => won.push(job.id),
                Err(error) => refused.push(error.to_string()),
            }
        }
        assert_eq!(won.len(), 1, "{refused:?}");
        assert_eq!(refused.len(), 7);
        assert!(
            refused.iter().all(|message| message.contains(&won[0])),
            "{refused:?}"
        );

        // Imports are not maintenance: they start beside it.
        jobs.begin(new_job(JobKind::Import)).await.unwrap();
        // Once it ends, the next may start.
        jobs.unregister(&won[0]);
        jobs.begin(new_job(JobKind::Cleanse)).await.unwrap();
    }
}
