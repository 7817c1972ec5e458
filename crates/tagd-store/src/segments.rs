//! Segments (saved conditions and static snapshots), and the reads the
//! segment index and the reference evaluator need: customers with their live
//! tags and purchase lines by id, and the changes made since a moment (by
//! this or another server) that the index follows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::customers::{Address, Customer, CustomerFields};
use tagd_core::ids::new_id;
use tagd_core::paging::{PageRequest, finish_page};
use tagd_core::segments::{Segment, SegmentKind};
use tagd_core::tags::Tag;
use tagd_core::text;

use crate::db::{
    BatchInsert as _, IN_CHUNK, MysqlLoadRows as _, SqliteLoadRows as _, now, with_conn,
    write_transaction,
};
use crate::error::{StoreError, StoreResult};
use crate::ids_in::ids_in;
use crate::schema::{
    categories, customer_tags, customers, interactions, purchase_items, purchases, segment_members,
    segment_sizes, segments, tag_history, tags,
};
use crate::tags::{TagRow, page_limit};
use crate::{Page, Store};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = segments)]
pub(crate) struct SegmentRow {
    pub id: String,
    pub name: String,
    pub name_key: String,
    pub description: String,
    pub kind: String,
    pub condition_text: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl SegmentRow {
    fn into_segment(self) -> StoreResult<Segment> {
        let kind = self
            .kind
            .parse()
            .map_err(|e: String| StoreError::Corrupt(format!("segment {}: {e}", self.id)))?;
        Ok(Segment {
            id: self.id,
            name: self.name,
            description: self.description,
            kind,
            condition: self.condition_text,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = segment_members)]
pub(crate) struct SegmentMemberRow {
    pub segment_id: String,
    pub customer_id: String,
}

/// A segment to create; name and description already normalised, the
/// condition already checked and printed canonically.
#[derive(Debug, Clone)]
pub struct NewSegment {
    pub name: String,
    pub description: String,
    pub kind: SegmentKind,
    pub condition: String,
}

/// What `UpdateSegment` changes (`None`: kept).
#[derive(Debug, Clone, Default)]
pub struct SegmentPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub condition: Option<String>,
}

/// A live assignment, as the index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveAssignment {
    pub customer_id: String,
    pub tag_id: String,
    pub value: Option<String>,
    pub expires_at: Option<NaiveDateTime>,
}

/// A live assignment with the names an export prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentName {
    pub customer_id: String,
    pub category: String,
    pub tag: String,
    pub value: Option<String>,
}

/// One order line: what `purchases(…)` and `spent(…)` count and sum.
#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseLine {
    pub customer_id: String,
    pub category: String,
    pub day: NaiveDate,
    pub amount_cents: i64,
}

/// A position in the follower's order of change rows: (time, id).
pub type ChangeKey = (NaiveDateTime, String);

/// The tables of customer activity (what metrics are computed from) the follower reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityTable {
    Purchases,
    Interactions,
}

/// How many rows the catalogue tables (categories, tags, segments) hold and
/// when the newest of each last changed: a cheap fingerprint a server
/// compares between polls to notice another server's catalogue writes (a
/// create or update moves a time, a delete a count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CatalogueStamp {
    pub categories: (i64, Option<NaiveDateTime>),
    pub tags: (i64, Option<NaiveDateTime>),
    pub segments: (i64, Option<NaiveDateTime>),
}

/// The follower's keyset read of one change table: up to `$limit` rows (id, customer,
/// time) whose time is at or after `$since` and whose (time, id) comes after `$after`, in
/// that order. One body for tag history, customers, orders and interactions.
macro_rules! rows_after {
    ($store:expr, $table:ident, $customer:ident, $time:ident, $since:expr, $after:expr, $limit:expr) => {{
        let limit = i64::try_from($limit).unwrap_or(i64::MAX);
        let after: Option<&ChangeKey> = $after;
        with_conn!($store, |conn| {
            let mut query = $table::table
                .filter($table::$time.ge($since))
                .select(($table::id, $table::$customer, $table::$time))
                .order(($table::$time, $table::id))
                .limit(limit)
                .into_boxed();
            if let Some((at, id)) = after {
                query = query.filter(
                    $table::$time
                        .gt(*at)
                        .or($table::$time.eq(*at).and($table::id.gt(id.clone()))),
                );
            }
            conn.load_rows(query).await?
        })
    }};
}

