"""python -m bookshop.initdb: create the database if it is missing, the tables afresh, and stock the shop."""

from decimal import Decimal

from sqlalchemy import create_engine, text
from werkzeug.security import generate_password_hash

from .db import Base, Book, Review, Session, User, engine

server = create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
with server.connect() as conn:
    if conn.scalar(text("select count(*) from pg_database where datname = :name"), {"name": engine.url.database}) == 0:
        conn.execute(text(f'create database "{engine.url.database}"'))
server.dispose()

BOOKS = [("Dune", "Frank Herbert", "9.99", 10_000), ("Emma", "Jane Austen", "5.50", 10_000),
         ("Ulysses", "James Joyce", "14.00", 10_000), ("Beloved", "Toni Morrison", "11.25", 10_000),
         ("Middlemarch", "George Eliot", "7.80", 0), ("Solaris", "Stanisław Lem", "8.40", 10_000)]
USERS = ["ada", "grace", "alan", "edsger", "barbara", "donald", "ken", "dennis"]

Base.metadata.drop_all(engine)
Base.metadata.create_all(engine)
with Session() as db:
    db.add_all([User(name=name, password_hash=generate_password_hash(name + "-secret", method="pbkdf2:sha256:1000"))
                for name in USERS])
    books = [Book(title=t, author=a, price=Decimal(p), stock=s) for t, a, p, s in BOOKS]
    db.add_all(books)
    db.flush()
    db.add_all([Review(book_id=books[i].id, stars=s, approved=True)
                for i, s in ((0, 5), (0, 4), (1, 3), (2, 2), (2, 5), (3, 5))])
    db.commit()
print(f"bookshop: {len(BOOKS)} books, {len(USERS)} users")
