//! Imports: one batch of cleansed records written in one transaction — customers
//! upserted by channel identity, their tags resolved by name and assigned with
//! source = import — or rehearsed and rolled back for a dry run.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tagd_core::customers::{CustomerFields, ExternalId};
use tagd_core::interactions::Interaction;
use tagd_core::jobs::RejectedRow;
use tagd_core::purchases::Purchase;
use tagd_core::tagging::{Assignment, TagSource};
use tagd_core::tags::{Tag, ValueType};
use tagd_core::text;

use crate::Store;
use crate::customers::{CustomerQueries, UpsertEntry, UpsertOutcome, fields_json};
use crate::db::{
    BackendOps as _, BatchInsert, IN_CHUNK, MysqlConn, SqliteConn, rehearsable_transaction,
};
use crate::error::{StoreError, StoreResult};
use crate::ids_in::ids_in;
use crate::interactions::InteractionQueries;
use crate::purchases::PurchaseQueries;
use crate::schema::{categories, import_changes, tags};
use crate::tagging::{AssignCall, TaggingQueries};
use crate::tags::{CategoryRow, NewCategory, NewTag, TagRow};

/// A tag a source row gives its customer, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportTag {
    pub category: String,
    pub name: String,
    pub value: String,
}

/// One cleansed source row.
#[derive(Debug, Clone)]
pub struct ImportEntry {
    /// Row or line number in the source, for the report.
    pub row: u64,
    /// The identity the customer is upserted by.
    pub key: ExternalId,
    pub fields: CustomerFields,
    pub tags: Vec<ImportTag>,
    pub purchases: Vec<Purchase>,
    pub interactions: Vec<Interaction>,
    /// The stored customer this row duplicates (see [`UpsertEntry::link_to`]).
    pub link_to: Option<String>,
}

/// How a whole import treats its batches.
#[derive(Debug, Clone)]
pub struct ImportSettings {
    /// Recorded as the tag history's source reference.
    pub job_id: String,
    pub actor: String,
    /// Leave stored customers (and their tags) as they are.
    pub skip_existing: bool,
    /// Create categories and tags the source names that do not exist.
    pub create_missing_tags: bool,
    /// Run every statement, then roll back.
    pub dry_run: bool,
}

/// What one batch did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Assignments written: new tags and changed values.
    pub tags_added: u64,
    pub purchases_added: u64,
    pub interactions_added: u64,
    /// The identities of the customers created.
    pub created_keys: Vec<ExternalId>,
    pub rejected: Vec<RejectedRow>,
}

/// The description of the categories and tags an import creates.
const CREATED_BY_IMPORT: &str = "created by an import";

/// Category and tag names compared the way the catalogue compares them.
type TagKey = (String, String);

fn tag_key(tag: &ImportTag) -> TagKey {
    (text::key(&tag.category), text::key(&tag.name))
}

/// The catalogue entries a batch names, resolved (and created when allowed).
pub(crate) struct Resolved {
    tags: HashMap<TagKey, Tag>,
    exclusive_categories: BTreeSet<String>,
    /// The compared form of each (category, name) as the rows spell them: rows
    /// repeat a few tags, and NFKC with case folding costs more than a lookup.
    keys: SpelledKeys,
}

/// Category as spelled → tag name as spelled → the compared form.
type SpelledKeys = HashMap<String, HashMap<String, TagKey>>;

/// The compared form of a tag as spelled, computed once per spelling.
fn spelled_key(keys: &mut SpelledKeys, tag: &ImportTag) -> TagKey {
    if let Some(key) = keys
        .get(&tag.category)
        .and_then(|names| names.get(&tag.name))
    {
        return key.clone();
    }
    let key = tag_key(tag);
    keys.entry(tag.category.clone())
        .or_default()
        .insert(tag.name.clone(), key.clone());
    key
}

impl Resolved {
    fn tag(&self, tag: &ImportTag) -> Option<&Tag> {
        match self
            .keys
            .get(&tag.category)
            .and_then(|names| names.get(&tag.name))
        {
            Some(key) => self.tags.get(key),
            None => self.tags.get(&tag_key(tag)),
        }
    }
}

/// What an import did to one customer, kept so that RevertImport can undo it.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = import_changes)]
pub(crate) struct ImportChangeRow {
    pub job_id: String,
    pub customer_id: String,
    /// "created" or "updated".
    pub action: String,
    /// The fields before the import's first change ("" for a created customer).
    pub before_fields: String,
}

