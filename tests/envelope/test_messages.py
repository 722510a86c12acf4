from __future__ import annotations

import pytest
from pydantic import BaseModel

from envelope import MessageDefinitionError, MessageRegistry, message, wire_name


def test_message_gives_a_model_its_wire_name_and_registers_it() -> None:
    registry = MessageRegistry()

    @message("m.one", registry=registry)
    class One(BaseModel):
        x: int

    assert wire_name(One) == "m.one"
    assert wire_name(One(x=1)) == "m.one"
    assert registry["m.one"] is One
    assert "m.one" in registry


def test_a_second_model_under_one_name_is_an_error_naming_both() -> None:
    registry = MessageRegistry()

    @message("m.dup", registry=registry)
    class First(BaseModel):
        pass

    with pytest.raises(MessageDefinitionError, match=r"already used by .*First.*Second"):

        @message("m.dup", registry=registry)
        class Second(BaseModel):
            pass


@pytest.mark.parametrize("name", ["", "has space", "x" * 101, "ümlaut", 5])
def test_bad_names_are_refused(name: object) -> None:
    with pytest.raises(MessageDefinitionError, match="1-100 chars"):
        message(name)  # type: ignore[arg-type]


def test_only_pydantic_models_can_be_messages() -> None:
    with pytest.raises(MessageDefinitionError, match="BaseModel"):
        message("m.notamodel", registry=MessageRegistry())(dict)  # type: ignore[type-var]


def test_a_subclass_does_not_inherit_its_parents_wire_name() -> None:
    @message("m.parent", registry=MessageRegistry())
    class Parent(BaseModel):
        pass

    class Child(Parent):
        pass

    with pytest.raises(TypeError, match="no wire name"):
        wire_name(Child)
