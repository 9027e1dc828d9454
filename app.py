"""podrelay: `create_app()`, `app` for gunicorn, and the CLI (`flask --app app ...`)."""

from __future__ import annotations

import os

import click
from flask import Flask

from integration import errors, logs, quotas
from integration.auth import create_key, find_key, list_keys, revoke_key, set_limits, stored_limits
from integration.config import Settings
from integration.resources import Resources


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app from `settings` (default: the environment)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["podrelay"] = Resources(settings)
    errors.init_app(app)

    from integration import api

    api.init_app(app)
    _register_cli(app)
    return app


def _register_cli(app: Flask) -> None:
    keys = click.Group("keys", help="Create, list and revoke API keys; set their limits; show their usage.")

    @keys.command("create")
    @click.argument("name")
    def keys_create(name: str) -> None:
        """Create an API key; the key itself is printed once, on the last line."""
        key, secret = create_key(app.extensions["podrelay"].redis, name)
        click.echo(f"Created key {key.id} ({name}). Store it now; it is not shown again:")
        click.echo(secret)

    @keys.command("list")
    def keys_list() -> None:
        """List keys (ids, names, prefixes; never the keys)."""
        resources = app.extensions["podrelay"]
        for key in list_keys(resources.redis):
            state = "revoked" if key.revoked else "active"
            limits = quotas.Limits.resolve(stored_limits(resources.redis, key.id), resources.settings)
            click.echo(f"{key.id}\t{key.name}\t{key.prefix}…\t{state}\t{_limits_text(limits)}")

    def _key(id_or_name: str):
        key = find_key(app.extensions["podrelay"].redis, id_or_name)
        if key is None:
            raise click.ClickException(f"no key {id_or_name}")
        return key

    @keys.command("limits")
    @click.argument("key_id")
    @click.option("--rpm", help="Requests per minute: a number, 'unlimited' or 'default'.")
    @click.option("--concurrency", help="Jobs in flight at once: a number, 'unlimited' or 'default'.")
    @click.option("--budget", help="Monthly budget in USD: a number, 'unlimited' or 'default'.")
    def keys_limits(key_id: str, rpm: str | None, concurrency: str | None, budget: str | None) -> None:
        """Show a key's limits, or change them (they apply within 5 seconds)."""
        resources = app.extensions["podrelay"]
        key = _key(key_id)
        try:
            set_limits(resources.redis, key.id, rpm=rpm, concurrency=concurrency, budget=budget)
        except ValueError as error:
            raise click.ClickException(f"invalid limit: {error}") from None
        limits = quotas.Limits.resolve(stored_limits(resources.redis, key.id), resources.settings)
        click.echo(f"{key.id}\t{key.name}\t{_limits_text(limits)}")

    @keys.command("usage")
    @click.argument("key_id")
    @click.option("--month", "period", help="The month, YYYY-MM (default: this one, UTC).")
    def keys_usage(key_id: str, period: str | None) -> None:
        """Show a key's spend this month, the cost its jobs in flight reserve, and its limits."""
        resources = app.extensions["podrelay"]
        key = _key(key_id)
        used = quotas.usage(resources.redis, key.id, period).to_dict()
        limits = quotas.Limits.resolve(stored_limits(resources.redis, key.id), resources.settings)
        click.echo(f"key              {key.id} ({key.name})")
        click.echo(f"period           {used['period']}")
        click.echo(f"spend            {used['spend']:.6f} USD over {used['completed_jobs']} completed jobs")
        click.echo(f"jobs in flight   {used['jobs_in_flight']} (reserving {used['reserved']:.6f} USD)")
        click.echo(f"limits           {_limits_text(limits)}")

    @keys.command("revoke")
    @click.argument("key_id")
    def keys_revoke(key_id: str) -> None:
        """Revoke a key by id or name."""
        if not revoke_key(app.extensions["podrelay"].redis, key_id):
            raise click.ClickException(f"no key {key_id}")
        click.echo(f"revoked {key_id}")

    @app.cli.command("worker")
    def worker() -> None:
        """Run one worker process: RQ tasks plus the tracker (polls, callbacks, sweeps)."""
        from workers.runner import run_worker

        run_worker(app.extensions["podrelay"])

    @app.cli.command("start")
    @click.option("--demo", is_flag=True, help="Also start the bundled RunPod emulator and route every surface to it.")
    @click.option("--workers", "worker_count", default=1, show_default=True, help="Worker processes.")
    def start(demo: bool, worker_count: int) -> None:
        """Start the Procfile's processes (web, worker) and, without REDIS_URL, the embedded Redis."""
        from workers.launcher import launch

        raise SystemExit(launch(app.extensions["podrelay"].settings, demo=demo, workers=worker_count))

    @app.cli.command("emulator")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8010, show_default=True)
    @click.option("--queue-time", default=0.05, show_default=True, help="Seconds a job waits IN_QUEUE.")
    @click.option("--run-time", default=0.2, show_default=True, help="Seconds a job runs IN_PROGRESS.")
    def emulator(host: str, port: int, queue_time: float, run_time: float) -> None:
        """Serve the RunPod emulator (RunPod's serverless API, for local runs and tests)."""
        from emulator.server import serve
        from emulator.state import Emulator

        serve(host, port, Emulator(queue_time=queue_time, run_time=run_time))

    @app.cli.command("n8n-spec")
    @click.option("--check", is_flag=True, help="Fail if the committed spec differs from the registry's.")
    def n8n_spec(check: bool) -> None:
        """Write n8n-node-spec/spec.json from the surface registry (the n8n node's source)."""
        from integration.n8n_spec import SPEC_PATH, render

        spec = render()
        if check:
            if not SPEC_PATH.exists() or SPEC_PATH.read_text() != spec:
                raise click.ClickException(f"{SPEC_PATH} is out of date: run flask --app app n8n-spec")
            click.echo("n8n spec is up to date")
            return
        SPEC_PATH.write_text(spec)
        click.echo(f"wrote {SPEC_PATH}")

    app.cli.add_command(keys)


def _limits_text(limits: quotas.Limits) -> str:
    def show(value, unit: str) -> str:
        return f"{'unlimited' if value is None else f'{value:g}'} {unit}"

    return ", ".join(
        [
            show(limits.requests_per_minute, "requests/minute"),
            show(limits.jobs_in_flight, "jobs in flight"),
            "no monthly budget" if limits.monthly_budget is None else f"{limits.monthly_budget:g} USD/month",
        ]
    )


app = create_app()
_settings = app.extensions["podrelay"].settings
logs.configure(
    os.environ.get("LOG_LEVEL", "INFO"),
    (_settings.runpod_api_key, _settings.secret_key, _settings.metrics_token),
    os.environ.get("LOG_FORMAT") or ("text" if _settings.environment == "development" else "json"),
)
