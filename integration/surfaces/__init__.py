"""Surfaces: the registry of inference surfaces, the request fields they share, one module
per family (chat, images, audio, video, embeddings) with its schema, its worker input and
its result normaliser, and prices."""

from integration.surfaces.registry import SURFACES, Surface, get

__all__ = ["SURFACES", "Surface", "get"]
