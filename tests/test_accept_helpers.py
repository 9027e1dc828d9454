"""The accept path's small helpers, each the same answer as the standard library's slower one."""

from __future__ import annotations

import random
import time
import uuid

import pytest

from integration.accounts.limits import month
from integration.config import Settings
from integration.jobs.record import _uuid4_text, new_id
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
