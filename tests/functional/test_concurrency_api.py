"""Reserved concurrency over the API: Put/Get/DeleteFunctionConcurrency, GetFunction's
``Concurrency``, GetAccountSettings and the account's limit from the accounts file.

Shapes and messages as recorded against AWS (TestLambdaReservedConcurrency,
TestLambdaAccountSettings, TestLambdaConcurrency::test_lambda_concurrency_update).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from lamina_server import ACCOUNTS, LaminaServer, client
from testzips import make_zip

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
CODE = make_zip({"bootstrap": "#!/bin/sh\necho hi\n"}, modes={"bootstrap": 0o100755})
FUNCTIONS_ONLY = (
    "This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. "
    "Please specify either a function name or an unqualified function ARN."
)
# The default account keeps AWS's 1,000; Alice's is 150 and Bob's 40 (accounts file).
LIMITED = [
    ACCOUNTS[0],
    {**ACCOUNTS[1], "concurrent_executions": 150},
    {**ACCOUNTS[2], "concurrent_executions": 40},
]


def below_minimum(floor: int) -> str:
    return (
        "Specified ReservedConcurrentExecutions for function decreases account's "
        f"UnreservedConcurrentExecution below its minimum value of [{floor}]."
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("lamina-concurrency") / "data", accounts=LIMITED)
    yield srv
    srv.stop()


def create(c: Any, account: str = "000000000000") -> str:
    fn = f"fn-{uuid.uuid4().hex[:10]}"
    c.create_function(
        FunctionName=fn,
        Runtime="provided.al2023",
        Role=ROLE.replace("000000000000", account),
        Handler="handler",
        Code={"ZipFile": CODE},
    )
    return fn


def err(excinfo: Any) -> tuple[int, str, str]:
    r = excinfo.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def test_put_get_delete(server: LaminaServer) -> None:
    lam = client(server)
    fn = create(lam)
    put0 = lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=0)
    assert put0["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert {k: v for k, v in put0.items() if k != "ResponseMetadata"} == {"ReservedConcurrentExecutions": 0}
    assert (
        lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=1)[
            "ReservedConcurrentExecutions"
        ]
        == 1
    )
    got = lam.get_function_concurrency(FunctionName=fn)
    assert got["ReservedConcurrentExecutions"] == 1
    # GetFunction shows it as AWS does, by its full ARN too, and for $LATEST.
    arn = lam.get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    assert lam.get_function(FunctionName=arn)["Concurrency"] == {"ReservedConcurrentExecutions": 1}
    assert lam.get_function(FunctionName=fn, Qualifier="$LATEST")["Concurrency"] == {
        "ReservedConcurrentExecutions": 1
    }
    deleted = lam.delete_function_concurrency(FunctionName=fn)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    after = lam.get_function_concurrency(FunctionName=fn)
    assert after["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert set(after) == {"ResponseMetadata"}
    assert "Concurrency" not in lam.get_function(FunctionName=fn)
    # Deleting it again is no error, as in AWS.
    lam.delete_function_concurrency(FunctionName=fn)


def test_errors(server: LaminaServer) -> None:
    lam = client(server)
    missing = "arn:aws:lambda:us-east-1:000000000000:function:doesnotexist:$LATEST"
    for value in (1, 5000):  # not found comes before the account's limit
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
            lam.put_function_concurrency(FunctionName="doesnotexist", ReservedConcurrentExecutions=value)
        assert err(e) == (404, "ResourceNotFoundException", f"Function not found: {missing}")
        assert e.value.response["Type"] == "User"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_concurrency(FunctionName="doesnotexist")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.delete_function_concurrency(FunctionName="doesnotexist")
    fn = create(lam)
    qualified = (
        lam.get_function_configuration(FunctionName=fn, Qualifier="$LATEST")["FunctionArn"] + ":$LATEST"
    )
    for call in (
        lambda: lam.put_function_concurrency(FunctionName=qualified, ReservedConcurrentExecutions=0),
        lambda: lam.get_function_concurrency(FunctionName=f"{fn}:1"),
        lambda: lam.delete_function_concurrency(FunctionName=qualified),
    ):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
            call()
        assert err(e) == (400, "InvalidParameterValueException", FUNCTIONS_ONLY)
        assert e.value.response["Type"] == "User" and e.value.response["message"] == FUNCTIONS_ONLY
    raw = client(server, parameter_validation=False)
    with pytest.raises(raw.exceptions.ClientError) as e:
        raw.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=-1)
    assert err(e) == (
        400,
        "ValidationException",
        "1 validation error detected: Value '-1' at 'reservedConcurrentExecutions' failed to satisfy "
        "constraint: Member must have value greater than or equal to 0",
    )


def test_minimum_unreserved_and_account_settings(server: LaminaServer) -> None:
    lam = client(server)
    settings = lam.get_account_settings()["AccountLimit"]
    assert list(settings) == [
        "TotalCodeSize",
        "CodeSizeUnzipped",
        "CodeSizeZipped",
        "ConcurrentExecutions",
        "UnreservedConcurrentExecutions",
    ]
    assert settings["ConcurrentExecutions"] == 1000  # AWS's default, not the host's --max-environments
    fn, other = create(lam), create(lam)
    limit = settings["ConcurrentExecutions"]
    unreserved = settings["UnreservedConcurrentExecutions"]
    for value in (limit + 1, limit, unreserved - 99):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
            lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=value)
        assert err(e) == (400, "InvalidParameterValueException", below_minimum(100))
        # This one message has no Type member (recorded).
        assert "Type" not in e.value.response and e.value.response["message"] == below_minimum(100)
    assert lam.get_function_concurrency(FunctionName=fn).keys() == {"ResponseMetadata"}  # nothing changed
    lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=unreserved - 100)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.put_function_concurrency(FunctionName=other, ReservedConcurrentExecutions=1)
    # Lowering one's own reservation counts only the others'.
    lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=unreserved - 110)
    lam.put_function_concurrency(FunctionName=other, ReservedConcurrentExecutions=10)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
    # Deleting a function gives its reservation back.
    lam.delete_function(FunctionName=fn)
    lam.delete_function_concurrency(FunctionName=other)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == limit
    # Regions have a quota each.
    west = client(server, region="eu-west-1")
    assert west.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == limit


def test_account_limit_from_accounts_file(server: LaminaServer) -> None:
    alice = client(server, key="AKIDALICE111", secret="alice-secret")
    limits = alice.get_account_settings()["AccountLimit"]
    assert (limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]) == (150, 150)
    fn = create(alice, "111111111111")
    with pytest.raises(alice.exceptions.InvalidParameterValueException) as e:
        alice.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=51)
    assert err(e)[2] == below_minimum(100)
    alice.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=50)
    assert alice.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
    # An account whose limit is under 100 keeps all of it unreserved: it can reserve only 0.
    bob = client(server, key="AKIDBOB22222", secret="bob-secret")
    fn = create(bob, "222222222222")
    with pytest.raises(bob.exceptions.InvalidParameterValueException) as e:
        bob.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=1)
    assert err(e)[2] == below_minimum(40)
    bob.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=0)
    assert bob.get_account_settings()["AccountLimit"]["ConcurrentExecutions"] == 40


def test_reservations_survive_a_restart(tmp_path: Any) -> None:
    srv = LaminaServer(tmp_path / "data", accounts=LIMITED)
    try:
        lam = client(srv)
        fn = create(lam)
        lam.put_function_concurrency(FunctionName=fn, ReservedConcurrentExecutions=7)
    finally:
        srv.stop()
    srv = LaminaServer(tmp_path / "data", accounts=LIMITED, lambda_role=False)
    try:
        lam = client(srv)
        assert lam.get_function_concurrency(FunctionName=fn)["ReservedConcurrentExecutions"] == 7
        assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 993
    finally:
        srv.stop()
