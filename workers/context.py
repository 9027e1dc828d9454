"""The worker process's resources, for RQ tasks: set once by the runner, before any task runs.

RQ calls a task by its dotted name with only its arguments, so a task reaches the
process's resources here. There is no fallback built from the environment: a task run
outside a worker started by `run_worker` fails loudly instead of building a second set.
"""

from __future__ import annotations

from integration.resources import Resources

_resources: Resources | None = None


def set_resources(resources: Resources) -> None:
    """Make `resources` this process's, for the tasks it runs."""
    global _resources
    _resources = resources


def resources() -> Resources:
    """This process's resources (RuntimeError when the runner has not set them)."""
    if _resources is None:
        raise RuntimeError("no resources: RQ tasks run in a worker started by `flask --app app worker`")
    return _resources
