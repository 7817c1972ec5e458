//! `column IN (ids)` as a statement SQLite prepares once per connection.
//!
//! Diesel's `eq_any` writes one placeholder per id, so a statement's text
//! changes with the number of ids and is never cached: SQLite parses and plans
//! it afresh on every call, about an eighth of a dedupe merge's CPU time with
//! a thousand ids per list. On SQLite this expression binds the ids as one JSON
//! array and reads them back with `json_each`, so the text is fixed and the
//! statement is cached like any other. On MySQL it writes the usual
//! placeholder list, padded with the last id to the next power of two: a few
//! texts per query, each prepared once per connection and then reused (an
//! uncached statement costs a prepare and a close round trip besides its own).

use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::mysql::Mysql;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;
use diesel::sql_types::{Bool, Nullable, Text};
use diesel::sqlite::Sqlite;

/// The column types `IN (ids)` compares: text, nullable or not.
pub(crate) trait TextColumn {}
impl TextColumn for Text {}
impl TextColumn for Nullable<Text> {}

/// `column IN (ids)`, built by [`ids_in`]. Typed `Bool` even on a nullable
/// column: it only ever filters, where a NULL (no match) counts as false.
#[derive(Debug, Clone)]
pub(crate) struct IdsIn<C> {
    column: C,
    ids: Vec<String>,
    /// The ids as a JSON array: SQLite's single bind parameter.
    json: String,
}

/// `column IN (ids)`; an empty list matches nothing.
pub(crate) fn ids_in<C, I>(column: C, ids: &[I]) -> IdsIn<C>
where
    C: Expression<SqlType: TextColumn>,
    I: AsRef<str>,
{
    let ids: Vec<String> = ids.iter().map(|id| id.as_ref().to_owned()).collect();
    // A list of strings always serialises.
    let json = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".to_owned());
    IdsIn { column, ids, json }
}

impl<C: Expression<SqlType: TextColumn>> Expression for IdsIn<C> {
    type SqlType = Bool;
}

impl<C: AppearsOnTable<QS>, QS> AppearsOnTable<QS> for IdsIn<C> where
    C: Expression<SqlType: TextColumn>
{
}

impl<C: SelectableExpression<QS>, QS> SelectableExpression<QS> for IdsIn<C> where
    C: Expression<SqlType: TextColumn>
{
}

impl<C: ValidGrouping<GB>, GB> ValidGrouping<GB> for IdsIn<C> {
    type IsAggregate = C::IsAggregate;
}

/// No static id: MySQL's text varies with the (padded) number of ids, so
/// statement caches key a query holding [`IdsIn`] by its SQL text instead.
impl<C> QueryId for IdsIn<C> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// Lists longer than this go out exactly as they are, and uncached. Padded texts
/// stay prepared on their connection, and MySQL caps prepared statements
/// server-wide (`max_prepared_stmt_count`, 16,382 by default, shared by every
/// tagd and every pooled connection): seven sizes per query keep that far off,
/// while a long list's bulk work dwarfs its one prepare round trip.
const MYSQL_MAX_PADDED_IDS: usize = 64;

/// How many placeholders MySQL's text has for `ids` ids: the next power of two
/// up to [`MYSQL_MAX_PADDED_IDS`], the count itself beyond.
fn mysql_placeholders(ids: usize) -> usize {
    if ids > MYSQL_MAX_PADDED_IDS {
        ids
    } else {
        ids.next_power_of_two()
    }
}

impl<C: QueryFragment<Sqlite>> QueryFragment<Sqlite> for IdsIn<C> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, String>(&self.json)?;
        out.push_sql("))");
        Ok(())
    }
}

impl<C: QueryFragment<Mysql>> QueryFragment<Mysql> for IdsIn<C> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        if self.ids.is_empty() {
            out.push_sql("1=0");
            return Ok(());
        }
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" IN ");
        push_mysql_id_list(out, &self.ids)
    }
}

/// Writes `(?, ?, …)` for `ids` (at least one), padded as [`mysql_placeholders`] says.
fn push_mysql_id_list<'b>(mut out: AstPass<'_, 'b, Mysql>, ids: &'b [String]) -> QueryResult<()> {
    let Some(last) = ids.last() else {
        return Err(diesel::result::Error::QueryBuilderError(
            "an id list needs at least one id".into(),
        ));
    };
    let placeholders = mysql_placeholders(ids.len());
    if placeholders > MYSQL_MAX_PADDED_IDS {
        // A text of its own: caching it would only fill the cache.
        out.unsafe_to_cache_prepared();
    }
    out.push_sql("(");
    // Repeating the last id changes nothing of what IN matches.
    let padded = ids.iter().chain(std::iter::repeat(last));
    for (index, id) in padded.take(placeholders).enumerate() {
        if index > 0 {
            out.push_sql(", ");
        }
        out.push_bind_param::<Text, String>(id)?;
    }
    out.push_sql(")");
    Ok(())
}

/// A MySQL statement written as SQL text around one id list — `{before} (?, ?, …) {after}` —
/// for what Diesel's DSL cannot say (MariaDB's `LOCK IN SHARE MODE`, index hints). Unlike
/// `diesel::sql_query`, which is prepared and closed around every call, it is prepared once
/// per connection for each text, the list padded as [`IdsIn`]'s. Rows load by name.
#[derive(Debug)]
pub(crate) struct MysqlIdsQuery<'a> {
    pub before: String,
    pub ids: &'a [String],
    pub after: &'static str,
}

