"""`actors._scripts.run_script`: a redis-py `Script` run by EVALSHA on a given client, as
calling the `Script` would. A real Redis (the suite's)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from typing import Any

import hiredis
import pytest
import redis
import redis.connection

from actors._scripts import RememberingPacker, forget_packing, remember_packing, run_script

ECHO = "return {KEYS[1], ARGV[1], ARGV[2]}"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _calls(client: redis.Redis, command: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_the_script_runs_by_its_sha_with_its_keys_and_args(client: redis.Redis) -> None:
    script = client.register_script(ECHO)
    assert script(keys=["k"], args=["a", 2]) == [b"k", b"a", b"2"]  # known to Redis now
    before = _calls(client, "evalsha"), _calls(client, "eval")
    assert run_script(client, script, ["k"], ["a", 2]) == [b"k", b"a", b"2"]
    assert (_calls(client, "evalsha"), _calls(client, "eval")) == (before[0] + 1, before[1])


def test_a_redis_that_lost_the_script_is_sent_it_once(client: redis.Redis) -> None:
    """After SCRIPT FLUSH (as after a restart): NOSCRIPT ran nothing, the script is
    loaded once, and the call answers; the next is by its SHA1 alone."""
    script = client.register_script(ECHO)
    client.script_flush()
    loads = _calls(client, "script|load")
    assert run_script(client, script, ["k"], ["x", "y"]) == [b"k", b"x", b"y"]
    assert run_script(client, script, ["k"], ["x", "z"]) == [b"k", b"x", b"z"]
    assert _calls(client, "script|load") == loads + 1


def test_a_script_that_fails_raises_redis_pys_error(client: redis.Redis) -> None:
    script = client.register_script("return redis.error_reply('refused here')")
    with pytest.raises(redis.exceptions.ResponseError, match="refused here"):
        run_script(client, script, [], [])


# A `RememberingPacker`: a script's calls packed from a template (what does not vary
# from call to call packed once), byte for byte what hiredis packs for the same call.


class _State(enum.StrEnum):
    IDLE = "idle"
    BUSY = "busy"


def _hiredis(sha: str, keys: list[Any], args: list[Any]) -> bytes:
    return hiredis.pack_command(("EVALSHA", sha, len(keys), *keys, *args))


def _job_call(n: int) -> tuple[list[Any], list[Any]]:
    """A worker's call of the shape of its jobs' ends: the job's own words vary, the
    rest does not."""
    job = uuid.uuid4().hex
    at = 1795823664.735456 + n
    keys = [f"rq:job:{job}:dependents", "rq:queue:q", "rq:queue:q:intermediate"]
    args = [
        "rq:job:",
        4,
        "HSET",
        "rq:worker:w",
        "state",
        _State.IDLE,
        4,
        "HINCRBYFLOAT",
        "rq:worker:w",
        "total_working_time",
        0.016837 + n,
        6,
        "HSET",
        f"rq:job:{job}",
        "ended_at",
        f"2026-11-27T23:54:24.{n:06d}Z",
        "status",
        _State.BUSY,
        7,
        "XADD",
        f"rq:results:{job}",
        b"MAXLEN",
        b"~",
        "10",
        "*",
        "execution_started_at",
        at,
        3,
        "EXPIRE",
        f"rq:job:{job}",
        500,
        4,
        "ZADD",
        "rq:finished:q",
        int(at) + 500,
        job,
        2,
        "DEL",
        b"100% " + job.encode(),
    ]
    return keys, args


def test_a_templated_call_is_what_hiredis_packs() -> None:
    inner = redis.connection.HiredisRespSerializer()
    packer = RememberingPacker(inner)
    sha = "a" * 40
    calls = [_job_call(n) for n in range(6)]
    for keys, args in calls:
        assert packer.evalsha(sha, keys, args) == _hiredis(sha, keys, args)
    assert len(packer._templates) == 1  # calls 3 on came from it


@pytest.mark.parametrize(
    "change",
    [
        ("rq:worker:w", "rq:worker:other"),  # a constant word changes
        (500, 501),
        (500, 500.0),  # equal, another type
        (_State.IDLE, "idle"),  # equal, another type
        (_State.IDLE, _State.BUSY),
        ("state", "ètat"),  # not ASCII
        ("rq:job:", b"rq:job:"),
        (4, -4),
    ],
)
def test_a_call_unlike_its_template_is_still_what_hiredis_packs(change: tuple[Any, Any]) -> None:
    """A word the template took for constant that changes (or changes type), or a word
    that varies and is packed here, whatever its value: the same bytes as hiredis's,
    then and in the calls after."""
    old, new = change
    packer = RememberingPacker(redis.connection.HiredisRespSerializer())
    sha = "b" * 40
    for n in range(3):
        keys, args = _job_call(n)
        assert packer.evalsha(sha, keys, args) == _hiredis(sha, keys, args)
    for n in range(3, 7):
        keys, args = _job_call(n)
        if n != 5:
            args = [new if type(a) is type(old) and a == old else a for a in args]
        assert packer.evalsha(sha, keys, args) == _hiredis(sha, keys, args)


def test_varying_words_of_any_value_are_what_hiredis_packs() -> None:
    packer = RememberingPacker(redis.connection.HiredisRespSerializer())
    sha = "c" * 40
    values: list[Any] = ["x", "", "é", "%s%%", b"\r\n%b", 0, -7, 2**70, 1.5, 1e20, 1e-07]
    values += [-0.0, float("inf"), float("nan"), _State.BUSY, 3.0]
    for n, value in enumerate([*values, *reversed(values)]):
        args = ["HSET", "k", "f", value, n]
        assert packer.evalsha(sha, ["k"], args) == _hiredis(sha, ["k"], args)
    with pytest.raises(UnicodeEncodeError):  # as hiredis refuses them
        packer.evalsha(sha, ["k"], ["HSET", "k", "f", "\udc80", 99])
    with pytest.raises(redis.exceptions.DataError):
        packer.evalsha(sha, ["k"], ["HSET", "k", "f", True, 99])


def test_scripts_run_through_a_remembering_packer(client: redis.Redis) -> None:
    """On a single connection client: the same replies, NOSCRIPT answered as before
    (one SCRIPT LOAD), other commands packed by redis-py, and its packer given back."""
    kept = redis.Redis(connection_pool=client.connection_pool, single_connection_client=True)
    own = kept.connection._command_packer  # type: ignore[union-attr]
    packer = remember_packing(kept)
    assert packer is not None and remember_packing(kept) is packer
    script = kept.register_script(ECHO)
    for n in range(4):
        assert run_script(kept, script, [f"k{n}"], ["a", n]) == [f"k{n}".encode(), b"a", b"%d" % n]
    assert packer._templates
    kept.script_flush()
    loads = _calls(client, "script|load")
    assert run_script(kept, script, ["k"], ["a", 9]) == [b"k", b"a", b"9"]
    assert run_script(kept, script, ["k"], ["a", 10]) == [b"k", b"a", b"10"]
    assert _calls(client, "script|load") == loads + 1
    kept.connection.disconnect()  # type: ignore[union-attr]
    assert run_script(kept, script, ["k"], ["a", 11]) == [b"k", b"a", b"11"]  # reconnected
    assert kept.set("plain", "1") and kept.get("plain") == b"1"
    with pytest.raises(redis.exceptions.ResponseError, match="refused here"):
        run_script(kept, kept.register_script("return redis.error_reply('refused here')"), [], [])
    forget_packing(kept)
    assert kept.connection._command_packer is own  # type: ignore[union-attr]
    kept.close()


def test_only_hiredis_packing_is_replaced(client: redis.Redis) -> None:
    python = redis.connection.PythonRespSerializer(
        6000, redis.connection.Encoder("utf-8", "strict", False).encode
    )
    kept = redis.Redis(connection_pool=client.connection_pool, single_connection_client=True)
    kept.connection._command_packer = python  # type: ignore[union-attr]
    assert remember_packing(kept) is None
    assert kept.connection._command_packer is python  # type: ignore[union-attr]
    script = kept.register_script(ECHO)
    assert run_script(kept, script, ["k"], ["a", 2]) == [b"k", b"a", b"2"]
    kept.close()
