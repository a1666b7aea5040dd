"""A hostile function's result on its URL: it cannot frame the endpoint's answer (Content-Length,
Transfer-Encoding, Connection and the other connection headers are remapped), split it (CR/LF in
a header or cookie), make it unsendable (a name that is no token, text outside Latin-1), send an
interim 1xx as the answer, or make the endpoint send unbounded headers; and the public-access
check accepts the InvokeFunction statement the console writes (lambda:InvokedViaFunctionUrl)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lamina.domain import function_urls as U

ARN = "arn:aws:lambda:us-east-1:000000000000:function:f"


def _result(**response: Any) -> bytes:
    return json.dumps({"statusCode": 200, "body": "hello", **response}).encode()


@pytest.mark.parametrize(
    "name",
    ["Content-Length", "transfer-encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer",
     "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Date", "Server"],
)  # fmt: skip
def test_connection_headers_are_remapped(name: str) -> None:
    answer = U.map_result(_result(headers={name: "5", "x-kept": "1"}))
    assert answer.status == 200 and answer.body == b"hello"
    assert answer.headers == (
        (f"x-amzn-Remapped-{name}", "5"),
        ("x-kept", "1"),
        ("Content-Type", "application/json"),
    )


@pytest.mark.parametrize(
    "response",
    [
        {"headers": {"x-a": "v\r\nX-Injected: 1"}},
        {"headers": {"x-a": "v\nX-Injected: 1"}},
        {"headers": {"x-a": "v\x00"}},
        {"headers": {"x-a\r\nX-Injected": "1"}},
        {"headers": {"x a": "1"}},
        {"headers": {"": "1"}},
        {"headers": {"x-u": "\u2603"}},
        {"headers": {"x-\u2603": "1"}},
        {"cookies": ["a=1\r\nX-Injected: 2"]},
        {"cookies": "a=1"},
        {"headers": {"x-big": "v" * (U.MAX_RESPONSE_HEADER_BYTES + 1)}},
        {"headers": {f"x-{i}": "v" * 100 for i in range(1000)}},
        {"statusCode": 101},
        {"statusCode": 100},
    ],
    ids=["crlf-value", "lf-value", "nul-value", "crlf-name", "space-name", "empty-name", "non-latin1-value",
         "non-latin1-name", "crlf-cookie", "cookies-not-a-list", "huge-header", "many-headers", "101", "100"],
)  # fmt: skip
def test_unsendable_results_are_a_function_error(response: dict[str, Any]) -> None:
    assert U.map_result(_result(**response)) == U.FUNCTION_ERROR


def test_latin1_and_tab_in_values_pass() -> None:
    answer = U.map_result(_result(headers={"x-l": "caf\u00e9\tok"}))
    assert answer.headers[0] == ("x-l", "caf\u00e9\tok")


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_answers_carry_none(status: int) -> None:
    answer = U.map_result(_result(statusCode=status))
    assert (answer.status, answer.body) == (status, b"")


def test_public_access_with_the_invoked_via_function_url_condition() -> None:
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "u",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "lambda:InvokeFunctionUrl",
                    "Resource": ARN,
                    "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
                },
                {
                    "Sid": "i",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "lambda:InvokeFunction",
                    "Resource": ARN,
                    "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}},
                },
            ],
        }
    )
    assert U.public_access(policy, ARN, "000000000000") is True
