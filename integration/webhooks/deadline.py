"""A wall-clock deadline for one delivery attempt: connect, headers and body together.

A read time-out bounds each wait for bytes, so a receiver that sends one byte a second
holds an attempt for as long as it likes. Here every connection a delivery uses is
watched while the attempt runs; at the deadline one watchdog thread shuts its socket, the
blocked read fails at once, and the attempt is logged as a failure like any other.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from contextlib import contextmanager

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_attempt = threading.local()  # the deadline of the attempt this thread is making


class _Watchdog:
    """Shuts the sockets of attempts past their deadline."""

    def __init__(self):
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, object]] = []
        self._done: set[int] = set()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, connection) -> int:
        """Watch `connection` until `deadline` (monotonic); the number to `release` it with."""
        number = next(self._order)
        with self._lock:
            heapq.heappush(self._heap, (deadline, number, connection))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="delivery-deadlines", daemon=True)
                self._thread.start()
            self._lock.notify()
        return number

    def release(self, numbers: list[int]) -> None:
        """The attempt ended in time: stop watching its connections."""
        with self._lock:
            self._done.update(numbers)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._lock.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                _, number, connection = heapq.heappop(self._heap)
                if number in self._done:
                    self._done.discard(number)
                    continue
            sock = getattr(connection, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


_watchdog = _Watchdog()


@contextmanager
def deadline(seconds: float):
    """Within this block, this thread's HTTP connections are cut after `seconds` of wall-clock time."""
    _attempt.deadline = time.monotonic() + seconds
    _attempt.watched = []
    try:
        yield
    finally:
        _watchdog.release(_attempt.watched)
        _attempt.deadline = None


def _watch(connection) -> None:
    limit = getattr(_attempt, "deadline", None)
    if limit is not None:
        _attempt.watched.append(_watchdog.watch(limit, connection))


class _Watched:
    """A urllib3 connection that puts itself under the attempt's deadline when it connects or is reused."""

    def connect(self):
        _watch(self)  # connecting counts too (a slow handshake)
        super().connect()

    def request(self, *args, **kwargs):
        if self.sock is not None:  # a kept-alive connection: connect() is not called again
            _watch(self)
        return super().request(*args, **kwargs)


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


def watch_pools(pool_manager) -> None:
    """Make a requests adapter's pool manager use watched connections."""
    pool_manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
