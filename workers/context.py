"""The worker process's resources, set once by the runner (or built from the environment)."""

from __future__ import annotations

from integration.config import Settings
from integration.resources import Resources

_resources: Resources | None = None


def set_resources(resources: Resources) -> None:
    global _resources
    _resources = resources


def resources() -> Resources:
    """This process's resources; built from the environment on first use if not set."""
    global _resources
    if _resources is None:
        _resources = Resources(Settings.from_env())
    return _resources
