"""The job record: podrelay's states (DESIGN.md, "Job states") and the stored job.

`queued` → `submitted` → `running` → `completed` | `failed` | `cancelled` | `timed_out`;
RunPod's own status is kept beside it. A job is a Redis hash (see `store.py`): strings,
with JSON for its structures.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import MISSING, dataclass, field
from dataclasses import fields as dataclass_fields
from enum import StrEnum

import orjson


class JobStatus(StrEnum):
    """A job's state in podrelay's words."""

    QUEUED = "queued"
    SUBMITTED = "submitted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def final(self) -> bool:
        """No further change: the job has its result or its error."""
        return self in FINAL


FINAL = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT}
UNFINISHED = (JobStatus.QUEUED, JobStatus.SUBMITTED, JobStatus.RUNNING)

_JSON_FIELDS = ("input", "result", "error", "policy", "callback", "shape", "progress")
_BOOL_FIELDS = ("direct", "relay_stream")
_FLOAT_FIELDS = ("created", "submitted", "started", "finished", "cost", "deadline")
_INT_FIELDS = ("submit_attempts", "polls")


@dataclass(frozen=True)
class Job:
    """A job as stored: the request's routing, its RunPod side, and its outcome."""

    id: str
    key_id: str
    surface: str
    model: str
    endpoint_id: str
    status: JobStatus
    created: float
    input: dict = field(default_factory=dict)
    runpod_id: str | None = None
    runpod_status: str | None = None
    submitted: float | None = None
    started: float | None = None
    finished: float | None = None
    result: dict | None = None
    error: dict | None = None
    webhook_url: str | None = None
    webhook_events: str | None = None  # the events `webhook_url` gets, comma-separated; None: all
    policy: dict | None = None
    callback: dict | None = None
    cost: float | None = None
    submit_attempts: int = 0
    polls: int = 0
    request_id: str | None = None
    worker: str | None = None  # the RunPod worker behind its endpoint (integration/adapters/); None: custom
    direct: bool = False  # created by a RunPod direct route: its input is RunPod's own
    shape: dict | None = None  # how the client asked for the result (e.g. encoding_format)
    relay_stream: bool = False  # a client asked for a direct job's stream: podrelay reads it into the log
    priority: str | None = None  # high | normal | low, among the key's own waiting jobs; None: normal
    deadline: float | None = None  # cancelled (`deadline_exceeded`) if not finished by then; never submitted after it
    progress: object = None  # the worker's last progress report (runpod-python's progress_update), while it runs

    @property
    def streaming(self) -> bool:
        """A job whose output is relayed piece by piece from RunPod's /stream: a streamed chat,
        or a direct job whose input asks to stream or whose stream a client has asked for."""
        if self.direct:
            return self.relay_stream or _wants_stream(self.input)
        return self.surface == "chat" and _wants_stream(self.input)

    def asked_for(self, event_type: str) -> bool:
        """Whether the request named this event in `webhook_events`."""
        return bool(self.webhook_events) and event_type in self.webhook_events.split(",")

    def to_redis(self) -> dict:
        """The hash fields: JSON for structures, nothing for None (or for a flag that is off)."""
        out = {}
        for name, value in self.__dict__.items():
            if value is None:
                continue
            kind = _KINDS.get(name)
            if kind is None:
                out[name] = value
            elif kind is _JSON:
                out[name] = compact(value).decode()
            elif kind is _FLAG:
                if value:
                    out[name] = "1"
            else:  # the status
                out[name] = value.value
        return out

    @classmethod
    def queued(cls, key_id: str, surface: str, model: str, endpoint_id: str, job_input: dict, **fields) -> Job:
        """A new job, queued now under a fresh id (every way in makes its jobs here).

        Built as the dataclass's own `__init__` builds it, with its fields set in one step: that
        `__init__` sets a frozen dataclass's 30 fields one `object.__setattr__` at a time, a
        tenth of the accept route's own Python time (`python bench/pipeline.py`)."""
        unknown = fields.keys() - _SETTABLE
        if unknown:
            raise TypeError(f"Job.queued() got unexpected fields: {', '.join(sorted(unknown))}")
        job = object.__new__(cls)
        values = job.__dict__
        values.update(_TEMPLATE)
        values.update(fields)
        values.update(
            id=fields.get("id") or new_id(), key_id=key_id, surface=surface, model=model, endpoint_id=endpoint_id,
            status=JobStatus.QUEUED, created=fields.get("created") or time.time(), input=job_input,
        )  # fmt: skip
        return job

    @classmethod
    def from_redis(cls, data: dict[bytes, bytes]) -> Job:
        """The job from its hash, as `HGETALL` answers it."""
        values = {k.decode(): v.decode() for k, v in data.items()}
        kwargs: dict = {}
        for name in cls.__dataclass_fields__:
            raw = values.get(name)
            if raw is None or raw == "":
                continue
            if name in _JSON_FIELDS:
                kwargs[name] = json.loads(raw)
            elif name in _FLOAT_FIELDS:
                kwargs[name] = float(raw)
            elif name in _INT_FIELDS:
                kwargs[name] = int(raw)
            elif name == "status":
                kwargs[name] = JobStatus(raw)
            elif name in _BOOL_FIELDS:
                kwargs[name] = raw in ("1", "True")
            else:
                kwargs[name] = raw
        return cls(**kwargs)

    def to_api(self) -> dict:
        """The job object of `GET /v1/jobs/{id}`."""
        return {
            "id": self.id,
            "object": "job",
            "status": self.status.value,
            "surface": self.surface,
            "model": self.model,
            "endpoint_id": self.endpoint_id,
            "runpod": {"id": self.runpod_id, "status": self.runpod_status},
            "created": int(self.created),
            "started": int(self.started) if self.started else None,
            "finished": int(self.finished) if self.finished else None,
            "result": self.result,
            "error": self.error,
            "cost": self.cost,
            "progress": self.progress,
        }


