"""Django system checks (`manage.py check`, and every `runserver`/`migrate`): a wrong
`ENVELOPE_*` setting is reported when the project starts, not when a message arrives.

    envelope.E001  a setting has a wrong value          envelope.W001  unknown ENVELOPE_* name
    envelope.E002  ENVELOPE_PIPELINE does not load      envelope.W002  no CHANNEL_LAYERS
    envelope.E003  ASGI_APPLICATION does not import     envelope.W003  a consumer serves no
                                                                       application types
    with --deploy: envelope.W004  the Origin check is off
                   envelope.W005  "*" lets every origin in
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from actors._config import ConsumerConfig, built
from actors._settings import EnvelopeSettings
from actors.pipeline import load_stages
from actors.tracing.views import FILES_SETTING, MAX_BYTES_SETTING

#: The largest websocket message daphne accepts by default (`--websocket_max_message_size`):
#: it resets the connection on a larger one before the application sees it.
SERVER_MAX_MESSAGE_BYTES = 1024 * 1024

KNOWN = {f"ENVELOPE_{field.name.upper()}" for field in fields(EnvelopeSettings)}
#: Settings read elsewhere than `EnvelopeSettings` (trace sink, discovery, the contract).
KNOWN |= {"ENVELOPE_TRACE_LOG", "ENVELOPE_AUTODISCOVER"}
KNOWN |= {"ENVELOPE_SCHEMA_VIEW", "ENVELOPE_SCHEMA_TITLE", "ENVELOPE_SCHEMA_VERSION"}
KNOWN |= {FILES_SETTING, MAX_BYTES_SETTING}  # the trace view's


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


def _served() -> tuple[list[ConsumerConfig], list[checks.CheckMessage]]:
    """The consumers of the project. Under `manage.py check`, `ASGI_APPLICATION` is
    imported to build them (as a server would), so that the check sees what the server
    will serve; other commands (a worker, `migrate`) only look at the consumers their
    process has built: importing a project's ASGI module has side effects (logging,
    telemetry set-up) they should not get."""
    path = getattr(settings, "ASGI_APPLICATION", None)
    if path and sys.argv[1:2] == ["check"]:
        try:
            import_string(path)
        except Exception as exc:
            return list(built), [
                checks.Error(
                    f"ASGI_APPLICATION = {path!r} cannot be imported: {type(exc).__name__}: {exc}",
                    id="envelope.E003",
                )
            ]
    return list(built), []


def consumer_problems(configs: Iterable[ConsumerConfig]) -> list[checks.CheckMessage]:
    """envelope.W003 for each consumer that serves nothing but the built-in types."""
    discovery = (
        "installed apps' handlers.py modules are imported at start-up"
        if getattr(settings, "ENVELOPE_AUTODISCOVER", True)
        else "ENVELOPE_AUTODISCOVER is off, so nothing imports them for you"
    )
    return [
        checks.Warning(
            "An EnvelopeConsumer serves no application message types (routers: "
            f"{', '.join(router.name for router in config.routers)}): every client request "
            "but the built-in topic.* and connection.* ones will be answered unknown_type.",
            hint="The module declaring its handlers was not imported before the consumer was "
            f"built ({discovery}). Put the handlers in <app>/handlers.py of an installed app, "
            "or import their module (or pass routers=[...]) before "
            "EnvelopeConsumer.as_asgi().",
            id="envelope.W003",
        )
        for config in configs
        if not config.application_types
    ]


@checks.register("envelope")
def check_consumers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    configs, problems = _served()
    return problems + consumer_problems(configs)


@checks.register(checks.Tags.security, "envelope", deploy=True)
def check_origin_deploy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """With `--deploy`: the Origin check is on, and does not let every origin in."""
    configs, _ = _served()
    problems: list[checks.CheckMessage] = []
    off = not getattr(settings, "ENVELOPE_CHECK_ORIGIN", True) or any(
        config.origins is None for config in configs
    )
    if off:
        problems.append(
            checks.Warning(
                "The websocket Origin check is off (ENVELOPE_CHECK_ORIGIN = False, or "
                "check_origin=False given to a consumer): any web page can open a socket "
                "with your users' cookies and act as them (cross-site websocket hijacking).",
                hint="Turn it back on, and list the origins of other front ends in "
                "ENVELOPE_ALLOWED_ORIGINS.",
                id="envelope.W004",
            )
        )
    patterns = [*getattr(settings, "ENVELOPE_ALLOWED_ORIGINS", ())]
    patterns += [p for config in configs if config.origins for p in config.origins.patterns]
    if not off and "*" in [*patterns, *settings.ALLOWED_HOSTS]:
        problems.append(
            checks.Warning(
                '"*" in ALLOWED_HOSTS or ENVELOPE_ALLOWED_ORIGINS lets a page of any origin '
                "open a websocket with your users' cookies: the Origin check checks nothing.",
                hint="List your hosts in ALLOWED_HOSTS and other front ends' origins in "
                "ENVELOPE_ALLOWED_ORIGINS.",
                id="envelope.W005",
            )
        )
    return problems