/// [`ImportChangeRow::action`] of a customer the import created.
pub(crate) const CREATED: &str = "created";

/// Import queries, written once and compiled for each backend's connection.
pub(crate) trait ImportQueries {
    /// Records what the import did to each customer, keeping the first record
    /// when a later batch of the same import touches a customer again.
    async fn record_changes(&mut self, changes: Vec<ImportChangeRow>) -> StoreResult<()>;
    async fn resolve_tags(
        &mut self,
        entries: &[ImportEntry],
        create_missing: bool,
    ) -> StoreResult<Resolved>;
}

macro_rules! import_queries {
    ($conn:ty) => {
        impl ImportQueries for $conn {
            async fn record_changes(&mut self, changes: Vec<ImportChangeRow>) -> StoreResult<()> {
                // (Not `changes.first()`: diesel's `RunQueryDsl::first` shadows it here.)
                let Some(job_id) = changes.iter().next().map(|change| change.job_id.clone()) else {
                    return Ok(());
                };
                // A customer this batch created has no record yet: only updates are looked up.
                let ids: Vec<&str> = changes
                    .iter()
                    .filter(|c| c.action != CREATED)
                    .map(|c| c.customer_id.as_str())
                    .collect();
                let mut known: BTreeSet<String> = BTreeSet::new();
                for chunk in ids.chunks(IN_CHUNK) {
                    let found: Vec<String> = import_changes::table
                        .filter(import_changes::job_id.eq(&job_id))
                        .filter(ids_in(import_changes::customer_id, chunk))
                        .select(import_changes::customer_id)
                        .load(self)
                        .await?;
                    known.extend(found);
                }
                let fresh: Vec<ImportChangeRow> = changes
                    .into_iter()
                    .filter(|change| known.insert(change.customer_id.clone()))
                    .collect();
                self.insert_import_change_rows(&fresh).await?;
                Ok(())
            }

            async fn resolve_tags(
                &mut self,
                entries: &[ImportEntry],
                create_missing: bool,
            ) -> StoreResult<Resolved> {
                // category key → a display name and the values its tags are given
                let mut wanted: BTreeMap<TagKey, (&ImportTag, bool)> = BTreeMap::new();
                let mut keys = SpelledKeys::new();
                for tag in entries.iter().flat_map(|entry| &entry.tags) {
                    let key = spelled_key(&mut keys, tag);
                    let slot = wanted.entry(key).or_insert((tag, false));
                    slot.1 |= !tag.value.is_empty();
                }
                let mut resolved = Resolved {
                    tags: HashMap::new(),
                    exclusive_categories: BTreeSet::new(),
                    keys,
                };
                if wanted.is_empty() {
                    return Ok(resolved);
                }
                let category_keys: BTreeSet<&str> = wanted
                    .keys()
                    .map(|(category, _)| category.as_str())
                    .collect();
                let rows: Vec<CategoryRow> = categories::table
                    .filter(categories::name_key.eq_any(&category_keys))
                    .select(CategoryRow::as_select())
                    .load(self)
                    .await?;
                let mut category_by_key: HashMap<String, CategoryRow> = rows
                    .into_iter()
                    .map(|row| (row.name_key.clone(), row))
                    .collect();
                if create_missing {
                    for ((category_key, _), (tag, _)) in &wanted {
                        if category_by_key.contains_key(category_key) {
                            continue;
                        }
                        let new = NewCategory {
                            name: text::normalize(&tag.category),
                            description: CREATED_BY_IMPORT.to_owned(),
                            exclusive: false,
                        };
                        let row = CategoryRow::new(&new, category_key.clone());
                        diesel::insert_into(categories::table)
                            .values(&row)
                            .execute(self)
                            .await?;
                        category_by_key.insert(category_key.clone(), row);
                    }
                }
                let category_ids: Vec<&str> = category_by_key
                    .values()
                    .map(|row| row.id.as_str())
                    .collect();
                let tag_keys: BTreeSet<&str> = wanted.keys().map(|(_, tag)| tag.as_str()).collect();
                let rows: Vec<TagRow> = tags::table
                    .filter(tags::category_id.eq_any(&category_ids))
                    .filter(tags::name_key.eq_any(&tag_keys))
                    .select(TagRow::as_select())
                    .load(self)
                    .await?;
                let key_of_category: HashMap<&str, &str> = category_by_key
                    .iter()
                    .map(|(key, row)| (row.id.as_str(), key.as_str()))
                    .collect();
                for row in rows {
                    let Some(category_key) = key_of_category.get(row.category_id.as_str()) else {
                        continue;
                    };
                    let key = ((*category_key).to_owned(), row.name_key.clone());
                    resolved.tags.insert(key, row.into_tag()?);
                }
                let mut locked_categories: HashSet<String> = HashSet::new();
                for ((category_key, name_key), (tag, has_values)) in &wanted {
                    let key = (category_key.clone(), name_key.clone());
                    if resolved.tags.contains_key(&key) || !create_missing {
                        continue;
                    }
                    let Some(category) = category_by_key.get(category_key) else {
                        continue;
                    };
                    // Held shared until the commit, as CreateTag holds it: a concurrent
                    // delete of the category waits for the tag created here.
                    if locked_categories.insert(category.id.clone())
                        && !self.lock_category(&category.id, false).await?
                    {
                        return Err(StoreError::FailedPrecondition(format!(
                            "category {:?} was deleted while the import was creating tags in it",
                            category.name
                        )));
                    }
                    // A tag first seen with values holds text; one seen without is a flag.
                    let value_type = if *has_values {
                        ValueType::Text
                    } else {
                        ValueType::Flag
                    };
                    let new = NewTag {
                        category_id: category.id.clone(),
                        name: text::normalize(&tag.name),
                        description: CREATED_BY_IMPORT.to_owned(),
                        value_type,
                        enum_values: Vec::new(),
                        default_validity_secs: None,
                    };
                    let row = TagRow::new(&new, name_key.clone());
                    diesel::insert_into(tags::table)
                        .values(&row)
                        .execute(self)
                        .await?;
                    resolved.tags.insert(key, row.into_tag()?);
                }
                resolved.exclusive_categories = category_by_key
                    .into_values()
                    .filter(|row| row.is_exclusive)
                    .map(|row| row.id)
                    .collect();
                Ok(resolved)
            }
        }
    };
}

