DROP INDEX customers_name_pinyin;
ALTER TABLE customers DROP COLUMN name_pinyin;
