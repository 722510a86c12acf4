"""The ASGI app the socket benchmarks run under daphne or uvicorn (loopback only).

    /envelope/  EnvelopeConsumer serving `benchmarks._messages.router` (ping, echo, fan-out)
    /plain/     a stock AsyncJsonWebsocketConsumer echo: sends back what it receives
    /nohop/     the same echo without the per-frame thread hop of Channels' dispatch()
    /deferred/  with BENCH_RQ_URL set: the deferred `bench.work` handler, on RQ

Environment: `BENCH_LOG` = `off` (WARNING, the default) or `info` (INFO events to the
JSON-lines file `ENVELOPE_TRACE_LOG`, nothing on the console); `BENCH_METRICS` = `off`
(the default) or `on` (Prometheus metrics counted, served over HTTP at any path).

    DJANGO_SETTINGS_MODULE=benchmarks.settings daphne -b 127.0.0.1 benchmarks.server:application
    DJANGO_SETTINGS_MODULE=benchmarks.settings uvicorn --ws websockets-sansio \
        benchmarks.server:application
"""

from __future__ import annotations

import logging
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from actors import EnvelopeConsumer, EnvelopeLifespan  # noqa: E402
from actors.tracing import configure_logging, trace_log_path  # noqa: E402
from benchmarks._messages import router  # noqa: E402
from benchmarks._plain import PlainEcho, PlainNoHop  # noqa: E402

if os.environ.get("BENCH_LOG", "off") == "info":
    configure_logging(
        logging.INFO, json=True, trace_log=trace_log_path(), console=False, force=True
    )
else:
    configure_logging(logging.WARNING, json=True, trace_log="", stream=sys.stderr, force=True)


routes = [
    path("envelope/", EnvelopeConsumer.as_asgi(routers=[router])),
    path("plain/", PlainEcho.as_asgi()),
    path("nohop/", PlainNoHop.as_asgi()),
]
if os.environ.get("BENCH_RQ_URL"):
    from benchmarks._jobs import jobs

    routes.append(path("deferred/", EnvelopeConsumer.as_asgi(routers=[jobs])))

protocols = {"websocket": URLRouter(routes), "lifespan": EnvelopeLifespan()}
if os.environ.get("BENCH_METRICS") == "on":
    from prometheus_client import make_asgi_app

    protocols["http"] = make_asgi_app()
application = ProtocolTypeRouter(protocols)
