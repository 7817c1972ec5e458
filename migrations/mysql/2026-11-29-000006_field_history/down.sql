DROP TABLE cleanse_unfixable;
DROP TABLE cleanse_field_counts;
DROP TABLE customer_field_history;
