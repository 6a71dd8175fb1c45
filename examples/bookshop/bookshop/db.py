"""The database: an SQLAlchemy engine (its pool keeps connections from one request to the next) and the ORM
models."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

DATABASE_URL = os.environ.get("BOOKSHOP_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/bookshop")
engine = create_engine(DATABASE_URL, pool_size=4, max_overflow=4, pool_pre_ping=True)
Session = sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(100))
    price: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    stock: Mapped[int]
    reviews: Mapped[list[Review]] = relationship(back_populates="book", order_by="Review.id",
                                                 primaryjoin="and_(Book.id == Review.book_id, Review.approved)",
                                                 viewonly=True)


class Review(Base):
    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"))
    stars: Mapped[int]
    approved: Mapped[bool] = mapped_column(default=False)  # new reviews wait for a moderator
    book: Mapped[Book] = relationship(back_populates="reviews")


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"))
    quantity: Mapped[int]
    total: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    placed_at: Mapped[dt.datetime]
    book: Mapped[Book] = relationship()
