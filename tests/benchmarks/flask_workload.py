"""The benchmarked program: a Flask app answering N requests through its test client, each
request reading the clock, drawing a uuid4 and a random number.

Run as a script (``python flask_workload.py N``) it is the program the whole-process
benchmarks record; ``bench_instructions.py`` imports it.
"""

import random
import sys
import time
import uuid

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/order/<int:n>")
def order(n: int):
    return jsonify(id=str(uuid.uuid4()), at=time.time(), price=round(random.random() * n, 2))


def serve(requests: int) -> int:
    client = app.test_client()
    return sum(len(client.get(f"/order/{i}").data) for i in range(requests))


if __name__ == "__main__":
    start = time.perf_counter()
    total = serve(int(sys.argv[1]))
    print(f"loop {time.perf_counter() - start:.6f}", file=sys.stderr)  # recorded too: real while recording
    print("bytes served", total)
