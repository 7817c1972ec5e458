//! Tagd's storage: the only crate that talks to the database.
//!
//! One Diesel schema and one query body per operation serve SQLite and
//! MySQL/MariaDB: the `with_conn!`/`write_transaction!` macros expand each body
//! once per backend. Every multi-row change runs in one transaction.

mod assign_queue;
mod backfill;
mod checkpoint;
mod cleanse;
mod customer_reads;
mod customers;
mod db;
mod dedupe;
mod error;
mod field_history;
mod ids_in;
mod import_reverts;
mod imports;
mod interactions;
mod jobs;
mod merges;
mod metrics;
mod purchases;
mod removals;
mod rules;
mod schema;
mod segments;
mod tag_stats;
mod tagging;
mod tags;

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

pub use crate::assign_queue::AssignQueue;
pub use crate::cleanse::{CleanseConflict, CleanseOutcome, CleanseSettings, CleanseUpdate};
pub use crate::customers::{CustomerFilter, UpsertEntry, UpsertOutcome, UpsertResult};
pub use crate::db::{DEFAULT_SQLITE_CACHE_MIB, DatabaseUrl, PoolOptions};
pub use crate::dedupe::{Candidate, CandidatePair, QueueOutcome, Resolution};
pub use crate::error::{StoreError, StoreResult};
pub use crate::import_reverts::RevertOutcome;
pub use crate::imports::{ImportEntry, ImportOutcome, ImportSettings, ImportTag};
pub use crate::jobs::{INTERRUPTED, NewJob};
pub use crate::merges::{MergeFilter, MergeRecord, MergeRequest};
pub use crate::removals::TakenRemovals;
pub use crate::rules::{
    BuyerTotal, InstalledTemplate, RuleBatch, RulePatch, RuleRecord, RuleRun, RuleTarget,
    RunCounts, RunState, RunTrigger, TemplateInstall, TemplateRuleSpec,
};
pub use crate::segments::{
    ActivityTable, AssignmentName, CatalogueStamp, ChangeKey, LiveAssignment, NewSegment,
    PurchaseLine, SegmentPatch,
};
pub use crate::tag_stats::{TagStats, TagStatsReport, TagStatsScope};
pub use crate::tagging::AssignCall;
pub use crate::tags::{CategoryPatch, DeleteOutcome, NewCategory, NewTag, TagPatch};
pub use tagd_core::paging::PageRequest;

/// A page of rows and the token for the next one ("" on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

/// The storage handle: a connection pool on one backend. Cheap to share behind an `Arc`.
pub struct Store {
    pool: db::Pool,
    /// Held by every write transaction on SQLite; `None` on MySQL.
    write_lock: Option<Mutex<()>>,
    backend: &'static str,
    /// Write transactions committed by this process: the segment index
    /// catches up before answering when it moved (read-your-writes).
    writes: AtomicU64,
    /// Customers this process deleted or brought back (delete, merge,
    /// unmerge, import revert): such a change may leave no change row, so the
    /// segment index reloads them from here.
    removals: removals::RemovalJournal,
    /// Folds SQLite's log into the database file off the commit path; `None` on MySQL.
    _checkpointer: Option<checkpoint::Checkpointer>,
    /// Combines concurrent GetCustomer reads into one statement; `None` on SQLite.
    customer_reads: Option<customer_reads::CustomerReads>,
}

impl Store {
    /// Opens a pool on `url` and applies pending migrations.
    pub async fn open(url: &str, pool: PoolOptions) -> StoreResult<Self> {
        let url = DatabaseUrl::parse(url)?;
        db::migrate(&url).await?;
        let pool = db::open_pool(&url, pool)?;
        let customer_reads = match &pool {
            db::Pool::Mysql(pool) => Some(customer_reads::CustomerReads::start(pool.clone())),
            db::Pool::Sqlite(_) => None,
        };
        let mut store = Self {
            write_lock: matches!(url, DatabaseUrl::Sqlite(_)).then(|| Mutex::new(())),
            backend: url.backend_name(),
            pool,
            writes: AtomicU64::new(0),
            removals: removals::RemovalJournal::default(),
            _checkpointer: None,
            customer_reads,
        };
        store.ping().await?;
        // Started once the pool's first connection has opened the log.
        if let DatabaseUrl::Sqlite(path) = &url {
            store._checkpointer = Some(
                checkpoint::Checkpointer::start(path)
                    .map_err(|error| StoreError::Connect(error.to_string()))?,
            );
        }
        store.backfill().await?;
        Ok(store)
    }

    /// Applies pending migrations and fills in the columns they leave to the
    /// application; returns the versions applied.
    pub async fn migrate(url: &str) -> StoreResult<Vec<String>> {
        let applied = db::migrate(&DatabaseUrl::parse(url)?).await?;
        Self::open(
            url,
            PoolOptions {
                size: 1,
                ..PoolOptions::default()
            },
        )
        .await?;
        Ok(applied)
    }

    /// How many write transactions this process has committed so far.
    pub fn write_generation(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }

    pub(crate) fn note_write(&self) {
        self.writes.fetch_add(1, Ordering::AcqRel);
    }

    /// Moves with every committed call of this process that deletes customers
    /// or brings them back: see `removing_transaction!`.
    pub fn removal_generation(&self) -> u64 {
        self.removals.generation()
    }

    /// The customers deleted or brought back by this process since the last
    /// take (for the segment index to reload).
    pub fn take_removals(&self) -> TakenRemovals {
        self.removals.take()
    }

    pub(crate) fn note_removals(&self, customer_ids: impl IntoIterator<Item = String>) {
        self.removals.note(customer_ids);
    }

    /// "sqlite" or "mysql".
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Closes pooled connections idle for longer than `max_idle`, before the
    /// server (MySQL's `wait_timeout`) or a network device drops them unseen.
    pub fn prune_idle_connections(&self, max_idle: std::time::Duration) -> usize {
        match &self.pool {
            db::Pool::Sqlite(pool) => pool
                .retain(|_, metrics| metrics.last_used() < max_idle)
                .removed
                .len(),
            db::Pool::Mysql(pool) => pool
                .retain(|_, metrics| metrics.last_used() < max_idle)
                .removed
                .len(),
        }
    }

    /// Checks that a connection can be had and used.
    pub async fn ping(&self) -> StoreResult<()> {
        use diesel_async::SimpleAsyncConnection as _;
        db::with_conn!(self, |conn| conn.batch_execute("SELECT 1").await?);
        Ok(())
    }
}
