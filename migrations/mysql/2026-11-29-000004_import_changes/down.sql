DROP INDEX interactions_source_ref ON interactions;
DROP INDEX purchases_source_ref ON purchases;
DROP INDEX tag_history_source_ref ON tag_history;
DROP TABLE import_changes;
