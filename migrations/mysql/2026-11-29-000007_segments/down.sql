DROP INDEX customers_updated ON customers;
DROP INDEX tag_history_created ON tag_history;
DROP TABLE segment_sizes;
DROP TABLE segment_members;
DROP TABLE segments;
