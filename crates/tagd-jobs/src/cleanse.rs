//! Cleanse jobs: every customer read in id order, a page at a time (constant
//! memory however many there are), standardised by `tagd-cleanse`, and — unless
//! it is a dry run — the changed ones written back in one transaction per page
//! with their field history; per-field counts and every value that could not be
//! standardised go to the job's report.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tagd_cleanse::{CleanseOptions, CleanseReport, Cleansed, Cleanser, Problem};
use tagd_core::DomainError;
use tagd_core::customers::{Customer, CustomerField};
use tagd_core::jobs::{CleanseFieldCounts, Job, JobKind, JobState, UnfixableValue};
use tagd_core::paging::PageRequest;
use tagd_store::{CleanseConflict, CleanseSettings, CleanseUpdate, NewJob, Page};

use crate::error::{JobError, JobResult};
use crate::registry::{Ending, Jobs, RunningJob};

/// Customers read, cleansed and written per transaction.
const CUSTOMERS_PER_BATCH: usize = 500;
/// Progress and counts are saved at most this often (watchers see every batch).
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The fields a cleanse standardises (or, for birthdays, checks); the others
/// (gender, channel, identities, attributes) have no cleansing rule.
pub const CLEANSED_FIELDS: [CustomerField; 9] = [
    CustomerField::Name,
    CustomerField::Birthday,
    CustomerField::Phones,
    CustomerField::Emails,
    CustomerField::Province,
    CustomerField::City,
    CustomerField::District,
    CustomerField::AddressDetail,
    CustomerField::Company,
];

#[derive(Debug, Clone, Default)]
pub struct CleanseRequest {
    /// Report what would change; write nothing.
    pub dry_run: bool,
    /// Fold Gmail addresses (dots and "+tags" dropped, googlemail.com → gmail.com).
    pub fold_gmail: bool,
    /// Lower-case the part of an email before '@' too.
    pub lowercase_email_local_part: bool,
    /// Update-mask paths of the fields to cleanse (`address` names its four parts);
    /// empty for all of [`CLEANSED_FIELDS`].
    pub fields: Vec<String>,
}

/// A cleanse job's report: per-field counts and one page of the values it left as they were.
#[derive(Debug, Clone)]
pub struct CleanseReportPage {
    pub job: Job,
    /// Fields something happened to, in field order.
    pub fields: Vec<CleanseFieldCounts>,
    pub unfixable: Page<UnfixableValue>,
}

/// The fields a request names, checked against what a cleanse can do.
fn selected_fields(paths: &[String]) -> JobResult<BTreeSet<CustomerField>> {
    if paths.is_empty() {
        return Ok(CLEANSED_FIELDS.into_iter().collect());
    }
    let known: Vec<&str> = CLEANSED_FIELDS.iter().map(|f| f.path()).collect();
    let mut selected = BTreeSet::new();
    for (index, path) in paths.iter().enumerate() {
        let invalid =
            |why: String| JobError::Invalid(DomainError::invalid(format!("fields[{index}]"), why));
        let fields = CustomerField::from_path(path.trim())
            .ok_or_else(|| invalid(format!("unknown field {path:?}")))?;
        for field in fields {
            if !CLEANSED_FIELDS.contains(field) {
                return Err(invalid(format!(
                    "{path:?} has no cleansing rule; choose from {}, address",
                    known.join(", ")
                )));
            }
            selected.insert(*field);
        }
    }
    Ok(selected)
}

/// Undoes what a cleanse did to fields the caller did not choose.
fn restrict(
    mut cleansed: Cleansed,
    original: &Customer,
    selected: &BTreeSet<CustomerField>,
) -> Cleansed {
    for field in CustomerField::ALL {
        if !selected.contains(&field) {
            cleansed.fields.set(field, &original.fields);
        }
    }
    cleansed
        .changes
        .retain(|change| selected.contains(&change.field));
    cleansed
        .problems
        .retain(|problem| selected.contains(&problem.field));
    cleansed
}

