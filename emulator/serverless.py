"""What RunPod's worker SDK makes of a handler's answer, as `runpod/runpod-python`,
`runpod/serverless/modules/rp_job.py` does it, and what RunPod then reports.

- A plain handler (`run_job`): a dict answer has `error` (and `refresh_worker`) taken out;
  an `error` makes the job FAILED with that error; the rest is the output. Any other answer
  is the output. An exception makes the job FAILED with a JSON object: `error_type`,
  `error_message`, `error_traceback`, `hostname`, `worker_id`, `runpod_version`.
- A generator (`handle_job` with `run_job_generator`): each yielded value is a stream piece;
  a yielded dict with `error` ends the job FAILED with `str(error)` (a Python repr for a
  dict); with `return_aggregate_stream` the output is the list of every piece.
"""

from __future__ import annotations

import inspect
import json
import traceback
from dataclasses import dataclass, field


@dataclass
class Outcome:
    """A handler's run: COMPLETED with an output, or FAILED with an error; the stream pieces."""

    status: str
    output: object = None
    error: object = None
    pieces: list = field(default_factory=list)


def run(handler, job: dict, return_aggregate_stream: bool = False) -> Outcome:
    """Run `handler` on `job` (`{"id", "input"}`) as runpod-python would."""
    if inspect.isgeneratorfunction(handler):
        return _run_generator(handler, job, return_aggregate_stream)
    try:
        answer = handler(job)
    except Exception as err:  # noqa: BLE001 (as rp_job does)
        return Outcome("FAILED", error=_error_info(err))
    if isinstance(answer, dict):
        answer = dict(answer)
        error = answer.pop("error", None)
        answer.pop("refresh_worker", None)
        if error:
            return Outcome("FAILED", output=answer or None, error=error)
        return Outcome("COMPLETED", output=answer if answer != {} else None)
    return Outcome("COMPLETED", output=answer)


def _run_generator(handler, job: dict, aggregate: bool) -> Outcome:
    pieces: list = []
    try:
        for piece in handler(job):
            if isinstance(piece, dict) and piece.get("error"):
                return Outcome("FAILED", error=str(piece["error"]), pieces=pieces)
            pieces.append(piece)
    except Exception as err:  # noqa: BLE001
        return Outcome("FAILED", error=f"handler: {err} \ntraceback: {traceback.format_exc()}", pieces=pieces)
    return Outcome("COMPLETED", output=pieces if aggregate else [], pieces=pieces)


def _error_info(err: Exception) -> str:
    return json.dumps(
        {
            "error_type": str(type(err)),
            "error_message": str(err),
            "error_traceback": traceback.format_exc(),
            "hostname": "emulated-worker",
            "worker_id": "emulated-worker",
            "runpod_version": "1.12.0",
        }
    )
