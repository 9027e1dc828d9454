"""The embedded Redis's janitor: stops the server once none of its users is alive.

Each user releases the server as it exits (`release_embedded`), and the last one stops it.
A user that dies without releasing (SIGKILL, an out-of-memory kill, or a SIGTERM that arrives
while the worker is still booting, before any handler is installed) would leave the
daemonised redis-server behind, with nobody left to stop it. The janitor is a small process
of its own session (so `honcho`'s and a terminal's signals to the group do not reach it)
that checks the users every WATCH_EVERY seconds and, when none is alive, stops the server
and ends. There is one per data directory: it holds JANITOR_LOCK while it runs.

Run as `python -m integration.redis.janitor DATA_DIR`; `use_embedded` starts it.
"""

from __future__ import annotations

import fcntl
import sys
import time
from pathlib import Path

from integration.redis.connection import JANITOR_LOCK, alive, embedded_users, stop_embedded

WATCH_EVERY = 0.5  # seconds between two looks at the users


def watch(data_dir: str, every: float = WATCH_EVERY) -> None:
    """Until no user of `data_dir`'s server is alive; then stop it (when another janitor
    already watches `data_dir`, return at once)."""
    lock = open(Path(data_dir).resolve() / JANITOR_LOCK, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return
    while True:
        time.sleep(every)
        with embedded_users(data_dir) as users:
            users.intersection_update({pid for pid in users if alive(pid)})
            if not users:
                stop_embedded(data_dir)
                # Let go of the janitor's lock before the users' lock: a user that comes
                # after sees no janitor and starts one.
                lock.close()
                return


if __name__ == "__main__":
    watch(sys.argv[1])
