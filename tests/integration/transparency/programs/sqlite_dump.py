"""Dump an sqlite database built from the notes, with iterdump."""
import os
import sqlite3
import uuid

db = sqlite3.connect(":memory:")
db.execute("create table notes (name text, body text, tag text)")
for name in sorted(os.listdir("notes")):
    db.execute("insert into notes values (?, ?, ?)", (name, open(f"notes/{name}").read(), uuid.uuid4().hex[:8]))
db.commit()
for line in db.iterdump():
    print(line)
db.close()
