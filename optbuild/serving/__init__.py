"""Serving an artifact: its input contract and the runtime that runs client inputs through it."""
