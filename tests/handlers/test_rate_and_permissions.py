from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from handlers import Rate, all_of, any_of, authenticated, staff, superuser


@pytest.mark.parametrize(
    ("spec", "rate"),
    [
        ("20/10s", Rate(20, 10.0)),
        ("5/s", Rate(5, 1.0)),
        ("100/m", Rate(100, 60.0)),
        ("100/5min", Rate(100, 300.0)),
        ("1000/h", Rate(1000, 3600.0)),
        (" 3 / 2s ", Rate(3, 2.0)),
    ],
)
def test_rate_specs_parse(spec: str, rate: Rate) -> None:
    assert Rate.parse(spec) == rate


@pytest.mark.parametrize("spec", ["", "10", "x/s", "0/s", "5/0s", "5/d", "-1/s"])
def test_bad_rate_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        Rate.parse(spec)


def test_limiter_allows_a_burst_then_says_how_long_to_wait() -> None:
    limiter = Rate(2, 10.0).limiter()
    assert limiter.hit(100.0) == 0.0
    assert limiter.hit(100.0) == 0.0
    assert limiter.hit(100.0) == pytest.approx(5.0)
    assert limiter.hit(105.0) == 0.0  # one token came back after 5 s
    assert limiter.hit(105.0) > 0


def _ctx(**user: Any) -> Any:
    return SimpleNamespace(user=SimpleNamespace(**user))


def test_user_permissions() -> None:
    anon = _ctx(is_authenticated=False, is_staff=False, is_superuser=False)
    member = _ctx(is_authenticated=True, is_staff=False, is_superuser=False)
    admin = _ctx(is_authenticated=True, is_staff=True, is_superuser=True)
    assert [authenticated(None, c) for c in (anon, member, admin)] == [False, True, True]
    assert [staff(None, c) for c in (anon, member, admin)] == [False, False, True]
    assert [superuser(None, c) for c in (anon, member, admin)] == [False, False, True]
    assert authenticated(None, SimpleNamespace(user=None)) is False


def test_combinators_sync() -> None:
    def yes(m: Any, c: Any) -> bool:
        return True

    def no(m: Any, c: Any) -> bool:
        return False

    assert all_of(yes, yes)(None, None) is True
    assert all_of(yes, no)(None, None) is False
    assert any_of(no, yes)(None, None) is True
    assert any_of(no, no)(None, None) is False


async def test_combinators_become_async_when_a_check_is() -> None:
    async def yes(m: Any, c: Any) -> bool:
        return True

    def no(m: Any, c: Any) -> bool:
        return False

    assert await all_of(no, yes)(None, None) is False  # type: ignore[misc]
    assert await any_of(no, yes)(None, None) is True  # type: ignore[misc]
