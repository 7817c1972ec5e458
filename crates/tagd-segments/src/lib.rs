//! Segments without tonic: the segment index built from the store at
//! start-up and kept in step with every server's writes, the reference
//! evaluator it falls back to, and the rows of an export.
//!
//! # How the index stays in step
//!
//! - **Start-up**: every customer with its live assignments is loaded
//!   ([`Segments::start`]).
//! - **Following**: every `poll_interval` (200 ms by default) the follower
//!   reads the `tag_history` rows and the customers changed after the last
//!   ones it applied, in (time, id) order and pages of 5,000 — whichever
//!   server wrote them — and reloads each customer they name (a reload
//!   replaces everything the index holds about the customer, so reading a
//!   change twice is harmless). A transaction that commits a little after
//!   its rows' timestamps (or on a server whose clock is a little behind)
//!   lands before that mark: the follower keeps the (time, id) of the rows
//!   applied within [`LAG`] of its last poll and compares their count with
//!   the store's for the same range; only when they differ does it read the
//!   window again and reload the customers of the rows it had not applied.
//! - **Local writes**: the store counts its committed write transactions;
//!   a read first runs a poll when that count moved since the last one, so a
//!   caller sees its own write in the next count. A delete, merge, unmerge or
//!   import revert by this process also journals the customers it removed or
//!   brought back (`Store::take_removals`); the next poll reloads just those.
//!   (Comparing the customer sets instead would read every customer id after
//!   each merge batch of a dedupe run.)
//! - **Activity**: orders and interactions are read the same way, by
//!   (`created_at`, id); each customer they name has its metrics and
//!   categories bought recomputed. Metrics also move with time alone (a
//!   window slides, recency grows): every rebuild recomputes them all, so
//!   they are at most `rebuild_interval` old; a customer's own change or new
//!   activity recomputes its metrics at once.
//! - **Expiry**: assignments leave the index when their expiry passes
//!   (checked on every poll), before the sweeper deletes them.
//! - **Deletes, merges and unmerges by another server** may leave no change
//!   row behind (a deleted customer's history goes with it; an unmerge
//!   restores rows as they were): every `reconcile_interval` (put off while the store is
//!   busy, up to six intervals, since a bulk import keeps the counts apart)
//!   the customers count is compared with the index's and, when they
//!   differ, the index drops customers that no longer exist and loads those
//!   it lacks; every `rebuild_interval` the index is rebuilt from scratch
//!   and swapped in, which bounds how long anything else can stay stale.
//!
//! # What the index answers
//!
//! Tags (presence and values, expiry honoured), gender, age, province,
//! city, district, channel, attributes, the metrics of the configured
//! windows (`orders_<N>d`, `spent_<N>d`, `recency_days`, `avg_order_value`,
//! `last_interaction_days`, `frequency_trend`) and `bought_category`.
//! Conditions that use name, company, `purchases(…)` or `spent(…)` (raw
//! purchase events with their own filters) are answered by the reference
//! path: every customer's facts loaded from the store and run through
//! [`tagd_condition::evaluate`] (slow, and the oracle the index is tested
//! against).

mod catalogue;
mod error;
mod export;
mod facts;
mod state;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime, Utc};
use roaring::RoaringBitmap;
use tagd_condition::{BoundCondition, BoundPredicate, Condition, Predicate};
use tagd_core::segments::{ExportColumn, Segment, SegmentKind};
use tagd_core::{DomainError, text};
use tagd_store::{
    ActivityTable, CatalogueStamp, ChangeKey, LiveAssignment, NewSegment, SegmentPatch, Store,
};
use tokio::sync::Mutex;

use crate::catalogue::{CachedCatalogue, WithAttributes};

pub use crate::catalogue::StoreCatalogue;
pub use crate::error::{SegmentError, SegmentResult};
pub use crate::export::{BOM, MAX_XLSX_MEMBERS, XlsxExport, csv_header, csv_rows};
pub use crate::facts::{facts_of, metric_values};
pub use crate::state::IndexState;

/// How far back each poll reads changes, before its previous poll's start.
pub const LAG: Duration = Duration::from_secs(5);
/// Customers loaded per page when building the index or scanning.
const PAGE: usize = 2_000;
/// Most segments one CompareSegments takes.
pub const MAX_COMPARED: usize = 10;

/// How the index is kept in step.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The windows (days) `orders_<N>d` / `spent_<N>d` may name.
    pub metric_windows_days: Vec<u32>,
    pub poll_interval: Duration,
    pub reconcile_interval: Duration,
    pub rebuild_interval: Duration,
}

/// A member count and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub count: u64,
    pub from_index: bool,
    /// Why the index could not answer ("" when it did, or for a static segment).
    pub fallback_reason: String,
}

/// The members of a segment or condition.
#[derive(Debug, Clone)]
pub enum Members {
    /// Dense customer numbers of the index in `epoch`.
    Dense { members: RoaringBitmap, epoch: u64 },
    /// Customer ids in id order.
    Ids(Vec<String>),
}

