"""Group commit: many callers' scripts in shared pipelines, each caller with its own answer."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from integration.redis.group_commit import IDLE_CHECK, GroupCommit, _encoded, _packer

# Appends ARGV[1] to a list and answers the list's new length and the value; a value of
# 'fail' raises inside the script.
APPEND = """
if ARGV[1] == 'fail' then return redis.error_reply('asked to fail') end
return {redis.call('RPUSH', KEYS[1], ARGV[1]), ARGV[1]}
"""


@pytest.fixture
def conn(redis_url):
    return redis.Redis.from_url(redis_url)


def _appended_at_once(conn, callers: int) -> tuple[list, list[int]]:
    """`callers` threads append at once through one GroupCommit: their answers, and the size of each pipeline sent."""
    commits, script = GroupCommit(conn), conn.register_script(APPEND)
    conn.script_load(APPEND)  # else the first pipeline is sent twice (the scripts get loaded between)
    pipelines = []
    original = commits._pipeline
    commits._pipeline = lambda batch: pipelines.append(len(batch)) or original(batch)
    start = threading.Barrier(callers)

    def call(n: int):
        start.wait()
        return commits.call(script, ["pr:test:list"], [f"v{n}"])

    with ThreadPoolExecutor(callers) as pool:
        answers = list(pool.map(call, range(callers)))
    assert [value.decode() for _, value in answers] == [f"v{n}" for n in range(callers)]
    assert sorted(length for length, _ in answers) == list(range(1, callers + 1))  # each write applied once
    return answers, pipelines


def test_concurrent_callers_each_get_their_own_answer(conn):
    _, pipelines = _appended_at_once(conn, 40)
    assert conn.llen("pr:test:list") == 40
    assert sum(pipelines) == 40 and len(pipelines) < 40  # some callers shared a pipeline


def test_callers_past_a_full_batch_wait_for_the_next_and_each_gets_its_own_answer(conn, monkeypatch):
    import integration.redis.group_commit as group_commit

    monkeypatch.setattr(group_commit, "MAX_BATCH", 4)
    _, pipelines = _appended_at_once(conn, 30)
    assert sum(pipelines) == 30 and max(pipelines) <= 4


@pytest.mark.parametrize(
    "bad, error",
    [("fail", redis.ResponseError), ("lone \ud800 surrogate", UnicodeEncodeError)],
    ids=["the script fails", "an argument Redis cannot be sent"],
)
def test_a_bad_call_fails_only_its_caller(conn, bad, error):
    commits, script = GroupCommit(conn), conn.register_script(APPEND)
    start = threading.Barrier(3)

    def call(value: str):
        start.wait()
        try:
            return commits.call(script, ["pr:test:list"], [value])
        except error as raised:
            return raised

    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(call, ["a", bad, "b"]))

    assert isinstance(answers[1], error)
    assert error is not redis.ResponseError or str(answers[1]) == "asked to fail"  # the script's own message
    assert {answers[0][1], answers[2][1]} == {b"a", b"b"}
    assert sorted(conn.lrange("pr:test:list", 0, -1)) == [b"a", b"b"]


def test_a_forked_child_starts_its_own_writer(conn):
    """gunicorn forks its workers from a master that may have used the store: the child's calls
    need a writer of their own (the parent's thread does not exist in the child)."""
    commits, script = GroupCommit(conn), conn.register_script(APPEND)
    assert commits.call(script, ["pr:test:list"], ["parent"])[0] == 1
    child = os.fork()
    if child == 0:  # the child: its answer in its exit status, within 20 s (else it would hang)
        code = 1
        try:
            answered = []
            caller = threading.Thread(target=lambda: answered.append(commits.call(script, ["pr:test:list"], ["child"])))
            caller.start()
            caller.join(20)
            code = 0 if answered and answered[0][1] == b"child" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert conn.lrange("pr:test:list", 0, -1) == [b"parent", b"child"]
    assert commits.call(script, ["pr:test:list"], ["parent again"])[0] == 3  # the parent's writer still serves it


def test_scripts_are_loaded_again_after_redis_forgets_them(conn):
    commits, script = GroupCommit(conn), conn.register_script(APPEND)
    assert commits.call(script, ["pr:test:list"], ["first"])[0] == 1
    conn.script_flush()  # as after a Redis restart without the script cache
    assert commits.call(script, ["pr:test:list"], ["second"])[0] == 2


def test_redis_unreachable_raises_in_the_caller():
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    commits = GroupCommit(down)
    with pytest.raises(redis.ConnectionError):
        commits.call(down.register_script(APPEND), ["pr:test:list"], ["x"])


def test_callers_of_a_failed_batch_each_raise_their_own_error():
    """Every caller of a batch that Redis failed gets the error, each its own object: one shared
    exception raised by every caller would gather all their tracebacks (each log line held them all)."""
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    commits, script = GroupCommit(down), down.register_script(APPEND)
    start = threading.Barrier(8)

    def call(_n: int):
        start.wait()
        try:
            commits.call(script, ["pr:test:list"], ["x"])
        except redis.ConnectionError as error:
            return error
        return None

    with ThreadPoolExecutor(8) as pool:
        errors = list(pool.map(call, range(8)))

    assert all(isinstance(error, redis.ConnectionError) for error in errors)
    assert len({id(error) for error in errors}) == 8
    for error in errors:  # its own raise only: one frame of `call` in its traceback
        frames = []
        tb = error.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        assert frames.count("call") == 2, frames  # the test's `call`, then GroupCommit.call
        assert isinstance(error.__cause__, redis.ConnectionError)  # the writer's, with its traceback


def test_a_batch_is_packed_byte_for_byte_as_redis_py_packs_it(conn):
    connection = conn.connection_pool.make_connection()
    big = "é".encode() * 40_000  # past redis-py's buffer cut-off, where it sends pieces apart
    commands = [
        ("EVALSHA", "a" * 40, 3, b"pr:job:1", b"pr:pending", b"k", b"id", 1733590000.123, 0, b"", -7, 2.5e-7, big),
        ("EVALSHA", "b" * 40, 0),
        ("EVALSHA", "c" * 40, 1, "plain text", 10**18, 0.1 + 0.2),
    ]
    expected = b"".join(connection.pack_commands(commands))
    pack = _packer(connection)  # hiredis's, as redis-py packs with hiredis here
    assert b"".join(pack(command) for command in commands) == expected
    assert b"".join(connection.pack_commands([_encoded(command) for command in commands])) == expected  # without hiredis


def _drop_every_other_connection(redis_url: str) -> None:
    """Redis closes every other client's connection (as at a restart, or a proxy's idle cut-off)."""
    killer = redis.Redis.from_url(redis_url)
    assert killer.client_kill_filter(_type="normal", skipme=True) >= 1
    killer.close()


def test_the_writers_connection_dropped_while_idle_is_opened_again(conn, redis_url):
    commits, script = GroupCommit(conn), conn.register_script(APPEND)
    assert commits.call(script, ["pr:test:list"], ["first"])[0] == 1
    _drop_every_other_connection(redis_url)
    time.sleep(IDLE_CHECK * 1.5)
    assert commits.call(script, ["pr:test:list"], ["second"]) == [2, b"second"]
    assert conn.lrange("pr:test:list", 0, -1) == [b"first", b"second"]  # each written once


def test_a_connection_dropped_between_busy_batches_fails_one_batch_and_the_next_reconnects(conn, redis_url):
    commits, script = GroupCommit(conn), conn.register_script(APPEND)
    assert commits.call(script, ["pr:test:list"], ["first"])[0] == 1
    _drop_every_other_connection(redis_url)  # at once: the writer does not check a connection it just used
    with pytest.raises(redis.ConnectionError):
        commits.call(script, ["pr:test:list"], ["refused"])
    assert commits.call(script, ["pr:test:list"], ["third"]) == [2, b"third"]
    assert conn.lrange("pr:test:list", 0, -1) == [b"first", b"third"]  # the refused call was not written


# Run under gevent as the web process runs (monkey-patched), in a process of its own: four
# greenlets call the writer in a loop while Redis's replies are already there when the writer
# reads (it spins 5 ms after each send), and one greenlet waits for a socket that has data.
_UNDER_GEVENT = """
from gevent import monkey; monkey.patch_all()
import socket, sys, time
import gevent, redis
from integration.redis.group_commit import GroupCommit

conn = redis.Redis.from_url(sys.argv[1])
script = conn.register_script("return 1")
conn.script_load("return 1")
commits = GroupCommit(conn)
connection = conn.connection_pool.get_connection()
conn.connection_pool.get_connection = lambda *args, **kwargs: connection
send = connection.send_packed_command

def send_then_spin(*args, **kwargs):
    send(*args, **kwargs)
    until = time.perf_counter() + 0.005
    while time.perf_counter() < until:  # Redis answers meanwhile; the writer does not yield
        pass

connection.send_packed_command = send_then_spin
done, served = [0], []
left, right = socket.socketpair()

def reader():
    left.recv(1)
    served.append(done[0])

def caller():
    for _ in range(60):
        commits.call(script, [], [])
        done[0] += 1

waiting = gevent.spawn(reader)
gevent.sleep(0)  # the reader now waits for its socket
right.send(b"x")
gevent.joinall([waiting, *(gevent.spawn(caller) for _ in range(4))], timeout=60)
print(served[0] if served else "never")
"""


def test_under_gevent_each_batch_lets_the_hub_poll_so_no_connection_waits_behind_busy_ones(redis_url):
    out = subprocess.run(
        [sys.executable, "-c", _UNDER_GEVENT, redis_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.returncode == 0, out.stderr
    # The reader's socket was readable before the first call: it is served at the first poll,
    # which comes with the first batch (four calls at most), not after gevent's 50 callbacks.
    assert out.stdout.strip() != "never" and int(out.stdout) <= 4, out.stdout
