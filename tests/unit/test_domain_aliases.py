"""Alias rules (pure): names, the routing checks in AWS's order, the weighted choice."""

from __future__ import annotations

import random

import pytest

from lamina.domain import aliases as A
from lamina.errors import AwsError, BodyStyle


@pytest.mark.parametrize(
    ("qualifier", "alias"),
    [(None, False), ("$LATEST", False), ("7", False), ("live", True), ("2024-01-02", True), ("a$b", False)],
    ids=["none", "latest", "version", "name", "date", "dollar"],
)
def test_is_alias_name(qualifier: str | None, alias: bool) -> None:
    assert A.is_alias_name(qualifier) is alias


def test_version_seq() -> None:
    assert (A.version_seq("$LATEST"), A.version_seq("12"), A.version_seq("$LATEST.PUBLISHED")) == (
        0,
        12,
        None,
    )


@pytest.mark.parametrize(
    ("version", "weights", "message"),
    [
        # The count is checked first: this one also names the primary version.
        ("1", {"1": 0.8, "2": 0.2}, "Number of items in AdditionalVersionWeights cannot be greater than 1"),
        (
            "1",
            {"1": 0.5},
            "Invalid function version 1. Function version 1 is already included in routing configuration.",
        ),
        ("$LATEST", {"1": 0.5}, "$LATEST is not supported for an alias pointing to more than 1 version"),
    ],
    ids=["too-many", "same-version", "latest"],
)
def test_check_routing_refusals(version: str, weights: dict[str, float], message: str) -> None:
    with pytest.raises(AwsError) as e:
        A.check_routing(version, weights)
    assert (e.value.code, e.value.status, e.value.message) == ("InvalidParameterValueException", 400, message)


def test_latest_refusal_has_no_type_member() -> None:
    with pytest.raises(AwsError) as e:
        A.check_routing("$LATEST", {"2": 0.1})
    assert e.value.style is BodyStyle.LOWER


@pytest.mark.parametrize(("version", "weights"), [("1", {}), ("1", {"2": 0.0}), ("$LATEST", {})], ids=str)
def test_check_routing_accepts(version: str, weights: dict[str, float]) -> None:
    A.check_routing(version, weights)


def test_make_config_order_and_no_empty_routing() -> None:
    with_routing = A.make_config("arn", "live", "1", "", {"2": 1}, "rev")
    assert list(with_routing) == [
        "AliasArn",
        "Name",
        "FunctionVersion",
        "Description",
        "RoutingConfig",
        "RevisionId",
    ]
    assert with_routing["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 1.0}}
    assert "RoutingConfig" not in A.make_config("arn", "live", "1", "", {}, "rev")


def test_routing_choice_follows_the_draw() -> None:
    routing = A.routing_of(A.make_config("arn", "live", "1", "", {"2": 0.25}, "rev"))
    assert routing == A.Routing("1", "2", 0.25) and routing.versions == ("1", "2")
    assert [routing.choose(d) for d in (0.0, 0.2499, 0.25, 0.99)] == ["2", "2", "1", "1"]
    plain = A.routing_of(A.make_config("arn", "live", "3", "", {}, "rev"))
    assert plain.versions == ("3",) and plain.choose(0.0) == "3"


def test_routing_shares_over_many_draws() -> None:
    rng = random.Random(15)
    routing = A.Routing("1", "2", 0.1)
    extra = sum(routing.choose(rng.random()) == "2" for _ in range(10_000))
    assert 850 < extra < 1150  # mean 1000, standard deviation 30


def test_version_in_use_lists_like_java() -> None:
    e = A.version_in_use(["canary", "live"])
    assert (e.status, e.message) == (
        409,
        "Unable to delete version because the following aliases reference it: [canary, live]",
    )


_WEIGHTS = "routingConfig.additionalVersionWeights"
_VALUES = (
    "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have "
    "value greater than or equal to 0.0, Member must not be null]"
)
_KEYS = (
    "Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have "
    "length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]"
)


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"2": 2}, f"Value '{{2=2.0}}' at '{_WEIGHTS}' failed to satisfy constraint: {_VALUES}"),
        ({"2": -1}, f"Value '{{2=-1.0}}' at '{_WEIGHTS}' failed to satisfy constraint: {_VALUES}"),
        ({"$LATEST": 0.5}, f"Value '{{$LATEST=0.5}}' at '{_WEIGHTS}' failed to satisfy constraint: {_KEYS}"),
    ],
    ids=["above", "below", "key"],
)
def test_weight_constraints_as_recorded(weights: dict[str, float], expected: str) -> None:
    with pytest.raises(AwsError) as e:
        A.check_weights({"AdditionalVersionWeights": weights})
    assert (e.value.code, e.value.message) == (
        "ValidationException",
        f"1 validation error detected: {expected}",
    )


@pytest.mark.parametrize(
    "routing", [None, {}, {"AdditionalVersionWeights": {}}, {"AdditionalVersionWeights": {"2": 0.0}}]
)
def test_weight_constraints_accept(routing: object) -> None:
    A.check_weights(routing)