impl Members {
    pub fn len(&self) -> u64 {
        match self {
            Members::Dense { members, .. } => members.len(),
            Members::Ids(ids) => ids.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// CompareSegments' answer: sizes, every pair's overlap, everyone's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub sizes: Vec<(String, u64)>,
    pub pairs: Vec<((String, String), u64)>,
    pub all: u64,
}

/// Where the follower is.
#[derive(Debug)]
struct Follower {
    /// When the last successful poll (or the build) started.
    since: NaiveDateTime,
    /// The last tag history row and customer row applied, in (time, id)
    /// order: the next poll reads only rows after them.
    history_mark: Option<ChangeKey>,
    customers_mark: Option<ChangeKey>,
    /// (time, id) of the rows applied within [`LAG`] of the last poll: a
    /// row that commits late (its time before the mark) shows as a
    /// difference between these counts and the store's.
    seen_history: BTreeSet<(NaiveDateTime, u128)>,
    seen_customers: BTreeSet<(NaiveDateTime, u128)>,
    /// The time each customer in `seen_customers` was applied at: a customer row has one
    /// `updated_at`, so a newer change replaces the older entry (two entries for one stored
    /// row would never match the store's count, and every poll would re-read the window).
    seen_customer_at: HashMap<u128, NaiveDateTime>,
    /// Change rows the last poll read: while writers keep the store busy its
    /// customers count runs ahead of the index's, so a periodic reconcile
    /// would read every customer id for nothing (see [`Segments::reconcile_due`]).
    last_poll_rows: usize,
    /// When the customer sets were last compared.
    reconciled_at: std::time::Instant,
    /// Journaled removals taken from the store and not applied yet (a reload
    /// failed): kept for the next try.
    removed: Vec<String>,
    /// The store's journal overflowed since the last applied removal.
    removals_overflowed: bool,
    /// While a rebuild reads: the removals applied to the index it will
    /// replace, which the fresh one may have read before they happened.
    removed_while_rebuilding: Option<RemovedWhileRebuilding>,
    /// The catalogue tables' fingerprint at the last poll: when it moves,
    /// the cached catalogue is read again.
    catalogue_stamp: Option<CatalogueStamp>,
    /// Orders and interactions recorded: whose metrics to recompute.
    purchases: ActivityFollow,
    interactions: ActivityFollow,
}

/// The follower's place in one activity table (rows are only ever added, so
/// like `tag_history` each row is applied once).
#[derive(Debug, Default)]
struct ActivityFollow {
    mark: Option<ChangeKey>,
    /// (time, row id) of the rows applied within [`LAG`] of the last poll.
    seen: BTreeSet<(NaiveDateTime, u128)>,
}

/// See [`Follower::removed_while_rebuilding`].
#[derive(Debug, Default)]
struct RemovedWhileRebuilding {
    customer_ids: Vec<String>,
    /// The journal overflowed: which customers is unknown.
    overflowed: bool,
}

impl Follower {
    fn new(since: NaiveDateTime) -> Self {
        Self {
            since,
            history_mark: None,
            customers_mark: None,
            seen_history: BTreeSet::new(),
            seen_customers: BTreeSet::new(),
            seen_customer_at: HashMap::new(),
            last_poll_rows: 0,
            reconciled_at: std::time::Instant::now(),
            removed: Vec::new(),
            removals_overflowed: false,
            removed_while_rebuilding: None,
            catalogue_stamp: None,
            purchases: ActivityFollow::default(),
            interactions: ActivityFollow::default(),
        }
    }

    /// Notes a customer row applied at `at`, dropping the entry of its older version.
    fn saw_customer(&mut self, at: NaiveDateTime, key: u128) {
        if let Some(before) = self.seen_customer_at.insert(key, at)
            && before != at
        {
            self.seen_customers.remove(&(before, key));
        }
        self.seen_customers.insert((at, key));
    }

    /// Makes the per-customer times agree with `seen_customers` (after a re-read or a prune).
    fn index_seen_customers(&mut self) {
        self.seen_customer_at = self
            .seen_customers
            .iter()
            .map(|(at, key)| (*key, *at))
            .collect();
    }
}

/// The tables whose rows the follower reads as changes.
#[derive(Debug, Clone, Copy)]
enum ChangeTable {
    /// `tag_history`, by (`created_at`, id).
    History,
    /// `customers`, by (`updated_at`, id).
    Customers,
    /// `purchases` or `interactions`, by (`created_at`, id).
    Activity(ActivityTable),
}

/// Change rows read per query of a poll.
const FOLLOW_PAGE: usize = 5_000;

/// A row id as 128 bits: ids are UUIDs (16 bytes kept instead of a
/// 36-character string); anything else is hashed, which at worst makes a
/// late row look already applied until the next rebuild.
fn row_key(id: &str) -> u128 {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if hex.len() == 32
        && let Ok(value) = u128::from_str_radix(&hex, 16)
    {
        return value;
    }
    // FNV-1a, 128-bit.
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in id.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    hash
}

/// How many of `seen` lie between `since` and `upto` (inclusive).
fn seen_between(
    seen: &BTreeSet<(NaiveDateTime, u128)>,
    since: NaiveDateTime,
    upto: Option<&ChangeKey>,
) -> u64 {
    match upto {
        // A mark older than the window (a quiet store) bounds an empty range; `range` would
        // panic on it.
        Some((at, id)) if *at >= since => {
            seen.range((since, 0)..=(*at, row_key(id))).count() as u64
        }
        _ => 0,
    }
}

/// The segment engine: the store, the index and its follower.
pub struct Segments {
    store: Arc<Store>,
    state: RwLock<IndexState>,
    follower: Mutex<Follower>,
    /// The store's write count when the last poll started: read without the
    /// follower's lock, so a count never waits for a poll it does not need.
    synced_generation: AtomicU64,
    /// The store's removal generation as of the journal last applied. Any
    /// poll (the follower's own too) may catch up the write count, so a
    /// removal is owed until this moves past it.
    reconciled_removals: AtomicU64,
    /// The catalogue last read (tags, segments, their bound conditions), so
    /// a count reads nothing from the store; see [`Segments::cached_catalogue`].
    catalogue_cache: RwLock<Option<Arc<CachedCatalogue>>>,
    /// Moved by the follower when the catalogue tables' fingerprint changes
    /// (another server's catalogue write) and on every reconcile tick (which
    /// bounds how long a change the fingerprint misses stays cached).
    catalogue_version: AtomicU64,
    settings: Settings,
}

impl std::fmt::Debug for Segments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segments")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Customer ids read per query when the customer sets are compared.
const RECONCILE_PAGE: usize = 10_000;
/// How many reconcile intervals a busy store may put the comparison off.
const BUSY_RECONCILE_INTERVALS: u32 = 6;

/// Change rows a poll may read before the follower slows down.
const CALM_POLL_ROWS: usize = 2_000;
/// The longest the follower waits between polls however busy the store is.
const BUSIEST_POLL_DELAY: Duration = Duration::from_secs(5);

/// How long to wait after a poll that read `rows` change rows: the configured interval while
/// the store is calm, growing with the rows read (each poll re-reads the whole lag window)
/// up to [`BUSIEST_POLL_DELAY`].
fn poll_delay(interval: Duration, rows: usize) -> Duration {
    if rows <= CALM_POLL_ROWS {
        return interval;
    }
    let factor = u32::try_from(rows / CALM_POLL_ROWS).unwrap_or(u32::MAX);
    interval
        .saturating_mul(factor)
        .min(BUSIEST_POLL_DELAY)
        .max(interval)
}

fn lag() -> chrono::Duration {
    chrono::Duration::from_std(LAG).unwrap_or(chrono::Duration::seconds(5))
}

impl Segments {
    /// Builds the index from the store. Call [`Segments::follow`] (spawned)
    /// to keep it in step.
    pub async fn start(store: Arc<Store>, settings: Settings) -> SegmentResult<Arc<Self>> {
        let generation = store.write_generation();
        let removals = store.removal_generation();
        let started = now();
        let clock = std::time::Instant::now();
        let state = build(&store, 0, &settings.metric_windows_days).await?;
        tracing::info!(
            customers = state.index.customer_count(),
            bytes = state.index.memory_bytes() + state.bookkeeping_bytes(),
            millis = clock.elapsed().as_millis(),
            "segment index built"
        );
        Ok(Arc::new(Self {
            store,
            state: RwLock::new(state),
            follower: Mutex::new(Follower::new(started)),
            synced_generation: AtomicU64::new(generation),
            reconciled_removals: AtomicU64::new(removals),
            catalogue_cache: RwLock::new(None),
            catalogue_version: AtomicU64::new(0),
            settings,
        }))
    }

    fn read(&self) -> RwLockReadGuard<'_, IndexState> {
        // A panic while writing leaves a half-updated index; the next rebuild repairs it.
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, IndexState> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Follows the store until the task is dropped: polls, reconciles and
    /// rebuilds on their intervals. Errors are logged and retried.
    pub async fn follow(self: Arc<Self>) {
        // Not an interval: after a poll that read a large window (a bulk import or cleanse is
        // writing), the next one waits longer, so the follower does not re-read the same
        // recent rows many times a second while they pour in.
        let mut next_poll = tokio::time::Instant::now() + self.settings.poll_interval;
        let mut reconcile = tokio::time::interval(self.settings.reconcile_interval);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rebuild = tokio::time::interval(self.settings.rebuild_interval);
        rebuild.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick of an interval is immediate; the index is fresh.
        reconcile.tick().await;
        rebuild.tick().await;
        loop {
            let result = tokio::select! {
                () = tokio::time::sleep_until(next_poll) => {
                    let polled = self.poll_counting().await;
                    let read = polled.as_ref().map_or(0, |rows| *rows);
                    next_poll = tokio::time::Instant::now()
                        + poll_delay(self.settings.poll_interval, read);
                    polled.map(|_| ())
                }
                _ = reconcile.tick() => {
                    // A catalogue change can hide from the fingerprint (an update stamped
                    // older than the newest row by a server whose clock is behind).
                    self.catalogue_version.fetch_add(1, Ordering::AcqRel);
                    self.reconcile_due().await
                }
                _ = rebuild.tick() => self.rebuild().await,
            };
            if let Err(error) = result {
                tracing::warn!(%error, "segment index follower failed; will retry");
            }
        }
    }

    /// Applies the changes made since the last poll by any server, answering how
    /// many change rows it read; after a removal by this process it also
    /// reloads the customers removed or brought back.
    async fn poll_counting(&self) -> SegmentResult<usize> {
        let mut follower = self.follower.lock().await;
        self.sync_locked(&mut follower).await
    }

    /// A poll, and the removals this process journaled since the last one: a
    /// deleted customer leaves no change row behind, so after a local delete,
    /// merge, unmerge or revert its id comes from the store's journal.
    async fn sync_locked(&self, follower: &mut Follower) -> SegmentResult<usize> {
        if self.removals_reconciled() {
            return self.poll_locked(follower).await;
        }
        let read = self.poll_locked(follower).await?;
        self.apply_removals(follower).await?;
        Ok(read)
    }

    fn removals_reconciled(&self) -> bool {
        self.store.removal_generation() == self.reconciled_removals.load(Ordering::Acquire)
    }

    /// Reloads the customers the store journaled as removed or brought back
    /// (dropping the gone ones); when it journaled more than it keeps,
    /// compares the whole customer sets instead. Until it succeeds the ids
    /// stay with the follower and the removal stays owed. Answers whether it
    /// compared the sets.
    async fn apply_removals(&self, follower: &mut Follower) -> SegmentResult<bool> {
        let taken = self.store.take_removals();
        match taken.customer_ids {
            Some(ids) => follower.removed.extend(ids),
            None => follower.removals_overflowed = true,
        }
        let compared = follower.removals_overflowed;
        if compared {
            self.compare_customer_sets().await?;
        } else {
            follower.removed.sort_unstable();
            follower.removed.dedup();
            self.reload(&follower.removed).await?;
        }
        if let Some(during) = follower.removed_while_rebuilding.as_mut() {
            during.overflowed |= follower.removals_overflowed;
            during.customer_ids.append(&mut follower.removed);
        }
        follower.removed.clear();
        follower.removals_overflowed = false;
        self.reconciled_removals
            .store(taken.generation, Ordering::Release);
        Ok(compared)
    }

    async fn poll_locked(&self, follower: &mut Follower) -> SegmentResult<usize> {
        let generation = self.store.write_generation();
        let started = now();
        let since = follower.since.min(started) - lag();
        let mut read = 0;
        // Another server's catalogue writes (this process's own move the write generation).
        let stamp = self.store.catalogue_stamp().await?;
        if follower.catalogue_stamp != Some(stamp) {
            follower.catalogue_stamp = Some(stamp);
            self.catalogue_version.fetch_add(1, Ordering::AcqRel);
        }
        // New rows, by keyset in bounded pages: each row is read once, however busy the store.
        loop {
            let history = self
                .store
                .history_after(since, follower.history_mark.as_ref(), FOLLOW_PAGE)
                .await?;
            let customers = self
                .store
                .customers_changed_after(since, follower.customers_mark.as_ref(), FOLLOW_PAGE)
                .await?;
            let full = history.len() == FOLLOW_PAGE || customers.len() == FOLLOW_PAGE;
            read += history.len() + customers.len();
            let mut touched = BTreeSet::new();
            for (id, customer, at) in history {
                follower.seen_history.insert((at, row_key(&id)));
                touched.insert(customer);
                follower.history_mark = Some((at, id));
            }
            for (customer, at) in customers {
                follower.saw_customer(at, row_key(&customer));
                touched.insert(customer.clone());
                follower.customers_mark = Some((at, customer));
            }
            let touched: Vec<String> = touched.into_iter().collect();
            self.reload(&touched).await?;
            if !full {
                break;
            }
        }
        // Rows that committed after later ones were read (their time lies before the mark):
        // the store then holds more rows in the window than were applied. Only then is the
        // window read again, and what was applied in it replaced by what the store holds.
        let (history_count, customers_count) = self
            .store
            .count_changes_between(
                since,
                follower.history_mark.as_ref(),
                follower.customers_mark.as_ref(),
            )
            .await?;
        if history_count
            != seen_between(
                &follower.seen_history,
                since,
                follower.history_mark.as_ref(),
            )
        {
            read += self
                .reread_window(
                    ChangeTable::History,
                    since,
                    follower.history_mark.clone(),
                    &mut follower.seen_history,
                )
                .await?;
        }
        if customers_count
            != seen_between(
                &follower.seen_customers,
                since,
                follower.customers_mark.as_ref(),
            )
        {
            read += self
                .reread_window(
                    ChangeTable::Customers,
                    since,
                    follower.customers_mark.clone(),
                    &mut follower.seen_customers,
                )
                .await?;
            follower.index_seen_customers();
        }
        for (table, follow) in [
            (ActivityTable::Purchases, &mut follower.purchases),
            (ActivityTable::Interactions, &mut follower.interactions),
        ] {
            read += self.follow_activity(table, since, follow).await?;
        }
        let expired = self.write().expire(now());
        if expired > 0 {
            tracing::debug!(expired, "expired assignments left the segment index");
        }
        let horizon = (started - lag(), 0);
        follower.seen_history = follower.seen_history.split_off(&horizon);
        follower.seen_customers = follower.seen_customers.split_off(&horizon);
        for follow in [&mut follower.purchases, &mut follower.interactions] {
            follow.seen = follow.seen.split_off(&horizon);
        }
        follower
            .seen_customer_at
            .retain(|_, at| (*at, 0) >= horizon);
        follower.since = started;
        follower.last_poll_rows = read;
        self.synced_generation.store(generation, Ordering::Release);
        Ok(read)
    }

    /// Reads the change rows of `table` in the window (`since` up to `mark`)
    /// again, reloads the customers of rows not applied yet and makes the
    /// applied set `seen` the store's; answers the rows read.
    async fn reread_window(
        &self,
        table: ChangeTable,
        since: NaiveDateTime,
        mark: Option<ChangeKey>,
        seen: &mut BTreeSet<(NaiveDateTime, u128)>,
    ) -> SegmentResult<usize> {
        let Some(mark) = mark else {
            return Ok(0);
        };
        let mark_key = (mark.0, row_key(&mark.1));
        let mut window = BTreeSet::new();
        let mut touched = BTreeSet::new();
        let mut after: Option<ChangeKey> = None;
        'pages: loop {
            let rows: Vec<(String, String, NaiveDateTime)> = match table {
                ChangeTable::History => {
                    self.store
                        .history_after(since, after.as_ref(), FOLLOW_PAGE)
                        .await?
                }
                // A customer row's id is the customer's.
                ChangeTable::Customers => self
                    .store
                    .customers_changed_after(since, after.as_ref(), FOLLOW_PAGE)
                    .await?
                    .into_iter()
                    .map(|(customer, at)| (customer.clone(), customer, at))
                    .collect(),
                ChangeTable::Activity(activity) => {
                    self.store
                        .activity_after(activity, since, after.as_ref(), FOLLOW_PAGE)
                        .await?
                }
            };
            let full = rows.len() == FOLLOW_PAGE;
            for (id, customer, at) in rows {
                let key = (at, row_key(&id));
                if key > mark_key {
                    break 'pages;
                }
                if !seen.contains(&key) {
                    touched.insert(customer);
                }
                window.insert(key);
                after = Some((at, id));
            }
            if !full {
                break;
            }
        }
        let read = window.len();
        let late: Vec<String> = touched.into_iter().collect();
        tracing::debug!(
            late = late.len(),
            ?table,
            "change rows committed late; their customers reloaded"
        );
        self.reload(&late).await?;
        let mut newer = seen.split_off(&(since, 0));
        newer.retain(|key| *key > mark_key);
        seen.extend(window);
        seen.extend(newer);
        Ok(read)
    }

    /// Recomputes the metrics of the customers whose orders or interactions were recorded
    /// since the last poll (by keyset, like the other change rows, with the same check for
    /// rows that committed late); answers the rows read.
    async fn follow_activity(
        &self,
        table: ActivityTable,
        since: NaiveDateTime,
        follow: &mut ActivityFollow,
    ) -> SegmentResult<usize> {
        let mut read = 0;
        loop {
            let rows = self
                .store
                .activity_after(table, since, follow.mark.as_ref(), FOLLOW_PAGE)
                .await?;
            let full = rows.len() == FOLLOW_PAGE;
            read += rows.len();
            let mut touched = BTreeSet::new();
            for (id, customer, at) in rows {
                follow.seen.insert((at, row_key(&id)));
                touched.insert(customer);
                follow.mark = Some((at, id));
            }
            let touched: Vec<String> = touched.into_iter().collect();
            self.reload_activity(&touched).await?;
            if !full {
                break;
            }
        }
        let stored = self
            .store
            .count_activity_between(table, since, follow.mark.as_ref())
            .await?;
        if stored != seen_between(&follow.seen, since, follow.mark.as_ref()) {
            read += self
                .reread_window(
                    ChangeTable::Activity(table),
                    since,
                    follow.mark.clone(),
                    &mut follow.seen,
                )
                .await?;
        }
        Ok(read)
    }

    /// Recomputes these customers' metrics and categories bought from their stored orders
    /// and interactions (customers the index does not hold are skipped).
    async fn reload_activity(&self, ids: &[String]) -> SegmentResult<()> {
        let windows = &self.settings.metric_windows_days;
        for chunk in ids.chunks(PAGE) {
            let at = now();
            let activities = self.store.customers_activity(chunk).await?;
            let mut state = self.write();
            for id in chunk {
                state.load_activity(id, activities.get(id), at, windows);
            }
        }
        Ok(())
    }

    /// Runs a poll first when this process has written since the last one,
    /// so a caller's own writes are in the answer.
    async fn catch_up(&self) -> SegmentResult<()> {
        let synced = || {
            self.store.write_generation() == self.synced_generation.load(Ordering::Acquire)
                && self.removals_reconciled()
        };
        if synced() {
            return Ok(());
        }
        let mut follower = self.follower.lock().await;
        if !synced() {
            self.sync_locked(&mut follower).await?;
        }
        Ok(())
    }

    /// Reloads these customers from the store (dropping the ones gone).
    async fn reload(&self, ids: &[String]) -> SegmentResult<()> {
        for chunk in ids.chunks(PAGE) {
            let at = now();
            let customers = self.store.indexed_customers_by_ids(chunk).await?;
            let assignments = self.store.live_assignments(chunk, at).await?;
            let unknown = {
                let state = self.read();
                assignments
                    .iter()
                    .any(|assignment| !state.tag_types.contains_key(&assignment.tag_id))
            };
            if unknown {
                let tags = self.store.catalogue_tags().await?;
                let mut state = self.write();
                for (tag, _) in tags {
                    state.set_tag_type(&tag.id, tag.value_type);
                }
            }
            let activities = self.store.customers_activity(chunk).await?;
            let by_customer = group(&assignments);
            let found: HashSet<&str> = customers.iter().map(|c| c.id.as_str()).collect();
            let mut state = self.write();
            let windows = &self.settings.metric_windows_days;
            for customer in &customers {
                let held = by_customer
                    .get(customer.id.as_str())
                    .map_or(&[][..], Vec::as_slice);
                state.load_customer(customer, held, at);
                state.load_activity(&customer.id, activities.get(&customer.id), at, windows);
            }
            for id in chunk {
                if !found.contains(id.as_str()) {
                    state.remove_customer(id);
                }
            }
        }
        Ok(())
    }

    /// The periodic reconcile. While the store is busy (the last poll read
    /// change rows) it is put off, up to [`BUSY_RECONCILE_INTERVALS`]
    /// intervals: during a bulk import the customers count always runs ahead
    /// of the index's, and each comparison would read every customer id.
    async fn reconcile_due(&self) -> SegmentResult<()> {
        let mut follower = self.follower.lock().await;
        let overdue = follower.reconciled_at.elapsed()
            >= self
                .settings
                .reconcile_interval
                .saturating_mul(BUSY_RECONCILE_INTERVALS);
        if follower.last_poll_rows > 0 && !overdue {
            return Ok(());
        }
        self.reconcile_locked(&mut follower).await
    }

    /// Brings the index in line with the store: applies this process's
    /// journaled removals, then compares the customer sets when their counts
    /// differ (another server deleted or merged customers, or brought some
    /// back). Runs with the follower held: no poll adds customers while the
    /// ids are compared, so a customer created meanwhile is never taken for
    /// one deleted.
    async fn reconcile_locked(&self, follower: &mut Follower) -> SegmentResult<()> {
        self.poll_locked(follower).await?;
        let compared = self.apply_removals(follower).await?;
        follower.reconciled_at = std::time::Instant::now();
        if compared {
            return Ok(());
        }
        self.compare_customer_sets().await
    }

    /// Drops customers the store no longer has and loads those it has that
    /// the index lacks, when the two counts differ (the caller holds the
    /// follower).
    async fn compare_customer_sets(&self) -> SegmentResult<()> {
        let stored = self.store.count_customers().await?;
        if stored == self.read().index.customer_count() {
            return Ok(());
        }
        // Dense numbers of the indexed customers the store still has, and the ids it has
        // that the index lacks: one bitmap instead of two sets of every id.
        let mut present = RoaringBitmap::new();
        let mut missing = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let ids = self
                .store
                .customer_ids_after(after.as_deref(), RECONCILE_PAGE)
                .await?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            {
                let state = self.read();
                for id in ids {
                    match state.index.dense_id(&id) {
                        Some(number) if state.index.alive().contains(number) => {
                            present.insert(number);
                        }
                        _ => missing.push(id),
                    }
                }
            }
            after = Some(last);
        }
        let gone: Vec<String> = {
            let state = self.read();
            let gone_numbers = state.index.alive() - &present;
            gone_numbers
                .iter()
                .filter_map(|number| state.index.customer_id(number))
                .collect()
        };
        {
            let mut state = self.write();
            for id in &gone {
                state.remove_customer(id);
            }
        }
        self.reload(&missing).await?;
        if !gone.is_empty() || !missing.is_empty() {
            tracing::info!(
                removed = gone.len(),
                loaded = missing.len(),
                "segment index reconciled with the customers table"
            );
        }
        Ok(())
    }

