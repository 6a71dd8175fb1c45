"""The web app. ``BOOKSHOP_PROFILE`` picks how requests are recorded: ``production`` keeps the recordings of
requests that failed (an exception, a 5xx), ``staging`` keeps every one, ``off`` records nothing. Recordings go
to ``BOOKSHOP_RECORDINGS`` (default ``recordings/``), sealed for ``RETRACE_PUBLIC_KEY`` when it is set."""

from __future__ import annotations

import datetime as dt
import functools
import os

from flask import Flask, abort, flash, g, jsonify, redirect, render_template, request, session, url_for
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

import pytest_retrace.wsgi

from .db import Book, Order, Review, Session, User

app = Flask(__name__)
app.secret_key = os.environ.get("BOOKSHOP_SECRET_KEY", "change me in production")

KEEP = {"production": "errors", "staging": "all"}
profile = os.environ.get("BOOKSHOP_PROFILE", "production")
if profile in KEEP:
    pytest_retrace.wsgi.record_flask(app, os.environ.get("BOOKSHOP_RECORDINGS", "recordings"), keep=KEEP[profile],
                                     max_files=10_000)


@app.before_request
def open_session() -> None:
    g.db = Session()
    user_id = session.get("user_id")
    g.user = g.db.get(User, user_id) if user_id is not None else None


@app.teardown_request
def close_session(exc: BaseException | None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.user is None:
            if request.path.startswith("/api/"):
                return jsonify(error="log in first"), 403
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def average_stars(book: Book) -> float:
    return round(sum(r.stars for r in book.reviews) / len(book.reviews), 1)


@app.route("/")
def index():
    books = g.db.scalars(select(Book).order_by(Book.title)).all()
    return render_template("index.html", books=books)


@app.route("/books/<int:book_id>")
def book(book_id: int):
    found = g.db.get(Book, book_id)
    if found is None:
        abort(404)
    return render_template("book.html", book=found, stars=average_stars(found))


@app.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        user = g.db.scalars(select(User).where(User.name == request.form.get("name", ""))).first()
        if user is None or not check_password_hash(user.password_hash, request.form.get("password", "")):
            flash("wrong name or password")
            return render_template("login.html"), 401
        session["user_id"] = user.id
        return redirect(url_for("orders"))
    return render_template("login.html")


@app.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("index"))


@app.route("/orders", methods=["GET", "POST"])
@login_required
def orders():
    if request.method == "POST":
        book = g.db.get(Book, int(request.form["book_id"]))
        quantity = int(request.form.get("quantity", "1"))
        if book is None or quantity < 1 or quantity > book.stock:
            flash("that order cannot be placed")
            return redirect(url_for("orders")), 303
        book.stock -= quantity
        g.db.add(Order(user_id=g.user.id, book_id=book.id, quantity=quantity, total=book.price * quantity,
                       placed_at=dt.datetime.now()))
        g.db.commit()
        flash(f"ordered {quantity} × {book.title}")
        return redirect(url_for("orders"), 303)
    mine = g.db.scalars(select(Order).where(Order.user_id == g.user.id).order_by(Order.id.desc()).limit(20)).all()
    books = g.db.scalars(select(Book).where(Book.stock > 0).order_by(Book.title)).all()
    return render_template("orders.html", orders=mine, books=books)


@app.route("/api/books")
def api_books():
    books = g.db.scalars(select(Book).order_by(Book.id)).all()
    return jsonify([{"id": b.id, "title": b.title, "author": b.author, "price": str(b.price), "in_stock": b.stock > 0}
                    for b in books])


@app.route("/api/books/<int:book_id>/reviews", methods=["POST"])
@login_required
def api_review(book_id: int):
    stars = request.get_json(force=True).get("stars")
    if not isinstance(stars, int) or not 1 <= stars <= 5:
        return jsonify(error="stars must be 1 to 5"), 400
    if g.db.get(Book, book_id) is None:
        return jsonify(error="no such book"), 404
    g.db.add(Review(book_id=book_id, stars=stars))
    g.db.commit()
    return jsonify(ok=True), 201


@app.route("/api/stats")
@login_required
def api_stats():
    count, spent = g.db.execute(select(func.count(Order.id), func.coalesce(func.sum(Order.total), 0))
                                .where(Order.user_id == g.user.id)).one()
    return jsonify(user=g.user.name, orders=count, spent=str(spent))
