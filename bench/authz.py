"""What IAM authorization costs: the same calls by an assumed-role session and by the account root.

One ``lamina server``. The account root (whose requests in its own account need no policy look-up)
is the baseline; the other side is a session of a role with 10 attached customer managed policies
(the tenth allows the calls; the others allow unrelated actions, as real roles carry), assumed by an
IAM user. Measured over one keep-alive boto3 client per side, in alternating blocks so that machine
drift hits both:

- ``GetFunctionConfiguration`` of a function (``--calls`` timed calls after ``--warmup``).
- Warm ``Invoke`` (root only: real sandboxes) of ``def handler(event, context): return {}``.

Printed: p50/p90 per side, the session's p50 over the root's, and the median over block pairs.
**Target** (issue 12): the authorize stage adds <= 5% to each p50 (ratio <= 1.05x).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import _common as C
from against import function_zip, wait_active

ACCOUNT = "000000000000"
BLOCKS = 24
TARGET = 1.05
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            },
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
        ],
    }
)


def policy(i: int) -> str:
    """Nine policies about other things, the tenth allowing the benchmarked calls on one function."""
    if i < 9:
        statements = [
            {"Effect": "Allow", "Action": [f"ec2:Describe{x}" for x in ("Vpcs", "Subnets")], "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": "lambda:GetLayerVersion",
                "Resource": f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:team{i}:*",
            },
        ]
    else:
        statements = [
            {
                "Effect": "Allow",
                "Action": ["lambda:GetFunctionConfiguration", "lambda:InvokeFunction"],
                "Resource": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:authz*",
                "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
            }
        ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def session_client(server: Any, service: str, iam: Any) -> Any:
    """A client signed with a session of role ``authz-bench`` (10 policies), assumed by a user."""
    iam.create_role(RoleName="authz-bench", AssumeRolePolicyDocument=TRUST)
    for i in range(10):
        arn = iam.create_policy(PolicyName=f"authz-{i}", PolicyDocument=policy(i))["Policy"]["Arn"]
        iam.attach_role_policy(RoleName="authz-bench", PolicyArn=arn)
    iam.create_user(UserName="bench")
    iam.attach_user_policy(UserName="bench", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    key = iam.create_access_key(UserName="bench")["AccessKey"]
    sts = C.client(server, "sts", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/authz-bench", RoleSessionName="bench")[
        "Credentials"
    ]
    return C.client(
        server,
        service,
        key=creds["AccessKeyId"],
        secret=creds["SecretAccessKey"],
        token=creds["SessionToken"],
        max_pool_connections=1,
        read_timeout=60,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1200, help="timed calls per operation and side")
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--runtime", default="python3.12")
    parser.add_argument("--profile", action="store_true", help="accepted from run.py; no profile is taken")
    args = parser.parse_args(argv)
    invokes = os.geteuid() == 0 and (C.ROOT / ".venv" / "lamina-runtimes" / args.runtime).is_dir()
    if not invokes:
        print("authz: warm invokes SKIPPED (they need root and the runtimes make setup installs)")
    with C.workdir("authz") as scratch:
        server = C.LaminaServer(scratch / "data")
        try:
            root = C.boto_client(server.url, read_timeout=60, connect_timeout=10)
            iam = C.client(server, "iam")
            iam.create_role(RoleName="authz-fn", AssumeRolePolicyDocument=TRUST)
            root.create_function(
                FunctionName="authz-fn",
                Runtime=args.runtime,
                Role=f"arn:aws:iam::{ACCOUNT}:role/authz-fn",
                Handler="app.handler",
                Code={"ZipFile": function_zip()},
            )
            wait_active(root, "authz-fn")
            session = session_client(server, "lambda", iam)
            calls: dict[str, Callable[[Any], Any]] = {
                "GetFunctionConfiguration": lambda c: c.get_function_configuration(FunctionName="authz-fn"),
            }
            if invokes:
                calls["Invoke (warm)"] = lambda c: c.invoke(FunctionName="authz-fn", Payload=b"{}")
            sides = {"root": root, "session (10 policies)": session}
            samples: dict[tuple[str, str], list[float]] = {}
            blocks: dict[tuple[str, str], list[float]] = {}
            for name, call in calls.items():
                for client in sides.values():
                    for _ in range(args.warmup):
                        call(client)
                order = list(sides.items())
                for block in range(BLOCKS):
                    for label, client in order if block % 2 == 0 else reversed(order):
                        timed = []
                        for _ in range(args.calls // BLOCKS):
                            t0 = time.perf_counter()
                            call(client)
                            timed.append(time.perf_counter() - t0)
                        samples.setdefault((name, label), []).extend(timed)
                        blocks.setdefault((name, label), []).append(C.percentile(timed, 50))
        finally:
            server.stop()
    print(
        f"\nauthz: an assumed-role session (10 policies) vs the account root, p50/p90 in ms, target <= {TARGET}x"
    )
    for name in calls:
        r50, r90 = (C.percentile(samples[(name, "root")], q) * 1000 for q in (50, 90))
        s50, s90 = (C.percentile(samples[(name, "session (10 policies)")], q) * 1000 for q in (50, 90))
        pairs = zip(blocks[(name, "session (10 policies)")], blocks[(name, "root")], strict=True)
        paired = C.percentile([s / r for s, r in pairs], 50)
        ratio = s50 / r50
        print(
            f"  {name:26} root {r50:6.3f} / {r90:6.3f}   session {s50:6.3f} / {s90:6.3f}   "
            f"ratio {ratio:.3f}x (block pairs {paired:.3f}x) {C.verdict(ratio <= TARGET)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
