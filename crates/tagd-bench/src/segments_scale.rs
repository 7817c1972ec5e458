//! The segments measurement at scale (`--phases segments-sql`): the customers
//! and their tags are written straight into tagd's tables with multi-row SQL
//! INSERTs *before* the server starts (gRPC set-up of 1,000,000 customers ×
//! 15 tags would take longer than the measurement), so the server's start-up
//! includes building the segment index from them. Then, through the real
//! server: CountSegment of three 3–5-term conditions (tags, an attribute, a
//! NOT, a number tag's value) against the same counts as plain SQL; every
//! member of a segment holding everyone (StreamSegmentMembers, one
//! evaluation streamed in chunks of 50,000; and, for comparison,
//! ListSegmentMembers at 1,000 a page) against the SQL select of the same
//! ids; the index's size against the database's tables.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use chrono::Utc;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl as _, SqliteConnection};
use diesel_async::{AsyncConnection, AsyncMysqlConnection, SimpleAsyncConnection as _};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use tagd_proto::v1 as pb;
use tagd_proto::v1::segment_service_client::SegmentServiceClient;
use tonic::transport::Channel;

use crate::report::{Report, thousands};

/// Flag tags customers draw from, and how many each holds (plus the number tag: 15 in all).
const FLAGS: usize = 60;
const FLAGS_PER_CUSTOMER: usize = 14;
const PROVINCES: [&str; 8] = [
    "北京", "上海", "广东", "浙江", "江苏", "四川", "湖北", "山东",
];
const LEVELS: [&str; 3] = ["gold", "silver", "basic"];
/// Rows per INSERT statement: ~1 MB of SQL text, under MariaDB's 16 MB packet limit.
const ROWS_PER_INSERT: usize = 4_000;
/// Customers per transaction (× 15 assignments).
const CUSTOMERS_PER_TRANSACTION: usize = 20_000;

/// Ids of what the set-up wrote.
pub struct Loaded {
    pub customers: usize,
    /// Flag tag ids by their number (`seg-<k>`).
    pub flags: Vec<String>,
    /// The number tag `spend` (0..10,000, every customer).
    pub spend: String,
}

fn id(kind: u32, i: usize) -> String {
    // Canonical lower-case UUIDv7 text, increasing with `i` as tagd's ids increase with time.
    format!("019ad000-{kind:04x}-7000-8000-{i:012x}")
}

/// One connection to tagd's database, either backend.
enum Db {
    Sqlite(SqliteConnection),
    Mysql(AsyncMysqlConnection),
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = Text)]
    #[expect(dead_code, reason = "loaded to be received, as a client would")]
    id: String,
}

impl Db {
    async fn open(database_url: &str) -> Result<Self> {
        Ok(match database_url.strip_prefix("sqlite://") {
            Some(path) => {
                Db::Sqlite(SqliteConnection::establish(path).context("opening tagd's SQLite file")?)
            }
            None => Db::Mysql(
                AsyncMysqlConnection::establish(database_url)
                    .await
                    .context("connecting to tagd's MariaDB database")?,
            ),
        })
    }

    fn mysql(&self) -> bool {
        matches!(self, Db::Mysql(_))
    }

    async fn execute(&mut self, sql: &str) -> Result<()> {
        match self {
            Db::Sqlite(conn) => diesel::connection::SimpleConnection::batch_execute(conn, sql)?,
            Db::Mysql(conn) => conn.batch_execute(sql).await?,
        }
        Ok(())
    }

    /// The first column (`n`, BIGINT) of a one-row query.
    async fn number(&mut self, sql: &str) -> Result<i64> {
        let rows: Vec<Number> = match self {
            Db::Sqlite(conn) => diesel::sql_query(sql).load(conn)?,
            Db::Mysql(conn) => {
                diesel_async::RunQueryDsl::load(diesel::sql_query(sql), conn).await?
            }
        };
        Ok(rows.first().map_or(0, |row| row.n))
    }

    /// How many rows (`id`, text) a query returns, every row received.
    async fn ids(&mut self, sql: &str) -> Result<usize> {
        let rows: Vec<Id> = match self {
            Db::Sqlite(conn) => diesel::sql_query(sql).load(conn)?,
            Db::Mysql(conn) => {
                diesel_async::RunQueryDsl::load(diesel::sql_query(sql), conn).await?
            }
        };
        Ok(rows.len())
    }
}

