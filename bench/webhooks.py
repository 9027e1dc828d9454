"""Benchmark webhook delivery on this machine and print the figures.

    python bench/webhooks.py [--events 1000] [--subscriptions 10] [--jobs 1000] [--rate 200]

Starts the Procfile's `web` and one `worker` on an embedded Redis, the RunPod emulator,
and a fast receiver on loopback (bench/receiver.py, its own process), then measures:

1. deliveries per second that one worker process sustains: `--events` job events are
   appended to the event stream at once, each fanned out to `--subscriptions`
   subscriptions, and the receiver counts arrivals;
2. the delay from a job's completion (the `finished` time the worker records) to its
   `job.completed` webhook arriving, p50 and p99, for `--jobs` real jobs enqueued at
   `--rate` per second through the whole pipeline (callbacks on).

Nothing here asserts: it prints what it saw.
"""

from __future__ import annotations

import argparse
import os
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

from bench.harness import (  # noqa: E402
    bench_env,
    cpu_seconds,
    create_key,
    free_port,
    in_group,
    procfile_command,
    start,
    stop,
    wait_http,
)
from integration.accounts.keys import lookup  # noqa: E402
from integration.config import Settings  # noqa: E402
from integration.jobs.events import EVENTS, Event  # noqa: E402
from integration.jobs.record import Job, JobStatus  # noqa: E402
from integration.redis.connection import ensure_embedded, stop_embedded  # noqa: E402


def arrivals(path: Path) -> list[tuple[float, str, str, str]]:
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split(" ")
        if len(parts) == 4:
            rows.append((float(parts[0]), parts[1], parts[2], parts[3]))
    return rows


