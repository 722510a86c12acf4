"""ASGI app for the start-up freeze (`ENVELOPE_SERVER_GC_FREEZE`): a message that reports
the process's frozen objects, served with the setting off (`ws/`) and on
(`ws/frozen/`, a consumer's own setting)."""

import gc

import django

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from actors import EnvelopeConsumer  # noqa: E402
from envelope import message  # noqa: E402
from handlers import Router  # noqa: E402

router = Router("gc")


@message("gc.state")
class GcState(BaseModel):
    pass


class GcReport(BaseModel):
    frozen: int


@router.handler(public=True)
async def gc_state(msg: GcState) -> GcReport:
    return GcReport(frozen=gc.get_freeze_count())


application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("ws/", EnvelopeConsumer.as_asgi(routers=[router])),
                path(
                    "ws/frozen/", EnvelopeConsumer.as_asgi(routers=[router], server_gc_freeze=True)
                ),
            ]
        ),
    }
)
