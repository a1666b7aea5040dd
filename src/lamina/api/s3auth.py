"""How S3 authenticates beyond SigV4 headers: presigned URLs in S3's words, SigV2 query
authentication, and unsigned (anonymous) requests.

Facts from the S3 API Reference ("Authenticating Requests: Using Query Parameters (AWS Signature
Version 4)", and for version 2 "Signing and authenticating REST requests": "Query string request
authentication alternative") and S3's recorded answers:
- A presigned URL past its expiry is ``403 AccessDenied`` *Request has expired*, with the
  ``X-Amz-Expires`` asked (SigV4 only), when it expired (``Expires``) and the server's time
  (``ServerTime``), both ISO 8601 to the second; S3 checks the expiry before the signature.
- SigV2 query authentication (``AWSAccessKeyId``, ``Signature``, ``Expires`` in epoch seconds) is
  what botocore's ``generate_presigned_url`` makes for S3 unless told ``signature_version="s3v4"``.
  Its string to sign is ``VERB\\nContent-MD5\\nContent-Type\\nExpires\\n`` + the ``x-amz-*``
  headers (lower-case, sorted, ``name:value\\n``) + the resource: ``/bucket/key`` as sent, then
  the sub-resources S3 lists (``?acl``, ``?uploadId=...``, ``response-*``...), sorted, values
  decoded; the signature is the base64 HMAC-SHA1 of it with the secret key. A URL missing one of
  the three parameters is *Query-string authentication requires the Signature, Expires and
  AWSAccessKeyId parameters* (403 AccessDenied); a wrong signature is ``SignatureDoesNotMatch``
  with ``AWSAccessKeyId``, ``StringToSign``, ``SignatureProvided`` and ``StringToSignBytes``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import unquote

from lamina.api.sigv4 import Credential
from lamina.errors import AwsError

EXPIRED = "Request has expired"
V2_MISSING = "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your key"
    " and signing method."
)
INVALID_ACCESS_KEY = "The AWS Access Key Id you provided does not exist in our records."
V2_PARAMETERS = ("AWSAccessKeyId", "Signature", "Expires")
# The sub-resources that are part of a SigV2 string to sign (botocore's HmacV1Auth list).
_SUB_RESOURCE_NAMES = """acl cors defaultObjectAcl location logging partNumber policy requestPayment torrent
    versioning versionId versions website uploads uploadId response-content-type
    response-content-language response-expires response-cache-control response-content-disposition
    response-content-encoding delete lifecycle tagging restore storageClass notification replication
    requestPayment analytics metrics inventory accelerate encryption ownershipControls
    publicAccessBlock policyStatus intelligent-tiering object-lock retention legal-hold"""
SUB_RESOURCES = frozenset(_SUB_RESOURCE_NAMES.split())


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expired(expires_at: dt.datetime, now: dt.datetime, asked: str | None = None) -> AwsError:
    """S3's answer to a presigned URL used after ``expires_at`` (``asked``: its X-Amz-Expires)."""
    fields = {} if asked is None else {"X-Amz-Expires": asked}
    fields.update(Expires=_iso(expires_at), ServerTime=_iso(now))
    return AwsError(EXPIRED, code="AccessDenied", status=403, sender_fault=True, fields=fields)


def sigv4_presign_expired(query: Mapping[str, str], now: dt.datetime) -> AwsError | None:
    """The expiry error of a SigV4 presigned URL past ``X-Amz-Date`` + ``X-Amz-Expires``, else None
    (malformed values are left to the signature check, which words them)."""
    date, asked = query.get("X-Amz-Date"), query.get("X-Amz-Expires")
    if date is None or asked is None or not asked.isascii() or not asked.isdigit():
        return None
    try:
        signed = dt.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    if int(asked) > 604_800:
        return None
    try:
        expires_at = signed + dt.timedelta(seconds=int(asked))
    except OverflowError:  # dated at the end of time: the signature check words it
        return None
    return expired(expires_at, now, asked) if now > expires_at else None


def is_sigv2_query(query: Mapping[str, str]) -> bool:
    """Whether a request without SigV4 carries (part of) SigV2 query authentication."""
    return "X-Amz-Algorithm" not in query and any(name in query for name in V2_PARAMETERS)


def _hex_bytes(text: str) -> str:
    return " ".join(f"{b:02x}" for b in text.encode("utf-8"))


def sigv2_string_to_sign(
    method: str,
    headers: Mapping[str, str],
    expires: str,
    resource_path: str,
    query: Sequence[tuple[str, str]],
) -> str:
    """SigV2's string to sign of a query-authenticated request (``resource_path``: ``/bucket/key``
    as sent, percent-encoded)."""
    amz = sorted((k, v.strip()) for k, v in headers.items() if k.startswith("x-amz-"))
    sub = sorted((k, v) for k, v in query if k in SUB_RESOURCES)
    resource = resource_path
    if sub:
        resource += "?" + "&".join(k if v == "" else f"{k}={unquote(v)}" for k, v in sub)
    return "\n".join(
        (
            method,
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            expires,
            *(f"{k}:{v}" for k, v in amz),
            resource,
        )
    )


def verify_sigv2_query(
    method: str,
    headers: Mapping[str, str],
    resource_path: str,
    query: Sequence[tuple[str, str]],
    lookup: Callable[[str], Credential | None],
    now: dt.datetime,
) -> Credential:
    """The credential that signed a SigV2 query-authenticated request; raises S3's error."""
    values = dict(query)
    key, signature, expires = (values.get(name) for name in V2_PARAMETERS)
    if not key or signature is None or expires is None:
        raise AwsError(V2_MISSING, code="AccessDenied", status=403, sender_fault=True)
    if not (expires.isascii() and expires.isdigit()):
        raise AwsError(V2_MISSING, code="AccessDenied", status=403, sender_fault=True)
    try:
        expires_at = dt.datetime.fromtimestamp(int(expires), dt.UTC)
    except (OverflowError, ValueError, OSError):  # past what a date can be: no valid presign
        raise AwsError(V2_MISSING, code="AccessDenied", status=403, sender_fault=True) from None
    if now > expires_at:
        raise expired(expires_at, now)
    credential = lookup(key)
    if credential is None:
        raise AwsError(
            INVALID_ACCESS_KEY,
            code="InvalidAccessKeyId",
            status=403,
            sender_fault=True,
            fields={"AWSAccessKeyId": key},
        )
    token = values.get("x-amz-security-token") or headers.get("x-amz-security-token")
    if credential.session_token is not None and token != credential.session_token:
        raise AwsError(
            "The provided token is malformed or otherwise invalid.",
            code="InvalidToken",
            status=400,
            sender_fault=True,
        )
    string_to_sign = sigv2_string_to_sign(method, headers, expires, resource_path, query)
    digest = hmac.new(credential.secret_access_key.encode(), string_to_sign.encode("utf-8"), hashlib.sha1)
    expected = base64.b64encode(digest.digest()).decode()
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "backslashreplace")):
        raise AwsError(
            SIGNATURE_MISMATCH,
            code="SignatureDoesNotMatch",
            status=403,
            sender_fault=True,
            fields={
                "AWSAccessKeyId": key,
                "StringToSign": string_to_sign,
                "SignatureProvided": signature,
                "StringToSignBytes": _hex_bytes(string_to_sign),
            },
        )
    return credential
