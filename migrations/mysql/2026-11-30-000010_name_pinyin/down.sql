DROP INDEX customers_name_pinyin ON customers;
ALTER TABLE customers DROP COLUMN name_pinyin;
