-- Merges of duplicate customers with what undoing each needs, the ids merged away, and the dedupe review queue (MySQL / MariaDB).
-- `snapshot` is JSON: every merged customer's row and tags as they were, the survivor's before and after,
-- and the ids of the history, purchase and interaction rows moved to the survivor.

CREATE TABLE merges (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    survivor_id VARCHAR(36) NOT NULL,
    merged_ids TEXT NOT NULL,
    actor VARCHAR(100) NOT NULL,
    job_id VARCHAR(36) NOT NULL,
    reason VARCHAR(1000) NOT NULL,
    snapshot LONGTEXT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    undone_at DATETIME(6) NULL,
    undone_by VARCHAR(100) NOT NULL,
    KEY merges_survivor (survivor_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE merged_customers (
    customer_id VARCHAR(36) NOT NULL PRIMARY KEY,
    merge_id VARCHAR(36) NOT NULL,
    survivor_id VARCHAR(36) NOT NULL,
    KEY merged_customers_merge (merge_id),
    KEY merged_customers_survivor (survivor_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE dedupe_candidates (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    customer_a VARCHAR(36) NOT NULL,
    customer_b VARCHAR(36) NOT NULL,
    score DOUBLE NOT NULL,
    explanation TEXT NOT NULL,
    state VARCHAR(16) NOT NULL,
    job_id VARCHAR(36) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    resolved_at DATETIME(6) NULL,
    resolved_by VARCHAR(100) NOT NULL,
    UNIQUE KEY dedupe_candidates_pair (customer_a, customer_b),
    KEY dedupe_candidates_state (state, id),
    KEY dedupe_candidates_b (customer_b)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
