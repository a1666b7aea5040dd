"""SigV4 verification against requests signed by botocore itself.

Every accepted request here was signed by botocore (its low-level signers, or a real client
serialising a real operation), turned into what the server would see on the wire, and checked
with lamina's verifier. Each refusal starts from such a request and changes one thing.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
import botocore.session
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence

from lamina.api.sigv4 import Credential, IncomingRequest, SigningScope, parse_scope, verify
from lamina.errors import (
    AwsError,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

ENDPOINT = "http://localhost:4566"
ACCOUNT = "111122223333"
KEY = Credential("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ACCOUNT)
TEMP = Credential("ASIATEMPEXAMPLE", "temp/secret+key", ACCOUNT, session_token="FwoGZXIvYXdzE//token+=")
KNOWN = {c.access_key_id: c for c in (KEY, TEMP)}

# botocore's clock is frozen here, so every signature and message below is reproducible.
SIGNED_AT = datetime(2026, 1, 1, 0, 10, 0)
NOW = SIGNED_AT.replace(tzinfo=UTC)

MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."
LAYER_ARN = "arn:aws:lambda:us-east-1:111122223333:layer:my-layer"


@pytest.fixture(autouse=True)
def frozen_botocore_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: SIGNED_AT)


def lookup(access_key_id: str) -> Credential | None:
    return KNOWN.get(access_key_id)


def botocore_credentials(credential: Credential) -> Credentials:
    return Credentials(credential.access_key_id, credential.secret_access_key, credential.session_token)


def on_the_wire(method: str, url: str, headers: Any, body: bytes | str | None) -> IncomingRequest:
    """What the server sees: the raw path and query split off the URL, Host added as urllib3 does."""
    parts = urlsplit(url)
    # Header values arrive as bytes from botocore's prepared requests; a server decodes them.
    lowered = {
        name.lower(): value.decode("latin-1") if isinstance(value, bytes) else value
        for name, value in headers.items()
    }
    lowered.setdefault("host", parts.netloc)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return IncomingRequest(method, parts.path, parts.query, lowered, body or b"")


def signed(
    method: str,
    path: str,
    query: list[tuple[str, str]] | None = None,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    credential: Credential = KEY,
    service: str = "lambda",
    region: str = "us-east-1",
    scheme: str = "http",
    unsigned_payload: bool = False,
) -> tuple[IncomingRequest, AWSRequest]:
    """Sign with botocore's SigV4Auth, with the query encoded as botocore's serialisers do."""
    url = f"{scheme}://localhost:4566{path}"
    if query:
        url += "?" + percent_encode_sequence(query)
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if unsigned_payload:
        request.context["payload_signing_enabled"] = False
    SigV4Auth(botocore_credentials(credential), service, region).add_auth(request)
    prepared = request.prepare()
    return on_the_wire(prepared.method, prepared.url, prepared.headers, prepared.body), request


def presigned(
    path: str,
    query: list[tuple[str, str]] | None = None,
    *,
    credential: Credential = KEY,
    expires: int = 3600,
    service: str = "lambda",
) -> IncomingRequest:
    url = f"{ENDPOINT}{path}"
    if query:
        url += "?" + percent_encode_sequence(query)
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(botocore_credentials(credential), service, "us-east-1", expires=expires).add_auth(request)
    prepared = request.prepare()
    return on_the_wire("GET", prepared.url, prepared.headers, prepared.body)


class _Sent(Exception):
    """Raised from botocore's before-send hook to stop the request from leaving."""


def client_request(
    service: str, operation: str, credential: Credential = KEY, **kwargs: Any
) -> IncomingRequest:
    """Let a real botocore client serialise and sign an operation, and catch it before sending."""
    session = botocore.session.get_session()
    client = session.create_client(
        service,
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id=credential.access_key_id,
        aws_secret_access_key=credential.secret_access_key,
        aws_session_token=credential.session_token,
        config=Config(retries={"total_max_attempts": 1}),
    )
    captured: list[Any] = []

    def capture(request: Any, **_: Any) -> None:
        captured.append(request)
        raise _Sent

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Sent):
        getattr(client, operation)(**kwargs)
    sent = captured[-1]
    return on_the_wire(sent.method, sent.url, sent.headers, sent.body)


def client_presigned_url(
    service: str, operation: str, http_method: str | None = None, **params: Any
) -> IncomingRequest:
    client = botocore.session.get_session().create_client(
        service,
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id=KEY.access_key_id,
        aws_secret_access_key=KEY.secret_access_key,
    )
    url = client.generate_presigned_url(operation, Params=params, HttpMethod=http_method)
    return on_the_wire("GET", url, {}, b"")


