"""Price estimates: a request's units (the surface says how to count them) times a price.

Prices default to the registry's (USD per unit) and can be overridden by `PRICE_TABLE`,
a JSON object: `{"chat": 0.0003, "images": {"Flux1schnell": 0.002, "*": 0.004}}`.
Estimates are recorded on each job as its `cost`.
"""

from __future__ import annotations

import json

from integration.surfaces.registry import Surface


class PriceTable:
    """Unit prices per surface and model."""

    def __init__(self, overrides: str | None = None):
        self.overrides = json.loads(overrides) if overrides else {}
        if not isinstance(self.overrides, dict):
            raise ValueError("PRICE_TABLE must be a JSON object")

    def unit_price(self, surface: Surface, model: str) -> float:
        """USD per unit for a surface's model: PRICE_TABLE's, else the registry's."""
        override = self.overrides.get(surface.name)
        if isinstance(override, dict):
            override = override.get(model, override.get("*"))
        return float(override) if override is not None else surface.unit_price

    def cost(self, surface: Surface, model: str, request: dict) -> float:
        """The estimate's `estimated_cost` alone (what every accepted job reserves), without its object."""
        return self._priced(surface, model, request)[2]

    def estimate(self, surface: Surface, model: str, request: dict) -> dict:
        """The price object of `POST /v1/<route>/price` for a validated request."""
        units, unit_price, cost = self._priced(surface, model, request)
        return {
            "object": "price",
            "surface": surface.name,
            "model": model,
            "currency": "USD",
            "unit": surface.unit,
            "units": units,
            "unit_price": unit_price,
            "estimated_cost": cost,
        }

    def _priced(self, surface: Surface, model: str, request: dict) -> tuple[float, float, float]:
        """Units, unit price and estimated cost (USD, to the microdollar)."""
        units = round(float(surface.units(request)), 6)
        unit_price = self.unit_price(surface, model)
        return units, unit_price, round(units * unit_price, 6)
