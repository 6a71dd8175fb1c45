"""SQLAlchemy 2 ORM on sqlite: mapped classes, a session, a relationship."""
import json
import uuid

from sqlalchemy import ForeignKey, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Shop(Base):
    __tablename__ = "shops"
    id: Mapped[int] = mapped_column(primary_key=True)
    greeting: Mapped[str]
    items: Mapped[list["Item"]] = relationship(back_populates="shop", order_by="Item.name")


class Item(Base):
    __tablename__ = "items"
    id: Mapped[str] = mapped_column(primary_key=True, default=lambda: uuid.uuid4().hex)
    name: Mapped[str]
    qty: Mapped[int]
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    shop: Mapped[Shop] = relationship(back_populates="items")


engine = create_engine("sqlite:///orm.sqlite")
Base.metadata.drop_all(engine)
Base.metadata.create_all(engine)
config = json.load(open("config.json"))
with Session(engine) as session:
    shop = Shop(greeting=config["greeting"])
    for line in open("inventory.csv").read().splitlines()[1:]:
        name, qty = line.split(",")
        shop.items.append(Item(name=name, qty=int(qty)))
    session.add(shop)
    session.commit()
    for item in session.scalars(select(Item).where(Item.qty >= config["threshold"]).order_by(Item.name)):
        print(item.name, item.qty, item.shop.greeting, len(item.id))
    print("first id", session.scalars(select(Item.id).order_by(Item.name)).first())
engine.dispose()
