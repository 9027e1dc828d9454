"""File results: Redis memory per finished job with 4 MB of file output, and the time to
download a 10 MB result beside reading the same file from disk.

    python bench/files.py [--jobs 20]

Starts an embedded Redis, the RunPod emulator (the `custom` worker, steered to answer
with 4 images of 1 MB each as base64, the way stock image workers answer without a bucket),
and the Procfile's web and worker processes with the directory store (`DATA_DIR/files`).
Prints the Redis keys' growth per finished job (`MEMORY USAGE ... SAMPLES 0` of every key,
with and without the job's event log, kept an hour after the end), the median job record,
`used_memory`'s growth, and the download ratio (best of 5 each).
Nothing here asserts: it prints what it saw.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import bench_env, create_key, free_port, procfile_command, start, stop, wait_http  # noqa: E402
from integration.redis.connection import ensure_embedded, stop_embedded  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def steer(emulator_url: str, images: list[bytes], count: int) -> None:
    """The emulated images endpoint's next `count` jobs answer with `images`, inline."""
    output = {"images": [base64.b64encode(i).decode() for i in images]}
    body = {"endpoint_id": "bench-images", "controls": {"output": output}, "count": count}
    requests.post(f"{emulator_url}/_emulator/steer", json=body, timeout=60).raise_for_status()


def finish(session: requests.Session, base: str, count: int) -> list[str]:
    """Enqueue `count` image jobs and wait until all completed; their ids."""
    ids = [
        session.post(f"{base}/v1/images/generations", json={"prompt": "x", "n": 4}, timeout=30).json()["id"] for _ in range(count)
    ]
    deadline = time.time() + 600
    while time.time() < deadline:
        statuses = [session.get(f"{base}/v1/jobs/{job_id}", timeout=30).json()["status"] for job_id in ids]
        if all(s == "completed" for s in statuses):
            return ids
        if any(s in ("failed", "cancelled", "timed_out") for s in statuses):
            raise SystemExit(f"a job ended {statuses}")
        time.sleep(0.5)
    raise SystemExit("jobs did not finish in 10 minutes")


def by_pattern(conn: redis.Redis) -> dict[str, int]:
    """Bytes per key pattern (ids replaced by `*`)."""
    sizes: dict[str, int] = {}
    for key in conn.scan_iter(count=1000):
        pattern = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|key_[0-9a-zA-Z]+|[0-9a-f-]{20,}", "*", key.decode(errors="replace"))
        sizes[pattern] = sizes.get(pattern, 0) + (conn.memory_usage(key, samples=0) or 0)
    return sizes


def best_of(times: int, action) -> float:
    """The fastest of `times` runs of `action`, in seconds."""
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        spent.append(time.perf_counter() - started)
    return min(spent)


def run(jobs: int = 20) -> dict:
    """Both figures, printed; returns them."""
    workdir = Path(tempfile.mkdtemp(prefix="podrelay-bench-files-"))
    redis_url = ensure_embedded(str(workdir / "redis"))
    conn = redis.Redis.from_url(redis_url)
    emulator_port, web_port = free_port(), free_port()
    env = bench_env(
        redis_url,
        emulator_port,
        RUNPOD_ENDPOINT_IMAGES="bench-images",
        RUNPOD_WORKER_IMAGES="custom",
        DATA_DIR=str(workdir / "data"),
        PORT=str(web_port),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
    )
    emulator_cmd = f"{shlex.quote(sys.executable)} -m flask --app app emulator --port {emulator_port} --run-time 0.2"
    processes = [start(emulator_cmd, env, workdir / "emulator.log")]
    emulator_url, base = f"http://127.0.0.1:{emulator_port}", f"http://127.0.0.1:{web_port}"
    try:
        wait_http(f"{emulator_url}/_emulator/stats")
        key = create_key(env)
        processes += [start(procfile_command(p), env, workdir / f"{p}.log") for p in ("web", "worker")]
        wait_http(f"{base}/healthz")
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        print(f"files benchmark on {os.cpu_count()} cores; logs in {workdir}")

        steer(emulator_url, [PNG + os.urandom(1024 * 1024 - len(PNG)) for _ in range(4)], jobs)
        finish(session, base, 1)  # one first, so the base line includes every structure's first allocation
        time.sleep(1)
        memory_base, keys_base = conn.info("memory")["used_memory"], by_pattern(conn)
        ids = finish(session, base, jobs - 1)
        time.sleep(2)  # the last deliveries, metrics and log entries
        per_job = (conn.info("memory")["used_memory"] - memory_base) / len(ids)
        keys = by_pattern(conn)
        grown = {pattern: size - keys_base.get(pattern, 0) for pattern, size in keys.items()}
        keys_per_job = sum(grown.values()) / len(ids)
        after_hour = sum(size for pattern, size in grown.items() if not pattern.startswith("pr:log:")) / len(ids)
        record = statistics.median(conn.memory_usage(f"pr:job:{job_id}", samples=0) for job_id in ids)
        inline = len(json.dumps({"images": [base64.b64encode(b"x" * 1024 * 1024).decode()] * 4}))
        print(f"\n1. {len(ids)} image jobs, each with 4 x 1 MB of files (the worker's output: {inline / 1e6:.1f} MB of base64)")
        print(f"   Redis keys per finished job: {keys_per_job / 1024:.2f} KiB in its first hour (with its event log),")
        print(f"   {after_hour / 1024:.2f} KiB after (record, index, RunPod id); median job record {record / 1024:.2f} KiB;")
        print(f"   used_memory grew {per_job / 1024:.2f} KiB per job (with the allocator's and client buffers' share)")
        print("   growth by key pattern (MEMORY USAGE, SAMPLES 0):")
        for pattern, size in sorted(grown.items(), key=lambda kv: -kv[1])[:6]:
            print(f"     {size / 1024:>9.1f} KiB  {pattern}")

        big = PNG + os.urandom(10 * 1024 * 1024 - len(PNG))
        steer(emulator_url, [big], 1)
        (job_id,) = finish(session, base, 1)
        path = workdir / "data" / "files" / job_id / "out-0"

        def download() -> None:
            assert session.get(f"{base}/v1/jobs/{job_id}/download", timeout=60).content == big

        def from_disk() -> None:
            assert path.read_bytes() == big

        http, disk = best_of(5, download), best_of(5, from_disk)
        print("\n2. A 10 MB file result, best of 5")
        print(f"   GET /v1/jobs/{{id}}/download: {http * 1000:.1f} ms; reading the stored file: {disk * 1000:.1f} ms")
        print(f"   download / disk: {http / disk:.1f}x ({len(big) / http / 1e6:.0f} MB/s through podrelay)")
        return {"keys_per_job": keys_per_job, "after_hour": after_hour, "record": record, "download_s": http, "disk_s": disk}
    finally:
        for process in reversed(processes):
            stop(process)
        stop_embedded(str(workdir / "redis"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20, help="image jobs with 4 MB of files each")
    run(parser.parse_args().jobs)


if __name__ == "__main__":
    main()
