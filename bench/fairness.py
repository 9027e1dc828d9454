"""Fairness under a flood: key A queues 5,000 jobs on one endpoint, then key B queues 20.

    python bench/fairness.py [--flood 5000] [--small 20]

Starts an embedded Redis, the RunPod emulator (`custom` worker, jobs run 0.2 s) and the
Procfile's web and worker processes, with the default `/run` budget (RUNPOD_RUN_BUDGET, 800
per 10 s: 80 a second per endpoint). Prints how long B's jobs waited to be submitted
(submitted - created: p50 and max) while A's flood was still queued, A's submissions per
second over the same stretch, and the endpoint's submissions per second against its budget.
Then a head-of-line check: one `/run` that takes 20 s to answer, and how long the next
jobs took to be submitted. Nothing here asserts: it prints what it saw.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import bench_env, create_key, free_port, procfile_command, start, stop, wait_http  # noqa: E402
from integration.redis.connection import ensure_embedded, stop_embedded  # noqa: E402

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def enqueue(base: str, key: str, count: int, threads: int = 8) -> list[str]:
    """`count` chat jobs as `key`, from `threads` clients at once; their ids."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"

    def one(_):
        answer = session.post(f"{base}/v1/chat/completions", json=CHAT, timeout=60)
        answer.raise_for_status()
        return answer.json()["id"]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(count)))


def times(conn: redis.Redis, ids: list[str]) -> list[tuple[float, float | None]]:
    """(created, submitted or None) of each job, from its record."""
    pipe = conn.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(f"pr:job:{job_id}", "created", "submitted")
    return [(float(c), float(s) if s else None) for c, s in pipe.execute()]


def wait_submitted(conn: redis.Redis, ids: list[str], seconds: float) -> list[tuple[float, float | None]]:
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = times(conn, ids)
        if all(s is not None for _, s in found):
            return found
        time.sleep(0.1)
    return times(conn, ids)


def run(flood: int, small: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="podrelay-bench-fair-"))
    redis_url = ensure_embedded(str(workdir / "redis"))
    conn = redis.Redis.from_url(redis_url)
    emulator_port, web_port = free_port(), free_port()
    env = bench_env(redis_url, emulator_port, DATA_DIR=str(workdir / "data"), PORT=str(web_port))
    emulator_cmd = f"{shlex.quote(sys.executable)} -m flask --app app emulator --port {emulator_port} --run-time 0.2"
    processes = [start(emulator_cmd, env, workdir / "emulator.log")]
    emulator, base = f"http://127.0.0.1:{emulator_port}", f"http://127.0.0.1:{web_port}"
    try:
        wait_http(f"{emulator}/_emulator/stats")
        key_a, key_b = create_key(env, "flood"), create_key(env, "small")
        processes += [start(procfile_command(p), env, workdir / f"{p}.log") for p in ("web", "worker")]
        wait_http(f"{base}/healthz")
        print(f"fairness benchmark; logs in {workdir}", flush=True)
        started = time.time()
        a_ids = enqueue(base, key_a, flood)
        print(f"key A: {flood} jobs queued in {time.time() - started:.1f} s", flush=True)
        b_started = time.time()
        b_ids = enqueue(base, key_b, small, threads=2)
        b = wait_submitted(conn, b_ids, 120)
        b_done = time.time()
        a = times(conn, a_ids)
        waiting = sum(1 for _, s in a if s is None or s > b_done)
        delays = sorted(s - c for c, s in b if s is not None)
        print(f"\n1. key B's {small} jobs, queued while {waiting} of A's were still waiting:")
        print(f"   submit delay p50 {statistics.median(delays):.2f} s, max {max(delays):.2f} s ({len(delays)}/{small} submitted)")
        a_during = sum(1 for _, s in a if s is not None and b_started <= s <= b_done)
        span = max(b_done - b_started, 0.001)
        print(f"   over those {span:.1f} s: A {a_during / span:.0f} submits/s, B {len(delays) / span:.0f}/s")
        a = wait_submitted(conn, a_ids, 600)
        submitted = sorted(s for _, s in a + b if s is not None)
        window = [s for s in submitted if s >= submitted[0] + 2 and s <= submitted[-1] - 2]  # the steady part
        rate = len(window) / max(window[-1] - window[0], 0.001) if len(window) > 1 else 0.0
        print(f"2. the endpoint: {rate:.0f} submits/s while A's flood drained (budget: 80/s)")

        requests.post(
            f"{emulator}/_emulator/steer", json={"endpoint_id": "bench-chat", "controls": {"answer_after": 20}}, timeout=10
        )
        stuck = enqueue(base, key_b, 1)
        time.sleep(1)
        after = enqueue(base, key_b, 9, threads=3)
        late = wait_submitted(conn, after, 60)
        waits = sorted(s - c for c, s in late if s is not None)
        print(f"3. one /run hangs 20 s: the next 9 jobs were submitted {max(waits):.2f} s (max) after they were queued;")
        print(f"   the hanging job's submit: {times(conn, stuck)[0][1] is not None and 'answered' or 'still waiting'}")
    finally:
        for process in reversed(processes):
            stop(process)
        stop_embedded(str(workdir / "redis"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--flood", type=int, default=5000)
    parser.add_argument("--small", type=int, default=20)
    args = parser.parse_args()
    run(args.flood, args.small)
