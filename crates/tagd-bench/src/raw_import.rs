//! Raw-database baseline of an import: the file's customers written directly into scratch tables.
//!
//! `bench_customers`, `bench_customer_phones`, `bench_customer_emails`,
//! `bench_customer_external_ids` and `bench_customer_tags` have the shape of the tables without
//! the prefix (same columns, keys and indexes) and live in the same database as tagd's tables:
//! everything the file holds — each row's customer, phone, email, the identity an import knows it
//! by and its two tags. (tagd also writes a history row per tag and a record per customer for
//! RevertImport; those are its own cost, not the file's.) The rows of the import file are
//! generated again (not read from the file), with UUIDv7 ids as tagd makes them, and written with
//! multi-row INSERTs (diesel `insert_into(..).values(&[rows])`) as large as the placeholder limit
//! allows: one transaction per chunk of customers holding the INSERTs. The tables are dropped
//! afterwards so that they do not weigh on what is measured next.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::{QueryDsl, RunQueryDsl};
use diesel_async::{AsyncConnection, AsyncMysqlConnection};

use crate::{
    import::{FileKind, person},
    raw::{self, SqliteOptions},
};

diesel::table! {
    /// The scratch twin of `customers`.
    bench_customers (id) {
        id -> Varchar,
        name -> Varchar,
        name_key -> Varchar,
        gender -> Varchar,
        birthday -> Nullable<Date>,
        province -> Varchar,
        city -> Varchar,
        district -> Varchar,
        address_detail -> Varchar,
        company -> Varchar,
        source_channel -> Varchar,
        phones -> Text,
        emails -> Text,
        external_ids -> Text,
        attributes -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// The scratch twin of `customer_phones`.
    bench_customer_phones (customer_id, phone) {
        customer_id -> Varchar,
        phone -> Varchar,
        position -> Integer,
    }
}

diesel::table! {
    /// The scratch twin of `customer_emails`.
    bench_customer_emails (customer_id, email) {
        customer_id -> Varchar,
        email -> Varchar,
        position -> Integer,
    }
}

diesel::table! {
    /// The scratch twin of `customer_external_ids`.
    bench_customer_external_ids (channel, external_id) {
        channel -> Varchar,
        external_id -> Varchar,
        customer_id -> Varchar,
    }
}

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

/// The tables from `migrations/mysql`, renamed.
const MYSQL_DDL: &[&str] = &[
    "CREATE TABLE bench_customers (
        id VARCHAR(36) NOT NULL PRIMARY KEY,
        name VARCHAR(200) NOT NULL,
        name_key VARCHAR(600) NOT NULL,
        gender VARCHAR(16) NOT NULL,
        birthday DATE NULL,
        province VARCHAR(100) NOT NULL,
        city VARCHAR(100) NOT NULL,
        district VARCHAR(100) NOT NULL,
        address_detail VARCHAR(500) NOT NULL,
        company VARCHAR(200) NOT NULL,
        source_channel VARCHAR(64) NOT NULL,
        phones TEXT NOT NULL,
        emails TEXT NOT NULL,
        external_ids TEXT NOT NULL,
        attributes TEXT NOT NULL,
        created_at DATETIME(6) NOT NULL,
        updated_at DATETIME(6) NOT NULL
    ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
    "CREATE TABLE bench_customer_phones (
        customer_id VARCHAR(36) NOT NULL,
        phone VARCHAR(32) NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (customer_id, phone),
        KEY bench_customer_phones_phone (phone)
    ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
    "CREATE TABLE bench_customer_emails (
        customer_id VARCHAR(36) NOT NULL,
        email VARCHAR(254) NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (customer_id, email),
        KEY bench_customer_emails_email (email)
    ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
    "CREATE TABLE bench_customer_external_ids (
        channel VARCHAR(64) NOT NULL,
        external_id VARCHAR(200) NOT NULL,
        customer_id VARCHAR(36) NOT NULL,
        PRIMARY KEY (channel, external_id),
        KEY bench_customer_external_ids_customer (customer_id)
    ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
    "CREATE TABLE bench_customer_tags (
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
    ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
];

/// The same tables from `migrations/sqlite`, renamed.
const SQLITE_DDL: &[&str] = &[
    "CREATE TABLE bench_customers (
        id VARCHAR(36) NOT NULL PRIMARY KEY,
        name VARCHAR(200) NOT NULL,
        name_key VARCHAR(600) NOT NULL,
        gender VARCHAR(16) NOT NULL,
        birthday DATE NULL,
        province VARCHAR(100) NOT NULL,
        city VARCHAR(100) NOT NULL,
        district VARCHAR(100) NOT NULL,
        address_detail VARCHAR(500) NOT NULL,
        company VARCHAR(200) NOT NULL,
        source_channel VARCHAR(64) NOT NULL,
        phones TEXT NOT NULL,
        emails TEXT NOT NULL,
        external_ids TEXT NOT NULL,
        attributes TEXT NOT NULL,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )",
    "CREATE TABLE bench_customer_phones (
        customer_id VARCHAR(36) NOT NULL,
        phone VARCHAR(32) NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (customer_id, phone)
    )",
    "CREATE TABLE bench_customer_emails (
        customer_id VARCHAR(36) NOT NULL,
        email VARCHAR(254) NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (customer_id, email)
    )",
    "CREATE TABLE bench_customer_external_ids (
        channel VARCHAR(64) NOT NULL,
        external_id VARCHAR(200) NOT NULL,
        customer_id VARCHAR(36) NOT NULL,
        PRIMARY KEY (channel, external_id)
    )",
    "CREATE TABLE bench_customer_tags (
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
    "CREATE INDEX bench_customer_phones_phone ON bench_customer_phones (phone)",
    "CREATE INDEX bench_customer_emails_email ON bench_customer_emails (email)",
    "CREATE INDEX bench_customer_external_ids_customer ON bench_customer_external_ids (customer_id)",
    "CREATE INDEX bench_customer_tags_tag ON bench_customer_tags (tag_id, customer_id)",
    "CREATE INDEX bench_customer_tags_category ON bench_customer_tags (category_id)",
    "CREATE INDEX bench_customer_tags_expires ON bench_customer_tags (expires_at)",
];

