from __future__ import annotations

import pytest

from envelope import ERROR_CODES, Failure, Forbidden, RateLimited


def test_every_documented_code_has_an_exception() -> None:
    documented = {
        "bad_json",
        "bad_envelope",
        "too_large",
        "unknown_type",
        "invalid_payload",
        "unauthenticated",
        "forbidden",
        "not_found",
        "rate_limited",
        "overloaded",
        "too_many_jobs",
        "timeout",
        "internal",
        "job_failed",
        "queue_unavailable",
        "cancelled",
    }
    assert set(ERROR_CODES) == documented


def test_payload_carries_code_message_and_extras() -> None:
    assert RateLimited(retry_after=1.5).payload() == {
        "code": "rate_limited",
        "message": RateLimited.message,
        "retry_after": 1.5,
    }
    assert Forbidden("Only the chair").payload()["message"] == "Only the chair"


def test_applications_define_their_own_codes() -> None:
    class PollClosed(Forbidden):
        code = "poll_closed"
        message = "The poll is closed."

    assert PollClosed().payload() == {"code": "poll_closed", "message": "The poll is closed."}
    assert isinstance(PollClosed(), Forbidden)


def test_a_malformed_code_fails_at_class_definition() -> None:
    with pytest.raises(TypeError, match="a code is"):

        class Bad(Failure):
            code = "Not A Code"
