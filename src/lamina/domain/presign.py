"""Signed, expiring download URLs (``Content.Location``), pure HMAC logic.

Like an S3 presigned URL: whoever holds it may download until it expires, and
nobody without the server's key can make or alter one.
"""

from __future__ import annotations

import hashlib
import hmac

DOWNLOAD_TTL_SECONDS = 600  # AWS's Location URLs are valid for 10 minutes.


class UrlSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError(f"signing key too short: {len(key)} bytes")
        self._key = key

    def signature(self, path: str, expires: int) -> str:
        msg = f"{path}\n{expires}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def query(self, path: str, now: int, ttl: int = DOWNLOAD_TTL_SECONDS) -> str:
        """The query string that authorises GET ``path`` until ``now + ttl``."""
        expires = now + ttl
        return f"Expires={expires}&Signature={self.signature(path, expires)}"

    def check(self, path: str, expires: str | None, signature: str | None, now: int) -> str | None:
        """None if valid, else the reason (for the 403 body)."""
        if not expires or not signature or not expires.isdigit():
            return "Query-string authentication requires the Signature and Expires parameters"
        if not hmac.compare_digest(self.signature(path, int(expires)), signature):
            return "The request signature we calculated does not match the signature you provided."
        if int(expires) < now:
            return "Request has expired"
        return None
