#!/usr/bin/env python3
"""A receiver of the vm's notifications for the tests, written apart from the vm from what
the README documents: signed webhooks and ntfy-format posts.

    notify_receiver.py --port 0 --secret SECRET --log FILE [--down-file FILE] [--window 300]

Prints `READY http://127.0.0.1:PORT` once listening. Every request becomes one JSON line in
--log, with "received_ms" (this clock's Unix ms) (appended, flushed):

- `POST /webhook`: {"kind": "webhook", "delivery", "timestamp", "signature_ok", "fresh",
  "duplicate", "status", "body"}. The signature is checked as documented: HMAC-SHA256 with
  the secret over `timestamp + "." + raw body`, hex, after `sha256=`, compared in constant
  time; the timestamp must be within --window seconds of this clock. A bad signature or a
  stale timestamp is answered 401 (and logged); a delivery id seen before is answered 200
  and logged as a duplicate (receivers deduplicate by it).
- `POST /ntfy/<topic>`: {"kind": "ntfy", "topic", "title", "priority", "tags", "click",
  "authorization", "message"}, answered 200 as ntfy does.

While --down-file exists, every request is answered 503 and logged with "status": 503.
Standard library only.
"""
import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
SEEN = set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--down-file")
    ap.add_argument("--window", type=int, default=300)
    a = ap.parse_args()

    def record(entry):
        entry["received_ms"] = int(time.time() * 1000)
        with LOCK:
            with open(a.log, "a") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status, text="ok"):
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if a.down_file and os.path.exists(a.down_file):
                record({"kind": "down", "path": self.path, "status": 503})
                return self.answer(503, "down")
            if self.path == "/webhook":
                ts = self.headers.get("X-Guardian-Timestamp", "")
                delivery = self.headers.get("X-Guardian-Delivery", "")
                sig = self.headers.get("X-Guardian-Signature", "")
                want = "sha256=" + hmac.new(a.secret.encode(), ts.encode() + b"." + raw,
                                            hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(want, sig)
                fresh = ts.isdigit() and abs(time.time() - int(ts)) <= a.window
                with LOCK:
                    duplicate = delivery in SEEN
                    if ok and fresh:
                        SEEN.add(delivery)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                status = 200 if ok and fresh else 401
                record({"kind": "webhook", "delivery": delivery, "timestamp": ts, "signature_ok": ok,
                        "fresh": fresh, "duplicate": duplicate, "status": status, "body": body})
                return self.answer(status)
            if self.path.startswith("/ntfy/"):
                record({"kind": "ntfy", "topic": self.path[len("/ntfy/"):],
                        "title": self.headers.get("Title"), "priority": self.headers.get("Priority"),
                        "tags": self.headers.get("Tags"), "click": self.headers.get("Click"),
                        "authorization": self.headers.get("Authorization"),
                        "message": raw.decode("utf-8", "replace")})
                return self.answer(200, json.dumps({"id": "x", "event": "message"}))
            return self.answer(404, "no such path")

    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"READY http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
