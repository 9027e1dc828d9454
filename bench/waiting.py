"""Benchmark `Prefer: wait`: how many waiting requests one web process holds, at what cost.

    python bench/waiting.py [--requests 300] [--connections 100,1000]

For each `--connections` value it starts one gunicorn worker process (the Procfile's `web`
command, gevent, with WEB_CONCURRENCY=1, WEB_CONNECTIONS=value) and no podrelay worker, so every job
stays queued and every request waits its full `Prefer: wait=15`. It fires `--requests`
at once and prints, from Redis itself: how many jobs are waited on at the same time
(PUBSUB CHANNELS), and Redis commands per second over 5 s while they wait.

Nothing here asserts: it prints what it saw.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import bench_env, create_key, free_port, procfile_command, start, stop, wait_http  # noqa: E402
from integration.redis.connection import ensure_embedded, stop_embedded  # noqa: E402


def measure(env: dict, workdir: Path, key: str, conn: redis.Redis, connections: int, count: int) -> dict:
    port = free_port()
    web = start(
        procfile_command("web"),
        {**env, "PORT": str(port), "WEB_CONCURRENCY": "1", "WEB_CONNECTIONS": str(connections)},
        workdir / f"web-{connections}.log",
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        baseline = len(conn.pubsub_channels("pr:changed:*"))
        statuses: list[int] = []

        def one() -> None:
            try:
                answer = requests.post(
                    f"http://127.0.0.1:{port}/v1/embeddings",
                    json={"input": "x"},
                    headers={"Authorization": f"Bearer {key}", "Prefer": "wait=15"},
                    timeout=60,
                )
                statuses.append(answer.status_code)
            except requests.RequestException:
                statuses.append(0)  # refused, or still queued for a connection slot when the client gave up

        clients = [threading.Thread(target=one) for _ in range(count)]
        for client in clients:
            client.start()
        time.sleep(4)  # let every request that can be taken reach its wait
        waiting = len(conn.pubsub_channels("pr:changed:*")) - baseline
        before = conn.info("stats")["total_commands_processed"]
        time.sleep(5)
        commands = conn.info("stats")["total_commands_processed"] - before  # includes one INFO
        for client in clients:
            client.join()
        answers = {code: statuses.count(code) for code in sorted(set(statuses))}
        return {"connections": connections, "waiting": waiting, "commands_per_s": commands / 5, "answers": answers}
    finally:
        stop(web)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--connections", default="100,1000", help="WEB_CONNECTIONS values to try, comma-separated")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="podrelay-waiting-"))
    redis_url = ensure_embedded(str(workdir / "redis"))
    conn = redis.Redis.from_url(redis_url)
    env = bench_env(redis_url, PREFER_WAIT_MAX="60")
    try:
        key = create_key(env)
        print(f"Prefer: wait=15, {args.requests} requests at once, one gunicorn worker process (gevent), no podrelay worker")
        print(
            f"   {'WEB_CONNECTIONS':<17}{'waiting at once':>16}{'Redis cmds/s while waiting':>28}   answers (0: client gave up at 60 s)"
        )
        for connections in (int(c) for c in args.connections.split(",")):
            figures = measure(env, workdir, key, conn, connections, args.requests)
            print(f"   {connections:<17}{figures['waiting']:>16}{figures['commands_per_s']:>28.1f}   {figures['answers']}")
    finally:
        stop_embedded(str(workdir / "redis"))


if __name__ == "__main__":
    main()
