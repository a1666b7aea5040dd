"""Function tags (pure): the resource a tagging request names, AWS's limits, and the authorization
table's tag condition keys for Lambda."""

from __future__ import annotations

import re
from typing import Any

import pytest

from lamina.domain import function_tags as T
from lamina.domain.actions import Check, checks
from lamina.errors import InvalidParameterValueException, ValidationException

ACCOUNT = "111111111111"
REGION = "us-east-1"
FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"


class NoStores:
    def subnet_vpc(self, account: str, region: str, subnet_id: str) -> str | None:
        return None

    def iam_entity(self, account: str, kind: str, name: str) -> None:
        return None


def test_function_target() -> None:
    assert T.tag_target(FN) == T.TagTarget(T.ResourceKind.FUNCTION, REGION, ACCOUNT, "f")


@pytest.mark.parametrize("qualifier", ["1", "live", "$LATEST"])
def test_qualified_function_refused(qualifier: str) -> None:
    with pytest.raises(InvalidParameterValueException) as e:
        T.tag_target(f"{FN}:{qualifier}")
    assert e.value.message == T.QUALIFIED


def test_layer_refused() -> None:
    with pytest.raises(InvalidParameterValueException) as e:
        T.tag_target(f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:lay")
    assert e.value.message == T.UNSUPPORTED_TYPE


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        (FN, True),
        (f"{FN}:$LATEST", True),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:lay", True),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:lay:1", False),
        ("arn:aws:something", False),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:foobar:x", False),
    ],
    ids=["function", "latest", "layer", "layer-version", "other", "foobar"],
)
def test_pattern(text: str, matches: bool) -> None:
    assert (re.fullmatch(T.TAGGABLE_RESOURCE_PATTERN, text) is not None) is matches


def test_tagged_merges_and_overwrites() -> None:
    assert T.tagged({"a": "1", "b": "2"}, {"b": "3", "c": "4"}) == {"a": "1", "b": "3", "c": "4"}


def test_tagged_refuses_nothing() -> None:
    with pytest.raises(InvalidParameterValueException) as e:
        T.tagged({"a": "1"}, {})
    assert e.value.message == T.NO_TAGS


def test_limit_counts_the_result() -> None:
    current = {f"k{i}": "v" for i in range(49)}
    assert len(T.tagged(current, {"k0": "new", "x": "y"})) == 50
    with pytest.raises(InvalidParameterValueException) as e:
        T.tagged(current, {"x": "y", "z": "w"})
    assert e.value.message == T.TOO_MANY_TAGS
    T.check_count({f"k{i}": "v" for i in range(50)})
    with pytest.raises(InvalidParameterValueException):
        T.check_count({f"k{i}": "v" for i in range(51)})


def test_untagged_ignores_absent_keys() -> None:
    assert T.untagged({"a": "1", "b": "2"}, ["a", "zz"]) == {"b": "2"}


def test_listed_by_key() -> None:
    assert list(T.listed({"b": "1", "10_key": "2", "1_key": "3"})) == ["10_key", "1_key", "b"]


def _checks(operation: str, params: dict[str, Any]) -> tuple[Check, ...]:
    found = checks("lambda", operation, account=ACCOUNT, region=REGION, params=params, lookups=NoStores())
    assert found is not None
    return found


def test_tag_resource_row() -> None:
    (check,) = _checks("TagResource", {"Resource": FN, "Tags": {"team": "blue", "env": "dev"}})
    assert check == Check(
        "lambda:TagResource",
        FN,
        {"aws:RequestTag/team": "blue", "aws:RequestTag/env": "dev", "aws:TagKeys": ("team", "env")},
    )


def test_untag_resource_row() -> None:
    (check,) = _checks("UntagResource", {"Resource": FN, "TagKeys": ["a", "b", "a"]})
    assert check == Check("lambda:UntagResource", FN, {"aws:TagKeys": ("a", "b")})


def test_list_tags_row() -> None:
    assert _checks("ListTags", {"Resource": FN}) == (Check("lambda:ListTags", FN),)


def test_create_function_with_tags_also_needs_tag_resource() -> None:
    found = _checks("CreateFunction", {"FunctionName": "f", "Tags": {"team": "blue"}})
    keys = {"aws:RequestTag/team": "blue", "aws:TagKeys": ("team",)}
    assert found[0] == Check("lambda:CreateFunction", FN, keys)
    assert Check("lambda:TagResource", FN, keys) in found


@pytest.mark.parametrize("odd", [None, 7, "", ["x"], {"k": 1}], ids=["none", "int", "empty", "list", "map"])
def test_odd_values_never_raise(odd: Any) -> None:
    for operation in ("TagResource", "UntagResource", "ListTags"):
        assert _checks(operation, {"Resource": odd, "Tags": odd, "TagKeys": odd})


def test_tag_constraints() -> None:
    T.check_tags({"a" * 128: "v" * 256, "with space:/=+-@.": "ü"})
    with pytest.raises(ValidationException) as e:
        T.check_tags({"a" * 129: "v"})
    assert e.value.message == (
        f"1 validation error detected: Value '{{{'a' * 129}=v}}' at 'tags' failed to satisfy constraint: "
        f"Map keys must satisfy constraint: {T.KEY_CONSTRAINTS}"
    )
    with pytest.raises(ValidationException) as e:
        T.check_tags({"": "v", "k": "x" * 257})
    assert e.value.message.startswith("2 validation errors detected: ")
    assert "Map value must satisfy constraint" in e.value.message
    with pytest.raises(ValidationException):
        T.check_tags({"k": "semi;colon"})
