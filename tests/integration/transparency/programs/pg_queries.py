"""A stock report over PostgreSQL with psycopg2."""
import os

import psycopg2

conn = psycopg2.connect(os.environ["TR_DSN"])
table = os.environ["TR_TABLE"]
with conn, conn.cursor() as cur:
    cur.execute(f"select item, qty from {table} where qty >= %s order by item", (2,))
    for item, qty in cur.fetchall():
        print(item, qty)
    cur.execute(f"select count(*), sum(qty) from {table}")
    print("count, total:", cur.fetchone())
    cur.execute("select now(), pg_backend_pid()")
    now, pid = cur.fetchone()
    print("server time", now.isoformat(), "backend", pid)
    print("description", [column.name for column in cur.description])
conn.close()
