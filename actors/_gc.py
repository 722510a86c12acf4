"""What start-up made, moved out of the cyclic garbage collector's reach
(`ENVELOPE_SERVER_GC_FREEZE` in a server process, `ENVELOPE_WORKER_GC_FREEZE` in a
non-forking worker)."""

from __future__ import annotations

import gc


def freeze_start_up() -> int:
    """Collect what start-up left, then move every object left out of all later
    collections (`gc.freeze()`): a full collection then walks only what came after.
    Cycles among the frozen objects are never collected. Returns the objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
