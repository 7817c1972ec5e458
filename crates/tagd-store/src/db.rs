//! Connection pools for both backends, migrations, and the macros that run one
//! query body against whichever backend the store was opened on.

use std::time::Duration;

use chrono::{NaiveDateTime, Timelike, Utc};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel_async::pooled_connection::deadpool::Pool as DeadPool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncMysqlConnection, RunQueryDsl,
    SimpleAsyncConnection,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures::FutureExt;
use tokio::sync::{Mutex, MutexGuard};

use crate::cleanse::{FieldCountRow, UnfixableRow};
use crate::customers::{CustomerRow, EmailRow, ExternalIdRow, PhoneRow};
use crate::error::{StoreError, StoreResult};
use crate::field_history::FieldHistoryRow;
use crate::ids_in::{MysqlIdsQuery, ids_in};
use crate::imports::ImportChangeRow;
use crate::interactions::InteractionRow;
use crate::jobs::RejectedRowRow;
use crate::merges::{MergeRow, MergedCustomerRow};
use crate::purchases::{PurchaseItemRow, PurchaseRow};
use crate::schema::{
    categories, cleanse_field_counts, cleanse_unfixable, customer_emails, customer_external_ids,
    customer_field_history, customer_phones, customer_tags, customers, import_changes,
    interactions, job_rejected_rows, merged_customers, merges, purchase_items, purchases,
    segment_members, tag_history, tags,
};
use crate::segments::SegmentMemberRow;
use crate::tagging::{AssignmentRow, HistoryRow};
use crate::tags::TagRow;

pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection, SqliteRunner>;

tokio::task_local! {
    /// Set (by [`inline_sqlite`]) around a call whose SQLite statements run
    /// on the calling thread.
    static INLINE_SQLITE: ();
}

/// Runs `call` with its SQLite statements executed on the calling thread
/// instead of tokio's blocking pool: the hop to a pool thread and back — two
/// thread wake-ups per statement — costs more than a short statement itself.
/// On a runtime worker, for short point reads only (a primary-key lookup takes
/// microseconds); a whole transaction may run this way on a blocking thread
/// (`Handle::block_on` inside `spawn_blocking`), where waiting blocks no task.
pub(crate) async fn inline_sqlite<F: Future>(call: F) -> F::Output {
    INLINE_SQLITE.scope((), call).await
}

/// How diesel-async runs a SQLite statement: on tokio's blocking pool, or
/// inline within [`inline_sqlite`].
pub(crate) struct SqliteRunner;

impl diesel_async::sync_connection_wrapper::SpawnBlocking for SqliteRunner {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> futures::future::BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        if INLINE_SQLITE.try_with(|()| ()).is_ok() {
            return futures::future::ready(Ok(task())).boxed();
        }
        tokio::task::spawn_blocking(task)
            .map(|joined| joined.map_err(|error| Box::new(error) as Box<_>))
            .boxed()
    }

    fn get_runtime() -> Self {
        SqliteRunner
    }
}
pub(crate) type MysqlConn = AsyncMysqlConnection;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/mysql");

/// How long a SQLite connection waits for another process's write lock.
pub(crate) const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

pub(crate) enum Pool {
    Sqlite(DeadPool<SqliteConn>),
    Mysql(DeadPool<MysqlConn>),
}

/// Which database a URL names, and the URL each driver expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A file path (`sqlite://tagd.db`, `sqlite:///var/lib/tagd/tagd.db`).
    Sqlite(String),
    Mysql(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> StoreResult<Self> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::UnsupportedUrl(url.to_owned()));
            }
            Ok(Self::Sqlite(path.to_owned()))
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Ok(Self::Mysql(url.replacen("mariadb://", "mysql://", 1)))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Mysql(_) => "mysql",
        }
    }
}

/// A deadpool builder with the same limits for either backend.
macro_rules! pool_builder {
    ($manager:expr, $size:expr) => {
        DeadPool::builder($manager)
            .max_size($size)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
    };
}

/// How the store's connection pool is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Connections in the pool (at least one).
    pub size: usize,
    /// The page cache of each SQLite connection, in MiB (ignored on MySQL, whose
    /// buffer pool is the server's).
    pub sqlite_cache_mib: u32,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            size: 8,
            sqlite_cache_mib: DEFAULT_SQLITE_CACHE_MIB,
        }
    }
}

/// SQLite's own default is 2 MiB, a few hundred pages: with a million customers
/// every index descent of a bulk write then reads its pages from the kernel again.
/// Each pooled connection fills its own cache, so it is kept modest: at 32 MiB a
/// 300,000-row import's server peaked at 306 MiB (8 connections), at 8 MiB 218 MiB.
pub const DEFAULT_SQLITE_CACHE_MIB: u32 = 8;