def refused(request: IncomingRequest, now: datetime = NOW, **kwargs: Any) -> AwsError:
    with pytest.raises(AwsError) as info:
        verify(request, lookup, now, **kwargs)
    return info.value


def replace_header(request: IncomingRequest, name: str, value: str | None) -> IncomingRequest:
    headers = {k: v for k, v in request.headers.items() if k != name}
    if value is not None:
        headers[name] = value
    return dataclasses.replace(request, headers=headers)


def rewrite_authorization(request: IncomingRequest, old: str, new: str) -> IncomingRequest:
    authorization = request.headers["authorization"]
    assert old in authorization
    return replace_header(request, "authorization", authorization.replace(old, new))


# --- accepted -------------------------------------------------------------------------------


def _accepted_cases() -> Iterator[Any]:
    yield pytest.param(
        lambda: signed("GET", "/2015-03-31/functions/", [("MaxItems", "10"), ("FunctionVersion", "ALL")])[0],
        "lambda",
        id="get-with-query",
    )
    yield pytest.param(
        lambda: signed(
            "GET",
            "/2015-03-31/functions/",
            [("Marker", "a:b/c d=e&f+g"), ("Arn", LAYER_ARN), ("x", "ünï€ode"), ("empty", "")],
        )[0],
        "lambda",
        id="query-values-needing-encoding",
    )
    yield pytest.param(
        lambda: signed("GET", "/p", [("b", "2"), ("a", "z"), ("a", "y"), ("A", "1"), ("a-b", "0")])[0],
        "lambda",
        id="repeated-keys-sorted-by-value",
    )
    yield pytest.param(
        lambda: signed(
            "GET", "/2018-10-31/layers/arn%3Aaws%3Alambda%3Aus-east-1%3A111122223333%3Alayer%3Ax/versions/3"
        )[0],
        "lambda",
        id="percent-encoded-path",
    )
    yield pytest.param(
        lambda: signed("GET", "/a//b/./c/../d%20e~f/")[0],
        "lambda",
        id="dot-segments-double-slash-space-tilde",
    )
    yield pytest.param(
        lambda: signed(
            "POST",
            "/2015-03-31/functions",
            body=b'{"FunctionName": "fn", "Runtime": "python3.12"}',
            headers={"Content-Type": "application/json", "X-Custom": "  a   lot \t of   space  "},
        )[0],
        "lambda",
        id="post-json-body-and-untrimmed-header",
    )
    yield pytest.param(
        lambda: signed(
            "POST",
            "/",
            body=b"Action=CreateUser&UserName=bob&Version=2010-05-08",
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            service="iam",
        )[0],
        "iam",
        id="query-protocol-form-body",
    )
    yield pytest.param(
        lambda: signed("GET", "/2015-03-31/functions/", headers={"Date": "placeholder"})[0],
        "lambda",
        id="date-header-instead-of-x-amz-date",
    )
    yield pytest.param(
        lambda: signed("GET", "/2015-03-31/functions/", credential=TEMP)[0],
        "lambda",
        id="session-token",
    )
    yield pytest.param(
        lambda: signed("PUT", "/x", body=b"payload", scheme="https", unsigned_payload=True)[0],
        "lambda",
        id="unsigned-payload",
    )
    yield pytest.param(
        lambda: presigned("/2015-03-31/functions/", [("MaxItems", "5"), ("Marker", "a b:c")]),
        "lambda",
        id="presigned-get",
    )
    yield pytest.param(
        lambda: presigned("/2015-03-31/functions/", credential=TEMP),
        "lambda",
        id="presigned-with-session-token",
    )
    yield pytest.param(
        lambda: client_request("lambda", "get_layer_version", LayerName=LAYER_ARN, VersionNumber=3),
        "lambda",
        id="client-layer-arn-in-path",
    )
    yield pytest.param(
        lambda: client_request("lambda", "list_functions", MaxItems=5, Marker="x:y/z w"),
        "lambda",
        id="client-list-functions-query",
    )
    yield pytest.param(
        lambda: client_request(
            "lambda", "invoke", FunctionName="fn", Payload=b'{"k": [1, 2]}', Qualifier="$LATEST"
        ),
        "lambda",
        id="client-invoke-body",
    )
    yield pytest.param(
        lambda: client_request("lambda", "list_functions", credential=TEMP),
        "lambda",
        id="client-session-token",
    )
    yield pytest.param(
        lambda: client_request("iam", "create_user", UserName="bob", Path="/a/b/"),
        "iam",
        id="client-iam-query-protocol",
    )
    yield pytest.param(
        lambda: client_request("ec2", "describe_vpcs", VpcIds=["vpc-1", "vpc-2"]),
        "ec2",
        id="client-ec2",
    )
    yield pytest.param(
        lambda: client_presigned_url("sts", "get_caller_identity", http_method="GET"),
        "sts",
        id="client-presigned-sts",
    )
    yield pytest.param(
        lambda: client_presigned_url("lambda", "get_layer_version", LayerName=LAYER_ARN, VersionNumber=1),
        "lambda",
        id="client-presigned-layer-arn",
    )


