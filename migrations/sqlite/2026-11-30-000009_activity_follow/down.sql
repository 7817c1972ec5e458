DROP INDEX interactions_created;
DROP INDEX purchases_created;
