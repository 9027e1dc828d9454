"""The accept route's cost in CPU instructions, counted by valgrind: a figure that a shared
host's noise does not move (wrk's rates and CPU per answer on it vary by a tenth from one run
to the next, more than the changes they were to tell apart).

    python bench/instructions.py [--requests 1600]

`POST /v1/chat/completions` runs in one process, as a gevent web worker runs it (16 callers
at once, group commit, a real Redis), for one key, for 256 keys, and for 256 keys under the
default rate limit (600 a minute). Each case runs twice under `valgrind --tool=cachegrind`,
with a warm-up and then with `--requests` more: the difference over `--requests` is the
instructions per request, start-up and warm-up left out. What it leaves out: gunicorn's own
reading and writing of the request, and Redis's work (another process). Under valgrind the
process runs tens of times slower, so the key cache is kept for the whole run: a real run
looks a key up again every 5 s, which here would come every few requests. Group commit's
batches follow timing, so run it on an otherwise idle machine (beside CI's tests, the
rate-limited case counted 1.106 times the other, where idle it counts 1.06). Needs
`valgrind`. Nothing here asserts: it prints what it saw.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    from gevent import monkey

    monkey.patch_all()

import argparse  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import bench_env  # noqa: E402
from bench.pipeline import CHAT  # noqa: E402

CASES = (  # (name, keys, rate limit per minute)
    ("one key, no rate limit", 1, "0"),
    ("256 keys, no rate limit", 256, "0"),
    ("256 keys, rate limit on (600/min/key)", 256, "600"),
)
CALLERS = 16  # wrk's connections in bench/pipeline.py
WARM_UP = 512  # every key seen first (its lookup, and the first call of each code path)


def child(requests: int) -> None:
    """Serve `WARM_UP` + `requests` accept requests in this process (run under valgrind)."""
    import gevent
    import redis

    from app import create_app
    from bench.pipeline import limited_keys
    from integration.accounts import keys as key_cache

    conn = redis.Redis.from_url(os.environ["REDIS_URL"])
    conn.flushdb()
    app = create_app()
    key_cache.CACHE_SECONDS = 1e9  # see the module's docstring
    rpm = "default" if os.environ["RATE_LIMIT_PER_MINUTE"] != "0" else "unlimited"
    secrets = limited_keys(conn, int(os.environ["BENCH_KEYS"]), rpm)

    def call(secret: str) -> None:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/v1/chat/completions",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(CHAT),
            "wsgi.errors": sys.stderr,
            "CONTENT_LENGTH": str(len(CHAT)),
            "CONTENT_TYPE": "application/json",
            "HTTP_AUTHORIZATION": f"Bearer {secret}",
        }
        statuses = []
        b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
        if not statuses[0].startswith("202"):
            raise SystemExit(f"answered {statuses[0]}, not 202")

    def run(total: int) -> None:
        def caller(number: int) -> None:
            for turn in range(total // CALLERS):
                call(secrets[(turn * CALLERS + number) % len(secrets)])

        gevent.joinall([gevent.spawn(caller, number) for number in range(CALLERS)], raise_error=True)

    run(WARM_UP)
    run(requests)


def instructions(env: dict, requests: int) -> int:
    """The instructions valgrind counted in a child that served `requests` after its warm-up."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--child", str(requests)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode or not found:
        raise SystemExit(f"valgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        return child(int(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1600)
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("needs valgrind (apt-get install valgrind)")
    from integration.redis.connection import ensure_embedded, stop_embedded

    workdir = tempfile.mkdtemp(prefix="podrelay-instructions-")
    redis_url = ensure_embedded(str(Path(workdir) / "redis"))
    try:
        print(f"instructions per accepted request (valgrind), {args.requests} requests, {CALLERS} callers in one process")
        counted = {}
        for name, keys, rpm in CASES:
            env = bench_env(redis_url, BENCH_KEYS=str(keys), RATE_LIMIT_PER_MINUTE=rpm)
            short, long = (instructions(env, n) for n in (0, args.requests))
            counted[name] = (long - short) / args.requests
            print(f"   {name:<40}{counted[name] / 1000:>10.1f}k", flush=True)
        on, off = counted[CASES[2][0]], counted[CASES[1][0]]
        print(f"   rate limit on / off over the same keys: {on / off:.3f}")
    finally:
        stop_embedded(str(Path(workdir) / "redis"))
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
