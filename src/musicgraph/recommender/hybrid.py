"""Our default recommender (work in progress)."""

from __future__ import annotations

from typing import Any, ClassVar

from musicgraph.recommender.ease import EASE


class Hybrid(EASE):
    """Placeholder: EASE on log play counts."""

    name = "Hybrid"
    GRID: ClassVar[dict[str, list[Any]]] = {"l2": [100.0, 200.0, 400.0, 800.0]}
    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {"l2": (1e-3, 1e7)}

    def __init__(self, *, l2: float = 400.0, random_state: int = 0) -> None:
        super().__init__(l2=l2, weighting="log")