/// How many rows of one change table lie between `$since` and `$upto` (inclusive, in
/// (time, id) order; 0 without a bound), as `u64`.
macro_rules! rows_between {
    ($store:expr, $table:ident, $time:ident, $since:expr, $upto:expr) => {{
        let upto: Option<&ChangeKey> = $upto;
        match upto {
            Some((at, id)) => {
                let counted: i64 = with_conn!($store, |conn| {
                    $table::table
                        .filter($table::$time.ge($since))
                        .filter(
                            $table::$time
                                .lt(*at)
                                .or($table::$time.eq(*at).and($table::id.le(id.clone()))),
                        )
                        .count()
                        .get_result(conn)
                        .await?
                });
                u64::try_from(counted).unwrap_or_default()
            }
            None => 0,
        }
    }};
}

fn segment_not_found(id: &str) -> StoreError {
    StoreError::not_found("segment", id)
}

/// The columns of `customers` the segment index holds.
#[derive(Queryable, Selectable)]
#[diesel(table_name = customers)]
struct IndexedRow {
    id: String,
    gender: String,
    birthday: Option<NaiveDate>,
    province: String,
    city: String,
    district: String,
    source_channel: String,
    attributes: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl IndexedRow {
    fn into_customer(self) -> StoreResult<Customer> {
        let corrupt = |what: String| StoreError::Corrupt(format!("customer {}: {what}", self.id));
        let gender = self.gender.parse().map_err(corrupt)?;
        let attributes: BTreeMap<String, String> = serde_json::from_str(&self.attributes)
            .map_err(|error| corrupt(format!("attributes: {error}")))?;
        Ok(Customer {
            fields: CustomerFields {
                gender,
                birthday: self.birthday,
                address: Address {
                    province: self.province,
                    city: self.city,
                    district: self.district,
                    detail: String::new(),
                },
                source_channel: self.source_channel,
                attributes,
                ..CustomerFields::default()
            },
            id: self.id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

impl Store {
    /// Creates a segment; a name whose case-folded key is taken is ALREADY_EXISTS.
    pub async fn create_segment(&self, new: &NewSegment) -> StoreResult<Segment> {
        let at = now();
        let row = SegmentRow {
            id: new_id(),
            name: new.name.clone(),
            name_key: text::key(&new.name),
            description: new.description.clone(),
            kind: new.kind.as_str().to_owned(),
            condition_text: new.condition.clone(),
            created_at: at,
            updated_at: at,
        };
        let inserted = &row;
        write_transaction!(self, |conn| {
            let taken: i64 = segments::table
                .filter(segments::name_key.eq(&inserted.name_key))
                .count()
                .get_result(conn)
                .await?;
            if taken > 0 {
                return Err(name_taken(&inserted.name));
            }
            diesel::insert_into(segments::table)
                .values(inserted)
                .execute(conn)
                .await?;
            Ok(())
        })?;
        row.into_segment()
    }

    pub async fn get_segment(&self, id: &str) -> StoreResult<Segment> {
        let row: Option<SegmentRow> = with_conn!(self, |conn| {
            segments::table
                .filter(segments::id.eq(id))
                .select(SegmentRow::as_select())
                .first(conn)
                .await
                .optional()?
        });
        row.ok_or_else(|| segment_not_found(id))?.into_segment()
    }

    /// Segments in id (creation) order.
    pub async fn list_segments(&self, page: &PageRequest) -> StoreResult<Page<Segment>> {
        let mut rows: Vec<SegmentRow> = with_conn!(self, |conn| {
            let mut query = segments::table
                .select(SegmentRow::as_select())
                .order(segments::id)
                .limit(page_limit(page))
                .into_boxed();
            if let Some(after) = &page.after {
                query = query.filter(segments::id.gt(after.clone()));
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, |row| row.id.clone());
        Ok(Page {
            items: rows
                .into_iter()
                .map(SegmentRow::into_segment)
                .collect::<StoreResult<_>>()?,
            next_page_token,
        })
    }

    /// Every segment (the catalogue conditions are bound against).
    pub async fn all_segments(&self) -> StoreResult<Vec<Segment>> {
        let rows: Vec<SegmentRow> = with_conn!(self, |conn| {
            segments::table
                .select(SegmentRow::as_select())
                .order(segments::id)
                .load(conn)
                .await?
        });
        rows.into_iter().map(SegmentRow::into_segment).collect()
    }

    /// Applies `patch`; the caller has checked the new condition and that no
    /// other segment names this one when it is renamed.
    pub async fn update_segment(&self, id: &str, patch: &SegmentPatch) -> StoreResult<Segment> {
        write_transaction!(self, |conn| {
            let mut row: SegmentRow = segments::table
                .filter(segments::id.eq(id))
                .select(SegmentRow::as_select())
                .first(conn)
                .await
                .optional()?
                .ok_or_else(|| segment_not_found(id))?;
            if let Some(name) = &patch.name {
                let name_key = text::key(name);
                let taken: i64 = segments::table
                    .filter(segments::name_key.eq(&name_key))
                    .filter(segments::id.ne(id))
                    .count()
                    .get_result(conn)
                    .await?;
                if taken > 0 {
                    return Err(name_taken(name));
                }
                row.name = name.clone();
                row.name_key = name_key;
            }
            if let Some(description) = &patch.description {
                row.description = description.clone();
            }
            if let Some(condition) = &patch.condition {
                row.condition_text = condition.clone();
            }
            row.updated_at = now();
            diesel::update(segments::table.filter(segments::id.eq(id)))
                .set((
                    segments::name.eq(&row.name),
                    segments::name_key.eq(&row.name_key),
                    segments::description.eq(&row.description),
                    segments::condition_text.eq(&row.condition_text),
                    segments::updated_at.eq(row.updated_at),
                ))
                .execute(conn)
                .await?;
            row.into_segment()
        })
    }

    /// Deletes a segment with its frozen members and its sizes.
    pub async fn delete_segment(&self, id: &str) -> StoreResult<()> {
        write_transaction!(self, |conn| {
            let deleted = diesel::delete(segments::table.filter(segments::id.eq(id)))
                .execute(conn)
                .await?;
            if deleted == 0 {
                return Err(segment_not_found(id));
            }
            diesel::delete(segment_members::table.filter(segment_members::segment_id.eq(id)))
                .execute(conn)
                .await?;
            diesel::delete(segment_sizes::table.filter(segment_sizes::segment_id.eq(id)))
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    /// Creates the static segment `new` holding `members`, and records the
    /// size of `source` (and of the snapshot) now, in one transaction.
    pub async fn snapshot_segment(
        &self,
        source_id: &str,
        new: &NewSegment,
        members: &[String],
    ) -> StoreResult<Segment> {
        let at = now();
        let row = SegmentRow {
            id: new_id(),
            name: new.name.clone(),
            name_key: text::key(&new.name),
            description: new.description.clone(),
            kind: SegmentKind::Static.as_str().to_owned(),
            condition_text: new.condition.clone(),
            created_at: at,
            updated_at: at,
        };
        let member_rows: Vec<SegmentMemberRow> = members
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|customer_id| SegmentMemberRow {
                segment_id: row.id.clone(),
                customer_id: customer_id.clone(),
            })
            .collect();
        let count = i64::try_from(member_rows.len()).unwrap_or(i64::MAX);
        let (inserted, member_rows) = (&row, &member_rows);
        write_transaction!(self, |conn| {
            let taken: i64 = segments::table
                .filter(segments::name_key.eq(&inserted.name_key))
                .count()
                .get_result(conn)
                .await?;
            if taken > 0 {
                return Err(name_taken(&inserted.name));
            }
            diesel::insert_into(segments::table)
                .values(inserted)
                .execute(conn)
                .await?;
            conn.insert_segment_member_rows(member_rows).await?;
            for segment_id in [source_id, inserted.id.as_str()] {
                diesel::insert_into(segment_sizes::table)
                    .values((
                        segment_sizes::segment_id.eq(segment_id),
                        segment_sizes::measured_at.eq(at),
                        segment_sizes::member_count.eq(count),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })?;
        row.into_segment()
    }

    /// The frozen members of a static segment that still exist, in id order.
    pub async fn static_members(&self, segment_id: &str) -> StoreResult<Vec<String>> {
        Ok(with_conn!(self, |conn| {
            segment_members::table
                .inner_join(customers::table.on(customers::id.eq(segment_members::customer_id)))
                .filter(segment_members::segment_id.eq(segment_id))
                .select(segment_members::customer_id)
                .order(segment_members::customer_id)
                .load(conn)
                .await?
        }))
    }

    /// A segment's recorded sizes, oldest first.
    pub async fn segment_sizes(&self, segment_id: &str) -> StoreResult<Vec<(NaiveDateTime, u64)>> {
        let rows: Vec<(NaiveDateTime, i64)> = with_conn!(self, |conn| {
            segment_sizes::table
                .filter(segment_sizes::segment_id.eq(segment_id))
                .select((segment_sizes::measured_at, segment_sizes::member_count))
                .order(segment_sizes::measured_at)
                .load(conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(at, count)| (at, u64::try_from(count).unwrap_or(0)))
            .collect())
    }

    /// The catalogue's fingerprint now (three aggregate reads of small tables).
    pub async fn catalogue_stamp(&self) -> StoreResult<CatalogueStamp> {
        use diesel::dsl::{count_star, max};
        Ok(with_conn!(self, |conn| {
            let categories = categories::table
                .select((count_star(), max(categories::updated_at)))
                .get_result(conn)
                .await?;
            let tags = tags::table
                .select((count_star(), max(tags::updated_at)))
                .get_result(conn)
                .await?;
            let segments = segments::table
                .select((count_star(), max(segments::updated_at)))
                .get_result(conn)
                .await?;
            CatalogueStamp {
                categories,
                tags,
                segments,
            }
        }))
    }

    /// Every tag with its category's name.
    pub async fn catalogue_tags(&self) -> StoreResult<Vec<(Tag, String)>> {
        let rows: Vec<(TagRow, String)> = with_conn!(self, |conn| {
            tags::table
                .inner_join(categories::table.on(categories::id.eq(tags::category_id)))
                .select((TagRow::as_select(), categories::name))
                .order(tags::id)
                .load(conn)
                .await?
        });
        rows.into_iter()
            .map(|(row, category)| Ok((row.into_tag()?, category)))
            .collect()
    }

    /// The assignments of these customers that are live at `at`.
    pub async fn live_assignments(
        &self,
        customer_ids: &[String],
        at: NaiveDateTime,
    ) -> StoreResult<Vec<LiveAssignment>> {
        type Row = (String, String, Option<String>, Option<NaiveDateTime>);
        let rows: Vec<Row> = with_conn!(self, |conn| {
            let mut rows = Vec::new();
            for chunk in customer_ids.chunks(IN_CHUNK) {
                let query = customer_tags::table
                    .filter(ids_in(customer_tags::customer_id, chunk))
                    .filter(
                        customer_tags::expires_at
                            .is_null()
                            .or(customer_tags::expires_at.gt(at)),
                    )
                    .select((
                        customer_tags::customer_id,
                        customer_tags::tag_id,
                        customer_tags::value,
                        customer_tags::expires_at,
                    ));
                let loaded: Vec<Row> = conn.load_rows(query).await?;
                rows.extend(loaded);
            }
            rows
        });
        Ok(rows
            .into_iter()
            .map(|(customer_id, tag_id, value, expires_at)| LiveAssignment {
                customer_id,
                tag_id,
                value,
                expires_at,
            })
            .collect())
    }

    /// The live assignments of these customers with tag and category names.
    pub async fn assignment_names(
        &self,
        customer_ids: &[String],
        at: NaiveDateTime,
    ) -> StoreResult<Vec<AssignmentName>> {
        type Row = (String, String, String, Option<String>);
        let rows: Vec<Row> = with_conn!(self, |conn| {
            let mut rows = Vec::new();
            for chunk in customer_ids.chunks(IN_CHUNK) {
                let query = customer_tags::table
                    .inner_join(tags::table.on(tags::id.eq(customer_tags::tag_id)))
                    .inner_join(categories::table.on(categories::id.eq(tags::category_id)))
                    .filter(ids_in(customer_tags::customer_id, chunk))
                    .filter(
                        customer_tags::expires_at
                            .is_null()
                            .or(customer_tags::expires_at.gt(at)),
                    )
                    .select((
                        customer_tags::customer_id,
                        categories::name,
                        tags::name,
                        customer_tags::value,
                    ))
                    .order((customer_tags::customer_id, categories::name, tags::name));
                let loaded: Vec<Row> = conn.load_rows(query).await?;
                rows.extend(loaded);
            }
            rows
        });
        Ok(rows
            .into_iter()
            .map(|(customer_id, category, tag, value)| AssignmentName {
                customer_id,
                category,
                tag,
                value,
            })
            .collect())
    }

    /// The order lines of these customers.
    pub async fn purchase_lines(&self, customer_ids: &[String]) -> StoreResult<Vec<PurchaseLine>> {
        type Row = (String, String, NaiveDateTime, i64, i64);
        let rows: Vec<Row> = with_conn!(self, |conn| {
            let mut rows = Vec::new();
            for chunk in customer_ids.chunks(IN_CHUNK) {
                let query = purchase_items::table
                    .filter(ids_in(purchase_items::customer_id, chunk))
                    .select((
                        purchase_items::customer_id,
                        purchase_items::category,
                        purchase_items::ordered_at,
                        purchase_items::quantity,
                        purchase_items::unit_price_cents,
                    ));
                let loaded: Vec<Row> = conn.load_rows(query).await?;
                rows.extend(loaded);
            }
            rows
        });
        Ok(rows
            .into_iter()
            .map(
                |(customer_id, category, ordered_at, quantity, unit_price)| PurchaseLine {
                    customer_id,
                    category,
                    day: ordered_at.date(),
                    amount_cents: quantity.saturating_mul(unit_price),
                },
            )
            .collect())
    }

    /// Customers as the segment index reads them, by id (in id order; ids
    /// not found are left out). **Only the fields the index holds are
    /// filled** — gender, birthday, province, city, district, source channel
    /// and attributes; name, phones, emails, company and external ids are
    /// empty: the follower reloads every customer an import touches, and
    /// reading and parsing the rest cost it half its time.
    pub async fn indexed_customers_by_ids(&self, ids: &[String]) -> StoreResult<Vec<Customer>> {
        let mut rows: Vec<IndexedRow> = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let found: Vec<IndexedRow> = with_conn!(self, |conn| {
                let query = customers::table
                    .filter(ids_in(customers::id, chunk))
                    .order(customers::id)
                    .select(IndexedRow::as_select());
                conn.load_rows(query).await?
            });
            rows.extend(found);
        }
        rows.into_iter().map(IndexedRow::into_customer).collect()
    }

    /// [`Store::indexed_customers_by_ids`] for the customers after `after`, in id order.
    pub async fn indexed_customers_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Customer>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<IndexedRow> = with_conn!(self, |conn| {
            let mut query = customers::table
                .order(customers::id)
                .limit(limit)
                .select(IndexedRow::as_select())
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(customers::id.gt(after.to_owned()));
            }
            conn.load_rows(query).await?
        });
        rows.into_iter().map(IndexedRow::into_customer).collect()
    }

    /// Ids of customers after `after`, in id order.
    pub async fn customer_ids_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(with_conn!(self, |conn| {
            let mut query = customers::table
                .select(customers::id)
                .order(customers::id)
                .limit(limit)
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(customers::id.gt(after.to_owned()));
            }
            conn.load_rows(query).await?
        }))
    }

    /// Up to `limit` tag history rows (id, customer, time) written at or
    /// after `since` whose (time, id) comes after `after`, in that order:
    /// the follower's keyset read of new changes, so a busy store is read
    /// once in bounded pages rather than as a whole window per poll.
    pub async fn history_after(
        &self,
        since: NaiveDateTime,
        after: Option<&ChangeKey>,
        limit: usize,
    ) -> StoreResult<Vec<(String, String, NaiveDateTime)>> {
        Ok(rows_after!(
            self,
            tag_history,
            customer_id,
            created_at,
            since,
            after,
            limit
        ))
    }

    /// Up to `limit` customers (id, `updated_at`) changed at or after
    /// `since` whose (`updated_at`, id) comes after `after`, in that order.
    pub async fn customers_changed_after(
        &self,
        since: NaiveDateTime,
        after: Option<&ChangeKey>,
        limit: usize,
    ) -> StoreResult<Vec<(String, NaiveDateTime)>> {
        let rows: Vec<(String, String, NaiveDateTime)> =
            rows_after!(self, customers, id, updated_at, since, after, limit);
        Ok(rows
            .into_iter()
            .map(|(id, _, updated_at)| (id, updated_at))
            .collect())
    }

    /// How many tag history rows and customer rows lie between `since` and
    /// `history_upto` / `customers_upto` (inclusive, in (time, id) order; 0
    /// without a bound): the follower compares them with what it applied to
    /// notice a transaction that committed after later rows were read.
    pub async fn count_changes_between(
        &self,
        since: NaiveDateTime,
        history_upto: Option<&ChangeKey>,
        customers_upto: Option<&ChangeKey>,
    ) -> StoreResult<(u64, u64)> {
        Ok((
            rows_between!(self, tag_history, created_at, since, history_upto),
            rows_between!(self, customers, updated_at, since, customers_upto),
        ))
    }

    /// Up to `limit` rows (id, customer, `created_at`) of an activity table recorded at or
    /// after `since` whose (`created_at`, id) comes after `after`, in that order: how the
    /// follower learns whose metrics changed (orders and interactions are only ever added;
    /// removals come with a customer's own change or the removal journal).
    pub async fn activity_after(
        &self,
        table: ActivityTable,
        since: NaiveDateTime,
        after: Option<&ChangeKey>,
        limit: usize,
    ) -> StoreResult<Vec<(String, String, NaiveDateTime)>> {
        Ok(match table {
            ActivityTable::Purchases => {
                rows_after!(
                    self,
                    purchases,
                    customer_id,
                    created_at,
                    since,
                    after,
                    limit
                )
            }
            ActivityTable::Interactions => {
                rows_after!(
                    self,
                    interactions,
                    customer_id,
                    created_at,
                    since,
                    after,
                    limit
                )
            }
        })
    }

    /// How many rows of an activity table lie between `since` and `upto` (inclusive, in
    /// (time, id) order; 0 without a bound): see [`Store::count_changes_between`].
    pub async fn count_activity_between(
        &self,
        table: ActivityTable,
        since: NaiveDateTime,
        upto: Option<&ChangeKey>,
    ) -> StoreResult<u64> {
        Ok(match table {
            ActivityTable::Purchases => rows_between!(self, purchases, created_at, since, upto),
            ActivityTable::Interactions => {
                rows_between!(self, interactions, created_at, since, upto)
            }
        })
    }
}

fn name_taken(name: &str) -> StoreError {
    StoreError::AlreadyExists(format!("a segment named {name:?} already exists"))
}
