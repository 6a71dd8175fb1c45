"""The benchmarked program: a Flask app answering N requests through its test client, each
request reading the clock, drawing a uuid4 and a random number."""

import random
import sys
import time
import uuid

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/order/<int:n>")
def order(n: int):
    return jsonify(id=str(uuid.uuid4()), at=time.time(), price=round(random.random() * n, 2))


client = app.test_client()
total = 0
start = time.perf_counter()
for i in range(int(sys.argv[1])):
    total += len(client.get(f"/order/{i}").data)
print(f"loop {time.perf_counter() - start:.6f}", file=sys.stderr)  # recorded too: real while recording
print("bytes served", total)
