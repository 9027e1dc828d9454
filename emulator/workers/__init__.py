"""The stock RunPod workers, emulated: each module follows its worker's own handler (named in
its docstring) for input checks, outputs and errors, with a stand-in for the model.

An endpoint runs one of them (`Emulator(workers={endpoint_id: "worker-vllm@2.24"})`);
endpoints without one run `custom`, whose outputs are made from the input's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from emulator.workers import bark, comfyui, custom, esrgan, faster_whisper, infinity, mochi, sdxl, sdxl_turbo, vllm


@dataclass(frozen=True)
class WorkerEnv:
    """What an emulated worker has beside its input: its version, a bucket (or none), and a way to fetch URLs."""

    version: str
    upload: object = None  # (data: bytes, name: str) -> URL, or None: no bucket configured
    fetch: object = None  # (url: str) -> bytes


WORKERS: dict[str, ModuleType] = {
    module.NAME: module for module in (vllm, faster_whisper, infinity, sdxl, sdxl_turbo, comfyui, esrgan, bark, mochi, custom)
}


def parse(spec: str) -> tuple[ModuleType, str]:
    """`worker-vllm@2.23` -> (the module, its version); no version: the module's newest."""
    name, _, version = spec.partition("@")
    module = WORKERS[name]
    return module, version or module.VERSIONS[0]
