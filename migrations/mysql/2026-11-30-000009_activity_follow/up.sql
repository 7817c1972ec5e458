-- Orders and interactions in the order they were recorded, for the segment index's follower
-- (a customer's metrics change when either is added, by whichever server adds it) (MySQL / MariaDB).

CREATE INDEX purchases_created ON purchases (created_at, id);
CREATE INDEX interactions_created ON interactions (created_at, id);
