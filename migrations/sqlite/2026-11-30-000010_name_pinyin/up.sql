-- Each customer's name as a pinyin key (syllables sorted: 张伟, "Zhang Wei" and "wei zhang" share
-- one), so that FindDuplicates and import linking find a customer written in pinyin without a
-- phone or email in common (SQLite). NULL until the application computes it: `tagd` fills
-- existing rows at start-up, since SQL cannot read Han characters as pinyin.

ALTER TABLE customers ADD COLUMN name_pinyin VARCHAR(600) NULL;
CREATE INDEX customers_name_pinyin ON customers (name_pinyin);
