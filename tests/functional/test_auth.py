"""SigV4 through the real server: refusals AWS answers with, presigned URLs, per-account state.

Requests go to a ``lamina server`` subprocess. boto3 sends whatever a client can send (wrong
keys, a skewed clock, no signature, presigned URLs); a request changed after signing is signed
with botocore's own SigV4Auth and sent with http.client, so the bytes on the wire are exactly
the ones chosen here.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, urlencode, urlsplit

import botocore.auth
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence
from lamina_server import LaminaServer, client
from testzips import make_zip

MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
MISMATCH_PREFIX = MISMATCH + "\n\nThe Canonical String for this request should have been\n'"
INVALID_TOKEN = "The security token included in the request is invalid."
STAMP = r"\d{8}T\d{6}Z"
EXPIRED = re.compile(
    rf"Signature expired: ({STAMP}) is now earlier than ({STAMP}) \(({STAMP}) - (\d+ min)\.\)"
)
NOT_YET = re.compile(
    rf"Signature not yet current: ({STAMP}) is still later than ({STAMP}) \(({STAMP}) \+ 15 min\.\)"
)
AMZ_DATE = "%Y%m%dT%H%M%SZ"


def unique(prefix: str = "auth") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def publish(lam: Any, name: str) -> dict[str, Any]:
    published: dict[str, Any] = lam.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip()})
    return published


def versions_path(name: str, version: int | None = None) -> str:
    path = f"/2018-10-31/layers/{name}/versions"
    return path if version is None else f"{path}/{version}"


def client_error(excinfo: pytest.ExceptionInfo[Any]) -> tuple[int, str, str, str]:
    """(status, code, message, x-amzn-ErrorType) of a botocore ClientError."""
    r = excinfo.value.response
    meta = r["ResponseMetadata"]
    return (
        meta["HTTPStatusCode"],
        r["Error"]["Code"],
        r["Error"]["Message"],
        meta["HTTPHeaders"]["x-amzn-errortype"],
    )


@pytest.fixture
def botocore_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Make botocore sign (headers and presigned URLs) as if its clock read the given moment."""

    def set_clock(moment: datetime) -> None:
        naive = moment.astimezone(UTC).replace(tzinfo=None)
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: naive)

    return set_clock


@pytest.fixture(autouse=True)
def server_survives(server: LaminaServer) -> Iterator[None]:
    yield
    assert server.proc.poll() is None, server.log()
    assert "Traceback" not in server.log()


# --- raw HTTP ------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> tuple[int, str, str]:
        """(status, x-amzn-ErrorType, message) of an AWS error answer."""
        assert self.headers["x-amzn-RequestId"]
        assert self.headers["Content-Type"] == "application/json"
        body = self.json()
        assert set(body) == {"message"}, body
        return self.status, self.headers["x-amzn-ErrorType"], body["message"]


@dataclass
class Signed:
    """A request signed by botocore, in the pieces http.client sends; change any before sending."""

    method: str
    target: str  # path and query, as on the request line
    headers: dict[str, str]
    body: bytes
    botocore_request: AWSRequest

    def canonical_request(self, secret: str = "test") -> str:
        """The canonical request botocore signed (what the server must rebuild)."""
        original = self.botocore_request
        saved = original.headers["Authorization"]
        del original.headers["Authorization"]
        try:
            scope = saved.split("Credential=", 1)[1].split(",", 1)[0].split("/")
            signer = SigV4Auth(Credentials(scope[0], secret), scope[3], scope[2])
            canonical: str = signer.canonical_request(original)
            return canonical
        finally:
            original.headers["Authorization"] = saved