import_queries!(SqliteConn);
import_queries!(MysqlConn);

/// Checks a row's tags against the catalogue; the assignments, or why the row is rejected.
fn row_assignments(
    entry: &ImportEntry,
    resolved: &Resolved,
    job_id: &str,
) -> Result<Vec<Assignment>, RejectedRow> {
    let mut assignments = Vec::with_capacity(entry.tags.len());
    let mut exclusive_seen: HashMap<&str, usize> = HashMap::new();
    let mut values_seen: HashMap<&str, Option<String>> = HashMap::new();
    for (index, import_tag) in entry.tags.iter().enumerate() {
        let field = format!("tags[{index}]");
        let shown = format!("{}/{}", import_tag.category, import_tag.name);
        let Some(tag) = resolved.tag(import_tag) else {
            return Err(RejectedRow::new(
                entry.row,
                field,
                format!(
                    "unknown tag {shown:?}; create it first or import with create_missing_tags"
                ),
                &shown,
            ));
        };
        let value = tag
            .check_value(&format!("{field}.value"), &import_tag.value)
            .map_err(|error| {
                RejectedRow::new(entry.row, &field, error.to_string(), &import_tag.value)
            })?;
        if let Some(first) = values_seen.insert(tag.id.as_str(), value.clone()) {
            if first == value {
                continue; // the same tag twice with the same value: keep one
            }
            return Err(RejectedRow::new(
                entry.row,
                field,
                format!("tag {shown:?} is given twice with different values"),
                &import_tag.value,
            ));
        }
        if resolved.exclusive_categories.contains(&tag.category_id)
            && let Some(first) = exclusive_seen.insert(tag.category_id.as_str(), index)
        {
            return Err(RejectedRow::new(
                entry.row,
                field,
                format!(
                    "category {:?} is exclusive and tags[{first}] already gives one of its tags",
                    import_tag.category
                ),
                &shown,
            ));
        }
        assignments.push(Assignment {
            tag_id: tag.id.clone(),
            value: value.unwrap_or_default(),
            source: TagSource::Import,
            source_ref: job_id.to_owned(),
            expires_at: None,
        });
    }
    Ok(assignments)
}

