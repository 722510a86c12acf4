"""Django system checks (`manage.py check`, and every `runserver`/`migrate`): a wrong
`ENVELOPE_*` setting is reported when the project starts, not when a message arrives."""

from __future__ import annotations

import difflib
from dataclasses import fields
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from actors._settings import EnvelopeSettings
from actors.pipeline import load_stages

#: The largest websocket message daphne accepts by default (`--websocket_max_message_size`):
#: it resets the connection on a larger one before the application sees it.
SERVER_MAX_MESSAGE_BYTES = 1024 * 1024

KNOWN = {f"ENVELOPE_{field.name.upper()}" for field in fields(EnvelopeSettings)}
#: Settings read elsewhere than `EnvelopeSettings` (logging, trace sink).
KNOWN |= {"ENVELOPE_TRACE_LOG", "ENVELOPE_LOG_LEVEL", "ENVELOPE_LOG_JSON"}


@checks.register("envelope")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems: list[checks.CheckMessage] = []
    for name in sorted(n for n in dir(settings) if n.startswith("ENVELOPE_")):
        if name not in KNOWN:
            close = difflib.get_close_matches(name, sorted(KNOWN), n=1)
            hint = f"Did you mean {close[0]}?" if close else "See docs/settings.md."
            problems.append(
                checks.Warning(
                    f"{name} is not an Envelope Router setting.", hint=hint, id="envelope.W001"
                )
            )
    try:
        envelope_settings = EnvelopeSettings.from_django()
    except (ImproperlyConfigured, TypeError, ValueError) as exc:
        problems.append(checks.Error(str(exc), id="envelope.E001"))
        return problems
    if envelope_settings.max_frame_bytes > SERVER_MAX_MESSAGE_BYTES:
        problems.append(
            checks.Error(
                f"ENVELOPE_MAX_FRAME_BYTES = {envelope_settings.max_frame_bytes} is more than "
                f"the {SERVER_MAX_MESSAGE_BYTES} bytes daphne accepts: it resets the "
                "connection on a larger frame before Envelope Router can answer too_large.",
                hint=f"Use at most {SERVER_MAX_MESSAGE_BYTES}. If your server takes larger "
                "messages (daphne --websocket_max_message_size, uvicorn --ws-max-size), "
                "add 'envelope.E004' to SILENCED_SYSTEM_CHECKS.",
                id="envelope.E004",
            )
        )
    try:
        load_stages(envelope_settings.pipeline)
    except ImproperlyConfigured as exc:
        problems.append(checks.Error(str(exc), id="envelope.E002"))
    if not getattr(settings, "CHANNEL_LAYERS", None):
        problems.append(
            checks.Warning(
                "CHANNEL_LAYERS is not set: topics, pushes to other connections and job "
                "states from workers need a channel layer.",
                hint="Use channels.layers.InMemoryChannelLayer for one process, "
                "channels_redis for several.",
                id="envelope.W002",
            )
        )
    return problems