impl QueryId for MysqlIdsQuery<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for MysqlIdsQuery<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl QueryFragment<Mysql> for MysqlIdsQuery<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.push_sql(&self.before);
        out.push_sql(" ");
        push_mysql_id_list(out.reborrow(), self.ids)?;
        out.push_sql(" ");
        out.push_sql(self.after);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sqlite::SqliteConnection;

    use super::ids_in;
    use crate::schema::tags;

    fn connection() -> SqliteConnection {
        let mut conn = SqliteConnection::establish(":memory:").expect("in-memory database");
        // Only the column the queries read.
        diesel::sql_query("CREATE TABLE tags (id TEXT PRIMARY KEY NOT NULL)")
            .execute(&mut conn)
            .expect("table");
        diesel::sql_query("INSERT INTO tags VALUES ('a'), ('b'), ('c\"quoted')")
            .execute(&mut conn)
            .expect("rows");
        conn
    }

    fn matching(conn: &mut SqliteConnection, ids: &[&str]) -> Vec<String> {
        tags::table
            .filter(ids_in(tags::id, ids))
            .select(tags::id)
            .order(tags::id)
            .load(conn)
            .expect("query")
    }

    #[test]
    fn selects_the_listed_ids_including_ones_that_need_json_escaping() {
        let mut conn = connection();
        assert_eq!(matching(&mut conn, &["b", "a", "zz"]), ["a", "b"]);
        assert_eq!(matching(&mut conn, &["c\"quoted"]), ["c\"quoted"]);
        assert!(matching(&mut conn, &[]).is_empty());
    }

    #[test]
    fn sqlite_text_does_not_depend_on_how_many_ids() {
        let one = diesel::debug_query::<diesel::sqlite::Sqlite, _>(
            &tags::table
                .filter(ids_in(tags::id, &["a"]))
                .select(tags::id),
        )
        .to_string();
        let three = diesel::debug_query::<diesel::sqlite::Sqlite, _>(
            &tags::table
                .filter(ids_in(tags::id, &["a", "b", "c"]))
                .select(tags::id),
        )
        .to_string();
        let text = |query: &str| {
            query
                .split(" -- binds")
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(text(&one), text(&three));
        assert!(text(&one).contains("json_each"), "{one}");
    }

    #[test]
    fn mysql_pads_to_a_power_of_two_with_the_last_id_and_caches_those_texts() {
        use diesel::query_builder::QueryFragment;
        let query = |ids: &[&str]| tags::table.filter(ids_in(tags::id, ids)).select(tags::id);
        let mysql =
            |ids: &[&str]| diesel::debug_query::<diesel::mysql::Mysql, _>(&query(ids)).to_string();
        let three = mysql(&["a", "b", "c"]);
        assert!(three.contains("`tags`.`id` IN (?, ?, ?, ?)"), "{three}");
        assert!(three.ends_with(r#"binds: ["a", "b", "c", "c"]"#), "{three}");
        let four = mysql(&["a", "b", "c", "d"]);
        assert!(four.contains("IN (?, ?, ?, ?)"), "{four}");
        let one = mysql(&["a"]);
        assert!(one.contains("IN (?)"), "{one}");
        let none = mysql(&[]);
        assert!(none.contains("WHERE 1=0"), "{none}");

        let cacheable = |ids: &[&str]| {
            QueryFragment::<diesel::mysql::Mysql>::is_safe_to_cache_prepared(
                &query(ids),
                &diesel::mysql::Mysql,
            )
            .expect("walks")
        };
        let many: Vec<String> = (0..65).map(|n| n.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(cacheable(&many[..3]));
        assert!(cacheable(&many[..64]));
        assert!(!cacheable(&many), "65 ids go out exactly, uncached");
        let exact = mysql(&many);
        assert_eq!(exact.matches('?').count(), 65);
    }

    #[test]
    fn mysql_ids_query_pads_its_list_and_is_cached_by_text() {
        use diesel::query_builder::QueryFragment;

        use super::MysqlIdsQuery;
        let ids: Vec<String> = ["b", "a", "c"].map(str::to_owned).to_vec();
        let query = MysqlIdsQuery {
            before: "SELECT id FROM tags WHERE id IN".to_owned(),
            ids: &ids,
            after: "ORDER BY id FOR UPDATE",
        };
        let text = diesel::debug_query::<diesel::mysql::Mysql, _>(&query).to_string();
        assert!(
            text.starts_with("SELECT id FROM tags WHERE id IN (?, ?, ?, ?) ORDER BY id FOR UPDATE"),
            "{text}"
        );
        assert!(text.ends_with(r#"binds: ["b", "a", "c", "c"]"#), "{text}");
        assert!(
            QueryFragment::<diesel::mysql::Mysql>::is_safe_to_cache_prepared(
                &query,
                &diesel::mysql::Mysql
            )
            .expect("walks")
        );
        const { assert!(!<MysqlIdsQuery<'_> as diesel::query_builder::QueryId>::HAS_STATIC_QUERY_ID) };
    }
}
