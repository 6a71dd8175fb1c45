"""psycopg2 extras: UUIDs, dict rows and execute_values into a scratch table."""
import os
import uuid

import psycopg2
import psycopg2.extras

psycopg2.extras.register_uuid()
table = os.environ["TR_TABLE"]
conn = psycopg2.connect(os.environ["TR_DSN"])
with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
    cur.execute(f"select item, qty, sku from {table} order by item")
    rows = cur.fetchall()
    for row in rows:
        print(dict(row), type(row["sku"]).__name__)
    cur.execute(f"create temp table {table}_orders (id uuid primary key, item text, qty int)")
    psycopg2.extras.execute_values(cur, f"insert into {table}_orders values %s",
                                   [(uuid.uuid4(), row["item"], row["qty"] * 2) for row in rows])
    cur.execute(f"select item, qty, id from {table}_orders order by item")
    for row in cur:
        print("order", row["item"], row["qty"], row["id"])
conn.close()
