//! Raw-database baselines: the rows tagd writes, written directly into a scratch table.
//!
//! `bench_customer_tags` has the shape of `customer_tags` (same columns, key and indexes) and lives
//! in the same database as tagd's tables. Single assignments are one autocommit upsert statement
//! each (`diesel::sql_query`); batches are multi-row INSERTs in one transaction. MySQL goes through
//! diesel-async's `AsyncMysqlConnection`; SQLite through a sync diesel `SqliteConnection` in
//! `spawn_blocking`, in WAL mode with a busy timeout and writers serialised by one mutex.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, Result};
use chrono::NaiveDateTime;
use diesel::{
    Connection, ExpressionMethods, QueryDsl, RunQueryDsl, SqliteConnection,
    sql_types::{Nullable, Text, Timestamp},
};
use diesel_async::{AsyncConnection, AsyncMysqlConnection};

diesel::table! {
    /// The scratch twin of `customer_tags`.
    bench_customer_tags (customer_id, tag_id) {
        customer_id -> Varchar,
        tag_id -> Varchar,
        category_id -> Varchar,
        value -> Nullable<Varchar>,
        source -> Varchar,
        source_ref -> Varchar,
        assigned_by -> Varchar,
        assigned_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
    }
}

/// `customer_tags` from `migrations/mysql`, renamed.
const MYSQL_DDL: &[&str] = &["CREATE TABLE IF NOT EXISTS bench_customer_tags (
        customer_id VARCHAR(36) NOT NULL,
        tag_id VARCHAR(36) NOT NULL,
        category_id VARCHAR(36) NOT NULL,
        value VARCHAR(1000) NULL,
        source VARCHAR(16) NOT NULL,
        source_ref VARCHAR(200) NOT NULL,
        assigned_by VARCHAR(100) NOT NULL,
        assigned_at DATETIME(6) NOT NULL,
        expires_at DATETIME(6) NULL,
        PRIMARY KEY (customer_id, tag_id),
        KEY bench_customer_tags_tag (tag_id, customer_id),
        KEY bench_customer_tags_category (category_id),
        KEY bench_customer_tags_expires (expires_at)
    ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin"];

/// `customer_tags` from `migrations/sqlite`, renamed.
const SQLITE_DDL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS bench_customer_tags (
        customer_id VARCHAR(36) NOT NULL,
        tag_id VARCHAR(36) NOT NULL,
        category_id VARCHAR(36) NOT NULL,
        value VARCHAR(1000) NULL,
        source VARCHAR(16) NOT NULL,
        source_ref VARCHAR(200) NOT NULL,
        assigned_by VARCHAR(100) NOT NULL,
        assigned_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP NULL,
        PRIMARY KEY (customer_id, tag_id)
    )",
    "CREATE INDEX IF NOT EXISTS bench_customer_tags_tag ON bench_customer_tags (tag_id, customer_id)",
    "CREATE INDEX IF NOT EXISTS bench_customer_tags_category ON bench_customer_tags (category_id)",
    "CREATE INDEX IF NOT EXISTS bench_customer_tags_expires ON bench_customer_tags (expires_at)",
];

const MYSQL_UPSERT: &str = "INSERT INTO bench_customer_tags \
    (customer_id, tag_id, category_id, value, source, source_ref, assigned_by, assigned_at, expires_at) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
    ON DUPLICATE KEY UPDATE category_id = VALUES(category_id), value = VALUES(value), \
    source = VALUES(source), source_ref = VALUES(source_ref), assigned_by = VALUES(assigned_by), \
    assigned_at = VALUES(assigned_at), expires_at = VALUES(expires_at)";

const SQLITE_UPSERT: &str = "INSERT INTO bench_customer_tags \
    (customer_id, tag_id, category_id, value, source, source_ref, assigned_by, assigned_at, expires_at) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
    ON CONFLICT (customer_id, tag_id) DO UPDATE SET category_id = excluded.category_id, \
    value = excluded.value, source = excluded.source, source_ref = excluded.source_ref, \
    assigned_by = excluded.assigned_by, assigned_at = excluded.assigned_at, \
    expires_at = excluded.expires_at";

