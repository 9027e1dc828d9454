"""Where the accept route's p99 comes from: podrelay, the PING route and the RQ route under
wrk, with a chosen number of web workers and connections, and optionally Redis reniced or
its append-only file off (to rule each out).

    python bench/tail.py [--workers 2] [--connections 16] [--rounds 2] [--nice-redis -10] [--no-aof]

The same servers as `bench/pipeline.py`'s enqueue scenario (the Procfile's web command,
`bench/trivial.py` for the PING and RQ routes), no worker running. Nothing here asserts: it
prints what it saw.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import bench_env, create_key, free_port, procfile_command, start, stop, wait_http  # noqa: E402
from bench.pipeline import _WRK_SCRIPT, CHAT  # noqa: E402
from integration.redis.connection import ensure_embedded, stop_embedded  # noqa: E402

ROUTES = (
    ("podrelay", "podrelay", "/v1/chat/completions"),
    ("PING", "trivial", "/v1/redis-round-trip"),
    ("RQ", "trivial", "/v1/rq"),
)


def wrk(port: int, path: str, key: str, connections: int, seconds: float, workdir: Path) -> str:
    """wrk's rate and latency percentiles, on one line."""
    script = workdir / "wrk.lua"
    script.write_text(_WRK_SCRIPT % (json.dumps(key), json.dumps(CHAT.decode())))
    command = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{path}",
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)$", out, re.M))
    rate = float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1))
    return f"{rate:>8.0f} req/s" + "".join(f"  p{p} {percentiles[p]:>8}" for p in ("50", "75", "90", "99"))


def main(workers: int, connections: int, rounds: int, nice_redis: int | None, no_aof: bool) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="podrelay-tail-"))
    redis_url = ensure_embedded(str(workdir / "redis"))
    env = bench_env(redis_url, WEB_CONCURRENCY=str(workers))
    key = create_key(env)
    ports = {"podrelay": free_port(), "trivial": free_port()}
    trivial_cmd = procfile_command("web").replace("app:web", "bench.trivial:app")
    servers = [
        start(procfile_command("web"), {**env, "PORT": str(ports["podrelay"])}, workdir / "web.log"),
        start(trivial_cmd, {**env, "PORT": str(ports["trivial"]), "BENCH_API_KEY": key}, workdir / "trivial.log"),
    ]
    try:
        for port in ports.values():
            wait_http(f"http://127.0.0.1:{port}/healthz")
        if no_aof:
            redis.Redis.from_url(redis_url).config_set("appendonly", "no")
        if nice_redis is not None:
            pid = (workdir / "redis" / "redis.pid").read_text().strip()
            subprocess.run(["renice", "-n", str(nice_redis), "-p", pid], check=True, capture_output=True)
        print(f"{workers} web workers, wrk -t2 -c{connections}, Redis nice {nice_redis or 0}, AOF {'off' if no_aof else 'on'}")
        for _, server, path in ROUTES:  # warm up
            wrk(ports[server], path, key, connections, 2, workdir)
        for number in range(1, rounds + 1):
            for name, server, path in ROUTES:
                print(f"  {number}  {name:<9}{wrk(ports[server], path, key, connections, 5, workdir)}", flush=True)
    finally:
        for server in servers:
            stop(server)
        stop_embedded(str(workdir / "redis"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY of both servers")
    parser.add_argument("--connections", type=int, default=16, help="wrk's connections")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--nice-redis", type=int, default=None, help="renice the Redis server to this")
    parser.add_argument("--no-aof", action="store_true", help="turn Redis's append-only file off")
    options = parser.parse_args()
    main(options.workers, options.connections, options.rounds, options.nice_redis, options.no_aof)
