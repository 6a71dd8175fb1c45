"""SQLAlchemy 2 ORM on PostgreSQL: map the stock table, change a row in a rolled-back transaction."""
import os
import uuid

from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Stock(Base):
    __tablename__ = os.environ["TR_TABLE"]
    item: Mapped[str] = mapped_column(primary_key=True)
    qty: Mapped[int]
    sku: Mapped[uuid.UUID]


engine = create_engine(os.environ["TR_DATABASE_URL"])
with Session(engine) as session:
    rows = session.scalars(select(Stock).order_by(Stock.item)).all()
    for row in rows:
        print(row.item, row.qty, row.sku)
    rows[0].qty += 100
    session.flush()
    print("after flush", session.get(Stock, rows[0].item).qty)
    session.rollback()
    print("after rollback", session.scalars(select(Stock.qty).where(Stock.item == rows[0].item)).one())
engine.dispose()
