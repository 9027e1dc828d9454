"""podrelay: `create_app()`, `app` for gunicorn, and the CLI (`flask --app app ...`)."""

from __future__ import annotations

import os
import sys

import click
from flask import Flask

from integration import adapters, logs, resources
from integration.accounts.cli import keys_group
from integration.config import SettingError, Settings
from integration.resources import Resources


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web app from `settings` (default: the environment)."""
    settings = settings or Settings.from_env()
    adapters.check(settings)  # an unknown worker name is a start-up error, not a failed job later
    from integration import api
    from integration.api.flask_app import App
    from integration.api.json_codec import OrjsonProvider

    app = App(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = OrjsonProvider(app)
    app.extensions[resources.EXTENSION] = Resources(settings)

    api.init_app(app)
    _register_cli(app)
    return app


def _register_cli(app: Flask) -> None:
    app.cli.add_command(keys_group(lambda: resources.of(app)))

    @app.cli.command("worker")
    def worker() -> None:
        """Run one worker process: RQ tasks plus the tracker (polls, callbacks, sweeps)."""
        from workers.runner import run_worker

        try:
            resources.of(app).settings.require_secret()
        except SettingError as error:
            raise click.ClickException(str(error)) from None
        run_worker(resources.of(app))

    @app.cli.command("start")
    @click.option("--demo", is_flag=True, help="Also start the bundled RunPod emulator and route every surface to it.")
    @click.option("--workers", "worker_count", default=1, show_default=True, help="Worker processes.")
    def start(demo: bool, worker_count: int) -> None:
        """Start the Procfile's processes (web, worker) and, without REDIS_URL, the embedded Redis."""
        from workers.launcher import launch

        try:
            code = launch(resources.of(app).settings, demo=demo, workers=worker_count)
        except SettingError as error:
            raise click.ClickException(str(error)) from None
        raise SystemExit(code)

    @app.cli.command("emulator")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8010, show_default=True)
    @click.option("--queue-time", default=0.05, show_default=True, help="Seconds a job waits IN_QUEUE.")
    @click.option("--run-time", default=0.2, show_default=True, help="Seconds a job runs IN_PROGRESS.")
    @click.option("--worker", "workers", multiple=True, help="ENDPOINT=WORKER[@VERSION]: the stock worker an endpoint runs.")
    def emulator(host: str, port: int, queue_time: float, run_time: float, workers: tuple[str, ...]) -> None:
        """Serve the RunPod emulator (RunPod's serverless API, for local runs and tests)."""
        from emulator.server import serve
        from emulator.state import Emulator

        mapping = dict(item.split("=", 1) for item in workers if "=" in item)
        serve(host, port, Emulator(queue_time=queue_time, run_time=run_time, workers=mapping))

    @app.cli.command("mcp")
    @click.option(
        "--url", default="http://127.0.0.1:5000", show_default=True, envvar="PODRELAY_URL", help="The podrelay to call."
    )
    @click.option("--key", envvar="PODRELAY_API_KEY", required=True, help="The API key its tools use (or PODRELAY_API_KEY).")
    @click.option("--wait", default=60.0, show_default=True, help="Seconds a surface tool waits before answering the job id.")
    def mcp(url: str, key: str, wait: float) -> None:
        """Serve MCP on standard input and output (for desktop clients), calling a running podrelay."""
        import anyio

        from integration.mcp.server import run_stdio

        anyio.run(run_stdio, url, key, wait)

    @app.cli.command("n8n-spec")
    @click.option("--check", is_flag=True, help="Fail if the committed spec differs from the registry's.")
    def n8n_spec(check: bool) -> None:
        """Write n8n-node-spec/spec.json from the surface registry (the n8n node's source)."""
        from integration.surfaces.n8n_spec import SPEC_PATH, render

        spec = render()
        if check:
            if not SPEC_PATH.exists() or SPEC_PATH.read_text() != spec:
                raise click.ClickException(f"{SPEC_PATH} is out of date: run flask --app app n8n-spec")
            click.echo("n8n spec is up to date")
            return
        SPEC_PATH.write_text(spec)
        click.echo(f"wrote {SPEC_PATH}")


try:
    app = create_app()
except SettingError as error:  # a bad variable: one line naming it, not a traceback
    sys.exit(f"podrelay: {error}")


def __getattr__(name: str):
    """`app:web`, what the Procfile serves: the app, once its settings can sign (SECRET_KEY)."""
    if name != "web":
        raise AttributeError(name)
    try:
        resources.of(app).settings.require_secret()
    except SettingError as error:
        sys.exit(f"podrelay: {error}")
    return app


_settings = resources.of(app).settings
logs.configure(
    _settings.log_level,
    # The bucket's secret is boto3's to read (FILES_URL), but no line may show it either.
    (_settings.runpod_api_key, _settings.secret_key, _settings.metrics_token, os.environ.get("AWS_SECRET_ACCESS_KEY", "")),
    _settings.log_format or ("text" if _settings.environment == "development" else "json"),
)
