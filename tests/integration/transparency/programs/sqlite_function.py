"""Rank the notes in sqlite with Python functions registered on the connection."""
import os
import sqlite3
import time

db = sqlite3.connect(":memory:")
db.create_function("words", 1, lambda text: len(text.split()))
db.create_aggregate("longest", 1, type("Longest", (), {
    "__init__": lambda self: setattr(self, "best", ""),
    "step": lambda self, value: setattr(self, "best", max(self.best, value, key=len)),
    "finalize": lambda self: self.best,
}))
db.execute("create table notes (name text, body text, seen real)")
for name in sorted(os.listdir("notes")):
    db.execute("insert into notes values (?, ?, ?)", (name, open(f"notes/{name}").read(), time.time()))
for name, count in db.execute("select name, words(body) from notes order by name"):
    print(name, count)
print("longest:", db.execute("select longest(body) from notes").fetchone()[0].strip())
print("seen at", db.execute("select max(seen) from notes").fetchone()[0])