@pytest.mark.parametrize(("make", "service"), list(_accepted_cases()))
def test_botocore_signed_requests_verify(
    make: Callable[[], IncomingRequest], service: str, request: pytest.FixtureRequest
) -> None:
    incoming = make()
    credential = TEMP if "session-token" in request.node.callspec.id else KEY

    scope = verify(incoming, lookup, NOW)

    assert scope == SigningScope(credential.access_key_id, ACCOUNT, "us-east-1", service, credential)
    assert verify(incoming, lookup, NOW, expected_service=service) == scope


def test_presigned_query_protocol_url_needs_http_method_get() -> None:
    # botocore signs a presigned STS/IAM/EC2 URL with the operation's method (POST) unless told
    # HttpMethod="GET" (as `aws eks get-token` does); fetched with GET, AWS refuses it, and so
    # does lamina (boto/boto3#756).
    request = client_presigned_url("sts", "get_caller_identity")

    error = refused(request)

    assert isinstance(error, InvalidSignatureException)
    assert (
        "should have been\n'GET\n/\nAction=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm="
        in error.message
    )


def test_plus_in_the_query_is_a_space() -> None:
    # AWSRequest(params=...) sends "a b" as "a+b" (urlencode) but signs it as "a%20b".
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/p", params={"q": "a b+c", "r": "x"})
    SigV4Auth(botocore_credentials(KEY), "lambda", "us-east-1").add_auth(request)
    prepared = request.prepare()
    incoming = on_the_wire(prepared.method, prepared.url, prepared.headers, prepared.body)

    assert incoming.query_string == "q=a+b%2Bc&r=x"
    verify(incoming, lookup, NOW)


def test_date_header_is_used_when_botocore_signs_with_it() -> None:
    request, _ = signed("GET", "/", headers={"Date": "placeholder"})

    assert "x-amz-date" not in request.headers
    assert request.headers["date"] == "Thu, 01 Jan 2026 00:10:00 -0000"
    verify(request, lookup, NOW)


def test_unsigned_payload_leaves_the_body_unprotected_as_in_aws() -> None:
    request, _ = signed("PUT", "/x", body=b"payload", scheme="https", unsigned_payload=True)

    assert request.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    verify(dataclasses.replace(request, body=b"something else"), lookup, NOW)


# --- tampering ------------------------------------------------------------------------------


def _post() -> IncomingRequest:
    return signed("POST", "/2015-03-31/functions", body=b'{"FunctionName": "fn"}')[0]


def _get() -> IncomingRequest:
    return signed(
        "GET", "/2018-10-31/layers/arn%3Aaws%3Alambda%3Ax/versions", [("Marker", "a:b"), ("MaxItems", "5")]
    )[0]


