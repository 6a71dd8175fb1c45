"""python -m bookshop.dropdb: drop the bookshop's database (its replays do not need it)."""

from sqlalchemy import create_engine, text

from .db import engine

server = create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
with server.connect() as conn:
    conn.execute(text(f'drop database if exists "{engine.url.database}" with (force)'))
server.dispose()
