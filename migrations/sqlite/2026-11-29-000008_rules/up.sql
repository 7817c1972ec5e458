-- Tag rules (a tag kept on whoever matches a condition) and their runs (SQLite).

CREATE TABLE tag_rules (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    name_key VARCHAR(200) NOT NULL,
    description TEXT NOT NULL,
    tag_id VARCHAR(36) NOT NULL,
    value TEXT NULL,
    condition_text TEXT NOT NULL,
    interval_secs BIGINT NULL,
    overrides_manual BOOLEAN NOT NULL,
    enabled BOOLEAN NOT NULL,
    template VARCHAR(32) NOT NULL,
    created_by VARCHAR(200) NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    next_run_at TIMESTAMP NULL,
    -- Set while a run holds the rule (any server); cleared when it ends.
    running_run_id VARCHAR(36) NULL,
    running_since TIMESTAMP NULL
);

CREATE UNIQUE INDEX tag_rules_name_key ON tag_rules (name_key);
CREATE INDEX tag_rules_tag ON tag_rules (tag_id);
CREATE INDEX tag_rules_next_run ON tag_rules (next_run_at);

CREATE TABLE rule_runs (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    rule_id VARCHAR(36) NOT NULL,
    rule_name VARCHAR(200) NOT NULL,
    run_trigger VARCHAR(16) NOT NULL,
    actor VARCHAR(200) NOT NULL,
    state VARCHAR(16) NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NULL,
    evaluated BIGINT NOT NULL,
    matched BIGINT NOT NULL,
    gained BIGINT NOT NULL,
    changed BIGINT NOT NULL,
    lost BIGINT NOT NULL,
    kept BIGINT NOT NULL,
    held_back BIGINT NOT NULL,
    error TEXT NOT NULL
);

CREATE INDEX rule_runs_rule ON rule_runs (rule_id, id);