def _presigned() -> IncomingRequest:
    return presigned("/2015-03-31/functions/", [("MaxItems", "5")])


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda: dataclasses.replace(_post(), body=b'{"FunctionName": "fm"}'), id="body"),
        pytest.param(lambda: dataclasses.replace(_post(), body=b""), id="body-dropped"),
        pytest.param(lambda: dataclasses.replace(_post(), method="PUT"), id="method"),
        pytest.param(
            lambda: dataclasses.replace(_get(), raw_path="/2018-10-31/layers/arn:aws:lambda:x/versions"),
            id="path-decoded",
        ),
        pytest.param(
            lambda: dataclasses.replace(
                _get(), raw_path="/2018-10-31/layers/arn%3Aaws%3Alambda%3Ay/versions"
            ),
            id="path",
        ),
        pytest.param(
            lambda: dataclasses.replace(_get(), query_string="Marker=a%3Ab&MaxItems=6"), id="query-value"
        ),
        pytest.param(lambda: dataclasses.replace(_get(), query_string="Marker=a%3Ab"), id="query-dropped"),
        pytest.param(
            lambda: dataclasses.replace(_get(), query_string="Marker=a%3Ab&MaxItems=5&x=1"), id="query-added"
        ),
        pytest.param(lambda: replace_header(_get(), "host", "evil.example:4566"), id="signed-header"),
        pytest.param(
            lambda: dataclasses.replace(
                _presigned(), query_string=_presigned().query_string.replace("MaxItems=5", "MaxItems=50")
            ),
            id="presigned-query",
        ),
        pytest.param(
            lambda: dataclasses.replace(_presigned(), raw_path="/2015-03-31/functions"), id="presigned-path"
        ),
        pytest.param(
            lambda: signed("GET", "/", credential=dataclasses.replace(KEY, secret_access_key="wrong"))[0],
            id="wrong-secret",
        ),
        pytest.param(
            lambda: rewrite_authorization(
                signed("GET", "/", region="eu-west-1")[0], "eu-west-1", "us-east-1"
            ),
            id="scope-region-rewritten",
        ),
        pytest.param(
            lambda: rewrite_authorization(_get(), "SignedHeaders=host;x-amz-date", "SignedHeaders=host"),
            id="signed-headers-shortened",
        ),
    ],
)
def test_tampered_requests_fail_the_signature(tamper: Callable[[], IncomingRequest]) -> None:
    error = refused(tamper())

    assert isinstance(error, InvalidSignatureException)
    assert (error.code, error.status) == ("InvalidSignatureException", 403)
    assert error.message.startswith(
        MISMATCH + "\n\nThe Canonical String for this request should have been\n'"
    )
    assert (
        "\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20260101T001000Z\n20260101/"
        in error.message
    )


def test_mismatch_message_shows_botocores_own_canonical_request() -> None:
    # Signed with the wrong secret, everything else intact: the canonical request the server
    # reports must be byte for byte the one botocore signed.
    wrong = dataclasses.replace(KEY, secret_access_key="not-the-secret")
    request, original = signed(
        "POST",
        "/2018-10-31/layers/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Alayer%3Ax/versions",
        [("Marker", "a b/c:d"), ("A", "é")],
        body=b'{"Content": {}}',
        headers={"Content-Type": "application/json", "X-Spaced": " a  b "},
        credential=wrong,
    )
    del original.headers["Authorization"]  # as it was when botocore signed it
    signer = SigV4Auth(botocore_credentials(wrong), "lambda", "us-east-1")
    canonical = signer.canonical_request(original)
    string_to_sign = signer.string_to_sign(original, canonical)

    error = refused(request)

    assert error.message == (
        f"{MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n"
        f"The String-to-Sign should have been\n'{string_to_sign}'\n"
    )


def test_content_sha256_header_must_match_the_body() -> None:
    # botocore signs the header's value in place of the body hash, so the signature alone
    # would not notice a swapped body: the server has to compare the two.
    declared = hashlib.sha256(b"what was signed").hexdigest()
    request, _ = signed("POST", "/x", body=b"what was sent", headers={"X-Amz-Content-SHA256": declared})

    error = refused(request)

    assert isinstance(error, InvalidSignatureException)
    assert error.message.startswith(MISMATCH)
    # Even added after signing (so not among the signed headers), a wrong hash is refused.
    unsigned_header = replace_header(signed("POST", "/x", body=b"body")[0], "x-amz-content-sha256", declared)
    assert refused(unsigned_header).message.startswith(MISMATCH)
    good, _ = signed(
        "POST", "/x", body=b"same", headers={"X-Amz-Content-SHA256": hashlib.sha256(b"same").hexdigest()}
    )
    verify(good, lookup, NOW)


def test_unknown_access_key() -> None:
    stranger = Credential("AKIDUNKNOWN", "secret", "999999999999")
    request, _ = signed("GET", "/", credential=stranger)

    error = refused(request)

    assert isinstance(error, UnrecognizedClientException)
    assert (error.status, error.message) == (403, INVALID_TOKEN)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda: replace_header(signed("GET", "/", credential=TEMP)[0], "x-amz-security-token", None),
            id="header-missing",
        ),
        pytest.param(
            lambda: replace_header(signed("GET", "/", credential=TEMP)[0], "x-amz-security-token", "other"),
            id="header-wrong",
        ),
        pytest.param(
            lambda: signed("GET", "/", credential=dataclasses.replace(TEMP, session_token=None))[0],
            id="signed-without-token",
        ),
        pytest.param(
            lambda: signed("GET", "/", credential=dataclasses.replace(KEY, session_token="unexpected"))[0],
            id="token-on-permanent-key",
        ),
        pytest.param(
            lambda: dataclasses.replace(
                presigned("/", credential=TEMP),
                query_string="&".join(
                    p
                    for p in presigned("/", credential=TEMP).query_string.split("&")
                    if not p.startswith("X-Amz-Security-Token=")
                ),
            ),
            id="presigned-token-missing",
        ),
    ],
)
def test_session_token_must_match(make: Callable[[], IncomingRequest]) -> None:
    error = refused(make())

    assert isinstance(error, UnrecognizedClientException)
    assert error.message == INVALID_TOKEN


