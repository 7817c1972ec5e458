-- Purchases (orders, with one row per item for category queries) and interactions (沟通记录) (MySQL / MariaDB).
-- Amounts are integer cents of the order's currency; times are UTC.

CREATE TABLE purchases (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    customer_id VARCHAR(36) NOT NULL,
    channel VARCHAR(64) NOT NULL,
    order_id VARCHAR(200) NOT NULL,
    ordered_at DATETIME(6) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    total_cents BIGINT NOT NULL,
    status VARCHAR(200) NOT NULL,
    source_ref VARCHAR(200) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    UNIQUE KEY purchases_channel_order (channel, order_id),
    KEY purchases_customer (customer_id, ordered_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE purchase_items (
    purchase_id VARCHAR(36) NOT NULL,
    position INTEGER NOT NULL,
    customer_id VARCHAR(36) NOT NULL,
    product_id VARCHAR(200) NOT NULL,
    name VARCHAR(200) NOT NULL,
    category VARCHAR(200) NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price_cents BIGINT NOT NULL,
    ordered_at DATETIME(6) NOT NULL,
    PRIMARY KEY (purchase_id, position),
    KEY purchase_items_category (category, ordered_at),
    KEY purchase_items_customer (customer_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE interactions (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    customer_id VARCHAR(36) NOT NULL,
    occurred_at DATETIME(6) NOT NULL,
    channel VARCHAR(16) NOT NULL,
    direction VARCHAR(16) NOT NULL,
    staff VARCHAR(100) NOT NULL,
    summary TEXT NOT NULL,
    outcome TEXT NOT NULL,
    next_follow_up DATE NULL,
    content_key VARCHAR(36) NOT NULL,
    source_ref VARCHAR(200) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    UNIQUE KEY interactions_content (content_key),
    KEY interactions_customer (customer_id, occurred_at),
    KEY interactions_follow_up (next_follow_up)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
