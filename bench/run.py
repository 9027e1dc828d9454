"""Every benchmark in one command, then the figures beside podrelay's targets.

    python bench/run.py [--jobs 10000] [--quick]

Runs bench/pipeline.py (enqueue beside a trivial Flask route; `--jobs` jobs in flight
with callbacks on and off: time, RunPod calls per job, the busiest 10 s of `/status`,
Redis memory per job, peak RSS of each process) and bench/webhooks.py (deliveries per
second per worker process; completion-to-webhook delay at 200 completions per second),
and bench/files.py (Redis memory per finished job with 4 MB of file output; a 10 MB
download beside reading the file from disk), each starting the Procfile's processes, the
RunPod emulator and a loopback receiver.
The fault drills are apart: bench/drills.py. `--quick` runs everything smaller.
Nothing here asserts: it prints what it saw.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import files, pipeline, webhooks  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in flight at once")
    parser.add_argument("--quick", action="store_true", help="smaller runs (a few minutes)")
    args = parser.parse_args()
    jobs = 1000 if args.quick else args.jobs
    flow = pipeline.run(jobs=jobs, run_time=5.0, requests_per_route=1500 if args.quick else 4000)
    print()
    hooks = webhooks.run(
        SimpleNamespace(events=300 if args.quick else 1000, subscriptions=10, jobs=400 if args.quick else 2000, rate=200.0)
    )
    print()
    stored = files.run(jobs=10 if args.quick else 20)

    on, off = flow["callbacks_on"], flow["callbacks_off"]
    calls_on = (on["calls"].get("run", 0) + on["calls"].get("status", 0)) / jobs
    rows = [
        ("enqueue rate / trivial Flask route", f"{flow['enqueue']['ratio']:.2f}x", ">= 0.5x"),
        ("  trivial route + one Redis round trip / trivial route", f"{flow['enqueue']['redis_round_trip_ratio']:.2f}x", ""),
        (f"{jobs} jobs in flight, callbacks on: RunPod calls per job", f"{calls_on:.2f}", "<= 2"),
        (f"{jobs} jobs in flight, callbacks on: seconds to complete", f"{on['elapsed']:.0f}", ""),
        (f"{jobs} jobs in flight, callbacks off: busiest 10 s of /status", f"{off['max_status_per_10s']}", "<= 2000"),
        (f"{jobs} jobs in flight, callbacks off: seconds to complete", f"{off['elapsed']:.0f}", ""),
        ("completion -> webhook p50 / p99", f"{hooks['p50_ms']:.0f} / {hooks['p99_ms']:.0f} ms", "p99 < 250 ms"),
        ("  at completions per second", f"{hooks['completions_per_s']:.0f}", "200"),
        ("webhook deliveries per second, one worker process", f"{hooks['deliveries_per_s']:.0f}", ">= 500"),
        (
            "Redis per job in flight / per finished job",
            "{:.1f} / {:.1f} KiB".format(*(b / 1024 for b in off["redis_bytes_per_job"])),
            "",
        ),
        ("peak RSS, largest process", f"{max(off['rss_mb'].values()):.0f} MiB", ""),
        ("Redis per finished job with 4 MB of files, after its log's hour", f"{stored['after_hour'] / 1024:.1f} KiB", "< 4 KiB"),
        ("  in its first hour (with its event log)", f"{stored['keys_per_job'] / 1024:.1f} KiB", ""),
        ("10 MB download / reading the stored file", f"{stored['download_s'] / stored['disk_s']:.1f}x", ""),
    ]
    print(f"\n{'figure':<62}{'measured':>20}  target")
    for name, value, target in rows:
        print(f"{name:<62}{value:>20}  {target}")


if __name__ == "__main__":
    main()
