DROP TABLE dedupe_candidates;
DROP TABLE merged_customers;
DROP TABLE merges;
