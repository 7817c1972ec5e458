DROP TABLE tag_history;
DROP TABLE customer_tags;
DROP TABLE customer_external_ids;
DROP TABLE customer_emails;
DROP TABLE customer_phones;
DROP TABLE customers;
DROP TABLE tags;
DROP TABLE categories;
