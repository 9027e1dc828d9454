"""gunicorn's configuration for podrelay's web process (gunicorn reads `./gunicorn.conf.py` itself).

It imports nothing of podrelay at load time: gunicorn's master reads it before the gevent
workers patch the standard library, and the app is imported by the workers.

gunicorn answers some requests itself, before the app sees them (a request line past 4 KB:
414, headers past their limits: 431, a malformed request: 400), in an HTML page. Here those
answers are podrelay's error envelope too, so every client reads one shape.

It also takes out of every request what gunicorn repeats needlessly (a second send per
answer, the `Date` formatted anew, settings looked up through `__getattr__`), and makes a
worker's connections take turns. `python bench/pipeline.py` measures the accept route.
"""

from __future__ import annotations

import gc
import json
import os
import signal

from gunicorn import glogging, util

_CODES = {400: "bad_request", 403: "forbidden", 414: "request_uri_too_large", 417: "expectation_failed", 431: "headers_too_large"}


def _write_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's `util.write_error`, answering in the error envelope."""
    kind = "api_error" if status_int >= 500 else "invalid_request_error"
    error = {"message": f"{reason}: {mesg}" if mesg else reason, "type": kind, "code": _CODES.get(status_int, "http_error")}
    body = json.dumps({"error": {**error, "param": None, "request_id": None}}).encode()
    head = f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = _write_error  # the workers fork from the master, which reads this file


class Logger(glogging.Logger):
    """gunicorn's logger without its access log: podrelay logs each request itself, and gunicorn
    builds every access line's fields before its logger drops them (a few percent of the accept route)."""

    def access(self, resp, req, environ, request_time) -> None:
        return None


logger_class = Logger


class _Held:
    """Stands in for a connection's socket while gunicorn writes a response's head and first body
    bytes, so that both go out in one send."""

    __slots__ = ("parts",)

    def __init__(self):
        self.parts: list[bytes] = []

    def sendall(self, data) -> None:
        self.parts.append(bytes(data))


def _one_send_for_head_and_body() -> None:
    """gunicorn sends a response's head and its body in two sends (two system calls each under
    gevent, which asks the socket's buffer size before every send); a response whose body comes
    in one piece (every JSON answer) goes out in one. Whatever gunicorn writes in that first
    `write` is held and sent at once, in the same order, even when the write fails partway."""
    from gunicorn.http import wsgi

    write = wsgi.Response.write

    def write_with_the_head(self, data):
        if self.headers_sent or self.chunked:
            return write(self, data)
        sock, held = self.sock, _Held()
        self.sock = held
        try:
            return write(self, data)
        finally:
            self.sock = sock
            if held.parts:
                sock.sendall(b"".join(held.parts))

    wsgi.Response.write = write_with_the_head


_one_send_for_head_and_body()  # the workers fork from the master, which reads this file


def _date_formatted_once_a_second() -> None:
    """gunicorn formats every answer's `Date` anew (`email.utils.formatdate`, 5 µs here); it
    changes once a second, so it is formatted once a second."""
    import time

    formatted = util.http_date
    kept = [(0, "")]  # (the second, its date), replaced whole

    def http_date(timestamp=None):
        if timestamp is not None:
            return formatted(timestamp)
        second = int(time.time())
        at, date = kept[0]
        if at != second:
            date = formatted(second)
            kept[0] = (second, date)
        return date

    util.http_date = http_date


_date_formatted_once_a_second()


def _take_turns(worker) -> None:
    """Between two requests of one connection, the worker polls every socket once.

    Why: a greenlet yields only when it would block, and gevent polls only when no greenlet is
    runnable (or after 50 callbacks). A client that sends its next request before the answer to
    the last (pipelining, or just a fast client on a route that touches no socket: a 404, a 401,
    `/healthz`) was never made to wait: 3,000 pipelined `GET /healthz` held every other
    connection of that worker 0.66 s; with turns, the longest wait of another connection's
    request meanwhile was 3.1 ms. Each connection with a request waiting is served once before
    any is served again; the accept route's rate was the same with and without."""
    import gevent

    hub = gevent.get_hub()  # the worker's one thread: its hub, looked up once, not per request
    handle_request = worker.handle_request

    def handle_in_turn(listener_name, req, sock, addr):
        answered = handle_request(listener_name, req, sock, addr)
        turn = hub.loop.timer(0)  # fires after the loop's next poll, as gevent.sleep's timer does
        try:
            hub.wait(turn)
        finally:
            turn.close()
        return answered

    worker.handle_request = handle_in_turn


def _settings_read_once(cfg) -> None:
    """gunicorn reads each of its settings through `Config.__getattr__` at every use, dozens of
    times a request (a trivial route's web CPU per answer: 352 µs before, 309 after, `python
    bench/pipeline.py`). A worker's settings never change (a reload starts new workers):
    each is kept on the worker's config object itself, where a read finds it at once."""
    for name, setting in cfg.settings.items():
        if not hasattr(type(cfg), name):  # a setting that `Config` reads through a property stays so
            object.__setattr__(cfg, name, setting.get())  # past `Config.__setattr__`'s guard against changes


def post_worker_init(worker) -> None:
    """On SIGTERM (a deploy, a restart), every held request answers at once, 202 with its job,
    well before the graceful time-out would cut it off with no answer."""
    original = worker.handle_exit

    def handle_exit(sig, frame):
        import gevent

        import app as podrelay
        from integration import resources

        gevent.spawn(resources.of(podrelay.app).waiter.stop)  # out of the signal handler: it takes a lock
        original(sig, frame)

    signal.signal(signal.SIGTERM, handle_exit)
    _take_turns(worker)
    _settings_read_once(worker.cfg)
    # Everything the worker built to serve (the app, its modules and schemas) is long-lived:
    # out of the collector's reach, a full collection scans what requests made, about 1 ms,
    # instead of 25-40 ms with every request of the worker held meanwhile (gc.callbacks timing
    # under `python bench/tail.py`).
    gc.freeze()


def _json_logs() -> bool:
    wanted = os.environ.get("LOG_FORMAT", "")
    return wanted == "json" or (not wanted and os.environ.get("PODRELAY_ENV", "production") != "development")


if _json_logs():  # gunicorn's own lines (boot, workers, refusals) as JSON too, like podrelay's
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "integration.logs.JsonFormatter"}},
        "handlers": {"json_stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": []},  # podrelay's own lines: its handler (integration/logs.py)
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["json_stderr"], "propagate": False},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},  # podrelay logs each request
        },
    }
