//! The tag catalogue: categories and tags.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::RunQueryDsl;
use tagd_core::ids::new_id;
use tagd_core::paging::{PageRequest, finish_page};
use tagd_core::tags::{Category, Tag, ValueType};
use tagd_core::text;

use crate::db::{BackendOps, MysqlConn, SqliteConn, now, with_conn, write_transaction};
use crate::error::{StoreError, StoreResult};
use crate::ids_in::ids_in;
use crate::schema::{categories, customer_tags, tag_rules, tags};
use crate::tagging::TaggingQueries;
use crate::{Page, Store};

/// A validated new category.
#[derive(Debug, Clone)]
pub struct NewCategory {
    pub name: String,
    pub description: String,
    pub exclusive: bool,
}

/// Validated changes to a category; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct CategoryPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub exclusive: Option<bool>,
}

/// A validated new tag.
#[derive(Debug, Clone)]
pub struct NewTag {
    pub category_id: String,
    pub name: String,
    pub description: String,
    pub value_type: ValueType,
    pub enum_values: Vec<String>,
    pub default_validity_secs: Option<i64>,
}

/// Validated changes to a tag; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct TagPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub value_type: Option<ValueType>,
    pub enum_values: Option<Vec<String>>,
    pub default_validity_secs: Option<Option<i64>>,
}

/// What a delete removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    pub deleted_tags: u64,
    pub removed_assignments: u64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = categories)]