def sign(
    server: LaminaServer,
    method: str,
    path: str,
    query: list[tuple[str, str]] | None = None,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    key: str = "test",
    secret: str = "test",
    region: str = "us-east-1",
    at: datetime | None = None,
) -> Signed:
    url = server.url + path + ("?" + percent_encode_sequence(query) if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    signer = SigV4Auth(Credentials(key, secret), "lambda", region)
    if at is None:
        signer.add_auth(request)
    else:
        naive = at.astimezone(UTC).replace(tzinfo=None)
        with mock.patch.object(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: naive):
            signer.add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    sent = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    return Signed(method, target, sent, body, request)


def send(
    server: LaminaServer,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    conn: http.client.HTTPConnection | None = None,
) -> Reply:
    """One request; http.client adds Host (unless given) and Content-Length."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(
            method, target, body=body if body or method in ("POST", "PUT") else None, headers=headers or {}
        )
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        if own:
            conn.close()


def send_signed(server: LaminaServer, s: Signed, **kw: Any) -> Reply:
    return send(server, s.method, s.target, s.headers, s.body, **kw)


@pytest.fixture(scope="module")
def layer(lam: Any) -> str:
    """A layer of 000000000000 in us-east-1 with versions 1 and 2."""
    name = unique("auth-layer")
    publish(lam, name)
    publish(lam, name)
    return name


# --- credentials ---------------------------------------------------------------------------


def test_unknown_access_key(server: LaminaServer, lam: Any) -> None:
    stranger = client(server, key="AKIDNOBODY000000", secret="whatever")
    with pytest.raises(stranger.exceptions.ClientError) as e:
        stranger.list_layers()
    assert client_error(e) == (
        403,
        "UnrecognizedClientException",
        INVALID_TOKEN,
        "UnrecognizedClientException",
    )
    # Raw, to see the whole answer.
    reply = send_signed(server, sign(server, "GET", "/2018-10-31/layers", key="AKIDNOBODY000000"))
    assert reply.error == (403, "UnrecognizedClientException", INVALID_TOKEN)
    url = stranger.generate_presigned_url("list_layers", Params={})
    assert send(server, "GET", target_of(url)).error == (403, "UnrecognizedClientException", INVALID_TOKEN)


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        pytest.param("test", "not-test", id="default-account"),
        pytest.param("AKIDALICE111", "bob-secret", id="other-accounts-secret"),
        pytest.param("AKIDBOB22222", "", id="empty-secret"),
    ],
)
def test_wrong_secret(server: LaminaServer, key: str, secret: str) -> None:
    wrong = client(server, key=key, secret=secret)
    with pytest.raises(wrong.exceptions.ClientError) as e:
        wrong.list_layers()
    status, code, message, error_type = client_error(e)
    assert (status, code, error_type) == (403, "InvalidSignatureException", "InvalidSignatureException")
    assert message.startswith(MISMATCH)


def test_mismatch_message_carries_botocores_canonical_request(server: LaminaServer, layer: str) -> None:
    # Through the real server (uvicorn's raw path, query and headers), the canonical request the
    # server reports for a wrongly keyed request is byte for byte the one botocore signed.
    arn = f"arn:aws:lambda:us-east-1:000000000000:layer:{layer}"
    s = sign(
        server,
        "GET",
        f"/2018-10-31/layers/{arn.replace(':', '%3A')}/versions",
        [("MaxItems", "5"), ("CompatibleRuntime", "python3.12"), ("Marker", "a b/c:d+é")],
        headers={"X-Spaced": "  a   b \t c "},
        secret="wrong",
    )
    canonical = s.canonical_request("wrong")
    assert "%253A" in canonical and "Marker=a%20b%2Fc%3Ad%2B%C3%A9" in canonical

    status, error_type, message = send_signed(server, s).error

    assert (status, error_type) == (403, "InvalidSignatureException")
    assert message.startswith(
        f"{MISMATCH_PREFIX}{canonical}'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n"
    )
    assert message.endswith("'\n")


# --- changed after signing -----------------------------------------------------------------


def _publish_body(description: str) -> bytes:
    return json.dumps(
        {"Content": {"ZipFile": base64.b64encode(make_zip()).decode()}, "Description": description}
    ).encode()


@dataclass(frozen=True)
class Tamper:
    method: str
    path: Callable[[str], str]
    query: list[tuple[str, str]] | None
    body: bytes
    change: Callable[[Signed], None]
    # A piece of the canonical request the server must report: proof it saw the change.
    server_saw: str | None  # None: the hash of the changed body


def _swap_body(s: Signed) -> None:
    s.body = s.body.replace(b'"signed"', b'"sigNed"')


def _longer_body(s: Signed) -> None:
    s.body = s.body[:-1] + b', "LicenseInfo": "MIT"}'


def _other_layer(s: Signed) -> None:
    s.target = s.target.replace("/versions/1", "/versions/2")


def _encoded_path(s: Signed) -> None:
    # Same layer, same operation once decoded; but the signed path was the plain one.
    s.target = s.target.replace("/versions/1", "/versions/%31")


def _query_value(s: Signed) -> None:
    s.target = s.target.replace("MaxItems=5", "MaxItems=50")


def _query_added(s: Signed) -> None:
    s.target += "&CompatibleArchitecture=x86_64"


def _query_dropped(s: Signed) -> None:
    s.target = s.target.replace("&MaxItems=5", "").replace("MaxItems=5&", "")


def _method(s: Signed) -> None:
    s.method = "DELETE"


def _host(s: Signed) -> None:
    s.headers["Host"] = f"localhost:{urlsplit(s.botocore_request.url).port}"


TAMPERS = [
    pytest.param(
        Tamper("POST", versions_path, None, _publish_body("signed"), _swap_body, None),
        id="body-same-length",
    ),
    pytest.param(
        Tamper("POST", versions_path, None, _publish_body("signed"), _longer_body, None),
        id="body-longer",
    ),
    pytest.param(
        Tamper("GET", lambda n: versions_path(n, 1), None, b"", _other_layer, "/versions/2\n"),
        id="path-other-version",
    ),
    pytest.param(
        Tamper("GET", lambda n: versions_path(n, 1), None, b"", _encoded_path, "/versions/%2531\n"),
        id="path-encoded-differently",
    ),
    pytest.param(
        Tamper("GET", versions_path, [("MaxItems", "5")], b"", _query_value, "\nMaxItems=50\n"),
        id="query-value",
    ),
    pytest.param(
        Tamper(
            "GET",
            versions_path,
            [("MaxItems", "5")],
            b"",
            _query_added,
            "\nCompatibleArchitecture=x86_64&MaxItems=5\n",
        ),
        id="query-added",
    ),
    pytest.param(
        Tamper(
            "GET",
            versions_path,
            [("CompatibleRuntime", "python3.12"), ("MaxItems", "5")],
            b"",
            _query_dropped,
            "\nCompatibleRuntime=python3.12\n",
        ),
        id="query-dropped",
    ),
    pytest.param(
        Tamper("GET", lambda n: versions_path(n, 1), None, b"", _method, "'DELETE\n"),
        id="method-get-to-delete",
    ),
    pytest.param(
        Tamper("GET", lambda n: versions_path(n, 1), None, b"", _host, "\nhost:localhost:"),
        id="host-header",
    ),
]


@pytest.mark.parametrize("tamper", TAMPERS)
def test_changed_after_signing_is_refused(server: LaminaServer, lam: Any, layer: str, tamper: Tamper) -> None:
    s = sign(
        server,
        tamper.method,
        tamper.path(layer),
        tamper.query,
        body=tamper.body,
        headers={"Content-Type": "application/json"} if tamper.body else None,
    )
    before = (s.method, s.target, dict(s.headers), s.body)
    tamper.change(s)
    assert (s.method, s.target, s.headers, s.body) != before

    status, error_type, message = send_signed(server, s).error

    assert (status, error_type) == (403, "InvalidSignatureException")
    assert message.startswith(MISMATCH_PREFIX)
    server_saw = tamper.server_saw or f"\n{hashlib.sha256(s.body).hexdigest()}'\n\nThe String-to-Sign"
    assert server_saw in message
    # Nothing happened: no version was published, none deleted.
    versions = lam.list_layer_versions(LayerName=layer)["LayerVersions"]
    assert [v["Version"] for v in versions] == [2, 1]


def test_untampered_raw_requests_succeed(server: LaminaServer, layer: str) -> None:
    # The raw path above is not refusing everything: the same requests, unchanged, pass.
    got = send_signed(server, sign(server, "GET", versions_path(layer, 1)))
    assert got.status == 200 and got.json()["Version"] == 1
    listed = send_signed(server, sign(server, "GET", versions_path(layer), [("MaxItems", "1")]))
    assert listed.status == 200 and [v["Version"] for v in listed.json()["LayerVersions"]] == [2]
    published = send_signed(
        server,
        sign(
            server,
            "POST",
            versions_path(unique()),
            body=_publish_body("raw"),
            headers={"Content-Type": "application/json"},
        ),
    )
    assert published.status == 201 and published.json()["Version"] == 1


def test_connection_is_reusable_after_a_refusal(server: LaminaServer, layer: str) -> None:
    # A refused upload is read to its end: the next request on the same keep-alive connection
    # is answered normally.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        bad = sign(
            server,
            "POST",
            versions_path(layer),
            body=_publish_body("signed"),
            headers={"Content-Type": "application/json"},
        )
        _swap_body(bad)
        assert send_signed(server, bad, conn=conn).status == 403
        assert send(server, "GET", versions_path(layer, 1), conn=conn).status == 403  # unsigned
        good = send_signed(server, sign(server, "GET", versions_path(layer, 2)), conn=conn)
        assert good.status == 200 and good.json()["Version"] == 2
    finally:
        conn.close()


# --- clock ---------------------------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(AMZ_DATE)


def _parse_stamp(stamp: str) -> datetime:
    return datetime.strptime(stamp, AMZ_DATE).replace(tzinfo=UTC)


def _assert_server_now(stamp: str, before: datetime, after: datetime) -> datetime:
    moment = _parse_stamp(stamp)
    assert before.replace(microsecond=0) - timedelta(seconds=1) <= moment <= after + timedelta(seconds=1)
    return moment


def test_signed_16_minutes_ago_is_expired(server: LaminaServer, botocore_clock: Any) -> None:
    signed_at = datetime.now(UTC) - timedelta(minutes=16)
    botocore_clock(signed_at)
    lam = client(server)

    before = datetime.now(UTC)
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.list_layers()
    after = datetime.now(UTC)

    status, code, message, error_type = client_error(e)
    assert (status, code, error_type) == (403, "InvalidSignatureException", "InvalidSignatureException")
    match = EXPIRED.fullmatch(message)
    assert match, message
    assert match[1] == _stamp(signed_at)
    server_now = _assert_server_now(match[3], before, after)
    assert match[2] == _stamp(server_now - timedelta(minutes=15))
    assert match[4] == "15 min"


def test_signed_16_minutes_ahead_is_not_yet_current(server: LaminaServer, botocore_clock: Any) -> None:
    signed_at = datetime.now(UTC) + timedelta(minutes=16)
    botocore_clock(signed_at)
    lam = client(server)

    before = datetime.now(UTC)
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.list_layers()
    after = datetime.now(UTC)

    status, code, message, error_type = client_error(e)
    assert (status, code, error_type) == (403, "InvalidSignatureException", "InvalidSignatureException")
    match = NOT_YET.fullmatch(message)
    assert match, message
    assert match[1] == _stamp(signed_at)
    server_now = _assert_server_now(match[3], before, after)
    assert match[2] == _stamp(server_now + timedelta(minutes=15))


def test_skewed_raw_request_has_the_same_answer(server: LaminaServer) -> None:
    # The header form without boto3: X-Amz-Date and the scope date both from the skewed clock.
    signed_at = datetime.now(UTC) - timedelta(minutes=16)
    s = sign(server, "GET", "/2018-10-31/layers", at=signed_at)
    assert s.headers["X-Amz-Date"] == _stamp(signed_at)

    status, error_type, message = send_signed(server, s).error

    assert (status, error_type) == (403, "InvalidSignatureException")
    assert message.startswith(f"Signature expired: {_stamp(signed_at)} is now earlier than ")
    assert EXPIRED.fullmatch(message)


@pytest.mark.parametrize("minutes", [-10, 10], ids=["10-min-behind", "10-min-ahead"])
def test_ten_minutes_of_skew_is_accepted(server: LaminaServer, botocore_clock: Any, minutes: int) -> None:
    botocore_clock(datetime.now(UTC) + timedelta(minutes=minutes))
    lam = client(server)

    name = unique()
    assert publish(lam, name)["Version"] == 1
    assert lam.get_layer_version(LayerName=name, VersionNumber=1)["Version"] == 1


# --- no signature --------------------------------------------------------------------------


def test_unsigned_request_via_boto3(server: LaminaServer) -> None:
    anonymous = client(server, signature_version=UNSIGNED)
    with pytest.raises(anonymous.exceptions.ClientError) as e:
        anonymous.list_layers()
    assert client_error(e) == (
        403,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
        "MissingAuthenticationTokenException",
    )
    with pytest.raises(anonymous.exceptions.ClientError) as e:
        anonymous.publish_layer_version(LayerName=unique(), Content={"ZipFile": make_zip()})
    assert client_error(e)[:3] == (403, "MissingAuthenticationTokenException", "Missing Authentication Token")


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        pytest.param("GET", "/2018-10-31/layers", b"", id="list-layers"),
        pytest.param("GET", "/2018-10-31/layers/x/versions/1", b"", id="get-layer-version"),
        pytest.param("POST", "/2018-10-31/layers/x/versions", b'{"Content": {}}', id="publish"),
        pytest.param("DELETE", "/2018-10-31/layers/x/versions/1", b"", id="delete"),
    ],
)
def test_unsigned_raw_request(server: LaminaServer, method: str, target: str, body: bytes) -> None:
    reply = send(server, method, target, {"Content-Type": "application/json"} if body else {}, body)
    assert reply.error == (403, "MissingAuthenticationTokenException", "Missing Authentication Token")


def test_signature_parts_without_authorization_header(server: LaminaServer) -> None:
    # X-Amz-Date and a session token but no Authorization: still no signature at all.
    reply = send(
        server,
        "GET",
        "/2018-10-31/layers",
        {"X-Amz-Date": _stamp(datetime.now(UTC)), "X-Amz-Security-Token": "token"},
    )
    assert reply.error == (403, "MissingAuthenticationTokenException", "Missing Authentication Token")


def _malformed() -> list[Any]:
    scope = "test/20260101/us-east-1/lambda/aws4_request"
    return [
        pytest.param(
            {"Authorization": "Bearer abc"},
            "IncompleteSignatureException",
            "Authorization header requires 'Credential' parameter. "
            "Authorization header requires 'Signature' parameter. "
            "Authorization header requires 'SignedHeaders' parameter. "
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
            "Authorization=Bearer abc",
            id="bearer-token",
        ),
        pytest.param(
            {"Authorization": f"AWS4-HMAC-SHA256 Credential={scope}", "X-Amz-Date": "20260101T000000Z"},
            "IncompleteSignatureException",
            "Authorization header requires 'Signature' parameter. "
            "Authorization header requires 'SignedHeaders' parameter. "
            f"Authorization=AWS4-HMAC-SHA256 Credential={scope}",
            id="no-signature",
        ),
        pytest.param(
            {
                "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=00",
                "X-Amz-Date": "2026-01-01T00:00:00Z",
            },
            "IncompleteSignatureException",
            "Date must be in ISO-8601 'basic format'. Got '2026-01-01T00:00:00Z'. "
            "See http://en.wikipedia.org/wiki/ISO_8601",
            id="extended-date",
        ),
        pytest.param(
            {
                "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/lambda, "
                "SignedHeaders=host;x-amz-date, Signature=00",
                "X-Amz-Date": "NOW",
            },
            "IncompleteSignatureException",
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            "got 'test/20260101/us-east-1/lambda'",
            id="short-credential",
        ),
        pytest.param(
            {
                "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=x-amz-date, Signature=00",
                "X-Amz-Date": "NOW",
            },
            "InvalidSignatureException",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            id="host-not-signed",
        ),
    ]


@pytest.mark.parametrize(("headers", "error_type", "message"), _malformed())
def test_malformed_authorization(
    server: LaminaServer, headers: dict[str, str], error_type: str, message: str
) -> None:
    now = _stamp(datetime.now(UTC))
    headers = {k: v.replace("NOW", now) for k, v in headers.items()}

    assert send(server, "GET", "/2018-10-31/layers", headers).error == (403, error_type, message)


def test_bad_credential_scope(server: LaminaServer) -> None:
    s = sign(server, "GET", "/2018-10-31/layers", region="nowhere")
    assert send_signed(server, s).error == (
        403,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'nowhere'. ",
    )
    s = sign(server, "GET", "/2018-10-31/layers")
    today = s.headers["X-Amz-Date"][:8]
    s.headers["Authorization"] = s.headers["Authorization"].replace(f"/{today}/", "/20200101/")
    assert send_signed(server, s).error == (
        403,
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        f"'20200101' != '{today}', from '{s.headers['X-Amz-Date']}'.",
    )


# --- presigned URLs ------------------------------------------------------------------------


def presign(lam: Any, layer: str, version: int = 1, expires: int = 3600) -> str:
    url: str = lam.generate_presigned_url(
        "get_layer_version", Params={"LayerName": layer, "VersionNumber": version}, ExpiresIn=expires
    )
    return url


def target_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _set_param(url: str, name: str, value: str | None) -> str:
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    if value is not None:
        pairs.append((name, value))
    return parts._replace(query=urlencode(pairs, safe="/")).geturl()


def test_presigned_get_layer_version(server: LaminaServer, lam: Any, alice: Any, layer: str) -> None:
    url = presign(lam, layer, 2)
    assert "X-Amz-Signature=" in url and "Authorization" not in url

    reply = send(server, "GET", target_of(url))

    assert reply.status == 200, reply.body
    got = reply.json()
    assert got["LayerVersionArn"] == f"arn:aws:lambda:us-east-1:000000000000:layer:{layer}:2"
    direct = lam.get_layer_version(LayerName=layer, VersionNumber=2)
    del direct["ResponseMetadata"]
    # The same answer as a signed call, but for Content.Location's own download signature.
    assert got["Content"].pop("Location").startswith(f"{server.url}/_lamina/blobs/")
    assert direct["Content"].pop("Location").startswith(f"{server.url}/_lamina/blobs/")
    assert got == direct
    # Presigned by another account, the same bare name is that account's layer (which it lacks).
    other = send(server, "GET", target_of(presign(alice, layer, 2)))
    assert other.status == 404 and other.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"


def _presign_tampers() -> list[Any]:
    def flip(sig: str) -> str:
        return sig[:-1] + ("0" if sig[-1] != "0" else "1")

    return [
        pytest.param(lambda url: url.replace("/versions/1?", "/versions/2?"), id="path-other-version"),
        pytest.param(
            lambda url: re.sub(
                r"X-Amz-Signature=([0-9a-f]+)", lambda m: f"X-Amz-Signature={flip(m[1])}", url
            ),
            id="signature",
        ),
        pytest.param(
            lambda url: url.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200"), id="expires-extended"
        ),
        pytest.param(lambda url: url + "&MaxItems=1", id="query-added"),
        pytest.param(
            lambda url: url.replace("Credential=test%2F", "Credential=AKIDALICE111%2F"),
            id="credential-swapped",
        ),
        pytest.param(_shift_date, id="date-one-second-earlier"),
    ]


def _shift_date(url: str) -> str:
    def earlier(m: re.Match[str]) -> str:
        return "X-Amz-Date=" + _stamp(_parse_stamp(m[1]) - timedelta(seconds=1))

    return re.sub(rf"X-Amz-Date=({STAMP})", earlier, url)


@pytest.mark.parametrize("tamper", _presign_tampers())
def test_tampered_presigned_url_is_refused(
    server: LaminaServer, lam: Any, layer: str, tamper: Callable[[str], str]
) -> None:
    url = presign(lam, layer, 1)
    changed = tamper(url)
    assert changed != url

    status, error_type, message = send(server, "GET", target_of(changed)).error

    assert (status, error_type) == (403, "InvalidSignatureException")
    assert message.startswith(MISMATCH_PREFIX)


def test_presigned_url_used_with_another_method_is_refused(
    server: LaminaServer, lam: Any, layer: str
) -> None:
    # A URL handed out to read version 1 must not delete it.
    url = presign(lam, layer, 1)

    status, error_type, message = send(server, "DELETE", target_of(url)).error

    assert (status, error_type) == (403, "InvalidSignatureException")
    assert message.startswith(MISMATCH_PREFIX + "DELETE\n")
    assert lam.get_layer_version(LayerName=layer, VersionNumber=1)["Version"] == 1


def test_presigned_url_without_signature(server: LaminaServer, lam: Any, layer: str) -> None:
    url = _set_param(presign(lam, layer, 1), "X-Amz-Signature", None)

    assert send(server, "GET", target_of(url)).error == (
        403,
        "IncompleteSignatureException",
        "AWS query-string parameters must include 'X-Amz-Signature'. Re-examine the query-string parameters.",
    )


def test_presigned_url_both_signatures(server: LaminaServer, lam: Any, layer: str) -> None:
    # A presigned URL sent with an Authorization header as well: two signatures, refused.
    url = presign(lam, layer, 1)
    s = sign(server, "GET", versions_path(layer, 1))

    status, error_type, message = send(server, "GET", target_of(url), s.headers).error

    assert (status, error_type, message) == (403, "InvalidSignatureException", MISMATCH)


def test_expired_presigned_url(server: LaminaServer, lam: Any, layer: str, botocore_clock: Any) -> None:
    signed_at = datetime.now(UTC) - timedelta(minutes=61)
    botocore_clock(signed_at)
    url = presign(lam, layer, 1, expires=3600)

    before = datetime.now(UTC)
    status, error_type, message = send(server, "GET", target_of(url)).error
    after = datetime.now(UTC)

    assert (status, error_type) == (403, "InvalidSignatureException")
    match = EXPIRED.fullmatch(message)
    assert match, message
    assert match[1] == _stamp(signed_at)
    server_now = _assert_server_now(match[3], before, after)
    assert match[2] == _stamp(server_now - timedelta(minutes=60))
    assert match[4] == "60 min"


def test_presigned_url_within_its_expiry_past_15_minutes(
    server: LaminaServer, lam: Any, layer: str, botocore_clock: Any
) -> None:
    # lamina honours X-Amz-Expires (see sigv4._check_clock): a 1-hour URL works after 30 minutes.
    botocore_clock(datetime.now(UTC) - timedelta(minutes=30))
    url = presign(lam, layer, 1, expires=3600)

    reply = send(server, "GET", target_of(url))

    assert reply.status == 200 and reply.json()["Version"] == 1


# --- state per (account, region) -----------------------------------------------------------


def test_state_is_partitioned_by_account_and_region(
    server: LaminaServer, alice: Any, bob: Any, lam: Any
) -> None:
    alice_eu = client(server, key="AKIDALICE111", secret="alice-secret", region="eu-west-1")
    name = unique("shared-name")

    first = publish(alice, name)
    assert (first["Version"], first["LayerVersionArn"]) == (
        1,
        f"arn:aws:lambda:us-east-1:111111111111:layer:{name}:1",
    )
    not_found = "The resource you requested does not exist."
    # Another account, same region, bare name: nothing there.
    for other in (bob, lam, alice_eu):
        with pytest.raises(other.exceptions.ResourceNotFoundException) as e:
            other.get_layer_version(LayerName=name, VersionNumber=1)
        assert client_error(e) == (404, "ResourceNotFoundException", not_found, "ResourceNotFoundException")
        assert other.list_layer_versions(LayerName=name)["LayerVersions"] == []
        assert name not in {layer["LayerName"] for layer in other.list_layers()["Layers"]}

    # Each (account, region) numbers its own versions from 1.
    bobs = publish(bob, name)
    assert (bobs["Version"], bobs["LayerVersionArn"]) == (
        1,
        f"arn:aws:lambda:us-east-1:222222222222:layer:{name}:1",
    )
    eu = publish(alice_eu, name)
    assert (eu["Version"], eu["LayerVersionArn"]) == (
        1,
        f"arn:aws:lambda:eu-west-1:111111111111:layer:{name}:1",
    )
    assert publish(alice, name)["Version"] == 2

    assert [v["Version"] for v in alice.list_layer_versions(LayerName=name)["LayerVersions"]] == [2, 1]
    assert [v["Version"] for v in bob.list_layer_versions(LayerName=name)["LayerVersions"]] == [1]
    assert [v["Version"] for v in alice_eu.list_layer_versions(LayerName=name)["LayerVersions"]] == [1]
    assert (
        bob.get_layer_version(LayerName=name, VersionNumber=1)["LayerVersionArn"] == bobs["LayerVersionArn"]
    )
    with pytest.raises(bob.exceptions.ResourceNotFoundException):
        bob.get_layer_version(LayerName=name, VersionNumber=2)

    # Deleting one partition's version leaves the others alone.
    bob.delete_layer_version(LayerName=name, VersionNumber=1)
    assert alice.get_layer_version(LayerName=name, VersionNumber=1)["Version"] == 1
    assert alice_eu.get_layer_version(LayerName=name, VersionNumber=1)["Version"] == 1
    assert publish(bob, name)["Version"] == 2  # version numbers are never reused


def test_account_comes_from_the_key_not_the_request(server: LaminaServer, layer: str) -> None:
    # The default account's layer, asked for by alice with its full ARN in the path: the
    # signature decides who is asking, so alice gets no access (no grant was added).
    arn = f"arn:aws:lambda:us-east-1:000000000000:layer:{layer}"
    s = sign(
        server, "GET", versions_path(arn.replace(":", "%3A"), 1), key="AKIDALICE111", secret="alice-secret"
    )
    reply = send_signed(server, s)
    assert reply.status == 403 and reply.headers["x-amzn-ErrorType"] == "AccessDeniedException"
    mine = send_signed(server, sign(server, "GET", versions_path(arn.replace(":", "%3A"), 1)))
    assert mine.status == 200 and mine.json()["LayerVersionArn"] == f"{arn}:1"


# --- still serving -------------------------------------------------------------------------


def test_server_still_serves_after_all_of_the_above(server: LaminaServer, lam: Any) -> None:
    name = unique("after")
    assert publish(lam, name)["Version"] == 1
    assert lam.get_layer_version(LayerName=name, VersionNumber=1)["LayerVersionArn"].endswith(f":{name}:1")
    health = send(server, "GET", "/_lamina/health")
    assert health.status == 200 and health.json()["status"] == "ok"