/// Columns per row, for the placeholder limit.
const COLUMNS: usize = 9;
/// MySQL/MariaDB's limit on placeholders in one prepared statement.
const MYSQL_MAX_PLACEHOLDERS: usize = 65_535;
/// SQLite's default `SQLITE_MAX_VARIABLE_NUMBER` (since 3.32).
const SQLITE_MAX_PLACEHOLDERS: usize = 32_766;

/// One tag assignment as stored.
#[derive(Clone, Debug, diesel::Insertable)]
#[diesel(table_name = bench_customer_tags, treat_none_as_default_value = false)]
pub struct Row {
    pub customer_id: String,
    pub tag_id: String,
    pub category_id: String,
    pub value: Option<String>,
    pub source: String,
    pub source_ref: String,
    pub assigned_by: String,
    pub assigned_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
}

/// The current UTC time truncated to microseconds, as tagd stores it.
pub fn now() -> NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    let micros = now.and_utc().timestamp_micros();
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.naive_utc())
        .unwrap_or(now)
}

/// Connections to the scratch table, one per caller.
pub enum RawDb {
    Mysql {
        conns: Vec<tokio::sync::Mutex<AsyncMysqlConnection>>,
    },
    Sqlite {
        conns: Vec<Arc<std::sync::Mutex<SqliteConnection>>>,
        /// Writers are serialised, as tagd serialises its SQLite writes.
        write_lock: Arc<std::sync::Mutex<()>>,
    },
}

/// How SQLite connections are set up.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub path: PathBuf,
    /// Value for `PRAGMA synchronous` (FULL, NORMAL, ...).
    pub synchronous: String,
    pub busy_timeout_ms: u32,
}

impl RawDb {
    /// Opens `callers` connections to MySQL database `url` and creates the scratch table if it is missing.
    pub async fn mysql(url: &str, callers: usize) -> Result<Self> {
        let mut conns = Vec::with_capacity(callers.max(1));
        for _ in 0..callers.max(1) {
            let mut conn = AsyncMysqlConnection::establish(url)
                .await
                .with_context(|| format!("connecting to {url}"))?;
            if conns.is_empty() {
                for ddl in MYSQL_DDL {
                    diesel_async::RunQueryDsl::execute(diesel::sql_query(*ddl), &mut conn)
                        .await
                        .context("creating bench_customer_tags")?;
                }
            }
            conns.push(tokio::sync::Mutex::new(conn));
        }
        Ok(Self::Mysql { conns })
    }

    /// Opens `callers` connections to the SQLite file and creates the scratch table if it is missing.
    pub async fn sqlite(options: &SqliteOptions, callers: usize) -> Result<Self> {
        let options = options.clone();
        tokio::task::spawn_blocking(move || {
            let mut conns = Vec::with_capacity(callers.max(1));
            for _ in 0..callers.max(1) {
                let mut conn = open_sqlite(&options)?;
                if conns.is_empty() {
                    for ddl in SQLITE_DDL {
                        diesel::sql_query(*ddl)
                            .execute(&mut conn)
                            .context("creating bench_customer_tags")?;
                    }
                }
                conns.push(Arc::new(std::sync::Mutex::new(conn)));
            }
            Ok(Self::Sqlite {
                conns,
                write_lock: Arc::new(std::sync::Mutex::new(())),
            })
        })
        .await
        .context("sqlite setup task panicked")?
    }

