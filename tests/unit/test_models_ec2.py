"""lamina.domain.ec2_models beyond the shape checks of test_models.py: every shape is EC2's, and the
stored classes add only lamina's ``_`` bookkeeping keys to their wire shapes."""

from __future__ import annotations

import typing

import pytest

from lamina.domain import ec2_models


def test_every_shape_is_ec2s() -> None:
    assert all(service == "ec2" for service, _ in ec2_models.SHAPES.values())


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
