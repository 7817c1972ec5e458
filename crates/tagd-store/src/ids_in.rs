//! `column IN (ids)` as a statement SQLite prepares once per connection.
//!
//! Diesel's `eq_any` writes one placeholder per id, so a statement's text
//! changes with the number of ids and is never cached: SQLite parses and plans
//! it afresh on every call, about an eighth of a dedupe merge's CPU time with
//! a thousand ids per list. On SQLite this expression binds the ids as one JSON
//! array and reads them back with `json_each`, so the text is fixed and the
//! statement is cached like any other. On MySQL it writes the usual
//! placeholder list (and, its text varying, marks the statement uncacheable).

use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::mysql::Mysql;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
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

/// The type a statement cache keys [`IdsIn`] by: the column's, nothing of the ids.
#[derive(Debug)]
pub(crate) struct IdsInQueryId<C>(std::marker::PhantomData<C>);

impl<C: QueryId> QueryId for IdsIn<C> {
    type QueryId = IdsInQueryId<C::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = C::HAS_STATIC_QUERY_ID;
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
        // The text depends on the number of ids: a cached statement would be reused for another count.
        out.unsafe_to_cache_prepared();
        if self.ids.is_empty() {
            out.push_sql("1=0");
            return Ok(());
        }
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" IN (");
        for (index, id) in self.ids.iter().enumerate() {
            if index > 0 {
                out.push_sql(", ");
            }
            out.push_bind_param::<Text, String>(id)?;
        }
        out.push_sql(")");
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
    fn mysql_writes_one_placeholder_per_id_and_nothing_for_an_empty_list() {
        let mysql = |ids: &[&str]| {
            diesel::debug_query::<diesel::mysql::Mysql, _>(
                &tags::table.filter(ids_in(tags::id, ids)).select(tags::id),
            )
            .to_string()
        };
        let three = mysql(&["a", "b", "c"]);
        assert!(three.contains("`tags`.`id` IN (?, ?, ?)"), "{three}");
        let none = mysql(&[]);
        assert!(none.contains("WHERE 1=0"), "{none}");
    }
}
