"""Request rate limits per principal: each service's throttling error, other principals unaffected,
nothing done for a throttled request, and boto3's retries getting through once the bucket refills.

The server runs with a tiny limit (``--api-rate-limit 2/4``: bursts of 4, 2 requests a second) so
that a few calls drain a principal's bucket; the clients here never retry unless said.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from lamina_server import ACCOUNTS, LaminaServer, client

ALICE, BOB = ACCOUNTS[1], ACCOUNTS[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(
        tmp_path_factory.mktemp("lamina-rate") / "data",
        accounts=ACCOUNTS,
        extra_args=("--api-rate-limit", "2/4"),
        lambda_role=False,
    )
    yield srv
    srv.stop()


def wire(c: Any) -> dict[str, Any]:
    """The last raw response ``c`` received: status, headers and body (before botocore parses)."""
    seen: dict[str, Any] = {}

    def keep(response_dict: dict[str, Any], **_: Any) -> None:
        seen.update(response_dict)

    c.meta.events.register("before-parse", keep)
    return seen


def drain(call: Callable[[], Any], attempts: int = 50) -> ClientError:
    """Call until throttled (a bucket holds 4 and refills at 2 a second); the throttling error."""
    for _ in range(attempts):
        try:
            call()
        except ClientError as exc:
            return exc
    raise AssertionError(f"never throttled in {attempts} calls")


def test_lambda_answers_too_many_requests(server: LaminaServer) -> None:
    lam = client(server)
    raw = wire(lam)
    exc = drain(lam.list_functions)
    r = exc.response
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert r["Error"] == {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}
    assert (r["Type"], r["Reason"]) == ("User", "CallerRateLimitExceeded")
    assert raw["status_code"] == 429
    assert raw["headers"]["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert json.loads(raw["body"]) == {
        "Type": "User",
        "message": "Rate exceeded",
        "Reason": "CallerRateLimitExceeded",
    }
    assert list(json.loads(raw["body"])) == ["Type", "message", "Reason"]


@pytest.mark.parametrize("service", ["iam", "sts"])
def test_iam_and_sts_answer_throttling(server: LaminaServer, service: str) -> None:
    c = client(server, service)
    raw = wire(c)
    call = c.list_users if service == "iam" else c.get_caller_identity
    exc = drain(call)
    r = exc.response
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert r["Error"] == {"Type": "Sender", "Code": "Throttling", "Message": "Rate exceeded"}
    assert b"<Code>Throttling</Code><Message>Rate exceeded</Message>" in raw["body"]


def test_ec2_answers_request_limit_exceeded(server: LaminaServer) -> None:
    ec2 = client(server, "ec2")
    exc = drain(ec2.describe_vpcs)
    r = exc.response
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert r["Error"] == {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."}


def test_a_throttled_request_changes_nothing(server: LaminaServer) -> None:
    iam = client(server, "iam")
    drain(iam.list_roles)
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName="throttled-user")
    assert exc.value.response["Error"]["Code"] == "Throttling"
    time.sleep(2.5)  # the bucket refills (2 a second)
    with pytest.raises(ClientError) as missing:
        iam.get_user(UserName="throttled-user")
    assert missing.value.response["Error"]["Code"] == "NoSuchEntity"


def test_other_principals_keep_their_own_rate(server: LaminaServer) -> None:
    drain(client(server).list_functions)
    alice = client(server, key=ALICE["access_key_id"], secret=ALICE["secret_access_key"])
    assert alice.list_functions()["Functions"] == []
    # The limit is the principal's across services: the default account is throttled on IAM too.
    with pytest.raises(ClientError) as exc:
        client(server, "iam").list_users()
    assert exc.value.response["Error"]["Code"] == "Throttling"


def test_invalid_credentials_do_not_spend_a_principals_tokens(server: LaminaServer) -> None:
    bob = client(server, key=BOB["access_key_id"], secret=BOB["secret_access_key"])
    time.sleep(2.5)  # a full bucket
    forged = client(server, key=BOB["access_key_id"], secret="not-bobs-secret")
    for _ in range(10):
        with pytest.raises(ClientError) as exc:
            forged.list_functions()
        assert exc.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert bob.list_functions()["Functions"] == []


def test_boto3_retries_get_through(server: LaminaServer) -> None:
    strict = client(server, "sts", key=BOB["access_key_id"], secret=BOB["secret_access_key"])
    drain(strict.get_caller_identity)
    patient = boto3.client(
        "sts",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=BOB["access_key_id"],
        aws_secret_access_key=BOB["secret_access_key"],
        config=Config(retries={"mode": "standard", "max_attempts": 10}),
    )
    # Throttling is a retryable error for botocore: the call succeeds once the bucket refills.
    assert patient.get_caller_identity()["Account"] == BOB["account_id"]


def test_invocations_are_not_metered(server: LaminaServer) -> None:
    """Lambda limits invocations by concurrency, not by a request rate: a principal whose bucket is
    empty still reaches Invoke (here: a function that does not exist, answered 404, never 429)."""
    lam = client(server, key=BOB["access_key_id"], secret=BOB["secret_access_key"])
    drain(lam.list_functions)
    for _ in range(12):
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            lam.invoke(FunctionName="nowhere", Payload=b"{}")
