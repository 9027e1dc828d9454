"""A fast webhook receiver for benchmarks: answers 204 and logs each arrival.

    python bench/receiver.py PORT LOGFILE

Each line of LOGFILE: arrival time (epoch seconds), webhook-id, event type, job id.
`GET /count` answers how many deliveries have arrived.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

count = 0
lock = threading.Lock()


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    log = open(path, "a", buffering=1)  # appended: a drill restarts the receiver

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            global count
            arrived = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            try:
                event = json.loads(body)
                job_id = event.get("data", {}).get("id", "")
                kind = event.get("type", "")
            except ValueError:
                job_id = kind = ""
            with lock:
                count += 1
                log.write(f"{arrived:.6f} {self.headers.get('webhook-id')} {kind} {job_id}\n")

        def do_GET(self):
            body = str(count).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 1024
    server.serve_forever()


if __name__ == "__main__":
    main()