impl Store {
    /// Writes one batch of an import in one transaction (rolled back for a dry
    /// run). Rows whose tags the catalogue rejects are reported, not written.
    /// Keys must be distinct within a batch. A failure of the batch as a whole
    /// (such as an identity already held by another customer) is returned as an
    /// error: the caller retries the rows one by one to find the culprit.
    pub async fn import_batch(
        &self,
        entries: &[ImportEntry],
        settings: &ImportSettings,
    ) -> StoreResult<ImportOutcome> {
        rehearsable_transaction!(self, !settings.dry_run, |conn| {
            let resolved = conn
                .resolve_tags(entries, settings.create_missing_tags)
                .await?;
            let mut outcome = ImportOutcome::default();
            let mut accepted = Vec::with_capacity(entries.len());
            let mut sources: Vec<&ImportEntry> = Vec::with_capacity(entries.len());
            let mut assignments = Vec::with_capacity(entries.len());
            for entry in entries {
                match row_assignments(entry, &resolved, &settings.job_id) {
                    Ok(rows) => {
                        sources.push(entry);
                        accepted.push(UpsertEntry {
                            key: entry.key.clone(),
                            fields: entry.fields.clone(),
                            link_to: entry.link_to.clone(),
                        });
                        assignments.push(rows);
                    }
                    Err(rejected) => outcome.rejected.push(rejected),
                }
            }
            let results = conn
                .upsert_entries(&accepted, settings.skip_existing)
                .await?;
            let mut calls: BTreeMap<String, AssignCall> = BTreeMap::new();
            let mut purchases = Vec::new();
            let mut interactions = Vec::new();
            let changes: Vec<ImportChangeRow> = results
                .iter()
                .filter_map(|result| {
                    let (action, before) = match result.outcome {
                        UpsertOutcome::Created => (CREATED, String::new()),
                        UpsertOutcome::Updated => ("updated", fields_json(result.before.as_ref()?)),
                        UpsertOutcome::Unchanged => return None,
                    };
                    Some(ImportChangeRow {
                        job_id: settings.job_id.clone(),
                        customer_id: result.customer_id.clone(),
                        action: action.to_owned(),
                        before_fields: before,
                    })
                })
                .collect();
            conn.record_changes(changes).await?;
            for ((result, rows), source) in results.iter().zip(assignments).zip(&sources) {
                match result.outcome {
                    UpsertOutcome::Created => {
                        outcome.created += 1;
                        outcome.created_keys.push(source.key.clone());
                    }
                    UpsertOutcome::Updated => outcome.updated += 1,
                    UpsertOutcome::Unchanged => outcome.unchanged += 1,
                }
                // Skipped customers keep their tags as they are.
                let skipped = settings.skip_existing && result.outcome != UpsertOutcome::Created;
                if !skipped {
                    purchases.extend(
                        source
                            .purchases
                            .iter()
                            .map(|p| (result.customer_id.clone(), p.clone())),
                    );
                    interactions.extend(
                        source
                            .interactions
                            .iter()
                            .map(|i| (result.customer_id.clone(), i.clone())),
                    );
                }
                if !skipped && !rows.is_empty() {
                    // Two rows may reach one customer through its other identities.
                    calls
                        .entry(result.customer_id.clone())
                        .or_insert_with(|| AssignCall {
                            customer_id: result.customer_id.clone(),
                            assignments: Vec::new(),
                            actor: settings.actor.clone(),
                        })
                        .assignments
                        .extend(rows);
                }
            }
            outcome.purchases_added = conn.add_purchases(&purchases, &settings.job_id).await?;
            outcome.interactions_added = conn
                .add_interactions(&interactions, &settings.job_id)
                .await?;
            if !calls.is_empty() {
                let customer_ids: Vec<String> = calls.keys().cloned().collect();
                let tag_ids: Vec<String> = calls
                    .values()
                    .flat_map(|call| call.assignments.iter().map(|a| a.tag_id.clone()))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let calls: Vec<AssignCall> = calls.into_values().collect();
                let created: HashSet<String> = results
                    .iter()
                    .filter(|result| result.outcome == UpsertOutcome::Created)
                    .map(|result| result.customer_id.clone())
                    .collect();
                for result in conn
                    .assign_calls(&customer_ids, &tag_ids, &calls, &created)
                    .await?
                {
                    let assigned = result?;
                    outcome.tags_added += assigned.assigned + assigned.changed;
                }
            }
            Ok(outcome)
        })
    }
}
