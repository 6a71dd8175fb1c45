"""The service the WSGI benchmark loads: a Flask app that reads the clock, draws a ticket and renders JSON.

    BENCH_KEEP=none|all|errors|SHARE BENCH_RECORDINGS=DIRECTORY python wsgi_app.py PORT

Configured through the environment, which a replay restores (its argv is the test runner's).
"""
import os
import random
import sys
import time

from flask import Flask, jsonify, request

import pytest_retrace.wsgi

app = Flask(__name__)
KEEP = os.environ.get("BENCH_KEEP", "none")
if KEEP != "none":  # a share ("0.0": the boundaries installed, nothing recorded) or a policy
    pytest_retrace.wsgi.record_flask(app, os.environ["BENCH_RECORDINGS"],
                                     keep=float(KEEP) if KEEP[0].isdigit() else KEEP)


@app.get("/price")
def price():
    item = request.args.get("item", "apple")
    return jsonify(item=item, total=round(random.random() * 100, 2), at=time.time(),
                   lines=[{"n": n, "sku": f"{item}-{n}"} for n in range(20)])


if __name__ == "__main__":
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", int(sys.argv[1]), app)
    print("serving", flush=True)
    server.serve_forever()
