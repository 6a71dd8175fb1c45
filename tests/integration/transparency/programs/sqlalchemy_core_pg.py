"""SQLAlchemy 2 Core on PostgreSQL through psycopg2: reflect the stock table and query it."""
import os

from sqlalchemy import MetaData, Table, create_engine, func, select, text

engine = create_engine(os.environ["TR_DATABASE_URL"])
stock = Table(os.environ["TR_TABLE"], MetaData(), autoload_with=engine)
print("columns", [column.name for column in stock.columns])
with engine.connect() as conn:
    for row in conn.execute(select(stock).order_by(stock.c.item)):
        print(row.item, row.qty, row.sku)
    print("total", conn.execute(select(func.sum(stock.c.qty))).scalar_one())
    print("now", conn.execute(text("select clock_timestamp()")).scalar_one().isoformat())
engine.dispose()