_JSON, _FLAG, _STATUS = "json", "flag", "status"
_KINDS = {**dict.fromkeys(_JSON_FIELDS, _JSON), **dict.fromkeys(_BOOL_FIELDS, _FLAG), "status": _STATUS}
# Every field in the order the dataclass declares them, with its default (None where it has
# none): `Job.queued` starts from these, so its jobs' fields stay in that order.
_TEMPLATE = {f.name: None if f.default is MISSING else f.default for f in dataclass_fields(Job)}
_SETTABLE = frozenset(_TEMPLATE) - {"key_id", "surface", "model", "endpoint_id", "status", "input"}


def compact(value) -> bytes:
    """`value` as compact JSON in UTF-8: orjson, or the standard library for what orjson refuses
    (an integer past 64 bits, a non-string key)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def new_id() -> str:
    """A fresh job id (an upload is stored under it before the job is): a version-4 UUID from the
    process's random generator, not the OS's (an id names a job and grants nothing: another key's
    job is a 404, and callback and download URLs are signed)."""
    return _uuid4_text(random.getrandbits(128))


_NOT_VERSION_BITS = ~((0xF000 << 64) | (0xC000 << 48))
_V4_BITS = (0x4000 << 64) | (0x8000 << 48)


def _uuid4_text(bits: int) -> str:
    """`str(uuid.UUID(int=bits, version=4))`, formatted directly (`uuid.UUID` checks and builds
    more than the accept path needs; tests compare the two)."""
    h = f"{(bits & _NOT_VERSION_BITS) | _V4_BITS:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _wants_stream(job_input: dict) -> bool:
    """Whether a worker input asks for streamed output (worker-vllm's OpenAI route, or the legacy shorthand)."""
    openai_input = job_input.get("openai_input")
    if isinstance(openai_input, dict):
        return bool(openai_input.get("stream"))
    return bool(job_input.get("stream"))
