-- Merges of duplicate customers with what undoing each needs, the ids merged away, and the dedupe review queue (SQLite).
-- `snapshot` is JSON: every merged customer's row and tags as they were, the survivor's before and after,
-- and the ids of the history, purchase and interaction rows moved to the survivor.

CREATE TABLE merges (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    survivor_id VARCHAR(36) NOT NULL,
    merged_ids TEXT NOT NULL,
    actor VARCHAR(100) NOT NULL,
    job_id VARCHAR(36) NOT NULL,
    reason VARCHAR(1000) NOT NULL,
    snapshot TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    undone_at TIMESTAMP NULL,
    undone_by VARCHAR(100) NOT NULL
);
CREATE INDEX merges_survivor ON merges (survivor_id, id);

CREATE TABLE merged_customers (
    customer_id VARCHAR(36) NOT NULL PRIMARY KEY,
    merge_id VARCHAR(36) NOT NULL,
    survivor_id VARCHAR(36) NOT NULL
);
CREATE INDEX merged_customers_merge ON merged_customers (merge_id);
CREATE INDEX merged_customers_survivor ON merged_customers (survivor_id);

CREATE TABLE dedupe_candidates (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    customer_a VARCHAR(36) NOT NULL,
    customer_b VARCHAR(36) NOT NULL,
    score DOUBLE NOT NULL,
    explanation TEXT NOT NULL,
    state VARCHAR(16) NOT NULL,
    job_id VARCHAR(36) NOT NULL,
    created_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP NULL,
    resolved_by VARCHAR(100) NOT NULL
);
CREATE UNIQUE INDEX dedupe_candidates_pair ON dedupe_candidates (customer_a, customer_b);
CREATE INDEX dedupe_candidates_state ON dedupe_candidates (state, id);
CREATE INDEX dedupe_candidates_b ON dedupe_candidates (customer_b);
