"""A Redis over TLS with a self-signed certificate, as Heroku's is: the Procfile's processes and
the keys CLI work on it, and a certificate that cannot be verified is named as such."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.harness import free_port
from tests.support import DEBIAN_REDIS, ROOT, Stack, make_settings, pings, settings_env, stop_process, wait_until

pytestmark = pytest.mark.stack


@pytest.fixture
def tls_redis(tmp_path):
    """(rediss:// URL, the self-signed certificate): a TLS-only Redis of the test's own."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [DEBIAN_REDIS, "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
         "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=open(tmp_path / "redis.log", "w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"rediss://localhost:{port}/0"
    try:
        wait_until(lambda: pings(url, ssl_cert_reqs="none"), message="the TLS Redis did not start")
        yield url, cert
    finally:
        stop_process(server)


def test_the_procfile_processes_and_the_cli_work_on_a_self_signed_tls_redis(tls_redis, emulator, tmp_path):
    url, _ = tls_redis
    settings = make_settings(url, emulator.base_url, public_base_url=None)
    stack = Stack(settings, emulator, tmp_path, procfile=True)
    try:
        stack.start_worker()
        job_id = stack.enqueue("/chat/completions", {"messages": [{"role": "user", "content": "over TLS"}]})["id"]
        assert stack.wait_final([job_id])[job_id]["status"] == "completed"
        wait_until(lambda: stack.http.get(f"{stack.base_url}/readyz", timeout=10).status_code == 200)
        cli = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "keys", "list"], cwd=ROOT, env=settings_env(settings),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert cli.returncode == 0 and "test" in cli.stdout, cli.stderr
    finally:
        stack.close()


def test_a_certificate_that_cannot_be_verified_is_named_as_such(tls_redis, emulator, tmp_path):
    url, cert = tls_redis
    settings = make_settings(url, emulator.base_url, redis_tls_verify=True)  # and no CA: it cannot verify
    env = settings_env(settings)
    cli = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "keys", "list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode != 0 and "REDIS_TLS_CA_FILE" in cli.stderr and "Traceback" not in cli.stderr, cli.stderr
    from app import create_app

    ready = create_app(settings).test_client().get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["redis"] == "tls_failed"
    verified = create_app(settings.with_changes(redis_tls_ca_file=str(cert))).test_client().get("/readyz")
    assert verified.get_json()["checks"]["redis"] == "ok"  # with its CA, the server is authenticated
    assert os.path.exists(cert)
