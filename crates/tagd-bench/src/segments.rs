//! The segments measurement: customers with ~15 flag tags each are loaded
//! over gRPC, a segment of a five-term condition is saved, and CountSegment
//! (answered by the in-memory index) is timed beside the same count as one
//! plain SQL statement over tagd's own tables, in the same run.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel::{Connection, QueryableByName, RunQueryDsl as _, SqliteConnection};
use diesel_async::{AsyncConnection, AsyncMysqlConnection};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use tagd_proto::v1 as pb;
use tagd_proto::v1::customer_service_client::CustomerServiceClient;
use tagd_proto::v1::segment_service_client::SegmentServiceClient;
use tagd_proto::v1::tag_service_client::TagServiceClient;
use tagd_proto::v1::tagging_service_client::TaggingServiceClient;
use tonic::transport::Channel;

use crate::report::{Report, thousands};

/// Flag tags customers draw their tags from.
const TAGS: usize = 60;
/// Tags per customer.
const TAGS_PER_CUSTOMER: usize = 15;
const PROVINCES: [&str; 8] = [
    "北京", "上海", "广东", "浙江", "江苏", "四川", "湖北", "山东",
];
/// Customers per UpsertCustomers call.
const UPSERT_BATCH: usize = 1_000;
/// Customers per BatchAssignTags call (× 15 assignments, under the 10,000 limit).
const ASSIGN_BATCH: usize = 600;

pub struct SegmentsOn<'a> {
    pub channel: Channel,
    /// tagd's database, for the SQL baseline.
    pub database_url: &'a str,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The condition, and the same as SQL (binds: province, gender, tag, tag, tag, now).
pub(crate) const CONDITION: &str = r#"has_tag("seg-3") AND has_tag("seg-7") AND province = "北京" AND gender = "女" AND NOT has_tag("seg-11")"#;
const SQL: &str = "SELECT COUNT(*) AS n FROM customers c WHERE c.province = ? AND c.gender = ? \
     AND EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag_id = ? AND (t.expires_at IS NULL OR t.expires_at > ?)) \
     AND EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag_id = ? AND (t.expires_at IS NULL OR t.expires_at > ?)) \
     AND NOT EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag_id = ? AND (t.expires_at IS NULL OR t.expires_at > ?))";

fn histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 600_000_000, 3).context("creating latency histogram")
}

pub(crate) fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

pub async fn measure_segments(
    backend: &str,
    on: &SegmentsOn<'_>,
    customers: usize,
    calls: usize,
    report: &mut Report,
) -> Result<()> {
    let tag_ids = load(on, customers, report, backend).await?;
    let mut segments = SegmentServiceClient::new(on.channel.clone());
    let segment = segments
        .create_segment(pb::CreateSegmentRequest {
            name: format!("bench {:08x}", rand::random::<u32>()),
            description: "created by tagd-bench".to_owned(),
            condition: Some(pb::ConditionInput {
                form: Some(pb::condition_input::Form::Text(CONDITION.to_owned())),
            }),
        })
        .await
        .context("CreateSegment")?
        .into_inner();

    // CountSegment: warm up (the index catches up with the load), then time each call.
    let count_once = async |segments: &mut SegmentServiceClient<Channel>| {
        segments
            .count_segment(pb::CountSegmentRequest {
                segment_id: segment.id.clone(),
            })
            .await
            .map(tonic::Response::into_inner)
    };
    let first = count_once(&mut segments).await.context("CountSegment")?;
    ensure!(
        first.from_index,
        "the index did not answer: {}",
        first.fallback_reason
    );
    let mut index_latency = histogram()?;
    for _ in 0..calls {
        let t0 = Instant::now();
        let answer = count_once(&mut segments).await.context("CountSegment")?;
        index_latency.record(elapsed_us(t0))?;
        ensure!(
            answer.count == first.count,
            "the count changed while measuring"
        );
    }

    // The same count in SQL, through the same driver stack.
    let sql_calls = calls.clamp(1, 30);
    let (sql_count, sql_latency) = sql_counts(on.database_url, &tag_ids, sql_calls).await?;
    let (index_p50, index_p99) = (ms(&index_latency, 0.5), ms(&index_latency, 0.99));
    let (sql_p50, sql_p99) = (ms(&sql_latency, 0.5), ms(&sql_latency, 0.99));
    report.note(format!(
        "{backend}: CountSegment of a 5-term condition over {} customers × {TAGS_PER_CUSTOMER} tags \
         ({} members): p50 {index_p50:.2} ms, p99 {index_p99:.2} ms over {calls} calls; the same \
         count as one SQL statement: p50 {sql_p50:.1} ms, p99 {sql_p99:.1} ms over {sql_calls} \
         calls; SQL/index at p50 = {:.0}×",
        thousands(customers as f64),
        first.count,
        sql_p50 / index_p50.max(0.001),
    ));
    report.check(
        backend,
        "CountSegment equals the SQL count",
        &sql_count.to_string(),
        first.count.to_string(),
        i64::try_from(first.count).ok() == Some(sql_count),
    );
    report.check(
        backend,
        "CountSegment p50 beats the SQL count",
        &format!("< {sql_p50:.2} ms"),
        format!("{index_p50:.2} ms"),
        index_p50 < sql_p50,
    );
    Ok(())
}

