"""Load the inventory into an sqlite file and query it with sqlite3.Row."""
import csv
import os
import sqlite3
import time

if os.path.exists("stock.sqlite"):
    os.remove("stock.sqlite")
db = sqlite3.connect("stock.sqlite")
db.row_factory = sqlite3.Row
db.execute("create table stock (item text primary key, qty int, loaded real)")
with open("inventory.csv", newline="") as f:
    db.executemany("insert into stock values (?, ?, ?)",
                   [(row["item"], int(row["qty"]), time.time()) for row in csv.DictReader(f)])
db.commit()
for row in db.execute("select item, qty, qty * 2 as twice from stock order by item"):
    print(row["item"], row["qty"], row["twice"], row.keys())
print("loaded recently:", db.execute("select min(loaded) from stock").fetchone()[0] > 0)
db.close()
