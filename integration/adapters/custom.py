"""`custom`: a worker of your own. The request passes through (every field), and the output
may be any of the common shapes each surface's normaliser reads (`integration/surfaces/`)."""

from __future__ import annotations

from integration import surfaces
from integration.config import Settings
from integration.surfaces.outputs import ResultContext

NAME = "custom"
SURFACES = tuple(surfaces.SURFACES)


def to_input(surface: str, request: dict, model: str, settings: Settings) -> dict:
    """The surface's own mapping, extras included."""
    return surfaces.get(surface).to_input(request, model)


def to_result(surface: str, output, ctx: ResultContext) -> dict:
    """The surface's own normaliser."""
    return surfaces.get(surface).to_result(output, ctx)