    /// Builds a fresh index and swaps it in; the next poll replays the
    /// changes made during the build.
    pub async fn rebuild(&self) -> SegmentResult<()> {
        let started = now();
        self.follower.lock().await.removed_while_rebuilding =
            Some(RemovedWhileRebuilding::default());
        let epoch = self.read().epoch + 1;
        let fresh = build(&self.store, epoch, &self.settings.metric_windows_days).await;
        let mut follower = self.follower.lock().await;
        let removed_meanwhile = follower.removed_while_rebuilding.take().unwrap_or_default();
        *self.write() = fresh?;
        // Replay everything written since the build started: from the window's start, by keyset.
        let mut replay = Follower::new(follower.since.min(started));
        // Removals taken but not applied yet stay owed; so do those the follower applied
        // while the build read: they went to the old index only, and the fresh one may have
        // read those customers before they were removed.
        replay.removed = std::mem::take(&mut follower.removed);
        replay.removed.extend(removed_meanwhile.customer_ids);
        replay.removals_overflowed = follower.removals_overflowed || removed_meanwhile.overflowed;
        *follower = replay;
        self.poll_locked(&mut follower).await?;
        self.apply_removals(&mut follower).await?;
        Ok(())
    }

    /// The catalogue conditions are bound against, as stored now (read from
    /// the store, for the checks before a write).
    pub async fn catalogue(&self) -> SegmentResult<StoreCatalogue> {
        // Attribute keys come from the index: a key a customer gained just now must bind.
        self.catch_up().await?;
        let fresh = self.fresh_catalogue().await?;
        Ok(StoreCatalogue {
            attributes: self.read().attribute_keys.clone(),
            ..fresh.catalogue.clone()
        })
    }

