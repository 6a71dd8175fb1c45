"""A pricing service: Flask in front of PostgreSQL. Every request is recorded into ./recordings.

    python setup_db.py            # creates the tables in $SHOP_DSN (default: the local test database)
    python shop.py 8080           # serves on 127.0.0.1:8080 with werkzeug's WSGI server
"""
import os
import sys
from decimal import Decimal

import psycopg2
from flask import Flask, jsonify, request

import pytest_retrace.wsgi

DSN = os.environ.get("SHOP_DSN", "host=127.0.0.1 user=postgres dbname=test")
app = Flask(__name__)
pytest_retrace.wsgi.record_flask(app, "recordings", keep="all")


def db():
    return psycopg2.connect(DSN)


@app.post("/orders")
def place_order():
    order = request.get_json()
    with db() as conn, conn.cursor() as cur:
        cur.execute("select price from shop_products where sku = %s", (order["sku"],))
        (price,) = cur.fetchone()  # an unknown sku: TypeError, and a 500
        total = price * order["qty"]
        cur.execute("select percent_off from shop_promos where active", ())
        for (percent_off,) in cur.fetchall():  # BUG: every active promo applies, asked for or not
            total -= total * percent_off / 100
        total = total.quantize(Decimal("0.01"))
        cur.execute("insert into shop_orders (sku, qty, total) values (%s, %s, %s) returning id",
                    (order["sku"], order["qty"], total))
        (order_id,) = cur.fetchone()
    return jsonify(id=order_id, sku=order["sku"], qty=order["qty"], total=str(total)), 201


if __name__ == "__main__":
    from werkzeug.serving import make_server

    make_server("127.0.0.1", int(sys.argv[1] if len(sys.argv) > 1 else 8080), app).serve_forever()
