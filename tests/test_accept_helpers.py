"""The accept path's small helpers, each the same answer as the standard library's slower one."""

from __future__ import annotations

import dataclasses
import random
import time
import uuid

import pytest

from integration.accounts.limits import month
from integration.config import Settings
from integration.jobs.record import _BOOL_FIELDS, _JSON_FIELDS, Job, JobStatus, _uuid4_text, compact, new_id
from integration.surfaces.registry import aliases


def test_job_ids_are_the_version_4_uuids_the_uuid_module_makes_of_the_same_bits():
    chosen = [0, (1 << 128) - 1, 1 << 76, 0xC000 << 48]
    for bits in chosen + [random.getrandbits(128) for _ in range(20_000)]:
        assert _uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))
    made = uuid.UUID(new_id())
    assert made.version == 4 and made.variant == uuid.RFC_4122


def test_month_is_the_utc_calendar_month_at_and_around_its_bounds():
    new_year = 1767225600.0  # 2026-01-01T00:00:00Z
    leap_day_end = 951868800.0  # 2000-03-01T00:00:00Z
    moments = [0.0, new_year - 1e-3, new_year, new_year + 1, leap_day_end - 1e-3, leap_day_end]
    moments += [random.uniform(0, 4e9) for _ in range(20_000)]
    for at in moments + moments[::-1]:  # and asked again in the other order, past each kept month
        assert month(at) == time.strftime("%Y-%m", time.gmtime(at)), at
    assert month() == time.strftime("%Y-%m", time.gmtime())


def test_aliases_follow_each_settings_object_and_cannot_be_changed_by_a_caller():
    plain = Settings.from_env({"SECRET_KEY": "x" * 40})
    aliased = plain.with_changes(model_aliases={"chat": {"gpt-4o": "Other_Model"}})
    assert aliases(plain, "chat")["gpt-4o"] == "Llama3_8B_Instruct"
    assert aliases(aliased, "chat")["gpt-4o"] == "Other_Model"  # MODEL_ALIASES wins
    assert aliases(plain, "chat") is aliases(plain, "chat")  # built once
    assert aliases(None, "chat")["gpt-4o-mini"] == "Llama3_8B_Instruct"
    with pytest.raises(TypeError):
        aliases(plain, "chat")["gpt-4o"] = "changed"  # type: ignore[index]
    assert aliases(plain, "chat")["gpt-4o"] == "Llama3_8B_Instruct"


def _optional_fields(rng: random.Random) -> dict:
    """Some of a job's optional fields, each with a value of its kind (None and falsy ones too)."""
    pool = {
        "worker": ["vllm", None], "webhook_url": ["https://example.com/h", None], "webhook_events": ["job.completed", None],
        "policy": [{"executionTimeout": 1000}, None, {}], "priority": ["high", None], "deadline": [time.time() + 60, None],
        "request_id": ["req_1", None], "cost": [0.0012, 0.0, None], "shape": [{"encoding_format": "base64"}, None],
        "direct": [True, False], "relay_stream": [True, False], "runpod_id": ["rp-1", None], "submit_attempts": [0, 3],
        "result": [{"a": [1, "é"]}, None], "progress": [False, 0, "half", None], "created": [1733590000.123, None],
        "id": [new_id(), None],
    }  # fmt: skip
    return {name: rng.choice(values) for name, values in pool.items() if rng.random() < 0.6}


def _to_redis_field_by_field(job: Job) -> dict:
    """The hash fields as `to_redis` made them before it looked each field's kind up once."""
    out = {}
    for name, value in job.__dict__.items():
        if value is None:
            continue
        if name in _JSON_FIELDS:
            out[name] = compact(value).decode()
        elif isinstance(value, JobStatus):
            out[name] = value.value
        elif isinstance(value, bool):
            if value:
                out[name] = "1"
        else:
            out[name] = value
    return out


def test_a_queued_job_is_the_one_the_dataclass_would_build_and_its_hash_is_the_same():
    rng = random.Random(7)
    for _ in range(2_000):
        chosen = _optional_fields(rng)
        job = Job.queued("key_a", "chat", "m", "ep", {"prompt": "x"}, **chosen)
        made = Job(
            id=job.id, key_id="key_a", surface="chat", model="m", endpoint_id="ep", status=JobStatus.QUEUED,
            created=job.created, input={"prompt": "x"}, **{k: v for k, v in chosen.items() if k not in ("id", "created")},
        )  # fmt: skip
        assert job == made and list(job.__dict__) == list(made.__dict__)  # the same fields, in the same order
        assert (chosen.get("id") or job.id) == job.id and (chosen.get("created") or job.created) == job.created
        assert job.to_redis() == _to_redis_field_by_field(job) == _to_redis_field_by_field(made)
        assert set(_BOOL_FIELDS) & set(job.to_redis()) == {f for f in _BOOL_FIELDS if chosen.get(f)}
    with pytest.raises(TypeError, match="colour"):
        Job.queued("key_a", "chat", "m", "ep", {}, colour="red")
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.status = JobStatus.FAILED
