"""Consumer chains side by side: each variant's µs per envelope, in alternating rounds."""

from __future__ import annotations

import gc
import time
from typing import Any


async def alternate(actors: dict[str, Any], frames: list[str], rounds: int) -> dict[str, Any]:
    """µs per message of each actor's chain over `frames`, the actors taking turns in each
    of `rounds` (after one warm-up turn each)."""
    from actors import RequestContext

    perf = time.perf_counter

    async def run(actor: Any) -> float:
        chain = actor.config.chain
        start = perf()
        for frame in frames:
            await chain(RequestContext(actor, frame, perf()))
        return (perf() - start) / len(frames) * 1e6

    for actor in actors.values():
        await run(actor)
    samples: dict[str, list[float]] = {name: [] for name in actors}
    for _ in range(rounds):
        gc.collect()
        for name, actor in actors.items():
            samples[name].append(await run(actor))
    return samples
