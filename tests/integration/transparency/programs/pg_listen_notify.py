"""Wait for NOTIFY messages with select and poll."""
import os
import select

import psycopg2

dsn, table = os.environ["TR_DSN"], os.environ["TR_TABLE"]
listener = psycopg2.connect(dsn)
listener.autocommit = True
listener.cursor().execute(f"listen {table}_changes")
sender = psycopg2.connect(dsn)
sender.autocommit = True
with sender.cursor() as cur:
    cur.execute(f"select item, qty from {table} order by item")
    rows = cur.fetchall()
    for item, qty in rows:
        cur.execute("select pg_notify(%s, %s)", (f"{table}_changes", f"{item}={qty}"))
received = []
while len(received) < len(rows):
    if select.select([listener], [], [], 5) == ([], [], []):
        print("timeout")
        break
    listener.poll()
    while listener.notifies:
        note = listener.notifies.pop(0)
        received.append(note.payload)
        print("notify", note.channel.removeprefix(table), note.payload, note.pid > 0)
listener.close()
sender.close()