/// Creates the tags and customers and assigns 15 random tags to each;
/// returns the ids of the condition's tags seg-3, seg-7, seg-11.
async fn load(
    on: &SegmentsOn<'_>,
    customers: usize,
    report: &mut Report,
    backend: &str,
) -> Result<[String; 3]> {
    let t0 = Instant::now();
    let mut tags = TagServiceClient::new(on.channel.clone());
    let category = tags
        .create_category(pb::CreateCategoryRequest {
            name: format!("segments {:08x}", rand::random::<u32>()),
            description: "created by tagd-bench".to_owned(),
            exclusive: false,
        })
        .await
        .context("CreateCategory")?
        .into_inner();
    let mut tag_ids = Vec::with_capacity(TAGS);
    for k in 0..TAGS {
        let tag = tags
            .create_tag(pb::CreateTagRequest {
                tag: Some(pb::Tag {
                    category_id: category.id.clone(),
                    name: format!("seg-{k}"),
                    value_type: pb::ValueType::Flag as i32,
                    ..pb::Tag::default()
                }),
            })
            .await
            .context("CreateTag")?
            .into_inner();
        tag_ids.push(tag.id);
    }
    let mut rng = StdRng::seed_from_u64(20_261_129);
    let mut client = CustomerServiceClient::new(on.channel.clone())
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20);
    let mut ids = Vec::with_capacity(customers);
    for start in (0..customers).step_by(UPSERT_BATCH) {
        let end = (start + UPSERT_BATCH).min(customers);
        let entries = (start..end)
            .map(|i| pb::UpsertCustomerEntry {
                key: Some(pb::ExternalId {
                    channel: "bench-segments".to_owned(),
                    external_id: format!("seg-{i:07}"),
                }),
                customer: Some(pb::Customer {
                    name: format!("客户 {i:07}"),
                    gender: if rng.random_bool(0.5) {
                        pb::Gender::Female
                    } else {
                        pb::Gender::Male
                    } as i32,
                    address: Some(pb::Address {
                        province: PROVINCES[rng.random_range(0..PROVINCES.len())].to_owned(),
                        ..pb::Address::default()
                    }),
                    ..pb::Customer::default()
                }),
            })
            .collect();
        let response = client
            .upsert_customers(pb::UpsertCustomersRequest { entries })
            .await
            .with_context(|| format!("UpsertCustomers {start}..{end}"))?
            .into_inner();
        ids.extend(response.results.into_iter().map(|r| r.customer_id));
    }
    let mut tagging = TaggingServiceClient::new(on.channel.clone())
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20);
    for chunk in ids.chunks(ASSIGN_BATCH) {
        let entries = chunk
            .iter()
            .map(|customer_id| pb::CustomerAssignments {
                customer_id: customer_id.clone(),
                assignments: sample(&mut rng, TAGS, TAGS_PER_CUSTOMER)
                    .into_iter()
                    .map(|k| pb::TagAssignment {
                        tag_id: tag_ids[k].clone(),
                        ..pb::TagAssignment::default()
                    })
                    .collect(),
            })
            .collect();
        tagging
            .batch_assign_tags(pb::BatchAssignTagsRequest { entries })
            .await
            .context("BatchAssignTags")?;
    }
    report.note(format!(
        "{backend}: segments set-up: {} customers with {TAGS_PER_CUSTOMER} of {TAGS} flag tags \
         each in {:.1} s",
        thousands(customers as f64),
        t0.elapsed().as_secs_f64()
    ));
    Ok([tag_ids[3].clone(), tag_ids[7].clone(), tag_ids[11].clone()])
}

/// Runs the SQL count `calls` times; the count and the latencies.
pub(crate) async fn sql_counts(
    database_url: &str,
    tags: &[String; 3],
    calls: usize,
) -> Result<(i64, Histogram<u64>)> {
    let now = Utc::now().naive_utc();
    let query = || {
        diesel::sql_query(SQL)
            .bind::<Text, _>("北京")
            .bind::<Text, _>("female")
            .bind::<Text, _>(tags[0].clone())
            .bind::<Timestamp, _>(now)
            .bind::<Text, _>(tags[1].clone())
            .bind::<Timestamp, _>(now)
            .bind::<Text, _>(tags[2].clone())
            .bind::<Timestamp, _>(now)
    };
    let mut latency = histogram()?;
    let mut count = 0;
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let mut conn = SqliteConnection::establish(path).context("opening tagd's SQLite file")?;
        for _ in 0..calls {
            let t0 = Instant::now();
            let rows: Vec<Count> = query().load(&mut conn).context("SQL count")?;
            latency.record(elapsed_us(t0))?;
            count = rows.first().map_or(0, |row| row.n);
        }
    } else {
        let mut conn = AsyncMysqlConnection::establish(database_url)
            .await
            .context("connecting to tagd's MariaDB database")?;
        for _ in 0..calls {
            let t0 = Instant::now();
            let rows: Vec<Count> = diesel_async::RunQueryDsl::load(query(), &mut conn)
                .await
                .context("SQL count")?;
            latency.record(elapsed_us(t0))?;
            count = rows.first().map_or(0, |row| row.n);
        }
    }
    Ok((count, latency))
}

fn elapsed_us(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}
