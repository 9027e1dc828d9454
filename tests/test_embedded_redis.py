"""The embedded Redis (REDIS_URL unset) is stopped by whatever started it: after `honcho start`
(what `heroku local` runs), after a CLI command run while it was down, and after its only
user was killed before it could release it, no server and no janitor is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from bench.harness import free_port
from integration.redis.connection import embedded_url, is_running, stop_embedded
from tests.support import ROOT, stop_process, wait_until

pytestmark = pytest.mark.stack


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "RUNPOD_", "PODRELAY_"))}
    env.update(DATA_DIR=str(data_dir), SECRET_KEY="t" * 64, WEB_CONCURRENCY="1", PYTHONUNBUFFERED="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _processes(data_dir: Path, marker: str) -> list[int]:
    """The live processes whose command line holds `marker`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_text() and (proc / "stat").read_text().split()[2] != "Z":
                found.append(int(proc.name))
        except OSError:
            pass  # it ended while being read
    return found


def _servers(data_dir: Path) -> list[int]:
    """The live redis-server processes serving `data_dir` (redis-server names itself by its socket)."""
    return _processes(data_dir, str((data_dir / "redis.sock").resolve()))


def _janitors(data_dir: Path) -> list[int]:
    """The live janitors watching `data_dir` (integration/redis/janitor.py)."""
    return [
        pid
        for pid in _processes(data_dir, "integration.redis.janitor")
        if str(data_dir.resolve()) in Path(f"/proc/{pid}/cmdline").read_text()
    ]


def _none_left(data_dir: Path, after: str) -> None:
    wait_until(lambda: not _servers(data_dir), 30, f"the embedded redis-server outlived {after}")
    wait_until(lambda: not _janitors(data_dir), 30, f"the embedded redis's janitor outlived {after}")


def test_honcho_start_leaves_no_redis_server(tmp_path):
    data_dir = tmp_path / "var"
    port = free_port()
    env = {**_environment(data_dir), "PORT": str(port)}
    honcho = subprocess.Popen(
        [sys.executable, "-m", "honcho", "start", "-f", "Procfile"], cwd=ROOT, env=env,
        stdout=open(tmp_path / "honcho.log", "w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def ready() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, 90, "web and worker did not come up on the embedded Redis")
        assert _servers(data_dir), "no embedded redis-server was started"
        honcho.send_signal(signal.SIGTERM)
        honcho.wait(timeout=60)
        _none_left(data_dir, "honcho")
        assert not is_running(embedded_url(str(data_dir)))
    finally:
        stop_process(honcho)
        stop_embedded(str(data_dir))


def test_a_cli_command_run_while_redis_was_down_stops_it_again_and_keeps_the_data(tmp_path):
    data_dir = tmp_path / "var"
    env = _environment(data_dir)
    try:
        created = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "keys", "create", "ops"], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        assert (data_dir / "redis.conf").exists(), "the CLI did not start the embedded Redis"
        _none_left(data_dir, "the CLI command")
        listed = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "keys", "list"], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert listed.returncode == 0 and "ops" in listed.stdout, listed.stderr
        _none_left(data_dir, "the second command")
    finally:
        stop_embedded(str(data_dir))


def test_a_user_killed_before_it_released_the_server_does_not_leave_it_running(tmp_path):
    """A SIGKILL (or a SIGTERM while the worker boots, before it handles signals) runs no
    exit handler: the janitor stops the server once no user is alive."""
    data_dir = tmp_path / "var"
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=_environment(data_dir),
        stdout=open(tmp_path / "worker.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until(lambda: _servers(data_dir), 60, "the worker did not start the embedded Redis")
        wait_until(lambda: _janitors(data_dir), 30, "no janitor watches the embedded Redis")
        worker.kill()
        worker.wait(timeout=30)
        _none_left(data_dir, "its only user, killed")
        assert (data_dir / "podrelay.aof").exists(), "the server was not shut down with its data"
    finally:
        stop_process(worker)
        stop_embedded(str(data_dir))