    /// The catalogue to bind against, with whether it was read just now.
    /// Kept in memory while neither this process wrote (the store's write
    /// generation) nor the follower saw the catalogue tables change, so a
    /// count reads nothing from the store.
    async fn cached_catalogue(&self) -> SegmentResult<(Arc<CachedCatalogue>, bool)> {
        // The index first: attribute keys, and this caller's own writes.
        self.catch_up().await?;
        let generation = self.store.write_generation();
        let version = self.catalogue_version.load(Ordering::Acquire);
        let cached = self
            .catalogue_cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match cached {
            Some(cached) if cached.generation == generation && cached.version == version => {
                Ok((cached, false))
            }
            _ => Ok((self.fresh_catalogue().await?, true)),
        }
    }

    /// Reads the catalogue from the store and keeps it.
    async fn fresh_catalogue(&self) -> SegmentResult<Arc<CachedCatalogue>> {
        // Read before the tables: a write committed after them moves one of these, so the
        // next call reads again instead of keeping what may predate it.
        let generation = self.store.write_generation();
        let version = self.catalogue_version.load(Ordering::Acquire);
        let tags = self.store.catalogue_tags().await?;
        let segments = self.store.all_segments().await?;
        let catalogue = StoreCatalogue {
            tags: tags
                .into_iter()
                .map(|(tag, category)| tagd_condition::TagInfo {
                    id: tag.id,
                    category,
                    name: tag.name,
                    value_type: tag.value_type,
                    enum_values: tag.enum_values,
                })
                .collect(),
            segments: StoreCatalogue::segment_infos(&segments),
            attributes: HashSet::new(),
            metric_windows_days: self.settings.metric_windows_days.clone(),
        };
        let cached = Arc::new(CachedCatalogue::new(
            generation, version, catalogue, segments,
        ));
        *self
            .catalogue_cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cached.clone());
        Ok(cached)
    }

    /// Runs `binding` against `cached` with the index's attribute keys of now.
    fn with_catalogue<T>(
        &self,
        cached: &CachedCatalogue,
        binding: impl FnOnce(&dyn tagd_condition::Catalogue) -> T,
    ) -> T {
        let state = self.read();
        binding(&WithAttributes {
            base: &cached.catalogue,
            attributes: &state.attribute_keys,
        })
    }

    /// Checks `condition` (named `field` in errors) and binds it.
    pub async fn bind(&self, field: &str, condition: &Condition) -> SegmentResult<BoundCondition> {
        let (cached, fresh) = self.cached_catalogue().await?;
        let mut bound = self.with_catalogue(&cached, |catalogue| {
            tagd_condition::bind(condition, catalogue)
        });
        if bound.is_err() && !fresh {
            // Another server may have created the tag or segment named since the follower last
            // looked; a refusal is rare, so it is checked against the store itself.
            let cached = self.fresh_catalogue().await?;
            bound = self.with_catalogue(&cached, |catalogue| {
                tagd_condition::bind(condition, catalogue)
            });
        }
        bound.map_err(|error| SegmentError::Condition {
            field: field.to_owned(),
            error,
        })
    }

    /// Stored segment `id` and the catalogue it was found in (read again
    /// once when the cached one lacks it: another server may have created it).
    async fn stored_segment(
        &self,
        id: &str,
    ) -> SegmentResult<(Arc<CachedCatalogue>, Arc<Segment>)> {
        let (cached, fresh) = self.cached_catalogue().await?;
        if let Some(segment) = cached.stored.get(id) {
            return Ok((cached.clone(), segment.clone()));
        }
        let cached = if fresh {
            cached
        } else {
            self.fresh_catalogue().await?
        };
        if let Some(segment) = cached.stored.get(id) {
            return Ok((cached.clone(), segment.clone()));
        }
        // Unknown (NOT_FOUND as the store words it), or created since the catalogue was read.
        let segment = Arc::new(self.store.get_segment(id).await?);
        Ok((cached, segment))
    }

    /// A stored dynamic segment's condition, bound: kept with the cached
    /// catalogue, so counting a segment again does not parse and bind it again.
    async fn bind_stored(
        &self,
        cached: &CachedCatalogue,
        segment: &Arc<Segment>,
    ) -> SegmentResult<Arc<BoundCondition>> {
        // Only a segment of this catalogue may use (and fill) its memo.
        let ours = cached
            .stored
            .get(&segment.id)
            .is_some_and(|stored| Arc::ptr_eq(stored, segment));
        let epoch = self.read().epoch;
        if ours && let Some(bound) = cached.bound(&segment.id, epoch) {
            return Ok(bound);
        }
        let stale = |error| SegmentError::Stale {
            name: segment.name.clone(),
            error,
        };
        let condition = tagd_condition::parse(&segment.condition).map_err(stale)?;
        let mut bound = self.with_catalogue(cached, |catalogue| {
            tagd_condition::bind_segment(&segment.name, &condition, catalogue)
        });
        if bound.is_err() {
            // The catalogue may predate another server's write that makes it bind again.
            let fresh = self.fresh_catalogue().await?;
            bound = self.with_catalogue(&fresh, |catalogue| {
                tagd_condition::bind_segment(&segment.name, &condition, catalogue)
            });
        }
        let bound = Arc::new(bound.map_err(stale)?);
        if ours {
            cached.keep_bound(&segment.id, epoch, bound.clone());
        }
        Ok(bound)
    }

    /// How many customers match `condition` now.
    pub async fn count_condition(&self, condition: &BoundCondition) -> SegmentResult<Count> {
        self.catch_up().await?;
        let answer = {
            let state = self.read();
            state
                .index
                .count(condition, today())
                .map_err(|error| error.to_string())
        };
        match answer {
            Ok(count) => Ok(Count {
                count,
                from_index: true,
                fallback_reason: String::new(),
            }),
            Err(reason) => Ok(Count {
                count: self.reference_members(condition).await?.len() as u64,
                from_index: false,
                fallback_reason: reason,
            }),
        }
    }

    /// Who matches `condition` now.
    pub async fn condition_members(&self, condition: &BoundCondition) -> SegmentResult<Members> {
        self.catch_up().await?;
        let answer = {
            let state = self.read();
            state
                .index
                .members(condition, today())
                .map(|members| Members::Dense {
                    members,
                    epoch: state.epoch,
                })
        };
        match answer {
            Ok(members) => Ok(members),
            Err(_) => Ok(Members::Ids(self.reference_members(condition).await?)),
        }
    }

    /// The reference path: every customer's facts through
    /// [`tagd_condition::evaluate`]; ids in id order.
    pub async fn reference_members(
        &self,
        condition: &BoundCondition,
    ) -> SegmentResult<Vec<String>> {
        let (mut purchases, mut metrics) = (false, false);
        condition.visit(&mut |predicate| match predicate {
            BoundPredicate::Purchases { .. }
            | BoundPredicate::Spent { .. }
            | BoundPredicate::BoughtCategory { .. } => purchases = true,
            BoundPredicate::Metric { .. } => metrics = true,
            _ => {}
        });
        let (at, day) = (now(), today());
        let mut members = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let customers = self.store.customers_after(after.as_deref(), PAGE).await?;
            let Some(last) = customers.last() else {
                break;
            };
            after = Some(last.id.clone());
            let ids: Vec<String> = customers.iter().map(|c| c.id.clone()).collect();
            let assignments = self.store.live_assignments(&ids, at).await?;
            let by_customer = group(&assignments);
            let lines = if purchases {
                self.store.purchase_lines(&ids).await?
            } else {
                Vec::new()
            };
            let mut lines_of: HashMap<&str, Vec<&tagd_store::PurchaseLine>> = HashMap::new();
            for line in &lines {
                lines_of
                    .entry(line.customer_id.as_str())
                    .or_default()
                    .push(line);
            }
            let mut activities = if metrics {
                self.store.customers_activity(&ids).await?
            } else {
                HashMap::new()
            };
            for customer in &customers {
                let metric_values = match activities.remove(&customer.id) {
                    Some(activity) => {
                        let computed = tagd_core::metrics::compute(
                            &activity,
                            at,
                            &self.settings.metric_windows_days,
                        );
                        metric_values(&computed, at)
                    }
                    None => Default::default(),
                };
                let facts = facts_of(
                    customer,
                    by_customer
                        .get(customer.id.as_str())
                        .map_or(&[][..], Vec::as_slice),
                    lines_of
                        .get(customer.id.as_str())
                        .map_or(&[][..], Vec::as_slice),
                    metric_values,
                    at,
                );
                if tagd_condition::evaluate(condition, &facts, day) {
                    members.push(customer.id.clone());
                }
            }
        }
        Ok(members)
    }

    // ---- segments ----

    /// Creates a dynamic segment.
    pub async fn create(
        &self,
        name: &str,
        description: &str,
        condition: &Condition,
    ) -> SegmentResult<Segment> {
        let name = text::required_name("name", name)?;
        let description = text::free_text(
            "description",
            description,
            tagd_core::segments::MAX_DESCRIPTION_CHARS,
        )?;
        let catalogue = self.catalogue().await?;
        tagd_condition::bind_segment(&name, condition, &catalogue).map_err(|error| {
            SegmentError::Condition {
                field: "condition".into(),
                error,
            }
        })?;
        Ok(self
            .store
            .create_segment(&NewSegment {
                name,
                description,
                kind: SegmentKind::Dynamic,
                condition: condition.to_string(),
            })
            .await?)
    }

    pub async fn get(&self, id: &str) -> SegmentResult<Segment> {
        Ok(self.store.get_segment(id).await?)
    }

    /// Changes a segment's name, description or (dynamic only) condition.
    pub async fn update(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
        condition: Option<&Condition>,
    ) -> SegmentResult<Segment> {
        let segment = self.store.get_segment(id).await?;
        let name = name
            .map(|name| text::required_name("name", name))
            .transpose()?;
        let description = description
            .map(|description| {
                text::free_text(
                    "description",
                    description,
                    tagd_core::segments::MAX_DESCRIPTION_CHARS,
                )
            })
            .transpose()?;
        if condition.is_some() && segment.kind == SegmentKind::Static {
            return Err(SegmentError::FailedPrecondition(format!(
                "segment {:?} is static: its members are frozen and its condition cannot change",
                segment.name
            )));
        }
        if let Some(new_name) = &name
            && text::key(new_name) != text::key(&segment.name)
        {
            self.refuse_if_referenced(&segment, "renamed").await?;
        }
        if let Some(condition) = condition {
            let catalogue = self.catalogue().await?;
            let bound_name = name.as_deref().unwrap_or(&segment.name);
            tagd_condition::bind_segment(bound_name, condition, &catalogue).map_err(|error| {
                SegmentError::Condition {
                    field: "condition".into(),
                    error,
                }
            })?;
        }
        Ok(self
            .store
            .update_segment(
                id,
                &SegmentPatch {
                    name,
                    description,
                    condition: condition.map(ToString::to_string),
                },
            )
            .await?)
    }

    /// Deletes a segment no other segment names.
    pub async fn delete(&self, id: &str) -> SegmentResult<()> {
        let segment = self.store.get_segment(id).await?;
        self.refuse_if_referenced(&segment, "deleted").await?;
        Ok(self.store.delete_segment(id).await?)
    }

    async fn refuse_if_referenced(&self, segment: &Segment, what: &str) -> SegmentResult<()> {
        let key = text::key(&segment.name);
        let mut users: Vec<String> =
            StoreCatalogue::segment_infos(&self.store.all_segments().await?)
                .into_iter()
                .filter(|other| other.id != segment.id && names_segment(&other.condition, &key))
                .map(|other| format!("segment {:?}", other.name))
                .collect();
        // Tag rules' conditions may name segments too.
        users.extend(
            self.store
                .all_rules()
                .await?
                .into_iter()
                .filter(|rule| {
                    tagd_condition::parse(&rule.condition)
                        .is_ok_and(|condition| names_segment(&condition, &key))
                })
                .map(|rule| format!("rule {:?}", rule.name)),
        );
        if users.is_empty() {
            return Ok(());
        }
        Err(SegmentError::FailedPrecondition(format!(
            "segment {:?} cannot be {what}: in_segment(…) names it in {}",
            segment.name,
            users.join(", ")
        )))
    }

    /// A segment's member count now.
    pub async fn count_segment(&self, id: &str) -> SegmentResult<Count> {
        let (cached, segment) = self.stored_segment(id).await?;
        match segment.kind {
            SegmentKind::Static => Ok(Count {
                count: self.store.static_members(id).await?.len() as u64,
                from_index: false,
                fallback_reason: String::new(),
            }),
            SegmentKind::Dynamic => {
                let bound = self.bind_stored(&cached, &segment).await?;
                self.count_condition(&bound).await
            }
        }
    }

    /// A segment's members now.
    pub async fn members(&self, id: &str) -> SegmentResult<Members> {
        let (cached, segment) = self.stored_segment(id).await?;
        match segment.kind {
            SegmentKind::Static => Ok(Members::Ids(self.store.static_members(id).await?)),
            SegmentKind::Dynamic => {
                let bound = self.bind_stored(&cached, &segment).await?;
                self.condition_members(&bound).await
            }
        }
    }

    /// Member ids in id order.
    pub fn sorted_ids(&self, members: &Members) -> SegmentResult<Vec<String>> {
        Ok(match members {
            Members::Ids(ids) => ids.clone(),
            Members::Dense { .. } => {
                let mut ids = self.ids_of(members, None, usize::MAX)?.0;
                ids.sort_unstable();
                ids
            }
        })
    }

    /// `members` ready to be read in id order, chunk by chunk, with
    /// [`Segments::ids_of`]: an index answer whose dense numbers follow id
    /// order stays as it is (a chunk then costs its own ids, nothing is
    /// sorted); any other index answer is sorted once; id lists (static
    /// segments, the reference path) are in id order already.
    pub fn in_id_order(&self, members: Members) -> SegmentResult<Members> {
        if let Members::Dense { epoch, .. } = &members {
            let state = self.read();
            if state.epoch != *epoch {
                return Err(SegmentError::Rebuilt);
            }
            if !state.index.numbers_follow_ids() {
                drop(state);
                return Ok(Members::Ids(self.sorted_ids(&members)?));
            }
        }
        Ok(members)
    }

    /// Up to `limit` member ids that sort after `after`, in id order, and
    /// whether more follow. When the index's numbers follow id order (the
    /// usual case: a build loads customers in id order and new UUIDv7 ids
    /// sort last) a page costs its own ids only; otherwise every member's id
    /// is sorted first.
    pub fn page_by_id(
        &self,
        members: &Members,
        after: Option<&str>,
        limit: usize,
    ) -> SegmentResult<(Vec<String>, bool)> {
        if let Members::Dense { members, epoch } = members {
            let state = self.read();
            if state.epoch != *epoch {
                return Err(SegmentError::Rebuilt);
            }
            let start = match after {
                None if state.index.numbers_follow_ids() => Some(0),
                None => None,
                Some(after) => state.index.number_after(after),
            };
            if let Some(start) = start {
                let mut numbers = members.range(start..);
                let mut ids = Vec::with_capacity(limit.min(4_096));
                for number in numbers.by_ref() {
                    if ids.len() == limit {
                        return Ok((ids, true));
                    }
                    if let Some(id) = state.index.customer_id(number) {
                        ids.push(id);
                    }
                }
                return Ok((ids, false));
            }
        }
        let ids = self.sorted_ids(members)?;
        let start = after.map_or(0, |after| ids.partition_point(|id| id.as_str() <= after));
        let end = start.saturating_add(limit).min(ids.len());
        Ok((ids[start..end].to_vec(), end < ids.len()))
    }

    /// Up to `limit` member ids after position `after` (a dense number, or
    /// an index into the id list), and the position to continue from.
    pub fn ids_of(
        &self,
        members: &Members,
        after: Option<u64>,
        limit: usize,
    ) -> SegmentResult<(Vec<String>, Option<u64>)> {
        let mut ids = Vec::with_capacity(limit.min(members_hint(members)));
        let next = self.each_id(members, after, limit, |id| ids.push(id.to_owned()))?;
        Ok((ids, next))
    }

    /// [`Segments::ids_of`] as one text, each id followed by a line feed: no
    /// string is made per id, which is most of the cost of streaming millions
    /// of them.
    pub fn packed_ids_of(
        &self,
        members: &Members,
        after: Option<u64>,
        limit: usize,
    ) -> SegmentResult<(Vec<u8>, Option<u64>)> {
        // 36 characters and a line feed per UUID.
        let mut text = Vec::with_capacity(limit.min(members_hint(members)).saturating_mul(37));
        let next = self.each_id(members, after, limit, |id| {
            text.extend_from_slice(id.as_bytes());
            text.push(b'\n');
        })?;
        Ok((text, next))
    }

    /// Calls `each` with up to `limit` member ids after position `after`;
    /// answers the position to continue from.
    fn each_id(
        &self,
        members: &Members,
        after: Option<u64>,
        limit: usize,
        mut each: impl FnMut(&str),
    ) -> SegmentResult<Option<u64>> {
        match members {
            Members::Ids(ids) => {
                let start = after.map_or(0, |after| after + 1);
                let start = usize::try_from(start).unwrap_or(usize::MAX).min(ids.len());
                let end = start.saturating_add(limit).min(ids.len());
                for id in &ids[start..end] {
                    each(id);
                }
                Ok((end < ids.len() && end > start).then_some(end as u64 - 1))
            }
            Members::Dense { members, epoch } => {
                let state = self.read();
                if state.epoch != *epoch {
                    return Err(SegmentError::Rebuilt);
                }
                let start = after.map_or(0, |after| after + 1);
                let Ok(start) = u32::try_from(start) else {
                    return Ok(None);
                };
                let mut numbers = members.range(start..);
                let mut last = None;
                for number in numbers.by_ref().take(limit) {
                    state.index.with_customer_id(number, &mut each);
                    last = Some(u64::from(number));
                }
                Ok(if numbers.next().is_some() { last } else { None })
            }
        }
    }

    /// Freezes a segment's members now as a new static segment.
    pub async fn snapshot(
        &self,
        id: &str,
        name: &str,
        description: &str,
    ) -> SegmentResult<Segment> {
        let segment = self.store.get_segment(id).await?;
        let members = self.members(id).await?;
        let ids = self.sorted_ids(&members)?;
        let name = if name.trim().is_empty() {
            format!("{} {}", segment.name, now().format("%Y-%m-%d %H:%M:%S"))
        } else {
            name.to_owned()
        };
        let name = text::required_name("name", &name)?;
        let description = text::free_text(
            "description",
            description,
            tagd_core::segments::MAX_DESCRIPTION_CHARS,
        )?;
        Ok(self
            .store
            .snapshot_segment(
                id,
                &NewSegment {
                    name,
                    description,
                    kind: SegmentKind::Static,
                    condition: segment.condition,
                },
                &ids,
            )
            .await?)
    }

    /// Sizes and overlaps of 2..=10 distinct segments.
    pub async fn compare(&self, ids: &[String]) -> SegmentResult<Comparison> {
        let distinct: BTreeSet<&String> = ids.iter().collect();
        if ids.len() < 2 || ids.len() > MAX_COMPARED || distinct.len() != ids.len() {
            return Err(DomainError::invalid(
                "segment_ids",
                format!("needs 2 to {MAX_COMPARED} distinct segment ids"),
            )
            .into());
        }
        let mut sets = Vec::with_capacity(ids.len());
        for id in ids {
            let members = self.members(id).await?;
            sets.push(
                self.sorted_ids(&members)?
                    .into_iter()
                    .collect::<HashSet<String>>(),
            );
        }
        let sizes = ids
            .iter()
            .zip(&sets)
            .map(|(id, set)| (id.clone(), set.len() as u64))
            .collect();
        let mut pairs = Vec::new();
        for (i, first) in sets.iter().enumerate() {
            for (j, second) in sets.iter().enumerate().skip(i + 1) {
                let overlap = first.intersection(second).count() as u64;
                pairs.push(((ids[i].clone(), ids[j].clone()), overlap));
            }
        }
        let (smallest, rest): (Vec<&HashSet<String>>, Vec<&HashSet<String>>) = {
            let mut ordered: Vec<&HashSet<String>> = sets.iter().collect();
            ordered.sort_by_key(|set| set.len());
            let rest = ordered.split_off(1);
            (ordered, rest)
        };
        let all = smallest.first().map_or(0, |first| {
            first
                .iter()
                .filter(|id| rest.iter().all(|set| set.contains(*id)))
                .count()
        }) as u64;
        Ok(Comparison { sizes, pairs, all })
    }

    /// The CSV rows of these customers (in the order given, missing ones
    /// skipped) with `columns`.
    pub async fn export_rows(
        &self,
        ids: &[String],
        columns: &[ExportColumn],
    ) -> SegmentResult<Vec<u8>> {
        let customers = self.store.customers_by_ids(ids).await?;
        let tags = if columns.contains(&ExportColumn::Tags) {
            self.store.assignment_names(ids, now()).await?
        } else {
            Vec::new()
        };
        Ok(csv_rows(&customers, &tags, columns))
    }

    /// The rows of these customers added to an XLSX export.
    pub async fn export_xlsx_rows(
        &self,
        export: &mut XlsxExport,
        ids: &[String],
        columns: &[ExportColumn],
    ) -> SegmentResult<()> {
        let customers = self.store.customers_by_ids(ids).await?;
        let tags = if columns.contains(&ExportColumn::Tags) {
            self.store.assignment_names(ids, now()).await?
        } else {
            Vec::new()
        };
        export.add(&customers, &tags)
    }

    /// The store, for callers that need a read the engine does not wrap.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

