"""AWS's validation message format, from botocore shapes plus AWS's own overrides."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from lamina.api.validation import MemberOverride, format_errors, render_value, validate, validation_errors
from lamina.errors import ValidationException
from lamina.services.lambda_.wire import OVERRIDES, VALIDATION_ORDER

MODEL = botocore.session.get_session().get_service_model("lambda")


def shape(op: str) -> Any:
    return MODEL.operation_model(op).input_shape


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        pytest.param("x", "'x'", id="string"),
        pytest.param(["a", "b"], "'[a, b]'", id="list"),
        pytest.param({"k": 1.5}, "'{k=1.5}'", id="map"),
        pytest.param(None, "null", id="null"),
        pytest.param(True, "'true'", id="bool"),
        pytest.param(7, "'7'", id="int"),
    ],
)
def test_render_value_like_java(value: Any, rendered: str) -> None:
    assert render_value(value) == rendered


def test_count_prefix_and_separator() -> None:
    assert format_errors(["a"]) == "1 validation error detected: a"
    assert format_errors(["a", "b"]) == "2 validation errors detected: a; b"


def test_required_member_missing_is_null() -> None:
    errors = validation_errors(shape("PublishLayerVersion"), {"LayerName": "x"})
    assert errors == ["Value null at 'content' failed to satisfy constraint: Member must not be null"]


def test_string_max_length() -> None:
    errors = validation_errors(
        shape("PublishLayerVersion"), {"LayerName": "x", "Content": {}, "LicenseInfo": "l" * 513}
    )
    assert errors == [
        f"Value '{'l' * 513}' at 'licenseInfo' failed to satisfy constraint: Member must have length less than or "
        "equal to 512"
    ]


def test_integer_range_from_query() -> None:
    errors = validation_errors(shape("ListLayers"), {"MaxItems": 51})
    assert errors == [
        "Value '51' at 'maxItems' failed to satisfy constraint: Member must have value less than or "
        "equal to 50"
    ]
    errors = validation_errors(shape("ListLayers"), {"MaxItems": 0})
    assert errors == [
        "Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater than or "
        "equal to 1"
    ]


def test_list_element_constraint_wrapped() -> None:
    errors = validation_errors(
        shape("PublishLayerVersion"), {"LayerName": "x", "Content": {}, "CompatibleArchitectures": ["X86_64"]}
    )
    assert errors == [
        "Value '[X86_64]' at 'compatibleArchitectures' failed to satisfy constraint: Member must "
        "satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be "
        "null]"
    ]


def test_list_too_long_reported_instead_of_elements() -> None:
    errors = validation_errors(
        shape("PublishLayerVersion"),
        {"LayerName": "x", "Content": {}, "CompatibleArchitectures": ["a", "b", "c"]},
    )
    assert errors == [
        "Value '[a, b, c]' at 'compatibleArchitectures' failed to satisfy constraint: Member must have "
        "length less than or equal to 2"
    ]


def test_order_override_puts_runtimes_before_architectures() -> None:
    params = {
        "LayerName": "x",
        "Content": {},
        "CompatibleRuntimes": ["bad"],
        "CompatibleArchitectures": ["bad"],
    }
    errors = validation_errors(
        shape("PublishLayerVersion"),
        params,
        OVERRIDES["PublishLayerVersion"],
        VALIDATION_ORDER["PublishLayerVersion"],
    )
    assert [e.split("' at '")[1].split("'")[0] for e in errors] == [
        "compatibleRuntimes",
        "compatibleArchitectures",
    ]


def test_enum_override_accepts_more_and_prints_aws_text() -> None:
    ov = {"compatibleRuntime": MemberOverride(enum=frozenset({"nasa"}), enum_text="[nasa]")}
    assert validation_errors(shape("ListLayers"), {"CompatibleRuntime": "nasa"}, ov) == []
    assert validation_errors(shape("ListLayers"), {"CompatibleRuntime": "x"}, ov) == [
        "Value 'x' at 'compatibleRuntime' failed to satisfy constraint: Member must satisfy enum value set: [nasa]"
    ]


def test_pattern_is_a_full_match() -> None:
    ov = OVERRIDES["GetLayerVersionByArn"]
    ok = "arn:aws:lambda:us-east-1:123456789012:layer:name:3"
    assert validation_errors(shape("GetLayerVersionByArn"), {"Arn": ok}, ov) == []
    assert len(validation_errors(shape("GetLayerVersionByArn"), {"Arn": ok + "x"}, ov)) == 1


def test_validate_raises_validation_exception() -> None:
    with pytest.raises(ValidationException) as e:
        validate(shape("PublishLayerVersion"), {"LayerName": "x"})
    assert e.value.status == 400 and e.value.message.startswith("1 validation error detected: ")
