"""Process plumbing shared by the benchmarks: ports, the Procfile's commands, start/stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit(f"no {name} in Procfile")


def start(command: str, env: dict, log: Path) -> subprocess.Popen:
    """`command` in its own process group; `exec`, so the shell does not stand between
    `stop` and the process (a shell dies at SIGTERM at once, and waiting on it waited for nothing)."""
    return subprocess.Popen(
        f"exec {command}", shell=True, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group, as a platform stops a dyno; SIGKILL after 20 s, said aloud."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            print(f"   (process {process.pid} did not stop within 20 s of SIGTERM: killed)", flush=True)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def bench_env(redis_url: str, emulator_port: int | None = None, **extra: str) -> dict:
    """The environment of podrelay's processes in a benchmark: this Python's tools, quiet logs."""
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "RUNPOD_API_KEY": "bench",
        "RUNPOD_ENDPOINT_CHAT": "bench-chat",
        "RUNPOD_ENDPOINT_EMBEDDINGS": "bench-embeddings",
        # The emulator's `custom` worker on both: the benchmarks measure podrelay's pipeline, and
        # steer jobs through their input (`emulate`), which stock workers would refuse.
        "RUNPOD_WORKER_CHAT": "custom",
        "RUNPOD_WORKER_EMBEDDINGS": "custom",
        "SECRET_KEY": "bench-secret",
        "LOG_LEVEL": "WARNING",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    if emulator_port is not None:
        env["RUNPOD_API_BASE"] = f"http://127.0.0.1:{emulator_port}/v2"
    env.update(extra)
    return env


def create_key(env: dict, name: str = "bench") -> str:
    """A new API key without limits, made with the CLI as an operator would."""

    def flask(*args: str) -> str:
        command = [sys.executable, "-m", "flask", "--app", "app", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout

    lines = flask("keys", "create", name).strip().splitlines()
    key_id = lines[0].split()[2]  # "Created key key_... (bench). ..."
    flask("keys", "limits", key_id, "--rpm", "unlimited", "--concurrency", "unlimited", "--budget", "unlimited")
    return lines[-1]


def _processes(match):
    """(/proc entry, command line) of each live process whose pid `match` accepts."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and match(int(proc.name)):
            try:
                yield proc, (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                continue


def in_group(group: int):
    """A match for the processes of one process group (a started command)."""

    def match(pid: int) -> bool:
        try:
            return os.getpgid(pid) == group
        except ProcessLookupError:
            return False

    return match


def peak_rss_mb(group: int) -> dict[str, float]:
    """Peak resident memory (VmHWM, MiB) of each process in process group `group`, by command."""
    peaks: dict[str, float] = {}
    for proc, command in _processes(in_group(group)):
        try:
            status = (proc / "status").read_text()
        except OSError:
            continue
        peak = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0.0)
        if command and not command.startswith("/bin/sh"):
            name = " ".join(part.rsplit("/", 1)[-1] for part in command.split()[:4])
            peaks[f"{name} [{proc.name}]"] = round(peak, 1)
    return peaks


def cpu_seconds(match) -> float:
    """CPU time (user + system, seconds) used so far by every live process whose pid `match` accepts."""
    total = 0.0
    for proc, _command in _processes(match):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total
