"""The garbage collector's settings for a long-running server process.

The projection and everything else built at startup live as long as the process: frozen out of
the collector's reach, a full collection while serving walks only what requests allocate (a full
walk of the startup heap stalled every request for ~50 ms). A request leaves a few hundred
container objects for the collector to look at; at the default threshold (700) that was a young
collection every other request and a full one every few hundred (about 1 ms of CPU per request
in all). Collecting young objects every 10,000 allocations costs a third of that, and full
collections become rare.
"""

from __future__ import annotations

import gc

#: (young, middle, old) collection thresholds while serving
SERVING_THRESHOLDS = (10_000, 20, 100)


def settle_for_serving() -> None:
    """Collect once, freeze what is left (the startup heap), and collect young objects less
    often. The server calls it once the projection is loaded; benchmarks call it to measure
    requests as the server runs them."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)
