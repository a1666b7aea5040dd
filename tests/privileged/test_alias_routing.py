"""Invokes through aliases in real sandboxes: the weighted routing of a RoutingConfig over 2,000
invokes (X-Amz-Executed-Version tells which version ran), the alias's ARN as FunctionName, event
and DryRun invocations, and the alias's policy letting another account invoke it."""

from __future__ import annotations

import json
import math
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import client
from testzips import make_zip

pytestmark = pytest.mark.privileged

RUNTIMES_DIR = Path(sys.prefix) / "lamina-runtimes"
RUNTIME = next(
    (
        r
        for r in ("python3.12", "python3.13", "python3.11")
        if (RUNTIMES_DIR / r / "lamina-runtime.json").is_file()
    ),
    None,
)
if RUNTIME is None:
    pytest.skip(f"no Python runtime installed in {RUNTIMES_DIR} (run `make setup`)", allow_module_level=True)

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
INVOKES = 2000
WEIGHT = 0.3


def deploy(lam: Any) -> str:
    """A function (``return {}``, the cheapest invoke) with versions 1 and 2."""
    name = f"alias-{uuid.uuid4().hex[:8]}"
    code = make_zip(
        {"app.py": "def handler(event, context):\n    return {'arn': context.invoked_function_arn}\n"}
    )
    lam.create_function(
        FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler="app.handler", Code={"ZipFile": code}
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.5})
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    lam.update_function_configuration(FunctionName=name, Description="two")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.5})
    assert lam.publish_version(FunctionName=name)["Version"] == "2"
    return name


def test_weighted_routing_over_2000_invokes(lam: Any) -> None:
    name = deploy(lam)
    alias = lam.create_alias(
        FunctionName=name,
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": WEIGHT}},
    )
    ran: Counter[str] = Counter()
    for i in range(INVOKES):
        # Half by name and qualifier, half by the alias's ARN: both go through the routing.
        kw = {"FunctionName": name, "Qualifier": "canary"} if i % 2 else {"FunctionName": alias["AliasArn"]}
        r = lam.invoke(Payload=b"{}", **kw)
        assert r["StatusCode"] == 200 and "FunctionError" not in r, r
        assert r["ResponseMetadata"]["HTTPHeaders"]["x-amz-executed-version"] == r["ExecutedVersion"]
        ran[r["ExecutedVersion"]] += 1
    assert set(ran) == {"1", "2"}
    # Binomial(2000, 0.3): mean 600, standard deviation 20.5; five of them either side.
    sd = math.sqrt(INVOKES * WEIGHT * (1 - WEIGHT))
    assert abs(ran["2"] - INVOKES * WEIGHT) < 5 * sd, ran

    # Shifting all the weight away: only version 1 runs; a moved alias runs its new version.
    lam.update_alias(FunctionName=name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {"2": 0.0}})
    assert {lam.invoke(FunctionName=name, Qualifier="canary")["ExecutedVersion"] for _ in range(50)} == {"1"}
    lam.update_alias(
        FunctionName=name, Name="canary", FunctionVersion="2", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert {lam.invoke(FunctionName=name, Qualifier="canary")["ExecutedVersion"] for _ in range(20)} == {"2"}


def test_alias_invocation_kinds(lam: Any) -> None:
    name = deploy(lam)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="2")
    r = lam.invoke(FunctionName=f"{name}:live", InvocationType="DryRun")
    assert (r["StatusCode"], r["ExecutedVersion"]) == (204, "2")
    r = lam.invoke(FunctionName=name, Qualifier="live", InvocationType="Event", Payload=b"{}")
    assert (r["StatusCode"], r["ExecutedVersion"]) == (202, "2")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.invoke(FunctionName=name, Qualifier="nope")
    assert e.value.response["Error"]["Message"] == (
        f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}:nope"
    )
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=f"{name}:live", Qualifier="1")
    assert e.value.response["Error"]["Message"] == (
        "The derived qualifier from the function name does not match the specified qualifier."
    )


def test_alias_policy_lets_another_account_invoke(lam: Any, invoke_server: Any) -> None:
    name = deploy(lam)
    alias = lam.create_alias(FunctionName=name, Name="shared", FunctionVersion="1")
    alice = client(invoke_server, key="AKIDALICE111", secret="alice-secret", read_timeout=60)
    with pytest.raises(ClientError) as e:
        alice.invoke(FunctionName=alias["AliasArn"])
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    lam.add_permission(
        FunctionName=name,
        Qualifier="shared",
        StatementId="alice",
        Action="lambda:InvokeFunction",
        Principal="111111111111",
    )
    r = alice.invoke(FunctionName=alias["AliasArn"], Payload=b"{}")
    assert (r["StatusCode"], r["ExecutedVersion"]) == (200, "1")
    assert json.loads(r["Payload"].read()) == {"arn": alias["AliasArn"]}  # the context names the alias
    # The grant is the alias's: the function itself and its versions stay closed to Alice.
    for other in (
        f"arn:aws:lambda:us-east-1:000000000000:function:{name}",
        f"arn:aws:lambda:us-east-1:000000000000:function:{name}:1",
    ):
        with pytest.raises(ClientError) as e:
            alice.invoke(FunctionName=other)
        assert e.value.response["Error"]["Code"] == "AccessDeniedException"
