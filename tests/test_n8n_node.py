"""The n8n nodes' execute and webhook methods against a live podrelay (n8n-node-spec/test/e2e.test.js).

scripts/test builds the package before running pytest; without a build this is skipped.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_PACKAGE = Path(__file__).resolve().parent.parent / "n8n-node-spec"


@pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_PACKAGE / "dist").exists(),
    reason="the n8n package is not built (scripts/test builds it)",
)
def test_n8n_nodes_run_chat_and_image_jobs_and_the_trigger(make_stack, emulator):
    stack = make_stack()
    env = {**os.environ, "PODRELAY_BASE_URL": stack.base_url, "PODRELAY_API_KEY": stack.key}
    result = subprocess.run(
        ["node", "--test", "test/e2e.test.js"], cwd=NODE_PACKAGE, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert re.search(r"^# pass 7$", result.stdout, re.M), result.stdout[-2000:]
    sent = b"\x89PNG\r\n\x1a\nn8n-binary-input"  # the upscale test's input binary, as the worker got it
    upscales = [j.input for j in emulator.jobs.values() if j.endpoint_id == stack.settings.endpoints["UPSCALE"]]
    assert {"image": "data:image/png;base64," + base64.b64encode(sent).decode()}.items() <= upscales[-1].items()
    assert re.search(r"^# skipped 0$", result.stdout, re.M)
