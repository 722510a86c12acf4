"""The pipeline: the stages folded once per consumer into one `chain(ctx)`, timed for the
trace logs when INFO is enabled."""

from actors.pipeline._fold import Chain, Stage, link, load_stages
from actors.pipeline._timed import StageTimer, build_traced_chain, stage_name

__all__ = [
    "Chain",
    "Stage",
    "StageTimer",
    "build_traced_chain",
    "link",
    "load_stages",
    "stage_name",
]
