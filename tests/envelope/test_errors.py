from __future__ import annotations

import orjson
import pytest

from envelope import (
    ERROR_CODES,
    MAX_ERRORS,
    MAX_MESSAGE_CHARS,
    MAX_PAYLOAD_BYTES,
    Failure,
    Forbidden,
    InvalidPayload,
    RateLimited,
)


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
        "topics_unavailable",
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


def test_a_long_message_is_cut() -> None:
    message = Forbidden("x" * 10_000).payload()["message"]
    assert len(message) == MAX_MESSAGE_CHARS and message.endswith("…")


def test_extras_too_large_for_a_reply_are_left_out() -> None:
    assert RateLimited(retry_after=1, detail="y" * 10_000).payload() == {
        "code": "rate_limited",
        "message": RateLimited.message,
    }


def test_invalid_payload_lists_at_most_max_errors_and_says_how_many_more() -> None:
    errors = [{"loc": ("values", n, "k" * 500), "msg": "m" * 900, "type": "t"} for n in range(5000)]
    p = InvalidPayload.from_errors(iter(errors), len(errors)).payload()
    assert len(p["errors"]) == MAX_ERRORS
    assert p["more_errors"] == 5000 - MAX_ERRORS
    first = p["errors"][0]
    assert first["loc"][:2] == ["values", 0] and len(first["loc"][2]) == 64
    assert len(first["msg"]) == 160
    assert len(orjson.dumps(p)) < MAX_PAYLOAD_BYTES