pub(crate) struct CategoryRow {
    pub id: String,
    pub name: String,
    pub name_key: String,
    pub description: String,
    pub is_exclusive: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl CategoryRow {
    /// The row of a new category: a fresh id, created now; `name_key` is the
    /// name's compared form.
    pub(crate) fn new(new: &NewCategory, name_key: String) -> Self {
        let at = now();
        Self {
            id: new_id(),
            name: new.name.clone(),
            name_key,
            description: new.description.clone(),
            is_exclusive: new.exclusive,
            created_at: at,
            updated_at: at,
        }
    }
}

impl From<CategoryRow> for Category {
    fn from(row: CategoryRow) -> Self {
        Category {
            id: row.id,
            name: row.name,
            description: row.description,
            exclusive: row.is_exclusive,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = tags, treat_none_as_null = true)]
pub(crate) struct TagRow {
    pub id: String,
    pub category_id: String,
    pub name: String,
    pub name_key: String,
    pub description: String,
    pub value_type: String,
    pub enum_values: String,
    pub default_validity_secs: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl TagRow {
    /// The row of a new tag: a fresh id, created now; `name_key` is the name's
    /// compared form.
    pub(crate) fn new(new: &NewTag, name_key: String) -> Self {
        let at = now();
        Self {
            id: new_id(),
            category_id: new.category_id.clone(),
            name: new.name.clone(),
            name_key,
            description: new.description.clone(),
            value_type: new.value_type.as_str().to_owned(),
            enum_values: encode_enum_values(&new.enum_values),
            default_validity_secs: new.default_validity_secs,
            created_at: at,
            updated_at: at,
        }
    }

    pub(crate) fn into_tag(self) -> StoreResult<Tag> {
        let value_type = self
            .value_type
            .parse()
            .map_err(|e: String| StoreError::Corrupt(format!("tag {}: {e}", self.id)))?;
        let enum_values = serde_json::from_str(&self.enum_values)
            .map_err(|e| StoreError::Corrupt(format!("tag {}: enum_values: {e}", self.id)))?;
        Ok(Tag {
            id: self.id,
            category_id: self.category_id,
            name: self.name,
            description: self.description,
            value_type,
            enum_values,
            default_validity_secs: self.default_validity_secs,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(crate) fn encode_enum_values(values: &[String]) -> String {
    serde_json::Value::from(values.to_vec()).to_string()
}

/// A unique-index violation means someone else took the name between our check and insert.
pub(crate) fn name_taken(error: DieselError, what: &str) -> StoreError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            StoreError::AlreadyExists(format!("{what} already exists"))
        }
        other => other.into(),
    }
}

/// Catalogue queries, written once and compiled for each backend's connection.
/// Lookups by a unique key use `get_result`, not `first`: a bound LIMIT makes
/// SQLite re-prepare the statement on every call.
pub(crate) trait TagQueries {
    async fn category_row(&mut self, id: &str) -> StoreResult<CategoryRow>;
    async fn tag_row(&mut self, id: &str) -> StoreResult<TagRow>;
    async fn check_category_name_free(
        &mut self,
        name: &str,
        except_id: Option<&str>,
    ) -> StoreResult<String>;
    async fn check_tag_name_free(
        &mut self,
        category_id: &str,
        name: &str,
        except_id: Option<&str>,
    ) -> StoreResult<String>;
    async fn assignment_count(&mut self, tag_ids: &[String]) -> StoreResult<i64>;
    /// The names of the rules that set any of these tags.
    async fn rules_setting(&mut self, tag_ids: &[String]) -> StoreResult<Vec<String>>;
    /// Locks a category and then its tags exclusively; answers the tags' ids.
    /// The category first, as creating a tag in it takes it shared, so its tags
    /// cannot grow; then its tags, as every writer of their assignments holds
    /// them shared: this waits for those writers and holds off new ones until
    /// the commit.
    async fn lock_category_with_tags(&mut self, id: &str) -> StoreResult<Vec<String>>;
}

macro_rules! tag_queries {
    ($conn:ty) => {
        impl TagQueries for $conn {
            async fn lock_category_with_tags(&mut self, id: &str) -> StoreResult<Vec<String>> {
                self.lock_category(id, true).await?;
                let tag_ids: Vec<String> = tags::table
                    .select(tags::id)
                    .filter(tags::category_id.eq(id))
                    .order(tags::id)
                    .load(self)
                    .await?;
                for chunk in tag_ids.chunks(crate::db::IN_CHUNK) {
                    self.lock_tags(chunk).await?;
                }
                Ok(tag_ids)
            }

            async fn rules_setting(&mut self, tag_ids: &[String]) -> StoreResult<Vec<String>> {
                let mut names = Vec::new();
                for chunk in tag_ids.chunks(crate::db::IN_CHUNK) {
                    let found: Vec<String> = tag_rules::table
                        .filter(ids_in(tag_rules::tag_id, chunk))
                        .select(tag_rules::name)
                        .order(tag_rules::name)
                        .load(self)
                        .await?;
                    names.extend(found);
                }
                Ok(names)
            }

            async fn category_row(&mut self, id: &str) -> StoreResult<CategoryRow> {
                categories::table
                    .find(id)
                    .select(CategoryRow::as_select())
                    .get_result(self)
                    .await
                    .optional()?
                    .ok_or_else(|| StoreError::not_found("category", id))
            }

            async fn tag_row(&mut self, id: &str) -> StoreResult<TagRow> {
                tags::table
                    .find(id)
                    .select(TagRow::as_select())
                    .get_result(self)
                    .await
                    .optional()?
                    .ok_or_else(|| StoreError::not_found("tag", id))
            }

            async fn check_category_name_free(
                &mut self,
                name: &str,
                except_id: Option<&str>,
            ) -> StoreResult<String> {
                let key = text::key(name);
                let holder: Option<(String, String)> = categories::table
                    .select((categories::id, categories::name))
                    .filter(categories::name_key.eq(&key))
                    .get_result(self)
                    .await
                    .optional()?;
                match holder {
                    Some((id, existing)) if Some(id.as_str()) != except_id => {
                        Err(StoreError::AlreadyExists(format!(
                            "category name {name:?} is taken by category {id} ({existing:?})"
                        )))
                    }
                    _ => Ok(key),
                }
            }

            async fn check_tag_name_free(
                &mut self,
                category_id: &str,
                name: &str,
                except_id: Option<&str>,
            ) -> StoreResult<String> {
                let key = text::key(name);
                let holder: Option<(String, String)> = tags::table
                    .select((tags::id, tags::name))
                    .filter(tags::category_id.eq(category_id))
                    .filter(tags::name_key.eq(&key))
                    .get_result(self)
                    .await
                    .optional()?;
                match holder {
                    Some((id, existing)) if Some(id.as_str()) != except_id => {
                        Err(StoreError::AlreadyExists(format!(
                            "tag name {name:?} is taken in this category by tag {id} ({existing:?})"
                        )))
                    }
                    _ => Ok(key),
                }
            }

            async fn assignment_count(&mut self, tag_ids: &[String]) -> StoreResult<i64> {
                Ok(customer_tags::table
                    .filter(ids_in(customer_tags::tag_id, tag_ids))
                    .count()
                    .get_result(self)
                    .await?)
            }
        }
    };
}

tag_queries!(SqliteConn);
tag_queries!(MysqlConn);

impl Store {
    pub async fn create_category(&self, new: NewCategory) -> StoreResult<Category> {
        write_transaction!(self, |conn| {
            let name_key = conn.check_category_name_free(&new.name, None).await?;
            let row = CategoryRow::new(&new, name_key);
            diesel::insert_into(categories::table)
                .values(&row)
                .execute(conn)
                .await
                .map_err(|e| name_taken(e, &format!("category {:?}", new.name)))?;
            Ok(Category::from(row))
        })
    }

    pub async fn list_categories(&self, page: &PageRequest) -> StoreResult<Page<Category>> {
        let mut rows: Vec<CategoryRow> = with_conn!(self, |conn| {
            let mut query = categories::table
                .select(CategoryRow::as_select())
                .order(categories::id)
                .limit(page_limit(page))
                .into_boxed();
            if let Some(after) = &page.after {
                query = query.filter(categories::id.gt(after.clone()));
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, |row| row.id.clone());
        Ok(Page {
            items: rows.into_iter().map(Category::from).collect(),
            next_page_token,
        })
    }

    pub async fn update_category(&self, id: &str, patch: CategoryPatch) -> StoreResult<Category> {
        write_transaction!(self, |conn| {
            if patch.exclusive == Some(true) {
                // Assignments in progress finish first and new ones wait, so none can give a
                // customer a second tag of the category between the check below and the commit.
                conn.lock_category_with_tags(id).await?;
            }
            let mut row = conn.category_row(id).await?;
            if let Some(name) = &patch.name {
                row.name_key = conn.check_category_name_free(name, Some(id)).await?;
                row.name.clone_from(name);
            }
            if let Some(description) = &patch.description {
                row.description.clone_from(description);
            }
            if patch.exclusive == Some(true) && !row.is_exclusive {
                let doubled: Option<String> = customer_tags::table
                    .select(customer_tags::customer_id)
                    .filter(customer_tags::category_id.eq(id))
                    .group_by(customer_tags::customer_id)
                    .having(diesel::dsl::count_star().gt(1))
                    .first(conn)
                    .await
                    .optional()?;
                if let Some(customer_id) = doubled {
                    return Err(StoreError::FailedPrecondition(format!(
                        "category {id} cannot become exclusive: customer {customer_id} holds more than one of its tags"
                    )));
                }
            }
            if let Some(exclusive) = patch.exclusive {
                row.is_exclusive = exclusive;
            }
            row.updated_at = now();
            diesel::update(categories::table.find(id))
                .set(&row)
                .execute(conn)
                .await
                .map_err(|e| name_taken(e, &format!("category {:?}", row.name)))?;
            Ok(Category::from(row))
        })
    }

    pub async fn delete_category(
        &self,
        id: &str,
        force: bool,
        actor: &str,
    ) -> StoreResult<DeleteOutcome> {
        write_transaction!(self, |conn| {
            let tag_ids = conn.lock_category_with_tags(id).await?;
            let category = conn.category_row(id).await?;
            refuse_if_ruled(conn, &tag_ids, &format!("category {:?}", category.name)).await?;
            let assigned = conn.assignment_count(&tag_ids).await?;
            if assigned > 0 && !force {
                return Err(StoreError::FailedPrecondition(format!(
                    "category {:?} has {assigned} tag assignments; remove them or pass force",
                    category.name
                )));
            }
            let removed_assignments = conn.remove_tags_everywhere(&tag_ids, actor).await?;
            // One by one, by primary key: a `category_id` filter may scan the table and so
            // wait for (and deadlock with) the locks other writers hold on other tags.
            let mut deleted_tags = 0;
            for tag_id in &tag_ids {
                deleted_tags += diesel::delete(tags::table.find(tag_id))
                    .execute(conn)
                    .await?;
            }
            diesel::delete(categories::table.find(id))
                .execute(conn)
                .await?;
            Ok(DeleteOutcome {
                deleted_tags: deleted_tags as u64,
                removed_assignments,
            })
        })
    }

    pub async fn create_tag(&self, new: NewTag) -> StoreResult<Tag> {
        write_transaction!(self, |conn| {
            // Held shared until the commit: a concurrent delete of the category waits for it.
            // (`category_row` then answers NOT_FOUND if a delete committed while it waited.)
            conn.lock_category(&new.category_id, false).await?;
            conn.category_row(&new.category_id).await?;
            let name_key = conn
                .check_tag_name_free(&new.category_id, &new.name, None)
                .await?;
            let row = TagRow::new(&new, name_key);
            diesel::insert_into(tags::table)
                .values(&row)
                .execute(conn)
                .await
                .map_err(|e| name_taken(e, &format!("tag {:?}", new.name)))?;
            row.into_tag()
        })
    }

    /// The category whose case-folded name key is `name`'s, if any.
    pub async fn category_named(&self, name: &str) -> StoreResult<Option<Category>> {
        let key = text::key(name);
        let row: Option<CategoryRow> = with_conn!(self, |conn| {
            categories::table
                .filter(categories::name_key.eq(&key))
                .select(CategoryRow::as_select())
                .first(conn)
                .await
                .optional()?
        });
        Ok(row.map(Category::from))
    }

    /// The tag of `category_id` whose case-folded name key is `name`'s, if any.
    pub async fn tag_named(&self, category_id: &str, name: &str) -> StoreResult<Option<Tag>> {
        let key = text::key(name);
        let row: Option<TagRow> = with_conn!(self, |conn| {
            tags::table
                .filter(tags::category_id.eq(category_id))
                .filter(tags::name_key.eq(&key))
                .select(TagRow::as_select())
                .first(conn)
                .await
                .optional()?
        });
        row.map(TagRow::into_tag).transpose()
    }

    pub async fn get_tag(&self, id: &str) -> StoreResult<Tag> {
        crate::db::inline_sqlite(async {
            with_conn!(self, |conn| conn.tag_row(id).await?).into_tag()
        })
        .await
    }

    pub async fn list_tags(
        &self,
        category_id: Option<&str>,
        page: &PageRequest,
    ) -> StoreResult<Page<Tag>> {
        let mut rows: Vec<TagRow> = with_conn!(self, |conn| {
            if let Some(category_id) = category_id {
                conn.category_row(category_id).await?;
            }
            let mut query = tags::table
                .select(TagRow::as_select())
                .order(tags::id)
                .limit(page_limit(page))
                .into_boxed();
            if let Some(category_id) = category_id {
                query = query.filter(tags::category_id.eq(category_id.to_owned()));
            }
            if let Some(after) = &page.after {
                query = query.filter(tags::id.gt(after.clone()));
            }
            query.load(conn).await?
        });
        let next_page_token = finish_page(&mut rows, page.size, |row| row.id.clone());
        Ok(Page {
            items: rows
                .into_iter()
                .map(TagRow::into_tag)
                .collect::<StoreResult<_>>()?,
            next_page_token,
        })
    }

    pub async fn update_tag(&self, id: &str, patch: TagPatch) -> StoreResult<Tag> {
        write_transaction!(self, |conn| {
            // Locked first: no assignment of the old type commits after the check below.
            conn.lock_tags(&[id.to_owned()]).await?;
            let mut tag = conn.tag_row(id).await?.into_tag()?;
            let mut name_key = text::key(&tag.name);
            if let Some(name) = &patch.name {
                name_key = conn
                    .check_tag_name_free(&tag.category_id, name, Some(id))
                    .await?;
                tag.name.clone_from(name);
            }
            if let Some(description) = &patch.description {
                tag.description.clone_from(description);
            }
            let type_changes = patch
                .value_type
                .is_some_and(|new_type| new_type != tag.value_type);
            if type_changes && conn.assignment_count(&[id.to_owned()]).await? > 0 {
                return Err(StoreError::FailedPrecondition(format!(
                    "tag {:?} is assigned, so its value type cannot change from {}",
                    tag.name,
                    tag.value_type.as_str()
                )));
            }
            if let Some(value_type) = patch.value_type {
                tag.value_type = value_type;
            }
            if let Some(values) = &patch.enum_values {
                let dropped: Vec<&String> = tag
                    .enum_values
                    .iter()
                    .filter(|old| !values.contains(old))
                    .collect();
                if !dropped.is_empty() {
                    let in_use: Option<String> = customer_tags::table
                        .select(customer_tags::value.assume_not_null())
                        .filter(customer_tags::tag_id.eq(id))
                        .filter(ids_in(customer_tags::value, &dropped))
                        .first(conn)
                        .await
                        .optional()?;
                    if let Some(value) = in_use {
                        return Err(StoreError::FailedPrecondition(format!(
                            "enum value {value:?} of tag {:?} is still assigned and cannot be removed",
                            tag.name
                        )));
                    }
                }
                tag.enum_values.clone_from(values);
            }
            tagd_core::tags::enum_values("tag.enum_values", tag.value_type, &tag.enum_values)?;
            if let Some(validity) = patch.default_validity_secs {
                tag.default_validity_secs = validity;
            }
            tag.updated_at = now();
            let row = TagRow {
                id: tag.id.clone(),
                category_id: tag.category_id.clone(),
                name: tag.name.clone(),
                name_key,
                description: tag.description.clone(),
                value_type: tag.value_type.as_str().to_owned(),
                enum_values: encode_enum_values(&tag.enum_values),
                default_validity_secs: tag.default_validity_secs,
                created_at: tag.created_at,
                updated_at: tag.updated_at,
            };
            diesel::update(tags::table.find(id))
                .set(&row)
                .execute(conn)
                .await
                .map_err(|e| name_taken(e, &format!("tag {:?}", tag.name)))?;
            Ok(tag)
        })
    }

    pub async fn delete_tag(
        &self,
        id: &str,
        force: bool,
        actor: &str,
    ) -> StoreResult<DeleteOutcome> {
        write_transaction!(self, |conn| {
            let ids = [id.to_owned()];
            // Locked first: this waits for every transaction writing assignments of the tag
            // (they hold it shared), so the removal below sees what they wrote, and holds off
            // new ones, which then find the tag gone (NOT_FOUND).
            conn.lock_tags(&ids).await?;
            let tag = conn.tag_row(id).await?;
            refuse_if_ruled(conn, &ids, &format!("tag {:?}", tag.name)).await?;
            let assigned = conn.assignment_count(&ids).await?;
            if assigned > 0 && !force {
                return Err(StoreError::FailedPrecondition(format!(
                    "tag {:?} is assigned to {assigned} customers; remove it or pass force",
                    tag.name
                )));
            }
            let removed_assignments = conn.remove_tags_everywhere(&ids, actor).await?;
            diesel::delete(tags::table.find(id)).execute(conn).await?;
            Ok(DeleteOutcome {
                deleted_tags: 1,
                removed_assignments,
            })
        })
    }
}

/// Refuses to delete tags a rule sets (with force too: the rule would fail on every run).
async fn refuse_if_ruled<C: TagQueries>(
    conn: &mut C,
    tag_ids: &[String],
    what: &str,
) -> StoreResult<()> {
    let names = conn.rules_setting(tag_ids).await?;
    if names.is_empty() {
        return Ok(());
    }
    Err(StoreError::FailedPrecondition(format!(
        "{what} cannot be deleted: tag rules set it ({}); delete or change them first",
        names
            .iter()
            .map(|name| format!("{name:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// One row more than the page, to learn whether another page follows.
pub(crate) fn page_limit(page: &PageRequest) -> i64 {
    i64::try_from(page.size).unwrap_or(i64::MAX - 1) + 1
}