pub(crate) fn open_pool(url: &DatabaseUrl, options: PoolOptions) -> StoreResult<Pool> {
    let size = options.size.max(1);
    let build_error = |e: deadpool::managed::BuildError| StoreError::Connect(e.to_string());
    Ok(match url {
        DatabaseUrl::Sqlite(path) => {
            let mut config = ManagerConfig::<SqliteConn>::default();
            let cache_mib = options.sqlite_cache_mib;
            config.custom_setup =
                Box::new(move |path| connect_sqlite(path.to_owned(), cache_mib).boxed());
            config.recycling_method = RecyclingMethod::Fast;
            let manager = AsyncDieselConnectionManager::new_with_config(path.clone(), config);
            Pool::Sqlite(pool_builder!(manager, size).build().map_err(build_error)?)
        }
        DatabaseUrl::Mysql(url) => {
            let mut config = ManagerConfig::<MysqlConn>::default();
            config.custom_setup = Box::new(|url| connect_mysql(url.to_owned()).boxed());
            // The default (Verified) runs a test query on every checkout: one more round
            // trip per request. A dead connection fails its first query instead, and
            // `release` then drops it rather than returning it to the pool.
            config.recycling_method = RecyclingMethod::Fast;
            let manager = AsyncDieselConnectionManager::new_with_config(url.clone(), config);
            Pool::Mysql(pool_builder!(manager, size).build().map_err(build_error)?)
        }
    })
}

async fn connect_mysql(url: String) -> ConnectionResult<MysqlConn> {
    let mut conn = MysqlConn::establish(&url).await?;
    // Writers lock the customer rows they change, then must read what the
    // previous lock holder committed: REPEATABLE READ's snapshot would hide it.
    conn.batch_execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .await
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

async fn connect_sqlite(path: String, cache_mib: u32) -> ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(&path).await?;
    // WAL lets readers run beside the writer; FULL sync keeps every commit durable.
    // Checkpoints run on their own thread (`checkpoint`); a committing connection
    // checkpoints only past a larger log. The busy timeout comes first: opening a log
    // another connection is recovering waits for it instead of failing.
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         PRAGMA wal_autocheckpoint = {}; PRAGMA journal_size_limit = {}; PRAGMA cache_size = -{};",
        crate::checkpoint::AUTO_CHECKPOINT_PAGES,
        crate::checkpoint::JOURNAL_SIZE_LIMIT_BYTES,
        // Negative: KiB, not pages. The cache fills only as pages are read.
        u64::from(cache_mib) * 1024,
    ))
    .await
    .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Applies pending migrations; returns the versions applied.
pub(crate) async fn migrate(url: &DatabaseUrl) -> StoreResult<Vec<String>> {
    let migration_error =
        |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
    let applied: Vec<String> = match url {
        DatabaseUrl::Sqlite(path) => {
            let conn = connect_sqlite(path.clone(), DEFAULT_SQLITE_CACHE_MIB)
                .await
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            let mut harness = AsyncMigrationHarness::new(conn);
            let applied = harness
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(migration_error)?;
            applied
                .into_iter()
                .map(|version| version.to_string())
                .collect()
        }
        DatabaseUrl::Mysql(url) => {
            let conn = MysqlConn::establish(url)
                .await
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            let mut harness = AsyncMigrationHarness::new(conn);
            let applied = harness
                .run_pending_migrations(MYSQL_MIGRATIONS)
                .map_err(migration_error)?;
            applied
                .into_iter()
                .map(|version| version.to_string())
                .collect()
        }
    };
    Ok(applied)
}

/// Returns a connection to the pool, unless its last use failed in a way that
/// may have broken it (lost socket, server gone, unclassified server error):
/// pools recycle without a test query, so a suspect connection is dropped here.
pub(crate) fn release<M: deadpool::managed::Manager, T>(
    connection: deadpool::managed::Object<M>,
    result: &StoreResult<T>,
) {
    use diesel::result::{DatabaseErrorKind, Error};
    let suspect = matches!(
        result,
        Err(StoreError::Database(
            Error::DatabaseError(
                DatabaseErrorKind::Unknown | DatabaseErrorKind::ClosedConnection,
                _
            ) | Error::BrokenTransactionManager
        ))
    );
    if suspect {
        drop(deadpool::managed::Object::take(connection));
    }
}

pub(crate) fn pool_error<E: std::fmt::Display>(error: E) -> StoreError {
    StoreError::Connect(error.to_string())
}

/// Serialises writers on SQLite (one writer at a time is all it allows, and
/// waiting here is cheaper than busy retries); a no-op on MySQL.
pub(crate) async fn write_guard(lock: Option<&Mutex<()>>) -> Option<MutexGuard<'_, ()>> {
    match lock {
        Some(lock) => Some(lock.lock().await),
        None => None,
    }
}

