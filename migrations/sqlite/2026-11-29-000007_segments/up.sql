-- Segments (saved conditions, and static snapshots of their members), their sizes over time,
-- and the indexes the segment index follows other servers' writes by (SQLite).

CREATE TABLE segments (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    name_key VARCHAR(200) NOT NULL,
    description TEXT NOT NULL,
    kind VARCHAR(16) NOT NULL,
    condition_text TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE UNIQUE INDEX segments_name_key ON segments (name_key);

-- The frozen members of a static segment.
CREATE TABLE segment_members (
    segment_id VARCHAR(36) NOT NULL,
    customer_id VARCHAR(36) NOT NULL,
    PRIMARY KEY (segment_id, customer_id)
);

-- A segment's member count at a moment (written by every snapshot).
CREATE TABLE segment_sizes (
    segment_id VARCHAR(36) NOT NULL,
    measured_at TIMESTAMP NOT NULL,
    member_count BIGINT NOT NULL,
    PRIMARY KEY (segment_id, measured_at)
);

-- The segment index of every server reads recent changes by time.
CREATE INDEX tag_history_created ON tag_history (created_at);
CREATE INDEX customers_updated ON customers (updated_at);
