DROP TABLE interactions;
DROP TABLE purchase_items;
DROP TABLE purchases;