/// At most how many ids `members` can give, to size a page's buffer.
fn members_hint(members: &Members) -> usize {
    usize::try_from(members.len()).unwrap_or(usize::MAX)
}

/// Whether `condition` names the segment with name key `key` directly.
fn names_segment(condition: &Condition, key: &str) -> bool {
    match condition {
        Condition::And(items) | Condition::Or(items) => {
            items.iter().any(|item| names_segment(item, key))
        }
        Condition::Not(inner) => names_segment(inner, key),
        Condition::Predicate(Predicate::InSegment(name)) => text::key(name) == key,
        Condition::Predicate(_) => false,
    }
}

fn group(assignments: &[LiveAssignment]) -> HashMap<&str, Vec<&LiveAssignment>> {
    let mut by_customer: HashMap<&str, Vec<&LiveAssignment>> = HashMap::new();
    for assignment in assignments {
        by_customer
            .entry(assignment.customer_id.as_str())
            .or_default()
            .push(assignment);
    }
    by_customer
}

/// Loads every customer with its live assignments, metrics and categories
/// bought into a fresh index.
async fn build(store: &Store, epoch: u64, windows_days: &[u32]) -> SegmentResult<IndexState> {
    let mut state = IndexState::default();
    state.epoch = epoch;
    state.hold_metrics(windows_days);
    for (tag, _) in store.catalogue_tags().await? {
        state.set_tag_type(&tag.id, tag.value_type);
    }
    let mut after: Option<String> = None;
    loop {
        let at = now();
        let customers = store
            .indexed_customers_after(after.as_deref(), PAGE)
            .await?;
        let Some(last) = customers.last() else {
            break;
        };
        after = Some(last.id.clone());
        let ids: Vec<String> = customers.iter().map(|c| c.id.clone()).collect();
        let assignments = store.live_assignments(&ids, at).await?;
        let activities = store.customers_activity(&ids).await?;
        let by_customer = group(&assignments);
        for customer in &customers {
            let held = by_customer
                .get(customer.id.as_str())
                .map_or(&[][..], Vec::as_slice);
            state.load_customer(customer, held, at);
            state.load_activity(&customer.id, activities.get(&customer.id), at, windows_days);
        }
    }
    // Vectors and tables doubled while growing; bitmaps most customers share compress as runs.
    state.compact();
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_rows_are_counted_within_the_window_even_when_the_mark_is_older() {
        let at = |secs: i64| {
            chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0)
                .map(|time| time.naive_utc())
                .unwrap_or_default()
        };
        let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        let seen: BTreeSet<(NaiveDateTime, u128)> =
            [(at(1), row_key(id)), (at(3), row_key(id))].into();
        assert_eq!(seen_between(&seen, at(0), Some(&(at(3), id.to_owned()))), 2);
        assert_eq!(seen_between(&seen, at(2), Some(&(at(3), id.to_owned()))), 1);
        assert_eq!(seen_between(&seen, at(9), Some(&(at(3), id.to_owned()))), 0);
        assert_eq!(seen_between(&seen, at(0), None), 0);
        assert_ne!(row_key(id), row_key("C-42"));
    }

    #[test]
    fn a_customer_changed_twice_in_the_window_counts_once_like_its_one_stored_row() {
        let at = |secs: i64| {
            chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0)
                .map(|time| time.naive_utc())
                .unwrap_or_default()
        };
        let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        let mut follower = Follower::new(at(0));
        follower.saw_customer(at(1), row_key(id));
        follower.saw_customer(at(2), row_key(id));
        follower.saw_customer(at(2), row_key("C-42"));
        let mark = Some((at(3), id.to_owned()));
        assert_eq!(
            seen_between(&follower.seen_customers, at(0), mark.as_ref()),
            2,
            "the store holds one row per customer, at its latest updated_at"
        );
        assert_eq!(follower.seen_customer_at.get(&row_key(id)), Some(&at(2)));
    }

    #[test]
    fn the_follower_slows_down_only_while_many_rows_change() {
        let interval = Duration::from_millis(200);
        assert_eq!(poll_delay(interval, 0), interval);
        assert_eq!(poll_delay(interval, CALM_POLL_ROWS), interval);
        assert_eq!(
            poll_delay(interval, 10 * CALM_POLL_ROWS),
            Duration::from_secs(2)
        );
        assert_eq!(poll_delay(interval, 1_000_000), BUSIEST_POLL_DELAY);
        let slow = Duration::from_secs(30);
        assert_eq!(
            poll_delay(slow, 1_000_000),
            slow,
            "never faster than configured"
        );
    }
}
