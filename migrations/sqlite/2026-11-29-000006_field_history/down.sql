DROP INDEX cleanse_unfixable_customer;
DROP TABLE cleanse_unfixable;
DROP TABLE cleanse_field_counts;
DROP INDEX customer_field_history_source_ref;
DROP INDEX customer_field_history_customer;
DROP TABLE customer_field_history;
