from __future__ import annotations

import datetime
import decimal
import uuid

import pytest
from pydantic import BaseModel

from envelope import (
    BadEnvelope,
    BadJson,
    Envelope,
    State,
    TooLarge,
    decode,
    encode,
    loads,
    parse_reply,
    peek_envelope,
)

LONG_I = "x" * 65


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        pytest.param('{"t": "a"}', Envelope("a"), id="type only"),
        pytest.param('{"t": "a.b:c-d_e", "i": "abc"}', Envelope("a.b:c-d_e", "abc"), id="trace id"),
        pytest.param('{"t": "a", "i": 42}', Envelope("a", "42"), id="int trace id"),
        pytest.param('{"t": "a", "p": {"x": 1}}', Envelope("a", None, {"x": 1}), id="payload"),
        pytest.param('{"t": "a", "p": null}', Envelope("a"), id="null payload"),
        pytest.param(b'{"t": "a", "i": "1"}', Envelope("a", "1"), id="bytes"),
        pytest.param('{"t": "' + "t" * 100 + '"}', Envelope("t" * 100), id="longest type"),
        pytest.param(
            '{"t": "a", "i": "' + "i" * 64 + '"}', Envelope("a", "i" * 64), id="longest i"
        ),
    ],
)
def test_decode_reads_valid_envelopes(frame: str | bytes, expected: Envelope) -> None:
    assert decode(frame) == expected


@pytest.mark.parametrize(
    ("frame", "error", "t", "i"),
    [
        pytest.param("not json", BadJson, None, None, id="not json"),
        pytest.param("", BadJson, None, None, id="empty"),
        pytest.param('{"t": "a"', BadJson, None, None, id="truncated"),
        pytest.param("[1, 2]", BadEnvelope, None, None, id="array"),
        pytest.param('"text"', BadEnvelope, None, None, id="string"),
        pytest.param("null", BadEnvelope, None, None, id="null"),
        pytest.param('{"i": "7"}', BadEnvelope, None, "7", id="missing t keeps i"),
        pytest.param('{"t": 5, "i": "7"}', BadEnvelope, None, "7", id="t not a string"),
        pytest.param('{"t": "", "i": "7"}', BadEnvelope, None, "7", id="empty t"),
        pytest.param('{"t": "a b", "i": "7"}', BadEnvelope, None, "7", id="t with a space"),
        pytest.param('{"t": "' + "t" * 101 + '"}', BadEnvelope, None, None, id="t too long"),
        pytest.param('{"t": "a", "i": "' + LONG_I + '"}', BadEnvelope, "a", None, id="i too long"),
        pytest.param('{"t": "a", "i": [1]}', BadEnvelope, "a", None, id="i a list"),
        pytest.param('{"t": "a", "i": 1.5}', BadEnvelope, "a", None, id="i a float"),
        pytest.param('{"t": "a", "i": true}', BadEnvelope, "a", None, id="i a bool"),
        pytest.param('{"t": "a", "i": "x y"}', BadEnvelope, "a", None, id="i with a space"),
        pytest.param('{"t": "a", "i": "7", "s": "s"}', BadEnvelope, "a", "7", id="s from client"),
        pytest.param('{"t": "a", "i": "7", "p": [1]}', BadEnvelope, "a", "7", id="p a list"),
        pytest.param('{"t": "a", "i": "7", "p": "x"}', BadEnvelope, "a", "7", id="p a string"),
        pytest.param('{"t": "a", "i": "7", "l": "sv"}', BadEnvelope, "a", "7", id="unknown key"),
    ],
)
def test_decode_rejects_and_keeps_what_it_could_read(
    frame: str, error: type[Exception], t: str | None, i: str | None
) -> None:
    with pytest.raises(error) as info:
        decode(frame)
    assert (info.value.t, info.value.i) == (t, i)  # type: ignore[attr-defined]
    assert info.value.payload()["message"]  # type: ignore[attr-defined]


def test_decode_rejects_a_frame_over_the_limit_and_peeks_its_t_and_i() -> None:
    frame = '{"t": "big", "i": "9", "p": {"x": "' + "y" * 2000 + '"}}'
    with pytest.raises(TooLarge) as info:
        decode(frame, max_bytes=1000)
    assert (info.value.t, info.value.i) == ("big", "9")
    assert info.value.payload()["limit"] == 1000


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    frame = '{"t": "a", "p": {"x": "' + "é" * 400 + '"}}'
    assert len(frame) < 1000
    with pytest.raises(TooLarge):
        decode(frame, max_bytes=500)
    assert decode(frame, max_bytes=1000).t == "a"


def test_peek_envelope_reads_t_and_i_of_invalid_frames() -> None:
    assert peek_envelope('{"t": "a", "i": "1", "s": "x"}') == ("a", "1")
    assert peek_envelope("nonsense") == (None, None)


def test_encode_leaves_out_absent_keys_and_orders_t_i_s_p() -> None:
    assert encode("a") == '{"t":"a"}'
    assert encode("a", "1", {"x": 1}, State.SUCCESS) == '{"t":"a","i":"1","s":"s","p":{"x":1}}'


class Inner(BaseModel):
    when: datetime.datetime
    ident: uuid.UUID
    amount: decimal.Decimal


class Outer(BaseModel):
    inner: Inner
    tags: set[str]


def test_encode_serialises_models_without_dict_and_their_field_types() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    ident = uuid.UUID(int=1)
    model = Outer(inner=Inner(when=when, ident=ident, amount=decimal.Decimal("1.50")), tags={"a"})
    out = loads(encode("m", "1", model, State.SUCCESS))
    assert out["p"] == {
        "inner": {"when": "2026-01-02T03:04:05+00:00", "ident": str(ident), "amount": "1.50"},
        "tags": ["a"],
    }


def test_parse_reply_reads_what_encode_writes() -> None:
    env = parse_reply(encode("a", "1", {"x": 1}, State.FAILED))
    assert env == Envelope("a", "1", {"x": 1}, State.FAILED)
