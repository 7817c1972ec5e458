-- Purchases (orders, with one row per item for category queries) and interactions (沟通记录) (SQLite).
-- Amounts are integer cents of the order's currency; times are UTC.

CREATE TABLE purchases (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    customer_id VARCHAR(36) NOT NULL,
    channel VARCHAR(64) NOT NULL,
    order_id VARCHAR(200) NOT NULL,
    ordered_at TIMESTAMP NOT NULL,
    currency VARCHAR(3) NOT NULL,
    total_cents BIGINT NOT NULL,
    status VARCHAR(200) NOT NULL,
    source_ref VARCHAR(200) NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX purchases_channel_order ON purchases (channel, order_id);
CREATE INDEX purchases_customer ON purchases (customer_id, ordered_at);

CREATE TABLE purchase_items (
    purchase_id VARCHAR(36) NOT NULL,
    position INTEGER NOT NULL,
    customer_id VARCHAR(36) NOT NULL,
    product_id VARCHAR(200) NOT NULL,
    name VARCHAR(200) NOT NULL,
    category VARCHAR(200) NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price_cents BIGINT NOT NULL,
    ordered_at TIMESTAMP NOT NULL,
    PRIMARY KEY (purchase_id, position)
);
CREATE INDEX purchase_items_category ON purchase_items (category, ordered_at);
CREATE INDEX purchase_items_customer ON purchase_items (customer_id);

CREATE TABLE interactions (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    customer_id VARCHAR(36) NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    channel VARCHAR(16) NOT NULL,
    direction VARCHAR(16) NOT NULL,
    staff VARCHAR(100) NOT NULL,
    summary TEXT NOT NULL,
    outcome TEXT NOT NULL,
    next_follow_up DATE NULL,
    content_key VARCHAR(36) NOT NULL,
    source_ref VARCHAR(200) NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX interactions_content ON interactions (content_key);
CREATE INDEX interactions_customer ON interactions (customer_id, occurred_at);
CREATE INDEX interactions_follow_up ON interactions (next_follow_up);
