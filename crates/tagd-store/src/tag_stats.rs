//! Tag statistics: for each tag, how many customers hold it live, their share of all
//! customers, its values' distribution and its assignments by source — from grouped
//! counts, so the database does the counting and nothing is read per customer.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::tag_stats::{Bucket, ValueCount, coverage, histogram, top_values};
use tagd_core::tagging::TagSource;
use tagd_core::tags::{Tag, ValueType};

use crate::Store;
use crate::db::{IN_CHUNK, now, with_conn};
use crate::error::{StoreError, StoreResult};
use crate::ids_in::ids_in;
use crate::schema::{categories, customer_tags, customers, tags};
use crate::tags::TagRow;

/// Which tags a report covers: one tag, the tags of one category, or every tag.
#[derive(Debug, Clone, Default)]
pub struct TagStatsScope {
    pub category_id: Option<String>,
    pub tag_id: Option<String>,
}

/// One tag's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct TagStats {
    pub tag: Tag,
    pub category_name: String,
    /// Customers holding the tag now (expired assignments left out).
    pub customers: u64,
    /// `customers` as a share of all customers, 0..=1.
    pub coverage: f64,
    /// Different values held (0 for a flag tag).
    pub distinct_values: u64,
    /// Enum, text, bool and date tags: the values held by the most customers.
    pub top_values: Vec<ValueCount>,
    /// Number tags: equal-width buckets between the smallest and largest value.
    pub histogram: Vec<Bucket>,
    /// Live assignments by where they came from.
    pub by_source: Vec<(TagSource, u64)>,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct TagStatsReport {
    pub total_customers: u64,
    pub tags: Vec<TagStats>,
    pub computed_at: NaiveDateTime,
}

fn as_u64(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

impl Store {
    /// Statistics of the tags in `scope`, in category then name order.
    pub async fn tag_stats(
        &self,
        scope: &TagStatsScope,
        top_n: usize,
        buckets: usize,
    ) -> StoreResult<TagStatsReport> {
        let at = now();
        let (total, tag_rows, category_names, holders, sources, values) =
            with_conn!(self, |conn| {
                let total: i64 = customers::table.count().get_result(conn).await?;
                let mut query = tags::table.select(TagRow::as_select()).into_boxed();
                if let Some(tag_id) = &scope.tag_id {
                    query = query.filter(tags::id.eq(tag_id.clone()));
                }
                if let Some(category_id) = &scope.category_id {
                    query = query.filter(tags::category_id.eq(category_id.clone()));
                }
                let tag_rows: Vec<TagRow> = query
                    .order((tags::category_id, tags::name_key))
                    .load(conn)
                    .await?;
                let category_names: HashMap<String, String> = categories::table
                    .select((categories::id, categories::name))
                    .load::<(String, String)>(conn)
                    .await?
                    .into_iter()
                    .collect();
                let ids: Vec<String> = tag_rows.iter().map(|row| row.id.clone()).collect();
                let live = customer_tags::expires_at
                    .is_null()
                    .or(customer_tags::expires_at.gt(at));
                let mut holders: Vec<(String, i64)> = Vec::new();
                let mut sources: Vec<(String, String, i64)> = Vec::new();
                let mut values: Vec<(String, Option<String>, i64)> = Vec::new();
                for chunk in ids.chunks(IN_CHUNK) {
                    holders.extend(
                        customer_tags::table
                            .filter(ids_in(customer_tags::tag_id, chunk))
                            .filter(live)
                            .group_by(customer_tags::tag_id)
                            .select((customer_tags::tag_id, count_star()))
                            .load::<(String, i64)>(conn)
                            .await?,
                    );
                    sources.extend(
                        customer_tags::table
                            .filter(ids_in(customer_tags::tag_id, chunk))
                            .filter(live)
                            .group_by((customer_tags::tag_id, customer_tags::source))
                            .select((customer_tags::tag_id, customer_tags::source, count_star()))
                            .load::<(String, String, i64)>(conn)
                            .await?,
                    );
                    values.extend(
                        customer_tags::table
                            .filter(ids_in(customer_tags::tag_id, chunk))
                            .filter(live)
                            .filter(customer_tags::value.is_not_null())
                            .group_by((customer_tags::tag_id, customer_tags::value))
                            .select((customer_tags::tag_id, customer_tags::value, count_star()))
                            .load::<(String, Option<String>, i64)>(conn)
                            .await?,
                    );
                }
                (total, tag_rows, category_names, holders, sources, values)
            });
        let total = as_u64(total);
        let holders: HashMap<String, u64> = holders
            .into_iter()
            .map(|(tag, n)| (tag, as_u64(n)))
            .collect();
        let mut by_source: HashMap<String, Vec<(TagSource, u64)>> = HashMap::new();
        for (tag, source, n) in sources {
            let source = source
                .parse()
                .map_err(|e: String| StoreError::Corrupt(format!("tag {tag}: {e}")))?;
            by_source.entry(tag).or_default().push((source, as_u64(n)));
        }
        let mut by_value: HashMap<String, Vec<ValueCount>> = HashMap::new();
        for (tag, value, n) in values {
            by_value.entry(tag).or_default().push(ValueCount {
                value: value.unwrap_or_default(),
                customers: as_u64(n),
            });
        }
        let mut report = Vec::with_capacity(tag_rows.len());
        for row in tag_rows {
            let tag = row.into_tag()?;
            let customers = holders.get(&tag.id).copied().unwrap_or(0);
            let values = by_value.remove(&tag.id).unwrap_or_default();
            let distinct_values = values.len() as u64;
            let (top, buckets_out) = match tag.value_type {
                ValueType::Flag => (Vec::new(), Vec::new()),
                ValueType::Number => (Vec::new(), histogram(&values, buckets)),
                ValueType::Enum | ValueType::Text | ValueType::Bool | ValueType::Date => {
                    (top_values(values, top_n), Vec::new())
                }
            };
            let mut sources = by_source.remove(&tag.id).unwrap_or_default();
            sources.sort_by_key(|(source, _)| source.as_str());
            report.push(TagStats {
                category_name: category_names
                    .get(&tag.category_id)
                    .cloned()
                    .unwrap_or_default(),
                coverage: coverage(customers, total),
                customers,
                distinct_values,
                top_values: top,
                histogram: buckets_out,
                by_source: sources,
                tag,
            });
        }
        Ok(TagStatsReport {
            total_customers: total,
            tags: report,
            computed_at: at,
        })
    }
}
