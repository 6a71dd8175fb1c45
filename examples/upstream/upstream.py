"""A stand-in upstream on 127.0.0.1:8090: JSON most of the time, text when started with --bad-day."""
import http.server
import json
import random
import sys

BAD_DAY = "--bad-day" in sys.argv


class Upstream(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if BAD_DAY:
            body, kind = b"Service Unavailable", "text/plain"
        else:
            body, kind = json.dumps({"celsius": random.randint(-20, 30)}).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", 8090), Upstream).serve_forever()
