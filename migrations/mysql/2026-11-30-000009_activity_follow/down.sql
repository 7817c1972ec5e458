DROP INDEX interactions_created ON interactions;
DROP INDEX purchases_created ON purchases;