/// Operations whose SQL differs between backends.
pub(crate) trait BackendOps {
    /// Locks the customers' rows (in id order, so concurrent callers cannot
    /// deadlock) for the rest of the transaction; returns the ids that exist.
    async fn lock_customers(&mut self, ids: &[String]) -> QueryResult<Vec<String>>;
    /// Writes assignments, replacing the stored row of the same (customer, tag)
    /// except its category (a tag never changes category): one statement where
    /// DELETE + INSERT would take two.
    async fn upsert_assignment_rows(&mut self, rows: &[AssignmentRow]) -> QueryResult<()>;
    /// Writes whole customer rows over the stored ones of the same id, in
    /// place: one statement per chunk, and the index entries of unchanged
    /// columns stay as they are (DELETE + INSERT would rewrite every one).
    async fn upsert_customer_rows(&mut self, rows: &[CustomerRow]) -> QueryResult<()>;
    /// Takes a shared lock on these tags' rows (at most [`IN_CHUNK`] ids) for the
    /// rest of the transaction, so a tag cannot be deleted or retyped while the
    /// transaction writes assignments of it. A tag deleted before the lock was
    /// granted is simply absent from every read that follows. A no-op on
    /// SQLite, whose writers are serialised.
    async fn share_lock_tags(&mut self, ids: &[String]) -> QueryResult<()>;
    /// These tags' rows (at most [`IN_CHUNK`] ids) with their category's name and
    /// exclusive flag, each tag's row share-locked as [`BackendOps::share_lock_tags`]
    /// does: on MySQL one statement where the lock and the read took two round trips.
    async fn locked_catalogue(&mut self, ids: &[String]) -> QueryResult<Vec<CatalogueRow>>;
    /// [`BackendOps::share_lock_tags`] for a writer that refers to the tags
    /// rather than writing their assignments (a rule, a template): answers the
    /// ids that exist once the lock is granted — a read that sees a delete
    /// which committed while it waited, whatever the transaction read before.
    async fn share_lock_existing_tags(&mut self, ids: &[String]) -> QueryResult<Vec<String>>;
    /// Locks these tags' rows exclusively (in id order) for the rest of the
    /// transaction (at most [`IN_CHUNK`] ids): it waits for every transaction
    /// writing assignments of them, and holds off new ones until it ends.
    /// Returns the ids that exist.
    async fn lock_tags(&mut self, ids: &[String]) -> QueryResult<Vec<String>>;
    /// Takes a shared lock on a category's row (a tag is created in it), or an
    /// exclusive one (it is deleted). Answers false when the row is gone once the
    /// lock is granted (deleted by a transaction that committed while this one
    /// waited, whatever it read before). A no-op answering true on SQLite, whose
    /// writers are serialised: there, what the transaction read is current.
    async fn lock_category(&mut self, id: &str, exclusive: bool) -> QueryResult<bool>;
}

/// An id read back by a raw locking statement.
#[derive(QueryableByName)]
struct LockedId {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

/// A locking read of rows by primary key. MariaDB knows no `FOR SHARE` (what
/// Diesel writes for MySQL's shared lock): `LOCK IN SHARE MODE` is understood by
/// MariaDB and MySQL alike. The primary key is forced: on a small table the
/// optimiser prefers a scan, which would lock — and wait for — every row it
/// passes, not just these, and so deadlock with another writer's locks. Rows are
/// locked in id order.
fn lock_query<'a>(table: &str, ids: &'a [String], mode: &'static str) -> MysqlIdsQuery<'a> {
    MysqlIdsQuery {
        before: format!("SELECT id FROM {table} FORCE INDEX (PRIMARY) WHERE id IN"),
        ids,
        after: mode,
    }
}

const SHARED: &str = "ORDER BY id LOCK IN SHARE MODE";
const EXCLUSIVE: &str = "ORDER BY id FOR UPDATE";

/// A tag with its category's name and exclusive flag.
pub(crate) type CatalogueRow = (TagRow, String, bool);

/// [`BackendOps::locked_catalogue`] on MySQL: [`lock_query`]'s shared lock on the
/// tags, reading their rows. The category's columns come from scalar subqueries,
/// which a locking read leaves unlocked (a join would share-lock the category
/// rows too, and so deadlock with making a category exclusive, which locks the
/// category, then its tags); a category missing from the transaction's snapshot
/// (created after it) reads as NULL, and the tag as absent.
fn locked_catalogue_query(ids: &[String]) -> MysqlIdsQuery<'_> {
    MysqlIdsQuery {
        before: "SELECT id, category_id, name, name_key, description, value_type, enum_values, \
                 default_validity_secs, created_at, updated_at, \
                 (SELECT categories.name FROM categories \
                  WHERE categories.id = tags.category_id) AS category_name, \
                 (SELECT categories.is_exclusive FROM categories \
                  WHERE categories.id = tags.category_id) AS category_exclusive \
                 FROM tags FORCE INDEX (PRIMARY) WHERE id IN"
            .to_owned(),
        ids,
        after: SHARED,
    }
}

