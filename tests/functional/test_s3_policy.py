"""S3 access as S3 decides it, against the real server: bucket policies (Put/Get/Delete, S3's
validation words), evaluated by the IAM authorizer within and across accounts, anonymous requests
granted by a policy (urllib and curl without a signature), presigned URLs (SigV4 expiry, SigV2
query authentication) and DeleteObjects refusing single keys. Codes and messages as recorded
against AWS."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from lamina_server import ACCOUNTS, LaminaServer, client, run_aws
from s3_kit import ALICE, BOB, PATH_STYLE, error
from testzips import make_zip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    srv = LaminaServer(tmp_path_factory.mktemp("lamina") / "data", accounts=ACCOUNTS, lambda_role=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def s3(server: LaminaServer) -> Any:
    return client(server, "s3", s3=PATH_STYLE)


@pytest.fixture(scope="module")
def alice(server: LaminaServer) -> Any:
    return client(server, "s3", **ALICE, s3=PATH_STYLE)


@pytest.fixture(scope="module")
def bob(server: LaminaServer) -> Any:
    return client(server, "s3", **BOB, s3=PATH_STYLE)


_counter = iter(range(1_000_000))


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"policy-bucket-{next(_counter)}-{os.getpid()}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def alice_bucket(alice: Any) -> str:
    name = f"alice-bucket-{next(_counter)}-{os.getpid()}"
    alice.create_bucket(Bucket=name)
    return name


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def send(
    server: LaminaServer,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    sign: bool = True,
    host: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request by hand, SigV4-signed by the default account unless ``sign`` is False."""
    host = host or f"127.0.0.1:{server.port}"
    headers = dict(headers or {})
    if sign:
        request = AWSRequest(method=method, url=f"http://{host}{path}", data=body, headers=headers)
        request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
        SigV4Auth(Credentials("test", "test"), "s3", "us-east-1").add_auth(request)
        headers = dict(request.headers.items())
    headers["Host"] = host
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def without_ids(body: bytes) -> str:
    return re.sub(rb"<RequestId>.*</HostId>", b"", body).decode()


