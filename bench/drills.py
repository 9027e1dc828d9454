"""Fault drills: jobs run through the Procfile's processes while something breaks; then
each drill counts what was lost, which must be 0.

    python bench/drills.py [--jobs 1000] [--only kill,redis,runpod,receiver,web]

Every drill starts its own installation (embedded Redis with its append-only file, the
RunPod emulator, a webhook receiver, gunicorn `web`, two `worker` processes) and sends
chat jobs with a `webhook_url`. At the end:

- lost jobs: jobs the API accepted (a 202, or found in the key's job list) that are not
  `completed`;
- lost events: completed jobs whose `job.completed` webhook never reached the receiver.

Jobs are sent at about 100 per second; each breaks its part once half were sent.

Drills: `kill` SIGKILLs a random worker every 0.5-2 s while jobs run (and starts a new
one); `redis` stops Redis (SHUTDOWN, which syncs the append-only file) mid-run and starts
it again 3 s later; `runpod` makes the emulator answer 429/503 to a third of `/run` and
`/status` calls; `receiver` takes the receiver down for 10 s and brings it back; `web`
SIGKILLs gunicorn while requests wait with `Prefer: wait` and starts it again.
Nothing here asserts: it prints what it saw.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import bench_env, create_key, free_port, procfile_command, start, stop, wait_http  # noqa: E402
from integration.redis.connection import ensure_embedded, stop_embedded  # noqa: E402

CHAT = {"messages": [{"role": "user", "content": "drill"}]}
PY = shlex.quote(sys.executable)


class Installation:
    """podrelay's processes for one drill, each of which the drill may stop and start."""

    def __init__(self, name: str, **env: str):
        self.workdir = Path(tempfile.mkdtemp(prefix=f"podrelay-drill-{name}-"))
        self.redis_dir = str(self.workdir / "redis")
        redis_url = ensure_embedded(self.redis_dir)
        self.emulator_port, self.receiver_port, self.web_port = free_port(), free_port(), free_port()
        self.env = bench_env(
            redis_url,
            self.emulator_port,
            PORT=str(self.web_port),
            PUBLIC_BASE_URL=f"http://127.0.0.1:{self.web_port}",
            WEBHOOK_ALLOW_PRIVATE="1",
            WEBHOOK_RETRY_SCHEDULE="0,1,2,4,8,8,8,8,8,8,8,8",
            LEASE_SECONDS="5",
            RUNPOD_RETRY_BASE="0.5",
            WEB_CONCURRENCY="1",
            **env,
        )
        self.emulator = start(
            f"{PY} -m flask --app app emulator --port {self.emulator_port} --run-time 1", self.env, self.log("emulator")
        )
        self.receiver = self.start_receiver()
        self.web = self.start_web()
        self.workers = [self.start_worker() for _ in range(2)]
        self.base = f"http://127.0.0.1:{self.web_port}"
        wait_http(f"http://127.0.0.1:{self.emulator_port}/_emulator/stats")
        wait_http(f"{self.base}/healthz")
        self.key = create_key(self.env)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.key}"
        self.hook = f"http://127.0.0.1:{self.receiver_port}/hook"
        self.kills = 0

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}-{time.time_ns()}.log"

    def start_receiver(self):
        return start(
            f"{PY} bench/receiver.py {self.receiver_port} {self.workdir / 'arrivals.log'}", self.env, self.log("receiver")
        )

    def start_web(self):
        return start(procfile_command("web"), self.env, self.log("web"))

    def start_worker(self):
        return start(f"{PY} -m flask --app app worker", self.env, self.log("worker"))

    def enqueue(self, body: dict | None = None, **headers: str) -> str | None:
        """A job's id if the API accepted it (retrying while the API is unreachable or 503)."""
        for _ in range(60):
            try:
                answer = self.http.post(
                    f"{self.base}/v1/chat/completions",
                    json={**CHAT, "webhook_url": self.hook, **(body or {})},
                    headers=headers,
                    timeout=30,
                )
            except requests.RequestException:
                time.sleep(0.5)
                continue
            if answer.status_code in (200, 202):
                return answer.json()["id"]
            time.sleep(0.5)
        return None

    def listed_jobs(self) -> dict[str, str]:
        """Every job of the key: id -> status."""
        found, cursor = {}, None
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = self.http.get(f"{self.base}/v1/jobs", params=params, timeout=30).json()
            found.update({job["id"]: job["status"] for job in page["data"]})
            cursor = page.get("next_cursor")
            if not page.get("has_more"):
                return found

    def wait_completed(self, accepted: list[str], timeout: float) -> dict[str, str]:
        deadline = time.time() + timeout
        while True:
            statuses = self.listed_jobs()
            unfinished = [i for i in accepted if statuses.get(i) not in ("completed", "failed", "cancelled", "timed_out")]
            if not unfinished or time.time() > deadline:
                return statuses
            time.sleep(1)

    def events_received(self) -> set[str]:
        """Job ids whose job.completed event reached the receiver."""
        path = self.workdir / "arrivals.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return {parts[3] for parts in (line.split() for line in lines) if len(parts) == 4 and parts[2] == "job.completed"}

    def close(self) -> None:
        for process in [self.web, self.receiver, self.emulator, *self.workers]:
            stop(process)
        stop_embedded(self.redis_dir)


