"""`flask --app app start`: the Procfile's processes on one machine, Heroku-style.

Without `REDIS_URL` it starts the embedded Redis first (and stops it at the end). With
`--demo` it also runs the bundled RunPod emulator and routes every surface to it, so a
new user sees jobs complete without a RunPod account.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from honcho.environ import parse_procfile
from honcho.manager import Manager

from integration import surfaces
from integration.config import Settings
from integration.redis.connection import release_embedded, use_embedded

ROOT = Path(__file__).resolve().parent.parent
DEMO_EMULATOR_PORT = 8010


def demo_environment(web_port: int, emulator_port: int) -> dict[str, str]:
    """Settings that route every surface to the emulator, with callbacks on."""
    env = {
        "RUNPOD_API_BASE": f"http://127.0.0.1:{emulator_port}/v2",
        "RUNPOD_API_KEY": "emulator-key",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
    }
    for name in surfaces.SURFACES:
        env[f"RUNPOD_ENDPOINT_{name.upper()}"] = f"emulated-{name}"
    return env


def machine_secret(data_dir: str) -> str:
    """A random secret kept in DATA_DIR (readable by its owner only), made on first use."""
    path = Path(data_dir).resolve() / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip()


def launch(settings: Settings, demo: bool = False, workers: int = 1) -> int:
    """Run web, worker(s) (and the emulator) until interrupted; returns the exit code."""
    env = dict(os.environ)
    # The Procfile's commands (gunicorn, flask) come from this interpreter's environment,
    # activated or not.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("PORT", "5000")
    env["PYTHONUNBUFFERED"] = "1"
    if demo:  # a local demo: text logs, local webhook targets, and a secret of this machine's own
        env.setdefault("PODRELAY_ENV", "development")
        env.setdefault("WEBHOOK_ALLOW_PRIVATE", "1")
        env.setdefault("SECRET_KEY", machine_secret(settings.data_dir))
        print("demo: PODRELAY_ENV=development, WEBHOOK_ALLOW_PRIVATE=1 (local webhook targets)", file=sys.stderr)
    elif not settings.secret_key:
        settings.require_secret()  # SettingError: one line, before anything starts
    embedded = not settings.redis_address
    if embedded:  # the processes are given its URL; this one counts as their user
        env["REDIS_URL"] = use_embedded(settings.data_dir)
        print(f"embedded redis: {env['REDIS_URL']}", file=sys.stderr)
    procfile = parse_procfile((ROOT / "Procfile").read_text())
    manager = Manager()
    if demo:
        emulator_port = int(env.get("EMULATOR_PORT", DEMO_EMULATOR_PORT))
        env.update(demo_environment(int(env["PORT"]), emulator_port))
        # Each endpoint runs the stock worker podrelay assumes for its surface.
        mapping = " ".join(f"--worker emulated-{s.name}={s.worker}" for s in surfaces.SURFACES.values())
        command = f"{sys.executable} -m flask --app app emulator --port {emulator_port} {mapping}"
        manager.add_process("emulator", command, env=env, cwd=str(ROOT))
    for name, command in procfile.processes.items():
        for index in range(workers if name == "worker" else 1):
            manager.add_process(f"{name}.{index + 1}", command, env=env, cwd=str(ROOT))
    try:
        manager.loop()
    finally:
        if embedded:
            release_embedded(settings.data_dir)
    return manager.returncode or 0
