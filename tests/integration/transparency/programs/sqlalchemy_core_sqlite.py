"""SQLAlchemy 2 Core on an sqlite file: define, load, aggregate."""
import csv
import datetime

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, func, insert, select

engine = create_engine("sqlite:///core.sqlite")
metadata = MetaData()
stock = Table("stock", metadata, Column("item", String, primary_key=True), Column("qty", Integer),
              Column("loaded", DateTime))
metadata.drop_all(engine)
metadata.create_all(engine)
with open("inventory.csv", newline="") as f:
    rows = [{"item": r["item"], "qty": int(r["qty"]), "loaded": datetime.datetime.now()} for r in csv.DictReader(f)]
with engine.begin() as conn:
    conn.execute(insert(stock), rows)
with engine.connect() as conn:
    for item, qty in conn.execute(select(stock.c.item, stock.c.qty).order_by(stock.c.item)):
        print(item, qty)
    print("total", conn.execute(select(func.sum(stock.c.qty))).scalar_one())
    print("loaded at", conn.execute(select(func.max(stock.c.loaded))).scalar_one().isoformat())
engine.dispose()
