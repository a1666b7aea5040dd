"""A hostile client's NUL characters, on both metadata backends: what PostgreSQL's text cannot
hold (an S3 key, a log event, a log filter, a layer's description) is refused with the service's
own invalid-parameter error (400, never a 500) and nothing of the request is stored; SQLite,
which holds them, keeps taking them."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_server import LaminaServer, client
from testzips import make_zip

pytestmark = pytest.mark.backends


def _refused(call: Any, code: str, backend: str) -> Any:
    """On PostgreSQL, ``call()`` fails with ``code`` (400); on SQLite it succeeds."""
    if backend == "sqlite":
        return call()
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return None


def test_nul_in_an_s3_key_is_refused_and_stores_nothing(server: LaminaServer, backend: str) -> None:
    s3 = client(server, "s3")
    bucket = f"nul-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    _refused(lambda: s3.put_object(Bucket=bucket, Key="a\x00b", Body=b"x"), "InvalidArgument", backend)
    _refused(lambda: s3.create_multipart_upload(Bucket=bucket, Key="m\x00"), "InvalidArgument", backend)
    listed = s3.list_objects_v2(Bucket=bucket, EncodingType="url").get("Contents", [])
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    if backend == "postgresql":
        assert listed == [] and uploads == []
    s3.put_object(Bucket=bucket, Key="after", Body=b"y")  # the bucket still works
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"y"


def test_nul_in_log_events_and_filters_is_refused(server: LaminaServer, backend: str) -> None:
    logs = client(server, "logs")
    group = f"g-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": "fine"}, {"timestamp": now, "message": "m\x00n"}]
    put = lambda: logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)  # noqa: E731
    _refused(put, "InvalidParameterException", backend)
    found = lambda: logs.filter_log_events(logGroupName=group, filterPattern='"\x00"')  # noqa: E731
    _refused(found, "InvalidParameterException", backend)
    stored = logs.get_log_events(logGroupName=group, logStreamName="s")["events"]
    assert len(stored) == (2 if backend == "sqlite" else 0)  # never half of the batch


def test_an_unstorable_layer_description_is_refused_before_its_zip_is_stored(
    server: LaminaServer, backend: str
) -> None:
    """Refused on both engines alike (a NUL would be refused by PostgreSQL only after the zip was
    stored, leaving a blob nothing refers to: a disk filled a zip per request)."""
    lam = client(server)
    name = f"nul-{uuid.uuid4().hex[:8]}"
    blobs = server.data_dir / "blobs"
    before = {p.name for p in blobs.rglob("*") if p.is_file()}
    for bad in ({"Description": "d\x00"}, {"Description": "d\ud800"}, {"LicenseInfo": "MIT\x00"}):
        content = {"ZipFile": make_zip({"python/m.py": f"X = {uuid.uuid4().hex!r}\n"})}
        with pytest.raises(ClientError) as caught:
            lam.publish_layer_version(LayerName=name, Content=content, **bad)
        assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert {p.name for p in blobs.rglob("*") if p.is_file()} == before  # no zip left behind
    content = {"ZipFile": make_zip()}
    assert lam.publish_layer_version(LayerName=name, Content=content, Description="ok")["Version"] == 1


def test_an_unpaired_surrogate_is_refused_on_both_backends(server: LaminaServer, backend: str) -> None:
    """JSON's ``\\ud800`` alone decodes to a string no engine stores (it is no UTF-8): the
    service's 400, not a 500, and nothing stored (on SQLite as on PostgreSQL)."""
    lam, logs = client(server), client(server, "logs")
    name = f"sur-{uuid.uuid4().hex[:8]}"
    content = {"ZipFile": make_zip()}
    with pytest.raises(ClientError) as caught:
        lam.publish_layer_version(LayerName=name, Content=content, Description="d\ud800")
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert lam.publish_layer_version(LayerName=name, Content=content)["Version"] == 1
    group = f"g-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    with pytest.raises(ClientError) as caught:
        logs.filter_log_events(logGroupName=group, filterPattern='"\ud800"')
    assert caught.value.response["Error"]["Code"] == "InvalidParameterException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_the_console_answers_unstorable_values_as_the_api_does(server: LaminaServer, backend: str) -> None:
    """The console's calls go through the same pipeline: the same 400, not its 500."""
    import http.cookiejar
    import json
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def post(action: str, doc: Any) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json", "X-Lamina-Console": "1"}
        req = urllib.request.Request(f"{server.url}/console/api/{action}", json.dumps(doc).encode(), headers)
        try:
            with opener.open(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    assert post("signin", {"accessKeyId": "test", "secretAccessKey": "test"})[0] == 200
    group = f"g-{uuid.uuid4().hex[:8]}"
    client(server, "logs").create_log_group(logGroupName=group)
    params = {"logGroupName": group, "filterPattern": '"\ud800"'}
    status, doc = post("call", {"service": "logs", "operation": "FilterLogEvents", "params": params})
    assert status == 400, doc
    assert doc["error"]["code"] == "InvalidParameterException"


def test_sql_characters_in_names_are_only_values(server: LaminaServer, backend: str) -> None:
    """``%``, ``_``, ``?``, quotes and backslashes in keys, prefixes and stream names match only
    themselves (no LIKE wildcard, no placeholder, no literal's end), on both engines."""
    s3, logs = client(server, "s3"), client(server, "logs")
    bucket = f"sqlchars-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    keys = ["a%b", "a_b", "axb", "a?b", "a%%s", "A%b", "a\\b", "a'b", 'a"b', "a%s", "a%s'--"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for prefix in ["a%", "a_", "a?", "a%%", "a\\", "a'", "A", "a%s", 'a"']:
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
        assert listed == sorted(k for k in keys if k.startswith(prefix)), prefix
    assert all(s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode() for k in keys)
    group = f"g-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    for name in ["s%1", "s_1", "sx1"]:
        logs.create_log_stream(logGroupName=group, logStreamName=name)
    for prefix, expected in (("s%", ["s%1"]), ("s_", ["s_1"]), ("s", ["s%1", "s_1", "sx1"])):
        streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=prefix)["logStreams"]
        assert [s["logStreamName"] for s in streams] == expected
