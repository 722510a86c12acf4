from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from django.contrib.auth import get_user_model

from actors import EnvelopeConsumer
from actors.testing import EnvelopeCommunicator, login_headers
from envelope import State
from tests.actors.sample import router

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_logged_in_communicator_is_authenticated_through_the_session() -> None:
    user = await sync_to_async(get_user_model().objects.create_user)("ada", password="x")
    app = AuthMiddlewareStack(
        EnvelopeConsumer.as_asgi(routers=[router], allow_unauthenticated=False)
    )
    member = EnvelopeCommunicator(app, headers=await login_headers(user))
    anonymous = EnvelopeCommunicator(app)
    assert (await member.connect())[0] and (await anonymous.connect())[0]
    assert (await member.request("t.private")).s is State.SUCCESS
    refused = await anonymous.request("t.private")
    assert refused.p is not None and refused.p["code"] == "unauthenticated"
    await member.disconnect()
    await anonymous.disconnect()
