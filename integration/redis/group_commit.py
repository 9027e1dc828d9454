"""Group commit: the script calls of concurrent requests go to Redis in one pipeline.

An accepted request answers 202 only once its job is stored, so each request waits for
its own write whatever happens; what group commit changes is how many round trips carry
those writes. One writer per process takes every call queued while its previous batch
was in flight and sends them together: one EVALSHA each, in one pipeline without MULTI
(each script is atomic on its own, and each caller gets its own script's answer or error).
The writer keeps one connection of the pool for itself and packs the batch itself: redis-py's
`Pipeline` cost more per call than the rest of the write (its command stack, a pool checkout
with a health read, response callbacks), with the same retry on a dropped connection.

Why: on the enqueue route a Redis round trip cost more CPU than everything else the
route does (send, wait, wake-up, and Redis's own per-command I/O), and under load many
requests are mid-write at once. `python bench/pipeline.py` measures the route.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import redis
from redis.commands.core import Script
from redis.connection import HiredisRespSerializer
from redis.exceptions import NoScriptError, ResponseError
from redis.utils import HIREDIS_AVAILABLE

if HIREDIS_AVAILABLE:
    from hiredis import pack_command
else:
    pack_command = None

MAX_BATCH = 256  # calls per pipeline; more wait for the next one


IDLE_CHECK = 0.25  # seconds idle after which the writer's connection is checked before use


class _Process:
    """This process's id, kept (`os.getpid` is a system call, and every call asks) and renewed in a forked child."""

    pid = os.getpid()


def _renew_pid() -> None:
    _process.pid = os.getpid()


_process = _Process()
os.register_at_fork(after_in_child=_renew_pid)


class _Call:
    __slots__ = ("script", "keys", "args", "answer")

    def __init__(self, script: Script, keys: list, args: list):
        self.script, self.keys, self.args = script, keys, args
        self.answer: Any = None


class _Batch:
    """Calls sent in one pipeline. Their callers wait on one event, set once every answer is in
    (an event per call cost each call its own wake-up in the writer)."""

    __slots__ = ("calls", "done")

    def __init__(self):
        self.calls: list[_Call] = []
        self.done = threading.Event()


class GroupCommit:
    """Runs Lua scripts for many callers, batched into pipelines by one writer thread."""

    def __init__(self, conn: redis.Redis):
        self.conn = conn
        self._lock = threading.Lock()
        self._batches: deque[_Batch] = deque([_Batch()])  # the last one takes new calls
        self._ready = threading.Event()
        self._writer_pid = 0  # the process whose writer thread runs (a forked child starts its own)
        self._connection = None  # the writer's own connection, taken from the pool for good (one per writer)
        self._used = 0.0  # when the writer last took its connection (time.monotonic)

    def call(self, script: Script, keys: list, args: list) -> Any:
        """The script's answer, as `script(keys, args)` would give it; its error is raised here."""
        call = _Call(script, keys, args)
        with self._lock:
            if self._writer_pid != _process.pid:  # a forked child: its own writer, connection and calls
                self._writer_pid = _process.pid
                self._connection, self._batches = None, deque([_Batch()])
                threading.Thread(target=self._write, name="group-commit", daemon=True).start()
            batch = self._batches[-1]
            if len(batch.calls) >= MAX_BATCH:
                batch = _Batch()
                self._batches.append(batch)
            batch.calls.append(call)
        self._ready.set()
        batch.done.wait()
        if isinstance(call.answer, Exception):
            raise call.answer
        return call.answer

    def _write(self) -> None:
        while True:
            self._ready.wait()
            self._ready.clear()
            with self._lock:
                batch = self._batches.popleft()
                if not self._batches:
                    self._batches.append(_Batch())
                else:  # a full batch's callers wait for the next
                    self._ready.set()
            if batch.calls:
                self._commit(batch)

    def _commit(self, sent: _Batch) -> None:
        batch = sent.calls
        try:
            answers = self._pipeline(batch)
            missing = [call for call, answer in zip(batch, answers, strict=True) if isinstance(answer, NoScriptError)]
            if missing:  # Redis restarted (or was flushed) since the scripts were loaded
                for script in {id(call.script): call.script for call in missing}.values():
                    self.conn.script_load(script.script)
                retried = iter(self._pipeline(missing))
                answers = [next(retried) if isinstance(answer, NoScriptError) else answer for answer in answers]
        except Exception as error:  # e.g. Redis unreachable: every caller of the batch gets the error
            answers = [_own_copy(error) for _ in batch]
        for call, answer in zip(batch, answers, strict=True):
            call.answer = answer
        sent.done.set()

    def _pipeline(self, batch: list[_Call]) -> list:
        """Each call's answer or error. A call whose arguments cannot be encoded (a lone UTF-16
        surrogate, say) gets its own error and stays out of the pipeline: it must not fail the others."""
        answers: list = [None] * len(batch)
        connection = self._own_connection()
        pack = _packer(connection)
        commands, sent = [], []
        for index, call in enumerate(batch):
            command = ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
            try:  # packed (or encoded) here, as redis-py would send it, so a failure is this caller's
                commands.append(pack(command))
            except UnicodeEncodeError as error:
                answers[index] = error
                continue
            sent.append(index)
        if sent:
            packed = [b"".join(commands)] if pack is pack_command else connection.pack_commands(commands)
            # As redis-py's pipeline does: the connection's retry policy, a dropped connection closed.
            replies = connection.retry.call_with_retry(
                lambda: self._round_trip(connection, packed, len(sent)), lambda _error: connection.disconnect()
            )
            for index, reply in zip(sent, replies, strict=True):
                answers[index] = reply
        return answers

    def _own_connection(self):
        """The writer's connection, checked as the pool checks one it hands out when it was idle
        for IDLE_CHECK: one that Redis closed meanwhile (a restart, a proxy's idle limit) is
        opened again before use. Under load the check is skipped (on the enqueue route it cost
        a poll per batch, `python bench/pipeline.py`): a connection dropped between two busy
        batches fails the next one's callers with its ConnectionError, and the batch after it
        opens a new connection (the pool's connection reconnects once disconnected)."""
        now = time.monotonic()
        idle, self._used = now - self._used, now
        if self._connection is None:
            self._connection = self.conn.connection_pool.get_connection()
            return self._connection
        connection = self._connection
        if idle < IDLE_CHECK:
            return connection
        try:
            if connection.can_read():  # an idle connection has nothing to read: it was closed
                raise redis.ConnectionError("closed by Redis")
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            connection.disconnect()
            connection.connect()
        return connection

    @staticmethod
    def _round_trip(connection, packed: list[bytes], count: int) -> list:
        """Send the packed commands in one write; read `count` replies (a script's error is its caller's answer)."""
        connection.send_packed_command(packed)
        _let_the_hub_poll(connection)
        replies = []
        for _ in range(count):
            try:
                replies.append(connection.read_response())
            except ResponseError as error:
                replies.append(error)
        return replies


