"""RequestContext.denial: what a handler asks IAM for a further permission, in its own service or
another (CreateFunction from S3 asks s3:GetObject)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lamina.errors import AccessDeniedException
from lamina.services.base import RequestContext

BASE = {"account_id": "000000000000", "region": "us-east-1", "request_id": "r", "base_url": "http://x"}


def test_denial_asks_the_right_service() -> None:
    asked: list[tuple[str, str]] = []

    def same(operation: str, params: Mapping[str, Any]) -> None:
        asked.append(("lambda", operation))

    def other(service: str, operation: str, params: Mapping[str, Any]) -> None:
        asked.append((service, operation))
        if params.get("Key") == "secret.zip":
            raise AccessDeniedException("no")

    ctx = RequestContext(**BASE, authorize=same, authorize_in=other)
    assert ctx.denial("ListTags", {}) is None
    assert ctx.denial("GetObject", {"Bucket": "b", "Key": "app.zip"}, service="s3") is None
    denial = ctx.denial("GetObject", {"Bucket": "b", "Key": "secret.zip"}, service="s3")
    assert isinstance(denial, AccessDeniedException)
    assert asked == [("lambda", "ListTags"), ("s3", "GetObject"), ("s3", "GetObject")]


def test_nothing_to_ask_allows() -> None:
    ctx = RequestContext(**BASE)
    assert ctx.denial("ListTags", {}) is None
    assert ctx.denial("GetObject", {}, service="s3") is None