# --- clock ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        pytest.param(
            timedelta(minutes=16),
            "Signature expired: 20260101T001000Z is now earlier than 20260101T001100Z"
            " (20260101T002600Z - 15 min.)",
            id="16-min-late",
        ),
        pytest.param(
            -timedelta(minutes=16),
            "Signature not yet current: 20260101T001000Z is still later than 20260101T000900Z"
            " (20251231T235400Z + 15 min.)",
            id="16-min-early",
        ),
        pytest.param(
            timedelta(minutes=15, seconds=1),
            "Signature expired: 20260101T001000Z is now earlier than 20260101T001001Z"
            " (20260101T002501Z - 15 min.)",
            id="just-past-15-min",
        ),
    ],
)
def test_clock_skew_is_refused(offset: timedelta, message: str) -> None:
    request, _ = signed("GET", "/")

    error = refused(request, NOW + offset)

    assert isinstance(error, InvalidSignatureException)
    assert error.message == message


@pytest.mark.parametrize(
    "offset",
    [timedelta(minutes=15), -timedelta(minutes=15), timedelta(minutes=14), -timedelta(minutes=14)],
    ids=["+15", "-15", "+14", "-14"],
)
def test_clock_skew_within_15_minutes_is_accepted(offset: timedelta) -> None:
    request, _ = signed("GET", "/")

    verify(request, lookup, NOW + offset)


def test_now_in_another_timezone_is_converted() -> None:
    request, _ = signed("GET", "/")

    verify(request, lookup, NOW.astimezone(timezone(timedelta(hours=-5))))


def test_naive_now_is_a_programming_error() -> None:
    request, _ = signed("GET", "/")

    with pytest.raises(ValueError, match="timezone-aware"):
        verify(request, lookup, SIGNED_AT)


@pytest.mark.parametrize(
    ("expires", "offset", "message"),
    [
        pytest.param(
            300,
            timedelta(seconds=301),
            "Signature expired: 20260101T001000Z is now earlier than 20260101T001001Z"
            " (20260101T001501Z - 5 min.)",
            id="5-min-url",
        ),
        pytest.param(
            3600,
            timedelta(minutes=61),
            "Signature expired: 20260101T001000Z is now earlier than 20260101T001100Z"
            " (20260101T011100Z - 60 min.)",
            id="1-hour-url",
        ),
        pytest.param(
            90,
            timedelta(seconds=91),
            "Signature expired: 20260101T001000Z is now earlier than 20260101T001001Z"
            " (20260101T001131Z - 90 sec.)",
            id="90-second-url",
        ),
        pytest.param(
            3600,
            -timedelta(minutes=16),
            "Signature not yet current: 20260101T001000Z is still later than 20260101T000900Z"
            " (20251231T235400Z + 15 min.)",
            id="from-the-future",
        ),
    ],
)
def test_expired_presigned_url_is_refused(expires: int, offset: timedelta, message: str) -> None:
    request = presigned("/2015-03-31/functions/", expires=expires)
    verify(request, lookup, NOW + timedelta(seconds=expires))  # the last valid second

    error = refused(request, NOW + offset)

    assert isinstance(error, InvalidSignatureException)
    assert error.message == message


def test_credential_date_must_be_the_request_date() -> None:
    # Near midnight a client may put yesterday's date in the scope and today's in X-Amz-Date.
    request = rewrite_authorization(signed("GET", "/")[0], "/20260101/", "/20251231/")

    error = refused(request)

    assert isinstance(error, InvalidSignatureException)
    assert error.message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        "'20251231' != '20260101', from '20260101T001000Z'."
    )


# --- malformed ------------------------------------------------------------------------------

AMZ_DATE = {"host": "localhost:4566", "x-amz-date": "20260101T001000Z"}
SCOPE = "AKIDEXAMPLE/20260101/us-east-1/lambda/aws4_request"


