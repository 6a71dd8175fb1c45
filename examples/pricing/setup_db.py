"""Creates the shop's tables (again) in $SHOP_DSN: two products, and a promo someone forgot to switch off."""
import os

import psycopg2

with psycopg2.connect(os.environ.get("SHOP_DSN", "host=127.0.0.1 user=postgres dbname=test")) as conn:
    with conn.cursor() as cur:
        cur.execute("""
            drop table if exists shop_orders, shop_products, shop_promos;
            create table shop_products (sku text primary key, price numeric(10, 2) not null);
            create table shop_promos (code text primary key, percent_off numeric(5, 2) not null, active boolean);
            create table shop_orders (id serial primary key, sku text, qty int, total numeric(10, 2));
            insert into shop_products values ('apple', 1.20), ('pear', 2.50);
            insert into shop_promos values ('LAUNCH100', 100, true);
        """)
print("shop tables ready")
