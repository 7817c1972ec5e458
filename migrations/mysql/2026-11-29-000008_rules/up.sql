-- Tag rules (a tag kept on whoever matches a condition) and their runs (MySQL / MariaDB).

CREATE TABLE tag_rules (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    name_key VARCHAR(200) NOT NULL,
    description TEXT NOT NULL,
    tag_id VARCHAR(36) NOT NULL,
    value TEXT NULL,
    -- MEDIUMTEXT: a condition may be 64 KB, and TEXT stops one byte short.
    condition_text MEDIUMTEXT NOT NULL,
    interval_secs BIGINT NULL,
    overrides_manual BOOLEAN NOT NULL,
    enabled BOOLEAN NOT NULL,
    template VARCHAR(32) NOT NULL,
    created_by VARCHAR(200) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    next_run_at DATETIME(6) NULL,
    -- Set while a run holds the rule (any server); cleared when it ends.
    running_run_id VARCHAR(36) NULL,
    running_since DATETIME(6) NULL,
    UNIQUE KEY tag_rules_name_key (name_key),
    KEY tag_rules_tag (tag_id),
    KEY tag_rules_next_run (next_run_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE rule_runs (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    rule_id VARCHAR(36) NOT NULL,
    rule_name VARCHAR(200) NOT NULL,
    run_trigger VARCHAR(16) NOT NULL,
    actor VARCHAR(200) NOT NULL,
    state VARCHAR(16) NOT NULL,
    started_at DATETIME(6) NOT NULL,
    finished_at DATETIME(6) NULL,
    evaluated BIGINT NOT NULL,
    matched BIGINT NOT NULL,
    gained BIGINT NOT NULL,
    changed BIGINT NOT NULL,
    lost BIGINT NOT NULL,
    kept BIGINT NOT NULL,
    held_back BIGINT NOT NULL,
    error TEXT NOT NULL,
    KEY rule_runs_rule (rule_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
