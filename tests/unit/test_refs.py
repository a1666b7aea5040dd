"""Value objects that replace hand-split ARNs and (account, region, name) tuples."""

from __future__ import annotations

import dataclasses

import pytest

from lamina.domain.arns import Arn
from lamina.domain.functions import FunctionRef, parse_function_name


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("arn:aws:iam::123456789012:role/r", ("aws", "iam", "", "123456789012", "role/r")),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:f:7",
            ("aws", "lambda", "us-east-1", "123456789012", "function:f:7"),
        ),
        (
            "arn:aws:sts::123456789012:assumed-role/r/s",
            ("aws", "sts", "", "123456789012", "assumed-role/r/s"),
        ),
    ],
    ids=["role", "qualified-function", "session"],
)
def test_arn_parts_and_round_trip(text: str, parts: tuple[str, ...]) -> None:
    arn = Arn.parse(text)
    assert arn is not None
    assert (arn.partition, arn.service, arn.region, arn.account, arn.resource) == parts
    assert str(arn) == text


@pytest.mark.parametrize(
    "text", ["", "role/r", "arn:aws:iam::123456789012", "xrn:aws:iam::123456789012:role/r"], ids=str
)
def test_not_an_arn(text: str) -> None:
    assert Arn.parse(text) is None


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("arn:aws:iam::123456789012:role/r", "r"),
        ("arn:aws:iam::123456789012:role/service-role/a/r", "r"),  # the path is not part of the name
        ("arn:aws:iam::123456789012:user/u", None),
        ("arn:aws:lambda:us-east-1:123456789012:role/r", None),  # only IAM has roles
    ],
    ids=["plain", "with-path", "user", "other-service"],
)
def test_role_name(text: str, name: str | None) -> None:
    arn = Arn.parse(text)
    assert arn is not None
    assert arn.role_name == name


def test_function_ref_arns_and_identity() -> None:
    ref = parse_function_name("f:3", account="123456789012", region="eu-west-1")
    assert ref == FunctionRef("123456789012", "eu-west-1", "f", "3")
    assert ref.arn == "arn:aws:lambda:eu-west-1:123456789012:function:f"
    assert ref.qualified_arn == "arn:aws:lambda:eu-west-1:123456789012:function:f:3"
    # Without its qualifier it is the key of everything that belongs to the function.
    assert ref.function == FunctionRef("123456789012", "eu-west-1", "f")
    unqualified = ref.function
    assert unqualified.function is unqualified
    assert hash(ref.function) == hash(FunctionRef("123456789012", "eu-west-1", "f"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.name = "g"  # type: ignore[misc]
