-- Long-running jobs (imports, later cleansing and dedupe) and the rows an import rejected (MySQL / MariaDB).
-- A job's parameters and progress counters are JSON text: they differ by kind and are read whole.

CREATE TABLE jobs (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    kind VARCHAR(16) NOT NULL,
    state VARCHAR(16) NOT NULL,
    created_by VARCHAR(100) NOT NULL,
    subject VARCHAR(1000) NOT NULL,
    dry_run BOOLEAN NOT NULL,
    params TEXT NOT NULL,
    progress TEXT NOT NULL,
    error TEXT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    finished_at DATETIME(6) NULL,
    KEY jobs_state (state)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE job_rejected_rows (
    job_id VARCHAR(36) NOT NULL,
    seq BIGINT NOT NULL,
    source_row BIGINT NOT NULL,
    field VARCHAR(200) NOT NULL,
    reason VARCHAR(1000) NOT NULL,
    raw_value VARCHAR(1000) NOT NULL,
    PRIMARY KEY (job_id, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