def sigv4(credential: str = SCOPE, signed_headers: str = "host", algorithm: str = "AWS4-HMAC-SHA256") -> str:
    return f"{algorithm} Credential={credential}, SignedHeaders={signed_headers}, Signature=00"


def unsigned(headers: dict[str, str], query: str = "") -> IncomingRequest:
    return IncomingRequest("GET", "/2015-03-31/functions/", query, headers, b"")


@pytest.mark.parametrize(
    ("request_", "error_type", "message"),
    [
        pytest.param(
            unsigned({"host": "localhost:4566"}),
            MissingAuthenticationTokenException,
            "Missing Authentication Token",
            id="nothing",
        ),
        pytest.param(
            unsigned(
                {"host": "localhost:4566"}, "X-Amz-Credential=AKIDEXAMPLE%2F20260101&X-Amz-Signature=00"
            ),
            MissingAuthenticationTokenException,
            "Missing Authentication Token",
            id="presign-params-without-algorithm",
        ),
        pytest.param(
            unsigned({"host": "localhost:4566"}, "X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Credential=x"),
            MissingAuthenticationTokenException,
            "Missing Authentication Token",
            id="presign-unknown-algorithm",
        ),
        pytest.param(
            unsigned({**AMZ_DATE, "authorization": f"AWS4-HMAC-SHA256 Credential={SCOPE}"}),
            IncompleteSignatureException,
            "Authorization header requires 'Signature' parameter. "
            "Authorization header requires 'SignedHeaders' parameter. "
            f"Authorization=AWS4-HMAC-SHA256 Credential={SCOPE}",
            id="header-missing-signature-and-signed-headers",
        ),
        pytest.param(
            unsigned({"host": "x", "authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"}),
            IncompleteSignatureException,
            "Authorization header requires 'Credential' parameter. "
            "Authorization header requires 'Signature' parameter. "
            "Authorization header requires 'SignedHeaders' parameter. "
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
            "Authorization=Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig",
            id="not-sigv4-and-no-date",
        ),
        pytest.param(
            unsigned({**AMZ_DATE, "authorization": "AWS AKIDEXAMPLE:qaNdqGsI6bq4Hi+9Gzovwyjbh0E="}),
            IncompleteSignatureException,
            "Authorization header requires 'Credential' parameter. "
            "Authorization header requires 'Signature' parameter. "
            "Authorization header requires 'SignedHeaders' parameter. "
            "Authorization=AWS AKIDEXAMPLE:qaNdqGsI6bq4Hi+9Gzovwyjbh0E=",
            id="sigv2-header",
        ),
        pytest.param(
            unsigned(
                {
                    **AMZ_DATE,
                    "authorization": sigv4(algorithm="AWS4-HMAC-SHA512"),
                }
            ),
            IncompleteSignatureException,
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.",
            id="unsupported-algorithm",
        ),
        pytest.param(
            unsigned(
                {
                    **AMZ_DATE,
                    "authorization": sigv4(credential=f" {SCOPE}"),
                }
            ),
            IncompleteSignatureException,
            f"'{SCOPE}' not a valid key=value pair (missing equal-sign) in Authorization header: "
            f"'AWS4-HMAC-SHA256 Credential= {SCOPE}, SignedHeaders=host, Signature=00'.",
            id="missing-equal-sign",
        ),
        pytest.param(
            unsigned(
                {
                    **AMZ_DATE,
                    "authorization": sigv4(credential="AKIDEXAMPLE/20260101/us-east-1/lambda"),
                }
            ),
            IncompleteSignatureException,
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            "got 'AKIDEXAMPLE/20260101/us-east-1/lambda'",
            id="credential-four-parts",
        ),
        pytest.param(
            unsigned(
                {
                    **AMZ_DATE,
                    "authorization": sigv4(credential="AKIDEXAMPLE/20260101/aws-global/lambda/aws5_request"),
                }
            ),
            InvalidSignatureException,
            "Credential should be scoped to a valid region, not 'aws-global'. "
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ",
            id="bad-region-and-terminator",
        ),
        pytest.param(
            unsigned(
                {
                    **AMZ_DATE,
                    "authorization": sigv4(signed_headers="x-amz-date"),
                }
            ),
            InvalidSignatureException,
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            id="host-not-signed",
        ),
        pytest.param(
            unsigned(
                {
                    "host": "x",
                    "x-amz-date": "2026-01-01T00:10:00Z",
                    "authorization": sigv4(),
                }
            ),
            IncompleteSignatureException,
            "Date must be in ISO-8601 'basic format'. Got '2026-01-01T00:10:00Z'. See http://en.wikipedia.org/wiki/ISO_8601",
            id="extended-iso-date",
        ),
        pytest.param(
            unsigned(
                {"host": "x"},
                "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb&X-Amz-SignedHeaders=host",
            ),
            IncompleteSignatureException,
            "AWS query-string parameters must include 'X-Amz-Signature'. "
            "AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters.",
            id="presign-missing-params",
        ),
        pytest.param(
            unsigned(
                {"host": "x"},
                f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={SCOPE}&X-Amz-SignedHeaders=host&X-Amz-Date=20260101T001000Z&X-Amz-Signature=00&X-Amz-Expires=604801",
            ),
            IncompleteSignatureException,
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
            id="presign-expires-too-long",
        ),
        pytest.param(
            unsigned(
                {
                    **AMZ_DATE,
                    "authorization": sigv4(),
                },
                "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            ),
            InvalidSignatureException,
            MISMATCH,
            id="both-header-and-query-signature",
        ),
    ],
)
def test_malformed_requests(request_: IncomingRequest, error_type: type[AwsError], message: str) -> None:
    error = refused(request_)

    assert type(error) is error_type
    assert error.status == 403
    assert error.message == message


def test_signature_header_without_date_header() -> None:
    request, _ = signed("GET", "/")
    request = replace_header(request, "x-amz-date", None)

    error = refused(request)

    assert isinstance(error, IncompleteSignatureException)
    assert error.message == (
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization={request.headers['authorization']}"
    )


def test_expected_service_is_enforced() -> None:
    request, _ = signed("GET", "/", service="lambda")

    error = refused(request, expected_service="iam")

    assert isinstance(error, InvalidSignatureException)
    assert error.message == "Credential should be scoped to correct service: 'iam'. "


def test_scope_errors_come_before_the_key_lookup() -> None:
    # An unknown key in a bad scope is reported as the bad scope, as AWS orders its checks.
    stranger = Credential("AKIDUNKNOWN", "secret", "999999999999")
    request, _ = signed("GET", "/", credential=stranger, region="nowhere")

    error = refused(request)

    assert error.message == "Credential should be scoped to a valid region, not 'nowhere'. "


# --- parse_scope ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(
            lambda: signed("GET", "/", service="iam", region="eu-west-3")[0],
            ("AKIDEXAMPLE", "eu-west-3", "iam"),
            id="header",
        ),
        pytest.param(
            lambda: presigned("/", service="sts"), ("AKIDEXAMPLE", "us-east-1", "sts"), id="presigned"
        ),
        pytest.param(lambda: unsigned({"host": "x"}), None, id="unsigned"),
        pytest.param(
            lambda: unsigned({"authorization": "AWS4-HMAC-SHA256 Credential=a/b/c"}),
            None,
            id="short-credential",
        ),
        pytest.param(lambda: unsigned({"authorization": "Bearer token"}), None, id="not-sigv4"),
    ],
)
def test_parse_scope(make: Callable[[], IncomingRequest], expected: tuple[str, str, str] | None) -> None:
    assert parse_scope(make()) == expected


