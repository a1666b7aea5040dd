"""The TypedDicts of lamina.domain.ec2_models against botocore's ``ec2`` shapes: same members, same
order, compatible types; the stored classes add only lamina's ``_`` bookkeeping keys."""

from __future__ import annotations

import typing
from typing import Any

import botocore.session
import pytest

from lamina.domain import ec2_models

_PRIMITIVE: dict[str, type] = {
    "string": str,
    "integer": int,
    "long": int,
    "boolean": bool,
    "double": float,
    "float": float,
    # lamina stores timestamps already rendered for the wire.
    "timestamp": str,
    "blob": bytes,
}

_MODEL = botocore.session.get_session().get_service_model("ec2")
_BY_SHAPE = {shape: cls for cls, (_, shape) in ec2_models.SHAPES.items()}
_CLASSES = sorted(ec2_models.SHAPES.items(), key=lambda item: item[0].__name__)


def _expected(shape: Any) -> Any:
    """The Python type a botocore shape maps to."""
    kind = shape.type_name
    if kind in _PRIMITIVE:
        return _PRIMITIVE[kind]
    if kind == "list":
        return list[_expected(shape.member)]
    if kind == "map":
        return dict[_expected(shape.key), _expected(shape.value)]
    assert kind == "structure", kind
    return _BY_SHAPE[shape.name]


def test_every_typeddict_is_mapped() -> None:
    declared = {
        obj
        for obj in vars(ec2_models).values()
        if isinstance(obj, type) and typing.is_typeddict(obj) and obj.__module__ == ec2_models.__name__
    }
    assert declared == set(ec2_models.SHAPES) | set(ec2_models.STORED)
    assert all(service == "ec2" for service, _ in ec2_models.SHAPES.values())


@pytest.mark.parametrize(("cls", "where"), _CLASSES, ids=[c.__name__ for c, _ in _CLASSES])
def test_members_in_botocore_order(cls: type, where: tuple[str, str]) -> None:
    shape = _MODEL.shape_for(where[1])
    assert list(cls.__annotations__) == list(shape.members)
    # Output shapes have no required members: lamina fills them in stages.
    assert cls.__total__ is False


@pytest.mark.parametrize(("cls", "where"), _CLASSES, ids=[c.__name__ for c, _ in _CLASSES])
def test_member_types(cls: type, where: tuple[str, str]) -> None:
    shape = _MODEL.shape_for(where[1])
    hints = typing.get_type_hints(cls)
    for member, member_shape in shape.members.items():
        assert hints[member] == _expected(member_shape), member


def test_nested_shapes_are_mapped() -> None:
    """Every structure a mapped shape nests is itself mapped (so its members are checked too)."""
    for _, name in ec2_models.SHAPES.values():
        for member in _MODEL.shape_for(name).members.values():
            inner = member
            while inner.type_name in ("list", "map"):
                inner = inner.member if inner.type_name == "list" else inner.value
            if inner.type_name == "structure":
                assert inner.name in _BY_SHAPE, f"{name}.{inner.name}"


@pytest.mark.parametrize("stored", list(ec2_models.STORED), ids=lambda c: c.__name__)
def test_stored_classes_add_only_bookkeeping_keys(stored: type) -> None:
    wire = ec2_models.STORED[stored]
    hints, wire_hints = typing.get_type_hints(stored), typing.get_type_hints(wire)
    assert {k: v for k, v in hints.items() if not k.startswith("_")} == wire_hints
    assert [k for k in hints if k.startswith("_")], "a stored class adds bookkeeping keys"
    assert stored.__total__ is False


def test_stored_resource_covers_every_stored_body() -> None:
    members = set(typing.get_args(ec2_models.StoredResource))
    assert set(ec2_models.STORED) <= members
    assert not {ec2_models.STORED[s] for s in ec2_models.STORED} & members