/// Turns what the store would not write into problems of the record, so that the
/// record, its counts and the report say what was really written.
fn apply_conflict(cleansed: &mut Cleansed, original: &Customer, conflict: &CleanseConflict) {
    match conflict.field {
        Some(field) => {
            // Report the stored value that standardised to the colliding one.
            let raw = cleansed
                .changes
                .iter()
                .find(|change| {
                    change.field == field && change.new.split(", ").any(|new| new == conflict.value)
                })
                .map_or_else(|| conflict.value.clone(), |change| change.old.clone());
            cleansed.fields.set(field, &original.fields);
            cleansed.changes.retain(|change| change.field != field);
            cleansed.problems.push(Problem {
                field,
                value: raw,
                reason: conflict.reason.clone(),
            });
        }
        None => {
            let field = cleansed
                .changes
                .first()
                .map_or(CustomerField::Name, |change| change.field);
            cleansed.fields.clone_from(&original.fields);
            cleansed.changes.clear();
            cleansed.problems.push(Problem {
                field,
                value: String::new(),
                reason: conflict.reason.clone(),
            });
        }
    }
}

impl Jobs {
    /// Checks the request, records the job (refused while another cleanse or dedupe
    /// runs) and starts it; returns at once.
    pub async fn start_cleanse(
        self: &Arc<Self>,
        request: CleanseRequest,
        actor: &str,
    ) -> JobResult<Job> {
        let fields = selected_fields(&request.fields)?;
        let cleanser = Cleanser::new(CleanseOptions {
            phone_region: self.config.phone_region.clone(),
            fold_gmail: request.fold_gmail,
            lowercase_email_local_part: request.lowercase_email_local_part,
            ..CleanseOptions::default()
        })
        .map_err(|error| JobError::FailedPrecondition(error.to_string()))?;
        let field_paths: Vec<&str> = fields.iter().map(|f| f.path()).collect();
        let params = serde_json::json!({
            "dry_run": request.dry_run,
            "fold_gmail": request.fold_gmail,
            "lowercase_email_local_part": request.lowercase_email_local_part,
            "fields": field_paths,
        });
        let subject = if fields.len() == CLEANSED_FIELDS.len() {
            "every customer: all fields".to_owned()
        } else {
            format!("every customer: {}", field_paths.join(", "))
        };
        let (job, running) = self
            .begin(NewJob {
                kind: JobKind::Cleanse,
                created_by: actor.to_owned(),
                subject,
                dry_run: request.dry_run,
                params: params.to_string(),
                // Counted by the run itself: a count of millions of rows is slow on
                // InnoDB, and StartCleanse should answer at once.
                bytes_total: 0,
            })
            .await?;
        let run = CleanseRun {
            jobs: Arc::clone(self),
            running,
            settings: CleanseSettings {
                job_id: job.id.clone(),
                actor: actor.to_owned(),
                dry_run: request.dry_run,
            },
            job: job.clone(),
            cleanser,
            fields,
            report: CleanseReport::new(),
            unfixable_seq: 0,
        };
        tokio::spawn(run.run());
        Ok(job)
    }

    /// A cleanse job's per-field counts and a page of the values it left as they were.
    pub async fn cleanse_report(
        &self,
        job_id: &str,
        page: &PageRequest,
    ) -> JobResult<CleanseReportPage> {
        let job = self.get(job_id).await?;
        if job.kind != JobKind::Cleanse {
            return Err(JobError::FailedPrecondition(format!(
                "job {} is not a cleanse (its kind is {}); GetCleanseReport reports cleanse jobs only",
                job.id,
                job.kind.as_str()
            )));
        }
        let fields = self.store.cleanse_counts(job_id).await?;
        let unfixable = self.store.cleanse_unfixable(job_id, page).await?;
        Ok(CleanseReportPage {
            job,
            fields,
            unfixable,
        })
    }
}

/// One cleanse in progress.
struct CleanseRun {
    jobs: Arc<Jobs>,
    running: Arc<RunningJob>,
    job: Job,
    settings: CleanseSettings,
    cleanser: Cleanser,
    fields: BTreeSet<CustomerField>,
    /// Counts so far; unfixable values are moved to the store batch by batch.
    report: CleanseReport,
    unfixable_seq: u64,
}

