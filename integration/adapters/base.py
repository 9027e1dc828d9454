"""What every worker adapter shares: the worker's input keys and their checks, the extras
policy, and reading a worker's own errors.

The checks follow `runpod/runpod-python`, `runpod/serverless/utils/rp_validator.py`, which
the stock workers run on their input: a key the schema does not list is refused
("Unexpected input. X is not a valid input option."), each value must be of its type (an
int is taken for a float), and a constraint is a predicate. podrelay runs the same checks
before a job is sent, so a request the worker would refuse gets a 400 naming the field
instead of failing on a GPU.

Errors come back two ways (`runpod/serverless/modules/rp_job.py`): a handler that returns
or yields `{"error": ...}` ends the job FAILED with that error (a generator's error object
becomes `str(dict)`: a Python repr), and an uncaught exception ends it FAILED with a JSON
object (`error_type`, `error_message`, `error_traceback`). Some workers answer an error
object as a COMPLETED output instead (worker-infinity-embedding's `{"object": "error"}`).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from integration.errors import ApiError
from integration.surfaces.fields import OWN_FIELDS
from integration.surfaces.outputs import OutputError

MESSAGE_MAX = 2000


class WorkerError(OutputError):
    """The worker reported an error of its own: the job fails with `worker_error` and this message."""


@dataclass(frozen=True)
class Param:
    """One input key a worker reads: its type and, as the worker's schema has them, a constraint."""

    kind: type | tuple[type, ...]
    check: Callable[[Any], bool] | None = None
    rule: str = ""  # what the constraint requires, in words

    def problem(self, value) -> str | None:
        """Why `value` would be refused (rp_validator's checks), or None."""
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if float in kinds:
            kinds = (*kinds, int)  # rp_validator turns an int into a float
        if isinstance(value, bool) and bool not in kinds:
            return f"Must be of type {'/'.join(k.__name__ for k in kinds)}."
        if not isinstance(value, kinds):
            return f"Must be of type {'/'.join(k.__name__ for k in kinds)}."
        if self.check is not None and not self.check(value):
            return f"Must be {self.rule}." if self.rule else "Does not meet the worker's constraints."
        return None


@dataclass(frozen=True)
class Extras:
    """How a worker takes the request fields podrelay does not consume itself."""

    worker: str
    params: dict[str, Param]  # every input key the worker reads
    strict: bool  # the worker refuses keys its schema does not list (rp_validator)
    derived: frozenset[str] = frozenset()  # keys podrelay sets from the request (priced ones among them)

    def take(self, request: dict, consumed: set[str]) -> dict:
        """The extras that go to the worker; a 400 naming the field for one it would refuse.

        A field the worker does not read is refused when the worker refuses unknown keys,
        and left out otherwise; a field podrelay derives is never overwritten."""
        out = {}
        for name, value in request.items():
            if name in consumed or name in OWN_FIELDS:
                continue
            if name in self.derived:
                raise unsupported(name, f"'{name}' is set by podrelay from the request's own fields for {self.worker}")
            param = self.params.get(name)
            if param is None:
                if self.strict:
                    accepted = ", ".join(sorted(set(self.params) - self.derived)) or "none"
                    raise unsupported(name, f"{self.worker} does not accept '{name}' (extra fields it accepts: {accepted})")
                continue
            problem = param.problem(value)
            if problem:
                raise ApiError(400, "validation_error", f"Invalid value for '{name}': {problem}", param=name)
            out[name] = value
        return out


def unsupported(param: str, message: str) -> ApiError:
    """A 400 for a field the chosen worker cannot honour."""
    return ApiError(400, "unsupported_by_worker", message, param=param)


def check(worker: str, param: str, value, rule: Param) -> None:
    """Refuse, naming the request's `param`, a value the worker's schema would refuse."""
    problem = rule.problem(value)
    if problem:
        raise unsupported(param, f"Invalid value for '{param}' with {worker}: {problem}")


def message_of(error) -> str:
    """The worker's message in an error of any shape RunPod hands back (str, JSON, a Python repr, list, dict)."""
    if error is None or error == "":
        return ""
    if isinstance(error, dict):
        for key in ("error_message", "message", "error", "detail", "details"):
            if error.get(key):
                return message_of(error[key])
        return _cap(json.dumps(error, default=str))
    if isinstance(error, list):
        return _cap("; ".join(message_of(item) for item in error if item not in (None, "")))
    text = str(error).strip()
    if text[:1] in "{[":
        for read in (json.loads, ast.literal_eval):  # JSON from RunPod, or str(dict) from rp_job
            try:
                value = read(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, (dict, list)):
                return message_of(value)
    return _cap(text)


def _cap(text: str) -> str:
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"


def output_error(output) -> str | None:
    """The message of an error object a worker answered as its output, or None."""
    if isinstance(output, list) and len(output) == 1:
        output = output[0]
    if not isinstance(output, dict):
        return None
    if output.get("object") == "error" or (output.get("error") and len(output) <= 4):
        return message_of(output.get("message") or output.get("error") or output) or "The worker reported an error"
    if output.get("errors") and not output.get("images"):  # rp_validator's list, returned as output
        return message_of(output["errors"])
    return None


def is_url(value) -> bool:
    """An http(s) URL (a worker's upload), as opposed to a local path or base64."""
    return isinstance(value, str) and value.startswith(("https://", "http://"))