def fetch(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    """A request without a signature of its own (urllib, as a browser or curl would send it; no
    Content-Type added to a body, as urllib otherwise does)."""
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- Put/Get/DeleteBucketPolicy -------------------------------------------------------------------


def test_policy_lifecycle_as_recorded(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_policy(Bucket=bucket)
    assert error(exc) == (
        404,
        {"Code": "NoSuchBucketPolicy", "Message": "The bucket policy does not exist", "BucketName": bucket},
    )
    document = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
    )
    assert s3.put_bucket_policy(Bucket=bucket, Policy=document)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == document  # as put, byte for byte
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"] == {"IsPublic": True}
    assert s3.delete_bucket_policy(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_policy(Bucket=bucket)
    assert error(exc)[1]["Code"] == "NoSuchBucketPolicy"
    # Deleting a policy that is not there is not an error.
    assert s3.delete_bucket_policy(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_expected_bucket_owner(s3: Any, bucket: str) -> None:
    document = policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
    )
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_policy(Bucket=bucket, Policy=document, ExpectedBucketOwner="111111111111")
    assert error(exc) == (403, {"Code": "AccessDenied", "Message": "Access Denied"})
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket_policy(Bucket=bucket, ExpectedBucketOwner="invalid")
    assert error(exc) == (
        400,
        {
            "Code": "InvalidBucketOwnerAWSAccountID",
            "Message": "The value of the expected bucket owner parameter must be an AWS Account ID... [invalid]",
        },
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=document, ExpectedBucketOwner="000000000000")
    assert s3.get_bucket_policy(Bucket=bucket, ExpectedBucketOwner="000000000000")["Policy"] == document


BAD_POLICIES = {
    "empty": ("", "Policies must be valid JSON and the first byte must be '{'"),
    "random-string": ("randomstring", "Policies must be valid JSON and the first byte must be '{'"),
    "empty-json": ("{}", "Missing required field Statement"),
    "not-json": ('{"Statement": [', "This policy contains invalid Json"),
    "empty-statement": ('{"Statement": []}', "Could not parse the policy: Statement is empty!"),
    # Accepted by S3's own checks but not evaluable: stored, its Deny would have been lost.
    "unreadable-condition-value": (
        policy(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::{b}/*",
                "Condition": {"DateGreaterThan": {"aws:CurrentTime": "x"}},
            }
        ),
        "Invalid policy syntax.",
    ),
    "no-principal": (
        policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{b}/*"}),
        "Missing required field Principal",
    ),
    "bad-principal": (
        policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "bob"},
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::{b}/*",
            }
        ),
        "Invalid principal in policy",
    ),
    "bad-effect": (
        policy(
            {"Effect": "allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{b}/*"}
        ),
        "Invalid effect: allow",
    ),
    "bad-action": (
        policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "ec2:RunInstances",
                "Resource": "arn:aws:s3:::{b}/*",
            }
        ),
        "Policy has invalid action",
    ),
    "unknown-s3-action": (
        policy(
            {"Effect": "Allow", "Principal": "*", "Action": "s3:FlyAway", "Resource": "arn:aws:s3:::{b}/*"}
        ),
        "Policy has invalid action",
    ),
    "other-bucket": (
        policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::elsewhere/*",
            }
        ),
        "Policy has invalid resource",
    ),
    "star-resource": (
        policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}),
        "Policy has invalid resource",
    ),
    "object-action-on-bucket": (
        policy(
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{b}"}
        ),
        "Action does not apply to any resource(s) in statement",
    ),
    "bad-condition": (
        policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::{b}/*",
                "Condition": {"StringEqualz": {"aws:SourceIp": "1.2.3.4"}},
            }
        ),
        "Invalid Condition type : StringEqualz",
    ),
    "too-large": (
        policy(
            *[
                {
                    "Sid": f"S{i}",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{{b}}/{'k' * 80}{i}",
                }
                for i in range(200)
            ]
        ),
        "Normalized policy document exceeds the maximum allowed size of 20480 bytes",
    ),
}


@pytest.mark.parametrize("case", list(BAD_POLICIES), ids=list(BAD_POLICIES))
def test_policy_validation_errors(server: LaminaServer, s3: Any, bucket: str, case: str) -> None:
    text, message = BAD_POLICIES[case]
    text = text.replace("{b}", bucket)
    status, body = send(server, "PUT", f"/{bucket}?policy", body=text.encode())
    assert status == 400
    assert without_ids(body) == (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>MalformedPolicy</Code><Message>{message}</Message></Error>'
    )
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_policy(Bucket=bucket)
    assert error(exc)[1]["Code"] == "NoSuchBucketPolicy"  # nothing was stored


def test_policy_content_md5_is_checked(server: LaminaServer, bucket: str) -> None:
    document = policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
    )
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    status, body = send(
        server, "PUT", f"/{bucket}?policy", body=document.encode(), headers={"Content-MD5": wrong}
    )
    assert status == 400
    assert b"<Code>BadDigest</Code>" in body and f"<ExpectedDigest>{wrong}</ExpectedDigest>".encode() in body
    right = base64.b64encode(hashlib.md5(document.encode()).digest()).decode()
    status, _ = send(
        server, "PUT", f"/{bucket}?policy", body=document.encode(), headers={"Content-MD5": right}
    )
    assert status == 204


def test_policy_through_the_aws_cli(server: LaminaServer, bucket: str, tmp_path: Any) -> None:
    document = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "111111111111"},
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{bucket}",
        }
    )
    (tmp_path / "policy.json").write_text(document)
    done = run_aws(
        server,
        "s3api",
        "put-bucket-policy",
        "--bucket",
        bucket,
        "--policy",
        "file://policy.json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    got = run_aws(server, "s3api", "get-bucket-policy", "--bucket", bucket)
    assert json.loads(got.stdout)["Policy"] == document
    bad = run_aws(server, "s3api", "put-bucket-policy", "--bucket", bucket, "--policy", "{}")
    assert bad.returncode != 0
    assert "MalformedPolicy" in bad.stderr and "Missing required field Statement" in bad.stderr
    # The granted account lists the bucket with `aws s3 ls`.
    listed = run_aws(server, "s3", "ls", f"s3://{bucket}", key=ALICE["key"], secret=ALICE["secret"])
    assert listed.returncode == 0, listed.stderr


def test_another_account_cannot_manage_the_policy(s3: Any, alice: Any, alice_bucket: str) -> None:
    document = policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{alice_bucket}/*",
        }
    )
    for call in (
        lambda: s3.put_bucket_policy(Bucket=alice_bucket, Policy=document),
        lambda: s3.get_bucket_policy(Bucket=alice_bucket),
        lambda: s3.delete_bucket_policy(Bucket=alice_bucket),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error(exc) == (403, {"Code": "AccessDenied", "Message": "Access Denied"})
    # Even granted by the policy, only the owner's account manages it (405, as S3).
    alice.put_bucket_policy(
        Bucket=alice_bucket,
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
                "Action": ["s3:GetBucketPolicy", "s3:PutBucketPolicy"],
                "Resource": f"arn:aws:s3:::{alice_bucket}",
            }
        ),
    )
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_policy(Bucket=alice_bucket)
    status, err = error(exc)
    assert (status, err["Code"]) == (405, "MethodNotAllowed")
    assert "Principal" in alice.get_bucket_policy(Bucket=alice_bucket)["Policy"]


# -- evaluation -----------------------------------------------------------------------------------


def test_cross_account_access_by_bucket_policy_only(alice: Any, bob: Any, alice_bucket: str) -> None:
    alice.put_object(Bucket=alice_bucket, Key="shared/report.txt", Body=b"shared bytes")
    alice.put_object(Bucket=alice_bucket, Key="private/secret.txt", Body=b"secret bytes")
    denied = (403, {"Code": "AccessDenied", "Message": "Access Denied"})
    for call in (
        lambda: bob.get_object(Bucket=alice_bucket, Key="shared/report.txt"),
        lambda: bob.list_objects_v2(Bucket=alice_bucket),
        lambda: bob.put_object(Bucket=alice_bucket, Key="shared/new.txt", Body=b"x"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error(exc) == denied
    alice.put_bucket_policy(
        Bucket=alice_bucket,
        Policy=policy(
            {
                "Sid": "ReadShared",
                "Effect": "Allow",
                "Principal": {"AWS": "222222222222"},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{alice_bucket}/shared/*",
            },
            {
                "Sid": "ListShared",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{alice_bucket}",
                "Condition": {"StringLike": {"s3:prefix": "shared/*"}},
            },
        ),
    )
    assert bob.get_object(Bucket=alice_bucket, Key="shared/report.txt")["Body"].read() == b"shared bytes"
    listed = bob.list_objects_v2(Bucket=alice_bucket, Prefix="shared/")
    assert [o["Key"] for o in listed["Contents"]] == ["shared/report.txt"]
    for call in (
        lambda: bob.get_object(Bucket=alice_bucket, Key="private/secret.txt"),
        lambda: bob.list_objects_v2(Bucket=alice_bucket),  # no s3:prefix: the condition does not hold
        lambda: bob.put_object(Bucket=alice_bucket, Key="shared/new.txt", Body=b"x"),
        lambda: bob.delete_object(Bucket=alice_bucket, Key="shared/report.txt"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error(exc) == denied
    # The owner reads everything, whatever the policy grants others.
    assert alice.get_object(Bucket=alice_bucket, Key="private/secret.txt")["Body"].read() == b"secret bytes"


def test_cross_account_needs_the_callers_identity_policy_too(
    server: LaminaServer, alice: Any, alice_bucket: str
) -> None:
    alice.put_object(Bucket=alice_bucket, Key="k", Body=b"v")
    alice.put_bucket_policy(
        Bucket=alice_bucket,
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "222222222222"},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{alice_bucket}/*",
            }
        ),
    )
    iam = client(server, "iam", **BOB)
    user = f"reader-{next(_counter)}"
    iam.create_user(UserName=user)
    made = iam.create_access_key(UserName=user)["AccessKey"]
    reader = client(server, "s3", key=made["AccessKeyId"], secret=made["SecretAccessKey"], s3=PATH_STYLE)
    with pytest.raises(ClientError) as exc:
        reader.get_object(Bucket=alice_bucket, Key="k")  # the bucket allows, the user's own policies do not
    assert error(exc) == (403, {"Code": "AccessDenied", "Message": "Access Denied"})
    iam.put_user_policy(
        UserName=user,
        PolicyName="read",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            }
        ),
    )
    assert reader.get_object(Bucket=alice_bucket, Key="k")["Body"].read() == b"v"


def test_explicit_deny_in_the_bucket_policy_beats_identity_allow(
    server: LaminaServer, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="open/a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="locked/b", Body=b"b")
    iam = client(server, "iam")
    user = f"admin-{next(_counter)}"
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    made = iam.create_access_key(UserName=user)["AccessKey"]
    admin = client(server, "s3", key=made["AccessKeyId"], secret=made["SecretAccessKey"], s3=PATH_STYLE)
    assert admin.get_object(Bucket=bucket, Key="locked/b")["Body"].read() == b"b"
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:DeleteObject"],
                "Resource": f"arn:aws:s3:::{bucket}/locked/*",
            }
        ),
    )
    with pytest.raises(ClientError) as exc:
        admin.get_object(Bucket=bucket, Key="locked/b")
    status, err = error(exc)
    assert (status, err["Code"]) == (403, "AccessDenied")
    assert err["Message"] == (
        f"User: arn:aws:iam::000000000000:user/{user} is not authorized to perform: s3:GetObject on resource: "
        f"arn:aws:s3:::{bucket}/locked/b with an explicit deny in a resource-based policy"
    )
    assert admin.get_object(Bucket=bucket, Key="open/a")["Body"].read() == b"a"
    # The owner's root user is bound by it too, but may always manage the policy.
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="locked/b")
    assert error(exc)[0] == 403
    # DeleteObjects: the denied key answers its own error, the others are deleted.
    result = admin.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "open/a"}, {"Key": "locked/b"}]})
    assert result["Deleted"] == [{"Key": "open/a"}]
    assert result["Errors"] == [{"Key": "locked/b", "Code": "AccessDenied", "Message": "Access Denied"}]
    s3.delete_bucket_policy(Bucket=bucket)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["locked/b"]
    assert s3.get_object(Bucket=bucket, Key="locked/b")["Body"].read() == b"b"


def test_delete_objects_across_accounts_per_key(alice: Any, bob: Any, alice_bucket: str) -> None:
    for key in ("drop/1", "drop/2", "keep/3"):
        alice.put_object(Bucket=alice_bucket, Key=key, Body=b"x")
    alice.put_bucket_policy(
        Bucket=alice_bucket,
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "222222222222"},
                "Action": "s3:DeleteObject",
                "Resource": f"arn:aws:s3:::{alice_bucket}/drop/*",
            }
        ),
    )
    result = bob.delete_objects(
        Bucket=alice_bucket, Delete={"Objects": [{"Key": "drop/1"}, {"Key": "keep/3"}, {"Key": "drop/2"}]}
    )
    assert result["Deleted"] == [{"Key": "drop/1"}, {"Key": "drop/2"}]
    assert result["Errors"] == [{"Key": "keep/3", "Code": "AccessDenied", "Message": "Access Denied"}]
    assert [o["Key"] for o in alice.list_objects_v2(Bucket=alice_bucket)["Contents"]] == ["keep/3"]


def test_source_ip_and_secure_transport_conditions(s3: Any, alice: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "111111111111"},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {
                    "IpAddress": {"aws:SourceIp": "127.0.0.0/8"},
                    "Bool": {"aws:SecureTransport": "true"},
                },
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {"StringEquals": {"aws:PrincipalAccount": "222222222222"}},
            },
        ),
    )
    # Loopback counts as secure transport (documented in the authorizer).
    assert alice.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "111111111111"},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}},
            }
        ),
    )
    with pytest.raises(ClientError) as exc:
        alice.get_object(Bucket=bucket, Key="k")
    assert error(exc)[0] == 403


# -- anonymous ------------------------------------------------------------------------------------


def test_public_read_by_policy_is_served_without_a_signature(
    server: LaminaServer, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="site/index.html", Body=b"<h1>hello</h1>", ContentType="text/html")
    url = f"{server.url}/{bucket}/site/index.html"
    status, body = fetch(url)
    assert status == 403
    assert without_ids(body) == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>'
    )
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            {
                "Sid": "PublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/site/*",
            }
        ),
    )
    assert fetch(url) == (200, b"<h1>hello</h1>")
    # Not writes, not listings, not other keys.
    assert fetch(f"{server.url}/{bucket}/site/new.html", "PUT", b"defaced")[0] == 403
    assert fetch(url, "DELETE")[0] == 403
    assert fetch(f"{server.url}/{bucket}?list-type=2")[0] == 403
    s3.put_object(Bucket=bucket, Key="private", Body=b"p")
    assert fetch(f"{server.url}/{bucket}/private")[0] == 403
    assert fetch(f"{server.url}/")[0] == 403  # ListBuckets
    assert s3.get_object(Bucket=bucket, Key="site/index.html")["Body"].read() == b"<h1>hello</h1>"
    # Virtual-hosted, with curl (which resolves *.localhost).
    if shutil.which("curl"):
        done = subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "-",
                "-w",
                "%{http_code}",
                f"http://{bucket}.s3.localhost:{server.port}/site/index.html",
            ],
            capture_output=True,
            timeout=30,
        )
        assert done.stdout == b"<h1>hello</h1>200"


def test_public_listing_and_writes_when_granted(server: LaminaServer, s3: Any, bucket: str) -> None:
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{bucket}",
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": f"arn:aws:s3:::{bucket}/drop/*",
            },
        ),
    )
    assert fetch(f"{server.url}/{bucket}/drop/anon.txt", "PUT", b"from nobody")[0] == 200
    assert s3.get_object(Bucket=bucket, Key="drop/anon.txt")["Body"].read() == b"from nobody"
    status, body = fetch(f"{server.url}/{bucket}?list-type=2")
    assert status == 200 and b"<Key>drop/anon.txt</Key>" in body
    unsigned = client(server, "s3", s3=PATH_STYLE, signature_version=UNSIGNED)
    assert unsigned.get_object(Bucket=bucket, Key="drop/anon.txt")["Body"].read() == b"from nobody"
    assert [o["Key"] for o in unsigned.list_objects_v2(Bucket=bucket)["Contents"]] == ["drop/anon.txt"]


def test_anonymous_never_reaches_another_service(server: LaminaServer, s3: Any, bucket: str) -> None:
    # Even with a bucket that grants everyone everything, an unsigned request to another service
    # is refused at authentication, as before: Lambda's words for a missing token.
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ),
    )
    assert fetch(f"{server.url}/2015-03-31/functions/") == (
        403,
        b'{"message":"Missing Authentication Token"}',
    )
    status, body = fetch(f"{server.url}/2015-03-31/functions/f/invocations", "POST", b"{}")
    assert (status, body) == (403, b'{"message":"Missing Authentication Token"}')
    # A query-protocol call without a signature has no credential scope: it is not IAM's to serve.
    status, body = fetch(f"{server.url}/", "POST", b"Action=ListUsers&Version=2010-05-08")
    assert status == 405 and b"<Code>MethodNotAllowed</Code>" in body


# -- presigned URLs -------------------------------------------------------------------------------


def test_sigv2_presigned_urls_are_served(server: LaminaServer, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="dir/file name.txt", Body=b"presigned v2")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dir/file name.txt"})
    assert "AWSAccessKeyId=" in url and "X-Amz-Algorithm" not in url  # boto3's default form for S3
    assert fetch(url) == (200, b"presigned v2")
    overridden = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "dir/file name.txt", "ResponseContentType": "text/plain"},
    )
    with urllib.request.urlopen(overridden, timeout=30) as response:
        assert response.headers["Content-Type"] == "text/plain"
    put = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up.txt"})
    assert fetch(put, "PUT", b"uploaded")[0] == 200
    assert s3.get_object(Bucket=bucket, Key="up.txt")["Body"].read() == b"uploaded"
    # Tampered: S3's SignatureDoesNotMatch with the string it signed.
    status, body = fetch(url.replace("dir/file", "dir/fil"))
    assert status == 403
    text = body.decode()
    assert "<Code>SignatureDoesNotMatch</Code>" in text
    assert "<AWSAccessKeyId>test</AWSAccessKeyId><StringToSign>GET\n\n\n" in text
    # A parameter missing.
    status, body = fetch(re.sub(r"&?Signature=[^&]*", "", url))
    assert status == 403
    assert without_ids(body) == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Query-string '
        "authentication requires the Signature, Expires and AWSAccessKeyId parameters</Message></Error>"
    )
    # Expired: S3's words, without X-Amz-Expires.
    expired = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "dir/file name.txt"}, ExpiresIn=-10
    )
    status, body = fetch(expired)
    assert status == 403
    assert re.fullmatch(
        r'<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>AccessDenied</Code><Message>Request has expired'
        r"</Message><Expires>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</Expires><ServerTime>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
        r"</ServerTime></Error>",
        without_ids(body),
    )


def test_aws_s3_presign_with_curl(server: LaminaServer, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="cli.txt", Body=b"presigned by the CLI")
    done = run_aws(server, "s3", "presign", f"s3://{bucket}/cli.txt")
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    got = subprocess.run(["curl", "-s", "-f", url], capture_output=True, timeout=30)
    assert got.stdout == b"presigned by the CLI"


def test_expired_sigv4_presigned_url(server: LaminaServer, bucket: str, s3: Any) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    v4 = client(server, "s3", s3=PATH_STYLE, signature_version="s3v4")
    url = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1)
    assert "X-Amz-Expires=1" in url
    time.sleep(2.2)
    status, body = fetch(url)
    assert status == 403
    match = re.fullmatch(
        r'<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>AccessDenied</Code><Message>Request has expired'
        r"</Message><X-Amz-Expires>1</X-Amz-Expires><Expires>(.*)</Expires><ServerTime>(.*)</ServerTime></Error>",
        without_ids(body),
    )
    assert match is not None
    expires, now = (dt.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ") for t in match.groups())
    assert expires < now


@pytest.mark.parametrize(
    "query",
    [
        "AWSAccessKeyId=AKIDALICE111&Signature=x&Expires=999999999999999999999999999999",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=99991231T235959Z&X-Amz-Expires=604800"
        "&X-Amz-Credential=AKIDALICE111%2F99991231%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
    ],
    ids=["sigv2-expires-past-any-date", "sigv4-dated-at-the-end-of-time"],
)
def test_presigns_dated_past_any_date_are_refused(server: LaminaServer, bucket: str, query: str) -> None:
    status, body = fetch(f"{server.url}/{bucket}/k?{query}")
    assert status == 403, body  # S3's refusal, not a server error
    assert b"<Code>AccessDenied</Code>" in body or b"<Code>SignatureDoesNotMatch</Code>" in body


# -- other services reading S3 with the caller's permissions ---------------------------------------


def test_layer_from_another_accounts_bucket_by_its_policy(
    server: LaminaServer, alice: Any, alice_bucket: str
) -> None:
    content = make_zip({"python/shared.py": "VALUE = 1\n"})
    alice.put_object(Bucket=alice_bucket, Key="layers/shared.zip", Body=content)
    alice.put_object(Bucket=alice_bucket, Key="layers/private.zip", Body=content)
    lam = client(server)  # the default account's root
    source = {"S3Bucket": alice_bucket, "S3Key": "layers/shared.zip"}
    with pytest.raises(ClientError) as exc:
        lam.publish_layer_version(LayerName=f"shared-{next(_counter)}", Content=source)
    assert (error(exc)[0], error(exc)[1]["Code"]) == (403, "AccessDeniedException")
    alice.put_bucket_policy(
        Bucket=alice_bucket,
        Policy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "000000000000"},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{alice_bucket}/layers/shared.zip",
            }
        ),
    )
    out = lam.publish_layer_version(LayerName=f"shared-{next(_counter)}", Content=source)
    assert out["Content"]["CodeSize"] == len(content)
    with pytest.raises(ClientError) as exc:
        lam.publish_layer_version(
            LayerName=f"shared-{next(_counter)}", Content={**source, "S3Key": "layers/private.zip"}
        )
    assert error(exc)[0] == 403