impl CleanseRun {
    async fn run(mut self) {
        let (state, mut error) = self.drive().await.outcome();
        let job_id = self.job.id.clone();
        if let Err(store_error) = self.save_counts().await {
            tracing::error!(job = %job_id, %store_error, "cannot save the cleanse report");
            if error.is_empty() {
                error = format!("cannot save the report: {store_error}");
            }
        }
        let state = if error.is_empty() {
            state
        } else {
            JobState::Failed
        };
        self.jobs
            .conclude(&self.running, &mut self.job, state, error)
            .await;
        tracing::info!(job = %job_id, state = %state, customers = self.job.progress.rows_read, "cleanse finished");
    }

    async fn drive(&mut self) -> Ending {
        // The customers to scan: with the scan's position this gives the ETA.
        match self.jobs.store.count_customers().await {
            Ok(total) => self.job.progress.bytes_total = total,
            Err(error) => return Ending::Failed(error.to_string()),
        }
        self.publish();
        let mut after: Option<String> = None;
        let mut last_saved = Instant::now();
        loop {
            // Checked between batches: a batch is short, and stopping inside one
            // would leave nothing better than stopping after it.
            if *self.running.cancel.borrow() {
                return Ending::Cancelled;
            }
            let page = match self
                .jobs
                .store
                .customers_after(after.as_deref(), CUSTOMERS_PER_BATCH)
                .await
            {
                Ok(page) => page,
                Err(error) => return Ending::Failed(error.to_string()),
            };
            let Some(last) = page.last() else {
                return Ending::Finished;
            };
            after = Some(last.id.clone());
            if let Err(error) = self.take(page).await {
                return Ending::Failed(error.to_string());
            }
            self.publish();
            if last_saved.elapsed() >= SAVE_EVERY {
                last_saved = Instant::now();
                if let Err(error) = self.save_progress().await {
                    tracing::warn!(job = %self.job.id, %error, "cannot save cleanse progress");
                }
            }
        }
    }

    fn publish(&mut self) {
        self.job.updated_at = chrono::Utc::now().naive_utc();
        self.running.updates.send_replace(self.job.clone());
    }

    async fn save_progress(&self) -> JobResult<()> {
        self.jobs
            .store
            .save_job_progress(&self.job.id, &self.job.progress)
            .await?;
        self.save_counts().await
    }

    async fn save_counts(&self) -> JobResult<()> {
        let counts: Vec<CleanseFieldCounts> = self
            .report
            .fields
            .iter()
            .map(|(field, tally)| CleanseFieldCounts {
                field: *field,
                changed: tally.changed,
                duplicates_removed: tally.duplicates_removed,
                unfixable: tally.unfixable,
            })
            .collect();
        Ok(self
            .jobs
            .store
            .save_cleanse_counts(&self.job.id, &counts)
            .await?)
    }