def test_secret_and_token_are_not_in_repr() -> None:
    assert KEY.secret_access_key not in repr(KEY)
    assert TEMP.session_token is not None
    assert TEMP.session_token not in repr(TEMP)
    assert TEMP.secret_access_key not in repr(TEMP)


# --- edges: timestamps, expiry parameter, header form, path normalisation -----------------------


class _QueryAuthWithoutExpires(SigV4QueryAuth):  # type: ignore[misc]
    """botocore's presigner, minus X-Amz-Expires (other SDKs and hand-rolled signers omit it)."""

    def _modify_request_before_signing(self, request: AWSRequest) -> None:
        super()._modify_request_before_signing(request)
        parts = urlsplit(request.url)
        query = "&".join(p for p in parts.query.split("&") if not p.startswith("X-Amz-Expires="))
        request.url = parts._replace(query=query).geturl()


def test_presigned_url_without_expires_gets_the_15_minute_window() -> None:
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/2015-03-31/functions/")
    _QueryAuthWithoutExpires(botocore_credentials(KEY), "lambda", "us-east-1").add_auth(request)
    incoming = on_the_wire("GET", request.prepare().url, {}, b"")
    assert "X-Amz-Expires" not in incoming.query_string

    verify(incoming, lookup, NOW + timedelta(minutes=15))
    error = refused(incoming, NOW + timedelta(minutes=16))

    assert isinstance(error, InvalidSignatureException)
    assert error.message == (
        "Signature expired: 20260101T001000Z is now earlier than 20260101T001100Z (20260101T002600Z - 15 min.)"
    )


