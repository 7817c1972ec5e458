-- Customer field history (every value a cleanse, merge, import or person replaced, kept so a
-- change can be traced) and the report of cleanse jobs (SQLite).
-- Old and new values are text: scalars as they were, lists (phones, emails) as JSON arrays.

CREATE TABLE customer_field_history (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    customer_id VARCHAR(36) NOT NULL,
    field VARCHAR(64) NOT NULL,
    old_value TEXT NOT NULL,
    new_value TEXT NOT NULL,
    source VARCHAR(16) NOT NULL,
    source_ref VARCHAR(200) NOT NULL,
    actor VARCHAR(100) NOT NULL,
    changed_at TIMESTAMP NOT NULL
);

CREATE INDEX customer_field_history_customer ON customer_field_history (customer_id, id);
CREATE INDEX customer_field_history_source_ref ON customer_field_history (source_ref);

-- Per cleanse job and field: values standardised, duplicates removed, values left unfixable.
CREATE TABLE cleanse_field_counts (
    job_id VARCHAR(36) NOT NULL,
    field VARCHAR(64) NOT NULL,
    changed BIGINT NOT NULL,
    duplicates_removed BIGINT NOT NULL,
    unfixable BIGINT NOT NULL,
    PRIMARY KEY (job_id, field)
);

-- Every value a cleanse job could not standardise (or would not write), in the order seen.
CREATE TABLE cleanse_unfixable (
    job_id VARCHAR(36) NOT NULL,
    seq BIGINT NOT NULL,
    customer_id VARCHAR(36) NOT NULL,
    field VARCHAR(64) NOT NULL,
    value VARCHAR(1000) NOT NULL,
    reason VARCHAR(1000) NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE INDEX cleanse_unfixable_customer ON cleanse_unfixable (customer_id);