def run_jobs(inst: Installation, count: int, during=None, rate: float = 100.0) -> list[str]:
    """Send `count` jobs at about `rate` per second, with `during(inst, halfway)` breaking
    something once half of them were sent; the ids the API accepted."""
    halfway = threading.Event()
    breaker = threading.Thread(target=during, args=(inst, halfway), daemon=True) if during else None
    if breaker:
        breaker.start()
    started = time.time()

    def send(n: int) -> str | None:
        time.sleep(max(0.0, started + n / rate - time.time()))
        if n == count // 2:
            halfway.set()
        return inst.enqueue()

    with ThreadPoolExecutor(32) as pool:
        ids = [i for i in pool.map(send, range(count)) if i]
    halfway.set()
    if breaker:
        breaker.join()
    return ids


def tally(inst: Installation, accepted: list[str], timeout: float = 180) -> dict:
    statuses = inst.wait_completed(accepted, timeout)
    every = set(accepted) | set(statuses)  # a job stored while its client lost the answer counts too
    completed = {i for i in every if statuses.get(i) == "completed"}
    deadline = time.time() + 60
    while time.time() < deadline and not completed <= inst.events_received():
        time.sleep(1)
    note = f"{inst.kills} workers killed" if inst.kills else ""
    if len(every) > len(accepted):
        note = f"{len(every) - len(accepted)} stored but unanswered (the client retried)"
    return {
        "accepted": len(every),
        "lost_jobs": len(every - completed),
        "lost_events": len(completed - inst.events_received()),
        "note": note,
    }


# -- the drills ---------------------------------------------------------------------


def kill_workers(inst: Installation, halfway: threading.Event) -> None:
    """From the start until well after the last job was sent: a worker dies every 0.5-2 s."""
    until = None
    while until is None or time.time() < until:
        if until is None and halfway.is_set():
            until = time.time() + 10
        time.sleep(random.uniform(0.5, 2.0))
        victim = random.randrange(len(inst.workers))
        if inst.workers[victim].poll() is None:
            os.killpg(inst.workers[victim].pid, signal.SIGKILL)
            inst.kills += 1
        inst.workers[victim] = inst.start_worker()


def restart_redis(inst: Installation, halfway: threading.Event) -> None:
    halfway.wait()
    stop_embedded(inst.redis_dir)  # SHUTDOWN: the append-only file is synced first
    time.sleep(3)
    ensure_embedded(inst.redis_dir)


def receiver_outage(inst: Installation, halfway: threading.Event) -> None:
    halfway.wait()
    stop(inst.receiver)
    time.sleep(10)
    inst.receiver = inst.start_receiver()


def drill_web(inst: Installation, jobs: int) -> dict:
    """Requests held by `Prefer: wait` when gunicorn is SIGKILLed; the clients retry."""
    accepted: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        job_id = inst.enqueue({"emulate": {"delay": 3}}, Prefer="wait=20")
        if job_id:
            with lock:
                accepted.append(job_id)

    with ThreadPoolExecutor(min(jobs, 48)) as pool:
        futures = [pool.submit(client, n) for n in range(jobs)]
        time.sleep(2)
        os.killpg(inst.web.pid, signal.SIGKILL)
        time.sleep(1)
        inst.web = inst.start_web()
        for future in futures:
            future.result()
    return tally(inst, accepted)


def drill_runpod(inst: Installation, jobs: int) -> dict:
    requests.post(
        f"http://127.0.0.1:{inst.emulator_port}/_emulator/faults", json={"rates": {"run": 0.33, "status": 0.33}}, timeout=5
    )
    return tally(inst, run_jobs(inst, jobs))


DRILLS = {
    "kill": ("SIGKILL a random worker every 0.5-2 s", lambda inst, n: tally(inst, run_jobs(inst, n, kill_workers))),
    "redis": ("Redis stopped and restarted (AOF) mid-run", lambda inst, n: tally(inst, run_jobs(inst, n, restart_redis))),
    "runpod": ("RunPod answers 429/503 to a third of /run and /status", drill_runpod),
    "receiver": ("webhook receiver down 10 s, then back", lambda inst, n: tally(inst, run_jobs(inst, n, receiver_outage))),
    "web": ("web SIGKILLed during Prefer: wait, restarted", drill_web),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per drill (the web drill sends a fifth as many)")
    parser.add_argument("--only", default=",".join(DRILLS), help="comma-separated drills to run")
    args = parser.parse_args()
    print(f"{'drill':<10}{'what breaks':<56}{'accepted':>9}{'lost jobs':>11}{'lost events':>13}{'seconds':>9}  note")
    for name in args.only.split(","):
        text, drill = DRILLS[name]
        inst = Installation(name, CALLBACK_POLL_AFTER="10")
        started = time.time()
        try:
            result = drill(inst, args.jobs if name != "web" else max(10, args.jobs // 5))
        finally:
            inst.close()
        print(
            f"{name:<10}{text:<56}{result['accepted']:>9}{result['lost_jobs']:>11}{result['lost_events']:>13}"
            f"{time.time() - started:>9.0f}  {result['note']}",
            flush=True,
        )
        print(f"          logs: {inst.workdir}", flush=True)


if __name__ == "__main__":
    main()
