"""What the S3 test modules share: path-style addressing (Python's resolver does not resolve
``<bucket>.s3.localhost``), the second and third accounts' credentials of ``ACCOUNTS``, and S3's
error as boto3 parses it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

PATH_STYLE = {"addressing_style": "path"}
ALICE = {"key": "AKIDALICE111", "secret": "alice-secret"}  # account 111111111111's root
BOB = {"key": "AKIDBOB22222", "secret": "bob-secret"}  # account 222222222222's root


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the ``Error`` member of a refused call."""
    response = exc.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]
