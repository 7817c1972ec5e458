DROP INDEX customers_updated;
DROP INDEX tag_history_created;
DROP TABLE segment_sizes;
DROP TABLE segment_members;
DROP INDEX segments_name_key;
DROP TABLE segments;