    /// Writes `row` as one autocommit upsert on `caller`'s connection.
    pub async fn upsert(&self, caller: usize, row: Row) -> Result<()> {
        match self {
            Self::Mysql { conns } => {
                let mut conn = conns[caller % conns.len()].lock().await;
                let query = diesel::sql_query(MYSQL_UPSERT)
                    .bind::<Text, _>(row.customer_id)
                    .bind::<Text, _>(row.tag_id)
                    .bind::<Text, _>(row.category_id)
                    .bind::<Nullable<Text>, _>(row.value)
                    .bind::<Text, _>(row.source)
                    .bind::<Text, _>(row.source_ref)
                    .bind::<Text, _>(row.assigned_by)
                    .bind::<Timestamp, _>(row.assigned_at)
                    .bind::<Nullable<Timestamp>, _>(row.expires_at);
                diesel_async::RunQueryDsl::execute(query, &mut *conn)
                    .await
                    .context("mysql upsert")?;
                Ok(())
            }
            Self::Sqlite { conns, write_lock } => {
                let conn = Arc::clone(&conns[caller % conns.len()]);
                let write_lock = Arc::clone(write_lock);
                tokio::task::spawn_blocking(move || -> Result<()> {
                    let _writer = write_lock
                        .lock()
                        .map_err(|_| anyhow::anyhow!("sqlite write lock poisoned"))?;
                    let mut conn = conn
                        .lock()
                        .map_err(|_| anyhow::anyhow!("sqlite connection lock poisoned"))?;
                    diesel::sql_query(SQLITE_UPSERT)
                        .bind::<Text, _>(row.customer_id)
                        .bind::<Text, _>(row.tag_id)
                        .bind::<Text, _>(row.category_id)
                        .bind::<Nullable<Text>, _>(row.value)
                        .bind::<Text, _>(row.source)
                        .bind::<Text, _>(row.source_ref)
                        .bind::<Text, _>(row.assigned_by)
                        .bind::<Timestamp, _>(row.assigned_at)
                        .bind::<Nullable<Timestamp>, _>(row.expires_at)
                        .execute(&mut *conn)
                        .context("sqlite upsert")?;
                    Ok(())
                })
                .await
                .context("sqlite upsert task panicked")?
            }
        }
    }

    /// Writes `rows` with multi-row INSERTs of at most `max_rows` rows (`None`: as large as the
    /// backend's placeholder limit allows), in one transaction on `caller`'s connection.
    pub async fn insert_batch(
        &self,
        caller: usize,
        rows: Arc<Vec<Row>>,
        max_rows: Option<usize>,
    ) -> Result<()> {
        match self {
            Self::Mysql { conns } => {
                let mut conn = conns[caller % conns.len()].lock().await;
                let chunk = chunk_rows(MYSQL_MAX_PLACEHOLDERS, max_rows);
                conn.transaction::<_, anyhow::Error, _>(async |conn| {
                    for part in rows.chunks(chunk) {
                        diesel_async::RunQueryDsl::execute(
                            diesel::insert_into(bench_customer_tags::table).values(part),
                            conn,
                        )
                        .await
                        .context("mysql multi-row insert")?;
                    }
                    Ok(())
                })
                .await
            }
            Self::Sqlite { conns, write_lock } => {
                let conn = Arc::clone(&conns[caller % conns.len()]);
                let write_lock = Arc::clone(write_lock);
                tokio::task::spawn_blocking(move || -> Result<()> {
                    let _writer = write_lock
                        .lock()
                        .map_err(|_| anyhow::anyhow!("sqlite write lock poisoned"))?;
                    let mut conn = conn
                        .lock()
                        .map_err(|_| anyhow::anyhow!("sqlite connection lock poisoned"))?;
                    let chunk = chunk_rows(SQLITE_MAX_PLACEHOLDERS, max_rows);
                    conn.immediate_transaction::<_, anyhow::Error, _>(|conn| {
                        for part in rows.chunks(chunk) {
                            diesel::insert_into(bench_customer_tags::table)
                                .values(part)
                                .execute(conn)
                                .context("sqlite multi-row insert")?;
                        }
                        Ok(())
                    })
                })
                .await
                .context("sqlite batch task panicked")?
            }
        }
    }

    /// Rows currently in the scratch table with tag `tag_id` (a sanity check for the report).
    pub async fn count_tag(&self, tag_id: &str) -> Result<i64> {
        use bench_customer_tags::dsl;
        match self {
            Self::Mysql { conns } => {
                let mut conn = conns[0].lock().await;
                diesel_async::RunQueryDsl::get_result(
                    dsl::bench_customer_tags
                        .filter(dsl::tag_id.eq(tag_id.to_owned()))
                        .count(),
                    &mut *conn,
                )
                .await
                .context("counting scratch rows")
            }
            Self::Sqlite { conns, .. } => {
                let conn = Arc::clone(&conns[0]);
                let tag_id = tag_id.to_owned();
                tokio::task::spawn_blocking(move || -> Result<i64> {
                    let mut conn = conn
                        .lock()
                        .map_err(|_| anyhow::anyhow!("sqlite connection lock poisoned"))?;
                    dsl::bench_customer_tags
                        .filter(dsl::tag_id.eq(tag_id))
                        .count()
                        .get_result(&mut *conn)
                        .context("counting scratch rows")
                })
                .await
                .context("sqlite count task panicked")?
            }
        }
    }
}

