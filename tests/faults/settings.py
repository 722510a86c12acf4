"""Django settings for the fault tests' servers; limits come from the environment so a
test can make them small enough to reach in a second."""

import os

from tests.settings import *  # noqa: F403

# The in-memory layer as it comes: 100 messages at most wait per channel (channels_redis
# has the same default). Under uvicorn a silent subscriber's actor waits on its socket,
# its mailbox fills, and pushes wait in the layer up to that capacity.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# As large as daphne takes: bad input of every size reaches the pipeline.
ENVELOPE_MAX_FRAME_BYTES = 1024 * 1024
ENVELOPE_MAX_OUTBOUND_BYTES = int(os.environ.get("FAULT_MAX_OUTBOUND_BYTES", 1024 * 1024))
ENVELOPE_SEND_TIMEOUT = float(os.environ.get("FAULT_SEND_TIMEOUT", 10.0))