/// A row of [`locked_catalogue_query`].
#[derive(QueryableByName)]
struct LockedCatalogueRow {
    #[diesel(embed)]
    tag: TagRow,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    category_name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bool>)]
    category_exclusive: Option<bool>,
}

/// Runs [`lock_query`] for these ids; answers the ids found.
async fn lock_rows(
    conn: &mut MysqlConn,
    table: &str,
    ids: &[String],
    mode: &'static str,
) -> QueryResult<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<LockedId> = lock_query(table, ids, mode).load(conn).await?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// A statement Diesel marks uncacheable that is safe to cache by its text.
/// Diesel prepares every upsert and UPDATE anew and closes it after the call,
/// since a changeset's text may vary: on MySQL a prepare round trip (and a
/// close) per statement, on SQLite a parse. Keyed by its full SQL text (no
/// static query id), each text is prepared once per connection instead, and a
/// different text is a different statement — so wrap only statements with few
/// texts, as each stays prepared on its connection. (SQLite's multi-row upserts
/// go through Diesel's own SQLite batch path, which a wrapper would hide; they
/// are still parsed per call.)
#[derive(Debug)]
pub(crate) struct CachedByText<Q>(pub(crate) Q);

impl<Q> diesel::query_builder::QueryId for CachedByText<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB, Q> diesel::query_builder::QueryFragment<DB> for CachedByText<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, out: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

/// Bind parameters one statement may carry: MySQL's placeholder limit.
const MYSQL_MAX_BINDS: usize = 65_535;
/// Bind parameters one statement may carry: SQLite's default variable limit.
const SQLITE_MAX_BINDS: usize = 32_766;
/// Rows in the largest multi-row write statement (see [`in_statements!`]).
const STATEMENT_MAX_ROWS: usize = 1_000;

/// Fails the build when a table's full-size statement would carry more
/// placeholders than either backend allows.
macro_rules! assert_fits {
    ($columns:expr) => {
        const {
            assert!(STATEMENT_MAX_ROWS * $columns <= SQLITE_MAX_BINDS);
            assert!(STATEMENT_MAX_ROWS * $columns <= MYSQL_MAX_BINDS);
        }
    };
}

/// Runs `$body` once per statement-sized chunk of `$rows`, with `$chunk` a
/// `&[Row; N]` of N = 1,000, 100, 10 or 1 rows, largest first. A statement of
/// a fixed row count has a fixed type, which Diesel prepares once per
/// connection and then reuses; a statement of any other row count is built as
/// text and prepared afresh on every call: on MariaDB a prepare and a close
/// round trip per statement, on SQLite a parse of thousands of placeholders.
/// At most 9 + 9 + 9 statements follow the full-size ones.
macro_rules! in_statements {
    ($rows:expr, |$chunk:ident| $body:expr) => {{
        let mut rest = &$rows[..];
        in_statements!(@rows rest, STATEMENT_MAX_ROWS, $chunk, $body);
        in_statements!(@rows rest, 100, $chunk, $body);
        in_statements!(@rows rest, 10, $chunk, $body);
        in_statements!(@rows rest, 1, $chunk, $body);
        debug_assert!(rest.is_empty());
    }};
    (@rows $rest:ident, $size:expr, $chunk:ident, $body:expr) => {
        while let Some(($chunk, tail)) = $rest.split_first_chunk::<{ $size }>() {
            $rest = tail;
            $body;
        }
    };
}

/// Bind parameters per `customer_tags` row (its column count).
const ASSIGNMENT_COLUMNS: usize = 9;
/// Bind parameters per `customers` row (its column count).
const CUSTOMER_COLUMNS: usize = 17;

/// The `SET` list of an assignment upsert: every column but the key and the
/// category (a tag never changes category), from `$new` (MySQL's `VALUES(…)`
/// or SQLite's `excluded`).
macro_rules! assignment_overwrite {
    ($new:ident) => {
        (
            customer_tags::value.eq($new(customer_tags::value)),
            customer_tags::source.eq($new(customer_tags::source)),
            customer_tags::source_ref.eq($new(customer_tags::source_ref)),
            customer_tags::assigned_by.eq($new(customer_tags::assigned_by)),
            customer_tags::assigned_at.eq($new(customer_tags::assigned_at)),
            customer_tags::expires_at.eq($new(customer_tags::expires_at)),
        )
    };
}

