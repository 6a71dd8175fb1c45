"""An http.server in a thread serving the inventory, queried with urllib."""
import http.server
import json
import threading
import time
import urllib.request


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        rows = open("inventory.csv").read().splitlines()[1:]
        body = json.dumps({"rows": rows, "served_at": time.time()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
thread = threading.Thread(target=server.serve_forever)
thread.start()
with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/inventory") as response:
    payload = json.load(response)
    print(response.status, response.headers["Content-Type"])
print("rows", payload["rows"])
print("served at", payload["served_at"])
server.shutdown()
server.server_close()
thread.join()
