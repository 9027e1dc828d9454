"""Worker adapters: which RunPod worker runs behind an endpoint, and how to talk to it.

An endpoint's worker is named by `RUNPOD_WORKER_<SURFACE>[__<MODEL>]` (like the endpoint
variables), by its repository name, or `custom`; each surface has a default (the
registry's `worker`). An adapter turns a validated request into that worker's `input` and
the worker's real output (every version in use) into the surface's result; a worker's own
error becomes `WorkerError`. One module per stock worker, each naming the source files it
follows.
"""

from __future__ import annotations

from types import ModuleType

from integration import surfaces
from integration.adapters import bark, comfyui, custom, esrgan, faster_whisper, infinity, mochi, sdxl, sdxl_turbo, vllm
from integration.adapters.base import WorkerError, message_of, output_error
from integration.config import SettingError, Settings
from integration.surfaces.outputs import ResultContext

ADAPTERS: dict[str, ModuleType] = {
    module.NAME: module for module in (vllm, faster_whisper, infinity, sdxl, sdxl_turbo, comfyui, esrgan, bark, mochi, custom)
}

__all__ = ["ADAPTERS", "WorkerError", "check", "fetched_by_url", "job_input", "job_result", "message_of", "worker_for"]


def worker_for(settings: Settings, surface: str, model: str) -> str:
    """The worker behind a surface's endpoint for `model`: its setting, else the surface's default."""
    return settings.worker_for(surface, model) or surfaces.get(surface).worker


def check(settings: Settings) -> None:
    """Refuse, with one line naming the variable, a worker name podrelay does not know or that cannot serve its surface."""
    for key, name in settings.workers.items():
        variable = f"RUNPOD_WORKER_{key}"
        surface = key.split("__", 1)[0].lower()
        if surface not in surfaces.SURFACES:
            raise SettingError(f"{variable}: there is no surface '{surface}' (surfaces: {', '.join(surfaces.SURFACES)})")
        adapter = ADAPTERS.get(name)
        if adapter is None:
            raise SettingError(f"{variable}={name!r} is not a worker podrelay knows: {', '.join(ADAPTERS)}")
        if surface not in adapter.SURFACES:
            raise SettingError(f"{variable}={name!r}: {name} does not serve {surface} (it serves {', '.join(adapter.SURFACES)})")


def job_input(settings: Settings, worker: str, surface: str, request: dict, model: str) -> dict:
    """The worker's `input` for a validated request (a 400 naming the field it would refuse)."""
    return ADAPTERS[worker].to_input(surface, request, model, settings)


def fetched_by_url(worker: str) -> frozenset[str]:
    """The request fields whose file this worker only takes as a URL (worker-esrgan's `data_url`)."""
    return getattr(ADAPTERS[worker], "BY_URL", frozenset())


def job_result(worker: str | None, surface: str, output, ctx: ResultContext) -> dict:
    """The surface's result from the worker's output; `WorkerError` for the worker's own error, `OutputError` for a shape it cannot read."""
    problem = output_error(output)
    if problem:
        raise WorkerError(problem)
    return ADAPTERS[worker or custom.NAME].to_result(surface, output, ctx)