/// A multi-row upsert on MySQL, in [`in_statements!`] chunks; `$overwrite`
/// names the macro of its `SET` list.
macro_rules! mysql_upsert {
    ($conn:expr, $rows:expr, $table:path, $columns:expr, $overwrite:ident) => {{
        assert_fits!($columns);
        in_statements!($rows, |chunk| {
            CachedByText(
                diesel::insert_into($table)
                    .values(chunk)
                    .on_conflict(diesel::dsl::DuplicatedKeys)
                    .do_update()
                    .set($overwrite!(inserted)),
            )
            .execute($conn)
            .await?
        });
        Ok(())
    }};
}

/// [`mysql_upsert!`] on SQLite, conflicting on `$target`: diesel-async cannot
/// batch-insert on SQLite, so the rows go to the connection's blocking thread.
macro_rules! sqlite_upsert {
    ($conn:expr, $rows:expr, $table:path, $columns:expr, $target:expr, $overwrite:ident) => {{
        use diesel::upsert::excluded;
        assert_fits!($columns);
        if $rows.is_empty() {
            return Ok(());
        }
        let rows = $rows.to_vec();
        $conn
            .spawn_blocking(move |conn| {
                in_statements!(rows, |chunk| {
                    let statement = diesel::insert_into($table)
                        .values(chunk)
                        .on_conflict($target)
                        .do_update()
                        .set($overwrite!(excluded));
                    diesel::RunQueryDsl::execute(statement, conn)?
                });
                Ok(())
            })
            .await
    }};
}

/// The `SET` list of a customer upsert: every column but the id and the
/// creation time, from `$new` (MySQL's `VALUES(…)` or SQLite's `excluded`).
macro_rules! customer_overwrite {
    ($new:ident) => {
        (
            customers::name.eq($new(customers::name)),
            customers::name_key.eq($new(customers::name_key)),
            customers::name_pinyin.eq($new(customers::name_pinyin)),
            customers::gender.eq($new(customers::gender)),
            customers::birthday.eq($new(customers::birthday)),
            customers::province.eq($new(customers::province)),
            customers::city.eq($new(customers::city)),
            customers::district.eq($new(customers::district)),
            customers::address_detail.eq($new(customers::address_detail)),
            customers::company.eq($new(customers::company)),
            customers::source_channel.eq($new(customers::source_channel)),
            customers::phones.eq($new(customers::phones)),
            customers::emails.eq($new(customers::emails)),
            customers::external_ids.eq($new(customers::external_ids)),
            customers::attributes.eq($new(customers::attributes)),
            customers::updated_at.eq($new(customers::updated_at)),
        )
    };
}

diesel::define_sql_function! {
    /// MySQL's `VALUES(column)`: in `ON DUPLICATE KEY UPDATE`, the value the
    /// INSERT tried to write (diesel 2.3's `excluded` is SQLite/PostgreSQL only).
    #[sql_name = "VALUES"]
    fn inserted<ST: diesel::sql_types::SingleValue>(column: ST) -> ST;
}

impl BackendOps for MysqlConn {
    async fn upsert_assignment_rows(&mut self, rows: &[AssignmentRow]) -> QueryResult<()> {
        mysql_upsert!(
            self,
            rows,
            customer_tags::table,
            ASSIGNMENT_COLUMNS,
            assignment_overwrite
        )
    }

    async fn upsert_customer_rows(&mut self, rows: &[CustomerRow]) -> QueryResult<()> {
        mysql_upsert!(
            self,
            rows,
            customers::table,
            CUSTOMER_COLUMNS,
            customer_overwrite
        )
    }

    async fn lock_customers(&mut self, ids: &[String]) -> QueryResult<Vec<String>> {
        if let [id] = ids {
            // A single id keeps the statement static: prepared once per connection.
            return customers::table
                .select(customers::id)
                .filter(customers::id.eq(id))
                .for_update()
                .load(self)
                .await;
        }
        customers::table
            .select(customers::id)
            .filter(ids_in(customers::id, ids))
            .order(customers::id)
            .for_update()
            .load(self)
            .await
    }

    async fn share_lock_tags(&mut self, ids: &[String]) -> QueryResult<()> {
        lock_rows(self, "tags", ids, SHARED).await.map(|_| ())
    }

