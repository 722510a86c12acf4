"""Consumer chains side by side: each variant's µs per envelope, in alternating rounds."""

from __future__ import annotations

import gc
import time
from typing import Any


async def alternating(
    frames: list[str], rounds: int, variants: dict[str, tuple[Any, Any]]
) -> dict[str, list[float]]:
    """µs per envelope of each variant `name -> (actor, chain)` over `frames`, one warm-up
    pass each, then `rounds` rounds running every variant in turn."""
    from actors import RequestContext

    perf = time.perf_counter

    async def run(actor: Any, chain: Any) -> float:
        start = perf()
        for frame in frames:
            await chain(RequestContext(actor, frame, perf()))
        return (perf() - start) / len(frames) * 1e6

    for actor, chain in variants.values():
        await run(actor, chain)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        gc.collect()
        for name, (actor, chain) in variants.items():
            samples[name].append(await run(actor, chain))
    return samples


def added(result: Any, key: str, off: float, on: float, on_name: str = "on_us") -> dict[str, float]:
    """Record a variant's µs per envelope against the plain chain's as `key` in the
    figures of `result` (a `ScenarioResult`)."""
    figures = result.figures[key] = {
        "off_us": round(off, 2),
        on_name: round(on, 2),
        "added_us": round(on - off, 2),
    }
    return figures
