"""`actors._scripts.run_script`: a redis-py `Script` run by EVALSHA on a given client, as
calling the `Script` would. A real Redis (the suite's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from actors._scripts import run_script

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