    async fn locked_catalogue(&mut self, ids: &[String]) -> QueryResult<Vec<CatalogueRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<LockedCatalogueRow> = locked_catalogue_query(ids).load(self).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| Some((row.tag, row.category_name?, row.category_exclusive?)))
            .collect())
    }

    async fn share_lock_existing_tags(&mut self, ids: &[String]) -> QueryResult<Vec<String>> {
        lock_rows(self, "tags", ids, SHARED).await
    }

    async fn lock_tags(&mut self, ids: &[String]) -> QueryResult<Vec<String>> {
        lock_rows(self, "tags", ids, EXCLUSIVE).await
    }

    async fn lock_category(&mut self, id: &str, exclusive: bool) -> QueryResult<bool> {
        let mode = if exclusive { EXCLUSIVE } else { SHARED };
        let found = lock_rows(self, "categories", &[id.to_owned()], mode).await?;
        Ok(!found.is_empty())
    }
}

impl BackendOps for SqliteConn {
    async fn upsert_assignment_rows(&mut self, rows: &[AssignmentRow]) -> QueryResult<()> {
        sqlite_upsert!(
            self,
            rows,
            customer_tags::table,
            ASSIGNMENT_COLUMNS,
            (customer_tags::customer_id, customer_tags::tag_id),
            assignment_overwrite
        )
    }

    async fn upsert_customer_rows(&mut self, rows: &[CustomerRow]) -> QueryResult<()> {
        sqlite_upsert!(
            self,
            rows,
            customers::table,
            CUSTOMER_COLUMNS,
            customers::id,
            customer_overwrite
        )
    }

    async fn lock_customers(&mut self, ids: &[String]) -> QueryResult<Vec<String>> {
        // SQLite has no row locks: the write guard already makes this transaction the only writer.
        if let [id] = ids {
            return customers::table
                .select(customers::id)
                .filter(customers::id.eq(id))
                .load(self)
                .await;
        }
        customers::table
            .select(customers::id)
            .filter(ids_in(customers::id, ids))
            .order(customers::id)
            .load(self)
            .await
    }

    async fn share_lock_tags(&mut self, _ids: &[String]) -> QueryResult<()> {
        Ok(())
    }

    async fn locked_catalogue(&mut self, ids: &[String]) -> QueryResult<Vec<CatalogueRow>> {
        // Writers are serialised: a plain read is the current catalogue.
        let query = tags::table
            .inner_join(categories::table.on(categories::id.eq(tags::category_id)))
            .select((
                TagRow::as_select(),
                categories::name,
                categories::is_exclusive,
            ));
        match ids {
            // One tag: a static statement, prepared once per connection.
            [tag_id] => query.filter(tags::id.eq(tag_id)).load(self).await,
            _ => query.filter(ids_in(tags::id, ids)).load(self).await,
        }
    }

    async fn share_lock_existing_tags(&mut self, ids: &[String]) -> QueryResult<Vec<String>> {
        self.lock_tags(ids).await
    }

    async fn lock_tags(&mut self, ids: &[String]) -> QueryResult<Vec<String>> {
        // No row locks here either: the write guard makes this transaction the only writer.
        tags::table
            .select(tags::id)
            .filter(ids_in(tags::id, ids))
            .order(tags::id)
            .load(self)
            .await
    }

    async fn lock_category(&mut self, _id: &str, _exclusive: bool) -> QueryResult<bool> {
        Ok(true)
    }
}

/// Bulk reads. On SQLite the rows are built on the connection's blocking
/// thread, in one hop: diesel-async's own `load` first copies every value of
/// every row (an allocation per value, under SQLite's allocator mutex) to build
/// the rows on the async side, which made the reads that sweep many rows (a
/// dedupe run reading every customer, the segment index's build and reloads)
/// mostly allocator work. Two traits with one method name: a query body
/// written once calls `conn.load_rows(query)` and each backend's expansion
/// finds its own.
pub(crate) trait SqliteLoadRows {
    // Futures spelled out as `Send`: inferred through a generic `async fn`, their
    // `Send` is not general enough for the job tasks spawned on them.
    fn load_rows<Q, U>(&mut self, query: Q) -> impl Future<Output = QueryResult<Vec<U>>> + Send
    where
        Q: diesel::query_dsl::LoadQuery<'static, SqliteConnection, U> + Send + 'static,
        U: Send + 'static;
}

impl SqliteLoadRows for SqliteConn {
    fn load_rows<Q, U>(&mut self, query: Q) -> impl Future<Output = QueryResult<Vec<U>>> + Send
    where
        Q: diesel::query_dsl::LoadQuery<'static, SqliteConnection, U> + Send + 'static,
        U: Send + 'static,
    {
        self.spawn_blocking(move |conn| diesel::RunQueryDsl::load(query, conn))
    }
}

/// [`SqliteLoadRows`] for MySQL: diesel-async's `load`.
pub(crate) trait MysqlLoadRows {
    fn load_rows<'conn, Q, U>(
        &'conn mut self,
        query: Q,
    ) -> impl Future<Output = QueryResult<Vec<U>>> + Send + 'conn
    where
        Q: diesel_async::methods::LoadQuery<'static, MysqlConn, U> + Send + 'static,
        U: Send + 'static;
}