const DROP: &[&str] = &[
    "DROP TABLE IF EXISTS bench_customers",
    "DROP TABLE IF EXISTS bench_customer_phones",
    "DROP TABLE IF EXISTS bench_customer_emails",
    "DROP TABLE IF EXISTS bench_customer_external_ids",
    "DROP TABLE IF EXISTS bench_customer_tags",
];

/// Columns of `customers`, the widest table; it sets the customers per transaction.
const CUSTOMER_COLUMNS: usize = 17;
/// Columns of `customer_tags`, which holds two rows per customer.
const TAG_COLUMNS: usize = 9;
/// MySQL/MariaDB's limit on placeholders in one prepared statement.
const MYSQL_MAX_PLACEHOLDERS: usize = 65_535;
/// SQLite's default `SQLITE_MAX_VARIABLE_NUMBER` (since 3.32).
const SQLITE_MAX_PLACEHOLDERS: usize = 32_766;

#[derive(Clone, Debug, diesel::Insertable)]
#[diesel(table_name = bench_customers, treat_none_as_default_value = false)]
struct CustomerRow {
    id: String,
    name: String,
    name_key: String,
    gender: String,
    birthday: Option<NaiveDate>,
    province: String,
    city: String,
    district: String,
    address_detail: String,
    company: String,
    source_channel: String,
    phones: String,
    emails: String,
    external_ids: String,
    attributes: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, diesel::Insertable)]
#[diesel(table_name = bench_customer_phones)]
struct PhoneRow {
    customer_id: String,
    phone: String,
    position: i32,
}

#[derive(Clone, Debug, diesel::Insertable)]
#[diesel(table_name = bench_customer_emails)]
struct EmailRow {
    customer_id: String,
    email: String,
    position: i32,
}

#[derive(Clone, Debug, diesel::Insertable)]
#[diesel(table_name = bench_customer_external_ids)]
struct ExternalIdRow {
    channel: String,
    external_id: String,
    customer_id: String,
}

#[derive(Clone, Debug, diesel::Insertable)]
#[diesel(table_name = bench_customer_tags, treat_none_as_default_value = false)]
struct TagRow {
    customer_id: String,
    tag_id: String,
    category_id: String,
    value: Option<String>,
    source: String,
    source_ref: String,
    assigned_by: String,
    assigned_at: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
}

/// The rows of one transaction.
#[derive(Default)]
struct Chunk {
    customers: Vec<CustomerRow>,
    phones: Vec<PhoneRow>,
    emails: Vec<EmailRow>,
    external_ids: Vec<ExternalIdRow>,
    tags: Vec<TagRow>,
}

