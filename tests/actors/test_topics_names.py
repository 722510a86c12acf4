"""Topic names, their groups, and `Topic` patterns: matching, building, clashes."""

from __future__ import annotations

import re

import pytest
from channels.layers import BaseChannelLayer
from pydantic import BaseModel

from actors.topics import Topic, TopicDefinitionError, TopicRegistry, group_for, topics
from envelope import message
from handlers import authenticated


@message("test.topics.announcement")
class Announcement(BaseModel):
    text: str


class Unnamed(BaseModel):
    text: str


NAMES = [
    "a",
    "room.lobby",
    "room_lobby",
    "room__lobby",
    "room:lobby",
    "room_clobby",
    "user.7",
    "x-y.z_w:1",
    "a" * 100,
    "a" * 48 + ":" * 52,
    "b" * 99 + ":",
]


@pytest.mark.parametrize("name", NAMES)
def test_group_is_valid_for_channel_layers(name: str) -> None:
    group = group_for(name)
    assert BaseChannelLayer().require_valid_group_name(group)
    assert len(group) < 100
    assert re.fullmatch(r"[A-Za-z0-9._\-]+", group)


def test_groups_are_unambiguous() -> None:
    groups = [group_for(name) for name in NAMES]
    assert len(set(groups)) == len(NAMES)
    # The escape would make these two equal if it were not reversible.
    assert group_for("a:b") != group_for("a_cb")
    assert group_for("a_b") != group_for("a__b")


@pytest.mark.parametrize("bad", ["", "a b", "a/b", "é", "a" * 101, 7, None])
def test_bad_topic_names_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="topic name"):
        group_for(bad)  # type: ignore[arg-type]


def test_a_pattern_matches_with_typed_params() -> None:
    reg = TopicRegistry()
    poll = Topic("poll.{pk:int}.votes", registry=reg)
    room = Topic("room.{name}", registry=reg)
    found = reg.match("poll.12.votes")
    assert found is not None and found.spec is poll and found.params == {"pk": 12}
    found = reg.match("room.a:b-c")
    assert found is not None and found.spec is room and found.params == {"name": "a:b-c"}
    assert reg.match("poll.x.votes") is None
    assert reg.match("room.a.b") is None
    assert reg.match("room") is None
    assert room.name(name="lobby") == "room.lobby"
    with pytest.raises(ValueError):
        poll.name(pk="nope")


def test_default_permission_is_authenticated() -> None:
    reg = TopicRegistry()
    assert Topic("x.{a}", registry=reg).permission is authenticated


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("room.{name}", "room.{other}"),
        ("room.{name}", "room.lobby"),
        ("room.{pk:int}", "room.12"),
        ("room.{pk:int}", "room.{name}"),
        ("{a}.x", "y.{b}"),
    ],
)
def test_clashing_patterns_are_an_error(first: str, second: str) -> None:
    reg = TopicRegistry()
    Topic(first, registry=reg)
    with pytest.raises(TopicDefinitionError, match="clashes"):
        Topic(second, registry=reg, permission=None)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("room.{name}", "room.{name}.log"),
        ("room.{pk:int}", "room.lobby"),
        ("room.lobby", "room.hall"),
        ("a.{x}", "b.{x}"),
    ],
)
def test_distinct_patterns_coexist(first: str, second: str) -> None:
    reg = TopicRegistry()
    Topic(first, registry=reg)
    Topic(second, registry=reg)
    assert len(reg) == 2


@pytest.mark.parametrize(
    "pattern",
    ["", "room.", "room.{name", "room-{name}", "room.{1x}", "a.{x}.{x}", "a b", "a/{x}"],
)
def test_bad_patterns_are_an_error(pattern: str) -> None:
    with pytest.raises(TopicDefinitionError):
        Topic(pattern, registry=TopicRegistry())


def test_non_callable_checks_are_an_error() -> None:
    with pytest.raises(TopicDefinitionError, match="not callable"):
        Topic("a.{x}", permission="staff", registry=TopicRegistry())  # type: ignore[arg-type]


def test_a_queue_must_be_a_name() -> None:
    with pytest.raises(TopicDefinitionError, match="queue"):
        Topic("a.{x}", queue="", registry=TopicRegistry())


def test_a_topic_remembers_the_module_that_declared_it() -> None:
    assert Topic("a.{x}", registry=TopicRegistry()).module == __name__


def test_the_user_topic_is_declared() -> None:
    found = topics.match("user.42")
    assert found is not None and found.params == {"pk": "42"}
    with pytest.raises(TopicDefinitionError, match="clashes"):
        Topic("user.{id}", permission=None)


def test_a_topic_declares_the_models_published_to_it() -> None:
    registry = TopicRegistry()
    declared = Topic("news.{pk:int}", pushes=[Announcement], registry=registry)
    assert declared.pushes == (Announcement,)
    assert Topic("notes.{pk:int}", registry=registry).pushes == ()


def test_pushes_must_be_message_models() -> None:
    with pytest.raises(TopicDefinitionError, match="not a @message model"):
        Topic("bulletin.{pk:int}", pushes=[Unnamed], registry=TopicRegistry())
