-- What each import did to each customer, so that RevertImport can undo it (MySQL / MariaDB).
-- `before` holds the customer's fields before the import's first change (JSON); "" for a customer it created.

CREATE TABLE import_changes (
    job_id VARCHAR(36) NOT NULL,
    customer_id VARCHAR(36) NOT NULL,
    action VARCHAR(16) NOT NULL,
    before_fields MEDIUMTEXT NOT NULL,
    PRIMARY KEY (job_id, customer_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE INDEX tag_history_source_ref ON tag_history (source_ref);
CREATE INDEX purchases_source_ref ON purchases (source_ref);
CREATE INDEX interactions_source_ref ON interactions (source_ref);
