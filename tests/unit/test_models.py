"""The TypedDicts of lamina.domain.models, ec2_models, s3_models and logs_models against botocore's shapes:
same members, same order, compatible types, so that a botocore update that changes a shape is
noticed here."""

from __future__ import annotations

import typing
from typing import Any

import botocore.session
import pytest

from lamina.domain import ec2_models, logs_models, models, s3_models

MODULES = [models, ec2_models, s3_models, logs_models]

_PRIMITIVE: dict[str, type] = {
    "string": str,
    "integer": int,
    "long": int,
    "boolean": bool,
    "double": float,
    "float": float,
    # lamina stores timestamps already rendered for the wire (Lambda's own are strings in the model).
    "timestamp": str,
    "blob": bytes,
}

_SESSION = botocore.session.get_session()
_SHAPES: dict[type, tuple[str, str]] = {
    **models.SHAPES,
    **ec2_models.SHAPES,
    **s3_models.SHAPES,
    **logs_models.SHAPES,
}
_BY_SHAPE = {shape: cls for cls, shape in _SHAPES.items()}


def _shape(service: str, name: str) -> Any:
    return _SESSION.get_service_model(service).shape_for(name)


def _expected(service: str, shape: Any) -> Any:
    """The Python type a botocore shape maps to."""
    kind = shape.type_name
    if kind == "timestamp" and (service, shape.name) == ("lambda", "Date"):
        return float  # Lambda's Date shape (event invoke configs) is epoch seconds on the wire
    if kind in _PRIMITIVE:
        return _PRIMITIVE[kind]
    if kind == "list":
        return list[_expected(service, shape.member)]
    if kind == "map":
        return dict[_expected(service, shape.key), _expected(service, shape.value)]
    assert kind == "structure", kind
    return _BY_SHAPE[(service, shape.name)]


_CLASSES = sorted(_SHAPES.items(), key=lambda item: (item[0].__module__, item[0].__name__))


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_typeddict_is_mapped(module: Any) -> None:
    declared = {
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and typing.is_typeddict(obj) and obj.__module__ == module.__name__
    }
    # ec2_models' stored bodies (wire shape + lamina's bookkeeping keys) are checked in test_models_ec2.
    assert declared == set(module.SHAPES) | set(getattr(module, "STORED", {}))


@pytest.mark.parametrize(("cls", "where"), _CLASSES, ids=[c.__name__ for c, _ in _CLASSES])
def test_members_in_botocore_order(cls: type, where: tuple[str, str]) -> None:
    service, name = where
    shape = _shape(service, name)
    assert list(cls.__annotations__) == list(shape.members)
    # Output shapes have no required members: lamina fills them in stages.
    assert cls.__total__ is False


@pytest.mark.parametrize(("cls", "where"), _CLASSES, ids=[c.__name__ for c, _ in _CLASSES])
def test_member_types(cls: type, where: tuple[str, str]) -> None:
    service, name = where
    shape = _shape(service, name)
    hints = typing.get_type_hints(cls)
    for member, member_shape in shape.members.items():
        assert hints[member] == _expected(service, member_shape), member


def test_nested_shapes_are_mapped() -> None:
    """Every structure a mapped shape nests is itself mapped (so its members are checked too)."""
    for service, name in _SHAPES.values():
        for member in _shape(service, name).members.values():
            inner = member
            while inner.type_name in ("list", "map"):
                inner = inner.member if inner.type_name == "list" else inner.value
            if inner.type_name == "structure":
                assert (service, inner.name) in _BY_SHAPE, f"{name}.{inner.name}"