/// A fixed UUID-shaped id for the baseline's `n`th tag (the category is tag 0).
fn fixed_id(n: u64) -> String {
    format!("00000000-0000-7000-8000-{n:012}")
}

/// The stored rows of file rows `from..to`, as tagd would store them (phones in E.164, emails
/// lower-case, lists as JSON text).
fn chunk(kind: FileKind, from: u64, to: u64) -> Chunk {
    let now = raw::now();
    let mut out = Chunk::default();
    for i in from..to {
        let p = person(kind, i);
        let id = uuid::Uuid::now_v7().to_string();
        let phone = format!("+86{}", p.phone);
        let identity = format!("phone:{phone}");
        out.customers.push(CustomerRow {
            id: id.clone(),
            name_key: p.name.to_lowercase(),
            name: p.name,
            gender: String::new(),
            birthday: None,
            province: String::new(),
            city: String::new(),
            district: String::new(),
            address_detail: String::new(),
            company: String::new(),
            source_channel: "spreadsheet".to_owned(),
            phones: format!("[\"{phone}\"]"),
            emails: format!("[\"{}\"]", p.email),
            external_ids: "[]".to_owned(),
            attributes: "{}".to_owned(),
            created_at: now,
            updated_at: now,
        });
        out.phones.push(PhoneRow {
            customer_id: id.clone(),
            phone,
            position: 0,
        });
        out.external_ids.push(ExternalIdRow {
            channel: "spreadsheet".to_owned(),
            external_id: identity,
            customer_id: id.clone(),
        });
        // The file's two tags: one of 3 value tags and one of 4 activity tags.
        for tag in [1 + i % 3, 4 + i / 3 % 4] {
            out.tags.push(TagRow {
                customer_id: id.clone(),
                tag_id: fixed_id(tag),
                category_id: fixed_id(0),
                value: None,
                source: "import".to_owned(),
                source_ref: "baseline".to_owned(),
                assigned_by: "bench".to_owned(),
                assigned_at: now,
                expires_at: None,
            });
        }
        out.emails.push(EmailRow {
            customer_id: id,
            email: p.email,
            position: 0,
        });
    }
    out
}

/// What the baseline measured.
pub struct Measured {
    pub rows: u64,
    pub elapsed: Duration,
    /// Customers per INSERT statement.
    pub rows_per_statement: usize,
}

