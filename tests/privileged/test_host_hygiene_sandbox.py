"""Host hygiene seen from inside a sandbox (issue 13): a layer file zipped 0600 is unreadable by the
function (``Permission denied``, as in Lambda where ``/var/task`` and ``/opt`` belong to root), a
file zipped 04755 arrives without its setuid bit, and the function's code runs as an unprivileged
user who cannot write the tree."""

from __future__ import annotations

import json
import stat
import uuid
from typing import Any

import pytest
from testzips import make_zip

pytestmark = pytest.mark.privileged

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
BOOTSTRAP = """#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  H=$(mktemp)
  curl -sS -D "$H" "$API/invocation/next" >/dev/null
  RID=$(grep -i Lambda-Runtime-Aws-Request-Id "$H" | tr -d '[:space:]' | cut -d: -f2)
  OUT=$(sh /var/task/handler.sh 2>&1 | tr '\\n"' ' _')
  curl -sS -o /dev/null -X POST "$API/invocation/$RID/response" -d "\\"$OUT\\""
done
"""
HANDLER = """
cat /opt/private/secret 2>&1 | sed 's/^.*: //' | tr -d '\\n'; echo -n '|'
stat -c %a /opt/bin/suid /opt/bin/both /var/task/handler.sh | tr '\\n' ' '; echo -n '|'
(echo x > /opt/bin/suid) 2>&1 | grep -q . && echo -n 'no write' || echo -n 'WROTE'; echo -n '|'
id -u
"""


def test_modes_inside_the_sandbox(lam: Any) -> None:
    layer = lam.publish_layer_version(
        LayerName=f"hostile-{uuid.uuid4().hex[:6]}",
        Content={
            "ZipFile": make_zip(
                {"bin/suid": "#!/bin/sh\nid -u\n", "bin/both": "x", "private/secret": "s3cret\n"},
                modes={
                    "bin/suid": stat.S_IFREG | 0o4755,
                    "bin/both": stat.S_IFREG | 0o6777,
                    "private/secret": stat.S_IFREG | 0o600,
                },
            )
        },
    )["LayerVersionArn"]
    name = f"hyg-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="handler",
        Code={
            "ZipFile": make_zip(
                {"bootstrap": BOOTSTRAP, "handler.sh": HANDLER},
                modes={"bootstrap": stat.S_IFREG | 0o755, "handler.sh": stat.S_IFREG | 0o4644},
            )
        },
        Layers=[layer],
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 3000}
    )
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    out = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, out
    secret, modes, write, uid = out.split("|")
    assert secret == "Permission denied", out
    assert modes.split() == ["755", "755", "644"], out
    assert write == "no write", out
    assert uid.strip() != "0", out