impl MysqlLoadRows for MysqlConn {
    fn load_rows<'conn, Q, U>(
        &'conn mut self,
        query: Q,
    ) -> impl Future<Output = QueryResult<Vec<U>>> + Send + 'conn
    where
        Q: diesel_async::methods::LoadQuery<'static, MysqlConn, U> + Send + 'static,
        U: Send + 'static,
    {
        query.load(self)
    }
}

/// Ids per `IN (…)` list.
pub(crate) const IN_CHUNK: usize = 1_000;
/// Rows a loop reads and rewrites per pass when it works through many rows.
pub(crate) const ROWS_PER_PASS: usize = 1_500;
/// Declares `BatchInsert` (one multi-row INSERT method per table) and
/// implements it for both backends: diesel-async cannot batch-insert on
/// SQLite, but sync Diesel can, so SQLite hands its rows to the blocking thread.
macro_rules! batch_inserts {
    ($($method:ident($row:ty, $columns:literal) => $table:path;)+) => {
        pub(crate) trait BatchInsert {
            $(async fn $method(&mut self, rows: &[$row]) -> QueryResult<()>;)+
        }

        impl BatchInsert for MysqlConn {
            $(async fn $method(&mut self, rows: &[$row]) -> QueryResult<()> {
                assert_fits!($columns);
                in_statements!(rows, |chunk| {
                    diesel::insert_into($table).values(chunk).execute(self).await?
                });
                Ok(())
            })+
        }

        impl BatchInsert for SqliteConn {
            $(async fn $method(&mut self, rows: &[$row]) -> QueryResult<()> {
                if rows.is_empty() {
                    return Ok(());
                }
                let rows = rows.to_vec();
                self.spawn_blocking(move |conn| {
                    in_statements!(rows, |chunk| {
                        diesel::RunQueryDsl::execute(diesel::insert_into($table).values(chunk), conn)?
                    });
                    Ok(())
                })
                .await
            })+
        }
    };
}

batch_inserts! {
    // (row type, columns per row) => table
    insert_assignment_rows(AssignmentRow, 9) => customer_tags::table;
    insert_history_rows(HistoryRow, 12) => tag_history::table;
    insert_customer_rows(CustomerRow, 17) => customers::table;
    insert_phone_rows(PhoneRow, 3) => customer_phones::table;
    insert_email_rows(EmailRow, 3) => customer_emails::table;
    insert_external_id_rows(ExternalIdRow, 3) => customer_external_ids::table;
    insert_rejected_rows(RejectedRowRow, 6) => job_rejected_rows::table;
    insert_purchase_rows(PurchaseRow, 10) => purchases::table;
    insert_purchase_item_rows(PurchaseItemRow, 9) => purchase_items::table;
    insert_interaction_rows(InteractionRow, 12) => interactions::table;
    insert_import_change_rows(ImportChangeRow, 4) => import_changes::table;
    insert_merged_customer_rows(MergedCustomerRow, 3) => merged_customers::table;
    insert_merge_rows(MergeRow, 10) => merges::table;
    insert_field_history_rows(FieldHistoryRow, 9) => customer_field_history::table;
    insert_cleanse_count_rows(FieldCountRow, 5) => cleanse_field_counts::table;
    insert_cleanse_unfixable_rows(UnfixableRow, 6) => cleanse_unfixable::table;
    insert_segment_member_rows(SegmentMemberRow, 2) => segment_members::table;
}

/// Now, in UTC, truncated to microseconds: what MySQL's DATETIME(6) keeps, so
/// both backends read back exactly what was written.
pub(crate) fn now() -> NaiveDateTime {
    truncate_to_micros(Utc::now().naive_utc())
}

pub(crate) fn truncate_to_micros(time: NaiveDateTime) -> NaiveDateTime {
    let nanos = time.nanosecond() / 1_000 * 1_000;
    time.with_nanosecond(nanos).unwrap_or(time)
}

/// How long a caller waits for a pooled connection, or for a new one to open.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend
/// is open. `$body` yields a plain value: its errors leave through `?` or
/// `return Err(..)` (so the macro sees them), and a connection that failed in
/// a way that may have broken it is not reused.
macro_rules! with_conn {
    ($store:expr, |$conn:ident| $body:expr) => {
        match &$store.pool {
            $crate::db::Pool::Sqlite(pool) => {
                let mut pooled = pool.get().await.map_err($crate::db::pool_error)?;
                let result: $crate::error::StoreResult<_> = async {
                    let $conn: &mut $crate::db::SqliteConn = &mut pooled;
                    Ok($body)
                }
                .await;
                $crate::db::release(pooled, &result);
                result?
            }
            $crate::db::Pool::Mysql(pool) => {
                let mut pooled = pool.get().await.map_err($crate::db::pool_error)?;
                let result: $crate::error::StoreResult<_> = async {
                    let $conn: &mut $crate::db::MysqlConn = &mut pooled;
                    Ok($body)
                }
                .await;
                $crate::db::release(pooled, &result);
                result?
            }
        }
    };
}

