"""The public surface of ``musicgraph.enrichment`` and ``musicgraph.health``."""

from __future__ import annotations

import inspect

import musicgraph.enrichment as enrichment
import musicgraph.health as health


def test_all_lists_exactly_what_is_exported() -> None:
    """``__all__`` names every public attribute of each package, and nothing else."""
    for module in (enrichment, health):
        public = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
        }
        assert set(module.__all__) == public, module.__name__
