"""boto3 clients for the CLI's commands that talk to an AWS API (lamina's or AWS's own)."""

from __future__ import annotations

from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"


def clients(
    endpoint_url: str | None, region: str | None, *services: str, profile: str | None = None, **config: Any
) -> list[Any]:
    """Clients with the standard credential chain (of ``profile``, when given); against lamina (an
    endpoint URL is given) without any configured credentials, lamina's default keys.
    ``endpoint_url=None`` means AWS's endpoints (or ``AWS_ENDPOINT_URL`` and the profile's
    ``endpoint_url``)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(profile_name=profile)
    region = region or session.region_name or "us-east-1"
    keys: dict[str, str] = {}
    if endpoint_url is not None and session.get_credentials() is None:
        # lamina's default account (DESIGN.md "Authentication"): what a fresh server accepts.
        keys = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    cfg = Config(**config) if config else None
    return [
        session.client(service, endpoint_url=endpoint_url, region_name=region, config=cfg, **keys)
        for service in services
    ]


def aws_error(exc: Exception) -> str | None:
    """A boto3/botocore failure as one line, or None if ``exc`` is not one."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', exc)}"
    if isinstance(exc, (BotoCoreError, Boto3Error)):  # Boto3Error: S3 transfers (upload_file)
        return str(exc)
    return None


def signed_post(
    endpoint_url: str,
    region: str | None,
    service: str,
    path: str,
    document: dict[str, Any],
    keys: tuple[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST ``document`` as JSON to a lamina route of ``endpoint_url``, SigV4-signed for
    ``service`` with the credentials :func:`clients` would use (or ``keys``: an access key id and
    its secret); (status, JSON answer). Raises botocore's errors when the server cannot be
    reached."""
    import json
    import os

    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.httpsession import URLLib3Session

    session = boto3.session.Session()
    region = region or session.region_name or "us-east-1"
    credentials = (
        Credentials(*keys) if keys is not None else session.get_credentials() or Credentials("test", "test")
    )
    body = json.dumps({**document, "Region": region}).encode()
    request = AWSRequest(
        "POST", endpoint_url.rstrip("/") + path, data=body, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(credentials, service, region).add_auth(request)
    http = URLLib3Session(verify=os.environ.get("AWS_CA_BUNDLE") or True, timeout=10)
    try:
        response = http.send(request.prepare())
    finally:
        http.close()
    try:
        answer = json.loads(response.content or b"{}")
    except ValueError:
        answer = {}
    return response.status_code, answer if isinstance(answer, dict) else {}
