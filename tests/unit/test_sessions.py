"""STS session rules: session tags, transitive tags along a role chain, packed size, ARNs."""

from __future__ import annotations

import json

import pytest

from lamina.domain import sessions
from lamina.errors import AwsError


def test_requested_tags_keep_their_case_and_order() -> None:
    out = sessions.session_tags([("Team", "a"), ("Stage", "b")], ["team"])
    assert dict(out.tags) == {"Team": "a", "Stage": "b"}
    assert out.transitive_keys == ("Team",)


@pytest.mark.parametrize(
    ("requested", "transitive", "inherited", "carried", "message"),
    [
        pytest.param(
            [("A", "1"), ("a", "2")], [], {}, (), sessions.DUPLICATE_TAG_KEYS, id="duplicate-any-case"
        ),
        pytest.param(
            [("A", "1")], ["B"], {}, (), sessions.TRANSITIVE_NOT_IN_TAGS, id="transitive-not-requested"
        ),
        pytest.param([], ["B"], {}, (), sessions.TRANSITIVE_NOT_IN_TAGS, id="transitive-without-tags"),
        pytest.param(
            [("TEAM", "x")], [], {"Team": "a"}, ("Team",), sessions.TRANSITIVE_CONFLICT, id="override"
        ),
    ],
)
def test_tag_errors(
    requested: list[tuple[str, str]],
    transitive: list[str],
    inherited: dict[str, str],
    carried: tuple[str, ...],
    message: str,
) -> None:
    with pytest.raises(AwsError) as e:
        sessions.session_tags(requested, transitive, inherited, carried)
    assert (e.value.code, e.value.status, e.value.message) == ("InvalidParameterValue", 400, message)


def test_only_transitive_tags_are_inherited() -> None:
    out = sessions.session_tags([("Stage", "2")], ["Stage"], {"Team": "a", "Temp": "x"}, ("Team",))
    assert dict(out.tags) == {"Team": "a", "Stage": "2"}
    assert out.transitive_keys == ("Team", "Stage")
    # A tag of the caller that was not transitive may be set again.
    assert dict(sessions.session_tags([("Temp", "y")], [], {"Temp": "x"}, ()).tags) == {"Temp": "y"}


def test_packed_size() -> None:
    policy = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    )
    small = sessions.packed_size(policy, [], {})
    assert 0 < small.policies <= 30 and small.tags == 0
    # Whitespace does not count.
    assert sessions.packed_size(json.dumps(json.loads(policy), indent=8), [], {}) == small
    both = sessions.packed_size(policy, ["arn:aws:iam::aws:policy/ReadOnlyAccess"], {"Team": "a"})
    assert both.policies > small.policies and both.tags > 0 and both.total >= both.policies
    assert sessions.packed_size(None, [], {}) == sessions.PackedSize(0, 0, 0)
    sessions.check_packed_size(both)


def test_packed_size_errors() -> None:
    with pytest.raises(AwsError) as e:
        sessions.check_packed_size(sessions.PackedSize(130, 0, 130))
    assert (e.value.code, e.value.message) == (
        "PackedPolicyTooLarge",
        "Packed policy consumes 130% of allotted space, please use smaller policy.",
    )
    with pytest.raises(AwsError) as e:
        sessions.check_packed_size(sessions.PackedSize(60, 50, 110))
    assert e.value.message == "Packed size of session tags consumes 110% of allotted space."


@pytest.mark.parametrize(
    ("arn", "valid"),
    [
        ("arn:aws:iam::000000000000:role/x", True),
        ("arn:aws:s3:::bucket", True),
        ("nothing-valid-in-here", False),
        ("arn::b:::something/test-role", False),
        ("arn:a::::something/test-role", False),
        ("arn:a:::something/test-role", False),
        ("arn:a:a::aaaaaaaaaa:", False),
    ],
)
def test_arn_check(arn: str, valid: bool) -> None:
    assert sessions.is_valid_arn(arn) is valid


def test_duration() -> None:
    assert sessions.role_duration_error(3600, 3600, chained=True) is None
    assert sessions.role_duration_error(43_200, 43_200, chained=False) is None
    chained = sessions.role_duration_error(3601, 43_200, chained=True)
    assert chained is not None and chained.message == sessions.ROLE_CHAINING_LIMIT
    over = sessions.role_duration_error(7200, 3600, chained=False)
    assert over is not None and (over.code, over.message) == (
        "ValidationError",
        sessions.MAX_DURATION_EXCEEDED,
    )