def test_presigned_url_may_last_exactly_a_week() -> None:
    request = presigned("/2015-03-31/functions/", expires=604_800)

    verify(request, lookup, NOW + timedelta(days=7))
    assert refused(request, NOW + timedelta(days=7, seconds=1)).message.startswith("Signature expired: ")


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        pytest.param("abc", "X-Amz-Expires should be a number", id="not-a-number"),
        pytest.param("", "X-Amz-Expires should be a number", id="empty"),
        pytest.param("1e3", "X-Amz-Expires should be a number", id="exponent"),
        pytest.param("٣", "X-Amz-Expires should be a number", id="non-ascii-digit"),
        pytest.param("-1", "X-Amz-Expires must be non-negative", id="negative"),
    ],
)
def test_presigned_expires_must_be_a_non_negative_number(expires: str, message: str) -> None:
    request = presigned("/2015-03-31/functions/")
    query = "&".join(
        f"X-Amz-Expires={expires}" if p.startswith("X-Amz-Expires=") else p
        for p in request.query_string.split("&")
    )

    error = refused(dataclasses.replace(request, query_string=query))

    assert isinstance(error, IncompleteSignatureException)
    assert error.message == message


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026010xT001000Z", id="letter-in-date"),
        pytest.param("20260230T001000Z", id="no-such-day"),
        pytest.param("20260101T246000Z", id="no-such-time"),
        pytest.param("20260101T001000", id="no-zulu"),
        pytest.param("Thu, 99 Foo 2026 00:10:00 GMT", id="unparseable-http-date"),
    ],
)
def test_unreadable_timestamps(value: str) -> None:
    request = replace_header(signed("GET", "/")[0], "x-amz-date", value)

    error = refused(request)

    assert isinstance(error, IncompleteSignatureException)
    assert error.message == (
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )


def test_x_amz_date_wins_over_date() -> None:
    # Some HTTP stacks add a Date header of their own next to botocore's X-Amz-Date.
    request, _ = signed("GET", "/")
    verify(replace_header(request, "date", "Fri, 02 Jan 2026 00:00:00 GMT"), lookup, NOW)


def test_date_header_in_another_zone_is_read_as_utc() -> None:
    # The same moment written as +0100: the date header is signed, so the signature no longer
    # matches, but the string to sign the server reports carries the UTC timestamp.
    request, _ = signed("GET", "/", headers={"Date": "placeholder"})
    request = replace_header(request, "date", "Thu, 01 Jan 2026 01:10:00 +0100")

    error = refused(request)

    assert isinstance(error, InvalidSignatureException)
    assert "\n'AWS4-HMAC-SHA256\n20260101T001000Z\n20260101/us-east-1/lambda/aws4_request\n" in error.message
    assert "\ndate:Thu, 01 Jan 2026 01:10:00 +0100\n" in error.message


def test_extra_whitespace_in_the_authorization_header_is_accepted() -> None:
    request, _ = signed("GET", "/")
    authorization = request.headers["authorization"]
    spaced = authorization.replace(" ", "   ").replace(",", " ,\t") + " "

    verify(replace_header(request, "authorization", "  " + spaced), lookup, NOW)


def test_repeated_authorization_parameter_last_one_wins() -> None:
    request, _ = signed("GET", "/")
    authorization = request.headers["authorization"]

    verify(
        replace_header(
            request, "authorization", authorization.replace(", Signature=", ", Signature=00, Signature=")
        ),
        lookup,
        NOW,
    )
    error = refused(replace_header(request, "authorization", authorization + ", Signature=00"))
    assert isinstance(error, InvalidSignatureException)


def _paths() -> list[str]:
    segments = ["", ".", "..", "a", "b%20c", "~d"]
    paths = {"/"}
    for first in segments:
        for second in segments:
            for third in segments:
                paths.add(f"/{first}/{second}/{third}")
                paths.add(f"{first}/{second}/{third}".lstrip("/") or "/")
    return sorted(paths)


def test_path_normalisation_matches_botocore() -> None:
    # botocore signs normalize_url_path(path); the server must rebuild the same path from
    # whatever a client put on the wire, dot segments and doubled slashes included.
    from botocore.utils import normalize_url_path

    from lamina.api.sigv4 import _remove_dot_segments

    paths = _paths()
    assert len(paths) > 300
    assert [_remove_dot_segments(p) for p in paths] == [normalize_url_path(p) for p in paths]
    assert _remove_dot_segments("") == "/"