def _own_copy(error: Exception) -> Exception:
    """The error for one caller: each raises its own, its cause the writer's (with the writer's
    traceback). Raised by every caller of a batch, one shared exception would gather all their
    tracebacks: each raise adds its frames to the same object, and each log line held them all."""
    try:
        mine = copy.copy(error)
    except Exception:  # an exception that cannot be rebuilt from its arguments
        return error
    mine.__cause__ = error
    return mine


def _packer(connection) -> Callable[[tuple], Any]:
    """How one command is made ready to send on this connection: with hiredis (which redis-py then
    packs with too), packed by hiredis at once, str arguments encoded as it goes (redis-py's
    `pack_commands` around it cost twice the packing itself on the accept route); else its str
    arguments encoded, for the connection's `pack_commands`."""
    if HIREDIS_AVAILABLE and type(connection._command_packer) is HiredisRespSerializer:
        return pack_command
    return _encoded


def _encoded(command: tuple) -> tuple:
    return tuple(value.encode() if type(value) is str else value for value in command)


def _let_the_hub_poll(connection) -> None:
    """Under gevent (the web process), wait for the replies through the hub, even when they are
    already there, so that every batch lets the hub poll its sockets once.

    Why: when Redis answers before the writer reads and a client sends its next request before
    its greenlet reads it, every step of those requests runs as a gevent callback, and gevent
    polls only when the callbacks run out or after 50 of them. The connections that did wait for
    a socket then waited 10-25 ms with their request unread, while the others cycled: that was
    the accept route's p99 (`python bench/tail.py`; measured with SO_TIMESTAMPNS on each read).
    Threads (the worker process) read at once, as before. An encrypted socket with decrypted
    bytes already buffered is read at once too: its file descriptor would not turn readable."""
    sock = getattr(connection, "_sock", None)  # redis-py's connected socket
    if sock is None or not type(sock).__module__.startswith("gevent."):
        return
    pending = getattr(sock, "pending", None)
    if pending is not None and pending():
        return
    from gevent.socket import wait_read

    try:
        wait_read(sock.fileno(), timeout=connection.socket_timeout)
    except TimeoutError:
        pass  # the read that follows raises redis's own TimeoutError