def wait_count(receiver_url: str, wanted: int, timeout: float) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if int(requests.get(f"{receiver_url}/count", timeout=5).text) >= wanted:
            return time.time()
        time.sleep(0.05)
    raise SystemExit(f"receiver got fewer than {wanted} deliveries in {timeout}s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="jobs enqueued per second in scenario 2")
    run(parser.parse_args())


def run(args) -> dict:
    """Both scenarios, printed as they finish; returns their figures."""
    figures: dict = {}
    workdir = Path(tempfile.mkdtemp(prefix="podrelay-webhooks-"))
    redis_url = ensure_embedded(str(workdir / "redis"))
    conn = redis.Redis.from_url(redis_url)
    emulator_port, web_port, receiver_port = free_port(), free_port(), free_port()
    env = bench_env(
        redis_url,
        emulator_port,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
        PORT=str(web_port),
        WEBHOOK_ALLOW_PRIVATE="1",  # the receiver is on loopback
        RUNPOD_RUN_BUDGET="100000",  # let submissions keep up with --rate
    )
    python = shlex.quote(sys.executable)
    processes = [
        start(f"{python} -m flask --app app emulator --port {emulator_port} --run-time 0.5", env, workdir / "emulator.log"),
        start(f"{python} bench/receiver.py {receiver_port} {workdir / 'arrivals.log'}", env, workdir / "receiver.out"),
        start(procfile_command("web"), env, workdir / "web.log"),
    ]
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    try:
        wait_http(f"http://127.0.0.1:{emulator_port}/_emulator/stats")
        wait_http(f"{receiver_url}/count")
        wait_http(f"http://127.0.0.1:{web_port}/healthz")
        key = create_key(env)
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {key}"
        base = f"http://127.0.0.1:{web_port}/v1"
        key_id = lookup(conn, key, Settings()).key_id
        subs = [
            api.post(f"{base}/webhooks", json={"url": f"{receiver_url}/s{i}"}, timeout=5).json()["id"]
            for i in range(args.subscriptions)
        ]

        # 1. Throughput: events appended at once (as job transitions append them), fanned out.
        job = Job(
            id="bench", key_id=key_id, surface="chat", model="m", endpoint_id="e", status=JobStatus.COMPLETED, created=time.time()
        )
        pipe = conn.pipeline(transaction=False)
        for _ in range(args.events):
            pipe.xadd(EVENTS, Event.for_job("job.completed", job, job.to_api()).to_fields())
        pipe.execute()
        total = args.events * args.subscriptions
        worker = start(procfile_command("worker"), env, workdir / "worker.log")
        started = time.time()
        wait_count(receiver_url, total, timeout=600)
        worker_cpu = cpu_seconds(in_group(worker.pid))
        receiver_cpu = cpu_seconds(in_group(processes[1].pid))
        first = min(t for t, *_ in arrivals(workdir / "arrivals.log"))
        last = max(t for t, *_ in arrivals(workdir / "arrivals.log"))
        print(f"podrelay webhook benchmark on {os.cpu_count()} cores; logs in {workdir}")
        print(f"\n1. {args.events} events x {args.subscriptions} subscriptions = {total} deliveries, one worker process")
        print(f"   worker start to last arrival: {time.time() - started:.1f} s")
        print(f"   first to last arrival: {last - first:.1f} s -> {total / (last - first):.0f} deliveries/s")
        print(
            f"   CPU per delivery: worker {worker_cpu * 1000 / total:.2f} ms (with its start-up), receiver {receiver_cpu * 1000 / total:.2f} ms"
        )
        figures["deliveries_per_s"] = total / (last - first)

        # 2. Latency: real jobs, completion -> webhook arrival.
        for sub_id in subs:
            api.delete(f"{base}/webhooks/{sub_id}", timeout=5)
        before = len(arrivals(workdir / "arrivals.log"))
        body = {"messages": [{"role": "user", "content": "hi"}], "webhook_url": f"{receiver_url}/job"}
        start_at = time.time() + 0.5

        def enqueue(number: int) -> str:  # each request at its moment, so the rate holds
            time.sleep(max(0.0, start_at + number / args.rate - time.time()))
            return api.post(f"{base}/chat/completions", json=body, timeout=10).json()["id"]

        parts = {"web": processes[2], "worker": worker, "emulator": processes[0], "receiver": processes[1]}
        matches = {name: in_group(p.pid) for name, p in parts.items()}
        redis_pid = int((workdir / "redis" / "redis.pid").read_text())
        matches["redis"] = lambda pid: pid == redis_pid
        cpu_before = {name: cpu_seconds(match) for name, match in matches.items()}
        calls_before = {name: stats["calls"] for name, stats in conn.info("commandstats").items()}
        with ThreadPoolExecutor(16) as pool:
            ids = list(pool.map(enqueue, range(args.jobs)))
        enqueue_seconds = time.time() - start_at
        wait_count(receiver_url, before + args.jobs, timeout=600)
        cpu_ms = {name: (cpu_seconds(match) - cpu_before[name]) * 1000 / args.jobs for name, match in matches.items()}
        calls = {
            name.removeprefix("cmdstat_"): (stats["calls"] - calls_before.get(name, 0)) / args.jobs
            for name, stats in conn.info("commandstats").items()
        }
        arrived = {job_id: t for t, _, kind, job_id in arrivals(workdir / "arrivals.log")[before:] if kind == "job.completed"}
        pipe = conn.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(f"pr:job:{job_id}", "finished")
        finished = dict(zip(ids, (float(f) for f in pipe.execute()), strict=True))
        dispatched = {}  # job id -> when its delivery was created (the event fanned out)
        for delivery_id in conn.zrange(f"pr:keydlv:{key_id}", 0, -1):
            job_id, created = conn.hmget(f"pr:dlv:{delivery_id.decode()}", "job_id", "created")
            if job_id and job_id.decode() in finished:
                dispatched[job_id.decode()] = float(created)
        delays = [(arrived[j] - finished[j]) * 1000 for j in ids if j in arrived]
        to_dispatch = [(dispatched[j] - finished[j]) * 1000 for j in ids if j in dispatched]
        to_arrival = [(arrived[j] - dispatched[j]) * 1000 for j in ids if j in arrived and j in dispatched]
        completions = sorted(finished.values())
        rate = len(completions) / max(completions[-1] - completions[0], 1e-9)
        print(f"\n2. {args.jobs} chat jobs enqueued over {enqueue_seconds:.1f} s, each with a webhook_url; callbacks on")
        print(f"   completions per second (first to last finish): {rate:.0f}")
        for name, values in (
            ("completion -> webhook arrival", delays),
            ("  of which completion -> delivery created", to_dispatch),
            ("  of which delivery created -> arrival", to_arrival),
        ):
            print(
                f"   {name}: p50 {statistics.median(values):.1f} ms, p99 {percentile(values, 0.99):.1f} ms, max {max(values):.1f} ms"
            )
        print("   CPU per job (ms): " + ", ".join(f"{name} {ms:.2f}" for name, ms in cpu_ms.items()))
        busiest = sorted(calls.items(), key=lambda item: -item[1])[:12]
        print(f"   Redis commands per job: {sum(calls.values()):.1f} (" + ", ".join(f"{n} {c:.1f}" for n, c in busiest) + ")")
        figures.update(completions_per_s=rate, p50_ms=statistics.median(delays), p99_ms=percentile(delays, 0.99))
        stop(worker)
    finally:
        for process in processes:
            stop(process)
        stop_embedded(str(workdir / "redis"))
    return figures


if __name__ == "__main__":
    main()