/// Runs `$body` (returning `StoreResult<T>`) in one write transaction.
macro_rules! write_transaction {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let _writer = $crate::db::write_guard($store.write_lock.as_ref()).await;
        let value = with_conn!($store, |outer| {
            use diesel_async::AsyncConnection as _;
            outer
                .transaction::<_, $crate::error::StoreError, _>(async move |$conn| $body)
                .await?
        });
        $store.note_write();
        $crate::error::StoreResult::Ok(value)
    }};
}

/// [`write_transaction!`] for a change that deletes customers or brings them
/// back, which may leave no change row for the segment index to follow. `$body`
/// returns `StoreResult<(T, Vec<String>)>`: its value and the customers whose
/// existence it may have changed, journaled once the transaction has committed
/// (so that a reader who sees the call return finds them there) — see
/// `Store::take_removals`.
macro_rules! removing_transaction {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let (value, customer_ids) = write_transaction!($store, |$conn| $body)?;
        $store.note_removals(customer_ids);
        $crate::error::StoreResult::Ok(value)
    }};
}

/// Runs `$body` (returning `StoreResult<T>`) in one write transaction that
/// commits only when `$commit` is true: a rehearsal (a dry run) executes every
/// statement, so it meets every constraint a real run would, then rolls back.
macro_rules! rehearsable_transaction {
    ($store:expr, $commit:expr, |$conn:ident| $body:expr) => {{
        let _writer = $crate::db::write_guard($store.write_lock.as_ref()).await;
        let commit: bool = $commit;
        let value = $crate::db::with_conn!($store, |outer| {
            $crate::db::begin(outer).await?;
            let result: $crate::error::StoreResult<_> = async {
                let $conn = &mut *outer;
                $body
            }
            .await;
            $crate::db::end(outer, commit, result).await?
        });
        if commit {
            $store.note_write();
        }
        $crate::error::StoreResult::Ok(value)
    }};
}

pub(crate) async fn begin<C: AsyncConnection>(conn: &mut C) -> StoreResult<()> {
    use diesel_async::TransactionManager as _;
    C::TransactionManager::begin_transaction(conn).await?;
    Ok(())
}

/// Commits (when `commit` and the body succeeded) or rolls back.
pub(crate) async fn end<C: AsyncConnection, T>(
    conn: &mut C,
    commit: bool,
    result: StoreResult<T>,
) -> StoreResult<T> {
    use diesel_async::TransactionManager as _;
    match result {
        Ok(value) if commit => {
            C::TransactionManager::commit_transaction(conn).await?;
            Ok(value)
        }
        Ok(value) => {
            C::TransactionManager::rollback_transaction(conn).await?;
            Ok(value)
        }
        Err(error) => {
            // A failed rollback marks the connection broken; the pool then discards it.
            if let Err(rollback) = C::TransactionManager::rollback_transaction(conn).await {
                tracing::warn!(%rollback, "rollback after a failed transaction failed");
            }
            Err(error)
        }
    }
}

pub(crate) use {rehearsable_transaction, removing_transaction, with_conn, write_transaction};

#[cfg(test)]
mod tests {
    use diesel::ExpressionMethods as _;
    use diesel::mysql::Mysql;
    use diesel::query_builder::{QueryFragment, QueryId};

    use super::CachedByText;
    use crate::schema::tags;

    #[test]
    fn an_upsert_diesel_prepares_per_call_is_cached_by_its_text() {
        let upsert = || {
            diesel::insert_into(tags::table)
                .values((tags::id.eq("t"), tags::name.eq("高价值")))
                .on_conflict(diesel::dsl::DuplicatedKeys)
                .do_update()
                .set(tags::name.eq("中价值"))
        };
        let cacheable = |query: &dyn QueryFragment<Mysql>| {
            query.is_safe_to_cache_prepared(&Mysql).expect("walks")
        };
        assert!(!cacheable(&upsert()), "Diesel's own verdict");
        let wrapped = CachedByText(upsert());
        assert!(cacheable(&wrapped));
        // Keyed by its text, never by type: another text is another statement.
        const { assert!(!<CachedByText<()> as QueryId>::HAS_STATIC_QUERY_ID) };
        let text = diesel::debug_query::<Mysql, _>(&wrapped).to_string();
        assert!(text.contains("ON DUPLICATE KEY UPDATE"), "{text}");
    }
}
