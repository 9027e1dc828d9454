"""Lua scripts kept in `.lua` files beside the store that runs them.

Each file opens with its contract (KEYS, ARGV, the answer) and names its arguments as
locals, so a script reads on its own. Redis runs a script atomically: that is why
podrelay's multi-key changes are scripts.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import redis
from redis.commands.core import Script


@cache
def _text(beside: str, name: str, include: Path | None) -> str:
    """The script's text, read once (a key's lookup script is loaded again on every cache miss,
    and resolving its path took a system call per folder)."""
    source = (Path(beside).resolve().parent / name).read_text()
    return include.read_text() + "\n" + source if include else source


def load(conn: redis.Redis, beside: str, name: str, include: Path | None = None) -> Script:
    """The script `name` from the folder of module file `beside`, registered on `conn`; with
    `include`, that file's functions first (a Lua function shared by two scripts)."""
    return conn.register_script(_text(beside, name, include))