/// Runs `tagd migrate`, then writes the catalogue, `customers` customers and their 15
/// assignments each straight into the tables.
pub async fn preload(
    tagd: &Path,
    database_url: &str,
    customers: usize,
    report: &mut Report,
    backend: &str,
) -> Result<Loaded> {
    let status = tokio::process::Command::new(tagd)
        .arg("migrate")
        .env("TAGD_DATABASE_URL", database_url)
        .status()
        .await
        .context("running tagd migrate")?;
    ensure!(status.success(), "tagd migrate failed: {status}");
    let t0 = Instant::now();
    let mut db = Db::open(database_url).await?;
    if !db.mysql() {
        // The file is rebuilt by the next run anyway; tagd reopens it with its own settings.
        db.execute("PRAGMA synchronous = OFF").await?;
    }
    let stamp = (Utc::now().naive_utc() - chrono::Duration::days(1))
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string();
    let category = id(1, 0);
    db.execute(&format!(
        "INSERT INTO categories (id, name, name_key, description, is_exclusive, created_at, \
         updated_at) VALUES ('{category}', 'segments', 'segments', '', 0, '{stamp}', '{stamp}')"
    ))
    .await?;
    let flags: Vec<String> = (0..FLAGS).map(|k| id(2, k)).collect();
    let spend = id(2, FLAGS);
    let mut sql = String::from(
        "INSERT INTO tags (id, category_id, name, name_key, description, value_type, \
         enum_values, default_validity_secs, created_at, updated_at) VALUES ",
    );
    for (k, tag) in flags.iter().enumerate() {
        write!(
            sql,
            "('{tag}', '{category}', 'seg-{k}', 'seg-{k}', '', 'flag', '[]', NULL, '{stamp}', \
             '{stamp}'),"
        )?;
    }
    write!(
        sql,
        "('{spend}', '{category}', 'spend', 'spend', '', 'number', '[]', NULL, '{stamp}', \
         '{stamp}')"
    )?;
    db.execute(&sql).await?;

    let mut rng = StdRng::seed_from_u64(20_261_130);
    for start in (0..customers).step_by(CUSTOMERS_PER_TRANSACTION) {
        let end = (start + CUSTOMERS_PER_TRANSACTION).min(customers);
        let mut statements = vec!["BEGIN".to_owned()];
        for chunk_start in (start..end).step_by(ROWS_PER_INSERT) {
            let chunk_end = (chunk_start + ROWS_PER_INSERT).min(end);
            let mut sql = String::from(
                "INSERT INTO customers (id, name, name_key, gender, birthday, province, city, \
                 district, address_detail, company, source_channel, phones, emails, \
                 external_ids, attributes, created_at, updated_at) VALUES ",
            );
            for i in chunk_start..chunk_end {
                let gender = if rng.random_bool(0.5) {
                    "female"
                } else {
                    "male"
                };
                let province = PROVINCES[rng.random_range(0..PROVINCES.len())];
                let level = LEVELS[rng.random_range(0..LEVELS.len())];
                if i > chunk_start {
                    sql.push(',');
                }
                write!(
                    sql,
                    "('{}', '客户 {i:08}', '客户 {i:08}', '{gender}', NULL, '{province}', '', '', \
                     '', '', '', '[]', '[]', '[]', '{{\"level\":\"{level}\"}}', '{stamp}', \
                     '{stamp}')",
                    id(3, i)
                )?;
            }
            statements.push(sql);
        }
        // Assignments in (customer, tag) order: the primary key's order.
        let mut rows = Vec::with_capacity((end - start) * (FLAGS_PER_CUSTOMER + 1));
        for i in start..end {
            let mut held: Vec<usize> = sample(&mut rng, FLAGS, FLAGS_PER_CUSTOMER).into_vec();
            held.sort_unstable();
            let customer = id(3, i);
            for k in held {
                rows.push(format!(
                    "('{customer}', '{}', '{category}', NULL, 'import', '', 'bench', '{stamp}', \
                     NULL)",
                    flags[k]
                ));
            }
            rows.push(format!(
                "('{customer}', '{spend}', '{category}', '{}', 'import', '', 'bench', '{stamp}', \
                 NULL)",
                rng.random_range(0..10_000)
            ));
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            statements.push(format!(
                "INSERT INTO customer_tags (customer_id, tag_id, category_id, value, source, \
                 source_ref, assigned_by, assigned_at, expires_at) VALUES {}",
                chunk.join(",")
            ));
        }
        statements.push("COMMIT".to_owned());
        for statement in &statements {
            db.execute(statement).await.with_context(|| {
                format!(
                    "bulk insert at customer {start}: {}",
                    &statement[..60.min(statement.len())]
                )
            })?;
        }
        if start % 200_000 == 0 {
            eprintln!(
                "bench: {backend}: segments-sql: {} customers written in {:.0} s",
                thousands(end as f64),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    report.note(format!(
        "{backend}: segments-sql set-up: {} customers × 15 tags ({} assignments) written by SQL in \
         {:.1} s",
        thousands(customers as f64),
        thousands((customers * (FLAGS_PER_CUSTOMER + 1)) as f64),
        t0.elapsed().as_secs_f64()
    ));
    Ok(Loaded {
        customers,
        flags,
        spend,
    })
}

pub struct ScaleOn<'a> {
    pub channel: Channel,
    pub database_url: &'a str,
    pub server_pid: Option<u32>,
    pub log_path: &'a Path,
    /// From `tagd serve` to its ready line: mostly the index build.
    pub startup: Duration,
}

/// A condition measured, with the same condition in SQL (`{live}` expands to the assignment
/// liveness test of `t`).
struct Case {
    label: &'static str,
    condition: String,
    sql: String,
}

fn cases(loaded: &Loaded, mysql: bool) -> Vec<Case> {
    let now = Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S%.6f");
    let live = format!("(t.expires_at IS NULL OR t.expires_at > '{now}')");
    let has = |tag: &str| {
        format!(
            "EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag_id = \
             '{tag}' AND {live})"
        )
    };
    let (attr, number) = if mysql {
        (
            "JSON_VALUE(c.attributes, '$.level')",
            "CAST(t.value AS DECIMAL(20,4))",
        )
    } else {
        (
            "json_extract(c.attributes, '$.level')",
            "CAST(t.value AS REAL)",
        )
    };
    let spend = |test: &str| {
        format!(
            "EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag_id = \
             '{}' AND {number} {test} AND {live})",
            loaded.spend
        )
    };
    let count = |filter: String| format!("SELECT COUNT(*) AS n FROM customers c WHERE {filter}");
    vec![
        Case {
            label: "5 terms: 2 tags, province, gender, NOT tag",
            condition: r#"has_tag("seg-3") AND has_tag("seg-7") AND province = "北京" AND gender = "女" AND NOT has_tag("seg-11")"#.to_owned(),
            sql: count(format!(
                "c.province = '北京' AND c.gender = 'female' AND {} AND {} AND NOT {}",
                has(&loaded.flags[3]),
                has(&loaded.flags[7]),
                has(&loaded.flags[11])
            )),
        },
        Case {
            label: "4 terms: tag, attribute, number ≥, NOT tag",
            condition: r#"has_tag("seg-3") AND attr("level") = "gold" AND tag("spend") >= 5000 AND NOT has_tag("seg-11")"#.to_owned(),
            sql: count(format!(
                "{} AND {attr} = 'gold' AND {} AND NOT {}",
                has(&loaded.flags[3]),
                spend(">= 5000"),
                has(&loaded.flags[11])
            )),
        },
        Case {
            label: "3 terms: number between, NOT tag, gender",
            condition: r#"tag("spend") between 2000 and 8000 AND NOT has_tag("seg-0") AND gender = "男""#.to_owned(),
            sql: count(format!(
                "c.gender = 'male' AND {} AND NOT {}",
                spend("BETWEEN 2000 AND 8000"),
                has(&loaded.flags[0])
            )),
        },
    ]
}

fn histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).context("creating latency histogram")
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

fn elapsed_us(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

async fn create(segments: &mut SegmentServiceClient<Channel>, condition: &str) -> Result<String> {
    Ok(segments
        .create_segment(pb::CreateSegmentRequest {
            name: format!("bench {:08x}", rand::random::<u32>()),
            description: "created by tagd-bench".to_owned(),
            condition: Some(pb::ConditionInput {
                form: Some(pb::condition_input::Form::Text(condition.to_owned())),
            }),
        })
        .await
        .with_context(|| format!("CreateSegment {condition}"))?
        .into_inner()
        .id)
}

/// The `key=value` number of the server log's "segment index built" line.
fn build_field(log_path: &Path, key: &str) -> Option<u64> {
    let log = std::fs::read_to_string(log_path).ok()?;
    let line = log
        .lines()
        .find(|line| line.contains("segment index built"))?;
    let line = crate::strip_ansi(line);
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Bytes of the tables that hold the same facts as the index (customers and their tags), data
/// and indexes.
async fn database_bytes(db: &mut Db) -> Result<i64> {
    if db.mysql() {
        db.execute("ANALYZE TABLE customers, customer_tags").await?;
        db.number(
            "SELECT CAST(SUM(data_length + index_length) AS SIGNED) AS n FROM \
             information_schema.tables WHERE table_schema = DATABASE() AND table_name IN \
             ('customers', 'customer_tags')",
        )
        .await
    } else {
        db.number(
            "SELECT CAST(SUM(pgsize) AS INTEGER) AS n FROM dbstat WHERE name IN ('customers', \
             'customer_tags') OR name IN (SELECT name FROM sqlite_master WHERE type = 'index' \
             AND tbl_name IN ('customers', 'customer_tags'))",
        )
        .await
    }
}

#[expect(clippy::too_many_lines, reason = "one measurement, read top to bottom")]
pub async fn measure(
    backend: &str,
    on: &ScaleOn<'_>,
    loaded: &Loaded,
    calls: usize,
    sql_calls: usize,
    report: &mut Report,
) -> Result<()> {
    let n = thousands(loaded.customers as f64);
    let index_bytes = build_field(on.log_path, "bytes");
    let build_ms = build_field(on.log_path, "millis");
    let rss = on
        .server_pid
        .and_then(|pid| crate::import::status_kib(pid, "VmRSS"));
    let hwm = on
        .server_pid
        .and_then(|pid| crate::import::status_kib(pid, "VmHWM"));
    let mut db = Db::open(on.database_url).await?;
    let db_bytes = database_bytes(&mut db).await?;
    let mib = |bytes: f64| bytes / f64::from(1 << 20);
    report.note(format!(
        "{backend}: {n} customers: tagd ready {:.1} s after start (index build {} ms); index \
         {:.0} MiB by its own count; tagd RSS {:.0} MiB (peak {:.0} MiB); customers + \
         customer_tags {:.0} MiB (data + indexes)",
        on.startup.as_secs_f64(),
        build_ms.map_or("?".to_owned(), |ms| thousands(ms as f64)),
        mib(index_bytes.unwrap_or_default() as f64),
        mib(rss.unwrap_or_default() as f64 * 1024.0),
        mib(hwm.unwrap_or_default() as f64 * 1024.0),
        mib(db_bytes as f64),
    ));
    report.check(
        backend,
        &format!("index memory < customers + customer_tags at {n}"),
        &format!("< {:.0} MiB", mib(db_bytes as f64)),
        format!("{:.0} MiB", mib(index_bytes.unwrap_or(u64::MAX) as f64)),
        index_bytes.is_some_and(|bytes| (bytes as f64) < db_bytes as f64),
    );

    let mut segments =
        SegmentServiceClient::new(on.channel.clone()).max_decoding_message_size(64 << 20);
    for case in cases(loaded, db.mysql()) {
        let segment = create(&mut segments, &case.condition).await?;
        let count_once = async |segments: &mut SegmentServiceClient<Channel>| {
            segments
                .count_segment(pb::CountSegmentRequest {
                    segment_id: segment.clone(),
                })
                .await
                .map(tonic::Response::into_inner)
        };
        let first = count_once(&mut segments).await.context("CountSegment")?;
        ensure!(
            first.from_index,
            "the index did not answer {}: {}",
            case.condition,
            first.fallback_reason
        );
        let mut latency = histogram()?;
        for _ in 0..calls {
            let t0 = Instant::now();
            let answer = count_once(&mut segments).await.context("CountSegment")?;
            latency.record(elapsed_us(t0))?;
            ensure!(
                answer.count == first.count,
                "the count changed while measuring"
            );
        }
        let mut sql_latency = histogram()?;
        let mut sql_count = 0;
        for _ in 0..sql_calls {
            let t0 = Instant::now();
            sql_count = db.number(&case.sql).await.context("SQL count")?;
            sql_latency.record(elapsed_us(t0))?;
        }
        let (p50, p99) = (ms(&latency, 0.5), ms(&latency, 0.99));
        let (sql_p50, sql_p99) = (ms(&sql_latency, 0.5), ms(&sql_latency, 0.99));
        let speedup = sql_p50 / p50.max(0.001);
        report.note(format!(
            "{backend}: {n}: CountSegment [{}] = {} members: p50 {p50:.2} ms, p99 {p99:.2} ms \
             ({calls} calls); SQL p50 {sql_p50:.1} ms, p99 {sql_p99:.1} ms ({sql_calls} calls); \
             SQL/index at p50 {speedup:.0}×",
            case.label,
            thousands(first.count as f64),
        ));
        report.check(
            backend,
            &format!("CountSegment equals SQL at {n} [{}]", case.label),
            &sql_count.to_string(),
            first.count.to_string(),
            i64::try_from(first.count).ok() == Some(sql_count),
        );
        report.check(
            backend,
            &format!("CountSegment p99 at {n} [{}]", case.label),
            "≤ 5 ms",
            format!("{p99:.2} ms"),
            p99 <= 5.0,
        );
        report.check(
            backend,
            &format!("CountSegment vs SQL at {n} [{}]", case.label),
            "≥ 40× at p50",
            format!("{speedup:.0}×"),
            speedup >= 40.0,
        );
    }

    // Every member of a segment holding everyone, against the SQL select of the same ids.
    let everyone = create(&mut segments, r#"has_tag("spend")"#).await?;
    let t0 = Instant::now();
    let mut token = String::new();
    let mut received = 0usize;
    let mut pages = 0usize;
    loop {
        let page = segments
            .list_segment_members(pb::ListSegmentMembersRequest {
                segment_id: everyone.clone(),
                page_size: 1_000,
                page_token: token,
            })
            .await
            .context("ListSegmentMembers")?
            .into_inner();
        received += page.customer_ids.len();
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        if pages > loaded.customers / 1_000 + 10 {
            bail!("ListSegmentMembers did not end after {pages} pages");
        }
    }
    let paged_time = t0.elapsed();
    let paged = received;
    // The same through one streamed evaluation: what a caller reading a whole segment uses,
    // as a list of strings and packed (one text a chunk; the check is on this one).
    let (listed, listed_time, _) = stream_members(&mut segments, &everyone, false).await?;
    let (received, members_time, chunks) = stream_members(&mut segments, &everyone, true).await?;
    let now = Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S%.6f");
    let sql = format!(
        "SELECT t.customer_id AS id FROM customer_tags t WHERE t.tag_id = '{}' AND \
         (t.expires_at IS NULL OR t.expires_at > '{now}') ORDER BY t.customer_id",
        loaded.spend
    );
    let t0 = Instant::now();
    let sql_rows = db.ids(&sql).await.context("SQL select of the members")?;
    let sql_time = t0.elapsed();
    let speedup = sql_time.as_secs_f64() / members_time.as_secs_f64().max(1e-6);
    let ratio = |time: Duration| sql_time.as_secs_f64() / time.as_secs_f64().max(1e-6);
    report.note(format!(
        "{backend}: {n}: every member of has_tag(\"spend\") ({} ids) through \
         StreamSegmentMembers packed, {chunks} chunks: {:.3} s; as a list of strings: {:.3} s \
         ({:.2}×); ListSegmentMembers, {pages} pages of 1,000: {:.2} s ({:.2}×); the SQL \
         select of the same ids: {:.2} s ({sql_rows} rows); SQL/tagd {speedup:.2}×",
        thousands(received as f64),
        members_time.as_secs_f64(),
        listed_time.as_secs_f64(),
        ratio(listed_time),
        paged_time.as_secs_f64(),
        ratio(paged_time),
        sql_time.as_secs_f64(),
    ));
    report.check(
        backend,
        &format!("all members of a {n}-member segment vs SQL select"),
        "≥ 10×",
        format!("{speedup:.2}×"),
        received == sql_rows && listed == sql_rows && paged == sql_rows && speedup >= 10.0,
    );
    Ok(())
}

/// Every member of `segment` through StreamSegmentMembers (chunks of 50,000, `packed` or as a
/// list of strings): how many ids, how long, how many chunks. Checks that the ids come in id
/// order across chunks (only the edges: within a chunk the order is the server's business).
async fn stream_members(
    segments: &mut SegmentServiceClient<Channel>,
    segment: &str,
    packed: bool,
) -> Result<(usize, Duration, usize)> {
    let t0 = Instant::now();
    let mut stream = segments
        .stream_segment_members(pb::StreamSegmentMembersRequest {
            segment_id: segment.to_owned(),
            chunk_size: 50_000,
            packed,
        })
        .await
        .context("StreamSegmentMembers")?
        .into_inner();
    let mut received = 0usize;
    let mut chunks = 0usize;
    let mut last: Option<String> = None;
    while let Some(chunk) = stream.message().await.context("StreamSegmentMembers")? {
        chunks += 1;
        let (first, end) = if packed {
            let text = std::str::from_utf8(&chunk.packed_ids).context("packed ids")?;
            // Each id ends with a line feed; a byte count is what a caller splitting them pays.
            received += text.bytes().filter(|byte| *byte == b'\n').count();
            (text.lines().next(), text.lines().next_back())
        } else {
            received += chunk.customer_ids.len();
            (
                chunk.customer_ids.first().map(String::as_str),
                chunk.customer_ids.last().map(String::as_str),
            )
        };
        if let (Some(before), Some(first)) = (&last, first) {
            ensure!(
                before.as_str() < first,
                "StreamSegmentMembers chunks out of id order"
            );
        }
        if let Some(end) = end {
            last = Some(end.to_owned());
        }
    }
    Ok((received, t0.elapsed(), chunks))
}