/// Writes the `rows` customers of `kind` into fresh scratch tables in the MySQL database `url`.
pub async fn mysql(url: &str, kind: FileKind, rows: u64) -> Result<Measured> {
    let mut conn = AsyncMysqlConnection::establish(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    for sql in DROP.iter().chain(MYSQL_DDL) {
        diesel_async::RunQueryDsl::execute(diesel::sql_query(*sql), &mut conn)
            .await
            .with_context(|| format!("preparing the scratch tables: {sql}"))?;
    }
    let per_statement = MYSQL_MAX_PLACEHOLDERS / CUSTOMER_COLUMNS;
    let t0 = Instant::now();
    let mut from = 0;
    while from < rows {
        let to = (from + per_statement as u64).min(rows);
        let part = chunk(kind, from, to);
        conn.transaction::<_, anyhow::Error, _>(async |conn| {
            diesel_async::RunQueryDsl::execute(
                diesel::insert_into(bench_customers::table).values(&part.customers),
                conn,
            )
            .await
            .context("mysql multi-row insert into bench_customers")?;
            diesel_async::RunQueryDsl::execute(
                diesel::insert_into(bench_customer_phones::table).values(&part.phones),
                conn,
            )
            .await
            .context("mysql multi-row insert into bench_customer_phones")?;
            diesel_async::RunQueryDsl::execute(
                diesel::insert_into(bench_customer_emails::table).values(&part.emails),
                conn,
            )
            .await
            .context("mysql multi-row insert into bench_customer_emails")?;
            diesel_async::RunQueryDsl::execute(
                diesel::insert_into(bench_customer_external_ids::table).values(&part.external_ids),
                conn,
            )
            .await
            .context("mysql multi-row insert into bench_customer_external_ids")?;
            for tags in part.tags.chunks(MYSQL_MAX_PLACEHOLDERS / TAG_COLUMNS) {
                diesel_async::RunQueryDsl::execute(
                    diesel::insert_into(bench_customer_tags::table).values(tags),
                    conn,
                )
                .await
                .context("mysql multi-row insert into bench_customer_tags")?;
            }
            Ok(())
        })
        .await?;
        from = to;
    }
    let elapsed = t0.elapsed();
    let written: i64 =
        diesel_async::RunQueryDsl::get_result(bench_customers::table.count(), &mut conn)
            .await
            .context("counting scratch customers")?;
    let tags_written: i64 =
        diesel_async::RunQueryDsl::get_result(bench_customer_tags::table.count(), &mut conn)
            .await
            .context("counting scratch assignments")?;
    for sql in DROP {
        diesel_async::RunQueryDsl::execute(diesel::sql_query(*sql), &mut conn)
            .await
            .with_context(|| format!("dropping the scratch tables: {sql}"))?;
    }
    if written as u64 != rows {
        bail!("the import baseline wrote {written} customers, expected {rows}");
    }
    if tags_written as u64 != 2 * rows {
        bail!("the import baseline wrote {tags_written} assignments, expected two per customer");
    }
    Ok(Measured {
        rows,
        elapsed,
        rows_per_statement: per_statement,
    })
}

/// Writes the `rows` customers of `kind` into fresh scratch tables in the SQLite file.
pub async fn sqlite(options: &SqliteOptions, kind: FileKind, rows: u64) -> Result<Measured> {
    let options = options.clone();
    tokio::task::spawn_blocking(move || -> Result<Measured> {
        let mut conn = raw::open_sqlite(&options)?;
        for sql in DROP.iter().chain(SQLITE_DDL) {
            diesel::sql_query(*sql)
                .execute(&mut conn)
                .with_context(|| format!("preparing the scratch tables: {sql}"))?;
        }
        let per_statement = SQLITE_MAX_PLACEHOLDERS / CUSTOMER_COLUMNS;
        let t0 = Instant::now();
        let mut from = 0;
        while from < rows {
            let to = (from + per_statement as u64).min(rows);
            let part = chunk(kind, from, to);
            conn.immediate_transaction::<_, anyhow::Error, _>(|conn| {
                diesel::insert_into(bench_customers::table)
                    .values(&part.customers)
                    .execute(conn)
                    .context("sqlite multi-row insert into bench_customers")?;
                diesel::insert_into(bench_customer_phones::table)
                    .values(&part.phones)
                    .execute(conn)
                    .context("sqlite multi-row insert into bench_customer_phones")?;
                diesel::insert_into(bench_customer_emails::table)
                    .values(&part.emails)
                    .execute(conn)
                    .context("sqlite multi-row insert into bench_customer_emails")?;
                diesel::insert_into(bench_customer_external_ids::table)
                    .values(&part.external_ids)
                    .execute(conn)
                    .context("sqlite multi-row insert into bench_customer_external_ids")?;
                for tags in part.tags.chunks(SQLITE_MAX_PLACEHOLDERS / TAG_COLUMNS) {
                    diesel::insert_into(bench_customer_tags::table)
                        .values(tags)
                        .execute(conn)
                        .context("sqlite multi-row insert into bench_customer_tags")?;
                }
                Ok(())
            })?;
            from = to;
        }
        let elapsed = t0.elapsed();
        let written: i64 = bench_customers::table
            .count()
            .get_result(&mut conn)
            .context("counting scratch customers")?;
        let tags_written: i64 = bench_customer_tags::table
            .count()
            .get_result(&mut conn)
            .context("counting scratch assignments")?;
        for sql in DROP {
            diesel::sql_query(*sql)
                .execute(&mut conn)
                .with_context(|| format!("dropping the scratch tables: {sql}"))?;
        }
        if written as u64 != rows {
            bail!("the import baseline wrote {written} customers, expected {rows}");
        }
        if tags_written as u64 != 2 * rows {
            bail!(
                "the import baseline wrote {tags_written} assignments, expected two per customer"
            );
        }
        Ok(Measured {
            rows,
            elapsed,
            rows_per_statement: per_statement,
        })
    })
    .await
    .context("sqlite import baseline task panicked")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_baseline_writes_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            path: dir.path().join("raw.db"),
            synchronous: "NORMAL".to_owned(),
            busy_timeout_ms: 5000,
        };
        // More than one statement's worth of customers.
        let measured = sqlite(&options, FileKind::Csv, 2500).await.unwrap();
        assert_eq!(measured.rows, 2500);
        assert_eq!(measured.rows_per_statement, 1927);
    }
}
