DROP INDEX interactions_source_ref;
DROP INDEX purchases_source_ref;
DROP INDEX tag_history_source_ref;
DROP TABLE import_changes;
