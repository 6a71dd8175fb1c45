"""A Flask app served by werkzeug in a thread, called with requests."""
import threading
import time

import requests
from flask import Flask, jsonify
from werkzeug.serving import make_server

app = Flask(__name__)


@app.get("/stock/<item>")
def stock(item):
    rows = dict(line.split(",") for line in open("inventory.csv").read().splitlines()[1:])
    return jsonify(item=item, qty=rows.get(item), at=time.time())


server = make_server("127.0.0.1", 0, app)
thread = threading.Thread(target=server.serve_forever)
thread.start()
with requests.Session() as session:
    for item in ["apple", "pear"]:
        answer = session.get(f"http://127.0.0.1:{server.server_port}/stock/{item}", timeout=5)
        data = answer.json()
        print(answer.status_code, data["item"], data["qty"], data["at"])
server.shutdown()
thread.join()
