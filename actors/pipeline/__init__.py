"""The pipeline: the stages folded once per consumer into one `chain(ctx)`, timed for the
trace logs when INFO is enabled."""

from actors.pipeline._fold import Chain, Stage, build_chain, link, load_stages
from actors.pipeline._timed import build_traced_chain, envelope_timings, stage_name

__all__ = [
    "Chain",
    "Stage",
    "build_chain",
    "build_traced_chain",
    "envelope_timings",
    "link",
    "load_stages",
    "stage_name",
]