    /// Cleanses one page of customers, writes (or rehearses) the changed ones, and
    /// counts and reports what happened.
    async fn take(&mut self, page: Vec<Customer>) -> JobResult<()> {
        let mut cleansed: Vec<Cleansed> = page
            .iter()
            .map(|customer| {
                let done = self.cleanser.cleanse(customer.fields.clone());
                restrict(done, customer, &self.fields)
            })
            .collect();
        let updates: Vec<CleanseUpdate> = page
            .iter()
            .zip(&cleansed)
            .filter(|(_, done)| done.is_changed())
            .map(|(customer, done)| CleanseUpdate {
                customer_id: customer.id.clone(),
                before: customer.fields.clone(),
                after: done.fields.clone(),
            })
            .collect();
        let outcome = self
            .jobs
            .store
            .cleanse_batch(&updates, &self.settings)
            .await?;
        let mut conflicts: HashMap<&str, Vec<&CleanseConflict>> = HashMap::new();
        for conflict in &outcome.conflicts {
            conflicts
                .entry(conflict.customer_id.as_str())
                .or_default()
                .push(conflict);
        }
        let progress = &mut self.job.progress;
        for (customer, done) in page.iter().zip(&mut cleansed) {
            for conflict in conflicts.get(customer.id.as_str()).into_iter().flatten() {
                apply_conflict(done, customer, conflict);
            }
            self.report.add(&customer.id, done);
            progress.rows_read += 1;
            if done.is_changed() {
                progress.updated += 1;
            } else {
                progress.unchanged += 1;
            }
            progress.rejected += done.problems.len() as u64;
        }
        progress.bytes_read = progress.rows_read;
        let unfixable: Vec<UnfixableValue> = self
            .report
            .take_unfixable()
            .into_iter()
            .map(|value| {
                UnfixableValue::new(value.customer_id, value.field, &value.value, value.reason)
            })
            .collect();
        self.jobs
            .store
            .add_cleanse_unfixable(&self.job.id, self.unfixable_seq, &unfixable)
            .await?;
        self.unfixable_seq += unfixable.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDateTime;
    use tagd_core::customers::{Address, CustomerFields};

    use super::*;

    fn customer(fields: CustomerFields) -> Customer {
        Customer {
            id: "c1".to_owned(),
            fields,
            created_at: NaiveDateTime::default(),
            updated_at: NaiveDateTime::default(),
        }
    }

    fn cleanser() -> Cleanser {
        Cleanser::new(CleanseOptions::default()).unwrap()
    }

    #[test]
    fn fields_are_chosen_by_update_mask_path() {
        assert_eq!(selected_fields(&[]).unwrap().len(), CLEANSED_FIELDS.len());
        let chosen = selected_fields(&["phones".to_owned(), "address".to_owned()]).unwrap();
        assert!(chosen.contains(&CustomerField::Phones));
        assert!(chosen.contains(&CustomerField::City));
        assert!(!chosen.contains(&CustomerField::Name));
        let error = selected_fields(&["name".to_owned(), "gender".to_owned()]).unwrap_err();
        assert!(error.to_string().starts_with("fields[1]:"), "{error}");
        let error = selected_fields(&["colour".to_owned()]).unwrap_err();
        assert!(error.to_string().contains("unknown field"), "{error}");
    }

    #[test]
    fn fields_not_chosen_are_left_alone() {
        let original = customer(CustomerFields {
            name: " 张  伟 ".into(),
            address: Address {
                province: "北京市".into(),
                ..Address::default()
            },
            ..CustomerFields::default()
        });
        let selected = selected_fields(&["address.province".to_owned()]).unwrap();
        let done = restrict(
            cleanser().cleanse(original.fields.clone()),
            &original,
            &selected,
        );
        assert_eq!(done.fields.name, " 张  伟 ");
        assert_eq!(done.fields.address.province, "北京");
        assert_eq!(done.changes.len(), 1);
    }

    #[test]
    fn a_conflict_keeps_the_field_and_reports_the_stored_value() {
        let original = customer(CustomerFields {
            name: "张 伟 ".into(),
            phones: vec!["138-0013-8000".into()],
            ..CustomerFields::default()
        });
        let mut done = cleanser().cleanse(original.fields.clone());
        apply_conflict(
            &mut done,
            &original,
            &CleanseConflict {
                customer_id: "c1".into(),
                field: Some(CustomerField::Phones),
                value: "+8613800138000".into(),
                reason: "taken".into(),
            },
        );
        assert_eq!(done.fields.phones, vec!["138-0013-8000"]);
        assert_eq!(done.fields.name, "张 伟");
        assert!(done.changes.iter().all(|c| c.field == CustomerField::Name));
        assert_eq!(done.problems.len(), 1);
        assert_eq!(done.problems[0].value, "138-0013-8000");

        apply_conflict(
            &mut done,
            &original,
            &CleanseConflict {
                customer_id: "c1".into(),
                field: None,
                value: String::new(),
                reason: "changed meanwhile".into(),
            },
        );
        assert!(!done.is_changed());
        assert_eq!(done.fields, original.fields);
    }
}