/// `base` (a server URL without a database) with `/database` appended.
pub fn mysql_database_url(base: &str, database: &str) -> String {
    format!("{}/{database}", base.trim_end_matches('/'))
}

/// Creates database `name` on the server at `base`.
pub async fn mysql_create_database(base: &str, name: &str) -> Result<()> {
    let mut conn = AsyncMysqlConnection::establish(base)
        .await
        .with_context(|| format!("connecting to {base}"))?;
    let sql = format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin");
    diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), &mut conn)
        .await
        .with_context(|| format!("creating database {name}"))?;
    Ok(())
}

/// Drops database `name` on the server at `base`, if it exists.
pub async fn mysql_drop_database(base: &str, name: &str) -> Result<()> {
    let mut conn = AsyncMysqlConnection::establish(base)
        .await
        .with_context(|| format!("connecting to {base}"))?;
    let sql = format!("DROP DATABASE IF EXISTS `{name}`");
    diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), &mut conn)
        .await
        .with_context(|| format!("dropping database {name}"))?;
    Ok(())
}

/// One row of a single-value query, for server facts in the report.
#[derive(diesel::QueryableByName)]
struct TextValue {
    #[diesel(sql_type = Text)]
    value: String,
}

/// `SELECT <expr> AS value` on the server at `base`, e.g. `VERSION()`.
pub async fn mysql_scalar(base: &str, expr: &str) -> Result<String> {
    let mut conn = AsyncMysqlConnection::establish(base)
        .await
        .with_context(|| format!("connecting to {base}"))?;
    let row: TextValue = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(format!("SELECT CAST({expr} AS CHAR) AS value")),
        &mut conn,
    )
    .await
    .with_context(|| format!("SELECT {expr}"))?;
    Ok(row.value)
}

/// Rows per INSERT: `max_rows` if given, never more than `max_placeholders` allows.
fn chunk_rows(max_placeholders: usize, max_rows: Option<usize>) -> usize {
    let limit = max_placeholders / COLUMNS;
    max_rows.map_or(limit, |rows| rows.clamp(1, limit))
}

/// Opens one SQLite connection: WAL, busy timeout, the chosen `synchronous`.
pub fn open_sqlite(options: &SqliteOptions) -> Result<SqliteConnection> {
    let url = path_str(&options.path)?;
    let mut conn =
        SqliteConnection::establish(url).with_context(|| format!("opening sqlite {url}"))?;
    let pragmas = [
        "PRAGMA journal_mode = WAL".to_owned(),
        format!("PRAGMA busy_timeout = {}", options.busy_timeout_ms),
        format!("PRAGMA synchronous = {}", options.synchronous),
    ];
    for pragma in &pragmas {
        diesel::sql_query(pragma.as_str())
            .execute(&mut conn)
            .with_context(|| format!("sqlite {pragma}"))?;
    }
    Ok(conn)
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("path is not UTF-8: {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(customer: usize, tag: &str, value: Option<String>) -> Row {
        Row {
            customer_id: format!("c-{customer:05}"),
            tag_id: tag.to_owned(),
            category_id: "cat".to_owned(),
            value,
            source: "MANUAL".to_owned(),
            source_ref: String::new(),
            assigned_by: "bench".to_owned(),
            assigned_at: now(),
            expires_at: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_upserts_and_batches() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            path: dir.path().join("raw.db"),
            synchronous: "FULL".to_owned(),
            busy_timeout_ms: 5000,
        };
        let db = RawDb::sqlite(&options, 2).await.unwrap();
        for i in 0..10 {
            db.upsert(i % 2, row(i % 3, "score", Some(i.to_string())))
                .await
                .unwrap();
        }
        assert_eq!(db.count_tag("score").await.unwrap(), 3);
        // Larger than one statement's placeholder budget, so it takes two INSERTs.
        let rows: Vec<Row> = (0..5000).map(|i| row(i, "flag", None)).collect();
        db.insert_batch(0, Arc::new(rows), None).await.unwrap();
        assert_eq!(db.count_tag("flag").await.unwrap(), 5000);
    }
}
